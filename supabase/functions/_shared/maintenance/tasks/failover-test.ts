// failover_test (weekly): where a standby is configured, is it ready to take over — streaming,
// caught up, replaying? Where none is, the run says so (not applicable) rather than pretend.
// Vigil never promotes a standby itself: that is a person's decision on the platform.
import type { MaintenanceTask, TaskResult } from '../types.ts'

interface Standby {
  name: string
  state: string
  sync_state: string
  replay_lag_seconds: number | null
  lag_bytes: number | null
}

/** A standby further behind than this is not ready to take over without losing writes. */
const MAX_LAG_SECONDS = 30

export const failoverTest: MaintenanceTask = {
  name: 'failover_test',
  cadence: 'weekly',
  description:
    'Checks that each configured standby is streaming and caught up (replay lag under 30 s); not applicable without one.',
  async run({ sql }): Promise<TaskResult> {
    const [{ in_recovery }] = await sql<{ in_recovery: boolean }[]>`
      select pg_is_in_recovery() as in_recovery`
    if (in_recovery) {
      return {
        status: 'not_applicable',
        summary: 'this database is itself a standby: the failover test runs against the primary',
      }
    }
    const standbys = await sql<Standby[]>`
      select coalesce(nullif(application_name, ''), client_addr::text, 'standby') as name,
             state, sync_state,
             extract(epoch from replay_lag)::float8 as replay_lag_seconds,
             pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 as lag_bytes
        from pg_stat_replication
       where state is not null`
    if (standbys.length === 0) {
      return {
        status: 'not_applicable',
        summary: 'no replica or standby is configured: there is nothing to fail over to',
      }
    }
    const findings = standbys.map((s) => {
      const problems: string[] = []
      if (s.state !== 'streaming') problems.push(`state ${s.state}, not streaming`)
      if ((s.replay_lag_seconds ?? 0) > MAX_LAG_SECONDS) {
        problems.push(`replay ${Math.round(s.replay_lag_seconds!)} s behind`)
      }
      return { ...s, ready: problems.length === 0, problems }
    })
    const notReady = findings.filter((f) => !f.ready)
    return {
      status: 'succeeded',
      summary: notReady.length === 0
        ? `${findings.length} standby(s) streaming and caught up: ready to take over`
        : `${notReady.length} of ${findings.length} standby(s) not ready: ${
          notReady.map((f) => `${f.name} (${f.problems.join(', ')})`).join('; ')
        }`,
      findings,
    }
  },
}
