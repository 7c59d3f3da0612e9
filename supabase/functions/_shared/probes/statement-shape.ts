// What a SQL statement is and what it calls, read from the real Postgres parse tree (the Postgres
// parser compiled to WASM). The index advisor uses it on pg_stat_statements text to skip
// statements whose planning could run user code and to time only plain SELECTs; a regex over the
// text cannot see a function inside a CTE, a quoted name or an OPERATOR(schema.op) call reliably.

// Pinned to one exact version in the import maps: the grammar must not drift under a range.
import { PgParser } from '@supabase/pg-parser'

export interface QualifiedName {
  schema: string | null
  name: string
}

export interface StatementShape {
  /** The statement's top-level kind. */
  kind: 'select' | 'insert' | 'update' | 'delete' | 'merge' | 'utility'
  /** A SELECT that cannot change anything: no data-modifying CTE anywhere, no SELECT INTO, no
   * FOR UPDATE/SHARE (locking clause) anywhere. */
  plainSelect: boolean
  /** Every function called anywhere in the tree, as written: schema null when unqualified. */
  functions: QualifiedName[]
  /** Every operator named anywhere (incl. OPERATOR(schema.op)), schema null when unqualified. */
  operators: QualifiedName[]
  /** Every relation named; CTE names referenced in FROM are not relations. */
  relations: QualifiedName[]
  /** Every type named in a cast or a typed literal. */
  types: QualifiedName[]
  /**
   * The last name of every column reference (`t.f` gives f): Postgres reads `t.f` as a call f(t)
   * when t has no column f, so a caller checks these against functions too.
   */
  columns: string[]
}

export class StatementShapeError extends Error {
  override readonly name = 'StatementShapeError'
  /** Zero-based offset of a syntax error in the text, when the parser gave one. */
  readonly position?: number

  constructor(message: string, position?: number) {
    super(message)
    this.position = position
  }
}

// Grammar 17 accepts everything 15 does for DML, so one parser serves projects on either version.
const GRAMMAR_VERSION = 17

let parser: Promise<PgParser<typeof GRAMMAR_VERSION>> | undefined

function loadParser(): Promise<PgParser<typeof GRAMMAR_VERSION>> {
  if (!parser) {
    const p = new PgParser({ version: GRAMMAR_VERSION })
    parser = p.ready.then(() => p)
    // A failed load (e.g. the WASM missing from a bundle) must not poison every later call.
    parser.catch(() => parser = undefined)
  }
  return parser
}

/**
 * The parse tree of exactly one statement ({SelectStmt: …}); throws StatementShapeError on a
 * syntax error or when the text holds zero or several statements.
 */
export async function parseStatement(sql: string): Promise<Record<string, unknown> | undefined> {
  const result = await (await loadParser()).parse(sql)
  if (result.error) {
    const { message, position } = result.error
    throw new StatementShapeError(`cannot parse SQL: ${message} (at offset ${position})`, position)
  }
  const stmts = result.tree.stmts ?? []
  if (stmts.length !== 1) {
    const found = stmts.length === 0 ? 'none' : String(stmts.length)
    throw new StatementShapeError(`expected exactly one SQL statement, found ${found}`)
  }
  return stmts[0].stmt as Record<string, unknown> | undefined
}

/** Parses exactly one statement; throws StatementShapeError on a syntax error or when the text
 * holds zero or several statements. */
export async function statementShape(sql: string): Promise<StatementShape> {
  const stmt = await parseStatement(sql)
  const top = stmt ? Object.keys(stmt)[0] : undefined
  const kind = TOP_KINDS[top ?? ''] ?? 'utility'

  const walker = new Walker()
  walker.visit(stmt, new Set())
  return {
    kind,
    plainSelect: kind === 'select' && !walker.modifies && !walker.selectInto && !walker.locks,
    functions: [...walker.functions.values()],
    operators: [...walker.operators.values()],
    relations: [...walker.relations.values()],
    types: [...walker.types.values()],
    columns: [...walker.columns],
  }
}

const TOP_KINDS: Record<string, StatementShape['kind']> = {
  SelectStmt: 'select',
  InsertStmt: 'insert',
  UpdateStmt: 'update',
  DeleteStmt: 'delete',
  MergeStmt: 'merge',
}

// The analyzer rewrites BETWEEN into these (unqualified, so search_path-resolved) operators.
const BETWEEN_OPERATORS: Record<string, string[]> = {
  AEXPR_BETWEEN: ['>=', '<='],
  AEXPR_BETWEEN_SYM: ['>=', '<='],
  AEXPR_NOT_BETWEEN: ['<', '>'],
  AEXPR_NOT_BETWEEN_SYM: ['<', '>'],
}

type Obj = Record<string, unknown>

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

// Name lists are [{String: {sval}}…]; the parser has already folded unquoted identifiers.
function qualified(list: unknown): QualifiedName | null {
  if (!Array.isArray(list)) return null
  const parts = list.map((n) => (isObj(n) && isObj(n.String) ? String(n.String.sval ?? '') : ''))
  const name = parts.at(-1)
  if (!name) return null
  return { schema: parts.length > 1 ? parts.at(-2) || null : null, name }
}

function add(into: Map<string, QualifiedName>, q: QualifiedName | null): void {
  if (q) into.set(`${q.schema ?? ''}\u0000${q.name}`, q)
}

// The JSON tree wraps Node-typed fields as {TypeName: body} but inlines fields of a fixed struct
// type (a DML target RangeVar, SelectStmt.larg/rarg, CallStmt.funccall…), so the walk visits every
// object and recognises nodes both by wrapper key and, for those inlined structs, by shape.
class Walker {
  functions = new Map<string, QualifiedName>()
  operators = new Map<string, QualifiedName>()
  relations = new Map<string, QualifiedName>()
  types = new Map<string, QualifiedName>()
  columns = new Set<string>()
  modifies = false
  selectInto = false
  locks = false

  visit(node: unknown, ctes: ReadonlySet<string>): void {
    if (Array.isArray(node)) {
      for (const item of node) this.visit(item, ctes)
      return
    }
    if (!isObj(node)) return

    // An inlined RangeVar is a DML or SELECT INTO target, which never resolves to a CTE.
    if (typeof node.relname === 'string' && 'relpersistence' in node) {
      this.relation(node, new Set())
      return
    }
    if (Array.isArray(node.funcname) && 'funcformat' in node) {
      add(this.functions, qualified(node.funcname))
    }
    if (isObj(node.withClause)) return this.visitWithScope(node, node.withClause, ctes)

    for (const [key, value] of Object.entries(node)) {
      if (!isObj(value) && !Array.isArray(value)) continue
      switch (key) {
        case 'RangeVar':
          this.relation(value as Obj, ctes)
          continue
        case 'A_Expr':
          this.aExpr(value as Obj)
          break
        case 'SubLink': {
          const link = value as Obj
          // `x IN (subquery)` carries no operator name; the analyzer uses "=".
          if (link.operName) add(this.operators, qualified(link.operName))
          else if (link.subLinkType === 'ANY_SUBLINK') this.op('=')
          break
        }
        case 'SortBy':
          add(this.operators, qualified((value as Obj).useOp))
          break
        case 'TypeCast': {
          const typeName = (value as Obj).typeName
          if (isObj(typeName)) add(this.types, qualified(typeName.names))
          break
        }
        case 'ColumnRef': {
          const fields = (value as Obj).fields
          const last = Array.isArray(fields) ? fields.at(-1) : undefined
          if (isObj(last) && isObj(last.String)) this.columns.add(String(last.String.sval ?? ''))
          break
        }
        case 'RangeTableSample':
          // The TABLESAMPLE method names a handler function, looked up like any other.
          add(this.functions, qualified((value as Obj).method))
          break
        case 'JoinExpr': {
          const join = value as Obj
          if (join.isNatural || (Array.isArray(join.usingClause) && join.usingClause.length)) {
            this.op('=')
          }
          break
        }
        case 'CaseExpr':
          // `CASE x WHEN y` compares with an implicit, search_path-resolved "=".
          if ((value as Obj).arg) this.op('=')
          break
        case 'InsertStmt':
        case 'UpdateStmt':
        case 'DeleteStmt':
        case 'MergeStmt':
          // The top-level statement is visited from its wrapper too; statementShape ignores this
          // flag unless the top is a SELECT, so here it only ever means a data-modifying CTE.
          this.modifies = true
          break
        case 'intoClause':
          this.selectInto = true
          break
        case 'lockingClause':
          if (Array.isArray(value) && value.length) this.locks = true
          break
      }
      this.visit(value, ctes)
    }
  }

  // A non-recursive WITH lets each CTE see only the ones before it; the statement body sees all.
  private visitWithScope(node: Obj, withClause: Obj, outer: ReadonlySet<string>): void {
    const ctes = (Array.isArray(withClause.ctes) ? withClause.ctes : [])
      .map((c) => (isObj(c) && isObj(c.CommonTableExpr) ? c.CommonTableExpr : {}))
    const names = ctes.map((c) => String(c.ctename ?? ''))
    const all = new Set([...outer, ...names])
    ctes.forEach((cte, i) => {
      const scope = withClause.recursive ? all : new Set([...outer, ...names.slice(0, i)])
      this.visit(cte, scope)
    })
    const { withClause: _, ...rest } = node
    this.visit(rest, all)
  }

  private relation(rangeVar: Obj, ctes: ReadonlySet<string>): void {
    const schema = String(rangeVar.schemaname ?? '') || null
    const name = String(rangeVar.relname ?? '')
    if (!name || (schema === null && ctes.has(name))) return
    add(this.relations, { schema, name })
  }

  private aExpr(expr: Obj): void {
    const between = BETWEEN_OPERATORS[String(expr.kind)]
    if (between) between.forEach((op) => this.op(op))
    else add(this.operators, qualified(expr.name))
  }

  private op(name: string): void {
    add(this.operators, { schema: null, name })
  }
}
