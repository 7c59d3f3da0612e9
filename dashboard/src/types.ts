// The shapes the SQL functions return (vigil.dashboard_snapshot, performance_trends,
// incident_timeline). Kept in one place so components and the realtime merge agree.

import type { ENVIRONMENTS, HEAL_OUTCOMES, SERVICE_STATUSES, SEVERITIES } from '../../shared/kinds'

// The kinds themselves are the project's one list (shared/kinds.ts, checked against SQL's enums).
export type Environment = (typeof ENVIRONMENTS)[number]
export type ServiceStatus = (typeof SERVICE_STATUSES)[number]
export type Severity = (typeof SEVERITIES)[number]
export type HealOutcome = (typeof HEAL_OUTCOMES)[number]
export type Band = 'green' | 'yellow' | 'red'

/** How environments are listed on screen: production first. */
export const ENVIRONMENT_ORDER: readonly Environment[] = ['prod', 'qa', 'dev']

export interface Settings {
  environment: Environment
  kill_switch: boolean
  dry_run: boolean
  slow_query_ms: number
  updated_at: string
}

export interface Score {
  score: number | null
  band: Band | null
  services: number
}

export interface Service {
  id: string
  name: string
  kind: string
  environment: Environment
  description: string | null
  status: ServiceStatus
  status_changed_at: string | null
  enabled: boolean
  heal_enabled: boolean
  depends_on: string[]
  folded_under: string | null
  latency_ms: number | null
  last_checked_at: string | null
  uptime_24h: number | null
  uptime_7d: number | null
  uptime_30d: number | null
}

export interface Incident {
  id: number
  service_id: string
  service: string
  kind: string
  severity: Severity
  status: 'open' | 'resolved'
  title: string
  opened_at: string
  resolved_at: string | null
  acknowledged_at: string | null
  acknowledged_by_name: string | null
  heal_attempts: number
  escalation_level: number
  folded_into: number | null
}

export interface Approval {
  action_id: string
  incident_id: number
  service: string
  strategy: string
  plan: { action?: string; reason?: string; [k: string]: unknown }
  requested_at: string
  expires_at: string
}

export interface HealLogEntry {
  id: number
  at: string
  incident_id: number
  service: string
  strategy: string
  outcome: HealOutcome
  attempt: number
  max_attempts: number
  detail: string | null
  reason: string | null
  dry_run: boolean
}

export interface Recommendation {
  id: number | string
  service: string | null
  kind: string
  title: string
  detail: Record<string, unknown> | null
  status: string
  created_at: string
}

export interface ControlChange {
  id: number
  changed_at: string
  target: string
  field: string
  old_value: unknown
  new_value: unknown
  actor_name: string | null
}

export interface Cycle {
  finished_at: string
  duration_ms: number
  services: number
  healthy: number
  degraded: number
  down: number
}

export interface MaintenanceRun {
  id?: number | string
  task?: string
  started_at?: string
  finished_at?: string | null
  status?: string
  summary?: string | null
  [k: string]: unknown
}

/** A report as vigil.report_card gives it: the numbers the dashboard shows, the text, the delivery. */
export interface ReportCard {
  id: number
  kind: 'daily' | 'weekly'
  /** The first local day covered (YYYY-MM-DD), and the day after the last. */
  date: string
  period_end: string
  time_zone: string
  generated_at: string
  summary: string
  text: string
  facts: {
    kpis?: {
      uptime?: { services?: { service: string; pct: number; met: boolean }[]; services_below_sla?: number }
      incidents?: { detected?: number; fixed_by_vigil?: number }
      kpis?: {
        auto_heal_success_pct?: number | null
        mttr_seconds?: number | null
        mttd_seconds?: number | null
        false_positive_pct?: number | null
      }
      action_items?: string[]
    }
    settings?: { sla_pct?: number }
  } | null
  delivery: { queued: number; sent: number; failed: number } | null
}

/** What a flagged series' last scored point was compared with (shared/anomaly's Baseline). */
export interface SeriesBaseline {
  value?: number
  expected?: number
  low?: number
  high?: number
  /** value / expected: the comparison to the baseline. */
  ratio?: number | null
  /** The value about an hour before, when there was data then. */
  hourAgo?: number | null
}

/**
 * A metric series the analysis flags now (vigil.metric_series, without the detector's state):
 * anomalous since a time, or forecast to cross its limit within the horizon, or both.
 */
export interface FlaggedSeries {
  service_id: string
  service: string
  /** A vigil.metric_name; a name newer than this page is shown as it is. */
  metric: string
  labels: Record<string, string>
  value: number | null
  /** How anomalous the last points were, 0..1 (0.5 and above is an anomaly). */
  score: number | null
  baseline: SeriesBaseline | null
  anomalous_since: string | null
  /** The forecast when it crosses the limit within the horizon; null otherwise. */
  forecast: { text: string; eta_seconds: number | null } | null
  forecast_at: string | null
}

export interface Snapshot {
  generated_at: string
  operator: boolean
  settings: Settings[]
  score: Score
  services: Service[]
  incidents: Incident[]
  approvals: Approval[]
  heal_log: HealLogEntry[]
  recommendations: Recommendation[]
  control_changes: ControlChange[]
  cycle: Cycle | null
  maintenance_runs: MaintenanceRun[] | null
  daily_report: ReportCard | null
  weekly_report?: ReportCard | null
  /** Absent from a server older than the Analysis panel. */
  analysis?: FlaggedSeries[]
}

export type TrendWindow = '1h' | '24h' | '7d'

export interface TrendPoint {
  t: string
  p50: number | null
  p95: number | null
  p99: number | null
  error_rate: number | null
  connections: number | null
  throughput: number | null
}

export interface Trends {
  window: TrendWindow
  bucket_seconds: number
  points: TrendPoint[]
}

export interface TimelineEntry {
  at: string
  kind: string
  summary: string
  detail?: Record<string, unknown> | null
}
