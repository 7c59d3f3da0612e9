// The postgres probe: how a database is doing, read from its statistics views in two statements
// (one for sessions, locks and counters, one for pg_stat_statements when it is installed), so
// that watching a database every 30 s costs it a few milliseconds. It never writes.
import { scrubQuery } from './sql-text.ts'
import { plural } from '../text.ts'
import { isWaiting, rootBlockers } from '../lock-graph.ts'
import postgres from 'postgres'
import { z } from 'zod'
import { PostgresConfig } from '../../../../shared/probe-configs.ts'
import type { CheckStatus } from '../../../../shared/kinds.ts'
import { errorMessage, round } from './support.ts'
import { vigilRole } from '../vigil-sessions.ts'
import type { Finding as TypedFinding } from '../../../../shared/findings.ts'
import { againstBand, againstFloor, connectionSecrets, redact, worst } from './types.ts'
import type { Metric, Probe, ProbeContext, ProbeResult } from './types.ts'

/** Marks the probe's statements so pg_stat_statements can tell them apart (the benchmark does). */
export const PROBE_MARKER = 'vigil:postgres-probe'
/** Below this many blocks read from outside shared buffers, a hit ratio says nothing. */
export const CACHE_MIN_BLOCKS_READ = 1000
/** How many slow application statements a reading keeps, before slow_min_calls and slow_ignore. */
const SLOW_CANDIDATES = 50
/** An application's statement: its first keyword after blanks and comments. */
const SLOW_KIND_RE = String
  .raw`^(\s|/\*([^*]|\*+[^*/])*\*+/|--[^\n]*\n)*(select|insert|update|delete|merge|with|values|table)\M`
/** Below this many calls the slowest 5 % are one-off statements (migrations, DDL): not judged. */
export const P95_MIN_CALLS = 10_000
/**
 * pg_stat_statements is cumulative since its reset, and the extension spends about 1.3 µs per
 * entry building its rows (7 ms at its default 5,000). With this many statements or more, a
 * reading younger than STATEMENTS_REFRESH_SECONDS is carried forward instead of read again.
 */
export const STATEMENTS_CARRY_FROM = 1000
export const STATEMENTS_REFRESH_SECONDS = 300
export const P95_METHOD =
  'calls-weighted 95th percentile of per-statement mean execution times in pg_stat_statements ' +
  "since its last reset: each call counted at its statement's mean, top-level statements of this " +
  "database only, the probe's own left out; judged from 10,000 calls"
const SESSION_QUERY_CHARS = 300
const STATEMENT_QUERY_CHARS = 500
const LISTED_SESSIONS = 20
const LISTED_TABLES = 10
const CONNECT_TIMEOUT_SECONDS = 5

type Sql = postgres.Sql<Record<string, unknown>>
type Pending = postgres.PendingQuery<postgres.Row[]>

interface Session {
  pid: number
  datname: string | null
  usename: string | null
  application_name: string | null
  backend_type: string | null
  backend_start: string | null
  xact_start: string | null
  state: string | null
  wait_event_type: string | null
  wait_event: string | null
  blocked_by: number[] | null
  wait_seconds: number | null
  transaction_seconds: number | null
  query: string | null
}

interface ListedSession {
  pid: number
  backend_start: string | null
  usename: string | null
  application_name: string | null
  state: string | null
  wait_event_type: string | null
  wait_event: string | null
  seconds: number
  query: string | null
  total: number
}

interface Snapshot {
  database: string
  now_epoch: number
  server_version: string
  in_recovery: boolean
  max_connections: number
  reserved_connections: number
  connections_used: number
  connections_by_state: Record<string, number>
  lock_sessions: Session[]
  long_running: ListedSession[]
  idle_in_transaction: ListedSession[]
  deadlocks_total: number
  blks_hit_total: number
  blks_read_total: number
  stats_reset: string | null
  database_size_bytes: number
  xid: { database: string; age: number }
  dead_tuples: {
    table: string
    live: number
    dead: number
    ratio: number
    last_autovacuum: string | null
    /** The latest vacuum of either kind. */
    last_vacuum: string | null
    /** A vacuum of it is running now. */
    vacuuming: boolean
  }[]
  /** Tables changed so much since their last ANALYZE, so long ago, that the planner misjudges. */
  stale_statistics: { table: string; rows: number; changed: number; last_analyze: string | null }[]
  replicas: {
    application_name: string | null
    client_addr: string | null
    state: string | null
    sync_state: string | null
    replay_lag_seconds: number | null
    replay_lag_bytes: number | null
  }[]
  standby_replay_delay_seconds: number | null
  pss: { schema: string; version: string } | null
}

const SlowStatement = z.object({
  queryid: z.string(),
  calls: z.number(),
  mean_ms: z.number(),
  max_ms: z.number(),
  total_ms: z.number(),
  // pg_stat_statements keeps literals of utility statements (a DO block) and every comment.
  query: z.string().nullable().transform((q) => q && scrubQuery(q)),
  slow: z.boolean(),
})

/** What one reading of pg_stat_statements yields; the previous check's is parsed, not trusted. */
const StatementsReading = z.object({
  read_at: z.string(),
  query_duration_p95_ms: z.number().nullable(),
  statements: z.number(),
  calls: z.number(),
  slow_count: z.number(),
  slow_query_ms: z.number(),
  slowest_limit: z.number(),
  slowest: z.array(SlowStatement),
  /**
   * The slow statements an application sent (SELECT, INSERT, UPDATE, DELETE, MERGE, WITH), up to
   * SLOW_CANDIDATES, slowest first: where the probe looks for slow queries, so one-off utility
   * statements (DDL, VACUUM, COPY) at the top of `slowest` never hide them.
   */
  slow_candidates: z.array(SlowStatement).default([]),
})
type StatementsReading = z.infer<typeof StatementsReading>

interface StatementsRow {
  p95_ms: number | null
  calls: number
  statements: number
  slow_count: number
  slowest: z.infer<typeof SlowStatement>[]
  slow_candidates: z.infer<typeof SlowStatement>[]
}

interface Collected {
  snapshot: Snapshot
  statements: (StatementsReading & { carried_forward: boolean }) | null
  statementsNote: string
  responseMs: number
}

/** A finding that is not healthy, with its words for the error sentence. */
interface Finding {
  status: CheckStatus
  text: string
  /**
   * The evidence already proves it lasted (a waiter blocked past its threshold, a session idle in
   * a transaction past its own, connections high on this check and the one before): the service's
   * status follows on this check, without the failure threshold's hysteresis.
   */
  decisive?: boolean
}

class Cancelled extends Error {
  override name = 'Cancelled'
}

export const postgresProbe: Probe<PostgresConfig> = {
  kind: 'postgres',
  config: PostgresConfig,
  run,
}

async function run(config: PostgresConfig, ctx: ProbeContext): Promise<ProbeResult> {
  const target = config.connection_secret
    ? `database named by secret ${config.connection_secret}`
    : 'project database'
  const down = (error: string): ProbeResult => ({ status: 'down', measurements: { target }, error })
  if (ctx.signal.aborted) return down(`the ${target} check was cancelled before it started`)

  let sql = ctx.db as Sql
  let own: Sql | undefined
  const secrets: string[] = []
  if (config.connection_secret) {
    const url = ctx.secret(config.connection_secret)
    if (!url) {
      return down(
        `secret ${config.connection_secret} is not set: it must hold the connection string`,
      )
    }
    secrets.push(...connectionSecrets(url))
    try {
      own = postgres(url, {
        max: 1,
        prepare: false,
        connect_timeout: CONNECT_TIMEOUT_SECONDS,
        idle_timeout: 0,
        max_lifetime: null,
        onnotice: () => {},
        connection: { application_name: 'vigil-probe' },
      }) as Sql
    } catch (err) {
      const why = `secret ${config.connection_secret} does not hold a usable connection string`
      return down(redact(`${why}: ${errorMessage(err)}`, secrets))
    }
    sql = own
  }

  const started = performance.now()
  let pending: Pending | undefined = undefined
  let onAbort = () => {}
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      // Only a statement still running is cancelled: a late cancel could hit the pool's next one.
      Promise.resolve(pending?.cancel()).catch(() => {})
      reject(new Cancelled())
    }
    ctx.signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    const work = collect(sql, config, ctx, (q) => (pending = q))
    // When the abort wins the race, the cancelled statement's rejection is expected.
    work.catch(() => {})
    const collected = await Promise.race([work, aborted])
    collected.statementsNote = redact(collected.statementsNote, secrets)
    return judge(collected, config, ctx, target)
  } catch (err) {
    const ms = Math.round(performance.now() - started)
    if (err instanceof Cancelled || ctx.signal.aborted) {
      return down(`the ${target} check was cancelled after ${ms} ms (probe timeout)`)
    }
    return down(redact(`cannot read the ${target}: ${errorMessage(err)}`, secrets))
  } finally {
    ctx.signal.removeEventListener('abort', onAbort)
    if (own) await own.end({ timeout: ctx.signal.aborted ? 0 : 1 }).catch(() => {})
  }
}

async function collect(
  sql: Sql,
  config: PostgresConfig,
  ctx: ProbeContext,
  track: (q: Pending | undefined) => void,
): Promise<Collected> {
  const t0 = performance.now()
  const main = snapshotQuery(sql, config)
  track(main)
  const [snapshot] = (await main) as unknown as Snapshot[]
  track(undefined)
  const responseMs = round(performance.now() - t0, 1)
  const result = (statements: Collected['statements'], statementsNote = ''): Collected => ({
    snapshot,
    statements,
    statementsNote,
    responseMs,
  })

  const pss = snapshot.pss
  if (!pss) return result(null, 'pg_stat_statements is not installed')
  const [major, minor] = pss.version.split('.').map(Number)
  if (major === 1 && minor < 8) {
    return result(null, `pg_stat_statements ${pss.version} is older than 1.8: not read`)
  }
  const slowMs = ctx.thresholds.slow_query_ms
  const carried = carriedStatements(ctx.previous, snapshot, slowMs, config.slow_statements)
  if (carried) return result({ ...carried, carried_forward: true })

  const q = statementsQuery(
    sql,
    pss.schema,
    !(major === 1 && minor < 9),
    slowMs,
    config.slow_statements,
  )
  track(q)
  try {
    const [row] = (await q) as unknown as StatementsRow[]
    track(undefined)
    return result({
      read_at: new Date(snapshot.now_epoch * 1000).toISOString(),
      query_duration_p95_ms: row.p95_ms === null ? null : round(row.p95_ms, 3),
      statements: row.statements,
      calls: row.calls,
      slow_count: row.slow_count,
      slow_query_ms: slowMs,
      slowest_limit: config.slow_statements,
      slowest: row.slowest,
      slow_candidates: row.slow_candidates,
      carried_forward: false,
    })
  } catch (err) {
    track(undefined)
    // 57014: cancelled by the probe's timeout, which the caller reports.
    if ((err as { code?: string } | undefined)?.code === '57014') throw err
    // Installed but not preloaded, or not readable by this role: say so, it is not an outage.
    return result(null, `pg_stat_statements cannot be read: ${errorMessage(err)}`)
  }
}

/**
 * Everything but pg_stat_statements in one statement. Session rows are filtered in SQL: only
 * lock waiters, their blockers and the long-running or idle-in-transaction ones travel.
 */
function snapshotQuery(sql: Sql, config: PostgresConfig) {
  return sql`/* vigil:postgres-probe */
with act as materialized (
  select pid, datname, usename, application_name, backend_type, backend_start, xact_start, query_start,
         state_change, state, wait_event_type, wait_event, query,
         case when wait_event_type = 'Lock' then pg_blocking_pids(pid) end as blocked_by
  from pg_stat_activity
),
here as (
  select * from act
  where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()
),
involved as (
  select pid from here where cardinality(blocked_by) > 0
  union
  select unnest(blocked_by) from here where cardinality(blocked_by) > 0
),
mine as (select oid from pg_database where datname = current_database())
select
  current_database() as database,
  extract(epoch from now())::float8 as now_epoch,
  current_setting('server_version') as server_version,
  pg_is_in_recovery() as in_recovery,
  current_setting('max_connections')::int as max_connections,
  current_setting('superuser_reserved_connections')::int as reserved_connections,
  (select count(*) from act where backend_type = 'client backend')::int as connections_used,
  (select coalesce(json_object_agg(s, n), '{}') from (
     select coalesce(state, 'unknown') as s, count(*) as n from act where backend_type = 'client backend' group by 1
   ) by_state) as connections_by_state,
  (select coalesce(json_agg(json_build_object(
     'pid', pid, 'datname', datname, 'usename', usename, 'application_name', application_name,
     'backend_type', backend_type, 'backend_start', backend_start, 'xact_start', xact_start,
     'state', state, 'wait_event_type', wait_event_type, 'wait_event', wait_event, 'blocked_by', blocked_by,
     'wait_seconds', round(extract(epoch from now() - coalesce(state_change, query_start))::numeric, 3),
     'transaction_seconds', round(extract(epoch from now() - xact_start)::numeric, 3),
     'query', left(query, ${SESSION_QUERY_CHARS}::int))), '[]')
   from act where pid in (select pid from involved)) as lock_sessions,
  (select coalesce(json_agg(l), '[]') from (
     select pid, backend_start, usename, application_name, state, wait_event_type, wait_event,
            round(extract(epoch from now() - query_start)::numeric, 1) as seconds,
            left(query, ${SESSION_QUERY_CHARS}::int) as query, count(*) over () as total
     from here
     where state = 'active' and not ${vigilRole(sql, 'usename', 'application_name')}
       and query_start < now() - make_interval(secs => ${config.long_running_seconds}::float8)
     order by query_start limit ${LISTED_SESSIONS}::int
   ) l) as long_running,
  (select coalesce(json_agg(i), '[]') from (
     select pid, backend_start, usename, application_name, state, wait_event_type, wait_event,
            round(extract(epoch from now() - state_change)::numeric, 1) as seconds,
            left(query, ${SESSION_QUERY_CHARS}::int) as query, count(*) over () as total
     from here
     where state in ('idle in transaction', 'idle in transaction (aborted)')
       and not ${vigilRole(sql, 'usename', 'application_name')}
       and state_change < now() - make_interval(secs => ${config.idle_in_transaction_seconds}::float8)
     order by state_change limit ${LISTED_SESSIONS}::int
   ) i) as idle_in_transaction,
  pg_stat_get_db_deadlocks(mine.oid)::float8 as deadlocks_total,
  pg_stat_get_db_blocks_hit(mine.oid)::float8 as blks_hit_total,
  (pg_stat_get_db_blocks_fetched(mine.oid) - pg_stat_get_db_blocks_hit(mine.oid))::float8 as blks_read_total,
  to_json(pg_stat_get_db_stat_reset_time(mine.oid)) #>> '{}' as stats_reset,
  pg_database_size(mine.oid)::float8 as database_size_bytes,
  (select json_build_object('database', datname, 'age', age(datfrozenxid))
   from pg_database order by age(datfrozenxid) desc limit 1) as xid,
  (select coalesce(json_agg(json_build_object(
     'table', t.nspname || '.' || t.relname, 'live', t.live, 'dead', t.dead,
     'ratio', round(t.dead::numeric / (t.live + t.dead), 4),
     'last_autovacuum', pg_stat_get_last_autovacuum_time(t.oid),
     'last_vacuum', greatest(pg_stat_get_last_autovacuum_time(t.oid), pg_stat_get_last_vacuum_time(t.oid)),
     'vacuuming', exists (select from pg_stat_progress_vacuum v where v.relid = t.oid))
     order by t.dead::float8 / (t.live + t.dead) desc), '[]')
   from (
     select c.oid, n.nspname, c.relname, pg_stat_get_live_tuples(c.oid) as live, pg_stat_get_dead_tuples(c.oid) as dead
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'm') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_toast'
       and pg_stat_get_dead_tuples(c.oid) > 0
       and pg_stat_get_live_tuples(c.oid) + pg_stat_get_dead_tuples(c.oid) >= ${config.dead_tuple_min_rows}::bigint
     order by pg_stat_get_dead_tuples(c.oid)::float8
              / (pg_stat_get_live_tuples(c.oid) + pg_stat_get_dead_tuples(c.oid)) desc
     limit ${LISTED_TABLES}::int
   ) t) as dead_tuples,
  (select coalesce(json_agg(json_build_object(
     'table', t.nspname || '.' || t.relname, 'rows', t.live, 'changed', t.changed,
     'last_analyze', t.last_analyze) order by t.changed desc), '[]')
   from (
     select n.nspname, c.relname, pg_stat_get_live_tuples(c.oid)::float8 as live,
            pg_stat_get_mod_since_analyze(c.oid)::float8 as changed,
            greatest(pg_stat_get_last_analyze_time(c.oid), pg_stat_get_last_autoanalyze_time(c.oid)) as last_analyze
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'm') and c.relpersistence <> 't'
       and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_toast'
       and pg_stat_get_mod_since_analyze(c.oid) >= ${config.stale_stats_min_changes}::bigint
       and pg_stat_get_mod_since_analyze(c.oid) >= ${config.stale_stats_ratio}::float8 * greatest(pg_stat_get_live_tuples(c.oid), 1)
       and coalesce(greatest(pg_stat_get_last_analyze_time(c.oid), pg_stat_get_last_autoanalyze_time(c.oid)), '-infinity')
           < now() - make_interval(secs => ${config.stale_stats_seconds}::float8)
       and not exists (select from pg_stat_progress_analyze a where a.relid = c.oid)
     order by pg_stat_get_mod_since_analyze(c.oid) desc
     limit ${LISTED_TABLES}::int
   ) t) as stale_statistics,
  (select coalesce(json_agg(json_build_object(
     'application_name', application_name, 'client_addr', client_addr, 'state', state, 'sync_state', sync_state,
     'replay_lag_seconds', extract(epoch from replay_lag),
     'replay_lag_bytes', case when not pg_is_in_recovery() then pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) end)), '[]')
   from pg_stat_replication) as replicas,
  case when pg_is_in_recovery() then
    case when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0
         else extract(epoch from now() - pg_last_xact_replay_timestamp())::float8 end
  end as standby_replay_delay_seconds,
  (select json_build_object('schema', n.nspname, 'version', e.extversion)
   from pg_extension e join pg_namespace n on n.oid = e.extnamespace
   where e.extname = 'pg_stat_statements') as pss
from mine`
}

/**
 * The slowest statements of this database and an approximate p95. pg_stat_statements keeps a
 * mean per statement, not a histogram, so p95 is the mean below which 95 % of all calls fall.
 */
function statementsQuery(
  sql: Sql,
  schema: string,
  toplevel: boolean,
  slowMs: number,
  limit: number,
) {
  // Calls as float8: window and aggregate sums over bigint would be numeric, several times slower.
  // Rounding and truncation happen after the limit, on the few rows that travel.
  return sql`/* vigil:postgres-probe */
with s as materialized (
  select queryid, calls::float8 as calls, mean_exec_time as mean, max_exec_time as max, total_exec_time as total, query
  from ${sql(schema)}.pg_stat_statements
  where dbid = (select oid from pg_database where datname = current_database())
    and calls > 0 ${toplevel ? sql`and toplevel` : sql``}
    and query not like '%vigil:postgres-probe%'
),
agg as (select sum(calls) as calls, count(*) as n, count(*) filter (where mean > ${slowMs}::float8) as slow from s)
select
  (select min(mean) from (select mean, sum(calls) over (order by mean rows unbounded preceding) as cum from s) r
   where cum >= 0.95 * (select calls from agg)) as p95_ms,
  coalesce((select calls from agg), 0) as calls,
  (select n from agg)::int as statements,
  (select slow from agg)::int as slow_count,
  (select coalesce(json_agg(json_build_object(
     'queryid', queryid::text, 'calls', calls, 'mean_ms', round(mean::numeric, 3), 'max_ms', round(max::numeric, 3),
     'total_ms', round(total::numeric, 1), 'query', left(query, ${STATEMENT_QUERY_CHARS}::int),
     'slow', mean > ${slowMs}::float8) order by mean desc), '[]')
   from (select * from s order by mean desc limit ${limit}::int) top) as slowest,
  (select coalesce(json_agg(json_build_object(
     'queryid', queryid::text, 'calls', calls, 'mean_ms', round(mean::numeric, 3), 'max_ms', round(max::numeric, 3),
     'total_ms', round(total::numeric, 1), 'query', left(query, ${STATEMENT_QUERY_CHARS}::int),
     'slow', true) order by mean desc), '[]')
   from (select * from s
         where mean > ${slowMs}::float8
           and query ~* ${SLOW_KIND_RE}
         order by mean desc limit ${SLOW_CANDIDATES}::int) c) as slow_candidates`
}

/** Numbers from the previous check of the same database, for rates and deltas. */
function previousOf(ctx: ProbeContext, database: string) {
  const p = ctx.previous
  if (!p || p.database !== database) return {}
  const num = (k: string) => {
    const v = p[k]
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined
  }
  const at = typeof p.measured_at === 'string' ? Date.parse(p.measured_at) / 1000 : NaN
  return {
    at: Number.isFinite(at) ? at : undefined,
    deadlocks: num('deadlocks_total'),
    hit: num('blks_hit_total'),
    read: num('blks_read_total'),
    size: num('database_size_bytes'),
    deadOverSince: (() => {
      const d = p.dead_tuples as { tables?: unknown } | undefined
      const map = new Map<string, { since: string; dead: number }>()
      for (const t of Array.isArray(d?.tables) ? d.tables : []) {
        const { table, over_since, dead } = (t ?? {}) as {
          table?: unknown
          over_since?: unknown
          dead?: unknown
        }
        if (typeof table === 'string' && typeof over_since === 'string') {
          map.set(table, { since: over_since, dead: typeof dead === 'number' ? dead : Infinity })
        }
      }
      return map
    })(),
    connectionsPct: (() => {
      const c = p.connections as { usage_percent?: unknown } | undefined
      return typeof c?.usage_percent === 'number' ? c.usage_percent : undefined
    })(),
  }
}

/** The previous reading of pg_stat_statements, when it is recent and costly enough to reuse. */
function carriedStatements(
  previous: Record<string, unknown> | undefined,
  s: Snapshot,
  slowMs: number,
  limit: number,
): StatementsReading | null {
  if (!previous || previous.database !== s.database) return null
  const parsed = StatementsReading.safeParse(previous.statements)
  if (!parsed.success) return null
  const r = parsed.data
  const age = s.now_epoch - Date.parse(r.read_at) / 1000
  const fresh = age >= 0 && age < STATEMENTS_REFRESH_SECONDS
  const same = r.slow_query_ms === slowMs && r.slowest_limit === limit
  return fresh && same && r.statements >= STATEMENTS_CARRY_FROM ? r : null
}

function judge(
  c: Collected,
  config: PostgresConfig,
  ctx: ProbeContext,
  target: string,
): ProbeResult {
  const s = c.snapshot
  const prev = previousOf(ctx, s.database)
  const findings: Finding[] = []
  const typed: TypedFinding[] = []
  const metrics: Metric[] = []
  const add = (status: CheckStatus, text: string, decisive = false) => {
    if (status !== 'healthy') findings.push({ status, text, ...(decisive ? { decisive } : {}) })
  }

  // Connections: every client backend counts against max_connections, whatever its database.
  const usagePct = round(100 * s.connections_used / s.max_connections, 1)
  metrics.push({ name: 'active_connections', value: s.connections_used })
  metrics.push({ name: 'connection_usage_percent', value: usagePct })
  // Decisive when the previous check was past the warning too: high for a whole interval.
  const connectionStatus = againstBand(
    usagePct,
    config.connections_warning_pct,
    config.connections_critical_pct,
  )
  add(
    connectionStatus,
    `connections at ${usagePct}% of max_connections (${s.connections_used} of ${s.max_connections})`,
    prev.connectionsPct !== undefined && prev.connectionsPct >= config.connections_warning_pct,
  )
  if (connectionStatus !== 'healthy') {
    typed.push({
      kind: 'connections_exhausted',
      status: connectionStatus,
      evidence: { used: s.connections_used, available: s.max_connections, usage_pct: usagePct },
    })
  }

  // Blocking chains: waiters in this database, followed through their blockers to the roots.
  // Other sessions' query text keeps its shape, never its literals (values, keys, personal data).
  const chains = blockingChains(
    s.lock_sessions.map((x) => ({ ...x, query: x.query && scrubQuery(x.query) })),
    s.database,
  )
  metrics.push({ name: 'blocked_sessions', value: chains.waiters.length })
  metrics.push({ name: 'longest_wait_seconds', value: chains.longest })
  if (chains.waiters.length > 0) {
    const blocked = plural(chains.waiters.length, 'session')
    const roots = chains.roots.map((r) => `pid ${r.pid}${r.state ? ` (${r.state})` : ''}`)
    const behind = roots.length === 0
      ? ''
      : `, behind root blocker${roots.length > 1 ? 's' : ''} ${roots.join(', ')}`
    const lockStatus = againstBand(
      chains.longest,
      config.blocked_warning_seconds,
      config.blocked_critical_seconds,
    )
    add(
      lockStatus,
      `${blocked} blocked on locks, the longest for ${chains.longest} s${behind}`,
      true,
    )
    if (lockStatus !== 'healthy') {
      typed.push({
        kind: 'lock_contention',
        status: lockStatus,
        evidence: {
          waiters: chains.waiters.length,
          max_wait_s: chains.longest,
          root_pids: chains.roots.map((r) => r.pid),
        },
      })
    }
  }

  const longRunning = listed(s.long_running)
  if (longRunning.total > 0) {
    const [first] = longRunning.sessions
    const what = plural(longRunning.total, 'statement')
    const over = `running longer than ${config.long_running_seconds} s`
    add('degraded', `${what} ${over} (longest ${first.seconds} s, pid ${first.pid})`, true)
    typed.push({
      kind: 'runaway_query',
      status: 'degraded',
      evidence: {
        count: longRunning.total,
        longest_s: first.seconds,
        threshold_s: config.long_running_seconds,
      },
    })
  }
  const idle = listed(s.idle_in_transaction)
  if (idle.total > 0) {
    const [first] = idle.sessions
    const what = plural(idle.total, 'session')
    const over = `idle in transaction longer than ${config.idle_in_transaction_seconds} s`
    add('degraded', `${what} ${over} (longest ${first.seconds} s, pid ${first.pid})`, true)
    typed.push({
      kind: 'idle_in_transaction',
      status: 'degraded',
      evidence: {
        count: idle.total,
        longest_s: first.seconds,
        threshold_s: config.idle_in_transaction_seconds,
      },
    })
  }

  // Deadlocks: the counter only rises; a lower value means the statistics were reset.
  let deadlocks: number | null = null
  if (prev.deadlocks !== undefined) {
    deadlocks = s.deadlocks_total >= prev.deadlocks
      ? s.deadlocks_total - prev.deadlocks
      : s.deadlocks_total
    metrics.push({ name: 'deadlock_count', value: deadlocks })
    if (deadlocks > 0) add('degraded', `${plural(deadlocks, 'deadlock')} since the previous check`)
  }

  // Cache hit ratio over the window since the previous check (since the statistics reset on the
  // first check), judged only when enough blocks came from outside shared buffers to matter.
  const sincePrevious = prev.hit !== undefined && prev.read !== undefined &&
    s.blks_hit_total >= prev.hit && s.blks_read_total >= prev.read
  const hit = sincePrevious ? s.blks_hit_total - prev.hit! : s.blks_hit_total
  const read = sincePrevious ? s.blks_read_total - prev.read! : s.blks_read_total
  const hitRatio = hit + read > 0 ? round(hit / (hit + read), 5) : null
  const cacheJudged = hitRatio !== null && read >= CACHE_MIN_BLOCKS_READ
  if (hitRatio !== null) metrics.push({ name: 'cache_hit_ratio', value: hitRatio })
  if (cacheJudged) {
    const window = sincePrevious ? 'since the previous check' : 'since the statistics reset'
    add(
      againstFloor(hitRatio!, config.cache_hit_warning_ratio, config.cache_hit_critical_ratio),
      `cache hit ratio ${hitRatio} (${read} blocks read ${window})`,
    )
  }

  // Statements: slowest by mean, and an approximate p95 judged once enough calls back it.
  const ignored = new Set(config.slow_ignore.map(normalised))
  let statements: Record<string, unknown>
  if (c.statements) {
    const st = c.statements
    const p95 = st.query_duration_p95_ms
    const p95Judged = p95 !== null && st.calls >= P95_MIN_CALLS
    if (p95 !== null) metrics.push({ name: 'query_duration_p95', value: p95 })
    if (p95Judged) {
      add(
        againstBand(p95, ctx.thresholds.db_query_warning_ms, ctx.thresholds.db_query_critical_ms),
        `query p95 about ${p95} ms (pg_stat_statements, ${st.calls} calls since its reset)`,
      )
    }
    statements = {
      installed: true,
      ...s.pss,
      ...st,
      p95_method: P95_METHOD,
      p95_judged: p95Judged,
      p95_min_calls: P95_MIN_CALLS,
      // Slow enough to matter: past slow_query_ms, called often enough, not ignored on purpose.
      slow: st.slow_candidates.filter((x) =>
        x.calls >= config.slow_min_calls && !ignored.has(normalised(x.query ?? ''))
      ).slice(0, Math.max(config.slow_statements, 1)),
    }
  } else {
    statements = { installed: s.pss !== null, ...s.pss, note: c.statementsNote }
  }

  // Size and growth per hour since the previous check (not over less than a second).
  metrics.push({ name: 'database_size_bytes', value: s.database_size_bytes })
  const hours = prev.at !== undefined ? (s.now_epoch - prev.at) / 3600 : 0
  const growth = prev.size !== undefined && hours > 1 / 3600
    ? Math.round((s.database_size_bytes - prev.size) / hours)
    : null

  // Dead tuples: worst first; bloat warns, it never takes a database down, and only where
  // autovacuum is not keeping up: over the ratio for dead_tuple_grace_seconds with no vacuum since
  // it went over (carried from check to check as over_since), and none running now.
  const worstDead = s.dead_tuples[0]
  metrics.push({ name: 'dead_tuple_ratio', value: worstDead?.ratio ?? 0 })
  const measuredAt = new Date(s.now_epoch * 1000).toISOString()
  const deadTables = s.dead_tuples.map((t) => {
    if (t.ratio < config.dead_tuple_warning_ratio) return t
    const before = prev.deadOverSince?.get(t.table)
    // Autovacuum is keeping up when a vacuum since it went over removed dead tuples; one that
    // removed none (an old snapshot holds them) does not start the clock again.
    const vacuumedSince = before !== undefined && t.last_vacuum !== null &&
      Date.parse(t.last_vacuum) > Date.parse(before.since) && t.dead < before.dead
    const overSince = before !== undefined && !vacuumedSince ? before.since : measuredAt
    const lagging = !t.vacuuming &&
      s.now_epoch - Date.parse(overSince) / 1000 >= config.dead_tuple_grace_seconds
    return { ...t, over_since: overSince, lagging }
  })
  const lagging = deadTables.filter((t) => 'lagging' in t && t.lagging)
  if (lagging.length > 0) {
    const [worstLagging] = lagging
    const which = lagging.length > 1
      ? `${lagging.length} tables have`
      : `table ${worstLagging.table} has`
    const pct = Math.round(worstLagging.ratio * 100)
    const rows = worstLagging.live + worstLagging.dead
    add(
      'degraded',
      `${which} many dead tuples that autovacuum has not dealt with for ` +
        `${config.dead_tuple_grace_seconds} s (worst ${worstLagging.table}: ${pct}% of ${rows} rows)`,
    )
    typed.push({
      kind: 'dead_tuples',
      status: 'degraded',
      evidence: { tables: lagging.length, worst_ratio: worstLagging.ratio },
    })
  }

  // Stale statistics: the planner works from row counts and histograms this far out of date.
  const stale = s.stale_statistics
  if (stale.length > 0) {
    const [first] = stale
    const which = stale.length > 1 ? `${stale.length} tables have` : `table ${first.table} has`
    add(
      'degraded',
      `${which} stale statistics (${first.table}: ${first.changed} rows changed since its last ` +
        `ANALYZE${first.last_analyze ? ` at ${first.last_analyze}` : ', never analyzed'})`,
    )
    typed.push({
      kind: 'stale_statistics',
      status: 'degraded',
      evidence: {
        tables: stale.length,
        min_changes: config.stale_stats_min_changes,
        ratio: config.stale_stats_ratio,
        older_than_seconds: config.stale_stats_seconds,
      },
    })
  }

  metrics.push({ name: 'xid_age', value: s.xid.age })
  add(
    againstBand(s.xid.age, config.xid_age_warning, config.xid_age_critical),
    `transaction ID age ${s.xid.age} in database ${s.xid.database} (wraparound near 2.1 billion)`,
  )

  // Replication: the worst replica seen from a primary, or this standby's own replay delay.
  const lags = s.replicas.map((r) => r.replay_lag_seconds ?? 0)
  if (s.standby_replay_delay_seconds !== null) lags.push(s.standby_replay_delay_seconds)
  const lag = lags.length > 0 ? round(Math.max(...lags), 3) : null
  if (lag !== null) {
    metrics.push({ name: 'replication_lag_seconds', value: lag })
    const { replication_lag_warning_seconds: warning, replication_lag_critical_seconds: critical } =
      config
    add(againstBand(lag, warning, critical), `replication lag ${lag} s`)
  }

  findings.sort((a, b) => (a.status === b.status ? 0 : a.status === 'down' ? -1 : 1))
  const measurements: Record<string, unknown> = {
    target,
    database: s.database,
    measured_at: new Date(s.now_epoch * 1000).toISOString(),
    server_version: s.server_version,
    in_recovery: s.in_recovery,
    connections: {
      used: s.connections_used,
      max: s.max_connections,
      superuser_reserved: s.reserved_connections,
      usage_percent: usagePct,
      by_state: s.connections_by_state,
    },
    blocking: {
      blocked_sessions: chains.waiters.length,
      longest_wait_seconds: chains.longest,
      root_blockers: chains.roots,
      waiters: chains.waiters.slice(0, LISTED_SESSIONS),
    },
    long_running: {
      count: longRunning.total,
      threshold_seconds: config.long_running_seconds,
      sessions: longRunning.sessions,
    },
    idle_in_transaction: {
      count: idle.total,
      threshold_seconds: config.idle_in_transaction_seconds,
      sessions: idle.sessions,
    },
    deadlocks_total: s.deadlocks_total,
    deadlocks_since_previous: deadlocks,
    blks_hit_total: s.blks_hit_total,
    blks_read_total: s.blks_read_total,
    cache: {
      hit_ratio: hitRatio,
      window: sincePrevious ? 'since_previous' : 'since_stats_reset',
      blocks_hit: hit,
      blocks_read: read,
      judged: cacheJudged,
      min_blocks_read: CACHE_MIN_BLOCKS_READ,
    },
    stats_reset: s.stats_reset,
    statements,
    database_size_bytes: s.database_size_bytes,
    growth_bytes_per_hour: growth,
    dead_tuples: {
      min_rows: config.dead_tuple_min_rows,
      grace_seconds: config.dead_tuple_grace_seconds,
      worst_ratio: worstDead?.ratio ?? 0,
      /** Tables over the ratio that autovacuum has not dealt with: the problem, if any. */
      lagging: lagging.length,
      worst_lagging_ratio: lagging[0]?.ratio ?? 0,
      tables: deadTables,
    },
    stale_statistics: {
      count: stale.length,
      min_changes: config.stale_stats_min_changes,
      ratio: config.stale_stats_ratio,
      older_than_seconds: config.stale_stats_seconds,
      tables: stale,
    },
    xid_age: s.xid.age,
    xid_age_database: s.xid.database,
    replication: {
      replicas: s.replicas,
      standby_replay_delay_seconds: s.standby_replay_delay_seconds,
    },
    replication_lag_seconds: lag,
  }
  // Slow statements are noted, not degrading: they open a slow_queries incident of their own.
  const slowList = (statements as { slow?: { queryid: string; mean_ms: number; calls: number }[] })
    .slow ?? []
  if (slowList.length > 0) {
    typed.push({
      kind: 'slow_statements',
      status: 'healthy',
      evidence: {
        statements: slowList.map(({ queryid, mean_ms, calls }) => ({ queryid, mean_ms, calls })),
      },
    })
  }
  // The worst status the lasting evidence alone proves: vigil.apply_check moves to it at once.
  const decisive = findings.filter((f) => f.decisive)
  if (decisive.length > 0) measurements.decisive_status = worst(...decisive.map((f) => f.status))
  return {
    status: worst(...findings.map((f) => f.status)),
    responseMs: c.responseMs,
    measurements,
    metrics,
    findings: typed,
    ...(findings.length > 0 ? { error: sentence(findings.map((f) => f.text)) } : {}),
  }
}

interface Waiter {
  pid: number
  backend_start: string | null
  usename: string | null
  application_name: string | null
  wait_event: string | null
  wait_seconds: number
  blocked_by: number[]
  root_blockers: number[]
  query: string | null
}

interface RootBlocker {
  pid: number
  /** With pid, names the backend exactly: a heal checks both before it acts. 0 = a prepared transaction. */
  backend_start: string | null
  datname: string | null
  usename: string | null
  application_name: string | null
  backend_type: string | null
  state: string | null
  xact_start: string | null
  transaction_seconds: number | null
  blocks: number
  query: string | null
}

/** Each waiter of this database with the blockers at the head of its chain (followed, cycles cut). */
function blockingChains(
  sessions: Session[],
  database: string,
): { waiters: Waiter[]; roots: RootBlocker[]; longest: number } {
  const byPid = new Map(sessions.map((x) => [x.pid, x]))
  const rootsOf = rootBlockers(byPid)
  const waiters: Waiter[] = sessions
    .filter((x) => isWaiting(x) && x.datname === database)
    .map((x) => ({
      pid: x.pid,
      backend_start: x.backend_start,
      usename: x.usename,
      application_name: x.application_name,
      wait_event: x.wait_event,
      wait_seconds: x.wait_seconds ?? 0,
      blocked_by: x.blocked_by!,
      root_blockers: rootsOf(x.pid),
      query: x.query,
    }))
    .sort((a, b) => b.wait_seconds - a.wait_seconds)
  const blocks = new Map<number, number>()
  for (const w of waiters) for (const r of w.root_blockers) blocks.set(r, (blocks.get(r) ?? 0) + 1)
  const roots: RootBlocker[] = [...blocks.entries()]
    .map(([pid, n]) => {
      const x = byPid.get(pid)
      return {
        pid,
        backend_start: x?.backend_start ?? null,
        datname: x?.datname ?? null,
        usename: x?.usename ?? null,
        application_name: x?.application_name ?? null,
        backend_type: x?.backend_type ?? (pid === 0 ? 'prepared transaction' : null),
        state: x?.state ?? null,
        xact_start: x?.xact_start ?? null,
        transaction_seconds: x?.transaction_seconds ?? null,
        blocks: n,
        query: x?.query ?? null,
      }
    })
    .sort((a, b) => b.blocks - a.blocks || a.pid - b.pid)
  return { waiters, roots, longest: waiters[0]?.wait_seconds ?? 0 }
}

function listed(rows: ListedSession[]) {
  return {
    total: rows[0]?.total ?? 0,
    sessions: rows.map(({ total: _, ...rest }) => ({
      ...rest,
      query: rest.query && scrubQuery(rest.query),
    })),
  }
}

/** A statement as compared with the ignore list: lower case, blanks collapsed, no final ';'. */
function normalised(query: string): string {
  return query.toLowerCase().replace(/\s+/g, ' ').trim().replace(/;$/, '').trim()
}

/** The findings as one sentence, worst first: 'Connections at 97% …; 2 deadlocks since …'. */
function sentence(parts: string[]): string {
  const text = parts.join('; ')
  return text.charAt(0).toUpperCase() + text.slice(1) + '.'
}
