import { act, render, screen, waitFor, within } from '@testing-library/react'
import { describe, expect, it, vi } from 'vitest'
import type { Recommendation } from '../types'
import { fakeApi, fakeSource } from '../test/fakes'
import { flagged, NOW, seriesRow, snapshot } from '../test/fixtures'
import { Analysis, anomalyWords } from './Analysis'
import { OperatorApp } from './App'

const recommendation = (over: Partial<Recommendation> = {}): Recommendation => ({
  id: 1,
  service: 'db-main',
  kind: 'slow_query',
  title: 'select * from orders where customer_id = $1: 412 ms on average',
  detail: {},
  status: 'open',
  created_at: '2026-12-02T09:00:00Z',
  ...over,
})

const list = (name: string) => screen.getByRole('list', { name })

describe('Analysis', () => {
  it('shows each anomaly in words: service, metric, value against its baseline, score and since when', () => {
    render(
      <Analysis
        now={NOW}
        recommendations={[]}
        series={[
          flagged({ service: 'web', metric: 'http_request_duration', value: 340, score: 0.6, baseline: { value: 340, expected: 120, ratio: 2.83, hourAgo: null }, anomalous_since: '2026-12-02T11:59:30Z' }),
          flagged(),
        ]}
      />,
    )
    const items = within(list('Anomalies')).getAllByRole('listitem')
    // The most anomalous first.
    expect(items.map((li) => li.textContent)).toEqual([
      'db-main: CPU 93 % — expected ~40 %, ×2.33 the baseline, 41 % an hour ago · score 0.82 · anomalous for 20 min',
      'web: response time 340 ms — expected ~120 ms, ×2.83 the baseline · score 0.60 · anomalous since just now',
    ])
    expect(within(items[0]!).getByText('20 min')).toHaveAttribute('dateTime', '2026-12-02T11:40:00Z')
    expect(screen.getByText('No forecast crosses a limit.')).toBeInTheDocument()
  })

  it('shows each forecast that crosses its limit with its sentence, soonest first, and labels', () => {
    render(
      <Analysis
        now={NOW}
        recommendations={[]}
        series={[
          flagged({ anomalous_since: null, metric: 'xid_age', forecast: { text: 'XID age 1.2e9 rising: 2^31 in ~9 d', eta_seconds: 777_600 } }),
          flagged({
            service: 'demo-app-host',
            metric: 'disk_usage_percent',
            labels: { mount: '/data' },
            anomalous_since: null,
            forecast: { text: 'disk 71 % rising 4.2 %/h: 100 % in ~7 h (between ~5 h and ~11 h)', eta_seconds: 25_200 },
          }),
        ]}
      />,
    )
    expect(within(list('Forecasts')).getAllByRole('listitem').map((li) => li.textContent)).toEqual([
      'demo-app-host (mount=/data): disk 71 % rising 4.2 %/h: 100 % in ~7 h (between ~5 h and ~11 h)',
      'db-main: XID age 1.2e9 rising: 2^31 in ~9 d',
    ])
    expect(screen.getByText('No anomalies: every series is within what its history says.')).toBeInTheDocument()
  })

  it('says so when nothing is flagged, and when no slow-query or N+1 advice is open', () => {
    render(<Analysis now={NOW} series={[]} recommendations={[recommendation({ kind: 'add_index' })]} />)
    expect(screen.getByRole('heading', { name: 'Analysis', level: 2 })).toBeInTheDocument()
    expect(screen.getByRole('heading', { name: 'Anomalies', level: 3 })).toBeInTheDocument()
    expect(screen.getByText('No anomalies: every series is within what its history says.')).toBeInTheDocument()
    expect(screen.getByText('No forecast crosses a limit.')).toBeInTheDocument()
    expect(screen.getByText('No slow-query or N+1 recommendation is open.')).toBeInTheDocument()
    expect(screen.queryByRole('list')).toBeNull()
  })

  it('points to the slow-query and N+1 recommendations instead of listing them twice', () => {
    render(
      <Analysis now={NOW} series={[]} recommendations={[recommendation(), recommendation({ id: 2, kind: 'n_plus_one', title: 'N+1: 40 lookups per list' }), recommendation({ id: 3, kind: 'add_index' })]} />,
    )
    expect(screen.getByText(/2 slow-query or N\+1 recommendations are open/)).toBeInTheDocument()
    expect(screen.getByRole('link', { name: 'Recommendations' })).toHaveAttribute('href', '#recommendations')
    expect(screen.queryByText(/orders where customer_id/)).toBeNull()
  })

  it('shows a metric it has no words for by its name, and text from the database as text', () => {
    render(
      <Analysis
        now={NOW}
        recommendations={[]}
        series={[
          flagged({ metric: 'queue_depth', value: 12, baseline: null, anomalous_since: '2026-12-02T10:00:00Z' }),
          flagged({ service: '<img src=x onerror=alert(1)>', anomalous_since: null, forecast: { text: '<b>soon</b>', eta_seconds: null } }),
        ]}
      />,
    )
    expect(within(list('Anomalies')).getByRole('listitem')).toHaveTextContent('db-main: Queue depth 12 — unlike its history · score 0.82 · anomalous for 2 h')
    expect(within(list('Forecasts')).getByRole('listitem')).toHaveTextContent('<img src=x onerror=alert(1)>: <b>soon</b>')
    expect(document.querySelector('img, b')).toBeNull()
    // A name that is also an Object property has no words either.
    expect(anomalyWords(flagged({ metric: 'constructor' })).what).toBe('Constructor 93')
  })
})

describe('Analysis, live', () => {
  it('shows a metric_series row inserted, updated and deleted over Realtime, without a re-fetch', async () => {
    const fake = fakeSource(vi.fn(() => Promise.resolve(snapshot())))
    render(<OperatorApp source={fake.source} api={fakeApi()} email="ops@vigil.local" onSignOut={vi.fn()} onSessionExpired={vi.fn()} debounceMs={60_000} />)
    await screen.findByRole('heading', { name: 'Analysis' })
    await waitFor(() => expect(fake.channels).toHaveLength(1))
    const ch = fake.channels[0]!
    expect(screen.getByText('No forecast crosses a limit.')).toBeInTheDocument()

    act(() => ch.emit('metric_series', { eventType: 'INSERT', new: seriesRow() }))
    expect(within(list('Forecasts')).getByRole('listitem')).toHaveTextContent(
      'web: memory 71 % rising 4.2 %/h: 100 % in ~7 h (between ~5 h and ~11 h)',
    )

    act(() =>
      ch.emit('metric_series', {
        eventType: 'UPDATE',
        new: seriesRow({ value: 96, score: 0.91, baseline: { value: 96, expected: 70, ratio: 1.37, hourAgo: 72 }, anomalous_since: '2026-12-02T11:59:00Z' }),
      }),
    )
    expect(within(list('Anomalies')).getByRole('listitem')).toHaveTextContent(/^web: memory 96 % — expected ~70 %, ×1\.37 the baseline, 72 % an hour ago · score 0\.91/)
    expect(within(list('Forecasts')).getAllByRole('listitem')).toHaveLength(1)

    act(() => ch.emit('metric_series', { eventType: 'DELETE', old: { service_id: 's-web', metric: 'memory_usage_percent', labels: {} } }))
    expect(screen.getByText('No anomalies: every series is within what its history says.')).toBeInTheDocument()
    expect(screen.getByText('No forecast crosses a limit.')).toBeInTheDocument()
    expect(fake.source.fetchSnapshot).toHaveBeenCalledTimes(1)
  })
})
