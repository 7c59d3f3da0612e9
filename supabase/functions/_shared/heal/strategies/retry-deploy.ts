// retry_deploy: a deploy that failed is often a flaky build (a registry timeout, a runner lost), so
// post the deploy hook once more, then re-probe. Once per incident: the evidence says when a retry
// already happened (the engine will pass attempt numbers later). A new deploy is not undone here;
// if it is bad, rollback_deploy comes next.
import { z } from 'zod'
import { parseJson } from '../../probes/support.ts'
import { triggerDeployHook } from '../providers/webhook.ts'
import type { Strategy } from '../types.ts'
import {
  actionOf,
  afterOf,
  describeLast,
  gotWorse,
  probeNow,
  refuseDryRun,
  reprobeUntil,
  requireAction,
  timing,
} from '../external.ts'

export const RetryDeployConfig = z.strictObject({ ...timing })
export type RetryDeployConfig = z.infer<typeof RetryDeployConfig>

/** Vercel's deploy hooks answer {job: {id, state, createdAt}}; Netlify's build hooks answer nothing. */
const HookJob = z.looseObject({ job: z.looseObject({ id: z.string() }) })

export const retryDeployStrategy: Strategy<RetryDeployConfig> = {
  name: 'retry_deploy',
  irreversible: 'a deploy hook, once called, builds and publishes: roll back to undo it',
  problem: 'failed_deploy',
  config: RetryDeployConfig,

  async plan(problem, ctx) {
    if (problem.evidence.retried === true) return null
    // Errors after a deploy that built fine: building it again would change nothing.
    if (problem.evidence.cause === 'error_spike') return null
    const retry = actionOf(ctx, 'deploy_retry')
    if (!retry) return null
    const live = await probeNow(ctx)
    return {
      action: 'retry_deploy',
      target: { hook: retry.hook_url_secret },
      reason:
        `the deploy of ${ctx.service.name} failed (${problem.reason}): run it once more through its deploy hook`,
      before: {
        status: live?.status ?? 'unknown',
        ...(typeof problem.evidence.deployment_id === 'string'
          ? { deployment: problem.evidence.deployment_id }
          : {}),
      },
    }
  },

  async act(_plan, ctx, config) {
    refuseDryRun(ctx, `retry the deploy of ${ctx.service.name}`)
    const retry = requireAction(ctx, 'deploy_retry')
    const answer = await triggerDeployHook(
      ctx,
      retry.hook_url_secret,
      'the deploy hook',
      config.request_timeout_ms,
    )
    const job = HookJob.safeParse(parseJson(answer.text))
    return {
      detail: `triggered the deploy hook in ${retry.hook_url_secret}${
        job.success ? ` (job ${job.data.job.id})` : ''
      }`,
    }
  },

  async verify(plan, _result, ctx, config) {
    const r = await reprobeUntil(ctx, config, (p) => p.status === 'healthy')
    return {
      improved: r.done,
      worse: gotWorse(plan.before.status, r.last?.status),
      after: afterOf(r, ['served_version']),
      detail: r.done
        ? `healthy after the new deploy, ${describeLast(r).replace(/^healthy /, '')}`
        : `after the retry: ${describeLast(r)}`,
    }
  },
}
