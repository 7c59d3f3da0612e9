import { render, screen } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { heal } from '../test/fixtures'
import { HealLog } from './HealLog'

describe('HealLog', () => {
  it('renders one line per action in the spec format, newest first as given', () => {
    render(
      <HealLog
        timeZone="UTC"
        entries={[
          heal({ id: 3, outcome: 'failed', attempt: 3, at: '2026-12-02T14:40:00Z' }),
          heal({ id: 2, outcome: 'dry_run', attempt: 2, detail: 'Would terminate pid 42', at: '2026-12-02T14:35:00Z' }),
          heal({ id: 1 }),
        ]}
      />,
    )
    const items = screen.getAllByRole('listitem')
    expect(items.map((li) => li.textContent)).toEqual([
      '14:40:00 ❌ Failed: Terminated blocking session on db-main (attempt 3/3)kill_blocking_session',
      '14:35:00 ⚠️ Dry run: Would terminate pid 42 on db-main (attempt 2/3)kill_blocking_session',
      '14:32:05 ✅ Terminated blocking session on db-main (attempt 1/3)kill_blocking_session',
    ])
    expect(screen.getAllByRole('img').map((i) => i.getAttribute('aria-label'))).toEqual(['Failed', 'Dry run', 'Succeeded'])
  })

  it('names the strategy in the text when there is no detail', () => {
    render(<HealLog timeZone="UTC" entries={[heal({ detail: null, outcome: 'awaiting_approval' })]} />)
    expect(screen.getByRole('listitem')).toHaveTextContent(/^14:32:05 ⚠️ Awaiting approval: Kill blocking session on db-main \(attempt 1\/3\)$/)
  })

  it('shows an empty state', () => {
    render(<HealLog entries={[]} />)
    expect(screen.getByText('No heal actions yet.')).toBeInTheDocument()
  })
})
