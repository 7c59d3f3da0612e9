// The metrics function through the real gateway: only the metrics token gets in (as a bearer token
// or basic auth's password), its text passes promtool's format check, and Debian's Prometheus
// scrapes it on the local stack so that a PromQL query returns a watched service's series.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { LOCAL_METRICS_TOKEN } from '../../devstack/config.ts'
import { authorized } from '../../supabase/functions/_shared/metrics/auth.ts'
import {
  exposition,
  labelValue,
  Snapshot,
} from '../../supabase/functions/_shared/metrics/exposition.ts'
import { eventually, testSql, testStack, withCronPaused } from '../_env.ts'
import { healthCycle } from '../heal/_fixtures.ts'

const url = () => `${testStack().apiUrl}/functions/v1/metrics`

async function scrape(init: RequestInit = {}) {
  const res = await fetch(url(), init)
  return { status: res.status, headers: res.headers, text: await res.text() }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const { port } = listener.addr as Deno.NetAddr
  listener.close()
  return port
}

Deno.test('only the metrics token gets in, as a bearer token or as basic auth; other methods are refused', async () => {
  const none = await scrape()
  assert.equal(none.status, 401)
  assert.match(none.headers.get('www-authenticate') ?? '', /Basic realm="vigil-metrics"/)
  assert.ok(!none.text.includes(LOCAL_METRICS_TOKEN))
  assert.equal((await scrape({ headers: { authorization: 'Bearer not-the-token' } })).status, 401)
  // The service role key is no metrics token.
  assert.equal(
    (await scrape({ headers: { authorization: `Bearer ${testStack().serviceRoleKey}` } })).status,
    401,
  )
  const bearer = await scrape({ headers: { authorization: `Bearer ${LOCAL_METRICS_TOKEN}` } })
  assert.equal(bearer.status, 200)
  assert.equal(bearer.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8')
  const basic = await scrape({
    headers: { authorization: `Basic ${btoa(`prometheus:${LOCAL_METRICS_TOKEN}`)}` },
  })
  assert.equal(basic.status, 200)
  assert.match(basic.text, /^# HELP vigil_service_up /m)
  const head = await scrape({
    method: 'HEAD',
    headers: { authorization: `Bearer ${LOCAL_METRICS_TOKEN}` },
  })
  assert.equal(head.status, 200)
  assert.equal(head.text, '')
  const post = await scrape({
    method: 'POST',
    headers: { authorization: `Bearer ${LOCAL_METRICS_TOKEN}` },
  })
  assert.equal(post.status, 405)
})

Deno.test('the exposition: escaped labels, a cumulative histogram, every severity, in a format promtool accepts', async () => {
  assert.equal(labelValue('a "quoted"\\path\nnext'), 'a \\"quoted\\"\\\\path\\nnext')
  assert.equal(authorized('Bearer abc', 'abc'), true)
  assert.equal(authorized('bearer  abc', 'abc'), true)
  assert.equal(authorized(`Basic ${btoa('any:abc')}`, 'abc'), true)
  assert.equal(authorized(`Basic ${btoa('abc')}`, 'abc'), false, 'no colon: no password')
  assert.equal(authorized('Basic %%%', 'abc'), false)
  assert.equal(authorized('Token abc', 'abc'), false)
  const text = exposition(
    Snapshot.parse({
      services: [{
        name: 'api "eu"',
        kind: 'http',
        environment: 'prod',
        status: 'degraded',
        enabled: true,
        uptime_24h: '99.5',
        last_response_ms: '120.5',
        latency: { buckets: [1, 2, 2, 3, 4, 4, 4, 5, 5], count: 6, sum_ms: 23370 },
      }, {
        name: 'retired',
        kind: 'http',
        environment: 'prod',
        status: 'down',
        enabled: false,
        uptime_24h: null,
        last_response_ms: null,
        latency: null,
      }],
      incidents_open: { critical: 2 },
      heals: [{ strategy: 'restart_service', outcome: 'succeeded', n: 3 }],
      alerts: [{ channel: 'sms', status: 'sent', n: 4 }],
      cycle: { finished_at: 1796280540.363, duration_ms: 190, services: 12 },
    }),
    12,
  )
  const id = 'service="api \\"eu\\"",kind="http",environment="prod"'
  for (
    const line of [
      `vigil_service_up{${id}} 1`,
      `vigil_service_status{${id},status="degraded"} 1`,
      `vigil_service_status{${id},status="healthy"} 0`,
      `vigil_service_uptime_ratio{${id},window="24h"} 0.995`,
      `vigil_probe_last_duration_seconds{${id}} 0.1205`,
      `vigil_probe_duration_seconds_bucket{${id},le="0.025"} 1`,
      `vigil_probe_duration_seconds_bucket{${id},le="10"} 5`,
      `vigil_probe_duration_seconds_bucket{${id},le="+Inf"} 6`,
      `vigil_probe_duration_seconds_sum{${id}} 23.37`,
      `vigil_probe_duration_seconds_count{${id}} 6`,
      'vigil_incidents_open{severity="critical"} 2',
      'vigil_incidents_open{severity="info"} 0',
      'vigil_heals_total{strategy="restart_service",outcome="succeeded"} 3',
      'vigil_alerts{channel="sms",status="sent"} 4',
      'vigil_cycle_duration_seconds 0.19',
      'vigil_cycle_services 12',
    ]
  ) assert.ok(text.split('\n').includes(line), `missing ${line} in\n${text}`)
  assert.ok(!text.includes('retired'), 'a service Vigil no longer watches is left out')
  const check = new Deno.Command('promtool', {
    args: ['check', 'metrics'],
    stdin: 'piped',
    stdout: 'piped',
    stderr: 'piped',
  }).spawn()
  const writer = check.stdin.getWriter()
  await writer.write(new TextEncoder().encode(text))
  await writer.close()
  const out = await check.output()
  const said = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr)
  assert.equal(out.code, 0, `promtool check metrics: ${said}`)
})

Deno.test("Debian's Prometheus scrapes the metrics function on the local stack; PromQL returns a watched service's series", async () => {
  const sql = testSql()
  const name = `metrics-e2e-${Date.now().toString(36)}`
  const dir = await Deno.makeTempDir({ prefix: 'vigil-prometheus-' })
  let prometheus: Deno.ChildProcess | undefined
  try {
    await sql`insert into vigil.services (name, kind, environment, config)
              values (${name}, 'http', 'qa', ${sql.json({ url: `${testStack().providersUrl}/` })})`
    // Two good checks: a new service is healthy after success_threshold (2) of them.
    await withCronPaused(sql, ['vigil-health-check'], async () => {
      for (let i = 0; i < 2; i++) {
        const cycle = await healthCycle([name])
        assert.equal(cycle.healthy, 1, JSON.stringify(cycle))
      }
    })
    const api = new URL(testStack().apiUrl)
    const port = freePort()
    await Deno.writeTextFile(
      join(dir, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        'scrape_configs:',
        '  - job_name: vigil',
        '    metrics_path: /functions/v1/metrics',
        '    authorization:',
        `      credentials: ${LOCAL_METRICS_TOKEN}`,
        '    static_configs:',
        `      - targets: ['${api.host}']`,
        '',
      ].join('\n'),
    )
    prometheus = new Deno.Command('prometheus', {
      args: [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      stdout: 'null',
      stderr: 'null',
    }).spawn()
    const query = async (promql: string) => {
      const res = await fetch(
        `http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(promql)}`,
      ).catch(() => null)
      if (!res?.ok) {
        await res?.body?.cancel()
        return []
      }
      const body = await res.json() as {
        data: { result: { metric: Record<string, string>; value: [number, string] }[] }
      }
      return body.data.result
    }
    const up = await eventually(
      async () => {
        const [r] = await query('up{job="vigil"}')
        return r?.value[1] === '1' ? r : undefined
      },
      30_000,
      'a successful scrape',
    )
    assert.equal(up.metric.instance, api.host)
    const [series] = await eventually(
      async () => {
        const r = await query(`vigil_service_up{service="${name}"}`)
        return r.length ? r : undefined
      },
      15_000,
      "the service's series",
    )
    assert.equal(series.value[1], '1')
    assert.deepEqual(
      [series.metric.kind, series.metric.environment, series.metric.job],
      ['http', 'qa', 'vigil'],
    )
    const [count] = await query(`vigil_probe_duration_seconds_count{service="${name}"}`)
    assert.equal(count?.value[1], '2', 'two checks, two observations')
    const [quantile] = await query(
      `histogram_quantile(0.5, sum by (le) (vigil_probe_duration_seconds_bucket{service="${name}"}))`,
    )
    assert.ok(Number(quantile?.value[1]) > 0, JSON.stringify(quantile))

    // Every query of the Grafana dashboard in the repo is valid PromQL over these series.
    const dashboard = JSON.parse(
      await Deno.readTextFile(new URL('../../grafana/vigil-dashboard.json', import.meta.url)),
    ) as { panels: { title: string; targets: { expr: string }[] }[] }
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets) {
        const promql = expr.replaceAll('$environment', '.*').replaceAll('$service', '.*')
          .replaceAll('$__rate_interval', '1m').replaceAll('$__range', '1h')
        const res = await fetch(
          `http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(promql)}`,
        )
        const body = await res.json() as { status: string; error?: string }
        assert.equal(body.status, 'success', `${panel.title}: ${promql}: ${body.error}`)
      }
    }
  } finally {
    try {
      prometheus?.kill('SIGTERM')
      await prometheus?.status
    } catch { /* gone already */ }
    await Deno.remove(dir, { recursive: true }).catch(() => {})
    await sql`delete from vigil.services where name = ${name}`
    await sql.end()
  }
})
