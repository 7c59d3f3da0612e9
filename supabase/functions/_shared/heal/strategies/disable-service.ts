// disable_service: memory climbing again soon after a restart that worked means a leak a restart
// only postpones. Rather than restart it again and again, the service is taken out of service
// through its `actions.disable` (a webhook of the operator's — disable the function, stop the
// worker — or the demo's supervisor), and humans are told (its success pages on-call). It plans
// only then: memory past its warning (the memory_high finding) with a restart_service that
// succeeded on this service within `watch_minutes`; otherwise restart_service has its turn.
import { z } from 'zod'
import {
  actionOf,
  afterOf,
  describeLast,
  healthyJustNow,
  liveProbes,
  performDisable,
  refuseDryRun,
  reprobeUntil,
  requireAction,
  restartTarget,
  Timing,
} from '../external.ts'
import type { Strategy } from '../types.ts'
import { readFindings } from '../../../../../shared/findings.ts'
import type { ProbeResult } from '../../probes/types.ts'

/** A re-probe's findings: as the probe returned them, or as the cycle stored them. */
function findingsOf(p: ProbeResult) {
  return p.findings ?? readFindings(p.measurements.findings).findings
}

export const DisableServiceConfig = Timing.extend({
  /** A restart that held less than this long did not fix the leak (minutes). */
  watch_minutes: z.number().int().min(1).max(1440).default(30),
})
export type DisableServiceConfig = z.infer<typeof DisableServiceConfig>

export const disableServiceStrategy: Strategy<DisableServiceConfig> = {
  name: 'disable_service',
  irreversible: 'taking a service out of service is reversed by a human, once the leak is fixed',
  problem: 'service_unhealthy',
  config: DisableServiceConfig,

  async plan(problem, ctx, config) {
    const memory = problem.evidence.memory_usage_percent
    if (typeof memory !== 'number') return null
    const disable = actionOf(ctx, 'disable')
    if (!disable) return null
    const [restarted] = await ctx.db<{ at: string; ago_minutes: number }[]>`
      select to_json(created_at) #>> '{}' as at,
             round(extract(epoch from now() - created_at)::numeric / 60, 1)::float8 as ago_minutes
        from vigil.heal_actions
       where service_id = ${ctx.service.id} and strategy = 'restart_service' and phase = 'result'
         and outcome = 'succeeded' and created_at > now() - make_interval(mins => ${config.watch_minutes})
       order by seq desc limit 1`
    if (!restarted) return null
    const probed = await liveProbes(ctx)
    if (probed.healthy) throw healthyJustNow(ctx, probed.probes)
    const live = probed.last
    return {
      action: 'disable_service',
      target: { service: ctx.service.name, ...restartTarget(disable) },
      reason: `memory is at ${memory} % again ${restarted.ago_minutes} min after a restart that ` +
        `worked: a leak a restart only postpones. Take ${ctx.service.name} out of service through ` +
        `its ${disable.type} and tell a human`,
      before: { memory_usage_percent: memory, restarted_at: restarted.at, status: live?.status },
    }
  },

  async act(_plan, ctx, config) {
    refuseDryRun(ctx, `disable ${ctx.service.name}`)
    const disable = requireAction(ctx, 'disable')
    return { detail: await performDisable(ctx, disable, config.request_timeout_ms) }
  },

  // Out of service, it no longer leaks: memory back under the warning, whatever the status says.
  async verify(_plan, _result, ctx, config) {
    const r = await reprobeUntil(
      ctx,
      config,
      (p) => !findingsOf(p).some((f) => f.kind === 'memory_high'),
    )
    return {
      improved: r.done,
      worse: false,
      after: afterOf(r),
      detail: r.done
        ? `memory no longer high ${describeLast(r)}`
        : `memory still high ${describeLast(r)}`,
    }
  },
}
