// Discord, through a webhook: the URL (it holds the webhook's token) is in the endpoint's secret.
// A message is at most 2000 characters, always: alerts that do not fit are counted, not sent.
import { alertParts, countLine, type Markup, newestFirst, renderAlert } from '../format.ts'
import { reportChat, reportDocument } from '../../reports/render.ts'
import type { AlertView } from '../types.ts'
import { defineNotifier, json, jsonHeaders, type Scope } from './http.ts'

export const DISCORD_LIMIT = 2000
/** Suppress embeds: an ack link should not unfold into a preview card. */
const SUPPRESS_EMBEDS = 1 << 2

/**
 * Discord's codes for a webhook that is gone: 10015 unknown webhook, 50027 invalid webhook token,
 * 10003 unknown channel (the webhook's channel was deleted).
 */
const CONTACT_CODES = new Set([10003, 10015, 50027])

/**
 * Whose fault a refusal is: the webhook's (401, 403, 404, or its code says so; the URL is the
 * credential), else the message's (400: 50035 invalid form body, 50006 empty; 413).
 */
export function discordScope(status: number, text: string): Scope {
  if (CONTACT_CODES.has(Number(json(text)?.code))) return 'contact'
  return [401, 403, 404].includes(status) ? 'contact' : 'alert'
}

/**
 * Discord's markdown takes a backslash before any marker; `<` escaped keeps `<@id>`, `<@&role>`
 * and `<#channel>` from rendering as mentions, and a zero-width space after `@` keeps
 * `@everyone` and `@here` from looking like one (allowed_mentions already stops the ping).
 */
export function discordEscape(text: string): string {
  return text
    .replace(/[\\*_~`|<>[\]]/g, '\\$&')
    .replace(/@(?=(everyone|here)\b)/gi, '@\u200b')
}

const DISCORD: Markup = {
  escape: discordEscape,
  strong: (t) => `**${t}**`,
  link: (label, url) => `${label}: <${url.replace(/[<> ]/g, (c) => encodeURIComponent(c))}>`,
  linkSeparator: '   ',
}

/** The message, newest alert first, cut at whole alerts to fit with a line saying what was left. */
export function discordContent(alerts: AlertView[]): string {
  const report = alerts.length === 1 ? alerts[0].report : undefined
  if (report) {
    // One message: as much of the report as fits, cut at a line, the rest pointed to.
    const dashboard = alerts[0].links.dashboard
    const rest = dashboard
      ? `…the rest: ${DISCORD.link('dashboard', dashboard)}`
      : '…the rest is in the email'
    const [first, ...more] = reportChat(
      reportDocument(report.facts),
      DISCORD,
      DISCORD_LIMIT - rest.length - 1,
    )
    return more.length ? `${first}\n${rest}` : first
  }
  const blocks = newestFirst(alerts).map((a) => renderAlert(alertParts(a), DISCORD).join('\n'))
  if (blocks.length === 1) return fit(blocks[0], DISCORD_LIMIT)
  const head = DISCORD.strong(countLine(blocks.length))
  const note = (left: number) => `…and ${left} more alert${left === 1 ? '' : 's'} left out here`
  let content = head
  for (const [i, block] of blocks.entries()) {
    const left = blocks.length - i - 1
    const next = `${content}\n\n${block}`
    const room = DISCORD_LIMIT - (left > 0 ? note(left).length + 2 : 0)
    if (next.length <= room) {
      content = next
      continue
    }
    const omitted = blocks.length - i
    if (i === 0) {
      // Not even the newest alert fits whole: it goes in cut short.
      const tail = `\n\n${note(omitted - 1)}`
      return `${head}\n\n${fit(block, DISCORD_LIMIT - head.length - 2 - tail.length)}${tail}`
    }
    return `${content}\n\n${note(omitted)}`
  }
  return content
}

/** Cut to `max`, never leaving a lone backslash that would escape the ellipsis. */
function fit(text: string, max: number): string {
  if (text.length <= max) return text
  return `${text.slice(0, max - 1).replace(/\\+$/, '')}…`
}

export const discord = defineNotifier('discord', true, async (alerts, to, attempt) => {
  const name = to.secretName ?? ''
  const url = attempt.secretUrl(name, attempt.endpointSecret(to, 'the Discord webhook URL'))
  const answer = await attempt.exchange('Discord', {
    url: url.href,
    headers: jsonHeaders(),
    body: JSON.stringify({
      content: discordContent(alerts),
      allowed_mentions: { parse: [] },
      flags: SUPPRESS_EMBEDS,
    }),
  })
  return attempt.judge('Discord', answer, {
    // 204 without ?wait=true; with it, 200 and the message.
    accept: (a) =>
      a.status === 204 || json(a.text)?.id !== undefined
        ? {
          kind: 'delivered',
          status: a.status,
          ...(json(a.text)?.id ? { providerId: String(json(a.text).id) } : {}),
        }
        : undefined,
    explain: (a) => json(a.text)?.message,
    // Discord says it in its body too, to the millisecond ("retry_after": 0.35).
    retryAfterMs: (a) => {
      const seconds = Number(json(a.text)?.retry_after)
      return Number.isFinite(seconds) && seconds >= 0 ? Math.ceil(seconds * 1000) : undefined
    },
    scope: (a) => discordScope(a.status, a.text),
  })
})
