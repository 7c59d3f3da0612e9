// SMS through Twilio's SDK. The SDK builds and reads the request; the exchange itself is ours (a
// custom httpClient, a documented extension point): it goes through env.fetch, is bounded by
// env.timeoutMs, never follows a redirect, and leaves us the raw answer to judge, so what the SDK
// would throw never reaches a result unredacted.
import type Twilio from 'twilio'
import { errorMessage } from '../../probes/support.ts'
import { smsText } from '../format.ts'
import {
  type Answer,
  Attempt,
  base64,
  baseUrl,
  deadline,
  defineNotifier,
  json,
  Outcome,
  permanent,
  retryable,
  type Scope,
} from './http.ts'

export const TWILIO_ACCOUNT_SID = 'VIGIL_TWILIO_ACCOUNT_SID'
export const TWILIO_AUTH_TOKEN = 'VIGIL_TWILIO_AUTH_TOKEN'
/** An E.164 number, or a Messaging Service SID (MG…) that picks the sender itself. */
export const TWILIO_FROM = 'VIGIL_TWILIO_FROM'
export const TWILIO_API_URL = 'VIGIL_TWILIO_API_URL'
const TWILIO_DEFAULT_URL = 'https://api.twilio.com'

/**
 * Twilio's error codes that say the number itself cannot be texted: 21211 invalid 'To', 21614 not
 * a mobile number, 21610 the recipient replied STOP, 21604 no number at all (the contact's address
 * is empty). 21408 (its region not enabled) is the account's setting, so the project's.
 */
const CONTACT_CODES = new Set([21211, 21604, 21610, 21614])
/**
 * The project's Twilio setup: 20003 authentication refused, 20005 and 10001 the account is not
 * active (suspended, closed); 21212, 21603, 21606 and 21659 the sender (VIGIL_TWILIO_FROM) is
 * missing, invalid or not a Twilio number that can text.
 */
const PROVIDER_CODES = new Set([10001, 20003, 20005, 21212, 21408, 21603, 21606, 21659])

/** Whose fault a refusal is, by Twilio's code; credentials refused are the project's. */
export function twilioScope(status: number, code: unknown): Scope {
  const n = Number(code)
  if (CONTACT_CODES.has(n)) return 'contact'
  if (PROVIDER_CODES.has(n) || status === 401 || status === 403) return 'provider'
  return 'alert'
}

/** What the SDK hands its httpClient (twilio/lib/base/RequestClient's RequestOptions). */
interface SdkRequest {
  method: string
  uri: string
  username?: string
  password?: string
  headers?: Record<string, string>
  params?: Record<string, unknown>
  data?: Record<string, unknown>
}

/** Form fields as the SDK would encode them: arrays repeat the key. */
function form(fields: Record<string, unknown> | undefined): URLSearchParams {
  const out = new URLSearchParams()
  for (const [key, value] of Object.entries(fields ?? {})) {
    for (const item of [value].flat()) {
      if (item !== undefined && item !== null) out.append(key, String(item))
    }
  }
  return out
}

/** An httpClient for the SDK that sends through the attempt and remembers the answer. */
function transport(attempt: Attempt, base: string | undefined) {
  const seen: { answer?: Answer } = {}
  const client = {
    async request(o: SdkRequest) {
      const uri = new URL(o.uri)
      // Without VIGIL_TWILIO_API_URL the SDK's own URL stands (it knows TWILIO_REGION and _EDGE).
      const target = new URL(base ? `${base}${uri.pathname}` : uri.href)
      for (const [key, value] of form(o.params)) target.searchParams.append(key, value)
      const headers: Record<string, string> = { ...o.headers }
      if (o.username && o.password) {
        headers.Authorization = `Basic ${base64(`${o.username}:${o.password}`)}`
      }
      const answer = await attempt.exchange('Twilio', {
        url: target.href,
        headers,
        body: form(o.data).toString(),
      })
      seen.answer = answer
      return {
        statusCode: answer.status,
        body: answer.text,
        headers: Object.fromEntries(answer.headers),
      }
    },
  }
  return { client: client as unknown as Twilio.RequestClient, seen }
}

export const sms = defineNotifier('sms', true, async (alerts, to, attempt) => {
  const sid = attempt.secret(TWILIO_ACCOUNT_SID, 'the Twilio account SID')
  const token = attempt.secret(TWILIO_AUTH_TOKEN, 'the Twilio auth token')
  const from = attempt.setting(TWILIO_FROM)
  if (!from) {
    throw permanent(`${TWILIO_FROM} is not set (the sender number or MG… service SID)`, 'provider')
  }
  if (!sid.startsWith('AC')) {
    throw permanent(`${TWILIO_ACCOUNT_SID} does not hold an account SID (AC…)`, 'provider')
  }
  const base = attempt.setting(TWILIO_API_URL) === undefined
    ? undefined
    : baseUrl(attempt, TWILIO_API_URL, TWILIO_DEFAULT_URL)
  attempt.hide(base64(`${sid}:${token}`))

  let twilio: typeof Twilio
  try {
    // Loaded on first use: a function that never texts does not pay for the SDK.
    twilio = (await import('twilio')).default
  } catch (error) {
    throw retryable(`sms: the twilio package did not load: ${errorMessage(error)}`)
  }
  const { client: httpClient, seen } = transport(attempt, base)
  try {
    const client = twilio(sid, token, { httpClient, autoRetry: false })
    const sender = from.startsWith('MG') ? { messagingServiceSid: from } : { from }
    await deadline(
      client.messages.create({ to: to.address, body: smsText(alerts), ...sender }),
      attempt.env.timeoutMs + 500,
      'sms: Twilio',
    )
  } catch (error) {
    if (error instanceof Outcome) throw error
    // Refused before any request (a parameter it will not send): trying again cannot help.
    if (!seen.answer) {
      throw permanent(`sms: the Twilio SDK refused the message: ${errorMessage(error)}`, 'alert')
    }
    // Otherwise the SDK threw over an answer we have: judged below, in our words.
  }
  if (!seen.answer) throw retryable('sms: Twilio SDK made no request')
  return attempt.judge('Twilio', seen.answer, {
    accept: (a) => {
      const sid = json(a.text)?.sid
      return typeof sid === 'string'
        ? { kind: 'delivered', status: a.status, providerId: sid }
        : undefined
    },
    explain: (a) => {
      const doc = json(a.text)
      if (typeof doc?.message !== 'string') return undefined
      return `${doc.message.replace(/\.$/, '')}${doc.code ? ` (code ${doc.code})` : ''}`
    },
    scope: (a) => twilioScope(a.status, json(a.text)?.code),
  })
})
