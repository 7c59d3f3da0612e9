// One health-check cycle: read the enabled services, run every probe at once (each under its own
// timeout), record every result in one batch with vigil.record_cycle(), then ping the external
// dead man's switch. A probe that throws, hangs or is misconfigured becomes a `down` result;
// it never fails the cycle or delays the others past its own timeout.
import { checkAnchors } from '../heal/anchor.ts'
import type postgres from 'postgres'
import {
  CHECK_STATUSES,
  type CheckStatus,
  METRIC_NAMES,
  type ServiceKind,
} from '../../../../shared/kinds.ts'
import {
  DEFAULT_THRESHOLDS,
  describeIssues,
  resolveThresholds,
  type Thresholds,
} from '../../../../shared/thresholds.ts'
import {
  PROJECT_KEYS,
  projectKeyRefusal,
  talksOnlyToProject,
} from '../../../../shared/probe-configs.ts'
import { type ProbeRegistry, PROBES } from '../probes/registry.ts'
import { CYCLE_READ_BUDGET_BYTES, ReadBudget } from './read-budget.ts'
import { readFindings } from '../../../../shared/findings.ts'
import {
  connectionSecrets,
  type Metric,
  type ProbeContext,
  type ProbeResult,
  redact,
} from '../probes/types.ts'

/** The longest a single probe may run: the edge runtime ends a request at 150 s. */
export const MAX_PROBE_TIMEOUT_MS = 120_000
const MAX_MEASUREMENTS_BYTES = 64 * 1024
const MAX_ERROR_CHARS = 2000
const DEADMAN_TIMEOUT_MS = 5_000
/**
 * A service that was healthy and fails is probed again this long after, in the same cycle, as a
 * confirmation round: a blip shorter than this is filtered as before, and a real failure reaches
 * the service's failure_threshold an interval sooner (two failed checks in one cycle, not two).
 */
export const CONFIRM_AFTER_MS = 5_000

export interface CycleOptions {
  sql: postgres.Sql
  /** Secrets by name (edge-function env). */
  secret(name: string): string | undefined
  projectUrl: string
  /** Healthchecks.io-style URL pinged after each recorded cycle (…/fail when recording failed). */
  deadmanUrl?: string
  /** Only these services (by name); all enabled ones when absent. */
  only?: string[]
  /** Only these services (by id): a shard's (see shards.ts). */
  serviceIds?: string[]
  /** The run and shard this cycle is (its first round claims the shard; see shards.ts). */
  shard?: { runId: string; index: number }
  probes?: ProbeRegistry
  fetch?: typeof fetch
  /** VIGIL_AUDIT_SECRET: each cycle checks the heal audit's anchors, and pings the newest out. */
  auditSecret?: string
  /** The database's connection strings (withheld from probes): scrubbed from every result. */
  databaseUrls?: (string | undefined)[]
  /** Bytes of response bodies all the cycle's probes may read together (CYCLE_READ_BUDGET_BYTES). */
  readBudgetBytes?: number
  /** How long after a first failure its confirmation probe runs (CONFIRM_AFTER_MS); null: never. */
  confirmAfterMs?: number | null
}

export interface CycleReport {
  cycle_id: string
  started_at: string
  duration_ms: number
  services: number
  healthy: number
  degraded: number
  down: number
  deadman: string | null
  /** The services that failed after a healthy check and were probed again (a second cycle row). */
  confirmation: { cycle_id: string; services: number; still_failing: number } | null
  /** A shard's cycle: its run and index. */
  run_id?: string
  shard?: number
  /** The shard had already been recorded (a retry or a late answer came second): nothing stored. */
  duplicate?: boolean
}

export interface ServiceRow {
  id: string
  name: string
  kind: ServiceKind
  environment: 'dev' | 'qa' | 'prod'
  config: unknown
  timeout_ms: number
  failure_threshold: number
  previous: Record<string, unknown> | null
  /** The status of its latest check; null before its first. */
  previous_status: CheckStatus | null
}

export interface ResultRow {
  service_id: string
  status: CheckStatus
  response_ms: number
  measurements: Record<string, unknown>
  error: string | null
  checked_at: string
  metrics: Metric[]
}

export async function runCycle(options: CycleOptions): Promise<CycleReport> {
  const cycleId = crypto.randomUUID()
  const startedAt = new Date()
  const started = performance.now()
  const [services, thresholds] = await Promise.all([
    loadServices(options),
    loadThresholds(options.sql),
  ])
  const used = new Set<string>()
  const secret = (name: string) => {
    const value = options.secret(name)
    if (value) used.add(value)
    return value
  }
  // Every probe's response bodies draw on one budget for the cycle.
  const readBudget = new ReadBudget(options.readBudgetBytes ?? CYCLE_READ_BUDGET_BYTES)
  const probeAll = (list: ServiceRow[]) =>
    Promise.all(list.map((service) =>
      runProbe(service, {
        probes: options.probes ?? PROBES,
        thresholds: thresholds.get(service.environment) ?? resolveThresholds(),
        secret,
        projectUrl: options.projectUrl,
        db: options.sql,
        fetch: options.fetch ?? fetch,
        readBudget,
      })
    ))
  const results = await probeAll(services)
  const secrets = [...used, ...(options.databaseUrls ?? []).flatMap(databaseSecrets)]
  const clean = results.map((r) => scrub(r, secrets))
  const finishedAt = new Date()
  const durationMs = Math.round(performance.now() - started)
  const shardOf = options.shard ? { run_id: options.shard.runId, shard: options.shard.index } : {}
  const payload = {
    id: cycleId,
    started_at: startedAt.toISOString(),
    finished_at: finishedAt.toISOString(),
    duration_ms: durationMs,
    results: clean,
    ...shardOf,
  }
  let recordError: unknown = null
  let duplicate = false
  try {
    duplicate = (await recordCycle(options.sql, payload)).duplicate === true
  } catch (error) {
    recordError = error
  }
  if (duplicate) {
    // Another attempt of this shard recorded first: this one stores nothing, confirms nothing.
    return {
      ...cycleSummary(cycleId, payload.started_at, durationMs, clean),
      deadman: null,
      confirmation: null,
      ...shardOf,
      duplicate: true,
    }
  }
  // The confirmation round: recorded after the cycle, so its checks follow the first ones.
  let confirmation: CycleReport['confirmation'] = null
  const confirmAfter = options.confirmAfterMs === undefined
    ? CONFIRM_AFTER_MS
    : options.confirmAfterMs
  const unconfirmed = services.filter((s, i) => needsConfirmation(s, clean[i]))
  if (recordError === null && confirmAfter !== null && unconfirmed.length > 0) {
    await new Promise((r) => setTimeout(r, confirmAfter))
    const againId = crypto.randomUUID()
    const againStarted = new Date()
    const againAt = performance.now()
    // The first result is the one before it: a probe's rates and "twice in a row" read it.
    const again = await probeAll(unconfirmed.map((s) => ({
      ...s,
      previous: clean[services.indexOf(s)].measurements,
    })))
    const cleanAgain = again.map((r) => scrub(r, [...used, ...secrets]))
    try {
      await recordCycle(options.sql, {
        id: againId,
        started_at: againStarted.toISOString(),
        finished_at: new Date().toISOString(),
        duration_ms: Math.round(performance.now() - againAt),
        results: cleanAgain,
        ...shardOf,
        ...(options.shard ? { confirmation: true } : {}),
      })
      confirmation = {
        cycle_id: againId,
        services: cleanAgain.length,
        still_failing: cleanAgain.filter((r) => r.status !== 'healthy').length,
      }
    } catch (error) {
      recordError = error
    }
  }
  const audit = recordError === null ? await checkAudit(options).catch(() => null) : null
  // The switch hears from every cycle: a failed recording, or an audit that does not hold, pings
  // …/fail instead of staying silent: that outside record is the alarm a database writer cannot stop.
  const deadman = options.deadmanUrl
    ? await pingDeadman(
      options,
      recordError === null && !audit?.startsWith('audit CHECK FAILED'),
      `${clean.length} services, ${clean.filter((r) => r.status === 'down').length} down`,
      audit,
    )
    : null
  if (recordError !== null) throw recordError
  if (deadman) await options.sql`update vigil.cycles set deadman = ${deadman} where id = ${cycleId}`
  return {
    ...cycleSummary(cycleId, payload.started_at, durationMs, clean),
    deadman,
    confirmation,
    ...shardOf,
  }
}

function cycleSummary(cycleId: string, startedAt: string, durationMs: number, clean: ResultRow[]) {
  return {
    cycle_id: cycleId,
    started_at: startedAt,
    duration_ms: durationMs,
    services: clean.length,
    healthy: clean.filter((r) => r.status === 'healthy').length,
    degraded: clean.filter((r) => r.status === 'degraded').length,
    down: clean.filter((r) => r.status === 'down').length,
  }
}

/**
 * Whether a result is a first failure worth a second look: the service was healthy at its latest
 * check, one failure does not open its incident (failure_threshold above 1), and the probe did not
 * call its own finding decisive (that opens the incident at once).
 */
function needsConfirmation(service: ServiceRow, result: ResultRow): boolean {
  return result.status !== 'healthy' && service.previous_status === 'healthy' &&
    service.failure_threshold > 1 && result.measurements.decisive_status === undefined
}

/**
 * One cycle's results in one batch. It takes service and incident locks that heals, the alert sweep
 * and another cycle take too: a deadlock rolls the whole batch back, so it is simply recorded again.
 */
async function recordCycle(
  sql: postgres.Sql,
  payload: Record<string, unknown>,
): Promise<{ duplicate?: boolean }> {
  for (let attempt = 1;; attempt++) {
    try {
      const [row] = await sql<{ recorded: { duplicate?: boolean } | null }[]>`
        select vigil.record_cycle(${sql.json(payload as never)}) as recorded`
      return row.recorded ?? {}
    } catch (error) {
      const code = (error as { code?: string })?.code
      if (attempt >= 3 || (code !== '40P01' && code !== '40001')) throw error
    }
  }
}

async function loadServices(options: CycleOptions): Promise<ServiceRow[]> {
  // One text parameter, not an array: postgres.js needs fetched types to send arrays, and a fresh
  // connection may not have them yet.
  const only = options.only ? JSON.stringify(options.only) : null
  const ids = options.serviceIds ? JSON.stringify(options.serviceIds) : null
  return await options.sql<ServiceRow[]>`
    select s.id, s.name, s.kind, s.environment, s.config, s.timeout_ms, s.failure_threshold,
           c.measurements as previous, c.status::text as previous_status
      from vigil.services s
      left join lateral (
        select measurements, status from vigil.checks
         where service_id = s.id order by checked_at desc limit 1
      ) c on true
     where s.enabled
       and (${only}::text is null or s.name in (select jsonb_array_elements_text(${only}::text::jsonb)))
       and (${ids}::text is null or s.id in (select jsonb_array_elements_text(${ids}::text::jsonb)::uuid))
     order by s.name`
}

export async function loadThresholds(sql: postgres.Sql): Promise<Map<string, Thresholds>> {
  const columns = Object.keys(DEFAULT_THRESHOLDS)
  const rows = await sql<Record<string, string>[]>`select environment::text, ${
    sql(columns)
  } from vigil.settings`
  const byEnvironment = new Map<string, Thresholds>()
  for (const row of rows) {
    byEnvironment.set(
      row.environment,
      resolveThresholds(Object.fromEntries(columns.map((c) => [c, Number(row[c])]))),
    )
  }
  return byEnvironment
}

export type ProbeEnvironment =
  & Omit<ProbeContext, 'service' | 'signal' | 'previous' | 'thresholds'>
  & {
    probes: ProbeRegistry
    thresholds: Thresholds
  }

/** Runs one service's probe under its timeout; whatever happens, the result obeys the contract. */
export async function runProbe(
  service: Omit<ServiceRow, 'failure_threshold' | 'previous_status'>,
  env: ProbeEnvironment,
): Promise<ResultRow> {
  const checkedAt = new Date().toISOString()
  const started = performance.now()
  const timeoutMs = Math.min(service.timeout_ms, MAX_PROBE_TIMEOUT_MS)
  const controller = new AbortController()
  let timer: ReturnType<typeof setTimeout> | undefined
  const timedOut = new Promise<ProbeResult>((resolve) => {
    timer = setTimeout(() => {
      controller.abort(new DOMException(`no result within ${timeoutMs} ms`, 'TimeoutError'))
      resolve({
        status: 'down',
        measurements: { timed_out: true },
        error: `no result within ${timeoutMs} ms`,
      })
    }, timeoutMs)
  })
  let result: ProbeResult
  try {
    const probe = env.probes[service.kind] as ProbeRegistry[ServiceKind] | undefined
    if (!probe) throw new Error(`no probe for kind ${service.kind}`)
    const parsed = probe.config.safeParse(service.config)
    const keyRefusal = parsed.success ? projectKeyRefusal(parsed.data, env.projectUrl) : null
    if (!parsed.success) {
      result = {
        status: 'down',
        measurements: {},
        error: `invalid config: ${describeIssues(parsed.error)}`,
      }
    } else if (keyRefusal) {
      result = { status: 'down', measurements: {}, error: `refused: ${keyRefusal}` }
    } else {
      const ctx: ProbeContext = {
        service: {
          id: service.id,
          name: service.name,
          kind: service.kind,
          environment: service.environment,
        },
        thresholds: env.thresholds,
        signal: controller.signal,
        // The project's secret keys only for a probe that talks to nothing but the project.
        secret: talksOnlyToProject(parsed.data, env.projectUrl)
          ? env.secret
          : (name) => (PROJECT_KEYS.has(name) ? undefined : env.secret(name)),
        projectUrl: env.projectUrl,
        db: env.db,
        previous: service.previous ?? undefined,
        fetch: env.fetch,
        readBudget: env.readBudget,
      }
      // The race bounds the probe even if it ignores its signal.
      result = await Promise.race([
        (probe.run as (c: unknown, x: ProbeContext) => Promise<ProbeResult>)(parsed.data, ctx),
        timedOut,
      ])
    }
  } catch (error) {
    result = {
      status: 'down',
      measurements: {},
      error: `probe failed: ${(error as Error)?.message ?? String(error)}`,
    }
  } finally {
    clearTimeout(timer)
  }
  return normalise(service.id, checkedAt, started, result)
}

/** Holds a probe's output to the contract whatever it returned. */
function normalise(
  serviceId: string,
  checkedAt: string,
  started: number,
  result: ProbeResult,
): ResultRow {
  const status: CheckStatus = CHECK_STATUSES.includes(result?.status) ? result.status : 'down'
  let error = typeof result?.error === 'string' && result.error
    ? result.error.slice(0, MAX_ERROR_CHARS)
    : null
  if (status === 'down' && !error) {
    error = CHECK_STATUSES.includes(result?.status) ? 'down' : 'probe returned no valid status'
  }
  const elapsed = performance.now() - started
  const responseMs = Number.isFinite(result?.responseMs) && result.responseMs! >= 0
    ? result.responseMs!
    : elapsed
  // Findings travel beside the measurements (kept even when those are cut for size); one with
  // impossible values is dropped here, with the reason kept.
  const { findings, dropped } = readFindings(result?.findings)
  return {
    service_id: serviceId,
    status,
    response_ms: Math.round(responseMs * 1000) / 1000,
    measurements: {
      ...boundedMeasurements(result?.measurements),
      ...(findings.length > 0 ? { findings } : {}),
      ...(dropped.length > 0 ? { findings_dropped: dropped.slice(0, 20) } : {}),
    },
    error,
    checked_at: checkedAt,
    metrics: (Array.isArray(result?.metrics) ? result.metrics : []).filter((m) =>
      (METRIC_NAMES as readonly string[]).includes(m?.name) && Number.isFinite(m?.value)
    ),
  }
}

function boundedMeasurements(measurements: unknown): Record<string, unknown> {
  if (!measurements || typeof measurements !== 'object' || Array.isArray(measurements)) return {}
  let text: string
  try {
    text = JSON.stringify(measurements)
  } catch (error) {
    return { unserialisable: (error as Error).message }
  }
  if (text.length > MAX_MEASUREMENTS_BYTES) {
    return {
      truncated: true,
      original_bytes: text.length,
      keys: Object.keys(measurements).slice(0, 50),
    }
  }
  return JSON.parse(text)
}

/** Every secret value the probes read is removed from what is stored. */
function scrub(row: ResultRow, secrets: string[]): ResultRow {
  if (secrets.length === 0) return row
  const measurements = JSON.parse(redact(JSON.stringify(row.measurements), secrets))
  return { ...row, error: row.error && redact(row.error, secrets), measurements }
}

/**
 * The heal audit's anchors, checked: a mismatch opens a security incident on Vigil's own service,
 * which goes straight to humans. Returns the head to send out, or null.
 */
export async function checkAudit(
  options: Pick<CycleOptions, 'sql' | 'auditSecret'>,
): Promise<string | null> {
  const secret = options.auditSecret
  if (!secret || secret.length < 16) return null
  const verdict = await checkAnchors(options.sql, secret)
  if (verdict.ok) {
    return verdict.head ? `audit head ${verdict.head.seq} ${verdict.head.mac.slice(0, 16)}` : null
  }
  await options.sql`
    insert into vigil.incidents (service_id, kind, severity, title, detail)
    select id, 'security_incident', 'critical', 'the heal audit was tampered with', ${
    options.sql.json({ seq: verdict.seq, problem: verdict.problem })
  }
      from vigil.services where name = 'vigil-health-check'
    on conflict (service_id, kind) where status = 'open' do nothing`
  return `audit CHECK FAILED at ${verdict.seq}`
}

export async function pingDeadman(
  options: Pick<CycleOptions, 'deadmanUrl' | 'fetch'>,
  recorded: boolean,
  what: string,
  audit: string | null = null,
): Promise<string> {
  const url = recorded ? options.deadmanUrl! : `${options.deadmanUrl!.replace(/\/$/, '')}/fail`
  try {
    const res = await (options.fetch ?? fetch)(url, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: `vigil cycle: ${what}${audit ? `; ${audit}` : ''}`,
      signal: AbortSignal.timeout(DEADMAN_TIMEOUT_MS),
    })
    await res.body?.cancel()
    return `${recorded ? 'ok' : 'fail'} ${res.status}`
  } catch (error) {
    return `unreachable: ${redact((error as Error).message, [options.deadmanUrl!])}`
  }
}

/**
 * What of a connection string must not be stored: the URL and its password — unless the password
 * is the URL's own user or database name (the local stack's postgres:postgres@…/postgres), which
 * hides nothing and would strike the database's name from every measurement (the postgres probe
 * then no longer recognised its previous reading, and dead tuples never counted as lasting).
 */
export function databaseSecrets(url: string | undefined): string[] {
  const names = new Set<string>()
  const parsed = url ? URL.parse(url) : null
  if (parsed) {
    names.add(decodeURIComponent(parsed.username))
    names.add(decodeURIComponent(parsed.pathname.replace(/^\//, '')))
  }
  return connectionSecrets(url).filter((s) => !names.has(s))
}
