// Supabase's own view of the project: GET /v1/projects/{ref}/health?services=… on the Management
// API (Bearer access token) → [{name, healthy, status: COMING_UP | ACTIVE_HEALTHY | UNHEALTHY,
// error?, info?}] (the V1ServiceHealthResponse schema; `healthy` is deprecated in favour of status).
import { z } from 'zod'
import { SupabaseManagementConfig } from '../../../../shared/probe-configs.ts'
import { type Probe, type ProbeContext, type ProbeResult, redact } from './types.ts'

const MAX_BODY_BYTES = 262_144

const ServiceHealth = z.object({
  name: z.string().min(1),
  status: z.enum(['COMING_UP', 'ACTIVE_HEALTHY', 'UNHEALTHY']),
  error: z.string().nullish(),
})
const HealthResponse = z.array(ServiceHealth)

export const supabaseManagementProbe: Probe<SupabaseManagementConfig> = {
  kind: 'supabase_management',
  config: SupabaseManagementConfig,
  async run(config, ctx) {
    const token = ctx.secret(config.access_token_secret)
    if (!token) return result('down', `secret ${config.access_token_secret} is not set`, {})
    const secrets = [token]
    const url = `${config.api_url.replace(/\/+$/, '')}/v1/projects/${config.project_ref}/health?services=${
      config.services.join(',')
    }`

    const answer = await send(ctx, url, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } })
    if ('failure' in answer) return result('down', `Management API ${redact(answer.failure, secrets)}`, {}, answer.ms)
    const measurements: Record<string, unknown> = { status_code: answer.status, latency_ms: answer.ms }
    const fail = (status: 'down' | 'degraded', error: string) => result(status, error, measurements, answer.ms)

    if (answer.status === 401 || answer.status === 403) return fail('down', `access token rejected (HTTP ${answer.status})`)
    if (answer.status === 404) return fail('down', `project ${config.project_ref} not found (HTTP 404)`)
    // Rate limited: nothing is known about the project, and a refused read is not an outage.
    if (answer.status === 429) return fail('degraded', 'rate limited by the Management API (HTTP 429)')
    if (answer.status !== 200) return fail('down', `Management API answered HTTP ${answer.status}: ${excerpt(answer.text, secrets)}`)

    const parsed = HealthResponse.safeParse(parseJson(answer.text))
    if (!parsed.success) return fail('down', `unexpected response from the Management API: ${excerpt(answer.text, secrets)}`)

    const services: Record<string, { status: string; error?: string }> = {}
    for (const s of parsed.data) {
      services[s.name] = { status: s.status, ...(s.error ? { error: redact(s.error, secrets) } : {}) }
    }
    const unhealthy = parsed.data.filter((s) => s.status === 'UNHEALTHY')
    const comingUp = parsed.data.filter((s) => s.status === 'COMING_UP').map((s) => s.name)
    const missing = config.services.filter((name) => !(name in services))
    Object.assign(measurements, { services, unhealthy: unhealthy.map((s) => s.name), coming_up: comingUp, missing })

    if (unhealthy.length > 0) {
      const named = unhealthy.map((s) => (s.error ? `${s.name} (${redact(s.error, secrets)})` : s.name))
      return fail('down', `unhealthy: ${named.join(', ')}`)
    }
    const problems = [
      ...(comingUp.length ? [`coming up: ${comingUp.join(', ')}`] : []),
      ...(missing.length ? [`no status reported for: ${missing.join(', ')}`] : []),
    ]
    if (problems.length) return fail('degraded', problems.join('; '))
    return result('healthy', undefined, measurements, answer.ms)
  },
}

function result(
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
    // Never follow redirects: the access token would travel to wherever they point.
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
