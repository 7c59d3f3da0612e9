// Heals one incident: claim it, diagnose, pick a strategy, check the failsafes, write the intent
// row, act, verify, undo when it made things worse, write the result row, climb the ladder.
// Every way this can fail is recorded as a failed attempt with its reason; nothing is lost.
import { analyseErrors } from '../analysis/error-analysis.ts'
import { scrubQuery } from '../probes/sql-text.ts'
import { anchor } from './anchor.ts'
import { PROJECT_KEYS, WITHHELD_FROM_PROBES } from '../../../../shared/probe-configs.ts'
import postgres from 'postgres'
import type { ProblemKind, ServiceKind } from '../../../../shared/kinds.ts'
import { describeIssues, resolveThresholds } from '../../../../shared/thresholds.ts'
import { loadThresholds, type ProbeEnvironment, runProbe } from '../health/cycle.ts'
import { type ProbeRegistry, PROBES } from '../probes/registry.ts'
import { connectionSecrets, redact } from '../probes/types.ts'
import { AGENT_DB_URL } from '../db.ts'
import { diagnose, type LatestCheck } from './diagnose.ts'
import {
  ALERT_ON_SUCCESS,
  PAGE_ON_SUCCESS,
  STRATEGIES_BY_PROBLEM,
  type StrategyRegistry,
} from './registry.ts'
import type {
  ActResult,
  HealContext,
  HealService,
  Plan,
  Problem,
  Strategy,
  Verification,
} from './types.ts'
import { HumanNeeded, NotYet } from './types.ts'
import { RECHECK_SECONDS } from './external.ts'

/** The escalation ladder's limits, as vigil.heal_ladder() (their one place) states them. */
export interface Ladder {
  /** A heal is tried at most this many times per incident before the senior is paged. */
  max_attempts: number
  /** The level that pages the senior contact. */
  senior_at: number
}
const HEAL_DEADLINE_MS = 120_000
/** How far back a failing check still explains an open incident whose latest check passed. */
const RECENT_FAILURE_SECONDS = 600
/** How many times an incident waits (NotYet, a passing check) before a person is asked to look. */
export const MAX_WAITS = 10

export interface HealRequest {
  incidentId: number
  /** Set when a human approved a planned heal (vigil.heal_approvals.action_id). */
  approval?: string
}

export interface HealOptions {
  sql: postgres.Sql
  secret(name: string): string | undefined
  projectUrl: string
  fetch?: typeof fetch
  strategies?: StrategyRegistry
  probes?: ProbeRegistry
  /** Who holds the claim; unique per invocation. */
  worker?: string
}

export type HealOutcome =
  | 'claimed_elsewhere'
  | 'human_only'
  | 'nothing_to_do'
  | 'exhausted'
  | 'skipped'
  | 'dry_run'
  | 'awaiting_approval'
  | 'succeeded'
  | 'failed'
  | 'undone'
  /** A strategy will act once its own rules allow (NotYet): asked again then, nobody paged. */
  | 'waiting'

export interface HealReport {
  incident_id: number
  outcome: HealOutcome
  strategy?: string
  action_id?: string
  attempt?: number
  detail: string
}

interface IncidentRow {
  id: number
  service_id: string
  kind: string
  heal_attempts: number
}

interface ServiceRow extends HealService {
  timeout_ms: number
  actions: Record<string, unknown>
}

export async function healIncident(
  request: HealRequest,
  options: HealOptions,
): Promise<HealReport> {
  const { sql } = options
  const worker = options.worker ?? `auto-heal-${crypto.randomUUID()}`
  const [incident] = await sql<IncidentRow[]>`
    select id::int, service_id, kind, heal_attempts from vigil.claim_incident(${request.incidentId}, ${worker})`
  if (!incident) {
    return {
      incident_id: request.incidentId,
      outcome: 'claimed_elsewhere',
      detail: 'the incident is not open or another heal holds it',
    }
  }
  try {
    return await healClaimed(incident, request, options)
  } catch (error) {
    // The audit could not be written (its chain held by another session): nothing may act
    // unrecorded, so nothing acted. Say so where humans look, and page.
    if ((error as { code?: string })?.code !== '55P03') throw error
    const why = 'the heal audit is locked by another session: no heal can be recorded, so none ran'
    await sql`insert into vigil.incident_log (incident_id, level, message) values (${incident.id}, 'error', ${why})`
    await sql`select vigil.escalate(${incident.id}, 3, ${why})`
    return { incident_id: incident.id, outcome: 'skipped', detail: why }
  } finally {
    await sql`select vigil.release_incident(${incident.id}, ${worker})`
  }
}

/**
 * The check an incident is diagnosed from, and the services it depends on that are down. A
 * flapping service (an error spike failing most checks, not all) whose latest check passed is
 * diagnosed from its latest failing one of the last minutes: the strategies that act on a live
 * service probe it again before they do (healthyJustNow), so a recovered one is left alone.
 */
async function checkToDiagnose(
  sql: postgres.Sql,
  incident: Pick<IncidentRow, 'service_id' | 'kind'>,
) {
  const [latest] = await sql<LatestCheck[]>`
    select status, error, measurements from vigil.checks
     where service_id = ${incident.service_id} order by checked_at desc, id desc limit 1`
  const latestPassed = latest?.status === 'healthy' && incident.kind !== 'slow_queries'
  let check: LatestCheck | undefined = latest
  let diagnosedFrom: string | undefined
  if (latestPassed) {
    const [failing] = await sql<(LatestCheck & { at: string })[]>`
      select status, error, measurements, to_char(checked_at, 'HH24:MI:SS') as at from vigil.checks
       where service_id = ${incident.service_id} and status <> 'healthy'
         and checked_at > now() - make_interval(secs => ${RECENT_FAILURE_SECONDS})
       order by checked_at desc, id desc limit 1`
    if (failing) {
      check = failing
      diagnosedFrom = failing.at
    }
  }
  // Topology, not a head count: only this service's own dependencies being down holds it back.
  const upstream = await sql<{ name: string }[]>`
    select s.name from vigil.dependencies(${incident.service_id}) d
      join vigil.services s on s.id = d.service_id
     where s.enabled and s.status = 'down' order by d.depth, s.name`
  return { check, latestPassed, diagnosedFrom, upstream }
}

async function healClaimed(
  incident: IncidentRow,
  request: HealRequest,
  options: HealOptions,
): Promise<HealReport> {
  const { sql } = options
  const [service] = await sql<ServiceRow[]>`
    select id, name, kind, environment, config, timeout_ms, actions from vigil.services where id = ${incident.service_id}`
  if (incident.kind === 'anomaly' || incident.kind === 'forecast') {
    return await analysisIncident(incident, service, sql)
  }
  if (service.kind === 'logs') return await logIncident(incident, service, sql)
  const { check, latestPassed, diagnosedFrom, upstream } = await checkToDiagnose(sql, incident)
  if (diagnosedFrom) {
    await sql`insert into vigil.incident_log (incident_id, level, message)
              values (${incident.id}, 'info', ${`the latest check passed: diagnosed from the failing one of ${diagnosedFrom}`})`
  }
  const report = (
    outcome: HealOutcome,
    detail: string,
    extra: Partial<HealReport> = {},
  ): HealReport => ({
    incident_id: incident.id,
    outcome,
    detail,
    ...extra,
  })

  const diagnosis = diagnose({
    incidentKind: incident.kind,
    serviceKind: service.kind as ServiceKind,
    check: check ?? null,
    upstreamDown: upstream.map((u) => u.name),
  })
  if (diagnosis.humanOnly) {
    const summary = `not healed automatically: ${diagnosis.reason}`
    await sql`select vigil.escalate(${incident.id}, 3, ${summary})`
    await sql`select vigil.escalate(${incident.id}, 4, ${summary})`
    return report('human_only', summary)
  }

  if (diagnosis.advisory) {
    // Its alert went out when it opened; acting on the service's other findings in its name would
    // be a heal nobody asked for, and paging "nothing to heal" would be a false alarm.
    const why = `a ${incident.kind} incident is a report for people: nothing is healed for it`
    await sql`insert into vigil.incident_log (incident_id, level, message) values (${incident.id}, 'info', ${why})`
    return report('nothing_to_do', why)
  }
  if (diagnosis.dropped?.length) {
    const why = `findings dropped from the check: ${diagnosis.dropped.join('; ')}`.slice(0, 2000)
    await sql`insert into vigil.incident_log (incident_id, level, message) values (${incident.id}, 'warning', ${why})`
  }
  if (diagnosis.waitingFor?.length) {
    // Its alerts are folded into the root's incident; it is asked again after the root is healed.
    const why = `${diagnosis.waitingFor.join(', ')} ${
      diagnosis.waitingFor.length === 1 ? 'is' : 'are'
    } down, which ${service.name} depends on: the root is healed first`
    await sql`insert into vigil.incident_log (incident_id, level, message) values (${incident.id}, 'info', ${why})`
    return report('skipped', why)
  }

  // Taken out of service by disable_service: a human brings it back, nothing here restarts it.
  const [disabled] = await sql`
    select 1 from vigil.heal_actions
     where incident_id = ${incident.id} and strategy = 'disable_service' and phase = 'result'
       and outcome = 'succeeded' limit 1`
  if (disabled) {
    const why = `${service.name} was taken out of service (disable_service): a human brings it back`
    return report('human_only', why)
  }

  const [{ ladder }] = await sql<{ ladder: Ladder }[]>`select vigil.heal_ladder() as ladder`
  const attempt = incident.heal_attempts + 1
  // An approval does not lift the ladder's limit: after three attempts the senior has it.
  if (attempt > ladder.max_attempts) {
    await sql`select vigil.escalate(${incident.id}, ${ladder.senior_at}, ${`${ladder.max_attempts} heal attempts did not fix it`})`
    return report('exhausted', `${ladder.max_attempts} attempts made; the senior contact is paged`)
  }

  const registry = options.strategies ?? STRATEGIES_BY_PROBLEM
  const controller = new AbortController()
  const deadline = setTimeout(
    () => controller.abort(new DOMException('heal deadline', 'TimeoutError')),
    HEAL_DEADLINE_MS,
  )
  const target = service.kind === 'postgres' ? connectTarget(service, options) : undefined
  // Sequencing: a strategy that already acted on this incident and did not help goes to the back,
  // so the next one gets its turn (purge the CDN, then roll the deploy back).
  const tried = new Set(
    (await sql<{ strategy: string }[]>`
      select distinct strategy from vigil.heal_actions
       where incident_id = ${incident.id} and phase = 'result' and outcome in ('failed', 'undone', 'refused')`)
      .map((r) => r.strategy),
  )
  const waits: NotYet[] = []
  try {
    for (const problem of diagnosis.problems) {
      const candidates = registry[problem.kind as ProblemKind] ?? []
      const ordered = [
        ...candidates.filter((s) => !tried.has(s.name)),
        ...candidates.filter((s) => tried.has(s.name)),
      ]
      for (const strategy of ordered) {
        const result = await tryStrategy(strategy, problem, {
          ladder,
          incident,
          service,
          attempt,
          request,
          options,
          signal: controller.signal,
          target,
          waits,
        })
        if (result) return result
      }
    }
  } finally {
    clearTimeout(deadline)
    await target?.end({ timeout: 2 }).catch(() => {})
  }
  // The latest check passed while the incident is still open: the service flaps (an error spike
  // failing most checks, not all) or is recovering. Nothing to heal in this moment is no reason to
  // page: it is looked at again after the next check, and resolves when enough checks pass.
  if (waits.length === 0 && latestPassed) {
    waits.push(new NotYet(`the latest check of ${service.name} passed`, RECHECK_SECONDS))
  }
  if (waits.length > 0) {
    // The soonest a strategy may act; the vigil-heal-retry job asks again from then on.
    const soonest = waits.reduce((a, b) => (b.retryInSeconds < a.retryInSeconds ? b : a))
    const seconds = Math.max(1, Math.ceil(soonest.retryInSeconds))
    const [{ waited }] = await sql<{ waited: number }[]>`
      select count(*)::int as waited from vigil.incident_log
       where incident_id = ${incident.id} and message like 'waiting: %'`
    if (waited < MAX_WAITS) {
      const why = `waiting: ${soonest.message} (asked again in ${seconds} s)`
      await sql`insert into vigil.incident_log (incident_id, level, message) values (${incident.id}, 'info', ${why})`
      await sql`update vigil.incidents set heal_not_before = now() + make_interval(secs => ${seconds})
                 where id = ${incident.id}`
      return report('waiting', why)
    }
    // Waiting has a bound: a service that keeps failing checks yet is never there to heal when
    // asked is a person's to look at.
    const why = `asked ${waited} times, each time ${soonest.message}: a human must look`
    await sql`insert into vigil.incident_log (incident_id, level, message) values (${incident.id}, 'warning', ${why})`
    await sql`select vigil.escalate(${incident.id}, 3, ${why})`
    return report('nothing_to_do', why)
  }
  const what = `${
    diagnosis.problems.length
      ? `no strategy had anything to do for ${diagnosis.problems.map((p) => p.kind).join(', ')}`
      : 'no healable problem was diagnosed'
  }${check?.error ? ` (${check.error})` : ''}`
  if (incident.kind === 'slow_queries') {
    // Slow statements no index would help are the application's to look at: reports and the
    // dashboard show them; nobody is paged for them.
    await sql`insert into vigil.incident_log (incident_id, level, message) values (${incident.id}, 'info', ${what})`
    return report('nothing_to_do', what)
  }
  await sql`insert into vigil.incident_log (incident_id, level, message) values (${incident.id}, 'warning', ${what})`
  await escalateWithAnalysis(sql, incident.id, service.id, `${what}: a human must look`)
  return report('nothing_to_do', what)
}

/**
 * Pages on-call about what Vigil will not do itself; where errors are the trouble, the page carries
 * what explains them (top errors with their share, the failing endpoints, the chain upstream, a
 * recent deploy, the fix to try first), kept on the incident as detail.error_analysis.
 */
async function escalateWithAnalysis(
  sql: postgres.Sql,
  incidentId: number,
  serviceId: string,
  summary: string,
): Promise<void> {
  const analysis = await analyseErrors(sql, serviceId)
  if (analysis) {
    await sql`update vigil.incidents
                 set detail = detail || jsonb_build_object('error_analysis', ${
      sql.json(analysis as never)
    }::jsonb)
               where id = ${incidentId}`
  }
  const text = analysis ? `${summary}\n${analysis.text}` : summary
  // Paged at level 3 already (an earlier page of this incident): told, not left in the log.
  const [inc] = await sql<{ level: number }[]>`
    select escalation_level as level from vigil.incidents where id = ${incidentId}`
  if ((inc?.level ?? 0) >= 3) await sql`select vigil.tell(${incidentId}, ${text})`
  else await sql`select vigil.escalate(${incidentId}, 3, ${text})`
}

/**
 * What the analysis found (shared/anomaly, shared/forecast): nothing a strategy heals, and never
 * diagnosed from the service's checks (an anomaly on a service whose own incident is being healed
 * must not restart it twice). An anomaly is shown (dashboard, report, chat at info priority); a
 * forecast crossing its limit within its horizon is a person's to plan for: routed as a warning.
 */
async function analysisIncident(
  incident: IncidentRow,
  service: ServiceRow,
  sql: postgres.Sql,
): Promise<HealReport> {
  if (incident.kind === 'anomaly') {
    const what =
      `an anomaly on ${service.name}: nothing to heal; the dashboard and the report show it`
    await sql`insert into vigil.incident_log (incident_id, level, message) values (${incident.id}, 'info', ${what})`
    return { incident_id: incident.id, outcome: 'nothing_to_do', detail: what }
  }
  const what =
    `a forecast on ${service.name}: nothing to heal yet; a human must plan before it happens`
  await sql`insert into vigil.incident_log (incident_id, level, message) values (${incident.id}, 'warning', ${what})`
  await sql`select vigil.escalate(${incident.id}, 3, ${what})`
  return { incident_id: incident.id, outcome: 'nothing_to_do', detail: what }
}

/**
 * What the log patterns matched (the logs probe): facts for people, never a thing to heal. Suspected
 * corruption above all must reach a person untouched (a restart or a VACUUM could destroy the
 * evidence or the data), so every log incident is escalated at once, in the patterns' own words.
 */
async function logIncident(
  incident: IncidentRow,
  service: ServiceRow,
  sql: postgres.Sql,
): Promise<HealReport> {
  const [latest] = await sql<
    { held: { pattern: string; description: string; action: string }[] | null }[]
  >`
    select measurements -> 'held' as held from vigil.checks
     where service_id = ${incident.service_id} order by checked_at desc, id desc limit 1`
  const held = (latest?.held ?? []).filter((h) => h.action !== 'record')
  const words = held.length
    ? held.map((h) => `${h.pattern.replaceAll('_', ' ')}: ${h.description}`).join(' ')
    : 'a log pattern matched'
  const what =
    `${service.name}'s log: ${words} Vigil never acts on a log pattern: a human must look`
  await sql`insert into vigil.incident_log (incident_id, level, message) values (${incident.id}, 'warning', ${what})`
  await sql`select vigil.escalate(${incident.id}, 3, ${what})`
  return { incident_id: incident.id, outcome: 'nothing_to_do', detail: what }
}

/** The project's own database (as vigil_agent), or the one behind the service's connection_secret. */
function connectTarget(service: ServiceRow, options: HealOptions): postgres.Sql | undefined {
  const secretName = (service.config as { connection_secret?: string }).connection_secret
  const url = options.secret(secretName ?? AGENT_DB_URL)
  if (!url) return undefined
  return postgres(url, {
    max: 2,
    prepare: false,
    connect_timeout: 5,
    onnotice: () => {},
    connection: { application_name: 'vigil-heal' },
  })
}

interface Attempt {
  ladder: Ladder
  incident: IncidentRow
  service: ServiceRow
  attempt: number
  request: HealRequest
  options: HealOptions
  signal: AbortSignal
  target?: postgres.Sql
  /** Strategies that will act later (NotYet), gathered while the others are tried. */
  waits: NotYet[]
}

interface Guard {
  allowed: boolean
  reason?: string
  breaker?: string
  mode?: string
  dry_run?: boolean
  protected_roles?: string[]
  protected_applications?: string[]
}

/** One strategy on one problem. Null when it has nothing to do, so the next may try. */
async function tryStrategy(
  strategy: Strategy,
  problem: Problem,
  a: Attempt,
): Promise<HealReport | null> {
  const { sql } = a.options
  const [{ guard }] = await sql<
    { guard: Guard }[]
  >`select vigil.heal_guard(${a.service.id}, ${strategy.name}) as guard`
  const [policy] = await sql<{ mode: string; config: Record<string, unknown> }[]>`
    select mode::text, config from vigil.heal_policies where environment = ${a.service.environment} and strategy = ${strategy.name}`
  const mode = policy?.mode ?? strategy.defaultMode ?? 'auto'
  const audit = new Audit(sql, a, strategy.name, problem)

  const parsedConfig = strategy.config.safeParse(policy?.config ?? {})
  if (!parsedConfig.success) {
    return await audit.failedBeforeActing(
      `the ${strategy.name} policy config is invalid: ${describeIssues(parsedConfig.error)}`,
    )
  }
  const config = parsedConfig.data
  const ctx = healContext(a, guard)
  const heldBack = mode === 'auto' ? strategy.suggestOnly?.(problem, config) : undefined

  let plan: Plan | null
  try {
    plan = await strategy.plan(problem, ctx, config)
  } catch (error) {
    if (error instanceof NotYet) {
      a.waits.push(error)
      return null
    }
    if (error instanceof HumanNeeded) return await audit.refused(errorText(error, a.options))
    return await audit.failedBeforeActing(`planning failed: ${errorText(error, a.options)}`)
  }
  if (!plan) return null
  // A plan goes to the audit, to approvals and into messages: other sessions' statements keep
  // their shape there, never their literals. One place, for every strategy.
  plan = { ...plan, target: withoutLiterals(plan.target) as Plan['target'] }

  if (!guard.allowed) {
    await audit.write('intent', plan, 'pending')
    await audit.write('result', plan, 'skipped', { detail: guard.reason })
    if (guard.breaker === 'open') {
      await sql`select vigil.escalate(${a.incident.id}, 3, ${`automatic healing is held back: ${guard.reason}`})`
    }
    return audit.report('skipped', guard.reason ?? 'not allowed')
  }
  if (guard.dry_run || mode === 'suggest' || heldBack) {
    await audit.write('intent', plan, 'pending')
    const why = guard.dry_run
      ? 'dry run: decided and recorded, nothing done'
      : heldBack
      ? `suggestion only (${heldBack}): ${plan.reason}`
      : `suggestion only (policy for ${strategy.name}: suggest): ${plan.reason}`
    await audit.write('result', plan, 'dry_run', { detail: why })
    await keepRecommendations(sql, a, plan)
    // Held back by the strategy's own rule, not by a policy people chose: they must hear of it.
    if (heldBack && !guard.dry_run) {
      await escalateWithAnalysis(sql, a.incident.id, a.service.id, why)
    }
    return audit.report('dry_run', why)
  }
  const digest = await planDigest(strategy.name, plan)
  const approval = mode === 'approval' ? await useApproval(sql, a, strategy.name, digest) : null
  if (approval?.used) {
    return audit.report('skipped', `the approval was already used: ${approval.why}`)
  }
  if (mode === 'approval' && !approval?.ok) {
    if (approval?.why) {
      await sql`insert into vigil.incident_log (incident_id, level, message)
                values (${a.incident.id}, 'warning', ${`approval ${a.request.approval} not used: ${approval.why}; asking again`})`
    }
    await audit.write('intent', plan, 'awaiting_approval')
    await sql`
      insert into vigil.heal_approvals (action_id, incident_id, service_id, strategy, plan, plan_digest)
      values (${audit.actionId}, ${a.incident.id}, ${a.service.id}, ${strategy.name}, ${
      sql.json(plan as never)
    }, ${digest})`
    // No links in the ask: it is logged and read by shared channels. notify signs the approve and
    // reject links into the on-call's own SMS and email only.
    const ask = `approval needed to ${plan.action}: ${plan.reason}`
    await sql`select vigil.escalate(${a.incident.id}, 3, ${ask})`
    return audit.report('awaiting_approval', `waiting for a human to approve ${plan.action}`)
  }

  try {
    await audit.write('intent', plan, 'pending')
  } catch (error) {
    // Nothing may act unrecorded: it did not act, so an approval it took is given back.
    if (approval?.ok && (error as { code?: string })?.code === '55P03') {
      await sql`update vigil.heal_approvals set consumed_at = null where action_id = ${a.request
        .approval!}`
    }
    throw error
  }
  await sql`update vigil.incidents set heal_attempts = ${a.attempt} where id = ${a.incident.id}`
  let acted: ActResult | null = null
  let outcome: 'succeeded' | 'failed' | 'undone'
  let verification: Verification | null = null
  let detail: string
  // Made things worse and cannot be undone: no retry can help, a human must look now.
  let worseForGood = false
  try {
    acted = await strategy.act(plan, ctx, config)
    if (acted.recordedOnly) {
      await audit.write('result', plan, 'dry_run', { detail: acted.detail })
      await keepRecommendations(sql, a, plan)
      return audit.report('dry_run', acted.detail, a.attempt)
    }
    verification = await strategy.verify(plan, acted, ctx, config)
    if (verification.worse && strategy.undo) {
      const undone = await strategy.undo(plan, acted, ctx, config)
      outcome = 'undone'
      detail =
        `${acted.detail}; it made things worse (${verification.detail}), so it was undone: ${undone}`
    } else if (verification.worse) {
      outcome = 'failed'
      worseForGood = true
      detail = `${acted.detail}; it made things worse (${verification.detail}), and cannot be ` +
        `undone: ${strategy.irreversible ?? 'no undo'}`
    } else {
      outcome = verification.improved ? 'succeeded' : 'failed'
      detail = `${acted.detail}; ${verification.detail}`
    }
  } catch (error) {
    outcome = 'failed'
    detail = `${acted ? `${acted.detail}; ` : ''}${errorText(error, a.options)}`
  }
  try {
    await audit.write('result', plan, outcome, { detail, after: verification?.after })
  } catch (error) {
    if ((error as { code?: string })?.code !== '55P03') throw error
    // It acted: say so where humans look, though the audit's result row is missing.
    const why =
      `${strategy.name} ${plan.action} ran (${outcome}: ${detail}) but its audit result could not be ` +
      'written: the audit chain is locked by another session'
    await sql`insert into vigil.incident_log (incident_id, level, message) values (${a.incident.id}, 'error', ${why})`
    await sql`select vigil.escalate(${a.incident.id}, 3, ${why})`
    return audit.report(outcome, why, a.attempt)
  }
  const summary =
    `${strategy.name} attempt ${a.attempt} of ${a.ladder.max_attempts} ${outcome}: ${detail}`
  await climbLadder(sql, a, outcome, summary)
  if (worseForGood) await sql`select vigil.escalate(${a.incident.id}, 3, ${summary})`
  if (outcome === 'succeeded' && PAGE_ON_SUCCESS.has(strategy.name)) {
    // It worked, and a human must now act (bring a disabled service back once its leak is fixed).
    await sql`select vigil.escalate(${a.incident.id}, 3, ${`done, and a human must follow up: ${summary}`})`
  } else if (outcome === 'succeeded' && ALERT_ON_SUCCESS.has(strategy.name)) {
    // Worth knowing, not a page: nobody has to act, and no acknowledgement timer starts.
    await sql`select vigil.tell(${a.incident.id}, ${`done, and worth knowing: ${summary}`})`
  }
  return audit.report(outcome, detail, a.attempt)
}

/**
 * Uses the request's approval for this very plan (same incident, strategy and target), once. ok:
 * it held and is consumed now; used: it was consumed before (a repeated call acts on nothing);
 * otherwise why it does not hold, and a human is asked again.
 */
async function useApproval(
  sql: postgres.Sql,
  a: Attempt,
  strategy: string,
  digest: string,
): Promise<{ ok: boolean; used?: boolean; why?: string } | null> {
  if (!a.request.approval) return null
  const [{ why }] = await sql<{ why: string | null }[]>`
    select vigil.consume_approval(${a.request.approval}, ${a.incident.id}, ${strategy}, ${digest}) as why`
  if (why === null) return { ok: true }
  return { ok: false, used: why.startsWith('it was already used'), why }
}

/** SHA-256 over the strategy, the action and its target, keys sorted: what an approval covers. */
export async function planDigest(strategy: string, plan: Plan): Promise<string> {
  const text = canonical({ strategy, action: plan.action, target: plan.target })
  const hash = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))
  return [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, '0')).join('')
}

/**
 * What identifies a target, not how it measures now: a blocker is the same blocker ten seconds
 * later though it has waited ten seconds more. Measurements (durations, counts, sizes, ratios,
 * costs) are left out of the digest, so an approval holds while the same sessions, tables or
 * index are concerned, and only then.
 */
const VOLATILE =
  /(seconds|_ms$|^ms$|ratio|^live$|^dead$|calls|cost|count|total|percent|bytes|size|rows|^at$|_at$|^age$|wait)/i

function canonical(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString())
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>
    return `{${
      Object.keys(o).filter((k) => !VOLATILE.test(k)).sort().map((k) =>
        `${JSON.stringify(k)}:${canonical(o[k])}`
      )
        .join(',')
    }}`
  }
  return JSON.stringify(value ?? null)
}

/** The target with every `query` and `statement` text scrubbed of its literals and comments. */
function withoutLiterals(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutLiterals)
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [
        k,
        (k === 'query' || k === 'statement') && typeof v === 'string'
          ? scrubQuery(v)
          : withoutLiterals(v),
      ]),
    )
  }
  return value
}

/** What a plan recorded without acting leaves to people, kept open until the problem is gone. */
async function keepRecommendations(sql: postgres.Sql, a: Attempt, plan: Plan) {
  if (!plan.recommendations?.length) return
  const items = withoutLiterals(plan.recommendations)
  await sql`select vigil.recommend(${a.service.id}, ${a.incident.id}, ${sql.json(items as never)})`
}

/** Attempt 1 stays silent, 2 logs a warning, 3 pages on-call, a failure after it the senior. */
async function climbLadder(sql: postgres.Sql, a: Attempt, outcome: string, summary: string) {
  if (outcome === 'succeeded') {
    await sql`insert into vigil.incident_log (incident_id, level, message) values (${a.incident.id}, 'info', ${summary})`
    return
  }
  await sql`select vigil.escalate(${a.incident.id}, ${
    Math.min(a.attempt, a.ladder.max_attempts)
  }, ${summary})`
  if (a.attempt >= a.ladder.max_attempts) {
    await sql`select vigil.escalate(${a.incident.id}, ${a.ladder.senior_at}, ${summary})`
  }
}

function healContext(a: Attempt, guard: Guard): HealContext {
  const probeEnv: ProbeEnvironment = {
    probes: a.options.probes ?? PROBES,
    thresholds: resolveThresholds(),
    // A re-probe gets what health-check's probes get: never the database's URL nor Vigil's secrets.
    secret: (name) => (WITHHELD_FROM_PROBES.has(name) ? undefined : a.options.secret(name)),
    projectUrl: a.options.projectUrl,
    db: a.options.sql,
    fetch: a.options.fetch ?? fetch,
  }
  return {
    service: {
      id: a.service.id,
      name: a.service.name,
      kind: a.service.kind,
      environment: a.service.environment,
      config: a.service.config,
    },
    actions: a.service.actions,
    incidentId: a.incident.id,
    db: a.options.sql,
    target: a.target,
    dryRun: guard.dry_run === true,
    signal: a.signal,
    // Heal actions call providers (Cloudflare, Vercel, a webhook…): never the project's secret
    // keys nor the secrets no probe gets either.
    secret: (name) =>
      WITHHELD_FROM_PROBES.has(name) || PROJECT_KEYS.has(name) ? undefined : a.options.secret(name),
    fetch: a.options.fetch ?? fetch,
    protectedRoles: guard.protected_roles ?? [],
    protectedApplications: guard.protected_applications ?? [],
    async reprobe() {
      const thresholds = await loadThresholds(a.options.sql)
      const row = await runProbe(
        {
          id: a.service.id,
          name: a.service.name,
          kind: a.service.kind,
          environment: a.service.environment,
          config: a.service.config,
          timeout_ms: a.service.timeout_ms,
          previous: null,
        },
        { ...probeEnv, thresholds: thresholds.get(a.service.environment) ?? probeEnv.thresholds },
      )
      return {
        status: row.status,
        responseMs: row.response_ms,
        measurements: row.measurements,
        metrics: row.metrics,
        error: row.error ?? undefined,
      }
    },
  }
}

function errorText(error: unknown, options: HealOptions): string {
  const message = error instanceof Error ? error.message : String(error)
  const urls = [options.secret('SUPABASE_DB_URL'), options.secret(AGENT_DB_URL)]
  return redact(message, urls.flatMap(connectionSecrets)).slice(0, 2000)
}

/** The intent and result rows of one action, sharing its id. */
class Audit {
  readonly actionId = crypto.randomUUID()
  #plan: Plan | null = null

  constructor(
    private readonly sql: postgres.Sql,
    private readonly a: Attempt,
    private readonly strategy: string,
    private readonly problem: Problem,
  ) {}

  async write(
    phase: 'intent' | 'result',
    plan: Plan,
    outcome: string,
    extra: { detail?: string; after?: Record<string, unknown> } = {},
  ) {
    this.#plan = plan
    const { sql, a } = this
    const [row] = await sql<{ seq: number; row_hash: string }[]>`
      insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, target, reason,
                                      measurements_before, measurements_after, outcome, detail, actor, dry_run)
      values (${this.actionId}, ${phase}, ${a.incident.id}, ${a.service.id}, ${this.strategy}, ${a.attempt},
              ${
      sql.json((plan.target ?? {}) as never)
    }, ${`${this.problem.reason}. ${plan.reason}`},
              ${sql.json((plan.before ?? {}) as never)}, ${
      extra.after ? sql.json(extra.after as never) : null
    },
              ${outcome}, ${extra.detail ?? null}, ${
      a.request.approval ? 'vigil (approved by a human)' : 'vigil'
    },
              ${outcome === 'dry_run'})
      returning seq::int, row_hash`
    const secret = a.options.secret('VIGIL_AUDIT_SECRET')
    if (secret && secret.length >= 16) await anchor(sql, secret, row.seq, row.row_hash)
  }

  /**
   * A refusal only a human can resolve: recorded as refused (it never acted, so neither the
   * circuit breaker nor the rate limit counts it, and no attempt is used up), and on-call is paged
   * at once: walking the ladder would only delay them, as no retry can help.
   */
  async refused(reason: string): Promise<HealReport> {
    const plan: Plan = { action: 'none', target: {}, reason: 'Vigil may not act', before: {} }
    await this.write('intent', plan, 'pending')
    await this.write('result', plan, 'refused', { detail: reason })
    const summary = `${this.strategy} will not act, a human must: ${reason}`
    await this.sql`insert into vigil.incident_log (incident_id, level, message)
                   values (${this.a.incident.id}, 'warning', ${summary})`
    await this.sql`select vigil.escalate(${this.a.incident.id}, 3, ${summary})`
    return this.report('human_only', summary)
  }

  /**
   * A failure before any plan exists: still an intent and a result row, and a step up the ladder;
   * recorded as refused, since nothing acted (the circuit breaker counts only heals that did).
   */
  async failedBeforeActing(reason: string): Promise<HealReport> {
    const plan: Plan = { action: 'none', target: {}, reason: 'no plan could be made', before: {} }
    await this.write('intent', plan, 'pending')
    await this.write('result', plan, 'refused', { detail: reason })
    await this
      .sql`update vigil.incidents set heal_attempts = ${this.a.attempt} where id = ${this.a.incident.id}`
    await climbLadder(
      this.sql,
      this.a,
      'failed',
      `${this.strategy} attempt ${this.a.attempt} failed: ${reason}`,
    )
    return this.report('failed', reason, this.a.attempt)
  }

  report(outcome: HealOutcome, detail: string, attempt?: number): HealReport {
    return {
      incident_id: this.a.incident.id,
      outcome,
      strategy: this.strategy,
      action_id: this.actionId,
      detail,
      ...(attempt !== undefined && { attempt }),
      ...(this.#plan && { plan: this.#plan }),
    }
  }
}

/** One strategy the engine would try, and what it would do with it now. */
export interface HealPreviewStep {
  problem: string
  strategy: string
  mode: string
  would:
    | 'act'
    | 'ask approval'
    | 'suggest'
    | 'hold back'
    | 'wait'
    | 'nothing to do'
    | 'refuse'
    | 'fail to plan'
  why: string
  plan?: { action: string; reason: string; target: Record<string, unknown> }
}

export interface HealPreview {
  incident_id: number
  service: string
  incident: { kind: string; status: string; heal_attempts: number }
  problems: { kind: string; reason: string }[]
  steps: HealPreviewStep[]
  /** What the engine would do first, in words. */
  next: string
}

/**
 * What healIncident would do for this incident now, without doing it: no claim, no audit row, no
 * log line, no page, nothing acted. Each strategy's plan is made as in a dry run (plans read live
 * state; they never change it). Null for an unknown incident.
 */
export async function previewHeal(
  incidentId: number,
  options: HealOptions,
): Promise<HealPreview | null> {
  const { sql } = options
  const [incident] = await sql<(IncidentRow & { status: string })[]>`
    select id::int, service_id, kind, heal_attempts, status::text as status
      from vigil.incidents where id = ${incidentId}`
  if (!incident) return null
  const [service] = await sql<ServiceRow[]>`
    select id, name, kind, environment, config, timeout_ms, actions from vigil.services where id = ${incident.service_id}`
  const preview = (next: string, extra: Partial<HealPreview> = {}): HealPreview => ({
    incident_id: incident.id,
    service: service.name,
    incident: {
      kind: incident.kind,
      status: incident.status,
      heal_attempts: incident.heal_attempts,
    },
    problems: [],
    steps: [],
    next,
    ...extra,
  })
  if (incident.status !== 'open') return preview(`nothing: the incident is ${incident.status}`)
  if (incident.kind === 'anomaly' || incident.kind === 'forecast' || service.kind === 'logs') {
    return preview(
      `nothing to heal: a ${
        incident.kind === 'anomaly' || incident.kind === 'forecast' ? incident.kind : 'log pattern'
      } is for people to read`,
    )
  }
  const { check, upstream } = await checkToDiagnose(sql, incident)
  const diagnosis = diagnose({
    incidentKind: incident.kind,
    serviceKind: service.kind as ServiceKind,
    check: check ?? null,
    upstreamDown: upstream.map((u) => u.name),
  })
  if (diagnosis.humanOnly) return preview(`page people: ${diagnosis.reason}`)
  const problems = diagnosis.problems.map((p) => ({ kind: p.kind, reason: p.reason }))
  if (diagnosis.advisory) {
    return preview(`nothing: a ${incident.kind} incident is a report for people`)
  }
  if (diagnosis.waitingFor?.length) {
    return preview(
      `wait: ${diagnosis.waitingFor.join(', ')} is down upstream, and is healed first`,
      { problems },
    )
  }
  const [{ ladder }] = await sql<{ ladder: Ladder }[]>`select vigil.heal_ladder() as ladder`
  if (incident.heal_attempts >= ladder.max_attempts) {
    return preview(`page the senior contact: ${ladder.max_attempts} heal attempts were made`, {
      problems,
    })
  }
  const controller = new AbortController()
  const deadline = setTimeout(
    () => controller.abort(new DOMException('preview deadline', 'TimeoutError')),
    HEAL_DEADLINE_MS,
  )
  const target = service.kind === 'postgres' ? connectTarget(service, options) : undefined
  const a: Attempt = {
    ladder,
    incident,
    service,
    attempt: incident.heal_attempts + 1,
    request: { incidentId },
    options,
    signal: controller.signal,
    target,
    waits: [],
  }
  const steps: HealPreviewStep[] = []
  try {
    for (const problem of diagnosis.problems) {
      for (
        const strategy
          of (options.strategies ?? STRATEGIES_BY_PROBLEM)[problem.kind as ProblemKind] ?? []
      ) {
        const [{ guard }] = await sql<
          { guard: Guard }[]
        >`select vigil.heal_guard(${service.id}, ${strategy.name}) as guard`
        const [policy] = await sql<{ mode: string; config: Record<string, unknown> }[]>`
          select mode::text, config from vigil.heal_policies where environment = ${service.environment} and strategy = ${strategy.name}`
        const mode = policy?.mode ?? strategy.defaultMode ?? 'auto'
        const step = (would: HealPreviewStep['would'], why: string, plan?: Plan) =>
          steps.push({
            problem: problem.kind,
            strategy: strategy.name,
            mode,
            would,
            why,
            ...(plan
              ? {
                plan: {
                  action: plan.action,
                  reason: plan.reason,
                  target: withoutLiterals(plan.target) as Record<string, unknown>,
                },
              }
              : {}),
          })
        const config = strategy.config.safeParse(policy?.config ?? {})
        if (!config.success) {
          step(
            'fail to plan',
            `the ${strategy.name} policy config is invalid: ${describeIssues(config.error)}`,
          )
          continue
        }
        let plan: Plan | null
        try {
          plan = await strategy.plan(
            problem,
            healContext(a, { ...guard, dry_run: true }),
            config.data,
          )
        } catch (error) {
          if (error instanceof NotYet) step('wait', error.message)
          else if (error instanceof HumanNeeded) step('refuse', errorText(error, options))
          else step('fail to plan', errorText(error, options))
          continue
        }
        if (!plan) {
          step('nothing to do', 'the live state shows nothing for it to do')
          continue
        }
        const heldBack = mode === 'auto' ? strategy.suggestOnly?.(problem, config.data) : undefined
        if (!guard.allowed) step('hold back', guard.reason ?? 'not allowed', plan)
        else if (guard.dry_run) step('suggest', 'the environment is in dry run', plan)
        else if (mode === 'suggest') {
          step('suggest', `the ${strategy.name} policy says suggest`, plan)
        } else if (heldBack) step('suggest', heldBack, plan)
        else if (mode === 'approval') {
          step('ask approval', `the ${strategy.name} policy asks a human first`, plan)
        } else step('act', plan.reason, plan)
      }
    }
  } finally {
    clearTimeout(deadline)
    await target?.end({ timeout: 2 }).catch(() => {})
  }
  const first = steps.find((st) =>
    ['act', 'ask approval', 'suggest', 'hold back'].includes(st.would)
  )
  const next = first
    ? `${first.would} with ${first.strategy}: ${first.plan?.reason ?? first.why}`
    : steps.some((st) => st.would === 'wait')
    ? `wait: ${steps.find((st) => st.would === 'wait')!.why}`
    : `page on-call: no strategy has anything to do${check?.error ? ` (${check.error})` : ''}`
  return preview(next, { problems, steps })
}
