// The demo target (demo/) against the test stack's database: its app through its own role, its
// metrics as Vigil's prometheus probe reads them, its faults, its supervisor, its CDN edge and
// Cloudflare purge API, its Vercel stand-in, and its rows in vigil.services — and Vigil's own
// provider code (cloudflare.ts, vercel.ts, the supervisor action) talking to them.
import assert from 'node:assert/strict'
import postgres from 'postgres'
import { startDemo } from '../../demo/main.ts'
import { DEMO_SECRET_NAMES, DEMO_SERVICE_NAMES } from '../../demo/seed.ts'
import { resolveThresholds } from '../../shared/thresholds.ts'
import { PROBE_CONFIGS } from '../../shared/probe-configs.ts'
import { parseServiceActions } from '../../shared/service-actions.ts'
import type { ServiceKind } from '../../shared/kinds.ts'
import { purgeCache } from '../../supabase/functions/_shared/heal/providers/cloudflare.ts'
import {
  chooseRollback,
  rollbackTo,
} from '../../supabase/functions/_shared/heal/providers/vercel.ts'
import { performRestart } from '../../supabase/functions/_shared/heal/external.ts'
import { httpProbe } from '../../supabase/functions/_shared/probes/http.ts'
import {
  parsePrometheusText,
  prometheusProbe,
} from '../../supabase/functions/_shared/probes/prometheus.ts'
import type { ProbeContext } from '../../supabase/functions/_shared/probes/types.ts'
import { baseHealContext } from '../heal/_fixtures.ts'
import { eventually, testSql, testStack } from '../_env.ts'

const MIB = 1024 * 1024

interface Answer {
  status: number
  headers: Headers
  text: string
  // deno-lint-ignore no-explicit-any
  json: any
}

async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, init)
  const text = await res.text()
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    parsed = undefined
  }
  return { status: res.status, headers: res.headers, text, json: parsed }
}

const post = (url: string, body: unknown, token?: string) =>
  call(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`)
    return true
  } catch {
    return false
  }
}

function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  const sample = parsePrometheusText(text).samples.find((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  )
  assert.ok(sample, `${name} ${JSON.stringify(labels)} in the scrape`)
  return sample.value
}

Deno.test({
  name: 'demo: app, faults, supervisor, edge, Vercel stand-in and seed, with Vigil talking to them',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const dbUrl = testStack().dbUrl
    const logs: string[] = []
    const demo = await startDemo({ dbUrl, seed: false, log: (line) => logs.push(line) })
    const sql = testSql()
    const { app, edge, supervisor, vercel } = demo.urls
    const token = demo.credentials.controlToken
    const chaos = `${app}/_chaos`
    const secrets: Record<string, string> = demo.env()
    const healCtx = () =>
      baseHealContext({ db: sql as unknown as postgres.Sql, secret: (name) => secrets[name] })
    const firstPid = demo.supervisor.status().pid!
    try {
      await t.step(
        '/health and /api/orders answer through the ordinary role demo_app',
        async () => {
          const health = await call(`${app}/health`)
          assert.equal(health.status, 200, health.text)
          assert.deepEqual(health.json, { status: 'ok', version: 'v1', db: 'ok' })
          const orders = await call(`${app}/api/orders?customer=42`)
          assert.equal(orders.status, 200, orders.text)
          assert.equal(orders.json.customer.id, 42)
          assert.ok(orders.json.orders.length > 0)
          const users = await sql`
          select distinct usename from pg_stat_activity where application_name = 'vigil-demo-app'`
          assert.deepEqual(users.map((u) => u.usename), ['demo_app'])
          const [role] = await sql`
          select rolsuper, rolcreaterole, rolcreatedb, rolcanlogin from pg_roles where rolname = 'demo_app'`
          assert.deepEqual({ ...role }, {
            rolsuper: false,
            rolcreaterole: false,
            rolcreatedb: false,
            rolcanlogin: true,
          })
          const [owner] = await sql`
          select tableowner from pg_tables where schemaname = 'demo' and tablename = 'orders'`
          assert.equal(owner.tableowner, 'demo_app')
          assert.ok(demo.data.orders >= 200_000, `orders: ${demo.data.orders}`)
          const indexed = await sql`
          select indexdef from pg_indexes
           where schemaname = 'demo' and tablename = 'orders' and indexdef like '%customer_id%'`
          assert.equal(indexed.length, 0, 'no index on demo.orders.customer_id (the slow query)')
          const bad = await call(`${app}/api/orders?customer=abc`)
          assert.equal(bad.status, 400)
          assert.match(bad.json.error, /^customer:/)
          assert.equal((await call(`${app}/api/orders?customer=999999999`)).status, 404)
        },
      )

      await t.step(
        '/metrics: node_exporter memory of the container limit, read by Vigil',
        async () => {
          const text = (await call(`${app}/metrics`)).text
          assert.equal(parsePrometheusText(text).malformed.length, 0)
          assert.equal(metric(text, 'node_memory_MemTotal_bytes'), 256 * MIB)
          const rss = metric(text, 'process_resident_memory_bytes')
          assert.equal(metric(text, 'node_memory_MemAvailable_bytes'), 256 * MIB - rss)
          for (const mode of ['user', 'system', 'idle']) {
            assert.ok(metric(text, 'node_cpu_seconds_total', { cpu: '0', mode }) >= 0)
          }
          const ctx: ProbeContext = {
            service: {
              id: crypto.randomUUID(),
              name: 'demo-app-host',
              kind: 'prometheus',
              environment: 'prod',
            },
            thresholds: resolveThresholds(),
            signal: AbortSignal.timeout(5_000),
            secret: () => undefined,
            projectUrl: testStack().apiUrl,
            db: sql as unknown as postgres.Sql,
            fetch,
          }
          const host = demo.services.find((s) => s.name === 'demo-app-host')!
          const probed = await prometheusProbe.run(prometheusProbe.config.parse(host.config), ctx)
          assert.equal(probed.status, 'healthy', probed.error)
          const usage = probed.measurements.memory_usage_percent as number
          assert.ok(usage > 0 && usage < 60, `memory ${usage} %`)

          const before = metric(text, 'node_memory_MemAvailable_bytes')
          const on = await post(chaos, { leak_mb_per_s: 40 }, token)
          assert.equal(on.status, 200, on.text)
          assert.equal(on.json.leak_mb_per_s, 40)
          await new Promise((r) => setTimeout(r, 1_100))
          const off = await post(chaos, { leak_mb_per_s: 0 }, token)
          assert.ok(off.json.leaked_bytes >= 30 * MIB, `leaked ${off.json.leaked_bytes}`)
          const after = metric(
            (await call(`${app}/metrics`)).text,
            'node_memory_MemAvailable_bytes',
          )
          assert.ok(before - after >= 30 * MIB, `MemAvailable ${before} → ${after}`)
        },
      )

      await t.step('errors, latency and version faults apply and clear', async () => {
        assert.equal((await post(chaos, { errors: 1 }, token)).status, 200)
        assert.equal((await call(`${app}/health`)).status, 500)
        assert.equal((await call(`${app}/api/orders?customer=1`)).status, 500)
        assert.equal((await call(`${app}/version`)).status, 200, '/version is not failed')
        assert.equal((await call(`${app}/metrics`)).status, 200, '/metrics is not failed')
        await post(chaos, { errors: 0.5 }, token)
        const codes = new Set<number>()
        for (let i = 0; i < 60; i++) codes.add((await call(`${app}/health`)).status)
        assert.deepEqual([...codes].sort(), [200, 500], 'about half fail')
        await post(chaos, { clear: true }, token)
        assert.equal((await call(`${app}/health`)).status, 200)

        await post(chaos, { latency_ms: 400 }, token)
        let started = performance.now()
        assert.equal((await call(`${app}/health`)).status, 200)
        assert.ok(performance.now() - started >= 400, 'latency applied')
        const state = await call(chaos, { headers: { authorization: `Bearer ${token}` } })
        assert.equal(state.json.latency_ms, 400)
        await post(chaos, { latency_ms: 0 }, token)
        started = performance.now()
        await call(`${app}/health`)
        assert.ok(performance.now() - started < 400, 'latency cleared')

        await post(chaos, { version: 'v9' }, token)
        const v = await call(`${app}/version`)
        assert.deepEqual(v.json, { version: 'v9' })
        assert.equal(v.headers.get('x-demo-version'), 'v9')
        await post(chaos, { version: null }, token)
        assert.equal((await call(`${app}/version`)).json.version, 'v1')
      })

      await t.step(
        'the fault-control API refuses a wrong token and names the bad field',
        async () => {
          assert.equal((await post(chaos, { errors: 0.1 })).status, 401)
          assert.equal((await post(chaos, { errors: 0.1 }, 'wrong-token-wrong-token')).status, 401)
          assert.equal((await call(chaos)).status, 401)
          for (
            const [body, field] of [
              [{ errors: 'lots' }, 'errors'],
              [{ errors: 1.5 }, 'errors'],
              [{ latency_ms: -1 }, 'latency_ms'],
              [{ leak_mb_per_s: 5000 }, 'leak_mb_per_s'],
              [{ version: 'has spaces' }, 'version'],
              [{ clear: false }, 'clear'],
              [{ bogus: 1 }, 'bogus'],
              [{}, 'body'],
              ['not json', 'body'],
              [[1], 'body'],
            ] as const
          ) {
            const res = await post(chaos, body, token)
            assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`)
            assert.match(res.json.error, new RegExp(`^${field}:|; ${field}:`), res.json.error)
          }
          const state = await call(chaos, { headers: { authorization: `Bearer ${token}` } })
          assert.equal(state.json.errors, 0, 'nothing applied from a refused body')
        },
      )

      await t.step('the supervisor restarts the app: new pid, faults and leak gone', async () => {
        await post(chaos, { leak_mb_per_s: 40, errors: 0.2 }, token)
        await new Promise((r) => setTimeout(r, 300))
        const leaking = await post(chaos, { leak_mb_per_s: 0 }, token)
        assert.ok(leaking.json.leaked_bytes > 0)
        const res = await post(supervisor, { action: 'restart', service: 'demo-app' })
        assert.equal(res.status, 200, res.text)
        assert.equal(res.json.state, 'running')
        assert.notEqual(res.json.pid, firstPid)
        assert.ok(!alive(firstPid), 'the old process is gone')
        const after = await call(chaos, { headers: { authorization: `Bearer ${token}` } })
        assert.equal(after.json.pid, res.json.pid)
        assert.equal(after.json.leaked_bytes, 0)
        assert.equal(after.json.errors, 0)
        assert.equal((await call(`${app}/health`)).status, 200)

        // Vigil's own supervisor action, as restart_service sends it.
        const said = await performRestart(
          healCtx(),
          { type: 'supervisor', url: `${supervisor}/`, service: 'demo-app' },
          10_000,
        )
        assert.equal(said, 'the supervisor restarted demo-app')
        assert.notEqual(demo.supervisor.status().pid, res.json.pid)

        for (
          const [body, status, field] of [
            [{ action: 'reboot', service: 'demo-app' }, 400, 'action'],
            [{ action: 'restart' }, 400, 'service'],
            [{ action: 'restart', service: 'other-app' }, 404, 'service'],
            ['nope', 400, 'body'],
          ] as const
        ) {
          const bad = await post(supervisor, body)
          assert.equal(bad.status, status, bad.text)
          assert.match(bad.json.error, new RegExp(`^${field}:`))
        }
      })

      await t.step('a crashed app is started again', async () => {
        const pid = demo.supervisor.status().pid!
        Deno.kill(pid, 'SIGKILL')
        const back = await eventually(
          () => {
            const s = demo.supervisor.status()
            return s.state === 'running' && s.pid !== pid ? s : undefined
          },
          15_000,
          'the app respawned',
        )
        assert.equal(back.crashes, 1)
        assert.equal((await call(`${app}/health`)).status, 200)
      })

      await t.step(
        'the edge caches /version; a purge with the right token empties it',
        async () => {
          demo.edge.purgeAll()
          const miss = await call(`${edge}/version`)
          assert.equal(miss.headers.get('cf-cache-status'), 'MISS')
          assert.equal(miss.json.version, 'v1')
          await new Promise((r) => setTimeout(r, 1_050))
          const hit = await call(`${edge}/version`)
          assert.equal(hit.headers.get('cf-cache-status'), 'HIT')
          assert.ok(Number(hit.headers.get('age')) >= 1, `age ${hit.headers.get('age')}`)
          assert.equal(hit.headers.get('x-demo-version'), 'v1')
          assert.equal(
            (await call(`${edge}/health`)).headers.get('cf-cache-status'),
            'DYNAMIC',
            'other paths pass through',
          )

          // The origin moves on; the edge still serves what it cached.
          await post(chaos, { version: 'v2' }, token)
          assert.equal((await call(`${edge}/version`)).json.version, 'v1')

          const purgeUrl = `${edge}/client/v4/zones/${demo.credentials.zoneId}/purge_cache`
          const wrong = await post(purgeUrl, { purge_everything: true }, 'not-the-token')
          assert.equal(wrong.status, 403)
          assert.equal(wrong.json.success, false)
          assert.equal(wrong.json.errors[0].code, 10000)
          const zone = await post(
            `${edge}/client/v4/zones/${'f'.repeat(32)}/purge_cache`,
            { purge_everything: true },
            demo.credentials.cloudflareToken,
          )
          assert.equal(zone.status, 404)
          assert.equal(zone.json.errors[0].code, 7003)
          const empty = await post(purgeUrl, {}, demo.credentials.cloudflareToken)
          assert.equal(empty.status, 400)
          assert.equal((await call(`${edge}/version`)).headers.get('cf-cache-status'), 'HIT')

          // Vigil's own Cloudflare adapter, as purge_cdn calls it.
          const purged = await purgeCache(healCtx(), {
            api_url: edge,
            zone_id: demo.credentials.zoneId,
            token_secret: DEMO_SECRET_NAMES.cloudflareToken,
          }, 5_000)
          assert.equal(purged.scope, 'everything')
          assert.match(purged.purgeId ?? '', /^[0-9a-f]{32}$/)
          const fresh = await call(`${edge}/version`)
          assert.equal(fresh.headers.get('cf-cache-status'), 'MISS')
          assert.equal(fresh.json.version, 'v2')

          // Vigil's http probe with the seeded config sees the edge serve another version.
          const web = demo.services.find((s) => s.name === 'demo-web')!
          const seen = await httpProbe.run(httpProbe.config.parse(web.config), {
            service: {
              id: crypto.randomUUID(),
              name: 'demo-web',
              kind: 'http',
              environment: 'prod',
            },
            thresholds: resolveThresholds(),
            signal: AbortSignal.timeout(5_000),
            secret: () => undefined,
            projectUrl: testStack().apiUrl,
            db: sql as unknown as postgres.Sql,
            fetch,
          })
          assert.deepEqual(
            seen.findings?.map((f) => [f.kind, f.evidence]),
            [['stale_version', { served: 'v2', expected: 'v1' }]],
          )

          // Purge by URL.
          await post(chaos, { version: 'v3' }, token)
          assert.equal((await call(`${edge}/version`)).json.version, 'v2')
          const files = await post(
            purgeUrl,
            { files: [`${edge}/version`] },
            demo.credentials.cloudflareToken,
          )
          assert.equal(files.status, 200, files.text)
          assert.deepEqual(Object.keys(files.json).sort(), [
            'errors',
            'messages',
            'result',
            'success',
          ])
          assert.equal((await call(`${edge}/version`)).json.version, 'v3')
          assert.ok(
            demo.edge.purges().every((p) =>
              !JSON.stringify(p).includes(demo.credentials.cloudflareToken)
            ),
          )
          await post(chaos, { version: null }, token)
        },
      )

      await t.step(
        'the Vercel stand-in: deployments, a deploy hook, a rollback that switches the version',
        async () => {
          const project = {
            api_url: vercel,
            project_id: demo.credentials.projectId,
            token_secret: DEMO_SECRET_NAMES.vercelToken,
          }
          const options = { candidates: 20, timeoutMs: 5_000 }
          assert.ok(
            'none' in await chooseRollback(healCtx(), project, options),
            'one deployment only',
          )
          const forbidden = await call(`${vercel}/v6/deployments?projectId=${project.project_id}`, {
            headers: { authorization: 'Bearer wrong' },
          })
          assert.equal(forbidden.status, 403)
          assert.equal(forbidden.json.error.code, 'forbidden')

          // A commit pushed, then the deploy hook builds it: production serves v2 through the edge.
          await post(`${vercel}/_chaos`, { source_version: 'v2' }, token)
          const hook = await post(secrets[DEMO_SECRET_NAMES.deployHookUrl], '')
          assert.equal(hook.status, 201, hook.text)
          assert.equal(hook.json.job.state, 'PENDING')
          assert.equal(demo.vercel.production().meta.version, 'v2')
          assert.equal((await call(`${app}/version`)).json.version, 'v2')
          const live = await call(`${edge}/version`)
          assert.equal(live.json.version, 'v2')
          assert.equal(
            live.headers.get('cf-cache-status'),
            'MISS',
            'a new deployment is served at once',
          )
          const wrongHook = await post(
            `${vercel}/v1/integrations/deploy/${project.project_id}/nothook`,
            '',
          )
          assert.equal(wrongHook.status, 404)

          // Vigil's own Vercel adapter, as rollback_deploy calls it.
          const choice = await chooseRollback(healCtx(), project, options)
          assert.ok('from' in choice, JSON.stringify(choice))
          assert.equal(choice.from.id, demo.vercel.production().uid)
          const v1 = demo.vercel.deployments().find((d) => d.meta.version === 'v1')!
          assert.equal(choice.to.id, v1.uid)
          await rollbackTo(healCtx(), project, choice.to.id, 'test rollback', 5_000)
          assert.equal(demo.vercel.production().uid, v1.uid)
          assert.equal((await call(`${app}/version`)).json.version, 'v1')
          assert.equal((await call(`${edge}/version`)).json.version, 'v1')
          const missing = await post(
            `${vercel}/v1/projects/${project.project_id}/rollback/dpl_missing`,
            '',
            demo.credentials.vercelToken,
          )
          assert.equal(missing.status, 404)

          // A failing build: ERROR, production unchanged, never a rollback candidate.
          await post(`${vercel}/_chaos`, { fail_deploys: 1 }, token)
          assert.equal((await post(secrets[DEMO_SECRET_NAMES.deployHookUrl], '')).status, 201)
          const newest = demo.vercel.deployments().at(-1)!
          assert.equal(newest.state, 'ERROR')
          assert.equal(demo.vercel.production().uid, v1.uid)
          const ready = await call(
            `${vercel}/v6/deployments?projectId=${project.project_id}&target=production&state=READY&limit=10`,
            { headers: { authorization: `Bearer ${demo.credentials.vercelToken}` } },
          )
          assert.equal(ready.json.deployments.length, 2)
          assert.ok(ready.json.deployments.every((d: { state: string }) => d.state === 'READY'))
          const recorded = (await call(`${vercel}/_recorded`)).text
          assert.ok(!recorded.includes(demo.credentials.vercelToken))
          assert.ok(!recorded.includes(demo.credentials.hookId), 'the hook id is never recorded')

          // A restart keeps the version production serves.
          await post(supervisor, { action: 'restart', service: 'demo-app' })
          assert.equal((await call(`${app}/version`)).json.version, 'v1')
        },
      )

      await t.step('disable stops the app until it is restarted', async () => {
        const pid = demo.supervisor.status().pid!
        const res = await post(supervisor, { action: 'disable', service: 'demo-app' })
        assert.equal(res.status, 200, res.text)
        assert.equal(res.json.state, 'disabled')
        assert.equal(res.json.pid, null)
        assert.ok(!alive(pid))
        await assert.rejects(fetch(`${app}/health`))
        await new Promise((r) => setTimeout(r, 700))
        assert.equal(
          demo.supervisor.status().state,
          'disabled',
          'not started again behind our back',
        )
        const back = await post(supervisor, { action: 'restart', service: 'demo-app' })
        assert.equal(back.json.state, 'running')
        assert.equal((await call(`${app}/health`)).status, 200)
      })

      await t.step(
        "the seed upserts the demo's services once, valid by Vigil's rules",
        async () => {
          const names = [...DEMO_SERVICE_NAMES]
          // A dev stack running its own demo keeps its rows: put them back afterwards.
          const before = await sql`
          select name, kind, description, config, actions, depends_on
            from vigil.services where name = any(${names})`
          try {
            await demo.seed()
            await demo.seed()
            const rows = await sql`
            select name, kind, config, actions, depends_on from vigil.services
             where name = any(${names}) order by name`
            assert.deepEqual(rows.map((r) => r.name), [...names].sort())
            for (const row of rows) {
              assert.ok(
                PROBE_CONFIGS[row.kind as ServiceKind].safeParse(row.config).success,
                row.name,
              )
              const actions = parseServiceActions(row.actions)
              assert.ok(actions.ok, `${row.name}: ${JSON.stringify(actions)}`)
              const text = JSON.stringify(row)
              for (const value of Object.values(secrets)) {
                assert.ok(!text.includes(value), `${row.name} holds no secret`)
              }
            }
            const byName = Object.fromEntries(rows.map((r) => [r.name, r]))
            assert.deepEqual(byName['demo-api'].depends_on, ['demo-db', 'demo-app-host'])
            assert.equal(byName['demo-web'].config.expected_version.header, 'x-demo-version')
            assert.equal(byName['demo-web'].actions.cdn.token_secret, 'VIGIL_DEMO_CLOUDFLARE_TOKEN')
            assert.equal(
              byName['demo-web'].actions.rollback.token_secret,
              'VIGIL_DEMO_VERCEL_TOKEN',
            )
            assert.deepEqual(byName['demo-app-host'].actions.restart, {
              type: 'supervisor',
              url: `${supervisor}/`,
              service: 'demo-app',
            })
            assert.equal(byName['demo-db'].kind, 'postgres')
            assert.equal(byName['demo-https'].config.url, `${demo.urls.https}/version`)
            assert.deepEqual(byName['demo-https'].actions.certificate_renewal, {
              url: `${edge}/_tls/renew`,
              token_secret: DEMO_SECRET_NAMES.certificateToken,
            })
            assert.equal(byName['demo-checkout'].kind, 'supabase_functions')
            assert.equal(byName['demo-checkout'].config.function, 'demo-checkout')
            assert.equal(byName['demo-deploys'].kind, 'vercel')
            assert.deepEqual(byName['demo-deploys'].actions.deploy_retry, {
              hook_url_secret: DEMO_SECRET_NAMES.deployHookUrl,
            })
            // The SQL side refuses what Vigil's schemas refuse: the seed really is checked.
            await assert.rejects(
              sql`update vigil.services set config = '{"method": "GET"}' where name = 'demo-api'`,
              /invalid config for http service "demo-api": config\.url/,
            )
          } finally {
            const kept = new Set(before.map((r) => r.name))
            for (const r of before) {
              await sql`
              update vigil.services
                 set kind = ${r.kind}, description = ${r.description}, config = ${
                sql.json(r.config)
              },
                     actions = ${sql.json(r.actions)}, depends_on = ${r.depends_on}
               where name = ${r.name}`
            }
            const created = names.filter((n) => !kept.has(n))
            if (created.length) await sql`delete from vigil.services where name = any(${created})`
          }
        },
      )
    } finally {
      const pid = demo.supervisor.status().pid
      await demo.stop()
      await sql.end()
      if (pid !== null) assert.ok(!alive(pid), 'stop() leaves no app process behind')
      assert.ok(
        !logs.join('\n').includes(demo.credentials.cloudflareToken) &&
          !logs.join('\n').includes(demo.credentials.vercelToken),
        'no token in the demo log',
      )
    }
  },
})
