import { render, screen, within } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import type { ReportCard } from '../types'
import { Recommendations, ReportsView } from './Reports'

function card(overrides: Partial<ReportCard> = {}): ReportCard {
  return {
    id: 4,
    kind: 'daily',
    date: '2026-12-01',
    period_end: '2026-12-02',
    time_zone: 'Europe/Berlin',
    generated_at: '2026-12-02T08:00:05Z',
    summary: 'Tue 1 Dec 2026: 1 of 2 services below the 99.9 % SLA (lowest 99.79 %); 3 incidents, 1 fixed by Vigil, none open now; 1 heal (100 % succeeded).',
    text: 'Vigil daily report — Tue 1 Dec 2026 (Europe/Berlin)\n\nUPTIME AGAINST THE 99.9 % SLA\n  api   99.792 %    BELOW SLA',
    facts: {
      settings: { sla_pct: 99.9 },
      kpis: {
        uptime: {
          services: [
            { service: 'api', pct: 99.7917, met: false },
            { service: 'db', pct: 100, met: true },
          ],
          services_below_sla: 1,
        },
        incidents: { detected: 3, fixed_by_vigil: 1 },
        kpis: { auto_heal_success_pct: 100, mttr_seconds: 1420, mttd_seconds: 45, false_positive_pct: 33.3 },
      },
    },
    delivery: { queued: 2, sent: 2, failed: 0 },
    ...overrides,
  }
}

describe('ReportsView', () => {
  it('shows the latest daily report: summary, key numbers, delivery and the whole text', () => {
    render(<ReportsView daily={card()} />)
    const article = screen.getByRole('article', { name: /Daily report — Tue 1 Dec 2026/ })
    const box = within(article)
    expect(box.getByText(/1 of 2 services below the 99\.9 % SLA/)).toBeInTheDocument()
    expect(box.getByText('Uptime (SLA 99.9 %)').nextSibling?.textContent).toBe('api 99.792 %')
    expect(box.getByText('Incidents').nextSibling?.textContent).toBe('3 detected, 1 fixed by Vigil')
    expect(box.getByText('Auto-heal success').nextSibling?.textContent).toBe('100.0 %')
    expect(box.getByText('MTTR').nextSibling?.textContent).toBe('23 min')
    expect(box.getByText('Sent').nextSibling?.textContent).toBe('2 of 2 delivered')
    expect(box.getByText('The whole report')).toBeInTheDocument()
    expect(article.querySelector('pre')?.textContent).toContain('api   99.792 %    BELOW SLA')
  })

  it('shows the weekly report beside the daily one, its period and failures in delivery', () => {
    render(
      <ReportsView
        daily={card()}
        weekly={card({ id: 5, kind: 'weekly', date: '2026-11-23', period_end: '2026-11-30', delivery: { queued: 3, sent: 1, failed: 2 } })}
      />,
    )
    const weekly = screen.getByRole('article', { name: /Weekly report — Mon 23 Nov 2026 – Sun 29 Nov 2026/ })
    expect(within(weekly).getByText('Sent').nextSibling?.textContent).toBe('1 of 3 delivered, 2 failed')
  })

  it('says when nobody could receive it and when nothing was measured', () => {
    render(<ReportsView daily={card({ delivery: { queued: 0, sent: 0, failed: 0 }, facts: { kpis: { uptime: { services: [] } } } })} />)
    expect(screen.getByText('Sent').nextSibling?.textContent).toBe('to nobody (no contact with a report channel)')
    expect(screen.getByText('Uptime').nextSibling?.textContent).toBe('not measured')
    expect(screen.getByText('MTTR').nextSibling?.textContent).toBe('—')
  })

  it('explains when the first report comes before there is one', () => {
    render(<ReportsView daily={null} weekly={null} />)
    expect(screen.getByText(/No report yet\. The first daily report goes out at 09:00/)).toBeInTheDocument()
  })
})

describe('Recommendations', () => {
  it('shows what each analysis recommendation says to do: an N+1 pattern\'s fix, a slow query\'s statement', () => {
    const base = { service: 'db-main', status: 'open', created_at: '2026-12-02T09:00:00Z' }
    render(
      <Recommendations
        items={[
          { ...base, id: 1, kind: 'n_plus_one', title: 'N+1: 40 lookups per list', detail: { suggestion: 'Load the items with one IN query.', parent: { query: 'select …' } } },
          { ...base, id: 2, kind: 'slow_query', title: 'A slow statement: 412 ms on average', detail: { rank: 1, query: 'select * from orders where customer_id = $1' } },
        ]}
      />,
    )
    expect(screen.getByText('Load the items with one IN query.')).toBeInTheDocument()
    expect(screen.getByText('select * from orders where customer_id = $1')).toBeInTheDocument()
  })
})
