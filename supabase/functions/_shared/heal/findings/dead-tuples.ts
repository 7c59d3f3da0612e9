// dead_tuples: Tables autovacuum has not dealt with: VACUUM (vacuum_analyze).
import type { FindingRule } from './types.ts'

export const deadTuples: FindingRule<'dead_tuples'> = {
  kind: 'dead_tuples',
  problem: (e) => ({
    kind: 'dead_tuples',
    reason: `dead tuples reach ${
      Math.round(e.worst_ratio * 100)
    } % of a table autovacuum has not dealt with`,
    evidence: { dead_tuples: { lagging: e.tables, worst_lagging_ratio: e.worst_ratio } },
  }),
}
