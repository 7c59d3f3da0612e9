// Supabase Storage (storage-api): the service answers, and a configured bucket exists and lists.
// storage-api's routes (supabase/storage src/app.ts, src/http/routes/object/listObjects.ts):
// GET /status → 200 with an empty body (liveness); POST /object/list/:bucketName
// {prefix, limit, offset} → an array of objects. Errors render as {statusCode: '404', error,
// message} with HTTP 400 (older releases) or HTTP 404 and code 'NoSuchBucket' (newer ones).
import { z } from 'zod'
import { SupabaseStorageConfig } from '../../../../shared/probe-configs.ts'
import {
  apiKeyHeaders,
  byLatency,
  down,
  endpoint,
  excerpt,
  judgeLatency,
  missingSecret,
  parseJson,
  send,
} from './support.ts'
import { type Probe, redact } from './types.ts'

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
    if (!key) return missingSecret(config.apikey_secret)
    const secrets = [key]
    const base = endpoint(config.url ?? ctx.projectUrl, '/storage/v1')
    const headers = apiKeyHeaders(key)

    const status = await send(ctx, `${base}/status`, { headers }, MAX_BODY_BYTES)
    if ('failure' in status) {
      return down(`storage status check failed: ${redact(status.failure, secrets)}`, {}, status.ms)
    }
    const measurements: Record<string, unknown> = {
      status_code: status.status,
      latency_ms: status.ms,
    }
    if (status.status !== 200) {
      return down(
        `storage status answered HTTP ${status.status}: ${excerpt(status.text, secrets)}`,
        measurements,
        status.ms,
      )
    }
    const latency = judgeLatency(status.ms, config, ctx.thresholds)
    Object.assign(measurements, latency.measurements)
    const metrics = [{
      name: 'http_request_duration' as const,
      value: status.ms,
      labels: { endpoint: 'storage_status' },
    }]

    if (config.bucket) {
      const bucket = config.bucket
      const list = await send(ctx, `${base}/object/list/${encodeURIComponent(bucket)}`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ prefix: '', limit: 1, offset: 0 }),
      }, MAX_BODY_BYTES)
      measurements.bucket = bucket
      if ('failure' in list) {
        return down(
          `listing bucket "${bucket}" failed: ${redact(list.failure, secrets)}`,
          measurements,
          status.ms,
        )
      }
      measurements.list_status_code = list.status
      measurements.list_ms = list.ms
      metrics.push({
        name: 'http_request_duration',
        value: list.ms,
        labels: { endpoint: 'storage_list' },
      })
      if (list.status !== 200) {
        return down(listError(bucket, list.status, list.text, secrets), measurements, status.ms)
      }
      const objects = z.array(z.unknown()).safeParse(parseJson(list.text))
      if (!objects.success) {
        return down(
          `listing bucket "${bucket}": unexpected response: ${excerpt(list.text, secrets)}`,
          measurements,
          status.ms,
        )
      }
      measurements.objects_listed = objects.data.length
    }

    return byLatency(latency, status.ms, measurements, metrics)
  },
}

function listError(bucket: string, httpStatus: number, text: string, secrets: string[]): string {
  const parsed = StorageError.safeParse(parseJson(text))
  const body = parsed.success ? parsed.data : {}
  const missing = httpStatus === 404 || String(body.statusCode) === '404' ||
    body.code === 'NoSuchBucket' ||
    body.error === 'Bucket not found'
  if (missing) return `bucket "${bucket}" not found`
  const detail = [body.code ?? body.error, body.message].filter(Boolean).join(': ')
  return `listing bucket "${bucket}" answered HTTP ${httpStatus}: ${
    detail ? redact(detail, secrets) : excerpt(text, secrets)
  }`
}
