import { render, screen } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import { ErrorState, NotConfigured, NotOperator, SignIn } from './Screens'

describe('SignIn', () => {
  it('offers the development operator only when configured', async () => {
    const onSignIn = vi.fn().mockResolvedValue(null)
    const { rerender } = render(<SignIn onSignIn={onSignIn} />)
    expect(screen.queryByRole('button', { name: 'Sign in as the development operator' })).toBeNull()
    rerender(<SignIn onSignIn={onSignIn} devOperator={{ email: 'ops@vigil.local', password: 'pw' }} />)
    await userEvent.click(screen.getByRole('button', { name: 'Sign in as the development operator' }))
    expect(onSignIn).toHaveBeenCalledWith('ops@vigil.local', 'pw')
  })

  it('signs in with email and password and shows errors inline', async () => {
    const onSignIn = vi.fn().mockResolvedValue('Wrong email or password.')
    render(<SignIn onSignIn={onSignIn} message="Your session has expired or is invalid. Sign in again." />)
    expect(screen.getByRole('status')).toHaveTextContent('Your session has expired')
    await userEvent.type(screen.getByLabelText('Email'), 'me@example.com')
    await userEvent.type(screen.getByLabelText('Password'), 'secret{enter}')
    expect(onSignIn).toHaveBeenCalledWith('me@example.com', 'secret')
    expect(await screen.findByRole('alert')).toHaveTextContent('Wrong email or password.')
  })
})

describe('other screens', () => {
  it('tells a non-operator so, with sign out, and nothing else', async () => {
    const onSignOut = vi.fn()
    render(<NotOperator email="viewer@example.com" onSignOut={onSignOut} />)
    expect(screen.getByRole('heading', { name: 'This account is not an operator' })).toBeInTheDocument()
    expect(screen.getByText('viewer@example.com')).toBeInTheDocument()
    await userEvent.click(screen.getByRole('button', { name: 'Sign out' }))
    expect(onSignOut).toHaveBeenCalled()
  })

  it('offers Retry on an error', async () => {
    const onRetry = vi.fn()
    render(<ErrorState message="Could not load the dashboard: HTTP 500" onRetry={onRetry} />)
    expect(screen.getByRole('alert')).toHaveTextContent('HTTP 500')
    await userEvent.click(screen.getByRole('button', { name: 'Retry' }))
    expect(onRetry).toHaveBeenCalledTimes(1)
  })

  it('says what to set when not configured', () => {
    render(<NotConfigured missing={['supabaseUrl (or VITE_SUPABASE_URL)']} />)
    expect(screen.getByRole('heading', { name: 'Vigil is not configured' })).toBeInTheDocument()
    expect(screen.getByText('supabaseUrl (or VITE_SUPABASE_URL)')).toBeInTheDocument()
    expect(screen.getAllByText(/VITE_SUPABASE_ANON_KEY/).length).toBeGreaterThan(0)
  })
})
