// How Vigil speaks of each metric, in incident titles, reports and the dashboard: its words, its
// unit, and a value as people read it. Runtime-neutral: the functions and the dashboard import it.
import type { MetricName } from './kinds.ts'

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

/** A value as people read it: 1,250 · 0.43 · 71.2. */
export function shown(value: number): string {
  const abs = Math.abs(value)
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2
  return value.toLocaleString('en-US', { maximumFractionDigits: digits })
}
