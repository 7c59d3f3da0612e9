// One maintenance task: a name, how often it runs, and what it does. Each task is one module in
// tasks/, listed once in registry.ts; runner.ts records every run in vigil.maintenance_runs.
import type postgres from 'postgres'

export const CADENCES = ['daily', 'weekly', 'monthly'] as const
export type Cadence = (typeof CADENCES)[number]

export interface TaskContext {
  /** Vigil's database, as vigil_agent. */
  sql: postgres.Sql
  /** Aborted at the run's deadline: a task stops where it is and says what it did. */
  signal: AbortSignal
  /** A secret or setting by name (Deno.env in the function, a map in tests). */
  env: (name: string) => string | undefined
}

export interface TaskResult {
  /** not_applicable: the task has nothing to work on here (no replica to fail over, say). */
  status: 'succeeded' | 'not_applicable'
  /** One line for people. */
  summary: string
  findings?: unknown[]
  actions?: unknown[]
}

export interface MaintenanceTask {
  name: string
  cadence: Cadence
  /** What it does, for the README and the dashboard. */
  description: string
  /** Throws to fail (the runner retries once); a TaskError's message is shown as the reason. */
  run(ctx: TaskContext): Promise<TaskResult>
}

/** A failure whose message is fit to show people (no secrets, no raw driver errors). */
export class TaskError extends Error {
  override name = 'TaskError'
}
