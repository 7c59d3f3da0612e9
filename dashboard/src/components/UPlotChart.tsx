// One uPlot chart, created and destroyed in an effect, resized with its container. Where there is
// no canvas (jsdom) it draws nothing; the figure's caption carries the latest values in words.
import { useEffect, useRef } from 'react'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'

export interface ChartSeries {
  label: string
  values: (number | null)[]
  color: string
  dash?: number[]
}

const HEIGHT = 180

function canDraw(): boolean {
  return typeof navigator !== 'undefined' && !/jsdom/i.test(navigator.userAgent) && typeof HTMLCanvasElement !== 'undefined'
}

export function UPlotChart({ title, xs, series, unit }: { title: string; xs: number[]; series: ChartSeries[]; unit: string }) {
  const ref = useRef<HTMLDivElement>(null)
  const hasData = series.some((s) => s.values.some((v) => v != null))
  useEffect(() => {
    const el = ref.current
    if (!el || !hasData || !canDraw()) return
    const fmt = (v: number | null | undefined) => (v == null ? '—' : `${v}${unit ? ` ${unit}` : ''}`)
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth || 600),
      height: HEIGHT,
      scales: { x: { time: true } },
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          dash: s.dash,
          spanGaps: false,
          value: (_u: uPlot, v: number | null) => fmt(v),
        })),
      ],
      axes: [{ stroke: '#333' }, { stroke: '#333', size: 56, values: (_u, vals) => vals.map((v) => `${v}`) }],
      legend: { show: true },
    }
    const plot = new uPlot(opts, [xs, ...series.map((s) => s.values)] as uPlot.AlignedData, el)
    const ro =
      typeof ResizeObserver === 'undefined'
        ? null
        : new ResizeObserver(() => plot.setSize({ width: Math.max(200, el.clientWidth), height: HEIGHT }))
    ro?.observe(el)
    return () => {
      ro?.disconnect()
      plot.destroy()
    }
  }, [xs, series, unit, hasData])

  const latest = series
    .map((s) => {
      const last = [...s.values].reverse().find((v) => v != null)
      return `${s.label} ${last == null ? '—' : `${last}${unit ? ` ${unit}` : ''}`}`
    })
    .join(', ')
  return (
    <figure className="chart">
      <figcaption>
        <strong>{title}</strong>{' '}
        {hasData ? <span className="muted small">latest: {latest}</span> : <span className="muted small">no data in this window</span>}
      </figcaption>
      {hasData && <div ref={ref} className="chart-canvas" aria-hidden="true" />}
    </figure>
  )
}
