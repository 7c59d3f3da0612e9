// performance_report (weekly): the last 7 days against the 7 before. Per watched service, the p50
// and p95 of its checks' response times; per service, the database metrics the probes record
// (query p95, connections, cache hit ratio, …); and the project database's statements from the
// daily pg_stat_statements snapshots: those whose mean time per call regressed (a query_regression
// recommendation each, resolved the week it is no longer regressed), new heavy ones, and the top by
// total time. Without two weeks of snapshots it says "not enough history yet" and invents nothing.
import type postgres from 'postgres'
import { z } from 'zod'
import { settingsFrom, share, type Values, wholeNumber } from '../settings.ts'
import {
  changePct,
  clearly,
  comparable,
  type Coverage,
  describeCoverage,
  ms,
  percent,
  projectDatabaseServices,
  requireStatStatements,
  round,
  shorten,
  signedPct,
  type StatementHistory,
  statementHistory,
  type StatementNumbers,
  syncActions,
  syncRecommendations,
} from '../history.ts'
import type { MaintenanceTask, TaskResult } from '../types.ts'

export const PERFORMANCE_SETTINGS = {
  /** A statement this many percent slower a call than the week before has regressed… */
  VIGIL_PERFORMANCE_REGRESSION_PCT: [percent, 50],
  /** …and at least this many ms slower a call (0.02 → 0.05 ms is noise, not a regression)… */
  VIGIL_PERFORMANCE_REGRESSION_MIN_MS: [
    [z.coerce.number().min(0).max(60_000), 'a number of ms from 0 to 60000'],
    1,
  ],
  /** …with at least this many calls in each week. */
  VIGIL_PERFORMANCE_MIN_CALLS: [wholeNumber(1), 100],
  /** A statement new this week taking this share of all statements' time is a new heavy one. */
  VIGIL_PERFORMANCE_NEW_HEAVY_SHARE: [share, 0.05],
  /** How many statements the top by total time lists. */
  VIGIL_PERFORMANCE_TOP: [wholeNumber(1, 50), 5],
  /** Latency and metrics within this many percent of the week before are steady. */
  VIGIL_PERFORMANCE_STEADY_PCT: [percent, 10],
  /** At most this many checks a service and week feed its percentiles (the latest first). */
  VIGIL_PERFORMANCE_MAX_CHECKS: [wholeNumber(1000, 1_000_000), 50_000],
} as const
export type PerformanceSettings = Values<typeof PERFORMANCE_SETTINGS>

const DAYS = 7

/** The metrics compared, and which way is worse. */
export const COMPARED_METRICS = {
  query_duration_p95: 'up',
  active_connections: 'up',
  connection_usage_percent: 'up',
  blocked_sessions: 'up',
  cache_hit_ratio: 'down',
  error_rate: 'up',
  cpu_usage_percent: 'up',
  memory_usage_percent: 'up',
} as const
type ComparedMetric = keyof typeof COMPARED_METRICS

type Verdict = 'slower' | 'faster' | 'steady' | 'new'

/** A statement in the findings: this week's numbers and the week before's (null: none then). */
interface StatementFinding {
  queryid: string
  /** At most 120 characters of the masked text. */
  query: string
  this: StatementNumbers
  before: StatementNumbers | null
}

export type PerformanceFinding =
  | {
    kind: 'latency'
    service: string
    checks: number
    p50_ms: number
    p95_ms: number
    checks_before: number
    p50_ms_before: number | null
    p95_ms_before: number | null
    p95_change_pct: number | null
    verdict: Verdict
    /** More checks than VIGIL_PERFORMANCE_MAX_CHECKS: the latest ones only. */
    sampled: boolean
  }
  | {
    kind: 'metric'
    service: string
    metric: ComparedMetric
    avg: number
    avg_before: number | null
    /** The week's highest (lowest for cache_hit_ratio). */
    worst: number
    worst_before: number | null
    change_pct: number | null
    verdict: 'worse' | 'better' | 'steady' | 'new'
  }
  | ({ kind: 'statement_history' } & Coverage & { comparable: boolean })
  | (
    & { kind: 'top_statement'; rank: number; share_of_time: number; change_pct: number | null }
    & StatementFinding
  )
  | ({ kind: 'regression'; change_pct: number; hints: string[] } & StatementFinding)
  | ({ kind: 'new_heavy'; share_of_time: number } & StatementFinding)

export const performanceReport: MaintenanceTask = {
  name: 'performance_report',
  cadence: 'weekly',
  description:
    'Compares the last 7 days with the 7 before: p50/p95 check response time per service, the probes\' database metrics (query p95, connections, cache hit ratio, …), and the project database\'s statements from the daily pg_stat_statements snapshots — those 50 % slower a call with 100+ calls each week (a query_regression recommendation, resolved when no longer regressed), new heavy ones and the top 5 by total time. Says "not enough history yet" rather than guess.',
  async run({ sql, env }): Promise<TaskResult> {
    const s = settingsFrom(env, PERFORMANCE_SETTINGS)
    await requireStatStatements(sql)
    const [{ at }] = await sql<{ at: Date }[]>`select now() as at`
    const latency = await latencyFindings(sql, at, s)
    const metrics = await metricFindings(sql, at, s)
    const { coverage, statements } = await statementHistory(sql, DAYS)
    const canCompare = comparable(coverage)
    const statementFindings = analyseStatements(statements, canCompare, s)
    const findings: PerformanceFinding[] = [
      ...latency,
      ...metrics,
      { kind: 'statement_history', ...coverage, comparable: canCompare },
      ...statementFindings,
    ]

    let actions: Record<string, string>[] = []
    let tracked = ''
    if (canCompare) {
      // Regressions are kept where people look for them: on the project database's services.
      const services = await projectDatabaseServices(sql)
      const regressions = statementFindings.filter((f) => f.kind === 'regression')
      const synced = await syncRecommendations(
        sql,
        'query_regression',
        services.flatMap((service) =>
          regressions.map((r) => regressionItem(service.id, r, coverage))
        ),
      )
      actions = syncActions('query_regression', synced)
      if (regressions.length > 0 && services.length === 0) {
        tracked =
          '; no postgres service watches the project database, so no recommendation was kept'
      } else if (synced.opened.length + synced.resolved.length > 0) {
        tracked =
          `; recommendations: ${synced.opened.length} opened, ${synced.resolved.length} resolved`
      }
    }
    return {
      status: 'succeeded',
      summary: summarise(findings, coverage, canCompare) + tracked,
      findings,
      actions,
    }
  },
}

async function latencyFindings(
  sql: postgres.Sql,
  at: Date,
  s: PerformanceSettings,
): Promise<PerformanceFinding[]> {
  // Per service and week through the (service_id, checked_at) index, the latest checks first.
  const rows = await clearly(() =>
    sql<
      { service: string; period: number; checks: number; p50: number; p95: number }[]
    >`
      select s.name as service, p.k as period, count(*)::int as checks,
             percentile_cont(0.5) within group (order by c.response_ms)::float8 as p50,
             percentile_cont(0.95) within group (order by c.response_ms)::float8 as p95
        from vigil.services s
       cross join (values (0), (1)) p(k)
       cross join lateral (
         select x.response_ms from vigil.checks x
          where x.service_id = s.id and x.response_ms is not null
            and x.checked_at >= ${at}::timestamptz - make_interval(days => ${DAYS} * (p.k + 1))
            and x.checked_at < ${at}::timestamptz - make_interval(days => ${DAYS} * p.k)
          order by x.checked_at desc
          limit ${s.VIGIL_PERFORMANCE_MAX_CHECKS}) c
       where s.enabled
       group by s.name, p.k
       order by s.name, p.k`
  )
  const findings: PerformanceFinding[] = []
  for (const r of rows.filter((r) => r.period === 0)) {
    const before = rows.find((b) => b.period === 1 && b.service === r.service)
    const change = changePct(r.p95, before?.p95 ?? null)
    findings.push({
      kind: 'latency',
      service: r.service,
      checks: r.checks,
      p50_ms: round(r.p50, 1),
      p95_ms: round(r.p95, 1),
      checks_before: before?.checks ?? 0,
      p50_ms_before: before ? round(before.p50, 1) : null,
      p95_ms_before: before ? round(before.p95, 1) : null,
      p95_change_pct: change,
      verdict: verdictOf(change, s.VIGIL_PERFORMANCE_STEADY_PCT, 'slower', 'faster'),
      sampled: r.checks >= s.VIGIL_PERFORMANCE_MAX_CHECKS ||
        (before?.checks ?? 0) >= s.VIGIL_PERFORMANCE_MAX_CHECKS,
    })
  }
  return findings
}

async function metricFindings(
  sql: postgres.Sql,
  at: Date,
  s: PerformanceSettings,
): Promise<PerformanceFinding[]> {
  const names = Object.keys(COMPARED_METRICS) as ComparedMetric[]
  const rows = await clearly(() =>
    sql<
      {
        service: string
        metric: ComparedMetric
        period: number
        avg: number
        hi: number
        lo: number
      }[]
    >`
      select s.name as service, m.metric, p.k as period, a.avg, a.hi, a.lo
        from vigil.services s
       cross join (select jsonb_array_elements_text(${
      JSON.stringify(names)
    }::text::jsonb) as metric) m
       cross join (values (0), (1)) p(k)
       cross join lateral (
         select avg(x.value)::float8 as avg, max(x.value)::float8 as hi, min(x.value)::float8 as lo,
                count(*) as n
           from vigil.metrics x
          where x.service_id = s.id and x.name::text = m.metric
            and x.recorded_at >= ${at}::timestamptz - make_interval(days => ${DAYS} * (p.k + 1))
            and x.recorded_at < ${at}::timestamptz - make_interval(days => ${DAYS} * p.k)) a
       where s.enabled and a.n > 0
       order by s.name, m.metric, p.k`
  )
  const findings: PerformanceFinding[] = []
  for (const r of rows.filter((r) => r.period === 0)) {
    const before = rows.find((b) =>
      b.period === 1 && b.service === r.service && b.metric === r.metric
    )
    const up = COMPARED_METRICS[r.metric] === 'up'
    const change = changePct(r.avg, before?.avg ?? null)
    const digits = r.metric === 'cache_hit_ratio' ? 4 : 2
    findings.push({
      kind: 'metric',
      service: r.service,
      metric: r.metric,
      avg: round(r.avg, digits),
      avg_before: before ? round(before.avg, digits) : null,
      worst: round(up ? r.hi : r.lo, digits),
      worst_before: before ? round(up ? before.hi : before.lo, digits) : null,
      change_pct: change,
      verdict: verdictOf(
        change === null ? null : up ? change : -change,
        s.VIGIL_PERFORMANCE_STEADY_PCT,
        'worse',
        'better',
      ),
    })
  }
  return findings
}

function verdictOf<W extends string, B extends string>(
  change: number | null,
  steadyPct: number,
  worse: W,
  better: B,
): W | B | 'steady' | 'new' {
  if (change === null) return 'new'
  if (change > steadyPct) return worse
  if (change < -steadyPct) return better
  return 'steady'
}

/** Regressions, new heavy statements and the top by total time (pure, so it is tested alone). */
export function analyseStatements(
  statements: StatementHistory[],
  canCompare: boolean,
  s: Pick<
    PerformanceSettings,
    | 'VIGIL_PERFORMANCE_REGRESSION_PCT'
    | 'VIGIL_PERFORMANCE_REGRESSION_MIN_MS'
    | 'VIGIL_PERFORMANCE_MIN_CALLS'
    | 'VIGIL_PERFORMANCE_NEW_HEAVY_SHARE'
    | 'VIGIL_PERFORMANCE_TOP'
  >,
): PerformanceFinding[] {
  const current = statements.filter((st): st is StatementHistory & { this: StatementNumbers } =>
    st.this !== null
  ).sort((a, b) => b.this.total_ms - a.this.total_ms || a.queryid.localeCompare(b.queryid))
  const totalMs = current.reduce((sum, st) => sum + st.this.total_ms, 0)
  const shareOf = (st: { this: StatementNumbers }) =>
    totalMs > 0 ? round(st.this.total_ms / totalMs, 4) : 0
  const base = (st: StatementHistory & { this: StatementNumbers }): StatementFinding => ({
    queryid: st.queryid,
    query: shorten(st.query, 120),
    this: st.this,
    before: canCompare ? st.before : null,
  })
  const findings: PerformanceFinding[] = current.slice(0, s.VIGIL_PERFORMANCE_TOP).map((
    st,
    i,
  ) => ({
    kind: 'top_statement',
    rank: i + 1,
    share_of_time: shareOf(st),
    change_pct: canCompare ? changePct(st.this.mean_ms, st.before?.mean_ms ?? null) : null,
    ...base(st),
  }))
  if (!canCompare) return findings

  for (const st of current) {
    const before = st.before
    if (
      before === null || st.this.calls < s.VIGIL_PERFORMANCE_MIN_CALLS ||
      before.calls < s.VIGIL_PERFORMANCE_MIN_CALLS
    ) continue
    const change = changePct(st.this.mean_ms, before.mean_ms)
    if (
      change === null || change <= s.VIGIL_PERFORMANCE_REGRESSION_PCT ||
      st.this.mean_ms - before.mean_ms < s.VIGIL_PERFORMANCE_REGRESSION_MIN_MS
    ) continue
    findings.push({
      kind: 'regression',
      change_pct: change,
      hints: hints(st.this, before),
      ...base(st),
    })
  }
  for (const st of current) {
    if (st.before !== null || shareOf(st) < s.VIGIL_PERFORMANCE_NEW_HEAVY_SHARE) continue
    findings.push({ kind: 'new_heavy', share_of_time: shareOf(st), ...base(st) })
  }
  return findings
}

/** Where to look first, from what changed besides the time. */
function hints(now: StatementNumbers, before: StatementNumbers): string[] {
  const found: string[] = []
  if (before.rows_per_call > 0 && now.rows_per_call > before.rows_per_call * 1.5) {
    found.push(
      `it returns ${round(now.rows_per_call / before.rows_per_call, 1)}× the rows a call ` +
        `(${before.rows_per_call} → ${now.rows_per_call}): more data or a wider filter`,
    )
  }
  if (
    now.cache_hit_share !== null && before.cache_hit_share !== null &&
    before.cache_hit_share - now.cache_hit_share >= 0.05
  ) {
    found.push(
      `more of its reads come from disk (cache hits ${pct(before.cache_hit_share)} → ${
        pct(now.cache_hit_share)
      }): the working set outgrew shared_buffers, or a plan now scans more`,
    )
  }
  if (found.length === 0) {
    found.push(
      'the same rows and cache hits a call: look at its plan (EXPLAIN) — a changed plan, an index no longer used, or lock waits',
    )
  }
  return found
}

const pct = (s: number) => `${round(s * 100, 1)} %`

function regressionItem(serviceId: string, r: PerformanceFinding, coverage: Coverage) {
  const f = r as Extract<PerformanceFinding, { kind: 'regression' }>
  return {
    service_id: serviceId,
    key: f.queryid,
    title:
      `Statement ${f.queryid} is ${signedPct(f.change_pct)} slower a call than the week before ` +
      `(${ms(f.before!.mean_ms)} → ${ms(f.this.mean_ms)} ms over ${
        f.this.calls.toLocaleString('en-US')
      } calls): ${shorten(f.query, 80)}`,
    detail: {
      queryid: f.queryid,
      query: f.query,
      change_pct: f.change_pct,
      this: f.this,
      before: f.before,
      hints: f.hints,
      week_ending: coverage.ends_on,
    },
  }
}

function summarise(
  findings: PerformanceFinding[],
  coverage: Coverage,
  canCompare: boolean,
): string {
  const latency = findings.filter((f) => f.kind === 'latency')
  const top = findings.filter((f) => f.kind === 'top_statement')
  const regressions = findings.filter((f) => f.kind === 'regression')
  const heavy = findings.filter((f) => f.kind === 'new_heavy')
  if (latency.length === 0 && top.length === 0) {
    return `not enough history yet: no checks with a response time in the last ${DAYS} days, and ${
      describeCoverage(coverage)
    }`
  }
  const parts: string[] = []
  if (latency.length > 0) {
    const moved = latency.filter((l) => l.verdict === 'slower' || l.verdict === 'faster')
      .sort((a, b) => Math.abs(b.p95_change_pct ?? 0) - Math.abs(a.p95_change_pct ?? 0))
    parts.push(
      moved.length === 0
        ? `check p95 steady on ${latency.length} service(s)`
        : `check p95 ${
          moved.slice(0, 3).map((l) =>
            `${l.service} ${ms(l.p95_ms_before!)} → ${ms(l.p95_ms)} ms (${l.verdict})`
          ).join(', ')
        }`,
    )
  }
  if (!canCompare) {
    parts.push(`statements: not enough history yet (${describeCoverage(coverage)})`)
  } else {
    parts.push(
      regressions.length === 0
        ? 'no statement regressed'
        : `${regressions.length} statement(s) regressed: ${
          regressions.slice(0, 3).map((r) =>
            `${shorten(r.query, 50)} ${ms(r.before!.mean_ms)} → ${ms(r.this.mean_ms)} ms (${
              signedPct(r.change_pct)
            })`
          ).join('; ')
        }`,
    )
    if (heavy.length > 0) parts.push(`${heavy.length} new heavy statement(s)`)
  }
  if (top.length > 0) {
    parts.push(
      `most time: ${shorten(top[0].query, 50)} (${round(top[0].share_of_time * 100, 1)} %)`,
    )
  }
  return parts.join('; ')
}
