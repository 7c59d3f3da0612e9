// How the analysis speaks of each metric (its words and unit) and which metrics it forecasts toward
// a limit, over how much history and how far ahead.
import type { MetricName } from '../../../../shared/kinds.ts'

export interface MetricWords {
  label: string
  unit: string
}

/** Every metric name has words: a new one fails to compile until it is given some. */
export const METRIC_WORDS: Record<MetricName, MetricWords> = {
  active_connections: { label: 'connections', unit: '' },
  query_duration_p95: { label: 'query p95', unit: ' ms' },
  deadlock_count: { label: 'deadlocks', unit: '' },
  cache_hit_ratio: { label: 'cache hit ratio', unit: ' %' },
  http_request_duration: { label: 'response time', unit: ' ms' },
  error_rate: { label: 'error rate', unit: ' %' },
  cpu_usage_percent: { label: 'CPU', unit: ' %' },
  memory_usage_percent: { label: 'memory', unit: ' %' },
  disk_usage_percent: { label: 'disk', unit: ' %' },
  throughput: { label: 'throughput', unit: ' req/s' },
  connection_usage_percent: { label: 'connection slots used', unit: ' %' },
  blocked_sessions: { label: 'blocked sessions', unit: '' },
  longest_wait_seconds: { label: 'longest lock wait', unit: ' s' },
  database_size_bytes: { label: 'database size', unit: ' B' },
  dead_tuple_ratio: { label: 'dead tuple ratio', unit: '' },
  xid_age: { label: 'XID age', unit: '' },
  replication_lag_seconds: { label: 'replication lag', unit: ' s' },
  tls_days_left: { label: 'days to certificate expiry', unit: '' },
  login_success_rate: { label: 'login success rate', unit: ' %' },
  network_receive_bytes_per_second: { label: 'network in', unit: ' B/s' },
  network_transmit_bytes_per_second: { label: 'network out', unit: ' B/s' },
}

export interface ForecastTarget {
  /** The line it must not reach. */
  limit: number
  /** How much history the trend is fitted to. */
  lookbackSeconds: number
  /** Only a crossing within this is a forecast incident. */
  horizonSeconds: number
}

const HOUR = 3600
const DAY = 24 * HOUR

/**
 * The metrics that run out: memory toward the OOM killer, disk toward full, connection slots toward
 * max_connections, XID age toward wraparound (2^31; Postgres refuses writes a few million before).
 * Database size has no limit Vigil knows (the plan's disk is in disk_usage_percent), so it is not
 * forecast.
 */
export const FORECAST_TARGETS: Partial<Record<MetricName, ForecastTarget>> = {
  memory_usage_percent: { limit: 100, lookbackSeconds: 6 * HOUR, horizonSeconds: 24 * HOUR },
  disk_usage_percent: { limit: 100, lookbackSeconds: 7 * DAY, horizonSeconds: 14 * DAY },
  connection_usage_percent: { limit: 100, lookbackSeconds: 2 * HOUR, horizonSeconds: 6 * HOUR },
  xid_age: { limit: 2 ** 31, lookbackSeconds: 7 * DAY, horizonSeconds: 30 * DAY },
}

/** A value as people read it: 1,250 · 0.43 · 71.2. */
export function shown(value: number): string {
  const abs = Math.abs(value)
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2
  return value.toLocaleString('en-US', { maximumFractionDigits: digits })
}
