import { useEffect, useState } from 'react'
import type { ActionResult } from '../data/api'
import { formatAge, formatClock, formatDateTime, humanize, orderIncidents, SEVERITY_LABEL } from '../format'
import type { Approval, Incident, TimelineEntry } from '../types'
import { Empty, InlineError, Section, useAction } from './ui'
import { Loading } from './Screens'

export interface IncidentActions {
  acknowledge: (incident: Incident) => Promise<ActionResult>
  decide: (approval: Approval, decision: 'approved' | 'rejected') => Promise<ActionResult>
  loadTimeline: (incidentId: number) => Promise<TimelineEntry[]>
}

const SEVERITY_ICON = { critical: '❌', warning: '⚠️', info: 'ℹ️' } as const

/** "3 h ago", or "just now" (never "just now ago"). */
function agoText(iso: string, now: number): string {
  const age = formatAge(iso, now)
  return age === 'just now' ? age : `${age} ago`
}

function ApprovalBox({ approval, operator, decide }: { approval: Approval; operator: boolean; decide: IncidentActions['decide'] }) {
  const { run, pending, error } = useAction()
  const action = typeof approval.plan?.action === 'string' ? approval.plan.action : humanize(approval.strategy)
  const reason = typeof approval.plan?.reason === 'string' ? approval.plan.reason : null
  return (
    <div className="approval" role="group" aria-label={`Approval for ${action}`}>
      <p>
        <strong>Waiting for approval:</strong> {action} on {approval.service}
        {reason && <> — {reason}</>}
      </p>
      <p className="muted small">
        Strategy {approval.strategy}; expires at <time dateTime={approval.expires_at}>{formatClock(approval.expires_at)}</time>.
      </p>
      {operator && (
        <div className="button-row">
          <button type="button" className="primary" disabled={pending} onClick={() => void run(() => decide(approval, 'approved'))}>
            Approve
          </button>
          <button type="button" disabled={pending} onClick={() => void run(() => decide(approval, 'rejected'))}>
            Reject
          </button>
        </div>
      )}
      <InlineError message={error} />
    </div>
  )
}

function Timeline({ incidentId, load }: { incidentId: number; load: IncidentActions['loadTimeline'] }) {
  const [entries, setEntries] = useState<TimelineEntry[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [attempt, setAttempt] = useState(0)
  useEffect(() => {
    let alive = true
    setError(null)
    load(incidentId)
      .then((e) => alive && setEntries(e))
      .catch((e: Error) => alive && setError(e.message || 'Could not load the timeline.'))
    return () => {
      alive = false
    }
  }, [incidentId, load, attempt])
  if (error)
    return (
      <div className="timeline" role="alert">
        <p>{error}</p>
        <button type="button" onClick={() => setAttempt((n) => n + 1)}>
          Retry
        </button>
      </div>
    )
  if (!entries) return <Loading label="Loading the timeline…" />
  if (entries.length === 0) return <Empty>Nothing recorded for this incident yet.</Empty>
  return (
    <ol className="timeline">
      {entries.map((e, i) => (
        <li key={`${e.at}-${i}`}>
          <time dateTime={e.at}>{formatDateTime(e.at)}</time> <span className="tag">{humanize(e.kind)}</span> {e.summary}
        </li>
      ))}
    </ol>
  )
}

export function IncidentItem({
  incident,
  approvals,
  operator,
  actions,
  now,
}: {
  incident: Incident
  approvals: Approval[]
  operator: boolean
  actions: IncidentActions
  now: number
}) {
  const [open, setOpen] = useState(false)
  const ack = useAction()
  const open_ = incident.status === 'open'
  const timelineId = `timeline-${incident.id}`
  return (
    <li>
      <article className={`incident severity-${incident.severity} ${open_ ? 'is-open' : 'is-resolved'}`} aria-labelledby={`inc-${incident.id}`}>
        <h3 id={`inc-${incident.id}`}>
          <span aria-hidden="true">{SEVERITY_ICON[incident.severity] ?? '⚠️'} </span>
          {incident.title}
        </h3>
        <p className="incident-meta">
          <span className="tag">{SEVERITY_LABEL[incident.severity] ?? incident.severity}</span> <strong>{incident.service}</strong>
          {' · '}
          {open_ ? (
            formatAge(incident.opened_at, now) === 'just now' ? (
              <>
                Opened <time dateTime={incident.opened_at}>just now</time>
              </>
            ) : (
              <>
                Open for <time dateTime={incident.opened_at}>{formatAge(incident.opened_at, now)}</time>
              </>
            )
          ) : (
            <>Resolved {incident.resolved_at ? agoText(incident.resolved_at, now) : ''}</>
          )}
          {' · '}
          {incident.acknowledged_at
            ? `Acknowledged by ${incident.acknowledged_by_name ?? 'someone'}`
            : open_
              ? 'Not acknowledged'
              : 'Never acknowledged'}
          {incident.folded_into != null && <> · folded into incident #{incident.folded_into}</>}
          {incident.heal_attempts > 0 && <> · {incident.heal_attempts} heal attempts</>}
        </p>
        {approvals.map((a) => (
          <ApprovalBox key={a.action_id} approval={a} operator={operator} decide={actions.decide} />
        ))}
        <div className="button-row">
          {operator && open_ && !incident.acknowledged_at && (
            <button type="button" className="primary" disabled={ack.pending} onClick={() => void ack.run(() => actions.acknowledge(incident))}>
              Acknowledge
            </button>
          )}
          <button type="button" aria-expanded={open} aria-controls={timelineId} onClick={() => setOpen((o) => !o)}>
            {open ? 'Hide timeline' : 'Show timeline'}
          </button>
        </div>
        <InlineError message={ack.error} />
        <div id={timelineId} hidden={!open}>
          {open && <Timeline incidentId={incident.id} load={actions.loadTimeline} />}
        </div>
      </article>
    </li>
  )
}

export function Incidents({
  incidents,
  approvals,
  operator,
  actions,
  now = Date.now(),
}: {
  incidents: Incident[]
  approvals: Approval[]
  operator: boolean
  actions: IncidentActions
  now?: number
}) {
  const ordered = orderIncidents(incidents)
  const openCount = ordered.filter((i) => i.status === 'open').length
  const known = new Set(incidents.map((i) => i.id))
  const orphans = approvals.filter((a) => !known.has(a.incident_id))
  return (
    <Section id="incidents" title={`Incidents (${openCount} open)`}>
      {orphans.map((a) => (
        <ApprovalBox key={a.action_id} approval={a} operator={operator} decide={actions.decide} />
      ))}
      {ordered.length === 0 ? (
        <Empty>No incidents. All quiet.</Empty>
      ) : (
        <ul className="incidents">
          {ordered.map((i) => (
            <IncidentItem
              key={i.id}
              incident={i}
              approvals={approvals.filter((a) => a.incident_id === i.id)}
              operator={operator}
              actions={actions}
              now={now}
            />
          ))}
        </ul>
      )}
    </Section>
  )
}
