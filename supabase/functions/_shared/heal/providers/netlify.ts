// Netlify: publish an earlier deploy again (a rollback), Bearer token (netlify/open-api swagger):
//   GET  {api_url}/api/v1/sites/{site_id}/deploys?per_page=…   listSiteDeploys, newest first
//        → [{id, state, context, created_at, published_at, branch, commit_ref, …}]
//   POST {api_url}/api/v1/sites/{site_id}/deploys/{deploy_id}/restore   restoreSiteDeploy → 201 deploy
// Errors come as {code, message}.
import { z } from 'zod'
import { endpoint, parseJson } from '../../probes/support.ts'
import { type HealContext, HealError } from '../types.ts'
import type { DeploymentRef, RollbackChoice } from './vercel.ts'
import { callProvider, parseAnswer, requireSecret } from './webhook.ts'

export interface NetlifySite {
  api_url: string
  site_id: string
  token_secret: string
}

const Deploy = z.looseObject({
  id: z.string().min(1),
  state: z.string(),
  context: z.string().nullish(),
  created_at: z.string(),
  published_at: z.string().nullish(),
  deploy_ssl_url: z.string().nullish(),
})
type Deploy = z.infer<typeof Deploy>

const ErrorDoc = z.looseObject({ code: z.number().optional(), message: z.string() })
const explain = (text: string) => {
  const doc = ErrorDoc.safeParse(parseJson(text))
  return doc.success ? doc.data.message : undefined
}

/**
 * The deploy the site serves now (`currentId`, else the one published last) and the newest ready
 * production deploy created before it that was once published, or why there is none.
 */
export async function chooseRestore(
  ctx: HealContext,
  site: NetlifySite,
  options: { currentId?: string; candidates: number; timeoutMs: number },
): Promise<RollbackChoice> {
  const token = requireSecret(ctx, site.token_secret, 'Netlify token')
  const what = `Netlify deploys of site ${site.site_id}`
  const answer = await callProvider(ctx, {
    what,
    method: 'GET',
    url: endpoint(
      site.api_url,
      `/api/v1/sites/${encodeURIComponent(site.site_id)}/deploys?per_page=${options.candidates}`,
    ),
    token,
    tokenSecret: site.token_secret,
    timeoutMs: options.timeoutMs,
    explain,
  })
  const deploys = parseAnswer(z.array(Deploy), answer, what, [token])
  const published = deploys
    .filter((d) =>
      d.state === 'ready' && d.published_at && (d.context ?? 'production') === 'production'
    )
    .sort((a, b) => time(b.created_at) - time(a.created_at))
  if (published.length === 0) return { none: `site ${site.site_id} has no published ready deploy` }
  const current = options.currentId
    ? published.find((d) => d.id === options.currentId)
    : published.reduce((a, b) => (time(b.published_at!) > time(a.published_at!) ? b : a))
  if (!current) {
    return {
      none:
        `deploy ${options.currentId} was never published, so the site still serves an earlier one`,
    }
  }
  const to = published.find((d) =>
    d.id !== current.id && time(d.created_at) < time(current.created_at)
  )
  if (!to) {
    return { none: `no published ready deploy of site ${site.site_id} precedes ${current.id}` }
  }
  return { from: ref(current), to: ref(to) }
}

/** Publishes `deployId` again; resolves once Netlify answered with that deploy. */
export async function restoreDeploy(
  ctx: HealContext,
  site: NetlifySite,
  deployId: string,
  timeoutMs: number,
): Promise<void> {
  const token = requireSecret(ctx, site.token_secret, 'Netlify token')
  const what = `Netlify restore of deploy ${deployId} on site ${site.site_id}`
  const path = `/api/v1/sites/${encodeURIComponent(site.site_id)}/deploys/${
    encodeURIComponent(deployId)
  }/restore`
  const answer = await callProvider(ctx, {
    what,
    method: 'POST',
    url: endpoint(site.api_url, path),
    token,
    tokenSecret: site.token_secret,
    timeoutMs,
    explain,
  })
  const restored = parseAnswer(Deploy, answer, what, [token])
  if (restored.id !== deployId) {
    throw new HealError(`${what} answered with deploy ${restored.id} instead`)
  }
}

function time(iso: string): number {
  const t = Date.parse(iso)
  return Number.isNaN(t) ? 0 : t
}

function ref(d: Deploy): DeploymentRef {
  return { id: d.id, created: d.created_at, url: d.deploy_ssl_url ?? null }
}
