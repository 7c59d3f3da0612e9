// Helpers more than one probe module needs. Only what the probes really do alike lives here: a
// probe whose wording or limits differ keeps its own code, because each probe's errors and
// measurements are what operators and tests read.
import type { CheckStatus } from '../../../../shared/kinds.ts'
import type { Thresholds } from '../../../../shared/thresholds.ts'
import { againstBand, type Metric, type ProbeContext, type ProbeResult, redact } from './types.ts'
import type { ReadBudget } from '../health/read-budget.ts'

// ---- results ----

/** A down result; responseMs only when a request was timed (the runner times the rest). */
export function down(
  error: string,
  measurements: Record<string, unknown>,
  responseMs?: number,
): ProbeResult {
  return {
    status: 'down',
    error,
    measurements,
    ...(responseMs === undefined ? {} : { responseMs }),
  }
}

/** A result with its error and timing only when there are some. */
export function result(
  status: ProbeResult['status'],
  error: string | undefined,
  measurements: Record<string, unknown>,
  responseMs?: number,
): ProbeResult {
  return {
    status,
    measurements,
    ...(error ? { error } : {}),
    ...(responseMs === undefined ? {} : { responseMs }),
  }
}

/** An unset secret is a configuration fault the operator must see as down, naming the secret. */
export function missingSecret(name: string): ProbeResult {
  return down(`secret ${name} is not set`, {})
}

// ---- latency ----

/** The latency settings a probe config may carry; unset, the environment's api_p95 applies. */
export interface LatencyConfig {
  latency_warning_ms?: number
  latency_critical_ms?: number
}

/** The warning and critical milliseconds for a probe, as configured or from the environment. */
export function latencyBand(
  config: LatencyConfig,
  thresholds: Thresholds,
): { warning: number; critical: number } {
  return {
    warning: config.latency_warning_ms ?? thresholds.api_p95_warning_ms,
    critical: config.latency_critical_ms ?? thresholds.api_p95_critical_ms,
  }
}

/** How one request's latency was judged, and the band to record beside it. */
export interface LatencyVerdict {
  status: CheckStatus
  /** The sentence for the error, when not healthy. */
  problem?: string
  /** The band judged against, recorded so an operator can tell a slow service from a tight band. */
  measurements: { latency_warning_ms: number; latency_critical_ms: number }
}

export function judgeLatency(
  ms: number,
  config: LatencyConfig,
  thresholds: Thresholds,
): LatencyVerdict {
  const { warning, critical } = latencyBand(config, thresholds)
  const status = againstBand(ms, warning, critical)
  const problem = status === 'down'
    ? `latency ${ms} ms above critical ${critical} ms`
    : status === 'degraded'
    ? `latency ${ms} ms at or above warning ${warning} ms`
    : undefined
  return {
    status,
    problem,
    measurements: { latency_warning_ms: warning, latency_critical_ms: critical },
  }
}

/** The result of a probe whose every other check passed: its latency alone decides. */
export function byLatency(
  latency: LatencyVerdict,
  responseMs: number,
  measurements: Record<string, unknown>,
  metrics: Metric[],
): ProbeResult {
  return {
    status: latency.status,
    responseMs,
    measurements,
    metrics,
    ...(latency.problem ? { error: latency.problem } : {}),
  }
}

// ---- requests ----

/** An answer; ms includes reading the body, so a body that trickles in counts as slow. */
export interface Answer<Body = string> {
  status: number
  text: Body
  ms: number
}

/** Why a request got no answer, and how long it took to find out. */
export interface Failure {
  failure: string
  ms: number
}

/**
 * One request with the probe's signal, timed until `read` has the body. Never throws: a failure
 * says what went wrong, in words the probes prefix with what they were doing.
 */
export async function exchange<Body>(
  ctx: ProbeContext,
  url: string,
  init: RequestInit,
  read: (res: Response) => Promise<Body>,
): Promise<Answer<Body> | Failure> {
  const started = performance.now()
  try {
    // Never follow redirects: credentials in the headers would travel to wherever they point.
    const res = await ctx.fetch(url, { ...init, redirect: 'manual', signal: ctx.signal })
    const text = await read(res)
    return { status: res.status, text, ms: Math.round(performance.now() - started) }
  } catch (e) {
    const ms = Math.round(performance.now() - started)
    if (ctx.signal.aborted) return { failure: `timed out after ${ms} ms`, ms }
    return { failure: `unreachable: ${errorMessage(e)}`, ms }
  }
}

/** An exchange with an API whose answers are small JSON: see readTruncated. */
export function send(
  ctx: ProbeContext,
  url: string,
  init: RequestInit,
  maxBytes: number,
): Promise<Answer | Failure> {
  return exchange(ctx, url, init, (res) => readTruncated(res, maxBytes, ctx.readBudget))
}

/**
 * At most `limit` bytes of the body as text; the rest is cut off, not an error, and not read. For
 * APIs whose answers are small JSON: a longer one is only ever shown as an excerpt.
 */
export async function readTruncated(
  res: Response,
  limit: number,
  budget?: ReadBudget,
): Promise<string> {
  if (!res.body) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  while (size < limit) {
    const { done, value } = await reader.read()
    if (done) break
    try {
      budget?.take(Math.min(value.byteLength, limit - size))
    } catch (err) {
      await reader.cancel().catch(() => {})
      throw err
    }
    chunks.push(value)
    size += value.byteLength
  }
  if (size >= limit) await reader.cancel()
  return decodeChunks(chunks, Math.min(size, limit))
}

/**
 * The first `length` bytes of a body read in chunks, as text. Joined once at the end, as appending
 * chunk by chunk would copy the body again for every chunk; `length` may cut the last ones short.
 */
export function decodeChunks(chunks: Uint8Array[], length: number): string {
  const all = new Uint8Array(length)
  let offset = 0
  for (const c of chunks) {
    const part = c.subarray(0, Math.min(c.byteLength, length - offset))
    all.set(part, offset)
    offset += part.byteLength
  }
  return new TextDecoder().decode(all)
}

/** A base URL (its trailing slashes dropped, as operators write it either way) and a path. */
export function endpoint(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}${path}`
}

// ---- API keys ----

/** Legacy keys are JWTs and go in Authorization too; sb_… API keys are not JWTs: apikey only. */
export function apiKeyHeaders(key: string): Record<string, string> {
  return isJwt(key) ? { apikey: key, authorization: `Bearer ${key}` } : { apikey: key }
}

/** Three base64url parts: what the legacy anon and service_role keys are, and sb_… keys are not. */
export function isJwt(key: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(key)
}

// ---- text ----

/** The body as JSON, or undefined when it is not JSON (JSON itself has no undefined). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/**
 * An error body for an error message: secrets redacted (services echo what they were sent),
 * whitespace flattened so it reads on one line, and short enough to leave room for the rest.
 */
export function excerpt(text: string, secrets: (string | undefined)[], max = 300): string {
  const flat = redact(text, secrets).replace(/\s+/g, ' ').trim()
  return flat ? clip(flat, max) : '(empty body)'
}

/** Cut to `max` characters, with an ellipsis that shows the cut. */
export function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text
}

/** Rounded to `digits` decimals: measurements keep the precision that means something. */
export function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

/** Anything can be thrown; only an Error's message reads well in a sentence. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

/**
 * A provider API's answer other than 200, in words: a rejected token, a missing project, a rate
 * limit (degraded: nothing is known, and a refused read is not an outage), anything else.
 */
export function apiRefusal(
  answer: Answer,
  what: { api: string; token_secret: string; target: string },
  said: () => string,
): { status: CheckStatus; error: string } | null {
  if (answer.status === 401 || answer.status === 403) {
    return {
      status: 'down',
      error: `${what.api} token in ${what.token_secret} rejected (HTTP ${answer.status})`,
    }
  }
  if (answer.status === 404) {
    return { status: 'down', error: `${what.target} not found (HTTP 404): ${said()}` }
  }
  if (answer.status === 429) {
    return { status: 'degraded', error: `rate limited by the ${what.api} API (HTTP 429)` }
  }
  if (answer.status !== 200) {
    return { status: 'down', error: `${what.api} API answered HTTP ${answer.status}: ${said()}` }
  }
  return null
}
