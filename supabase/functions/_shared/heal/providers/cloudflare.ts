// Cloudflare: purge a zone's cache. `POST {api_url}/client/v4/zones/{zone_id}/purge_cache` with an
// API token as Bearer and `{"purge_everything": true}` or `{"files": [url, …]}` (at most 100 URLs
// a request); the answer is the v4 envelope `{success, errors: [{code, message}], messages,
// result: {id}}`, and `success: false` is a failure whatever the HTTP status
// (developers.cloudflare.com/api/resources/cache/methods/purge).
import { z } from 'zod'
import { endpoint, excerpt, parseJson } from '../../probes/support.ts'
import { type HealContext, HealError } from '../types.ts'
import { callProvider, parseAnswer, requireSecret } from './webhook.ts'

export interface CloudflareZone {
  api_url: string
  zone_id: string
  token_secret: string
  files?: string[]
}

const Envelope = z.looseObject({
  success: z.boolean(),
  errors: z.array(z.looseObject({ code: z.number().optional(), message: z.string() })).default([]),
  result: z.looseObject({ id: z.string() }).nullish(),
})

export interface Purged {
  scope: 'everything' | 'files'
  files: number
  purgeId: string | null
}

/** Purges the listed files, or everything when none are listed. */
export async function purgeCache(
  ctx: HealContext,
  zone: CloudflareZone,
  timeoutMs: number,
): Promise<Purged> {
  const token = requireSecret(ctx, zone.token_secret, 'Cloudflare API token')
  const what = `Cloudflare purge_cache for zone ${zone.zone_id}`
  const body = zone.files?.length ? { files: zone.files } : { purge_everything: true }
  const answer = await callProvider(ctx, {
    what,
    method: 'POST',
    url: endpoint(zone.api_url, `/client/v4/zones/${encodeURIComponent(zone.zone_id)}/purge_cache`),
    token,
    tokenSecret: zone.token_secret,
    body,
    timeoutMs,
    explain: (text) => {
      const envelope = Envelope.safeParse(parseJson(text))
      return envelope.success && envelope.data.errors.length
        ? describeErrors(envelope.data.errors)
        : undefined
    },
  })
  const envelope = parseAnswer(Envelope, answer, what, [token])
  if (!envelope.success) {
    throw new HealError(
      `${what} answered success: false: ${excerpt(describeErrors(envelope.errors), [token], 300)}`,
    )
  }
  return {
    scope: zone.files?.length ? 'files' : 'everything',
    files: zone.files?.length ?? 0,
    purgeId: envelope.result?.id ?? null,
  }
}

function describeErrors(errors: { code?: number; message: string }[]): string {
  if (errors.length === 0) return 'no error given'
  return errors.map((e) => (e.code === undefined ? e.message : `error ${e.code}: ${e.message}`))
    .join('; ')
}
