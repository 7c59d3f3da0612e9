// deploy_failed: the latest deployment failed: retry it once, then roll back (retry_deploy,
// rollback_deploy).
import type { FindingRule } from './types.ts'

export const deployFailed: FindingRule<'deploy_failed'> = {
  kind: 'deploy_failed',
  problem: (e) => ({
    kind: 'failed_deploy',
    reason: `the latest deployment failed${e.error ? `: ${e.error}` : ''}`,
    evidence: { deployment_id: e.deployment_id, error: e.error },
  }),
}
