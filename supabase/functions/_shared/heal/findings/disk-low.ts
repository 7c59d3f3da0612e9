// disk_low: The disk fills up: Vigil gives back its own history first (purge_own_data).
import type { FindingRule } from './types.ts'

export const diskLow: FindingRule<'disk_low'> = {
  kind: 'disk_low',
  problem: (e) => ({
    kind: 'disk_low',
    reason: `disk usage ${e.usage_pct} %`,
    evidence: { disk_usage_percent: e.usage_pct, mountpoint: e.mountpoint },
  }),
}
