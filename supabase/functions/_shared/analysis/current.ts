// The analysis as it stands, for a person asking "why is our API slow today?": for one service or
// the whole project, its anomalous series (with the baseline each was compared with), its
// forecasts, its open incidents, what Vigil recommends, the slowest statements the latest
// database check saw, and the latest daily slow-query report with its plan findings. Read from
// what the runs keep; nothing is measured here.
import type postgres from 'postgres'
import { METRIC_WORDS, shown } from './metrics.ts'
import type { MetricName } from '../../../../shared/kinds.ts'

export interface CurrentAnalysis {
  at: string
  service: string | null
  anomalies: {
    service: string
    metric: string
    labels: Record<string, string>
    value: number | null
    expected: number | null
    comparison_to_baseline: number | null
    hour_ago: number | null
    score: number | null
    since: string | null
  }[]
  forecasts: { service: string; metric: string; status: string; text: string }[]
  incidents: {
    id: number
    service: string
    kind: string
    severity: string
    title: string
    opened_at: string
  }[]
  /** Open incidents that started together on connected services, each story once, root first. */
  correlations: { root: number; related: number[]; hypothesis: string; text: string }[]
  recommendations: {
    service: string
    kind: string
    title: string
    detail: Record<string, unknown>
  }[]
  slowest_statements: { service: string; query: string; mean_ms: number; calls: number }[]
  /**
   * The latest daily slow-query report (slow_query_report): the slowest statements with what their
   * plans show and the fix; null when none has run.
   */
  slow_query_report: {
    at: string
    summary: string
    statements: { rank: number; query: string; mean_ms: number; calls: number; text: string }[]
  } | null
}

export class UnknownService extends Error {}

export async function currentAnalysis(
  sql: postgres.Sql,
  service: string | null,
): Promise<CurrentAnalysis> {
  if (service !== null) {
    const [known] = await sql`select 1 from vigil.services where name = ${service}`
    if (!known) throw new UnknownService(`no service is named ${JSON.stringify(service)}`)
  }
  const only = service
  const series = await sql<
    {
      service: string
      metric: MetricName
      labels: Record<string, string>
      value: number | null
      score: number | null
      baseline: Record<string, number | null> | null
      anomalous_since: Date | null
      last_anomalous_at: Date | null
      forecast: { status: string; text: string } | null
    }[]
  >`
    select v.name as service, m.metric::text as metric, m.labels, m.value, m.score, m.baseline,
           m.anomalous_since, m.last_anomalous_at, m.forecast
      from vigil.metric_series m join vigil.services v on v.id = m.service_id
     where v.enabled and (${only}::text is null or v.name = ${only})
     order by m.score desc nulls last, v.name, m.metric`
  const incidents = await sql<(CurrentAnalysis['incidents'][number] & { correlation: any })[]>`
    select i.id::int, v.name as service, i.kind, i.severity::text, i.title,
           to_json(i.opened_at) #>> '{}' as opened_at, i.detail -> 'correlation' as correlation
      from vigil.incidents i join vigil.services v on v.id = i.service_id
     where i.status = 'open' and (${only}::text is null or v.name = ${only})
     order by i.opened_at`
  const stories = new Map<number, CurrentAnalysis['correlations'][number]>()
  for (const i of incidents) {
    const c = i.correlation
    if (c && typeof c.root === 'number' && !stories.has(c.root)) {
      stories.set(c.root, {
        root: c.root,
        related: c.related,
        hypothesis: c.hypothesis,
        text: c.text,
      })
    }
  }
  const recommendations = await sql<CurrentAnalysis['recommendations']>`
    select v.name as service, r.kind, r.title, r.detail
      from vigil.recommendations r join vigil.services v on v.id = r.service_id
     where r.status = 'open' and (${only}::text is null or v.name = ${only})
     order by r.updated_at desc limit 50`
  // The latest check of each postgres service lists its slowest statements.
  const slowest = await sql<CurrentAnalysis['slowest_statements']>`
    select v.name as service, left(s ->> 'query', 500) as query, (s ->> 'mean_ms')::float8 as mean_ms,
           (s ->> 'calls')::float8 as calls
      from vigil.services v
      cross join lateral (select measurements from vigil.checks c where c.service_id = v.id
                           order by c.checked_at desc limit 1) c
      cross join lateral jsonb_array_elements(coalesce(c.measurements -> 'statements' -> 'slow_candidates',
                                                       '[]')) s
     where v.kind = 'postgres' and v.enabled and (${only}::text is null or v.name = ${only})
     order by (s ->> 'mean_ms')::float8 desc nulls last limit 10`
  // The daily slow-query report is about the project's own database: shown for the whole project
  // or for a service watching that database.
  const [report] = await sql<NonNullable<CurrentAnalysis['slow_query_report']>[]>`
    select to_json(m.finished_at) #>> '{}' as at, coalesce(m.summary, '') as summary,
           coalesce((select jsonb_agg(jsonb_build_object('rank', f -> 'rank', 'query', f -> 'query',
                                                         'mean_ms', f -> 'mean_ms', 'calls', f -> 'calls',
                                                         'text', f -> 'text'))
                       from jsonb_array_elements(m.findings) f
                      where f ->> 'kind' = 'slow_query'), '[]') as statements
      from vigil.maintenance_runs m
     where m.task = 'slow_query_report' and m.status = 'succeeded'
       and (${only}::text is null or exists (
             select from vigil.services v where v.name = ${only} and v.kind = 'postgres'
                and not (v.config ? 'connection_secret')))
     order by m.finished_at desc limit 1`
  const recent = (r: { anomalous_since: Date | null }) => r.anomalous_since !== null
  return {
    at: new Date().toISOString(),
    service,
    anomalies: series.filter(recent).map((r) => ({
      service: r.service,
      metric: r.metric,
      labels: r.labels,
      value: r.baseline?.value ?? r.value,
      expected: r.baseline?.expected ?? null,
      comparison_to_baseline: r.baseline?.ratio ?? null,
      hour_ago: r.baseline?.hourAgo ?? null,
      score: r.score,
      since: r.anomalous_since?.toISOString() ?? null,
    })),
    forecasts: series.filter((r) => r.forecast && r.forecast.status !== 'not_enough_data').map((
      r,
    ) => ({
      service: r.service,
      metric: r.metric,
      status: r.forecast!.status,
      text: r.forecast!.text,
    })),
    incidents: incidents.map(({ correlation: _, ...i }) => i),
    correlations: [...stories.values()],
    recommendations,
    slowest_statements: slowest,
    slow_query_report: report ?? null,
  }
}

/** The same, as Markdown a person reads in chat or a terminal. */
export function markdownOf(a: CurrentAnalysis): string {
  const lines = [`# Analysis${a.service ? ` of ${a.service}` : ''}, ${a.at.slice(0, 16)} UTC`, '']
  const section = (title: string, items: string[], none: string) => {
    lines.push(`## ${title}`, '', ...(items.length ? items.map((i) => `- ${i}`) : [none]), '')
  }
  section(
    'Anomalies',
    a.anomalies.map((x) => {
      const words = METRIC_WORDS[x.metric as MetricName]
      const value = x.value === null ? '?' : `${shown(x.value)}${words.unit}`
      const then = x.hour_ago !== null
        ? `was ${shown(x.hour_ago)}${words.unit} an hour ago`
        : x.expected !== null
        ? `expected ~${shown(x.expected)}${words.unit}`
        : 'unlike its history'
      const ratio = x.comparison_to_baseline !== null
        ? ` (comparison_to_baseline ${shown(x.comparison_to_baseline)})`
        : ''
      return `${x.service}: ${words.label} ${value}, ${then}${ratio}`
    }),
    'None: every series is within what its history says.',
  )
  section(
    'Forecasts',
    a.forecasts.map((f) => `${f.service}: ${f.text}`),
    'None yet: a forecast needs 30 minutes of points.',
  )
  section(
    'Open incidents',
    a.incidents.map((i) => `#${i.id} ${i.severity} ${i.kind}: ${i.title}`),
    'None.',
  )
  section(
    'Correlated incidents',
    a.correlations.map((c) => c.text),
    'None: no incidents started together on connected services.',
  )
  section(
    'Recommendations',
    a.recommendations.map((r) => `${r.service} (${r.kind}): ${r.title}`),
    'None.',
  )
  section(
    'Slowest statements',
    a.slowest_statements.map((s) =>
      `${s.service}: ${shown(s.mean_ms)} ms on average over ${shown(s.calls)} calls: \`${
        s.query.replace(/\s+/g, ' ').slice(0, 200)
      }\``
    ),
    'None read (pg_stat_statements missing, or no postgres service).',
  )
  const report = a.slow_query_report
  lines.push(
    `## Slow-query report${report ? ` (${report.at.slice(0, 16)} UTC)` : ''}`,
    '',
    report
      ? (report.statements.length
        ? report.statements.map((q) => q.text).join('\n')
        : report.summary)
      : 'Not made yet: the daily slow_query_report task makes it.',
    '',
  )
  return lines.join('\n').trimEnd() + '\n'
}
