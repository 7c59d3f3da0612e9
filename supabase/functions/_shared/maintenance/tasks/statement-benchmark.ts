// statement_benchmark (monthly): how the project's own top statements perform this month against
// the month before, measured without running any of them (Vigil never executes the app's queries
// or functions). The numbers come from the daily pg_stat_statements snapshots: the difference of
// each statement's cumulative counters between two snapshots, a reset (a counter that went down)
// counting the later value alone, summed over 30 days (vigil.statement_periods).
import { settingsFrom, wholeNumber } from '../settings.ts'
import {
  changePct,
  comparable,
  type Coverage,
  describeCoverage,
  ms,
  percent,
  requireStatStatements,
  shorten,
  signedPct,
  type StatementHistory,
  statementHistory,
  type StatementNumbers,
} from '../history.ts'
import type { MaintenanceTask, TaskResult } from '../types.ts'

export const BENCHMARK_SETTINGS = {
  /** How many statements, by total time this month. */
  VIGIL_BENCHMARK_TOP: [wholeNumber(1, 50), 10],
  /** A mean time per call within this many percent of the month before is steady. */
  VIGIL_BENCHMARK_STEADY_PCT: [percent, 10],
} as const

const DAYS = 30

export type BenchmarkVerdict = 'faster' | 'slower' | 'steady' | 'new'

export type BenchmarkFinding =
  | ({ kind: 'statement_history' } & Coverage & { comparable: boolean })
  | {
    kind: 'statement'
    rank: number
    queryid: string
    /** At most 120 characters of the masked text. */
    query: string
    verdict: BenchmarkVerdict
    /** Of the mean time per call; null when new. */
    change_pct: number | null
    this: StatementNumbers
    before: StatementNumbers | null
  }

export const statementBenchmark: MaintenanceTask = {
  name: 'statement_benchmark',
  cadence: 'monthly',
  description:
    "Benchmarks the project's top 10 statements by total time without running any (Vigil never executes app queries): from the daily pg_stat_statements snapshots, the differences of each statement's cumulative counters between snapshots (a counter that went down is a reset: the later value counts alone, never a negative difference), summed over the last 30 days and the 30 before — mean time per call, calls a day, rows per call, cache hit share — with a verdict each: faster or slower (beyond ±10 % a call), steady, or new.",
  async run({ sql, env }): Promise<TaskResult> {
    const s = settingsFrom(env, BENCHMARK_SETTINGS)
    await requireStatStatements(sql)
    const { coverage, statements } = await statementHistory(sql, DAYS)
    const canCompare = comparable(coverage)
    const history: BenchmarkFinding = {
      kind: 'statement_history',
      ...coverage,
      comparable: canCompare,
    }
    if (!canCompare) {
      return {
        status: 'succeeded',
        summary: `not enough history yet: ${describeCoverage(coverage)}; the benchmark needs both`,
        findings: [history],
      }
    }
    const rows = benchmark(statements, s.VIGIL_BENCHMARK_TOP, s.VIGIL_BENCHMARK_STEADY_PCT)
    return { status: 'succeeded', summary: summarise(rows), findings: [history, ...rows] }
  },
}

/** The top statements by total time this month, each with its verdict (pure, so it is tested alone). */
export function benchmark(
  statements: StatementHistory[],
  top: number,
  steadyPct: number,
): Extract<BenchmarkFinding, { kind: 'statement' }>[] {
  return statements
    .filter((st): st is StatementHistory & { this: StatementNumbers } => st.this !== null)
    .sort((a, b) => b.this.total_ms - a.this.total_ms || a.queryid.localeCompare(b.queryid))
    .slice(0, top)
    .map((st, i) => {
      const change = changePct(st.this.mean_ms, st.before?.mean_ms ?? null)
      const verdict: BenchmarkVerdict = change === null
        ? 'new'
        : change > steadyPct
        ? 'slower'
        : change < -steadyPct
        ? 'faster'
        : 'steady'
      return {
        kind: 'statement' as const,
        rank: i + 1,
        queryid: st.queryid,
        query: shorten(st.query, 120),
        verdict,
        change_pct: change,
        this: st.this,
        before: st.before,
      }
    })
}

function summarise(rows: Extract<BenchmarkFinding, { kind: 'statement' }>[]): string {
  if (rows.length === 0) return `no statement ran in the last ${DAYS} days`
  const count = (v: BenchmarkVerdict) => rows.filter((r) => r.verdict === v).length
  const parts = [
    `top ${rows.length} statements over ${DAYS} days against the ${DAYS} before: ${
      count('slower')
    } slower, ${count('faster')} faster, ${count('steady')} steady, ${count('new')} new`,
  ]
  const slower = rows.filter((r) => r.verdict === 'slower')
    .sort((a, b) => (b.change_pct ?? 0) - (a.change_pct ?? 0))
  if (slower.length > 0) {
    parts.push(
      `slower: ${
        slower.slice(0, 3).map((r) =>
          `${shorten(r.query, 50)} ${ms(r.before!.mean_ms)} → ${ms(r.this.mean_ms)} ms (${
            signedPct(r.change_pct!)
          })`
        ).join('; ')
      }`,
    )
  }
  const reset = rows.filter((r) => r.this.resets > 0).length
  if (reset > 0) {
    parts.push(
      `${reset} had their counters reset this month (pg_stat_statements_reset or eviction): what ran just before is not counted`,
    )
  }
  return parts.join('; ')
}
