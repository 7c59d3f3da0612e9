// PagerDuty, through the Events API v2: one event per alert, all of an incident's events under one
// dedup_key, so PagerDuty opens one incident, and acknowledges and resolves that same one.
import { clean, isHttpUrl, LINKS, reasonText, tagOf, truncate } from '../format.ts'
import type { AlertView, Priority, SendResult } from '../types.ts'
import { baseUrl, defineNotifier, json, jsonHeaders, type Scope } from './http.ts'

export const PAGERDUTY_API_URL = 'VIGIL_PAGERDUTY_API_URL'

/** P0 and P1 wake someone; P2 is an error, P3 a warning, info is info. */
const SEVERITY: Record<Priority, 'critical' | 'error' | 'warning' | 'info'> = {
  P0: 'critical',
  P1: 'critical',
  P2: 'error',
  P3: 'warning',
  info: 'info',
}

/**
 * `stable` resolves: it closes the incident `flapping` triggered, under the same dedup_key (the
 * outbox gives both the same one), so a service that settled leaves nothing open in PagerDuty.
 */
export function eventAction(alert: AlertView): 'trigger' | 'acknowledge' | 'resolve' {
  if (alert.event === 'acknowledged') return 'acknowledge'
  if (alert.event === 'resolved' || alert.event === 'stable') return 'resolve'
  return 'trigger'
}

/**
 * The links an event carries: a PagerDuty service belongs to a team, so no heal-approval link
 * (approve, reject) goes there even when the alert has one: whoever sees the incident is not
 * whoever was asked.
 */
const PAGERDUTY_LINKS = LINKS.filter(([key]) => key !== 'approve' && key !== 'reject')

/**
 * Whose fault a refusal is: an unknown or malformed routing key is the contact's (its secret holds
 * the key); any other invalid event is the message's.
 */
export function pagerDutyScope(text: string): Scope {
  const doc = json(text)
  const said = [doc?.message, ...(Array.isArray(doc?.errors) ? doc.errors : [])]
    .filter((e) => typeof e === 'string')
    .join(' ')
  return /routing[ _]?key|integration key/i.test(said) ? 'contact' : 'alert'
}

export function dedupKey(alert: AlertView): string {
  return alert.dedupKey ?? `vigil-alert-${alert.id}`
}

/** The event for one alert; acknowledge and resolve need nothing but the key. */
export function pagerDutyEvent(alert: AlertView, routingKey: string): Record<string, unknown> {
  const action = eventAction(alert)
  const event: Record<string, unknown> = {
    routing_key: routingKey,
    event_action: action,
    dedup_key: dedupKey(alert),
    client: 'Vigil',
  }
  if (isHttpUrl(alert.links.dashboard)) event.client_url = alert.links.dashboard
  if (action !== 'trigger') return event
  const summary = clean(alert.summary, 900)
  event.payload = {
    summary: truncate(
      `${tagOf(alert)} ${clean(alert.title, 200)}${summary ? `: ${summary}` : ''}`,
      1024,
    ),
    source: alert.service ?? 'vigil',
    severity: SEVERITY[alert.priority],
    timestamp: alert.createdAt.toISOString(),
    ...(alert.service ? { component: alert.service } : {}),
    group: alert.environment,
    class: alert.event,
    custom_details: {
      priority: alert.priority,
      reason: reasonText(alert) || null,
      since: alert.since?.toISOString() ?? null,
      tried: alert.tried,
      suggestion: alert.suggestion,
      affected: alert.affected,
    },
  }
  const links = PAGERDUTY_LINKS.filter(([key]) => isHttpUrl(alert.links[key]))
    .map(([key, label]) => ({ href: alert.links[key], text: `${label} in Vigil` }))
  if (links.length > 0) event.links = links
  return event
}

export const pagerduty = defineNotifier('pagerduty', false, async (alerts, to, attempt) => {
  const routingKey = attempt.endpointSecret(to, 'the PagerDuty integration (routing) key')
  const url = `${baseUrl(attempt, PAGERDUTY_API_URL, 'https://events.pagerduty.com')}/v2/enqueue`
  // notify sends one alert at a time; were it ever several, each goes, and a retry repeating the
  // first is harmless: PagerDuty folds events with the same dedup_key.
  let result: SendResult = {
    kind: 'permanent',
    error: 'pagerduty: no alerts to send',
    scope: 'alert',
  }
  for (const alert of alerts) {
    const answer = await attempt.exchange('PagerDuty', {
      url,
      headers: jsonHeaders(),
      body: JSON.stringify(pagerDutyEvent(alert, routingKey)),
    })
    result = attempt.judge('PagerDuty', answer, {
      accept: (a) =>
        json(a.text)?.status === 'success'
          ? {
            kind: 'delivered',
            status: a.status,
            providerId: json(a.text).dedup_key ?? dedupKey(alert),
          }
          : undefined,
      explain: (a) => {
        const doc = json(a.text)
        if (!doc?.message) return undefined
        return Array.isArray(doc.errors) ? `${doc.message}: ${doc.errors.join('; ')}` : doc.message
      },
      scope: (a) => pagerDutyScope(a.text),
    })
    if (result.kind !== 'delivered') return result
  }
  return result
})
