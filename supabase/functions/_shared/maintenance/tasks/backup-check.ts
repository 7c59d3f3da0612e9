// backup_check (daily): is there a recent, good backup? For each watched Supabase project
// (supabase_management service), the Management API's backup list: the newest recovery point's age
// against VIGIL_BACKUP_MAX_AGE_HOURS (26), failed backups since, PITR on or off. With a backup runner
// (VIGIL_BACKUP_RUNNER_URL), today's pg_dump is taken and verified (sha256, pg_restore --list).
// A bad verdict opens the service's backup_failed incident (and pages); the next good run resolves it.
import {
  backupSettings,
  fetchBackupList,
  judgeBackupList,
  type ListVerdict,
  managementSources,
  runnerClient,
  runnerService,
  TakeAnswer,
  trackBackupIncident,
  VerifyAnswer,
} from '../backups.ts'
import { formatBytes } from './capacity-planning.ts'
import { type MaintenanceTask, type TaskContext, TaskError, type TaskResult } from '../types.ts'

export const BACKUP_CHECK = 'backup_check'

export const backupCheck: MaintenanceTask = {
  name: BACKUP_CHECK,
  cadence: 'daily',
  description:
    "Checks each watched Supabase project's backup list (newest backup under VIGIL_BACKUP_MAX_AGE_HOURS, 26 h; failures; PITR) and, with a backup runner, takes today's pg_dump and verifies it; a bad result opens a critical backup_failed incident.",
  async run(ctx): Promise<TaskResult> {
    const begun = await beginBackupRun(ctx, 'check')
    if ('status' in begun) return begun
    const { settings, run } = begun
    const { sql } = ctx
    const { lines, findings, actions, failures } = run
    await judgeProjects(ctx, BACKUP_CHECK, begun, run)

    if (settings.runner) {
      const runner = runnerClient(settings.runner, ctx)
      const service = await runnerService(sql, settings)
      try {
        const taken = await runner.post('/backups', {}, TakeAnswer)
        let bad: string | null = null
        if (!taken.ok) {
          bad = taken.error
          findings.push({ source: 'runner', taken: false, error: taken.error })
        } else {
          const { results } = await runner.post(
            '/backups/verify',
            { id: taken.backup.id },
            VerifyAnswer,
          )
          const problems = results.flatMap((r) => r.problems)
          findings.push({
            source: 'runner',
            backup: taken.backup,
            verified: problems.length === 0,
            problems,
          })
          if (problems.length) bad = problems.join('; ')
          else {
            lines.push(
              `backup ${taken.backup.id} taken (${
                formatBytes(taken.backup.bytes)
              }, ${taken.backup.tables} tables, ${taken.backup.dump_seconds} s) and verified`,
            )
          }
        }
        if (bad) {
          failures.push(bad)
          lines.push(bad)
        }
        if (service) {
          const action = await trackBackupIncident(sql, service, BACKUP_CHECK, bad)
          if (action) actions.push(action)
        } else if (bad) {
          failures.push(
            'no backup_failed incident could be opened: no enabled postgres service is the database Vigil lives in (set VIGIL_BACKUP_SERVICE)',
          )
        }
      } catch (e) {
        if (!(e instanceof TaskError)) throw e
        failures.push(e.message)
      }
    }

    return endBackupRun(run)
  },
}

/** What a backup task's run gathers: its lines for people, findings, actions, and failures. */
export interface BackupRun {
  lines: string[]
  findings: unknown[]
  actions: unknown[]
  /** Verdicts on backups (incidents opened) and failures to ask (no verdict): both fail the run. */
  failures: string[]
}

/**
 * The settings and the watched projects, or `not_applicable` when there is neither a runner nor a
 * project to look at ("no backups to check" / "to verify").
 */
export async function beginBackupRun(
  ctx: TaskContext,
  verb: 'check' | 'verify',
): Promise<
  | TaskResult
  | {
    settings: ReturnType<typeof backupSettings>
    projects: Awaited<ReturnType<typeof managementSources>>
    nowMs: number
    run: BackupRun
  }
> {
  const settings = backupSettings(ctx.env)
  const projects = await managementSources(ctx.sql)
  if (!settings.runner && projects.length === 0) {
    return {
      status: 'not_applicable',
      summary:
        `no backups to ${verb}: no supabase_management service is watched and no backup runner is configured (VIGIL_BACKUP_RUNNER_URL)`,
    }
  }
  const [{ now_ms }] = await ctx.sql<{ now_ms: number }[]>`
    select extract(epoch from now())::float8 * 1000 as now_ms`
  return {
    settings,
    projects,
    nowMs: now_ms,
    run: { lines: [], findings: [], actions: [], failures: [] },
  }
}

/** Judges each project's backup list; a bad verdict is tracked on its backup_failed incident as `task`. */
export async function judgeProjects(
  ctx: TaskContext,
  task: string,
  begun: {
    settings: ReturnType<typeof backupSettings>
    projects: Awaited<ReturnType<typeof managementSources>>
    nowMs: number
  },
  run: BackupRun,
): Promise<void> {
  for (const project of begun.projects) {
    let verdict: ListVerdict
    try {
      verdict = judgeBackupList(
        await fetchBackupList(project, ctx),
        begun.nowMs,
        begun.settings.maxAgeHours,
      )
    } catch (e) {
      if (!(e instanceof TaskError)) throw e
      run.failures.push(e.message)
      run.lines.push(e.message)
      continue
    }
    run.findings.push({ source: 'management_api', service: project.service, ...verdict })
    const bad = verdict.problems.length ? verdict.problems.join('; ') : null
    const action = await trackBackupIncident(
      ctx.sql,
      { id: project.service_id, name: project.service },
      task,
      bad,
    )
    if (action) run.actions.push(action)
    if (bad) run.failures.push(`${project.service}: ${bad}`)
    run.lines.push(describeList(project.service, verdict))
  }
}

/** Fails with every failure named, or succeeds with what was found and done. */
export function endBackupRun(run: BackupRun): TaskResult {
  if (run.failures.length) throw new TaskError(run.failures.join('; '))
  return {
    status: 'succeeded',
    summary: run.lines.join('. '),
    findings: run.findings,
    actions: run.actions,
  }
}

/** "supabase-prod: newest backup 5.2 h old (2026-…), 7 completed; PITR not enabled: …". */
export function describeList(service: string, v: ListVerdict): string {
  const counts = Object.entries(v.by_status).map(([s, n]) => `${n} ${s.toLowerCase()}`).join(', ')
  const newest = v.recovery_point_at
    ? `newest recovery point ${v.recovery_point_age_hours} h old (${v.recovery_point_at})`
    : 'no completed backup'
  return `${service}: ${newest}; ${v.listed} listed${counts ? ` (${counts})` : ''}${
    v.problems.length ? `; ${v.problems.join('; ')}` : ''
  }; ${v.notes.join('; ')}`
}
