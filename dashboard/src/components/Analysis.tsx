// The Analysis panel: what the analysis flags now — series far from what their history says
// (anomalies) and series whose trend crosses their limit soon (forecasts) — and where its slow-query
// and N+1 findings are (the Recommendations panel lists them; they are not listed twice).
import type { MetricName } from '../../../shared/kinds'
// The analysis' own words for each metric: one mapping for incident titles and this panel.
import { METRIC_WORDS, shown, type MetricWords } from '../../../shared/metric-words'
import { formatAge, humanize } from '../format'
import type { FlaggedSeries, Recommendation } from '../types'
import { Empty, Section } from './ui'

/** The recommendation kinds the analysis makes: the daily slow-query report and N+1 detection. */
const ANALYSIS_RECOMMENDATION_KINDS: readonly string[] = ['slow_query', 'n_plus_one']

function wordsOf(metric: string): MetricWords {
  return Object.hasOwn(METRIC_WORDS, metric) ? METRIC_WORDS[metric as MetricName] : { label: humanize(metric), unit: '' }
}

const fin = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

function labelsText(labels: Record<string, unknown> | null | undefined): string {
  const entries = Object.entries(labels ?? {})
  return entries.length ? ` (${entries.map(([k, v]) => `${k}=${String(v)}`).join(', ')})` : ''
}

/**
 * One anomaly in words, as the incident title says it:
 * "CPU 93 %", "expected ~40 %, ×2.33 the baseline, 41 % an hour ago".
 */
export function anomalyWords(s: FlaggedSeries): { what: string; against: string } {
  const { label, unit } = wordsOf(s.metric)
  const b = s.baseline
  const value = fin(b?.value) ? b.value : s.value
  const against = [
    fin(b?.expected) && `expected ~${shown(b.expected)}${unit}`,
    fin(b?.ratio) && `×${shown(b.ratio)} the baseline`,
    fin(b?.hourAgo) && `${shown(b.hourAgo)}${unit} an hour ago`,
  ].filter(Boolean)
  return {
    what: `${label}${labelsText(s.labels)} ${fin(value) ? `${shown(value)}${unit}` : '—'}`,
    against: against.length ? against.join(', ') : 'unlike its history',
  }
}

const key = (s: FlaggedSeries) => JSON.stringify([s.service_id, s.metric, s.labels])

function AnomalyItem({ series, now }: { series: FlaggedSeries; now: number }) {
  const { what, against } = anomalyWords(series)
  const since = series.anomalous_since!
  const age = formatAge(since, now)
  return (
    <li>
      <strong>{series.service}</strong>: {what} — {against}
      <span className="muted small">
        {' · '}
        {fin(series.score) && <>score {series.score.toFixed(2)} · </>}
        {age === 'just now' ? (
          <>
            anomalous since <time dateTime={since}>just now</time>
          </>
        ) : (
          <>
            anomalous for <time dateTime={since}>{age}</time>
          </>
        )}
      </span>
    </li>
  )
}

export function Analysis({
  series,
  recommendations,
  now = Date.now(),
}: {
  series: FlaggedSeries[]
  recommendations: Recommendation[]
  now?: number
}) {
  const anomalies = series.filter((s) => s.anomalous_since).sort((a, b) => (b.score ?? 0) - (a.score ?? 0))
  const forecasts = series
    .filter((s) => typeof s.forecast?.text === 'string')
    .sort((a, b) => (a.forecast!.eta_seconds ?? Infinity) - (b.forecast!.eta_seconds ?? Infinity))
  const advice = recommendations.filter((r) => ANALYSIS_RECOMMENDATION_KINDS.includes(r.kind)).length
  return (
    <Section id="analysis" title="Analysis">
      <h3 id="anomalies-title">Anomalies</h3>
      {anomalies.length === 0 ? (
        <Empty>No anomalies: every series is within what its history says.</Empty>
      ) : (
        <ul className="plain-list" aria-labelledby="anomalies-title">
          {anomalies.map((s) => (
            <AnomalyItem key={key(s)} series={s} now={now} />
          ))}
        </ul>
      )}
      <h3 id="forecasts-title" className="subsection">
        Forecasts
      </h3>
      {forecasts.length === 0 ? (
        <Empty>No forecast crosses a limit.</Empty>
      ) : (
        <ul className="plain-list" aria-labelledby="forecasts-title">
          {forecasts.map((s) => (
            <li key={key(s)}>
              <strong>{s.service}</strong>
              {labelsText(s.labels)}: {s.forecast!.text}
            </li>
          ))}
        </ul>
      )}
      <p className="small subsection">
        {advice === 0 ? (
          'No slow-query or N+1 recommendation is open.'
        ) : (
          <>
            {advice === 1 ? '1 slow-query or N+1 recommendation is open' : `${advice} slow-query or N+1 recommendations are open`}: see{' '}
            <a href="#recommendations">Recommendations</a>.
          </>
        )}
      </p>
    </Section>
  )
}
