import { lazy, Suspense, useEffect, useMemo, useState } from 'react'
import type { TrendWindow, Trends as TrendsData } from '../types'
import { Loading } from './Screens'
import { Empty, Section } from './ui'
import type { ChartSeries } from './UPlotChart'

// uPlot loads with the first chart, not with the page.
const UPlotChart = lazy(() => import('./UPlotChart').then((m) => ({ default: m.UPlotChart })))

const WINDOWS: { value: TrendWindow; label: string }[] = [
  { value: '1h', label: '1 h' },
  { value: '24h', label: '24 h' },
  { value: '7d', label: '7 d' },
]

/** Turn trend points into uPlot's column data: x in seconds, one array per series. */
export function trendColumns(data: TrendsData) {
  const pts = data.points
  const col = (k: keyof (typeof pts)[number]) => pts.map((p) => (p[k] == null ? null : Number(p[k])))
  return {
    xs: pts.map((p) => Math.floor(new Date(p.t).getTime() / 1000)),
    p50: col('p50'),
    p95: col('p95'),
    p99: col('p99'),
    error_rate: col('error_rate'),
    connections: col('connections'),
    throughput: col('throughput'),
  }
}

export function Trends({ load, refreshKey }: { load: (w: TrendWindow) => Promise<TrendsData>; refreshKey?: string | null }) {
  const [window, setWindow] = useState<TrendWindow>('1h')
  const [loaded, setLoaded] = useState<{ window: TrendWindow; data: TrendsData } | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [attempt, setAttempt] = useState(0)

  useEffect(() => {
    let alive = true
    setError(null)
    load(window)
      .then((d) => alive && setLoaded({ window, data: d }))
      .catch((e: Error) => alive && setError(e.message || 'Could not load the trends.'))
    return () => {
      alive = false
    }
    // refreshKey: a new check cycle finished, so the trends have a new point.
  }, [load, window, attempt, refreshKey])

  const data = loaded?.data ?? null
  const charts = useMemo(() => {
    if (!data?.points || data.points.length === 0) return null
    const c = trendColumns(data)
    const latency: ChartSeries[] = [
      { label: 'p50', values: c.p50, color: '#0b5cad' },
      { label: 'p95', values: c.p95, color: '#9a4d00', dash: [6, 3] },
      { label: 'p99', values: c.p99, color: '#a4262c', dash: [2, 2] },
    ]
    return {
      xs: c.xs,
      latency,
      errors: [{ label: 'error rate', values: c.error_rate, color: '#a4262c' }],
      connections: [{ label: 'connections', values: c.connections, color: '#0b5cad' }],
      throughput: [{ label: 'throughput', values: c.throughput, color: '#1b6e3a' }],
    }
  }, [data])

  const selector = (
    <div className="segmented" role="group" aria-label="Time window">
      {WINDOWS.map((w) => (
        <button key={w.value} type="button" aria-pressed={window === w.value} onClick={() => setWindow(w.value)}>
          {w.label}
        </button>
      ))}
    </div>
  )

  return (
    <Section id="trends" title="Performance trends" actions={selector}>
      {error ? (
        <div role="alert" className="error-state">
          <p>{error}</p>
          <button type="button" onClick={() => setAttempt((n) => n + 1)}>
            Retry
          </button>
        </div>
      ) : !loaded || loaded.window !== window ? (
        <Loading label="Loading trends…" />
      ) : !charts ? (
        <Empty>No measurements in this window yet.</Empty>
      ) : (
        <Suspense fallback={<Loading label="Loading charts…" />}>
        <div className="charts">
          <UPlotChart title="Response time" unit="ms" xs={charts.xs} series={charts.latency} />
          <UPlotChart title="Error rate" unit="%" xs={charts.xs} series={charts.errors} />
          <UPlotChart title="Active connections" unit="" xs={charts.xs} series={charts.connections} />
          <UPlotChart title="Throughput" unit="" xs={charts.xs} series={charts.throughput} />
        </div>
        </Suspense>
      )}
    </Section>
  )
}
