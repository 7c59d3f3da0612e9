// Email through SendGrid's SDK, a fresh MailService per send (no key left on a shared singleton).
// As for SMS, the SDK builds the request and our exchange carries it: axios, under the SDK, takes
// an `adapter`, and ours sends through env.fetch within env.timeoutMs without following redirects.
import type { MailService } from '@sendgrid/mail'
import { errorMessage } from '../../probes/support.ts'
import {
  alertParts,
  countLine,
  emailSubject,
  escapeHtml,
  type Markup,
  newestFirst,
  PLAIN,
  renderAlert,
  renderMessage,
} from '../format.ts'
import type { AlertView } from '../types.ts'
import {
  type Answer,
  type Attempt,
  baseUrl,
  deadline,
  defineNotifier,
  json,
  Outcome,
  permanent,
  retryable,
  type Scope,
} from './http.ts'

export const SENDGRID_API_KEY = 'VIGIL_SENDGRID_API_KEY'
/** "alerts@example.org" or "Vigil <alerts@example.org>". */
export const SENDGRID_FROM = 'VIGIL_SENDGRID_FROM'
export const SENDGRID_API_URL = 'VIGIL_SENDGRID_API_URL'

const HTML: Markup = {
  escape: escapeHtml,
  strong: (t) => `<strong>${t}</strong>`,
  link: (label, url) => `<a href="${escapeHtml(url)}">${label}</a>`,
  linkSeparator: ' &middot; ',
}

export interface EmailContent {
  subject: string
  text: string
  html: string
}

export function emailContent(alerts: AlertView[]): EmailContent {
  // A report is sent as it was stored: its own text and HTML (deliver never groups it).
  const report = alerts.length === 1 ? alerts[0].report : undefined
  if (report) return { subject: alerts[0].title, text: report.text, html: report.html }
  const sorted = newestFirst(alerts)
  const blocks = sorted.map((a) => `<p>${renderAlert(alertParts(a), HTML).join('<br>\n')}</p>`)
  const count = sorted.length > 1 ? `<p><strong>${countLine(sorted.length)}</strong></p>\n` : ''
  const html = '<!doctype html>\n<html><body style="font-family: sans-serif; line-height: 1.4">\n' +
    `${count}${
      blocks.join('\n<hr>\n')
    }\n<p style="color: #777">Sent by Vigil.</p>\n</body></html>\n`
  return {
    subject: emailSubject(sorted),
    text: `${renderMessage(sorted, PLAIN)}\n\n-- \nSent by Vigil.\n`,
    html,
  }
}

/** "Name <addr>" or "addr"; undefined when it is neither. */
export function parseSender(value: string): { email: string; name?: string } | undefined {
  const named = value.match(/^\s*"?([^"<]*?)"?\s*<([^<>\s]+@[^<>\s]+)>\s*$/)
  if (named) return named[1] ? { email: named[2], name: named[1] } : { email: named[2] }
  return /^[^\s<>@]+@[^\s<>@]+$/.test(value.trim()) ? { email: value.trim() } : undefined
}

/**
 * Whose fault a refusal is. SendGrid names the field at fault in each error: a recipient
 * (`personalizations.0.to.0.email`) is the contact's address, the sender (`from.email`, set by
 * VIGIL_SENDGRID_FROM) the project's, as is a key refused (401, or 403: a key without the mail.send
 * scope, a sender not verified). Anything else (413, a content error) is the message's.
 */
export function sendGridScope(status: number, text: string): Scope {
  if (status === 401 || status === 403) return 'provider'
  if (status !== 400) return 'alert'
  const errors = json(text)?.errors
  const fields: string[] = Array.isArray(errors)
    ? errors.map((e: { field?: unknown }) => (typeof e?.field === 'string' ? e.field : ''))
    : []
  if (fields.some((f) => /^personalizations(\.\d+)?\.(to|cc|bcc)\b/.test(f))) return 'contact'
  if (fields.some((f) => /^(from|reply_to)\b/.test(f))) return 'provider'
  return 'alert'
}

/** The parts of SendGrid's client the send uses; its type declarations do not show `client`. */
interface SendGridClient {
  setDefaultRequest(options: Record<string, unknown>): unknown
}

/** An axios adapter sending through the attempt; it resolves for every status, remembering it. */
function adapter(attempt: Attempt, seen: { answer?: Answer }) {
  return async (config: any) => {
    const headers: Record<string, string> = {}
    const raw = typeof config.headers?.toJSON === 'function'
      ? config.headers.toJSON()
      : config.headers
    for (const [name, value] of Object.entries(raw ?? {})) {
      if (typeof value === 'string' || typeof value === 'number') headers[name] = String(value)
    }
    const url = `${String(config.baseURL ?? '').replace(/\/+$/, '')}/${
      String(config.url).replace(/^\/+/, '')
    }`
    const answer = await attempt.exchange('SendGrid', {
      url,
      headers,
      body: typeof config.data === 'string' ? config.data : JSON.stringify(config.data ?? null),
    })
    seen.answer = answer
    return {
      data: answer.text,
      status: answer.status,
      statusText: '',
      headers: Object.fromEntries(answer.headers),
      config,
      request: null,
    }
  }
}

export const email = defineNotifier('email', true, async (alerts, to, attempt) => {
  const key = attempt.secret(SENDGRID_API_KEY, 'the SendGrid API key')
  const fromValue = attempt.setting(SENDGRID_FROM)
  if (!fromValue) throw permanent(`${SENDGRID_FROM} is not set (the sender address)`, 'provider')
  const from = parseSender(fromValue)
  if (!from) {
    throw permanent(`${SENDGRID_FROM} is not an email address ("Name <addr>" or addr)`, 'provider')
  }
  const base = baseUrl(attempt, SENDGRID_API_URL, 'https://api.sendgrid.com')
  attempt.hide(`Bearer ${key}`)

  let Service: typeof MailService
  try {
    // The class is a named export at runtime; the package's declarations only show the singleton.
    const mod = await import('@sendgrid/mail') as unknown as { MailService: typeof MailService }
    Service = mod.MailService
  } catch (error) {
    throw retryable(`email: the @sendgrid/mail package did not load: ${errorMessage(error)}`)
  }
  const seen: { answer?: Answer } = {}
  const content = emailContent(alerts)
  try {
    const service = new Service()
    service.setApiKey(key) // After setApiKey, which resets the base URL to SendGrid's own.
    ;(service as unknown as { client: SendGridClient }).client.setDefaultRequest({
      baseUrl: `${base}/`,
      adapter: adapter(attempt, seen),
      maxRedirects: 0,
    })
    await deadline(
      service.send({
        to: to.address,
        from,
        subject: content.subject,
        text: content.text,
        html: content.html,
        // Click tracking would route the ack link through SendGrid's redirector.
        trackingSettings: { clickTracking: { enable: false, enableText: false } },
      }),
      attempt.env.timeoutMs + 500,
      'email: SendGrid',
    )
  } catch (error) {
    if (error instanceof Outcome) throw error
    if (!seen.answer) {
      throw permanent(
        `email: the SendGrid SDK refused the message: ${errorMessage(error)}`,
        'alert',
      )
    }
  }
  if (!seen.answer) throw retryable('email: SendGrid SDK made no request')
  return attempt.judge('SendGrid', seen.answer, {
    // 202 with an empty body; a page from something in between is not SendGrid's answer.
    accept: (a) =>
      a.text.trim() === '' || json(a.text) !== undefined
        ? {
          kind: 'delivered',
          status: a.status,
          ...(a.headers.get('x-message-id') ? { providerId: a.headers.get('x-message-id')! } : {}),
        }
        : undefined,
    explain: (a) => {
      const errors = json(a.text)?.errors
      return Array.isArray(errors) && errors.length > 0
        ? errors.map((e: { message?: string }) => e.message).join('; ')
        : undefined
    },
    scope: (a) => sendGridScope(a.status, a.text),
  })
})
