// A Vercel project's deployments: GET {api_url}/v6/deployments?projectId=…&target=…&limit=…
// (Bearer token, teamId when the project belongs to a team; vercel.com/docs/rest-api) →
// {deployments: [{uid, created, state | readyState, buildingAt?, ready?, target, url, errorMessage?,
// meta?}]}. READY, ERROR, CANCELED and QUEUED / INITIALIZING / BUILDING are judged as every
// provider's deploys are (deploys.ts).
import { z } from 'zod'
import { VercelConfig } from '../../../../shared/probe-configs.ts'
import { missingSecret } from './support.ts'
import { type DeployRecord, probeDeploys } from './deploys.ts'
import type { Probe } from './types.ts'

/** Enough for a page of deployments, whose entries carry build metadata. */
const MAX_BODY_BYTES = 524_288
/** The newest few are enough to find the latest one and the one production serves. */
const PAGE = 10

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

const IN_PROGRESS = new Set(['QUEUED', 'INITIALIZING', 'BUILDING'])

export const vercelProbe: Probe<VercelConfig> = {
  kind: 'vercel',
  config: VercelConfig,
  run(config, ctx) {
    const token = ctx.secret(config.token_secret)
    if (!token) return Promise.resolve(missingSecret(config.token_secret))
    const query = new URLSearchParams({
      projectId: config.project_id,
      target: config.target,
      limit: String(PAGE),
    })
    if (config.team_id) query.set('teamId', config.team_id)
    return probeDeploys(ctx, {
      api: 'Vercel',
      api_url: config.api_url,
      path: `/v6/deployments?${query}`,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      token,
      token_secret: config.token_secret,
      target: `Vercel project ${config.project_id}`,
      measurements: { project_id: config.project_id, target: config.target },
      maxBytes: MAX_BODY_BYTES,
      records: (body) => {
        const parsed = DeploymentList.safeParse(body)
        if (!parsed.success) return null
        return parsed.data.deployments
          .filter((d) => config.target === 'preview' || (d.target ?? 'production') === 'production')
          .map(record)
      },
      words: {
        noun: 'deployment',
        scope: config.target,
        build_warning_minutes: config.build_warning_minutes,
        build_critical_minutes: config.build_critical_minutes,
      },
    })
  },
}

/** A Vercel deployment as the deploy judgement reads it. */
function record(d: Deployment): DeployRecord {
  const raw = (d.readyState ?? d.state ?? 'UNKNOWN').toUpperCase()
  const version = d.meta?.githubCommitSha ?? d.meta?.version
  return {
    id: d.uid,
    created: d.created,
    raw_state: raw,
    state: raw === 'READY'
      ? 'ready'
      : raw === 'ERROR'
      ? 'error'
      : raw === 'CANCELED'
      ? 'canceled'
      : IN_PROGRESS.has(raw)
      ? 'building'
      : 'other',
    started: d.buildingAt ?? null,
    finished: d.ready ?? null,
    error: [d.errorCode, d.errorMessage].filter(Boolean).join(': ') || null,
    url: d.url ?? null,
    version: typeof version === 'string' ? version : null,
  }
}
