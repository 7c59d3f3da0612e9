// Wiring: config → client → session → operator check → the live dashboard.
import { useCallback, useEffect, useMemo } from 'react'
import type { VigilConfig } from '../config'
import { createVigilApi, type VigilApi } from '../data/api'
import { isOperatorSession, SESSION_EXPIRED, useAuth } from '../data/auth'
import { createVigilClient, type VigilClient } from '../data/client'
import { hasStoredSession, supabaseLiveSource, useLiveSnapshot, type LiveSource } from '../data/live'
import type { RowChange } from '../data/merge'
import { Dashboard } from './Dashboard'
import { Header, PausedBanner } from './Header'
import { ErrorState, Loading, NotOperator, SignIn } from './Screens'

export function App({ config, client: given }: { config: VigilConfig; client?: VigilClient }) {
  const client = useMemo(() => given ?? createVigilClient(config), [given, config])
  const api = useMemo(() => createVigilApi(client), [client])
  // With a stored session the first read starts at once, before the session check below finishes.
  const source = useMemo(
    () => supabaseLiveSource(client, api, { prefetch: !given && hasStoredSession() }),
    [client, api, given],
  )
  const { state, signIn, signOut } = useAuth(client)

  if (state.status === 'loading') {
    return (
      <main className="screen" id="main">
        <Loading label="Checking your session…" />
      </main>
    )
  }
  if (state.status === 'signedOut') {
    return <SignIn devOperator={config.devOperator} message={state.message} onSignIn={signIn} />
  }
  const email = state.session.user.email ?? null
  if (!isOperatorSession(state.session)) {
    return <NotOperator email={email} onSignOut={() => void signOut()} />
  }
  return (
    <OperatorApp
      key={state.session.user.id}
      source={source}
      api={api}
      email={email}
      onSignOut={() => void signOut()}
      onSessionExpired={() => void signOut(SESSION_EXPIRED)}
    />
  )
}

/** The operator's page over a live source; the source and api are injectable for tests. */
export function OperatorApp({
  source,
  api,
  email,
  onSignOut,
  onSessionExpired,
  debounceMs,
}: {
  source: LiveSource
  api: VigilApi
  email: string | null
  onSignOut: () => void
  onSessionExpired: () => void
  debounceMs?: number
}) {
  const { state, store } = useLiveSnapshot(source, { debounceMs })
  const { snapshot, error, live } = state

  useEffect(() => {
    if (error?.kind === 'auth') onSessionExpired()
  }, [error, onSessionExpired])

  const onChanged = useCallback(
    (change?: RowChange) => {
      if (change) store.apply(change)
      store.scheduleRefresh()
    },
    [store],
  )

  if (snapshot && !snapshot.operator) return <NotOperator email={email} onSignOut={onSignOut} />

  return (
    <>
      <Header live={live} email={email} onSignOut={onSignOut} />
      <PausedBanner live={live} reason={state.liveReason} />
      <main id="main" tabIndex={-1}>
        {snapshot ? (
          <>
            {state.refreshError && (
              <div className="notice" role="status">
                Could not refresh: {state.refreshError} Showing the data from{' '}
                {new Date(snapshot.generated_at).toLocaleTimeString()}.{' '}
                <button type="button" onClick={() => void store.refresh()}>
                  Retry
                </button>
              </div>
            )}
            <Dashboard snapshot={snapshot} api={api} onChanged={onChanged} />
          </>
        ) : error && error.kind !== 'auth' ? (
          <ErrorState title="The dashboard could not load" message={error.message} onRetry={() => void store.refresh()} />
        ) : (
          <Loading label="Loading the dashboard…" />
        )}
      </main>
    </>
  )
}
