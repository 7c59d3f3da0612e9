import { render, screen } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import { ConfirmDialog, Switch } from './ui'

describe('ui', () => {
  it('a switch says its state in words and flips on click', async () => {
    const onChange = vi.fn()
    render(<Switch checked={false} label="Dry run for prod" onChange={onChange} />)
    const sw = screen.getByRole('switch', { name: 'Dry run for prod' })
    expect(sw).toHaveAttribute('aria-checked', 'false')
    expect(sw).toHaveTextContent('Off')
    sw.focus()
    await userEvent.keyboard(' ')
    expect(onChange).toHaveBeenCalledWith(true)
  })

  it('the confirm dialog focuses Cancel and cancels on Escape', async () => {
    const onCancel = vi.fn()
    const onConfirm = vi.fn()
    render(<ConfirmDialog title="Sure?" message="It stops healing." confirmLabel="Do it" onCancel={onCancel} onConfirm={onConfirm} />)
    const dialog = screen.getByRole('dialog', { name: 'Sure?' })
    expect(dialog).toHaveAccessibleDescription('It stops healing.')
    expect(screen.getByRole('button', { name: 'Cancel' })).toHaveFocus()
    await userEvent.keyboard('{Escape}')
    expect(onCancel).toHaveBeenCalled()
    expect(onConfirm).not.toHaveBeenCalled()
  })
})
