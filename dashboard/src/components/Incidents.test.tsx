import { render, screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import type { Approval } from '../types'
import { incident, NOW } from '../test/fixtures'
import { Incidents, type IncidentActions } from './Incidents'

function actions(over: Partial<IncidentActions> = {}): IncidentActions {
  return {
    acknowledge: vi.fn().mockResolvedValue({ ok: true }),
    decide: vi.fn().mockResolvedValue({ ok: true }),
    loadTimeline: vi.fn().mockResolvedValue([]),
    ...over,
  }
}

const approval: Approval = {
  action_id: 'a1',
  incident_id: 2,
  service: 'db-main',
  strategy: 'restart_pooler',
  plan: { action: 'Restart the connection pooler', reason: 'pool exhausted for 5 minutes' },
  requested_at: '2026-12-02T11:50:00Z',
  expires_at: '2026-12-02T12:50:00Z',
}

describe('Incidents', () => {
  it('lists open incidents first with service, severity, title, age and acknowledger', () => {
    render(
      <Incidents
        now={NOW}
        operator
        approvals={[]}
        actions={actions()}
        incidents={[
          incident({ id: 1, status: 'resolved', title: 'old one', opened_at: '2026-12-02T08:00:00Z', resolved_at: '2026-12-02T09:00:00Z' }),
          incident({ id: 2, title: 'older open', opened_at: '2026-12-02T10:00:00Z', acknowledged_at: '2026-12-02T10:05:00Z', acknowledged_by_name: 'Ada' }),
          incident({ id: 3, title: 'newest open', severity: 'warning', service: 'web', opened_at: '2026-12-02T11:45:00Z' }),
        ]}
      />,
    )
    expect(screen.getByRole('heading', { name: 'Incidents (2 open)' })).toBeInTheDocument()
    const articles = screen.getAllByRole('article')
    expect(articles.map((a) => a.getAttribute('aria-labelledby'))).toEqual(['inc-3', 'inc-2', 'inc-1'])
    expect(articles[0]).toHaveTextContent('newest open')
    expect(articles[0]).toHaveTextContent('Warning web · Open for 15 min')
    expect(articles[0]).toHaveTextContent('Warning')
    expect(articles[0]).toHaveTextContent('Open for 15 min')
    expect(articles[0]).toHaveTextContent('Not acknowledged')
    expect(articles[1]).toHaveTextContent('Critical')
    expect(articles[1]).toHaveTextContent('Acknowledged by Ada')
    expect(within(articles[1]!).queryByRole('button', { name: 'Acknowledge' })).toBeNull()
    expect(articles[2]).toHaveTextContent('Resolved 3 h ago')
    expect(within(articles[2]!).queryByRole('button', { name: 'Acknowledge' })).toBeNull()
  })

  it('says "just now" plainly for an incident opened or resolved under a minute ago', () => {
    render(
      <Incidents
        now={NOW}
        operator={false}
        approvals={[]}
        actions={actions()}
        incidents={[
          incident({ id: 1, status: 'resolved', title: 'quick one', opened_at: '2026-12-02T11:58:00Z', resolved_at: '2026-12-02T11:59:40Z' }),
          incident({ id: 2, title: 'fresh one', opened_at: '2026-12-02T11:59:40Z' }),
        ]}
      />,
    )
    const [open, resolved] = screen.getAllByRole('article')
    expect(open).toHaveTextContent('Opened just now')
    expect(open).not.toHaveTextContent('Open for just now')
    expect(resolved).toHaveTextContent('Resolved just now')
    expect(resolved).not.toHaveTextContent('just now ago')
  })

  it('acknowledges through the action', async () => {
    const a = actions()
    render(<Incidents now={NOW} operator approvals={[]} actions={a} incidents={[incident({ id: 5 })]} />)
    await userEvent.click(screen.getByRole('button', { name: 'Acknowledge' }))
    expect(a.acknowledge).toHaveBeenCalledWith(expect.objectContaining({ id: 5 }))
    expect(screen.queryByRole('alert')).toBeNull()
  })

  it('shows why an acknowledgement failed', async () => {
    const a = actions({ acknowledge: vi.fn().mockResolvedValue({ ok: false, error: 'Already acknowledged' }) })
    render(<Incidents now={NOW} operator approvals={[]} actions={a} incidents={[incident()]} />)
    await userEvent.click(screen.getByRole('button', { name: 'Acknowledge' }))
    expect(await screen.findByRole('alert')).toHaveTextContent('Already acknowledged')
    expect(screen.getByRole('button', { name: 'Acknowledge' })).toBeEnabled()
  })

  it('offers Approve and Reject with the plan for a pending approval', async () => {
    const a = actions({
      decide: vi
        .fn()
        .mockResolvedValueOnce({ ok: false, error: 'Already decided' })
        .mockResolvedValueOnce({ ok: true }),
    })
    render(<Incidents now={NOW} operator approvals={[approval]} actions={a} incidents={[incident({ id: 2 })]} />)
    const box = screen.getByRole('group', { name: 'Approval for Restart the connection pooler' })
    expect(box).toHaveTextContent('Restart the connection pooler on db-main — pool exhausted for 5 minutes')
    await userEvent.click(within(box).getByRole('button', { name: 'Approve' }))
    expect(a.decide).toHaveBeenLastCalledWith(approval, 'approved')
    expect(await within(box).findByRole('alert')).toHaveTextContent('Already decided')
    await userEvent.click(within(box).getByRole('button', { name: 'Reject' }))
    expect(a.decide).toHaveBeenLastCalledWith(approval, 'rejected')
  })

  it('expands the timeline, loaded on demand', async () => {
    const a = actions({
      loadTimeline: vi.fn().mockResolvedValue([
        { at: '2026-12-02T11:30:00Z', kind: 'opened', summary: 'opened: db-main is down' },
        { at: '2026-12-02T11:31:00Z', kind: 'heal', summary: 'restart result: succeeded (attempt 1)' },
        { at: '2026-12-02T11:32:00Z', kind: 'resolved', summary: 'resolved' },
      ]),
    })
    render(<Incidents now={NOW} operator approvals={[]} actions={a} incidents={[incident({ id: 9 })]} />)
    expect(a.loadTimeline).not.toHaveBeenCalled()
    const toggle = screen.getByRole('button', { name: 'Show timeline' })
    expect(toggle).toHaveAttribute('aria-expanded', 'false')
    await userEvent.click(toggle)
    expect(toggle).toHaveAttribute('aria-expanded', 'true')
    expect(a.loadTimeline).toHaveBeenCalledWith(9)
    const items = await screen.findAllByRole('listitem')
    const timeline = items.filter((li) => li.closest('.timeline'))
    expect(timeline.map((li) => li.textContent)).toEqual([
      '2026-12-02 11:30 Opened opened: db-main is down',
      '2026-12-02 11:31 Heal restart result: succeeded (attempt 1)',
      '2026-12-02 11:32 Resolved resolved',
    ])
  })

  it('has no action buttons for a viewer who is not an operator, and an empty state', () => {
    const { rerender } = render(<Incidents now={NOW} operator={false} approvals={[approval]} actions={actions()} incidents={[incident({ id: 2 })]} />)
    expect(screen.queryByRole('button', { name: 'Acknowledge' })).toBeNull()
    expect(screen.queryByRole('button', { name: 'Approve' })).toBeNull()
    rerender(<Incidents now={NOW} operator approvals={[]} actions={actions()} incidents={[]} />)
    expect(screen.getByText('No incidents. All quiet.')).toBeInTheDocument()
  })
})
