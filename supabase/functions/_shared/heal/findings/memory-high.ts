// memory_high: Memory past the warning: a restart frees a leak (restart_service).
import type { FindingRule } from './types.ts'

export const memoryHigh: FindingRule<'memory_high'> = {
  kind: 'memory_high',
  problem: (e) => ({
    kind: 'service_unhealthy',
    reason: `memory usage ${e.usage_pct} %: restarting frees a leak`,
    evidence: { memory_usage_percent: e.usage_pct },
  }),
}
