// Supabase Storage (storage-api): the service answers, and a configured bucket exists and lists.
// storage-api's routes (supabase/storage src/app.ts, src/http/routes/object/listObjects.ts):
// GET /status → 200 with an empty body (liveness); POST /object/list/:bucketName
// {prefix, limit, offset} → an array of objects. Errors render as {statusCode: '404', error,
// message} with HTTP 400 (older releases) or HTTP 404 and code 'NoSuchBucket' (newer ones).
import { z } from 'zod'
import type { CheckStatus } from '../../../../shared/kinds.ts'
import { SupabaseStorageConfig } from '../../../../shared/probe-configs.ts'
import type { Thresholds } from '../../../../shared/thresholds.ts'
import { againstBand, type Probe, type ProbeContext, type ProbeResult, redact } from './types.ts'

const MAX_BODY_BYTES = 65_536
const StorageError = z.looseObject({
  statusCode: z.union([z.string(), z.number()]).optional(),
  code: z.string().optional(),
  error: z.string().optional(),
  message: z.string().optional(),
})

export const supabaseStorageProbe: Probe<SupabaseStorageConfig> = {
  kind: 'supabase_storage',
  config: SupabaseStorageConfig,
  async run(config, ctx) {
    const key = ctx.secret(config.apikey_secret)
    if (!key) return down(`secret ${config.apikey_secret} is not set`, {})
    const secrets = [key]
    const base = `${(config.url ?? ctx.projectUrl).replace(/\/+$/, '')}/storage/v1`
    const headers = apiKeyHeaders(key)

    const status = await send(ctx, `${base}/status`, { headers })
    if ('failure' in status) return down(`storage status check failed: ${redact(status.failure, secrets)}`, {}, status.ms)
    const measurements: Record<string, unknown> = { status_code: status.status, latency_ms: status.ms }
    if (status.status !== 200) {
      return down(`storage status answered HTTP ${status.status}: ${excerpt(status.text, secrets)}`, measurements, status.ms)
    }
    const latency = judgeLatency(status.ms, config, ctx.thresholds)
    Object.assign(measurements, { latency_warning_ms: latency.warning, latency_critical_ms: latency.critical })
    const metrics = [{ name: 'http_request_duration' as const, value: status.ms, labels: { endpoint: 'storage_status' } }]

    if (config.bucket) {
      const bucket = config.bucket
      const list = await send(ctx, `${base}/object/list/${encodeURIComponent(bucket)}`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ prefix: '', limit: 1, offset: 0 }),
      })
      measurements.bucket = bucket
      if ('failure' in list) {
        return down(`listing bucket "${bucket}" failed: ${redact(list.failure, secrets)}`, measurements, status.ms)
      }
      measurements.list_status_code = list.status
      measurements.list_ms = list.ms
      metrics.push({ name: 'http_request_duration', value: list.ms, labels: { endpoint: 'storage_list' } })
      if (list.status !== 200) {
        return down(listError(bucket, list.status, list.text, secrets), measurements, status.ms)
      }
      const objects = z.array(z.unknown()).safeParse(parseJson(list.text))
      if (!objects.success) {
        return down(`listing bucket "${bucket}": unexpected response: ${excerpt(list.text, secrets)}`, measurements, status.ms)
      }
      measurements.objects_listed = objects.data.length
    }

    return {
      status: latency.status,
      responseMs: status.ms,
      measurements,
      metrics,
      ...(latency.problem ? { error: latency.problem } : {}),
    }
  },
}

function listError(bucket: string, httpStatus: number, text: string, secrets: string[]): string {
  const parsed = StorageError.safeParse(parseJson(text))
  const body = parsed.success ? parsed.data : {}
  const missing = httpStatus === 404 || String(body.statusCode) === '404' || body.code === 'NoSuchBucket' ||
    body.error === 'Bucket not found'
  if (missing) return `bucket "${bucket}" not found`
  const detail = [body.code ?? body.error, body.message].filter(Boolean).join(': ')
  return `listing bucket "${bucket}" answered HTTP ${httpStatus}: ${detail ? redact(detail, secrets) : excerpt(text, secrets)}`
}

/** Legacy keys are JWTs and go in Authorization too; sb_… API keys are not JWTs: apikey only. */
function apiKeyHeaders(key: string): Record<string, string> {
  return isJwt(key) ? { apikey: key, authorization: `Bearer ${key}` } : { apikey: key }
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
