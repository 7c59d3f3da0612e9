// From a row that vigil.claim_alerts returned to what a channel needs: the AlertView (facts a human
// acts on, links signed) and the Endpoint (whom to reach, how). The row is parsed, not trusted:
// a row that does not parse is recorded as a permanent failure by the caller, never sent half-made.
import { z } from 'zod'
import { AlertChannel, Environment, Severity } from '../../../../shared/kinds.ts'
import { approvalLinks } from '../heal/approval-links.ts'
import { ReportFacts, ReportKind } from '../reports/facts.ts'
import { ackLink } from './ack-links.ts'
import type { AlertView, Endpoint } from './types.ts'

const Tried = z.object({
  strategy: z.string(),
  attempt: z.number().int(),
  outcome: z.string(),
  detail: z.string().nullable().optional(),
})

export const ClaimedRow = z.object({
  id: z.number().int().positive(),
  incident_id: z.number().int().positive().nullable(),
  event: z.enum([
    'page',
    'reminder',
    'acknowledged',
    'resolved',
    'flapping',
    'stable',
    'notice',
    'test',
    'report',
  ]),
  priority: z.enum(['P0', 'P1', 'P2', 'P3', 'info']),
  severity: Severity,
  subject: z.string(),
  body: z.string(),
  dedup_key: z.string().nullable(),
  attempt: z.number().int(),
  created_at: z.string(),
  channel: AlertChannel,
  reason: z.string().nullable().optional(),
  contact: z.object({
    id: z.string().nullable(),
    name: z.string().nullable(),
    role: z.string().nullable().optional(),
    channel: AlertChannel.nullable(),
    address: z.string().nullable(),
    secret_name: z.string().nullable(),
  }),
  service: z.string().nullable(),
  environment: Environment.nullable(),
  incident: z.object({
    title: z.string(),
    opened_at: z.string(),
    resolved_at: z.string().nullable(),
    status: z.string(),
    error: z.string().nullable(),
    affected: z.array(z.string()),
    acknowledged_by: z.string().nullable(),
  }).nullable(),
  tried: z.array(Tried),
  pending_approval: z.object({
    action_id: z.string(),
    strategy: z.string(),
    action: z.string().nullable(),
    expires_at: z.string(),
  }).nullable(),
  ack_link_hours: z.number().int().positive().nullable(),
  /** The report a `report` alert carries (null when it is gone or not ready). */
  report: z.object({
    id: z.number().int().positive(),
    kind: ReportKind,
    period_start: z.string(),
    period_end: z.string(),
    text: z.string(),
    html: z.string(),
    facts: ReportFacts,
  }).nullable().optional(),
})
export type ClaimedRow = z.infer<typeof ClaimedRow>

export interface Links {
  /** The project's URL, for ack links: `<projectUrl>/functions/v1/ack/…`. */
  projectUrl: string
  /** Signs ack links; without one (or shorter than 16) messages carry no ack link. */
  linkSecret?: string
  /** The dashboard's base URL; incidents are `<dashboardUrl>/#/incidents/<id>`. */
  dashboardUrl?: string
  /** The static ack page (dashboard/public/ack.html) where functions cannot serve pages. */
  ackPageUrl?: string
}

/** What to do next, by the last strategy that did not work, or the kind of trouble. */
const NEXT_STEP: Record<string, string> = {
  terminate_blocker:
    'find the session holding the locks (pg_stat_activity, pg_locks); Vigil may not touch it',
  kill_idle_connections: "look for a connection leak in the app, or raise the pool's size",
  cancel_runaway_query: 'find who runs the query and why it does not finish',
  add_missing_index:
    'review the suggested index in vigil.heal_actions and create it in a quiet hour',
  vacuum_analyze: 'look for a long transaction holding back VACUUM, then vacuum by hand',
  restart_service: "check the service's logs and its last deploy",
  purge_cdn: 'check what the origin serves and purge the CDN by hand',
  rollback_deploy: 'roll back by hand to the last good deployment',
  retry_deploy: "read the deploy's build log",
  purge_own_data: 'free disk space or grow the disk',
  renew_certificate: 'renew the certificate by hand',
  refresh_auth: "check the auth provider's keys and settings",
}

function suggestion(row: ClaimedRow): string | null {
  if (
    row.event === 'resolved' || row.event === 'acknowledged' || row.event === 'stable' ||
    row.event === 'report'
  ) {
    return null
  }
  if (row.pending_approval) {
    return `approve or reject the planned ${
      row.pending_approval.action ?? row.pending_approval.strategy
    } (the on-call's own sms or email has the links; or the dashboard)`
  }
  const last = row.tried.at(-1)
  if (last && last.outcome !== 'succeeded' && NEXT_STEP[last.strategy]) {
    return NEXT_STEP[last.strategy]
  }
  if (row.event === 'flapping') return 'look for a resource at its limit or a timeout set too tight'
  if (row.incident) return "open the service's latest check and its logs"
  return null
}

function tried(row: ClaimedRow): string[] {
  return row.tried.map((t) =>
    `${t.strategy} ${
      t.outcome === 'dry_run' ? 'suggested (not done)' : t.outcome
    } (attempt ${t.attempt} of 3)`
  )
}

/** The AlertView and Endpoint for a claimed row; links are signed here. */
export async function viewOf(
  row: ClaimedRow,
  links: Links,
): Promise<{ view: AlertView; to: Endpoint }> {
  const inc = row.incident
  const hours = row.ack_link_hours ?? 24
  const canAck = row.incident_id !== null && inc?.status === 'open' &&
    (row.event === 'page' || row.event === 'reminder' || row.event === 'notice')
  const ack = canAck && links.linkSecret && links.linkSecret.length >= 16
    ? await ackLink(
      links.projectUrl,
      row.id,
      new Date(Date.now() + hours * 3_600_000),
      links.linkSecret,
      links.ackPageUrl,
    )
    : undefined
  // An approval link runs a heal: only a person's own sms or email carries one, never a channel
  // the whole team (or a PagerDuty service, or a webhook's receiver) can read.
  const personal = (row.contact.role === 'on_call' || row.contact.role === 'senior') &&
    (row.channel === 'sms' || row.channel === 'email')
  const approval =
    personal && row.pending_approval && row.event !== 'resolved' && links.linkSecret &&
      links.linkSecret.length >= 16
      ? await approvalLinks(
        links.projectUrl,
        row.pending_approval.action_id,
        new Date(row.pending_approval.expires_at),
        links.linkSecret,
        row.id,
      )
      : undefined
  const dashboard = links.dashboardUrl && row.incident_id !== null
    ? `${links.dashboardUrl.replace(/\/+$/, '')}/#/incidents/${row.incident_id}`
    : links.dashboardUrl
  const view: AlertView = {
    id: row.id,
    incidentId: row.incident_id,
    event: row.event === 'test' ? 'notice' : row.event,
    priority: row.priority,
    severity: row.severity,
    environment: row.environment ?? 'prod',
    service: row.service,
    title: inc?.title ?? row.subject.replace(/^(\[[^\]]*\])+\s*/, ''),
    summary: summaryOf(row),
    since: inc ? new Date(inc.opened_at) : null,
    tried: tried(row),
    suggestion: suggestion(row),
    affected: inc?.affected ?? [],
    acknowledgedBy: row.event === 'acknowledged' ? inc?.acknowledged_by ?? null : null,
    reason: row.reason ?? null,
    links: {
      ...(dashboard && { dashboard }),
      ...(ack && { acknowledge: ack }),
      ...(approval && { approve: approval.approved, reject: approval.rejected }),
    },
    dedupKey: row.dedup_key,
    createdAt: new Date(row.created_at),
    ...(row.report && {
      report: {
        id: row.report.id,
        kind: row.report.kind,
        periodStart: row.report.period_start,
        periodEnd: row.report.period_end,
        text: row.report.text,
        html: row.report.html,
        facts: row.report.facts,
      },
    }),
  }
  const to: Endpoint = {
    contactId: row.contact.id ?? '',
    name: row.contact.name ?? '',
    channel: row.contact.channel ?? row.channel,
    address: row.contact.address ?? '',
    secretName: row.contact.secret_name,
  }
  return { view, to }
}

/** For a page, the cause as the check saw it (the ladder's own words are in `tried`); else SQL's sentence. */
function summaryOf(row: ClaimedRow): string {
  const cause = row.incident?.error
  return (row.event === 'page' || row.event === 'reminder') && cause ? cause : row.body
}
