// Slack, through an incoming webhook: the URL (it holds the credential) is in the endpoint's secret.
// Slack answers 200 `ok`; its errors are a word in the body (invalid_payload, no_service, …).
import {
  alertParts,
  countLine,
  headlineText,
  type LinkLabel,
  type Markup,
  newestFirst,
  renderAlert,
} from '../format.ts'
import { reportChat, reportDocument } from '../../reports/render.ts'
import type { AlertView } from '../types.ts'
import { defineNotifier, json, jsonHeaders, type Scope } from './http.ts'

/** Slack allows 50 blocks; an alert takes up to three (divider, section, buttons). */
const MAX_ALERTS_SHOWN = 15
/** A section's text may be 3000 characters. */
const MAX_SECTION = 3000
const BUTTON_STYLE: Partial<Record<LinkLabel, 'primary' | 'danger'>> = {
  Acknowledge: 'primary',
  Approve: 'primary',
  Reject: 'danger',
}

/**
 * Slack's errors that say the webhook itself is gone or barred: revoked or never valid
 * (no_service, invalid_token), its workspace gone (no_team, team_disabled), its channel archived,
 * deleted or locked (channel_is_archived, channel_not_found, action_prohibited,
 * posting_to_general_channel_denied). invalid_payload, invalid_blocks and the like are the message's.
 */
const CONTACT_ERRORS = new Set([
  'no_service',
  'no_service_id',
  'invalid_token',
  'no_team',
  'team_disabled',
  'channel_is_archived',
  'channel_not_found',
  'action_prohibited',
  'posting_to_general_channel_denied',
])

/** Whose fault a refusal is: Slack's word, else its status (the URL is the credential). */
export function slackScope(status: number, text: string): Scope {
  const word = json(text)?.error ?? text.trim()
  if (typeof word === 'string' && CONTACT_ERRORS.has(word)) return 'contact'
  return [401, 403, 404, 410].includes(status) ? 'contact' : 'alert'
}

/**
 * Slack's mrkdwn has no escape character: `&`, `<` and `>` become entities (which is what turns
 * `<!channel>` or `<@U123>` into text), a zero-width space keeps `*`, `_`, `~` and `` ` `` next to a
 * word boundary from opening bold, italics, strike or code, and one after `@` keeps a bare
 * `@channel` from ever being read as a mention.
 */
export function slackEscape(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/@(?=(channel|here|everyone)\b)/gi, '@\u200b')
    .replace(/[*_~`]/g, (marker, at: number, all: string) => {
      const before = all[at - 1] ?? ' '
      const after = all[at + 1] ?? ' '
      return /[\p{L}\p{N}]/u.test(before) && /[\p{L}\p{N}]/u.test(after)
        ? marker
        : `\u200b${marker}\u200b`
    })
}

const SLACK: Markup = {
  escape: slackEscape,
  strong: (t) => `*${t}*`,
  link: (label, url) => `<${slackUrl(url)}|${label}>`,
  linkSeparator: ' · ',
}

/** `|` and `>` would end a link early. */
function slackUrl(url: string): string {
  return url.replace(/[|<> ]/g, (c) => encodeURIComponent(c))
}

/** A report: its summary as the notification, then its blocks as sections (50 at most). */
function slackReport(alert: AlertView): Record<string, unknown> {
  const doc = reportDocument(alert.report!.facts, { dashboardUrl: alert.links.dashboard })
  const sections = reportChat(doc, SLACK, MAX_SECTION)
  return {
    text: slackEscape(doc.summary).slice(0, MAX_SECTION),
    blocks: sections.slice(0, 50).map((text) => ({
      type: 'section',
      text: { type: 'mrkdwn', text, verbatim: true },
    })),
    unfurl_links: false,
    unfurl_media: false,
  }
}

/** The webhook's JSON: a plain `text` for notifications and a section with buttons per alert. */
export function slackPayload(alerts: AlertView[]): Record<string, unknown> {
  if (alerts.length === 1 && alerts[0].report) return slackReport(alerts[0])
  const sorted = newestFirst(alerts)
  const shown = sorted.slice(0, MAX_ALERTS_SHOWN)
  const blocks: unknown[] = []
  if (sorted.length > 1) {
    blocks.push({ type: 'header', text: { type: 'plain_text', text: countLine(sorted.length) } })
  }
  for (const [i, alert] of shown.entries()) {
    const parts = alertParts(alert)
    if (i > 0) blocks.push({ type: 'divider' })
    const text = renderAlert(parts, SLACK, false).join('\n')
    blocks.push({
      type: 'section',
      // verbatim: Slack must not link channel names or parse mentions on its own.
      text: { type: 'mrkdwn', text: text.slice(0, MAX_SECTION), verbatim: true },
    })
    if (parts.links.length > 0) {
      blocks.push({
        type: 'actions',
        elements: parts.links.map((l) => ({
          type: 'button',
          text: { type: 'plain_text', text: l.label },
          url: l.url,
          action_id: `${l.label.toLowerCase()}-${alert.id}`,
          ...(BUTTON_STYLE[l.label] ? { style: BUTTON_STYLE[l.label] } : {}),
        })),
      })
    }
  }
  const left = sorted.length - shown.length
  if (left > 0) {
    blocks.push({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: `…and ${left} more not shown here: see the dashboard` }],
    })
  }
  const text = sorted.length === 1
    ? headlineText(sorted[0])
    : `${countLine(sorted.length)}: ${sorted.map((a) => headlineText(a)).join('; ')}`
  return {
    text: slackEscape(text).slice(0, MAX_SECTION),
    blocks,
    unfurl_links: false,
    unfurl_media: false,
  }
}

export const slack = defineNotifier('slack', true, async (alerts, to, attempt) => {
  const name = to.secretName ?? ''
  const url = attempt.secretUrl(name, attempt.endpointSecret(to, 'the Slack incoming-webhook URL'))
  const answer = await attempt.exchange('Slack', {
    url: url.href,
    headers: jsonHeaders(),
    body: JSON.stringify(slackPayload(alerts)),
  })
  return attempt.judge('Slack', answer, {
    // Incoming webhooks say `ok`; workflow webhooks say {"ok": true}.
    accept: (a) =>
      a.text.trim() === 'ok' || json(a.text)?.ok === true
        ? { kind: 'delivered', status: a.status }
        : undefined,
    scope: (a) => slackScope(a.status, a.text),
  })
})
