// vacuum_analyze (daily): VACUUM (ANALYZE) of tables past a dead-tuple threshold and ANALYZE of
// tables much changed since their last ANALYZE, the worst 10 first (autovacuum is late on big
// tables). Vigil's own tables count too: probes and retention deletes bloat them every day. The
// agent owns no table: VACUUM goes to pg_cron (vigil.request_vacuum), ANALYZE through
// vigil.analyze_table.
import type postgres from 'postgres'
import { awaitVacuum, requestVacuum } from '../../vacuum-requests.ts'
import { reason } from '../runner.ts'
import { readSettings, refuseBadSettings, share, wholeNumber } from '../settings.ts'
import { type MaintenanceTask, type TaskContext, TaskError, type TaskResult } from '../types.ts'

/** Each threshold: its env variable, its rule and its default. */
const SETTINGS = {
  VIGIL_MAINTENANCE_VACUUM_MIN_DEAD_TUPLES: [wholeNumber(0), 1000],
  VIGIL_MAINTENANCE_VACUUM_MIN_DEAD_RATIO: [share, 0.1],
  VIGIL_MAINTENANCE_ANALYZE_MIN_CHANGES: [wholeNumber(0), 500],
  VIGIL_MAINTENANCE_ANALYZE_MIN_CHANGED_RATIO: [share, 0.1],
  VIGIL_MAINTENANCE_MAX_TABLES: [wholeNumber(1, 50), 10],
} as const
/** Comma-separated schemas to look in; unset, every schema but the catalogs' and pg_cron's. */
const SCHEMAS_ENV = 'VIGIL_MAINTENANCE_SCHEMAS'

export interface Thresholds {
  min_dead_tuples: number
  min_dead_ratio: number
  min_changes: number
  min_changed_ratio: number
  max_tables: number
  schemas: string[] | null
}

/** The thresholds from the environment, every bad value reported at once. */
export function thresholdsFrom(env: TaskContext['env']): Thresholds {
  const { values: v, problems } = readSettings(env, SETTINGS)
  const rawSchemas = env(SCHEMAS_ENV)?.trim()
  const schemas = rawSchemas ? rawSchemas.split(',').map((s) => s.trim()) : null
  if (schemas?.some((s) => s === '')) problems.push(`${SCHEMAS_ENV} has an empty schema name`)
  refuseBadSettings(problems)
  return {
    min_dead_tuples: v.VIGIL_MAINTENANCE_VACUUM_MIN_DEAD_TUPLES,
    min_dead_ratio: v.VIGIL_MAINTENANCE_VACUUM_MIN_DEAD_RATIO,
    min_changes: v.VIGIL_MAINTENANCE_ANALYZE_MIN_CHANGES,
    min_changed_ratio: v.VIGIL_MAINTENANCE_ANALYZE_MIN_CHANGED_RATIO,
    max_tables: v.VIGIL_MAINTENANCE_MAX_TABLES,
    schemas,
  }
}

export interface Candidate {
  oid: string
  schema: string
  table: string
  /** vacuum_analyze: dead tuples over the threshold; analyze: only the changes are. */
  action: 'vacuum_analyze' | 'analyze'
  live: number
  dead: number
  dead_ratio: number
  changed_since_analyze: number
  /** pg_class.reltuples: the planner's row count (-1 before the first VACUUM or ANALYZE). */
  planner_rows: number
  last_vacuum: string | null
  last_analyze: string | null
}

export interface VacuumPlan {
  thresholds: Thresholds
  tables: Candidate[]
  /** Over a threshold but past max_tables: the next run takes them. */
  left_for_next_run: number
}

export interface Step {
  table: string
  action: Candidate['action']
  /** pending: handed to pg_cron, which had not run it when the run's time ran out. */
  outcome: 'done' | 'failed' | 'pending' | 'not_started'
  detail: string
  request_id?: number
  dead_before?: number
  dead_after?: number
  changed_before?: number
  seconds?: number
}

/** The tables over a threshold, the worst (most rows dead or changed) first. */
export async function planVacuumAnalyze(sql: postgres.Sql, t: Thresholds): Promise<VacuumPlan> {
  const rows = await sql<(Candidate & { over: number })[]>`
    with stats as (
      select c.oid, n.nspname, c.relname, c.reltuples::float8 as planner_rows,
             pg_stat_get_live_tuples(c.oid)::float8 as live,
             pg_stat_get_dead_tuples(c.oid)::float8 as dead,
             pg_stat_get_mod_since_analyze(c.oid)::float8 as changed,
             greatest(pg_stat_get_last_vacuum_time(c.oid), pg_stat_get_last_autovacuum_time(c.oid))
               as last_vacuum,
             greatest(pg_stat_get_last_analyze_time(c.oid),
                      pg_stat_get_last_autoanalyze_time(c.oid)) as last_analyze
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where c.relkind in ('r', 'm') and c.relpersistence <> 't'
         and n.nspname !~ '^pg_' and n.nspname not in ('information_schema', 'cron')
         and (${t.schemas}::text[] is null or n.nspname = any(${t.schemas}::text[]))
         -- Autovacuum (or someone) is at it already.
         and not exists (select from pg_stat_progress_vacuum p where p.relid = c.oid)
         and not exists (select from pg_stat_progress_analyze p where p.relid = c.oid)
    ), judged as (
      select s.*,
             s.dead >= ${t.min_dead_tuples}::float8
               and s.dead / nullif(s.live + s.dead, 0) >= ${t.min_dead_ratio}::float8
               as needs_vacuum,
             s.changed >= greatest(${t.min_changes}::float8,
                                   ${t.min_changed_ratio}::float8 * greatest(s.planner_rows, 0))
               as needs_analyze
        from stats s
    )
    select j.oid::text as oid, j.nspname as schema, j.relname as table,
           case when j.needs_vacuum then 'vacuum_analyze' else 'analyze' end as action,
           j.live, j.dead,
           round((j.dead / nullif(j.live + j.dead, 0))::numeric, 4)::float8 as dead_ratio,
           j.changed as changed_since_analyze, j.planner_rows,
           to_json(j.last_vacuum) #>> '{}' as last_vacuum,
           to_json(j.last_analyze) #>> '{}' as last_analyze,
           count(*) over ()::int as over
      from judged j
     where j.needs_vacuum or j.needs_analyze
     order by greatest(case when j.needs_vacuum then j.dead else 0 end,
                       case when j.needs_analyze then j.changed else 0 end) desc,
              j.nspname, j.relname
     limit ${t.max_tables}::int`
  return {
    thresholds: t,
    tables: rows.map(({ over: _o, ...c }) => ({ ...c, dead_ratio: c.dead_ratio ?? 0 })),
    left_for_next_run: Math.max(0, (rows[0]?.over ?? 0) - rows.length),
  }
}

/**
 * Acts on the plan: every VACUUM is asked of pg_cron first (they run side by side), then each
 * ANALYZE runs, then the VACUUMs are waited for until they ran or the signal aborts. A table that
 * fails (dropped since the plan, say) is a failed step; the others go on.
 */
export async function actVacuumAnalyze(
  sql: postgres.Sql,
  plan: VacuumPlan,
  signal: AbortSignal,
): Promise<Step[]> {
  const steps = new Map<Candidate, Step>()
  const requested: { table: Candidate; id: number }[] = []
  for (const t of plan.tables.filter((c) => c.action === 'vacuum_analyze')) {
    const base = { table: `${t.schema}.${t.table}`, action: t.action, dead_before: t.dead }
    try {
      const id = await requestVacuum(sql, t.schema, t.table)
      requested.push({ table: t, id })
      steps.set(t, { ...base, outcome: 'pending', detail: 'handed to pg_cron', request_id: id })
    } catch (error) {
      steps.set(t, { ...base, outcome: 'failed', detail: why(error) })
    }
  }
  for (const t of plan.tables.filter((c) => c.action === 'analyze')) {
    const base = {
      table: `${t.schema}.${t.table}`,
      action: t.action,
      changed_before: t.changed_since_analyze,
    }
    if (signal.aborted) {
      steps.set(t, { ...base, outcome: 'not_started', detail: 'the run ran out of time first' })
      continue
    }
    const started = performance.now()
    try {
      await sql`select vigil.analyze_table(${t.schema}, ${t.table})`
      steps.set(t, { ...base, outcome: 'done', detail: 'ANALYZE ran', seconds: since(started) })
    } catch (error) {
      steps.set(t, { ...base, outcome: 'failed', detail: why(error) })
    }
  }
  await Promise.all(requested.map(async ({ table: t, id }) => {
    const step = steps.get(t)!
    const ran = await awaitVacuum(sql, id, signal)
    step.seconds = Math.round(ran.seconds * 10) / 10
    if (ran.state === 'succeeded') {
      const [row] = await sql<{ dead: number }[]>`
        select pg_stat_get_dead_tuples(${t.oid}::text::oid)::float8 as dead`
      Object.assign(step, { outcome: 'done', detail: 'VACUUM (ANALYZE) ran', dead_after: row.dead })
    } else if (ran.state === 'queued' || ran.state === 'running') {
      step.detail = `handed to pg_cron, still ${ran.state} when the run's time ran out; ` +
        'pg_cron runs it regardless'
    } else {
      step.outcome = 'failed'
      step.detail = ran.state === 'abandoned'
        ? (ran.detail ?? 'pg_cron did not run it')
        : `pg_cron's run failed: ${ran.detail ?? 'no detail'}`
    }
  }))
  return plan.tables.map((t) => steps.get(t)!)
}

function why(error: unknown): string {
  const code = (error as { code?: string }).code
  if (code === '42P01') return 'it no longer exists (dropped or renamed since the plan)'
  if (code === '55P03') return 'its lock was not free'
  return reason(error)
}

function since(started: number): number {
  return Math.round((performance.now() - started) / 100) / 10
}

const n = (x: number) => Math.round(x).toLocaleString('en-US')
const tables = (k: number) => `${k} table${k === 1 ? '' : 's'}`

export function summarise(plan: VacuumPlan, steps: Step[]): string {
  if (steps.length === 0) return 'nothing over the thresholds'
  const of = (action: Step['action'], outcome: Step['outcome']) =>
    steps.filter((s) => s.action === action && s.outcome === outcome)
  const vacuumed = of('vacuum_analyze', 'done')
  const analyzed = of('analyze', 'done')
  const pending = steps.filter((s) => s.outcome === 'pending')
  const failed = steps.filter((s) => s.outcome === 'failed')
  const notStarted = steps.filter((s) => s.outcome === 'not_started')
  const parts: string[] = []
  const list = (items: string[]) =>
    items.length > 3 ? `${items.slice(0, 3).join('; ')}; …` : items.join('; ')
  if (vacuumed.length > 0) {
    parts.push(
      `vacuumed ${tables(vacuumed.length)} (${
        list(
          vacuumed.map((s) => `${s.table}: ${n(s.dead_before!)} dead tuples → ${n(s.dead_after!)}`),
        )
      })`,
    )
  }
  if (analyzed.length > 0) parts.push(`analyzed ${analyzed.length}`)
  if (pending.length > 0) {
    parts.push(
      `${pending.length} left with pg_cron when time ran out (${
        list(pending.map((s) => s.table))
      })`,
    )
  }
  if (notStarted.length > 0) parts.push(`${notStarted.length} not started in time`)
  if (failed.length > 0) {
    parts.push(`${failed.length} failed (${list(failed.map((s) => `${s.table}: ${s.detail}`))})`)
  }
  if (plan.left_for_next_run > 0) {
    parts.push(`${tables(plan.left_for_next_run)} more over the thresholds left for the next run`)
  }
  return parts.join(', ')
}

export const vacuumAnalyze: MaintenanceTask = {
  name: 'vacuum_analyze',
  cadence: 'daily',
  description:
    'VACUUM (ANALYZE) of tables with many dead tuples and ANALYZE of tables changed much since their last ANALYZE, the worst 10 first.',
  async run({ sql, env, signal }): Promise<TaskResult> {
    const plan = await planVacuumAnalyze(sql, thresholdsFrom(env))
    const steps = await actVacuumAnalyze(sql, plan, signal)
    const summary = summarise(plan, steps)
    // Only failures: the run failed (and is retried once); one failure among others is a step.
    if (steps.length > 0 && steps.every((s) => s.outcome === 'failed')) {
      throw new TaskError(`nothing done: ${summary}`)
    }
    return { status: 'succeeded', summary, findings: plan.tables, actions: steps }
  },
}
