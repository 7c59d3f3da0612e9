// runaway_query: Statements running past long_running_seconds: they may be cancelled (cancel_runaway_query).
import type { FindingRule } from './types.ts'

export const runawayQuery: FindingRule<'runaway_query'> = {
  kind: 'runaway_query',
  problem: (e) => ({
    kind: 'runaway_query',
    reason: `${e.count} statements running longer than ${e.threshold_s} s`,
    evidence: {
      long_running: {
        count: e.count,
        longest_seconds: e.longest_s,
        threshold_seconds: e.threshold_s,
      },
    },
  }),
}
