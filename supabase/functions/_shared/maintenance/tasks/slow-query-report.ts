// slow_query_report (daily): the project database's slowest statements — pg_stat_statements, mean
// time a call past the environment's slow_query_ms — each with what its generic plan says: a
// sequential scan over a large table, a missing index (the index advisor's CREATE INDEX and
// hypopg's estimate), a cartesian product or row explosion in a join, correlated subqueries one
// aggregation could replace. The top ones are kept as slow_query recommendations (one per
// statement, resolved when it leaves the top) and reach the daily report as "Top 3 slowest
// queries". Plans are generic plans of vetted statements (vet-statement.ts): nothing is executed,
// and a statement whose planning could run code outside pg_catalog is named without a plan.
import type postgres from 'postgres'
import { settingsFrom, type Values, wholeNumber } from '../settings.ts'
import {
  ms,
  projectDatabaseServices,
  round,
  shorten,
  syncActions,
  syncRecommendations,
} from '../history.ts'
import type { MaintenanceTask, TaskResult } from '../types.ts'
import {
  type AdviceStatement,
  adviseStatements,
} from '../../heal/strategies/add-missing-index/index.ts'
import { type PlanFinding, planFindings } from '../../analysis/plan-findings.ts'
import type { PlanNode } from '../../heal/strategies/add-missing-index/plan-reading.ts'

export const SLOW_QUERY_SETTINGS = {
  /** How many statements the report names (and keeps as recommendations). */
  VIGIL_SLOW_QUERY_TOP: [wholeNumber(1, 20), 3],
  /** A statement called fewer times than this since the statistics' reset is left out (a one-off load or migration is not the app's slow query). */
  VIGIL_SLOW_QUERY_MIN_CALLS: [wholeNumber(1), 2],
} as const
type SlowQuerySettings = Values<typeof SLOW_QUERY_SETTINGS>

export const RECOMMENDATION_KIND = 'slow_query'

/** Statements reported: DML and queries (utility statements such as CREATE INDEX are not). */
const QUERY_RE = String
  .raw`^(\s|/\*([^*]|\*+[^*/])*\*+/|--[^\n]*(\n|$))*(select|with|update|delete|insert|merge|table|values)\M`
/** `PREPARE name (types) AS `, before the statement itself. */
const PREPARE_RE = String.raw`^\s*prepare\s+[^\s(]+\s*(\([^)]*\))?\s+as\s+`

/**
 * Vigil's own statements: those carrying its marker comment, and those calling its functions or
 * reading its tables (pg_cron runs its jobs as their owner, not as a vigil_ role).
 */
const VIGIL_MARK_RE = String.raw`/\*\s*vigil:|\m"?vigil"?\.`

/** One statement of the report, with its plan's findings. */
export interface SlowQuery {
  kind: 'slow_query'
  rank: number
  queryid: string
  role: string | null
  /** The statement as pg_stat_statements normalised it, quoted strings masked, at most 300 characters. */
  query: string
  calls: number
  mean_ms: number
  total_ms: number
  /** Of all statements' time in this database since the statistics' reset. */
  share_of_time: number
  /** The plan's top node and its estimated cost, or null when it was not planned. */
  plan: { node: string; cost: number } | null
  /** Why there is no plan or no index estimate, when there is none. */
  note?: string
  findings: PlanFinding[]
  /** The report's entry for people, in Markdown. */
  text: string
}

export const slowQueryReport: MaintenanceTask = {
  name: 'slow_query_report',
  cadence: 'daily',
  description:
    "Names the 3 slowest statements of the project database (pg_stat_statements, past slow_query_ms) with what their generic plans say — a sequential scan over a large table, a missing index with hypopg's estimate and its CREATE INDEX, a cartesian product or row explosion, correlated subqueries one aggregation could replace — as slow_query recommendations and in the daily report.",
  async run({ sql, env }): Promise<TaskResult> {
    const s = settingsFrom(env, SLOW_QUERY_SETTINGS)
    const ext = await extensions(sql)
    if (!ext.pss) {
      return {
        status: 'not_applicable',
        summary:
          'pg_stat_statements is not installed in this database: there are no statement statistics to report',
      }
    }
    const services = await projectDatabaseServices(sql)
    const service = services[0]
    if (!service) {
      return {
        status: 'not_applicable',
        summary: 'no Postgres service watches this database: nothing to attach the report to',
      }
    }
    const threshold = await slowQueryMs(sql)
    const report = await slowQueries(sql, ext, threshold, s)
    const synced = await syncRecommendations(
      sql,
      RECOMMENDATION_KIND,
      report.statements.map((q) => ({
        service_id: service.id,
        key: q.queryid,
        title: titleOf(q),
        detail: {
          rank: q.rank,
          query: q.query,
          role: q.role,
          calls: q.calls,
          mean_ms: q.mean_ms,
          share_of_time: q.share_of_time,
          plan: q.plan,
          findings: q.findings,
          ...(q.note ? { note: q.note } : {}),
          text: q.text,
        },
      })),
    )
    // The N+1 patterns the analysis keeps open (analysis/nplusone.ts) belong in the same report:
    // each call is fast, together they are the slow page.
    const nPlusOne = await sql<NPlusOne[]>`
      select 'n_plus_one' as kind, r.title, r.detail ->> 'suggestion' as suggestion,
             to_json(r.created_at) #>> '{}' as since
        from vigil.recommendations r
       where r.kind = 'n_plus_one' and r.status = 'open'
         and r.service_id::text = any(string_to_array(${services.map((x) => x.id).join(',')}, ','))
       order by r.created_at`
    return {
      status: 'succeeded',
      summary: summarise(report, threshold, nPlusOne.length),
      findings: [...report.statements, ...nPlusOne],
      actions: syncActions(RECOMMENDATION_KIND, synced),
    }
  },
}

/** An open N+1 pattern, as the report lists it after the statements. */
export interface NPlusOne {
  kind: 'n_plus_one'
  title: string
  suggestion: string | null
  since: string
}

interface Extensions {
  pss: string | null
  hypopg: string | null
  reset_at: Date | null
}

async function extensions(sql: postgres.Sql): Promise<Extensions> {
  const rows = await sql<{ extname: string; schema: string }[]>`
    select e.extname::text, n.nspname::text as schema
      from pg_extension e join pg_namespace n on n.oid = e.extnamespace
     where e.extname in ('pg_stat_statements', 'hypopg')`
  const pss = rows.find((r) => r.extname === 'pg_stat_statements')?.schema ?? null
  let reset_at: Date | null = null
  if (pss) {
    const [info] = await sql<{ reset_at: Date | null }[]>`
      select stats_reset as reset_at from ${sql(pss)}.pg_stat_statements_info`
    reset_at = info?.reset_at ?? null
  }
  return { pss, hypopg: rows.find((r) => r.extname === 'hypopg')?.schema ?? null, reset_at }
}

/** The lowest slow_query_ms among the environments of the services watching this database. */
async function slowQueryMs(sql: postgres.Sql): Promise<number> {
  const [row] = await sql<{ ms: number | null }[]>`
    select min(st.slow_query_ms)::int as ms
      from vigil.settings st
     where st.environment in (select environment from vigil.services
                               where kind = 'postgres' and enabled and not (config ? 'connection_secret'))`
  return row?.ms ?? 1000
}

interface Report {
  statements: SlowQuery[]
  /** Statements past the threshold, of which the top are named. */
  over: number
  reset_at: Date | null
}

/** The report itself, for the task and for the analyze function. */
export async function slowQueries(
  sql: postgres.Sql,
  ext: Extensions,
  thresholdMs: number,
  s: SlowQuerySettings,
): Promise<Report> {
  const rows = await sql<
    (AdviceStatement & { shown: string; share: number; over: number })[]
  >`
    with rows as (
      -- A statement first seen as PREPARE (psql, pgbench -M prepared) is kept under that text.
      select queryid, regexp_replace(query, ${PREPARE_RE}, '', 'i') as query, userid, calls,
             total_exec_time
        from ${sql(ext.pss!)}.pg_stat_statements
       where dbid = (select oid from pg_database where datname = current_database())
         and toplevel and queryid is not null and calls > 0
         and userid not in (select oid from pg_roles where rolname like 'vigil\\_%')
         and query !~ ${VIGIL_MARK_RE}
    ), mine as (
      -- One statement run by several roles is one entry: its calls and time summed, shown with
      -- (and planned as) the role that spent the most time on it.
      select queryid, sum(calls) as calls, sum(total_exec_time) as total_exec_time,
             sum(total_exec_time) / sum(calls) as mean_exec_time,
             (array_agg(query order by total_exec_time desc))[1] as query,
             (array_agg(userid order by total_exec_time desc))[1] as userid
        from rows group by queryid
    ), total as (select nullif(sum(total_exec_time), 0) as ms from mine),
    slow as (
      select * from mine
       where mean_exec_time >= ${thresholdMs}::float8 and calls >= ${s.VIGIL_SLOW_QUERY_MIN_CALLS}
         and query ~* ${QUERY_RE}
    )
    select queryid::text as queryid, query,
           left(regexp_replace(query, '''([^'']|'''')*''', '''…''', 'g'), 300) as shown,
           pg_get_userbyid(userid)::text as role, calls::float8 as calls,
           mean_exec_time as mean_ms, total_exec_time as total_ms,
           coalesce(total_exec_time / (select ms from total), 0)::float8 as share,
           (select count(*) from slow)::int as over
      from slow
     order by mean_exec_time desc
     limit ${s.VIGIL_SLOW_QUERY_TOP}`
  const advice = await adviseStatements(sql, rows, { hypopg: ext.hypopg })
  const plans = advice.map((a) => a.plan).filter((p): p is PlanNode => p !== null)
  const tableRows = await tableSizes(sql, plans)
  const statements: SlowQuery[] = []
  for (const [i, r] of rows.entries()) {
    const a = advice[i]
    const findings = a.plan ? await planFindings(a.plan, tableRows, a.indexes) : []
    const q: Omit<SlowQuery, 'text'> = {
      kind: 'slow_query',
      rank: i + 1,
      queryid: r.queryid,
      role: r.role,
      query: r.shown,
      calls: r.calls,
      mean_ms: round(r.mean_ms, 3),
      total_ms: round(r.total_ms, 1),
      share_of_time: round(r.share, 4),
      plan: a.plan ? { node: a.plan['Node Type'], cost: round(a.plan['Total Cost'], 2) } : null,
      ...(a.note ? { note: a.note } : {}),
      findings,
    }
    statements.push({ ...q, text: entryText(q) })
  }
  return { statements, over: rows[0]?.over ?? 0, reset_at: ext.reset_at }
}

/** The planner's row estimate of every table these plans scan sequentially ("schema.table"). */
async function tableSizes(sql: postgres.Sql, plans: PlanNode[]): Promise<Map<string, number>> {
  const names = new Set<string>()
  const visit = (n: PlanNode) => {
    if (n['Node Type'] === 'Seq Scan' && n.Schema && n['Relation Name']) {
      names.add(JSON.stringify([n.Schema, n['Relation Name']]))
    }
    for (const c of n.Plans ?? []) visit(c)
  }
  plans.forEach(visit)
  if (names.size === 0) return new Map()
  const rows = await sql<{ name: string; rows: number }[]>`
    select n.nspname || '.' || c.relname as name, greatest(c.reltuples, 0)::float8 as rows
      from jsonb_array_elements(${sql.json([...names].map((n) => JSON.parse(n)))}) t
      join pg_namespace n on n.nspname = t ->> 0
      join pg_class c on c.relnamespace = n.oid and c.relname = t ->> 1`
  return new Map(rows.map((r) => [r.name, Number(r.rows)]))
}

function percentOf(share: number): string {
  const p = share * 100
  return p >= 10 ? `${Math.round(p)} %` : p >= 1 ? `${p.toFixed(1)} %` : '< 1 %'
}

function calls(n: number): string {
  return `${Math.round(n).toLocaleString('en-US')} call${n === 1 ? '' : 's'}`
}

/** One entry of the "Top 3 slowest queries", in Markdown. */
function entryText(q: Omit<SlowQuery, 'text'>): string {
  const lines = [
    `${q.rank}. \`${shorten(q.query, 160)}\` — ${ms(q.mean_ms)} ms a call, ${calls(q.calls)}, ${
      percentOf(q.share_of_time)
    } of the database's statement time${q.role ? ` (role ${q.role})` : ''}`,
  ]
  if (!q.plan) lines.push(`   - Plan: none (${q.note ?? 'not planned'})`)
  else if (q.findings.length === 0) {
    lines.push(
      `   - Plan: ${q.plan.node}, estimated cost ${round(q.plan.cost, 1)}; nothing in it to fix${
        q.note ? ` (${q.note})` : ''
      }`,
    )
  }
  for (const f of q.findings) {
    lines.push(`   - ${f.text}`)
    lines.push(`     Fix: ${f.kind === 'missing_index' ? `\`${f.fix}\`` : f.fix}`)
  }
  return lines.join('\n')
}

/** The recommendation's title: one line, the statement, its time, and the first fix. */
function titleOf(q: SlowQuery): string {
  const head = `Slow query #${q.rank}: \`${shorten(q.query, 120)}\` — ${ms(q.mean_ms)} ms a call, ${
    calls(q.calls)
  }`
  const first = q.findings[0]
  if (!first) return `${head}; ${q.plan ? 'its plan names nothing to fix' : 'not planned'}`
  return shorten(`${head}; ${first.text}. Fix: ${first.fix}`, 1000)
}

function summarise(report: Report, thresholdMs: number, nPlusOne: number): string {
  const since = report.reset_at ? ` since ${report.reset_at.toISOString().slice(0, 16)}Z` : ''
  const patterns = nPlusOne ? `; ${nPlusOne} N+1 pattern${nPlusOne === 1 ? '' : 's'} open` : ''
  if (report.statements.length === 0) {
    return `no statement over ${thresholdMs} ms a call${since} (pg_stat_statements): not enough data for a slow-query report${patterns}`
  }
  const fixes = report.statements.reduce((n, q) => n + q.findings.length, 0)
  return `Top ${report.statements.length} slowest queries of ${report.over} over ${thresholdMs} ms${since}: ${
    report.statements.map((q) => `${shorten(q.query, 50)} (${ms(q.mean_ms)} ms)`).join('; ')
  }; ${fixes} plan finding${fixes === 1 ? '' : 's'}${patterns}`
}
