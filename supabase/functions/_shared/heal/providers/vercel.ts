// Vercel: point production back at an earlier deployment (Instant Rollback), Bearer token, teamId
// as a query parameter when the project belongs to a team (vercel.com/docs/rest-api):
//   GET  {api_url}/v6/deployments?projectId=…&target=production&state=READY&limit=…
//        → {deployments: [{uid, created, state, readyState, target, isRollbackCandidate, url}], pagination}
//   POST {api_url}/v1/projects/{projectId}/rollback/{deploymentId}?description=…  → 201
// Errors come as {error: {code, message}}. Hobby plans may only roll back to the previous
// production deployment, which is the one chosen here.
import { z } from 'zod'
import { endpoint, parseJson } from '../../probes/support.ts'
import type { HealContext } from '../types.ts'
import { callProvider, parseAnswer, requireSecret } from './webhook.ts'

export interface VercelProject {
  api_url: string
  project_id: string
  token_secret: string
  team_id?: string
}

const Deployment = z.looseObject({
  uid: z.string().min(1),
  created: z.number(),
  state: z.string().optional(),
  readyState: z.string().optional(),
  target: z.string().nullish(),
  isRollbackCandidate: z.boolean().nullish(),
  url: z.string().nullish(),
})
type Deployment = z.infer<typeof Deployment>
const DeploymentList = z.looseObject({ deployments: z.array(Deployment) })

const ErrorDoc = z.looseObject({
  error: z.looseObject({ code: z.string().optional(), message: z.string() }),
})
const explain = (text: string) => {
  const doc = ErrorDoc.safeParse(parseJson(text))
  return doc.success
    ? [doc.data.error.code, doc.data.error.message].filter(Boolean).join(': ')
    : undefined
}

export interface DeploymentRef {
  id: string
  created: string
  url: string | null
}

export type RollbackChoice =
  | { from: DeploymentRef; to: DeploymentRef }
  | { none: string }

/**
 * The deployment production serves now (`currentId`, else the newest ready production one) and the
 * newest ready production deployment before it, or why there is none to go back to.
 */
export async function chooseRollback(
  ctx: HealContext,
  project: VercelProject,
  options: { currentId?: string; candidates: number; timeoutMs: number },
): Promise<RollbackChoice> {
  const token = requireSecret(ctx, project.token_secret, 'Vercel token')
  const what = `Vercel deployments of project ${project.project_id}`
  const query = new URLSearchParams({
    projectId: project.project_id,
    target: 'production',
    state: 'READY',
    limit: String(options.candidates),
  })
  if (project.team_id) query.set('teamId', project.team_id)
  const answer = await callProvider(ctx, {
    what,
    method: 'GET',
    url: endpoint(project.api_url, `/v6/deployments?${query}`),
    token,
    tokenSecret: project.token_secret,
    timeoutMs: options.timeoutMs,
    explain,
  })
  const { deployments } = parseAnswer(DeploymentList, answer, what, [token])
  // The filters are the API's; checked again so a deployment that is not live-able is never chosen
  // (a preview deployment has target null; an absent target leaves it to the API's filter).
  const ready = deployments
    .filter((d) =>
      (d.readyState ?? d.state) === 'READY' && (d.target === 'production' || d.target === undefined)
    )
    .sort((a, b) => b.created - a.created)
  if (ready.length === 0) {
    return { none: `project ${project.project_id} has no ready production deployment` }
  }
  const at = options.currentId ? ready.findIndex((d) => d.uid === options.currentId) : 0
  if (at === -1) {
    return {
      none:
        `deployment ${options.currentId} is not a ready production deployment, so production still serves ${
          ready[0].uid
        }`,
    }
  }
  const to = ready.slice(at + 1).find((d) => d.isRollbackCandidate !== false)
  if (!to) {
    return {
      none: `no ready production deployment of project ${project.project_id} precedes ${
        ready[at].uid
      }`,
    }
  }
  return { from: ref(ready[at]), to: ref(to) }
}

/** Points production at `deploymentId`; resolves once Vercel accepted the rollback. */
export async function rollbackTo(
  ctx: HealContext,
  project: VercelProject,
  deploymentId: string,
  description: string,
  timeoutMs: number,
): Promise<void> {
  const token = requireSecret(ctx, project.token_secret, 'Vercel token')
  const query = new URLSearchParams({ description })
  if (project.team_id) query.set('teamId', project.team_id)
  const path = `/v1/projects/${encodeURIComponent(project.project_id)}/rollback/${
    encodeURIComponent(deploymentId)
  }`
  await callProvider(ctx, {
    what: `Vercel rollback of project ${project.project_id} to ${deploymentId}`,
    method: 'POST',
    url: endpoint(project.api_url, `${path}?${query}`),
    token,
    tokenSecret: project.token_secret,
    timeoutMs,
    explain,
  })
}

function ref(d: Deployment): DeploymentRef {
  return { id: d.uid, created: new Date(d.created).toISOString(), url: d.url ?? null }
}
