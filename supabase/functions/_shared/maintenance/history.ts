// What the weekly and monthly analyses (error_patterns, performance_report, statement_benchmark)
// share: comparing a period with the one before (trends, changes), reading the project database's
// statements per period from the daily snapshots (vigil.statement_periods), how much of each period
// the snapshots cover, and turning a missing table, function or extension into a clear TaskError.
import type postgres from 'postgres'
import { z } from 'zod'
import type { Rule } from './settings.ts'
import { TaskError } from './types.ts'

/** A percentage (of change): "50" is 50 %. */
export const percent: Rule<number> = [
  z.coerce.number().min(0).max(10_000),
  'a percentage from 0 to 10000',
]

export type Trend = 'new' | 'rising' | 'steady' | 'falling' | 'gone'

/** A count against the period before: within ±steadyPct % it is steady. */
export function trendOf(count: number, before: number, steadyPct: number): Trend {
  if (before === 0) return count === 0 ? 'steady' : 'new'
  if (count === 0) return 'gone'
  if (count > before * (1 + steadyPct / 100)) return 'rising'
  if (count < before * (1 - steadyPct / 100)) return 'falling'
  return 'steady'
}

/** The change from `before` to `now` in percent, one decimal; null without a before. */
export function changePct(now: number | null, before: number | null): number | null {
  if (now === null || before === null || before === 0) return null
  return round(((now - before) / before) * 100, 1)
}

export function round(n: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

/** One line of at most `max` characters. */
export function shorten(text: string, max: number): string {
  const one = text.replace(/\s+/g, ' ').trim()
  return one.length > max ? `${one.slice(0, max - 1)}…` : one
}

/** A duration in ms for people: "0.42", "12.5", "1,204". */
export function ms(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n >= 10 ? n.toFixed(1) : n.toFixed(2)
}

/** "+150 %", "-12.5 %". */
export function signedPct(pct: number): string {
  return `${pct > 0 ? '+' : ''}${pct} %`
}

/**
 * Runs `work`; a table, function, schema or extension that is missing becomes a TaskError naming
 * it (the runner records it and the other tasks run on). Other errors pass as they are.
 */
export async function clearly<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    const e = error as { code?: string; message?: string }
    if (e?.code === '42P01' || e?.code === '42883' || e?.code === '3F000') {
      throw new TaskError(
        `${
          e.message ?? 'an object it reads is missing'
        } (SQLSTATE ${e.code}): are the migrations applied?`,
      )
    }
    throw error
  }
}

/** The statement analyses read pg_stat_statements' snapshots: without the extension there are none. */
export async function requireStatStatements(sql: postgres.Sql): Promise<void> {
  const [{ installed }] = await sql<{ installed: boolean }[]>`
    select exists (select from pg_extension where extname = 'pg_stat_statements') as installed`
  if (!installed) {
    throw new TaskError(
      'pg_stat_statements is not installed in this database: there are no statement statistics to compare ' +
        '(create extension pg_stat_statements with schema extensions, and load it in shared_preload_libraries)',
    )
  }
}

/** One statement's numbers over one period. */
export interface StatementNumbers {
  calls: number
  total_ms: number
  mean_ms: number
  calls_per_day: number
  rows_per_call: number
  /** Of the shared blocks it read, the share found in the buffer cache; null when it read none. */
  cache_hit_share: number | null
  /** Counter resets (pg_stat_statements_reset, an evicted entry) in the period: what ran before each is not counted. */
  resets: number
}

export interface StatementHistory {
  queryid: string
  /** As the snapshots keep it: constants are placeholders and quoted strings masked. */
  query: string
  this: StatementNumbers | null
  before: StatementNumbers | null
}

/** How much of the two periods the daily snapshots cover: a day counts once two snapshots span it. */
export interface Coverage {
  period_days: number
  /** The last day of the latest period (today, UTC). */
  ends_on: string
  snapshot_days: number
  first_on: string | null
  last_on: string | null
  covered_days: number
  covered_days_before: number
}

const DAY_MS = 86_400_000
const dayNumber = (iso: string) => Math.round(Date.parse(`${iso}T00:00:00Z`) / DAY_MS)

/** Days of (lo, hi] spanned by consecutive snapshot days. */
export function coveredDays(days: string[], lo: number, hi: number): number {
  const sorted = days.map(dayNumber).sort((a, b) => a - b)
  let covered = 0
  for (let i = 1; i < sorted.length; i++) {
    covered += Math.max(0, Math.min(sorted[i], hi) - Math.max(sorted[i - 1], lo))
  }
  return covered
}

/** Enough to compare: snapshots span some of both periods. */
export function comparable(c: Coverage): boolean {
  return c.covered_days > 0 && c.covered_days_before > 0
}

export function describeCoverage(c: Coverage): string {
  return `statement snapshots cover ${c.covered_days} of the last ${c.period_days} days and ` +
    `${c.covered_days_before} of the ${c.period_days} before`
}

interface PeriodRow {
  period: number
  queryid: string
  query: string
  calls: number
  total_exec_ms: number
  rows: number
  shared_blks_hit: number
  shared_blks_read: number
  resets: number
}

/**
 * The project database's statements over the last `days` days (ending today, UTC) and the `days`
 * before, from vigil.statement_periods, with how much of each period the snapshots cover.
 */
export async function statementHistory(
  sql: postgres.Sql,
  days: number,
): Promise<{ coverage: Coverage; statements: StatementHistory[] }> {
  return await clearly(async () => {
    const [{ today }] = await sql<{ today: string }[]>`
      select (now() at time zone 'utc')::date::text as today`
    const snapshotDays = (await sql<{ day: string }[]>`
      select distinct s.taken_on::text as day from vigil.statement_snapshots s
       where s.dbid = (select oid from pg_database where datname = current_database())
         and s.taken_on <= ${today}::date
       order by 1`).map((r) => r.day)
    const end = dayNumber(today)
    const coverage: Coverage = {
      period_days: days,
      ends_on: today,
      snapshot_days: snapshotDays.length,
      first_on: snapshotDays[0] ?? null,
      last_on: snapshotDays.at(-1) ?? null,
      covered_days: coveredDays(snapshotDays, end - days, end),
      covered_days_before: coveredDays(snapshotDays, end - 2 * days, end - days),
    }
    const rows = await sql<PeriodRow[]>`
      select period, queryid::text as queryid, query, calls, total_exec_ms, rows, shared_blks_hit,
             shared_blks_read, resets
        from vigil.statement_periods(${today}::date, ${days}::int, 2)`
    const byQuery = new Map<string, StatementHistory>()
    for (const r of rows) {
      const s = byQuery.get(r.queryid) ??
        { queryid: r.queryid, query: r.query, this: null, before: null }
      const covered = r.period === 0 ? coverage.covered_days : coverage.covered_days_before
      const numbers: StatementNumbers = {
        calls: Math.round(r.calls),
        total_ms: round(r.total_exec_ms, 1),
        mean_ms: round(r.total_exec_ms / r.calls, 3),
        calls_per_day: round(r.calls / Math.max(covered, 1), 1),
        rows_per_call: round(r.rows / r.calls, 2),
        cache_hit_share: r.shared_blks_hit + r.shared_blks_read > 0
          ? round(r.shared_blks_hit / (r.shared_blks_hit + r.shared_blks_read), 4)
          : null,
        resets: r.resets,
      }
      if (r.period === 0) s.this = numbers
      else s.before = numbers
      byQuery.set(r.queryid, s)
    }
    return { coverage, statements: [...byQuery.values()] }
  })
}

/** The project database's own postgres services (no connection_secret): recommendations go there. */
export async function projectDatabaseServices(
  sql: postgres.Sql,
): Promise<{ id: string; name: string }[]> {
  return await sql<{ id: string; name: string }[]>`
    select id, name from vigil.services
     where kind = 'postgres' and enabled and not (config ? 'connection_secret')
     order by name`
}

export interface Synced {
  opened: { service_id: string; service: string; key: string; title: string }[]
  updated: number
  unchanged: number
  resolved: { service_id: string; service: string; key: string; title: string }[]
}

export interface RecommendationItem {
  service_id: string
  key: string
  title: string
  detail: Record<string, unknown>
  incident_id?: number | null
}

/** The open recommendations of `kind` made to match `items` (vigil.sync_recommendations). */
export async function syncRecommendations(
  sql: postgres.Sql,
  kind: string,
  items: RecommendationItem[],
): Promise<Synced> {
  return await clearly(async () => {
    const [{ synced }] = await sql<{ synced: Synced }[]>`
      select vigil.sync_recommendations(${kind}, ${sql.json(items as never)}) as synced`
    return synced
  })
}

/** The maintenance actions of a sync: each recommendation opened or resolved. */
export function syncActions(kind: string, synced: Synced): Record<string, string>[] {
  return [
    ...synced.opened.map((r) => ({
      action: 'recommendation_opened',
      kind,
      service: r.service,
      key: r.key,
      title: r.title,
    })),
    ...synced.resolved.map((r) => ({
      action: 'recommendation_resolved',
      kind,
      service: r.service,
      key: r.key,
      title: r.title,
    })),
  ]
}
