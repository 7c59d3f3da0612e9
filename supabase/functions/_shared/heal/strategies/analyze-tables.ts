// analyze_tables: statistics so far out of date that the planner misjudges (many rows changed since
// the last ANALYZE, long ago) are brought up to date with ANALYZE of the tables concerned, the
// worst first. A table this role may analyze itself (its owner's, or any with MAINTAIN from
// Postgres 17) is analyzed here; any other through vigil.analyze_table, which checks it in the
// catalog (the agent owns nothing). ANALYZE only reads and replaces statistics: there is nothing to
// undo, and verify() checks that the tables' changed-row counts are back near zero.
import { z } from 'zod'
import { HealError, HumanNeeded } from '../types.ts'
import type { ActResult, HealContext, Plan, Problem, Strategy, Verification } from '../types.ts'
import { plural, refuseDryRun, targetOf } from '../sessions.ts'
import { actPerTable } from './per-table.ts'

const NAME = 'analyze_tables'

export const AnalyzeTablesConfig = z.strictObject({
  /** Rows changed since the last ANALYZE before a table counts (as the probe's stale_stats_*). */
  min_changes: z.number().int().min(1).default(10_000),
  /** …and as a share of its rows. */
  min_ratio: z.number().gt(0).max(100).default(0.2),
  /** …and its last ANALYZE older than this (seconds). */
  older_than_seconds: z.number().int().min(0).default(3600),
  /** At most this many tables in one heal, the most changed first. */
  max_tables: z.number().int().min(1).max(50).default(10),
  /** An ANALYZE waiting longer than this for its lock gives up on that table. */
  lock_timeout_ms: z.number().int().min(1).max(600_000).default(5000),
})
export type AnalyzeTablesConfig = z.infer<typeof AnalyzeTablesConfig>

const Table = z.object({
  oid: z.string(),
  schema: z.string(),
  table: z.string(),
  rows: z.number(),
  changed: z.number(),
  last_analyze: z.string().nullable(),
  /** direct: this role runs ANALYZE; definer: through vigil.analyze_table. */
  via: z.enum(['direct', 'definer']),
})
type Table = z.infer<typeof Table>
const Target = z.object({ tables: z.array(Table).min(1) })

interface Row extends Omit<Table, 'via'> {
  may_analyze: boolean
  by_function: boolean
  owner: string
}

async function stale(ctx: HealContext, config: AnalyzeTablesConfig): Promise<Row[]> {
  const sql = targetOf(ctx, NAME)
  return await sql<Row[]>`
    select c.oid::text as oid, n.nspname as schema, c.relname as table,
           pg_stat_get_live_tuples(c.oid)::float8 as rows,
           pg_stat_get_mod_since_analyze(c.oid)::float8 as changed,
           to_json(greatest(pg_stat_get_last_analyze_time(c.oid), pg_stat_get_last_autoanalyze_time(c.oid))) #>> '{}'
             as last_analyze,
           pg_get_userbyid(c.relowner)::text as owner,
           (coalesce((select rolsuper from pg_roles where rolname = current_user), false)
            or pg_has_role(c.relowner, 'USAGE')
            or case when current_setting('server_version_num')::int >= 170000
                    then has_table_privilege(c.oid, 'MAINTAIN') else false end) as may_analyze,
           (n.nspname !~ '^pg_' and n.nspname not in ('cron', 'information_schema')
            and coalesce(has_function_privilege(
                  to_regprocedure('vigil.analyze_table(text, text)'), 'EXECUTE'), false)) as by_function
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'm') and c.relpersistence <> 't'
      and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_toast'
      and pg_stat_get_mod_since_analyze(c.oid) >= ${config.min_changes}::bigint
      and pg_stat_get_mod_since_analyze(c.oid)
          >= ${config.min_ratio}::float8 * greatest(pg_stat_get_live_tuples(c.oid), 1)
      and coalesce(greatest(pg_stat_get_last_analyze_time(c.oid), pg_stat_get_last_autoanalyze_time(c.oid)),
                   '-infinity') < now() - make_interval(secs => ${config.older_than_seconds}::float8)
      and not exists (select from pg_stat_progress_analyze a where a.relid = c.oid)
    order by pg_stat_get_mod_since_analyze(c.oid) desc`
}

async function plan(
  problem: Problem,
  ctx: HealContext,
  policy: AnalyzeTablesConfig,
): Promise<Plan | null> {
  // The thresholds the probe judged by (the service's stale_stats_*), where the finding carries them.
  const t = (problem.evidence.thresholds ?? {}) as Record<string, unknown>
  const num = (v: unknown, fallback: number) => (typeof v === 'number' ? v : fallback)
  const config = {
    ...policy,
    min_changes: num(t.min_changes, policy.min_changes),
    min_ratio: num(t.min_ratio, policy.min_ratio),
    older_than_seconds: num(t.older_than_seconds, policy.older_than_seconds),
  }
  const rows = await stale(ctx, config)
  if (rows.length === 0) return null
  const eligible = rows.filter((r) => r.may_analyze || r.by_function)
  if (eligible.length === 0) {
    const which = rows.slice(0, 5).map((r) => `${r.schema}.${r.table} (owner ${r.owner})`)
    throw new HumanNeeded(
      `${plural(rows.length, 'table')} have stale statistics, but this role may analyze none of ` +
        `them: ${which.join(', ')}.`,
    )
  }
  const chosen: Table[] = eligible.slice(0, config.max_tables).map((
    { may_analyze, by_function: _b, owner: _o, ...t },
  ) => ({ ...t, via: may_analyze ? 'direct' : 'definer' }))
  const worst = chosen[0]
  return {
    action: 'analyze',
    target: { tables: chosen },
    reason: `${plural(chosen.length, 'table')} changed so much since the last ANALYZE that the ` +
      `planner misjudges them (worst ${worst.schema}.${worst.table}: ${worst.changed} rows ` +
      `changed of ${worst.rows}): ANALYZE ${chosen.length === 1 ? 'it' : 'them'}.`,
    before: {
      tables: chosen.map(({ schema, table, rows, changed, last_analyze }) => ({
        schema,
        table,
        rows,
        changed,
        last_analyze,
      })),
    },
  }
}

async function act(plan: Plan, ctx: HealContext, config: AnalyzeTablesConfig): Promise<ActResult> {
  refuseDryRun(ctx, NAME)
  const { tables } = Target.parse(plan.target)
  const { done, skipped } = await actPerTable(
    ctx,
    NAME,
    { lockTimeoutMs: config.lock_timeout_ms, doing: 'analyzing' },
    tables,
    (conn, t, quoted) => ({
      run: t.via === 'direct'
        ? conn.unsafe(`analyze ${quoted}`)
        : conn`select vigil.analyze_table(${t.schema}, ${t.table})`,
    }),
  )
  if (done.length === 0) throw new HealError(`Nothing analyzed: ${skipped.join('; ')}.`)
  const parts = [`ANALYZE ran on ${done.join(', ')}`]
  if (skipped.length > 0) parts.push(`skipped ${skipped.join('; ')}`)
  return { detail: parts.join('; ') + '.' }
}

async function verify(
  plan: Plan,
  _result: ActResult,
  ctx: HealContext,
): Promise<Verification> {
  const { tables } = Target.parse(plan.target)
  const sql = targetOf(ctx, NAME)
  const wanted = JSON.stringify(tables.map(({ oid }) => oid))
  const rows = await sql<{ oid: string; changed: number; analyzed: string | null }[]>`
    select o.oid, pg_stat_get_mod_since_analyze(o.oid::oid)::float8 as changed,
           to_json(greatest(pg_stat_get_last_analyze_time(o.oid::oid),
                            pg_stat_get_last_autoanalyze_time(o.oid::oid))) #>> '{}' as analyzed
    from jsonb_array_elements_text(${wanted}::text::jsonb) as o(oid)`
  const after = tables.map((t) => {
    const r = rows.find((x) => x.oid === t.oid)
    return {
      schema: t.schema,
      table: t.table,
      changed_before: t.changed,
      changed: r?.changed ?? 0,
      last_analyze: r?.analyzed ?? null,
    }
  })
  // The statistics reach shared memory when the ANALYZE's backend reports them; the new analyze
  // time is what proves it ran, and the changed count starts again from (near) zero.
  const fresh = after.filter((a) => a.last_analyze !== null && a.changed < a.changed_before)
  return {
    improved: fresh.length > 0,
    worse: false,
    after: { tables: after },
    detail: `${plural(fresh.length, 'table')} of ${tables.length} analyzed afresh` +
      (fresh.length < tables.length
        ? `; not yet: ${
          after.filter((a) => !fresh.includes(a)).map((a) => `${a.schema}.${a.table}`).join(', ')
        }`
        : ''),
  }
}

export const analyzeTablesStrategy: Strategy<AnalyzeTablesConfig> = {
  name: NAME,
  irreversible: 'ANALYZE only replaces statistics with truer ones: nothing would restore the old',
  problem: 'stale_statistics',
  config: AnalyzeTablesConfig,
  plan,
  act,
  verify,
}
