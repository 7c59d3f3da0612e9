// Vigil's state in Prometheus' text exposition format (version 0.0.4), from one read of
// vigil.prometheus_snapshot(): what Grafana users scrape as they scrape any exporter. No I/O here.
//   vigil_service_up / vigil_service_status / vigil_service_uptime_ratio   per service
//   vigil_probe_duration_seconds (histogram) / vigil_probe_last_duration_seconds
//   vigil_incidents_open{severity}  vigil_heals_total{strategy,outcome}  vigil_alerts{channel,status}
//   vigil_cycle_duration_seconds  vigil_cycle_last_timestamp_seconds  vigil_cycle_services
import { z } from 'zod'
import { SERVICE_STATUSES, SEVERITIES } from '../../../../shared/kinds.ts'

/** The histogram's upper bounds in ms, as vigil.probe_latency keeps them (le_25 … le_10000). */
export const LATENCY_BOUNDS_MS = [25, 50, 100, 250, 500, 1000, 2500, 5000, 10000] as const

const num = z.union([z.number(), z.string()]).transform(Number)

export const Snapshot = z.object({
  services: z.array(z.object({
    name: z.string(),
    kind: z.string(),
    environment: z.string(),
    status: z.string(),
    enabled: z.boolean(),
    uptime_24h: num.nullable(),
    last_response_ms: num.nullable(),
    latency: z.object({
      buckets: z.array(num).length(LATENCY_BOUNDS_MS.length),
      count: num,
      sum_ms: num,
    }).nullable(),
  })),
  incidents_open: z.record(z.string(), num),
  heals: z.array(z.object({ strategy: z.string(), outcome: z.string(), n: num })),
  alerts: z.array(z.object({ channel: z.string(), status: z.string(), n: num })),
  cycle: z.object({ finished_at: num, duration_ms: num, services: num }).nullable(),
})
export type Snapshot = z.infer<typeof Snapshot>

/** A label value as the format wants it: backslash, double quote and newline escaped. */
export function labelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function labels(pairs: Record<string, string>): string {
  const inner = Object.entries(pairs).map(([k, v]) => `${k}="${labelValue(v)}"`).join(',')
  return inner ? `{${inner}}` : ''
}

function value(n: number): string {
  if (Number.isNaN(n)) return 'NaN'
  if (n === Infinity) return '+Inf'
  if (n === -Infinity) return '-Inf'
  return String(n)
}

class Writer {
  readonly lines: string[] = []
  family(name: string, type: 'gauge' | 'counter' | 'histogram', help: string) {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
  }
  sample(name: string, pairs: Record<string, string>, n: number) {
    this.lines.push(`${name}${labels(pairs)} ${value(n)}`)
  }
}

/** The exposition text of a snapshot; `scrapeMs` is how long reading it took. */
export function exposition(snapshot: Snapshot, scrapeMs: number): string {
  const w = new Writer()
  const watched = snapshot.services.filter((s) => s.enabled)
  const id = (s: Snapshot['services'][number]) => ({
    service: s.name,
    kind: s.kind,
    environment: s.environment,
  })

  w.family(
    'vigil_service_up',
    'gauge',
    'Whether the service is up (1: healthy or degraded) or down or not yet checked (0).',
  )
  for (const s of watched) {
    w.sample('vigil_service_up', id(s), s.status === 'healthy' || s.status === 'degraded' ? 1 : 0)
  }
  w.family(
    'vigil_service_status',
    'gauge',
    "The service's status: 1 on the series of its current status.",
  )
  for (const s of watched) {
    for (const status of SERVICE_STATUSES) {
      w.sample('vigil_service_status', { ...id(s), status }, s.status === status ? 1 : 0)
    }
  }
  w.family(
    'vigil_service_uptime_ratio',
    'gauge',
    'Share of checks not down over the window (hourly rollups).',
  )
  for (const s of watched) {
    if (s.uptime_24h !== null) {
      w.sample('vigil_service_uptime_ratio', { ...id(s), window: '24h' }, s.uptime_24h / 100)
    }
  }
  w.family(
    'vigil_probe_last_duration_seconds',
    'gauge',
    "How long the service's latest check took.",
  )
  for (const s of watched) {
    if (s.last_response_ms !== null) {
      w.sample('vigil_probe_last_duration_seconds', id(s), s.last_response_ms / 1000)
    }
  }
  w.family(
    'vigil_probe_duration_seconds',
    'histogram',
    "How long the service's checks took, since Vigil first checked it.",
  )
  for (const s of watched) {
    if (!s.latency) continue
    LATENCY_BOUNDS_MS.forEach((bound, i) => {
      w.sample(
        'vigil_probe_duration_seconds_bucket',
        { ...id(s), le: String(bound / 1000) },
        s.latency!.buckets[i],
      )
    })
    w.sample('vigil_probe_duration_seconds_bucket', { ...id(s), le: '+Inf' }, s.latency.count)
    w.sample('vigil_probe_duration_seconds_sum', id(s), s.latency.sum_ms / 1000)
    w.sample('vigil_probe_duration_seconds_count', id(s), s.latency.count)
  }

  w.family('vigil_incidents_open', 'gauge', 'Incidents open now, by severity.')
  for (const severity of SEVERITIES) {
    w.sample('vigil_incidents_open', { severity }, snapshot.incidents_open[severity] ?? 0)
  }
  w.family('vigil_heals_total', 'counter', 'Heals that ran to a result, by strategy and outcome.')
  for (const h of snapshot.heals) {
    w.sample('vigil_heals_total', { strategy: h.strategy, outcome: h.outcome }, h.n)
  }
  w.family('vigil_alerts', 'gauge', 'Alerts kept in the outbox, by channel and delivery status.')
  for (const a of snapshot.alerts) {
    w.sample('vigil_alerts', { channel: a.channel, status: a.status }, a.n)
  }
  if (snapshot.cycle) {
    w.family(
      'vigil_cycle_duration_seconds',
      'gauge',
      'How long the latest health-check cycle took.',
    )
    w.sample('vigil_cycle_duration_seconds', {}, snapshot.cycle.duration_ms / 1000)
    w.family(
      'vigil_cycle_last_timestamp_seconds',
      'gauge',
      'When the latest health-check cycle finished (Unix time).',
    )
    w.sample('vigil_cycle_last_timestamp_seconds', {}, snapshot.cycle.finished_at)
    w.family('vigil_cycle_services', 'gauge', 'Services the latest health-check cycle probed.')
    w.sample('vigil_cycle_services', {}, snapshot.cycle.services)
  }
  w.family('vigil_scrape_duration_seconds', 'gauge', 'How long reading this snapshot took.')
  w.sample('vigil_scrape_duration_seconds', {}, scrapeMs / 1000)
  return `${w.lines.join('\n')}\n`
}
