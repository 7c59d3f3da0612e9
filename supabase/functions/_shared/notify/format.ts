// The words of an alert, once, for every channel. An alert is first taken apart into a headline,
// labelled details and links (AlertParts), keeping apart what Vigil wrote from what came from
// outside (service names, error text): each channel's markup escapes only the latter, so a service
// called `<!channel>` or an error quoting `@everyone` stays text. SMS has its own compact form.
import { humanDuration as duration } from '../../../../shared/durations.ts'
import type { AlertView, Priority } from './types.ts'

/** Caps on text from outside, so one runaway error message cannot crowd out the rest. */
export const LIMITS = {
  title: 150,
  summary: 500,
  reason: 200,
  suggestion: 300,
  tried: 5,
  affected: 10,
}

/** A stretch of a line: Vigil's own words, or text from outside (`user`) that markup must escape. */
export interface Piece {
  text: string
  user?: boolean
}

/** The first line is `${emoji} ${lead}${tag} ${what}${tail}`, bold up to `tail`. */
export interface AlertParts {
  emoji: string
  /** What kind of news: "Still open, not acknowledged: ", "Resolved: ", or nothing for a page. */
  lead: string
  /** "P1 PROD" */
  tag: string
  what: Piece[]
  /** "(since 03:12 UTC)", "after 14 min" */
  tail: string
  details: { label: string | null; text: string }[]
  /** Only http(s) links: anything else could be a javascript: URL in an HTML part. */
  links: { label: LinkLabel; url: string }[]
}

export type LinkLabel = 'Acknowledge' | 'Approve' | 'Reject' | 'Dashboard'

/** The links an alert may carry, in the order a human wants them. */
export const LINKS: [keyof AlertView['links'], LinkLabel][] = [
  ['acknowledge', 'Acknowledge'],
  ['approve', 'Approve'],
  ['reject', 'Reject'],
  ['dashboard', 'Dashboard'],
]

export interface Markup {
  /** Makes outside text inert in this markup. */
  escape(text: string): string
  strong(markup: string): string
  link(label: string, url: string): string
  /** Between the links of one line. */
  linkSeparator: string
}

export const PLAIN: Markup = {
  escape: (t) => t,
  strong: (t) => t,
  link: (label, url) => `${label}: ${url}`,
  linkSeparator: '   ',
}

// ---- taking an alert apart ----

/** Newest first: a human reads the latest news first. */
export function newestFirst(alerts: AlertView[]): AlertView[] {
  return [...alerts].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.id - a.id)
}

export function alertParts(alert: AlertView): AlertParts {
  const title = clean(alert.title, LIMITS.title)
  const summary = clean(alert.summary, LIMITS.summary)
  const since = alert.since ? `since ${utcTime(alert.since, alert.createdAt)}` : null
  const elapsed = alert.since ? duration(alert.createdAt.getTime() - alert.since.getTime()) : null
  let emoji = 'ℹ️'
  let lead = ''
  const what: Piece[] = [{ text: title, user: true }]
  let tail = ''
  let cause: string | null = summary
  let causeLabel: string | null = 'Cause'
  switch (alert.event) {
    case 'page':
      emoji = pageEmoji(alert.priority)
      if (since) tail = ` (${since})`
      break
    case 'reminder':
      emoji = '⏰'
      lead = 'Still open, not acknowledged: '
      if (since) tail = ` (${since}, ${elapsed} ago)`
      break
    case 'resolved':
      emoji = '✅'
      lead = 'Resolved: '
      // The title says what was wrong; once it is over, the service's own state reads better.
      if (alert.service) {
        what[0] = { text: `${clean(alert.service, 80)} is healthy again`, user: true }
      }
      if (elapsed) tail = ` after ${elapsed}`
      causeLabel = null
      break
    case 'acknowledged': {
      emoji = '👀'
      lead = 'Acknowledged: '
      // Who took it belongs on the first line; the sentence SQL wrote says no more than that.
      if (alert.acknowledgedBy) {
        what.push({ text: ' by ' }, { text: clean(alert.acknowledgedBy, 60), user: true })
        cause = null
      }
      causeLabel = null
      break
    }
    case 'flapping':
      emoji = '🔁'
      lead = 'Flapping: '
      break
    case 'stable':
      emoji = '🟢'
      lead = 'Stable again: '
      causeLabel = null
      break
    default:
      causeLabel = null
  }

  const details: AlertParts['details'] = []
  const reason = reasonText(alert)
  if (reason) details.push({ label: 'Why', text: reason })
  if (cause) details.push({ label: causeLabel, text: cause })
  const tried = triedText(alert.tried)
  if (tried) details.push({ label: 'Tried', text: tried })
  const suggestion = clean(alert.suggestion ?? '', LIMITS.suggestion)
  if (suggestion) details.push({ label: 'Suggested', text: suggestion })
  const affected = listText(alert.affected, LIMITS.affected)
  if (affected) details.push({ label: 'Also affected', text: affected })

  // notify decides which links an alert carries (no ack link once it is over); all are shown.
  const links = LINKS.filter(([key]) => isHttpUrl(alert.links[key]))
    .map(([key, label]) => ({ label, url: alert.links[key]! }))
  return { emoji, lead, tag: tagOf(alert), what, tail, details, links }
}

/** Why this alert now ("not acknowledged within 15 min"), on one clean line; '' when unsaid. */
export function reasonText(alert: AlertView, max = LIMITS.reason): string {
  return clean(alert.reason ?? '', max)
}

/** "P1 PROD"; info-priority alerts carry only the environment. */
export function tagOf(alert: AlertView): string {
  const env = alert.environment.toUpperCase()
  return alert.priority === 'info' ? env : `${alert.priority} ${env}`
}

function pageEmoji(priority: Priority): string {
  if (priority === 'P0' || priority === 'P1') return '🚨'
  if (priority === 'info') return 'ℹ️'
  return '⚠️'
}

function triedText(tried: string[]): string {
  const items = tried.map((t) => clean(t, 120)).filter(Boolean)
  const shown = items.slice(-LIMITS.tried)
  const earlier = items.length - shown.length
  return (earlier > 0 ? `(${earlier} earlier) ` : '') + shown.join('; ')
}

function listText(items: string[], max: number): string {
  const names = items.map((a) => clean(a, 60)).filter(Boolean)
  const more = names.length - max
  return names.slice(0, max).join(', ') + (more > 0 ? `, +${more} more` : '')
}

// ---- rendering ----

/** One alert as lines of `markup`: headline, details, then its links on one line. */
export function renderAlert(parts: AlertParts, markup: Markup, withLinks = true): string[] {
  const what = parts.what.map((p) => (p.user ? markup.escape(p.text) : p.text)).join('')
  const lines = [markup.strong(`${parts.emoji} ${parts.lead}${parts.tag} ${what}`) + parts.tail]
  for (const d of parts.details) {
    const text = markup.escape(d.text)
    lines.push(d.label ? `${markup.strong(`${d.label}:`)} ${text}` : text)
  }
  if (withLinks && parts.links.length > 0) {
    lines.push(parts.links.map((l) => markup.link(l.label, l.url)).join(markup.linkSeparator))
  }
  return lines
}

/** "3 alerts", the line that opens a grouped message. */
export function countLine(n: number): string {
  return `${n} alert${n === 1 ? '' : 's'}`
}

/**
 * The whole message in `markup`: one alert's block, or for several a count line and one block per
 * alert, newest first, separated by blank lines.
 */
export function renderMessage(alerts: AlertView[], markup: Markup): string {
  const blocks = newestFirst(alerts).map((a) => renderAlert(alertParts(a), markup).join('\n'))
  if (blocks.length === 1) return blocks[0]
  return [markup.strong(countLine(blocks.length)), ...blocks].join('\n\n')
}

/** The first line alone, as plain text: a notification's preview, a chat fallback. */
export function headlineText(alert: AlertView): string {
  return renderAlert(alertParts(alert), PLAIN, false)[0]
}

/** `[P1][PROD] api is down`; for several, `[P1][PROD] 3 alerts: api is down, db is degraded`. */
export function emailSubject(alerts: AlertView[]): string {
  const sorted = newestFirst(alerts)
  const top = sorted.reduce((a, b) => (rank(b.priority) < rank(a.priority) ? b : a))
  // The most serious environment first, whatever the order of the alerts.
  const envs = (['prod', 'qa', 'dev'] as const)
    .filter((env) => sorted.some((a) => a.environment === env))
    .map((env) => env.toUpperCase())
    .join('/')
  const prefix = `${top.priority === 'info' ? '' : `[${top.priority}]`}[${envs}] `
  if (sorted.length === 1) {
    const parts = alertParts(sorted[0])
    // A page's subject is what is wrong; the time is in the body (and in the mail's own date).
    const tail = sorted[0].event === 'page' ? '' : parts.tail
    return truncate(prefix + parts.lead + parts.what.map((p) => p.text).join('') + tail, 200)
  }
  const titles = sorted.map((a) => clean(a.title, 80)).join(', ')
  return truncate(`${prefix}${countLine(sorted.length)}: ${titles}`, 200)
}

const PRIORITY_RANK: Record<Priority, number> = { P0: 0, P1: 1, P2: 2, P3: 3, info: 4 }
function rank(p: Priority): number {
  return PRIORITY_RANK[p]
}

// ---- SMS ----

/** One SMS segment of GSM-7 text. */
export const SMS_LIMIT = 160

/**
 * `P1 PROD api down since 03:12Z: connection refused. Tried restart_service failed x2. Ack <link>`:
 * no emoji (one forces UCS-2 and 70-character segments), and what does not fit in 160 characters
 * goes, least useful first (why the alert came now before anything else); the ack link stays even
 * if that means a second segment.
 */
export function smsText(alerts: AlertView[]): string {
  const sorted = newestFirst(alerts)
  return sorted.length === 1 ? smsSingle(sorted[0]) : smsGroup(sorted)
}

function smsSingle(alert: AlertView): string {
  const tag = tagOf(alert)
  let what = smsWhat(alert)
  const since = alert.since ? `since ${utcTime(alert.since, alert.createdAt, true)}` : ''
  const elapsed = alert.since ? duration(alert.createdAt.getTime() - alert.since.getTime()) : ''
  let cause = gsm(clean(alert.summary, LIMITS.summary)).replace(/[.\s]+$/, '')
  let lead = ''
  let when = ''
  switch (alert.event) {
    case 'page':
      when = since
      break
    case 'reminder':
      lead = 'Still open: '
      when = since
      break
    case 'resolved':
      lead = 'Resolved: '
      when = elapsed ? `after ${elapsed}` : ''
      cause = ''
      break
    case 'acknowledged': {
      lead = 'Acked: '
      if (alert.acknowledgedBy) {
        what += ` by ${gsm(clean(alert.acknowledgedBy, 60))}`
        cause = ''
      }
      break
    }
    case 'flapping':
      lead = 'Flapping: '
      break
    case 'stable':
      lead = 'Stable: '
  }
  const link = (label: string, url: string | undefined) => (isHttpUrl(url) ? `${label} ${url}` : '')
  const ack = link('Ack', alert.links.acknowledge)
  const tried = smsTried(alert.tried)
  // Most useful first: the tail of this list is dropped first.
  const optional = [
    tried ? `Tried ${tried}` : '',
    gsm(clean(alert.suggestion ?? '', 100)).replace(/[.\s]+$/, ''),
    alert.affected.length ? `Also ${gsm(listText(alert.affected, 5))}` : '',
    link('Dash', alert.links.dashboard),
    // Signed approval links are long: they fit only when little else is said.
    link('Approve', alert.links.approve),
    link('Reject', alert.links.reject),
  ].filter(Boolean)
  const compose = (title: string, causeText: string, extra: string[]) => {
    const core = [lead + tag, title, when].filter(Boolean).join(' ')
    return sentences([causeText ? `${core}: ${causeText}` : core, ...extra, ack])
  }
  const fits = (text: string) => smsLength(text) <= SMS_LIMIT
  // Why the alert came now matters least of all: it goes in only when everything else fits whole
  // beside it, and then right after the cause, where it reads best.
  const why = gsm(reasonText(alert, 100)).replace(/[.\s]+$/, '')
  if (why) {
    const text = compose(what, cause, [`Why: ${why}`, ...optional])
    if (fits(text)) return text
  }
  // The whole cause, with as many of the optional parts as fit.
  for (let keep = optional.length; keep >= 0; keep--) {
    const text = compose(what, cause, optional.slice(0, keep))
    if (fits(text)) return text
  }
  // The cause cut short: with what was tried if a readable part of the cause still fits, else alone.
  for (const extra of [optional.slice(0, 1), []]) {
    const room = SMS_LIMIT - smsLength(compose(what, '', extra)) - 2
    if (cause && room >= 20) return compose(what, gsmClip(cause, room), extra)
  }
  const bare = compose(what, '', [])
  if (fits(bare)) return bare
  // Still too long: a long link. The title gives way down to a readable stub; the link never does.
  const titleRoom = SMS_LIMIT - (smsLength(bare) - smsLength(what))
  return compose(gsmClip(what, Math.max(titleRoom, 30)), '', [])
}

/** Parts joined as sentences; one already ending in a period (or a cut's "...") gets no other. */
function sentences(parts: string[]): string {
  return parts.filter(Boolean).reduce(
    (text, part) => text ? `${text}${text.endsWith('.') ? '' : '.'} ${part}` : part,
    '',
  )
}

/** "3 alerts: api down, db degraded, auth down. Ack <link of the newest>" */
function smsGroup(sorted: AlertView[]): string {
  const link = sorted.find((a) => isHttpUrl(a.links.acknowledge))?.links.acknowledge
  const ack = link ? `. Ack ${link}` : ''
  const names = sorted.map(smsWhat)
  for (let shown = names.length; shown >= 1; shown--) {
    const more = names.length - shown
    const list = names.slice(0, shown).join(', ') + (more > 0 ? `, +${more} more` : '')
    const text = `${countLine(sorted.length)}: ${list}${ack}`
    if (smsLength(text) <= SMS_LIMIT || shown === 1) return text
  }
  return `${countLine(sorted.length)}${ack}`
}

/** "api is down" → "api down": in 160 characters every word counts. */
function smsWhat(alert: AlertView): string {
  const what = alert.event === 'resolved' && alert.service
    ? `${clean(alert.service, 60)} healthy again`
    : clean(alert.title, 80).replace(/\s+is\s+/, ' ')
  return gsm(what)
}

/** "restart_service failed x2": attempts of the same action counted, not listed. */
function smsTried(tried: string[]): string {
  const counts = new Map<string, number>()
  for (const t of tried) {
    const key = gsm(clean(t, 60).replace(/\s*\(attempt \d+ of \d+\)\s*$/i, ''))
    if (key) counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return [...counts].map(([what, n]) => (n > 1 ? `${what} x${n}` : what)).join(', ')
}

// GSM 03.38: the basic set costs one character, the extension table two (an escape and the
// character); anything else switches the whole message to UCS-2.
const GSM_BASIC = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
)
const GSM_EXTENDED = new Set('^{}\\[~]|€')
const LOOKALIKES: Record<string, string> = {
  '‘': "'",
  '’': "'",
  '‚': "'",
  '“': '"',
  '”': '"',
  '„': '"',
  '–': '-',
  '—': '-',
  '…': '...',
  '\u00a0': ' ',
  '`': "'",
}

/** Text an SMS can carry in GSM-7: lookalikes replaced, anything else a question mark. */
export function gsm(text: string): string {
  let out = ''
  for (const ch of text) {
    if (GSM_BASIC.has(ch) || GSM_EXTENDED.has(ch)) out += ch
    else out += LOOKALIKES[ch] ?? '?'
  }
  return out
}

/** Length in GSM-7 septets, as a carrier counts it. */
export function smsLength(text: string): number {
  let n = 0
  for (const ch of text) n += GSM_EXTENDED.has(ch) ? 2 : 1
  return n
}

/** Cut to `max` septets with "...", at a word boundary when one is not too far back. */
function gsmClip(text: string, max: number): string {
  if (smsLength(text) <= max) return text
  let out = ''
  for (const ch of text) {
    if (smsLength(out + ch) > max - 3) break
    out += ch
  }
  const space = out.lastIndexOf(' ')
  if (space > out.length / 2) out = out.slice(0, space)
  return `${out.replace(/[\s.,;:]+$/, '')}...`
}

// ---- text from outside ----

/**
 * One line of outside text: control and bidirectional-override characters removed (they could
 * disguise a name), whitespace flattened (a newline could start a markdown heading), length capped.
 */
export function clean(text: string, max: number): string {
  const flat = text
    .replace(/\p{Cc}/gu, ' ')
    .replace(/[\u202a-\u202e\u2066-\u2069\u200e\u200f]/g, '')
    .replace(/\s+/g, ' ')
    .trim()
  return truncate(flat, max)
}

/**
 * At most `max` characters, the ellipsis that shows a cut included: the limits here are providers'
 * hard ones (PagerDuty's 1024), unlike probes' clip(), which adds the ellipsis past `max`.
 */
export function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, Math.max(0, max - 1)).trimEnd()}…` : text
}

export function isHttpUrl(url: string | undefined): boolean {
  if (!url) return false
  const u = URL.parse(url)
  return u !== null && (u.protocol === 'https:' || u.protocol === 'http:')
}

/** Text for HTML, attribute values included. */
export { escapeHtml } from '../html.ts'

// ---- time ----

/** "03:12 UTC", with the date when it is not the same UTC day as `ref` ("Mar 4 03:12 UTC"). */
export function utcTime(at: Date, ref: Date, short = false): string {
  const hm = at.toISOString().slice(11, 16)
  const sameDay = at.toISOString().slice(0, 10) === ref.toISOString().slice(0, 10)
  const day = sameDay ? '' : `${MONTHS[at.getUTCMonth()]} ${at.getUTCDate()} `
  return `${day}${hm}${short ? 'Z' : ' UTC'}`
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
