// Every heal strategy, one module each, listed under the problems it addresses in the order they
// are tried. A problem kind without an entry fails to compile.
import type { ProblemKind } from '../../../../shared/kinds.ts'
import { addMissingIndexStrategy } from './strategies/add-missing-index/index.ts'
import { analyzeTablesStrategy } from './strategies/analyze-tables.ts'
import { cancelRunawayQueryStrategy } from './strategies/cancel-runaway-query.ts'
import { disableServiceStrategy } from './strategies/disable-service.ts'
import { killIdleConnectionsStrategy } from './strategies/kill-idle-connections.ts'
import { purgeCdnStrategy } from './strategies/purge-cdn.ts'
import { purgeOwnDataStrategy } from './strategies/purge-own-data.ts'
import { refreshAuthStrategy } from './strategies/refresh-auth.ts'
import { renewCertificateStrategy } from './strategies/renew-certificate.ts'
import { restartServiceStrategy } from './strategies/restart-service.ts'
import { retryDeployStrategy } from './strategies/retry-deploy.ts'
import { rollbackDeployStrategy } from './strategies/rollback-deploy.ts'
import { terminateBlockerStrategy } from './strategies/terminate-blocker.ts'
import { vacuumAnalyzeStrategy } from './strategies/vacuum-analyze.ts'
import type { Strategy } from './types.ts'

// deno-lint-ignore no-explicit-any
export type StrategyRegistry = { [K in ProblemKind]: Strategy<any>[] }

export const STRATEGIES_BY_PROBLEM: StrategyRegistry = {
  lock_contention: [terminateBlockerStrategy],
  connection_exhaustion: [killIdleConnectionsStrategy],
  runaway_query: [cancelRunawayQueryStrategy],
  slow_query: [addMissingIndexStrategy],
  dead_tuples: [vacuumAnalyzeStrategy],
  stale_statistics: [analyzeTablesStrategy],
  // disable_service plans only when memory climbs again soon after a restart that worked.
  service_unhealthy: [disableServiceStrategy, restartServiceStrategy],
  stale_frontend: [purgeCdnStrategy, rollbackDeployStrategy],
  failed_deploy: [retryDeployStrategy, rollbackDeployStrategy],
  disk_low: [purgeOwnDataStrategy],
  certificate_expiring: [renewCertificateStrategy],
  auth_failures: [refreshAuthStrategy],
}

/** Every strategy once, by name. */
export const STRATEGIES = new Map(
  Object.values(STRATEGIES_BY_PROBLEM).flat().map((strategy) => [strategy.name, strategy]),
)

/** Heals whose success leaves a human something to do: it pages on-call (rung 3). */
export const PAGE_ON_SUCCESS: ReadonlySet<string> = new Set([disableServiceStrategy.name])

/** Heals a human must hear about even when they work: the service now runs an older deploy, or a
 * certificate was replaced. Their success pages on-call (rung 3) instead of staying silent. */
export const ALERT_ON_SUCCESS: ReadonlySet<string> = new Set([
  rollbackDeployStrategy.name,
  renewCertificateStrategy.name,
])
