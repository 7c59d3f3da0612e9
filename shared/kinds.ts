// The lists of kinds Vigil knows, one `as const` tuple each. They feed the zod enums and types
// here and mirror the SQL enums in supabase/migrations; tests/schema/kinds_test.ts proves they agree.
import { z } from 'zod'

export const ENVIRONMENTS = ['dev', 'qa', 'prod'] as const
export const SERVICE_KINDS = [
  'postgres',
  'http',
  'supabase_auth',
  'supabase_storage',
  'supabase_realtime',
  'supabase_functions',
  'supabase_management',
  'prometheus',
  'heartbeat',
  'vercel',
  'logs',
  'netlify',
  'github_actions',
  'sentry',
  'traffic',
] as const
export const CHECK_STATUSES = ['healthy', 'degraded', 'down'] as const
export const SERVICE_STATUSES = ['unknown', 'healthy', 'degraded', 'down'] as const
export const SEVERITIES = ['info', 'warning', 'critical'] as const
export const INCIDENT_STATUSES = ['open', 'resolved'] as const
export const HEAL_PHASES = ['intent', 'result'] as const
export const HEAL_OUTCOMES = [
  'pending',
  'succeeded',
  'failed',
  /** Did not act: the plan was refused (a human must resolve it) or could not be made. */
  'refused',
  'undone',
  'skipped',
  'dry_run',
  'awaiting_approval',
] as const
export const ALERT_CHANNELS = ['sms', 'email', 'slack', 'discord', 'pagerduty', 'webhook'] as const
/** The channels a report may go by (vigil.report_settings.channels): a report is not a page. */
export const REPORT_CHANNELS = ['email', 'slack', 'discord', 'webhook'] as const
export const ALERT_STATUSES = [
  'pending',
  'sending',
  'sent',
  'failed',
  'dead',
  'suppressed',
] as const

/** What probes measure over time (vigil.metrics.name). The spec's names first. */
export const METRIC_NAMES = [
  'active_connections',
  'query_duration_p95',
  'deadlock_count',
  'cache_hit_ratio',
  'http_request_duration',
  'error_rate',
  'cpu_usage_percent',
  'memory_usage_percent',
  'disk_usage_percent',
  'throughput',
  'connection_usage_percent',
  'blocked_sessions',
  'longest_wait_seconds',
  'database_size_bytes',
  'dead_tuple_ratio',
  'xid_age',
  'replication_lag_seconds',
  'tls_days_left',
  'login_success_rate',
  'network_receive_bytes_per_second',
  'network_transmit_bytes_per_second',
] as const

/** How a strategy may act in an environment (vigil.heal_policies.mode). */
export const HEAL_MODES = ['auto', 'approval', 'suggest', 'off'] as const
/** Who hears what (vigil.contacts.role): on_call at the third rung, senior at the fourth, team every page and notice. */
export const CONTACT_ROLES = ['on_call', 'senior', 'team'] as const

/** Problems a heal strategy can address, each diagnosed from a service's checks. */
export const PROBLEM_KINDS = [
  'lock_contention',
  'connection_exhaustion',
  'runaway_query',
  'slow_query',
  'dead_tuples',
  'stale_statistics',
  'service_unhealthy',
  'stale_frontend',
  'failed_deploy',
  'disk_low',
  'certificate_expiring',
  'auth_failures',
] as const

/**
 * Incidents that report something for people to act on in their own time and that no heal
 * addresses: a capacity forecast, a lint of the security audit (lint_<name>). Auto-heal leaves
 * them alone — it must not act on the service's other findings in their name — and they are
 * alerted at their severity like any incident. backup_failed (a dump or drill that failed, a
 * project without a recent backup) is one too: no heal can make a backup good, so its task pages
 * on-call itself when it opens it (maintenance/backups.ts).
 */
export const ADVISORY_INCIDENT_KINDS = ['capacity_forecast', 'backup_failed'] as const
export const ADVISORY_INCIDENT_PREFIX = 'lint_'

export function isAdvisoryIncident(kind: string): boolean {
  return (ADVISORY_INCIDENT_KINDS as readonly string[]).includes(kind) ||
    kind.startsWith(ADVISORY_INCIDENT_PREFIX)
}

/** Problems no strategy touches: they go straight to humans. */
export const HUMAN_ONLY_PROBLEMS = [
  'security_incident',
  'data_corruption',
  'system_outage',
] as const

/** SQL enum type (in schema vigil) → the tuple that mirrors it. */
export const SQL_ENUMS = {
  environment: ENVIRONMENTS,
  service_kind: SERVICE_KINDS,
  check_status: CHECK_STATUSES,
  service_status: SERVICE_STATUSES,
  severity: SEVERITIES,
  incident_status: INCIDENT_STATUSES,
  heal_phase: HEAL_PHASES,
  heal_outcome: HEAL_OUTCOMES,
  alert_channel: ALERT_CHANNELS,
  alert_status: ALERT_STATUSES,
  metric_name: METRIC_NAMES,
  heal_mode: HEAL_MODES,
  contact_role: CONTACT_ROLES,
} as const

export const Environment = z.enum(ENVIRONMENTS)
export type Environment = z.infer<typeof Environment>
export const ServiceKind = z.enum(SERVICE_KINDS)
export type ServiceKind = z.infer<typeof ServiceKind>
export const CheckStatus = z.enum(CHECK_STATUSES)
export type CheckStatus = z.infer<typeof CheckStatus>
export const ServiceStatus = z.enum(SERVICE_STATUSES)
export type ServiceStatus = z.infer<typeof ServiceStatus>
export const Severity = z.enum(SEVERITIES)
export type Severity = z.infer<typeof Severity>
export const AlertChannel = z.enum(ALERT_CHANNELS)
export type AlertChannel = z.infer<typeof AlertChannel>
export const MetricName = z.enum(METRIC_NAMES)
export type MetricName = z.infer<typeof MetricName>
export const ProblemKind = z.enum(PROBLEM_KINDS)
export type ProblemKind = z.infer<typeof ProblemKind>
