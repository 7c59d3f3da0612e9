// maintenance: runs the maintenance tasks of a cadence (pg_cron asks daily, weekly and monthly
// through vigil.invoke), or one task by name. Each run is recorded in vigil.maintenance_runs; a
// task never runs twice at once, a failed task is retried once, and one failure never stops the
// others. Answers what each task did, in one line each.
import { z } from 'zod'
import { sql } from '../_shared/db.ts'
import { servicePost } from '../_shared/caller.ts'
import { json } from '../_shared/http.ts'
import { taskNamed, TASKS, tasksFor } from '../_shared/maintenance/registry.ts'
import { runTasks } from '../_shared/maintenance/runner.ts'
import { CADENCES } from '../_shared/maintenance/types.ts'

/** Supabase's wall clock per request is 150 s (free tier): no task starts after 120 s. */
const BUDGET_MS = 120_000
const TASK_TIMEOUT_MS = 60_000

const Body = z.union([
  z.strictObject({ cadence: z.enum(CADENCES), trigger: z.enum(['cron', 'manual']).optional() }),
  z.strictObject({
    task: z.string().refine((name) => taskNamed(name) !== undefined, {
      message: `unknown task; known: ${TASKS.map((t) => t.name).join(', ')}`,
    }),
    trigger: z.enum(['cron', 'manual']).optional(),
  }),
])

Deno.serve(async (req) => {
  const body = await servicePost(req, Body)
  if (!body.ok) return body.response
  const tasks = 'task' in body.data ? [taskNamed(body.data.task)!] : tasksFor(body.data.cadence)
  const cadence = 'task' in body.data ? 'manual' : body.data.cadence
  try {
    const runs = await runTasks(tasks, { sql: sql(), env: (name) => Deno.env.get(name) }, {
      cadence,
      worker: `maintenance-${crypto.randomUUID().slice(0, 8)}`,
      taskTimeoutMs: TASK_TIMEOUT_MS,
      deadline: Date.now() + BUDGET_MS,
    })
    return json({ cadence, runs })
  } catch (error) {
    const code = (error as { code?: string })?.code ?? (error as Error)?.name ?? 'unknown'
    console.error(`maintenance: the ${cadence} run could not be recorded (${code})`)
    return json({ error: `the maintenance run could not be recorded (${code})` }, 500)
  }
})
