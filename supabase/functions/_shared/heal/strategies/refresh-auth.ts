// refresh_auth: sign-ins failing on a healthy-looking auth service usually mean stale keys or a
// wedged integration. Call the operator's auth refresh webhook (actions.auth_refresh), or restart
// the service (actions.restart) when there is none, then re-probe until sign-in works again.
import { z } from 'zod'
import { clip } from '../../probes/support.ts'
import { callWebhook, shown } from '../providers/webhook.ts'
import type { Strategy } from '../types.ts'
import {
  actionOf,
  afterOf,
  describeLast,
  gotWorse,
  healthyJustNow,
  liveProbes,
  performRestart,
  refuseDryRun,
  reprobeUntil,
  requireAction,
  restartTarget,
  timing,
} from '../external.ts'

export const RefreshAuthConfig = z.strictObject({ ...timing })
export type RefreshAuthConfig = z.infer<typeof RefreshAuthConfig>

export const refreshAuthStrategy: Strategy<RefreshAuthConfig> = {
  name: 'refresh_auth',
  irreversible: 'a refresh or restart cannot be taken back',
  problem: 'auth_failures',
  config: RefreshAuthConfig,

  async plan(problem, ctx) {
    const refresh = actionOf(ctx, 'auth_refresh')
    const restart = refresh ? undefined : actionOf(ctx, 'restart')
    if (!refresh && !restart) return null
    const probed = await liveProbes(
      ctx,
      (p) => p.status === 'healthy' && p.measurements.login_ok !== false,
    )
    if (probed.healthy) throw healthyJustNow(ctx, probed.probes)
    const live = probed.last
    return {
      action: 'refresh_auth',
      target: refresh ? { via: 'auth_refresh', url: shown(refresh.url) } : restartTarget(restart!),
      reason: `sign-ins to ${ctx.service.name} fail (${clip(problem.reason, 200)}): ` +
        (refresh
          ? 'refresh the auth integration'
          : 'restart the service, as it has no auth refresh webhook'),
      before: {
        status: live?.status ?? 'unknown',
        login_ok: live?.measurements.login_ok ?? problem.evidence.login_ok ?? null,
      },
    }
  },

  async act(plan, ctx, config) {
    refuseDryRun(ctx, `refresh the auth of ${ctx.service.name}`)
    if (plan.target.via === 'auth_refresh') {
      const refresh = requireAction(ctx, 'auth_refresh')
      await callWebhook(
        ctx,
        refresh,
        'the auth refresh webhook',
        'refresh_auth',
        config.request_timeout_ms,
      )
      return { detail: `the auth refresh webhook (${shown(refresh.url)}) accepted the refresh` }
    }
    const restart = requireAction(ctx, 'restart')
    return { detail: await performRestart(ctx, restart, config.request_timeout_ms) }
  },

  async verify(plan, _result, ctx, config) {
    const r = await reprobeUntil(
      ctx,
      config,
      (p) => p.status === 'healthy' && p.measurements.login_ok !== false,
    )
    return {
      improved: r.done,
      worse: gotWorse(plan.before.status, r.last?.status),
      after: afterOf(r, ['login_ok']),
      detail: r.done
        ? `sign-in works again ${describeLast(r).replace(/^healthy /, '')}`
        : `sign-in still fails: ${describeLast(r)}`,
    }
  },
}
