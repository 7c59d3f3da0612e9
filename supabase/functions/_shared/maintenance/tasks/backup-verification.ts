// backup_verification (monthly): full backup verification. Every dump the runner keeps is verified
// (sha256 against its manifest, pg_restore --list) and the oldest is restore-drilled, proving the
// whole retention window restores; each watched Supabase project's full backup list is summarised
// and judged as backup_check judges it. A bad verdict opens the backup_failed incident (and pages).
import { runnerClient, runnerService, trackBackupIncident, VerifyAnswer } from '../backups.ts'
import { type MaintenanceTask, TaskError, type TaskResult } from '../types.ts'
import { beginBackupRun, endBackupRun, judgeProjects } from './backup-check.ts'
import { drillAndTrack } from './dr-drill.ts'

export const BACKUP_VERIFICATION = 'backup_verification'

export const backupVerification: MaintenanceTask = {
  name: BACKUP_VERIFICATION,
  cadence: 'monthly',
  description:
    "Verifies every dump the backup runner keeps (sha256, pg_restore --list) and restore-drills the oldest; summarises each watched Supabase project's full backup list; a bad result opens a critical backup_failed incident.",
  async run(ctx): Promise<TaskResult> {
    const begun = await beginBackupRun(ctx, 'verify')
    if ('status' in begun) return begun
    const { settings, run } = begun
    const { sql } = ctx
    const { lines, findings, actions, failures } = run
    await judgeProjects(ctx, BACKUP_VERIFICATION, begun, run)

    if (settings.runner) {
      try {
        const runner = runnerClient(settings.runner, ctx)
        const service = await runnerService(sql, settings)
        const { results } = await runner.post('/backups/verify', { all: true }, VerifyAnswer)
        findings.push({ source: 'runner', verified: results })
        const damaged = results.filter((r) => !r.ok)
        const bad = damaged.length
          ? `${damaged.length} of ${results.length} kept dump(s) failed verification: ${
            damaged.flatMap((r) => r.problems).join('; ')
          }`
          : null
        if (bad) failures.push(bad)
        else lines.push(`${results.length} kept dump(s) verified`)
        // The drill of the oldest tracks its own reason on the same incident.
        try {
          const drill = await drillAndTrack(ctx, BACKUP_VERIFICATION + '_drill', 'oldest')
          lines.push(`oldest kept: ${drill.summary}`)
          findings.push(...(drill.findings ?? []))
          actions.push(...(drill.actions ?? []))
        } catch (e) {
          if (!(e instanceof TaskError)) throw e
          failures.push(e.message)
        }
        if (service) {
          const action = await trackBackupIncident(sql, service, BACKUP_VERIFICATION, bad)
          if (action) actions.push(action)
        } else if (bad) {
          failures.push('no backup_failed incident could be opened: set VIGIL_BACKUP_SERVICE')
        }
      } catch (e) {
        if (!(e instanceof TaskError)) throw e
        failures.push(e.message)
      }
    }

    return endBackupRun(run)
  },
}
