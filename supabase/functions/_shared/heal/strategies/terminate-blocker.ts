// terminate_blocker: ends the session at the head of a lock chain that has kept others waiting.
// A root running a statement is cancelled first: that aborts its transaction and frees its locks
// while the session lives on. It is terminated only if its waiters are still behind it after
// cancel_grace_ms (the statement ran in a savepoint, or the lock is a session advisory lock).
// A root idle in a transaction has nothing to cancel and is terminated at once.
import { z } from 'zod'
import { isWaiting, rootBlockers } from '../../lock-graph.ts'
import { HealError, HumanNeeded } from '../types.ts'
import type { ActResult, HealContext, Plan, Problem, Strategy, Verification } from '../types.ts'
import {
  awaitExit,
  capitalise,
  checkDeadline,
  liveSessions,
  pause,
  plural,
  POLL_MS,
  pollUntil,
  protectedBecause,
  QUERY_CHARS,
  refuseDryRun,
  signalSession,
  targetOf,
} from '../sessions.ts'
import type { Protection, SignalResult } from '../sessions.ts'

const NAME = 'terminate_blocker'

export const TerminateBlockerConfig = z.strictObject({
  /** Act on a root only once one of its waiters has waited this long. */
  min_wait_seconds: z.number().min(0).max(86_400).default(10),
  /** After cancelling a root's statement, how long it has to release its locks. */
  cancel_grace_ms: z.number().int().min(0).max(60_000).default(1000),
  /** How long to wait for a terminated backend to exit. */
  exit_wait_ms: z.number().int().min(0).max(60_000).default(5000),
  /** At most this many roots in one heal, those holding up the most sessions first. */
  max_roots: z.number().int().min(1).max(50).default(3),
  /** How long verify() gives the waiters to get their locks. */
  verify_wait_ms: z.number().int().min(0).max(60_000).default(3000),
})
export type TerminateBlockerConfig = z.infer<typeof TerminateBlockerConfig>

const SessionKey = z.object({ pid: z.number().int(), backend_start: z.string() })

const Root = SessionKey.extend({
  usename: z.string().nullable(),
  application_name: z.string().nullable(),
  state: z.string().nullable(),
  query: z.string().nullable(),
  waiters: z.array(SessionKey.extend({ wait_seconds: z.number() })),
  longest_wait_seconds: z.number(),
})
type Root = z.infer<typeof Root>

/** plan.target: what act() and verify() read back (possibly from the audit, so parsed). */
const Target = z.object({ database: z.string(), roots: z.array(Root).min(1) })
const Before = z.object({ blocked_sessions: z.number() })

interface LockRow {
  pid: number
  datname: string | null
  backend_start: string | null
  usename: string | null
  application_name: string | null
  state: string | null
  query: string | null
  blocked_by: number[] | null
  wait_seconds: number | null
  protected_because: string | null
}

interface Waiter {
  pid: number
  backend_start: string | null
  wait_seconds: number
  roots: number[]
}

interface LockGraph {
  database: string
  sessions: Map<number, LockRow>
  /** Sessions of this database waiting on a lock, longest wait first. */
  waiters: Waiter[]
}

/** The live lock graph: waiters, their blockers, and who may be signalled among them. */
async function readLocks(ctx: HealContext, protect: Protection): Promise<LockGraph> {
  const sql = targetOf(ctx, NAME)
  const rows = await sql<(LockRow & { database: string })[]>`
    with w as materialized (
      select pid, case when wait_event_type = 'Lock' then pg_blocking_pids(pid) end as blocked_by
      from pg_stat_activity
    ),
    involved as (
      select pid from w where cardinality(blocked_by) > 0
      union
      select unnest(blocked_by) from w where cardinality(blocked_by) > 0
    )
    select current_database() as database, a.pid, a.datname,
           to_json(a.backend_start) #>> '{}' as backend_start, a.usename, a.application_name,
           a.state, left(a.query, ${QUERY_CHARS}::int) as query,
           -- jsonb, not int[]: postgres.js parses arrays only once it has fetched their types,
           -- and a fresh connection may not have yet.
           to_jsonb(w.blocked_by) as blocked_by,
           extract(epoch from now() - coalesce(a.state_change, a.query_start))::float8 as wait_seconds,
           ${protectedBecause(sql, protect)} as protected_because
    from pg_stat_activity a join w on w.pid = a.pid
    where a.pid in (select pid from involved)`
  const database = rows[0]?.database ??
    (await sql<{ d: string }[]>`select current_database() as d`)[0].d
  const sessions = new Map(rows.map((r) => [r.pid, r]))
  const rootsOf = rootBlockers(sessions)
  const waiters = rows
    .filter((r) => isWaiting(r) && r.datname === database)
    .map((r) => ({
      pid: r.pid,
      backend_start: r.backend_start,
      wait_seconds: Math.round((r.wait_seconds ?? 0) * 10) / 10,
      roots: rootsOf(r.pid),
    }))
    .sort((x, y) => y.wait_seconds - x.wait_seconds)
  return { database, sessions, waiters }
}

/** Is this exact backend still at the head of a chain, and who waits behind it now. */
function behind(graph: LockGraph, root: { pid: number; backend_start: string }): Waiter[] {
  const r = graph.sessions.get(root.pid)
  if (!r || r.backend_start !== root.backend_start) return []
  return graph.waiters.filter((w) => w.roots.includes(root.pid))
}

function describe(r: { pid: number; state: string | null; application_name: string | null }) {
  const app = r.application_name ? `, application "${r.application_name}"` : ''
  return `pid ${r.pid} (${r.state ?? 'unknown state'}${app})`
}

async function plan(
  _problem: Problem,
  ctx: HealContext,
  config: TerminateBlockerConfig,
): Promise<Plan | null> {
  const graph = await readLocks(ctx, ctx)
  const byRoot = new Map<number, Waiter[]>()
  for (const w of graph.waiters) {
    for (const r of w.roots) byRoot.set(r, [...(byRoot.get(r) ?? []), w])
  }
  const overdue = [...byRoot.entries()]
    .map(([pid, waiters]) => ({
      pid,
      waiters,
      longest: Math.max(...waiters.map((w) => w.wait_seconds)),
    }))
    .filter((x) => x.longest >= config.min_wait_seconds)
  if (overdue.length === 0) return null

  const skipped: { pid: number; reason: string }[] = []
  const roots: Root[] = []
  for (const x of overdue) {
    const s = graph.sessions.get(x.pid)
    const reason = x.pid === 0
      ? 'a prepared transaction (COMMIT PREPARED or ROLLBACK PREPARED it)'
      : !s
      ? 'not visible in pg_stat_activity'
      : s.protected_because
    if (reason || !s?.backend_start) {
      skipped.push({ pid: x.pid, reason: reason ?? 'no backend_start' })
      continue
    }
    roots.push({
      pid: s.pid,
      backend_start: s.backend_start,
      usename: s.usename,
      application_name: s.application_name,
      state: s.state,
      query: s.query,
      waiters: x.waiters
        .filter((w) => w.backend_start !== null)
        .map((w) => ({
          pid: w.pid,
          backend_start: w.backend_start!,
          wait_seconds: w.wait_seconds,
        })),
      longest_wait_seconds: x.longest,
    })
  }
  const longest = graph.waiters[0]?.wait_seconds ?? 0
  if (roots.length === 0) {
    const which = skipped.map((s) => `pid ${s.pid}: ${s.reason}`).join('; ')
    throw new HumanNeeded(
      `${plural(graph.waiters.length, 'session')} wait on locks (up to ${longest} s) behind ` +
        `root blockers that may not be touched: ${which}`,
    )
  }
  roots.sort((a, b) =>
    b.waiters.length - a.waiters.length || b.longest_wait_seconds - a.longest_wait_seconds
  )
  const chosen = roots.slice(0, config.max_roots)
  const words = chosen.map((r) =>
    `${describe(r)} holds up ${
      plural(r.waiters.length, 'session')
    } (up to ${r.longest_wait_seconds} s)`
  )
  return {
    action: 'terminate_backend',
    target: { database: graph.database, roots: chosen },
    reason: `Root blocker ${words.join('; ')}: cancel the statement it runs, if any, and ` +
      `terminate it if its waiters are still blocked ${config.cancel_grace_ms} ms later.`,
    before: {
      blocked_sessions: graph.waiters.length,
      longest_wait_seconds: longest,
      root_blockers: byRoot.size,
      skipped_roots: [
        ...skipped,
        ...roots.slice(config.max_roots).map((r) => ({
          pid: r.pid,
          reason: `over max_roots (${config.max_roots})`,
        })),
      ],
    },
  }
}

type RootOutcome =
  | 'cancelled'
  | 'terminated'
  | 'terminate_sent'
  | 'released_itself'
  | 'gone'
  | SignalResult['outcome']

async function act(
  plan: Plan,
  ctx: HealContext,
  config: TerminateBlockerConfig,
): Promise<ActResult> {
  refuseDryRun(ctx, NAME)
  const { roots } = Target.parse(plan.target)
  const sql = targetOf(ctx, NAME)
  const outcomes: { root: Root; outcome: RootOutcome; reason?: string; cancelled?: boolean }[] = []
  for (const root of roots) {
    checkDeadline(ctx.signal, `ending ${describe(root)}`)
    const graph = await readLocks(ctx, ctx)
    const now = graph.sessions.get(root.pid)
    if (!now || now.backend_start !== root.backend_start) {
      const [live] = await liveSessions(sql, [root])
      outcomes.push({ root, outcome: live ? 'released_itself' : 'gone' })
      continue
    }
    if (behind(graph, root).length === 0) {
      outcomes.push({ root, outcome: 'released_itself' })
      continue
    }
    let cancelled = false
    if (now.state === 'active') {
      const sent = await signalSession(sql, root, 'cancel', ctx)
      if (sent.outcome !== 'signalled') {
        outcomes.push({ root, outcome: sent.outcome, reason: sent.reason })
        continue
      }
      cancelled = true
      if (await released(ctx, root, config.cancel_grace_ms)) {
        outcomes.push({ root, outcome: 'cancelled' })
        continue
      }
    }
    const sent = await signalSession(sql, root, 'terminate', ctx)
    if (sent.outcome !== 'signalled') {
      // Between the cancel and now it may have let go, or ended, on its own.
      const outcome = cancelled && sent.outcome === 'gone' ? 'cancelled' : sent.outcome
      outcomes.push({ root, outcome, reason: sent.reason })
      continue
    }
    const exited = await exitedWithin(ctx, root, config.exit_wait_ms)
    outcomes.push({ root, outcome: exited ? 'terminated' : 'terminate_sent', cancelled })
  }

  const text = outcomes.map(({ root, outcome, reason, cancelled }) => {
    const what = describe(root)
    switch (outcome) {
      case 'cancelled':
        return `cancelled the statement of ${what}, which then released its locks`
      case 'terminated':
        return cancelled
          ? `cancelled the statement of ${what}, then terminated it as its waiters were still blocked`
          : `terminated ${what}`
      case 'terminate_sent':
        return `sent terminate to ${what}, which had not exited ${config.exit_wait_ms} ms later`
      case 'released_itself':
        return `left ${what} alone: it no longer blocks anyone`
      case 'gone':
        return `left ${what} alone: it ended on its own`
      case 'replaced':
        return `left pid ${root.pid} alone: it now belongs to another backend`
      case 'protected':
        return `left ${what} alone: it is ${reason}`
      default:
        return `could not signal ${what} (${outcome})`
    }
  })
  const acted = outcomes.filter((o) =>
    ['cancelled', 'terminated', 'terminate_sent'].includes(o.outcome)
  )
  if (acted.length === 0) {
    throw new HealError(`Nothing to act on after all: ${text.join('; ')}.`)
  }
  return { detail: capitalise(text.join('; ')) + '.' }
}

/** Polls until no session waits behind this root any more, for at most ms. */
async function released(ctx: HealContext, root: Root, ms: number): Promise<boolean> {
  const until = Date.now() + ms
  while (true) {
    await pause(
      Math.min(POLL_MS, Math.max(0, until - Date.now())),
      ctx.signal,
      'waiting after a cancel',
    )
    if (behind(await readLocks(ctx, ctx), root).length === 0) return true
    if (Date.now() >= until) return false
  }
}

async function exitedWithin(ctx: HealContext, root: Root, ms: number): Promise<boolean> {
  const sql = targetOf(ctx, NAME)
  const alive = await awaitExit(sql, [root], ms, ctx.signal, `waiting for pid ${root.pid} to exit`)
  return alive.length === 0
}

async function verify(
  plan: Plan,
  _result: ActResult,
  ctx: HealContext,
  config: TerminateBlockerConfig,
): Promise<Verification> {
  const { roots } = Target.parse(plan.target)
  const before = Before.parse(plan.before)
  const planned = roots.flatMap((r) => r.waiters)
  const { graph, blocked, behindRoots } = await pollUntil(
    async () => {
      const graph = await readLocks(ctx, ctx)
      const blocked = planned.filter((w) =>
        graph.waiters.some((x) => x.pid === w.pid && x.backend_start === w.backend_start)
      )
      const behindRoots = roots.filter((r) => behind(graph, r).length > 0)
      return { graph, blocked, behindRoots }
    },
    (r) => r.behindRoots.length === 0 && r.blocked.length === 0,
    config.verify_wait_ms,
    ctx.signal,
    'verifying that the waiters moved on',
  )
  const improved = behindRoots.length === 0 && blocked.length < planned.length
  const after = {
    blocked_sessions: graph.waiters.length,
    longest_wait_seconds: graph.waiters[0]?.wait_seconds ?? 0,
    waiters_still_blocked: blocked.map((w) => w.pid),
    roots_still_blocking: behindRoots.map((r) => r.pid),
  }
  const moved = planned.length - blocked.length
  const detail = behindRoots.length > 0
    ? `Root blocker ${behindRoots.map((r) => `pid ${r.pid}`).join(', ')} still holds up sessions.`
    : `${moved} of ${plural(planned.length, 'waiter')} got their locks or finished; ` +
      `${plural(graph.waiters.length, 'session')} now wait on locks.`
  return { improved, worse: graph.waiters.length > before.blocked_sessions, after, detail }
}

export const terminateBlockerStrategy: Strategy<TerminateBlockerConfig> = {
  name: NAME,
  irreversible:
    'a terminated session stays gone: its transaction was rolled back and the client must reconnect',
  problem: 'lock_contention',
  config: TerminateBlockerConfig,
  plan,
  act,
  verify,
}
