// add_missing_index: for the slowest statements in pg_stat_statements, find the index that would
// serve them, the way ankane/dexter does. The generic plan of each statement shows which tables it
// reads with a sequential scan and on which columns it filters, joins and sorts; hypopg lets the
// planner cost hypothetical indexes on those columns, and an index it uses that makes the
// statement at least min_cost_factor times cheaper is suggested (the default) or, in 'create'
// mode, built under an advisory lock, checked valid, and dropped again by undo(): with CREATE INDEX
// CONCURRENTLY when this role owns the table, otherwise in place through vigil.build_index (the
// agent owns nothing). Statements are vetted first (vet-statement.ts): one whose planning could run
// code outside pg_catalog is never planned, and the rest are planned as their own role or the
// read-only pg_read_all_data, never as the agent.
//
// This folder: index.ts (the advisor and the strategy), plan-reading.ts (what a plan scans and on
// which columns), build.ts (building and dropping its indexes), catalog.ts (tables as it sees
// them), statement.ts (statement text and index names), types.ts (what its plans record).
import type postgres from 'postgres'
import { z } from 'zod'
import { HealError } from '../../types.ts'
import type { ActResult, HealContext, Plan, Problem, Strategy, Verification } from '../../types.ts'
import { capitalise, checkDeadline, plural, refuseDryRun, targetOf } from '../../sessions.ts'
import { catalogFindings, foreignRefusal, vetStatement, type Vetted } from '../vet-statement.ts'
import { createIndex, type CreateOutcome, dropIndex } from './build.ts'
import { type Relation, relation, startsWith } from './catalog.ts'
import { candidateColumns, indexNames, type PlanNode, scanColumns } from './plan-reading.ts'
import {
  createIndexSql,
  INDEX_MARKER,
  indexName,
  LEADING_RE,
  qualified,
  quoteIdent,
  singleStatement,
} from './statement.ts'
import { CreatedIndex, Suggestion, Target } from './types.ts'
import { MANAGED_SCHEMAS } from '../../../managed-schemas.ts'

export { candidateColumns, indexNames, type PlanNode, scanColumns } from './plan-reading.ts'
export { indexLockKey } from './build.ts'
export { INDEX_MARKER, indexName, quoteIdent, singleStatement } from './statement.ts'

type Planned = Extract<Vetted, { ok: true }>

const NAME = 'add_missing_index'
/** A statement carrying a Vigil marker comment (vigil:…) is Vigil's own, never a candidate. */
const VIGIL_MARK_RE = String.raw`/\*\s*vigil:`
/** The statements analysed: SELECT, UPDATE and DELETE (WITH, INSERT, MERGE and utilities are not). */
const KIND_RE = String.raw`^(select|update|delete)\M`
const PREPARED = 'vigil_add_missing_index'
/** The prepared call to hypopg_create_index (see withHypothetical). */
const HYPOTHETICAL = 'vigil_add_missing_index_hypo'
const STATEMENT_CHARS = 200
const MAX_CANDIDATES = 12
/** Bounds on the planning session: EXPLAIN is quick, but must not queue behind DDL for long. */
const PLAN_STATEMENT_TIMEOUT = '10s'
const PLAN_LOCK_TIMEOUT = '2s'
/** A verification run is never cut shorter than this, whatever the statement's mean. */
const MIN_RUN_TIMEOUT_MS = 1000
const MAX_RUN_TIMEOUT_MS = 60_000

export const AddMissingIndexConfig = z.strictObject({
  /** 'suggest' records the index it would create; 'create' builds it. */
  mode: z.enum(['suggest', 'create']).default('suggest'),
  /** Statements slower than this on average (ms) are candidates. */
  min_mean_ms: z.number().min(0).max(3_600_000).default(100),
  /** At most this many statements, slowest first, are analysed in one heal. */
  max_statements: z.number().int().min(1).max(50).default(5),
  /** A hypothetical index must cut the statement's estimated total cost by this factor. */
  min_cost_factor: z.number().min(1).max(1_000_000).default(2),
  /** Statements called fewer times than this are one-offs: not analysed. */
  min_calls: z.number().int().min(1).default(10),
  /** Tables with more rows than this (planner estimate) are left alone: their build is too heavy. */
  max_table_rows: z.number().int().min(1).optional(),
  /** How many timed runs verify() makes of a plain SELECT (generic plan); 0 for none. */
  verify_runs: z.number().int().min(0).max(20).default(3),
  /** verify() calls it worse when the statement runs this many times slower than its mean before. */
  max_slowdown_factor: z.number().min(1).max(1000).default(1.5),
})
export type AddMissingIndexConfig = z.infer<typeof AddMissingIndexConfig>

/** ActResult.undo: the indexes act() built, and where their statements stood when it had. */
const Undo = z.object({
  indexes: z.array(CreatedIndex),
  statements_at_create: z.array(
    z.object({ queryid: z.string(), calls: z.number(), total_ms: z.number() }),
  ),
})
type Undo = z.infer<typeof Undo>

export const addMissingIndexStrategy: Strategy<AddMissingIndexConfig> = {
  name: NAME,
  problem: 'slow_query',
  config: AddMissingIndexConfig,
  // Without a policy row the engine only records the plan: building needs a policy AND mode create.
  defaultMode: 'suggest',
  plan,
  act,
  verify,
  undo,
}

type Sql = postgres.Sql<any>
type Session = postgres.ReservedSql<any>

// ---------------------------------------------------------------------------------------------
// plan

interface StatementRow {
  queryid: string
  query: string
  /** The role that ran it (pg_stat_statements.userid). */
  role: string | null
  calls: number
  mean_ms: number
  total_ms: number
}

interface Analysis {
  cost_before: number | null
  suggestions: Omit<Suggestion, 'index_name' | 'index_sql' | 'also_queryids'>[]
  note?: string
  /** The statement's generic plan as it stands (no hypothetical index), once it was planned. */
  plan?: PlanNode
}

async function plan(
  problem: Problem,
  ctx: HealContext,
  config: AddMissingIndexConfig,
): Promise<Plan | null> {
  const sql = targetOf(ctx, NAME)
  const ext = await extensionsOf(sql)
  const statements = await slowStatements(sql, ext, config, diagnosedQueryids(problem))
  if (statements.length === 0) return null

  const found: Analysis['suggestions'] = []
  const before: Record<string, unknown>[] = []
  const notes: string[] = []
  await withSession(sql, async (c) => {
    for (const st of statements) {
      checkDeadline(ctx.signal, 'analysing slow statements')
      let analysis: Analysis
      try {
        analysis = await analyse(c, st, ext.hypopg, config)
      } catch (err) {
        if (err instanceof HealError) throw err
        notes.push(`statement ${st.queryid} could not be analysed: ${messageOf(err)}`)
        before.push(statementBefore(st, null))
        continue
      }
      before.push(statementBefore(st, analysis.cost_before))
      if (analysis.note) notes.push(`statement ${st.queryid}: ${analysis.note}`)
      found.push(...analysis.suggestions)
    }
  })
  const indexes = merge(found)
  if (indexes.length === 0) return null

  const best = indexes.reduce((a, b) => (b.factor > a.factor ? b : a))
  const served = new Set(indexes.flatMap((s) => [s.queryid, ...s.also_queryids])).size
  const reason = `${capitalise(indexCount(indexes.length))} would make ` +
    `${plural(served, 'slow statement')} at least ${config.min_cost_factor}× cheaper to run; ` +
    `the best, ${describe(best)}, cuts the estimated cost ${round(best.factor, 1)}× ` +
    `(${round(best.cost_before, 1)} → ${round(best.cost_after, 1)}) of a statement averaging ` +
    `${round(best.mean_ms, 1)} ms over ${best.calls} calls`
  return {
    action: config.mode === 'create' ? 'create_index' : 'suggest_index',
    target: { mode: config.mode, indexes },
    reason,
    recommendations: indexes.map((s) => ({
      kind: 'index',
      key: `${s.schema}.${s.index_name}`,
      title: s.index_sql,
      detail: {
        schema: s.schema,
        table: s.table,
        columns: s.columns,
        queryids: [s.queryid, ...s.also_queryids],
        statement: s.statement,
        mean_ms: s.mean_ms,
        calls: s.calls,
        cost_before: s.cost_before,
        cost_after: s.cost_after,
        factor: s.factor,
      },
    })),
    before: {
      statements: before,
      min_mean_ms: config.min_mean_ms,
      min_cost_factor: config.min_cost_factor,
      ...(notes.length ? { notes } : {}),
    },
  }
}

function statementBefore(st: StatementRow, cost: number | null) {
  return {
    queryid: st.queryid,
    mean_ms: round(st.mean_ms, 3),
    calls: st.calls,
    estimated_cost: cost === null ? null : round(cost, 2),
  }
}

/** The statements the diagnosis named (the probe's slow list), if it named any. */
function diagnosedQueryids(problem: Problem): string[] | null {
  const ids = new Set<string>()
  const add = (list: unknown) => {
    if (!Array.isArray(list)) return
    for (const x of list) {
      const id = typeof x === 'string' ? x : (x as { queryid?: unknown } | null)?.queryid
      if (typeof id === 'string' && /^-?\d{1,20}$/.test(id)) ids.add(id)
    }
  }
  const e = problem.evidence
  add(e.queryids)
  add(e.slow)
  add((e.statements as { slow?: unknown } | undefined)?.slow)
  return ids.size > 0 ? [...ids] : null
}

/** Where pg_stat_statements and hypopg live on the target; HealError when either is missing. */
async function extensionsOf(
  sql: Sql,
): Promise<{ pss: string; pssToplevel: boolean; hypopg: string }> {
  const rows: { extname: string; schema: string; version: string }[] = await sql`
    /* vigil:add-missing-index */
    select e.extname::text, n.nspname::text as schema, e.extversion as version
    from pg_extension e join pg_namespace n on n.oid = e.extnamespace
    where e.extname in ('pg_stat_statements', 'hypopg')`
  const pss = rows.find((r) => r.extname === 'pg_stat_statements')
  const hypopg = rows.find((r) => r.extname === 'hypopg')
  if (!pss) {
    throw new HealError(`${NAME} needs pg_stat_statements on the target, and it is not installed`)
  }
  if (!hypopg) {
    throw new HealError(
      `${NAME} needs hypopg on the target to cost hypothetical indexes, and it is not installed`,
    )
  }
  const [major, minor] = pss.version.split('.').map(Number)
  if (major === 1 && minor < 8) {
    throw new HealError(`pg_stat_statements ${pss.version} is older than 1.8: not read`)
  }
  return { pss: pss.schema, pssToplevel: !(major === 1 && minor < 9), hypopg: hypopg.schema }
}

type Ext = Awaited<ReturnType<typeof extensionsOf>>

/**
 * The slowest statements by mean: top-level, of this database, SELECT/UPDATE/DELETE, not Vigil's
 * own, called often enough; only those the diagnosis named when it named some.
 */
async function slowStatements(
  sql: Sql,
  ext: Ext,
  config: AddMissingIndexConfig,
  focus: string[] | null,
): Promise<StatementRow[]> {
  const rows: StatementRow[] = await sql`
    /* vigil:add-missing-index */
    select queryid::text as queryid, query, pg_get_userbyid(userid)::text as role,
           calls::float8 as calls, mean_exec_time as mean_ms, total_exec_time as total_ms
    from ${sql(ext.pss)}.pg_stat_statements
    where dbid = (select oid from pg_database where datname = current_database())
      ${ext.pssToplevel ? sql`and toplevel` : sql``}
      ${
    // Statements the diagnosis named were judged slow by the probe (the environment's slow_query_ms,
    // the service's slow_min_calls): min_calls and min_mean_ms pick candidates only without them.
    focus
      ? sql``
      : sql`and calls >= ${config.min_calls} and mean_exec_time >= ${config.min_mean_ms}::float8`}
      and query !~ ${VIGIL_MARK_RE}
      and regexp_replace(query, ${LEADING_RE}, '') ~* ${KIND_RE}
      ${focus ? sql`and queryid::text = any(string_to_array(${focus.join(',')}, ','))` : sql``}
    order by mean_exec_time desc
    limit ${config.max_statements}`
  return rows
}

/**
 * One statement: its generic plan, the candidate indexes it suggests, and what hypopg says
 * (without hypopg, the plan alone).
 */
async function analyse(
  c: Session,
  st: StatementRow,
  hypopg: string | null,
  config: AddMissingIndexConfig,
): Promise<Analysis> {
  const query = singleStatement(st.query)
  if (query === null) return { cost_before: null, suggestions: [], note: 'not a single statement' }
  const vetted = await vetStatement(c, query, st.role)
  if (!vetted.ok) {
    return { cost_before: null, suggestions: [], note: `not planned: ${vetted.reason}` }
  }
  const planned = vetted
  try {
    await begin(c)
    const before = await explainGeneric(c, query, planned)
    const costBefore = before['Total Cost']
    if (hypopg === null) {
      return {
        cost_before: costBefore,
        plan: before,
        suggestions: [],
        note: 'hypopg is not installed',
      }
    }
    const scans = await scanColumns(before)
    const candidates: Candidate[] = []
    const skipped: string[] = []
    for (const scan of scans) {
      const rel = await relation(c, scan.schema, scan.table)
      const why = rel ? ineligible(rel, config) : 'it is gone'
      if (why) {
        skipped.push(`${qualified(scan.schema, scan.table)}: ${why}`)
        continue
      }
      for (const columns of candidateColumns(scan)) {
        if (!columns.every((col) => rel!.columns.includes(col))) continue
        if (rel!.indexes.some((ix) => startsWith(ix.columns, columns))) continue
        candidates.push({ rel: rel!, columns })
      }
    }
    const note = skipped.length ? `tables left alone: ${skipped.join('; ')}` : undefined
    const none = { cost_before: costBefore, plan: before, suggestions: [], note }
    if (candidates.length === 0) return none

    // As dexter: the single-column candidates first, then all of them; the planner picks among
    // each set. A multi-column index wins only if it beats the single columns by the factor too.
    const capped = [
      ...candidates.filter((x) => x.columns.length === 1),
      ...candidates.filter((x) => x.columns.length > 1),
    ].slice(0, MAX_CANDIDATES)
    const evaluate = async (set: Candidate[]) => {
      if (set.length === 0) return null
      const r = await withHypothetical(
        c,
        hypopg,
        planned.role,
        set,
        () => explainGeneric(c, query, planned),
      )
      const used = r.created.filter((h) => r.result.names.has(h.name))
      return used.length ? { used, cost: r.result.plan['Total Cost'] } : null
    }
    const singles = await evaluate(capped.filter((x) => x.columns.length === 1))
    const wide = capped.some((x) => x.columns.length > 1) ? await evaluate(capped) : null
    const base = singles?.cost ?? costBefore
    const chosen = wide && wide.used.some((h) => h.columns.length > 1) &&
        wide.cost * config.min_cost_factor <= base
      ? wide
      : singles
    if (!chosen || costBefore / chosen.cost < config.min_cost_factor) return none
    // Then exactly the chosen ones: their cost is what creating them would buy.
    const only = await withHypothetical(
      c,
      hypopg,
      planned.role,
      chosen.used,
      () => explainGeneric(c, query, planned),
    )
    const costAfter = only.result.plan['Total Cost']
    const factor = costBefore / costAfter
    const kept = only.created.filter((h) => only.result.names.has(h.name))
    if (kept.length === 0 || factor < config.min_cost_factor) return none
    return {
      cost_before: costBefore,
      plan: before,
      note,
      suggestions: kept.map((h) => ({
        schema: h.rel.schema,
        table: h.rel.table,
        columns: h.columns,
        queryid: st.queryid,
        statement: query.slice(0, STATEMENT_CHARS),
        mean_ms: round(st.mean_ms, 3),
        calls: st.calls,
        table_rows: Math.round(h.rel.rows),
        cost_before: round(costBefore, 2),
        cost_after: round(costAfter, 2),
        factor: round(factor, 2),
      })),
    }
  } finally {
    await endSession(c, hypopg ?? undefined)
  }
}

/** A statement to advise on, as pg_stat_statements knows it. */
export type AdviceStatement = StatementRow

/** What the advisor says of one statement: its plan and the indexes worth having for it. */
export interface StatementAdvice {
  queryid: string
  /** The generic plan as it stands, or null when it was not planned (note says why). */
  plan: PlanNode | null
  cost_before: number | null
  /** Each with its CREATE INDEX CONCURRENTLY and hypopg's estimate (cost before and after). */
  indexes: Suggestion[]
  note?: string
}

/**
 * The advisor's reading of these statements without healing anything (the slow-query report):
 * each one vetted and planned as its role, and costed with hypothetical indexes when hypopg is
 * installed. Never throws for one statement: its note says why it has no plan.
 */
export async function adviseStatements(
  sql: Sql,
  statements: AdviceStatement[],
  options: { hypopg: string | null; min_cost_factor?: number },
): Promise<StatementAdvice[]> {
  const config = AddMissingIndexConfig.parse({ min_cost_factor: options.min_cost_factor })
  const out: StatementAdvice[] = []
  if (statements.length === 0) return out
  await withSession(sql, async (c) => {
    for (const st of statements) {
      try {
        const a = await analyse(c, st, options.hypopg, config)
        out.push({
          queryid: st.queryid,
          plan: a.plan ?? null,
          cost_before: a.cost_before,
          indexes: merge(a.suggestions),
          ...(a.note ? { note: a.note } : {}),
        })
      } catch (err) {
        out.push({
          queryid: st.queryid,
          plan: null,
          cost_before: null,
          indexes: [],
          note: `could not be planned: ${messageOf(err)}`,
        })
      }
    }
  })
  return out
}

/** One suggestion per index: a statement's index that another's extends is served by the longer. */
function merge(found: Analysis['suggestions']): Suggestion[] {
  const out: Suggestion[] = []
  for (const s of found) {
    const same = out.find((o) =>
      o.schema === s.schema && o.table === s.table && startsWith(o.columns, s.columns)
    )
    if (same) {
      if (same.queryid !== s.queryid && !same.also_queryids.includes(s.queryid)) {
        same.also_queryids.push(s.queryid)
      }
      continue
    }
    const longer = out.findIndex((o) =>
      o.schema === s.schema && o.table === s.table && startsWith(s.columns, o.columns)
    )
    const also = longer >= 0 ? [out[longer].queryid, ...out[longer].also_queryids] : []
    const name = indexName(s.table, s.columns)
    const suggestion: Suggestion = {
      ...s,
      index_name: name,
      index_sql: createIndexSql(s.schema, s.table, s.columns, name),
      also_queryids: also.filter((q) => q !== s.queryid),
    }
    if (longer >= 0) out.splice(longer, 1, suggestion)
    else out.push(suggestion)
  }
  // Two tables whose cleaned names collide get the hashed form of the later one's name.
  const names = new Set<string>()
  for (const s of out) {
    if (names.has(s.index_name)) {
      s.index_name = indexName(s.table, s.columns, true)
      s.index_sql = createIndexSql(s.schema, s.table, s.columns, s.index_name)
    }
    names.add(s.index_name)
  }
  return out
}

/** Why a table is not indexed by Vigil, or null when it may be. */
function ineligible(rel: Relation, config: AddMissingIndexConfig): string | null {
  if (MANAGED_SCHEMAS.has(rel.schema) || rel.schema.startsWith('pg_')) {
    return `schema ${rel.schema} is not the application's`
  }
  if (rel.kind !== 'r' && rel.kind !== 'm') return 'not a table or materialized view'
  if (rel.partition) return 'a partition (index the partitioned table instead)'
  if (rel.persistence === 't') return 'a temporary table'
  if (config.max_table_rows !== undefined && rel.rows > config.max_table_rows) {
    return `about ${Math.round(rel.rows)} rows, more than max_table_rows ${config.max_table_rows}`
  }
  return null
}

// ---- hypothetical indexes ----

interface Candidate {
  rel: Relation
  columns: string[]
}

interface Hypothetical extends Candidate {
  name: string
}

/**
 * Runs fn with these hypothetical indexes (session-local, nothing written), then removes them.
 * A candidate hypopg refuses (a type with no btree operator class) is left out.
 */
async function withHypothetical(
  c: Session,
  hypopg: string,
  role: string,
  candidates: Candidate[],
  fn: () => Promise<PlanNode>,
): Promise<{ created: Hypothetical[]; result: { plan: PlanNode; names: Set<string> } }> {
  const created: Hypothetical[] = []
  try {
    // hypopg looks the table up by name when it runs, which needs USAGE on the table's schema: the
    // agent need not have it (the app's own schema), the role that plans the statement does, but
    // that role need not have USAGE on hypopg's schema. So the call is bound here, as the agent,
    // and run as that role.
    await c.unsafe(
      `/* ${INDEX_MARKER} */ prepare ${HYPOTHETICAL}(text) as ` +
        `select indexname from ${quoteIdent(hypopg)}.hypopg_create_index($1)`,
    )
    for (const cand of candidates) {
      const def = `create index on ${qualified(cand.rel.schema, cand.rel.table)} ` +
        `(${cand.columns.map(quoteIdent).join(', ')})`
      // A failed attempt rolls back to its savepoint, role and all. EXECUTE takes no bound
      // parameter: the definition goes through a setting of this transaction.
      const rows = await attempt(c, async () => {
        await c`/* vigil:add-missing-index */ select set_config('vigil.hypothetical', ${def}, true)`
        await c.unsafe(`/* ${INDEX_MARKER} */ set local role ${quoteIdent(role)}`)
        const made = await c.unsafe(
          `/* ${INDEX_MARKER} */ execute ${HYPOTHETICAL}(current_setting('vigil.hypothetical'))`,
        )
        await c.unsafe(`/* ${INDEX_MARKER} */ reset role`)
        return made
      })
      if (rows?.[0]) created.push({ ...cand, name: rows[0].indexname as string })
    }
    const plan = await fn()
    return { created, result: { plan, names: indexNames(plan) } }
  } finally {
    await deallocate(c, HYPOTHETICAL).catch(() => {})
    await resetHypothetical(c, hypopg).catch(() => {})
  }
}

function resetHypothetical(c: Session, hypopg: string) {
  return c`/* vigil:add-missing-index */ select ${c(hypopg)}.hypopg_reset()`
}

// ---- the planning session ----

/** A connection of its own: PREPARE, hypopg and advisory locks are all per session. */
async function withSession<T>(sql: Sql, fn: (c: Session) => Promise<T>): Promise<T> {
  const c = await sql.reserve()
  try {
    return await fn(c)
  } finally {
    c.release()
  }
}

/** A read-only transaction with the generic plan forced and short lock and statement timeouts. */
async function begin(c: Session, statementTimeout = PLAN_STATEMENT_TIMEOUT) {
  await c.unsafe(`/* ${INDEX_MARKER} */ begin read only`)
  await c`/* vigil:add-missing-index */
    select set_config('plan_cache_mode', 'force_generic_plan', true),
           set_config('statement_timeout', ${statementTimeout}, true),
           set_config('lock_timeout', ${PLAN_LOCK_TIMEOUT}, true)`
}

/** Rolls back and leaves the session as it was found: no prepared statement, no hypothetical index. */
async function endSession(c: Session, hypopg?: string) {
  await c.unsafe(`/* ${INDEX_MARKER} */ rollback`).catch(() => {})
  await deallocate(c).catch(() => {})
  await deallocate(c, HYPOTHETICAL).catch(() => {})
  if (hypopg) await resetHypothetical(c, hypopg).catch(() => {})
}

async function deallocate(c: Session, name = PREPARED) {
  const [row] = await c`/* vigil:add-missing-index */
    select count(*)::int as n from pg_prepared_statements where name = ${name}`
  if (row.n > 0) await c.unsafe(`deallocate ${name}`)
}

/** fn inside a savepoint: its error is rolled back to and swallowed (undefined returned). */
async function attempt<T>(c: Session, fn: () => Promise<T>): Promise<T | undefined> {
  await c.unsafe(`/* ${INDEX_MARKER} */ savepoint vigil_attempt`)
  try {
    const value = await fn()
    await c.unsafe(`/* ${INDEX_MARKER} */ release savepoint vigil_attempt`)
    return value
  } catch {
    await c.unsafe(`/* ${INDEX_MARKER} */ rollback to savepoint vigil_attempt`)
    return undefined
  }
}

/** Extended protocol: a statement text holding a second statement is refused by Postgres. */
const ONE_STATEMENT = { prepare: false, simple: false } as postgres.UnsafeQueryOptions

/**
 * The generic plan of a normalised statement ($n placeholders, bound to NULL), from a fresh
 * PREPARE each time: a cached plan would not see hypothetical indexes created since. Nothing is
 * executed, except with analyze (verify's timed runs, of plain SELECTs only). Prepared and
 * planned as `role` (vetStatement's choice), never as this session's own role.
 */
async function explainGeneric(
  c: Session,
  query: string,
  vetted: Planned,
  analyze = false,
): Promise<PlanNode> {
  await c.unsafe(`/* ${INDEX_MARKER} */ savepoint vigil_explain`)
  try {
    await c.unsafe(`/* ${INDEX_MARKER} */ set local role ${quoteIdent(vetted.role)}`)
    // Vetted again here, as that role and in this transaction, with what it reads locked: nothing
    // can be swapped for a view, given a policy or an operator between the check and the plan.
    const found = await catalogFindings(c, vetted.shape, vetted.role)
    const refusal = foreignRefusal(found)
    if (refusal) throw new Error(`not planned: ${refusal}`)
    if (analyze && found.volatile.length > 0) {
      throw new Error('not run: it calls volatile functions')
    }
    if (found.relations.length > 0) {
      await c.unsafe(
        `/* ${INDEX_MARKER} */ lock table ${found.relations.join(', ')} in access share mode`,
      )
    }
    await c.unsafe(`prepare ${PREPARED} as ${query}`, [], ONE_STATEMENT)
    const [{ n }] = await c`/* vigil:add-missing-index */
      select coalesce(cardinality(parameter_types), 0)::int as n
      from pg_prepared_statements where name = ${PREPARED}`
    const args = n > 0 ? `(${Array(n).fill('null').join(', ')})` : ''
    const options = analyze ? 'analyze, timing off, format json' : 'verbose, format json'
    const rows = await c.unsafe(
      `/* ${INDEX_MARKER} */ explain (${options}) execute ${PREPARED}${args}`,
    )
    await c.unsafe(`deallocate ${PREPARED}`)
    await c.unsafe(`/* ${INDEX_MARKER} */ reset role`)
    await c.unsafe(`/* ${INDEX_MARKER} */ release savepoint vigil_explain`)
    const raw = rows[0]['QUERY PLAN']
    const doc = (typeof raw === 'string' ? JSON.parse(raw) : raw) as {
      Plan: PlanNode
      'Execution Time'?: number
    }[]
    return { ...doc[0].Plan, 'Execution Time': doc[0]['Execution Time'] }
  } catch (err) {
    await c.unsafe(`/* ${INDEX_MARKER} */ rollback to savepoint vigil_explain`).catch(() => {})
    await deallocate(c).catch(() => {})
    throw err
  }
}

// ---------------------------------------------------------------------------------------------
// act

async function act(
  plan: Plan,
  ctx: HealContext,
  config: AddMissingIndexConfig,
): Promise<ActResult> {
  refuseDryRun(ctx, NAME)
  const target = Target.parse(plan.target)
  const { indexes } = target
  // Built only when both the plan and the policy now say 'create'.
  if (target.mode !== 'create' || config.mode !== 'create') {
    const list = indexes.map((s) =>
      `${s.index_sql} (cost ${s.cost_before} → ${s.cost_after}, ${s.factor}×)`
    )
    return {
      detail: `Suggested ${indexCount(indexes.length)}, created nothing (mode suggest): ` +
        list.join('; '),
      recordedOnly: true,
    }
  }

  const sql = targetOf(ctx, NAME)
  const created: CreatedIndex[] = []
  const lines: string[] = []
  let failures = 0
  await withSession(sql, async (c) => {
    for (const s of indexes) {
      if (ctx.signal.aborted) {
        lines.push(`stopped at the heal's deadline before ${s.index_name}`)
        break
      }
      const outcome = await createIndex(c, s, ctx.signal).catch((err): CreateOutcome => ({
        line: `failed to create ${s.index_name}: ${messageOf(err)}`,
        failed: true,
      }))
      lines.push(outcome.line)
      if (outcome.created) created.push(outcome.created)
      if (outcome.failed) failures++
    }
  })
  if (created.length === 0) {
    const detail = lines.join('; ')
    if (failures > 0 || ctx.signal.aborted) throw new HealError(`no index was created: ${detail}`)
    return { detail: `No index was created: ${detail}` }
  }
  // Where the statements stand now, for verify(); the indexes are recorded even if this fails.
  const statements = await extensionsOf(sql)
    .then((ext) => statementsById(sql, ext, indexes.map((s) => s.queryid)))
    .catch(() => new Map<string, StatementNow>())
  const undoInfo: Undo = {
    indexes: created,
    statements_at_create: [...statements.values()].map((s) => ({
      queryid: s.queryid,
      calls: s.calls,
      total_ms: s.total_ms,
    })),
  }
  return { detail: `${capitalise(lines.join('; '))}`, undo: undoInfo }
}

// ---------------------------------------------------------------------------------------------
// verify

interface StatementNow {
  queryid: string
  query: string
  role: string | null
  calls: number
  total_ms: number
}

async function statementsById(
  sql: Sql,
  ext: Ext,
  ids: string[],
): Promise<Map<string, StatementNow>> {
  const rows: StatementNow[] = await sql`
    /* vigil:add-missing-index */
    select queryid::text as queryid, query, pg_get_userbyid(userid)::text as role,
           calls::float8 as calls, total_exec_time as total_ms
    from ${sql(ext.pss)}.pg_stat_statements
    where dbid = (select oid from pg_database where datname = current_database())
      ${ext.pssToplevel ? sql`and toplevel` : sql``}
      and queryid::text = any(string_to_array(${ids.join(',')}, ','))`
  return new Map(rows.map((r) => [r.queryid, r]))
}

async function verify(
  plan: Plan,
  result: ActResult,
  ctx: HealContext,
  config: AddMissingIndexConfig,
): Promise<Verification> {
  const target = Target.parse(plan.target)
  const { indexes } = target
  if (target.mode !== 'create' || config.mode !== 'create') {
    return {
      improved: false,
      worse: false,
      after: { suggested: indexes.map((s) => s.index_sql) },
      detail: 'suggested, not created',
    }
  }
  const undoInfo = Undo.safeParse(result.undo)
  if (!undoInfo.success || undoInfo.data.indexes.length === 0) {
    return { improved: false, worse: false, after: { created: [] }, detail: 'no index was created' }
  }
  const sql = targetOf(ctx, NAME)
  const ext = await extensionsOf(sql)
  const created = undoInfo.data.indexes
  const suggestions = indexes.filter((s) => created.some((x) => x.name === s.index_name))
  const now = await statementsById(sql, ext, suggestions.map((s) => s.queryid))
  const atCreate = new Map(undoInfo.data.statements_at_create.map((s) => [s.queryid, s]))

  const checks: Record<string, unknown>[] = []
  const lines: string[] = []
  let improved = 0
  let worse = 0
  await withSession(sql, async (c) => {
    for (const s of suggestions) {
      checkDeadline(ctx.signal, 'verifying the new indexes')
      const st = now.get(s.queryid)
      const check = await verifyOne(c, s, st, atCreate.get(s.queryid), config)
      checks.push(check.after)
      lines.push(check.line)
      if (check.improved) improved++
      if (check.worse) worse++
    }
  })
  return {
    improved: improved > 0 && worse === 0,
    worse: worse > 0,
    after: { indexes: checks },
    detail: lines.join('; '),
  }
}

async function verifyOne(
  c: Session,
  s: Suggestion,
  st: StatementNow | undefined,
  atCreate: { calls: number; total_ms: number } | undefined,
  config: AddMissingIndexConfig,
): Promise<{ improved: boolean; worse: boolean; after: Record<string, unknown>; line: string }> {
  const base = { index_name: s.index_name, queryid: s.queryid }
  const query = st ? singleStatement(st.query) : null
  if (!st || query === null) {
    return {
      improved: false,
      worse: false,
      after: { ...base, checked: false },
      line: `${s.index_name}: its statement is no longer in pg_stat_statements, not checked`,
    }
  }

  const vetted = await vetStatement(c, query, st.role)
  if (!vetted.ok) {
    return {
      improved: false,
      worse: false,
      after: { ...base, checked: false },
      line: `${s.index_name}: its statement is not planned again (${vetted.reason})`,
    }
  }
  // The real planner now, on the generic plan, as plan() costed it.
  let explained: PlanNode
  try {
    await begin(c)
    explained = await explainGeneric(c, query, vetted)
  } catch (err) {
    return {
      improved: false,
      worse: false,
      after: { ...base, checked: false },
      line: `${s.index_name}: its statement could not be explained again (${messageOf(err)})`,
    }
  } finally {
    await endSession(c)
  }
  const uses = indexNames(explained).has(s.index_name)
  const cost = explained['Total Cost']
  const factor = s.cost_before / cost
  const better = uses && factor >= config.min_cost_factor

  // Timed runs, for a plain SELECT only; inside EXPLAIN so pg_stat_statements keeps them apart
  // from the application's top-level calls, read-only and bounded by the worse threshold.
  const limitMs = s.mean_ms * config.max_slowdown_factor
  const timeoutMs = Math.round(Math.min(Math.max(limitMs, MIN_RUN_TIMEOUT_MS), MAX_RUN_TIMEOUT_MS))
  const runs: number[] = []
  let timedOut = false
  let timingNote: string | null = null
  if (config.verify_runs === 0) timingNote = 'verify_runs is 0'
  else if (!vetted.shape.plainSelect) timingNote = 'not a plain SELECT: not run'
  else if (!vetted.timeable) timingNote = 'it calls volatile functions: not run'
  else {
    for (let i = 0; i < config.verify_runs && !timedOut && !timingNote; i++) {
      try {
        await begin(c, `${timeoutMs}ms`)
        const ran = await explainGeneric(c, query, vetted, true)
        if (typeof ran['Execution Time'] === 'number') runs.push(ran['Execution Time'])
      } catch (err) {
        // 57014: the statement timeout, set at the worse threshold: slower than allowed.
        if ((err as { code?: string }).code === '57014') timedOut = true
        else timingNote = `could not be run: ${messageOf(err)}`
      } finally {
        await endSession(c)
      }
    }
  }
  const median = timedOut ? Infinity : runs.length ? medianOf(runs) : null
  const slowerRun = median !== null && median > limitMs

  // The application's own calls since the index was built, when there were enough of them.
  let meanSince: number | null = null
  if (atCreate && st.calls - atCreate.calls >= config.min_calls) {
    meanSince = (st.total_ms - atCreate.total_ms) / (st.calls - atCreate.calls)
  }
  const slowerCalls = meanSince !== null && meanSince > limitMs
  const isWorse = slowerRun || slowerCalls

  const parts = [
    uses ? 'the planner uses it' : 'the planner does not use it',
    `estimated cost ${s.cost_before} → ${round(cost, 2)} (${round(factor, 2)}×)`,
  ]
  if (median !== null) {
    parts.push(
      timedOut
        ? `a timed run exceeded ${timeoutMs} ms`
        : `median of ${runs.length} generic-plan runs ${
          round(median, 3)
        } ms against a mean of ${s.mean_ms} ms before`,
    )
  } else if (timingNote) parts.push(`timing: ${timingNote}`)
  if (meanSince !== null) {
    parts.push(`the application's calls since average ${round(meanSince, 3)} ms`)
  }
  return {
    improved: better && !isWorse,
    worse: isWorse,
    after: {
      ...base,
      checked: true,
      planner_uses_index: uses,
      estimated_cost: round(cost, 2),
      factor: round(factor, 2),
      timed_runs_ms: runs.map((r) => round(r, 3)),
      timed_out: timedOut,
      median_ms: median === null || !Number.isFinite(median) ? null : round(median, 3),
      mean_ms_since_create: meanSince === null ? null : round(meanSince, 3),
      ...(timingNote ? { timing_note: timingNote } : {}),
    },
    line: `${s.index_name}: ${parts.join(', ')}`,
  }
}

// ---------------------------------------------------------------------------------------------
// undo

async function undo(_plan: Plan, result: ActResult, ctx: HealContext): Promise<string> {
  const info = Undo.safeParse(result.undo)
  if (!info.success || info.data.indexes.length === 0) {
    return 'nothing to undo: no index was created'
  }
  const sql = targetOf(ctx, NAME)
  const dropped: string[] = []
  const failed: string[] = []
  for (const ix of info.data.indexes) {
    try {
      await dropIndex(sql, ix.schema, ix.name, ctx.signal)
      dropped.push(qualified(ix.schema, ix.name))
    } catch (err) {
      failed.push(`${qualified(ix.schema, ix.name)} (${messageOf(err)})`)
    }
  }
  if (failed.length) {
    throw new HealError(
      `could not drop ${failed.join(', ')}${
        dropped.length ? `; dropped ${dropped.join(', ')}` : ''
      }`,
    )
  }
  return `dropped ${indexCount(dropped.length)}: ${dropped.join(', ')}`
}

function indexCount(n: number): string {
  return `${n} ${n === 1 ? 'index' : 'indexes'}`
}

function describe(s: Suggestion): string {
  return `${s.schema}.${s.table} (${s.columns.join(', ')})`
}

function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
