// From an incident and the service's latest check to the problems a strategy can address, worst
// first — or to a verdict that only a human may handle (suspected corruption, a security incident,
// a system-wide outage) — or to waiting: a service whose own dependency is down is healed after
// that root, never instead of it. Unrelated services being down never holds a heal back.
import type { ProblemKind, ServiceKind } from '../../../../shared/kinds.ts'
import type { Problem } from './types.ts'

export interface LatestCheck {
  status: 'healthy' | 'degraded' | 'down'
  error: string | null
  measurements: Record<string, unknown>
}

export type Diagnosis =
  | {
    humanOnly: false
    problems: Problem[]
    /** The service's dependencies that are down: the root is healed first, this one waits. */
    waitingFor?: string[]
  }
  | {
    humanOnly: true
    kind: 'security_incident' | 'data_corruption' | 'system_outage'
    reason: string
  }

/** Log lines that mean data may be damaged or the server is being killed: never healed blindly. */
const CRITICAL_PATTERNS: [RegExp, 'data_corruption' | 'system_outage', string][] = [
  [/PANIC:.*corrupt/i, 'data_corruption', 'a PANIC mentioning corruption'],
  [
    /invalid page in block|could not read block|checksum mismatch/i,
    'data_corruption',
    'a damaged data page',
  ],
  [/FATAL:.*database/i, 'data_corruption', 'a FATAL database error'],
  [/out of memory: kill(ed)? process|oom[- ]killer|oom-kill/i, 'system_outage', 'the OOM killer'],
]

const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0)
const obj = (v: unknown): Record<string, unknown> =>
  v && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : {}

export function diagnose(input: {
  incidentKind: string
  serviceKind: ServiceKind
  check: LatestCheck | null
  /** The names of the services this one depends on (directly or not) that are down now. */
  upstreamDown: string[]
}): Diagnosis {
  if (['security_incident', 'data_corruption', 'system_outage'].includes(input.incidentKind)) {
    return {
      humanOnly: true,
      kind: input.incidentKind as 'security_incident',
      reason: `the incident is a ${input.incidentKind}`,
    }
  }
  // Only what the database itself said to the postgres probe: never a remote body an HTTP probe
  // quoted, nor other sessions' query text in the measurements ("FATAL: database" in somebody's
  // comment must not page the senior engineer).
  const text = input.serviceKind === 'postgres' ? serverError(input.check) : ''
  for (const [pattern, kind, what] of CRITICAL_PATTERNS) {
    if (pattern.test(text)) return { humanOnly: true, kind, reason: `the check reports ${what}` }
  }
  if (input.upstreamDown.length > 0) {
    return { humanOnly: false, problems: [], waitingFor: input.upstreamDown }
  }
  const check = input.check
  if (!check) return { humanOnly: false, problems: [] }
  const problems = input.serviceKind === 'postgres'
    ? postgresProblems(check.measurements)
    : input.serviceKind === 'http'
    ? httpProblems(check)
    : input.serviceKind === 'supabase_auth'
    ? authProblems(check)
    : input.serviceKind === 'prometheus'
    ? hostProblems(check)
    : []
  // An incident about one problem (slow_queries) is healed for that problem alone.
  if (input.incidentKind === 'slow_queries') {
    return { humanOnly: false, problems: problems.filter((p) => p.kind === 'slow_query') }
  }
  if (problems.length === 0 && check.status === 'down') {
    problems.push(
      problem('service_unhealthy', `the service is down: ${check.error ?? 'no reason given'}`, {
        error: check.error,
      }),
    )
  }
  return { humanOnly: false, problems }
}

/**
 * The error the database server itself sent the postgres probe (connecting or querying), not the
 * probe's findings, which quote names users choose (a table called "FATAL: database").
 */
function serverError(check: LatestCheck | null): string {
  const m = check?.measurements ?? {}
  const failed = (m as { connection_error?: unknown }).connection_error
  if (typeof failed === 'string') return failed
  // A probe that could not connect or query reports only the driver's error: no findings then.
  return Object.keys(m).length === 0 ? check?.error ?? '' : ''
}

function problem(kind: ProblemKind, reason: string, evidence: Record<string, unknown>): Problem {
  return { kind, reason, evidence }
}

function postgresProblems(m: Record<string, unknown>): Problem[] {
  const out: Problem[] = []
  const blocking = obj(m.blocking)
  if (n(blocking.blocked_sessions) > 0) {
    out.push(problem(
      'lock_contention',
      `${n(blocking.blocked_sessions)} sessions blocked, the longest for ${
        n(blocking.longest_wait_seconds)
      } s`,
      { blocking },
    ))
  }
  const connections = obj(m.connections)
  if (n(connections.usage_percent) >= 90) {
    out.push(problem(
      'connection_exhaustion',
      `${n(connections.used)} of ${n(connections.max)} connections in use (${
        n(connections.usage_percent)
      } %)`,
      { connections },
    ))
  }
  const longRunning = obj(m.long_running)
  if (n(longRunning.count) > 0) {
    out.push(problem(
      'runaway_query',
      `${n(longRunning.count)} statements running longer than ${
        n(longRunning.threshold_seconds)
      } s`,
      { long_running: longRunning },
    ))
  }
  // Only where autovacuum is not keeping up (the probe judges it: over the ratio past a grace).
  const dead = obj(m.dead_tuples)
  if (n(dead.lagging) > 0) {
    out.push(
      problem(
        'dead_tuples',
        `dead tuples reach ${
          Math.round(n(dead.worst_lagging_ratio) * 100)
        } % of a table autovacuum has not dealt with`,
        { dead_tuples: dead },
      ),
    )
  }
  const staleStats = obj(m.stale_statistics)
  if (n(staleStats.count) > 0) {
    out.push(problem(
      'stale_statistics',
      `${
        n(staleStats.count)
      } tables changed so much since their last ANALYZE that the planner misjudges`,
      { stale_statistics: staleStats },
    ))
  }
  const statements = obj(m.statements)
  if (Array.isArray(statements.slow) && statements.slow.length > 0) {
    out.push(
      problem(
        'slow_query',
        `${statements.slow.length} statements slower than the slow-query threshold`,
        { statements },
      ),
    )
  }
  return out
}

function httpProblems(check: LatestCheck): Problem[] {
  const m = check.measurements
  const out: Problem[] = []
  if (typeof m.served_version === 'string' && /serving version/.test(check.error ?? '')) {
    out.push(
      problem('stale_frontend', check.error!, { served_version: m.served_version, url: m.url }),
    )
  }
  if (typeof m.tls_days_left === 'number' && /certificate|tls/i.test(check.error ?? '')) {
    out.push(
      problem('certificate_expiring', `the TLS certificate expires in ${m.tls_days_left} days`, {
        tls_days_left: m.tls_days_left,
      }),
    )
  }
  return out
}

function authProblems(check: LatestCheck): Problem[] {
  const m = check.measurements
  if (m.login_ok === false) {
    return [
      problem(
        'auth_failures',
        `the synthetic sign-in failed: ${check.error ?? 'no reason given'}`,
        { login_ok: false, error: check.error },
      ),
    ]
  }
  return []
}

function hostProblems(check: LatestCheck): Problem[] {
  const m = check.measurements
  const out: Problem[] = []
  if (/disk/i.test(check.error ?? '')) {
    out.push(
      problem('disk_low', `disk usage ${m.disk_usage_percent ?? '?'} %`, {
        disk_usage_percent: m.disk_usage_percent,
      }),
    )
  }
  if (/memory/i.test(check.error ?? '')) {
    out.push(
      problem(
        'service_unhealthy',
        `memory usage ${m.memory_usage_percent ?? '?'} %: restarting frees a leak`,
        { memory_usage_percent: m.memory_usage_percent },
      ),
    )
  }
  return out
}
