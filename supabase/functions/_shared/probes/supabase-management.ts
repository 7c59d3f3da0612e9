// Supabase's own view of the project: GET /v1/projects/{ref}/health?services=… on the Management
// API (Bearer access token) → [{name, healthy, status: COMING_UP | ACTIVE_HEALTHY | UNHEALTHY,
// error?, info?}] (the V1ServiceHealthResponse schema; `healthy` is deprecated in favour of status).
import { z } from 'zod'
import { SupabaseManagementConfig } from '../../../../shared/probe-configs.ts'
import { endpoint, excerpt, missingSecret, parseJson, result, send } from './support.ts'
import { type Probe, redact } from './types.ts'

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
    if (!token) return missingSecret(config.access_token_secret)
    const secrets = [token]
    const url = endpoint(
      config.api_url,
      `/v1/projects/${config.project_ref}/health?services=${config.services.join(',')}`,
    )

    const headers = { authorization: `Bearer ${token}`, accept: 'application/json' }
    const answer = await send(ctx, url, { headers }, MAX_BODY_BYTES)
    if ('failure' in answer) {
      return result('down', `Management API ${redact(answer.failure, secrets)}`, {}, answer.ms)
    }
    const measurements: Record<string, unknown> = {
      status_code: answer.status,
      latency_ms: answer.ms,
    }
    const fail = (status: 'down' | 'degraded', error: string) =>
      result(status, error, measurements, answer.ms)

    if (answer.status === 401 || answer.status === 403) {
      return fail('down', `access token rejected (HTTP ${answer.status})`)
    }
    if (answer.status === 404) {
      return fail('down', `project ${config.project_ref} not found (HTTP 404)`)
    }
    // Rate limited: nothing is known about the project, and a refused read is not an outage.
    if (answer.status === 429) {
      return fail('degraded', 'rate limited by the Management API (HTTP 429)')
    }
    if (answer.status !== 200) {
      return fail(
        'down',
        `Management API answered HTTP ${answer.status}: ${excerpt(answer.text, secrets)}`,
      )
    }

    const parsed = HealthResponse.safeParse(parseJson(answer.text))
    if (!parsed.success) {
      return fail(
        'down',
        `unexpected response from the Management API: ${excerpt(answer.text, secrets)}`,
      )
    }

    const services: Record<string, { status: string; error?: string }> = {}
    for (const s of parsed.data) {
      services[s.name] = {
        status: s.status,
        ...(s.error ? { error: redact(s.error, secrets) } : {}),
      }
    }
    const unhealthy = parsed.data.filter((s) => s.status === 'UNHEALTHY')
    const comingUp = parsed.data.filter((s) => s.status === 'COMING_UP').map((s) => s.name)
    const missing = config.services.filter((name) => !(name in services))
    Object.assign(measurements, {
      services,
      unhealthy: unhealthy.map((s) => s.name),
      coming_up: comingUp,
      missing,
    })

    if (unhealthy.length > 0) {
      const named = unhealthy.map((
        s,
      ) => (s.error ? `${s.name} (${redact(s.error, secrets)})` : s.name))
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
