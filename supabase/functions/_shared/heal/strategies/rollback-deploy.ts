// rollback_deploy: point production back at the last good deployment (Vercel Instant Rollback, or
// Netlify's restore of an earlier deploy) when a deploy broke the frontend, or when a purge did not
// bring the right version back. The plan reads the provider's deployments, so the audit's intent row
// names both the deployment rolled back from and the one rolled back to. There is no undo: a human
// rolls forward (promotes the deployment rolled back from) once the cause is fixed.
import { z } from 'zod'
import { readAction, type RollbackAction } from '../../../../../shared/service-actions.ts'
import { chooseRestore, restoreDeploy } from '../providers/netlify.ts'
import { chooseRollback, type DeploymentRef, rollbackTo } from '../providers/vercel.ts'
import { shown } from '../providers/webhook.ts'
import { type HealContext, HealError, HumanNeeded, type Problem, type Strategy } from '../types.ts'
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
  /**
   * An error spike right after a deploy (a traffic service's error_spike_after_deploy) is rolled
   * back only when this is true; otherwise the rollback is suggested and on-call paged with it.
   */
  auto_rollback_on_spike: z.boolean().default(false),
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

const spiked = (problem: Problem) => problem.evidence.cause === 'error_spike'

/**
 * The rollback action: the service's own, else (an error spike seen on real traffic) that of the
 * deploy service whose deploy went live, read from vigil.services. Undefined when neither has one.
 */
async function rollbackActionOf(
  ctx: HealContext,
  from?: string,
): Promise<RollbackAction | undefined> {
  if (!from) return actionOf(ctx, 'rollback')
  const [row] = await ctx.db<
    {
      name: string
      environment: string
      actions: Record<string, unknown>
      guard: { allowed: boolean; reason: string | null }
    }[]
  >`
    select name, environment::text as environment, actions,
           vigil.heal_guard(id, 'rollback_deploy') as guard
      from vigil.services where id = ${from}`
  if (!row) throw new HealError('the deploy service of the spike is gone')
  // Acting on another service: its own environment and its own guard (kill switch, heal_enabled,
  // circuit breaker, rate limits) have their say, not only those of the service that saw the spike.
  if (row.environment !== ctx.service.environment) {
    throw new HumanNeeded(
      `the deploy service ${row.name} is in ${row.environment}, not ${ctx.service.environment}`,
    )
  }
  if (!row.guard?.allowed) {
    throw new HumanNeeded(
      `rolling back ${row.name} is held: ${row.guard?.reason ?? 'not allowed'}`,
    )
  }
  const read = readAction(row.actions ?? {}, 'rollback')
  if (!read.ok) {
    throw new HumanNeeded(`the actions of ${row.name} are invalid: ${read.errors.join('; ')}`)
  }
  return read.value
}

/**
 * Whose rollback action a spike's rollback uses: undefined for this service's own (it has one, or
 * the problem is not a spike), else the deploy service's id from the spike's evidence.
 */
function actionsOwner(problem: Problem, ctx: HealContext): string | undefined {
  const id = problem.evidence.deploy_service_id
  return spiked(problem) && ctx.actions.rollback === undefined && typeof id === 'string'
    ? id
    : undefined
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

  suggestOnly(problem, config) {
    return spiked(problem) && !config.auto_rollback_on_spike
      ? 'an error spike after a deploy is rolled back only where the rollback_deploy policy sets auto_rollback_on_spike'
      : undefined
  },

  async plan(problem, ctx, config) {
    const owner = actionsOwner(problem, ctx)
    const rollback = await rollbackActionOf(ctx, owner)
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
      target: {
        ...where(rollback),
        from,
        to,
        ...(owner ? { actions_of: owner } : {}),
        ...(spiked(problem) ? { cause: 'error_spike' } : {}),
      },
      reason:
        `${
          spiked(problem)
            ? `${problem.reason} (seen on ${ctx.service.name})`
            : `${
              problem.kind === 'failed_deploy' ? 'a deploy broke' : 'purging did not fix'
            } ${ctx.service.name}`
        }: ` +
        `roll production back from ${from.id} (${from.created}) to ${to.id} (${to.created}); ` +
        `roll forward to ${from.id} once the cause is fixed`,
      // A spike's rollback, when only suggested, stays open for people as a recommendation.
      ...(spiked(problem)
        ? {
          recommendations: [{
            kind: 'rollback',
            key: from.id,
            title: `Roll back ${
              String(problem.evidence.deploy_service ?? ctx.service.name)
            } from ${from.id} to ${to.id}: ${problem.reason}`.slice(0, 1000),
            detail: {
              deployment_id: from.id,
              previous_deployment_id: to.id,
              error_rate_pct: problem.evidence.error_rate_pct ?? null,
            },
          }],
        }
        : {}),
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
    const owner = typeof plan.target.actions_of === 'string' ? plan.target.actions_of : undefined
    const rollback = await rollbackActionOf(ctx, owner)
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
    // After a spike's rollback, healthy is not enough: the checks must have had enough requests
    // since it to judge them (a window too short to judge proves nothing).
    const spike = typeof plan.target.actions_of === 'string' || plan.target.cause === 'error_spike'
    const r = await reprobeUntil(
      ctx,
      config,
      (p) => p.status === 'healthy' && (!spike || p.measurements.judged === true),
    )
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
