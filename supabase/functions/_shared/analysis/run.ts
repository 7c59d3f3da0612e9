// One run of the analysis (pg_cron, every minute): every metric series of an enabled service is fed
// the points recorded since its last run through its streaming anomaly detector (shared/anomaly),
// whose state is kept in vigil.metric_series; the metrics that run out (memory, disk, connection
// slots, XID age) get a forecast toward their limit (shared/forecast) every few minutes. Then
// vigil.record_analysis keeps the rows and settles each service's anomaly and forecast incidents.
import type postgres from 'postgres'
import { ANOMALY_THRESHOLD, createDetector } from '../../../../shared/anomaly/index.ts'
import type { Baseline } from '../../../../shared/anomaly/index.ts'
import { type Forecast, forecastCrossing } from '../../../../shared/forecast/index.ts'
import type { MetricName } from '../../../../shared/kinds.ts'
import { FORECAST_TARGETS, METRIC_WORDS, shown } from './metrics.ts'
import { findNPlusOne, type StatementSample } from './nplusone.ts'
import { correlate, type Correlation, type OpenIncident } from './correlate.ts'

/** A series seen for the first time learns from this much history first. */
export const HISTORY_HOURS = 24
/** Points read in one run at most (oldest first): a backlog is worked off over several runs. */
export const MAX_POINTS_PER_RUN = 200_000
/** An anomaly incident resolves once no series of its service scored past the threshold for this long. */
export const CALM_MINUTES = 10
/** How often a series' forecast is made again. */
export const FORECAST_EVERY_SECONDS = 300
/** A forecast's history is averaged into at most this many points. */
const FORECAST_POINTS = 360
/** At most this many forecasts a run (each fits up to FORECAST_POINTS points); the rest wait. */
export const FORECASTS_PER_RUN = 50
/** N+1 detection reads the statement samples of this many minutes. */
export const N_PLUS_ONE_MINUTES = 60

interface SeriesRow {
  service_id: string
  service: string
  metric: MetricName
  labels: Record<string, string>
  labels_key: string
  detector: Record<string, unknown> | null
  consumed_until: Date | null
  points: number
  value: number | null
  score: number | null
  baseline: Record<string, unknown> | null
  anomalous_since: Date | null
  last_anomalous_at: Date | null
  forecast: Record<string, unknown> | null
  forecast_at: Date | null
}

interface PointRow {
  service_id: string
  service: string
  metric: MetricName
  labels: Record<string, string>
  labels_key: string
  value: number
  recorded_at: Date
}

export interface AnalysisRun {
  series: number
  points: number
  /** Series whose detector could not resume its stored state and started again, with why. */
  restarted: string[]
  anomalous: string[]
  forecasts: string[]
  recorded: { series: number; opened: number; updated: number; resolved: number }
  /** The N+1 patterns found (recommendations of kind n_plus_one), or why none could be looked for. */
  n_plus_one: string[] | { not_checked: string }
  /** Open incidents that started together on connected services, their likely root first. */
  correlations: string[]
  /** Deploys whose window after has passed, summarised now (vigil.summarize_deployments). */
  deployments_summarised: number
}

const keyOf = (r: { service_id: string; metric: string; labels_key: string }) =>
  `${r.service_id}|${r.metric}|${r.labels_key}`

export async function runAnalysis(sql: postgres.Sql, now = new Date()): Promise<AnalysisRun> {
  const stored = await sql<SeriesRow[]>`
    select m.service_id::text, v.name as service, m.metric::text as metric, m.labels,
           m.labels::text as labels_key, m.detector, m.consumed_until, m.points::float8 as points,
           m.value, m.score, m.baseline, m.anomalous_since, m.last_anomalous_at, m.forecast,
           m.forecast_at
      from vigil.metric_series m join vigil.services v on v.id = m.service_id
     where v.enabled`
  const fresh = await sql<PointRow[]>`
    select m.service_id::text, v.name as service, m.name::text as metric, m.labels,
           m.labels::text as labels_key, m.value, m.recorded_at
      from vigil.metrics m
      join vigil.services v on v.id = m.service_id and v.enabled
      left join vigil.metric_series s
        on s.service_id = m.service_id and s.metric = m.name and s.labels = m.labels
     where m.recorded_at > greatest(coalesce(s.consumed_until, '-infinity'),
                                    ${now}::timestamptz - make_interval(hours => ${HISTORY_HOURS}))
       and m.recorded_at <= ${now}
     order by m.recorded_at, m.id
     limit ${MAX_POINTS_PER_RUN}`

  const series = new Map<string, SeriesRow>(stored.map((r) => [keyOf(r), r]))
  const batches = new Map<string, PointRow[]>()
  for (const p of fresh) {
    const key = keyOf(p)
    if (!series.has(key)) {
      series.set(key, {
        service_id: p.service_id,
        service: p.service,
        metric: p.metric,
        labels: p.labels,
        labels_key: p.labels_key,
        detector: null,
        consumed_until: null,
        points: 0,
        value: null,
        score: null,
        baseline: null,
        anomalous_since: null,
        last_anomalous_at: null,
        forecast: null,
        forecast_at: null,
      })
    }
    const batch = batches.get(key) ?? []
    batch.push(p)
    batches.set(key, batch)
  }

  const changed = new Set<string>()
  const restarted: string[] = []
  const anomalous: string[] = []
  for (const [key, batch] of batches) {
    const row = series.get(key)!
    let detector
    try {
      detector = createDetector({}, row.detector ?? undefined)
    } catch (error) {
      // A state from another version or a damaged row: learn again rather than never judge.
      restarted.push(`${row.service} ${row.metric}: ${(error as Error).message}`)
      detector = createDetector({})
    }
    let top = 0
    let topBaseline: Baseline | null = null
    for (const p of batch) {
      const score = detector.update({ timestamp: p.recorded_at, value: p.value })
      if (score >= top && detector.lastReason === null) {
        top = score
        topBaseline = detector.baseline()
      }
    }
    const last = batch[batch.length - 1]
    row.detector = detector.state() as unknown as Record<string, unknown>
    row.consumed_until = last.recorded_at
    row.points += batch.length
    row.value = last.value
    row.score = top
    row.baseline = (topBaseline ?? detector.baseline()) as Record<string, unknown> | null
    if (top >= ANOMALY_THRESHOLD) {
      row.anomalous_since ??= last.recorded_at
      row.last_anomalous_at = last.recorded_at
      anomalous.push(`${row.service} ${row.metric}`)
    } else {
      row.anomalous_since = null
    }
    changed.add(key)
  }

  const forecasts: string[] = []
  // The longest-waiting first, and a bounded number a run: an edge function has 2 s of CPU.
  const due = [...series].filter(([, row]) =>
    FORECAST_TARGETS[row.metric] !== undefined &&
    (!row.forecast_at ||
      now.getTime() - row.forecast_at.getTime() >= FORECAST_EVERY_SECONDS * 1000)
  ).sort(([, a], [, b]) => (a.forecast_at?.getTime() ?? 0) - (b.forecast_at?.getTime() ?? 0))
    .slice(0, FORECASTS_PER_RUN)
  const histories = await forecastHistories(sql, due, now)
  for (const [key, row] of due) {
    const target = FORECAST_TARGETS[row.metric]!
    const words = METRIC_WORDS[row.metric]
    const f = forecastCrossing(histories.get(key) ?? [], {
      limit: target.limit,
      horizonSeconds: target.horizonSeconds,
      now,
      label: words.label,
      unit: words.unit.trim(),
    })
    row.forecast = toJson(f)
    row.forecast_at = now
    if (f.status === 'crosses') forecasts.push(`${row.service}: ${f.text}`)
    changed.add(key)
  }

  const services = settle([...series.values()], now)
  const [{ recorded }] = await sql<{ recorded: AnalysisRun['recorded'] }[]>`
    select vigil.record_analysis(${
    sql.json({
      series: [...changed].map((key) => payloadOf(series.get(key)!)),
      services,
    } as unknown as postgres.JSONValue)
  }) as recorded`
  return {
    series: series.size,
    points: fresh.length,
    restarted,
    anomalous,
    forecasts,
    recorded,
    n_plus_one: await nPlusOne(sql),
    correlations: (await correlateOpen(sql)).map((c) => c.text),
    deployments_summarised: await summariseDeployments(sql),
  }
}

/** The deployment summaries now due (migration 004200): before against after, and a verdict. */
async function summariseDeployments(sql: postgres.Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select vigil.summarize_deployments() as n`
  return row.n
}

/**
 * Links the open incidents that started together on connected services (correlate.ts): each one of
 * a story gets detail.correlation {root, related, hypothesis, text}; one no longer part of any
 * loses it. Folded incidents are their upstream's story already.
 */
export async function correlateOpen(sql: postgres.Sql): Promise<Correlation[]> {
  const rows = await sql<
    (Omit<OpenIncident, 'signals'> & {
      service_kind: string
      metrics: string[]
      findings: string[]
      error: string | null
      correlation: unknown
    })[]
  >`
    select i.id::int, s.name as service, s.kind::text as service_kind, i.kind, i.severity::text,
           i.title, i.opened_at, s.status::text as status, i.detail -> 'correlation' as correlation,
           coalesce((select jsonb_agg(e ->> 'metric')
                       from jsonb_array_elements(coalesce(i.detail -> 'series', i.detail -> 'forecasts', '[]')) e
                      where e ? 'metric'), '[]') as metrics,
           coalesce((select jsonb_agg(f ->> 'kind')
                       from jsonb_array_elements(coalesce(c.measurements -> 'findings', '[]')) f), '[]') as findings,
           c.error
      from vigil.incidents i
      join vigil.services s on s.id = i.service_id
      left join lateral (select measurements, error from vigil.checks
                          where service_id = s.id order by checked_at desc limit 1) c on true
     where i.status = 'open' and i.folded_into is null`
  const dependsOn = new Map(
    (await sql<{ name: string; depends_on: string[] }[]>`
      select name, to_jsonb(depends_on) as depends_on from vigil.services`)
      .map((r) => [r.name, r.depends_on ?? []]),
  )
  const incidents: OpenIncident[] = rows.map((r) => ({
    id: r.id,
    service: r.service,
    kind: r.kind,
    severity: r.severity,
    title: r.title,
    opened_at: r.opened_at,
    status: r.status,
    signals: [
      ...r.metrics,
      ...r.findings,
      r.service_kind,
      ...(r.error?.startsWith('slow') ? ['slow'] : []),
      ...(r.kind === 'slow_queries' ? ['slow_queries'] : []),
    ],
  }))
  const found = correlate(incidents, dependsOn)
  const story = new Map<number, Record<string, unknown>>()
  for (const c of found) {
    for (const id of [c.root, ...c.related]) {
      story.set(id, { root: c.root, related: c.related, hypothesis: c.hypothesis, text: c.text })
    }
  }
  const changes = rows
    .map((r) => ({ id: r.id, correlation: story.get(r.id) ?? null, was: r.correlation ?? null }))
    .filter((c) => canonical(c.correlation) !== canonical(c.was))
    .map(({ id, correlation }) => ({ id, correlation }))
  if (changes.length > 0) {
    await sql`
      update vigil.incidents i
         set detail = case when c.value = 'null'::jsonb then i.detail - 'correlation'
                           else i.detail || jsonb_build_object('correlation', c.value) end
        from (select (e ->> 'id')::bigint as id, e -> 'correlation' as value
                from jsonb_array_elements(${
      sql.json(changes as unknown as postgres.JSONValue)
    }) e) c
       where i.id = c.id`
  }
  return found
}

/**
 * Samples pg_stat_statements (vigil.sample_statements), looks for N+1 patterns in the last
 * N_PLUS_ONE_MINUTES, and keeps the open n_plus_one recommendations of the project's own database
 * service in step with what is found.
 */
async function nPlusOne(sql: postgres.Sql): Promise<AnalysisRun['n_plus_one']> {
  try {
    await sql`select vigil.sample_statements()`
  } catch (error) {
    if ((error as { code?: string }).code === '55000') {
      return { not_checked: (error as Error).message }
    }
    throw error
  }
  const [own] = await sql<{ id: string }[]>`
    select id::text from vigil.services
     where kind = 'postgres' and enabled and not (config ? 'connection_secret')
     order by created_at limit 1`
  if (!own) return { not_checked: 'no postgres service watches the project database' }
  const samples = await sql<StatementSample[]>`
    select taken_at, queryid::text, query, calls::float8 as calls, total_exec_ms
      from vigil.statement_samples
     where taken_at > now() - make_interval(mins => ${N_PLUS_ONE_MINUTES})
     order by taken_at`
  const found = findNPlusOne(samples)
  await sql`select vigil.sync_recommendations('n_plus_one', ${
    sql.json(found.map((f) => ({
      service_id: own.id,
      key: `${f.parent.queryid}:${f.child.queryid}`,
      title: f.text.slice(0, 1000),
      detail: {
        suggestion: f.suggestion,
        ratio: Math.round(f.ratio * 10) / 10,
        periods: f.periods,
        parent: { queryid: f.parent.queryid, query: f.parent.query.slice(0, 1000) },
        child: {
          queryid: f.child.queryid,
          query: f.child.query.slice(0, 1000),
          mean_ms: Math.round(f.child.mean_ms * 1000) / 1000,
        },
      },
    })) as unknown as postgres.JSONValue)
  })`
  return found.map((f) => f.text)
}

/**
 * The history each due series' forecast is fitted to, averaged into at most FORECAST_POINTS
 * buckets over its target's lookback: one query for them all, not one a series.
 */
async function forecastHistories(
  sql: postgres.Sql,
  due: [string, SeriesRow][],
  now: Date,
): Promise<Map<string, { timestamp: Date; value: number }[]>> {
  const out = new Map<string, { timestamp: Date; value: number }[]>()
  if (due.length === 0) return out
  const wanted = due.map(([key, row]) => {
    const lookback = FORECAST_TARGETS[row.metric]!.lookbackSeconds
    return {
      key,
      service_id: row.service_id,
      metric: row.metric,
      labels: row.labels_key,
      lookback,
      bucket: Math.max(30, Math.ceil(lookback / FORECAST_POINTS)),
    }
  })
  const rows = await sql<{ key: string; at: Date; value: number }[]>`
    select k.key, to_timestamp(floor(extract(epoch from m.recorded_at) / k.bucket) * k.bucket) as at,
           avg(m.value) as value
      from jsonb_to_recordset(${sql.json(wanted as unknown as postgres.JSONValue)})
             as k(key text, service_id uuid, metric text, labels text, lookback float8, bucket float8)
      join vigil.metrics m
        on m.service_id = k.service_id and m.name = k.metric::vigil.metric_name
       and m.labels = k.labels::jsonb
       and m.recorded_at > ${now}::timestamptz - make_interval(secs => k.lookback)
       and m.recorded_at <= ${now}
     group by k.key, 2 order by k.key, 2`
  for (const r of rows) {
    const list = out.get(r.key) ?? []
    list.push({ timestamp: r.at, value: Number(r.value) })
    out.set(r.key, list)
  }
  return out
}

/** A forecast as stored: its Dates as ISO strings, nothing else changed. */
function toJson(f: Forecast): Record<string, unknown> {
  return JSON.parse(JSON.stringify(f))
}

function payloadOf(r: SeriesRow) {
  return {
    service_id: r.service_id,
    metric: r.metric,
    labels: r.labels,
    detector: r.detector,
    consumed_until: r.consumed_until?.toISOString() ?? null,
    points: r.points,
    value: r.value,
    score: r.score,
    baseline: r.baseline,
    anomalous_since: r.anomalous_since?.toISOString() ?? null,
    last_anomalous_at: r.last_anomalous_at?.toISOString() ?? null,
    forecast: r.forecast,
    forecast_at: r.forecast_at?.toISOString() ?? null,
  }
}

interface ServiceVerdict {
  service_id: string
  anomaly?: { title: string; detail: Record<string, unknown> } | null
  forecast?: { title: string; detail: Record<string, unknown> } | null
}

/**
 * Each service's anomaly and forecast incidents, as they should be now: open (with the numbers of
 * now) while a series is anomalous or crosses its limit in time; resolved once calm for
 * CALM_MINUTES (anomaly) or when no forecast crosses; left alone in between.
 */
export function settle(rows: SeriesRow[], now: Date): ServiceVerdict[] {
  const byService = new Map<string, SeriesRow[]>()
  for (const r of rows) byService.set(r.service_id, [...(byService.get(r.service_id) ?? []), r])
  const out: ServiceVerdict[] = []
  for (const [service_id, list] of byService) {
    const verdict: ServiceVerdict = { service_id }
    const hot = list.filter((r) => r.anomalous_since !== null)
      .sort((a, b) => (b.score ?? 0) - (a.score ?? 0))
    const calm = list.every((r) =>
      !r.last_anomalous_at || now.getTime() - r.last_anomalous_at.getTime() > CALM_MINUTES * 60_000
    )
    if (hot.length > 0) verdict.anomaly = anomalyOf(hot)
    else if (calm) verdict.anomaly = null
    const crossing = list
      .filter((r) => r.forecast?.status === 'crosses')
      .sort((a, b) => Number(a.forecast!.etaSeconds) - Number(b.forecast!.etaSeconds))
    verdict.forecast = crossing.length
      ? {
        title: `${crossing[0].service}: ${crossing[0].forecast!.text}${
          crossing.length > 1 ? ` (and ${crossing.length - 1} more)` : ''
        }`,
        detail: {
          forecasts: crossing.map((r) => ({
            metric: r.metric,
            labels: r.labels,
            text: r.forecast!.text,
            eta_seconds: r.forecast!.etaSeconds,
            eta_low_seconds: r.forecast!.etaLowSeconds,
            eta_high_seconds: r.forecast!.etaHighSeconds,
            at: r.forecast!.at,
            limit: r.forecast!.limit,
            current: r.forecast!.current,
          })),
        },
      }
      : null
    out.push(verdict)
  }
  return out
}

function anomalyOf(hot: SeriesRow[]): { title: string; detail: Record<string, unknown> } {
  const top = hot[0]
  const words = METRIC_WORDS[top.metric]
  const b = top.baseline as (Baseline | null)
  const value = b?.value ?? top.value ?? 0
  const then = b?.hourAgo != null
    ? `was ${shown(b.hourAgo)}${words.unit} an hour ago`
    : b
    ? `expected ~${shown(b.expected)}${words.unit}`
    : 'unlike its history'
  const ratio = b?.ratio != null ? `, ×${shown(b.ratio)} the baseline` : ''
  return {
    title: `${top.service}: ${words.label} ${shown(value)}${words.unit}, ${then}${ratio}${
      hot.length > 1 ? ` (and ${hot.length - 1} more)` : ''
    }`,
    detail: {
      comparison_to_baseline: b?.ratio ?? null,
      series: hot.map((r) => {
        const rb = r.baseline as (Baseline | null)
        return {
          metric: r.metric,
          labels: r.labels,
          value: rb?.value ?? r.value,
          expected: rb?.expected ?? null,
          low: rb?.low ?? null,
          high: rb?.high ?? null,
          hour_ago: rb?.hourAgo ?? null,
          comparison_to_baseline: rb?.ratio ?? null,
          score: r.score,
          since: r.anomalous_since,
        }
      }),
    },
  }
}

/** JSON with its keys in one order, as jsonb keeps them in another. */
function canonical(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v) =>
      v && typeof v === 'object' && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
        : v,
  )
}
