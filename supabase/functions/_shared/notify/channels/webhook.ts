// A plain signed webhook: the alerts as JSON to the endpoint's address, signed with the key in its
// secret so the receiver can tell Vigil sent it and nothing changed it on the way:
//   x-vigil-signature: v1=<hex HMAC-SHA256 of "<x-vigil-timestamp>.<raw body>">
//   x-vigil-delivery:  the delivery id, also in the signed body as `delivery_id` (trust that one)
import { reasonText } from '../format.ts'
import type { AlertView } from '../types.ts'
import { defineNotifier, jsonHeaders, permanent, type Scope } from './http.ts'

/** How old a timestamp verifyWebhookSignature accepts by default: a replayed request is refused. */
export const SIGNATURE_TOLERANCE_SECONDS = 300

/** One alert as the receiver sees it: snake_case, times as ISO 8601. */
export function webhookAlert(alert: AlertView): Record<string, unknown> {
  return {
    id: alert.id,
    incident_id: alert.incidentId,
    event: alert.event,
    priority: alert.priority,
    severity: alert.severity,
    environment: alert.environment,
    service: alert.service,
    title: alert.title,
    reason: reasonText(alert) || null,
    summary: alert.summary,
    since: alert.since?.toISOString() ?? null,
    tried: alert.tried,
    suggestion: alert.suggestion,
    affected: alert.affected,
    links: alert.links,
    dedup_key: alert.dedupKey,
    created_at: alert.createdAt.toISOString(),
    ...(alert.report && {
      report: {
        id: alert.report.id,
        kind: alert.report.kind,
        period_start: alert.report.periodStart,
        period_end: alert.report.periodEnd,
        text: alert.report.text,
        facts: alert.report.facts,
      },
    }),
  }
}

/**
 * The delivery id: the same for the same set of alerts, whatever their order, so a retry of a
 * delivery carries the id of the first try. The first 128 bits of the SHA-256 of the sorted alert
 * ids joined by commas, written as a UUID (`4f1c…-…`; not a random one, no version bits set).
 *
 * Receivers should dedupe on `alerts[].id` all the same: the outbox may group a retried alert with
 * others (or alone) the next time, which makes another delivery id for an alert already received.
 */
export async function deliveryId(alerts: AlertView[]): Promise<string> {
  const ids = alerts.map((a) => a.id).sort((a, b) => a - b).join(',')
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(ids))
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20, 32)
  }`
}

/**
 * The signed body. `delivery_id` is in it so that a captured request replayed with another
 * x-vigil-delivery header still names the delivery it was: the header cannot be signed, the body is.
 */
export function webhookBody(alerts: AlertView[], sentAt: Date, delivery: string): string {
  return JSON.stringify({
    type: 'vigil.alerts',
    delivery_id: delivery,
    sent_at: sentAt.toISOString(),
    alerts: alerts.map(webhookAlert),
  })
}

/**
 * Whose fault a refusal is: 401 and 403 (the receiver does not take our signature: the signing key
 * differs) and 404 and 410 (no receiver at the address) are the contact's; any other 4xx (400, 413,
 * 422…) is the message's.
 */
export function webhookScope(status: number): Scope {
  return [401, 403, 404, 410].includes(status) ? 'contact' : 'alert'
}

async function hmacKey(key: string, use: 'sign' | 'verify'): Promise<CryptoKey> {
  return await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(key),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    [use],
  )
}

function signed(timestamp: string, rawBody: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`${timestamp}.${rawBody}`)
}

/** The x-vigil-signature value for a body sent at `timestamp` (unix seconds). */
export async function signWebhook(
  rawBody: string,
  timestamp: string,
  key: string,
): Promise<string> {
  const mac = await crypto.subtle.sign(
    'HMAC',
    await hmacKey(key, 'sign'),
    signed(timestamp, rawBody),
  )
  return `v1=${[...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, '0')).join('')}`
}

/**
 * Whether `header` (x-vigil-signature) signs this raw body and timestamp with `key`, and the
 * timestamp is recent. Constant-time: crypto.subtle.verify compares the whole MAC. A header may
 * carry several `v1=` values (comma-separated) while a key is being rotated; one must match.
 */
export async function verifyWebhookSignature(
  rawBody: string,
  timestamp: string,
  header: string,
  key: string,
  options: { toleranceSeconds?: number; now?: Date } = {},
): Promise<boolean> {
  // Receivers pass headers straight through; a missing one is a failed check, not a crash.
  if (typeof header !== 'string' || typeof timestamp !== 'string' || !key) return false
  if (!/^\d{1,12}$/.test(timestamp)) return false
  const tolerance = options.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS
  const now = (options.now ?? new Date()).getTime() / 1000
  if (Math.abs(now - Number(timestamp)) > tolerance) return false
  const cryptoKey = await hmacKey(key, 'verify')
  let ok = false
  for (const part of header.split(',')) {
    const m = part.trim().match(/^v1=([0-9a-f]{64})$/i)
    if (!m) continue
    const mac = new Uint8Array(m[1].match(/../g)!.map((h) => parseInt(h, 16)))
    // Every candidate is checked, so the time taken does not say which one matched.
    if (await crypto.subtle.verify('HMAC', cryptoKey, mac, signed(timestamp, rawBody))) ok = true
  }
  return ok
}

/** The address, safe to show: no query, user or password, which may carry a token. */
function shown(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`
}

/**
 * The webhook channel. Each request carries x-vigil-timestamp, x-vigil-signature and
 * x-vigil-delivery (see the top of this file); a receiver checks the signature with
 * verifyWebhookSignature() and reads the delivery id from the body's `delivery_id`.
 *
 * Deliveries are at least once: a request whose answer was lost is sent again, with the same
 * delivery id if it holds the same alerts. Receivers should dedupe on `alerts[].id` (an alert's id
 * never changes, and a retry may group it with other alerts than the first time), not on the
 * delivery id alone.
 */
export const webhook = defineNotifier('webhook', true, async (alerts, to, attempt) => {
  const url = URL.parse(to.address)
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw permanent(`webhook endpoint of ${to.name}: address is not an http(s) URL`, 'contact')
  }
  // The address is no secret, but a token in its query or user part would be.
  attempt.hide(url.search, url.password, url.username)
  if (url.href !== shown(url)) attempt.hide(url.href)
  const key = attempt.endpointSecret(to, 'the webhook signing key')
  const sentAt = new Date()
  const timestamp = String(Math.floor(sentAt.getTime() / 1000))
  const delivery = await deliveryId(alerts)
  const body = webhookBody(alerts, sentAt, delivery)
  const answer = await attempt.exchange(shown(url), {
    url: url.href,
    headers: jsonHeaders({
      'x-vigil-timestamp': timestamp,
      'x-vigil-delivery': delivery,
      'x-vigil-signature': await signWebhook(body, timestamp, key),
    }),
    body,
  })
  return attempt.judge(shown(url), answer, {
    accept: (a) => ({ kind: 'delivered', status: a.status }),
    scope: (a) => webhookScope(a.status),
  })
})
