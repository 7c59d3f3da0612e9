import type { HealLogEntry, Incident, Service, Snapshot } from '../types'

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
    ...over,
  }
}
