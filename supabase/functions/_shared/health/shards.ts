// A cycle too big for one edge-function invocation (256 MB, 2 s of CPU per request) is fanned out:
// the invocation pg_cron called becomes the coordinator, plans a run in SQL (vigil.start_cycle_run),
// and posts each shard of at most `shardSize` services to health-check again, concurrently. Each
// shard probes and records its own vigil.cycles row; the coordinator records each shard's outcome,
// sends a failed or timed-out shard once more (vigil.record_cycle lets only the first recording of
// a shard count), closes the run (vigil.finish_cycle_run), and checks the audit and pings the dead
// man's switch once for the whole run. The watchdog closes a run whose coordinator died.
import type postgres from 'postgres'
import { checkAudit, CONFIRM_AFTER_MS, MAX_PROBE_TIMEOUT_MS, pingDeadman } from './cycle.ts'
import { redact } from '../probes/types.ts'

export const DEFAULT_SHARD_SIZE = 200
export const MAX_SHARD_SIZE = 1000
/** A failed or timed-out shard is sent once more. */
export const SHARD_ATTEMPTS = 2
/** Above a shard's probe time: loading, recording and a cold start of the invocation. */
export const SHARD_MARGIN_MS = 10_000
/** Above the run's shard attempts, before the watchdog calls a shard that never reported missing. */
const RUN_MARGIN_MS = 30_000
const MAX_SHARD_DEADLINE_MS = 400_000

/**
 * The shard size a deployment set (VIGIL_SHARD_SIZE): a whole number from 1 to MAX_SHARD_SIZE.
 * Anything else falls back to the default, with a problem to log: watching must never stop on it.
 */
export function shardSizeFrom(
  value: string | undefined,
): { size: number; problem: string | null } {
  if (value === undefined || value.trim() === '') {
    return { size: DEFAULT_SHARD_SIZE, problem: null }
  }
  const n = Number(value.trim())
  if (Number.isInteger(n) && n >= 1 && n <= MAX_SHARD_SIZE) {
    return { size: n, problem: null }
  }
  return {
    size: DEFAULT_SHARD_SIZE,
    problem:
      `VIGIL_SHARD_SIZE must be a whole number from 1 to ${MAX_SHARD_SIZE}; using ${DEFAULT_SHARD_SIZE}`,
  }
}

export interface PlannedService {
  id: string
  timeout_ms: number
}

export interface ShardPlan {
  service_ids: string[]
  /** How long one attempt may take before the coordinator gives up on it. */
  deadline_ms: number
}

/**
 * The services, in order, cut into shards of at most `size`; each shard's deadline covers its
 * longest probe, the confirmation round (its wait and a second probe) and a margin.
 */
export function planShards(
  services: PlannedService[],
  size: number,
  marginMs = SHARD_MARGIN_MS,
): ShardPlan[] {
  if (!Number.isInteger(size) || size < 1 || size > MAX_SHARD_SIZE) {
    throw new RangeError(`shard size must be a whole number from 1 to ${MAX_SHARD_SIZE}`)
  }
  const shards: ShardPlan[] = []
  for (let i = 0; i < services.length; i += size) {
    const chunk = services.slice(i, i + size)
    const longest = Math.min(Math.max(...chunk.map((s) => s.timeout_ms)), MAX_PROBE_TIMEOUT_MS)
    shards.push({
      service_ids: chunk.map((s) => s.id),
      deadline_ms: Math.min(2 * longest + CONFIRM_AFTER_MS + marginMs, MAX_SHARD_DEADLINE_MS),
    })
  }
  return shards
}

/** The enabled services a cycle would probe (optionally only these names), in the cycle's order. */
export async function servicesToWatch(
  sql: postgres.Sql,
  only?: string[],
): Promise<PlannedService[]> {
  const names = only ? JSON.stringify(only) : null
  const rows = await sql<PlannedService[]>`
    select s.id, s.timeout_ms from vigil.services s
     where s.enabled
       and (${names}::text is null or s.name in (select jsonb_array_elements_text(${names}::text::jsonb)))
     order by s.name`
  return rows.map((r) => ({ id: r.id, timeout_ms: Number(r.timeout_ms) }))
}

/** The body a shard is sent with; health-check validates it (service_ids at most MAX_SHARD_SIZE). */
export interface ShardRequest {
  trigger: 'cron' | 'manual'
  run_id: string
  shard: number
  service_ids: string[]
}

/** Sends one shard to a health-check invocation; the answer, or a rejection (network, abort). */
export type Dispatch = (body: ShardRequest, signal: AbortSignal) => Promise<Response>

export interface ShardedCycleOptions {
  sql: postgres.Sql
  trigger: 'cron' | 'manual'
  services: PlannedService[]
  shardSize: number
  dispatch: Dispatch
  /** Secrets that must never appear in a stored error (the service-role key the shards are sent with). */
  secrets?: string[]
  deadmanUrl?: string
  auditSecret?: string
  fetch?: typeof fetch
  /** Overrides each shard's deadline (tests: at least 1000 ms). */
  shardDeadlineMs?: number
}

export interface ShardOutcome {
  shard: number
  services: number
  status: 'ok' | 'failed' | 'timed_out'
  attempts: number
  cycle_id: string | null
  error: string | null
}

export interface RunReport {
  run_id: string
  status: 'ok' | 'partial' | 'failed'
  started_at: string
  duration_ms: number
  shard_size: number
  shards: ShardOutcome[]
  services: number
  healthy: number
  degraded: number
  down: number
  deadman: string | null
}

export async function runShardedCycle(options: ShardedCycleOptions): Promise<RunReport> {
  const { sql } = options
  const runId = crypto.randomUUID()
  const startedAt = new Date().toISOString()
  const started = performance.now()
  const plan = planShards(options.services, options.shardSize)
    .map((s) => options.shardDeadlineMs ? { ...s, deadline_ms: options.shardDeadlineMs } : s)
  const longest = Math.max(...plan.map((s) => s.deadline_ms))
  await sql`select vigil.start_cycle_run(${
    sql.json({
      id: runId,
      trigger: options.trigger,
      shard_size: options.shardSize,
      deadline_ms: Math.min(SHARD_ATTEMPTS * longest + RUN_MARGIN_MS, 3_600_000),
      shards: plan,
    } as never)
  })`
  const outcomes = await Promise.all(plan.map((shard, i) => runShard(options, runId, i, shard)))
  const [{ closed }] = await sql<{ closed: Record<string, unknown> }[]>`
    select vigil.finish_cycle_run(${runId}::uuid, 'health-check') as closed`
  const lost = outcomes.filter((o) => o.status !== 'ok')
  const audit = await checkAudit(options).catch(() => null)
  const count = (key: string) => Number(closed[key] ?? 0)
  const deadman = options.deadmanUrl
    ? await pingDeadman(
      options,
      lost.length === 0 && !audit?.startsWith('audit CHECK FAILED'),
      `${count('services')} services, ${count('down')} down, ${
        plan.length - lost.length
      } of ${plan.length} shards`,
      audit,
    )
    : null
  if (deadman) {
    await sql`update vigil.cycle_runs set summary = summary || ${sql.json({ deadman })}
               where id = ${runId}`
  }
  return {
    run_id: runId,
    status: closed.status as RunReport['status'],
    started_at: startedAt,
    duration_ms: Math.round(performance.now() - started),
    shard_size: options.shardSize,
    shards: outcomes,
    services: count('services'),
    healthy: count('healthy'),
    degraded: count('degraded'),
    down: count('down'),
    deadman,
  }
}

/** One shard, sent until it records or has had SHARD_ATTEMPTS; every outcome is written down. */
async function runShard(
  options: ShardedCycleOptions,
  runId: string,
  index: number,
  plan: ShardPlan,
): Promise<ShardOutcome> {
  const { sql } = options
  let outcome: ShardOutcome = {
    shard: index,
    services: plan.service_ids.length,
    status: 'failed',
    attempts: 0,
    cycle_id: null,
    error: null,
  }
  for (let attempt = 1; attempt <= SHARD_ATTEMPTS; attempt++) {
    await sql`select vigil.begin_shard_attempt(${runId}::uuid, ${index}::integer)`
    outcome = { ...outcome, attempts: attempt }
    const signal = AbortSignal.timeout(plan.deadline_ms)
    let failure: { status: 'failed' | 'timed_out'; error: string }
    try {
      const body = {
        trigger: options.trigger,
        run_id: runId,
        shard: index,
        service_ids: plan.service_ids,
      }
      const res = await options.dispatch(body, signal)
      const answer = await res.json().catch(() => null) as Record<string, unknown> | null
      if (res.ok) {
        // Recorded now, or by an earlier attempt that answered late (duplicate): either way, kept.
        const [row] = await sql<{ cycle_id: string | null }[]>`
          select cycle_id from vigil.cycle_shards where run_id = ${runId} and shard = ${index}`
        return { ...outcome, status: 'ok', cycle_id: row?.cycle_id ?? null, error: null }
      }
      const reason = typeof answer?.error === 'string'
        ? answer.error
        : typeof answer?.message === 'string'
        ? answer.message
        : ''
      failure = {
        status: 'failed',
        error: `attempt ${attempt}: HTTP ${res.status}${reason ? `: ${reason.slice(0, 300)}` : ''}`,
      }
    } catch (error) {
      failure = signal.aborted
        ? {
          status: 'timed_out',
          error: `attempt ${attempt}: no answer within ${plan.deadline_ms} ms`,
        }
        : {
          status: 'failed',
          error: `attempt ${attempt}: ${(error as Error)?.message ?? String(error)}`.slice(0, 300),
        }
    }
    failure.error = redact(failure.error, options.secrets ?? [])
    const [{ status }] = await sql<{ status: string }[]>`
      select vigil.record_shard_failure(${runId}::uuid, ${index}::integer, ${failure.status},
                                        ${failure.error}) as status`
    if (status === 'ok') {
      // An earlier attempt recorded after all, while this one failed.
      const [row] = await sql<{ cycle_id: string }[]>`
        select cycle_id from vigil.cycle_shards where run_id = ${runId} and shard = ${index}`
      return { ...outcome, status: 'ok', cycle_id: row.cycle_id, error: null }
    }
    outcome = { ...outcome, status: failure.status, error: failure.error }
  }
  return outcome
}
