// Supabase Management API: restart a project. `POST {api_url}/v1/projects/{ref}/restart` with a
// personal access token as Bearer (OAuth scope projects:write); 200 with `{}` when accepted, 401,
// 403 or 429 otherwise (supabase.com/docs/reference/api/v1-restart-a-project). The restart itself
// runs afterwards: the caller re-probes to see it finish.
import { z } from 'zod'
import { endpoint } from '../../probes/support.ts'
import type { HealContext } from '../types.ts'
import { callProvider, parseAnswer, requireSecret } from './webhook.ts'

export interface ManagementTarget {
  api_url: string
  project_ref: string
  access_token_secret: string
}

const Accepted = z.looseObject({})

/** Asks the Management API to restart the project; resolves once the request is accepted. */
export async function restartProject(
  ctx: HealContext,
  target: ManagementTarget,
  timeoutMs: number,
): Promise<void> {
  const token = requireSecret(ctx, target.access_token_secret, 'Supabase access token')
  const what = `Supabase Management API restart of project ${target.project_ref}`
  const answer = await callProvider(ctx, {
    what,
    method: 'POST',
    url: endpoint(target.api_url, `/v1/projects/${encodeURIComponent(target.project_ref)}/restart`),
    token,
    tokenSecret: target.access_token_secret,
    timeoutMs,
  })
  if (answer.text.trim() !== '') parseAnswer(Accepted, answer, what, [token])
}
