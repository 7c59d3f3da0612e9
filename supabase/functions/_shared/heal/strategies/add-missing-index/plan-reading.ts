// Reading EXPLAIN (VERBOSE, FORMAT JSON) plans: which relations a statement scans sequentially, on
// which columns it filters, joins and sorts, and which indexes a plan uses. Pure functions over the
// plan tree, shared by the advisor's planning and its verification.

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
