import type { LiveStatus } from '../data/live'

const PILL: Record<LiveStatus, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  paused: 'Paused — reconnecting',
}

export function Header({ live, email, onSignOut }: { live?: LiveStatus; email?: string | null; onSignOut?: () => void }) {
  return (
    <header className="topbar">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <h1 className="brand">
        <span aria-hidden="true">👁️ </span>Vigil
      </h1>
      {live && (
        <span className={`pill pill-${live}`} aria-label={`Live updates: ${PILL[live]}`}>
          <span aria-hidden="true">{live === 'live' ? '●' : live === 'paused' ? '⏸' : '…'}</span> <span>{PILL[live]}</span>
        </span>
      )}
      <span className="spacer" />
      {email && <span className="who">{email}</span>}
      {onSignOut && (
        <button type="button" onClick={onSignOut}>
          Sign out
        </button>
      )}
    </header>
  )
}

/** Announced when the live channel drops, and gone again once it is back. */
export function PausedBanner({ live, reason }: { live: LiveStatus; reason?: string | null }) {
  return (
    <div role="status" aria-live="polite" className="banner-region">
      {live === 'paused' && (
        <p className="banner">
          Live updates paused — reconnecting…
          {reason && <span className="banner-reason"> The server said: {reason}</span>}
        </p>
      )}
    </div>
  )
}
