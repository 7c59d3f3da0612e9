// error_patterns (weekly): what failed in the last 7 days against the 7 before. Check errors are
// grouped into patterns (numbers, ids, IPs, durations and quoted values as placeholders:
// vigil.error_pattern) and counted per service with their trend; incidents by kind; the services
// failing most; heal and alert outcomes. A service whose incidents of one kind opened 3 times or
// more in the week is a recurring problem: a recurring_incident recommendation, resolved the week
// it no longer recurs. vigil.error_trends does the grouping next to the data.
import { settingsFrom, wholeNumber } from '../settings.ts'
import {
  clearly,
  percent,
  shorten,
  syncActions,
  syncRecommendations,
  type Trend,
  trendOf,
} from '../history.ts'
import type { MaintenanceTask, TaskResult } from '../types.ts'

export const ERROR_PATTERNS_SETTINGS = {
  /** How many patterns, incident kinds and services the findings list. */
  VIGIL_ERROR_PATTERNS_TOP: [wholeNumber(1, 100), 10],
  /** Opened this many times in a week (same service and kind): a recurring incident. */
  VIGIL_ERROR_PATTERNS_RECURRING_MIN: [wholeNumber(2, 100), 3],
  /** A count within this many percent of the week before is steady. */
  VIGIL_ERROR_PATTERNS_STEADY_PCT: [percent, 20],
  /** At most this many failed checks a week are read (the latest first). */
  VIGIL_ERROR_PATTERNS_MAX_CHECKS: [wholeNumber(1000, 10_000_000), 100_000],
} as const

const DAYS = 7

interface Trends {
  period: { from: string; to: string; before_from: string; days: number }
  history_since: string | null
  checks: {
    total: number
    total_before: number
    failed: number
    failed_before: number
    with_error: number
    with_error_before: number
    sampled: boolean
  }
  /** Opened in the period, folded ones (a dependent's, folded into its root's) left out. */
  incidents: { opened: number; opened_before: number }
  patterns: PatternRow[]
  gone: PatternRow[]
  incident_kinds: { kind: string; count: number; count_before: number; services: string[] }[]
  services: {
    service: string
    failed_checks: number
    failed_checks_before: number
    incidents: number
    incidents_before: number
  }[]
  recurring: {
    service: string
    service_id: string
    kind: string
    count: number
    first_opened: string
    last_opened: string
    open_now: boolean
    healed: number
    mean_minutes_open: number
    latest_incident_id: number
    top_pattern: string | null
  }[]
  heals: { this: Record<string, number>; before: Record<string, number> }
  alerts: { this: Record<string, number>; before: Record<string, number> }
}

interface PatternRow {
  pattern: string
  service: string
  count: number
  count_before: number
  first_seen: string
  last_seen: string
}

/** The findings, each with its kind; the weekly report quotes them. */
export type ErrorPatternFinding =
  | ({ kind: 'pattern'; trend: Trend } & PatternRow)
  | {
    kind: 'incident_kind'
    incident_kind: string
    count: number
    count_before: number
    trend: Trend
    services: string[]
  }
  | {
    kind: 'service'
    service: string
    failed_checks: number
    failed_checks_before: number
    incidents: number
    incidents_before: number
    trend: Trend
  }
  | {
    kind: 'recurring'
    service: string
    incident_kind: string
    count: number
    first_opened: string
    last_opened: string
    open_now: boolean
    healed: number
    mean_minutes_open: number
    top_pattern: string | null
    recommendation_key: string
  }
  | {
    kind: 'outcomes'
    period: Trends['period']
    history_since: string | null
    checks: Trends['checks']
    incidents: Trends['incidents']
    heals: Trends['heals']
    alerts: Trends['alerts']
  }

export const errorPatterns: MaintenanceTask = {
  name: 'error_patterns',
  cadence: 'weekly',
  description:
    'Groups the last 7 days of check errors into patterns (numbers, ids, IPs, durations, quoted values as placeholders) per service with their trend against the 7 days before; incidents by kind, the services failing most, heal and alert outcomes; an incident kind opened 3 times or more in a week on one service is a recurring_incident recommendation, resolved when it stops recurring.',
  async run({ sql, env }): Promise<TaskResult> {
    const s = settingsFrom(env, ERROR_PATTERNS_SETTINGS)
    const trends = await clearly(async () =>
      (await sql<{ t: Trends }[]>`
        select vigil.error_trends(now(), ${DAYS}::int, ${s.VIGIL_ERROR_PATTERNS_TOP}::int,
                                  ${s.VIGIL_ERROR_PATTERNS_RECURRING_MIN}::int,
                                  ${s.VIGIL_ERROR_PATTERNS_MAX_CHECKS}::int) as t`)[0].t
    )
    const findings = errorFindings(trends, s.VIGIL_ERROR_PATTERNS_STEADY_PCT)

    // A week with no checks and no incidents tells nothing, not even that a recurrence ended.
    const empty = trends.checks.total + trends.checks.total_before === 0 &&
      trends.incidents.opened + trends.incidents.opened_before === 0
    if (empty) {
      return {
        status: 'succeeded',
        summary: `not enough history yet: no checks and no incidents in the last ${2 * DAYS} days`,
        findings,
      }
    }
    const synced = await syncRecommendations(
      sql,
      'recurring_incident',
      trends.recurring.map((r) => ({
        service_id: r.service_id,
        key: r.kind,
        incident_id: r.latest_incident_id,
        title: `${r.service}: ${r.kind} opened ${r.count} times in ${DAYS} days` +
          (r.healed > 0 ? ` (${r.healed} healed by Vigil)` : '') +
          ': a recurring problem — find and fix its cause rather than its symptoms',
        detail: {
          incident_kind: r.kind,
          count: r.count,
          first_opened: r.first_opened,
          last_opened: r.last_opened,
          open_now: r.open_now,
          healed: r.healed,
          mean_minutes_open: r.mean_minutes_open,
          top_pattern: r.top_pattern,
          week: { from: trends.period.from, to: trends.period.to },
        },
      })),
    )
    return {
      status: 'succeeded',
      summary: summarise(trends, findings, synced.opened.length, synced.resolved.length),
      findings,
      actions: syncActions('recurring_incident', synced),
    }
  },
}

/** The findings from vigil.error_trends' result (pure, so it is tested alone). */
export function errorFindings(t: Trends, steadyPct: number): ErrorPatternFinding[] {
  const trend = (n: number, before: number) => trendOf(n, before, steadyPct)
  return [
    ...t.patterns.map((p) => ({
      kind: 'pattern' as const,
      ...p,
      trend: trend(p.count, p.count_before),
    })),
    ...t.gone.map((p) => ({ kind: 'pattern' as const, ...p, trend: 'gone' as const })),
    ...t.incident_kinds.map((k) => ({
      kind: 'incident_kind' as const,
      incident_kind: k.kind,
      count: k.count,
      count_before: k.count_before,
      trend: trend(k.count, k.count_before),
      services: k.services,
    })),
    ...t.services.map((v) => ({
      kind: 'service' as const,
      ...v,
      trend: trend(v.failed_checks + v.incidents, v.failed_checks_before + v.incidents_before),
    })),
    ...t.recurring.map((r) => ({
      kind: 'recurring' as const,
      service: r.service,
      incident_kind: r.kind,
      count: r.count,
      first_opened: r.first_opened,
      last_opened: r.last_opened,
      open_now: r.open_now,
      healed: r.healed,
      mean_minutes_open: r.mean_minutes_open,
      top_pattern: r.top_pattern,
      recommendation_key: r.kind,
    })),
    {
      kind: 'outcomes',
      period: t.period,
      history_since: t.history_since,
      checks: t.checks,
      incidents: t.incidents,
      heals: t.heals,
      alerts: t.alerts,
    },
  ]
}

function summarise(
  t: Trends,
  findings: ErrorPatternFinding[],
  opened: number,
  resolved: number,
): string {
  const patterns = findings.filter((f) => f.kind === 'pattern')
  const current = patterns.filter((p) => p.trend !== 'gone')
  const parts = [
    `${t.checks.failed} failed checks in ${DAYS} days (${t.checks.failed_before} the ${DAYS} before)`,
  ]
  if (current.length === 0) parts.push('no error patterns')
  else {
    parts.push(
      `top error patterns: ${
        current.slice(0, 3).map((p) =>
          `"${shorten(p.pattern, 60)}" on ${p.service} × ${p.count} (${p.trend})`
        ).join(', ')
      }`,
    )
  }
  const count = (trend: Trend) => patterns.filter((p) => p.trend === trend).length
  if (count('new') + count('gone') > 0) {
    parts.push(`${count('new')} new, ${count('gone')} gone`)
  }
  parts.push(
    `${t.incidents.opened} incidents (${t.incidents.opened_before} before)` +
      (t.incident_kinds[0]?.count
        ? `, most ${t.incident_kinds[0].kind} × ${t.incident_kinds[0].count}`
        : ''),
  )
  if (t.recurring.length > 0) {
    parts.push(
      `recurring: ${t.recurring.map((r) => `${r.service} ${r.kind} × ${r.count}`).join(', ')}`,
    )
  }
  if (opened + resolved > 0) {
    parts.push(`recommendations: ${opened} opened, ${resolved} resolved`)
  }
  const notes = []
  if (t.checks.sampled) notes.push('the latest failed checks only: there were more than the limit')
  const start = t.history_since ? Date.parse(t.history_since) : null
  if (start !== null && start > Date.parse(t.period.before_from)) {
    notes.push(`history starts ${t.history_since!.slice(0, 10)}: the week before is partial`)
  }
  return parts.join('; ') + (notes.length > 0 ? ` (${notes.join('; ')})` : '')
}
