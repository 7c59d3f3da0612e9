// A finding kind's rule: the problem a finding of that kind means, if any. The finding's evidence
// is already checked against its schema (shared/findings.ts), and its thresholds were applied by the
// probe, from the service's config and the environment's settings.
import type { Finding, FindingKind } from '../../../../../shared/findings.ts'
import type { Problem } from '../types.ts'

export interface FindingRule<K extends FindingKind> {
  kind: K
  problem(evidence: Finding<K>['evidence']): Problem | null
}
