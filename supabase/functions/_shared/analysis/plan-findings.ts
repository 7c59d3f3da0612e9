// What a slow statement's generic plan says is wrong with it, in the terms a Postgres engineer
// uses: a sequential scan over a large table, a missing index (hypopg's estimate and the CREATE
// INDEX that fixes it, from the index advisor), a cartesian product or a row explosion in a join,
// and several correlated subqueries over one table that a single aggregation could replace. Read
// from EXPLAIN (VERBOSE, FORMAT JSON) only: estimates, never a run of the statement.
import {
  conditionAliases,
  type PlanNode,
} from '../heal/strategies/add-missing-index/plan-reading.ts'
import type { Suggestion } from '../heal/strategies/add-missing-index/types.ts'

/** A sequential scan over a table of at least this many rows (planner estimate) is named. */
export const LARGE_TABLE_ROWS = 10_000
/** A join this many times larger than its larger input is a row explosion… */
export const EXPLOSION_FACTOR = 10
/** …when it also yields at least this many rows. */
export const EXPLOSION_MIN_ROWS = 100_000
/** A join without a condition yielding at least this many rows is a cartesian product worth naming. */
export const CARTESIAN_MIN_ROWS = 1_000

export type PlanFinding =
  & { text: string; fix: string }
  & (
    | { kind: 'seq_scan'; table: string; rows: number }
    | {
      kind: 'missing_index'
      table: string
      columns: string[]
      index_sql: string
      cost_before: number
      cost_after: number
      factor: number
    }
    | { kind: 'cartesian_product'; tables: string[]; rows: number }
    | { kind: 'row_explosion'; tables: string[]; rows: number; input_rows: number }
    | { kind: 'repeated_subqueries'; table: string; subqueries: number; aggregated: boolean }
  )

const CONDITIONS = [
  'Filter',
  'Index Cond',
  'Recheck Cond',
  'Hash Cond',
  'Merge Cond',
  'Join Filter',
  'TID Cond',
] as const
const JOINS = new Set(['Nested Loop', 'Hash Join', 'Merge Join'])

function walk(node: PlanNode, visit: (n: PlanNode) => void) {
  visit(node)
  for (const child of node.Plans ?? []) walk(child, visit)
}

function nodes(node: PlanNode): PlanNode[] {
  const out: PlanNode[] = []
  walk(node, (n) => out.push(n))
  return out
}

const rowsOf = (n: PlanNode) => Number(n['Plan Rows'] ?? 0)
const tableOf = (n: PlanNode) =>
  n['Relation Name'] ? `${n.Schema ? `${n.Schema}.` : ''}${n['Relation Name']}` : null
const count = (n: number) => Math.round(n).toLocaleString('en-US')

/** The tables a subtree reads, in plan order, each once. */
function tablesIn(node: PlanNode): string[] {
  return [...new Set(nodes(node).map(tableOf).filter((t): t is string => t !== null))]
}

/**
 * The findings of one plan. `tableRows` has the planner's row estimate of each table the plan
 * scans ("schema.table"); `indexes` the advisor's suggestions for this statement.
 */
export async function planFindings(
  plan: PlanNode,
  tableRows: Map<string, number>,
  indexes: Suggestion[],
): Promise<PlanFinding[]> {
  const out: PlanFinding[] = []
  const all = nodes(plan)

  for (const ix of indexes) {
    const table = `${ix.schema}.${ix.table}`
    out.push({
      kind: 'missing_index',
      table,
      columns: ix.columns,
      index_sql: ix.index_sql,
      cost_before: ix.cost_before,
      cost_after: ix.cost_after,
      factor: ix.factor,
      text: `Missing index on ${table} (${ix.columns.join(', ')}): hypopg estimates the statement ${
        factorText(ix.factor)
      } cheaper (cost ${count(ix.cost_before)} → ${count(ix.cost_after)})`,
      fix: ix.index_sql,
    })
  }

  const scanned = new Set<string>()
  for (const n of all) {
    if (n['Node Type'] !== 'Seq Scan') continue
    const table = tableOf(n)
    if (!table || scanned.has(table)) continue
    const rows = tableRows.get(table) ?? 0
    if (rows < LARGE_TABLE_ROWS) continue
    scanned.add(table)
    const indexed = indexes.find((ix) => `${ix.schema}.${ix.table}` === table)
    out.push({
      kind: 'seq_scan',
      table,
      rows: Math.round(rows),
      text: `Sequential scan over ${table} (~${count(rows)} rows)${
        typeof n.Filter === 'string' ? `, filtering ${n.Filter}` : ''
      }`,
      fix: indexed
        ? `the index above (${indexed.index_name}) replaces it`
        : 'no index makes it cheaper enough: it reads most of the table, so select fewer rows (a narrower WHERE, a LIMIT, a summary table) or keep it off the hot path',
    })
  }

  const named = new Set<PlanNode>()
  for (const n of all) {
    if (!JOINS.has(n['Node Type']) || (n.Plans?.length ?? 0) < 2) continue
    const [outer, inner] = n.Plans!
    const tables = [...tablesIn(outer), ...tablesIn(inner)]
    if (
      n['Node Type'] === 'Nested Loop' && typeof n['Join Filter'] !== 'string' &&
      rowsOf(outer) > 1 && rowsOf(inner) > 1 && rowsOf(n) >= CARTESIAN_MIN_ROWS &&
      await unconditioned(outer, inner)
    ) {
      named.add(n)
      out.push({
        kind: 'cartesian_product',
        tables,
        rows: Math.round(rowsOf(n)),
        text: `Cartesian product: ${tables.join(' × ')} are joined with no condition, ~${
          count(rowsOf(outer))
        } × ${count(rowsOf(inner))} = ~${count(rowsOf(n))} rows`,
        fix:
          'add the missing join condition (ON or WHERE) between these tables; a comma in FROM with no WHERE joins every row to every row',
      })
      continue
    }
    const input = Math.max(rowsOf(outer), rowsOf(inner))
    if (rowsOf(n) >= EXPLOSION_MIN_ROWS && rowsOf(n) >= EXPLOSION_FACTOR * Math.max(1, input)) {
      named.add(n)
      out.push({
        kind: 'row_explosion',
        tables,
        rows: Math.round(rowsOf(n)),
        input_rows: Math.round(input),
        text: `Row explosion: the ${n['Node Type'].toLowerCase()} of ${
          tables.join(' and ')
        } yields ~${count(rowsOf(n))} rows from inputs of at most ~${count(input)}`,
        fix:
          'the join key is not unique on either side (a many-to-many join): join on a key unique on one side, or aggregate one side (GROUP BY the key) before joining',
      })
    }
  }

  // Correlated subqueries: each runs once per outer row. Two or more over the same table can be one
  // aggregation joined once.
  const subplans = all.filter((n) => n['Parent Relationship'] === 'SubPlan')
  const byTable = new Map<string, PlanNode[]>()
  for (const sp of subplans) {
    for (const t of tablesIn(sp)) byTable.set(t, [...(byTable.get(t) ?? []), sp])
  }
  for (const [table, list] of byTable) {
    if (list.length < 2) continue
    const aggregated = list.every((sp) => nodes(sp).some((x) => x['Node Type'] === 'Aggregate'))
    out.push({
      kind: 'repeated_subqueries',
      table,
      subqueries: list.length,
      aggregated,
      text: `${list.length} correlated subqueries each read ${table} once per row${
        aggregated ? ', each computing one aggregate' : ''
      }`,
      fix: aggregated
        ? `compute them in one aggregation: join (select key, count(*), sum(…), … from ${table} group by key) once, or one LEFT JOIN LATERAL returning every value`
        : `read ${table} once: one LEFT JOIN LATERAL (or a join) returning every column the subqueries fetch`,
    })
  }
  return out
}

/** Whether nothing on the inner side of a nested loop reads a column of its outer side. */
async function unconditioned(outer: PlanNode, inner: PlanNode): Promise<boolean> {
  const outerAliases = new Set(
    nodes(outer).map((n) => n.Alias).filter((a): a is string => typeof a === 'string'),
  )
  if (outerAliases.size === 0) return false
  for (const n of nodes(inner)) {
    for (const key of CONDITIONS) {
      const text = n[key]
      if (typeof text !== 'string') continue
      const read = await conditionAliases(text, outerAliases)
      // A condition that does not parse may well be the join: no claim is made.
      if (read === null || read.size > 0) return false
    }
  }
  return true
}

function factorText(f: number): string {
  return f >= 10 ? `${Math.round(f).toLocaleString('en-US')}×` : `${f.toFixed(1)}×`
}
