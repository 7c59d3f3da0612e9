// capacity_planning (monthly, cheap enough on demand): for each watched Postgres, database size,
// connections and transaction-ID age over the last 30 days (vigil.metrics, as the postgres probe
// records them) projected to the date each reaches its limit. A projection within the alert
// horizon opens or updates the service's capacity_forecast incident; none resolves it.
import type postgres from 'postgres'
import { z } from 'zod'
import { settingsFrom, type Values, wholeNumber } from '../settings.ts'
import type { MaintenanceTask, TaskResult } from '../types.ts'

/** Wraparound: Postgres stops assigning transaction IDs shortly before an age of 2^31. */
export const XID_WRAPAROUND = 2 ** 31
export const WINDOW_DAYS = 30
/** Below this many hourly means a trend says nothing: the metric is "not enough history yet". */
export const MIN_HOURLY_POINTS = 24
export const HORIZON_DAYS = 365
/** A trend that would move less than this share of the limit in a year is called flat. */
const FLAT_SHARE_PER_YEAR = 0.01

const CAPACITY_SETTINGS = {
  /** The disk the database lives on, in bytes; unset: no disk limit is known, none is assumed. */
  VIGIL_DISK_LIMIT_BYTES: [wholeNumber(1), undefined],
  VIGIL_CAPACITY_ALERT_DAYS: [
    [
      z.coerce.number().positive().max(HORIZON_DAYS),
      `a number of days above 0, at most ${HORIZON_DAYS}`,
    ],
    14,
  ],
} as const
export type CapacityEnv = Values<typeof CAPACITY_SETTINGS>

/** The settings, all errors reported together; blank counts as unset. */
export function capacityEnv(env: (name: string) => string | undefined): CapacityEnv {
  return settingsFrom(env, CAPACITY_SETTINGS)
}

const METRICS = ['database_size_bytes', 'xid_age', 'active_connections'] as const
type MetricName = (typeof METRICS)[number]

/** What each metric runs out of, in words for titles and summaries. */
const WORDS: Record<MetricName, { label: string; reaches: string }> = {
  database_size_bytes: { label: 'database size', reaches: 'disk full' },
  active_connections: { label: 'connections', reaches: 'connections exhausted' },
  xid_age: { label: 'XID age', reaches: 'XID wraparound' },
}

export interface Trend {
  points: number
  span_days: number
  slope_per_day: number
  /** Of the fitted line against the hourly means; null when they do not vary at all. */
  r2: number | null
}

/**
 * Theil–Sen: the median of the slopes between every pair of hourly means. A bulk load, a
 * VACUUM FULL or a burst of connections moves a least-squares line a lot and this median little.
 * Up to 720 points (30 days × 24 h) make 258,840 pairs: a few milliseconds.
 */
export function theilSen(xs: number[], ys: number[]): { slope: number; intercept: number } {
  const n = xs.length
  const slopes = new Float64Array((n * (n - 1)) / 2)
  let k = 0
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (xs[j] !== xs[i]) slopes[k++] = (ys[j] - ys[i]) / (xs[j] - xs[i])
    }
  }
  const slope = median(slopes.subarray(0, k))
  const intercept = median(Float64Array.from(ys, (y, i) => y - slope * xs[i]))
  return { slope, intercept }
}

function median(values: Float64Array): number {
  if (values.length === 0) return 0
  const sorted = values.slice().sort()
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** The trend of hourly means (x in days); null below MIN_HOURLY_POINTS. */
export function fitTrend(xs: number[], ys: number[]): Trend | null {
  if (xs.length < MIN_HOURLY_POINTS) return null
  const { slope, intercept } = theilSen(xs, ys)
  const mean = ys.reduce((a, b) => a + b, 0) / ys.length
  let total = 0
  let residual = 0
  ys.forEach((y, i) => {
    total += (y - mean) ** 2
    residual += (y - (intercept + slope * xs[i])) ** 2
  })
  return {
    points: xs.length,
    span_days: round(Math.max(...xs) - Math.min(...xs), 1),
    slope_per_day: slope,
    r2: total > 0 ? round(Math.max(0, 1 - residual / total), 3) : null,
  }
}

export interface Forecast {
  metric: MetricName
  current: number | null
  limit: number | null
  /** What the limit is: "VIGIL_DISK_LIMIT_BYTES", "max_connections", "wraparound (2^31)". */
  limit_source: string
  slope_per_day: number | null
  /** When the trend reaches the limit, within HORIZON_DAYS; null otherwise. */
  days_left: number | null
  reaches_on: string | null
  outlook:
    | 'not enough history yet'
    | 'no limit known'
    | 'at its limit now'
    | 'reaches its limit'
    | 'not within 365 days'
    | 'flat or falling'
  confidence: string
  /** Sentences for people beyond the projection (when freezing vacuums will start). */
  notes: string[]
  /** What is wrong already, whatever the trend (the XID age past autovacuum_freeze_max_age). */
  warnings: string[]
}

/** The projection of one metric from its trend, its latest value and its limit. */
export function project(
  metric: MetricName,
  trend: Trend | null,
  points: number,
  current: number | null,
  limit: number | null,
  limitSource: string,
  nowMs: number,
): Forecast {
  const base = {
    metric,
    current,
    limit,
    limit_source: limitSource,
    slope_per_day: trend ? round(trend.slope_per_day, 3) : null,
    days_left: null,
    reaches_on: null,
    notes: [],
    warnings: [],
  }
  if (!trend || current === null) {
    return {
      ...base,
      outlook: 'not enough history yet',
      confidence: `${points} hourly point(s) of the ${MIN_HOURLY_POINTS} a trend needs`,
    }
  }
  const confidence = `${trend.points} hourly points over ${trend.span_days} days, r² ${
    trend.r2 ?? 'n/a (constant)'
  }${trend.r2 !== null && trend.r2 < 0.5 ? ': a weak trend, read the date loosely' : ''}`
  const slope = trend.slope_per_day
  if (limit === null) return { ...base, outlook: 'no limit known', confidence }
  if (current >= limit) {
    return {
      ...base,
      days_left: 0,
      reaches_on: isoDate(nowMs),
      outlook: 'at its limit now',
      confidence,
    }
  }
  if (slope * HORIZON_DAYS < FLAT_SHARE_PER_YEAR * limit) {
    return { ...base, outlook: 'flat or falling', confidence }
  }
  const days = (limit - current) / slope
  if (days > HORIZON_DAYS) return { ...base, outlook: 'not within 365 days', confidence }
  return {
    ...base,
    days_left: round(days, 1),
    reaches_on: isoDate(nowMs + days * 86_400_000),
    outlook: 'reaches its limit',
    confidence,
  }
}

interface Service {
  id: string
  name: string
  remote: boolean
}

interface HourlyRow {
  name: MetricName
  x: number
  value: number
}

interface ServiceReport {
  service: string
  forecasts: Forecast[]
  /** The projections within the alert horizon, soonest first. */
  alerting: Forecast[]
}

export const capacityPlanning: MaintenanceTask = {
  name: 'capacity_planning',
  cadence: 'monthly',
  description:
    'Projects database size, connections and transaction-ID age from the last 30 days to the date each reaches its limit; a date within VIGIL_CAPACITY_ALERT_DAYS (14) opens a capacity_forecast incident.',
  async run({ sql, env }): Promise<TaskResult> {
    const settings = capacityEnv(env)
    const services = await sql<Service[]>`
      select id, name, config ? 'connection_secret' as remote from vigil.services
       where kind = 'postgres' and enabled order by name`
    if (services.length === 0) {
      return {
        status: 'not_applicable',
        summary: 'no enabled postgres service: there is nothing to project',
      }
    }
    // This database's own settings stand in where a service's checks do not say.
    const [here] = await sql<{ now_ms: number; max_connections: number; freeze_max_age: number }[]>`
      select extract(epoch from now())::float8 * 1000 as now_ms,
             current_setting('max_connections')::int as max_connections,
             current_setting('autovacuum_freeze_max_age')::float8 as freeze_max_age`
    const reports: ServiceReport[] = []
    const actions: unknown[] = []
    for (const service of services) {
      const report = await forecastService(sql, service, settings, here)
      reports.push(report)
      const action = await track(sql, service, report, settings.VIGIL_CAPACITY_ALERT_DAYS)
      if (action) actions.push(action)
    }
    return {
      status: 'succeeded',
      summary: reports.map(describeService).join('. '),
      findings: reports.flatMap((r) => r.forecasts.map((f) => ({ service: r.service, ...f }))),
      actions,
    }
  },
}

async function forecastService(
  sql: postgres.Sql,
  service: Service,
  settings: CapacityEnv,
  here: { now_ms: number; max_connections: number; freeze_max_age: number },
): Promise<ServiceReport> {
  // Hourly means smooth the 30 s cycle's noise and bound the fit at 720 points a metric.
  const hourly = await sql<HourlyRow[]>`
    select name::text as name,
           (extract(epoch from date_trunc('hour', recorded_at)) * 1000 - ${here.now_ms}::float8)
             / 86400000 as x,
           avg(value)::float8 as value
      from vigil.metrics
     where service_id = ${service.id} and name::text in ${sql([...METRICS])}
       and recorded_at > now() - make_interval(days => ${WINDOW_DAYS})
     group by 1, 2 order by 1, 2`
  const latest = await sql<{ name: MetricName; value: number }[]>`
    select distinct on (name) name::text as name, value from vigil.metrics
     where service_id = ${service.id} and name::text in ${sql([...METRICS])}
       and recorded_at > now() - make_interval(days => ${WINDOW_DAYS})
     order by name, recorded_at desc`
  // The watched database's max_connections as its last check read it.
  const [checked] = await sql<{ max_connections: number | null }[]>`
    select (measurements #>> '{connections,max}')::int as max_connections from vigil.checks
     where service_id = ${service.id} and measurements ? 'connections'
     order by checked_at desc limit 1`
  const maxConnections = checked?.max_connections ?? (service.remote ? null : here.max_connections)

  const forecasts = METRICS.map((metric) => {
    const rows = hourly.filter((r) => r.name === metric)
    const trend = fitTrend(rows.map((r) => r.x), rows.map((r) => r.value))
    const current = latest.find((r) => r.name === metric)?.value ?? null
    const [limit, source] = metric === 'database_size_bytes'
      ? [settings.VIGIL_DISK_LIMIT_BYTES ?? null, 'VIGIL_DISK_LIMIT_BYTES']
      : metric === 'active_connections'
      ? [maxConnections, 'max_connections']
      : [XID_WRAPAROUND, 'wraparound (2^31)']
    const forecast = project(metric, trend, rows.length, current, limit, source, here.now_ms)
    if (metric === 'xid_age' && !service.remote && current !== null) {
      // Past autovacuum_freeze_max_age an anti-wraparound vacuum should already be running.
      if (current >= here.freeze_max_age) {
        forecast.warnings.push(
          `past autovacuum_freeze_max_age (${compact(here.freeze_max_age)}): ` +
            'freezing vacuums are not keeping up; check for long transactions and stuck autovacuum',
        )
      } else if (trend && trend.slope_per_day > 0) {
        const days = (here.freeze_max_age - current) / trend.slope_per_day
        if (days <= HORIZON_DAYS) {
          forecast.notes.push(
            `reaches autovacuum_freeze_max_age (${compact(here.freeze_max_age)}) in about ${
              Math.round(days)
            } days, when anti-wraparound vacuums start`,
          )
        }
      }
    }
    return forecast
  })
  return { service: service.name, forecasts, alerting: [] }
}

/**
 * Opens or updates the service's capacity_forecast incident while a projection falls within the
 * horizon, and resolves it once none does. A service with no metric judged is left as it was.
 */
async function track(
  sql: postgres.Sql,
  service: Service,
  report: ServiceReport,
  alertDays: number,
): Promise<Record<string, unknown> | null> {
  report.alerting = report.forecasts
    .filter((f) => f.days_left !== null && f.days_left <= alertDays)
    .sort((a, b) => a.days_left! - b.days_left!)
  const judged = report.forecasts.some((f) => f.outlook !== 'not enough history yet')
  if (!judged) return null
  if (report.alerting.length === 0) {
    const resolved = await sql<{ id: number }[]>`
      update vigil.incidents
         set status = 'resolved', resolved_at = now(),
             detail = detail || jsonb_build_object('resolved_by', 'capacity_planning')
       where service_id = ${service.id} and kind = 'capacity_forecast' and status = 'open'
      returning id::int`
    return resolved.length
      ? { service: service.name, incident_id: resolved[0].id, action: 'resolved' }
      : null
  }
  const title = `${service.name}: ${report.alerting.map(reachesIn).join('; ')}`
  const detail = {
    threshold_days: alertDays,
    forecasts: report.alerting.map((f) => ({
      metric: f.metric,
      current: f.current,
      limit: f.limit,
      slope_per_day: f.slope_per_day,
      days_left: f.days_left,
      reaches_on: f.reaches_on,
    })),
  }
  // One open incident per service and kind (incidents_one_open_per_kind): the row is locked
  // before it is changed, so two runs cannot both insert.
  return await sql.begin(async (tx) => {
    const [open] = await tx<{ id: number; title: string }[]>`
      select id::int, title from vigil.incidents
       where service_id = ${service.id} and kind = 'capacity_forecast' and status = 'open'
       for update`
    if (!open) {
      const [{ id }] = await tx<{ id: number }[]>`
        insert into vigil.incidents (service_id, kind, severity, title, detail)
        values (${service.id}, 'capacity_forecast', 'warning', ${title},
                ${tx.json(detail as postgres.JSONValue)})
        returning id::int`
      return { service: service.name, incident_id: id, action: 'opened', title }
    }
    await tx`
      update vigil.incidents
         set title = ${title}, detail = detail || ${tx.json(detail as postgres.JSONValue)}
       where id = ${open.id}`
    return { service: service.name, incident_id: open.id, action: 'updated', title }
  }) as Record<string, unknown>
}

function reachesIn(f: Forecast): string {
  const { reaches } = WORDS[f.metric]
  if (f.outlook === 'at its limit now') return `${reaches} now`
  return `${reaches} in ${about(f.days_left!)}`
}

function about(days: number): string {
  if (days < 1) return 'less than a day'
  const n = Math.round(days)
  return `about ${n} day${n === 1 ? '' : 's'}`
}

/** "db: 4.2 GB, +120 MB/day, disk full in about 6 days (2026-12-08); XID age 180M, …". */
export function describeService(r: ServiceReport): string {
  if (r.forecasts.every((f) => f.outlook === 'not enough history yet')) {
    return `${r.service}: not enough history yet`
  }
  return `${r.service}: ${r.forecasts.map(describeForecast).join('; ')}`
}

function describeForecast(f: Forecast): string {
  const { label } = WORDS[f.metric]
  if (f.outlook === 'not enough history yet') return `${label}: not enough history yet`
  const bytes = f.metric === 'database_size_bytes'
  const value = bytes ? formatBytes(f.current!) : `${label} ${compact(f.current!)}`
  const slope = f.slope_per_day!
  const perDay = bytes
    ? `${slope < 0 ? '-' : '+'}${formatBytes(Math.abs(slope))}/day`
    : `${slope < 0 ? '' : '+'}${compact(slope)}/day`
  const outlook = f.outlook === 'reaches its limit'
    ? `${reachesIn(f)} (${f.reaches_on})`
    : f.outlook === 'at its limit now'
    ? `${WORDS[f.metric].reaches} now`
    : f.outlook === 'no limit known'
    ? 'no disk limit configured'
    : f.outlook === 'flat or falling'
    ? 'flat or falling'
    : `${WORDS[f.metric].reaches} not within ${HORIZON_DAYS} days`
  if (f.metric === 'active_connections' && f.outlook === 'flat or falling') {
    return `connections ${compact(f.current!)} of ${f.limit}, flat`
  }
  const warnings = f.warnings.length ? ` (${f.warnings.join('; ')})` : ''
  return `${value}, ${perDay}, ${outlook}${warnings}`
}

/** 4.2 GB, 120 MB, 512 kB (powers of 1024, as pg_size_pretty). */
export function formatBytes(n: number): string {
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB']
  let i = 0
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024
    i++
  }
  return i === 0
    ? `${Math.round(n)} bytes`
    : `${n >= 100 ? Math.round(n) : round(n, 1)} ${units[i]}`
}

/** 180M, 12k, 3.5 (for counts). */
function compact(n: number): string {
  const a = Math.abs(n)
  if (a >= 1e9) return `${round(n / 1e9, 1)}G`
  if (a >= 1e6) return `${round(n / 1e6, 1)}M`
  if (a >= 1e4) return `${round(n / 1e3, 0)}k`
  return `${round(n, 1)}`
}

function round(n: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}
