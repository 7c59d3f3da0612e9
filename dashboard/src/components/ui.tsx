// Small accessible building blocks: a switch, a confirm dialog, inline errors, empty states and
// the hook that runs one operator action at a time with its error shown beside it.
import { useCallback, useEffect, useId, useRef, useState, type ReactNode } from 'react'
import type { ActionResult } from '../data/api'

export function Section({ id, title, children, actions }: { id: string; title: string; children: ReactNode; actions?: ReactNode }) {
  return (
    <section className="panel" aria-labelledby={`${id}-title`} id={id}>
      <div className="panel-head">
        <h2 id={`${id}-title`}>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  )
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>
}

export function InlineError({ message }: { message: string | null }) {
  if (!message) return null
  return (
    <p className="inline-error" role="alert">
      {message}
    </p>
  )
}

/** An on/off switch: a button with role=switch, its state in words as well as in its look. */
export function Switch({
  checked,
  label,
  onChange,
  disabled,
  onText = 'On',
  offText = 'Off',
}: {
  checked: boolean
  label: string
  onChange: (next: boolean) => void
  disabled?: boolean
  onText?: string
  offText?: string
}) {
  return (
    <button
      type="button"
      role="switch"
      aria-checked={checked}
      aria-label={label}
      className={`switch ${checked ? 'is-on' : 'is-off'}`}
      disabled={disabled}
      onClick={() => onChange(!checked)}
    >
      <span className="switch-track" aria-hidden="true">
        <span className="switch-thumb" />
      </span>
      <span className="switch-text">{checked ? onText : offText}</span>
    </button>
  )
}

/**
 * A confirm dialog in the page: the native <dialog> shown modally where the browser has it
 * (focus trapped, Escape cancels), an open <dialog> otherwise. Cancel has the initial focus.
 */
export function ConfirmDialog({
  title,
  message,
  confirmLabel,
  onConfirm,
  onCancel,
}: {
  title: string
  message: ReactNode
  confirmLabel: string
  onConfirm: () => void
  onCancel: () => void
}) {
  const ref = useRef<HTMLDialogElement>(null)
  const cancelRef = useRef<HTMLButtonElement>(null)
  const id = useId()
  useEffect(() => {
    const el = ref.current
    if (!el) return
    const opener = document.activeElement as HTMLElement | null
    if (typeof el.showModal === 'function') {
      if (!el.open) el.showModal()
    } else {
      el.setAttribute('open', '')
    }
    cancelRef.current?.focus()
    return () => {
      if (typeof el.close === 'function' && el.open) el.close()
      opener?.focus?.()
    }
  }, [])
  return (
    <dialog
      ref={ref}
      className="confirm"
      aria-labelledby={`${id}-t`}
      aria-describedby={`${id}-m`}
      onCancel={(e) => {
        e.preventDefault()
        onCancel()
      }}
      onKeyDown={(e) => {
        if (e.key === 'Escape') {
          e.preventDefault()
          onCancel()
        }
      }}
    >
      <h2 id={`${id}-t`}>{title}</h2>
      <div id={`${id}-m`}>{message}</div>
      <div className="confirm-actions">
        <button type="button" ref={cancelRef} onClick={onCancel}>
          Cancel
        </button>
        <button type="button" className="danger" onClick={onConfirm}>
          {confirmLabel}
        </button>
      </div>
    </dialog>
  )
}

/** Runs one action at a time; keeps its error until the next try. */
export function useAction() {
  const [pending, setPending] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const mounted = useRef(true)
  useEffect(() => {
    mounted.current = true
    return () => {
      mounted.current = false
    }
  }, [])
  const run = useCallback(async (action: () => Promise<ActionResult>, onDone?: () => void) => {
    setPending(true)
    setError(null)
    const result = await action().catch((): ActionResult => ({ ok: false, error: 'The action failed unexpectedly.' }))
    if (!mounted.current) return result
    setPending(false)
    if (result.ok) onDone?.()
    else setError(result.error)
    return result
  }, [])
  return { run, pending, error }
}
