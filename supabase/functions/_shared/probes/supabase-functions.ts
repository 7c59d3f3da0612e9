// Supabase Edge Functions: invoke one function through the gateway (/functions/v1/<name><path>)
// and judge its status and latency. The gateway's verify_jwt check reads Authorization and accepts
// JWTs only; sb_… API keys belong in the apikey header (supabase.com/docs/guides/functions/auth-headers).
import type { CheckStatus } from '../../../../shared/kinds.ts'
import { SupabaseFunctionsConfig } from '../../../../shared/probe-configs.ts'
import type { Thresholds } from '../../../../shared/thresholds.ts'
import { againstBand, type Probe, type ProbeContext, type ProbeResult, redact } from './types.ts'

const MAX_BODY_BYTES = 65_536

export const supabaseFunctionsProbe: Probe<SupabaseFunctionsConfig> = {
  kind: 'supabase_functions',
  config: SupabaseFunctionsConfig,
  async run(config, ctx) {
    const key = ctx.secret(config.apikey_secret)
    if (!key) return down(`secret ${config.apikey_secret} is not set`, {})
    const secrets = [key]
    const url = `${(config.url ?? ctx.projectUrl).replace(/\/+$/, '')}/functions/v1/${config.function}${config.path}`
    const headers: Record<string, string> = isJwt(key) ? { apikey: key, authorization: `Bearer ${key}` } : { apikey: key }
    // GET cannot carry a body; the config allows one, so it is sent with POST only.
    const body = config.method === 'POST' ? config.body : undefined
    if (body !== undefined) headers['content-type'] = parseJson(body) === undefined ? 'text/plain;charset=UTF-8' : 'application/json'

    const answer = await send(ctx, url, { method: config.method, headers, body })
    const measurements: Record<string, unknown> = { function: config.function, method: config.method }
    if ('failure' in answer) return down(`invoking ${config.function} failed: ${redact(answer.failure, secrets)}`, measurements, answer.ms)
    Object.assign(measurements, { status_code: answer.status, latency_ms: answer.ms })
    const metrics = [{ name: 'http_request_duration' as const, value: answer.ms, labels: { function: config.function } }]

    if (!config.expected_status.includes(answer.status)) {
      const hint = answer.status === 401 && !isJwt(key)
        ? ' (the key is not a JWT: the gateway check verify_jwt rejects it; turn verify_jwt off for this function)'
        : ''
      return {
        status: 'down',
        responseMs: answer.ms,
        measurements,
        metrics,
        error: `${config.function} answered HTTP ${answer.status}, expected ${config.expected_status.join(' or ')}${hint}: ${
          excerpt(answer.text, secrets)
        }`,
      }
    }

    const latency = judgeLatency(answer.ms, config, ctx.thresholds)
    Object.assign(measurements, { latency_warning_ms: latency.warning, latency_critical_ms: latency.critical })
    return {
      status: latency.status,
      responseMs: answer.ms,
      measurements,
      metrics,
      ...(latency.problem ? { error: latency.problem } : {}),
    }
  },
}

function isJwt(key: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(key)
}

// ---- small helpers (each Supabase probe module keeps its own: one file per kind) ----

interface Answer {
  status: number
  text: string
  ms: number
}

/** One request, body read (capped), never throwing: a failure says what went wrong. */
async function send(ctx: ProbeContext, url: string, init: RequestInit): Promise<Answer | { failure: string; ms: number }> {
  const started = performance.now()
  try {
    // Never follow redirects: the key headers would travel to wherever they point.
    const res = await ctx.fetch(url, { ...init, redirect: 'manual', signal: ctx.signal })
    const text = await readCapped(res, MAX_BODY_BYTES)
    return { status: res.status, text, ms: Math.round(performance.now() - started) }
  } catch (e) {
    const ms = Math.round(performance.now() - started)
    if (ctx.signal.aborted) return { failure: `timed out after ${ms} ms`, ms }
    return { failure: `unreachable: ${e instanceof Error ? e.message : String(e)}`, ms }
  }
}

async function readCapped(res: Response, limit: number): Promise<string> {
  if (!res.body) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  while (size < limit) {
    const { done, value } = await reader.read()
    if (done) break
    chunks.push(value)
    size += value.byteLength
  }
  if (size >= limit) await reader.cancel()
  const all = new Uint8Array(Math.min(size, limit))
  let offset = 0
  for (const c of chunks) {
    const part = c.subarray(0, Math.min(c.byteLength, all.byteLength - offset))
    all.set(part, offset)
    offset += part.byteLength
  }
  return new TextDecoder().decode(all)
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

function excerpt(text: string, secrets: (string | undefined)[]): string {
  const flat = redact(text, secrets).replace(/\s+/g, ' ').trim()
  return flat ? (flat.length > 300 ? `${flat.slice(0, 300)}…` : flat) : '(empty body)'
}

function judgeLatency(
  ms: number,
  band: { latency_warning_ms?: number; latency_critical_ms?: number },
  thresholds: Thresholds,
): { status: CheckStatus; warning: number; critical: number; problem?: string } {
  const warning = band.latency_warning_ms ?? thresholds.api_p95_warning_ms
  const critical = band.latency_critical_ms ?? thresholds.api_p95_critical_ms
  const status = againstBand(ms, warning, critical)
  const problem = status === 'down'
    ? `latency ${ms} ms above critical ${critical} ms`
    : status === 'degraded'
    ? `latency ${ms} ms at or above warning ${warning} ms`
    : undefined
  return { status, warning, critical, problem }
}

function down(error: string, measurements: Record<string, unknown>, responseMs?: number): ProbeResult {
  return { status: 'down', error, measurements, ...(responseMs === undefined ? {} : { responseMs }) }
}
