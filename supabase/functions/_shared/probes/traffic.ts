// The traffic probe: what the project's real users met over the last window_minutes, read from the
// Management API's logs endpoint (logs-api.ts) in four aggregate queries, never line by line:
//   totals     API requests, 5xx, 401/403 and p95 (edge_logs); Auth token requests and how many
//              succeeded, refresh-token failures (auth_logs); permission-denied and row-level
//              security refusals (postgres_logs, SQLSTATE 42501); error lines (postgres, functions)
//   endpoints  the same per endpoint, its path's first three segments (/rest/v1/orders)
//   functions  each edge function's invocations, failures, resource-limit answers (504, 546), p95
//   errors     the commonest error lines (postgres_logs ERROR and worse, function_logs errors),
//              grouped with their digits masked, each with its share of all error lines
// Each query opens with a comment naming it (`-- vigil:traffic totals`), as Supabase's own panels
// name theirs: the local stand-in (devstack/logs-api.ts) answers by it.
//
// Judged once the window holds min_requests API requests: the 5xx share against the environment's
// error_rate thresholds, p95 against api_p95; the share of successful token requests against
// auth_success_*; any RLS refusal warns (the spec: logged and told to the admin). When errors are
// the reason, the check's words name the top error with its share and the most failing endpoint:
// what the alert and the error analysis read first.
import { z } from 'zod'
import type { TrafficConfig } from '../../../../shared/probe-configs.ts'
import { TrafficConfig as TrafficConfigSchema } from '../../../../shared/probe-configs.ts'
import type { CheckStatus } from '../../../../shared/kinds.ts'
import { queryLogsApi } from './logs-api.ts'
import { masked } from './logs.ts'
import { clip, latencyBand, result } from './support.ts'
import {
  againstBand,
  againstFloor,
  type Metric,
  type Probe,
  type ProbeContext,
  worst,
} from './types.ts'
import type { Finding } from '../../../../shared/findings.ts'

/** Token requests below this many in the window: Auth's success rate is noted, not judged. */
export const AUTH_MIN_REQUESTS = 10
/** A function with fewer invocations in the window is listed, never judged. */
export const FUNCTION_MIN_REQUESTS = 10
/** How much of a healthy check's error rate the baseline takes (an exponential average). */
const BASELINE_WEIGHT = 0.2

const STATUS = `toInt32OrZero(log_attributes['response.status_code'])`
const ERROR_LINE = `(source = 'postgres_logs' and ` +
  `log_attributes['parsed.error_severity'] in ('ERROR', 'FATAL', 'PANIC')) or ` +
  `(source = 'function_logs' and (upper(severity_text) = 'ERROR' or log_attributes['level'] = 'error'))`

/** An edge runtime's shutdown for this reason (its ShutdownEvent), or a line saying so. */
const SHUTDOWN = (reason: string, words: string) =>
  `(log_attributes['reason'] = '${reason}' or positionCaseInsensitive(event_message, '${words}') > 0)`

/** The four queries, each named by its first line. */
export const TRAFFIC_QUERIES = {
  totals: () =>
    `-- vigil:traffic totals
select
  countIf(source = 'edge_logs') as requests,
  countIf(source = 'edge_logs' and ${STATUS} >= 500) as server_errors,
  countIf(source = 'edge_logs' and ${STATUS} in (401, 403)) as denied,
  quantileIf(0.95)(toFloat64OrZero(log_attributes['response.origin_time']),
                   source = 'edge_logs' and log_attributes['response.origin_time'] != '') as p95_ms,
  countIf(source = 'auth_logs' and log_attributes['path'] = '/token') as token_requests,
  countIf(source = 'auth_logs' and log_attributes['path'] = '/token' and toInt32OrZero(log_attributes['status']) between 200 and 299) as token_ok,
  countIf(source = 'auth_logs' and positionCaseInsensitive(log_attributes['error'], 'refresh token') > 0) as refresh_failures,
  countIf(source = 'postgres_logs' and log_attributes['parsed.sql_state_code'] = '42501') as rls_violations,
  countIf(${ERROR_LINE}) as error_lines
from logs
where source in ('edge_logs', 'auth_logs', 'postgres_logs', 'function_logs')`,
  endpoints: (top: number) =>
    `-- vigil:traffic endpoints
select
  arrayStringConcat(arraySlice(splitByChar('/', log_attributes['request.path']), 1, 4), '/') as endpoint,
  log_attributes['request.method'] as method,
  count() as requests,
  countIf(${STATUS} >= 500) as server_errors,
  quantileIf(0.95)(toFloat64OrZero(log_attributes['response.origin_time']),
                   log_attributes['response.origin_time'] != '') as p95_ms
from logs
where source = 'edge_logs'
group by endpoint, method
order by server_errors desc, requests desc
limit ${top * 4}`,
  functions: (top: number) =>
    `-- vigil:traffic functions
select
  log_attributes['function_id'] as function_id,
  anyIf(log_attributes['request.pathname'], source = 'function_edge_logs') as path,
  countIf(source = 'function_edge_logs') as requests,
  countIf(source = 'function_edge_logs' and ${STATUS} >= 500) as failures,
  countIf(source = 'function_edge_logs' and ${STATUS} in (504, 546)) as resource_limits,
  countIf(source = 'function_logs' and (${
      SHUTDOWN('WallClockTime', 'wall clock time limit reached')
    } or ${SHUTDOWN('CPUTime', 'cpu time limit reached')})) as time_limits,
  countIf(source = 'function_logs' and ${
      SHUTDOWN('Memory', 'memory limit exceeded')
    }) as memory_limits,
  quantileIf(0.95)(toFloat64OrZero(log_attributes['execution_time_ms']),
                   source = 'function_edge_logs' and log_attributes['execution_time_ms'] != '') as p95_ms
from logs
where source in ('function_edge_logs', 'function_logs') and log_attributes['function_id'] != ''
group by function_id
order by failures desc, requests desc
limit ${top * 4}`,
  errors: (top: number) =>
    `-- vigil:traffic errors
select
  source,
  replaceRegexpAll(substring(event_message, 1, 200), '[0-9]+', '#') as shape,
  any(substring(event_message, 1, 300)) as message,
  any(log_attributes['parsed.sql_state_code']) as sqlstate,
  count() as lines
from logs
where ${ERROR_LINE}
group by source, shape
order by lines desc
limit ${top * 4}`,
} as const

export type TrafficQuery = keyof typeof TRAFFIC_QUERIES

/** A count as ClickHouse's JSON writes it: a number, or a 64-bit one quoted. */
const count = z.union([z.number(), z.string()]).transform(Number).pipe(z.number().min(0))
/** A quantile: NaN or null over no rows. */
const quantile = z.union([z.number(), z.string(), z.null()]).transform((v) => {
  const n = v === null ? NaN : Number(v)
  return Number.isFinite(n) && n >= 0 ? Math.round(n) : null
})
const text = z.string().nullish().transform((v) => v ?? '')

const Rows = {
  totals: z.array(z.looseObject({
    requests: count,
    server_errors: count,
    denied: count,
    p95_ms: quantile,
    token_requests: count,
    token_ok: count,
    refresh_failures: count,
    rls_violations: count,
    error_lines: count,
  })).max(1),
  endpoints: z.array(z.looseObject({
    endpoint: text,
    method: text,
    requests: count,
    server_errors: count,
    p95_ms: quantile,
  })),
  functions: z.array(z.looseObject({
    function_id: text,
    path: text,
    requests: count,
    failures: count,
    resource_limits: count,
    time_limits: count.default(0),
    memory_limits: count.default(0),
    p95_ms: quantile,
  })),
  errors: z.array(z.looseObject({
    source: text,
    message: text,
    sqlstate: text,
    lines: count,
  })),
}

export interface TopError {
  message: string
  source: string
  lines: number
  share_pct: number
  sqlstate: string | null
}

const pct = (part: number, whole: number) => whole > 0 ? Math.round((part / whole) * 1000) / 10 : 0

export const trafficProbe: Probe<TrafficConfig> = {
  kind: 'traffic',
  config: TrafficConfigSchema,
  async run(config, ctx) {
    const started = performance.now()
    const end = new Date()
    // After a rollback Vigil made, only what came after it counts: the errors before are its cause.
    const rolledBackAt = await lastRollback(
      ctx,
      new Date(end.getTime() - config.window_minutes * 60_000),
    )
    const start = rolledBackAt ?? new Date(end.getTime() - config.window_minutes * 60_000)
    const minutes = Math.max((end.getTime() - start.getTime()) / 60_000, 1 / 60)
    const names = Object.keys(TRAFFIC_QUERIES) as TrafficQuery[]
    const answers = await Promise.all(names.map((name) =>
      queryLogsApi(
        ctx,
        config,
        TRAFFIC_QUERIES[name](config.top),
        start.toISOString(),
        end.toISOString(),
      )
    ))
    const measurements: Record<string, unknown> = {
      window_minutes: config.window_minutes,
      window_start: start.toISOString(),
      ...(rolledBackAt ? { since_rollback: true } : {}),
      attempts: Math.max(...answers.map((a) => a.attempts)),
    }
    const ms = Math.round(performance.now() - started)
    const failed = answers.find((a) => 'failure' in a)
    if (failed && 'failure' in failed) {
      return result(failed.status, failed.failure, keepBaseline(measurements, ctx.previous), ms)
    }
    const rowsOf = (name: TrafficQuery) =>
      (answers[names.indexOf(name)] as { rows: unknown[] }).rows
    const totalsRows = Rows.totals.safeParse(rowsOf('totals'))
    const endpointRows = Rows.endpoints.safeParse(rowsOf('endpoints'))
    const functionRows = Rows.functions.safeParse(rowsOf('functions'))
    const errorRows = Rows.errors.safeParse(rowsOf('errors'))
    const parsed = {
      totals: totalsRows,
      endpoints: endpointRows,
      functions: functionRows,
      errors: errorRows,
    }
    for (const name of names) {
      const { error } = parsed[name]
      if (error) {
        const issue = error.issues[0]
        return result(
          'down',
          `logs endpoint answered the ${name} query with rows of another shape: ${
            issue.path.join('.') || 'rows'
          }: ${issue.message}`,
          keepBaseline(measurements, ctx.previous),
          ms,
        )
      }
    }
    const totals = totalsRows.data![0] ?? {
      requests: 0,
      server_errors: 0,
      denied: 0,
      p95_ms: null,
      token_requests: 0,
      token_ok: 0,
      refresh_failures: 0,
      rls_violations: 0,
      error_lines: 0,
    }
    const endpoints = endpointRows.data!.map((e) => ({
      endpoint: `${e.method ? `${e.method} ` : ''}${e.endpoint || '/'}`,
      requests: e.requests,
      server_errors: e.server_errors,
      error_rate_pct: pct(e.server_errors, e.requests),
      p95_ms: e.p95_ms,
    }))
    const failing = endpoints.filter((e) => e.server_errors > 0)
      .sort((a, b) => b.server_errors - a.server_errors).slice(0, config.top)
    const busiest = [...endpoints].sort((a, b) => b.requests - a.requests).slice(0, config.top)
    const functions = functionRows.data!.slice(0, config.top).map((f) => ({
      function_id: f.function_id,
      path: f.path || null,
      requests: f.requests,
      failures: f.failures,
      resource_limits: f.resource_limits,
      time_limits: f.time_limits,
      memory_limits: f.memory_limits,
      failure_pct: pct(f.failures, f.requests),
      p95_ms: f.p95_ms,
    }))
    const errorTotal = Math.max(
      totals.error_lines,
      errorRows.data!.reduce((n, e) => n + e.lines, 0),
    )
    // The commonest error groups, more than are shown: the refusals' tables are read from all.
    const errorGroups: TopError[] = errorRows.data!.map((e) => ({
      message: masked(e.message),
      source: e.source,
      lines: e.lines,
      share_pct: pct(e.lines, errorTotal),
      sqlstate: e.sqlstate || null,
    }))
    const topErrors = errorGroups.slice(0, config.top)
    const rlsTables = [
      ...new Set(
        errorGroups.filter((e) => e.sqlstate === '42501' || RLS_WORDS.test(e.message))
          .map((e) => e.message.match(/for (?:table|relation|view) "?([\w.]+)"?/)?.[1])
          .filter((t): t is string => !!t),
      ),
    ]

    const perMinute = totals.requests / minutes
    const errorRate = pct(totals.server_errors, totals.requests)
    const judged = totals.requests >= config.min_requests
    const baselineBefore = z.number().min(0).safeParse(ctx.previous?.baseline_error_rate_pct)
    const t = ctx.thresholds
    const errorStatus: CheckStatus = judged
      ? againstBand(errorRate, t.error_rate_warning_pct, t.error_rate_critical_pct)
      : 'healthy'
    const latency = latencyBand(config, t)
    const latencyStatus: CheckStatus = judged && totals.p95_ms !== null
      ? againstBand(totals.p95_ms, latency.warning, latency.critical)
      : 'healthy'
    const authJudged = totals.token_requests >= AUTH_MIN_REQUESTS
    const authSuccess = pct(totals.token_ok, totals.token_requests)
    const authStatus: CheckStatus = authJudged
      ? againstFloor(authSuccess, config.auth_success_warning_pct, config.auth_success_critical_pct)
      : 'healthy'
    const rlsStatus: CheckStatus = totals.rls_violations >= config.rls_violations_warning
      ? 'degraded'
      : 'healthy'
    // A function that failed its callers, or that the runtime stopped for its memory: 256 MB is a
    // wall it hits again with the same input.
    const failingFunctions = functions.filter((f) =>
      (f.requests >= FUNCTION_MIN_REQUESTS && f.failure_pct > t.error_rate_critical_pct) ||
      f.memory_limits > 0
    )
    const functionStatus: CheckStatus = failingFunctions.length ? 'degraded' : 'healthy'
    // The baseline learns from every judged check but a spike (over rollback_threshold × what it
    // knew, never less than the warning line): a spike is not normal, a level that lasts is.
    const known = baselineBefore.success ? baselineBefore.data : null
    const spikeFloor = Math.max(known ?? 0, t.error_rate_warning_pct)
    // Without a baseline yet, the first judged look is it.
    const spiking = judged && known !== null && errorRate > config.rollback_threshold * spikeFloor
    const baseline = judged && !spiking
      ? Math.round(
        (known !== null ? known * (1 - BASELINE_WEIGHT) + errorRate * BASELINE_WEIGHT : errorRate) *
          1000,
      ) / 1000
      : known

    Object.assign(measurements, {
      requests: totals.requests,
      requests_per_minute: Math.round(perMinute * 10) / 10,
      server_errors: totals.server_errors,
      error_rate_pct: errorRate,
      baseline_error_rate_pct: baseline,
      denied: totals.denied,
      p95_ms: totals.p95_ms,
      judged,
      ...(judged ? {} : {
        not_judged: `${totals.requests} API request${totals.requests === 1 ? '' : 's'} in ${
          windowWords(minutes)
        }, fewer than min_requests (${config.min_requests})`,
      }),
      endpoints: busiest,
      failing_endpoints: failing,
      functions,
      auth: {
        token_requests: totals.token_requests,
        token_ok: totals.token_ok,
        success_pct: authJudged ? authSuccess : null,
        refresh_failures: totals.refresh_failures,
      },
      rls_violations: { count: totals.rls_violations, tables: rlsTables },
      error_lines: errorTotal,
      top_errors: topErrors,
    })

    const metrics: Metric[] = [{
      name: 'throughput',
      value: Math.round(perMinute * 100) / 100,
      labels: { source: 'api' },
    }]
    if (judged) metrics.push({ name: 'error_rate', value: errorRate, labels: { source: 'api' } })
    if (judged && totals.p95_ms !== null) {
      metrics.push({
        name: 'http_request_duration',
        value: totals.p95_ms,
        labels: { source: 'api' },
      })
    }
    if (authJudged) metrics.push({ name: 'login_success_rate', value: authSuccess })

    // Errors far over their baseline soon after a deploy went live: the deploy is the likely cause.
    const findings: Finding[] = []
    const deploy = errorStatus !== 'healthy' && spiking
      ? await recentDeploy(ctx, config.rollback_window_minutes)
      : null
    if (deploy) {
      findings.push({
        kind: 'error_spike_after_deploy',
        status: errorStatus,
        evidence: {
          error_rate_pct: Math.min(errorRate, 100),
          baseline_pct: Math.min(known ?? 0, 100),
          rollback_threshold: config.rollback_threshold,
          ...deploy,
        },
      })
      measurements.deploy_suspected = deploy
    }

    // Too few requests since Vigil rolled back to say the rollback worked: not healthy yet.
    const unproven: CheckStatus = rolledBackAt && !judged ? 'degraded' : 'healthy'
    const status = worst(
      errorStatus,
      latencyStatus,
      authStatus,
      rlsStatus,
      functionStatus,
      unproven,
    )
    if (status === 'healthy') {
      return { status, measurements, metrics, responseMs: ms }
    }
    const suspect = deploy
      ? `; ${Math.round(deploy.minutes_since_deploy)} min after ${
        deploy.version ?? deploy.deployment_id
      } went live on ${deploy.deploy_service} (over ${config.rollback_threshold} × the baseline): roll it back`
      : ''
    const said: string[] = []
    if (unproven !== 'healthy') {
      said.push(
        `rolled back ${windowWords(minutes)} ago: ${totals.requests} API request${
          totals.requests === 1 ? '' : 's'
        } since, fewer than min_requests (${config.min_requests}) to judge the rollback by`,
      )
    }
    if (errorStatus !== 'healthy') {
      said.push(
        `5xx on ${errorRate} % of ${totals.requests} API requests in ${
          windowWords(minutes)
        } (warning from ${t.error_rate_warning_pct} %, critical from ${t.error_rate_critical_pct} %${
          baseline !== null ? `; baseline ${baseline} %` : ''
        })${errorCause(topErrors, errorTotal, failing)}${suspect}`,
      )
    }
    if (latencyStatus !== 'healthy') {
      said.push(
        `API p95 ${totals.p95_ms} ms (warning from ${latency.warning} ms, critical from ${latency.critical} ms)`,
      )
    }
    if (authStatus !== 'healthy') {
      said.push(
        `Auth: ${authSuccess} % of ${totals.token_requests} token requests succeeded (warning below ${config.auth_success_warning_pct} %)${
          totals.refresh_failures ? `; ${totals.refresh_failures} refresh-token failures` : ''
        }`,
      )
    }
    if (rlsStatus !== 'healthy') {
      said.push(
        `${totals.rls_violations} row-level security or permission refusal${
          totals.rls_violations === 1 ? '' : 's'
        }${rlsTables.length ? ` on ${rlsTables.join(', ')}` : ''}`,
      )
    }
    for (const f of failingFunctions) {
      const limits = [
        f.resource_limits ? `${f.resource_limits} answered 504/546` : '',
        f.time_limits ? `${f.time_limits} stopped at the time limit` : '',
        f.memory_limits ? `${f.memory_limits} stopped at the memory limit` : '',
      ].filter(Boolean)
      said.push(
        `function ${f.function_id}: ${f.failures} of ${f.requests} invocations failed${
          limits.length ? `; ${limits.join(', ')}` : ''
        }`,
      )
    }
    return {
      status,
      measurements,
      metrics,
      ...(findings.length ? { findings } : {}),
      error: said.join('; '),
      responseMs: ms,
    }
  },
}

const RLS_WORDS = /row-level security policy|permission denied for/i

/** "; top error: … — 68 % of 250 error lines; most failing: POST /rest/v1/orders (120 of 150)". */
function errorCause(
  top: TopError[],
  total: number,
  failing: { endpoint: string; server_errors: number; requests: number }[],
): string {
  const parts: string[] = []
  if (top[0]) {
    parts.push(
      `top error: ${clip(top[0].message, 160)} — ${top[0].share_pct} % of ${total} error lines`,
    )
  }
  if (failing[0]) {
    parts.push(
      `most failing: ${failing[0].endpoint} (${failing[0].server_errors} of ${
        failing[0].requests
      })`,
    )
  }
  return parts.length ? `; ${parts.join('; ')}` : ''
}

/** A failed read keeps the baseline the service had, for the next check. */
function keepBaseline(
  measurements: Record<string, unknown>,
  previous: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const baseline = z.number().min(0).safeParse(previous?.baseline_error_rate_pct)
  return baseline.success
    ? { ...measurements, baseline_error_rate_pct: baseline.data }
    : measurements
}

/** "5 min", or "40 s" for a window cut short by a rollback. */
function windowWords(minutes: number): string {
  return minutes >= 1 && Number.isInteger(Math.round(minutes * 100) / 100)
    ? `${Math.round(minutes)} min`
    : minutes >= 1
    ? `${Math.round(minutes * 10) / 10} min`
    : `${Math.round(minutes * 60)} s`
}

/**
 * When Vigil last rolled a deploy back for this service within the window: an intent to act (not
 * one waiting for approval) not ended as a suggestion, a refusal or a failure. Null when it did
 * not, or the database cannot say.
 */
async function lastRollback(ctx: ProbeContext, since: Date): Promise<Date | null> {
  try {
    const [row] = await ctx.db<{ at: Date | null }[]>`
      select max(i.created_at) as at from vigil.heal_actions i
       where i.service_id = ${ctx.service.id} and i.strategy = 'rollback_deploy'
         and i.phase = 'intent' and i.outcome = 'pending' and i.created_at > ${since}
         and not exists (select from vigil.heal_actions r
                          where r.action_id = i.action_id and r.phase = 'result'
                            and r.outcome not in ('succeeded', 'pending'))`
    return row?.at ?? null
  } catch {
    return null
  }
}

/**
 * The newest deploy of this environment (of the deploy services this one depends on, when it names
 * any) that went live within the window and still serves; never the target of Vigil's own rollback.
 * Null when none, or when the database cannot say.
 */
async function recentDeploy(ctx: ProbeContext, windowMinutes: number) {
  try {
    const [row] = await ctx.db<
      {
        deployment_id: string
        previous_deployment_id: string | null
        version: string | null
        deploy_service: string
        deploy_service_id: string
        minutes_since_deploy: number
      }[]
    >`
      select d.deployment_id, d.previous_deployment_id, d.version, s.name as deploy_service,
             s.id::text as deploy_service_id,
             round(extract(epoch from now() - d.finished_at)::numeric / 60, 1)::float8 as minutes_since_deploy
        from vigil.deployments d
        join vigil.services s on s.id = d.service_id
        -- What its deploy service serves now: a deploy already replaced is no suspect.
        join lateral (select c.measurements -> 'serving' ->> 'id' as serving from vigil.checks c
                       where c.service_id = s.id and c.measurements ? 'serving'
                       order by c.checked_at desc limit 1) live on live.serving = d.deployment_id
        left join lateral (select depends_on from vigil.services where id = ${ctx.service.id}::uuid) mine
          on true
       where s.environment::text = ${ctx.service.environment}
         -- The deploy services this one depends on, when it names any.
         and (coalesce(cardinality(mine.depends_on), 0) = 0 or s.name = any (mine.depends_on))
         and d.finished_at > now() - make_interval(mins => ${windowMinutes})
         -- Vigil's own rollback is a return to what served before, never a new suspect.
         and not exists (select from vigil.heal_actions h
                          where h.service_id in (s.id, ${ctx.service.id}::uuid)
                            and h.strategy = 'rollback_deploy'
                            and h.phase = 'intent' and h.target -> 'to' ->> 'id' = d.deployment_id)
       order by d.finished_at desc limit 1`
    return row ? { ...row, minutes_since_deploy: Math.max(0, row.minutes_since_deploy) } : null
  } catch {
    return null
  }
}
