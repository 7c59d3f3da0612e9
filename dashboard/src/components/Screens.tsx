// Full-page states: not configured, sign-in, not an operator, loading, and an error with Retry.
import { useState, type FormEvent } from 'react'
import type { DevOperator } from '../config'

export function NotConfigured({ missing }: { missing: string[] }) {
  return (
    <main className="screen" id="main">
      <h1>Vigil is not configured</h1>
      <p>The dashboard needs the Supabase project URL and its anon (publishable) key. Missing:</p>
      <ul>
        {missing.map((m) => (
          <li key={m}>
            <code>{m}</code>
          </li>
        ))}
      </ul>
      <p>
        Either serve <code>/config.js</code> setting{' '}
        <code>{'window.__VIGIL__ = { supabaseUrl: "https://<ref>.supabase.co", anonKey: "…" }'}</code>, or build
        with <code>VITE_SUPABASE_URL</code> and <code>VITE_SUPABASE_ANON_KEY</code> set.
      </p>
    </main>
  )
}

export function SignIn({
  devOperator,
  message,
  onSignIn,
}: {
  devOperator?: DevOperator
  message?: string | null
  onSignIn: (email: string, password: string) => Promise<string | null>
}) {
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)

  async function attempt(e: string, p: string) {
    setBusy(true)
    setError(null)
    const err = await onSignIn(e, p)
    setBusy(false)
    if (err) setError(err)
  }
  function submit(ev: FormEvent) {
    ev.preventDefault()
    void attempt(email.trim(), password)
  }

  return (
    <main className="screen" id="main">
      <h1>Vigil</h1>
      <p className="lede">Sign in with an operator account to see and control the system.</p>
      {message && (
        <p className="notice" role="status">
          {message}
        </p>
      )}
      <form className="signin" onSubmit={submit} aria-describedby={error ? 'signin-error' : undefined}>
        <label htmlFor="signin-email">Email</label>
        <input
          id="signin-email"
          type="email"
          autoComplete="username"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
        />
        <label htmlFor="signin-password">Password</label>
        <input
          id="signin-password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        {error && (
          <p className="inline-error" role="alert" id="signin-error">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      {devOperator && (
        <p>
          <button type="button" disabled={busy} onClick={() => void attempt(devOperator.email, devOperator.password)}>
            Sign in as the development operator
          </button>
        </p>
      )}
    </main>
  )
}

export function NotOperator({ email, onSignOut }: { email?: string | null; onSignOut: () => void }) {
  return (
    <main className="screen" id="main">
      <h1>This account is not an operator</h1>
      <p>
        {email ? (
          <>
            You are signed in as <strong>{email}</strong>, which
          </>
        ) : (
          'This account'
        )}{' '}
        does not have the operator role. Ask an administrator to set <code>app_metadata.role</code> to{' '}
        <code>devops</code>, then sign in again.
      </p>
      <button type="button" onClick={onSignOut}>
        Sign out
      </button>
    </main>
  )
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="skeleton" aria-hidden="true" />
      <span className="skeleton" aria-hidden="true" />
      <span className="skeleton short" aria-hidden="true" />
      <span>{label}</span>
    </div>
  )
}

export function ErrorState({ title = 'Something went wrong', message, onRetry }: { title?: string; message: string; onRetry: () => void }) {
  return (
    <div className="error-state" role="alert">
      <h2>{title}</h2>
      <p>{message}</p>
      <button type="button" className="primary" onClick={onRetry}>
        Retry
      </button>
    </div>
  )
}
