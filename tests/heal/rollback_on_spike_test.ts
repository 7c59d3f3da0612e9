// An error spike right after a deploy, as the traffic probe reports it on the real database:
// rollback_deploy suggests the rollback (a recommendation, a page with the reason) unless the
// policy sets auto_rollback_on_spike, and then rolls the deploy service's production back through
// a recording stand-in of Vercel's API; retry_deploy never rebuilds a deploy that built fine.
import assert from 'node:assert/strict'
import { healIncident } from '../../supabase/functions/_shared/heal/engine.ts'
import { PROBES } from '../../supabase/functions/_shared/probes/registry.ts'
import { trafficProbe } from '../../supabase/functions/_shared/probes/traffic.ts'
import { createLogsApi } from '../../devstack/logs-api.ts'
import type { Probe } from '../../supabase/functions/_shared/probes/types.ts'
import { testSql } from '../_env.ts'
import { runProbe } from '../probes/_harness.ts'

const TOKEN = 'vercel_test_token_0123456789abcdef'
const LOGS_TOKEN = 'sbp_rollback_spike_test_token_0123456789ab'
const T0 = Date.now() - 5 * 60_000

interface Seen {
  method: string
  path: string
  authorization: string | null
}

async function withVercel(fn: (url: string, seen: Seen[]) => Promise<void>) {
  const seen: Seen[] = []
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url)
    seen.push({
      method: req.method,
      path: url.pathname,
      authorization: req.headers.get('authorization'),
    })
    if (req.headers.get('authorization') !== `Bearer ${TOKEN}`) {
      return Response.json({ error: { code: 'forbidden', message: 'Not authorized' } }, {
        status: 403,
      })
    }
    if (req.method === 'GET' && url.pathname === '/v6/deployments') {
      return Response.json({
        pagination: { count: 2, next: null, prev: null },
        deployments: [
          {
            uid: 'dpl_bad',
            created: T0,
            state: 'READY',
            readyState: 'READY',
            target: 'production',
            url: 'web-bad.vercel.app',
          },
          {
            uid: 'dpl_good',
            created: T0 - 3_600_000,
            state: 'READY',
            readyState: 'READY',
            target: 'production',
            url: 'web-good.vercel.app',
            isRollbackCandidate: true,
          },
        ],
      })
    }
    if (req.method === 'POST' && url.pathname === '/v1/projects/prj_web/rollback/dpl_good') {
      return new Response(null, { status: 201 })
    }
    return Response.json({ error: { code: 'not_found' } }, { status: 404 })
  })
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, seen)
  } finally {
    await server.shutdown()
  }
}

/** The traffic service's re-probe after the rollback: healthy, as the errors stopped. */
const recovered: Probe<unknown> = {
  kind: 'traffic',
  config: trafficProbe.config as Probe<unknown>['config'],
  run: () =>
    Promise.resolve({ status: 'healthy', measurements: { error_rate_pct: 0, judged: true } }),
}

Deno.test('the traffic probe names a deploy that went live just before an error spike, within its window and over its threshold only', async () => {
  const sql = testSql()
  const name = `spike-probe-${Date.now().toString(36)}`
  const logs = createLogsApi({ token: LOGS_TOKEN, projectRef: 'abcdefghijklmnopqrst' })
  const server = Deno.serve(
    { hostname: '127.0.0.1', port: 0, onListen() {} },
    async (req) => (await logs.handle(req, new URL(req.url))) ?? new Response('', { status: 404 }),
  )
  try {
    const [web] = await sql<{ id: string }[]>`
      insert into vigil.services (name, kind, environment, config, enabled)
      values (${name}, 'vercel', 'qa', ${sql.json({ project_id: 'prj_web' })}, false) returning id`
    await sql`insert into vigil.deployments (service_id, deployment_id, previous_deployment_id, version, finished_at)
              values (${web.id}, 'dpl_bad', 'dpl_good', 'web@2.0.0', now() - interval '4 minutes')`
    // What its deploy service's latest check says serves: the deploy is still live.
    await sql`insert into vigil.checks (service_id, status, measurements)
              values (${web.id}, 'healthy', ${sql.json({ serving: { id: 'dpl_bad' } })})`
    logs.ingest(
      Array.from({ length: 100 }, (_, i) => ({
        source: 'edge_logs' as const,
        log_attributes: {
          'request.method': 'GET',
          'request.path': '/rest/v1/orders',
          'response.status_code': i < 30 ? '500' : '200',
        },
      })),
    )
    const config = {
      api_url: `http://127.0.0.1:${server.addr.port}`,
      project_ref: 'abcdefghijklmnopqrst',
    }
    const options = {
      db: sql,
      secrets: { VIGIL_SUPABASE_ACCESS_TOKEN: LOGS_TOKEN },
      service: { environment: 'qa' as const },
      previous: { baseline_error_rate_pct: 0.5 },
    }
    const spike = await runProbe(trafficProbe, config, options)
    assert.equal(spike.status, 'down')
    const finding = spike.findings?.find((f) => f.kind === 'error_spike_after_deploy')
    assert.ok(finding, JSON.stringify(spike.findings))
    assert.equal(finding.evidence.deployment_id, 'dpl_bad')
    assert.equal(finding.evidence.deploy_service, name)
    assert.equal(finding.evidence.baseline_pct, 0.5)
    assert.match(
      spike.error!,
      /min after web@2\.0\.0 went live on spike-probe-\S+ \(over 2 × the baseline\): roll it back$/,
    )

    // Under rollback_threshold × the baseline, the deploy is not blamed.
    const mild = await runProbe(trafficProbe, config, {
      ...options,
      previous: { baseline_error_rate_pct: 20 },
    })
    assert.equal(mild.findings, undefined)

    // A deploy older than rollback_window_minutes is not blamed.
    const later = await runProbe(trafficProbe, { ...config, rollback_window_minutes: 3 }, options)
    assert.equal(later.status, 'down')
    assert.equal(later.findings, undefined)

    // Nor one its deploy service no longer serves (back on the deployment of two hours ago).
    await sql`insert into vigil.deployments (service_id, deployment_id, version, finished_at)
              values (${web.id}, 'dpl_good', 'web@1.9.0', now() - interval '2 hours')`
    await sql`insert into vigil.checks (service_id, status, measurements)
              values (${web.id}, 'healthy', ${sql.json({ serving: { id: 'dpl_good' } })})`
    const replaced = await runProbe(trafficProbe, config, options)
    assert.equal(replaced.findings, undefined)
  } finally {
    await server.shutdown()
    await sql`delete from vigil.services where name = ${name}`
    await sql.end()
  }
})

Deno.test('a spike after a deploy: the rollback is suggested and paged; with auto_rollback_on_spike, Vercel rolls back', async () => {
  await withVercel(async (vercel, seen) => {
    const sql = testSql(4)
    const tag = `spike-${Date.now().toString(36)}`
    await sql`alter table vigil.incidents disable trigger incidents_request_heal`
    try {
      const [web] = await sql<{ id: string }[]>`
        insert into vigil.services (name, kind, environment, config, actions, enabled)
        values (${`${tag}-web`}, 'vercel', 'qa', ${sql.json({ project_id: 'prj_web' })}, ${
        sql.json({
          rollback: {
            type: 'vercel',
            api_url: vercel,
            project_id: 'prj_web',
            token_secret: 'VERCEL_TOKEN',
          },
        })
      }, false) returning id`
      const [traffic] = await sql<{ id: string }[]>`
        insert into vigil.services (name, kind, environment, config, enabled)
        values (${`${tag}-traffic`}, 'traffic', 'qa', ${
        sql.json({ project_ref: 'abcdefghijklmnopqrst' })
      }, false) returning id`
      await sql`insert into vigil.contacts (name, role, channel, address, environment)
                values (${`${tag} on-call`}, 'on_call', 'email', 'oncall@example.org', 'qa')`
      const finding = {
        kind: 'error_spike_after_deploy',
        status: 'down',
        evidence: {
          error_rate_pct: 30,
          baseline_pct: 0.5,
          rollback_threshold: 2,
          deployment_id: 'dpl_bad',
          previous_deployment_id: 'dpl_good',
          version: 'web@2.0.0',
          deploy_service: `${tag}-web`,
          deploy_service_id: web.id,
          minutes_since_deploy: 4,
        },
      }
      await sql`insert into vigil.checks (service_id, status, error, measurements)
                values (${traffic.id}, 'down', '5xx on 30 % of 100 API requests', ${
        sql.json({ findings: [finding], top_errors: [], failing_endpoints: [] })
      })`
      const open = async () => {
        const [{ id }] = await sql<{ id: number }[]>`
          insert into vigil.incidents (service_id, kind, severity, title)
          values (${traffic.id}, 'service_unhealthy', 'critical', ${`${tag}-traffic is down`})
          returning id::int`
        return id
      }
      const options = {
        sql,
        secret: (n: string) => (n === 'VERCEL_TOKEN' ? TOKEN : undefined),
        projectUrl: 'http://127.0.0.1:1',
        probes: { ...PROBES, traffic: recovered } as typeof PROBES,
      }

      // By default: suggested, not done. The deployments were read; nothing was posted.
      const first = await open()
      const suggested = await healIncident({ incidentId: first }, options)
      assert.equal(suggested.outcome, 'dry_run', suggested.detail)
      assert.match(suggested.detail, /auto_rollback_on_spike/)
      assert.deepEqual(seen.map((s) => `${s.method} ${s.path}`), ['GET /v6/deployments'])
      const [rec] = await sql<{ kind: string; key: string; title: string }[]>`
        select kind, key, title from vigil.recommendations where service_id = ${traffic.id}`
      assert.equal(rec.kind, 'rollback')
      assert.equal(rec.key, 'dpl_bad')
      assert.match(rec.title, /^Roll back spike-\S+-web from dpl_bad to dpl_good: errors on 30 %/)
      const [inc] = await sql<{ escalation_level: number }[]>`
        select escalation_level from vigil.incidents where id = ${first}`
      assert.equal(inc.escalation_level, 3, 'people are paged with the suggestion')
      const [page] = await sql<{ body: string }[]>`
        select body from vigil.alerts where incident_id = ${first} and channel = 'email'`
      assert.match(page.body, /suggestion only .*roll production back from dpl_bad/)
      const [retry] = await sql<{ n: number }[]>`
        select count(*)::int as n from vigil.heal_actions
         where incident_id = ${first} and strategy = 'retry_deploy'`
      assert.equal(retry.n, 0, 'a deploy that built fine is not built again')
      await sql`update vigil.incidents set status = 'resolved', resolved_at = now() where id = ${first}`

      // Where the policy says so, Vigil rolls back through the deploy service's own action.
      await sql`insert into vigil.heal_policies (environment, strategy, mode, config)
                values ('qa', 'rollback_deploy', 'auto', ${
        sql.json({ auto_rollback_on_spike: true, verify_timeout_ms: 0 })
      })`
      seen.length = 0
      const second = await open()
      const done = await healIncident({ incidentId: second }, options)
      assert.equal(done.outcome, 'succeeded', done.detail)
      assert.deepEqual(seen.map((s) => `${s.method} ${s.path}`), [
        'GET /v6/deployments',
        'POST /v1/projects/prj_web/rollback/dpl_good',
      ])
      assert.equal(seen[1].authorization, `Bearer ${TOKEN}`)
      const [result] = await sql<{ detail: string; target: Record<string, unknown> }[]>`
        select detail, target from vigil.heal_actions
         where incident_id = ${second} and strategy = 'rollback_deploy' and phase = 'result'`
      assert.match(result.detail, /rolled back from dpl_bad to dpl_good/)
      assert.equal(result.target.actions_of, web.id)
      assert.ok(!JSON.stringify(result).includes(TOKEN))

      // Its next checks judge only what came after the rollback: the errors before were its cause.
      const logs = createLogsApi({ token: LOGS_TOKEN, projectRef: 'abcdefghijklmnopqrst' })
      const before = new Date(Date.now() - 120_000).toISOString()
      const request = (status: string, timestamp?: string) => ({
        source: 'edge_logs' as const,
        ...(timestamp ? { timestamp } : {}),
        log_attributes: { 'request.path': '/rest/v1/orders', 'response.status_code': status },
      })
      logs.ingest([
        ...Array.from({ length: 40 }, () => request('500', before)),
        ...Array.from({ length: 60 }, () => request('200')),
      ])
      const server = Deno.serve(
        { hostname: '127.0.0.1', port: 0, onListen() {} },
        async (req) =>
          (await logs.handle(req, new URL(req.url))) ?? new Response('', { status: 404 }),
      )
      try {
        const next = await runProbe(trafficProbe, {
          api_url: `http://127.0.0.1:${server.addr.port}`,
          project_ref: 'abcdefghijklmnopqrst',
        }, {
          db: sql,
          secrets: { VIGIL_SUPABASE_ACCESS_TOKEN: LOGS_TOKEN },
          service: { id: traffic.id, environment: 'qa' },
        })
        assert.equal(next.measurements.since_rollback, true)
        assert.equal(next.measurements.requests, 60)
        assert.equal(next.status, 'healthy', next.error)
        // With too few requests since the rollback, it is not called healthy yet.
        const quiet = await runProbe(trafficProbe, {
          api_url: `http://127.0.0.1:${server.addr.port}`,
          project_ref: 'abcdefghijklmnopqrst',
          min_requests: 100,
        }, {
          db: sql,
          secrets: { VIGIL_SUPABASE_ACCESS_TOKEN: LOGS_TOKEN },
          service: { id: traffic.id, environment: 'qa' },
        })
        assert.equal(quiet.status, 'degraded')
        assert.match(
          quiet.error!,
          /^rolled back .* ago: 60 API requests since, fewer than min_requests \(100\) to judge the rollback by$/,
        )
      } finally {
        await server.shutdown()
      }

      // The deploy service's own guard has its say: healing switched off there holds the rollback.
      await sql`update vigil.services set heal_enabled = false where id = ${web.id}`
      await sql`update vigil.incidents set status = 'resolved', resolved_at = now() where id = ${second}`
      seen.length = 0
      const third = await open()
      const held = await healIncident({ incidentId: third }, options)
      assert.match(held.detail, /rolling back spike-\S+-web is held: healing is switched off/)
      assert.deepEqual(seen, [], 'nothing was asked of Vercel')
    } finally {
      await sql`alter table vigil.incidents enable trigger incidents_request_heal`
      await sql`delete from vigil.heal_policies where environment = 'qa' and strategy = 'rollback_deploy'`
      await sql`delete from vigil.contacts where name = ${`${tag} on-call`}`
      await sql`update vigil.incidents set status = 'resolved', resolved_at = now()
                 where status = 'open' and service_id in (select id from vigil.services where name like ${`${tag}-%`})`
      await sql.end()
    }
  })
})
