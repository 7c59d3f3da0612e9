// restart_service: a service that stays unhealthy is restarted through what its `actions.restart`
// names (a webhook of the operator's, the Supabase Management API, the local demo's supervisor),
// then re-probed until it is healthy again or the verify timeout passes. A restart cannot be undone,
// so it is never "worse": a service still down afterwards is a failed heal, and the ladder escalates.
//
// The helpers it uses are shared by every strategy that acts through an external provider, in
// ../external.ts.
import { clip } from '../../probes/support.ts'
import {
  actionOf,
  afterOf,
  describeLast,
  healthyJustNow,
  liveProbes,
  performRestart,
  refuseDryRun,
  reprobeUntil,
  requireAction,
  restartTarget,
  Timing,
} from '../external.ts'
import type { Strategy } from '../types.ts'

export const RestartServiceConfig = Timing
export type RestartServiceConfig = Timing

export const restartServiceStrategy: Strategy<RestartServiceConfig> = {
  name: 'restart_service',
  irreversible: 'a restart cannot be taken back: the service is running its fresh process',
  problem: 'service_unhealthy',
  config: RestartServiceConfig,

  async plan(problem, ctx) {
    const restart = actionOf(ctx, 'restart')
    if (!restart) return null
    const probed = await liveProbes(ctx)
    if (probed.healthy) throw healthyJustNow(ctx, probed.probes)
    const live = probed.last
    return {
      action: 'restart_service',
      target: { service: ctx.service.name, ...restartTarget(restart) },
      reason: `${ctx.service.name} is unhealthy (${
        clip(problem.reason, 200)
      }); restart it through its ${restart.type}`,
      before: {
        status: live?.status ?? 'unknown',
        error: live?.error ??
          (typeof problem.evidence.error === 'string' ? problem.evidence.error : null),
      },
    }
  },

  async act(_plan, ctx, config) {
    refuseDryRun(ctx, `restart ${ctx.service.name}`)
    const restart = requireAction(ctx, 'restart')
    return { detail: await performRestart(ctx, restart, config.request_timeout_ms) }
  },

  async verify(_plan, _result, ctx, config) {
    const r = await reprobeUntil(ctx, config, (p) => p.status === 'healthy')
    return {
      improved: r.done,
      worse: false,
      after: afterOf(r),
      detail: r.done
        ? `healthy again ${describeLast(r).replace(/^healthy /, '')}`
        : `still ${describeLast(r)}`,
    }
  },
}
