// Error analysis: when a service's errors pass its line, what a person asks first, answered from
// what Vigil already read. The spec's "Error Analysis": the top errors with their share (the
// service's own top_errors from the logs, and every Sentry project's top issues), the endpoints that
// fail, the dependency chain that explains them (a service this one depends on, directly or not,
// that is down or degraded: database down → API errors), a deploy that went live shortly before,
// and the suggested fix. It reads; it never acts. The heal engine puts it in the page it sends, and
// keeps it on the incident (detail.error_analysis) for the dashboard and the daily report.
import type postgres from 'postgres'
import { z } from 'zod'

/** A deploy this long before the errors began is named as a likely cause. */
export const DEPLOY_LOOKBACK_MINUTES = 60

const TopError = z.object({
  message: z.string(),
  share_pct: z.number(),
  lines: z.number().optional(),
  source: z.string().optional(),
})
const SentryIssue = z.object({ title: z.string(), share_pct: z.number(), events: z.number() })
const Endpoint = z.object({ endpoint: z.string(), server_errors: z.number(), requests: z.number() })
const Traffic = z.object({
  error_rate_pct: z.number().optional(),
  baseline_error_rate_pct: z.number().nullish(),
  requests: z.number().optional(),
  error_lines: z.number().optional(),
  top_errors: z.array(TopError).default([]),
  failing_endpoints: z.array(Endpoint).default([]),
})

export interface ErrorAnalysis {
  service: string
  error_rate_pct: number | null
  baseline_pct: number | null
  requests: number | null
  top_errors: { message: string; share_pct: number; from: string }[]
  endpoints: { endpoint: string; server_errors: number; requests: number }[]
  chain: { service: string; status: string; since: string | null; why: string | null }[]
  deploy: { service: string; deployment_id: string; version: string | null; at: string } | null
  suggestion: string
  text: string
}

/**
 * The analysis of a service's errors as its latest check and the others' stand; null when that
 * check carries no errors to analyse (no top errors and no failing endpoint).
 */
export async function analyseErrors(
  sql: postgres.Sql,
  serviceId: string,
): Promise<ErrorAnalysis | null> {
  const [own] = await sql<
    { name: string; environment: string; measurements: unknown; checked_at: Date }[]
  >`
    select s.name, s.environment::text as environment, c.measurements, c.checked_at
      from vigil.services s
      join lateral (select measurements, checked_at from vigil.checks
                     where service_id = s.id order by checked_at desc limit 1) c on true
     where s.id = ${serviceId}`
  if (!own) return null
  const traffic = Traffic.safeParse(own.measurements)
  if (!traffic.success) return null
  const t = traffic.data
  if (!t.top_errors.length && !t.failing_endpoints.length) return null

  // Every Sentry project of the environment: its top issues, as its latest check (of the last hour)
  // read them.
  const sentry = await sql<{ name: string; issues: unknown }[]>`
    select s.name, c.measurements -> 'top_issues' as issues
      from vigil.services s
      join lateral (select measurements, checked_at from vigil.checks
                     where service_id = s.id order by checked_at desc limit 1) c on true
      join lateral (select 1 where c.checked_at > now() - interval '1 hour') fresh on true
     where s.kind = 'sentry' and s.environment::text = ${own.environment}`
  const fromSentry = sentry.flatMap((s) => {
    const issues = z.array(SentryIssue).safeParse(s.issues)
    return issues.success
      ? issues.data.slice(0, 3).map((i) => ({
        message: i.title,
        share_pct: i.share_pct,
        from: `Sentry ${s.name}`,
      }))
      : []
  })
  const topErrors = [
    ...t.top_errors.slice(0, 5).map((e) => ({
      message: e.message,
      share_pct: e.share_pct,
      from: e.source ? `logs (${e.source})` : 'logs',
    })),
    ...fromSentry,
  ]

  // Upstream, directly or not, and not well: the likely root first (the deepest).
  const chain = await sql<
    { service: string; status: string; since: string | null; why: string | null }[]
  >`
    with recursive up (name, depth) as (
      select unnest(depends_on), 1 from vigil.services where id = ${serviceId}
      union
      select unnest(s.depends_on), up.depth + 1
        from up join vigil.services s on s.name = up.name
       where up.depth < 10
    )
    select s.name as service, s.status::text as status,
           to_json(i.opened_at) #>> '{}' as since, coalesce(c.error, i.title) as why
      from (select name, max(depth) as depth from up group by name) u
      join vigil.services s on s.name = u.name
      left join lateral (select opened_at, title from vigil.incidents
                          where service_id = s.id and status = 'open'
                          order by opened_at limit 1) i on true
      left join lateral (select error from vigil.checks
                          where service_id = s.id order by checked_at desc limit 1) c on true
     where s.status in ('down', 'degraded')
     order by u.depth desc, s.name`

  const [deploy] = await sql<
    { service: string; deployment_id: string; version: string | null; at: string }[]
  >`
    select s.name as service, d.deployment_id, d.version, to_json(d.finished_at) #>> '{}' as at
      from vigil.deployments d join vigil.services s on s.id = d.service_id
     where s.environment::text = ${own.environment}
       and d.finished_at between ${own.checked_at}::timestamptz - make_interval(mins => ${DEPLOY_LOOKBACK_MINUTES})
                             and ${own.checked_at}::timestamptz
     order by d.finished_at desc limit 1`

  const analysis: Omit<ErrorAnalysis, 'text'> = {
    service: own.name,
    error_rate_pct: t.error_rate_pct ?? null,
    baseline_pct: t.baseline_error_rate_pct ?? null,
    requests: t.requests ?? null,
    top_errors: topErrors,
    endpoints: t.failing_endpoints.slice(0, 5),
    chain: chain.map((c) => ({ ...c, why: c.why ? c.why.slice(0, 200) : null })),
    deploy: deploy ?? null,
    suggestion: suggestFix(topErrors[0]?.message ?? '', chain.length > 0, deploy ?? null),
  }
  return { ...analysis, text: errorAnalysisText(analysis) }
}

/** The fix a person would try first, from the top error's words, the chain and a recent deploy. */
export function suggestFix(
  topError: string,
  upstreamFailing: boolean,
  deploy: { deployment_id: string; version: string | null } | null,
): string {
  const rules: [RegExp, string][] = [
    [
      /connection refused|could not connect|connection (?:reset|terminated)|too many (?:clients|connections)|remaining connection slots/i,
      'the database is refusing connections: see to the database first (is it up? is its pool full? kill idle connections or raise the pool), then the errors stop on their own',
    ],
    [
      /timeout|timed out|canceling statement|deadline/i,
      'requests run out of time: look at the slowest statements (the slow-query report) and at locks held by long transactions',
    ],
    [
      /row-level security|permission denied|not authorized|jwt/i,
      'the app is refused by a permission or row-level security policy: compare the policies and grants with the last migration',
    ],
    [
      /out of memory|memory limit|heap|oom/i,
      'a process runs out of memory: restart it, then look for what grows (the memory forecast shows the trend)',
    ],
    [
      /undefined|null|cannot read propert|is not a function|typeerror/i,
      'a code error in the app: its stack trace is in the function logs or Sentry',
    ],
  ]
  const byWords = rules.find(([re]) => re.test(topError))?.[1]
  const parts: string[] = []
  if (upstreamFailing && !byWords?.startsWith('the database')) {
    parts.push('fix the failing service upstream first: these errors follow from it')
  }
  if (deploy) {
    parts.push(
      `a deploy (${
        deploy.version ?? deploy.deployment_id
      }) went live just before: roll it back if the errors began with it`,
    )
  }
  parts.push(byWords ?? 'read the top error in the logs; nothing Vigil knows explains it yet')
  return parts.join('; ')
}

/** The analysis in words: the block a page and the report show. */
export function errorAnalysisText(a: Omit<ErrorAnalysis, 'text'>): string {
  const lines: string[] = []
  const rate = a.error_rate_pct !== null
    ? `errors on ${a.error_rate_pct} % of ${a.requests ?? '?'} requests${
      a.baseline_pct !== null ? ` (baseline ${a.baseline_pct} %)` : ''
    }`
    : 'errors'
  lines.push(`Error analysis of ${a.service}: ${rate}.`)
  if (a.top_errors.length) {
    lines.push(
      `Top errors: ${
        a.top_errors.map((e) => `${e.message} — ${e.share_pct} % (${e.from})`).join('; ')
      }.`,
    )
  }
  if (a.endpoints.length) {
    lines.push(
      `Affected endpoints: ${
        a.endpoints.map((e) => `${e.endpoint} (${e.server_errors} of ${e.requests} failed)`).join(
          '; ',
        )
      }.`,
    )
  }
  if (a.chain.length) {
    lines.push(
      `Dependency chain: ${
        a.chain.map((c) =>
          `${c.service} ${c.status}${c.since ? ` since ${c.since.slice(11, 16)} UTC` : ''}`
        )
          .join(' → ')
      } → ${a.service} errors.`,
    )
  }
  if (a.deploy) {
    lines.push(
      `Deploy: ${a.deploy.version ?? a.deploy.deployment_id} on ${a.deploy.service} at ${
        a.deploy.at.slice(11, 16)
      } UTC.`,
    )
  }
  lines.push(`Suggested fix: ${a.suggestion}.`)
  return lines.join('\n')
}
