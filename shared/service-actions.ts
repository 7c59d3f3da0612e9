// How Vigil may act on a service: what a row of vigil.services may hold in `actions` (jsonb,
// default {}). Each key enables the strategies that need it; a service without a key is never acted
// on that way. Secrets never live here: a field ending in _secret names the environment variable
// (an edge-function secret) holding one, and a deploy hook URL counts as a secret.
import { z } from 'zod'
import { pathId, SecretName } from './probe-configs.ts'

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' })

/** A POST (or PUT) to the operator's own endpoint, with an optional Bearer token. */
export const WebhookRestart = z.strictObject({
  type: z.literal('webhook'),
  url: httpUrl,
  method: z.enum(['POST', 'PUT']).default('POST'),
  token_secret: SecretName.optional(),
  /** Sent as JSON; absent, Vigil sends {action, service, service_id, incident_id}. */
  body: z.record(z.string(), z.json()).optional(),
})

/** Restarts a whole Supabase project: POST {api_url}/v1/projects/{ref}/restart. */
export const SupabaseManagementRestart = z.strictObject({
  type: z.literal('supabase_management'),
  api_url: httpUrl.default('https://api.supabase.com'),
  project_ref: z.string().regex(/^[a-z0-9]{20}$/, 'must be a 20-character project ref'),
  access_token_secret: SecretName,
})

/** The local demo's supervisor: POST {url} with {action: 'restart', service}. */
export const SupervisorRestart = z.strictObject({
  type: z.literal('supervisor'),
  url: httpUrl,
  service: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'must be a supervised service name'),
})

export const RestartAction = z.discriminatedUnion('type', [
  WebhookRestart,
  SupabaseManagementRestart,
  SupervisorRestart,
])
export type RestartAction = z.infer<typeof RestartAction>

/**
 * Takes the service out of service (a function disabled, a worker stopped) when a restart did not
 * hold: a webhook of the operator's, or the demo's supervisor ({action: 'disable', service}).
 */
export const DisableAction = z.discriminatedUnion('type', [WebhookRestart, SupervisorRestart])
export type DisableAction = z.infer<typeof DisableAction>

/** Cloudflare's purge_cache on one zone: the listed URLs, or everything when none are. */
export const CloudflareCdn = z.strictObject({
  type: z.literal('cloudflare'),
  api_url: httpUrl.default('https://api.cloudflare.com'),
  zone_id: z.string().regex(/^[0-9a-f]{32}$/, 'must be a 32-character Cloudflare zone id'),
  token_secret: SecretName,
  /** At most 100: Cloudflare's limit of URLs per purge request. */
  files: z.array(httpUrl).min(1).max(100).optional(),
})

export const CdnAction = z.discriminatedUnion('type', [CloudflareCdn])
export type CdnAction = z.infer<typeof CdnAction>

/** A deploy (build) hook, posted after a purge so the origin serves a fresh build. */
export const RebuildAction = z.strictObject({ hook_url_secret: SecretName })
export type RebuildAction = z.infer<typeof RebuildAction>

export const VercelRollback = z.strictObject({
  type: z.literal('vercel'),
  api_url: httpUrl.default('https://api.vercel.com'),
  project_id: pathId('Vercel project id or name', 100),
  token_secret: SecretName,
  team_id: pathId('Vercel team id', 100).optional(),
})

export const NetlifyRollback = z.strictObject({
  type: z.literal('netlify'),
  api_url: httpUrl.default('https://api.netlify.com'),
  site_id: pathId('Netlify site id or domain', 253),
  token_secret: SecretName,
})

export const RollbackAction = z.discriminatedUnion('type', [VercelRollback, NetlifyRollback])
export type RollbackAction = z.infer<typeof RollbackAction>

/** A deploy hook that starts the failed deploy again. */
export const DeployRetryAction = z.strictObject({ hook_url_secret: SecretName })
export type DeployRetryAction = z.infer<typeof DeployRetryAction>

/** An endpoint of the operator's that renews the certificate (an ACME client, a control plane). */
export const CertificateRenewalAction = z.strictObject({
  url: httpUrl,
  token_secret: SecretName.optional(),
})
export type CertificateRenewalAction = z.infer<typeof CertificateRenewalAction>

/** A webhook that refreshes or restarts the auth integration (keys, JWKS, the auth server). */
export const AuthRefreshAction = z.strictObject({
  url: httpUrl,
  token_secret: SecretName.optional(),
})
export type AuthRefreshAction = z.infer<typeof AuthRefreshAction>

export const ServiceActions = z.strictObject({
  restart: RestartAction.optional(),
  disable: DisableAction.optional(),
  cdn: CdnAction.optional(),
  rebuild: RebuildAction.optional(),
  rollback: RollbackAction.optional(),
  deploy_retry: DeployRetryAction.optional(),
  certificate_renewal: CertificateRenewalAction.optional(),
  auth_refresh: AuthRefreshAction.optional(),
})
export type ServiceActions = z.infer<typeof ServiceActions>
export type ActionKey = keyof ServiceActions

/** Every problem with a value, each naming its field (`actions.restart.url: …`), or the parsed value. */
export function parseServiceActions(
  input: unknown,
): { ok: true; value: ServiceActions } | { ok: false; errors: string[] } {
  const parsed = ServiceActions.safeParse(input)
  return parsed.success
    ? { ok: true, value: parsed.data }
    : { ok: false, errors: describe(parsed.error, ['actions']) }
}

/**
 * One action of a service's raw `actions`, parsed: undefined when the service has none, or every
 * problem with it. Strategies read only their part, so a fault elsewhere does not stop them.
 */
export function readAction<K extends ActionKey>(
  actions: Record<string, unknown>,
  key: K,
): { ok: true; value: ServiceActions[K] } | { ok: false; errors: string[] } {
  const raw = actions[key]
  if (raw === undefined || raw === null) return { ok: true, value: undefined }
  const parsed = ServiceActions.shape[key].safeParse(raw)
  return parsed.success
    ? { ok: true, value: parsed.data as ServiceActions[K] }
    : { ok: false, errors: describe(parsed.error, ['actions', key]) }
}

/** The JSON Schema of the accepted input (before defaults), for a check in SQL. */
export function serviceActionsJsonSchema(): Record<string, unknown> {
  const { $schema: _, ...schema } = z.toJSONSchema(ServiceActions, { io: 'input' }) as Record<
    string,
    unknown
  >
  return schema
}

function describe(error: z.ZodError, prefix: string[]): string[] {
  return error.issues.map((issue) => {
    const path = [...prefix, ...issue.path.map(String)].join('.')
    return `${path}: ${issue.message}`
  })
}
