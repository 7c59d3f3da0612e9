// Findings: what a probe found wrong, typed, beside its status. A probe judges (with the service's
// config and the environment's thresholds) and states each finding with its evidence; diagnosis
// maps finding kinds to problems (supabase/functions/_shared/heal/findings/), never reading the
// human sentence in checks.error. Stored with the check, in measurements.findings. A new kind is
// one entry here and one rule file there.
import { z } from 'zod'
import { CHECK_STATUSES, type CheckStatus } from './kinds.ts'

const count = z.number().int().min(0)
const seconds = z.number().min(0)
const pct = z.number().min(0).max(100)
const ratio = z.number().min(0).max(1)

/** Each finding kind's evidence: impossible values (a negative wait, 140 %) fail here. */
export const FINDING_EVIDENCE = {
  /** Sessions waiting on locks past blocked_warning_seconds, behind these roots. */
  lock_contention: z.object({
    waiters: count.min(1),
    max_wait_s: seconds,
    // 0: a prepared transaction holds the lock.
    root_pids: z.array(z.number().int().min(0)),
  }),
  /** Connections in use past connections_warning_pct of max_connections. */
  connections_exhausted: z.object({ used: count, available: count.min(1), usage_pct: pct }),
  /** Statements running past long_running_seconds. */
  runaway_query: z.object({ count: count.min(1), longest_s: seconds, threshold_s: seconds }),
  /** Sessions idle in a transaction past idle_in_transaction_seconds. */
  idle_in_transaction: z.object({ count: count.min(1), longest_s: seconds, threshold_s: seconds }),
  /** Tables over the dead-tuple ratio that autovacuum has not dealt with. */
  dead_tuples: z.object({ tables: count.min(1), worst_ratio: ratio }),
  /** Tables whose statistics are stale (rows changed since an old ANALYZE), by these thresholds. */
  stale_statistics: z.object({
    tables: count.min(1),
    min_changes: count.min(1).optional(),
    ratio: z.number().min(0).optional(),
    older_than_seconds: seconds.optional(),
  }),
  /** Statements past slow_query_ms, called often enough, not ignored on purpose. */
  slow_statements: z.object({
    statements: z.array(z.object({
      queryid: z.string().regex(/^-?\d{1,20}$/),
      mean_ms: z.number().min(0),
      calls: z.number().min(0),
    })).min(1),
  }),
  /** The frontend serves another version than the expected one. */
  stale_version: z.object({ served: z.string().nullable(), expected: z.string() }),
  /** The TLS certificate expires within tls_warning_days (negative: it has expired). */
  certificate_expiring: z.object({ days_left: z.number().int() }),
  /** The synthetic sign-in failed. */
  login_failed: z.object({ reason: z.string() }),
  /** A filesystem past disk_warning_pct. */
  disk_low: z.object({ usage_pct: pct, mountpoint: z.string().nullable() }),
  /** Memory in use past memory_warning_pct. */
  memory_high: z.object({ usage_pct: pct }),
  /** The latest deployment failed (the deploy probes report it). */
  deploy_failed: z.object({ deployment_id: z.string().nullable(), error: z.string().nullable() }),
  /**
   * The project's errors passed rollback_threshold × their baseline within the rollback window of
   * a deploy going live (the traffic probe reports it, vigil.deployments names the deploy).
   */
  error_spike_after_deploy: z.object({
    error_rate_pct: pct,
    baseline_pct: pct,
    rollback_threshold: z.number().min(1),
    deployment_id: z.string().min(1),
    previous_deployment_id: z.string().nullable(),
    version: z.string().nullable(),
    deploy_service: z.string(),
    deploy_service_id: z.uuid(),
    minutes_since_deploy: z.number().min(0),
  }),
} as const

export type FindingKind = keyof typeof FINDING_EVIDENCE
export const FINDING_KINDS = Object.keys(FINDING_EVIDENCE) as FindingKind[]

export type Finding<K extends FindingKind = FindingKind> = {
  [P in K]: {
    kind: P
    /** What it does to the check's status; healthy: noted, not degrading (slow statements). */
    status: CheckStatus
    evidence: z.infer<(typeof FINDING_EVIDENCE)[P]>
  }
}[K]

const FindingShape = z.object({
  kind: z.string(),
  status: z.enum(CHECK_STATUSES),
  evidence: z.unknown(),
})

/**
 * The findings of a stored check, each checked against its kind's schema. A finding that is not
 * one (unknown kind, impossible values) is dropped, with the reason.
 */
export function readFindings(raw: unknown): { findings: Finding[]; dropped: string[] } {
  const findings: Finding[] = []
  const dropped: string[] = []
  if (raw === undefined || raw === null) return { findings, dropped }
  if (!Array.isArray(raw)) return { findings, dropped: ['findings: not a list'] }
  raw.forEach((item, i) => {
    const shape = FindingShape.safeParse(item)
    if (!shape.success) {
      dropped.push(`findings[${i}]: ${shape.error.issues.map((x) => x.message).join('; ')}`)
      return
    }
    const kind = shape.data.kind as FindingKind
    const schema = FINDING_EVIDENCE[kind]
    if (!schema) {
      dropped.push(`findings[${i}]: unknown kind ${JSON.stringify(shape.data.kind).slice(0, 80)}`)
      return
    }
    const evidence = schema.safeParse(shape.data.evidence)
    if (!evidence.success) {
      const why = evidence.error.issues.map((x) =>
        `${x.path.join('.') || 'evidence'}: ${x.message}`
      )
      dropped.push(`findings[${i}] (${kind}): ${why.join('; ')}`)
      return
    }
    findings.push({ kind, status: shape.data.status, evidence: evidence.data } as Finding)
  })
  return { findings, dropped }
}
