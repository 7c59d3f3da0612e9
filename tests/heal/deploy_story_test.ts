// A failing deploy retried, then rolled back, with the demo's stand-in of Vercel's API
// (demo/vercel.ts), the Logs API stand-in and the real database; the heal engine in process, as the
// auto-heal function runs it, with the real probes re-probing. The build of v2 fails: the vercel
// probe's deploy_failed reaches retry_deploy, whose deploy hook builds v2 again, and it goes live
// (recorded in vigil.deployments). v2 then fails its users: the traffic probe sees the errors
// jump right after that deploy, and rollback_deploy (auto_rollback_on_spike) puts v1 back; the
// traffic checks after it judge only the requests since, and pass.
import assert from 'node:assert/strict'
import { startVercel } from '../../demo/vercel.ts'
import { createLogsApi, type LogEvent } from '../../devstack/logs-api.ts'
import { healIncident } from '../../supabase/functions/_shared/heal/engine.ts'
import { trafficProbe } from '../../supabase/functions/_shared/probes/traffic.ts'
import type { ProbeResult } from '../../supabase/functions/_shared/probes/types.ts'
import { vercelProbe } from '../../supabase/functions/_shared/probes/vercel.ts'
import { testSql } from '../_env.ts'
import { runProbe } from '../probes/_harness.ts'

const VERCEL_TOKEN = 'vercel_story_token_0123456789abcdefgh'
const LOGS_TOKEN = 'sbp_story_logs_token_0123456789abcdef0123'
const REF = 'abcdefghijklmnopqrst'

function requests(n: number, failing: number): Partial<LogEvent>[] {
  return Array.from({ length: n }, (_, i) => ({
    source: 'edge_logs' as const,
    log_attributes: {
      'request.method': 'POST',
      'request.path': '/rest/v1/orders',
      'response.status_code': i < failing ? '500' : '200',
    },
  }))
}

Deno.test('a failing deploy is retried, goes live, spikes the errors, and is rolled back', async () => {
  const logs = createLogsApi({ token: LOGS_TOKEN, projectRef: REF })
  const logsServer = Deno.serve(
    { hostname: '127.0.0.1', port: 0, onListen() {} },
    async (req) => (await logs.handle(req, new URL(req.url))) ?? new Response('', { status: 404 }),
  )
  const served: string[] = []
  const vercel = await startVercel({
    port: 0,
    projectId: 'prj_story',
    projectName: 'story',
    token: VERCEL_TOKEN,
    hookId: 'hook_story_0123456789',
    controlToken: 'control_story_0123456789',
    version: 'v1',
    onProduction: (version) => {
      served.push(version)
      // The app's users meet whatever is live: v1 answers them, v2 fails two in five.
      if (version === 'v1') logs.ingest(requests(60, 0))
      return Promise.resolve()
    },
  })
  const sql = testSql(4)
  const tag = `story-${Date.now().toString(36)}`
  const secrets: Record<string, string> = {
    VIGIL_STORY_VERCEL_TOKEN: VERCEL_TOKEN,
    VIGIL_STORY_DEPLOY_HOOK: vercel.deployHookUrl,
    VIGIL_SUPABASE_ACCESS_TOKEN: LOGS_TOKEN,
  }
  const options = {
    sql,
    secret: (name: string) => secrets[name],
    projectUrl: 'http://127.0.0.1:1',
  }
  // What the health-check function would store for this probe result (its findings included).
  const record = async (serviceId: string, r: ProbeResult) => {
    await sql`insert into vigil.checks (service_id, status, error, measurements) values (${serviceId}, ${r.status}, ${
      r.error ?? null
    }, ${
      sql.json({ ...r.measurements, ...(r.findings ? { findings: r.findings } : {}) } as never)
    })`
  }
  const openIncident = async (serviceId: string, title: string) => {
    const [open] = await sql<{ id: number }[]>`
      select id::int from vigil.incidents where service_id = ${serviceId} and status = 'open'`
    if (open) return open.id
    const [made] = await sql<{ id: number }[]>`
      insert into vigil.incidents (service_id, kind, severity, title)
      values (${serviceId}, 'service_unhealthy', 'critical', ${title}) returning id::int`
    return made.id
  }
  await sql`alter table vigil.incidents disable trigger incidents_request_heal`
  try {
    const vercelConfig = {
      api_url: vercel.url,
      project_id: 'prj_story',
      token_secret: 'VIGIL_STORY_VERCEL_TOKEN',
    }
    const [web] = await sql<{ id: string }[]>`
      insert into vigil.services (name, kind, environment, config, actions, enabled)
      values (${`${tag}-deploys`}, 'vercel', 'qa', ${sql.json(vercelConfig)}, ${
      sql.json({
        deploy_retry: { hook_url_secret: 'VIGIL_STORY_DEPLOY_HOOK' },
        rollback: {
          type: 'vercel',
          api_url: vercel.url,
          project_id: 'prj_story',
          token_secret: 'VIGIL_STORY_VERCEL_TOKEN',
        },
      })
    }, false) returning id`
    const trafficConfig = { api_url: `http://127.0.0.1:${logsServer.addr.port}`, project_ref: REF }
    const [traffic] = await sql<{ id: string }[]>`
      insert into vigil.services (name, kind, environment, config, enabled)
      values (${`${tag}-traffic`}, 'traffic', 'qa', ${sql.json(trafficConfig)}, false) returning id`
    await sql`insert into vigil.heal_policies (environment, strategy, mode, config)
              values ('qa', 'rollback_deploy', 'auto', ${
      sql.json({ auto_rollback_on_spike: true, verify_timeout_ms: 5_000, verify_interval_ms: 200 })
    })`
    const probeVercel = () =>
      runProbe(vercelProbe, vercelConfig, {
        secrets,
        service: { id: web.id, name: `${tag}-deploys`, environment: 'qa' },
      })
    await record(web.id, await probeVercel())

    // v2 is pushed and its build fails.
    const chaos = await fetch(`${vercel.url}/_chaos`, {
      method: 'POST',
      headers: { authorization: 'Bearer control_story_0123456789' },
      body: JSON.stringify({ source_version: 'v2', fail_deploys: 1 }),
    })
    assert.equal(chaos.status, 200, await chaos.text())
    await (await fetch(vercel.deployHookUrl, { method: 'POST' })).body?.cancel()
    const failed = await probeVercel()
    // Degraded, not down: v1 still serves while the build of v2 failed.
    assert.equal(failed.status, 'degraded')
    assert.equal(failed.findings?.[0].kind, 'deploy_failed')
    await record(web.id, failed)

    // Retried: the deploy hook builds v2 again, and this time it goes live.
    const deployIncident = await openIncident(web.id, `${tag}-deploys is down`)
    const retried = await healIncident({ incidentId: deployIncident }, options)
    assert.equal(retried.outcome, 'succeeded', retried.detail)
    assert.equal(retried.strategy, 'retry_deploy')
    assert.equal(vercel.production().meta.version, 'v2')
    await record(web.id, await probeVercel())
    const [deployed] = await sql<{ deployment_id: string; version: string | null }[]>`
      select deployment_id, version from vigil.deployments where service_id = ${web.id}`
    assert.equal(deployed.deployment_id, vercel.production().uid, 'the deploy that went live')

    // v2 fails its users: the errors jump right after that deploy.
    logs.ingest(requests(100, 40))
    const spike = await runProbe(trafficProbe, trafficConfig, {
      db: sql,
      secrets,
      service: { id: traffic.id, name: `${tag}-traffic`, environment: 'qa' },
      previous: { baseline_error_rate_pct: 0.2 },
    })
    assert.equal(spike.status, 'down')
    const finding = spike.findings?.find((f) => f.kind === 'error_spike_after_deploy')
    assert.equal(finding?.evidence.deployment_id, deployed.deployment_id)
    await record(traffic.id, spike)

    // Rolled back: v1 serves again, and the checks after it judge only what came since.
    const trafficIncident = await openIncident(traffic.id, `${tag}-traffic is down`)
    const rolled = await healIncident({ incidentId: trafficIncident }, options)
    assert.equal(rolled.outcome, 'succeeded', rolled.detail)
    assert.equal(rolled.strategy, 'rollback_deploy')
    assert.equal(vercel.production().meta.version, 'v1')
    assert.deepEqual(served, ['v2', 'v1'])
    const audit = await sql<{ strategy: string; outcome: string }[]>`
      select strategy, outcome::text from vigil.heal_actions
       where service_id in (${web.id}, ${traffic.id}) and phase = 'result' order by seq`
    assert.deepEqual(audit.map((a) => `${a.strategy}: ${a.outcome}`), [
      'retry_deploy: succeeded',
      'rollback_deploy: succeeded',
    ])
  } finally {
    await sql`alter table vigil.incidents enable trigger incidents_request_heal`
    await sql`delete from vigil.heal_policies where environment = 'qa' and strategy = 'rollback_deploy'`
    await sql`update vigil.incidents set status = 'resolved', resolved_at = now()
               where status = 'open' and service_id in (select id from vigil.services where name like ${`${tag}-%`})`
    // The services stay (the heal audit references them), disabled; their deploys must not be
    // taken for live ones by a later test in the same environment.
    await sql`delete from vigil.deployments
               where service_id in (select id from vigil.services where name like ${`${tag}-%`})`
    await sql.end()
    await vercel.stop()
    await logsServer.shutdown()
  }
})
