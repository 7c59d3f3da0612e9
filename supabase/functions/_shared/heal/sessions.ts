// Which database sessions a heal may signal, decided in one place and in SQL so that it holds on
// any target database (no vigil.* functions there) and is checked again in the very statement
// that signals: a session is named by pid AND backend_start, because pids are reused.
import type postgres from 'postgres'
import { HealError } from './types.ts'
import type { HealContext } from './types.ts'
import { vigilRole } from '../vigil-sessions.ts'

type Sql = postgres.Sql<any>

/** The protect lists of a heal (ctx.protectedRoles, ctx.protectedApplications). */
export type Protection = Pick<HealContext, 'protectedRoles' | 'protectedApplications'>

/** Characters of a session's query kept in plans and audit rows. */
export const QUERY_CHARS = 300

/** A backend, named exactly. */
export interface SessionRef {
  pid: number
  /** As Postgres prints it (microseconds kept): `to_json(backend_start) #>> '{}'`. */
  backend_start: string
  /** When given, only that statement may be signalled (a cancel must not hit the next one). */
  query_start?: string
  /**
   * When given, the session must still be idle (or idle in transaction) since this moment
   * (pg_stat_activity.state_change): one that has run anything since is left alone.
   */
  idle_since?: string
}

export type SignalKind = 'cancel' | 'terminate'

export interface SignalResult {
  /**
   * signalled: the signal was sent. gone: no such pid any more. replaced: the pid now belongs to
   * another backend. protected: the session may not be touched. moved_on: the statement to cancel
   * has ended, or the idle session has run something since. failed: Postgres could not signal it
   * (it exited meanwhile).
   */
  outcome: 'signalled' | 'gone' | 'replaced' | 'protected' | 'moved_on' | 'failed'
  /** Why a session is protected, when it is. */
  reason?: string
}

/**
 * Why the session `a` (a row of pg_stat_activity aliased `a`) may not be signalled, or null when
 * it may: the heal's own backend, anything but a client backend (walsenders, autovacuum,
 * background workers), another database, Vigil's own role, superusers, the protected roles
 * and applications, and sessions this role cannot see well enough to name (no backend_start).
 */
export function protectedBecause(sql: Sql, protect: Protection) {
  // The lists travel as one text parameter each: no array-type inference by the client.
  const roles = JSON.stringify(protect.protectedRoles)
  const apps = JSON.stringify(protect.protectedApplications)
  return sql`(case
    when a.pid = pg_backend_pid() then 'the heal''s own session'
    when a.backend_start is null then 'not visible to this role (it needs pg_read_all_stats)'
    when a.backend_type is distinct from 'client backend'
      then 'not a client backend (' || coalesce(a.backend_type, 'unknown') || ')'
    when a.datname is distinct from current_database() then 'a session of another database'
    when ${
    vigilRole(sql, 'a.usename', 'a.application_name')
  } then 'a Vigil session (role ' || a.usename || ')'
    when coalesce((select r.rolsuper from pg_roles r where r.oid = a.usesysid), true)
      then 'a superuser session (' || coalesce(a.usename, 'unknown role') || ')'
    when a.usename in (select jsonb_array_elements_text(${roles}::text::jsonb))
      then 'a protected role (' || a.usename || ')'
    when a.application_name in (select jsonb_array_elements_text(${apps}::text::jsonb))
      then 'a protected application (' || a.application_name || ')'
  end)`
}

/**
 * Cancels the statement of, or terminates, one session: in one statement that finds it by pid,
 * checks backend_start (and query_start when given) and protection, and only then signals.
 * Throws HealError when this role may not signal it (pg_signal_backend or membership needed).
 */
export async function signalSession(
  sql: Sql,
  ref: SessionRef,
  kind: SignalKind,
  protect: Protection,
): Promise<SignalResult> {
  const signal = kind === 'terminate'
    ? sql`pg_terminate_backend(s.pid)`
    : sql`pg_cancel_backend(s.pid)`
  const sameStatement = ref.query_start !== undefined
    ? sql`(a.state = 'active' and a.query_start = ${ref.query_start}::text::timestamptz)`
    : ref.idle_since !== undefined
    ? sql`(a.state like 'idle%' and a.state_change = ${ref.idle_since}::text::timestamptz)`
    : sql`true`
  let rows: {
    present: boolean
    same_backend: boolean | null
    same_statement: boolean | null
    protected_because: string | null
    signalled: boolean | null
  }[]
  try {
    rows = await sql`
      with t as (select ${ref.pid}::int as pid, ${ref.backend_start}::text::timestamptz as backend_start),
      s as (
        select a.pid, a.backend_start, ${sameStatement} as same_statement,
               ${protectedBecause(sql, protect)} as protected_because
        from pg_stat_activity a join t on a.pid = t.pid
      )
      select s.pid is not null as present,
             s.backend_start = t.backend_start as same_backend,
             s.same_statement,
             s.protected_because,
             case when s.backend_start = t.backend_start and s.protected_because is null
                       and s.same_statement
                  then ${signal} end as signalled
      from t left join s on true`
  } catch (err) {
    if ((err as { code?: string }).code === '42501') {
      throw new HealError(
        `permission denied to ${kind} pid ${ref.pid}: ${(err as Error).message} ` +
          "(the heal's role needs pg_signal_backend or membership in the session's role)",
      )
    }
    throw err
  }
  const [r] = rows
  if (!r.present) return { outcome: 'gone' }
  if (r.same_backend === false) return { outcome: 'replaced' }
  if (r.protected_because) return { outcome: 'protected', reason: r.protected_because }
  if (!r.same_statement) return { outcome: 'moved_on' }
  return { outcome: r.signalled ? 'signalled' : 'failed' }
}

/** Which of these sessions still exist (same pid and backend_start). */
export async function liveSessions<T extends SessionRef>(sql: Sql, refs: T[]): Promise<T[]> {
  if (refs.length === 0) return []
  const wanted = JSON.stringify(refs.map((r) => ({ pid: r.pid, backend_start: r.backend_start })))
  const rows: { pid: number; backend_start: string }[] = await sql`
    select w.pid, w.backend_start
    from jsonb_to_recordset(${wanted}::text::jsonb) as w(pid int, backend_start text)
    where exists (
      select from pg_stat_activity a
      where a.pid = w.pid and a.backend_start = w.backend_start::timestamptz)`
  return refs.filter((r) =>
    rows.some((x) => x.pid === r.pid && x.backend_start === r.backend_start)
  )
}

/** How often the session strategies look again while they wait for sessions to react. */
export const POLL_MS = 100

/** What signalEach did: the sessions signalled, and why each of the others was left alone. */
export interface Signalled<T> {
  sent: T[]
  /** "pid 12 had ended" and the like, one per session left alone, in order. */
  leftAlone: string[]
}

/**
 * Sends one signal to each session in turn, checking the heal's deadline (while `doing`) before
 * each, and says in words why any was left alone (`movedOn` for one that has run or finished
 * something since the plan). HealError when not one session was signalled.
 */
export async function signalEach<T extends SessionRef>(
  sql: Sql,
  sessions: T[],
  kind: SignalKind,
  ctx: HealContext,
  words: { doing: string; movedOn: string },
): Promise<Signalled<T>> {
  const sent: T[] = []
  const left: { s: T; outcome: SignalResult['outcome']; reason?: string }[] = []
  for (const s of sessions) {
    checkDeadline(ctx.signal, words.doing)
    const r = await signalSession(sql, s, kind, ctx)
    if (r.outcome === 'signalled') sent.push(s)
    else left.push({ s, outcome: r.outcome, reason: r.reason })
  }
  const leftAlone = left.map(({ s, outcome, reason }) =>
    `pid ${s.pid} ${
      outcome === 'moved_on'
        ? words.movedOn
        : outcome === 'protected'
        ? `is ${reason}`
        : outcome === 'replaced'
        ? 'belongs to another backend now'
        : 'had ended'
    }`
  )
  if (sent.length === 0) {
    throw new HealError(`Nothing to act on after all: ${leftAlone.join('; ')}.`)
  }
  return { sent, leftAlone }
}

/**
 * Reads at once, then every POLL_MS, until `done` holds for what was read or ms have passed, and
 * returns the last reading. Throws HealError when the heal's deadline passes while `doing`.
 */
export async function pollUntil<T>(
  read: () => Promise<T>,
  done: (reading: T) => boolean,
  ms: number,
  signal: AbortSignal,
  doing: string,
): Promise<T> {
  const until = Date.now() + ms
  while (true) {
    const reading = await read()
    if (done(reading) || Date.now() >= until) return reading
    await pause(POLL_MS, signal, doing)
  }
}

/** Waits up to ms for these sessions to exit; returns those still alive then. */
export function awaitExit<T extends SessionRef>(
  sql: Sql,
  refs: T[],
  ms: number,
  signal: AbortSignal,
  doing: string,
): Promise<T[]> {
  let alive = refs
  return pollUntil(
    async () => (alive = await liveSessions(sql, alive)),
    (still) => still.length === 0,
    ms,
    signal,
    doing,
  )
}

/** Waits ms, or throws HealError when the heal's deadline passes first. */
export function pause(ms: number, signal: AbortSignal, doing: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(deadline(doing))
    const onAbort = () => {
      clearTimeout(timer)
      reject(deadline(doing))
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** Throws HealError when the heal's deadline has passed. */
export function checkDeadline(signal: AbortSignal, doing: string): void {
  if (signal.aborted) throw deadline(doing)
}

function deadline(doing: string): HealError {
  return new HealError(`the heal's deadline passed while ${doing}`)
}

/** act() refuses in dry run, a second guard behind the engine's. */
export function refuseDryRun(ctx: HealContext, strategy: string): void {
  if (ctx.dryRun) {
    throw new HealError(`${strategy}: dry run is on, so act() changes nothing`)
  }
}

/** The database a postgres heal acts on; HealError when the service has none. */
export function targetOf(ctx: HealContext, strategy: string): Sql {
  if (!ctx.target) {
    throw new HealError(
      `${strategy} needs a target database, and service ${ctx.service.name} has none`,
    )
  }
  return ctx.target as Sql
}

// The text helpers, where the strategies have always found them.
export { capitalise, plural } from '../text.ts'
