// A report's words, once, for every form it takes: the facts become a document (titled blocks of
// rows), and the document becomes plain text (the email's text part, the stored body_text), HTML
// (the email) or chat markup (Slack, Discord). Text that came from outside Vigil (service names,
// incident titles, recommendations) is kept apart as `user` pieces, cleaned of control characters
// and escaped by each form, as alerts are (notify/format.ts).
import { nextRun } from '../../../../shared/cron.ts'
import { humanDuration } from '../../../../shared/durations.ts'
import { clean, escapeHtml, type Markup, type Piece, PLAIN, truncate } from '../notify/format.ts'
import type { ReportFacts } from './facts.ts'

/** A cell: Vigil's own words, or pieces some of which came from outside. */
export type Cell = string | Piece[]
export type Tone = 'good' | 'bad' | 'neutral'
export interface Row {
  cells: Cell[]
  tone?: Tone
}
export interface Block {
  title: string
  /** A line before the rows. */
  intro?: string
  rows: Row[]
  /** Rows are a table (aligned columns) rather than a list. */
  table?: boolean
  /** Small print after the rows. */
  note?: string
}
export interface ReportDocument {
  title: string
  summary: string
  blocks: Block[]
  /** The dashboard, linked at the end. */
  dashboardUrl?: string
}

export interface RenderOptions {
  /** Task names per maintenance cadence, to say what the next runs will do. */
  tasks?: Partial<Record<'daily' | 'weekly' | 'monthly', string[]>>
  /** The dashboard, linked at the end. */
  dashboardUrl?: string
}

const USER_TEXT_MAX = 160

const user = (text: string, max = USER_TEXT_MAX): Piece => ({ text: clean(text, max), user: true })

// ---- numbers in words ----

function pct(value: number | null, digits = 1): string {
  return value === null ? '—' : `${value.toFixed(digits)} %`
}

function ms(value: number | null): string {
  if (value === null) return '—'
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${Math.round(value)} ms`
}

function seconds(value: number | null): string {
  return value === null ? '—' : humanDuration(value * 1000)
}

function money(value: number | null, currency: string): string {
  if (value === null) return '—'
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).format(value)
  } catch {
    return `${value.toFixed(2)} ${currency}`
  }
}

/**
 * How a lower-is-better number moved: "was 120 ms, ▲ 52 % worse". A change under 5 % (or under
 * the noise floor for error rates) is "about the same".
 */
function trend(
  now: number | null,
  before: number | null,
  show: (v: number | null) => string,
  floor = 0,
): { text: string; tone: Tone } {
  if (now === null) return { text: 'no data', tone: 'neutral' }
  if (before === null) return { text: 'nothing to compare with', tone: 'neutral' }
  const diff = now - before
  if (Math.abs(diff) <= floor || (before !== 0 && Math.abs(diff / before) < 0.05)) {
    return { text: `was ${show(before)}, about the same`, tone: 'neutral' }
  }
  const change = before === 0 ? '' : ` ${Math.round(Math.abs(diff / before) * 100)} %`
  return diff > 0
    ? { text: `was ${show(before)}, ▲${change} worse`, tone: 'bad' }
    : { text: `was ${show(before)}, ▼${change} better`, tone: 'good' }
}

// ---- dates ----

/** "Tue 1 Dec 2026" for a local date (YYYY-MM-DD). */
export function dayName(date: string): string {
  const d = new Date(`${date}T12:00:00Z`)
  return new Intl.DateTimeFormat('en-GB', {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    timeZone: 'UTC',
  }).format(d).replace(/,/g, '')
}

function minusOneDay(date: string): string {
  const d = new Date(`${date}T12:00:00Z`)
  d.setUTCDate(d.getUTCDate() - 1)
  return d.toISOString().slice(0, 10)
}

/** "Thu 3 Dec 04:23 CET" in the report's zone. */
function localTime(at: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('en-GB', {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hour12: false,
    timeZone,
    timeZoneName: 'short',
  }).format(at).replace(/,/g, '')
}

/** "1 Dec 2026" or "23 – 29 Nov 2026". */
export function periodName(facts: Pick<ReportFacts, 'kind' | 'period'>): string {
  const { start_date, end_date } = facts.period
  if (facts.kind === 'daily') return dayName(start_date)
  return `${dayName(start_date)} – ${dayName(minusOneDay(end_date))}`
}

// ---- the document ----

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`
}

/** One line for people: the subject's gist, the dashboard's headline, the alert's body. */
export function reportSummary(facts: ReportFacts): string {
  const k = facts.kpis
  const services = k.uptime.services
  const sla = `${facts.settings.sla_pct} % SLA`
  const uptime = services.length === 0
    ? 'no uptime measured'
    : k.uptime.services_below_sla === 0
    ? `${services.length === 1 ? 'the service' : `all ${services.length} services`} met the ${sla}`
    : `${k.uptime.services_below_sla} of ${services.length} services below the ${sla} (lowest ${
      pct(k.uptime.lowest_pct, 2)
    })`
  const inc = k.incidents
  const incidents = inc.detected === 0
    ? 'no incidents'
    : `${plural(inc.detected, 'incident')}, ${inc.fixed_by_vigil} fixed by Vigil`
  const open = inc.open_now === 0 ? 'none open now' : `${inc.open_now} open now`
  const tried = Object.entries(k.heals)
    .filter(([o]) => o === 'succeeded' || o === 'failed' || o === 'undone')
    .reduce((n, [, c]) => n + c, 0)
  const heals = tried === 0
    ? 'no heals'
    : `${plural(tried, 'heal')} (${pct(k.kpis.auto_heal_success_pct, 0)} succeeded)`
  return `${periodName(facts)}: ${uptime}; ${incidents}, ${open}; ${heals}.`
}

export function reportDocument(facts: ReportFacts, options: RenderOptions = {}): ReportDocument {
  const k = facts.kpis
  const before = facts.kind === 'daily' ? 'the day before' : 'the week before'
  const blocks: Block[] = []

  blocks.push({
    title: `Uptime against the ${facts.settings.sla_pct} % SLA`,
    table: true,
    rows: k.uptime.services.length === 0
      ? [{ cells: ['No service was checked in this period.'] }]
      : k.uptime.services.map((s) => ({
        cells: [[user(s.service, 60)], pct(s.pct, 3), s.met ? 'met' : 'BELOW SLA'],
        tone: s.met ? 'good' : 'bad',
      })),
  })

  const p = k.performance
  const perf: [string, number | null, number | null, (v: number | null) => string, number][] = [
    ['API p95', p.api_p95_ms, p.api_p95_ms_before, ms, 0],
    ['DB query p95', p.db_query_p95_ms, p.db_query_p95_ms_before, ms, 0],
    [
      'Error rate (failed checks)',
      p.error_rate_pct,
      p.error_rate_pct_before,
      (v) => pct(v, 2),
      0.05,
    ],
  ]
  blocks.push({
    title: `Performance, compared with ${before}`,
    table: true,
    rows: [
      ...perf.map(([label, now, was, show, floor]) => {
        const t = trend(now, was, show, floor)
        return { cells: [label, show(now), t.text], tone: t.tone }
      }),
      { cells: ['Deploy duration', '—', 'no deployment source is watched yet'], tone: 'neutral' },
    ],
  })

  const inc = k.incidents
  blocks.push({
    title: 'Incidents',
    intro:
      `${inc.detected} detected, ${inc.resolved} resolved, ${inc.fixed_by_vigil} fixed by Vigil, ${
        inc.open_now === 0 ? 'none' : inc.open_now
      } open now.`,
    rows: facts.incidents.map((i) => ({
      cells: [
        `${
          i.severity === 'critical' ? '❌' : i.severity === 'warning' ? '⚠️' : 'ℹ️'
        } ${i.severity}`,
        [user(i.service, 60), { text: ': ' }, user(i.title)],
        `${humanDuration(i.seconds * 1000)}${i.status === 'open' ? ', still open' : ''}${
          i.healed ? ', fixed by Vigil' : i.needed_a_person ? ', a person stepped in' : ''
        }`,
      ],
      tone: i.status === 'open' ? 'bad' : i.healed ? 'good' : 'neutral',
    })),
    note: facts.incidents.length < inc.detected
      ? `The ${facts.incidents.length} most severe of ${inc.detected} are listed.`
      : undefined,
  })

  const healRows = facts.heals.map((h) => {
    const parts = [
      h.succeeded && `${h.succeeded} succeeded`,
      h.failed && `${h.failed} failed`,
      h.undone && `${h.undone} undone (made things worse)`,
      h.other && `${h.other} other (dry run, skipped, refused)`,
    ].filter(Boolean)
    return {
      cells: [h.strategy.replaceAll('_', ' '), parts.join(', ')],
      tone: (h.failed || h.undone ? 'bad' : 'good') as Tone,
    }
  })
  blocks.push({
    title: 'Heals',
    rows: healRows.length ? healRows : [{ cells: ['Vigil did not need to heal anything.'] }],
  })

  const kp = k.kpis
  const cur = facts.settings.currency
  blocks.push({
    title: 'Key numbers',
    table: true,
    rows: [
      { cells: ['Auto-heal success rate', pct(kp.auto_heal_success_pct)] },
      { cells: ['False-positive rate', pct(kp.false_positive_pct)] },
      { cells: ['Mean time to detect (MTTD)', seconds(kp.mttd_seconds)] },
      { cells: ['Mean time to recover (MTTR)', seconds(kp.mttr_seconds)] },
      { cells: ['Manual-intervention rate', pct(kp.manual_intervention_pct)] },
      {
        cells: [
          'Prevented by maintenance',
          `${
            facts.maintenance_actions.reduce((n, m) => n + m.actions, 0)
          } actions in ${kp.maintenance_actions} successful runs`,
        ],
      },
      {
        cells: [
          'Engineer time saved',
          kp.engineer_minutes_saved ? humanDuration(kp.engineer_minutes_saved * 60_000) : 'none',
        ],
      },
      { cells: ['Cost per incident', money(kp.cost_per_incident, cur)] },
    ],
    note: `How these are counted: ${
      [
        `a false positive is ${k.assumptions.false_positive}`,
        `a manual intervention is ${k.assumptions.manual_intervention}`,
        `MTTD runs ${k.assumptions.mttd}`,
        `time saved counts ${k.assumptions.engineer_minutes_saved}`,
        `cost per incident counts ${
          (k.assumptions.cost_per_incident ?? '').replace(/ an hour/, ` ${cur} an hour`)
        }`,
        'prevented by maintenance counts what maintenance changed (a vacuum run, an index dropped, a lint fixed) before it became an incident',
      ].join('; ')
    }.`,
  })

  if (facts.forecasts.length) {
    blocks.push({
      title: 'Capacity',
      rows: facts.forecasts.map((f) => ({ cells: [[user(f.title, 300)]], tone: 'bad' })),
    })
  }

  if (facts.deployments.length) {
    blocks.push({
      title: 'Deployments',
      rows: facts.deployments.map((d) => ({
        cells: [[user(d.summary, 600)]],
        tone: d.verdict === 'worse' ? 'bad' : d.verdict === 'better' ? 'good' : 'neutral',
      })),
    })
  }

  if (facts.error_analyses.length) {
    blocks.push({
      title: 'Error analysis',
      intro: 'Errors that paged people: what they were, where, what explains them, and the fix.',
      rows: facts.error_analyses.map((e) => ({
        cells: [localTime(new Date(e.opened_at), facts.period.time_zone), [user(e.text, 1200)]],
        tone: 'bad' as Tone,
      })),
    })
  }

  const slow = facts.slow_queries
  if (slow && slow.statements.length) {
    blocks.push({
      title: `Top ${slow.statements.length} slowest ${
        slow.statements.length === 1 ? 'query' : 'queries'
      }`,
      intro:
        'Mean time a call, from pg_stat_statements; what each generic plan shows, and the fix.',
      rows: slow.statements.flatMap((q) => [
        {
          cells: [
            `#${q.rank}`,
            [user(q.query, 200)],
            `${ms(q.mean_ms)} a call, ${Math.round(q.calls).toLocaleString('en-US')} calls`,
          ],
          tone: 'bad' as Tone,
        },
        ...(q.findings.length
          ? q.findings.map((f) => ({
            cells: [[{ text: `#${q.rank}: ` }, user(`${f.text}. Fix: ${f.fix}`, 600)]],
          }))
          : [{
            cells: [[
              { text: `#${q.rank}: ` },
              user(q.note ? `no plan finding (${q.note})` : 'no plan finding', 300),
            ]],
          }]),
      ]),
    })
  }
  if (slow && slow.n_plus_one.length) {
    blocks.push({
      title: 'N+1 patterns',
      intro: 'One cheap statement run once per row of another: together, a slow page.',
      rows: slow.n_plus_one.map((p) => ({
        cells: [[user(`${p.title}${p.suggestion ? `. Fix: ${p.suggestion}` : ''}`, 600)]],
        tone: 'bad' as Tone,
      })),
    })
  }

  blocks.push({
    title: `Recommendations (${k.recommendations_open} open)`,
    rows: facts.recommendations.length
      ? facts.recommendations.map((r) => ({
        cells: [[...(r.service ? [user(r.service, 60), { text: ': ' }] : []), user(r.title, 240)]],
      }))
      : [{ cells: ['None open.'] }],
  })

  if (facts.kind === 'weekly' && facts.analyses.length) {
    blocks.push({
      title: 'Weekly analyses',
      rows: facts.analyses.map((a) => ({
        cells: [a.task.replaceAll('_', ' '), [user(a.summary ?? a.status, 400)]],
        tone: a.status === 'failed' ? 'bad' : 'neutral',
      })),
    })
  }

  const generated = new Date(facts.generated_at)
  const upcoming = facts.schedules.filter((s) => s.active).flatMap((s) => {
    const next = nextRun(s.schedule, generated)
    if (!next) return []
    const cadence = s.job.replace(/^vigil-maintenance-/, '') as 'daily' | 'weekly' | 'monthly'
    const tasks = options.tasks?.[cadence]
    return [{
      at: next,
      cells: [
        `${cadence[0].toUpperCase()}${cadence.slice(1)} maintenance`,
        `${localTime(next, facts.period.time_zone)}${
          tasks?.length ? ` (${tasks.map((t) => t.replaceAll('_', ' ')).join(', ')})` : ''
        }`,
      ] as Cell[],
    }]
  }).sort((a, b) => a.at.getTime() - b.at.getTime())
  blocks.push({
    title: 'Upcoming maintenance',
    rows: upcoming.length ? upcoming.map((u) => ({ cells: u.cells })) : [{
      cells: [
        'No maintenance is scheduled (the vigil-maintenance-* pg_cron jobs are missing or off).',
      ],
    }],
  })

  const items = [
    ...k.action_items.map((t) => [user(t, 300)]),
    ...facts.forecasts.map((f) => [{ text: 'Plan capacity: ' }, user(f.title, 300)]),
  ]
  blocks.push({
    title: 'Action items',
    rows: items.length
      ? items.map((cell) => ({ cells: [cell as Cell], tone: 'bad' as Tone }))
      : [{ cells: ['Nothing needs a person.'], tone: 'good' }],
  })

  return {
    title: `Vigil ${facts.kind} report — ${periodName(facts)} (${facts.period.time_zone})`,
    summary: reportSummary(facts),
    blocks,
    dashboardUrl: options.dashboardUrl,
  }
}

// ---- forms ----

function cellText(cell: Cell, markup: Markup): string {
  return typeof cell === 'string'
    ? cell
    : cell.map((p) => (p.user ? markup.escape(p.text) : p.text)).join('')
}

/** Plain text: the email's text part and what is stored. Columns aligned by padding. */
export function reportText(doc: ReportDocument): string {
  const out = [doc.title, '='.repeat(Math.min(doc.title.length, 72)), '', ...wrap(doc.summary, 96)]
  for (const block of doc.blocks) {
    out.push('', block.title.toUpperCase())
    if (block.intro) out.push(`  ${block.intro}`)
    const rows = block.rows.map((r) => r.cells.map((c) => cellText(c, PLAIN)))
    if (block.table) {
      const widths = rows.reduce<number[]>(
        (w, r) => r.map((c, i) => Math.max(w[i] ?? 0, c.length)),
        [],
      )
      for (const r of rows) {
        out.push(`  ${r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]) : c)).join('   ')}`)
      }
    } else {
      for (const r of rows) out.push(`  - ${r.join(' — ')}`)
    }
    if (block.note) out.push(...wrap(`(${block.note})`, 96).map((l) => `  ${l}`))
  }
  if (doc.dashboardUrl) out.push('', `Dashboard: ${doc.dashboardUrl}`)
  out.push('', '-- ', 'Sent by Vigil.')
  return `${out.join('\n')}\n`
}

/** Lines of at most `width` characters, broken at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else line = line ? `${line} ${word}` : word
  }
  if (line) lines.push(line)
  return lines
}

const TONE_COLOUR: Record<Tone, string> = { good: '#1a7f37', bad: '#b42318', neutral: '#333' }

/** HTML for email: inline styles only (mail clients drop style sheets), every outside text escaped. */
export function reportHtml(doc: ReportDocument): string {
  const esc = (cell: Cell) =>
    typeof cell === 'string' ? escapeHtml(cell) : cell.map((p) => escapeHtml(p.text)).join('')
  const parts: string[] = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(doc.title)}</title></head>`,
    '<body style="font-family: -apple-system, Segoe UI, Roboto, sans-serif; line-height: 1.45; color: #222; max-width: 44rem; margin: 0 auto; padding: 1rem">',
    `<h1 style="font-size: 1.3rem; margin: 0 0 .5rem">${escapeHtml(doc.title)}</h1>`,
    `<p style="font-size: 1.05rem; background: #f4f6f8; padding: .6rem .8rem; border-radius: 6px">${
      escapeHtml(doc.summary)
    }</p>`,
  ]
  for (const block of doc.blocks) {
    parts.push(
      `<h2 style="font-size: 1.05rem; margin: 1.4rem 0 .4rem; border-bottom: 1px solid #ddd">${
        escapeHtml(block.title)
      }</h2>`,
    )
    if (block.intro) parts.push(`<p style="margin: .2rem 0">${escapeHtml(block.intro)}</p>`)
    const colour = (r: Row) => `color: ${TONE_COLOUR[r.tone ?? 'neutral']}`
    if (block.table) {
      parts.push('<table style="border-collapse: collapse">')
      for (const r of block.rows) {
        parts.push(
          `<tr>${
            r.cells.map((c, i) =>
              `<td style="padding: .15rem 1rem .15rem 0; ${i > 0 ? colour(r) : ''}">${esc(c)}</td>`
            ).join('')
          }</tr>`,
        )
      }
      parts.push('</table>')
    } else {
      parts.push('<ul style="margin: .2rem 0; padding-left: 1.2rem">')
      for (const r of block.rows) {
        parts.push(`<li style="${colour(r)}">${r.cells.map(esc).join(' — ')}</li>`)
      }
      parts.push('</ul>')
    }
    if (block.note) {
      parts.push(
        `<p style="font-size: .85rem; color: #666; margin: .3rem 0">${escapeHtml(block.note)}</p>`,
      )
    }
  }
  if (doc.dashboardUrl) {
    parts.push(
      `<p style="margin-top: 1.5rem"><a href="${
        escapeHtml(doc.dashboardUrl)
      }">Open the dashboard</a></p>`,
    )
  }
  parts.push('<p style="color: #777; font-size: .85rem">Sent by Vigil.</p>', '</body></html>', '')
  return parts.join('\n')
}

/**
 * Chat markup (Slack's mrkdwn, Discord's markdown): the summary, then each block as a bold title
 * and bullet lines, cut at `max` characters on a line boundary with a pointer to the rest.
 */
export function reportChat(doc: ReportDocument, markup: Markup, max: number): string[] {
  const chunks: string[] = []
  const lines = [markup.strong(markup.escape(doc.title)), markup.escape(doc.summary)]
  for (const block of doc.blocks) {
    lines.push('', markup.strong(markup.escape(block.title)))
    if (block.intro) lines.push(markup.escape(block.intro))
    for (const r of block.rows) {
      const [first, ...rest] = r.cells.map((c) => cellText(c, markup))
      lines.push(
        `• ${first}${rest.length ? `${block.table ? ': ' : ' — '}${rest.join(' · ')}` : ''}`,
      )
    }
  }
  if (doc.dashboardUrl) lines.push('', markup.link('Open the dashboard', doc.dashboardUrl))
  let chunk = ''
  for (const line of lines) {
    const next = chunk ? `${chunk}\n${line}` : line
    if (next.length > max && chunk) {
      chunks.push(chunk)
      chunk = truncate(line, max)
    } else {
      chunk = truncate(next, max)
    }
  }
  if (chunk) chunks.push(chunk)
  return chunks
}
