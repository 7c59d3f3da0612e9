// Helpers shared by every strategy that acts through an external provider (restart_service,
// purge_cdn, rollback_deploy, retry_deploy, renew_certificate, refresh_auth): the timing knobs,
// reading the service's actions, the dry-run refusal, the re-probe loop that tells whether acting
// helped, and the restart call itself.
import { z } from 'zod'
import type { CheckStatus } from '../../../../shared/kinds.ts'
import {
  type ActionKey,
  type DisableAction,
  readAction,
  type RestartAction,
  type ServiceActions,
} from '../../../../shared/service-actions.ts'
import { clip, errorMessage } from '../probes/support.ts'
import { type ProbeResult, rank } from '../probes/types.ts'
import { restartProject } from './providers/supabase-management.ts'
import { callProvider, callWebhook, shown } from './providers/webhook.ts'
import { type HealContext, HealError, HumanNeeded, NotYet } from './types.ts'

/** How long to wait for a provider, and for the re-probes that tell whether acting helped. */
export const timing = {
  /** Re-probe until fixed or this long after acting (0: probe once). */
  verify_timeout_ms: z.number().int().min(0).max(600_000).default(60_000),
  verify_interval_ms: z.number().int().min(10).max(60_000).default(5_000),
  /** One provider request; the heal's deadline applies as well. */
  request_timeout_ms: z.number().int().min(100).max(120_000).default(15_000),
}
export const Timing = z.strictObject(timing)
export type Timing = z.infer<typeof Timing>

/** The part of the service's actions a strategy needs: undefined when absent, a HealError when invalid. */
export function actionOf<K extends ActionKey>(ctx: HealContext, key: K): ServiceActions[K] {
  const read = readAction(ctx.actions, key)
  if (!read.ok) {
    throw new HumanNeeded(`the service's actions are invalid: ${read.errors.join('; ')}`)
  }
  return read.value
}

/**
 * The action act() is about to use. plan() found it; one removed from the service since is a
 * failed heal, said in words.
 */
export function requireAction<K extends ActionKey>(
  ctx: HealContext,
  key: K,
): NonNullable<ServiceActions[K]> {
  const action = actionOf(ctx, key)
  if (!action) throw new HealError(`${ctx.service.name} has no ${key} action any more`)
  return action
}

/** act() changes nothing in dry-run mode, whatever the engine did before calling it. */
export function refuseDryRun(ctx: HealContext, what: string): void {
  if (ctx.dryRun) throw new HealError(`dry run: refusing to ${what}`)
}

/** When a service that answered healthy in this moment is looked at again: after its next check. */
export const RECHECK_SECONDS = 45

/**
 * How many probes in a row must pass before a strategy calls a service healthy in this moment. One
 * is no evidence for a service failing most requests, not all: at a 70 % error rate one probe in
 * three passes, and three in a row only one time in 37.
 */
export const LIVE_PROBES = 3

/**
 * What a strategy throws when the service answers healthy as it is about to act while its
 * incident is still open: recovering, or flapping (an error spike failing most checks, not all).
 * Nothing to do in this moment is not a reason to page; the engine asks again after the next
 * check, and pages when it keeps being so.
 */
export function healthyJustNow(ctx: HealContext, probes = 1): NotYet {
  return new NotYet(
    `${ctx.service.name} answered healthy when probed just now${
      probes > 1 ? ` (${probes} times in a row)` : ''
    }`,
    RECHECK_SECONDS,
  )
}

/**
 * Probes the service up to LIVE_PROBES times, stopping at the first answer that is not `healthy`
 * by the strategy's measure: healthy only when every one was. `last` is that first failing answer
 * (or the last healthy one); null when the probe itself failed, which never counts as healthy.
 */
export async function liveProbes(
  ctx: HealContext,
  healthy: (p: ProbeResult) => boolean = (p) => p.status === 'healthy',
): Promise<{ healthy: boolean; last: ProbeResult | null; probes: number }> {
  let last: ProbeResult | null = null
  for (let probes = 1; probes <= LIVE_PROBES; probes++) {
    last = await probeNow(ctx)
    if (!last || !healthy(last)) return { healthy: false, last, probes }
  }
  return { healthy: true, last, probes: LIVE_PROBES }
}

/** One probe of the service now, or null when the probe itself failed (plan falls back on the evidence). */
export async function probeNow(ctx: HealContext): Promise<ProbeResult | null> {
  try {
    return await untilAborted(ctx.reprobe(), ctx.signal)
  } catch {
    return null
  }
}

export interface Reprobed {
  /** The last probe result (null when none came back). */
  last: ProbeResult | null
  /** `done` held for the last result. */
  done: boolean
  probes: number
  waitedMs: number
  /** Why the last probe gave no result, if it did not. */
  error?: string
}

/**
 * Re-probes at once, then every verify_interval_ms, until `done` holds for a result, verify_timeout_ms
 * has passed, or the heal's deadline (ctx.signal) is reached.
 */
export async function reprobeUntil(
  ctx: HealContext,
  config: Pick<Timing, 'verify_timeout_ms' | 'verify_interval_ms'>,
  done: (result: ProbeResult) => boolean,
): Promise<Reprobed> {
  const started = performance.now()
  const out: Reprobed = { last: null, done: false, probes: 0, waitedMs: 0 }
  while (!ctx.signal.aborted) {
    try {
      out.last = await untilAborted(ctx.reprobe(), ctx.signal)
      out.error = undefined
      out.probes++
      if (done(out.last)) {
        out.done = true
        break
      }
    } catch (error) {
      out.error = ctx.signal.aborted
        ? "the heal's deadline passed during a re-probe"
        : clip(errorMessage(error), 200)
    }
    const left = config.verify_timeout_ms - (performance.now() - started)
    if (left <= 0) break
    await sleep(Math.min(config.verify_interval_ms, left), ctx.signal)
  }
  out.waitedMs = Math.round(performance.now() - started)
  return out
}

/** What a verification records of the last re-probe. */
export function afterOf(r: Reprobed, keys: string[] = []): Record<string, unknown> {
  const m = r.last?.measurements ?? {}
  return {
    status: r.last?.status ?? 'unknown',
    ...(r.last?.error ? { error: clip(r.last.error, 300) } : {}),
    ...Object.fromEntries(keys.filter((k) => k in m).map((k) => [k, m[k]])),
    probes: r.probes,
    waited_ms: r.waitedMs,
    ...(r.error ? { probe_error: r.error } : {}),
  }
}

/** "still down after 60 s (12 probes): connection refused" and the like. */
export function describeLast(r: Reprobed): string {
  const when = `after ${(r.waitedMs / 1000).toFixed(1)} s (${r.probes} probe${
    r.probes === 1 ? '' : 's'
  })`
  if (!r.last) return `no re-probe answered ${when}${r.error ? `: ${r.error}` : ''}`
  return `${r.last.status} ${when}${r.last.error ? `: ${clip(r.last.error, 200)}` : ''}`
}

/** The status after is worse than the one before (unknown on either side is never worse). */
export function gotWorse(before: unknown, after: CheckStatus | undefined): boolean {
  const b = rank(before)
  const a = rank(after)
  return b !== undefined && a !== undefined && a > b
}

/** The promise's value, or a rejection as soon as the signal aborts (the promise is left to settle). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('aborted'))
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('aborted'))
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/** Waits ms, or until the signal aborts if sooner; never throws. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}

// ---- restart ---------------------------------------------------------------------------------

/** Where a restart goes, safe for the audit: no token, no query string. */
export function restartTarget(restart: RestartAction): Record<string, unknown> {
  switch (restart.type) {
    case 'webhook':
      return { via: 'webhook', method: restart.method, url: shown(restart.url) }
    case 'supabase_management':
      return {
        via: 'supabase_management',
        api_url: shown(restart.api_url),
        project_ref: restart.project_ref,
      }
    case 'supervisor':
      return { via: 'supervisor', url: shown(restart.url), service: restart.service }
  }
}

/** A process supervisor's action (restart, disable) for the program it runs. */
async function askSupervisor(
  ctx: HealContext,
  supervisor: { url: string; service: string },
  action: 'restart' | 'disable',
  timeoutMs: number,
): Promise<void> {
  await callProvider(ctx, {
    what: `the supervisor (${shown(supervisor.url)})`,
    method: 'POST',
    url: supervisor.url,
    body: { action, service: supervisor.service },
    timeoutMs,
  })
}

/** Takes the service out of service; resolves once the provider accepted it. */
export async function performDisable(
  ctx: HealContext,
  disable: DisableAction,
  timeoutMs: number,
): Promise<string> {
  if (disable.type === 'webhook') {
    await callWebhook(ctx, disable, 'the disable webhook', 'disable', timeoutMs)
    return `the disable webhook (${
      shown(disable.url)
    }) accepted taking ${ctx.service.name} out of service`
  }
  await askSupervisor(ctx, disable, 'disable', timeoutMs)
  return `the supervisor disabled ${disable.service}`
}

/** Asks for the restart; resolves once the provider accepted it. Returns what was done, in words. */
export async function performRestart(
  ctx: HealContext,
  restart: RestartAction,
  timeoutMs: number,
): Promise<string> {
  switch (restart.type) {
    case 'webhook':
      await callWebhook(ctx, restart, 'the restart webhook', 'restart', timeoutMs)
      return `the restart webhook (${shown(restart.url)}) accepted the restart`
    case 'supabase_management':
      await restartProject(ctx, restart, timeoutMs)
      return `the Supabase Management API accepted the restart of project ${restart.project_ref}`
    case 'supervisor':
      await askSupervisor(ctx, restart, 'restart', timeoutMs)
      return `the supervisor restarted ${restart.service}`
  }
}
