// Supabase Edge Functions: invoke one function through the gateway (/functions/v1/<name><path>)
// and judge its status and latency. The gateway's verify_jwt check reads Authorization and accepts
// JWTs only; sb_… API keys belong in the apikey header (supabase.com/docs/guides/functions/auth-headers).
import { SupabaseFunctionsConfig } from '../../../../shared/probe-configs.ts'
import {
  apiKeyHeaders,
  byLatency,
  down,
  endpoint,
  excerpt,
  isJwt,
  judgeLatency,
  missingSecret,
  parseJson,
  send,
} from './support.ts'
import { type Probe, redact } from './types.ts'

const MAX_BODY_BYTES = 65_536

export const supabaseFunctionsProbe: Probe<SupabaseFunctionsConfig> = {
  kind: 'supabase_functions',
  config: SupabaseFunctionsConfig,
  async run(config, ctx) {
    const key = ctx.secret(config.apikey_secret)
    if (!key) return missingSecret(config.apikey_secret)
    const secrets = [key]
    const url = endpoint(
      config.url ?? ctx.projectUrl,
      `/functions/v1/${config.function}${config.path}`,
    )
    const headers = apiKeyHeaders(key)
    // GET cannot carry a body; the config allows one, so it is sent with POST only.
    const body = config.method === 'POST' ? config.body : undefined
    if (body !== undefined) {
      headers['content-type'] = parseJson(body) === undefined
        ? 'text/plain;charset=UTF-8'
        : 'application/json'
    }

    const answer = await send(ctx, url, { method: config.method, headers, body }, MAX_BODY_BYTES)
    const measurements: Record<string, unknown> = {
      function: config.function,
      method: config.method,
    }
    if ('failure' in answer) {
      return down(
        `invoking ${config.function} failed: ${redact(answer.failure, secrets)}`,
        measurements,
        answer.ms,
      )
    }
    Object.assign(measurements, { status_code: answer.status, latency_ms: answer.ms })
    const metrics = [{
      name: 'http_request_duration' as const,
      value: answer.ms,
      labels: { function: config.function },
    }]

    if (!config.expected_status.includes(answer.status)) {
      const hint = answer.status === 401 && !isJwt(key)
        ? ' (the key is not a JWT: the gateway check verify_jwt rejects it; turn verify_jwt off for this function)'
        : ''
      return {
        status: 'down',
        responseMs: answer.ms,
        measurements,
        metrics,
        error: `${config.function} answered HTTP ${answer.status}, expected ${
          config.expected_status.join(' or ')
        }${hint}: ${excerpt(answer.text, secrets)}`,
      }
    }

    const latency = judgeLatency(answer.ms, config, ctx.thresholds)
    Object.assign(measurements, latency.measurements)
    return byLatency(latency, answer.ms, measurements, metrics)
  },
}
