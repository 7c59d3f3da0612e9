// The facts of a report as vigil.report_facts returns them (migration 20261202002800, on top of
// vigil.report_kpis): parsed, never trusted, so a renderer sees only what it expects and a row
// that changed shape fails with the field named instead of rendering "undefined".
import { z } from 'zod'

const num = z.number().nullable()
const when = z.string()

export const ReportKind = z.enum(['daily', 'weekly'])
export type ReportKind = z.infer<typeof ReportKind>

/** A slow-query report's statements as the maker reads them from the run's findings. */
export const SlowQueries = z.object({
  at: when,
  summary: z.string(),
  statements: z.array(z.object({
    rank: z.number(),
    query: z.string(),
    mean_ms: z.number(),
    calls: z.number(),
    findings: z.array(z.object({ kind: z.string(), text: z.string(), fix: z.string() })),
    note: z.string().optional(),
  })),
  /** The N+1 patterns open when it ran: a fast statement called many times per call of another. */
  n_plus_one: z.array(z.object({ title: z.string(), suggestion: z.string().nullable() })).default(
    [],
  ),
})
export type SlowQueries = z.infer<typeof SlowQueries>

export const ReportFacts = z.object({
  kind: ReportKind,
  period: z.object({
    from: when,
    to: when,
    time_zone: z.string(),
    start_date: z.string(),
    end_date: z.string(),
  }),
  settings: z.object({
    sla_pct: z.number(),
    minutes_per_manual_fix: z.number(),
    engineer_cost_per_hour: z.number(),
    currency: z.string(),
  }),
  kpis: z.object({
    uptime: z.object({
      services: z.array(z.object({ service: z.string(), pct: z.number(), met: z.boolean() })),
      lowest_pct: num,
      services_below_sla: z.number(),
    }),
    incidents: z.object({
      detected: z.number(),
      resolved: z.number(),
      fixed_by_vigil: z.number(),
      open_now: z.number(),
      by_kind: z.record(z.string(), z.number()),
    }),
    heals: z.record(z.string(), z.number()),
    kpis: z.object({
      auto_heal_success_pct: num,
      false_positive_pct: num,
      mttd_seconds: num,
      mttr_seconds: num,
      manual_intervention_pct: num,
      maintenance_actions: z.number(),
      engineer_minutes_saved: z.number(),
      cost_per_incident: num,
    }),
    assumptions: z.record(z.string(), z.string()),
    performance: z.object({
      api_p95_ms: num,
      api_p95_ms_before: num,
      db_query_p95_ms: num,
      db_query_p95_ms_before: num,
      error_rate_pct: num,
      error_rate_pct_before: num,
    }),
    recommendations_open: z.number(),
    maintenance: z.object({
      runs: z.number(),
      failed: z.array(z.object({ task: z.string(), summary: z.string().nullable() })),
    }),
    action_items: z.array(z.string()),
  }),
  incidents: z.array(z.object({
    id: z.number(),
    service: z.string(),
    kind: z.string(),
    severity: z.enum(['info', 'warning', 'critical']),
    status: z.enum(['open', 'resolved']),
    title: z.string(),
    opened_at: when,
    resolved_at: when.nullable(),
    seconds: z.number(),
    healed: z.boolean(),
    needed_a_person: z.boolean(),
  })),
  heals: z.array(z.object({
    strategy: z.string(),
    succeeded: z.number(),
    failed: z.number(),
    undone: z.number(),
    other: z.number(),
  })),
  recommendations: z.array(z.object({
    kind: z.string(),
    title: z.string(),
    service: z.string().nullable(),
    since: when,
  })),
  forecasts: z.array(z.object({ service: z.string(), title: z.string(), since: when })),
  analyses: z.array(z.object({
    task: z.string(),
    status: z.string(),
    summary: z.string().nullable(),
    finished_at: when,
  })),
  maintenance_actions: z.array(z.object({
    task: z.string(),
    runs: z.number(),
    actions: z.number(),
  })),
  schedules: z.array(z.object({ job: z.string(), schedule: z.string(), active: z.boolean() })),
  generated_at: when,
  /**
   * The period's slow-query report (the latest slow_query_report run that ended in it), added by
   * the maker from vigil.maintenance_runs; null when none ran.
   */
  slow_queries: SlowQueries.nullable().default(null),
  /** The period's summarised deployments (vigil.deployments), added by the maker. */
  deployments: z.array(z.object({
    service: z.string(),
    deployment_id: z.string(),
    verdict: z.string(),
    summary: z.string(),
  })).default([]),
  /**
   * The error analyses of the period's incidents (detail.error_analysis, written by the heal engine
   * when errors nobody could heal paged people), added by the maker.
   */
  error_analyses: z.array(z.object({
    service: z.string(),
    opened_at: when,
    text: z.string(),
  })).default([]),
})
export type ReportFacts = z.infer<typeof ReportFacts>
