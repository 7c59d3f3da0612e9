// Every maintenance task, once. The function runs the tasks of a cadence in this order.
import type { Cadence, MaintenanceTask } from './types.ts'
import { capacityPlanning } from './tasks/capacity-planning.ts'
import { extensionVersions } from './tasks/extension-versions.ts'
import { failoverTest } from './tasks/failover-test.ts'
import { indexReview } from './tasks/index-review.ts'
import { securityAudit } from './tasks/security-audit.ts'
import { statementsSnapshot } from './tasks/statements-snapshot.ts'
import { vacuumAnalyze } from './tasks/vacuum-analyze.ts'
import { backupCheck } from './tasks/backup-check.ts'
import { drDrill } from './tasks/dr-drill.ts'
import { backupVerification } from './tasks/backup-verification.ts'
import { errorPatterns } from './tasks/error-patterns.ts'
import { performanceReport } from './tasks/performance-report.ts'
import { statementBenchmark } from './tasks/statement-benchmark.ts'
import { slowQueryReport } from './tasks/slow-query-report.ts'

export const TASKS: readonly MaintenanceTask[] = [
  vacuumAnalyze,
  statementsSnapshot,
  failoverTest,
  extensionVersions,
  securityAudit,
  capacityPlanning,
  indexReview,
  backupCheck,
  drDrill,
  backupVerification,
  errorPatterns,
  performanceReport,
  statementBenchmark,
  slowQueryReport,
]

export function tasksFor(cadence: Cadence): MaintenanceTask[] {
  return TASKS.filter((t) => t.cadence === cadence)
}

export function taskNamed(name: string): MaintenanceTask | undefined {
  return TASKS.find((t) => t.name === name)
}
