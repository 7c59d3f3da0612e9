// Which metrics the analysis forecasts toward a limit, over how much history and how far ahead;
// and how it speaks of each metric (shared/metric-words.ts, which the dashboard reads too).
import type { MetricName } from '../../../../shared/kinds.ts'
export { METRIC_WORDS, type MetricWords, shown } from '../../../../shared/metric-words.ts'

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
