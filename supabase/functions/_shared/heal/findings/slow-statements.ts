// slow_statements: Slow statements: the index advisor looks at them (add_missing_index).
import type { FindingRule } from './types.ts'

export const slowStatements: FindingRule<'slow_statements'> = {
  kind: 'slow_statements',
  problem: (e) => ({
    kind: 'slow_query',
    reason: `${e.statements.length} statements slower than the slow-query threshold`,
    evidence: { statements: { slow: e.statements } },
  }),
}
