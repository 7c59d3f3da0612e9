// The local stack's Realtime stand-in (issue 10): the Realtime client protocol for postgres_changes,
// so the unchanged supabase-js works locally, with Supabase's rights (JWT role, publication, SELECT,
// RLS on INSERT/UPDATE). Broadcast and presence are accepted and ignored. Dev tooling, never deployed.
import { decodeJwt } from 'jose'
import postgres from 'postgres'
import { JwtError, type JwtPayload, verifyJwt } from './jwt.ts'
import { ChangeFeed, type RowChange } from './realtime-changes.ts'

export interface RealtimeOptions {
  /** The owner's (postgres) URL: it creates the decoding slot and runs the RLS checks. */
  dbUrl: string
  jwtSecret: string
  /** How often the change feed is read; default 100 ms. */
  pollIntervalMs?: number
  /** Prefix of its sessions' application_name ('<name> feed', '<name> checks'); tests kill them. */
  applicationName?: string
  log?: (line: string) => void
}

export interface Realtime {
  /** Serves `GET …/realtime/v1/websocket?apikey=…&vsn=…` (a websocket upgrade). */
  handle(request: Request): Response
  stop(): Promise<void>
  /** Closes every client socket at once, as a server restart would; returns how many. */
  dropAll(): number
  /** Open client sockets. */
  clients(): number
}

const ROLES = ['anon', 'authenticated', 'service_role'] as const
type Role = (typeof ROLES)[number]
const EVENTS = ['*', 'INSERT', 'UPDATE', 'DELETE'] as const
type ChangeEvent = (typeof EVENTS)[number]
const OPS = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'in'] as const
type Op = (typeof OPS)[number]
const VSNS = ['1.0.0', '2.0.0'] as const
type Vsn = (typeof VSNS)[number]
const PUBLICATION = 'supabase_realtime'
/** setTimeout's ceiling is ~24.8 days; re-check long-lived tokens at least hourly instead. */
const MAX_EXPIRY_TIMER_MS = 3_600_000
const MAX_FEED_BACKOFF_MS = 5_000

interface Auth {
  token: string
  claims: JwtPayload
  role: Role
  /** Role and claims: subscribers with the same key see the same rows. */
  key: string
}

interface ColumnInfo {
  name: string
  /** pg_type.typname, what realtime-js converts by (int4, bool, _text, timestamptz…). */
  typname: string
  /** format_type(): usable in a cast. */
  sqlType: string
}

interface TableInfo {
  schema: string
  table: string
  published: boolean
  readable: boolean
  columns: ColumnInfo[]
}

interface Filter {
  text: string
  column: string
  op: Op
  /** The operand(s) as Postgres would print them with to_jsonb, after a cast to the column type. */
  values: unknown[]
  typname: string
}

interface Entry {
  id: number
  event: ChangeEvent
  schema: string
  table: string
  filter: Filter | null
  /** The entry as the client sent it: the join reply must echo it (realtime-js compares). */
  sent: Record<string, unknown>
}

interface Channel {
  topic: string
  joinRef: string | null
  entries: Entry[]
  auth: Auth
  /** Changes committed before this instant (ms) are not delivered, as on Supabase. */
  joinedAt: number
  expiryTimer?: ReturnType<typeof setTimeout>
}

interface Client {
  ws: WebSocket
  vsn: Vsn
  apikey: string
  channels: Map<string, Channel>
  /** Channel messages are handled one at a time, in order (joins are async). */
  queue: Promise<void>
}

interface Message {
  joinRef: string | null
  ref: string | null
  topic: string
  event: string
  payload: Record<string, unknown>
}

interface OpenFeed {
  sql: postgres.Sql
  feed: ChangeFeed
  tables: Set<string>
  /** Set by postgres.js's onclose: no query may touch a dead reserved connection (see below). */
  dead: boolean
}

class RefusedError extends Error {}

export async function startRealtime(options: RealtimeOptions): Promise<Realtime> {
  const log = options.log ?? ((line: string) => console.log(`[realtime] ${line}`))
  const pollIntervalMs = options.pollIntervalMs ?? 100
  const appName = options.applicationName ?? 'vigil realtime'
  const clients = new Set<Client>()
  let nextEntryId = 1
  let stopped = false
  let wakeUp: (() => void) | null = null

  // One connection, not reserved, for catalog checks and RLS checks: a pool of one allows BEGIN,
  // and unlike reserved connections it reconnects cleanly after the server ends it.
  const check = postgres(options.dbUrl, {
    max: 1,
    idle_timeout: 0,
    max_lifetime: 0,
    connect_timeout: 5,
    onnotice: () => {},
    connection: { application_name: `${appName} checks`, TimeZone: 'UTC' },
  })
  let checkLock: Promise<unknown> = Promise.resolve()
  function exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = checkLock.then(work, work)
    checkLock = run.catch(() => {})
    return run
  }
  /** A terminated session fails the next query once (postgres.js): retry such errors once. */
  async function withCheck<T>(work: () => Promise<T>): Promise<T> {
    return await exclusive(async () => {
      try {
        return await work()
      } catch (error) {
        if (!isConnectionError(error)) throw error
        return await work()
      }
    })
  }

  // The feed starts eagerly: creating a logical slot waits for every running transaction, which
  // must not stall a subscribe, and a stack without wal_level=logical or wal2json fails at start.
  let current: OpenFeed | null = null
  let feedLock: Promise<unknown> = Promise.resolve()
  function feedExclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = feedLock.then(work, work)
    feedLock = run.catch(() => {})
    return run
  }

  async function openFeed(extra: string[] = []): Promise<void> {
    const published = await withCheck(() =>
      check<{ name: string }[]>`
        select schemaname || '.' || tablename as name from pg_publication_tables
        where pubname = ${PUBLICATION}`
    )
    const tables = new Set([...published.map((r) => r.name), ...extra])
    const status = { dead: false }
    // postgres.js 3.4.9 throws an uncaught TypeError when a query is sent on a reserved connection
    // the server has closed: onclose marks the feed dead so it is never queried again.
    const sql = postgres(options.dbUrl, {
      max: 1,
      idle_timeout: 0,
      max_lifetime: 0,
      connect_timeout: 5,
      onnotice: () => {},
      onclose: () => {
        status.dead = true
      },
      connection: { application_name: `${appName} feed` },
    })
    const feed = new ChangeFeed(sql, wal2jsonTables([...tables]))
    try {
      await feed.start()
    } catch (error) {
      await sql.end({ timeout: 0 }).catch(() => {})
      throw error
    }
    current = Object.assign(status, { sql, feed, tables })
  }

  async function closeFeed(): Promise<void> {
    const state = current
    current = null
    if (!state) return
    if (!state.dead) await state.feed.stop().catch(() => {})
    await state.sql.end({ timeout: 0 }).catch(() => {})
  }

  /** Reopens the feed when a subscription needs a table published after it started. */
  async function coverTables(names: string[]): Promise<void> {
    await feedExclusive(async () => {
      if (current && !current.dead && names.every((n) => current!.tables.has(n))) return
      await closeFeed()
      await openFeed(names)
      log(`change feed reopened to cover ${names.join(', ')}`)
    })
  }

  try {
    await openFeed()
  } catch (error) {
    await check.end({ timeout: 0 })
    throw new Error(`the Realtime change feed could not start: ${message(error)}`)
  }
  log('change feed started')
  const loop = pollLoop()

  async function pollLoop(): Promise<void> {
    let backoff = 250
    while (!stopped) {
      let changes: RowChange[] = []
      try {
        changes = await feedExclusive(async () => {
          if (stopped) return []
          if (!current || current.dead) {
            await closeFeed()
            await openFeed()
            log('change feed restarted')
            backoff = 250
            return []
          }
          try {
            return await current.feed.poll()
          } catch (error) {
            if (current) current.dead = true
            throw error
          }
        })
      } catch (error) {
        if (stopped) break
        log(`change feed failed (${message(error)}); retrying in ${backoff} ms`)
        await sleep(backoff)
        backoff = Math.min(backoff * 2, MAX_FEED_BACKOFF_MS)
        continue
      }
      if (changes.length) {
        await deliver(changes).catch((error) => log(`delivery failed: ${message(error)}`))
      }
      await sleep(pollIntervalMs)
    }
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        wakeUp = null
        resolve()
      }, ms)
      wakeUp = () => {
        clearTimeout(timer)
        wakeUp = null
        resolve()
      }
    })
  }

  // ---- delivery ----

  interface Candidate {
    client: Client
    channel: Channel
    ids: number[]
  }

  async function deliver(changes: RowChange[]): Promise<void> {
    // Which channels may want each change, before spending queries on it.
    const wanted = changes.map((change) => {
      const at = Date.parse(change.commit_timestamp)
      const out: { client: Client; channel: Channel; entries: Entry[] }[] = []
      for (const client of clients) {
        for (const channel of client.channels.values()) {
          if (at < channel.joinedAt) continue
          const entries = channel.entries.filter((e) =>
            e.schema === change.schema && e.table === change.table &&
            (e.event === '*' || e.event === change.type)
          )
          if (entries.length) out.push({ client, channel, entries })
        }
      }
      return out
    })
    const relevant = changes.map((c, i) => ({ change: c, wanted: wanted[i] })).filter((x) =>
      x.wanted.length
    )
    if (!relevant.length) return
    const tables = await tableInfos(relevant.map((x) => x.change))
    const shaped = await normalise(relevant.map((x) => x.change), tables)

    // Filters, then rights (SELECT; RLS for INSERT/UPDATE): once per (change, role and claims).
    const perChange: Candidate[][] = relevant.map(({ change, wanted }, i) => {
      const { record, old_record } = shaped[i]
      const row = change.type === 'DELETE' ? old_record : record
      const out: Candidate[] = []
      for (const { client, channel, entries } of wanted) {
        if (tokenExpired(channel.auth)) {
          expire(client, channel)
          continue
        }
        const ids = entries.filter((e) => !e.filter || matches(e.filter, row)).map((e) => e.id)
        if (ids.length) out.push({ client, channel, ids })
      }
      return out
    })
    const toCheck = new Map<string, { auth: Auth; changes: number[] }>()
    perChange.forEach((candidates, i) => {
      for (const { channel } of candidates) {
        const slot = toCheck.get(channel.auth.key) ??
          toCheck.set(channel.auth.key, { auth: channel.auth, changes: [] }).get(channel.auth.key)!
        if (!slot.changes.includes(i)) slot.changes.push(i)
      }
    })
    const visible = new Set<string>()
    for (const { auth, changes: indexes } of toCheck.values()) {
      const seen = await visibleRows(auth, indexes.map((i) => relevant[i].change), tables)
      indexes.forEach((i, k) => seen[k] && visible.add(`${i} ${auth.key}`))
    }
    perChange.forEach((candidates, i) => {
      const { change } = relevant[i]
      const table = tables.get(`${change.schema}.${change.table}`)
      for (const { client, channel, ids } of candidates) {
        if (!visible.has(`${i} ${channel.auth.key}`)) continue
        send(client, channel.joinRef, null, channel.topic, 'postgres_changes', {
          ids,
          data: {
            schema: change.schema,
            table: change.table,
            commit_timestamp: change.commit_timestamp,
            type: change.type,
            columns: columnsOf(change, table),
            record: shaped[i].record,
            old_record: shaped[i].old_record,
            errors: null,
          },
        })
      }
    })
  }

  function columnsOf(change: RowChange, table: TableInfo | undefined) {
    return change.columns.map(({ name, type }) => ({
      name,
      type: table?.columns.find((c) => c.name === name)?.typname ?? type,
    }))
  }

  async function tableInfos(changes: RowChange[]): Promise<Map<string, TableInfo>> {
    const out = new Map<string, TableInfo>()
    for (const c of changes) {
      const key = `${c.schema}.${c.table}`
      if (out.has(key)) continue
      const info = await describe(c.schema, c.table, 'service_role')
      if (info) out.set(key, info)
    }
    return out
  }

  /**
   * Values as Supabase sends them (to_jsonb of the row: jsonb as JSON, arrays as arrays,
   * timestamps in ISO 8601), made by Postgres itself from wal2json's values.
   */
  async function normalise(
    changes: RowChange[],
    tables: Map<string, TableInfo>,
  ): Promise<{ record: Record<string, unknown>; old_record: Record<string, unknown> }[]> {
    const out = changes.map((c) => ({ record: c.record, old_record: c.old_record }))
    const byTable = new Map<string, number[]>()
    changes.forEach((c, i) => {
      const key = `${c.schema}.${c.table}`
      byTable.set(key, [...(byTable.get(key) ?? []), i])
    })
    for (const [key, indexes] of byTable) {
      const table = tables.get(key)
      if (!table) continue
      const rows: Record<string, unknown>[] = []
      for (const i of indexes) {
        rows.push(parseJson(out[i].record, table), parseJson(out[i].old_record, table))
      }
      try {
        const result = await withCheck(() =>
          check.unsafe<{ r: Record<string, unknown> }[]>(
            `select to_jsonb(jsonb_populate_record(null::${ident(table.schema)}.${
              ident(table.table)
            }, x)) as r
             from jsonb_array_elements($1::text::jsonb) with ordinality as e(x, n) order by n`,
            [JSON.stringify(rows)],
          )
        )
        indexes.forEach((i, k) => {
          out[i] = {
            record: pick(result[2 * k].r, rows[2 * k]),
            old_record: pick(result[2 * k + 1].r, rows[2 * k + 1]),
          }
        })
      } catch (error) {
        log(`could not shape values of ${key} (${message(error)}); sending them as decoded`)
        indexes.forEach((i, k) => out[i] = { record: rows[2 * k], old_record: rows[2 * k + 1] })
      }
    }
    return out
  }

  /**
   * For each change, whether `auth` may see it, as Supabase checks: SELECT on the table for every
   * change, and for INSERT/UPDATE the new row read back by its key as that role, under RLS.
   */
  async function visibleRows(
    auth: Auth,
    changes: RowChange[],
    tables: Map<string, TableInfo>,
  ): Promise<boolean[]> {
    try {
      return await withCheck(async () => {
        const readable = new Map<string, boolean>()
        for (const { schema, table } of changes) {
          if (readable.has(`${schema}.${table}`)) continue
          const [row] = await check<{ ok: boolean }[]>`
            select has_schema_privilege(${auth.role}, ${schema}, 'USAGE')
              and has_table_privilege(${auth.role}, ${`${ident(schema)}.${ident(table)}`}, 'SELECT')
              as ok`
          readable.set(`${schema}.${table}`, row.ok === true)
        }
        const seen = changes.map((c) => readable.get(`${c.schema}.${c.table}`) === true)
        const rls = changes.map((_, i) => i).filter((i) => seen[i] && changes[i].type !== 'DELETE')
        if (!rls.length) return seen
        await check`begin`
        try {
          await check`select set_config('role', ${auth.role}, true),
            set_config('request.jwt.claims', ${JSON.stringify(auth.claims)}, true)`
          for (const i of rls) {
            const change = changes[i]
            const table = tables.get(`${change.schema}.${change.table}`)
            const keys = change.pk.map((name) => table?.columns.find((c) => c.name === name))
            if (!table || !keys.length || keys.some((k) => !k)) {
              seen[i] = false
              continue
            }
            const where = keys.map((k, n) => `${ident(k!.name)} = $${n + 2}::${k!.sqlType}`)
            // current_user guards against a session lost mid-transaction: then this ran as owner.
            const [row] = await check.unsafe<{ visible: boolean }[]>(
              `select current_user = $1 and exists(select 1 from ${ident(table.schema)}.${
                ident(table.table)
              } where ${where.join(' and ')}) as visible`,
              [auth.role, ...keys.map((k) => asText(change.record[k!.name]))],
            )
            seen[i] = row.visible === true
          }
        } finally {
          await check`rollback`.catch(() => {})
        }
        return seen
      })
    } catch (error) {
      log(`visibility check as ${auth.role} failed (${message(error)}): changes withheld`)
      return changes.map(() => false)
    }
  }

  // ---- catalog ----

  async function describe(schema: string, table: string, role: Role): Promise<TableInfo | null> {
    const rows = await withCheck(() =>
      check<
        {
          published: boolean
          readable: boolean
          columns: ColumnInfo[]
        }[]
      >`
      select
        exists(select 1 from pg_publication_tables p
               where p.pubname = ${PUBLICATION} and p.schemaname = n.nspname
                 and p.tablename = c.relname) as published,
        has_schema_privilege(${role}, n.oid, 'USAGE')
          and has_table_privilege(${role}, c.oid, 'SELECT') as readable,
        (select json_agg(json_build_object('name', a.attname, 'typname', t.typname,
                  'sqlType', format_type(a.atttypid, a.atttypmod)) order by a.attnum)
           from pg_attribute a join pg_type t on t.oid = a.atttypid
          where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped) as columns
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = ${schema} and c.relname = ${table} and c.relkind in ('r', 'p')`
    )
    if (!rows.length) return null
    return { schema, table, ...rows[0], columns: rows[0].columns ?? [] }
  }

  // ---- authentication ----

  async function authenticate(token: string): Promise<Auth> {
    let claims: JwtPayload
    try {
      claims = await verifyJwt(token, options.jwtSecret)
    } catch (error) {
      if (error instanceof JwtError && error.reason === 'expired') {
        throw new RefusedError(`InvalidJWTToken: ${expiredMessage(token)}`)
      }
      if (error instanceof JwtError && error.reason === 'bad_signature') {
        throw new RefusedError('JwtSignatureError: Failed to validate JWT signature')
      }
      if (error instanceof JwtError && error.reason === 'not_yet_valid') {
        throw new RefusedError('InvalidJWTToken: Token is not valid yet')
      }
      throw new RefusedError('MalformedJWT: The token provided is not a valid JWT')
    }
    if (typeof claims.role !== 'string' || typeof claims.exp !== 'number') {
      throw new RefusedError('InvalidJWTToken: Fields `role` and `exp` are required in JWT')
    }
    if (!(ROLES as readonly string[]).includes(claims.role)) {
      throw new RefusedError(
        `Unauthorized: role ${claims.role} is not one of ${ROLES.join(', ')}`,
      )
    }
    const role = claims.role as Role
    return { token, claims, role, key: `${role} ${JSON.stringify(claims)}` }
  }

  function tokenExpired(auth: Auth): boolean {
    return typeof auth.claims.exp === 'number' && auth.claims.exp * 1000 <= Date.now()
  }

  function scheduleExpiry(client: Client, channel: Channel): void {
    clearTimeout(channel.expiryTimer)
    const exp = channel.auth.claims.exp as number
    const wait = Math.min(Math.max(exp * 1000 - Date.now(), 0), MAX_EXPIRY_TIMER_MS)
    channel.expiryTimer = setTimeout(() => {
      if (client.channels.get(channel.topic) !== channel) return
      if (tokenExpired(channel.auth)) expire(client, channel)
      else scheduleExpiry(client, channel)
    }, wait)
  }

  function expire(client: Client, channel: Channel): void {
    shutdown(client, channel, expiredMessage(channel.auth.token))
  }

  /** What Supabase does when a joined channel loses its rights: a system error, then phx_close. */
  function shutdown(client: Client, channel: Channel, reason: string): void {
    if (client.channels.get(channel.topic) !== channel) return
    removeChannel(client, channel)
    const subTopic = channel.topic.replace(/^realtime:/, '')
    send(client, channel.joinRef, null, channel.topic, 'system', {
      extension: 'system',
      status: 'error',
      message: reason,
      channel: subTopic,
    })
    send(client, channel.joinRef, null, channel.topic, 'phx_close', {})
    log(`closed ${channel.topic}: ${reason}`)
  }

  function removeChannel(client: Client, channel: Channel): void {
    clearTimeout(channel.expiryTimer)
    if (client.channels.get(channel.topic) === channel) client.channels.delete(channel.topic)
  }

  // ---- protocol ----

  function send(
    client: Client,
    joinRef: string | null,
    ref: string | null,
    topic: string,
    event: string,
    payload: unknown,
  ): void {
    if (client.ws.readyState !== WebSocket.OPEN) return
    const frame = client.vsn === '2.0.0'
      ? JSON.stringify([joinRef, ref, topic, event, payload])
      : JSON.stringify({ topic, event, payload, ref, join_ref: joinRef })
    try {
      client.ws.send(frame)
    } catch (error) {
      log(`send failed: ${message(error)}`)
    }
  }

  function reply(client: Client, msg: Message, status: 'ok' | 'error', response: unknown): void {
    send(client, msg.joinRef, msg.ref, msg.topic, 'phx_reply', { status, response })
  }

  function decode(client: Client, data: string): Message | null {
    let raw: unknown
    try {
      raw = JSON.parse(data)
    } catch {
      return null
    }
    let joinRef: unknown, ref: unknown, topic: unknown, event: unknown, payload: unknown
    if (client.vsn === '2.0.0') {
      if (!Array.isArray(raw) || raw.length !== 5) return null
      ;[joinRef, ref, topic, event, payload] = raw
    } else {
      if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return null
      ;({ join_ref: joinRef, ref, topic, event, payload } = raw as Record<string, unknown>)
    }
    if (typeof topic !== 'string' || typeof event !== 'string') return null
    const str = (x: unknown) => typeof x === 'string' ? x : typeof x === 'number' ? String(x) : null
    return {
      joinRef: str(joinRef),
      ref: str(ref),
      topic,
      event,
      payload: payload && typeof payload === 'object' && !Array.isArray(payload)
        ? payload as Record<string, unknown>
        : {},
    }
  }

  function onFrame(client: Client, data: unknown): void {
    if (typeof data !== 'string') {
      log('ignored a binary frame (broadcast is not implemented here)')
      return
    }
    const msg = decode(client, data)
    if (!msg) {
      log('ignored a malformed frame')
      return
    }
    if (msg.topic === 'phoenix') {
      if (msg.event === 'heartbeat') reply(client, msg, 'ok', {})
      return
    }
    // Channel messages in order, behind any join still being checked.
    client.queue = client.queue.then(() => onChannelMessage(client, msg)).catch((error) =>
      log(`error handling ${msg.event} on ${msg.topic}: ${message(error)}`)
    )
  }

  async function onChannelMessage(client: Client, msg: Message): Promise<void> {
    if (msg.event === 'phx_join') return await join(client, msg)
    const channel = client.channels.get(msg.topic)
    if (!channel) {
      if (msg.ref) reply(client, msg, 'error', { reason: 'unmatched topic' })
      return
    }
    if (msg.event === 'phx_leave') {
      removeChannel(client, channel)
      reply(client, msg, 'ok', {})
      return
    }
    if (msg.event === 'access_token') return await refreshToken(client, channel, msg)
    // broadcast, presence and the rest: accepted, not implemented here.
  }

  async function join(client: Client, msg: Message): Promise<void> {
    const old = client.channels.get(msg.topic)
    if (old) {
      removeChannel(client, old)
      send(client, old.joinRef, null, old.topic, 'phx_close', {})
    }
    try {
      const channel = await checkJoin(client, msg)
      if (!clients.has(client)) return
      client.channels.set(channel.topic, channel)
      scheduleExpiry(client, channel)
      reply(client, msg, 'ok', {
        postgres_changes: channel.entries.map((e) => ({ ...e.sent, id: e.id })),
      })
      if (channel.entries.length) {
        send(client, channel.joinRef, null, channel.topic, 'system', {
          extension: 'postgres_changes',
          status: 'ok',
          message: 'Subscribed to PostgreSQL',
          channel: channel.topic.replace(/^realtime:/, ''),
        })
      }
      log(
        `${channel.auth.role} joined ${channel.topic} (${channel.entries.length} postgres_changes)`,
      )
    } catch (error) {
      const reason = error instanceof RefusedError
        ? error.message
        : 'UnableToConnectToProject: Realtime was unable to connect to the project database'
      if (!(error instanceof RefusedError)) log(`join of ${msg.topic} failed: ${message(error)}`)
      else log(`refused ${msg.topic}: ${reason}`)
      reply(client, msg, 'error', { reason })
    }
  }

  async function checkJoin(client: Client, msg: Message): Promise<Channel> {
    if (!msg.topic.startsWith('realtime:')) throw new RefusedError('unmatched topic')
    if (msg.topic === 'realtime:') {
      throw new RefusedError('TopicNameRequired: You must provide a topic name')
    }
    const token = typeof msg.payload.access_token === 'string' &&
        !msg.payload.access_token.startsWith('sb_')
      ? msg.payload.access_token
      : client.apikey
    const auth = await authenticate(token)
    const config = isObject(msg.payload.config) ? msg.payload.config : {}
    if (config.private === true) {
      throw new RefusedError(
        'PrivateOnly: private channels (realtime.messages policies) are not implemented by the ' +
          'local Realtime stand-in; use a public channel for postgres_changes',
      )
    }
    const list = Array.isArray(config.postgres_changes) ? config.postgres_changes : []
    const entries: Entry[] = []
    for (const raw of list) {
      if (raw === null || raw === undefined) continue
      entries.push(await checkEntry(raw, auth))
    }
    if (entries.length) await coverTables(entries.map((e) => `${e.schema}.${e.table}`))
    return { topic: msg.topic, joinRef: msg.joinRef, entries, auth, joinedAt: Date.now() }
  }

  async function checkEntry(raw: unknown, auth: Auth): Promise<Entry> {
    if (!isObject(raw)) {
      throw new RefusedError('InvalidJoinPayload: postgres_changes entry must be an object')
    }
    const { event, schema, table, filter } = raw
    const upper = typeof event === 'string' ? event.toUpperCase() : ''
    if (!(EVENTS as readonly string[]).includes(upper)) {
      throw new RefusedError(
        `InvalidJoinPayload: event ${JSON.stringify(event)} must be one of ${EVENTS.join(', ')}`,
      )
    }
    if (
      typeof schema !== 'string' || !schema || typeof table !== 'string' || !table || table === '*'
    ) {
      throw new RefusedError(
        'InvalidJoinPayload: postgres_changes needs a schema and a table (schema-wide ' +
          'subscriptions are not implemented by the local Realtime stand-in)',
      )
    }
    const name = `${schema}.${table}`
    const info = await describe(schema, table, auth.role)
    if (!info) {
      throw new RefusedError(`RealtimeDisabledForConfiguration: table ${name} does not exist`)
    }
    if (!info.published) {
      throw new RefusedError(
        `RealtimeDisabledForConfiguration: table ${name} is not in the ${PUBLICATION} publication`,
      )
    }
    if (!info.readable) {
      throw new RefusedError(
        `Unauthorized: role ${auth.role} may not read table ${name} (no SELECT privilege)`,
      )
    }
    let parsed: Filter | null = null
    if (filter !== undefined && filter !== null && filter !== '') {
      if (typeof filter !== 'string') {
        throw new RefusedError(`InvalidFilter: filter must be a string`)
      }
      parsed = await parseFilter(filter, info)
    }
    return {
      id: nextEntryId++,
      event: upper as ChangeEvent,
      schema,
      table,
      filter: parsed,
      sent: raw,
    }
  }

  /** `column=op.value`, op one of eq neq lt lte gt gte in (`in.(a,b)`), the value cast as Postgres would. */
  async function parseFilter(text: string, table: TableInfo): Promise<Filter> {
    const bad = (why: string) =>
      new RefusedError(
        `InvalidFilter: filter ${JSON.stringify(text)} on ${table.schema}.${table.table}: ${why}`,
      )
    // Supabase splits conditions on commas outside quotes and parentheses: refuse, never misread.
    if (splitList(text.replace(/\([^)]*\)/g, '()')).length > 1) {
      throw bad('combining conditions with commas is not implemented by the local stand-in')
    }
    const m = /^([^=]+)=([a-z]+)\.(.*)$/s.exec(text)
    if (!m) throw bad('expected column=operator.value')
    const [, columnName, op, operand] = m
    const column = table.columns.find((c) => c.name === columnName.trim())
    if (!column) throw bad(`no column ${columnName.trim()}`)
    if (!(OPS as readonly string[]).includes(op)) {
      throw bad(`operator ${op} is not one of ${OPS.join(', ')}`)
    }
    let raw: string[]
    if (op === 'in') {
      const list = /^\((.*)\)$/s.exec(operand)
      if (!list) throw bad('in expects a list: in.(a,b,c)')
      raw = splitList(list[1])
      if (!raw.length) throw bad('in expects at least one value')
    } else {
      raw = [unquote(operand)]
    }
    let values: unknown[]
    try {
      const rows = await withCheck(() =>
        check.unsafe<{ v: unknown }[]>(
          `select to_jsonb(x::${column.sqlType}) as v from unnest($1::text[]) with ordinality as u(x, n) order by n`,
          [raw],
        )
      )
      values = rows.map((r) => r.v)
    } catch (error) {
      if (isConnectionError(error)) throw error
      throw bad(`value is not a valid ${column.sqlType} (${message(error)})`)
    }
    return { text, column: column.name, op: op as Op, values, typname: column.typname }
  }

  async function refreshToken(client: Client, channel: Channel, msg: Message): Promise<void> {
    const token = msg.payload.access_token
    if (typeof token !== 'string' || token === channel.auth.token || token.startsWith('sb_')) return
    let auth: Auth
    try {
      auth = await authenticate(token)
    } catch (error) {
      const reason = error instanceof RefusedError ? error.message : message(error)
      return shutdown(client, channel, reason.replace(/^[A-Za-z]+: /, ''))
    }
    if (auth.role !== channel.auth.role) {
      for (const e of channel.entries) {
        const info = await describe(e.schema, e.table, auth.role)
        if (!info?.readable) {
          return shutdown(
            client,
            channel,
            `You do not have permissions to read from table ${e.schema}.${e.table}`,
          )
        }
      }
    }
    channel.auth = auth
    scheduleExpiry(client, channel)
    log(`${channel.topic}: access token refreshed (${auth.role})`)
  }

  // ---- sockets ----

  function handle(request: Request): Response {
    const url = new URL(request.url)
    if (!/\/websocket\/?$/.test(url.pathname)) {
      return json(
        { error: 'not_found', message: 'the Realtime socket is …/realtime/v1/websocket' },
        404,
      )
    }
    if (request.method !== 'GET' || request.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
      return json({
        error: 'upgrade_required',
        message: 'Realtime speaks WebSocket: connect with GET and Upgrade: websocket',
      }, 426)
    }
    const vsn = url.searchParams.get('vsn') ?? '1.0.0'
    if (!(VSNS as readonly string[]).includes(vsn)) {
      return json(
        { error: 'bad_request', message: `unsupported vsn ${vsn}: use 1.0.0 or 2.0.0` },
        400,
      )
    }
    const apikey = url.searchParams.get('apikey') ?? request.headers.get('apikey')
    if (!apikey) return json({ error: 'unauthorized', message: 'apikey is required' }, 401)
    if (stopped) return json({ error: 'unavailable', message: 'Realtime is stopping' }, 503)
    let upgraded: { socket: WebSocket; response: Response }
    try {
      upgraded = Deno.upgradeWebSocket(request)
    } catch (error) {
      return json(
        { error: 'bad_request', message: `not a websocket upgrade: ${message(error)}` },
        400,
      )
    }
    const { socket, response } = upgraded
    const client: Client = {
      ws: socket,
      vsn: vsn as Vsn,
      apikey,
      channels: new Map(),
      queue: Promise.resolve(),
    }
    socket.onopen = () => {
      clients.add(client)
      // Supabase refuses a socket whose key is not a valid JWT; here it is closed after the upgrade.
      client.queue = client.queue.then(async () => {
        try {
          await authenticate(apikey)
        } catch (error) {
          log(`refused a socket: ${message(error)}`)
          socket.close(4001, 'invalid apikey')
        }
      })
    }
    socket.onmessage = (event) => {
      try {
        onFrame(client, event.data)
      } catch (error) {
        log(`ignored a frame: ${message(error)}`)
      }
    }
    socket.onclose = () => forget(client)
    socket.onerror = () => {}
    return response
  }

  function forget(client: Client): void {
    for (const channel of client.channels.values()) clearTimeout(channel.expiryTimer)
    client.channels.clear()
    clients.delete(client)
  }

  function dropAll(): number {
    const all = [...clients]
    for (const client of all) {
      forget(client)
      try {
        client.ws.close(1000, 'server restart')
      } catch { /* already closing */ }
    }
    if (all.length) log(`dropped ${all.length} client socket(s)`)
    return all.length
  }

  return {
    handle,
    dropAll,
    clients: () => clients.size,
    async stop() {
      stopped = true
      dropAll()
      wakeUp?.()
      await loop
      await feedExclusive(closeFeed)
      await exclusive(() => check.end({ timeout: 1 }))
    },
  }
}

// ---- helpers ----

function matches(filter: Filter, row: Record<string, unknown>): boolean {
  if (!(filter.column in row)) return false
  const value = row[filter.column]
  if (value === null || value === undefined) return false
  const equal = (x: unknown) => JSON.stringify(x) === JSON.stringify(value)
  switch (filter.op) {
    case 'eq':
      return equal(filter.values[0])
    case 'neq':
      return !equal(filter.values[0])
    case 'in':
      return filter.values.some(equal)
    default: {
      const c = compare(value, filter.values[0], filter.typname)
      if (c === null) return false
      return filter.op === 'lt'
        ? c < 0
        : filter.op === 'lte'
        ? c <= 0
        : filter.op === 'gt'
        ? c > 0
        : c >= 0
    }
  }
}

function compare(a: unknown, b: unknown, typname: string): number | null {
  if (typeof a === 'number' && typeof b === 'number') return a - b
  if (typeof a !== 'string' || typeof b !== 'string') return null
  if (/^(timestamp|timestamptz|date)$/.test(typname)) {
    const x = Date.parse(a), y = Date.parse(b)
    if (!Number.isNaN(x) && !Number.isNaN(y)) return x - y
  }
  return a < b ? -1 : a > b ? 1 : 0
}

/** Splits `a,"b,c",d` on commas outside double quotes. */
function splitList(text: string): string[] {
  const out: string[] = []
  let cur = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]
    if (ch === '"') quoted = !quoted
    else if (ch === '\\' && quoted && i + 1 < text.length) cur += text[++i]
    else if (ch === ',' && !quoted) {
      out.push(cur)
      cur = ''
    } else cur += ch
  }
  if (cur.length || out.length) out.push(cur)
  return out.map((s) => s.trim())
}

function unquote(text: string): string {
  return /^".*"$/s.test(text) ? text.slice(1, -1).replace(/\\(.)/g, '$1') : text
}

/** wal2json hands json/jsonb as text: parse it, so Postgres rebuilds the value, not a string. */
function parseJson(record: Record<string, unknown>, table: TableInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(record)) {
    const typname = table.columns.find((c) => c.name === name)?.typname
    if ((typname === 'json' || typname === 'jsonb') && typeof value === 'string') {
      try {
        out[name] = JSON.parse(value)
        continue
      } catch { /* keep the text */ }
    }
    out[name] = value
  }
  return out
}

function pick(
  full: Record<string, unknown>,
  like: Record<string, unknown>,
): Record<string, unknown> {
  return Object.fromEntries(Object.keys(like).map((k) => [k, k in full ? full[k] : like[k]]))
}

function asText(value: unknown): string | null {
  if (value === null || value === undefined) return null
  return typeof value === 'string' ? value : JSON.stringify(value)
}

function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/** wal2json's add-tables list: commas, periods, asterisks and backslashes escaped. */
function wal2jsonTables(names: string[]): string {
  if (!names.length) return 'vigil_realtime_none.none'
  return names.map((n) => {
    const dot = n.indexOf('.')
    const esc = (s: string) => s.replace(/([\\,.* ])/g, '\\$1')
    return `${esc(n.slice(0, dot))}.${esc(n.slice(dot + 1))}`
  }).join(',')
}

function expiredMessage(token: string): string {
  let exp: number | undefined
  try {
    exp = decodeJwt(token).exp
  } catch { /* not decodable */ }
  const ago = exp === undefined ? 0 : Math.max(0, Math.floor(Date.now() / 1000) - exp)
  return `Token has expired ${ago} seconds ago`
}

function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code
  return typeof code === 'string' &&
    (code.startsWith('CONNECTION_') || code === '57P01' || code === '57P02' || code === '57P03')
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function json(body: unknown, status: number): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json' },
  })
}
