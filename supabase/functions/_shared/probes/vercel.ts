// A Vercel project's deployments: GET {api_url}/v6/deployments?projectId=…&target=…&limit=…
// (Bearer token, teamId when the project belongs to a team; vercel.com/docs/rest-api) →
// {deployments: [{uid, created, state | readyState, buildingAt?, ready?, target, url, errorMessage?,
// meta?}]}. The newest deployment says how the project's deploys go:
//   READY (or CANCELED, a person's choice)     healthy
//   ERROR                                       degraded, decisive: the build failed, and the
//                                               finding deploy_failed leads to retry_deploy, then
//                                               rollback_deploy. Production still serves the last
//                                               good deployment, so it is not down.
//   QUEUED / INITIALIZING / BUILDING            healthy, then degraded past build_warning_minutes
//                                               and down past build_critical_minutes (a hung build)
// What production serves is the newest READY one; both are in the measurements.
import { z } from 'zod'
import { VercelConfig } from '../../../../shared/probe-configs.ts'
import type { CheckStatus } from '../../../../shared/kinds.ts'
import type { Finding } from '../../../../shared/findings.ts'
import { endpoint, excerpt, missingSecret, parseJson, result, round, send } from './support.ts'
import { type Probe, redact } from './types.ts'

/** Enough for a page of deployments, whose entries carry build metadata. */
const MAX_BODY_BYTES = 524_288
/** The newest few are enough to find the latest one and the one production serves. */
const PAGE = 10
const MAX_ERROR_CHARS = 300

const Deployment = z.looseObject({
  uid: z.string().min(1).max(200),
  created: z.number(),
  state: z.string().optional(),
  readyState: z.string().optional(),
  buildingAt: z.number().nullish(),
  ready: z.number().nullish(),
  target: z.string().nullish(),
  url: z.string().nullish(),
  errorMessage: z.string().nullish(),
  errorCode: z.string().nullish(),
  meta: z.record(z.string(), z.unknown()).nullish(),
})
type Deployment = z.infer<typeof Deployment>
const DeploymentList = z.looseObject({ deployments: z.array(Deployment) })

const ErrorDoc = z.looseObject({
  error: z.looseObject({ code: z.string().optional(), message: z.string() }),
})

const IN_PROGRESS = new Set(['QUEUED', 'INITIALIZING', 'BUILDING'])

export const vercelProbe: Probe<VercelConfig> = {
  kind: 'vercel',
  config: VercelConfig,
  async run(config, ctx) {
    const token = ctx.secret(config.token_secret)
    if (!token) return missingSecret(config.token_secret)
    const secrets = [token]
    const query = new URLSearchParams({
      projectId: config.project_id,
      target: config.target,
      limit: String(PAGE),
    })
    if (config.team_id) query.set('teamId', config.team_id)
    const answer = await send(
      ctx,
      endpoint(config.api_url, `/v6/deployments?${query}`),
      { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } },
      MAX_BODY_BYTES,
    )
    if ('failure' in answer) {
      return result('down', `Vercel API ${redact(answer.failure, secrets)}`, {}, answer.ms)
    }
    const measurements: Record<string, unknown> = {
      status_code: answer.status,
      latency_ms: answer.ms,
      project_id: config.project_id,
      target: config.target,
    }
    const fail = (status: CheckStatus, error: string) =>
      result(status, error, measurements, answer.ms)
    const said = () => {
      const doc = ErrorDoc.safeParse(parseJson(answer.text))
      return doc.success
        ? redact([doc.data.error.code, doc.data.error.message].filter(Boolean).join(': '), secrets)
        : excerpt(answer.text, secrets)
    }
    if (answer.status === 401 || answer.status === 403) {
      return fail('down', `Vercel token in ${config.token_secret} rejected (HTTP ${answer.status})`)
    }
    if (answer.status === 404) {
      return fail('down', `Vercel project ${config.project_id} not found (HTTP 404): ${said()}`)
    }
    // Rate limited: nothing is known about the deploys, and a refused read is not an outage.
    if (answer.status === 429) return fail('degraded', 'rate limited by the Vercel API (HTTP 429)')
    if (answer.status !== 200) {
      return fail('down', `Vercel API answered HTTP ${answer.status}: ${said()}`)
    }
    const parsed = DeploymentList.safeParse(parseJson(answer.text))
    if (!parsed.success) {
      return fail('down', `unexpected answer from the Vercel API: ${excerpt(answer.text, secrets)}`)
    }

    // The API lists newest first; sorted again so the judgement never rests on that.
    const list = parsed.data.deployments
      .filter((d) => config.target === 'preview' || (d.target ?? 'production') === 'production')
      .sort((a, b) => b.created - a.created)
    if (list.length === 0) {
      measurements.deployments = 0
      return result('healthy', undefined, measurements, answer.ms)
    }
    const now = Date.now()
    const latest = list[0]
    const state = stateOf(latest)
    const serving = list.find((d) => stateOf(d) === 'READY')
    Object.assign(measurements, {
      deployments: list.length,
      latest: describe(latest, now, secrets),
      serving: serving ? describe(serving, now, secrets) : null,
    })

    if (state === 'ERROR') {
      const error = errorOf(latest, secrets)
      const finding: Finding<'deploy_failed'> = {
        kind: 'deploy_failed',
        status: 'degraded',
        evidence: { deployment_id: latest.uid, error },
      }
      // A failed build is a fact, not a reading that may flicker: one check is enough.
      measurements.decisive_status = 'degraded'
      return {
        ...fail(
          'degraded',
          `the latest ${config.target} deployment ${latest.uid} failed${error ? `: ${error}` : ''}${
            serving ? `; ${serving.uid} still serves` : ''
          }`,
        ),
        findings: [finding],
      }
    }
    if (IN_PROGRESS.has(state)) {
      const since = latest.buildingAt ?? latest.created
      const minutes = Math.max(0, (now - since) / 60_000)
      measurements.build_minutes = round(minutes, 1)
      const status: CheckStatus = minutes > config.build_critical_minutes
        ? 'down'
        : minutes > config.build_warning_minutes
        ? 'degraded'
        : 'healthy'
      if (status !== 'healthy') {
        measurements.decisive_status = status
        return fail(
          status,
          `deployment ${latest.uid} has been ${state.toLowerCase()} for ${
            Math.floor(minutes)
          } min (warning from ${config.build_warning_minutes}, critical from ${config.build_critical_minutes})`,
        )
      }
    }
    return result('healthy', undefined, measurements, answer.ms)
  },
}

function stateOf(d: Deployment): string {
  return (d.readyState ?? d.state ?? 'UNKNOWN').toUpperCase()
}

function errorOf(d: Deployment, secrets: string[]): string | null {
  const text = [d.errorCode, d.errorMessage].filter(Boolean).join(': ')
  return text ? redact(text, secrets).slice(0, MAX_ERROR_CHARS) : null
}

function describe(d: Deployment, now: number, secrets: string[]) {
  const version = d.meta?.githubCommitSha ?? d.meta?.version
  return {
    id: d.uid,
    state: stateOf(d),
    created: new Date(d.created).toISOString(),
    age_minutes: round(Math.max(0, now - d.created) / 60_000, 1),
    ...(d.url ? { url: redact(d.url, secrets) } : {}),
    ...(typeof version === 'string' ? { version: version.slice(0, 100) } : {}),
    ...(d.ready && d.buildingAt
      ? { build_seconds: round((d.ready - d.buildingAt) / 1000, 1) }
      : {}),
  }
}
