import { render, screen } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import type { TrendWindow, Trends as TrendsData } from '../types'
import { Trends, trendColumns } from './Trends'

vi.mock('./UPlotChart', () => ({
  UPlotChart: ({ title, series }: { title: string; series: { label: string }[] }) => (
    <figure data-testid="chart">
      <figcaption>{title}</figcaption>
      {series.map((s) => s.label).join(',')}
    </figure>
  ),
}))

const points: TrendsData['points'] = [
  { t: '2026-12-02T11:00:00Z', p50: 10, p95: 20, p99: 30, error_rate: 0, connections: 5, throughput: 1.5 },
  { t: '2026-12-02T11:01:00Z', p50: null, p95: null, p99: null, error_rate: 50, connections: null, throughput: null },
]

describe('Trends', () => {
  it('loads the 1 h window, then another on request, and draws four charts', async () => {
    const load = vi.fn((w: TrendWindow) => Promise.resolve({ window: w, bucket_seconds: 60, points }))
    render(<Trends load={load} />)
    expect(await screen.findAllByTestId('chart')).toHaveLength(4)
    expect(screen.getByText('Response time').closest('figure')).toHaveTextContent('p50,p95,p99')
    expect(load).toHaveBeenCalledWith('1h')
    expect(screen.getByRole('button', { name: '1 h' })).toHaveAttribute('aria-pressed', 'true')
    await userEvent.click(screen.getByRole('button', { name: '7 d' }))
    expect(load).toHaveBeenLastCalledWith('7d')
    expect(screen.getByRole('button', { name: '7 d' })).toHaveAttribute('aria-pressed', 'true')
  })

  it('shows an empty state and an error with Retry', async () => {
    const load = vi
      .fn()
      .mockRejectedValueOnce(new Error('Could not load the trends: boom'))
      .mockResolvedValue({ window: '1h', bucket_seconds: 60, points: [] })
    render(<Trends load={load} />)
    expect(await screen.findByRole('alert')).toHaveTextContent('Could not load the trends: boom')
    await userEvent.click(screen.getByRole('button', { name: 'Retry' }))
    expect(await screen.findByText('No measurements in this window yet.')).toBeInTheDocument()
  })

  it('turns points into uPlot columns with gaps as null', () => {
    const c = trendColumns({ window: '1h', bucket_seconds: 60, points })
    expect(c.xs).toEqual([Date.parse(points[0]!.t) / 1000, Date.parse(points[1]!.t) / 1000])
    expect(c.p50).toEqual([10, null])
    expect(c.error_rate).toEqual([0, 50])
  })
})
