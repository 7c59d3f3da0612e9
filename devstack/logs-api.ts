// A local stand-in for the Supabase Management API's logs endpoint
// (GET /v1/projects/{ref}/analytics/endpoints/logs?sql=…&iso_timestamp_start=…&iso_timestamp_end=…),
// over the local stack's own logs: every request the gateway answered (edge_logs; function_edge_logs
// for /functions/v1; auth_logs for /auth/v1), the cluster's log file (postgres_logs, read as it
// grows), and events a test or the demo posts to /_logs/events. It checks what the real endpoint
// checks (the bearer token, the project ref, the time range) and records every query.
//
// It runs no ClickHouse: it answers the queries Vigil asks, each named by its first line
// (`-- vigil:traffic totals`, as Supabase's own panels name theirs), by the same aggregation in
// TypeScript, and the logs probe's plain `select id, timestamp, event_message … where source in
// (…)`. Anything else is refused in the endpoint's shape ({error}), never answered wrongly.
// Dev tooling only: never deployed.
import { newestFile } from '../supabase/functions/_shared/probes/logs.ts'

export const LOG_SOURCES = [
  'edge_logs',
  'function_edge_logs',
  'function_logs',
  'auth_logs',
  'postgres_logs',
] as const
export type LogSource = (typeof LOG_SOURCES)[number]

export interface LogEvent {
  id: string
  /** ISO text. */
  timestamp: string
  source: LogSource
  event_message: string
  severity_text: string
  log_attributes: Record<string, string>
}

export interface LogsApiQuery {
  at: Date
  name: string
  start: string
  end: string
  answered: number
}

export interface LogsApi {
  /** Answers a request to the logs endpoint or /_logs/events; undefined for any other path. */
  handle(request: Request, url: URL): Promise<Response | undefined>
  /** Adds events (a missing id or timestamp is made: now). */
  ingest(events: Partial<LogEvent>[]): void
  /** What the gateway answered, as the API gateway's logs would say it. */
  gatewayRequest(r: { method: string; path: string; status: number; ms: number }): void
  events(): LogEvent[]
  queries(): LogsApiQuery[]
}

export interface LogsApiOptions {
  token: string
  projectRef: string
  /** The cluster's log directory: its newest file is read as it grows, into postgres_logs. */
  postgresLogDir?: string
}

/** The local project's ref and personal access token (the real formats; local only). */
export const LOCAL_PROJECT_REF = 'vigillocalproject000'
export const LOCAL_ACCESS_TOKEN = 'sbp_' + 'vigillocalaccesstoken'.padEnd(40, '0')

/** The cluster's log is read this much at a time. */
const LOG_CHUNK_BYTES = 4 * 1024 * 1024
/** Kept in memory: a long `npm start` drops the oldest. */
const MAX_EVENTS = 200_000
const MAX_QUERIES = 5_000

export function createLogsApi(options: LogsApiOptions): LogsApi {
  const events: LogEvent[] = []
  const queries: LogsApiQuery[] = []
  let serial = 0
  const pgLog = { file: '', offset: 0 }

  const add = (e: LogEvent) => {
    events.push(e)
    // Dropped a tenth at a time: every request the gateway answers comes through here.
    if (events.length > MAX_EVENTS) events.splice(0, events.length - MAX_EVENTS * 0.9)
  }
  const ingest = (list: Partial<LogEvent>[]) => {
    for (const e of list) {
      add({
        id: e.id ?? `local-${++serial}`,
        timestamp: e.timestamp ?? new Date().toISOString(),
        source: e.source as LogSource,
        event_message: e.event_message ?? '',
        severity_text: e.severity_text ?? '',
        log_attributes: e.log_attributes ?? {},
      })
    }
  }

  const gatewayRequest = (r: { method: string; path: string; status: number; ms: number }) => {
    const timestamp = new Date().toISOString()
    const status = String(r.status)
    const ms = String(Math.round(r.ms))
    ingest([{
      timestamp,
      source: 'edge_logs',
      event_message: `${r.method} | ${status} | ${r.path}`,
      log_attributes: {
        'request.method': r.method,
        'request.path': r.path,
        'response.status_code': status,
        'response.origin_time': ms,
      },
    }])
    const fn = r.path.match(/^\/functions\/v1\/([A-Za-z0-9_-]+)/)?.[1]
    if (fn) {
      ingest([{
        timestamp,
        source: 'function_edge_logs',
        event_message: `${r.method} | ${status} | ${r.path}`,
        log_attributes: {
          function_id: fn,
          'request.pathname': r.path,
          'response.status_code': status,
          execution_time_ms: ms,
        },
      }])
    }
    const auth = r.path.match(/^\/auth\/v1(\/[^?]*)/)?.[1]
    if (auth) {
      ingest([{
        timestamp,
        source: 'auth_logs',
        event_message: JSON.stringify({ msg: 'request completed', path: auth, status }),
        log_attributes: {
          msg: 'request completed',
          path: auth,
          status,
          method: r.method,
          error: r.status >= 400 ? `HTTP ${status}` : '',
        },
      }])
    }
  }

  /** The cluster's log lines written since the last read, as postgres_logs rows. */
  /**
   * Everything the cluster logged since the last read, chunk by chunk to the end of the file (a
   * line still being written waits); lines older than an hour are past any query's window.
   */
  const readPostgresLog = async () => {
    if (!options.postgresLogDir) return
    const file = await newestFile(options.postgresLogDir).catch(() => null)
    if (!file) return
    if (file !== pgLog.file) Object.assign(pgLog, { file, offset: 0 })
    const handle = await Deno.open(file, { read: true }).catch(() => null)
    if (!handle) return
    const oldest = Date.now() - 3_600_000
    try {
      const size = (await handle.stat()).size
      if (size < pgLog.offset) pgLog.offset = 0
      await handle.seek(pgLog.offset, Deno.SeekMode.Start)
      const buffer = new Uint8Array(LOG_CHUNK_BYTES)
      while (pgLog.offset < size) {
        const want = Math.min(size - pgLog.offset, LOG_CHUNK_BYTES)
        let filled = 0
        while (filled < want) {
          const n = await handle.read(buffer.subarray(filled, want))
          if (n === null) break
          filled += n
        }
        if (filled === 0) break
        let end = buffer.subarray(0, filled).lastIndexOf(0x0a) + 1
        // One line longer than a whole chunk is skipped, or the reading would never move on.
        if (end === 0 && filled === LOG_CHUNK_BYTES) end = filled
        if (end === 0) break
        for (const line of new TextDecoder().decode(buffer.subarray(0, end)).split('\n')) {
          const row = postgresLogRow(line)
          if (row && Date.parse(row.timestamp!) >= oldest) ingest([row])
        }
        pgLog.offset += end
        if (end < filled) await handle.seek(pgLog.offset, Deno.SeekMode.Start)
      }
    } finally {
      handle.close()
    }
  }

  const handle = async (request: Request, url: URL): Promise<Response | undefined> => {
    if (url.pathname === '/_logs/events') {
      if (request.method === 'POST') {
        const body = await request.json().catch(() => null)
        const list = Array.isArray(body) ? body : body?.events
        if (!Array.isArray(list)) return json({ error: 'body must be a list of events' }, 400)
        const bad = list.findIndex((e) => !LOG_SOURCES.includes(e?.source))
        if (bad >= 0) {
          return json(
            { error: `events[${bad}].source must be one of ${LOG_SOURCES.join(', ')}` },
            400,
          )
        }
        ingest(list)
        return json({ ingested: list.length })
      }
      if (request.method === 'GET') return json(events)
      if (request.method === 'DELETE') {
        // Forgets what the cluster logged until now too: read, then dropped.
        await readPostgresLog()
        events.length = 0
        queries.length = 0
        return new Response(null, { status: 204 })
      }
    }
    const m = url.pathname.match(/^\/v1\/projects\/([^/]+)\/analytics\/endpoints\/logs$/)
    if (!m) return undefined
    await request.body?.cancel()
    const sql = url.searchParams.get('sql') ?? ''
    const start = url.searchParams.get('iso_timestamp_start') ?? ''
    const end = url.searchParams.get('iso_timestamp_end') ?? new Date().toISOString()
    const query: LogsApiQuery = { at: new Date(), name: nameOf(sql), start, end, answered: 0 }
    queries.push(query)
    if (queries.length > MAX_QUERIES) queries.shift()
    const answer = (status: number, body: unknown) => {
      query.answered = status
      return json(body, status)
    }
    if (request.headers.get('authorization') !== `Bearer ${options.token}`) {
      return answer(401, { message: 'Unauthorized' })
    }
    if (m[1] !== options.projectRef) return answer(404, { message: 'Project not found' })
    if (request.method !== 'GET') return answer(405, { message: 'Method not allowed' })
    const from = Date.parse(start)
    const to = Date.parse(end)
    if (!sql) return answer(400, { message: 'sql is required' })
    if (Number.isNaN(from) || Number.isNaN(to) || from > to) {
      return answer(400, {
        message: 'iso_timestamp_start and iso_timestamp_end must be ISO timestamps, start first',
      })
    }
    await readPostgresLog()
    const within = events.filter((e) => {
      const t = Date.parse(e.timestamp)
      return t >= from && t <= to
    })
    const rows = run(sql, within)
    if ('error' in rows) return answer(200, { result: null, error: { message: rows.error } })
    return answer(200, { result: rows.rows })
  }

  return {
    handle,
    ingest,
    gatewayRequest,
    events: () => [...events],
    queries: () => [...queries],
  }
}

/** A query's name: its `-- vigil:…` first line, or `select` for the logs probe's plain select. */
function nameOf(sql: string): string {
  return sql.match(/^--\s*vigil:(.+)$/m)?.[1].trim() ?? (/^\s*select\b/i.test(sql) ? 'select' : '?')
}

type Rows = { rows: Record<string, unknown>[] } | { error: string }

/** The answer to one of the queries Vigil asks; any other is refused. */
function run(sql: string, events: LogEvent[]): Rows {
  const name = nameOf(sql)
  const limit = Number(sql.match(/\blimit\s+(\d+)\s*$/i)?.[1] ?? 100)
  const status = (e: LogEvent) => Number(e.log_attributes['response.status_code'] ?? 0) || 0
  const of = (source: LogSource) => events.filter((e) => e.source === source)
  switch (name) {
    case 'traffic totals': {
      const edge = of('edge_logs')
      const token = of('auth_logs').filter((e) => e.log_attributes.path === '/token')
      return {
        rows: [{
          requests: String(edge.length),
          server_errors: String(edge.filter((e) => status(e) >= 500).length),
          denied: String(edge.filter((e) => [401, 403].includes(status(e))).length),
          p95_ms: p95(timed(edge, 'response.origin_time')),
          token_requests: String(token.length),
          token_ok: String(
            token.filter((e) => /^2\d\d$/.test(e.log_attributes.status ?? '')).length,
          ),
          refresh_failures: String(
            of('auth_logs').filter((e) => /refresh token/i.test(e.log_attributes.error ?? ''))
              .length,
          ),
          rls_violations: String(
            of('postgres_logs').filter((e) => e.log_attributes['parsed.sql_state_code'] === '42501')
              .length,
          ),
          error_lines: String(events.filter(isErrorLine).length),
        }],
      }
    }
    case 'traffic endpoints': {
      const groups = groupBy(of('edge_logs'), (e) => {
        const path = (e.log_attributes['request.path'] ?? '').split('/').slice(0, 4).join('/')
        return `${path}\u0000${e.log_attributes['request.method'] ?? ''}`
      })
      const rows = [...groups].map(([key, list]) => {
        const [endpoint, method] = key.split('\u0000')
        return {
          endpoint,
          method,
          requests: String(list.length),
          server_errors: String(list.filter((e) => status(e) >= 500).length),
          p95_ms: p95(timed(list, 'response.origin_time')),
        }
      })
      return {
        rows: rows.sort((a, b) =>
          Number(b.server_errors) - Number(a.server_errors) ||
          Number(b.requests) - Number(a.requests)
        ).slice(0, limit),
      }
    }
    case 'traffic functions': {
      const groups = groupBy(
        events.filter((e) =>
          (e.source === 'function_edge_logs' || e.source === 'function_logs') &&
          e.log_attributes.function_id
        ),
        (e) => e.log_attributes.function_id,
      )
      const shutdown = (e: LogEvent, reason: string, words: string) =>
        e.source === 'function_logs' &&
        (e.log_attributes.reason === reason ||
          e.event_message.toLowerCase().includes(words))
      const rows = [...groups].map(([function_id, all]) => {
        const list = all.filter((e) => e.source === 'function_edge_logs')
        return {
          function_id,
          path: list[0]?.log_attributes['request.pathname'] ?? '',
          requests: String(list.length),
          failures: String(list.filter((e) => status(e) >= 500).length),
          resource_limits: String(list.filter((e) => [504, 546].includes(status(e))).length),
          time_limits: String(
            all.filter((e) =>
              shutdown(e, 'WallClockTime', 'wall clock time limit reached') ||
              shutdown(e, 'CPUTime', 'cpu time limit reached')
            ).length,
          ),
          memory_limits: String(
            all.filter((e) => shutdown(e, 'Memory', 'memory limit exceeded')).length,
          ),
          p95_ms: p95(timed(list, 'execution_time_ms')),
        }
      })
      return {
        rows: rows.sort((a, b) =>
          Number(b.failures) - Number(a.failures) || Number(b.requests) - Number(a.requests)
        ).slice(0, limit),
      }
    }
    case 'traffic errors': {
      const groups = groupBy(
        events.filter(isErrorLine),
        (e) => `${e.source}\u0000${e.event_message.slice(0, 200).replace(/[0-9]+/g, '#')}`,
      )
      const rows = [...groups].map(([key, list]) => ({
        source: key.split('\u0000')[0],
        shape: key.split('\u0000')[1],
        message: list[0].event_message.slice(0, 300),
        sqlstate: list[0].log_attributes['parsed.sql_state_code'] ?? '',
        lines: String(list.length),
      }))
      return { rows: rows.sort((a, b) => Number(b.lines) - Number(a.lines)).slice(0, limit) }
    }
    case 'select': {
      // The logs probe's: select id, timestamp, event_message from logs where source in (…)
      // order by timestamp asc limit N.
      const m = sql.match(
        /^\s*select id, timestamp, event_message from logs where source in \(([^)]*)\) order by timestamp asc limit \d+\s*$/i,
      )
      if (!m) break
      const sources = m[1].split(',').map((s) => s.trim().replace(/^'|'$/g, ''))
      const rows = events.filter((e) => sources.includes(e.source))
        .sort((a, b) => a.timestamp.localeCompare(b.timestamp)).slice(0, limit)
        .map((e) => ({ id: e.id, timestamp: e.timestamp, event_message: e.event_message }))
      return { rows }
    }
  }
  return {
    error:
      `the local stand-in answers only the queries Vigil asks (-- vigil:traffic …, and the logs probe's select); not: ${
        sql.slice(0, 120)
      }`,
  }
}

/** The times a field holds, rows without it left out (as quantileIf(…, field != '') does). */
function timed(list: LogEvent[], field: string): number[] {
  return list.filter((e) => (e.log_attributes[field] ?? '') !== '')
    .map((e) => Number(e.log_attributes[field]))
}

function isErrorLine(e: LogEvent): boolean {
  if (e.source === 'postgres_logs') {
    return ['ERROR', 'FATAL', 'PANIC'].includes(e.log_attributes['parsed.error_severity'] ?? '')
  }
  if (e.source === 'function_logs') {
    return e.severity_text.toUpperCase() === 'ERROR' || e.log_attributes.level === 'error'
  }
  return false
}

function groupBy<T>(list: T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>()
  for (const item of list) {
    const k = key(item)
    const group = out.get(k)
    if (group) group.push(item)
    else out.set(k, [item])
  }
  return out
}

/** ClickHouse's quantile(0.95) is approximate; the exact nearest rank is close enough here. */
function p95(values: number[]): number | null {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (!sorted.length) return null
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)]
}

/**
 * One line of the cluster's log (log_line_prefix '%m [%p] %e %q%u@%d ') as a postgres_logs row;
 * continuation lines (DETAIL, STATEMENT, …) and anything else are skipped.
 */
export function postgresLogRow(line: string): Partial<LogEvent> | null {
  const m = line.match(
    /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?) (\S+) \[(\d+)\] ([0-9A-Z]{5}) (?:(\S*)@(\S*) )?(LOG|INFO|NOTICE|WARNING|ERROR|FATAL|PANIC):\s+(.*)$/,
  )
  if (!m) return null
  const [, date, time, zone, pid, sqlstate, user, db, severity, message] = m
  const at = zone === 'UTC' ? Date.parse(`${date}T${time}Z`) : NaN
  return {
    timestamp: Number.isNaN(at) ? new Date().toISOString() : new Date(at).toISOString(),
    source: 'postgres_logs',
    event_message: `${severity}:  ${message}`,
    severity_text: severity,
    log_attributes: {
      'parsed.error_severity': severity,
      'parsed.sql_state_code': sqlstate,
      'parsed.process_id': pid,
      'parsed.user_name': user ?? '',
      'parsed.database_name': db ?? '',
    },
  }
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  })
}
