import { bandFor, bandWord, formatClock } from '../format'
import type { Cycle, Score } from '../types'
import { Section } from './ui'

const BAND_ICON = { green: '✅', yellow: '⚠️', red: '❌' } as const

export function formatScore(score: number | null): string {
  if (score == null || !Number.isFinite(score)) return '—'
  return `${Math.round(score * 10) / 10} %`
}

export function HealthScore({ score, cycle }: { score: Score; cycle: Cycle | null }) {
  // The server's band is the rule; computing it here only covers a snapshot without one.
  const band = score.band ?? bandFor(score.score)
  return (
    <Section id="health" title="System health">
      <div className={`score band-${band ?? 'none'}`}>
        <p className="score-value" data-testid="health-score">
          <span className="score-number">{formatScore(score.score)}</span>{' '}
          <span className="score-band">
            {band && <span aria-hidden="true">{BAND_ICON[band]} </span>}
            {bandWord(band)}
          </span>
        </p>
        <p className="muted">
          Health score over {score.services} {score.services === 1 ? 'service' : 'services'}: above 95 % is good,
          90–95 % a warning, below 90 % critical.
        </p>
        <p className="muted">
          {cycle ? (
            <>
              Last check cycle at <time dateTime={cycle.finished_at}>{formatClock(cycle.finished_at)}</time> (
              {Math.round(cycle.duration_ms)} ms): {cycle.healthy} healthy, {cycle.degraded} degraded, {cycle.down} down.
            </>
          ) : (
            'No check cycle has run yet.'
          )}
        </p>
      </div>
    </Section>
  )
}
