// Runs maintenance tasks one after another, each recorded in vigil.maintenance_runs: a task that
// is running elsewhere is skipped, a failed task is retried once and then reported as failed, and
// a failure never stops the tasks after it.
import type postgres from 'postgres'
import { type MaintenanceTask, type TaskContext, TaskError, type TaskResult } from './types.ts'

export interface RunReport {
  task: string
  status: 'succeeded' | 'failed' | 'not_applicable' | 'skipped'
  attempts: number
  summary: string
  run_ids: number[]
}

export interface RunOptions {
  cadence: 'daily' | 'weekly' | 'monthly' | 'manual'
  /** Names this worker's rows, so only it can end them. */
  worker: string
  /** How long one attempt of one task may take. */
  taskTimeoutMs: number
  /** No task starts after this moment (the function's wall clock is limited). */
  deadline: number
}

/** A reason fit to show people: a TaskError's words, a database error's code and message. */
export function reason(error: unknown): string {
  if (error instanceof TaskError) return error.message
  const e = error as { code?: string; message?: string; name?: string }
  if (typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) {
    return `database error ${e.code}: ${e.message ?? ''}`.trim()
  }
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'it ran out of time'
  return `unexpected ${e?.name ?? 'error'}`
}

async function attempt(
  task: MaintenanceTask,
  ctx: Omit<TaskContext, 'signal'>,
  opts: RunOptions,
  n: 1 | 2,
): Promise<{ runId: number | null; result?: TaskResult; error?: string }> {
  const sql: postgres.Sql = ctx.sql
  const [{ id }] = await sql<{ id: number | null }[]>`
    select vigil.begin_maintenance(${task.name}, ${opts.cadence}, ${opts.worker}, ${n})::int as id`
  if (id === null) return { runId: null }
  try {
    const result = await task.run({ ...ctx, signal: AbortSignal.timeout(opts.taskTimeoutMs) })
    await sql`
      select vigil.end_maintenance(${id}, ${opts.worker}, ${result.status}, ${result.summary},
        ${sql.json((result.findings ?? []) as postgres.JSONValue)},
        ${sql.json((result.actions ?? []) as postgres.JSONValue)}, null)`
    return { runId: id, result }
  } catch (error) {
    const why = reason(error)
    await sql`
      select vigil.end_maintenance(${id}, ${opts.worker}, 'failed',
        ${`${task.name} failed: ${why}`}, '[]'::jsonb, '[]'::jsonb, ${why})`
    return { runId: id, error: why }
  }
}

export async function runTasks(
  tasks: readonly MaintenanceTask[],
  ctx: Omit<TaskContext, 'signal'>,
  opts: RunOptions,
): Promise<RunReport[]> {
  const reports: RunReport[] = []
  for (const task of tasks) {
    if (Date.now() >= opts.deadline) {
      reports.push({
        task: task.name,
        status: 'skipped',
        attempts: 0,
        summary: 'not started: the run ran out of time; it runs at its next schedule',
        run_ids: [],
      })
      continue
    }
    const first = await attempt(task, ctx, opts, 1)
    if (first.runId === null) {
      reports.push({
        task: task.name,
        status: 'skipped',
        attempts: 0,
        summary: 'already running elsewhere',
        run_ids: [],
      })
      continue
    }
    if (first.result) {
      const { status, summary } = first.result
      reports.push({ task: task.name, status, summary, attempts: 1, run_ids: [first.runId] })
      continue
    }
    const second = await attempt(task, ctx, opts, 2)
    const ids = [first.runId, ...(second.runId === null ? [] : [second.runId])]
    reports.push(
      second.result
        ? {
          task: task.name,
          status: second.result.status,
          summary: second.result.summary,
          attempts: 2,
          run_ids: ids,
        }
        : {
          task: task.name,
          status: 'failed',
          attempts: ids.length,
          summary: `failed twice: ${second.error ?? first.error}`,
          run_ids: ids,
        },
    )
  }
  return reports
}
