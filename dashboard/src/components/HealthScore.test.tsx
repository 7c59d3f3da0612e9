import { render, screen } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { HealthScore } from './HealthScore'

describe('HealthScore', () => {
  it.each([
    [97.5, 'Good', 'band-green'],
    [92, 'Warning', 'band-yellow'],
    [80.25, 'Critical', 'band-red'],
  ])('shows %s %% with its band in words (%s)', (score, word, cls) => {
    const { container } = render(<HealthScore score={{ score, band: null, services: 3 }} cycle={null} />)
    expect(screen.getByRole('heading', { name: 'System health' })).toBeInTheDocument()
    expect(screen.getByText(`${Math.round(score * 10) / 10} %`)).toBeInTheDocument()
    expect(screen.getByText(word)).toBeInTheDocument()
    expect(container.querySelector(`.${cls}`)).not.toBeNull()
  })

  it('uses the band the server computed and shows the last cycle', () => {
    render(
      <HealthScore
        score={{ score: 96, band: 'yellow', services: 2 }}
        cycle={{ finished_at: '2026-12-02T11:59:30Z', duration_ms: 812, services: 2, healthy: 1, degraded: 1, down: 0 }}
      />,
    )
    expect(screen.getByText('Warning')).toBeInTheDocument()
    expect(screen.getByText(/Last check cycle at/)).toHaveTextContent('11:59:30')
    expect(screen.getByText(/Last check cycle at/)).toHaveTextContent('1 healthy, 1 degraded, 0 down')
  })

  it('says there is no data yet without a score', () => {
    render(<HealthScore score={{ score: null, band: null, services: 0 }} cycle={null} />)
    expect(screen.getByText('No data yet')).toBeInTheDocument()
    expect(screen.getByText('No check cycle has run yet.')).toBeInTheDocument()
  })
})
