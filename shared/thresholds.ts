// Alerting thresholds: the spec's defaults, per environment, with overrides. The same rules are
// CHECK constraints on vigil.settings; tests/schema/thresholds_test.ts proves defaults and rules agree.
import { z } from 'zod'

/** A pair of levels: below `warning` is good, from `warning` to `critical` warns, above is critical. */
export interface Band {
  warning: number
  critical: number
}

/** The spec's defaults. Column defaults of vigil.settings carry the same numbers. */
export const DEFAULT_THRESHOLDS = {
  api_p95_warning_ms: 200,
  api_p95_critical_ms: 500,
  db_query_warning_ms: 100,
  db_query_critical_ms: 500,
  error_rate_warning_pct: 0.1,
  error_rate_critical_pct: 1,
  memory_warning_pct: 60,
  memory_critical_pct: 85,
  cpu_warning_pct: 70,
  cpu_critical_pct: 90,
  deploy_warning_minutes: 5,
  deploy_critical_minutes: 15,
  slow_query_ms: 1000,
} as const

export type ThresholdName = keyof typeof DEFAULT_THRESHOLDS

/** Warning/critical pairs, each of which must rise strictly. */
export const BANDS = {
  api_p95: ['api_p95_warning_ms', 'api_p95_critical_ms'],
  db_query: ['db_query_warning_ms', 'db_query_critical_ms'],
  error_rate: ['error_rate_warning_pct', 'error_rate_critical_pct'],
  memory: ['memory_warning_pct', 'memory_critical_pct'],
  cpu: ['cpu_warning_pct', 'cpu_critical_pct'],
  deploy: ['deploy_warning_minutes', 'deploy_critical_minutes'],
} as const satisfies Record<string, readonly [ThresholdName, ThresholdName]>

const ms = z.number().int().positive()
const pct = z.number().positive().max(100)
const minutes = z.number().int().positive()

const fields = {
  api_p95_warning_ms: ms,
  api_p95_critical_ms: ms,
  db_query_warning_ms: ms,
  db_query_critical_ms: ms,
  error_rate_warning_pct: pct,
  error_rate_critical_pct: pct,
  memory_warning_pct: pct,
  memory_critical_pct: pct,
  cpu_warning_pct: pct,
  cpu_critical_pct: pct,
  deploy_warning_minutes: minutes,
  deploy_critical_minutes: minutes,
  slow_query_ms: ms,
} satisfies Record<ThresholdName, z.ZodType<number>>

function bandsRise(t: Partial<Record<ThresholdName, number>>, ctx: z.RefinementCtx) {
  for (const [band, [warning, critical]] of Object.entries(BANDS)) {
    const w = t[warning]
    const c = t[critical]
    if (w !== undefined && c !== undefined && !(w < c)) {
      ctx.addIssue({
        code: 'custom',
        path: [critical],
        message: `${band}: critical (${c}) must be above warning (${w})`,
      })
    }
  }
}

/** A complete set of thresholds, as one vigil.settings row holds. */
export const Thresholds = z.strictObject(fields).superRefine(bandsRise)
export type Thresholds = z.infer<typeof Thresholds>

/** Overrides for one environment: any subset; unknown names are errors, not silently ignored. */
export const ThresholdOverrides = z.strictObject(fields).partial()
export type ThresholdOverrides = z.infer<typeof ThresholdOverrides>

/** Defaults with an environment's overrides applied, checked as a whole. */
export function resolveThresholds(overrides: unknown = {}): Thresholds {
  return Thresholds.parse({ ...DEFAULT_THRESHOLDS, ...ThresholdOverrides.parse(overrides) })
}

/** Which level a measured value falls in for a band. */
export function classify(value: number, band: Band): 'good' | 'warning' | 'critical' {
  if (value > band.critical) return 'critical'
  if (value >= band.warning) return 'warning'
  return 'good'
}

/** Every issue of a zod error as 'field: message' lines, all at once. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')
}
