// cancel_runaway_query: cancels statements that have run longer than max_seconds. Only the very
// statement planned is cancelled (pid, backend_start and query_start must all still match), and
// maintenance in progress (VACUUM, ANALYZE, CREATE INDEX, CLUSTER) is spared by default: a
// cancelled CREATE INDEX CONCURRENTLY leaves an invalid index behind.
import { z } from 'zod'
import { HumanNeeded, NotYet } from '../types.ts'
import type { ActResult, HealContext, Plan, Problem, Strategy, Verification } from '../types.ts'
import {
  plural,
  pollUntil,
  protectedBecause,
  QUERY_CHARS,
  refuseDryRun,
  signalEach,
  targetOf,
} from '../sessions.ts'

const NAME = 'cancel_runaway_query'

export const CancelRunawayQueryConfig = z.strictObject({
  /** A statement running longer than this is a runaway. */
  max_seconds: z.number().gt(0).max(604_800).default(300),
  /** At most this many statements in one heal, the longest-running first. */
  max_queries: z.number().int().min(1).max(100).default(10),
  /** Leave VACUUM, ANALYZE, CREATE INDEX and CLUSTER running (named by their progress views). */
  spare_maintenance: z.boolean().default(true),
  /** How long verify() gives the cancelled statements to stop. */
  verify_wait_ms: z.number().int().min(0).max(60_000).default(3000),
})
export type CancelRunawayQueryConfig = z.infer<typeof CancelRunawayQueryConfig>

const Runaway = z.object({
  pid: z.number().int(),
  backend_start: z.string(),
  query_start: z.string(),
  usename: z.string().nullable(),
  application_name: z.string().nullable(),
  seconds: z.number(),
  wait_event: z.string().nullable(),
  query: z.string().nullable(),
})
type Runaway = z.infer<typeof Runaway>
const Target = z.object({ statements: z.array(Runaway).min(1) })

interface Row extends Runaway {
  protected_because: string | null
  maintenance: boolean
}

/** Statements running longer than max_seconds, longest first, with why any may not be touched. */
async function longRunning(ctx: HealContext, config: CancelRunawayQueryConfig): Promise<Row[]> {
  const sql = targetOf(ctx, NAME)
  return await sql<Row[]>`
    with maintenance as (
      select pid from pg_stat_progress_vacuum
      union select pid from pg_stat_progress_analyze
      union select pid from pg_stat_progress_create_index
      union select pid from pg_stat_progress_cluster
    )
    select a.pid, to_json(a.backend_start) #>> '{}' as backend_start,
           to_json(a.query_start) #>> '{}' as query_start, a.usename, a.application_name,
           round(extract(epoch from now() - a.query_start)::numeric, 1)::float8 as seconds,
           a.wait_event, left(a.query, ${QUERY_CHARS}::int) as query,
           ${protectedBecause(sql, ctx)} as protected_because,
           a.pid in (select pid from maintenance) as maintenance
    from pg_stat_activity a
    where a.state = 'active'
      and a.query_start < now() - make_interval(secs => ${config.max_seconds}::float8)
    order by a.query_start`
}

async function plan(
  _problem: Problem,
  ctx: HealContext,
  config: CancelRunawayQueryConfig,
): Promise<Plan | null> {
  const rows = await longRunning(ctx, config)
  // Other databases' statements are no concern of this service: not even worth a mention.
  const here = rows.filter((r) => r.protected_because !== 'a session of another database')
  if (here.length === 0) {
    // The probe calls it runaway sooner than max_seconds lets this cancel it: wait for it.
    const [longest] = await targetOf(ctx, NAME)<{ seconds: number | null }[]>`
      select max(extract(epoch from now() - a.query_start))::float8 as seconds
      from pg_stat_activity a
      where a.state = 'active' and a.backend_type = 'client backend' and a.pid <> pg_backend_pid()
        and a.datname = current_database()`
    if (longest?.seconds !== null && longest?.seconds !== undefined) {
      throw new NotYet(
        `the longest statement has run ${
          Math.round(longest.seconds)
        } s; statements are cancelled after ${config.max_seconds} s`,
        Math.max(1, config.max_seconds - longest.seconds),
      )
    }
    return null
  }
  const spared = here.filter((r) =>
    r.protected_because || (config.spare_maintenance && r.maintenance)
  )
  const eligible = here.filter((r) => !spared.includes(r))
  const why = spared.map((r) =>
    `pid ${r.pid}: ${r.protected_because ?? 'maintenance in progress (spare_maintenance)'}`
  )
  if (eligible.length === 0) {
    throw new HumanNeeded(
      `${plural(here.length, 'statement')} have run longer than ${config.max_seconds} s, ` +
        `none of which may be cancelled: ${why.join('; ')}.`,
    )
  }
  const chosen: Runaway[] = eligible.slice(0, config.max_queries).map((
    { protected_because: _p, maintenance: _m, ...r },
  ) => r)
  const longest = chosen[0]
  return {
    action: 'cancel_backend',
    target: { statements: chosen },
    reason: `${plural(chosen.length, 'statement')} ran longer than ${config.max_seconds} s ` +
      `(longest ${longest.seconds} s, pid ${longest.pid}): cancel ${
        chosen.length === 1 ? 'it' : 'them'
      }.`,
    before: {
      runaway_statements: here.length,
      longest_seconds: here[0].seconds,
      spared: why,
      over_max_queries: Math.max(0, eligible.length - config.max_queries),
    },
  }
}

async function act(
  plan: Plan,
  ctx: HealContext,
  _config: CancelRunawayQueryConfig,
): Promise<ActResult> {
  refuseDryRun(ctx, NAME)
  const { statements } = Target.parse(plan.target)
  const sql = targetOf(ctx, NAME)
  const { sent, leftAlone } = await signalEach(sql, statements, 'cancel', ctx, {
    doing: 'cancelling runaway statements',
    movedOn: 'finished that statement',
  })
  const parts = [
    `Cancelled ${plural(sent.length, 'statement')} (${
      sent.map((s) => `pid ${s.pid} after ${s.seconds} s`).join(', ')
    })`,
  ]
  if (leftAlone.length > 0) parts.push(`left alone: ${leftAlone.join('; ')}`)
  return { detail: parts.join('; ') + '.' }
}

async function verify(
  plan: Plan,
  _result: ActResult,
  ctx: HealContext,
  config: CancelRunawayQueryConfig,
): Promise<Verification> {
  const { statements } = Target.parse(plan.target)
  const sql = targetOf(ctx, NAME)
  const wanted = JSON.stringify(statements.map(({ pid, backend_start, query_start }) => ({
    pid,
    backend_start,
    query_start,
  })))
  const running = await pollUntil(
    () =>
      sql<{ pid: number }[]>`
        select w.pid
        from jsonb_to_recordset(${wanted}::text::jsonb) as w(pid int, backend_start text, query_start text)
        join pg_stat_activity a on a.pid = w.pid and a.backend_start = w.backend_start::timestamptz
          and a.query_start = w.query_start::timestamptz and a.state = 'active'`,
    (r) => r.length === 0,
    config.verify_wait_ms,
    ctx.signal,
    'verifying that the statements stopped',
  )
  const now = await longRunning(ctx, config)
  const here = now.filter((r) => r.protected_because !== 'a session of another database')
  const stopped = statements.length - running.length
  return {
    improved: running.length === 0,
    worse: false,
    after: {
      still_running: running.map((r) => r.pid),
      runaway_statements: here.length,
    },
    detail: `${stopped} of ${plural(statements.length, 'cancelled statement')} stopped` +
      (running.length > 0 ? `; still running: pid ${running.map((r) => r.pid).join(', ')}` : '') +
      `; ${plural(here.length, 'statement')} now run longer than ${config.max_seconds} s.`,
  }
}

export const cancelRunawayQueryStrategy: Strategy<CancelRunawayQueryConfig> = {
  name: NAME,
  irreversible: 'a cancelled statement stays cancelled: its client must run it again',
  problem: 'runaway_query',
  config: CancelRunawayQueryConfig,
  plan,
  act,
  verify,
}
