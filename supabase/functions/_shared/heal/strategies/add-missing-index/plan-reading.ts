// Reading EXPLAIN (VERBOSE, FORMAT JSON) plans: which relations a statement scans sequentially, on
// which columns it filters, joins and sorts, and which indexes a plan uses; conditions and sort
// keys are read by the real Postgres parser (WASM), never by pattern. Shared by the advisor's
// planning and its verification.
import { parseStatement } from '../../../probes/statement-shape.ts'

/** At most this many columns in one suggested index. */
export const MAX_INDEX_COLUMNS = 3

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
export async function scanColumns(plan: PlanNode): Promise<ScanColumns[]> {
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
    const expr = await expression(text)
    if (!expr) continue
    for (const part of conjuncts(expr)) {
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
    const keys = await Promise.all(
      (sort['Sort Key'] as string[]).map((k) => sortKey(k, below!.Alias!)),
    )
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

// ---- expressions, read by the real Postgres parser ----
// EXPLAIN prints each condition as SQL ("((o.status = 'paid'::text) AND (o.total >= $2))"); it is
// parsed as `SELECT <condition>` and read from the tree. What does not parse is left out.

type Node = Record<string, unknown>

const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The parse tree of one expression as EXPLAIN prints it, or null when it does not parse. */
async function expression(text: string): Promise<Node | null> {
  // EXPLAIN names subplans where a value comes from one ("(hashed SubPlan 1)"): a null stands in,
  // so the rest of the condition is still read.
  const sql = text.replace(/\b(hashed )?(SubPlan|InitPlan) \d+( \(returns [^)]*\))?/g, 'null')
  const whole = await parsedExpression(sql)
  if (whole) return whole
  // Some of it is not SQL (Postgres 17 prints "(ANY (x = (hashed SubPlan 1).col1))"): each of its
  // top-level ANDed parts is read on its own, and those that parse are kept.
  const parts = topLevelAnd(sql)
  if (parts.length < 2) return null
  const args = (await Promise.all(parts.map(parsedExpression))).filter((x): x is Node => !!x)
  return args.length ? { BoolExpr: { boolop: 'AND_EXPR', args } } : null
}

async function parsedExpression(sql: string): Promise<Node | null> {
  try {
    const stmt = await parseStatement(`select ${sql}`)
    const select = stmt?.SelectStmt as { targetList?: { ResTarget?: { val?: unknown } }[] }
    const val = select?.targetList?.[0]?.ResTarget?.val
    return isNode(val) ? val : null
  } catch {
    return null
  }
}

/** The parts of `(a) AND (b) AND …` at the top level (outer parentheses, quotes respected). */
function topLevelAnd(text: string): string[] {
  let t = text.trim()
  while (t.startsWith('(') && t.endsWith(')') && balanced(t.slice(1, -1))) t = t.slice(1, -1).trim()
  const parts: string[] = []
  let depth = 0
  let quote: string | null = null
  let start = 0
  for (let i = 0; i < t.length; i++) {
    const ch = t[i]
    if (quote) {
      if (ch === quote) quote = null
    } else if (ch === "'" || ch === '"') quote = ch
    else if (ch === '(') depth++
    else if (ch === ')') depth--
    else if (depth === 0 && /^\sAND\s/i.test(t.slice(i, i + 5))) {
      parts.push(t.slice(start, i).trim())
      start = i + 5
      i += 4
    }
  }
  parts.push(t.slice(start).trim())
  return parts.filter(Boolean)
}

/** Whether the parentheses outside quotes balance, never going below zero. */
function balanced(text: string): boolean {
  let depth = 0
  let quote: string | null = null
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = null
    } else if (ch === "'" || ch === '"') quote = ch
    else if (ch === '(') depth++
    else if (ch === ')' && --depth < 0) return false
  }
  return depth === 0
}

/** The ANDed parts of a condition. */
function conjuncts(node: Node): Node[] {
  const bool = node.BoolExpr as { boolop?: string; args?: unknown[] } | undefined
  if (bool?.boolop === 'AND_EXPR' && Array.isArray(bool.args)) {
    return bool.args.filter(isNode).flatMap(conjuncts)
  }
  return [node]
}

const COMPARISONS = new Set(['=', '<', '<=', '>', '>='])

interface ColumnRef {
  alias: string
  column: string
}

/** The names of a ColumnRef node's fields (a star is not a name). */
function fieldsOf(node: unknown): string[] | null {
  const ref = isNode(node) ? node.ColumnRef as { fields?: unknown[] } | undefined : undefined
  if (!ref || !Array.isArray(ref.fields)) return null
  const names = ref.fields.map((f) =>
    isNode(f) && isNode(f.String) ? String(f.String.sval ?? '') : null
  )
  return names.every((n) => n) ? names as string[] : null
}

/** `alias.column`, or `(alias.column)::type`. */
function columnRef(node: Node): ColumnRef | null {
  const cast = node.TypeCast as { arg?: unknown } | undefined
  const fields = fieldsOf(cast ? cast.arg : node)
  return fields?.length === 2 ? { alias: fields[0], column: fields[1] } : null
}

/**
 * The aliases among `known` a plan condition (Filter, Index Cond, …) reads columns of; null when
 * the condition does not parse.
 */
export async function conditionAliases(
  text: string,
  known: Set<string>,
): Promise<Set<string> | null> {
  const expr = await expression(text)
  return expr ? aliasesIn(expr, known) : null
}

/** The aliases an expression reads columns of. */
function aliasesIn(node: unknown, known: Set<string>, out = new Set<string>()): Set<string> {
  if (Array.isArray(node)) {
    for (const x of node) aliasesIn(x, known, out)
  } else if (isNode(node)) {
    const fields = fieldsOf(node)
    if (fields && fields.length >= 2 && known.has(fields[0])) out.add(fields[0])
    for (const v of Object.values(node)) aliasesIn(v, known, out)
  }
  return out
}

interface Comparison {
  sides: (ColumnRef & { kind: 'equality' | 'range' | 'join' })[]
}

/**
 * A comparison of a plain column with something not reading its own table (col = expr, col < expr
 * …, col = ANY (array)), or null.
 */
function comparison(node: Node, known: Set<string>): Comparison | null {
  const expr = node.A_Expr as
    | { kind?: string; name?: unknown; lexpr?: unknown; rexpr?: unknown }
    | undefined
  if (!expr || !Array.isArray(expr.name) || expr.name.length !== 1) return null
  const op = isNode(expr.name[0]) && isNode(expr.name[0].String)
    ? String(expr.name[0].String.sval)
    : ''
  if (!COMPARISONS.has(op) || !isNode(expr.lexpr) || !isNode(expr.rexpr)) return null
  // = ANY (array) is an equality of its left side; other quantified comparisons are not used.
  const orientations: [Node, Node][] = expr.kind === 'AEXPR_OP'
    ? [[expr.lexpr, expr.rexpr], [expr.rexpr, expr.lexpr]]
    : expr.kind === 'AEXPR_OP_ANY' && op === '='
    ? [[expr.lexpr, expr.rexpr]]
    : []
  const sides: Comparison['sides'] = []
  for (const [col, other] of orientations) {
    const ref = columnRef(col)
    if (!ref || !known.has(ref.alias)) continue
    const reads = aliasesIn(other, known)
    if (reads.has(ref.alias)) continue
    if (reads.size > 0) {
      if (op === '=') sides.push({ ...ref, kind: 'join' })
    } else sides.push({ ...ref, kind: op === '=' ? 'equality' : 'range' })
  }
  return sides.length ? { sides } : null
}

/** A sort key of this alias: `alias.col [DESC]`, default NULLS ordering, no COLLATE or USING. */
async function sortKey(
  text: string,
  alias: string,
): Promise<{ column: string; descending: boolean } | null> {
  try {
    const stmt = await parseStatement(`select 1 order by ${text}`)
    const select = stmt?.SelectStmt as { sortClause?: { SortBy?: Node }[] } | undefined
    const sortBy = select?.sortClause?.length === 1 ? select.sortClause[0].SortBy : undefined
    if (!sortBy || sortBy.useOp || sortBy.sortby_nulls !== 'SORTBY_NULLS_DEFAULT') return null
    const fields = fieldsOf(sortBy.node)
    if (!fields || fields.length !== 2 || fields[0] !== alias) return null
    if (sortBy.sortby_dir === 'SORTBY_DESC') return { column: fields[1], descending: true }
    if (sortBy.sortby_dir === 'SORTBY_DEFAULT' || sortBy.sortby_dir === 'SORTBY_ASC') {
      return { column: fields[1], descending: false }
    }
    return null
  } catch {
    return null
  }
}
