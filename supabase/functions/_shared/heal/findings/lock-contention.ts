// lock_contention: Sessions waiting on locks: the root blocker may be ended (terminate_blocker).
import type { FindingRule } from './types.ts'

export const lockContention: FindingRule<'lock_contention'> = {
  kind: 'lock_contention',
  problem: (e) => ({
    kind: 'lock_contention',
    reason: `${e.waiters} sessions blocked, the longest for ${e.max_wait_s} s`,
    evidence: {
      blocking: {
        blocked_sessions: e.waiters,
        longest_wait_seconds: e.max_wait_s,
        root_pids: e.root_pids,
      },
    },
  }),
}
