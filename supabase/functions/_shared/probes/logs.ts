// The logs probe: the log lines written since its previous check, matched against
// vigil.log_patterns (in SQL, where the patterns were checked when written). Locally it reads the
// cluster's own log file from where it left off; on Supabase it asks the Management API's logs
// endpoint (GET /v1/projects/{ref}/analytics/endpoints/logs?sql=…, the unified `logs` table,
// ClickHouse SQL) for the rows after its cursor. Its cursor and the matches still held are kept in
// the check's measurements, so nothing is read twice and a page is not forgotten by the next quiet
// check: a match holds the service at its status for hold_minutes after its last line. A log line
// is a fact, not a flaky probe: a match is decisive (no failure threshold), and a 'page' pattern's
// incident goes straight to people (the heal engine never acts on one).
import { z } from 'zod'
import { LogsConfig } from '../../../../shared/probe-configs.ts'
import type { CheckStatus } from '../../../../shared/kinds.ts'
import { clip } from './support.ts'
import { isoOf, queryLogsApi } from './logs-api.ts'
import { type Probe, type ProbeContext, worst } from './types.ts'

/** A line longer than this is matched on its first characters only. */
const LINE_CHARS = 4000
/** A matched line is kept this long, its quoted values masked. */
const SAMPLE_CHARS = 300

export interface LogLine {
  at: string
  line: string
}

/** One pattern's matches in one check, as vigil.match_log_lines returns them. */
export const Match = z.object({
  pattern: z.string(),
  severity: z.enum(['info', 'warning', 'critical']),
  action: z.enum(['page', 'alert', 'record']),
  count: z.number().int().min(1),
  line: z.string(),
  at: z.string().nullable(),
  description: z.string(),
  priority: z.number().int(),
})
export type Match = z.infer<typeof Match>

/** A match still held: the pattern, its latest line and when, and how many lines in all. */
const Held = Match.extend({ first_at: z.string(), last_at: z.string() })
type Held = z.infer<typeof Held>

const FileCursor = z.object({ file: z.string(), offset: z.number().int().min(0) })
const ApiCursor = z.object({ after: z.string(), ids: z.array(z.string()).max(1000) })

interface Read {
  lines: LogLine[]
  cursor: unknown
  measurements: Record<string, unknown>
}

export const logsProbe: Probe<LogsConfig> = {
  kind: 'logs',
  config: LogsConfig,
  async run(config, ctx) {
    const started = performance.now()
    const read = config.source === 'file' ? await readFile(config, ctx) : await readApi(config, ctx)
    const previous = ctx.previous ?? {}
    const heldBefore = z.array(Held).safeParse(previous.held)
    const now = new Date()
    if ('failure' in read) {
      // Nothing read: the cursor and the held matches stay as they were, for the next check.
      return {
        status: read.status,
        error: read.failure,
        measurements: {
          source: config.source,
          log: config.log,
          cursor: previous.cursor ?? null,
          held: heldBefore.success ? heldBefore.data : [],
          ...read.measurements,
        },
        responseMs: Math.round(performance.now() - started),
      }
    }
    const matches = read.lines.length ? await match(ctx, config.log, read.lines) : []
    const held = hold(heldBefore.success ? heldBefore.data : [], matches, now, config.hold_minutes)
    const shown = held.filter((h) => h.action !== 'record')
    const status = worst(
      ...shown.map((h): CheckStatus =>
        h.severity === 'critical' ? 'down' : h.severity === 'warning' ? 'degraded' : 'healthy'
      ),
    )
    const measurements: Record<string, unknown> = {
      source: config.source,
      log: config.log,
      cursor: read.cursor,
      lines_read: read.lines.length,
      matches,
      held,
      ...read.measurements,
    }
    // A logged fact needs no second look: the incident opens on this check.
    if (status !== 'healthy') measurements.decisive_status = status
    return {
      status,
      measurements,
      responseMs: Math.round(performance.now() - started),
      ...(status !== 'healthy' ? { error: describe(shown) } : {}),
    }
  },
}

/** The patterns these lines match (vigil.match_log_lines), each with its first line masked. */
async function match(ctx: ProbeContext, log: string, lines: LogLine[]): Promise<Match[]> {
  const [row] = await ctx.db<{ matches: unknown }[]>`
    select vigil.match_log_lines(${log}, ${ctx.db.json(lines as never)}) as matches`
  return z.array(Match).parse(row.matches).map((m) => ({ ...m, line: masked(m.line) }))
}

/**
 * The matches still held after this check: this check's (counted on from a held one of the same
 * pattern), and the earlier ones whose last line is younger than hold_minutes.
 */
export function hold(before: Held[], matches: Match[], now: Date, holdMinutes: number): Held[] {
  const at = now.toISOString()
  const out = new Map<string, Held>()
  for (const h of before) {
    if (now.getTime() - Date.parse(h.last_at) < holdMinutes * 60_000) out.set(h.pattern, h)
  }
  for (const m of matches) {
    const was = out.get(m.pattern)
    out.set(m.pattern, {
      ...m,
      count: (was?.count ?? 0) + m.count,
      first_at: was?.first_at ?? at,
      last_at: at,
    })
  }
  return [...out.values()].sort((a, b) =>
    rankOf(b) - rankOf(a) || b.priority - a.priority || a.pattern.localeCompare(b.pattern)
  )
}

const rankOf = (m: Match) =>
  ({ critical: 6, warning: 3, info: 0 })[m.severity] + ({ page: 2, alert: 1, record: 0 })[m.action]

/** What a person reads first: each pattern held, its count and its first line. */
function describe(held: Held[]): string {
  return held.map((h) =>
    `${h.pattern.replaceAll('_', ' ')} (${h.count} line${h.count === 1 ? '' : 's'}${
      h.action === 'page' ? ', paged' : ''
    }): ${clip(h.line, 160)}`
  ).join('; ')
}

/** A log line as kept: one line, quoted values masked (a statement's literals may be secrets). */
export function masked(line: string): string {
  return clip(
    line.replace(/'([^']|'')*'/g, "'…'").replace(/\p{Cc}/gu, ' ').trim(),
    SAMPLE_CHARS,
  )
}

// ---- the cluster's log file ----

type FileConfig = Extract<LogsConfig, { source: 'file' }>

async function readFile(
  config: FileConfig,
  ctx: ProbeContext,
): Promise<Read | { failure: string; status: CheckStatus; measurements: Record<string, unknown> }> {
  const fail = (failure: string) => ({ failure, status: 'down' as const, measurements: {} })
  let current: string
  try {
    current = await newestFile(config.path)
  } catch (e) {
    return fail(`cannot read ${config.path}: ${(e as Error).message}`)
  }
  const before = FileCursor.safeParse(ctx.previous?.cursor)
  // The first check watches from now on: what the log held before Vigil watched is history.
  if (!before.success) {
    const size = (await Deno.stat(current)).size
    return {
      lines: [],
      cursor: { file: current, offset: size },
      measurements: { file: current, started_at_byte: size },
    }
  }
  const parts: { file: string; from: number }[] = []
  if (before.data.file !== current) {
    // Rotated: the rest of the old file (while it is there), then the new one from its start.
    const old = await Deno.stat(before.data.file).catch(() => null)
    if (old && old.size > before.data.offset) {
      parts.push({ file: before.data.file, from: before.data.offset })
    }
    parts.push({ file: current, from: 0 })
  } else parts.push({ file: current, from: before.data.offset })

  const lines: LogLine[] = []
  let budget = config.max_bytes
  let cursor = { file: current, offset: before.data.offset }
  let truncated = false
  for (const part of parts) {
    const got = await readFrom(part.file, part.from, budget)
    if ('failure' in got) return fail(got.failure)
    const at = new Date().toISOString()
    for (const line of got.lines) lines.push({ at, line })
    budget -= got.consumed
    cursor = { file: part.file, offset: got.offset }
    if (got.more) {
      truncated = true
      break
    }
  }
  return {
    lines,
    cursor,
    measurements: { file: current, ...(truncated ? { truncated: true } : {}) },
  }
}

/** The file itself, or the newest regular file of a directory (a rotating log's current one). */
export async function newestFile(path: string): Promise<string> {
  const info = await Deno.stat(path)
  if (info.isFile) return path
  if (!info.isDirectory) throw new Error('not a file or directory')
  let best: { name: string; mtime: number } | null = null
  for await (const entry of Deno.readDir(path)) {
    if (!entry.isFile) continue
    const full = `${path.replace(/\/+$/, '')}/${entry.name}`
    const mtime = (await Deno.stat(full)).mtime?.getTime() ?? 0
    if (!best || mtime > best.mtime) best = { name: full, mtime }
  }
  if (!best) throw new Error('the directory holds no log file')
  return best.name
}

/**
 * Whole lines from byte `from`, at most `budget` bytes: a line still being written (no newline
 * yet) waits for the next check, unless it alone is over the budget. A file shorter than `from`
 * was truncated: it is read from its start. Bytes that are not UTF-8 become U+FFFD.
 */
async function readFrom(
  file: string,
  from: number,
  budget: number,
): Promise<
  { lines: string[]; offset: number; consumed: number; more: boolean } | { failure: string }
> {
  let handle: Deno.FsFile
  try {
    handle = await Deno.open(file, { read: true })
  } catch (e) {
    return { failure: `cannot open ${file}: ${(e as Error).message}` }
  }
  try {
    const size = (await handle.stat()).size
    const start = size < from ? 0 : from
    const want = Math.min(size - start, budget)
    if (want <= 0) return { lines: [], offset: start, consumed: 0, more: false }
    await handle.seek(start, Deno.SeekMode.Start)
    const buffer = new Uint8Array(want)
    let filled = 0
    while (filled < want) {
      const n = await handle.read(buffer.subarray(filled))
      if (n === null) break
      filled += n
    }
    const bytes = buffer.subarray(0, filled)
    let end = bytes.lastIndexOf(0x0a) + 1
    // One line longer than the whole budget is taken as it is, or the cursor would never move.
    if (end === 0 && filled === budget) end = filled
    const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, end))
    const lines = text.split('\n').filter((l) => l.trim() !== '').map((l) => l.slice(0, LINE_CHARS))
    return { lines, offset: start + end, consumed: end, more: start + end < size }
  } catch (e) {
    return { failure: `cannot read ${file}: ${(e as Error).message}` }
  } finally {
    handle.close()
  }
}

// ---- the Management API's logs endpoint ----

type ApiConfig = Extract<LogsConfig, { source: 'logs_api' }>

/** The logs endpoint's table source of each log Vigil reads. */
const API_SOURCES: Record<ApiConfig['log'], string[]> = {
  postgres: ['postgres_logs'],
  functions: ['function_logs', 'function_edge_logs'],
}

const ApiRow = z.object({
  id: z.union([z.string(), z.number()]).transform(String),
  timestamp: z.union([z.string(), z.number()]),
  event_message: z.string().nullable(),
})

async function readApi(
  config: ApiConfig,
  ctx: ProbeContext,
): Promise<Read | { failure: string; status: CheckStatus; measurements: Record<string, unknown> }> {
  const before = ApiCursor.safeParse(ctx.previous?.cursor)
  const now = new Date().toISOString()
  // The first check watches from now on; later ones from the newest row they saw.
  const after = before.success ? before.data.after : now
  const sources = API_SOURCES[config.log].map((s) => `'${s}'`).join(', ')
  const sql = `select id, timestamp, event_message from logs where source in (${sources}) ` +
    `order by timestamp asc limit ${config.max_rows}`
  const answer = await queryLogsApi(ctx, config, sql, after, now)
  const measurements = { attempts: answer.attempts }
  if ('failure' in answer) return { ...answer, measurements }
  const parsed = z.array(ApiRow).safeParse(answer.rows)
  if (!parsed.success) {
    return {
      failure: `logs endpoint answered rows without id, timestamp and event_message: ${
        clip(JSON.stringify(answer.rows[0] ?? null), 200)
      }`,
      status: 'down',
      measurements,
    }
  }
  const seen = new Set(before.success ? before.data.ids : [])
  const rows = parsed.data.map((r) => ({ ...r, at: isoOf(r.timestamp) }))
    .filter((r) => r.at !== null && !(r.at === after && seen.has(r.id)))
  const lines = rows.map((r) => ({ at: r.at!, line: (r.event_message ?? '').slice(0, LINE_CHARS) }))
  const newest = rows.reduce((m, r) => (r.at! > m ? r.at! : m), after)
  const ids = rows.filter((r) => r.at === newest).map((r) => r.id)
  return {
    lines,
    cursor: {
      after: newest,
      ids: newest === after ? [...seen, ...ids].slice(-1000) : ids.slice(-1000),
    },
    measurements: {
      ...measurements,
      ...(rows.length >= config.max_rows ? { truncated: true } : {}),
    },
  }
}
