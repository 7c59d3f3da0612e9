import { act, render, screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import { ApiError } from '../data/api'
import type { VigilClient } from '../data/client'
import { fakeApi, fakeSource } from '../test/fakes'
import { incident, snapshot } from '../test/fixtures'
import { App, OperatorApp } from './App'

function renderOperator(fetchSnapshot: () => Promise<ReturnType<typeof snapshot>>) {
  const fake = fakeSource(vi.fn(fetchSnapshot))
  const onSessionExpired = vi.fn()
  const api = fakeApi()
  render(
    <OperatorApp source={fake.source} api={api} email="ops@vigil.local" onSignOut={vi.fn()} onSessionExpired={onSessionExpired} debounceMs={10} />,
  )
  return { ...fake, api, onSessionExpired }
}

describe('OperatorApp', () => {
  it('shows the page with a Live pill once subscribed', async () => {
    const { channels } = renderOperator(() => Promise.resolve(snapshot()))
    expect(screen.getByText('Loading the dashboard…')).toBeInTheDocument()
    expect(await screen.findByRole('heading', { name: 'System health' })).toBeInTheDocument()
    expect(screen.getByRole('heading', { level: 1, name: /Vigil/ })).toBeInTheDocument()
    expect(screen.getByText('ops@vigil.local')).toBeInTheDocument()
    await waitFor(() => expect(channels).toHaveLength(1))
    act(() => channels[0]!.status('SUBSCRIBED'))
    expect(screen.getByLabelText('Live updates: Live')).toBeInTheDocument()
    for (const h of ['Services', 'Incidents (1 open)', 'Auto-heal activity', 'Performance trends', 'Analysis', 'Operator controls', 'Recommendations', 'Maintenance runs', 'Reports'])
      expect(screen.getByRole('heading', { name: h })).toBeInTheDocument()
    expect(screen.getByText('No maintenance runs yet.')).toBeInTheDocument()
    expect(screen.getByText(/No report yet\./)).toBeInTheDocument()
    expect(await screen.findByText('No measurements in this window yet.')).toBeInTheDocument()
  })

  it('shows the paused banner on CHANNEL_ERROR and catches up when SUBSCRIBED again', async () => {
    let score = 97.5
    const { channels, source } = renderOperator(() => Promise.resolve(snapshot({ score: { score, band: null, services: 2 } })))
    await screen.findByText('97.5 %')
    await waitFor(() => expect(channels).toHaveLength(1))
    const ch = channels[0]!
    act(() => ch.status('SUBSCRIBED'))
    expect(screen.queryByText('Live updates paused — reconnecting…')).toBeNull()
    act(() => ch.status('CHANNEL_ERROR'))
    expect(screen.getByText('Live updates paused — reconnecting…').closest('[role=status]')).toHaveAttribute('aria-live', 'polite')
    expect(screen.getByLabelText('Live updates: Paused — reconnecting')).toBeInTheDocument()
    score = 85
    act(() => ch.status('SUBSCRIBED'))
    expect(await screen.findByText('85 %')).toBeInTheDocument()
    expect(screen.getByText('85 %').closest('.score')).toHaveTextContent('Critical')
    expect(screen.queryByText('Live updates paused — reconnecting…')).toBeNull()
    expect(source.fetchSnapshot).toHaveBeenCalledTimes(2)
  })

  it('says why when the server refuses the live channel', async () => {
    const { channels } = renderOperator(() => Promise.resolve(snapshot()))
    await waitFor(() => expect(channels).toHaveLength(1))
    act(() => channels[0]!.status('CHANNEL_ERROR', new Error('role authenticated may not read vigil.alerts')))
    expect(screen.getByText(/The server said: role authenticated may not read vigil\.alerts/)).toBeInTheDocument()
  })

  it('applies a realtime row at once', async () => {
    const { channels } = renderOperator(() => Promise.resolve(snapshot()))
    await screen.findByRole('heading', { name: 'Services' })
    await waitFor(() => expect(channels).toHaveLength(1))
    act(() => channels[0]!.emit('services', { eventType: 'UPDATE', new: { id: 's-db', status: 'down' } }))
    expect(screen.getByRole('article', { name: 'db-main' })).toHaveTextContent('❌ Down')
  })

  it('shows an error with Retry when the snapshot fails, and recovers', async () => {
    let fail = true
    renderOperator(() => (fail ? Promise.reject(new ApiError('server', 'Could not load the dashboard: HTTP 500')) : Promise.resolve(snapshot())))
    expect(await screen.findByRole('heading', { name: 'The dashboard could not load' })).toBeInTheDocument()
    expect(screen.getByText('Could not load the dashboard: HTTP 500')).toBeInTheDocument()
    fail = false
    await userEvent.click(screen.getByRole('button', { name: 'Retry' }))
    expect(await screen.findByRole('heading', { name: 'System health' })).toBeInTheDocument()
  })

  it('sends an expired session back to sign-in', async () => {
    const { onSessionExpired } = renderOperator(() => Promise.reject(new ApiError('auth', 'expired')))
    await waitFor(() => expect(onSessionExpired).toHaveBeenCalled())
  })

  it('shows the not-operator screen when the server says so', async () => {
    renderOperator(() => Promise.resolve(snapshot({ operator: false, services: [], incidents: [] })))
    expect(await screen.findByRole('heading', { name: 'This account is not an operator' })).toBeInTheDocument()
    expect(screen.queryByRole('heading', { name: 'Services' })).toBeNull()
  })

  it('acknowledges, merges the change and re-fetches', async () => {
    let acknowledged: string | null = null
    const { api, source } = renderOperator(() =>
      Promise.resolve(snapshot({ incidents: [incident({ acknowledged_at: acknowledged, acknowledged_by_name: acknowledged && 'Ada' })] })),
    )
    vi.mocked(api.acknowledge).mockImplementation(async () => {
      acknowledged = new Date().toISOString()
      return { ok: true }
    })
    await userEvent.click(await screen.findByRole('button', { name: 'Acknowledge' }))
    expect(api.acknowledge).toHaveBeenCalledWith(1)
    await waitFor(() => expect(screen.queryByRole('button', { name: 'Acknowledge' })).toBeNull())
    await waitFor(() => expect(source.fetchSnapshot).toHaveBeenCalledTimes(2))
    expect(await screen.findByText(/Acknowledged by Ada/)).toBeInTheDocument()
  })
})

/** Just enough of a supabase client for the auth gate. */
function fakeClient(session: unknown) {
  const rpc = vi.fn(() => Promise.resolve({ data: snapshot(), error: null, status: 200 }))
  const client = {
    auth: {
      getSession: vi.fn(() => Promise.resolve({ data: { session }, error: null })),
      onAuthStateChange: vi.fn(() => ({ data: { subscription: { unsubscribe: vi.fn() } } })),
      signInWithPassword: vi.fn(() => Promise.resolve({ data: { session: null }, error: { message: 'Invalid login credentials', status: 400 } })),
      signOut: vi.fn(() => Promise.resolve({ error: null })),
    },
    realtime: { setAuth: vi.fn(() => Promise.resolve()) },
    rpc,
    channel: vi.fn(),
    removeChannel: vi.fn(),
    from: vi.fn(),
  }
  return { client: client as unknown as VigilClient, rpc, raw: client }
}

const config = { supabaseUrl: 'http://127.0.0.1:54321', anonKey: 'anon' }

describe('App auth gate', () => {
  it('shows sign-in when signed out and reports a wrong password inline', async () => {
    const { client } = fakeClient(null)
    render(<App config={config} client={client} />)
    expect(await screen.findByRole('button', { name: 'Sign in' })).toBeInTheDocument()
    expect(screen.queryByRole('button', { name: 'Sign in as the development operator' })).toBeNull()
    await userEvent.type(screen.getByLabelText('Email'), 'a@b.c')
    await userEvent.type(screen.getByLabelText('Password'), 'nope{enter}')
    expect(await screen.findByRole('alert')).toHaveTextContent('Wrong email or password.')
  })

  it('never loads internal rows for a user who is not an operator', async () => {
    const { client, rpc } = fakeClient({ access_token: 'x.y.z', user: { id: 'u1', email: 'viewer@example.com', app_metadata: { role: 'viewer' } } })
    render(<App config={{ ...config, devOperator: { email: 'ops@vigil.local', password: 'pw' } }} client={client} />)
    expect(await screen.findByRole('heading', { name: 'This account is not an operator' })).toBeInTheDocument()
    expect(rpc).not.toHaveBeenCalled()
  })

  it('sends a session the server refuses back to sign-in with a message', async () => {
    const { client, raw } = fakeClient({ access_token: 'x.y.z', user: { id: 'u2', email: 'ops@vigil.local', app_metadata: { role: 'devops' } } })
    raw.rpc.mockResolvedValue({ data: null, error: { message: 'JWT expired', code: 'PGRST303' }, status: 401 } as never)
    raw.channel.mockImplementation(() => {
      const ch = { on: () => ch, subscribe: () => ch }
      return ch
    })
    render(<App config={{ ...config, devOperator: { email: 'ops@vigil.local', password: 'pw' } }} client={client} />)
    const notice = await screen.findByText('Your session has expired or is invalid. Sign in again.', { selector: '.notice' })
    expect(notice).toHaveAttribute('role', 'status')
    expect(screen.getByRole('button', { name: 'Sign in as the development operator' })).toBeInTheDocument()
    expect(raw.auth.signOut).toHaveBeenCalledWith({ scope: 'local' })
  })
})

describe('OperatorApp refresh failure', () => {
  it('keeps the data on screen with a notice and Retry when a re-fetch fails', async () => {
    let fail = false
    const { channels, source } = renderOperator(() =>
      fail ? Promise.reject(new ApiError('network', 'Could not reach the server.')) : Promise.resolve(snapshot()),
    )
    await screen.findByRole('heading', { name: 'System health' })
    await waitFor(() => expect(channels).toHaveLength(1))
    fail = true
    act(() => channels[0]!.status('CHANNEL_ERROR'))
    act(() => channels[0]!.status('SUBSCRIBED'))
    expect(await screen.findByText(/Could not refresh: Could not reach the server\./)).toBeInTheDocument()
    expect(screen.getByRole('heading', { name: 'Services' })).toBeInTheDocument()
    fail = false
    await userEvent.click(screen.getByRole('button', { name: 'Retry' }))
    await waitFor(() => expect(screen.queryByText(/Could not refresh/)).toBeNull())
    expect(source.fetchSnapshot).toHaveBeenCalledTimes(3)
  })
})

describe('Header', () => {
  it('shows the live state as a word on its own', async () => {
    const { channels } = renderOperator(() => Promise.resolve(snapshot()))
    await screen.findByRole('heading', { name: 'System health' })
    await waitFor(() => expect(channels).toHaveLength(1))
    expect(screen.getByText('Connecting…')).toBeInTheDocument()
    act(() => channels[0]!.status('SUBSCRIBED'))
    expect(screen.getByText('Live', { exact: true })).toBeInTheDocument()
    expect(screen.getByTestId('health-score')).toHaveTextContent(/^97\.5 % .*Good$/)
  })
})
