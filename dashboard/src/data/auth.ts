// The signed-in session. supabase-js (2.119, checked in its source) already passes the new access
// token to Realtime on SIGNED_IN, TOKEN_REFRESHED and INITIAL_SESSION and clears it on SIGNED_OUT;
// setting it here as well keeps the channel in step even if that changes.
import { useCallback, useEffect, useState } from 'react'
import type { Session } from '@supabase/supabase-js'
import type { VigilClient } from './client'

export type AuthState =
  | { status: 'loading' }
  | { status: 'signedOut'; message: string | null }
  | { status: 'signedIn'; session: Session }

/**
 * Operators are users whose app_metadata.role is devops (what vigil.is_operator() reads from the
 * JWT; GoTrue puts the same app_metadata on the session's user). For display only: RLS decides.
 */
export function isOperatorSession(session: Session | null | undefined): boolean {
  return session?.user?.app_metadata?.role === 'devops'
}

export const SESSION_EXPIRED = 'Your session has expired or is invalid. Sign in again.'

export function useAuth(client: VigilClient) {
  const [state, setState] = useState<AuthState>({ status: 'loading' })

  useEffect(() => {
    let alive = true
    client.auth
      .getSession()
      .then(({ data, error }) => {
        if (!alive) return
        if (error) setState({ status: 'signedOut', message: SESSION_EXPIRED })
        else if (data.session?.access_token && data.session.user) setState({ status: 'signedIn', session: data.session })
        else setState((s) => (s.status === 'loading' ? { status: 'signedOut', message: null } : s))
      })
      .catch(() => alive && setState({ status: 'signedOut', message: SESSION_EXPIRED }))
    const { data } = client.auth.onAuthStateChange((event, session) => {
      if (!alive) return
      if (session?.access_token) void client.realtime.setAuth(session.access_token)
      if (event === 'SIGNED_OUT' || !session) {
        setState((s) => (s.status === 'signedOut' ? s : { status: 'signedOut', message: null }))
      } else if (session.user) {
        setState({ status: 'signedIn', session })
      }
    })
    return () => {
      alive = false
      data.subscription.unsubscribe()
    }
  }, [client])

  const signIn = useCallback(
    async (email: string, password: string): Promise<string | null> => {
      try {
        const { data, error } = await client.auth.signInWithPassword({ email, password })
        if (error) return signInErrorMessage(error.message, error.status)
        if (data.session) setState({ status: 'signedIn', session: data.session })
        return null
      } catch {
        return 'Could not reach the sign-in service. Check the connection and try again.'
      }
    },
    [client],
  )

  const signOut = useCallback(
    async (message: string | null = null) => {
      // Local sign-out always works, even when the server no longer knows the session.
      await client.auth.signOut({ scope: 'local' }).catch(() => undefined)
      setState({ status: 'signedOut', message })
    },
    [client],
  )

  return { state, signIn, signOut }
}

export function signInErrorMessage(message: string | undefined, status?: number): string {
  if (status === 400 || /invalid login credentials/i.test(message ?? ''))
    return 'Wrong email or password.'
  if (status === 429) return 'Too many attempts. Wait a minute and try again.'
  if (!status || status === 0) return 'Could not reach the sign-in service. Check the connection and try again.'
  return `Sign-in failed: ${message ?? `HTTP ${status}`}`
}
