// error_spike_after_deploy: errors jumped past rollback_threshold × their baseline right after a
// deploy went live: the deploy is the likely cause, so rolling it back is the fix to try. Rolled
// back by rollback_deploy only where its policy sets auto_rollback_on_spike; suggested otherwise.
// retry_deploy leaves it alone: the build succeeded, building it again changes nothing.
import type { FindingRule } from './types.ts'

export const errorSpikeAfterDeploy: FindingRule<'error_spike_after_deploy'> = {
  kind: 'error_spike_after_deploy',
  problem: (e) => ({
    kind: 'failed_deploy',
    reason:
      `errors on ${e.error_rate_pct} % of requests (baseline ${e.baseline_pct} %, over ${e.rollback_threshold} ×) ` +
      `${e.minutes_since_deploy} min after ${
        e.version ?? e.deployment_id
      } went live on ${e.deploy_service}`,
    evidence: {
      cause: 'error_spike',
      deployment_id: e.deployment_id,
      previous_deployment_id: e.previous_deployment_id,
      deploy_service: e.deploy_service,
      deploy_service_id: e.deploy_service_id,
      error_rate_pct: e.error_rate_pct,
    },
  }),
}
