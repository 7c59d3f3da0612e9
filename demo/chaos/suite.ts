// npm run chaos:suite [-- --interval <s>] [--soak <min>] [--faults a,b] [--fault-timeout <min>]
// Every fault on a fresh stack with its demo, one after another, each measured from the moment it
// is made: time to detection (→ the incident row), what healed it and how, time to recovery (→
// resolved), the alerts that reached the recording stand-ins; then a healthy soak in which any
// incident or page is a false alert. Cycles are driven every --interval seconds (pg_cron's minute
// still runs too). Writes bench/results/chaos.json and the README's chaos table; failures are
// shown as failures.
import { join } from 'node:path'
import postgres from 'postgres'
import { ROOT } from '../../devstack/config.ts'
import { writeReadmeSection } from '../../devstack/bench.ts'
import { DEMO_SERVICE_NAMES } from '../seed.ts'
import { freeDemoPorts } from '../main.ts'
import {
  freePort,
  privateStateDir,
  type Stack,
  type StackOptions,
  startStack,
} from '../../devstack/stack.ts'
import { faultNamed, FAULTS } from './registry.ts'
import { targetOf } from './target.ts'
import type { ChaosTarget, Fault, FaultPolicy } from './types.ts'

export interface SuiteOptions {
  intervalS: number
  soakMin: number
  faults: Fault[]
  faultTimeoutMin: number
  log: (line: string) => void
}

export interface FaultResult {
  fault: string
  summary: string
  expected: Fault['expects']
  detected: boolean
  service: string | null
  incident_kind: string | null
  /**
   * Fault made → detection: the incident row, or the dead man's switch telling a person when
   * that came first (database_down: the incident can only be written once the database is back).
   */
  ttd_s: number | null
  /** What detected it first: 'incident' or 'dead man's switch'. */
  detected_by: string | null
  /**
   * A gradual fault (Fault.onset): fault made → it crossed the line Vigil is asked to see, and
   * that moment → incident row. Null for the others, which are there when made.
   */
  onset_s: number | null
  ttd_from_onset_s: number | null
  /** Detection in check intervals: from the onset for a gradual fault. */
  ttd_intervals: number | null
  /** The first heal that acted, and how it ended. */
  heal: { strategy: string; outcome: string; after_detection_s: number } | null
  healed_as_expected: boolean
  /** Fault made → incident resolved. */
  ttr_s: number | null
  /** Requests the recording stand-ins took while it lasted, by provider. */
  alerts: Record<string, number>
  /** What Vigil queued to people while it lasted (any incident's): event, service and subject. */
  alerts_queued: string[]
  /** People paged (alerts queued for the incident that were not notices of a heal). */
  paged: boolean
  verdict: string
}

export interface SuiteResult {
  date: string
  interval_s: number
  /** The heal policies the suite set for its run (the faults' expects.policy), by strategy. */
  policies: Record<string, { mode: string; config: Record<string, unknown>; why: string }>
  soak: { minutes: number; incidents: number; alerts: number; pages: string[] }
  faults: FaultResult[]
  goals: {
    detected_within_2_intervals: string
    healed_within_1_interval_after_detection: string
    heal_success_pct: number | null
    escalated_with_alert: string
    false_alerts_in_soak: number
    audit_chain_verifies: boolean
  }
  passed: boolean
}

const DEMO_SERVICES: string[] = [...DEMO_SERVICE_NAMES]

/** The stack the suite drives: in this process (the suite) or another (a test of npm test). */
export interface SuiteStack {
  apiUrl: string
  serviceRoleKey: string
  dbUrl: string
  /** What the recording stand-ins took since a moment, by provider. */
  recorded(since: Date): Promise<{ provider: string }[]>
  /** When the dead man's switch first turned down since a moment (it tells a person), or null. */
  deadmanDown(since: Date): Date | null
}

export function suiteStackOf(stack: Stack): SuiteStack {
  return {
    apiUrl: stack.apiUrl,
    serviceRoleKey: stack.keys.service_role,
    dbUrl: stack.dbUrl,
    // The dead man's switch turning down is Healthchecks.io telling a person: an alert too.
    recorded: (since) =>
      Promise.resolve([
        ...stack.providers.requests({ since }),
        ...stack.providers.deadman().events
          .filter((e) => e.status === 'down' && e.at >= since)
          .map(() => ({ provider: 'deadman' })),
      ]),
    deadmanDown: (since) =>
      stack.providers.deadman().events.find((e) => e.status === 'down' && e.at >= since)?.at ??
        null,
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Runs health-check cycles every intervalS until stopped: faster than pg_cron's minute. */
function driveCycles(stack: SuiteStack, intervalS: number, log: (line: string) => void) {
  let stopped = false
  const done = (async () => {
    while (!stopped) {
      const started = Date.now()
      try {
        const res = await fetch(`${stack.apiUrl}/functions/v1/health-check`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${stack.serviceRoleKey}`,
            'content-type': 'application/json',
          },
          body: JSON.stringify({ trigger: 'manual' }),
          signal: AbortSignal.timeout(60_000),
        })
        await res.body?.cancel()
        if (!res.ok) log(`a driven cycle answered ${res.status}`)
      } catch (error) {
        log(`a driven cycle failed: ${(error as Error).message}`)
      }
      const left = intervalS * 1000 - (Date.now() - started)
      for (let waited = 0; waited < left && !stopped; waited += 200) await sleep(200)
    }
  })()
  return async () => {
    stopped = true
    await done
  }
}

async function providerCounts(stack: SuiteStack, since: Date): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const r of await stack.recorded(since)) out[r.provider] = (out[r.provider] ?? 0) + 1
  return out
}

/** The database stopped, stopping or starting (database_down): a question to ask again later. */
function unreachable(error: unknown): boolean {
  const code = (error as { code?: string })?.code ?? ''
  return ['ECONNREFUSED', 'ECONNRESET', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECT_TIMEOUT']
    .includes(code) || /^57P0[1-3]$/.test(code)
}

/** Until every demo service is healthy and none has an open incident (or the time is up). */
async function settle(sql: postgres.Sql, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    // The database may be down (database_down) or just back: then it is not settled yet.
    const [r] = await sql<{ unhealthy: number; open: number }[]>`
      select (select count(*)::int from vigil.services
               where name = any(${DEMO_SERVICES}) and status <> 'healthy') as unhealthy,
             (select count(*)::int from vigil.incidents i join vigil.services s on s.id = i.service_id
               where s.name = any(${DEMO_SERVICES}) and i.status = 'open') as open`
      .catch((error) => {
        if (!unreachable(error)) throw error
        return [{ unhealthy: -1, open: -1 }]
      })
    if (r.unhealthy === 0 && r.open === 0) return true
    await sleep(1000)
  }
  return false
}

async function measure(
  sql: postgres.Sql,
  stack: SuiteStack,
  target: ChaosTarget,
  fault: Fault,
  o: SuiteOptions,
): Promise<FaultResult> {
  const t0 = new Date()
  const result: FaultResult = {
    fault: fault.name,
    summary: fault.summary,
    expected: fault.expects,
    detected: false,
    service: null,
    incident_kind: null,
    ttd_s: null,
    detected_by: null,
    onset_s: null,
    ttd_from_onset_s: null,
    ttd_intervals: null,
    heal: null,
    healed_as_expected: false,
    ttr_s: null,
    alerts: {},
    alerts_queued: [],
    paged: false,
    verdict: '',
  }
  o.log(`${fault.name}: ${await fault.inject(target)}`)
  const deadline = t0.getTime() + o.faultTimeoutMin * 60_000
  let incidentId: number | null = null
  // The demo's services, and the one the fault names when Vigil's own (database_down).
  const services = fault.expects.service ? [...DEMO_SERVICES, fault.expects.service] : DEMO_SERVICES
  // When a gradual fault crossed its line (Fault.onset); the others are there when made.
  let onsetAt: Date | null = fault.onset ? null : t0
  const since = (at: Date) => round((at.getTime() - t0.getTime()) / 1000)
  const detected = (at: Date, by: string) => {
    result.detected = true
    result.detected_by = by
    result.ttd_s = since(at)
    // Seen before the suite saw it cross (between two of its looks): from the crossing.
    const from = onsetAt ?? at
    if (fault.onset) {
      result.onset_s ??= since(from)
      result.ttd_from_onset_s = round((at.getTime() - from.getTime()) / 1000)
    }
    result.ttd_intervals = round((result.ttd_from_onset_s ?? result.ttd_s) / o.intervalS)
    o.log(`  detected after ${result.ttd_s} s by the ${by}`)
  }
  while (Date.now() < deadline) {
    // Out of band first: the dead man's switch tells a person while Vigil cannot write anything,
    // and while the database is down the queries below fail before they could look.
    if (!result.detected) {
      const down = stack.deadmanDown(t0)
      if (down) detected(down, "dead man's switch")
    }
    try {
      if (onsetAt === null && await fault.onset!(target, t0).catch(() => false)) {
        onsetAt = new Date()
        result.onset_s = round((onsetAt.getTime() - t0.getTime()) / 1000)
        o.log(`  crossed its line after ${result.onset_s} s`)
      }
      if (incidentId === null) {
        const [inc] = await sql<{ id: number; service: string; kind: string; opened_at: Date }[]>`
          select i.id::int, s.name as service, i.kind, i.opened_at from vigil.incidents i
            join vigil.services s on s.id = i.service_id
           where s.name = any(${services}) and i.opened_at >= ${t0} and i.folded_into is null
             -- The analysis' anomalies and forecasts are observations beside the fault, not its
             -- detection: an anomaly on a neighbour must not stand in for the fault's incident.
             and i.kind not in ('anomaly', 'forecast')
           order by i.opened_at limit 1`
        if (inc) {
          incidentId = inc.id
          result.service = inc.service
          result.incident_kind = inc.kind
          if (!result.detected) detected(inc.opened_at, 'incident')
          o.log(`  incident after ${since(inc.opened_at)} s: ${inc.kind} on ${inc.service}`)
        }
      }
      if (incidentId !== null) {
        const [state] = await sql<
          {
            resolved_at: Date | null
            opened_at: Date
            strategy: string | null
            outcome: string | null
            at: Date | null
          }[]
        >`
          select i.resolved_at, i.opened_at, h.strategy, h.outcome::text, h.created_at as at
            from vigil.incidents i
            left join lateral (select * from vigil.heal_actions h where h.incident_id = i.id and h.phase = 'result'
                                and h.outcome in ('succeeded', 'failed', 'undone')
                                order by h.seq limit 1) h on true
           where i.id = ${incidentId}`
        if (state.strategy && !result.heal) {
          result.heal = {
            strategy: state.strategy,
            outcome: state.outcome!,
            after_detection_s: round((state.at!.getTime() - state.opened_at.getTime()) / 1000),
          }
          o.log(
            `  ${state.strategy} ${state.outcome} ${result.heal.after_detection_s} s after detection`,
          )
        }
        if (state.resolved_at) {
          result.ttr_s = round((state.resolved_at.getTime() - t0.getTime()) / 1000)
          o.log(`  resolved after ${result.ttr_s} s`)
          break
        }
      }
    } catch (error) {
      // database_down stops the database these questions go to: ask again until it is back.
      if (!unreachable(error)) throw error
    }
    await sleep(1000)
  }
  result.alerts = await providerCounts(stack, t0)
  result.alerts_queued = (await sql<{ line: string }[]>`
    select format('%s %s: %s', a.event, coalesce(s.name, '-'), a.subject) as line
      from vigil.alerts a
      left join vigil.incidents i on i.id = a.incident_id
      left join vigil.services s on s.id = i.service_id
     where a.created_at >= ${t0} order by a.id`.catch(() => [])).map((r) => r.line)
  if (incidentId !== null) {
    const [p] = await sql<{ n: number }[]>`
      select count(*)::int as n from vigil.alerts where incident_id = ${incidentId}
         and event in ('page', 'reminder') and status in ('sent', 'sending', 'pending', 'failed')`
    result.paged = p.n > 0
  }
  result.healed_as_expected = result.heal !== null && result.heal.outcome === 'succeeded' &&
    result.heal.strategy === fault.expects.heal
  result.verdict = !result.detected
    ? `not detected within ${o.faultTimeoutMin} min`
    : fault.expects.heal === null
    ? (result.paged ? 'escalated: people paged' : 'detected, but nobody was paged')
    : result.healed_as_expected
    ? (result.ttr_s !== null ? 'healed' : 'healed, not yet resolved')
    : result.heal
    ? `${result.heal.strategy} ${result.heal.outcome} (expected ${fault.expects.heal})`
    : (result.paged ? 'not healed; escalated' : 'not healed')
  o.log(`  → ${result.verdict}`)
  await fault.clear(target).catch((e) => o.log(`  clear failed: ${(e as Error).message}`))
  return result
}

const round = (n: number) => Math.round(n * 10) / 10

/** Sets these prod policies; returns what puts back the rows that were there before. */
async function setPolicies(
  sql: postgres.Sql,
  policies: FaultPolicy[],
): Promise<() => Promise<void>> {
  const before = await sql<{ strategy: string; mode: string; config: postgres.JSONValue }[]>`
    select strategy, mode::text, config from vigil.heal_policies
     where environment = 'prod' and strategy = any(${policies.map((p) => p.strategy)}::text[])`
  for (const p of policies) {
    await sql`
      insert into vigil.heal_policies (environment, strategy, mode, config)
      values ('prod', ${p.strategy}, ${p.mode}::vigil.heal_mode, ${
      sql.json(p.config as postgres.JSONValue)
    })
      on conflict (environment, strategy) do update set mode = excluded.mode, config = excluded.config`
  }
  return async () => {
    for (const p of policies) {
      const was = before.find((b) => b.strategy === p.strategy)
      if (was) {
        await sql`update vigil.heal_policies set mode = ${was.mode}::vigil.heal_mode, config = ${
          sql.json(was.config)
        }
                   where environment = 'prod' and strategy = ${p.strategy}`
      } else {
        await sql`delete from vigil.heal_policies where environment = 'prod' and strategy = ${p.strategy}`
      }
    }
  }
}

export async function runSuite(stack: SuiteStack, target: ChaosTarget, o: SuiteOptions) {
  const sql = postgres(stack.dbUrl, { max: 2, onnotice: () => {} })
  // People to tell: the team's Slack and the on-call's email, on the recording stand-ins.
  const contacts = await sql<{ id: string }[]>`
    insert into vigil.contacts (name, role, channel, address, secret_name) values
      ('Chaos team', 'team', 'slack', '#chaos', 'VIGIL_LOCAL_SLACK_WEBHOOK_URL'),
      ('Chaos on-call', 'on_call', 'email', 'oncall@example.org', null)
    returning id`
  // The policies the faults need to be healed within the suite's minutes (put back after).
  const policies = Object.fromEntries(
    o.faults.flatMap((f) =>
      f.expects.policy ? [[f.expects.policy.strategy, f.expects.policy]] : []
    ),
  )
  const restorePolicies = await setPolicies(sql, Object.values(policies))
  const stop = driveCycles(stack, o.intervalS, o.log)
  const results: FaultResult[] = []
  try {
    o.log('waiting for the demo to be healthy')
    if (!await settle(sql, 5 * 60_000)) throw new Error('the demo did not become healthy')
    for (const fault of o.faults) {
      results.push(await measure(sql, stack, target, fault, o))
      if (!await settle(sql, 5 * 60_000)) o.log('  the demo did not settle after clearing')
    }
    o.log(`soak: ${o.soakMin} min with no fault`)
    const soakStart = new Date()
    await sleep(o.soakMin * 60_000)
    const [soak] = await sql<{ incidents: number; pages: string[] }[]>`
      select (select count(*)::int from vigil.incidents where opened_at >= ${soakStart}) as incidents,
             coalesce((select array_agg(subject) from vigil.alerts
                        where created_at >= ${soakStart} and event in ('page', 'reminder', 'notice')), '{}') as pages`
    const [audit] = await sql<
      { ok: boolean }[]
    >`select intact as ok from vigil.verify_heal_audit()`
    const healing = results.filter((r) => r.expected.heal !== null)
    const succeeded = healing.filter((r) => r.healed_as_expected).length
    const soakAlerts = await providerCounts(stack, soakStart)
    const soakAlertCount = Object.values(soakAlerts).reduce((a, b) => a + b, 0)
    const within2 = results.filter((r) => r.ttd_intervals !== null && r.ttd_intervals <= 2).length
    const within1 = healing.filter((r) =>
      r.heal && r.heal.outcome === 'succeeded' && r.heal.after_detection_s <= o.intervalS
    ).length
    const people = results.filter((r) =>
      r.expected.heal === null
    )
    const suite: SuiteResult = {
      date: new Date().toISOString(),
      interval_s: o.intervalS,
      policies: Object.fromEntries(
        Object.values(policies).map((
          p,
        ) => [p.strategy, { mode: p.mode, config: p.config, why: p.why }]),
      ),
      soak: {
        minutes: o.soakMin,
        incidents: soak.incidents,
        alerts: soakAlertCount,
        pages: soak.pages,
      },
      faults: results,
      goals: {
        detected_within_2_intervals: `${within2} of ${results.length}`,
        healed_within_1_interval_after_detection: `${within1} of ${healing.length}`,
        heal_success_pct: healing.length ? round((100 * succeeded) / healing.length) : null,
        escalated_with_alert: `${people.filter((r) => r.paged).length} of ${people.length}`,
        false_alerts_in_soak: soak.incidents + soak.pages.length,
        audit_chain_verifies: audit?.ok ?? false,
      },
      passed: false,
    }
    suite.passed = within2 === results.length && within1 === healing.length &&
      (suite.goals.heal_success_pct ?? 100) >= 95 &&
      people.every((r) => r.paged) && suite.goals.false_alerts_in_soak === 0 &&
      suite.goals.audit_chain_verifies
    return suite
  } finally {
    await stop()
    await sql`delete from vigil.contacts where id = any(${contacts.map((c) => c.id)}::uuid[])`
    await restorePolicies()
    await sql.end()
  }
}

function options(args: string[]): SuiteOptions {
  const value = (name: string) => {
    const i = args.indexOf(`--${name}`)
    return i >= 0 ? args[i + 1] : undefined
  }
  const number = (name: string, fallback: number, min: number, max: number) => {
    const raw = value(name)
    if (raw === undefined) return fallback
    const n = Number(raw)
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new Error(`--${name} must be a number from ${min} to ${max}, got "${raw}"`)
    }
    return n
  }
  const names = value('faults')?.split(',').map((s) => s.trim()).filter(Boolean)
  const unknown = (names ?? []).filter((n) => !faultNamed(n))
  if (unknown.length) {
    throw new Error(
      `unknown fault(s) ${unknown.join(', ')}; the faults are ${
        FAULTS.map((f) => f.name).join(', ')
      }`,
    )
  }
  return {
    intervalS: number('interval', 15, 5, 60),
    soakMin: number('soak', 10, 0, 120),
    faultTimeoutMin: number('fault-timeout', 6, 1, 30),
    faults: names ? names.map((n) => faultNamed(n)!) : [...FAULTS],
    log: (line) => console.log(line),
  }
}

const START = '<!-- chaos:start -->'
const END = '<!-- chaos:end -->'

export function chaosTable(r: SuiteResult): string {
  const s = (v: number | null) => (v === null ? '—' : `${v} s`)
  return [
    `Driven every ${r.interval_s} s, the dead man's switch allowing ${
      2 * r.interval_s
    } s without a ping; ${r.date.slice(0, 16).replace('T', ' ')} UTC.`,
    ...(Object.keys(r.policies ?? {}).length
      ? [
        '',
        `Heal policies set for the run: ${
          Object.entries(r.policies).map(([k, p]) => `${k} ${JSON.stringify(p.config)} (${p.why})`)
            .join('; ')
        }.`,
      ]
      : []),
    '',
    '| fault | detected (intervals) | heal | after detection | recovered | alerts | verdict |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...r.faults.map((f) =>
      `| ${f.fault} | ${
        !f.detected
          ? 'no'
          : f.ttd_from_onset_s !== null
          ? `${s(f.ttd_from_onset_s)} after its onset at ${s(f.onset_s)} (${f.ttd_intervals})`
          : `${s(f.ttd_s)} (${f.ttd_intervals})`
      }${f.detected_by && f.detected_by !== 'incident' ? ` by the ${f.detected_by}` : ''} | ${
        f.heal ? `${f.heal.strategy}: ${f.heal.outcome}` : '—'
      } | ${f.heal ? `${f.heal.after_detection_s} s` : '—'} | ${s(f.ttr_s)} | ${
        Object.entries(f.alerts).map(([k, v]) => `${k} ${v}`).join(', ') || '—'
      } | ${f.verdict} |`
    ),
    '',
    ...(r.faults.some((f) => f.onset_s !== null)
      ? [
        'A gradual fault is detected from its onset, when it crosses the line Vigil is asked to see: ' +
        "runaway_query's statement reaching long_running_seconds, the end of the grace " +
        "dead_tuple_bloat's dead tuples get for autovacuum, memory_leak's memory passing the " +
        'warning line.',
        '',
      ]
      : []),
    `Soak: ${r.soak.minutes} min, ${r.goals.false_alerts_in_soak} false alerts. Detected within 2 intervals: ${r.goals.detected_within_2_intervals}; healed within 1 interval of detection: ${r.goals.healed_within_1_interval_after_detection}; heal success ${
      r.goals.heal_success_pct ?? '—'
    } %; escalated with an alert: ${r.goals.escalated_with_alert}; audit chain verifies: ${
      r.goals.audit_chain_verifies ? 'yes' : 'no'
    }. Goals ${r.passed ? 'met' : 'NOT met'}.`,
  ].join('\n')
}

/** A fresh private stack with the demo, every part on a free port (npm start may run meanwhile). */
export function startChaosStack(
  stateDir: string,
  extra: Pick<StackOptions, 'deadmanAllowanceS'> = {},
): Promise<Stack> {
  return startStack({
    ...extra,
    stateDir,
    dbPort: freePort(),
    apiPort: freePort(),
    ephemeral: true,
    demo: true,
    demoPorts: freeDemoPorts(),
  })
}

export async function runChaosSuite(args: string[]): Promise<void> {
  const o = options(args)
  const stateDir = await privateStateDir('vigil-chaos-')
  // The dead man's switch set for the pings the suite drives: a period of one interval, and as
  // much again in grace (Healthchecks.io's period and grace, set to the cadence it is pinged at).
  const stack = await startChaosStack(stateDir, { deadmanAllowanceS: 2 * o.intervalS })
  try {
    const target = targetOf(stack.dbUrl, stack.demo!, stateDir)
    const result = await runSuite(suiteStackOf(stack), target, o)
    await Deno.writeTextFile(
      join(ROOT, 'bench', 'results', 'chaos.json'),
      JSON.stringify(result, null, 2) + '\n',
    )
    await writeReadmeSection(START, END, chaosTable(result))
    console.log(`\n${chaosTable(result)}`)
  } finally {
    for (const f of FAULTS) {
      await f.clear(targetOf(stack.dbUrl, stack.demo!, stateDir)).catch(() => {})
    }
    await stack.stop()
    await Deno.remove(stateDir, { recursive: true }).catch(() => {})
  }
}
