// A day's report facts as vigil.report_facts returns them, with known numbers: two services (api
// below the SLA), three incidents, heals, a forecast, a hostile service name to escape.
import type { ReportFacts } from '../../supabase/functions/_shared/reports/facts.ts'

export function facts(overrides: Partial<ReportFacts> = {}): ReportFacts {
  return {
    kind: 'daily',
    period: {
      from: '2026-03-10T23:00:00+00:00',
      to: '2026-03-11T23:00:00+00:00',
      time_zone: 'Europe/Berlin',
      start_date: '2026-03-11',
      end_date: '2026-03-12',
    },
    settings: {
      sla_pct: 99.9,
      minutes_per_manual_fix: 30,
      engineer_cost_per_hour: 100,
      currency: 'EUR',
    },
    kpis: {
      uptime: {
        services: [
          { service: 'api', pct: 99.52, met: false },
          { service: 'db', pct: 100, met: true },
        ],
        lowest_pct: 99.52,
        services_below_sla: 1,
      },
      incidents: {
        detected: 3,
        resolved: 3,
        fixed_by_vigil: 2,
        open_now: 0,
        by_kind: { service_unhealthy: 2, lock_contention: 1 },
      },
      heals: { succeeded: 3, failed: 1 },
      kpis: {
        auto_heal_success_pct: 75,
        false_positive_pct: 33.3,
        mttd_seconds: 45,
        mttr_seconds: 200,
        manual_intervention_pct: 33.3,
        maintenance_actions: 2,
        engineer_minutes_saved: 60,
        cost_per_incident: 16.67,
      },
      assumptions: {
        false_positive: 'an incident that ended within 2 minutes with no heal',
        manual_intervention: 'an incident that reached the on-call rung',
        mttd: 'from the first failing check of the streak to the incident opening',
        engineer_minutes_saved: '30 minutes for each incident Vigil healed',
        cost_per_incident:
          '30 minutes of an engineer at 100 an hour for each incident a person handled',
      },
      performance: {
        api_p95_ms: 182,
        api_p95_ms_before: 120,
        db_query_p95_ms: 12,
        db_query_p95_ms_before: 14,
        error_rate_pct: 0.2,
        error_rate_pct_before: 0.19,
      },
      recommendations_open: 1,
      maintenance: { runs: 2, failed: [] },
      action_items: ['Below the 99.9 % SLA: api at 99.52 %'],
    },
    incidents: [
      {
        id: 1,
        service: 'api',
        kind: 'service_unhealthy',
        severity: 'critical',
        status: 'resolved',
        title: 'api is down',
        opened_at: '2026-03-11T02:00:00Z',
        resolved_at: '2026-03-11T02:05:00Z',
        seconds: 300,
        healed: true,
        needed_a_person: false,
      },
      {
        id: 2,
        service: '<img src=x onerror=alert(1)> <!channel>',
        kind: 'lock_contention',
        severity: 'warning',
        status: 'resolved',
        title: 'locks @everyone',
        opened_at: '2026-03-11T04:00:00Z',
        resolved_at: '2026-03-11T04:01:00Z',
        seconds: 60,
        healed: false,
        needed_a_person: true,
      },
    ],
    heals: [
      { strategy: 'restart_service', succeeded: 2, failed: 1, undone: 0, other: 0 },
      { strategy: 'terminate_blocker', succeeded: 1, failed: 0, undone: 0, other: 0 },
    ],
    recommendations: [{
      kind: 'missing_index',
      title: 'Add an index on orders (customer_id)',
      service: 'db',
      since: '2026-03-10T10:00:00Z',
    }],
    forecasts: [{
      service: 'db',
      title: 'db: disk full in about 6 days',
      since: '2026-03-09T10:00:00Z',
    }],
    analyses: [],
    maintenance_actions: [{ task: 'vacuum_analyze', runs: 1, actions: 3 }],
    schedules: [
      { job: 'vigil-maintenance-daily', schedule: '23 3 * * *', active: true },
      { job: 'vigil-maintenance-weekly', schedule: '43 3 * * 0', active: true },
    ],
    generated_at: '2026-03-12T08:00:00Z',
    slow_queries: null,
    deployments: [],
    error_analyses: [],
    ...overrides,
  }
}
