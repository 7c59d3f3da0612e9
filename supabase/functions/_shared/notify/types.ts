// The contract between the notify function and its channels. notify claims due rows of
// vigil.alerts, turns each into an AlertView (the facts a human needs, already gathered), groups
// the ones bound for the same contact, and hands them to the contact's channel. A channel formats
// and sends; it never touches the database and never throws: every outcome is a SendResult.
import type { AlertChannel } from '../../../../shared/kinds.ts'
import type { ReportFacts, ReportKind } from '../reports/facts.ts'

export type Priority = 'P0' | 'P1' | 'P2' | 'P3' | 'info'

/** Why the alert exists: a page, a reminder of one, or a notice that closes or updates it. */
export type AlertEvent =
  | 'page' //         an escalation paged this contact (ladder level 3 or 4)
  | 'reminder' //     the incident is still open and nobody acknowledged it
  | 'acknowledged' // someone took it (PagerDuty gets `acknowledge`)
  | 'resolved' //     it is over (PagerDuty gets `resolve`)
  | 'flapping' //     the service keeps changing state; further alerts are held back
  | 'stable' //       a flapping service settled
  | 'notice' //       anything else worth knowing (a heal that worked and should be known)
  | 'report' //       the daily or weekly report (never grouped with other alerts)

/** The report an alert carries: what was stored, and the facts the chat forms are made from. */
export interface ReportView {
  id: number
  kind: ReportKind
  periodStart: string
  periodEnd: string
  text: string
  html: string
  facts: ReportFacts
}

/** One alert, with everything a message needs. Built by notify; channels only format it. */
export interface AlertView {
  id: number
  incidentId: number | null
  event: AlertEvent
  priority: Priority
  severity: 'info' | 'warning' | 'critical'
  environment: 'dev' | 'qa' | 'prod'
  /** The service's name, when the alert is about one. */
  service: string | null
  /** What is wrong, short: "api is down". */
  title: string
  /** One or two sentences: the cause as far as known ("connection refused on GET /health"). */
  summary: string
  /** When the problem started (the incident's opened_at). */
  since: Date | null
  /** What the agent already did, newest last: "restart_service failed (attempt 2 of 3)". */
  tried: string[]
  /** What a human should do next, if Vigil has an idea. */
  suggestion: string | null
  /** Why this alert now, in the ladder's words ("not acknowledged within 15 min", "attempt 3 of 3 failed"). */
  reason?: string | null
  /** Who took the incident, for an `acknowledged` notice. */
  acknowledgedBy?: string | null
  /** Dependent services folded into this incident ("auth, storage"). */
  affected: string[]
  /** approve/reject: signed heal-approval links, when a planned heal waits for a human. */
  links: { dashboard?: string; acknowledge?: string; approve?: string; reject?: string }
  /** PagerDuty's dedup_key: one stable key per incident ("vigil-incident-42"). */
  dedupKey: string | null
  createdAt: Date
  /** For a `report` alert, the report itself. */
  report?: ReportView
}

/** A row of vigil.contacts: who, and how to reach them on one channel. */
export interface Endpoint {
  contactId: string
  name: string
  channel: AlertChannel
  /** Phone number (E.164) for sms, email address for email, URL for webhook, a label otherwise. */
  address: string
  /**
   * The environment variable holding this endpoint's credential: the incoming-webhook URL for
   * slack and discord, the routing key for pagerduty, the HMAC signing key for webhook. Null for
   * sms and email (their credentials are the project's VIGIL_TWILIO_* and VIGIL_SENDGRID_*).
   */
  secretName: string | null
}

export type SendResult =
  /** The provider accepted it. providerId: Twilio's sid, SendGrid's x-message-id, PagerDuty's dedup_key. */
  | { kind: 'delivered'; status?: number; providerId?: string }
  /** Try again later (5xx, 408, 425, 429, network error, timeout, redirect, garbage). */
  | { kind: 'retryable'; status?: number; error: string; retryAfterMs?: number }
  /**
   * Trying again cannot help. `scope` says whose fault it is, which decides what follows:
   * - `contact`: this contact's address or credential (an invalid number, a revoked Slack webhook,
   *   a wrong routing key, the secret it names unset): the contact is marked failing;
   * - `provider`: the project's setup for the channel (Twilio or SendGrid credentials refused, a
   *   VIGIL_* secret unset): nobody's contact is blamed, operators are told;
   * - `alert` (the default): this message (content refused, too large): only this alert gives up.
   * In every case the person's next channel is tried.
   */
  | { kind: 'permanent'; status?: number; error: string; scope?: 'contact' | 'provider' | 'alert' }

export interface NotifyEnv {
  /** An environment variable (edge-function secret), undefined when unset or empty. */
  secret(name: string): string | undefined
  fetch: typeof fetch
  /** Per request; a provider that has not answered by then is a retryable failure. */
  timeoutMs: number
}

export interface Notifier {
  channel: AlertChannel
  /** Several alerts for one contact may go out as one message (false for PagerDuty: one event each). */
  groups: boolean
  /** Formats and sends. Never throws, never puts a secret in the result. */
  send(alerts: AlertView[], to: Endpoint, env: NotifyEnv): Promise<SendResult>
}
