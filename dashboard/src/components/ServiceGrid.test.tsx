import { render, screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import { service } from '../test/fixtures'
import { ServiceGrid } from './ServiceGrid'

const services = [
  service(),
  service({ id: 's-web', name: 'web', status: 'degraded', latency_ms: 340, uptime_24h: 97.1, folded_under: 'db-main' }),
  service({ id: 's-api', name: 'api', status: 'down', latency_ms: null, uptime_24h: null, uptime_7d: null, uptime_30d: null }),
  service({ id: 's-new', name: 'new', status: 'unknown' }),
]

const card = (name: string) => screen.getByRole('article', { name })

describe('ServiceGrid', () => {
  it('shows each status as icon and word, latency, uptimes and folding', () => {
    render(<ServiceGrid services={services} operator onSetHealing={vi.fn()} />)
    const db = card('db-main')
    expect(within(db).getByText('Healthy').closest('p')).toHaveTextContent('✅ Healthy')
    expect(db).toHaveTextContent('12.3 ms')
    expect(db).toHaveTextContent('Uptime 24 h99.95 %')
    expect(db).toHaveTextContent('Uptime 7 d99.50 %')
    expect(db).toHaveTextContent('Uptime 30 d98.25 %')
    expect(db).not.toHaveTextContent('Folded under')

    const web = card('web')
    expect(web).toHaveTextContent('⚠️ Degraded')
    expect(web).toHaveTextContent('340 ms')
    expect(web).toHaveTextContent('Folded under db-main')

    const api = card('api')
    expect(api).toHaveTextContent('❌ Down')
    expect(within(api).getAllByText('—')).toHaveLength(4)
    expect(card('new')).toHaveTextContent('❔ Unknown')
  })

  it('has an accessible auto-heal switch per service, confirming before turning healing off', async () => {
    const onSetHealing = vi.fn().mockResolvedValue({ ok: true })
    render(<ServiceGrid services={services} operator onSetHealing={onSetHealing} />)
    const sw = screen.getByRole('switch', { name: 'Auto-heal for db-main' })
    expect(sw).toHaveAttribute('aria-checked', 'true')
    await userEvent.click(sw)
    const dialog = screen.getByRole('dialog', { name: 'Stop auto-heal for db-main?' })
    expect(onSetHealing).not.toHaveBeenCalled()
    await userEvent.click(within(dialog).getByRole('button', { name: 'Cancel' }))
    expect(onSetHealing).not.toHaveBeenCalled()
    await userEvent.click(sw)
    await userEvent.click(screen.getByRole('button', { name: 'Stop auto-heal' }))
    expect(onSetHealing).toHaveBeenCalledWith(services[0], false)
  })

  it('turns healing back on at once and shows a refusal inline', async () => {
    const onSetHealing = vi.fn().mockResolvedValue({ ok: false, error: 'Not allowed: your account is not an operator' })
    render(<ServiceGrid services={[service({ heal_enabled: false })]} operator onSetHealing={onSetHealing} />)
    await userEvent.click(screen.getByRole('switch', { name: 'Auto-heal for db-main' }))
    expect(onSetHealing).toHaveBeenCalledWith(expect.objectContaining({ id: 's-db' }), true)
    expect(await screen.findByRole('alert')).toHaveTextContent('Not allowed: your account is not an operator')
  })

  it('shows an empty state', () => {
    render(<ServiceGrid services={[]} operator onSetHealing={vi.fn()} />)
    expect(screen.getByText('No services are registered yet.')).toBeInTheDocument()
  })
})
