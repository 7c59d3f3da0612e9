import { render, screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import { snapshot } from '../test/fixtures'
import { Controls, type ControlActions } from './Controls'

const actions = (over: Partial<ControlActions> = {}): ControlActions => ({
  setKillSwitch: vi.fn().mockResolvedValue({ ok: true }),
  setDryRun: vi.fn().mockResolvedValue({ ok: true }),
  ...over,
})

describe('Controls', () => {
  it('lists environments prod first with their switches', () => {
    const s = snapshot()
    render(<Controls settings={[...s.settings].reverse()} changes={[]} operator actions={actions()} />)
    const rows = screen.getAllByRole('row').slice(1)
    expect(rows.map((r) => within(r).getByRole('rowheader').textContent)).toEqual(['prod', 'qa', 'dev'])
    expect(screen.getByRole('switch', { name: 'Dry run for qa' })).toHaveAttribute('aria-checked', 'true')
    expect(screen.getByText('No control changes yet.')).toBeInTheDocument()
  })

  it('asks before turning a kill switch on, not before turning it off', async () => {
    const a = actions()
    const s = snapshot()
    const { rerender } = render(<Controls settings={s.settings} changes={[]} operator actions={a} />)
    await userEvent.click(screen.getByRole('switch', { name: 'Kill switch for prod' }))
    const dialog = screen.getByRole('dialog', { name: 'Turn on the kill switch for prod?' })
    expect(within(dialog).getByRole('button', { name: 'Cancel' })).toHaveFocus()
    expect(a.setKillSwitch).not.toHaveBeenCalled()
    await userEvent.click(within(dialog).getByRole('button', { name: 'Turn on kill switch' }))
    expect(a.setKillSwitch).toHaveBeenCalledWith('prod', true)
    expect(screen.queryByRole('dialog')).toBeNull()

    const on = s.settings.map((x) => (x.environment === 'prod' ? { ...x, kill_switch: true } : x))
    rerender(<Controls settings={on} changes={[]} operator actions={a} />)
    await userEvent.click(screen.getByRole('switch', { name: 'Kill switch for prod' }))
    expect(screen.queryByRole('dialog')).toBeNull()
    expect(a.setKillSwitch).toHaveBeenLastCalledWith('prod', false)
  })

  it('toggles dry run and shows a refusal inline', async () => {
    const a = actions({ setDryRun: vi.fn().mockResolvedValue({ ok: false, error: 'Not allowed: your account is not an operator' }) })
    render(<Controls settings={snapshot().settings} changes={[]} operator actions={a} />)
    await userEvent.click(screen.getByRole('switch', { name: 'Dry run for dev' }))
    expect(a.setDryRun).toHaveBeenCalledWith('dev', true)
    expect(await screen.findByRole('alert')).toHaveTextContent('Not allowed: your account is not an operator')
  })

  it('shows the audit of control changes', () => {
    render(
      <Controls
        settings={snapshot().settings}
        operator
        actions={actions()}
        changes={[
          { id: 2, changed_at: '2026-12-02T11:00:00Z', target: 'settings:prod', field: 'kill_switch', old_value: false, new_value: true, actor_name: 'Ada' },
        ]}
      />,
    )
    expect(screen.getByText(/set kill switch on/)).toHaveTextContent('2026-12-02 11:00 Ada set kill switch on settings:prod from Off to On')
  })
})
