// Alerts and endpoints for the channel and format tests: one typical P1 page, and makers for the
// rest. Times are fixed, so formatted times and durations are known.
import type { AlertChannel } from '../../shared/kinds.ts'
import type {
  AlertView,
  Endpoint,
  NotifyEnv,
} from '../../supabase/functions/_shared/notify/types.ts'

export const ACK_LINK =
  'https://abcdefghijklmnopqrst.supabase.co/functions/v1/ack/7.1767240000.3f6c2b9a1e0d4c8b'
export const DASHBOARD_LINK = 'https://vigil.example.org/#/incidents/42'

/** The P1 page of the examples: api down since 03:12 UTC, two restarts failed. */
export function page(overrides: Partial<AlertView> = {}): AlertView {
  return {
    id: 7,
    incidentId: 42,
    event: 'page',
    priority: 'P1',
    severity: 'critical',
    environment: 'prod',
    service: 'api',
    title: 'api is down',
    summary: 'connection refused on GET https://api.example.org/health',
    since: new Date('2026-01-01T03:12:00Z'),
    tried: ['restart_service failed (attempt 1 of 3)', 'restart_service failed (attempt 2 of 3)'],
    suggestion: "check the service's logs and its last deploy",
    affected: ['auth', 'storage'],
    links: { acknowledge: ACK_LINK, dashboard: DASHBOARD_LINK },
    dedupKey: 'vigil-incident-42',
    createdAt: new Date('2026-01-01T03:20:00Z'),
    ...overrides,
  }
}

/** `n` distinct alerts, the last one newest, each `minutes` apart. */
export function many(n: number, make: (i: number) => Partial<AlertView> = () => ({})): AlertView[] {
  return Array.from({ length: n }, (_, i) =>
    page({
      id: 100 + i,
      incidentId: 200 + i,
      service: `svc-${i}`,
      title: `svc-${i} is down`,
      dedupKey: `vigil-incident-${200 + i}`,
      createdAt: new Date(Date.UTC(2026, 0, 1, 3, 20 + i)),
      ...make(i),
    }))
}

export function endpoint(
  channel: AlertChannel,
  address: string,
  secretName: string | null = null,
): Endpoint {
  return {
    contactId: '00000000-0000-4000-8000-000000000001',
    name: 'Ana',
    channel,
    address,
    secretName,
  }
}

/** A NotifyEnv over a fixed set of variables (empty counts as unset, as in the contract). */
export function notifyEnv(vars: Record<string, string | undefined>, timeoutMs = 5_000): NotifyEnv {
  return {
    secret: (name) => vars[name] || undefined,
    fetch: globalThis.fetch,
    timeoutMs,
  }
}
