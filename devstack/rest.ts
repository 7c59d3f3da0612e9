// A PostgREST stand-in at /rest/v1: the subset supabase-js v2 sends for reading and changing rows
// and calling functions, with PostgREST's rights model. Each request runs in one transaction as
// the JWT's role (anon, authenticated or service_role) with request.jwt.claims set, so grants and
// RLS decide exactly as on Supabase. Names are checked against the catalog and quoted; every
// value travels as a bind parameter. Dev tooling only: never deployed.
import postgres from 'postgres'
import { type JwtPayload, verifyJwt } from './jwt.ts'

export const REST_PREFIX = '/rest/v1'
const API_ROLES = ['anon', 'authenticated', 'service_role'] as const
type ApiRole = typeof API_ROLES[number]
const STATEMENT_TIMEOUT_MS = 8_000
const MAX_BODY_BYTES = 5_000_000
const MAX_IN_VALUES = 1_000
/** Query parameters that are not filters. */
const RESERVED_PARAMS = new Set(['select', 'order', 'limit', 'offset', 'columns', 'on_conflict'])
const OPERATORS = {
  eq: '=',
  neq: '<>',
  gt: '>',
  gte: '>=',
  lt: '<',
  lte: '<=',
  like: 'like',
  ilike: 'ilike',
  is: 'is',
  in: 'in',
} as const
type Operator = keyof typeof OPERATORS
/** `is.` takes only these, written into the SQL as keywords. */
const IS_VALUES: Record<string, string> = {
  null: 'null',
  true: 'true',
  false: 'false',
  unknown: 'unknown',
}

export interface RestOptions {
  /** The role PostgREST logs in as: `authenticator`, which may only switch to the API roles. */
  dbUrl: string
  jwtSecret: string
  /** config.toml [api] schemas; the first is the default, as in PostgREST. */
  schemas: readonly string[]
  /** config.toml [api] extra_search_path. */
  extraSearchPath?: readonly string[]
  /** config.toml [api] max_rows: the most rows a read returns. */
  maxRows?: number
  log?: (line: string) => void
}

export interface RestHandler {
  /** Answers a request whose path starts with /rest/v1. */
  handle(request: Request): Promise<Response>
  close(): Promise<void>
}

export function createRest(options: RestOptions): RestHandler {
  return new RestStandIn(options)
}

/** An answer in PostgREST's error shape. */
export class RestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: string | null = null,
    readonly hint: string | null = null,
  ) {
    super(message)
  }
}

interface Caller {
  role: ApiRole
  claims: JwtPayload
}

interface SelectItem {
  column: string
  alias: string
}
interface Selection {
  star: boolean
  items: SelectItem[]
}
interface Filter {
  column: string
  op: Operator
  negated: boolean
  value: string
  values: string[]
}
interface OrderItem {
  column: string
  descending: boolean
  nulls: 'first' | 'last' | null
}
interface Page {
  limit: number | null
  offset: number
}

interface Relation {
  schema: string
  name: string
  columns: string[]
}

interface Routine {
  schema: string
  name: string
  inputs: { name: string; type: string }[]
  requiredInputs: number
  returnsSet: boolean
  returnType: string
  /** Output columns when it returns rows (a composite type or OUT/TABLE parameters); else null. */
  columns: string[] | null
}

type Sql = postgres.Sql<Record<string, never>>
type Tx = postgres.TransactionSql<Record<string, never>>

interface Outcome {
  /** The JSON text to send, or null for none. */
  body: string | null
  status: number
  headers?: Record<string, string>
}

class RestStandIn implements RestHandler {
  readonly #sql: Sql
  readonly #schemas: readonly string[]
  readonly #maxRows: number | null
  readonly #log: (line: string) => void

  constructor(private readonly options: RestOptions) {
    if (options.schemas.length === 0) throw new Error('the REST stand-in needs at least one schema')
    this.#schemas = options.schemas
    this.#maxRows = options.maxRows ?? null
    this.#log = options.log ?? (() => {})
    this.#sql = postgres(options.dbUrl, {
      max: 4,
      // Every statement is built per request: unnamed statements, no prepared-statement cache.
      prepare: false,
      idle_timeout: 30,
      onnotice: () => {},
      connection: { application_name: 'vigil-rest' },
    }) as unknown as Sql
  }

  async close(): Promise<void> {
    await this.#sql.end({ timeout: 5 })
  }

  async handle(request: Request): Promise<Response> {
    let role: ApiRole = 'anon'
    try {
      const presented = this.#presentedToken(request)
      if (presented instanceof Response) return presented
      const caller = await this.#authenticate(presented)
      role = caller.role
      const outcome = await this.#serve(request, caller)
      const headers = new Headers(outcome.headers)
      if (outcome.body !== null) headers.set('content-type', 'application/json; charset=utf-8')
      const body = request.method === 'HEAD' ? null : outcome.body
      return new Response(body, { status: outcome.status, headers })
    } catch (error) {
      return this.#errorResponse(error, role)
    }
  }

  /** Supabase's gateway refuses a request with no key at all before PostgREST sees it. */
  #presentedToken(request: Request): string | Response {
    const authorization = request.headers.get('authorization')
    if (authorization !== null) {
      const bearer = /^Bearer\s+(\S+)$/i.exec(authorization)?.[1]
      if (!bearer) {
        throw new RestError(401, 'PGRST301', 'The Authorization header must be "Bearer <JWT>"')
      }
      return bearer
    }
    const apikey = request.headers.get('apikey')
    if (apikey) return apikey
    return jsonResponse(401, {
      message: 'No API key found in request',
      hint: 'No `apikey` request header or url param was found.',
    })
  }

  async #authenticate(token: string): Promise<Caller> {
    let claims: JwtPayload
    try {
      claims = await verifyJwt(token, this.options.jwtSecret)
    } catch (error) {
      const reason = (error as { reason?: string }).reason
      if (reason === 'expired') throw new RestError(401, 'PGRST303', 'JWT expired')
      throw new RestError(401, 'PGRST301', `JWT is not valid: ${(error as Error).message}`)
    }
    const role = claims.role ?? 'anon'
    if (!API_ROLES.includes(role as ApiRole)) {
      throw new RestError(
        401,
        'PGRST301',
        `JWT role ${JSON.stringify(role)} is not one of ${API_ROLES.join(', ')}`,
      )
    }
    return { role: role as ApiRole, claims }
  }

  #schema(request: Request): string {
    const reads = request.method === 'GET' || request.method === 'HEAD'
    const requested = request.headers.get(reads ? 'accept-profile' : 'content-profile')
    if (requested === null) return this.#schemas[0]
    if (!this.#schemas.includes(requested)) {
      throw new RestError(
        406,
        'PGRST106',
        `The schema must be one of the following: ${this.#schemas.join(', ')}`,
      )
    }
    return requested
  }

  async #serve(request: Request, caller: Caller): Promise<Outcome> {
    const url = new URL(request.url)
    const target = parseTarget(url.pathname)
    const schema = this.#schema(request)
    const method = request.method
    const prefer = parsePrefer(request.headers.get('prefer'))
    const accept = parseAccept(request.headers.get('accept'))
    const reads = method === 'GET' || method === 'HEAD'
    if (target.kind === 'rpc' && !['GET', 'HEAD', 'POST'].includes(method)) {
      throw new RestError(405, 'PGRST101', 'Only GET and POST are allowed for functions')
    }
    if (target.kind === 'table' && !['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'].includes(method)) {
      throw new RestError(405, 'PGRST117', `${method} is not supported by the local REST stand-in`)
    }
    const hasBody = method === 'POST' || method === 'PATCH'
    const body = hasBody ? await readBody(request, target.kind === 'rpc') : undefined
    const searchPath = [schema, ...(this.options.extraSearchPath ?? [])].map(ident).join(', ')
    const context = [
      searchPath,
      String(STATEMENT_TIMEOUT_MS),
      JSON.stringify(caller.claims),
      method,
      url.pathname.slice(REST_PREFIX.length),
      JSON.stringify(Object.fromEntries(request.headers)),
      caller.role,
    ]
    const mode = reads ? 'read only' : 'read write'
    return await this.#sql.begin(mode, async (tx) => {
      // Catalog first, with an empty search_path so format_type() qualifies every type it names.
      await tx.unsafe(`select set_config('search_path', '', true)`)
      let statement: Statement
      if (target.kind === 'rpc') {
        const routine = await findRoutine(tx, schema, target.name, body, url.searchParams, method)
        statement = rpcStatement(routine, url.searchParams, body, method, request, this.#maxRows)
      } else {
        const relation = await findRelation(tx, schema, target.name)
        statement = tableStatement(relation, method, url.searchParams, body, prefer, request, {
          maxRows: this.#maxRows,
          singular: accept.singular,
        })
      }
      await tx.unsafe(
        `select set_config('search_path', $1, true), set_config('statement_timeout', $2, true),
                set_config('request.jwt.claims', $3, true), set_config('request.method', $4, true),
                set_config('request.path', $5, true), set_config('request.headers', $6, true),
                set_config('role', $7, true)`,
        context,
      )
      return await runStatement(tx, statement, { ...accept, count: prefer.count })
    })
  }

  #errorResponse(error: unknown, role: ApiRole): Response {
    if (error instanceof RestError) {
      const headers: Record<string, string> = {}
      if (error.status === 401 && error.code.startsWith('PGRST3')) {
        headers['www-authenticate'] = `Bearer error="invalid_token", error_description="${
          error.message.replace(/[^\x20-\x7e]|["\\]/g, '')
        }"`
      }
      return jsonResponse(error.status, {
        code: error.code,
        details: error.details,
        hint: error.hint,
        message: error.message,
      }, headers)
    }
    if (error instanceof postgres.PostgresError) {
      const status = postgresStatus(error.code, role)
      const headers: Record<string, string> = status === 401 ? { 'www-authenticate': 'Bearer' } : {}
      return jsonResponse(status, {
        code: error.code,
        details: error.detail ?? null,
        hint: error.hint ?? null,
        message: error.message,
      }, headers)
    }
    // Connection trouble and the like: say so without the connection's details.
    this.#log(`[rest] ${error instanceof Error ? error.message : String(error)}`)
    return jsonResponse(503, {
      code: 'PGRST000',
      details: null,
      hint: null,
      message: 'Could not run the request on the database (see the stack log)',
    })
  }
}

/** PostgREST's mapping of SQLSTATE to HTTP status. */
export function postgresStatus(code: string, role: ApiRole): number {
  if (code === '42501') return role === 'anon' ? 401 : 403
  if (code === '23503' || code === '23505') return 409
  if (code === '25006') return 405
  if (code === '42883' || code === '42P01') return 404
  if (code === 'P0001') return 400
  if (code === '42P17') return 500
  const byClass: Record<string, number> = {
    '08': 503,
    '09': 500,
    '0L': 403,
    '0P': 403,
    '25': 500,
    '28': 403,
    '2D': 500,
    '38': 500,
    '39': 500,
    '3B': 500,
    '40': 500,
    '53': 503,
    '54': 500,
    '55': 500,
    '57': 500,
    '58': 500,
    'F0': 500,
    'HV': 500,
    'P0': 500,
    'XX': 500,
  }
  return byClass[code.slice(0, 2)] ?? 400
}

// ---- Request parsing -------------------------------------------------------------------------

type Target = { kind: 'table' | 'rpc'; name: string }

function parseTarget(pathname: string): Target {
  const parts = pathname.slice(REST_PREFIX.length).split('/').filter((p) => p !== '')
  const decoded = parts.map((p) => {
    try {
      return decodeURIComponent(p)
    } catch {
      throw new RestError(400, 'PGRST100', `the path segment ${JSON.stringify(p)} is not valid`)
    }
  })
  if (decoded.length === 1 && decoded[0] !== 'rpc') return { kind: 'table', name: decoded[0] }
  if (decoded.length === 2 && decoded[0] === 'rpc') return { kind: 'rpc', name: decoded[1] }
  throw new RestError(
    404,
    'PGRST125',
    'Invalid path: use /rest/v1/<table or view> or /rest/v1/rpc/<function>',
  )
}

interface Prefer {
  representation: boolean
  count: boolean
}

function parsePrefer(header: string | null): Prefer {
  const tokens = (header ?? '').split(',').map((t) => t.trim()).filter((t) => t !== '')
  const prefer: Prefer = { representation: false, count: false }
  for (const token of tokens) {
    if (token === 'return=representation') prefer.representation = true
    else if (/^count=(exact|planned|estimated)$/.test(token)) prefer.count = true
    else if (token.startsWith('resolution=')) {
      throw new RestError(400, 'PGRST100', 'upsert (Prefer: resolution=…) is not supported locally')
    }
  }
  return prefer
}

interface Accept {
  singular: boolean
  stripNulls: boolean
}

function parseAccept(header: string | null): Accept {
  const types = (header ?? '*/*').split(',').map((t) => t.trim().toLowerCase())
  for (const type of types) {
    const [mime, ...params] = type.split(';').map((p) => p.trim())
    const stripNulls = params.includes('nulls=stripped')
    if (mime === 'application/vnd.pgrst.object+json' || mime === 'application/vnd.pgrst.object') {
      return { singular: true, stripNulls }
    }
    if (['application/json', 'application/vnd.pgrst.array+json', '*/*', ''].includes(mime)) {
      return { singular: false, stripNulls }
    }
  }
  throw new RestError(
    406,
    'PGRST107',
    `None of these media types are available locally: ${header}`,
  )
}

async function readBody(request: Request, optional: boolean): Promise<unknown> {
  const text = await request.text()
  if (text.length > MAX_BODY_BYTES) {
    throw new RestError(413, 'PGRST102', `The body is larger than ${MAX_BODY_BYTES} bytes`)
  }
  if (text.trim() === '' && optional) return {}
  try {
    return JSON.parse(text)
  } catch {
    throw new RestError(400, 'PGRST102', 'Empty or invalid json')
  }
}

/** `a,b:c,"d e"` → items; `*` anywhere means every column. Embedding and casts are refused. */
export function parseSelect(raw: string | null): Selection {
  if (raw === null || raw.trim() === '') return { star: true, items: [] }
  const selection: Selection = { star: false, items: [] }
  for (const item of splitTopLevel(raw)) {
    if (item === '*') {
      selection.star = true
      continue
    }
    if (/[()!]/.test(item)) {
      throw new RestError(
        400,
        'PGRST100',
        `"${item}" in select: resource embedding and aggregates are not supported by the local REST stand-in`,
      )
    }
    if (item.includes('->') || item.includes('::')) {
      throw new RestError(
        400,
        'PGRST100',
        `"${item}" in select: JSON paths and casts are not supported by the local REST stand-in`,
      )
    }
    const aliased = /^([^":]+):([^:].*)$/.exec(item)
    const column = unquote(aliased ? aliased[2] : item)
    const alias = aliased ? aliased[1] : column
    if (column === '' || alias === '') {
      throw new RestError(400, 'PGRST100', `failed to parse select parameter (${raw})`)
    }
    selection.items.push({ column, alias })
  }
  return selection
}

/** Splits on commas outside double quotes. */
function splitTopLevel(raw: string): string[] {
  const out: string[] = []
  let current = ''
  let quoted = false
  for (const c of raw) {
    if (c === '"') quoted = !quoted
    if (c === ',' && !quoted) {
      out.push(current.trim())
      current = ''
    } else {
      current += c
    }
  }
  out.push(current.trim())
  return out
}

function unquote(name: string): string {
  const m = /^"(.*)"$/.exec(name)
  return m ? m[1] : name
}

export function parseFilter(key: string, raw: string): Filter {
  if (['or', 'and', 'not.or', 'not.and'].includes(key)) {
    throw new RestError(
      400,
      'PGRST100',
      `"${key}" filters are not supported by the local REST stand-in`,
    )
  }
  if (key.includes('.') || key.includes('->')) {
    throw new RestError(
      400,
      'PGRST100',
      `filter on "${key}": filters on embedded resources or JSON paths are not supported locally`,
    )
  }
  let rest = raw
  let negated = false
  if (rest.startsWith('not.')) {
    negated = true
    rest = rest.slice(4)
  }
  const dot = rest.indexOf('.')
  const op = dot < 0 ? rest : rest.slice(0, dot)
  if (dot < 0 || !(op in OPERATORS)) {
    throw new RestError(
      400,
      'PGRST100',
      `failed to parse filter (${raw}) on "${key}"`,
      `supported operators: ${Object.keys(OPERATORS).join(', ')}, each optionally after not.`,
    )
  }
  const value = rest.slice(dot + 1)
  const filter: Filter = { column: unquote(key), op: op as Operator, negated, value, values: [] }
  if (op === 'is' && !(value.toLowerCase() in IS_VALUES)) {
    throw new RestError(
      400,
      'PGRST100',
      `failed to parse filter (${raw}) on "${key}": is. takes null, true, false or unknown`,
    )
  }
  if (op === 'in') filter.values = parseList(value, key, raw)
  return filter
}

/** `(a,"b,c",d)` → ['a', 'b,c', 'd'], as PostgREST reads in.() lists. */
function parseList(value: string, key: string, raw: string): string[] {
  const m = /^\((.*)\)$/s.exec(value)
  if (!m) {
    throw new RestError(
      400,
      'PGRST100',
      `failed to parse filter (${raw}) on "${key}": in. needs (…)`,
    )
  }
  if (m[1] === '') return []
  const values: string[] = []
  let current = ''
  let quoted = false
  let wasQuoted = false
  for (let i = 0; i < m[1].length; i++) {
    const c = m[1][i]
    if (quoted && c === '\\' && i + 1 < m[1].length) {
      current += m[1][++i]
    } else if (c === '"') {
      quoted = !quoted
      wasQuoted = true
    } else if (c === ',' && !quoted) {
      values.push(wasQuoted ? current : current.trim())
      current = ''
      wasQuoted = false
    } else {
      current += c
    }
  }
  values.push(wasQuoted ? current : current.trim())
  if (values.length > MAX_IN_VALUES) {
    throw new RestError(400, 'PGRST100', `in. takes at most ${MAX_IN_VALUES} values`)
  }
  return values
}

export function parseOrder(raw: string | null): OrderItem[] {
  if (raw === null || raw === '') return []
  return raw.split(',').map((item) => {
    const [column, ...modifiers] = item.trim().split('.')
    const order: OrderItem = { column: unquote(column), descending: false, nulls: null }
    let direction = 0
    let nulls = 0
    for (const m of modifiers) {
      if (m === 'asc' || m === 'desc') {
        order.descending = m === 'desc'
        direction++
      } else if (m === 'nullsfirst' || m === 'nullslast') {
        order.nulls = m === 'nullsfirst' ? 'first' : 'last'
        nulls++
      } else {
        direction = 9
      }
    }
    if (column === '' || direction > 1 || nulls > 1) {
      throw new RestError(
        400,
        'PGRST100',
        `failed to parse order (${raw}): use column[.asc|.desc][.nullsfirst|.nullslast]`,
      )
    }
    return order
  })
}

function parsePage(params: URLSearchParams, request: Request, maxRows: number | null): Page {
  const integer = (name: string, raw: string | null): number | null => {
    if (raw === null) return null
    if (!/^\d{1,9}$/.test(raw)) {
      throw new RestError(400, 'PGRST100', `${name} must be a non-negative integer, got "${raw}"`)
    }
    return Number(raw)
  }
  let limit = integer('limit', params.get('limit'))
  let offset = integer('offset', params.get('offset')) ?? 0
  const range = request.headers.get('range')
  if (range !== null && params.get('limit') === null && params.get('offset') === null) {
    const m = /^(?:items=)?(\d{1,9})-(\d{0,9})$/.exec(range.trim())
    if (m) {
      offset = Number(m[1])
      if (m[2] !== '') limit = Math.max(0, Number(m[2]) - offset + 1)
    }
  }
  if (maxRows !== null) limit = limit === null ? maxRows : Math.min(limit, maxRows)
  return { limit, offset }
}

// ---- Catalog ---------------------------------------------------------------------------------

async function findRelation(tx: Tx, schema: string, name: string): Promise<Relation> {
  const rows = await tx.unsafe<{ columns: string[] }[]>(
    `select coalesce(array_agg(a.attname::text order by a.attnum)
                       filter (where a.attname is not null), '{}') as columns
       from pg_class c
       join pg_namespace n on n.oid = c.relnamespace
       left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'v', 'm', 'f', 'p')
      group by c.oid`,
    [schema, name],
  )
  if (rows.length === 0) {
    throw new RestError(
      404,
      'PGRST205',
      `Could not find the table '${schema}.${name}' in the schema cache`,
    )
  }
  return { schema, name, columns: rows[0].columns }
}

interface RoutineRow {
  returns_set: boolean
  n_defaults: number
  return_type: string
  composite_columns: string[] | null
  names: string[]
  modes: string[]
  types: string[]
}

async function findRoutine(
  tx: Tx,
  schema: string,
  name: string,
  body: unknown,
  params: URLSearchParams,
  method: string,
): Promise<Routine> {
  const rows = await tx.unsafe<RoutineRow[]>(
    `select p.proretset as returns_set, p.pronargdefaults::int as n_defaults,
            format_type(p.prorettype, null) as return_type,
            case when rt.typrelid <> 0 then
              (select array_agg(a.attname::text order by a.attnum) from pg_attribute a
                where a.attrelid = rt.typrelid and a.attnum > 0 and not a.attisdropped)
            end as composite_columns,
            coalesce(p.proargnames, '{}')::text[] as names,
            coalesce(p.proargmodes::text[], '{}') as modes,
            array(select format_type(t.oid, null)
                    from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]))
                         with ordinality as t(oid, i)
                   order by t.i) as types
       from pg_proc p
       join pg_namespace n on n.oid = p.pronamespace
       join pg_type rt on rt.oid = p.prorettype
      where n.nspname = $1 and p.proname = $2 and p.prokind = 'f'`,
    [schema, name],
  )
  if (method === 'POST' && (typeof body !== 'object' || body === null || Array.isArray(body))) {
    throw new RestError(400, 'PGRST102', 'A function call needs a JSON object of named arguments')
  }
  const given = method === 'POST'
    ? Object.keys(body as Record<string, unknown>)
    : [...new Set(params.keys())].filter((k) => !RESERVED_PARAMS.has(k))
  const candidates = rows.map((row) => toRoutine(schema, name, row)).filter((r) => {
    const names = r.inputs.map((i) => i.name)
    if (method === 'POST') {
      return given.every((g) => names.includes(g)) &&
        names.slice(0, r.requiredInputs).every((n) => given.includes(n))
    }
    // GET: parameters that are not arguments are filters on the result.
    return names.slice(0, r.requiredInputs).every((n) => given.includes(n))
  })
  if (candidates.length === 1) return candidates[0]
  const signature = `${schema}.${name}(${[...given].sort().join(', ')})`
  if (candidates.length > 1) {
    throw new RestError(
      300,
      'PGRST203',
      `Could not choose the best candidate function: ${signature}`,
    )
  }
  throw new RestError(
    404,
    'PGRST202',
    `Could not find the function ${signature} in the schema cache`,
    `Searched for the function ${schema}.${name} with parameters ${given.join(', ') || '(none)'}` +
      ', but no matches were found in the schema cache.',
  )
}

function toRoutine(schema: string, name: string, row: RoutineRow): Routine {
  const inputs: Routine['inputs'] = []
  const outputs: string[] = []
  row.types.forEach((type, i) => {
    const mode = row.modes[i] ?? 'i'
    const argName = row.names[i] ?? ''
    if (mode === 'i' || mode === 'b' || mode === 'v') inputs.push({ name: argName, type })
    if (mode === 'o' || mode === 'b' || mode === 't') outputs.push(argName)
  })
  const unnamed = inputs.some((i) => i.name === '')
  return {
    schema,
    name,
    // An argument without a name cannot be passed by name: such overloads never match.
    inputs: unnamed ? [{ name: '\u0000', type: 'unnamed' }] : inputs,
    requiredInputs: unnamed ? 1 : inputs.length - row.n_defaults,
    returnsSet: row.returns_set,
    returnType: row.return_type,
    columns: row.composite_columns ?? (outputs.length > 0 ? outputs : null),
  }
}

// ---- SQL -------------------------------------------------------------------------------------

const ROW = '_pgrst_r'

function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

class Params {
  readonly values: string[] = []
  add(value: string): string {
    this.values.push(value)
    return `$${this.values.length}`
  }
}

interface Statement {
  /** Returns body (JSON text), first (JSON text of the first element), n (rows). */
  text: string
  params: string[]
  /** Counts every matching row, for Prefer: count=exact. */
  count?: { text: string; params: string[] }
  kind: 'rows' | 'scalar' | 'void'
  mutation: boolean
  representation: boolean
  page?: Page
  status: number
}

function requireColumn(columns: readonly string[], column: string, where: string): void {
  if (!columns.includes(column)) {
    throw new RestError(400, '42703', `column ${where}.${column} does not exist`)
  }
}

function selectList(selection: Selection, columns: readonly string[], where: string): string {
  const parts: string[] = []
  if (selection.star) parts.push(`${ROW}.*`)
  for (const item of selection.items) {
    requireColumn(columns, item.column, where)
    parts.push(`${ROW}.${ident(item.column)} as ${ident(item.alias)}`)
  }
  return parts.length > 0 ? parts.join(', ') : `${ROW}.*`
}

function filtersFrom(
  params: URLSearchParams,
  columns: readonly string[],
  where: string,
  skip: ReadonlySet<string> = new Set(),
): Filter[] {
  const filters: Filter[] = []
  for (const [key, value] of params) {
    if (RESERVED_PARAMS.has(key) || skip.has(key)) continue
    const filter = parseFilter(key, value)
    requireColumn(columns, filter.column, where)
    filters.push(filter)
  }
  return filters
}

function whereClause(filters: Filter[], params: Params): string {
  if (filters.length === 0) return ''
  const conditions = filters.map((f) => {
    const column = `${ROW}.${ident(f.column)}`
    let condition: string
    if (f.op === 'is') condition = `${column} is ${IS_VALUES[f.value.toLowerCase()]}`
    else if (f.op === 'in') {
      condition = f.values.length === 0
        ? 'false'
        : `${column} in (${f.values.map((v) => params.add(v)).join(', ')})`
    } else if (f.op === 'like' || f.op === 'ilike') {
      condition = `${column}::text ${OPERATORS[f.op]} ${params.add(f.value.replaceAll('*', '%'))}`
    } else {
      condition = `${column} ${OPERATORS[f.op]} ${params.add(f.value)}`
    }
    return f.negated ? `not (${condition})` : condition
  })
  return ` where ${conditions.join(' and ')}`
}

function orderClause(order: OrderItem[], columns: readonly string[], where: string): string {
  if (order.length === 0) return ''
  return ' order by ' + order.map((o) => {
    requireColumn(columns, o.column, where)
    const nulls = o.nulls ? ` nulls ${o.nulls}` : ''
    return `${ROW}.${ident(o.column)} ${o.descending ? 'desc' : 'asc'}${nulls}`
  }).join(', ')
}

function pageClause(page: Page, params: Params): string {
  const limit = page.limit === null ? '' : ` limit ${params.add(String(page.limit))}`
  return `${limit} offset ${params.add(String(page.offset))}`
}

function aggregate(inner: string): string {
  return `select coalesce(json_agg(_pgrst_t), '[]')::text as body,
                 (json_agg(_pgrst_t) -> 0)::text as first, count(*)::int as n
            from (${inner}) _pgrst_t`
}

function tableStatement(
  relation: Relation,
  method: string,
  search: URLSearchParams,
  body: unknown,
  prefer: Prefer,
  request: Request,
  options: { maxRows: number | null; singular: boolean },
): Statement {
  const table = `${ident(relation.schema)}.${ident(relation.name)}`
  const where = relation.name
  const columns = relation.columns
  const selection = parseSelect(search.get('select'))
  const filters = filtersFrom(search, columns, where)
  const params = new Params()
  if (method === 'GET' || method === 'HEAD') {
    const page = parsePage(search, request, options.maxRows)
    const list = selectList(selection, columns, where)
    const order = orderClause(parseOrder(search.get('order')), columns, where)
    const whereSql = whereClause(filters, params)
    const inner = `select ${list} from ${table} as ${ROW}${whereSql}${order}${
      pageClause(page, params)
    }`
    const countParams = new Params()
    const countSql = `select count(*)::int as total from ${table} as ${ROW}${
      whereClause(filters, countParams)
    }`
    return {
      text: aggregate(inner),
      params: params.values,
      count: { text: countSql, params: countParams.values },
      kind: 'rows',
      mutation: false,
      representation: true,
      page,
      status: 200,
    }
  }
  if (search.get('limit') !== null || search.get('offset') !== null || search.get('order')) {
    throw new RestError(
      400,
      'PGRST100',
      `limit, offset and order are not supported on ${method} locally`,
    )
  }
  const returning = prefer.representation ? selectList(selection, columns, where) : '1'
  let mutation: string
  if (method === 'PATCH') {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new RestError(400, 'PGRST102', 'PATCH needs a JSON object of the columns to change')
    }
    const keys = Object.keys(body)
    keys.forEach((k) => requireBodyColumn(columns, k, relation))
    if (keys.length === 0) {
      // Nothing to change: PostgREST answers without touching a row.
      return emptyMutation(prefer, 200)
    }
    const bodyParam = params.add(JSON.stringify(body))
    const assignments = keys.map((k) => `${ident(k)} = _pgrst_b.${ident(k)}`).join(', ')
    mutation = `update ${table} as ${ROW} set ${assignments}
                  from (select * from json_populate_record(null::${table}, ${bodyParam}::text::json)) _pgrst_b
                  ${whereClause(filters, params)} returning ${returning}`
  } else if (method === 'DELETE') {
    mutation = `delete from ${table} as ${ROW}${
      whereClause(filters, params)
    } returning ${returning}`
  } else {
    if (filters.length > 0) {
      throw new RestError(400, 'PGRST100', 'POST takes no filters')
    }
    const rows = Array.isArray(body) ? body : [body]
    if (rows.some((r) => typeof r !== 'object' || r === null || Array.isArray(r))) {
      throw new RestError(400, 'PGRST102', 'POST needs a JSON object or an array of objects')
    }
    if (rows.length === 0) return emptyMutation(prefer, 201)
    const listed = search.get('columns')
    const keys = listed !== null
      ? splitTopLevel(listed).map(unquote)
      : [...new Set(rows.flatMap((r) => Object.keys(r as object)))]
    keys.forEach((k) => requireBodyColumn(columns, k, relation))
    if (keys.length === 0) {
      if (rows.length > 1) {
        throw new RestError(
          400,
          'PGRST102',
          'rows without columns can only be inserted one at a time',
        )
      }
      mutation = `insert into ${table} as ${ROW} default values returning ${returning}`
    } else {
      const list = keys.map(ident).join(', ')
      const bodyParam = params.add(JSON.stringify(rows))
      mutation = `insert into ${table} as ${ROW} (${list})
                  select ${list} from json_populate_recordset(null::${table}, ${bodyParam}::text::json)
                  returning ${returning}`
    }
  }
  return {
    text: prefer.representation
      ? `with _pgrst_m as (${mutation}) ${aggregate('select * from _pgrst_m')}`
      : `with _pgrst_m as (${mutation}) select null::text as body, null::text as first, count(*)::int as n from _pgrst_m`,
    params: params.values,
    kind: 'rows',
    mutation: true,
    representation: prefer.representation,
    status: method === 'POST' ? 201 : prefer.representation ? 200 : 204,
  }
}

function requireBodyColumn(columns: readonly string[], key: string, relation: Relation): void {
  if (!columns.includes(key)) {
    throw new RestError(
      400,
      'PGRST204',
      `Could not find the '${key}' column of '${relation.name}' in the schema cache`,
    )
  }
}

function emptyMutation(prefer: Prefer, status: number): Statement {
  return {
    text: `select '[]'::text as body, null::text as first, 0 as n`,
    params: [],
    kind: 'rows',
    mutation: true,
    representation: prefer.representation,
    status: prefer.representation || status === 201 ? status : 204,
  }
}

function rpcStatement(
  routine: Routine,
  search: URLSearchParams,
  body: unknown,
  method: string,
  request: Request,
  maxRows: number | null,
): Statement {
  const fn = `${ident(routine.schema)}.${ident(routine.name)}`
  const params = new Params()
  const argNames = new Set(routine.inputs.map((i) => i.name))
  const args: Record<string, unknown> = method === 'POST'
    ? body as Record<string, unknown>
    : Object.fromEntries([...search].filter(([k]) => argNames.has(k)))
  const given = routine.inputs.filter((i) => Object.hasOwn(args, i.name))
  let from = ''
  let call = `${fn}()`
  if (given.length > 0) {
    const record = given.map((i) => `${ident(i.name)} ${i.type}`).join(', ')
    from = `json_to_record(${params.add(JSON.stringify(args))}::text::json) as _pgrst_a(${record})`
    call = `${fn}(${given.map((i) => `${ident(i.name)} => _pgrst_a.${ident(i.name)}`).join(', ')})`
  }
  const where = routine.name
  if (routine.returnType === 'void' && !routine.returnsSet) {
    return {
      // The call's value is selected (as '') so the planner cannot drop the call.
      text: `select (${call})::text as body, null::text as first, 1 as n${
        from ? ` from ${from}` : ''
      }`,
      params: params.values,
      kind: 'void',
      mutation: false,
      representation: false,
      status: 204,
    }
  }
  if (!routine.returnsSet && routine.columns === null) {
    return {
      text: `select to_json(${call})::text as body, null::text as first, 1 as n${
        from ? ` from ${from}` : ''
      }`,
      params: params.values,
      kind: 'scalar',
      mutation: false,
      representation: true,
      status: 200,
    }
  }
  const source = from ? `${from} cross join lateral ${call} as ${ROW}` : `${call} as ${ROW}`
  if (routine.columns === null) {
    // setof a scalar: an array of values; no columns to filter or order by.
    const page = parsePage(search, request, maxRows)
    const inner = `select ${ROW} as v from ${source}${pageClause(page, params)}`
    return {
      text: `select coalesce(json_agg(_pgrst_t.v), '[]')::text as body,
                    (json_agg(_pgrst_t.v) -> 0)::text as first, count(*)::int as n
               from (${inner}) _pgrst_t`,
      params: params.values,
      kind: 'rows',
      mutation: false,
      representation: true,
      page,
      status: 200,
    }
  }
  const columns = routine.columns
  const filters = filtersFrom(search, columns, where, method === 'GET' ? argNames : new Set())
  const selection = parseSelect(search.get('select'))
  const list = selectList(selection, columns, where)
  if (!routine.returnsSet) {
    return {
      text: `select row_to_json(_pgrst_t)::text as body, row_to_json(_pgrst_t)::text as first,
                    1 as n from (select ${list} from ${source}) _pgrst_t`,
      params: params.values,
      kind: 'scalar',
      mutation: false,
      representation: true,
      status: 200,
    }
  }
  const page = parsePage(search, request, maxRows)
  const whereSql = whereClause(filters, params)
  const order = orderClause(parseOrder(search.get('order')), columns, where)
  return {
    text: aggregate(`select ${list} from ${source}${whereSql}${order}${pageClause(page, params)}`),
    params: params.values,
    kind: 'rows',
    mutation: false,
    representation: true,
    page,
    status: 200,
  }
}

async function runStatement(
  tx: Tx,
  statement: Statement,
  options: Accept & { count: boolean },
): Promise<Outcome> {
  const [row] = await tx.unsafe<{ body: string | null; first: string | null; n: number }[]>(
    statement.text,
    statement.params,
  )
  if (statement.kind === 'void') return { body: null, status: 204 }
  if (statement.kind === 'scalar') {
    return { body: strip(row.body ?? 'null', options.stripNulls), status: 200 }
  }
  if (options.singular && row.n !== 1) {
    // Thrown inside the transaction: a PATCH or DELETE that would touch other than one row is undone.
    throw new RestError(
      406,
      'PGRST116',
      'JSON object requested, multiple (or no) rows returned',
      `The result contains ${row.n} rows`,
    )
  }
  const headers: Record<string, string> = {}
  let status = statement.status
  if (statement.mutation) {
    if (options.count) headers['content-range'] = `*/${row.n}`
  } else {
    let total: number | null = null
    if (options.count && statement.count) {
      const [counted] = await tx.unsafe<{ total: number }[]>(
        statement.count.text,
        statement.count.params,
      )
      total = counted.total
    }
    const lower = statement.page?.offset ?? 0
    const upper = lower + row.n - 1
    const range = row.n === 0 ? '*' : `${lower}-${upper}`
    headers['content-range'] = `${range}/${total ?? '*'}`
    if (total !== null && lower > total) {
      throw new RestError(
        416,
        'PGRST103',
        'Requested range not satisfiable',
        `An offset of ${lower} was requested, but there are only ${total} rows.`,
      )
    }
    if (total !== null && row.n < total) status = 206
  }
  if (!statement.representation) return { body: null, status, headers }
  const text = options.singular ? row.first : row.body
  return { body: strip(text ?? 'null', options.stripNulls), status, headers }
}

function strip(json: string, stripNulls: boolean): string {
  if (!stripNulls) return json
  const value = JSON.parse(json)
  const clean = (v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null))
      : v
  return JSON.stringify(Array.isArray(value) ? value.map(clean) : clean(value))
}

function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...headers, 'content-type': 'application/json; charset=utf-8' },
  })
}
