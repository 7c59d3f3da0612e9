// The analysis on the real stack: metric history planted in vigil.metrics, the analyze function
// called over HTTP as pg_cron calls it, and what it leaves in SQL read back: a level shift opens an
// anomaly incident with the baseline it was compared with, a memory trend opens a forecast incident
// before the limit, and series that are constant, broken or a single point open nothing.
import assert from 'node:assert/strict'
import { testSql, testStack } from '../_env.ts'
import { CALM_MINUTES, settle } from '../../supabase/functions/_shared/analysis/run.ts'

const MINUTE = 60_000

/** A small seeded PRNG (mulberry32): the same noise on every run. */
function random(seed: number) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

async function analyze(body: unknown): Promise<{ status: number; json: any; text: string }> {
  const { apiUrl, serviceRoleKey } = testStack()
  const res = await fetch(`${apiUrl}/functions/v1/analyze`, {
    method: 'POST',
    headers: { authorization: `Bearer ${serviceRoleKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const text = await res.text()
  let json: unknown = null
  try {
    json = JSON.parse(text)
  } catch { /* markdown */ }
  return { status: res.status, json, text }
}

type Sql = ReturnType<typeof testSql>

/** A service of its own (probing the stack's own /health), so no other test's metrics mix in. */
async function service(sql: Sql, prefix: string): Promise<{ id: string; name: string }> {
  const name = `${prefix}-${Date.now().toString(36)}`
  const [row] = await sql<{ id: string }[]>`
    insert into vigil.services (name, kind, environment, config, heal_enabled)
    values (${name}, 'http', 'dev', ${sql.json({ url: `${testStack().apiUrl}/health` })}, false)
    returning id::text`
  return { id: row.id, name }
}

async function plant(
  sql: Sql,
  serviceId: string,
  metric: string,
  points: { at: Date; value: number }[],
) {
  // Values as text: NaN and Infinity are values a float8 column takes, and JSON cannot carry.
  await sql`
    insert into vigil.metrics (service_id, name, value, recorded_at)
    select ${serviceId}::uuid, ${metric}::vigil.metric_name, p.value::float8, p.at::timestamptz
      from jsonb_to_recordset(${
    sql.json(points.map((p) => ({ at: p.at.toISOString(), value: String(p.value) })))
  }) as p(at text, value text)`
}

async function openIncident(sql: Sql, serviceId: string, kind: string) {
  const [row] = await sql<
    { id: number; severity: string; title: string; detail: Record<string, any> }[]
  >`
    select id::int, severity::text, title, detail from vigil.incidents
     where service_id = ${serviceId} and kind = ${kind} and status = 'open'`
  return row ?? null
}

async function logOf(sql: Sql, incidentId: number, timeoutMs = 15_000): Promise<string[]> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const rows = await sql<{ message: string }[]>`
      select message from vigil.incident_log where incident_id = ${incidentId} order by id`
    if (rows.length > 0 || Date.now() > until) return rows.map((r) => r.message)
    await new Promise((r) => setTimeout(r, 250))
  }
}

Deno.test('a level shift in a day of seasonal history opens an anomaly incident that names its baseline, and calm resolves it', async () => {
  const sql = testSql()
  const svc = await service(sql, 'analysis-shift')
  try {
    const now = Date.now()
    const noise = random(7)
    const points = []
    // A day of throughput, a minute apart: 50 req/s with a daily swing and noise...
    for (let i = 24 * 60 - 5; i > 6; i--) {
      const at = new Date(now - i * MINUTE)
      const day = (at.getTime() / 86_400_000) * 2 * Math.PI
      points.push({ at, value: 50 + 8 * Math.sin(day) + (noise() - 0.5) * 4 })
    }
    // ...then it falls to 5 req/s for the last six minutes.
    for (let i = 6; i >= 1; i--) points.push({ at: new Date(now - i * MINUTE), value: 5 })
    await plant(sql, svc.id, 'throughput', points)

    const run = await analyze({ trigger: 'manual' })
    assert.equal(run.status, 200, run.text)
    const incident = await openIncident(sql, svc.id, 'anomaly')
    assert.ok(incident, 'an anomaly incident is open')
    assert.equal(incident.severity, 'info', 'an anomaly is shown, never paged')
    assert.match(
      incident.title,
      new RegExp(
        `^${svc.name}: throughput 5 req/s, was [\\d.]+ req/s an hour ago, ×0\\.\\d+ the baseline$`,
      ),
    )
    const ratio = incident.detail.comparison_to_baseline
    assert.ok(ratio > 0 && ratio < 0.3, `comparison_to_baseline ${ratio}`)
    assert.equal(incident.detail.series[0].metric, 'throughput')
    assert.ok(Math.abs(incident.detail.series[0].hour_ago - 50) < 12)

    // auto-heal is asked, as for any incident, and says there is nothing to heal: no page.
    const log = await logOf(sql, incident.id)
    assert.match(log.join('\n'), /an anomaly on .*: nothing to heal/)
    const [{ pages }] = await sql<{ pages: number }[]>`
      select count(*)::int as pages from vigil.alerts where incident_id = ${incident.id} and event = 'page'`
    assert.equal(pages, 0)

    // Kept between runs: the detector's state, compact, and where it stopped reading.
    const [series] = await sql<{ bytes: number; points: number; consumed_until: Date }[]>`
      select pg_column_size(detector) as bytes, points::int, consumed_until from vigil.metric_series
       where service_id = ${svc.id} and metric = 'throughput'`
    assert.equal(series.points, points.length)
    assert.ok(series.bytes < 16_384, `${series.bytes} bytes of detector state`)
    assert.equal(series.consumed_until.getTime(), points[points.length - 1].at.getTime())

    // Calm for longer than CALM_MINUTES: the next run resolves it.
    await sql`
      update vigil.metric_series
         set anomalous_since = null,
             last_anomalous_at = now() - make_interval(mins => ${CALM_MINUTES + 1})
       where service_id = ${svc.id}`
    assert.equal((await analyze({ trigger: 'manual' })).status, 200)
    assert.equal(await openIncident(sql, svc.id, 'anomaly'), null)
    const [resolved] = await sql<{ resolved_by: string }[]>`
      select detail ->> 'resolved_by' as resolved_by from vigil.incidents where id = ${incident.id}`
    assert.equal(resolved.resolved_by, 'analysis')
  } finally {
    await sql`delete from vigil.services where id = ${svc.id}`
    await sql.end()
  }
})

Deno.test('memory climbing 5 %/h opens a forecast incident hours before it reaches 100 %', async () => {
  const sql = testSql()
  const svc = await service(sql, 'analysis-trend')
  try {
    const now = Date.now()
    const noise = random(11)
    const points = []
    // Three hours from 55 % to 70 %: 100 % about six hours from now.
    for (let i = 180; i >= 1; i--) {
      points.push({
        at: new Date(now - i * MINUTE),
        value: 70 - (i * 5) / 60 + (noise() - 0.5),
      })
    }
    await plant(sql, svc.id, 'memory_usage_percent', points)
    const run = await analyze({ trigger: 'manual' })
    assert.equal(run.status, 200, run.text)

    const incident = await openIncident(sql, svc.id, 'forecast')
    const [kept] = await sql`
      select forecast from vigil.metric_series
       where service_id = ${svc.id} and metric = 'memory_usage_percent'`
    assert.ok(incident, `a forecast incident is open; the forecast: ${JSON.stringify(kept)}`)
    assert.equal(incident.severity, 'warning')
    assert.match(incident.title, new RegExp(`^${svc.name}: memory 7\\d.* 100 ?% in ~[5-7] h`))
    const [f] = incident.detail.forecasts
    assert.equal(f.metric, 'memory_usage_percent')
    assert.ok(f.eta_seconds > 4.5 * 3600 && f.eta_seconds < 7.5 * 3600, `eta ${f.eta_seconds}`)
    assert.ok(f.eta_low_seconds <= f.eta_seconds)
    // The engine hands a forecast to a person: nothing to heal, a plan to make.
    const log = await logOf(sql, incident.id)
    assert.match(log.join('\n'), /a forecast on .*: nothing to heal yet; a human must plan/)

    // Asked by a person: the forecast is in the analysis, as JSON and Markdown.
    const asked = await analyze({ service: svc.name })
    assert.equal(asked.status, 200, asked.text)
    assert.equal(asked.json.service, svc.name)
    const forecast = asked.json.forecasts.find((x: any) => x.metric === 'memory_usage_percent')
    assert.equal(forecast.status, 'crosses')
    assert.ok(asked.json.incidents.some((i: any) => i.id === incident.id))
    assert.match(asked.json.markdown, /## Forecasts\n\n- .*memory .*100 ?% in ~/)
    const markdown = await analyze({ service: svc.name, format: 'markdown' })
    assert.match(markdown.text, new RegExp(`^# Analysis of ${svc.name}, `))

    // The daily report lists it under Capacity while it is open (a day of 2023 of this run's own).
    const day = new Date(Date.UTC(2023, 3, 1 + (Math.floor(Date.now() / 1000) % 28)))
      .toISOString().slice(0, 10)
    const res = await fetch(`${testStack().apiUrl}/functions/v1/report`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${testStack().serviceRoleKey}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ kind: 'daily', date: day, again: true }),
    })
    const made = await res.json()
    assert.equal(res.status, 200, JSON.stringify(made))
    const [report] = await sql<{ text: string }[]>`
      select body_text as text from vigil.reports where id = ${made.reports[0].id}`
    assert.ok(
      report.text.includes(`CAPACITY\n`) && report.text.includes(incident.title),
      report.text,
    )
  } finally {
    await sql`delete from vigil.services where id = ${svc.id}`
    await sql.end()
  }
})

Deno.test('constant, broken and single-point series open nothing; an unknown service is a clear 400', async () => {
  const sql = testSql()
  const svc = await service(sql, 'analysis-bad')
  try {
    const now = Date.now()
    const flat = []
    for (let i = 120; i >= 1; i--) {
      flat.push({ at: new Date(now - i * MINUTE), value: i % 40 === 0 ? NaN : 10 })
    }
    flat.push({ at: new Date(now - 30_500), value: Infinity })
    await plant(sql, svc.id, 'connection_usage_percent', flat)
    await plant(sql, svc.id, 'cpu_usage_percent', [{ at: new Date(now - MINUTE), value: 42 }])
    const run = await analyze({ trigger: 'manual' })
    assert.equal(run.status, 200, run.text)
    assert.equal(await openIncident(sql, svc.id, 'anomaly'), null, run.text)
    assert.equal(await openIncident(sql, svc.id, 'forecast'), null)
    const rows = await sql<{ metric: string; score: number | null; forecast: any }[]>`
      select metric::text, score, forecast from vigil.metric_series
       where service_id = ${svc.id} order by metric`
    assert.deepEqual(rows.map((r) => r.metric), ['connection_usage_percent', 'cpu_usage_percent'])
    assert.equal(rows[0].forecast.status, 'flat')
    assert.equal(rows[1].score, 0, 'a single point is in probation')

    const unknown = await analyze({ service: 'no-such-service-anywhere' })
    assert.equal(unknown.status, 400)
    assert.match(unknown.json.error, /^service: no service is named "no-such-service-anywhere"/)
    const bad = await analyze({ trigger: 'sometimes' })
    assert.equal(bad.status, 400)
  } finally {
    await sql`delete from vigil.services where id = ${svc.id}`
    await sql.end()
  }
})

Deno.test('settle: an anomaly stays open until calm for CALM_MINUTES; forecasts list the soonest first', () => {
  const now = new Date('2026-12-02T12:00:00Z')
  const base = {
    service_id: 's1',
    service: 'api',
    labels: {},
    labels_key: '{}',
    detector: null,
    consumed_until: null,
    points: 100,
    value: 1,
    score: 0.1,
    baseline: null,
    anomalous_since: null,
    last_anomalous_at: null,
    forecast: null,
    forecast_at: null,
  }
  const recently = new Date(now.getTime() - 2 * MINUTE)
  const [open] = settle([{ ...base, metric: 'throughput', last_anomalous_at: recently }], now)
  assert.equal('anomaly' in open, false, 'calm for 2 minutes: left as it is')
  const [calm] = settle([{
    ...base,
    metric: 'throughput',
    last_anomalous_at: new Date(now.getTime() - (CALM_MINUTES + 1) * MINUTE),
  }], now)
  assert.equal(calm.anomaly, null, 'calm long enough: resolved')
  const [hot] = settle([
    { ...base, metric: 'throughput', anomalous_since: recently, score: 0.7, value: 5 },
    { ...base, metric: 'error_rate', anomalous_since: recently, score: 0.9, value: 40 },
  ], now)
  assert.match(hot.anomaly!.title, /^api: error rate 40 %, unlike its history \(and 1 more\)$/)
  const crosses = (eta: number, text: string) => ({
    status: 'crosses',
    etaSeconds: eta,
    etaLowSeconds: eta / 2,
    etaHighSeconds: eta * 2,
    text,
  })
  const [f] = settle([
    { ...base, metric: 'disk_usage_percent', forecast: crosses(86_400, 'disk: full in ~1 day') },
    { ...base, metric: 'memory_usage_percent', forecast: crosses(3_600, 'memory: in ~1 h') },
  ], now)
  assert.equal(f.forecast!.title, 'api: memory: in ~1 h (and 1 more)')
})
