// stale_version: The frontend serves an old version: purge the CDN, then roll back.
import type { FindingRule } from './types.ts'

export const staleVersion: FindingRule<'stale_version'> = {
  kind: 'stale_version',
  problem: (e) => ({
    kind: 'stale_frontend',
    reason: `serving version ${e.served ?? 'unknown'}, expected ${e.expected}`,
    evidence: { served_version: e.served, expected_version: e.expected },
  }),
}
