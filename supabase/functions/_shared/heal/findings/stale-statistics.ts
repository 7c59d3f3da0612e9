// stale_statistics: Statistics out of date: ANALYZE (analyze_tables).
import type { FindingRule } from './types.ts'

export const staleStatistics: FindingRule<'stale_statistics'> = {
  kind: 'stale_statistics',
  problem: (e) => ({
    kind: 'stale_statistics',
    reason:
      `${e.tables} tables changed so much since their last ANALYZE that the planner misjudges`,
    evidence: {
      stale_statistics: { count: e.tables },
      // The service's own thresholds, which the strategy plans by.
      thresholds: {
        min_changes: e.min_changes,
        min_ratio: e.ratio,
        older_than_seconds: e.older_than_seconds,
      },
    },
  }),
}
