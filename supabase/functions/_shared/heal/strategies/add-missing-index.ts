// add_missing_index: for the slowest statements in pg_stat_statements, find the index that would
// serve them, the way ankane/dexter does. The generic plan of each statement shows which tables it
// reads with a sequential scan and on which columns it filters, joins and sorts; hypopg lets the
// planner cost hypothetical indexes on those columns, and an index it uses that makes the
// statement at least min_cost_factor times cheaper is suggested (the default) or, in 'create'
// mode, built under an advisory lock, checked valid, and dropped again by undo(): with CREATE INDEX
// CONCURRENTLY when this role owns the table, otherwise in place through vigil.build_index (the
// agent owns nothing). Statements are vetted first (vet-statement.ts): one whose planning could run
// code outside pg_catalog is never planned, and the rest are planned as their own role or the
// read-only vigil_explainer, never as the agent.
import type postgres from 'postgres'
import { z } from 'zod'
import { HealError } from '../types.ts'
import type { ActResult, HealContext, Plan, Problem, Strategy, Verification } from '../types.ts'
import { capitalise, checkDeadline, plural, refuseDryRun, targetOf } from '../sessions.ts'
import { catalogFindings, foreignRefusal, vetStatement, type Vetted } from './vet-statement.ts'

type Planned = Extract<Vetted, { ok: true }>

const NAME = 'add_missing_index'
/** Marks this strategy's own statements, so pg_stat_statements readers can leave them out. */
export const INDEX_MARKER = 'vigil:add-missing-index'
/** A statement carrying a Vigil marker comment (vigil:…) is Vigil's own, never a candidate. */
const VIGIL_MARK_RE = String.raw`/\*\s*vigil:`
/** Leading blanks and comments, stripped before a statement's first keyword is read. */
const LEADING_RE = String.raw`^(\s|/\*([^*]|\*+[^*/])*\*+/|--[^\n]*(\n|$))*`
/** The statements analysed: SELECT, UPDATE and DELETE (WITH, INSERT, MERGE and utilities are not). */
const KIND_RE = String.raw`^(select|update|delete)\M`
const PREPARED = 'vigil_add_missing_index'
const STATEMENT_CHARS = 200
const MAX_INDEX_COLUMNS = 3
const MAX_CANDIDATES = 12
/** Bounds on the planning session: EXPLAIN is quick, but must not queue behind DDL for long. */
const PLAN_STATEMENT_TIMEOUT = '10s'
const PLAN_LOCK_TIMEOUT = '2s'
/** A verification run is never cut shorter than this, whatever the statement's mean. */
const MIN_RUN_TIMEOUT_MS = 1000
const MAX_RUN_TIMEOUT_MS = 60_000
const INDEX_NAME_MAX = 63
/** The longest an in-place build (vigil.build_index, writes to the table waiting) may take. */
const IN_PLACE_BUILD_TIMEOUT = '60s'
/** How long dropping a failed build's INVALID index may wait for the table's transactions. */
const CLEANUP_TIMEOUT = '10s'

/** Schemas Vigil never indexes: the catalogs, its own, and those Supabase manages. */
const MANAGED_SCHEMAS = new Set([
  'information_schema',
  'vigil',
  'extensions',
  'auth',
  'storage',
  'realtime',
  '_realtime',
  'supabase_functions',
  'supabase_migrations',
  'graphql',
  'graphql_public',
  'pgsodium',
  'pgsodium_masks',
  'vault',
  'net',
  'cron',
  'pgbouncer',
  '_analytics',
  'pgtle',
])

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

/** One index worth having, as plan.target lists it (read back from the audit, so parsed). */
const Suggestion = z.object({
  schema: z.string(),
  table: z.string(),
  columns: z.array(z.string()).min(1),
  index_name: z.string(),
  index_sql: z.string(),
  queryid: z.string(),
  /** Further analysed statements this index serves. */
  also_queryids: z.array(z.string()),
  statement: z.string(),
  mean_ms: z.number(),
  calls: z.number(),
  table_rows: z.number(),
  cost_before: z.number(),
  cost_after: z.number(),
  factor: z.number(),
})
type Suggestion = z.infer<typeof Suggestion>
const Target = z.object({
  mode: z.enum(['suggest', 'create']),
  indexes: z.array(Suggestion).min(1),
})

const CreatedIndex = z.object({
  schema: z.string(),
  table: z.string(),
  columns: z.array(z.string()),
  name: z.string(),
})
type CreatedIndex = z.infer<typeof CreatedIndex>
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

/** One statement: its generic plan, the candidate indexes it suggests, and what hypopg says. */
async function analyse(
  c: Session,
  st: StatementRow,
  hypopg: string,
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
    const scans = scanColumns(before)
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
    if (candidates.length === 0) return { cost_before: costBefore, suggestions: [], note }

    // As dexter: the single-column candidates first, then all of them; the planner picks among
    // each set. A multi-column index wins only if it beats the single columns by the factor too.
    const capped = [
      ...candidates.filter((x) => x.columns.length === 1),
      ...candidates.filter((x) => x.columns.length > 1),
    ].slice(0, MAX_CANDIDATES)
    const evaluate = async (set: Candidate[]) => {
      if (set.length === 0) return null
      const r = await withHypothetical(c, hypopg, set, () => explainGeneric(c, query, planned))
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
    if (!chosen || costBefore / chosen.cost < config.min_cost_factor) {
      return { cost_before: costBefore, suggestions: [], note }
    }
    // Then exactly the chosen ones: their cost is what creating them would buy.
    const only = await withHypothetical(
      c,
      hypopg,
      chosen.used,
      () => explainGeneric(c, query, planned),
    )
    const costAfter = only.result.plan['Total Cost']
    const factor = costBefore / costAfter
    const kept = only.created.filter((h) => only.result.names.has(h.name))
    if (kept.length === 0 || factor < config.min_cost_factor) {
      return { cost_before: costBefore, suggestions: [], note }
    }
    return {
      cost_before: costBefore,
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
    await endSession(c, hypopg)
  }
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

// ---- relations ----

interface Relation {
  schema: string
  table: string
  rows: number
  kind: string
  partition: boolean
  persistence: string
  columns: string[]
  /** The valid, non-partial btree indexes by key columns (null where a key is an expression). */
  indexes: { name: string; columns: (string | null)[] }[]
}

async function relation(c: Sql, schema: string, table: string): Promise<Relation | null> {
  const [row]: Relation[] = await c`
    /* vigil:add-missing-index */
    select n.nspname::text as schema, c.relname::text as table,
           (case when c.reltuples >= 0 then c.reltuples
                 else pg_relation_size(c.oid) / 100.0 end)::float8 as rows,
           c.relkind::text as kind, c.relispartition as partition,
           c.relpersistence::text as persistence,
           to_json(array(select a.attname::text from pg_attribute a
                          where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped)) as columns,
           coalesce((select json_agg(k) from (
             select ic.relname::text as name, array(select a.attname::text
                          from unnest(i.indkey::int2[]) with ordinality u(attnum, n)
                          left join pg_attribute a on a.attrelid = i.indrelid and a.attnum = u.attnum
                          where u.n <= i.indnkeyatts order by u.n) as columns
             from pg_index i
             join pg_class ic on ic.oid = i.indexrelid
             join pg_am am on am.oid = ic.relam
             where i.indrelid = c.oid and i.indisvalid and i.indpred is null and am.amname = 'btree'
           ) k), '[]'::json) as indexes
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and c.relname = ${table}`
  return row ?? null
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
  candidates: Candidate[],
  fn: () => Promise<PlanNode>,
): Promise<{ created: Hypothetical[]; result: { plan: PlanNode; names: Set<string> } }> {
  const created: Hypothetical[] = []
  try {
    for (const cand of candidates) {
      const def = `create index on ${qualified(cand.rel.schema, cand.rel.table)} ` +
        `(${cand.columns.map(quoteIdent).join(', ')})`
      const rows = await attempt(
        c,
        () =>
          c`/* vigil:add-missing-index */ select indexname from ${
            c(hypopg)
          }.hypopg_create_index(${def})`,
      )
      if (rows?.[0]) created.push({ ...cand, name: rows[0].indexname as string })
    }
    const plan = await fn()
    return { created, result: { plan, names: indexNames(plan) } }
  } finally {
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
  if (hypopg) await resetHypothetical(c, hypopg).catch(() => {})
}

async function deallocate(c: Session) {
  const [row] = await c`/* vigil:add-missing-index */
    select count(*)::int as n from pg_prepared_statements where name = ${PREPARED}`
  if (row.n > 0) await c.unsafe(`deallocate ${PREPARED}`)
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

interface CreateOutcome {
  line: string
  created?: CreatedIndex
  failed?: boolean
}

/**
 * One index, as dexter builds it: under an advisory lock on its name, only if still missing,
 * concurrently (outside a transaction), then checked valid; a failed build's INVALID leftover
 * is dropped.
 */
async function createIndex(c: Session, s: Suggestion, signal: AbortSignal): Promise<CreateOutcome> {
  const what = `${s.index_name} on ${qualified(s.schema, s.table)} (${s.columns.join(', ')})`
  const key = indexLockKey(s.schema, s.index_name)
  const [{ locked }] = await c`/* vigil:add-missing-index */
    select pg_try_advisory_lock(hashtextextended(${key}, 0)) as locked`
  if (!locked) return { line: `skipped ${what}: another session holds its advisory lock` }
  try {
    const state = await indexState(c, s)
    if (!state.table_exists) return { line: `skipped ${what}: the table is gone` }
    if (state.equivalent) {
      return { line: `skipped ${what}: index ${state.equivalent} already serves it` }
    }
    if (state.named) {
      if (!(state.named.same && !state.named.valid)) {
        return { line: `skipped ${what}: the name is taken by another relation`, failed: true }
      }
      // An INVALID leftover of an earlier build (a crash, a deadline): dropped, then rebuilt.
      const cleanup = await dropInvalid(c, s)
      if (cleanup !== 'dropped') {
        return { line: `failed to create ${what}: ${cleanup}`, failed: true }
      }
    }
    const rights = await buildRights(c, s.schema, s.table)
    if (rights === null) {
      return {
        line: `skipped ${what}: this role does not own the table, and the database has no ` +
          'vigil.build_index it may call',
        failed: true,
      }
    }
    const started = performance.now()
    try {
      // Concurrently when this role owns the table; otherwise in place through vigil.build_index,
      // which checks every name against the catalog (and is transactional: a cancel leaves nothing).
      if (rights === 'owner') {
        await cancellable(c.unsafe(`/* ${INDEX_MARKER} */ ${s.index_sql}`), signal)
      } else {
        // In place, writes waiting: bounded by this session's statement_timeout, set for it.
        await c`/* vigil:add-missing-index */
          select set_config('statement_timeout', ${IN_PLACE_BUILD_TIMEOUT}, false)`
        try {
          await cancellable(
            c`/* vigil:add-missing-index */ select vigil.build_index(${s.schema}, ${s.table},
                ${JSON.stringify(s.columns)}::text::jsonb, ${s.index_name})`,
            signal,
          )
        } finally {
          await c.unsafe(`/* ${INDEX_MARKER} */ reset statement_timeout`).catch(() => {})
        }
      }
    } catch (err) {
      const why = signal.aborted ? "cancelled at the heal's deadline" : messageOf(err)
      const cleanup = await dropInvalid(c, s)
      const left = cleanup === 'dropped'
        ? '; its INVALID index was dropped'
        : cleanup === 'none'
        ? ''
        : `; ${cleanup}`
      return { line: `failed to create ${what}: ${why}${left}`, failed: true }
    }
    const ms = Math.round(performance.now() - started)
    const after = await indexState(c, s)
    if (!after.named?.same) {
      return { line: `failed to create ${what}: it is not there after the build`, failed: true }
    }
    if (!after.named.valid) {
      const cleanup = await dropInvalid(c, s)
      const left = cleanup === 'dropped' ? 'so it was dropped' : cleanup
      return {
        line: `failed to create ${what}: the concurrent build left it INVALID, ${left}`,
        failed: true,
      }
    }
    return {
      line: `created ${what} in ${ms} ms${
        rights === 'owner' ? '' : ' (in place, by vigil.build_index)'
      }`,
      created: { schema: s.schema, table: s.table, columns: s.columns, name: s.index_name },
    }
  } finally {
    await c`/* vigil:add-missing-index */ select pg_advisory_unlock(hashtextextended(${key}, 0))`
      .catch(() => {})
  }
}

/** The advisory lock a build holds: pg_try_advisory_lock(hashtextextended(key, 0)). */
export function indexLockKey(schema: string, indexName: string): string {
  return `${NAME}:${schema}.${indexName}`
}

interface IndexState {
  table_exists: boolean
  /** A valid btree index whose leading key columns are these. */
  equivalent: string | null
  /** The relation holding the index's name, if any: the same index, and whether it is valid. */
  named: { same: boolean; valid: boolean } | null
}

async function indexState(
  c: Sql,
  s: { schema: string; table: string; columns: string[]; index_name: string },
): Promise<IndexState> {
  const rel = await relation(c, s.schema, s.table)
  const [row] = await c`/* vigil:add-missing-index */
    select ic.relkind::text as kind, i.indisvalid as valid, t.relname::text as table,
           to_json(array(select a.attname::text
                         from unnest(i.indkey::int2[]) with ordinality u(attnum, n)
                         left join pg_attribute a on a.attrelid = i.indrelid and a.attnum = u.attnum
                         where u.n <= i.indnkeyatts order by u.n)) as cols
    from pg_class ic
    join pg_namespace n on n.oid = ic.relnamespace
    left join pg_index i on i.indexrelid = ic.oid
    left join pg_class t on t.oid = i.indrelid
    where n.nspname = ${s.schema} and ic.relname = ${s.index_name}`
  const equivalent = rel?.indexes.find((ix) => startsWith(ix.columns, s.columns))?.name ?? null
  const same = !!row && row.kind === 'i' && row.table === s.table &&
    JSON.stringify(row.cols) === JSON.stringify(s.columns)
  return {
    table_exists: !!rel,
    equivalent,
    named: row ? { same, valid: row.valid === true } : null,
  }
}

/**
 * Drops this index if it is there and INVALID, within CLEANUP_TIMEOUT (it may run after the
 * deadline, and DROP INDEX CONCURRENTLY waits for the transactions using the table). Says what
 * remains when it cannot.
 */
async function dropInvalid(c: Session, s: Suggestion): Promise<'dropped' | 'none' | string> {
  const remains = `an INVALID index ${qualified(s.schema, s.index_name)} remains: ` +
    'drop it with DROP INDEX CONCURRENTLY'
  try {
    const state = await indexState(c, s)
    if (!state.named?.same || state.named.valid) return 'none'
    await c`/* vigil:add-missing-index */ select set_config('statement_timeout', ${CLEANUP_TIMEOUT}, false)`
    try {
      await dropIndex(c, s.schema, s.index_name)
    } finally {
      await c.unsafe(`/* ${INDEX_MARKER} */ reset statement_timeout`)
    }
    return 'dropped'
  } catch (err) {
    return `${remains} (${messageOf(err)})`
  }
}

/**
 * Drops one of Vigil's indexes: concurrently when this role owns its table, otherwise through
 * vigil.drop_built_index, which drops only what vigil.build_index built (or an INVALID leftover).
 */
async function dropIndex(c: Sql, schema: string, name: string, signal?: AbortSignal) {
  const [row] = await c<{ owner: boolean }[]>`/* vigil:add-missing-index */
    select coalesce(pg_has_role(t.relowner, 'USAGE'), true) as owner
    from pg_class ic
    join pg_namespace n on n.oid = ic.relnamespace
    left join pg_index i on i.indexrelid = ic.oid
    left join pg_class t on t.oid = i.indrelid
    where n.nspname = ${schema} and ic.relname = ${name}`
  if (!row) return
  const q = row.owner
    ? c.unsafe(`/* ${INDEX_MARKER} */ drop index concurrently if exists ${qualified(schema, name)}`)
    : c`/* vigil:add-missing-index */ select vigil.drop_built_index(${schema}, ${name})`
  await (signal ? cancellable(q, signal) : q)
}

/**
 * How this role may build an index on a table: 'owner' (itself, concurrently), 'vigil' (through
 * vigil.build_index, in place), or null (not at all).
 */
async function buildRights(
  c: Sql,
  schema: string,
  table: string,
): Promise<'owner' | 'vigil' | null> {
  const [row] = await c<{ owner: boolean; vigil: boolean }[]>`/* vigil:add-missing-index */
    select coalesce((select pg_has_role(c.relowner, 'USAGE')
                     from pg_class c join pg_namespace n on n.oid = c.relnamespace
                     where n.nspname = ${schema} and c.relname = ${table}), false) as owner,
           coalesce(has_function_privilege(
             to_regprocedure('vigil.build_index(text, text, jsonb, text)'), 'EXECUTE'), false) as vigil`
  return row.owner ? 'owner' : row.vigil ? 'vigil' : null
}

/** Awaits a query, cancelling it on the server when the heal's deadline passes. */
async function cancellable<T>(q: postgres.PendingQuery<any>, signal: AbortSignal): Promise<T> {
  const onAbort = () => q.cancel()
  if (signal.aborted) onAbort()
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    return (await q) as T
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
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

// ---------------------------------------------------------------------------------------------
// the plan tree and its expressions

/** A node of EXPLAIN (FORMAT JSON): the fields read here, and the rest. */
export interface PlanNode {
  'Node Type': string
  'Total Cost': number
  Plans?: PlanNode[]
  'Relation Name'?: string
  Schema?: string
  Alias?: string
  Filter?: string
  'Hash Cond'?: string
  'Merge Cond'?: string
  'Join Filter'?: string
  'Sort Key'?: string[]
  'Index Name'?: string
  'Execution Time'?: number
  [key: string]: unknown
}

/** A sequentially scanned table and the plain columns its statement compares and sorts on. */
export interface ScanColumns {
  alias: string
  schema: string
  table: string
  /** col = expr (or = ANY), expr not reading this table. */
  equality: string[]
  /** col < > <= >= expr. */
  range: string[]
  /** Compared for equality with a column of another table. */
  join: string[]
  /** The ORDER BY directly above the scan, when every key is a plain column in one direction. */
  sort: string[]
}

function walk(node: PlanNode, visit: (n: PlanNode) => void) {
  visit(node)
  for (const child of node.Plans ?? []) walk(child, visit)
}

/** Every index name the plan uses. */
export function indexNames(plan: PlanNode): Set<string> {
  const names = new Set<string>()
  walk(plan, (n) => {
    if (typeof n['Index Name'] === 'string') names.add(n['Index Name'])
  })
  return names
}

/**
 * From a plan of EXPLAIN (VERBOSE, FORMAT JSON), where every column is qualified by its
 * relation's alias: each sequential scan with the columns an index could serve.
 */
export function scanColumns(plan: PlanNode): ScanColumns[] {
  const aliases = new Set<string>()
  const scans = new Map<string, ScanColumns>()
  const conditions: string[] = []
  const sorts: PlanNode[] = []
  walk(plan, (n) => {
    if (n.Alias) aliases.add(n.Alias)
    if (n['Node Type'] === 'Seq Scan' && n.Alias && n['Relation Name'] && n.Schema) {
      scans.set(n.Alias, {
        alias: n.Alias,
        schema: n.Schema,
        table: n['Relation Name'],
        equality: [],
        range: [],
        join: [],
        sort: [],
      })
    }
    for (const key of ['Filter', 'Hash Cond', 'Merge Cond', 'Join Filter'] as const) {
      if (typeof n[key] === 'string') conditions.push(n[key])
    }
    if (n['Node Type'] === 'Sort' && Array.isArray(n['Sort Key'])) sorts.push(n)
  })
  const add = (list: string[], col: string) => {
    if (!list.includes(col)) list.push(col)
  }
  for (const text of conditions) {
    const toks = tokenize(text)
    if (!toks) continue
    for (const part of conjuncts(toks)) {
      const cmp = comparison(part, aliases)
      if (!cmp) continue
      for (const side of cmp.sides) {
        const scan = scans.get(side.alias)
        if (!scan) continue
        if (side.kind === 'join') add(scan.join, side.column)
        else if (side.kind === 'equality') add(scan.equality, side.column)
        else add(scan.range, side.column)
      }
    }
  }
  for (const sort of sorts) {
    let below = sort.Plans?.[0]
    while (below && PASS_THROUGH.has(below['Node Type']) && below.Plans?.length === 1) {
      below = below.Plans[0]
    }
    if (below?.['Node Type'] !== 'Seq Scan' || !below.Alias) continue
    const scan = scans.get(below.Alias)
    const keys = (sort['Sort Key'] as string[]).map((k) => sortKey(k, below!.Alias!))
    if (!scan || keys.some((k) => k === null)) continue
    if (new Set(keys.map((k) => k!.descending)).size !== 1) continue
    for (const k of keys) add(scan.sort, k!.column)
  }
  return [...scans.values()].filter((s) =>
    s.equality.length + s.range.length + s.join.length + s.sort.length > 0
  )
}

const PASS_THROUGH = new Set(['Gather', 'Gather Merge', 'Result', 'Materialize'])

/** The column lists worth costing for one scan, at most MAX_INDEX_COLUMNS each, no repeats. */
export function candidateColumns(scan: ScanColumns): string[][] {
  const e = scan.equality.slice(0, MAX_INDEX_COLUMNS)
  const lists: string[][] = []
  for (const col of [...scan.equality, ...scan.range, ...scan.join]) lists.push([col])
  if (e.length > 1) lists.push(e)
  for (const r of scan.range.slice(0, 2)) if (e.length) lists.push([...e.slice(0, 2), r])
  for (const j of scan.join.slice(0, 2)) if (e.length) lists.push([...e.slice(0, 2), j])
  if (scan.sort.length) {
    lists.push(scan.sort)
    if (e.length) lists.push([...e, ...scan.sort])
  }
  const seen = new Set<string>()
  const out: string[][] = []
  for (const list of lists) {
    const columns = [...new Set(list)].slice(0, MAX_INDEX_COLUMNS)
    const key = JSON.stringify(columns)
    if (columns.length === 0 || seen.has(key)) continue
    seen.add(key)
    out.push(columns)
  }
  return out
}

interface Tok {
  kind: 'ident' | 'quoted' | 'string' | 'number' | 'param' | 'op' | 'punct'
  text: string
}

const OP_CHARS = '+-*/<>=~!@#%^&|`?'

/** The tokens of an expression as EXPLAIN prints it, or null when something is not understood. */
export function tokenize(s: string): Tok[] | null {
  const out: Tok[] = []
  let i = 0
  const quoted = (q: string): string | null => {
    let v = ''
    let j = i + 1
    for (;;) {
      if (j >= s.length) return null
      if (s[j] === q) {
        if (s[j + 1] === q) {
          v += q
          j += 2
          continue
        }
        break
      }
      v += s[j++]
    }
    i = j + 1
    return v
  }
  while (i < s.length) {
    const ch = s[i]
    const rest = s.slice(i)
    let m: RegExpMatchArray | null
    if (/\s/.test(ch)) i++
    else if (ch === '"' || ch === "'") {
      const v = quoted(ch)
      if (v === null) return null
      out.push({ kind: ch === '"' ? 'quoted' : 'string', text: v })
    } else if ((m = rest.match(/^\$\d+/))) {
      out.push({ kind: 'param', text: m[0] })
      i += m[0].length
    } else if ((m = rest.match(/^\d+(\.\d+)?([eE][+-]?\d+)?/))) {
      out.push({ kind: 'number', text: m[0] })
      i += m[0].length
    } else if ((m = rest.match(/^[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/))) {
      out.push({ kind: 'ident', text: m[0] })
      i += m[0].length
    } else if (rest.startsWith('::')) {
      out.push({ kind: 'punct', text: '::' })
      i += 2
    } else if ('()[],.;:'.includes(ch)) {
      out.push({ kind: 'punct', text: ch })
      i++
    } else if (OP_CHARS.includes(ch)) {
      let j = i
      while (j < s.length && OP_CHARS.includes(s[j])) j++
      out.push({ kind: 'op', text: s.slice(i, j) })
      i = j
    } else return null
  }
  return out
}

/** Depth of each token: 0 outside any parentheses or brackets. */
function depths(toks: Tok[]): number[] | null {
  const out: number[] = []
  let d = 0
  for (const t of toks) {
    if (t.kind === 'punct' && (t.text === ')' || t.text === ']')) d--
    if (d < 0) return null
    out.push(d)
    if (t.kind === 'punct' && (t.text === '(' || t.text === '[')) d++
  }
  return d === 0 ? out : null
}

/** Without the parentheses that wrap the whole expression. */
function unwrap(toks: Tok[]): Tok[] {
  for (;;) {
    if (toks.length < 2 || toks[0].text !== '(' || toks[toks.length - 1].text !== ')') return toks
    // The first parenthesis wraps the whole only if what is inside balances on its own.
    if (!depths(toks.slice(1, -1))) return toks
    toks = toks.slice(1, -1)
  }
}

/** The ANDed parts of a condition. */
function conjuncts(toks: Tok[]): Tok[][] {
  const t = unwrap(toks)
  const d = depths(t)
  if (!d) return []
  const parts: Tok[][] = []
  let start = 0
  t.forEach((tok, i) => {
    if (d[i] === 0 && tok.kind === 'ident' && tok.text.toUpperCase() === 'AND') {
      parts.push(t.slice(start, i))
      start = i + 1
    }
  })
  if (parts.length === 0) return [t]
  parts.push(t.slice(start))
  return parts.flatMap(conjuncts)
}

const COMPARISONS = new Set(['=', '<', '<=', '>', '>='])

interface ColumnRef {
  alias: string
  column: string
}

/** `alias.column`, or `(alias.column)::type`. */
function columnRef(toks: Tok[]): ColumnRef | null {
  const t = unwrap(toks)
  const isName = (x: Tok | undefined) => x?.kind === 'ident' || x?.kind === 'quoted'
  const plain = (a: Tok[]) =>
    a.length === 3 && isName(a[0]) && a[1].text === '.' && a[1].kind === 'punct' && isName(a[2])
      ? { alias: a[0].text, column: a[2].text }
      : null
  const direct = plain(t)
  if (direct) return direct
  if (t.length >= 7 && t[0].text === '(' && t[4].text === ')' && t[5].text === '::') {
    const inner = plain(t.slice(1, 4))
    if (inner && t.slice(6).every((x) => x.kind !== 'op')) return inner
  }
  return null
}

/** The aliases an expression reads columns of. */
function aliasesIn(toks: Tok[], known: Set<string>): Set<string> {
  const out = new Set<string>()
  for (let i = 0; i + 2 < toks.length; i++) {
    const a = toks[i]
    if (
      (a.kind === 'ident' || a.kind === 'quoted') && toks[i + 1].text === '.' && known.has(a.text)
    ) {
      if (i > 0 && toks[i - 1].text === '::') continue
      out.add(a.text)
    }
  }
  return out
}

interface Comparison {
  sides: (ColumnRef & { kind: 'equality' | 'range' | 'join' })[]
}

/** A comparison of a plain column with something not reading its own table, or null. */
function comparison(part: Tok[], known: Set<string>): Comparison | null {
  const t = unwrap(part)
  const d = depths(t)
  if (!d) return null
  const ops = t.map((x, i) => (d[i] === 0 && x.kind === 'op' ? i : -1)).filter((i) => i >= 0)
  if (ops.length !== 1 || !COMPARISONS.has(t[ops[0]].text)) return null
  const op = t[ops[0]].text
  const left = t.slice(0, ops[0])
  const right = t.slice(ops[0] + 1)
  const sides: Comparison['sides'] = []
  for (const [col, other] of [[left, right], [right, left]] as const) {
    const ref = columnRef(col)
    if (!ref || !known.has(ref.alias)) continue
    const reads = aliasesIn(other, known)
    if (reads.has(ref.alias)) continue
    const quantified = other[0]?.kind === 'ident' && /^(ANY|ALL|SOME)$/i.test(other[0].text)
    if (quantified && !(op === '=' && /^(ANY|SOME)$/i.test(other[0].text))) continue
    if (reads.size > 0) {
      if (op === '=') sides.push({ ...ref, kind: 'join' })
    } else sides.push({ ...ref, kind: op === '=' ? 'equality' : 'range' })
  }
  return sides.length ? { sides } : null
}

/** A sort key of this alias: `alias.col [DESC]`, default NULLS ordering, no COLLATE or USING. */
function sortKey(text: string, alias: string): { column: string; descending: boolean } | null {
  const toks = tokenize(text)
  if (!toks || toks.length < 3) return null
  const ref = columnRef(toks.slice(0, 3))
  if (!ref || ref.alias !== alias) return null
  const rest = toks.slice(3).map((x) => x.text.toUpperCase()).join(' ')
  if (rest === '' || rest === 'ASC') return { column: ref.column, descending: false }
  if (rest === 'DESC') return { column: ref.column, descending: true }
  return null
}

// ---------------------------------------------------------------------------------------------
// statements, names, numbers

/**
 * The statement without leading comments, blanks and a trailing semicolon, or null when its text
 * holds more than one statement (a semicolon outside quotes and comments).
 */
export function singleStatement(query: string): string | null {
  const text = query.replace(new RegExp(LEADING_RE), '').replace(/[\s;]+$/, '')
  let i = 0
  while (i < text.length) {
    const ch = text[i]
    if (ch === "'" || ch === '"') {
      const end = text.indexOf(ch, i + 1)
      if (end < 0) return null
      i = end + 1
    } else if (text.startsWith('--', i)) {
      const end = text.indexOf('\n', i)
      i = end < 0 ? text.length : end + 1
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2)
      if (end < 0) return null
      i = end + 2
    } else if (ch === ';') return null
    else i++
  }
  return text.length ? text : null
}

/** Always quoted, so capitals, spaces and keywords are safe. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

function qualified(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`
}

function createIndexSql(schema: string, table: string, columns: string[], name: string): string {
  return `CREATE INDEX CONCURRENTLY IF NOT EXISTS ${quoteIdent(name)} ON ` +
    `${qualified(schema, table)} (${columns.map(quoteIdent).join(', ')})`
}

/**
 * vigil_idx_<table>_<cols>, lower-case ASCII, at most 63 bytes. A name that had to be cleaned
 * (capitals, spaces, other characters) or shortened ends in a hash of the exact table and
 * columns, so two tables whose names clean alike do not collide.
 */
export function indexName(table: string, columns: string[], forceHash = false): string {
  const raw = ['vigil_idx', table, ...columns].join('_')
  const clean = raw.toLowerCase().replace(/[^a-z0-9_]+/g, '_')
  if (!forceHash && clean === raw && clean.length <= INDEX_NAME_MAX) return clean
  const hash = fnv1a(JSON.stringify([table, columns])).toString(16).padStart(8, '0')
  return `${clean.slice(0, INDEX_NAME_MAX - hash.length - 1).replace(/_+$/, '')}_${hash}`
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5
  for (const byte of new TextEncoder().encode(s)) {
    h ^= byte
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

function startsWith(list: (string | null)[], prefix: string[]): boolean {
  return prefix.length <= list.length && prefix.every((col, i) => list[i] === col)
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
