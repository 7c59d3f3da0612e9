import { render, screen } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { UPlotChart } from './UPlotChart'

describe('UPlotChart', () => {
  it('captions the latest value of each series (no canvas in jsdom)', () => {
    render(
      <UPlotChart
        title="Response time"
        unit="ms"
        xs={[1, 2, 3]}
        series={[
          { label: 'p50', values: [10, 12, null], color: '#000' },
          { label: 'p95', values: [null, null, null], color: '#000' },
        ]}
      />,
    )
    expect(screen.getByText('Response time').closest('figcaption')).toHaveTextContent('latest: p50 12 ms, p95 —')
  })

  it('says when a window has no data instead of drawing an empty chart', () => {
    const { container } = render(<UPlotChart title="Throughput" unit="" xs={[1]} series={[{ label: 'throughput', values: [null], color: '#000' }]} />)
    expect(screen.getByText('no data in this window')).toBeInTheDocument()
    expect(container.querySelector('.chart-canvas')).toBeNull()
  })
})
