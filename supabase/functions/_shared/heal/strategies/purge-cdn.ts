// purge_cdn: a frontend serving an old version is often the CDN holding stale copies. Purge the
// zone's cache (the listed files, else everything), post the rebuild hook when the service has one,
// then re-probe until the expected version is served. A purge cannot be undone; it counts as worse
// only when the frontend ends up in a worse state than before (then the ladder escalates).
import { z } from 'zod'
import { clip } from '../../probes/support.ts'
import { purgeCache } from '../providers/cloudflare.ts'
import { triggerDeployHook } from '../providers/webhook.ts'
import { HealError, type Strategy } from '../types.ts'
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

export const PurgeCdnConfig = z.strictObject({ ...timing })
export type PurgeCdnConfig = z.infer<typeof PurgeCdnConfig>

/** The version the http probe expects (its config's expected_version.value), if it has one. */
function expectedVersion(
  config: Record<string, unknown>,
  evidence: Record<string, unknown>,
): string | null {
  const expected = config.expected_version
  if (
    expected && typeof expected === 'object' &&
    typeof (expected as { value?: unknown }).value === 'string'
  ) {
    return (expected as { value: string }).value
  }
  return typeof evidence.expected_version === 'string' ? evidence.expected_version : null
}

export const purgeCdnStrategy: Strategy<PurgeCdnConfig> = {
  name: 'purge_cdn',
  irreversible: 'a purged cache refills from the origin: there is nothing to put back',
  problem: 'stale_frontend',
  config: PurgeCdnConfig,

  async plan(problem, ctx) {
    const cdn = actionOf(ctx, 'cdn')
    if (!cdn) return null
    const rebuild = actionOf(ctx, 'rebuild')
    const expected = expectedVersion(ctx.service.config, problem.evidence)
    const live = await probeNow(ctx)
    if (live && expected !== null && live.measurements.served_version === expected) return null
    const served = problem.evidence.served_version ?? live?.measurements.served_version ?? null
    return {
      action: 'purge_cdn',
      target: {
        provider: cdn.type,
        zone_id: cdn.zone_id,
        scope: cdn.files ? 'files' : 'everything',
        ...(cdn.files ? { files: cdn.files } : {}),
        ...(rebuild ? { rebuild_hook: rebuild.hook_url_secret } : {}),
      },
      reason:
        `${ctx.service.name} serves ${
          served === null ? 'an unknown version' : `version ${clip(String(served), 100)}`
        }` +
        `${expected === null ? '' : `, expected ${clip(expected, 100)}`}: purge the CDN${
          rebuild ? ' and rebuild' : ''
        }`,
      before: {
        served_version: served,
        expected_version: expected,
        status: live?.status ?? 'unknown',
      },
    }
  },

  async act(plan, ctx, config) {
    refuseDryRun(ctx, `purge the CDN of ${ctx.service.name}`)
    const cdn = requireAction(ctx, 'cdn')
    const purged = await purgeCache(ctx, cdn, config.request_timeout_ms)
    const what = purged.scope === 'files'
      ? `purged ${purged.files} URL${
        purged.files === 1 ? '' : 's'
      } from Cloudflare zone ${cdn.zone_id}`
      : `purged everything from Cloudflare zone ${cdn.zone_id}`
    const id = purged.purgeId ? ` (purge ${purged.purgeId})` : ''
    const rebuild = plan.target.rebuild_hook ? actionOf(ctx, 'rebuild') : undefined
    if (!rebuild) return { detail: `${what}${id}` }
    try {
      await triggerDeployHook(
        ctx,
        rebuild.hook_url_secret,
        'the rebuild hook',
        config.request_timeout_ms,
      )
    } catch (error) {
      throw new HealError(
        `${what}${id}, but ${error instanceof Error ? error.message : String(error)}`,
      )
    }
    return { detail: `${what}${id} and triggered the rebuild hook` }
  },

  async verify(plan, _result, ctx, config) {
    const expected = typeof plan.before.expected_version === 'string'
      ? plan.before.expected_version
      : null
    const r = await reprobeUntil(
      ctx,
      config,
      (p) =>
        expected === null ? p.status === 'healthy' : p.measurements.served_version === expected,
    )
    const served = r.last?.measurements.served_version
    return {
      improved: r.done,
      worse: gotWorse(plan.before.status, r.last?.status),
      after: afterOf(r, ['served_version']),
      detail: r.done
        ? `now serving ${expected === null ? 'healthily' : `version ${clip(expected, 100)}`} ${
          describeLast(r).replace(/^\w+ /, '')
        }`
        : `still serving ${
          served === undefined || served === null
            ? 'an unknown version'
            : `version ${clip(String(served), 100)}`
        }: ${describeLast(r)}`,
    }
  },
}
