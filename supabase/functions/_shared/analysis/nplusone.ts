// N+1 detection from SQL statistics alone. An application that loads a list and then, for each
// row, runs one more query, leaves a trace in pg_stat_statements: a cheap statement filtered by one
// parameter ("child") whose calls rise in lockstep with another statement's ("parent"), many per
// parent call, in the same periods and not in others. Read from successive samples of the
// cumulative counters (vigil.statement_samples): each pair of samples is a period.
//
// A pair is reported when, over the periods:
//   - the parent ran in at least MIN_PERIODS of them and the child ran ≥ MIN_RATIO times per call;
//   - nearly all the child's calls fall in periods where the parent ran (LOCKSTEP_SHARE);
//   - the per-period ratio is steady (its spread below MAX_RATIO_SPREAD of its median), so two busy
//     statements that only share a daily rhythm do not pair;
//   - each child call is cheap (≤ MAX_CHILD_MS): the cost is the round trips, not the statement;
//   - the child's text filters on a parameter (`= $n`), the shape of a per-row lookup.
// Counters that went down (a reset of pg_stat_statements) end a period with no calls counted.

export interface StatementSample {
  taken_at: Date
  queryid: string
  query: string
  calls: number
  total_exec_ms: number
}

export interface NPlusOne {
  parent: { queryid: string; query: string; calls: number }
  child: { queryid: string; query: string; calls: number; mean_ms: number }
  /** Child calls per parent call, the median over the periods. */
  ratio: number
  periods: number
  /** "N+1 pattern: `SELECT … FROM domain WHERE owner_id = $1` runs ~500 times per call of …". */
  text: string
  suggestion: string
}

export const MIN_PERIODS = 3
export const MIN_RATIO = 5
export const LOCKSTEP_SHARE = 0.9
export const MAX_RATIO_SPREAD = 0.5
export const MAX_CHILD_MS = 10
const PER_ROW_FILTER = /\bwhere\b[\s\S]*?([\w."]+)\s*=\s*\$\d+/i

interface Series {
  queryid: string
  query: string
  /** Calls and milliseconds per period (between consecutive sample times). */
  calls: number[]
  ms: number[]
}

/** Per statement, its calls in each period between the sample times all statements share. */
function periodsOf(samples: StatementSample[]): { times: number[]; series: Series[] } {
  const times = [...new Set(samples.map((s) => s.taken_at.getTime()))].sort((a, b) => a - b)
  const index = new Map(times.map((t, i) => [t, i]))
  const byQuery = new Map<string, StatementSample[]>()
  for (const s of samples) byQuery.set(s.queryid, [...(byQuery.get(s.queryid) ?? []), s])
  const series: Series[] = []
  for (const [queryid, list] of byQuery) {
    const at = new Array<StatementSample | undefined>(times.length)
    for (const s of list) at[index.get(s.taken_at.getTime())!] = s
    const calls = new Array(Math.max(0, times.length - 1)).fill(0)
    const ms = new Array(Math.max(0, times.length - 1)).fill(0)
    for (let i = 1; i < times.length; i++) {
      const a = at[i - 1]
      const b = at[i]
      // Absent from a sample (out of the top) or reset: nothing is known of that period.
      if (!a || !b || b.calls < a.calls) continue
      calls[i - 1] = b.calls - a.calls
      ms[i - 1] = Math.max(0, b.total_exec_ms - a.total_exec_ms)
    }
    series.push({ queryid, query: list[list.length - 1].query, calls, ms })
  }
  return { times, series }
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** A statement as people read it in one line: its first 120 characters, spaces folded. */
export function shortQuery(query: string, max = 120): string {
  const one = query.replace(/\s+/g, ' ').trim()
  return one.length > max ? `${one.slice(0, max - 1)}…` : one
}

export function findNPlusOne(samples: StatementSample[]): NPlusOne[] {
  const { series } = periodsOf(samples)
  const found: NPlusOne[] = []
  for (const child of series) {
    const childCalls = sum(child.calls)
    if (childCalls === 0) continue
    const meanMs = sum(child.ms) / childCalls
    if (meanMs > MAX_CHILD_MS || !PER_ROW_FILTER.test(child.query)) continue
    let best: NPlusOne | null = null
    let bestSpread = Infinity
    for (const parent of series) {
      if (parent === child) continue
      const ran = parent.calls.map((c, i) => (c > 0 ? i : -1)).filter((i) => i >= 0)
      if (ran.length < MIN_PERIODS) continue
      const inStep = sum(ran.map((i) => child.calls[i]))
      if (inStep < LOCKSTEP_SHARE * childCalls) continue
      const ratios = ran.map((i) => child.calls[i] / parent.calls[i])
      const ratio = median(ratios)
      if (ratio < MIN_RATIO) continue
      const spread = median(ratios.map((r) => Math.abs(r - ratio)))
      if (spread > MAX_RATIO_SPREAD * ratio) continue
      // Of several parents in step, the one whose ratio is steadiest (then the rarest) leads.
      const relative = spread / ratio
      if (best && (relative > bestSpread || (relative === bestSpread && ratio <= best.ratio))) {
        continue
      }
      bestSpread = relative
      const column = PER_ROW_FILTER.exec(child.query)![1]
      const childText = shortQuery(child.query)
      const parentText = shortQuery(parent.query)
      best = {
        parent: { queryid: parent.queryid, query: parent.query, calls: sum(parent.calls) },
        child: { queryid: child.queryid, query: child.query, calls: childCalls, mean_ms: meanMs },
        ratio,
        periods: ran.length,
        text: `N+1 pattern: \`${childText}\` runs ~${
          Math.round(ratio).toLocaleString('en-US')
        } times per call of \`${parentText}\``,
        suggestion:
          `Fetch the rows of \`${childText}\` in one statement for all of them: join its ` +
          `table on ${column} in \`${parentText}\`, or pass the ids at once (${column} = any($1)).`,
      }
    }
    if (best) found.push(best)
  }
  return found.sort((a, b) => b.child.calls - a.child.calls)
}
