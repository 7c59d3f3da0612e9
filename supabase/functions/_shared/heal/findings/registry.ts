// Every finding kind's rule, one module each. A finding kind without a rule fails to compile.
import type { Finding, FindingKind } from '../../../../../shared/findings.ts'
import type { Problem } from '../types.ts'
import type { FindingRule } from './types.ts'
import { lockContention } from './lock-contention.ts'
import { connectionsExhausted } from './connections-exhausted.ts'
import { runawayQuery } from './runaway-query.ts'
import { idleInTransaction } from './idle-in-transaction.ts'
import { deadTuples } from './dead-tuples.ts'
import { staleStatistics } from './stale-statistics.ts'
import { slowStatements } from './slow-statements.ts'
import { staleVersion } from './stale-version.ts'
import { certificateExpiring } from './certificate-expiring.ts'
import { deployFailed } from './deploy-failed.ts'
import { loginFailed } from './login-failed.ts'
import { diskLow } from './disk-low.ts'
import { memoryHigh } from './memory-high.ts'
import { errorSpikeAfterDeploy } from './error-spike-after-deploy.ts'

export const FINDING_RULES: { [K in FindingKind]: FindingRule<K> } = {
  lock_contention: lockContention,
  connections_exhausted: connectionsExhausted,
  runaway_query: runawayQuery,
  idle_in_transaction: idleInTransaction,
  dead_tuples: deadTuples,
  stale_statistics: staleStatistics,
  slow_statements: slowStatements,
  stale_version: staleVersion,
  certificate_expiring: certificateExpiring,
  login_failed: loginFailed,
  disk_low: diskLow,
  memory_high: memoryHigh,
  deploy_failed: deployFailed,
  error_spike_after_deploy: errorSpikeAfterDeploy,
}

/** The problem a finding means, if any. */
export function problemOf(finding: Finding): Problem | null {
  const rule = FINDING_RULES[finding.kind] as FindingRule<typeof finding.kind>
  return rule.problem(finding.evidence as never)
}
