// The one interface every probe kind implements. A probe measures one service and says how it is;
// it never writes: the health-check function records every result of a cycle in one batch.
import type postgres from 'postgres'
import type { z } from 'zod'
import type { CheckStatus, MetricName, ServiceKind } from '../../../../shared/kinds.ts'
import type { Thresholds } from '../../../../shared/thresholds.ts'
import type { ReadBudget } from '../health/read-budget.ts'
import type { Finding } from '../../../../shared/findings.ts'

export interface ProbeService {
  id: string
  name: string
  kind: ServiceKind
  environment: 'dev' | 'qa' | 'prod'
}

export interface ProbeContext {
  service: ProbeService
  /** The service environment's thresholds (vigil.settings), already validated. */
  thresholds: Thresholds
  /** Aborted when the probe's timeout passes: pass it to fetch, sockets and queries. */
  signal: AbortSignal
  /** A secret (edge-function env var) by name; undefined when unset. Never log the value. */
  secret(name: string): string | undefined
  /** The project's own base URL (SUPABASE_URL). */
  projectUrl: string
  /** Vigil's own database connection (the project's database). */
  db: postgres.Sql
  /** This service's measurements from its previous check, for rates between two scrapes. */
  previous?: Record<string, unknown>
  /** The fetch to use (tests and the benchmark pass none: the global one). */
  fetch: typeof fetch
  /** The cycle's budget of response-body bytes, shared by its probes; none: unbounded. */
  readBudget?: ReadBudget
}

export interface Metric {
  name: MetricName
  value: number
  labels?: Record<string, string>
}

export interface ProbeResult {
  status: CheckStatus
  /** How long the essential request took; the runner measures the whole probe when absent. */
  responseMs?: number
  /** Everything measured, JSON-serialisable, snake_case keys. No secrets. */
  measurements: Record<string, unknown>
  /** What it found wrong, typed (shared/findings.ts): what diagnosis reads. */
  findings?: Finding[]
  metrics?: Metric[]
  /** Why the status is not healthy, for a human; required when down. No secrets. */
  error?: string
}

export interface Probe<Config> {
  kind: ServiceKind
  config: z.ZodType<Config>
  run(config: Config, ctx: ProbeContext): Promise<ProbeResult>
}

const ORDER: Record<CheckStatus, number> = { healthy: 0, degraded: 1, down: 2 }

/** How bad a status is: healthy 0, degraded 1, down 2; undefined for anything else. */
export function rank(status: unknown): number | undefined {
  return ORDER[status as CheckStatus]
}

/** The worse of some statuses (healthy when none). */
export function worst(...statuses: CheckStatus[]): CheckStatus {
  return statuses.reduce<CheckStatus>((a, b) => (ORDER[b] > ORDER[a] ? b : a), 'healthy')
}

/** healthy below warning, degraded from warning up to critical, down above critical. */
export function againstBand(value: number, warning: number, critical: number): CheckStatus {
  if (value > critical) return 'down'
  if (value >= warning) return 'degraded'
  return 'healthy'
}

/** Like againstBand for measures where lower is worse (cache hit ratio, days to expiry). */
export function againstFloor(value: number, warning: number, critical: number): CheckStatus {
  if (value < critical) return 'down'
  if (value <= warning) return 'degraded'
  return 'healthy'
}

/** Every string in a JSON-like value, redacted. */
export function redactDeep(value: unknown, secrets: (string | undefined)[]): unknown {
  if (typeof value === 'string') return redact(value, secrets)
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, secrets))
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, secrets)]))
  }
  return value
}

/** Removes every known secret value from a text before it is stored or logged. */
export function redact(text: string, secrets: (string | undefined)[]): string {
  let out = text
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[redacted]')
  return out
}

/** A connection string and its password (as written and decoded): what a driver error may repeat. */
export function connectionSecrets(url: string | undefined): string[] {
  if (!url) return []
  try {
    const { password } = new URL(url)
    return password ? [url, password, decodeURIComponent(password)] : [url]
  } catch {
    return [url]
  }
}
