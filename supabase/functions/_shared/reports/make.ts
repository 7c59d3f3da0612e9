// Making the reports that are due: each period is claimed in SQL (vigil.claim_report, so however
// many workers ask, one makes it), its facts read (vigil.report_facts), rendered here, then stored
// and queued for the report contacts in one transaction (vigil.finish_report). A failure is
// recorded on the report with its reason (vigil.fail_report) and tried again at the next run.
import type postgres from 'postgres'
import { z } from 'zod'
import { redact } from '../probes/types.ts'
import { ReportFacts, type ReportKind } from './facts.ts'
import { type RenderOptions, reportDocument, reportHtml, reportText } from './render.ts'

export interface MakeRequest {
  /** A given period instead of what is due: the day (daily) or the 7 days from `date` (weekly). */
  kind?: ReportKind
  date?: string
  /** Make it again even when it was made (it goes only to contacts it has not reached). */
  again?: boolean
}

export interface Made {
  kind: ReportKind
  period_start: string
  id?: number
  /** Contacts it was queued for. */
  recipients?: number
  summary?: string
  /** Why it was not made now (another worker has it; it is made already). */
  skipped?: string
  error?: string
}

/** A request that cannot be met, in words naming the field; answered 400/422, never retried. */
export class ReportRequestError extends Error {
  override name = 'ReportRequestError'
}

interface Period {
  kind: ReportKind
  period_start: string
  period_end: string
  time_zone: string
}

const Due = z.object({
  kind: z.enum(['daily', 'weekly']),
  period_start: z.string(),
  period_end: z.string(),
  time_zone: z.string(),
})

export async function makeReports(
  sql: postgres.Sql,
  request: MakeRequest,
  options: { worker: string; render?: RenderOptions; secrets?: string[] },
): Promise<Made[]> {
  const periods = request.kind ? [await asked(sql, request.kind, request.date)] : await due(sql)
  const made: Made[] = []
  for (const period of periods) made.push(await makeOne(sql, period, request, options))
  return made
}

async function due(sql: postgres.Sql): Promise<Period[]> {
  try {
    const rows = await sql<{ due: unknown }[]>`select vigil.due_reports() as due`
    return rows.map((r) => Due.parse(r.due))
  } catch (error) {
    // 22023: the stored time zone is gone (a tzdata update); the message names it.
    if ((error as { code?: string }).code === '22023') {
      throw new ReportRequestError((error as Error).message)
    }
    throw error
  }
}

/** The period asked for: it must have ended in the report's time zone. */
async function asked(sql: postgres.Sql, kind: ReportKind, date?: string): Promise<Period> {
  const days = kind === 'daily' ? 1 : 7
  const [row] = await sql<
    { time_zone: string; start: string; end: string; ended: boolean; yesterday: string }[]
  >`
    with s as (select time_zone, (now() at time zone time_zone)::date as today from vigil.report_settings),
         p as (select time_zone, today, coalesce(${
    date ?? null
  }::date, today - ${days}::int) as start from s)
    select time_zone, start::text as start, (start + ${days}::int)::text as end,
           start + ${days}::int <= today as ended, (today - 1)::text as yesterday
      from p`
  if (!row) throw new ReportRequestError('vigil.report_settings has no row')
  if (!row.ended) {
    throw new ReportRequestError(
      `date: the ${kind} period from ${row.start} has not ended yet in ${row.time_zone} (the latest full day is ${row.yesterday})`,
    )
  }
  return { kind, period_start: row.start, period_end: row.end, time_zone: row.time_zone }
}

async function makeOne(
  sql: postgres.Sql,
  period: Period,
  request: MakeRequest,
  options: { worker: string; render?: RenderOptions; secrets?: string[] },
): Promise<Made> {
  const base = { kind: period.kind, period_start: period.period_start }
  const [claim] = await sql<{ id: number | null }[]>`
    select vigil.claim_report(${period.kind}, ${period.period_start}::date, ${period.period_end}::date,
                              ${period.time_zone}, ${options.worker}, ${
    request.again ?? false
  })::int as id`
  if (!claim?.id) {
    return { ...base, skipped: 'made already, or being made by another worker' }
  }
  const id = claim.id
  try {
    const [row] = await sql<{ facts: unknown }[]>`
      select vigil.report_facts(r.kind, r.from_at, r.to_at) as facts from vigil.reports r where r.id = ${id}`
    const stored = (row?.facts ?? {}) as Record<string, unknown>
    const parsed = ReportFacts.safeParse({
      ...stored,
      // The analysis' forecasts (memory, connections, XID age) beside the monthly capacity ones.
      forecasts: [
        ...(Array.isArray(stored.forecasts) ? stored.forecasts : []),
        ...await analysisForecasts(sql),
      ],
      slow_queries: await slowQueriesOf(sql, id),
      deployments: await deploymentsOf(sql, id),
      error_analyses: await errorAnalysesOf(sql, id),
    })
    if (!parsed.success) {
      const fields = parsed.error.issues.slice(0, 5).map((i) => i.path.join('.') || 'facts')
      throw new Error(`the report's facts did not have the expected shape (${fields.join(', ')})`)
    }
    const facts = parsed.data
    // A zone Postgres knows and this runtime's ICU does not: times are shown in UTC, said so.
    if (!zoneKnown(facts.period.time_zone)) facts.period.time_zone = 'UTC'
    const doc = reportDocument(facts, options.render)
    const text = reportText(doc)
    const html = reportHtml(doc)
    const [done] = await sql<{ recipients: number }[]>`
      select vigil.finish_report(${id}, ${options.worker}, ${sql.json(facts as postgres.JSONValue)},
                                 ${doc.summary}, ${text}, ${html}) as recipients`
    return { ...base, id, recipients: done.recipients, summary: doc.summary }
  } catch (error) {
    const reason = reasonOf(error, options.secrets ?? [])
    await sql`select vigil.fail_report(${id}, ${options.worker}, ${reason})`.catch(() => {})
    return { ...base, id, error: reason }
  }
}

/** The deployments that finished in the report's period, summarised, oldest first. */
async function deploymentsOf(sql: postgres.Sql, reportId: number): Promise<unknown[]> {
  return [
    ...await sql`
    select s.name as service, d.deployment_id, d.verdict, d.summary_text as summary
      from vigil.reports r
      join vigil.deployments d on d.finished_at >= r.from_at and d.finished_at < r.to_at
      join vigil.services s on s.id = d.service_id
     where r.id = ${reportId} and d.summarized_at is not null
     order by d.finished_at limit 20`,
  ]
}

/** The error analyses of the incidents opened in the report's period, oldest first. */
async function errorAnalysesOf(sql: postgres.Sql, reportId: number): Promise<unknown[]> {
  return [
    ...await sql`
    select s.name as service, to_json(i.opened_at) #>> '{}' as opened_at,
           i.detail -> 'error_analysis' ->> 'text' as text
      from vigil.reports r
      join vigil.incidents i on i.opened_at >= r.from_at and i.opened_at < r.to_at
      join vigil.services s on s.id = i.service_id
     where r.id = ${reportId} and i.detail -> 'error_analysis' ->> 'text' is not null
     order by i.opened_at limit 10`,
  ]
}

/** The open forecast incidents of the analysis (analysis/run.ts), soonest opened first. */
async function analysisForecasts(sql: postgres.Sql): Promise<unknown[]> {
  return [
    ...await sql`
    select s.name as service, i.title, to_json(i.opened_at) #>> '{}' as since
      from vigil.incidents i join vigil.services s on s.id = i.service_id
     where i.kind = 'forecast' and i.status = 'open'
     order by i.opened_at`,
  ]
}

/**
 * The latest slow-query report that ended in the report's period (the daily maintenance run of
 * slow_query_report), as its findings list the statements; null when none ran or it found none.
 */
async function slowQueriesOf(sql: postgres.Sql, reportId: number): Promise<unknown> {
  const [run] = await sql<
    { at: string; summary: string; statements: unknown; n_plus_one: unknown }[]
  >`
    select to_json(m.finished_at) #>> '{}' as at, coalesce(m.summary, '') as summary,
           coalesce((select jsonb_agg(f) from jsonb_array_elements(m.findings) f
                      where f ->> 'kind' = 'slow_query'), '[]') as statements,
           coalesce((select jsonb_agg(f) from jsonb_array_elements(m.findings) f
                      where f ->> 'kind' = 'n_plus_one'), '[]') as n_plus_one
      from vigil.reports r
      join vigil.maintenance_runs m
        on m.task = 'slow_query_report' and m.status = 'succeeded'
       and m.finished_at >= r.from_at and m.finished_at < r.to_at
     where r.id = ${reportId}
     order by m.finished_at desc limit 1`
  return run
    ? { at: run.at, summary: run.summary, statements: run.statements, n_plus_one: run.n_plus_one }
    : null
}

function zoneKnown(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone })
    return true
  } catch {
    return false
  }
}

function reasonOf(error: unknown, secrets: string[]): string {
  const e = error as { code?: string; message?: string }
  const text = e?.code ? `${e.code}: ${e.message ?? ''}` : String(e?.message ?? error)
  return redact(text, secrets).slice(0, 500)
}
