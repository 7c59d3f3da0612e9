// dr_drill (daily): a disaster-recovery drill. The backup runner restores its newest dump (taking
// one when it keeps none) into its scratch database, compares every table's row count and checksum
// with what was dumped, and times the restore. A restore that fails or differs opens the database's
// backup_failed incident (and pages); the next good drill resolves it. Supabase's own backups
// cannot be restored anywhere through its API, so without a runner there is nothing to drill.
import {
  backupSettings,
  DrillAnswer,
  leftOutWords,
  managementSources,
  runnerClient,
  runnerService,
  trackBackupIncident,
} from '../backups.ts'
import { formatBytes } from './capacity-planning.ts'
import { type MaintenanceTask, type TaskContext, TaskError, type TaskResult } from '../types.ts'

export const DR_DRILL = 'dr_drill'

export const drDrill: MaintenanceTask = {
  name: DR_DRILL,
  cadence: 'daily',
  description:
    'Restores the newest dump into a scratch database through the backup runner, compares every table’s row count and checksum with the dump’s manifest and records the restore time; a failed or differing restore opens a critical backup_failed incident.',
  async run(ctx): Promise<TaskResult> {
    const settings = backupSettings(ctx.env)
    if (!settings.runner) {
      const projects = await managementSources(ctx.sql)
      return {
        status: 'not_applicable',
        summary: projects.length
          ? "no backup runner is configured (VIGIL_BACKUP_RUNNER_URL): Supabase's own backups cannot be restored into a scratch database through its API, so there is nothing to drill"
          : 'no backup runner is configured (VIGIL_BACKUP_RUNNER_URL): there is no scratch database to restore into',
      }
    }
    return await drillAndTrack(ctx, DR_DRILL, 'latest')
  },
}

/** One drill through the runner, judged and tracked on the database's backup_failed incident. */
export async function drillAndTrack(
  ctx: TaskContext,
  task: string,
  backup: 'latest' | 'oldest',
): Promise<TaskResult> {
  const settings = backupSettings(ctx.env)
  const runner = runnerClient(settings.runner!, ctx)
  const service = await runnerService(ctx.sql, settings)
  const drill = await runner.post('/drill', { backup }, DrillAnswer)
  const { summary, failure } = describeDrill(drill)
  const action = service ? await trackBackupIncident(ctx.sql, service, task, failure) : null
  if (failure) {
    throw new TaskError(
      service
        ? failure
        : `${failure} (no backup_failed incident could be opened: set VIGIL_BACKUP_SERVICE)`,
    )
  }
  return {
    status: 'succeeded',
    summary,
    findings: [drill],
    actions: action ? [action] : [],
  }
}

/** The drill in one line, and its failure (null when the restore was whole and equal). */
export function describeDrill(d: DrillAnswer): { summary: string; failure: string | null } {
  const which = d.backup
    ? `backup ${d.backup.id}${d.taken_for_drill ? ' (taken for this drill)' : ''}`
    : 'a new backup'
  if (!d.ok) {
    const stage = d.stage === 'dump'
      ? 'could not be taken'
      : d.stage === 'integrity'
      ? 'is damaged'
      : d.stage === 'restore'
      ? 'could not be restored'
      : 'restored with differences'
    const failure = `restore drill: ${which} ${stage}: ${d.error ?? 'no reason given'}`
    return { summary: failure, failure }
  }
  const leftOut = d.left_out.length
    ? `; left out: ${leftOutWords(d.left_out)}, which a second database cannot hold`
    : ''
  const cleanup = d.cleanup ? `; ${d.cleanup}` : ''
  return {
    summary: `restore drill: ${which} (${
      formatBytes(d.backup?.bytes ?? 0)
    }) restored in ${d.restore_seconds} s; ${d.tables_equal} of ${d.tables_compared} tables equal in row count and checksum${leftOut}${cleanup}`,
    failure: null,
  }
}
