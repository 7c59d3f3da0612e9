// Pure formatting and ordering rules the views share. Every status is shown as an icon and a word,
// never as colour alone.
import type { Band, HealLogEntry, HealOutcome, Incident, ServiceStatus, Severity } from './types'
import { humanDuration } from '../../shared/durations'

/** The health score's band: green above 95 %, yellow from 90 % to 95 %, red below 90 %. */
export function bandFor(score: number | null | undefined): Band | null {
  if (score == null || !Number.isFinite(score)) return null
  if (score > 95) return 'green'
  if (score >= 90) return 'yellow'
  return 'red'
}

export const BAND_WORD: Record<Band, string> = {
  green: 'Good',
  yellow: 'Warning',
  red: 'Critical',
}

export function bandWord(band: Band | null): string {
  return band ? BAND_WORD[band] : 'No data yet'
}

export const STATUS_LABEL: Record<ServiceStatus, { icon: string; word: string }> = {
  healthy: { icon: '✅', word: 'Healthy' },
  degraded: { icon: '⚠️', word: 'Degraded' },
  down: { icon: '❌', word: 'Down' },
  unknown: { icon: '❔', word: 'Unknown' },
}

export function statusLabel(status: string): { icon: string; word: string } {
  return STATUS_LABEL[status as ServiceStatus] ?? STATUS_LABEL.unknown
}

export const SEVERITY_LABEL: Record<Severity, string> = {
  critical: 'Critical',
  warning: 'Warning',
  info: 'Info',
}

export const OUTCOME_LABEL: Record<HealOutcome, { icon: string; word: string }> = {
  succeeded: { icon: '✅', word: 'Succeeded' },
  dry_run: { icon: '⚠️', word: 'Dry run' },
  skipped: { icon: '⚠️', word: 'Skipped' },
  refused: { icon: '⚠️', word: 'Refused' },
  awaiting_approval: { icon: '⚠️', word: 'Awaiting approval' },
  pending: { icon: '⚠️', word: 'Pending' },
  undone: { icon: '⚠️', word: 'Undone' },
  failed: { icon: '❌', word: 'Failed' },
}

export function outcomeLabel(outcome: string): { icon: string; word: string } {
  return OUTCOME_LABEL[outcome as HealOutcome] ?? { icon: '⚠️', word: outcome }
}

const clockFormats = new Map<string, Intl.DateTimeFormat>()

/** HH:MM:SS on a 24-hour clock, in the viewer's time zone unless one is given. */
export function formatClock(iso: string | null | undefined, timeZone?: string): string {
  if (!iso) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return '—'
  const key = timeZone ?? ''
  let f = clockFormats.get(key)
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
      ...(timeZone ? { timeZone } : {}),
    })
    clockFormats.set(key, f)
  }
  return f.format(d)
}

const dateTimeFormats = new Map<string, Intl.DateTimeFormat>()

/** A date and time for audit rows: 2026-12-02 14:32. */
export function formatDateTime(iso: string | null | undefined, timeZone?: string): string {
  if (!iso) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return '—'
  const key = timeZone ?? ''
  // A formatter costs far more to make than to use: one per time zone, kept.
  let f = dateTimeFormats.get(key)
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', {
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      ...(timeZone ? { timeZone } : {}),
    })
    dateTimeFormats.set(key, f)
  }
  const parts = f.formatToParts(d)
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? ''
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')}`
}

/** How long ago: "just now", "4 min", "2 h 5 min", "3 d 4 h". */
export function formatAge(iso: string, now: number = Date.now()): string {
  const then = new Date(iso).getTime()
  if (Number.isNaN(then)) return '—'
  // Minutes resolution on the dashboard: under a minute is "just now".
  return now - then < 60_000 ? 'just now' : humanDuration(now - then)
}

export function formatPercent(v: number | null | undefined, digits = 2): string {
  if (v == null || !Number.isFinite(Number(v))) return '—'
  const n = Number(v)
  return `${n === 100 ? '100' : n.toFixed(digits)} %`
}

export function formatMs(v: number | null | undefined): string {
  if (v == null || !Number.isFinite(Number(v))) return '—'
  const n = Number(v)
  return `${n >= 100 ? Math.round(n) : Math.round(n * 10) / 10} ms`
}

export function humanize(identifier: string): string {
  const s = identifier.replace(/[_-]+/g, ' ').trim()
  return s ? s[0]!.toUpperCase() + s.slice(1) : identifier
}

/**
 * One heal-log line, as the spec writes it:
 * `14:32:05 ✅ Terminated blocking session on db-main (attempt 1/3)`.
 * What was done is the detail when the strategy wrote one, else the strategy's name; outcomes other
 * than success carry their word, and a reason when there is one.
 */
export function healLogParts(e: HealLogEntry, timeZone?: string) {
  const { icon, word } = outcomeLabel(e.outcome)
  const what = e.detail?.trim() || humanize(e.strategy)
  const prefix = e.outcome === 'succeeded' ? '' : `${word}: `
  const reason = e.reason && e.outcome !== 'succeeded' ? ` — ${e.reason}` : ''
  return {
    time: formatClock(e.at, timeZone),
    icon,
    word,
    text: `${prefix}${what} on ${e.service}${reason}`,
    attempt: `(attempt ${e.attempt}/${e.max_attempts})`,
  }
}

export function healLogLine(e: HealLogEntry, timeZone?: string): string {
  const p = healLogParts(e, timeZone)
  return `${p.time} ${p.icon} ${p.text} ${p.attempt}`
}

const time = (iso: string | null | undefined) => (iso ? new Date(iso).getTime() || 0 : 0)

/** Open incidents first, newest first; then resolved ones, most recently resolved first. */
export function orderIncidents(incidents: readonly Incident[]): Incident[] {
  return [...incidents].sort((a, b) => {
    if (a.status !== b.status) return a.status === 'open' ? -1 : 1
    if (a.status === 'open') return time(b.opened_at) - time(a.opened_at) || b.id - a.id
    return (
      time(b.resolved_at ?? b.opened_at) - time(a.resolved_at ?? a.opened_at) || b.id - a.id
    )
  })
}

/** A control value as words: booleans as On/Off, anything else as JSON. */
export function formatControlValue(v: unknown): string {
  if (v === true || v === 'true') return 'On'
  if (v === false || v === 'false') return 'Off'
  if (v == null) return '—'
  return typeof v === 'string' ? v : JSON.stringify(v)
}
