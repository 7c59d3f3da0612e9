// idle_in_transaction: Sessions idle in a transaction: a problem only through what they cause (locks, connections), which
// their own findings name; alone they are reported, not healed.
import type { FindingRule } from './types.ts'

export const idleInTransaction: FindingRule<'idle_in_transaction'> = {
  kind: 'idle_in_transaction',
  problem: () => null,
}
