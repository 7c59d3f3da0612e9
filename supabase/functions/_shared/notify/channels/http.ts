// What every channel does alike: read its secrets, make one HTTP exchange, and turn the answer into
// a SendResult. Every error a channel returns passes through redaction with each secret the send
// read or derived (a provider, a runtime error or an SDK may quote the URL, the body or a header it
// was given), and every exchange is bounded by env.timeoutMs and never follows a redirect.
import type { AlertChannel } from '../../../../../shared/kinds.ts'
import { clip, errorMessage, excerpt, parseJson, readTruncated } from '../../probes/support.ts'
import { redact } from '../../probes/types.ts'
import type { AlertView, Endpoint, Notifier, NotifyEnv, SendResult } from '../types.ts'

/** Provider answers are a few hundred bytes; more is only ever shown as an excerpt. */
const MAX_ANSWER_BYTES = 65_536

/** A result decided before the end of the send; thrown inside a channel, returned by the wrapper. */
export class Outcome extends Error {
  constructor(readonly result: SendResult) {
    super(result.kind === 'delivered' ? 'delivered' : result.error)
  }
}

/** Whose fault a permanent failure is (see SendResult): every permanent result names one. */
export type Scope = NonNullable<Extract<SendResult, { kind: 'permanent' }>['scope']>

export const permanent = (error: string, scope: Scope, status?: number) =>
  new Outcome({ kind: 'permanent', error, scope, ...(status === undefined ? {} : { status }) })

export const retryable = (error: string, status?: number, retryAfterMs?: number) =>
  new Outcome({
    kind: 'retryable',
    error,
    ...(status === undefined ? {} : { status }),
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  })

export interface Outbound {
  url: string
  method?: 'POST'
  headers: Record<string, string>
  body: string
}

export interface Answer {
  status: number
  headers: Headers
  text: string
}

/** One send's view of the world: the secrets it read, and the one way it calls out. */
export class Attempt {
  readonly #hidden = new Set<string>()

  constructor(
    readonly channel: AlertChannel,
    readonly env: NotifyEnv,
  ) {}

  /**
   * A credential; unset, the send fails for good naming the variable, never a value. `scope`: a
   * project's VIGIL_* secret is its setup (`provider`); endpointSecret() passes `contact`.
   */
  secret(name: string, what: string, scope: Scope = 'provider'): string {
    const value = this.env.secret(name)
    if (value === undefined || value.trim() === '') {
      throw permanent(`${name} is not set (${what})`, scope)
    }
    // A credential is hidden however short (redact() itself skips under 4 characters).
    for (const v of [value, value.trim()]) this.#hidden.add(v)
    return value.trim()
  }

  /** A setting that is not secret (a base URL, a sender address). */
  setting(name: string): string | undefined {
    const value = this.env.secret(name)?.trim()
    return value ? value : undefined
  }

  /** The credential an endpoint names in its secret_name; missing, it is the contact's fault. */
  endpointSecret(to: Endpoint, what: string): string {
    if (!to.secretName) {
      throw permanent(
        `${this.channel} endpoint of ${to.name} names no secret (secret_name: ${what})`,
        'contact',
      )
    }
    return this.secret(to.secretName, `${what} for ${to.name}`, 'contact')
  }

  /**
   * An endpoint's secret URL (an incoming webhook holds its credential in the path): checked to be
   * http(s), a failure the contact's, and hidden whole, as parsed, and by its path and last
   * segment, which an error may quote alone.
   */
  secretUrl(name: string, value: string): URL {
    const url = URL.parse(value)
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
      throw permanent(`${name} does not hold an http(s) URL`, 'contact')
    }
    this.hide(url.href, url.pathname, url.pathname.split('/').at(-1), url.search, url.password)
    return url
  }

  /**
   * Values derived from secrets (an encoded Authorization header, a URL's path) that must not be
   * shown either. Short pieces are left: they would blank out ordinary words, and hold no secret.
   */
  hide(...values: (string | undefined)[]): void {
    for (const v of values) if (v && v.length >= 8) this.#hidden.add(v)
  }

  get secrets(): string[] {
    // Longest first: a URL is redacted whole before its path is.
    return [...this.#hidden].sort((a, b) => b.length - a.length)
  }

  redact(text: string): string {
    return redact(text, this.secrets)
  }

  /** A short, redacted excerpt of an answer's body. */
  excerpt(text: string, max = 200): string {
    return excerpt(text, this.secrets, max)
  }

  /**
   * One request, bounded by env.timeoutMs (the body read included) and never following a
   * redirect. Resolves with any answer; throws a retryable Outcome when there is none.
   */
  async exchange(provider: string, request: Outbound): Promise<Answer> {
    const controller = new AbortController()
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      controller.abort()
    }, this.env.timeoutMs)
    try {
      const response = await this.env.fetch(request.url, {
        method: request.method ?? 'POST',
        headers: request.headers,
        body: request.body,
        redirect: 'manual',
        signal: controller.signal,
      })
      const text = await readTruncated(response, MAX_ANSWER_BYTES)
      return { status: response.status, headers: response.headers, text }
    } catch (error) {
      if (timedOut) {
        throw retryable(
          `${this.channel}: ${provider} gave no answer within ${this.env.timeoutMs} ms`,
        )
      }
      throw retryable(
        `${this.channel}: ${provider} unreachable: ${clip(this.redact(causes(error)), 300)}`,
      )
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * The SendResult for an answer. `accept` looks at a 2xx: the delivered result, or undefined when
   * the body is not what the provider answers (a proxy's page, say), which is worth another try.
   * A permanent result's scope is the channel's to say (`scope`); `alert` when it does not.
   */
  judge(provider: string, answer: Answer, how: Judging): SendResult {
    const { status } = answer
    const say = (what: string) => this.redact(`${this.channel}: ${provider} answered ${what}`)
    if (status >= 200 && status < 300) {
      const delivered = how.accept(answer)
      if (delivered) return delivered
      return {
        kind: 'retryable',
        status,
        error: say(`${status} with an unexpected body: ${this.excerpt(answer.text)}`),
      }
    }
    const detail = this.excerpt(how.explain?.(answer) ?? answer.text)
    if (status >= 300 && status < 400) {
      return {
        kind: 'retryable',
        status,
        error: say(`${status} (a redirect, not followed): ${detail}`),
      }
    }
    if (status === 408 || status === 425 || status === 429 || status >= 500) {
      const wait = how.retryAfterMs?.(answer) ?? retryAfterMs(answer.headers.get('retry-after'))
      return {
        kind: 'retryable',
        status,
        error: say(`${status}${status === 429 ? ' (rate limited)' : ''}: ${detail}`),
        ...(wait === undefined ? {} : { retryAfterMs: wait }),
      }
    }
    const hint = status === 401 || status === 403 ? ' (check the credentials)' : ''
    return {
      kind: 'permanent',
      status,
      error: say(`${status}${hint}: ${detail}`),
      scope: how.scope?.(answer) ?? 'alert',
    }
  }
}

export interface Judging {
  accept(answer: Answer): SendResult | undefined
  /** The provider's own words for an error, read from its error document. */
  explain?(answer: Answer): string | undefined
  /** A provider's own way of saying when to come back, besides Retry-After. */
  retryAfterMs?(answer: Answer): number | undefined
  /**
   * Whose fault a permanent answer (a 4xx other than 408, 425 and 429) is; undefined means the
   * message's (`alert`). Only a wrong address or credential of this contact is `contact`.
   */
  scope?(answer: Answer): Scope | undefined
}

/** An error's message and its causes': fetch says "fetch failed" and puts the reason in `cause`. */
export function causes(error: unknown): string {
  const parts: string[] = []
  let e: unknown = error
  for (let depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    const message = errorMessage(e)
    if (message && !parts.some((p) => p.includes(message))) parts.push(message)
    e = (e as { cause?: unknown }).cause
  }
  return parts.join(': ')
}

/** Retry-After as milliseconds from now: seconds (possibly fractional) or an HTTP date. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined
  const trimmed = header.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.ceil(Number(trimmed) * 1000)
  const at = Date.parse(trimmed)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

/** The body as JSON, or undefined; loosely typed, as each provider's answer is read field by field. */
export const json = (text: string): any => parseJson(text)

/** A base URL from a setting, or the provider's own; a bad one fails for good, naming the setting. */
export function baseUrl(attempt: Attempt, name: string, fallback: string): string {
  const value = attempt.setting(name) ?? fallback
  const url = URL.parse(value)
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw permanent(`${name} is not an http(s) URL`, 'provider')
  }
  return value.replace(/\/+$/, '')
}

/**
 * A Notifier around a channel's send: the empty case, the Outcomes it throws, anything else it
 * throws, all turned into redacted SendResults, so send() itself never throws.
 */
export function defineNotifier(
  channel: AlertChannel,
  groups: boolean,
  send: (alerts: AlertView[], to: Endpoint, attempt: Attempt) => Promise<SendResult>,
): Notifier {
  return {
    channel,
    groups,
    async send(alerts, to, env) {
      const attempt = new Attempt(channel, env)
      try {
        if (alerts.length === 0) throw permanent(`${channel}: no alerts to send`, 'alert')
        return scrub(await send(alerts, to, attempt), attempt)
      } catch (error) {
        if (error instanceof Outcome) return scrub(error.result, attempt)
        // An unexpected failure (a bug, an SDK surprise) may pass; the outbox gives up in time.
        return {
          kind: 'retryable',
          // Redacted before the cut: a cut secret would no longer match.
          error: `${channel}: ${clip(attempt.redact(errorMessage(error)), 300)}`,
        }
      }
    },
  }
}

function scrub(result: SendResult, attempt: Attempt): SendResult {
  return result.kind === 'delivered' ? result : { ...result, error: attempt.redact(result.error) }
}

/** The headers of every request Vigil makes itself. */
export function jsonHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return { 'content-type': 'application/json', 'user-agent': 'Vigil', ...extra }
}

/** Base64 of UTF-8 text (btoa alone fails beyond Latin-1). */
export function base64(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)))
}

/**
 * Bounds a whole SDK call, as a second line behind exchange()'s own timer: should an SDK ever wait
 * on something other than our request, the send still ends as a retryable failure.
 */
export async function deadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(retryable(`${what} gave no answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([work, expired])
  } finally {
    clearTimeout(timer)
  }
}
