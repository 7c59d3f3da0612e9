// From an incident and the service's latest check to the problems a strategy can address, worst
// first — or to a verdict that only a human may handle (suspected corruption, a security incident,
// a system-wide outage) — or to waiting: a service whose own dependency is down is healed after
// that root, never instead of it. Unrelated services being down never holds a heal back.
import { isAdvisoryIncident, type ProblemKind, type ServiceKind } from '../../../../shared/kinds.ts'
import type { Problem } from './types.ts'
import { readFindings } from '../../../../shared/findings.ts'
import { problemOf } from './findings/registry.ts'
import { rank } from '../probes/types.ts'

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
    /** Findings that were not (unknown kind, impossible values), and why: for the incident log. */
    dropped?: string[]
    /** A report for people (capacity forecast, security lint): nothing here is healed for it. */
    advisory?: true
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
  if (isAdvisoryIncident(input.incidentKind)) {
    return { humanOnly: false, problems: [], advisory: true }
  }
  if (input.upstreamDown.length > 0) {
    return { humanOnly: false, problems: [], waitingFor: input.upstreamDown }
  }
  const check = input.check
  if (!check) return { humanOnly: false, problems: [] }
  // Findings, never the human sentence in check.error: each checked against its kind's schema
  // (one with impossible values is dropped, and said), then mapped to its problem by its rule.
  const { findings, dropped } = readFindings(check.measurements.findings)
  const ranked = [...findings].sort((a, b) => rank(b.status)! - rank(a.status)!)
  const problems: Problem[] = []
  for (const finding of ranked) {
    const p = problemOf(finding)
    if (p && !problems.some((q) => q.kind === p.kind)) problems.push(p)
  }
  // An incident about one problem (slow_queries) is healed for that problem alone.
  if (input.incidentKind === 'slow_queries') {
    return {
      humanOnly: false,
      problems: problems.filter((p) => p.kind === 'slow_query'),
      ...(dropped.length ? { dropped } : {}),
    }
  }
  if (problems.length === 0 && check.status === 'down') {
    problems.push(
      problem('service_unhealthy', `the service is down: ${check.error ?? 'no reason given'}`, {
        error: check.error,
      }),
    )
  }
  return { humanOnly: false, problems, ...(dropped.length ? { dropped } : {}) }
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
