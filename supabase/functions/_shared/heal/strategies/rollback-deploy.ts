// rollback_deploy: point production back at the last good deployment (Vercel Instant Rollback, or
// Netlify's restore of an earlier deploy) when a deploy broke the frontend, or when a purge did not
// bring the right version back. The plan reads the provider's deployments, so the audit's intent row
// names both the deployment rolled back from and the one rolled back to. There is no undo: a human
// rolls forward (promotes the deployment rolled back from) once the cause is fixed.
import { z } from 'zod'
import type { RollbackAction } from '../../../../../shared/service-actions.ts'
import { chooseRestore, restoreDeploy } from '../providers/netlify.ts'
import { chooseRollback, type DeploymentRef, rollbackTo } from '../providers/vercel.ts'
import { shown } from '../providers/webhook.ts'
import { type HealContext, HealError, type Strategy } from '../types.ts'
import {
  actionOf,
  afterOf,
  describeLast,
  gotWorse,
  probeNow,
  refuseDryRun,
  reprobeUntil,
  timing,
} from '../external.ts'

export const RollbackDeployConfig = z.strictObject({
  ...timing,
  /** How many recent deployments to look through for the one to go back to. */
  candidates: z.number().int().min(2).max(100).default(20),
})
export type RollbackDeployConfig = z.infer<typeof RollbackDeployConfig>

function where(rollback: RollbackAction): Record<string, unknown> {
  return rollback.type === 'vercel'
    ? {
      provider: 'vercel',
      api_url: shown(rollback.api_url),
      project_id: rollback.project_id,
      ...(rollback.team_id ? { team_id: rollback.team_id } : {}),
    }
    : { provider: 'netlify', api_url: shown(rollback.api_url), site_id: rollback.site_id }
}

function choose(
  ctx: HealContext,
  rollback: RollbackAction,
  config: RollbackDeployConfig,
  currentId?: string,
) {
  const options = { currentId, candidates: config.candidates, timeoutMs: config.request_timeout_ms }
  return rollback.type === 'vercel'
    ? chooseRollback(ctx, rollback, options)
    : chooseRestore(ctx, rollback, options)
}

function isRef(value: unknown): value is DeploymentRef {
  return !!value && typeof value === 'object' && typeof (value as DeploymentRef).id === 'string'
}

export const rollbackDeployStrategy: Strategy<RollbackDeployConfig> = {
  name: 'rollback_deploy',
  irreversible:
    'rolling forward again is a human decision: the bad deployment is what was replaced',
  // Also listed under stale_frontend, after purge_cdn (registry.ts).
  problem: 'failed_deploy',
  config: RollbackDeployConfig,

  async plan(problem, ctx, config) {
    const rollback = actionOf(ctx, 'rollback')
    if (!rollback) return null
    const currentId = typeof problem.evidence.deployment_id === 'string'
      ? problem.evidence.deployment_id
      : undefined
    const choice = await choose(ctx, rollback, config, currentId)
    if ('none' in choice) return null
    const { from, to } = choice
    const live = await probeNow(ctx)
    return {
      action: 'rollback_deploy',
      target: { ...where(rollback), from, to },
      reason:
        `${
          problem.kind === 'failed_deploy' ? 'a deploy broke' : 'purging did not fix'
        } ${ctx.service.name}: ` +
        `roll production back from ${from.id} (${from.created}) to ${to.id} (${to.created}); ` +
        `roll forward to ${from.id} once the cause is fixed`,
      before: {
        deployment: from.id,
        ...(typeof problem.evidence.served_version === 'string'
          ? { served_version: problem.evidence.served_version }
          : {}),
        status: live?.status ?? 'unknown',
      },
    }
  },

  async act(plan, ctx, config) {
    refuseDryRun(ctx, `roll back ${ctx.service.name}`)
    const rollback = actionOf(ctx, 'rollback')
    const { from, to } = plan.target
    if (!rollback || rollback.type !== plan.target.provider || !isRef(from) || !isRef(to)) {
      throw new HealError(`the rollback action of ${ctx.service.name} no longer matches the plan`)
    }
    if (rollback.type === 'vercel') {
      const description = `Vigil incident ${ctx.incidentId}: rolled back from ${from.id}`
      await rollbackTo(ctx, rollback, to.id, description, config.request_timeout_ms)
      return {
        detail:
          `Vercel production of ${rollback.project_id} rolled back from ${from.id} to ${to.id}; ` +
          `to roll forward, promote ${from.id} (vercel promote ${from.id})`,
      }
    }
    await restoreDeploy(ctx, rollback, to.id, config.request_timeout_ms)
    return {
      detail:
        `Netlify site ${rollback.site_id} restored to deploy ${to.id}, rolled back from ${from.id}; ` +
        `to roll forward, publish deploy ${from.id} again`,
    }
  },

  async verify(plan, _result, ctx, config) {
    const r = await reprobeUntil(ctx, config, (p) => p.status === 'healthy')
    return {
      improved: r.done,
      worse: gotWorse(plan.before.status, r.last?.status),
      after: { ...afterOf(r, ['served_version']), rolled_back_from: plan.before.deployment },
      detail: r.done
        ? `healthy on the earlier deployment ${describeLast(r).replace(/^healthy /, '')}`
        : `after the rollback: ${describeLast(r)}`,
    }
  },
}
