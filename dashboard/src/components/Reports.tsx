import { formatDateTime, humanize } from '../format'
import { humanDuration } from '../../../shared/durations'
import type { MaintenanceRun, Recommendation, ReportCard } from '../types'
import { Empty, Section } from './ui'

function detailText(detail: Record<string, unknown> | null | undefined): string | null {
  if (!detail || typeof detail !== 'object') return null
  // suggestion: an N+1 pattern's fix; query: a slow query's statement.
  for (const k of ['summary', 'suggestion', 'statement', 'sql', 'query', 'reason', 'message']) {
    const v = detail[k]
    if (typeof v === 'string' && v.trim()) return v
  }
  return null
}

export function Recommendations({ items }: { items: Recommendation[] }) {
  return (
    <Section id="recommendations" title="Recommendations">
      {items.length === 0 ? (
        <Empty>No recommendations right now.</Empty>
      ) : (
        <ul className="plain-list">
          {items.map((r) => {
            const extra = detailText(r.detail)
            return (
              <li key={r.id}>
                <strong>{r.title}</strong>
                <span className="muted small">
                  {' '}
                  · {humanize(r.kind)}
                  {r.service && <> · {r.service}</>} · <time dateTime={r.created_at}>{formatDateTime(r.created_at)}</time>
                </span>
                {extra && <p className="small code-ish">{extra}</p>}
              </li>
            )
          })}
        </ul>
      )}
    </Section>
  )
}

export function MaintenanceRuns({ runs }: { runs: MaintenanceRun[] | null }) {
  return (
    <Section id="maintenance" title="Maintenance runs">
      {!runs || runs.length === 0 ? (
        <Empty>No maintenance runs yet.</Empty>
      ) : (
        <ul className="plain-list">
          {runs.map((r, i) => (
            <li key={String(r.id ?? i)}>
              <strong>{humanize(String(r.task ?? 'maintenance'))}</strong>
              {r.status && <> — {humanize(String(r.status))}</>}
              {r.started_at && (
                <span className="muted small">
                  {' '}
                  · <time dateTime={r.started_at}>{formatDateTime(r.started_at)}</time>
                </span>
              )}
              {r.summary && <p className="small">{String(r.summary)}</p>}
            </li>
          ))}
        </ul>
      )}
    </Section>
  )
}

function dayName(date: string): string {
  return new Intl.DateTimeFormat('en-GB', { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' })
    .format(new Date(`${date}T12:00:00Z`))
    .replace(/,/g, '')
}

function periodOf(r: ReportCard): string {
  if (r.kind === 'daily') return dayName(r.date)
  const last = new Date(`${r.period_end}T12:00:00Z`)
  last.setUTCDate(last.getUTCDate() - 1)
  return `${dayName(r.date)} – ${dayName(last.toISOString().slice(0, 10))}`
}

const pct = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${v.toFixed(1)} %`)

function ReportCardView({ report }: { report: ReportCard }) {
  const k = report.facts?.kpis
  const services = k?.uptime?.services ?? []
  const below = services.filter((s) => !s.met)
  const sla = report.facts?.settings?.sla_pct
  const d = report.delivery
  const headingId = `report-${report.kind}-title`
  return (
    <article className="report" aria-labelledby={headingId}>
      <h3 id={headingId}>
        {report.kind === 'daily' ? 'Daily' : 'Weekly'} report — {periodOf(report)}{' '}
        <span className="muted small">({report.time_zone})</span>
      </h3>
      <p>{report.summary}</p>
      <dl className="report-numbers">
        <div>
          <dt>Uptime{sla !== undefined ? ` (SLA ${sla} %)` : ''}</dt>
          <dd>
            {services.length === 0
              ? 'not measured'
              : below.length === 0
                ? `all ${services.length} met`
                : below.map((s) => `${s.service} ${s.pct.toFixed(3)} %`).join(', ')}
          </dd>
        </div>
        <div>
          <dt>Incidents</dt>
          <dd>
            {k?.incidents?.detected ?? 0} detected, {k?.incidents?.fixed_by_vigil ?? 0} fixed by Vigil
          </dd>
        </div>
        <div>
          <dt>Auto-heal success</dt>
          <dd>{pct(k?.kpis?.auto_heal_success_pct)}</dd>
        </div>
        <div>
          <dt>MTTR</dt>
          <dd>{k?.kpis?.mttr_seconds === null || k?.kpis?.mttr_seconds === undefined ? '—' : humanDuration(k.kpis.mttr_seconds * 1000)}</dd>
        </div>
        <div>
          <dt>Sent</dt>
          <dd>
            {!d || d.queued === 0
              ? 'to nobody (no contact with a report channel)'
              : `${d.sent} of ${d.queued} delivered${d.failed ? `, ${d.failed} failed` : ''}`}
          </dd>
        </div>
      </dl>
      <details>
        <summary>The whole report</summary>
        <pre className="small code-ish report-text">{report.text}</pre>
      </details>
      <p className="muted small">
        Made <time dateTime={report.generated_at}>{formatDateTime(report.generated_at)}</time>
      </p>
    </article>
  )
}

export function ReportsView({ daily, weekly }: { daily: ReportCard | null; weekly?: ReportCard | null }) {
  return (
    <Section id="reports" title="Reports">
      {!daily && !weekly ? (
        <Empty>No report yet. The first daily report goes out at 09:00 (in the configured time zone) the morning after Vigil starts watching.</Empty>
      ) : (
        <>
          {daily && <ReportCardView report={daily} />}
          {weekly && <ReportCardView report={weekly} />}
        </>
      )}
    </Section>
  )
}
