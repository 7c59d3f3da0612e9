import { formatDateTime, humanize } from '../format'
import type { DailyReport, MaintenanceRun, Recommendation } from '../types'
import { Empty, Section } from './ui'

function detailText(detail: Record<string, unknown> | null | undefined): string | null {
  if (!detail || typeof detail !== 'object') return null
  for (const k of ['summary', 'statement', 'sql', 'reason', 'message']) {
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

export function DailyReportView({ report }: { report: DailyReport | null }) {
  return (
    <Section id="daily-report" title="Latest daily report">
      {!report ? (
        <Empty>No daily report yet.</Empty>
      ) : (
        <div>
          <p>
            <strong>{report.date ?? formatDateTime(report.generated_at ?? null)}</strong>
          </p>
          {report.summary ? <p>{report.summary}</p> : <pre className="small code-ish">{JSON.stringify(report, null, 2)}</pre>}
        </div>
      )}
    </Section>
  )
}
