// A Netlify site's deploys: GET {api_url}/api/v1/sites/{site_id}/deploys?per_page=… (Bearer token;
// docs.netlify.com/api) → [{id, state, created_at, updated_at, published_at?, deploy_time?,
// error_message?, context, commit_ref?, deploy_ssl_url?}]. ready is served, error failed, the
// states before ready (new, enqueued, building, uploading, processing, …) are a build in progress,
// judged as every provider's deploys are (deploys.ts).
import { z } from 'zod'
import { NetlifyConfig } from '../../../../shared/probe-configs.ts'
import { missingSecret } from './support.ts'
import { type DeployRecord, probeDeploys } from './deploys.ts'
import type { Probe } from './types.ts'

const MAX_BODY_BYTES = 524_288
const PAGE = 10

const Deploy = z.looseObject({
  id: z.string().min(1).max(200),
  state: z.string(),
  created_at: z.string(),
  updated_at: z.string().nullish(),
  deploy_time: z.number().nullish(),
  error_message: z.string().nullish(),
  context: z.string().nullish(),
  commit_ref: z.string().nullish(),
  deploy_ssl_url: z.string().nullish(),
})
type Deploy = z.infer<typeof Deploy>

const BUILDING = new Set([
  'new',
  'pending_review',
  'accepted',
  'enqueued',
  'building',
  'uploading',
  'uploaded',
  'preparing',
  'prepared',
  'processing',
  'processed',
  'retrying',
])

export const netlifyProbe: Probe<NetlifyConfig> = {
  kind: 'netlify',
  config: NetlifyConfig,
  run(config, ctx) {
    const token = ctx.secret(config.token_secret)
    if (!token) return Promise.resolve(missingSecret(config.token_secret))
    return probeDeploys(ctx, {
      api: 'Netlify',
      api_url: config.api_url,
      path: `/api/v1/sites/${config.site_id}/deploys?per_page=${PAGE}`,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      token,
      token_secret: config.token_secret,
      target: `Netlify site ${config.site_id}`,
      measurements: { site_id: config.site_id, context: config.context },
      maxBytes: MAX_BODY_BYTES,
      records: (body) => {
        const parsed = z.array(Deploy).safeParse(body)
        if (!parsed.success) return null
        return parsed.data
          .filter((d) => config.context === 'any' || (d.context ?? 'production') === 'production')
          .flatMap((d) => record(d) ?? [])
      },
      words: {
        noun: 'deploy',
        scope: config.context === 'any' ? 'site' : 'production',
        build_warning_minutes: config.build_warning_minutes,
        build_critical_minutes: config.build_critical_minutes,
      },
    })
  },
}

/** A Netlify deploy as the deploy judgement reads it; null when its time does not parse. */
function record(d: Deploy): DeployRecord | null {
  const created = Date.parse(d.created_at)
  if (Number.isNaN(created)) return null
  const state = d.state.toLowerCase()
  return {
    id: d.id,
    created,
    raw_state: state.toUpperCase(),
    state: state === 'ready'
      ? 'ready'
      : state === 'error' || state === 'rejected'
      ? 'error'
      : BUILDING.has(state)
      ? 'building'
      : 'other',
    started: created,
    finished: state === 'ready' && d.deploy_time ? created + d.deploy_time * 1000 : null,
    error: d.error_message ?? null,
    url: d.deploy_ssl_url ?? null,
    version: d.commit_ref ?? null,
  }
}
