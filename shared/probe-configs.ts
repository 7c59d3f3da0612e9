// The configuration of each probe kind: what a row of vigil.services may hold in `config`.
// One zod schema per kind, exhaustive over SERVICE_KINDS. The same schemas, as JSON Schema, are in
// vigil.probe_config_schemas so SQL refuses a bad config at insert; tests/schema/probe_configs_test.ts
// proves the two agree. Secrets never live in config: a config names the environment variable
// (an edge-function secret) that holds one.
import { z } from 'zod'
import type { ServiceKind } from './kinds.ts'

/**
 * A secret a row may name: an environment variable meant for outbound use, which is any secret
 * the deployer set (`supabase secrets set`; Supabase refuses names starting with SUPABASE_) and
 * the project's API keys. Never the platform's other SUPABASE_* variables (the database's URL
 * among them) nor Vigil's own connection and signing secrets. The project's secret keys go only
 * to the project itself (PROJECT_KEYS).
 */
export const SecretName = z.string().regex(
  /^(?!(SUPABASE_(?!(ANON_KEY|PUBLISHABLE_KEYS|SERVICE_ROLE_KEY|SECRET_KEYS)$)|VIGIL_(TWILIO|SENDGRID)_|(VIGIL_DB_URL|VIGIL_APPROVAL_SECRET|VIGIL_AUDIT_SECRET|VIGIL_DEADMAN_URL)$))[A-Z][A-Z0-9_]{0,127}$/,
  "must name an environment variable (A-Z, 0-9, _) meant for outbound use: a secret you set or the project's API keys, not the database URL, another SUPABASE_ variable nor Vigil's own secrets (its connection, signing keys, SMS and email credentials)",
)

/** Secrets no probe or heal action receives, wherever it runs. */
export const WITHHELD_FROM_PROBES = new Set([
  'SUPABASE_DB_URL',
  'VIGIL_DB_URL',
  'VIGIL_APPROVAL_SECRET',
  'VIGIL_AUDIT_SECRET',
  'VIGIL_METRICS_TOKEN',
])

/** The project's secret API keys: sent only to the project's own URL, never to another host. */
export const PROJECT_KEYS = new Set(['SUPABASE_SERVICE_ROLE_KEY', 'SUPABASE_SECRET_KEYS'])

/**
 * Why `config` may not have the project's secret keys it names, or null when it may: it names one
 * (apikey_secret defaults to one for storage and functions) and talks to another host.
 */
export function projectKeyRefusal(config: unknown, projectUrl: string): string | null {
  const named: string[] = []
  const walk = (v: unknown) => {
    if (typeof v === 'string' && PROJECT_KEYS.has(v)) named.push(v)
    else if (Array.isArray(v)) v.forEach(walk)
    else if (v && typeof v === 'object') Object.values(v).forEach(walk)
  }
  walk(config)
  if (named.length === 0 || talksOnlyToProject(config, projectUrl)) return null
  return `secret ${named[0]} is sent only to the project's own URL, and this service talks to ` +
    'another host: name a secret of your own for it'
}

/**
 * Whether every URL in `config` (any string value that parses as an http(s) or ws(s) URL) is on
 * the project's own origin; a config without URLs talks to the project by default.
 */
export function talksOnlyToProject(config: unknown, projectUrl: string): boolean {
  // Scheme and host: a key sent to http:// travels in the clear even to the right host.
  const origin = (u: string) => {
    const url = new URL(u)
    return `${url.protocol.replace(/^ws(s?):$/, 'http$1:')}//${url.host}`
  }
  let project: string
  try {
    project = origin(projectUrl)
  } catch {
    return false
  }
  const urls: string[] = []
  const walk = (v: unknown) => {
    if (typeof v === 'string' && /^(https?|wss?):\/\//i.test(v)) urls.push(v)
    else if (Array.isArray(v)) v.forEach(walk)
    else if (v && typeof v === 'object') Object.values(v).forEach(walk)
  }
  walk(config)
  return urls.every((u) => {
    try {
      return origin(u) === project
    } catch {
      return false
    }
  })
}

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
const wsOrHttpUrl = z.url({ protocol: /^(https?|wss?)$/, error: 'must be an http(s) or ws(s) URL' })
const statusCode = z.number().int().min(100).max(599)
const ms = (max: number) => z.number().int().min(1).max(max)
const pct = z.number().gt(0).max(100)
const ratio = z.number().gt(0).max(1)
const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name')
/** `$.a.b[0].c`: a JSON path of names and array indexes. */
export const JsonPath = z.string().regex(
  /^\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\])*$/,
  'must be a JSON path like $.data.items[0].status',
)

/** Latency bands that override the environment's api_p95 thresholds for one service. */
const latencyBand = {
  latency_warning_ms: ms(600_000).optional(),
  latency_critical_ms: ms(600_000).optional(),
}

export const HttpConfig = z.strictObject({
  url: httpUrl,
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']).default('GET'),
  headers: z.record(headerName, z.string().max(8192)).default({}),
  /** Header name → secret holding its value (an Authorization header, say). */
  header_secrets: z.record(headerName, SecretName).default({}),
  body: z.string().max(65_536).optional(),
  expected_status: z.array(statusCode).min(1).max(50).default([200]),
  ...latencyBand,
  /** The body must contain this text. */
  body_contains: z.string().min(1).max(1024).optional(),
  /** The JSON body at this path must exist, and equal json_equals when given. */
  json_path: JsonPath.optional(),
  json_equals: z.union([z.string(), z.number(), z.boolean(), z.null()]).optional(),
  /** The version the target should serve (a stale frontend or CDN serves another). */
  expected_version: z.strictObject({
    value: z.string().min(1).max(256),
    /** Read from this response header; otherwise from json_path; otherwise the body must contain it. */
    header: headerName.optional(),
    json_path: JsonPath.optional(),
  }).optional(),
  tls_warning_days: z.number().int().min(1).max(365).default(14),
  tls_critical_days: z.number().int().min(0).max(365).default(3),
  follow_redirects: z.boolean().default(true),
  max_redirects: z.number().int().min(0).max(20).default(5),
  max_body_bytes: z.number().int().min(1024).max(10_485_760).default(1_048_576),
})
export type HttpConfig = z.infer<typeof HttpConfig>

export const PostgresConfig = z.strictObject({
  /** Secret holding a connection string; absent: the project's own database, as vigil_agent (VIGIL_DB_URL). */
  connection_secret: SecretName.optional(),
  connections_warning_pct: pct.default(80),
  connections_critical_pct: pct.default(95),
  /** A session waiting on a lock this long is a blocking chain worth reporting. */
  blocked_warning_seconds: z.number().min(0).max(86_400).default(10),
  blocked_critical_seconds: z.number().min(0).max(86_400).default(60),
  long_running_seconds: z.number().min(1).max(86_400).default(300),
  idle_in_transaction_seconds: z.number().min(1).max(86_400).default(300),
  cache_hit_warning_ratio: ratio.default(0.99),
  cache_hit_critical_ratio: ratio.default(0.95),
  dead_tuple_warning_ratio: ratio.default(0.2),
  /** Tables smaller than this many rows are ignored for the dead-tuple ratio. */
  dead_tuple_min_rows: z.number().int().min(0).default(1000),
  /**
   * Dead tuples are a problem only when autovacuum has not dealt with them: a table over the ratio
   * for this long with no vacuum since, and none running now (seconds; 0 judges at once).
   */
  dead_tuple_grace_seconds: z.number().int().min(0).max(604_800).default(600),
  /**
   * Statistics are stale when a table changed by this many rows (and by stale_stats_ratio of its
   * rows) since it was last analyzed, longer ago than stale_stats_seconds: the planner misjudges.
   */
  stale_stats_min_changes: z.number().int().min(1).default(10_000),
  stale_stats_ratio: ratio.default(0.2),
  stale_stats_seconds: z.number().int().min(0).max(2_592_000).default(3600),
  xid_age_warning: z.number().int().min(1).max(2_147_483_647).default(500_000_000),
  xid_age_critical: z.number().int().min(1).max(2_147_483_647).default(1_200_000_000),
  replication_lag_warning_seconds: z.number().min(0).default(60),
  replication_lag_critical_seconds: z.number().min(0).default(300),
  /** How many of the slowest statements (pg_stat_statements) to report. */
  slow_statements: z.number().int().min(0).max(50).default(5),
  /** A slow statement opens a slow_queries incident only with at least this many calls. */
  slow_min_calls: z.number().int().min(1).default(10),
  /**
   * Statements never called slow, as pg_stat_statements prints them (case and spacing aside):
   * health checks and sleeps an application makes on purpose.
   */
  slow_ignore: z.array(z.string().min(1).max(500)).max(100).default([
    'select $1',
    'select now()',
    'select pg_sleep($1)',
  ]),
})
export type PostgresConfig = z.infer<typeof PostgresConfig>

/** Where a Supabase service lives: the project's own by default (SUPABASE_URL). */
const supabaseTarget = {
  url: httpUrl.optional(),
  /** Secret holding the API key sent as apikey (and Bearer). */
  apikey_secret: SecretName.default('SUPABASE_ANON_KEY'),
  ...latencyBand,
}

export const SupabaseAuthConfig = z.strictObject({
  ...supabaseTarget,
  /** A test user signed in (and its token refreshed) each cycle, giving a login success rate. */
  synthetic_login: z.strictObject({
    email: z.email(),
    password_secret: SecretName,
  }).optional(),
})
export type SupabaseAuthConfig = z.infer<typeof SupabaseAuthConfig>

export const SupabaseStorageConfig = z.strictObject({
  ...supabaseTarget,
  apikey_secret: SecretName.default('SUPABASE_SERVICE_ROLE_KEY'),
  /** A bucket that must exist and be listable. */
  bucket: z.string().min(1).max(100).optional(),
})
export type SupabaseStorageConfig = z.infer<typeof SupabaseStorageConfig>

export const SupabaseRealtimeConfig = z.strictObject({
  url: wsOrHttpUrl.optional(),
  apikey_secret: SecretName.default('SUPABASE_ANON_KEY'),
  topic: z.string().regex(/^[A-Za-z0-9:_-]{1,100}$/).default('vigil-probe'),
  ...latencyBand,
})
export type SupabaseRealtimeConfig = z.infer<typeof SupabaseRealtimeConfig>

export const SupabaseFunctionsConfig = z.strictObject({
  ...supabaseTarget,
  apikey_secret: SecretName.default('SUPABASE_SERVICE_ROLE_KEY'),
  function: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a function name'),
  /** Path after /functions/v1/<function>, e.g. /health. */
  path: z.string().regex(/^(\/[^\s]*)?$/).max(1024).default(''),
  method: z.enum(['GET', 'POST']).default('POST'),
  body: z.string().max(65_536).optional(),
  expected_status: z.array(statusCode).min(1).max(50).default([200]),
})
export type SupabaseFunctionsConfig = z.infer<typeof SupabaseFunctionsConfig>

export const MANAGEMENT_SERVICES = ['auth', 'db', 'pooler', 'realtime', 'rest', 'storage'] as const
export const SupabaseManagementConfig = z.strictObject({
  api_url: httpUrl.default('https://api.supabase.com'),
  project_ref: z.string().regex(/^[a-z0-9]{20}$/, 'must be a 20-character project ref'),
  access_token_secret: SecretName.default('VIGIL_SUPABASE_ACCESS_TOKEN'),
  services: z.array(z.enum(MANAGEMENT_SERVICES)).min(1).default([...MANAGEMENT_SERVICES]),
})
export type SupabaseManagementConfig = z.infer<typeof SupabaseManagementConfig>

export const PrometheusConfig = z.strictObject({
  url: httpUrl,
  /** Supabase's metrics endpoint takes basic auth: service_role and the service role key. */
  basic_auth: z.strictObject({ username: z.string().min(1).max(256), password_secret: SecretName })
    .optional(),
  bearer_secret: SecretName.optional(),
  /** Override the environment's cpu/memory thresholds; disk has its own. */
  cpu_warning_pct: pct.optional(),
  cpu_critical_pct: pct.optional(),
  memory_warning_pct: pct.optional(),
  memory_critical_pct: pct.optional(),
  disk_warning_pct: pct.default(80),
  disk_critical_pct: pct.default(90),
  /** Only filesystems mounted here count for disk usage. */
  disk_mountpoint: z.string().min(1).max(256).default('/'),
})
export type PrometheusConfig = z.infer<typeof PrometheusConfig>

const heartbeatTiming = {
  /** How often the job is expected to ping or run. */
  period_seconds: z.number().int().min(10).max(604_800),
  /** How late it may be before it counts as missed. */
  grace_seconds: z.number().int().min(0).max(604_800).default(60),
}

export const HeartbeatConfig = z.discriminatedUnion('source', [
  /** A job pings /functions/v1/heartbeat/<token>. */
  z.strictObject({ source: z.literal('ping'), ...heartbeatTiming }),
  /** A pg_cron job, judged by cron.job_run_details and, when it calls a function, by the answer. */
  z.strictObject({
    source: z.literal('cron'),
    ...heartbeatTiming,
    job: z.string().min(1).max(200),
    function: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
  }),
  /** Vigil's own health-check cycles. */
  z.strictObject({ source: z.literal('cycles'), ...heartbeatTiming }),
])
export type HeartbeatConfig = z.infer<typeof HeartbeatConfig>

/** Ids that end up in a provider's URL path: letters, digits and . _ - only. */
export const pathId = (what: string, max: number) =>
  z.string().regex(
    new RegExp(`^[A-Za-z0-9_.-]{1,${max}}$`),
    `must be a ${what} (letters, digits, . _ -)`,
  )

/** A Vercel project's deployments (GET /v6/deployments): failed builds, and builds that hang. */
export const VercelConfig = z.strictObject({
  api_url: httpUrl.default('https://api.vercel.com'),
  project_id: pathId('Vercel project id or name', 100),
  token_secret: SecretName.default('VIGIL_VERCEL_TOKEN'),
  team_id: pathId('Vercel team id', 100).optional(),
  /** Which deployments count: production (the default) or preview. */
  target: z.enum(['production', 'preview']).default('production'),
  /** A build running longer warns (the spec's 5 minutes) … */
  build_warning_minutes: z.number().min(1).max(1440).default(5),
  /** … and pages (15 minutes). */
  build_critical_minutes: z.number().min(1).max(1440).default(15),
}).refine((c) => c.build_warning_minutes <= c.build_critical_minutes, {
  message: 'build_warning_minutes must not be above build_critical_minutes',
  path: ['build_warning_minutes'],
})
export type VercelConfig = z.infer<typeof VercelConfig>

const buildMinutes = {
  /** A build running longer warns (the spec's 5 minutes) … */
  build_warning_minutes: z.number().min(1).max(1440).default(5),
  /** … and pages (15 minutes). */
  build_critical_minutes: z.number().min(1).max(1440).default(15),
}
const buildOrder = {
  message: 'build_warning_minutes must not be above build_critical_minutes',
  path: ['build_warning_minutes'],
}

/** A Netlify site's deploys (GET /api/v1/sites/{site_id}/deploys): failed builds, hung builds. */
export const NetlifyConfig = z.strictObject({
  api_url: httpUrl.default('https://api.netlify.com'),
  site_id: pathId('Netlify site id or domain', 253),
  token_secret: SecretName.default('VIGIL_NETLIFY_TOKEN'),
  /** Which deploys count: production (the default), or every context. */
  context: z.enum(['production', 'any']).default('production'),
  ...buildMinutes,
}).refine((c) => c.build_warning_minutes <= c.build_critical_minutes, buildOrder)
export type NetlifyConfig = z.infer<typeof NetlifyConfig>

/** A GitHub repository's workflow runs (a deploy or build workflow): failed runs, hung runs. */
export const GithubActionsConfig = z.strictObject({
  api_url: httpUrl.default('https://api.github.com'),
  repository: z.string().regex(
    /^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/,
    'must be owner/repository',
  ),
  /** The workflow's file name (deploy.yml) or id; all workflows when absent. */
  workflow: pathId('workflow file name or id', 200).optional(),
  /** Only runs of this branch (the one that deploys). */
  branch: z.string().min(1).max(255).regex(/^[^\s~^:?*\[\\]+$/, 'must be a branch name')
    .optional(),
  token_secret: SecretName.default('VIGIL_GITHUB_TOKEN'),
  ...buildMinutes,
}).refine((c) => c.build_warning_minutes <= c.build_critical_minutes, buildOrder)
export type GithubActionsConfig = z.infer<typeof GithubActionsConfig>

/**
 * A Sentry (or compatible: self-hosted, GlitchTip) project's errors: its latest release and the new
 * issues it brought, and the top unresolved issues of the window with their share of the events.
 */
export const SentryConfig = z.strictObject({
  api_url: httpUrl.default('https://sentry.io'),
  organization: pathId('Sentry organization slug', 100),
  project: pathId('Sentry project slug', 100),
  token_secret: SecretName.default('VIGIL_SENTRY_TOKEN'),
  /** Only this environment's issues (production, say). */
  environment: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be an environment name')
    .optional(),
  /** The window the top issues are counted over. */
  stats_period: z.enum(['1h', '24h', '14d']).default('24h'),
  /** How many issues the top lists. */
  top: z.number().int().min(1).max(25).default(5),
  /** New issues in the latest release from which it warns … */
  new_issues_warning: z.number().int().min(1).max(10_000).default(3),
  /** … and from which it is down (a release that broke things). */
  new_issues_critical: z.number().int().min(1).max(10_000).default(10),
}).refine((c) => c.new_issues_warning <= c.new_issues_critical, {
  message: 'new_issues_warning must not be above new_issues_critical',
  path: ['new_issues_warning'],
})
export type SentryConfig = z.infer<typeof SentryConfig>

/** The log sources a pattern may name: the database's log, and the edge functions'. */
export const LOG_SOURCES = ['postgres', 'functions'] as const

const logTiming = {
  /** A pattern's match keeps the service at its status this long after its last line. */
  hold_minutes: z.number().int().min(1).max(10_080).default(60),
}

/**
 * Log lines matched against vigil.log_patterns. Locally the cluster's own log file (a file, or a
 * directory whose newest file is read); on Supabase the Management API's logs endpoint
 * (GET /v1/projects/{ref}/analytics/endpoints/logs, the unified logs table).
 */
export const LogsConfig = z.discriminatedUnion('source', [
  z.strictObject({
    source: z.literal('file'),
    /** An absolute path: a log file, or the directory of a rotating log (its newest file). */
    path: z.string().min(2).max(1024).regex(/^\/[^\0]*$/, 'must be an absolute path'),
    /** Which patterns apply: the postgres ones for the cluster's log. */
    log: z.enum(LOG_SOURCES).default('postgres'),
    /** At most this much new text a check; the rest waits for the next. */
    max_bytes: z.number().int().min(1024).max(16_777_216).default(1_048_576),
    ...logTiming,
  }),
  z.strictObject({
    source: z.literal('logs_api'),
    api_url: httpUrl.default('https://api.supabase.com'),
    project_ref: z.string().regex(/^[a-z0-9]{20}$/, 'must be a 20-character project ref'),
    access_token_secret: SecretName.default('VIGIL_SUPABASE_ACCESS_TOKEN'),
    log: z.enum(LOG_SOURCES).default('postgres'),
    /** At most this many log rows a check. */
    max_rows: z.number().int().min(1).max(10_000).default(1000),
    ...logTiming,
  }),
])
export type LogsConfig = z.infer<typeof LogsConfig>

/**
 * The project's real traffic, from the Management API's logs endpoint (the unified logs table) over
 * the last window_minutes: the API's requests, 5xx share and p95 per endpoint (edge_logs), each edge
 * function's failures, timeouts and p95 (function_edge_logs), the share of Auth token requests that
 * succeed (auth_logs), permission-denied and row-level-security refusals (postgres_logs), and the
 * top errors with their share (postgres_logs, function_logs). Judged against the environment's
 * error_rate and api_p95 thresholds once there is enough traffic to judge.
 */
export const TrafficConfig = z.strictObject({
  api_url: httpUrl.default('https://api.supabase.com'),
  project_ref: z.string().regex(/^[a-z0-9]{20}$/, 'must be a 20-character project ref'),
  access_token_secret: SecretName.default('VIGIL_SUPABASE_ACCESS_TOKEN'),
  /** Each check reads this many minutes back. */
  window_minutes: z.number().int().min(1).max(60).default(5),
  /** Override the environment's api_p95 band for this project's p95. */
  ...latencyBand,
  /** Below this many API requests in the window, error rate and p95 are noted, not judged. */
  min_requests: z.number().int().min(1).max(1_000_000).default(50),
  /** How many endpoints, functions and errors are kept (the busiest, the most failing). */
  top: z.number().int().min(1).max(25).default(5),
  /** Auth token requests that succeed: below warning it warns, below critical it is down. */
  auth_success_warning_pct: z.number().min(0).max(100).default(90),
  auth_success_critical_pct: z.number().min(0).max(100).default(50),
  /** Row-level-security and permission-denied refusals in the window from which it warns. */
  rls_violations_warning: z.number().int().min(1).max(1_000_000).default(1),
  /**
   * Errors over this many times their baseline (never less than the error_rate warning) within
   * rollback_window_minutes of a deploy going live (vigil.deployments) name the deploy as the
   * likely cause: rollback_deploy suggests rolling it back, or does where its policy sets
   * auto_rollback_on_spike.
   */
  rollback_threshold: z.number().min(1).max(1000).default(2),
  rollback_window_minutes: z.number().int().min(1).max(1440).default(30),
}).refine((c) => c.auth_success_critical_pct <= c.auth_success_warning_pct, {
  message: 'auth_success_critical_pct must not be above auth_success_warning_pct',
  path: ['auth_success_critical_pct'],
})
export type TrafficConfig = z.infer<typeof TrafficConfig>

/** Every kind's config schema. A kind added to SERVICE_KINDS without one fails to compile. */
export const PROBE_CONFIGS = {
  postgres: PostgresConfig,
  http: HttpConfig,
  supabase_auth: SupabaseAuthConfig,
  supabase_storage: SupabaseStorageConfig,
  supabase_realtime: SupabaseRealtimeConfig,
  supabase_functions: SupabaseFunctionsConfig,
  supabase_management: SupabaseManagementConfig,
  prometheus: PrometheusConfig,
  heartbeat: HeartbeatConfig,
  vercel: VercelConfig,
  logs: LogsConfig,
  netlify: NetlifyConfig,
  github_actions: GithubActionsConfig,
  sentry: SentryConfig,
  traffic: TrafficConfig,
} as const satisfies Record<ServiceKind, z.ZodType>

export type ProbeConfig<K extends ServiceKind> = z.infer<(typeof PROBE_CONFIGS)[K]>

/** The JSON Schema SQL enforces for a kind (the accepted input, before defaults apply). */
export function probeConfigJsonSchema(kind: ServiceKind): Record<string, unknown> {
  const { $schema: _, ...schema } = z.toJSONSchema(PROBE_CONFIGS[kind], { io: 'input' }) as Record<
    string,
    unknown
  >
  return schema
}
