// kill_idle_connections: when client connections near max_connections, ends the sessions that
// have sat idle (or idle in a transaction) the longest, just enough of them to bring usage under
// target_pct. A session that has run anything since the plan is left alone.
import { z } from 'zod'
import { HumanNeeded, NotYet } from '../types.ts'
import type { ActResult, HealContext, Plan, Problem, Strategy, Verification } from '../types.ts'
import {
  awaitExit,
  capitalise,
  liveSessions,
  plural,
  protectedBecause,
  QUERY_CHARS,
  refuseDryRun,
  signalEach,
  targetOf,
} from '../sessions.ts'

const NAME = 'kill_idle_connections'

const pct = z.number().gt(0).max(100)

export const KillIdleConnectionsConfig = z.strictObject({
  /**
   * Act when client connections use this much of the slots open to them (max_connections less
   * superuser_reserved_connections and, from Postgres 16, reserved_connections).
   */
  trigger_pct: pct.default(90),
  /** End just enough sessions to bring usage under this. */
  target_pct: pct.default(70),
  /** Only sessions idle (or idle in transaction) longer than this. */
  idle_minutes: z.number().gt(0).max(10_080).default(5),
  /** At most this many sessions in one heal. */
  max_sessions: z.number().int().min(1).max(1000).default(50),
  /** How long to wait for the terminated backends to exit. */
  exit_wait_ms: z.number().int().min(0).max(60_000).default(5000),
}).refine((c) => c.target_pct < c.trigger_pct, {
  message: 'target_pct must be below trigger_pct',
  path: ['target_pct'],
})
export type KillIdleConnectionsConfig = z.infer<typeof KillIdleConnectionsConfig>

const Idle = z.object({
  pid: z.number().int(),
  backend_start: z.string(),
  idle_since: z.string(),
  usename: z.string().nullable(),
  application_name: z.string().nullable(),
  state: z.string(),
  idle_seconds: z.number(),
  query: z.string().nullable(),
})
type Idle = z.infer<typeof Idle>
const Target = z.object({ sessions: z.array(Idle).min(1) })

const Usage = z.object({
  max_connections: z.number(),
  reserved: z.number(),
  available: z.number(),
  used: z.number(),
  usage_percent: z.number(),
})
type Usage = z.infer<typeof Usage>

async function usage(ctx: HealContext): Promise<Usage> {
  const sql = targetOf(ctx, NAME)
  const [u] = await sql<Omit<Usage, 'available' | 'usage_percent'>[]>`
    select current_setting('max_connections')::int as max_connections,
           current_setting('superuser_reserved_connections')::int
             + coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int as reserved,
           (select count(*) from pg_stat_activity where backend_type = 'client backend')::int as used`
  const available = Math.max(1, u.max_connections - u.reserved)
  return { ...u, available, usage_percent: Math.round(1000 * u.used / available) / 10 }
}

async function plan(
  _problem: Problem,
  ctx: HealContext,
  config: KillIdleConnectionsConfig,
): Promise<Plan | null> {
  const sql = targetOf(ctx, NAME)
  const before = await usage(ctx)
  if (before.usage_percent < config.trigger_pct) return null
  // The most sessions that keep usage strictly under target_pct.
  const allowed = Math.ceil(config.target_pct * before.available / 100) - 1
  const needed = Math.max(0, before.used - allowed)
  if (needed === 0) return null

  const candidates = await sql<Idle[]>`
    select a.pid, to_json(a.backend_start) #>> '{}' as backend_start,
           to_json(a.state_change) #>> '{}' as idle_since, a.usename, a.application_name, a.state,
           round(extract(epoch from now() - a.state_change)::numeric, 1)::float8 as idle_seconds,
           left(a.query, ${QUERY_CHARS}::int) as query
    from pg_stat_activity a
    where a.state in ('idle', 'idle in transaction', 'idle in transaction (aborted)')
      and a.state_change < now() - make_interval(secs => ${config.idle_minutes * 60}::float8)
      and ${protectedBecause(sql, ctx)} is null
    order by a.state_change, a.backend_start
    limit ${Math.min(needed, config.max_sessions)}::int`
  const at = `connections at ${before.usage_percent}% of the ${before.available} available ` +
    `(${before.used} used, trigger ${config.trigger_pct}%)`
  if (candidates.length === 0) {
    // Idle sessions that may be ended once idle long enough: wait for them, page nobody yet.
    const [soon] = await sql<{ sessions: number; wait_s: number | null }[]>`
      select count(*)::int as sessions,
             min(${
      config.idle_minutes * 60
    }::float8 - extract(epoch from now() - a.state_change))::float8 as wait_s
      from pg_stat_activity a
      where a.state in ('idle', 'idle in transaction', 'idle in transaction (aborted)')
        and ${protectedBecause(sql, ctx)} is null`
    if (soon.sessions > 0 && soon.wait_s !== null) {
      throw new NotYet(
        `${at}: ${
          plural(soon.sessions, 'idle session')
        } may be ended once idle ${config.idle_minutes} min`,
        Math.max(1, soon.wait_s),
      )
    }
    throw new HumanNeeded(
      `${
        capitalise(at)
      }, but no session idle longer than ${config.idle_minutes} min may be ended ` +
        '(protected sessions and other databases are never touched).',
    )
  }
  const short = candidates.length < needed
    ? `; only ${candidates.length} of the ${needed} needed to reach ${config.target_pct}% may be ended`
    : `, which brings usage under ${config.target_pct}%`
  return {
    action: 'terminate_backend',
    target: { sessions: candidates },
    reason: `${capitalise(at)}: end the ${plural(candidates.length, 'session')} idle longest ` +
      `(over ${config.idle_minutes} min)${short}.`,
    before: { ...before, needed, target_pct: config.target_pct, trigger_pct: config.trigger_pct },
  }
}

async function act(
  plan: Plan,
  ctx: HealContext,
  config: KillIdleConnectionsConfig,
): Promise<ActResult> {
  refuseDryRun(ctx, NAME)
  const { sessions } = Target.parse(plan.target)
  const sql = targetOf(ctx, NAME)
  const { sent, leftAlone } = await signalEach(sql, sessions, 'terminate', ctx, {
    doing: 'ending idle sessions',
    movedOn: 'ran something since',
  })
  const alive = await awaitExit(
    sql,
    sent,
    config.exit_wait_ms,
    ctx.signal,
    'waiting for the terminated sessions to exit',
  )
  const pids = sent.map((s) => s.pid).join(', ')
  const parts = [`Terminated ${plural(sent.length, 'idle session')} (pid ${pids})`]
  if (alive.length > 0) parts.push(`${alive.length} had not exited yet`)
  if (leftAlone.length > 0) parts.push(`left alone: ${leftAlone.join('; ')}`)
  return { detail: parts.join('; ') + '.' }
}

async function verify(
  plan: Plan,
  _result: ActResult,
  ctx: HealContext,
  config: KillIdleConnectionsConfig,
): Promise<Verification> {
  const before = Usage.parse(plan.before)
  const { sessions } = Target.parse(plan.target)
  const now = await usage(ctx)
  const still = await liveSessions(targetOf(ctx, NAME), sessions)
  const under = now.usage_percent < config.target_pct
  return {
    improved: under || now.used < before.used,
    worse: now.used > before.used,
    after: { ...now, target_pct: config.target_pct, sessions_still_alive: still.map((s) => s.pid) },
    detail: `Connections at ${now.usage_percent}% (${now.used} of ${now.available}), ` +
      `${under ? 'under' : 'still over'} the ${config.target_pct}% target; ` +
      `were ${before.usage_percent}% (${before.used}).`,
  }
}

export const killIdleConnectionsStrategy: Strategy<KillIdleConnectionsConfig> = {
  name: NAME,
  irreversible: 'an ended session stays gone: its client reconnects when it needs to',
  problem: 'connection_exhaustion',
  config: KillIdleConnectionsConfig,
  plan,
  act,
  verify,
}
