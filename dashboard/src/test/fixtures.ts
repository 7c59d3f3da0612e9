import type { FlaggedSeries, HealLogEntry, Incident, Service, Snapshot } from '../types'

export const NOW = Date.parse('2026-12-02T12:00:00Z')

export function service(over: Partial<Service> = {}): Service {
  return {
    id: 's-db',
    name: 'db-main',
    kind: 'postgres',
    environment: 'prod',
    description: null,
    status: 'healthy',
    status_changed_at: '2026-12-02T10:00:00Z',
    enabled: true,
    heal_enabled: true,
    depends_on: [],
    folded_under: null,
    latency_ms: 12.3,
    last_checked_at: '2026-12-02T11:59:30Z',
    uptime_24h: 99.95,
    uptime_7d: 99.5,
    uptime_30d: 98.25,
    ...over,
  }
}

export function incident(over: Partial<Incident> = {}): Incident {
  return {
    id: 1,
    service_id: 's-db',
    service: 'db-main',
    kind: 'service_unhealthy',
    severity: 'critical',
    status: 'open',
    title: 'db-main is down',
    opened_at: '2026-12-02T11:30:00Z',
    resolved_at: null,
    acknowledged_at: null,
    acknowledged_by_name: null,
    heal_attempts: 0,
    escalation_level: 0,
    folded_into: null,
    ...over,
  }
}

export function heal(over: Partial<HealLogEntry> = {}): HealLogEntry {
  return {
    id: 1,
    at: '2026-12-02T14:32:05Z',
    incident_id: 1,
    service: 'db-main',
    strategy: 'kill_blocking_session',
    outcome: 'succeeded',
    attempt: 1,
    max_attempts: 3,
    detail: 'Terminated blocking session',
    reason: null,
    dry_run: false,
    ...over,
  }
}

/** A series flagged as anomalous, as the snapshot gives it. */
export function flagged(over: Partial<FlaggedSeries> = {}): FlaggedSeries {
  return {
    service_id: 's-db',
    service: 'db-main',
    metric: 'cpu_usage_percent',
    labels: {},
    value: 93,
    score: 0.82,
    baseline: { value: 93, expected: 40, low: 30, high: 50, ratio: 2.325, hourAgo: 41 },
    anomalous_since: '2026-12-02T11:40:00Z',
    forecast: null,
    forecast_at: '2026-12-02T11:55:00Z',
    ...over,
  }
}

/** A vigil.metric_series row as a realtime change carries it: every column, the detector's state too. */
export function seriesRow(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    service_id: 's-web',
    metric: 'memory_usage_percent',
    labels: {},
    detector: { format: 'vigil-anomaly', state: 'x'.repeat(2000) },
    consumed_until: '2026-12-02T11:59:30Z',
    points: 1440,
    value: 71,
    score: 0.1,
    baseline: { value: 71, expected: 70, low: 60, high: 80, ratio: 1.01, hourAgo: 67 },
    anomalous_since: null,
    last_anomalous_at: null,
    forecast: {
      status: 'crosses',
      text: 'memory 71 % rising 4.2 %/h: 100 % in ~7 h (between ~5 h and ~11 h)',
      etaSeconds: 25200,
      etaLowSeconds: 18000,
      etaHighSeconds: 39600,
      current: 71,
      limit: 100,
      fit: { method: 'theil-sen', points: 120 },
    },
    forecast_at: '2026-12-02T11:55:00Z',
    updated_at: '2026-12-02T11:59:31Z',
    ...over,
  }
}

export function snapshot(over: Partial<Snapshot> = {}): Snapshot {
  return {
    generated_at: '2026-12-02T12:00:00Z',
    operator: true,
    settings: [
      { environment: 'prod', kill_switch: false, dry_run: false, slow_query_ms: 500, updated_at: '2026-12-01T00:00:00Z' },
      { environment: 'qa', kill_switch: false, dry_run: true, slow_query_ms: 500, updated_at: '2026-12-01T00:00:00Z' },
      { environment: 'dev', kill_switch: false, dry_run: false, slow_query_ms: 500, updated_at: '2026-12-01T00:00:00Z' },
    ],
    score: { score: 97.5, band: 'green', services: 2 },
    services: [service(), service({ id: 's-web', name: 'web', kind: 'http', status: 'degraded', latency_ms: 340, depends_on: ['db-main'] })],
    incidents: [incident()],
    approvals: [],
    heal_log: [heal()],
    recommendations: [],
    control_changes: [],
    cycle: { finished_at: '2026-12-02T11:59:30Z', duration_ms: 812, services: 2, healthy: 1, degraded: 1, down: 0 },
    maintenance_runs: [],
    daily_report: null,
    analysis: [],
    ...over,
  }
}
