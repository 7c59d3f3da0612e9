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
/**
 * How long the coordinator may take, shards, retries and closing included: Supabase ends a request
 * that has not answered in 150 s on every plan (and vigil.invoke's pg_net waits as long).
 */
export const COORDINATOR_BUDGET_MS = 140_000
/** Kept back from the budget to close the run, check the audit and ping the dead man's switch. */
const CLOSING_MS = 5_000
/** At most this many shards a run: a tiny shard size over thousands of services is raised to fit. */
export const MAX_SHARDS = 100

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
      deadline_ms: Math.min(
        2 * longest + CONFIRM_AFTER_MS + marginMs,
        COORDINATOR_BUDGET_MS - CLOSING_MS,
      ),
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

/** The shard size a run uses: the one asked for, raised so that the run has at most MAX_SHARDS. */
export function effectiveShardSize(services: number, size: number): number {
  return Math.min(MAX_SHARD_SIZE, Math.max(size, Math.ceil(services / MAX_SHARDS)))
}

export async function runShardedCycle(options: ShardedCycleOptions): Promise<RunReport> {
  const { sql } = options
  const runId = crypto.randomUUID()
  const startedAt = new Date().toISOString()
  const started = performance.now()
  const shardSize = effectiveShardSize(options.services.length, options.shardSize)
  const plan = planShards(options.services, shardSize)
    .map((s) => options.shardDeadlineMs ? { ...s, deadline_ms: options.shardDeadlineMs } : s)
  const longest = Math.max(...plan.map((s) => s.deadline_ms))
  await sql`select vigil.start_cycle_run(${
    sql.json({
      id: runId,
      trigger: options.trigger,
      shard_size: shardSize,
      deadline_ms: Math.min(SHARD_ATTEMPTS * longest, COORDINATOR_BUDGET_MS) + RUN_MARGIN_MS,
      shards: plan,
    } as never)
  })`
  const budgetEnds = started + COORDINATOR_BUDGET_MS - CLOSING_MS
  // Whatever a shard's loop meets (the database failing under it, say), the run is closed and the
  // dead man's switch hears of it; the watchdog is for a coordinator that died, not one that erred.
  const settled = await Promise.allSettled(
    plan.map((shard, i) => runShard(options, runId, i, shard, budgetEnds)),
  )
  const outcomes = settled.map((r, i): ShardOutcome =>
    r.status === 'fulfilled' ? r.value : {
      shard: i,
      services: plan[i].service_ids.length,
      status: 'failed',
      attempts: 0,
      cycle_id: null,
      error: redact(`coordinator: ${(r.reason as Error)?.message ?? String(r.reason)}`, [
        ...(options.secrets ?? []),
      ]).slice(0, 300),
    }
  )
  let closed: Record<string, unknown> = { status: 'failed' }
  let closeError: unknown = null
  try {
    ;[{ closed }] = await sql<{ closed: Record<string, unknown> }[]>`
      select vigil.finish_cycle_run(${runId}::uuid, 'health-check') as closed`
  } catch (error) {
    closeError = error
  }
  const shardsOk = Number(closed.shards_ok ?? outcomes.filter((o) => o.status === 'ok').length)
  const audit = closeError === null ? await checkAudit(options).catch(() => null) : null
  const count = (key: string) => Number(closed[key] ?? 0)
  // As the run closed (the watchdog may have closed it first), not as this coordinator saw it.
  const deadman = options.deadmanUrl
    ? await pingDeadman(
      options,
      closeError === null && closed.status === 'ok' && !audit?.startsWith('audit CHECK FAILED'),
      `${count('services')} services, ${count('down')} down, ${shardsOk} of ${plan.length} shards`,
      audit,
    )
    : null
  if (closeError !== null) throw closeError
  if (deadman) {
    await sql`update vigil.cycle_runs set summary = summary || ${sql.json({ deadman })}
               where id = ${runId}`
  }
  return {
    run_id: runId,
    status: closed.status as RunReport['status'],
    started_at: startedAt,
    duration_ms: Math.round(performance.now() - started),
    shard_size: shardSize,
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
  budgetEnds: number,
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
    // A retry only in the time the coordinator has left (the first attempt always goes).
    const deadline = Math.min(plan.deadline_ms, Math.floor(budgetEnds - performance.now()))
    if (attempt > 1 && deadline < Math.min(plan.deadline_ms, 5_000)) break
    const [{ began }] = await sql<{ began: number }[]>`
      select vigil.begin_shard_attempt(${runId}::uuid, ${index}::integer) as began`
    if (Number(began) === 0) break // the run was closed meanwhile (the watchdog)
    outcome = { ...outcome, attempts: attempt }
    const signal = AbortSignal.timeout(Math.max(deadline, 1_000))
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
        error: `attempt ${attempt}: HTTP ${res.status}${reason ? `: ${reason}` : ''}`,
      }
    } catch (error) {
      failure = signal.aborted
        ? {
          status: 'timed_out',
          error: `attempt ${attempt}: no answer within ${Math.max(deadline, 1_000)} ms`,
        }
        : {
          status: 'failed',
          error: `attempt ${attempt}: ${(error as Error)?.message ?? String(error)}`,
        }
    }
    // Redacted whole, then cut: a secret cut in two would survive as its first part.
    failure.error = redact(failure.error, options.secrets ?? []).slice(0, 300)
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
