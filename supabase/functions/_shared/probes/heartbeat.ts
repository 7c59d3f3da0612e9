// Heartbeats: a job that pings, a pg_cron job, or Vigil's own cycles, judged by
// vigil.heartbeat_verdict() — the same SQL the vigil-watchdog job uses when no function runs.
import { HeartbeatConfig } from '../../../../shared/probe-configs.ts'
import type { CheckStatus } from '../../../../shared/kinds.ts'
import type { Probe } from './types.ts'

interface Verdict {
  status: CheckStatus
  error: string | null
  measurements: Record<string, unknown>
}

export const heartbeatProbe: Probe<HeartbeatConfig> = {
  kind: 'heartbeat',
  config: HeartbeatConfig,
  async run(config, ctx) {
    const [verdict] = await ctx.db<Verdict[]>`
      select status, error, measurements from vigil.heartbeat_verdict(${ctx.service.id})`
    return {
      status: verdict.status,
      measurements: {
        source: config.source,
        period_seconds: config.period_seconds,
        ...verdict.measurements,
      },
      error: verdict.error ?? undefined,
    }
  },
}
