// Acknowledge links: short enough for an SMS, signed so they cannot be forged or altered, and
// expiring. A token names one alert (and through it the incident and the contact who was told);
// the signature is HMAC-SHA256 with VIGIL_APPROVAL_SECRET over a message of its own kind, cut to
// 22 base64url characters (132 bits).
import { hmacSha256, sameText, toBase64Url } from '../hmac.ts'

const SIG_CHARS = 22
const TOKEN = /^([1-9][0-9]{0,17})\.([0-9a-z]{1,10})\.([A-Za-z0-9_-]{22})$/

const hmac = async (secret: string, text: string) => toBase64Url(await hmacSha256(secret, text))

const message = (alertId: number, expires: number) => `vigil-ack.${alertId}.${expires}`

/** The token for an alert, valid until `expiresAt`. */
export async function signAck(alertId: number, expiresAt: Date, secret: string): Promise<string> {
  const expires = Math.floor(expiresAt.getTime() / 1000)
  const sig = (await hmac(secret, message(alertId, expires))).slice(0, SIG_CHARS)
  return `${alertId}.${expires.toString(36)}.${sig}`
}

export type AckToken =
  | { ok: true; alertId: number; expiresAt: Date; expired: boolean }
  | { ok: false; reason: 'malformed' | 'forged' }

/** Checks a token's shape and signature (constant time), then whether it expired. */
export async function verifyAck(
  token: string,
  secret: string,
  now = new Date(),
): Promise<AckToken> {
  const m = TOKEN.exec(token)
  if (!m) return { ok: false, reason: 'malformed' }
  const alertId = Number(m[1])
  const expires = parseInt(m[2], 36)
  if (!Number.isSafeInteger(alertId) || !Number.isSafeInteger(expires)) {
    return { ok: false, reason: 'malformed' }
  }
  const expected = (await hmac(secret, message(alertId, expires))).slice(0, SIG_CHARS)
  if (!sameText(expected, m[3])) return { ok: false, reason: 'forged' }
  const expiresAt = new Date(expires * 1000)
  return { ok: true, alertId, expiresAt, expired: expiresAt.getTime() <= now.getTime() }
}

/**
 * The link a human follows: `<project>/functions/v1/ack/<token>`, or, where functions may not serve
 * pages (hosted Supabase), the static ack page with the project's URL and the token in the fragment
 * (a fragment never reaches the static host's logs).
 */
export async function ackLink(
  projectUrl: string,
  alertId: number,
  expiresAt: Date,
  secret: string,
  ackPageUrl?: string,
): Promise<string> {
  const token = await signAck(alertId, expiresAt, secret)
  const project = projectUrl.replace(/\/+$/, '')
  if (!ackPageUrl) return `${project}/functions/v1/ack/${token}`
  const page = new URL(ackPageUrl)
  page.searchParams.set('api', project)
  page.hash = token
  return page.href
}
