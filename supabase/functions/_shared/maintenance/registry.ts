// Every maintenance task, once. The function runs the tasks of a cadence in this order.
import type { Cadence, MaintenanceTask } from './types.ts'
import { extensionVersions } from './tasks/extension-versions.ts'
import { failoverTest } from './tasks/failover-test.ts'

export const TASKS: readonly MaintenanceTask[] = [
  failoverTest,
  extensionVersions,
]

export function tasksFor(cadence: Cadence): MaintenanceTask[] {
  return TASKS.filter((t) => t.cadence === cadence)
}

export function taskNamed(name: string): MaintenanceTask | undefined {
  return TASKS.find((t) => t.name === name)
}
