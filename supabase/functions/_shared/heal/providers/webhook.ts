// Calling out: the one HTTP exchange every provider adapter makes, and the plain webhook itself (a
// POST to an operator's endpoint, a deploy hook). Every failure becomes a HealError naming who was
// called, the status and a short redacted excerpt of the answer; no token or secret URL ever
// appears in one, because services echo what they were sent.
import type { z } from 'zod'
import { clip, errorMessage, excerpt, parseJson, readTruncated } from '../../probes/support.ts'
import { redact } from '../../probes/types.ts'
import { type HealContext, HealError } from '../types.ts'

/** Provider answers are small JSON documents; a longer one is cut off (and then fails to parse). */
const MAX_ANSWER_BYTES = 2_097_152

export interface ProviderCall {
  /** Who is called, for messages: "Cloudflare purge_cache for zone 023e…". */
  what: string
  method: 'GET' | 'POST' | 'PUT'
  url: string
  /** Sent as `Authorization: Bearer …`. */
  token?: string
  /** The secret holding the token, named in the hint on a 401 or 403. */
  tokenSecret?: string
  /** Sent as JSON. */
  body?: unknown
  /** Values never shown in an error besides the token: a secret URL, say. */
  secrets?: (string | undefined)[]
  /** Gives up after this long; the heal's deadline (ctx.signal) applies as well. */
  timeoutMs: number
  /** The provider's own words for a non-2xx answer, read from its error document, if it has some. */
  explain?: (text: string) => string | undefined
}

export interface ProviderAnswer {
  status: number
  text: string
}

/**
 * One request, never following redirects (a credential must not travel to wherever one points).
 * Resolves with a 2xx answer; throws a HealError for anything else.
 */
export async function callProvider(ctx: HealContext, call: ProviderCall): Promise<ProviderAnswer> {
  const secrets = [call.token, ...(call.secrets ?? [])]
  const say = (text: string) => redact(text, secrets)
  if (ctx.signal.aborted) {
    throw new HealError(say(`${call.what}: not called, the heal's deadline has passed`))
  }

  const headers = new Headers({ accept: 'application/json', 'user-agent': 'Vigil auto-heal' })
  if (call.token !== undefined) headers.set('authorization', `Bearer ${call.token}`)
  if (call.body !== undefined) headers.set('content-type', 'application/json')

  const controller = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    controller.abort()
  }, call.timeoutMs)
  const onDeadline = () => controller.abort()
  ctx.signal.addEventListener('abort', onDeadline, { once: true })
  const started = performance.now()
  try {
    const response = await ctx.fetch(call.url, {
      method: call.method,
      headers,
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
      redirect: 'manual',
      signal: controller.signal,
    })
    const text = await readTruncated(response, MAX_ANSWER_BYTES)
    if (response.status < 200 || response.status > 299) {
      const detail = excerpt(call.explain?.(text) ?? text, secrets, 200)
      throw new HealError(
        say(`${call.what} answered ${response.status}${hint(response.status, call)}: ${detail}`),
      )
    }
    return { status: response.status, text }
  } catch (error) {
    if (error instanceof HealError) throw error
    const ms = Math.round(performance.now() - started)
    if (timedOut) throw new HealError(say(`${call.what}: no answer within ${call.timeoutMs} ms`))
    if (ctx.signal.aborted) {
      throw new HealError(
        say(
          `${call.what}: the heal's deadline passed while waiting for an answer (after ${ms} ms)`,
        ),
      )
    }
    throw new HealError(say(`${call.what} unreachable: ${clip(errorMessage(error), 200)}`))
  } finally {
    clearTimeout(timer)
    ctx.signal.removeEventListener('abort', onDeadline)
  }
}

/** A 2xx answer's JSON, checked against what the provider documents; a HealError when it is not. */
export function parseAnswer<T>(
  schema: z.ZodType<T>,
  answer: ProviderAnswer,
  what: string,
  secrets: (string | undefined)[],
): T {
  const doc = parseJson(answer.text)
  if (doc === undefined) {
    throw new HealError(
      redact(
        `${what} answered ${answer.status} with no JSON: ${excerpt(answer.text, secrets, 200)}`,
        secrets,
      ),
    )
  }
  const parsed = schema.safeParse(doc)
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 3).map((i) =>
      `${i.path.join('.') || '(root)'} ${i.message}`
    )
    throw new HealError(
      redact(
        `${what} answered ${answer.status} with an unexpected document (${issues.join('; ')}): ${
          excerpt(answer.text, secrets, 200)
        }`,
        secrets,
      ),
    )
  }
  return parsed.data
}

/** A secret's value; a HealError naming the secret (never its value) when it is unset. */
export function requireSecret(ctx: HealContext, name: string, purpose: string): string {
  const value = ctx.secret(name)
  if (value === undefined || value === '') {
    throw new HealError(`secret ${name} (${purpose}) is not set`)
  }
  return value
}

/** Where `url` points, safe to show: scheme, host and path, never query, user or password. */
export function shown(url: string): string {
  const u = URL.parse(url)
  return u ? `${u.protocol}//${u.host}${u.pathname}` : '(invalid URL)'
}

export interface Webhook {
  url: string
  method?: 'POST' | 'PUT'
  token_secret?: string
  body?: Record<string, unknown>
}

/**
 * Calls an operator's webhook (a restart endpoint, a certificate renewal, an auth refresh) with its
 * own body, or else `{action, service, service_id, incident_id}`. Any 2xx counts as done; the
 * answer's body is not interpreted.
 */
export async function callWebhook(
  ctx: HealContext,
  hook: Webhook,
  what: string,
  action: string,
  timeoutMs: number,
): Promise<ProviderAnswer> {
  const token = hook.token_secret
    ? requireSecret(ctx, hook.token_secret, `token for ${what}`)
    : undefined
  return await callProvider(ctx, {
    what: `${what} (${hook.method ?? 'POST'} ${shown(hook.url)})`,
    method: hook.method ?? 'POST',
    url: hook.url,
    token,
    tokenSecret: hook.token_secret,
    body: hook.body ??
      {
        action,
        service: ctx.service.name,
        service_id: ctx.service.id,
        incident_id: ctx.incidentId,
      },
    timeoutMs,
  })
}

/**
 * Posts a deploy hook (Vercel deploy hooks, Netlify build hooks: a POST with no body, no auth).
 * The URL is itself the credential, so messages name its secret instead.
 */
export async function triggerDeployHook(
  ctx: HealContext,
  hookUrlSecret: string,
  what: string,
  timeoutMs: number,
): Promise<ProviderAnswer> {
  const url = requireSecret(ctx, hookUrlSecret, `${what} URL`)
  const parsed = URL.parse(url)
  if (!parsed || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
    throw new HealError(`secret ${hookUrlSecret} (${what} URL) does not hold an http(s) URL`)
  }
  return await callProvider(ctx, {
    what: `${what} (the URL in ${hookUrlSecret})`,
    method: 'POST',
    url,
    // A runtime error may quote the URL whole or just its path, which holds the hook's key.
    secrets: [url, parsed.pathname, parsed.pathname.split('/').at(-1) ?? '', parsed.search].filter((
      s,
    ) => s.length >= 8),
    timeoutMs,
  })
}

function hint(status: number, call: ProviderCall): string {
  if (status === 401 || status === 403) {
    return call.tokenSecret
      ? ` (check the token in ${call.tokenSecret} and its permissions)`
      : ' (not authorized)'
  }
  if (status === 429) return ' (rate limited)'
  if (status >= 300 && status < 400) return ' (redirects are not followed)'
  return ''
}
