// vacuum_analyze: runs VACUUM (ANALYZE) on the tables with the largest share of dead tuples.
// A table this role may vacuum (its owner's, or any with MAINTAIN from Postgres 17) is vacuumed
// here; one it may not (the agent owns nothing) is handed to pg_cron through vigil.request_vacuum
// where the target has it, since VACUUM cannot run inside a function; others are left out at the
// plan, since VACUUM only warns and skips them. Names are quoted by Postgres itself (format %I)
// from the table's oid at act time, so a table renamed or dropped since the plan is skipped.
import type postgres from 'postgres'
import { z } from 'zod'
import { HealError, HumanNeeded } from '../types.ts'
import type { ActResult, HealContext, Plan, Problem, Strategy, Verification } from '../types.ts'
import { pause, plural, refuseDryRun, targetOf } from '../sessions.ts'
import { actPerTable } from './per-table.ts'
import { awaitVacuum, requestVacuum } from '../../vacuum-requests.ts'

const NAME = 'vacuum_analyze'
const POLL_MS = 200

export const VacuumAnalyzeConfig = z.strictObject({
  /** Dead tuples as a share of live plus dead. */
  min_ratio: z.number().gt(0).max(1).default(0.2),
  /** Ignore tables with fewer rows (live plus dead) than this. */
  min_rows: z.number().int().min(0).default(1000),
  /** At most this many tables in one heal, the worst first. */
  max_tables: z.number().int().min(1).max(50).default(5),
  /** A VACUUM waiting longer than this for its lock gives up on that table (lock_timeout). */
  lock_timeout_ms: z.number().int().min(1).max(600_000).default(5000),
  /** How long verify() waits for the statistics to show the dead tuples gone. */
  verify_wait_ms: z.number().int().min(0).max(60_000).default(5000),
})
export type VacuumAnalyzeConfig = z.infer<typeof VacuumAnalyzeConfig>

const Table = z.object({
  oid: z.string(),
  schema: z.string(),
  table: z.string(),
  live: z.number(),
  dead: z.number(),
  ratio: z.number(),
  last_vacuum: z.string().nullable(),
  last_autovacuum: z.string().nullable(),
  /** direct: this role runs VACUUM; pg_cron: vigil.request_vacuum hands it to pg_cron. */
  via: z.enum(['direct', 'pg_cron']).default('direct'),
})
type Table = z.infer<typeof Table>
const Target = z.object({ tables: z.array(Table).min(1) })

interface Row extends Table {
  can_vacuum: boolean
  by_request: boolean
  owner: string
}

async function bloated(ctx: HealContext, config: VacuumAnalyzeConfig): Promise<Row[]> {
  const sql = targetOf(ctx, NAME)
  // VACUUM is allowed to the owner, the database owner (not on shared catalogs), a superuser and,
  // from Postgres 17, whoever holds MAINTAIN on the table.
  return await sql<Row[]>`
    with t as (
      select c.oid, n.nspname, c.relname, c.relowner, c.relisshared,
             pg_stat_get_live_tuples(c.oid)::float8 as live,
             pg_stat_get_dead_tuples(c.oid)::float8 as dead
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'm') and c.relpersistence <> 't'
        and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_toast'
    )
    select t.oid::text as oid, t.nspname as schema, t.relname as table, t.live, t.dead,
           round((t.dead / (t.live + t.dead))::numeric, 4)::float8 as ratio,
           to_json(pg_stat_get_last_vacuum_time(t.oid)) #>> '{}' as last_vacuum,
           to_json(pg_stat_get_last_autovacuum_time(t.oid)) #>> '{}' as last_autovacuum,
           pg_get_userbyid(t.relowner)::text as owner,
           (coalesce((select rolsuper from pg_roles where rolname = current_user), false)
            or pg_has_role(t.relowner, 'USAGE')
            or (not t.relisshared and pg_has_role(
                  (select datdba from pg_database where datname = current_database()), 'USAGE'))
            or case when current_setting('server_version_num')::int >= 170000
                    then has_table_privilege(t.oid, 'MAINTAIN') else false end) as can_vacuum,
           (t.nspname !~ '^pg_' and t.nspname not in ('cron', 'information_schema')
            and coalesce(has_function_privilege(
                  to_regprocedure('vigil.request_vacuum(text, text)'), 'EXECUTE'), false)) as by_request
    from t
    where t.dead > 0 and t.live + t.dead >= ${config.min_rows}::float8
      and t.dead / (t.live + t.dead) >= ${config.min_ratio}::float8
    order by t.dead / (t.live + t.dead) desc, t.dead desc`
}

async function plan(
  _problem: Problem,
  ctx: HealContext,
  config: VacuumAnalyzeConfig,
): Promise<Plan | null> {
  const rows = await bloated(ctx, config)
  if (rows.length === 0) return null
  const denied = rows.filter((r) => !r.can_vacuum && !r.by_request)
  const eligible = rows.filter((r) => r.can_vacuum || r.by_request)
  const deniedWords = denied.slice(0, 5).map((r) => `${r.schema}.${r.table} (owner ${r.owner})`)
  if (eligible.length === 0) {
    throw new HumanNeeded(
      `${plural(rows.length, 'table')} have at least ${Math.round(config.min_ratio * 100)}% dead ` +
        `tuples, but this role may vacuum none of them: ${deniedWords.join(', ')}.`,
    )
  }
  const chosen: Table[] = eligible.slice(0, config.max_tables).map((
    { can_vacuum, by_request: _b, owner: _o, ...t },
  ) => ({ ...t, via: can_vacuum ? 'direct' : 'pg_cron' }))
  const worst = chosen[0]
  return {
    action: 'vacuum_analyze',
    target: { tables: chosen },
    reason:
      `${plural(chosen.length, 'table')} have at least ${Math.round(config.min_ratio * 100)}% ` +
      `dead tuples (worst ${worst.schema}.${worst.table}: ${Math.round(worst.ratio * 100)}% of ` +
      `${worst.live + worst.dead} rows): VACUUM (ANALYZE) ${chosen.length === 1 ? 'it' : 'them'}.`,
    before: {
      tables: chosen.map(({ schema, table, live, dead, ratio }) => ({
        schema,
        table,
        live,
        dead,
        ratio,
      })),
      dead_total: chosen.reduce((n, t) => n + t.dead, 0),
      not_permitted: deniedWords,
      over_max_tables: Math.max(0, eligible.length - config.max_tables),
    },
  }
}

async function act(plan: Plan, ctx: HealContext, config: VacuumAnalyzeConfig): Promise<ActResult> {
  refuseDryRun(ctx, NAME)
  const { tables } = Target.parse(plan.target)
  // VACUUM runs alone as its own statement, outside any transaction block.
  const { done, skipped } = await actPerTable(
    ctx,
    NAME,
    { lockTimeoutMs: config.lock_timeout_ms, doing: 'vacuuming' },
    tables,
    async (conn, t, quoted) =>
      t.via === 'pg_cron'
        ? { outcome: await byRequest(conn, t, ctx.signal) }
        : { run: conn.unsafe(`vacuum (analyze) ${quoted}`) },
  )
  if (done.length === 0) {
    throw new HealError(`Nothing vacuumed: ${skipped.join('; ')}.`)
  }
  const parts = [`VACUUM (ANALYZE) ran on ${done.join(', ')}`]
  if (skipped.length > 0) parts.push(`skipped ${skipped.join('; ')}`)
  return { detail: parts.join('; ') + '.' }
}

/**
 * VACUUM by pg_cron, through vigil.request_vacuum (which checks the table in the catalog), waited
 * for until it ran or the heal's deadline; a run still pending then is reported as handed over.
 */
async function byRequest(
  conn: postgres.ReservedSql<any>,
  t: Table,
  signal: AbortSignal,
): Promise<{ ok: boolean; line: string }> {
  let id: number
  try {
    id = await requestVacuum(conn, t.schema, t.table)
  } catch (err) {
    return { ok: false, line: `pg_cron could not be asked: ${(err as Error).message}` }
  }
  const { state, detail, seconds } = await awaitVacuum(conn, id, signal)
  if (state === 'succeeded') {
    return { ok: true, line: `by pg_cron, request ${id}, ${seconds.toFixed(1)} s` }
  }
  if (state === 'queued' || state === 'running') {
    return { ok: true, line: `handed to pg_cron, request ${id}, still ${state} at the deadline` }
  }
  return { ok: false, line: `pg_cron's run ${state}: ${detail ?? 'no detail'}` }
}

async function verify(
  plan: Plan,
  _result: ActResult,
  ctx: HealContext,
  config: VacuumAnalyzeConfig,
): Promise<Verification> {
  const { tables } = Target.parse(plan.target)
  const sql = targetOf(ctx, NAME)
  const wanted = JSON.stringify(tables.map(({ oid }) => oid))
  const until = Date.now() + config.verify_wait_ms
  while (true) {
    // The statistics reach shared memory asynchronously (through the collector before 15): poll.
    const rows = await sql<{ oid: string; live: number; dead: number }[]>`
      select o.oid, pg_stat_get_live_tuples(o.oid::oid)::float8 as live,
             pg_stat_get_dead_tuples(o.oid::oid)::float8 as dead
      from jsonb_array_elements_text(${wanted}::text::jsonb) as o(oid)
      where exists (select from pg_class c where c.oid = o.oid::oid)`
    const after = tables.map((t) => {
      const r = rows.find((x) => x.oid === t.oid)
      const ratio = r && r.live + r.dead > 0
        ? Math.round(10_000 * r.dead / (r.live + r.dead)) / 10_000
        : 0
      return {
        schema: t.schema,
        table: t.table,
        dropped: !r,
        live: r?.live ?? 0,
        dead: r?.dead ?? 0,
        ratio,
        dead_before: t.dead,
      }
    })
    const fell = after.filter((a) => a.dropped || a.dead < a.dead_before)
    if (fell.length === after.length || Date.now() >= until) {
      const deadBefore = tables.reduce((n, t) => n + t.dead, 0)
      const deadAfter = after.reduce((n, a) => n + a.dead, 0)
      const stuck = after.filter((a) => !fell.includes(a))
      let detail = `Dead tuples fell from ${deadBefore} to ${deadAfter} over ${
        plural(tables.length, 'table')
      }`
      if (stuck.length > 0) {
        const horizon = await xminHorizon(ctx)
        detail += `; unchanged on ${stuck.map((a) => `${a.schema}.${a.table}`).join(', ')}` +
          (horizon ? ` (${horizon})` : '')
      }
      return {
        improved: deadAfter < deadBefore,
        worse: false,
        after: { tables: after, dead_total: deadAfter },
        detail: detail + '.',
      }
    }
    await pause(POLL_MS, ctx.signal, 'verifying the vacuum')
  }
}

/** What may keep VACUUM from removing dead tuples: the oldest snapshot still open. */
async function xminHorizon(ctx: HealContext): Promise<string | null> {
  const sql = targetOf(ctx, NAME)
  const [row] = await sql<{ pid: number | null; seconds: number | null; slot: string | null }[]>`
    select (select pid from pg_stat_activity where backend_xmin is not null and pid <> pg_backend_pid()
            order by age(backend_xmin) desc limit 1) as pid,
           (select extract(epoch from now() - xact_start)::int from pg_stat_activity
            where backend_xmin is not null and pid <> pg_backend_pid()
            order by age(backend_xmin) desc limit 1) as seconds,
           (select slot_name::text from pg_replication_slots where xmin is not null or catalog_xmin is not null
            order by greatest(age(xmin), age(catalog_xmin)) desc nulls last limit 1) as slot`
  if (row.slot) return `replication slot ${row.slot} may hold back the xmin horizon`
  if (row.pid !== null) {
    return `the oldest open snapshot is pid ${row.pid}'s` +
      (row.seconds !== null ? `, in a transaction for ${row.seconds} s` : '')
  }
  return null
}

export const vacuumAnalyzeStrategy: Strategy<VacuumAnalyzeConfig> = {
  name: NAME,
  irreversible:
    'VACUUM only frees dead rows and refreshes statistics: there is nothing to put back',
  problem: 'dead_tuples',
  config: VacuumAnalyzeConfig,
  plan,
  act,
  verify,
}
