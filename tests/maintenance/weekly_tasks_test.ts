// error_patterns, performance_report and statement_benchmark on the real local database, as
// vigil_agent, over planted history: two weeks of check errors, incidents, heals and alerts; daily
// statement snapshots with a regression, a counter reset and a new heavy statement; two months of
// snapshots for the benchmark. Each scenario runs in one transaction that is rolled back, with the
// tables it reads locked against the stack's own writers, so the numbers are exactly the planted
// ones and nothing is left behind.
import assert from 'node:assert/strict'
import type postgres from 'postgres'
import { errorPatterns } from '../../supabase/functions/_shared/maintenance/tasks/error-patterns.ts'
import { performanceReport } from '../../supabase/functions/_shared/maintenance/tasks/performance-report.ts'
import { statementBenchmark } from '../../supabase/functions/_shared/maintenance/tasks/statement-benchmark.ts'
import { coveredDays, trendOf } from '../../supabase/functions/_shared/maintenance/history.ts'
import {
  type MaintenanceTask,
  TaskError,
} from '../../supabase/functions/_shared/maintenance/types.ts'
import { testSql } from '../_env.ts'

type Tx = postgres.TransactionSql
type Env = Record<string, string>
type Finding = Record<string, unknown> & { kind: string }

const stamp = Date.now().toString(36)
const API = `wk-api-${stamp}`
const DB = `wk-db-${stamp}`
const PG = `wk-pg-${stamp}`
const DOWN = `wk_${stamp}_down`
const SLOW = `wk_${stamp}_slow`

class Rollback extends Error {}

/** Runs `work` in a transaction that is always rolled back. */
async function rolledBack(work: (tx: Tx) => Promise<void>): Promise<void> {
  const sql = testSql(1)
  try {
    await sql.begin(async (tx) => {
      await work(tx)
      throw new Rollback()
    }).catch((e) => {
      if (!(e instanceof Rollback)) throw e
    })
  } finally {
    await sql.end()
  }
}

/** The task as the maintenance function runs it: logged in as vigil_agent. */
async function runAs(tx: Tx, task: MaintenanceTask, env: Env = {}) {
  await tx`set local role vigil_agent`
  try {
    return await task.run({
      sql: tx as unknown as postgres.Sql,
      env: (name) => env[name],
      signal: AbortSignal.timeout(10_000),
    })
  } finally {
    await tx`reset role`
  }
}

/** The error a task throws inside a savepoint (rolled back: the transaction goes on). */
async function failureOf(tx: Tx, prepare: string, task: MaintenanceTask): Promise<unknown> {
  class Caught extends Error {
    constructor(readonly error: unknown) {
      super('caught')
    }
  }
  return await tx.savepoint(async (sp) => {
    await sp.unsafe(prepare)
    await sp`set local role vigil_agent`
    const error = await task.run({
      sql: sp as unknown as postgres.Sql,
      env: () => undefined,
      signal: AbortSignal.timeout(10_000),
    }).then(() => null, (e) => e)
    throw new Caught(error)
  }).catch((e) => e instanceof Caught ? e.error : Promise.reject(e))
}

/** The stack's own writers wait until the rollback; what the window held before is set aside. */
async function isolateChecks(tx: Tx) {
  await tx`lock table vigil.checks, vigil.check_rollups, vigil.incidents, vigil.metrics in share mode`
  await tx`set local session_replication_role = replica`
  await tx`delete from vigil.checks where checked_at >= now() - interval '15 days'`
  await tx`delete from vigil.check_rollups where bucket >= now() - interval '15 days'`
  await tx`update vigil.incidents set opened_at = opened_at - interval '60 days'
            where opened_at >= now() - interval '15 days'`
  await tx`set local session_replication_role = origin`
  await closeOthersRecommendations(tx)
}

/**
 * Recommendations of these kinds that other tests' runs opened on the shared stack are closed for
 * this transaction: the task would resolve them, and the counts this test checks are its own.
 */
async function closeOthersRecommendations(tx: Tx) {
  await tx`update vigil.recommendations set status = 'resolved', resolved_at = now()
            where status = 'open' and kind in ('recurring_incident', 'query_regression')`
}

async function isolateSnapshots(tx: Tx) {
  await tx`lock table vigil.statement_snapshots in share mode`
  await tx`delete from vigil.statement_snapshots`
  await closeOthersRecommendations(tx)
}

/** This test's services; the others are disabled until the rollback (they have their own recommendations). */
async function services(tx: Tx) {
  await tx`set local session_replication_role = replica`
  await tx`update vigil.services set enabled = false where enabled`
  await tx`set local session_replication_role = origin`
  await tx`
    insert into vigil.services (name, kind, environment, config, heal_enabled) values
      (${API}, 'http', 'dev', ${tx.json({ url: 'https://wk-api.example.com' })}, false),
      (${DB}, 'http', 'dev', ${tx.json({ url: 'https://wk-db.example.com' })}, false),
      (${PG}, 'postgres', 'dev', '{}', false)`
}

/** Checks as the probes write them, without the state machine reacting to history; rollups alike. */
type CheckRow = [
  service: string,
  ago: string,
  status: string,
  response: number | null,
  error: string | null,
]
const check = (...row: CheckRow): CheckRow => row

async function plantChecks(tx: Tx, rows: CheckRow[]) {
  await tx`set local session_replication_role = replica`
  for (const [service, ago, status, response, error] of rows) {
    await tx`
      insert into vigil.checks (service_id, checked_at, status, response_ms, error)
      select id, now() - ${ago}::interval, ${status}::vigil.check_status, ${response}, ${error}
        from vigil.services where name = ${service}`
  }
  await tx`
    insert into vigil.check_rollups
      (service_id, bucket, checks, healthy, degraded, down, response_ms_sum, response_ms_count, response_ms_max)
    select c.service_id, date_trunc('hour', c.checked_at), count(*),
           count(*) filter (where c.status = 'healthy'), count(*) filter (where c.status = 'degraded'),
           count(*) filter (where c.status = 'down'), coalesce(sum(c.response_ms), 0), count(c.response_ms),
           max(c.response_ms)
      from vigil.checks c join vigil.services s on s.id = c.service_id
     where s.name in (${API}, ${DB}, ${PG})
     group by 1, 2`
  await tx`set local session_replication_role = origin`
}

Deno.test('trends and coverage: the rules behind the verdicts', () => {
  assert.deepEqual(
    [[6, 2], [3, 3], [2, 0], [1, 4], [0, 3], [0, 0], [11, 10], [13, 10]].map(([n, b]) =>
      trendOf(n, b, 20)
    ),
    ['rising', 'steady', 'new', 'falling', 'gone', 'steady', 'steady', 'rising'],
  )
  // Snapshots on days 0, 1, 2 and 9: (0,9] spans 9 days, of which 7 are in (2, 9].
  const days = ['2026-01-01', '2026-01-02', '2026-01-03', '2026-01-10']
  const n = (iso: string) => Date.parse(`${iso}T00:00:00Z`) / 86_400_000
  assert.equal(coveredDays(days, n('2026-01-03'), n('2026-01-10')), 7)
  assert.equal(coveredDays(days, n('2025-12-27'), n('2026-01-03')), 2)
  assert.equal(coveredDays(['2026-01-10'], n('2026-01-03'), n('2026-01-10')), 0)
})

Deno.test('error_patterns: planted errors become patterns with trends; a recurring incident is a recommendation, kept once, resolved when it stops', async () => {
  await rolledBack(async (tx) => {
    await isolateChecks(tx)
    const [{ baseline }] = await tx`select vigil.error_trends(now(), 7, 100, 3, 100000) as baseline`
    await services(tx)
    const planted: CheckRow[] = [
      check(API, '14 days', 'healthy', 80, null),
      ...Array.from(
        { length: 6 },
        (_, i) => check(API, `${10 + i} hours`, 'down', 5000, `timeout after ${5012 + i * 71} ms`),
      ),
      ...Array.from(
        { length: 2 },
        (_, i) =>
          check(
            API,
            `${30 + i} hours`,
            'down',
            null,
            `HTTP 503 from https://wk-api.example.com/items/${1000 + i}`,
          ),
      ),
      ...Array.from(
        { length: 2 },
        (_, i) => check(API, `${8 * 24 + i} hours`, 'down', 5000, `timeout after ${5230 + i} ms`),
      ),
      ...Array.from(
        { length: 3 },
        (_, i) =>
          check(
            API,
            `${13 * 24 + i} hours`,
            'down',
            null,
            `connect ECONNREFUSED 10.0.0.${i + 1}:5432`,
          ),
      ),
      check(DB, '3 days', 'degraded', 40, 'relation "orders_7" does not exist'),
      ...Array.from(
        { length: 4 },
        (_, i) =>
          check(DB, `${9 * 24 + i} hours`, 'degraded', 40, `relation "orders_${i}" does not exist`),
      ),
      ...Array.from(
        { length: 3 },
        (_, i) => check(DB, `${50 + i} hours`, 'down', null, `query canceled after ${30 + i} s`),
      ),
      ...Array.from(
        { length: 3 },
        (_, i) =>
          check(DB, `${10 * 24 + i} hours`, 'down', null, `query canceled after ${31 + i} s`),
      ),
    ]
    await plantChecks(tx, planted)

    // Incidents: api's DOWN opened 3 times this week (the last still open), once the week before;
    // db's SLOW twice; a dependent's incident folded into api's counts for nobody.
    await tx`set local session_replication_role = replica`
    const incident = async (service: string, kind: string, ago: string, open = false) =>
      (await tx`
        insert into vigil.incidents (service_id, kind, severity, title, opened_at, status, resolved_at)
        select id, ${kind}, 'critical', ${`${service} ${kind}`}, now() - ${ago}::interval,
               ${open ? 'open' : 'resolved'}::vigil.incident_status,
               case when ${open} then null else now() - ${ago}::interval + interval '10 minutes' end
          from vigil.services where name = ${service}
        returning id`)[0].id as number
    const first = await incident(API, DOWN, '6 days')
    const second = await incident(API, DOWN, '4 days')
    await incident(API, DOWN, '1 day', true)
    const lastWeek = await incident(API, DOWN, '9 days')
    await incident(DB, SLOW, '5 days')
    await incident(DB, SLOW, '2 days')
    const folded = await incident(DB, DOWN, '6 days')
    await tx`update vigil.incidents set folded_into = ${first} where id = ${folded}`
    for (
      const [id, outcome, ago] of [[first, 'succeeded', '6 days'], [second, 'failed', '4 days'], [
        lastWeek,
        'undone',
        '9 days',
      ]]
    ) {
      await tx`
        insert into vigil.heal_actions
          (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome, created_at)
        select gen_random_uuid(), 'result', ${id}, id, 'restart_service', 1, 'weekly test',
               ${outcome}::vigil.heal_outcome, now() - ${ago}::interval
          from vigil.services where name = ${API}`
    }
    for (const [status, ago] of [['sent', '6 days'], ['dead', '4 days'], ['sent', '9 days']]) {
      await tx`
        insert into vigil.alerts (incident_id, channel, recipient, severity, subject, body, status, sent_at, created_at)
        values (${first}, 'email', 'oncall@example.com', 'critical', 'wk', 'wk', ${status}::vigil.alert_status,
                case when ${status} = 'sent' then now() end, now() - ${ago}::interval)`
    }
    await tx`set local session_replication_role = origin`

    const env = { VIGIL_ERROR_PATTERNS_TOP: '100' }
    const result = await runAs(tx, errorPatterns, env)
    assert.equal(result.status, 'succeeded')
    const findings = result.findings as Finding[]
    const mine = (f: Finding) => [API, DB].includes(f.service as string)
    assert.deepEqual(
      findings.filter((f) => f.kind === 'pattern' && mine(f))
        .map((f) => [f.service, f.pattern, f.count, f.count_before, f.trend]),
      [
        [API, 'timeout after <duration>', 6, 2, 'rising'],
        [DB, 'query canceled after <duration>', 3, 3, 'steady'],
        [API, 'HTTP 503 from https://wk-api.example.com/items/<n>', 2, 0, 'new'],
        [DB, 'relation <value> does not exist', 1, 4, 'falling'],
        [API, 'connect ECONNREFUSED <ip>', 0, 3, 'gone'],
      ],
      'one pattern per error shape and service, the most frequent first, gone ones last',
    )
    const timeout = findings.find((f) => f.pattern === 'timeout after <duration>')!
    const [{ first_seen, last_seen }] = await tx`
      select to_jsonb(min(checked_at)) #>> '{}' as first_seen, to_jsonb(max(checked_at)) #>> '{}' as last_seen
        from vigil.checks c
        join vigil.services s on s.id = c.service_id where s.name = ${API} and c.error like 'timeout%'`
    assert.deepEqual([timeout.first_seen, timeout.last_seen], [first_seen, last_seen])

    assert.deepEqual(
      findings.filter((f) => f.kind === 'incident_kind')
        .map((f) => [f.incident_kind, f.count, f.count_before, f.trend, f.services]),
      [[DOWN, 3, 1, 'rising', [API]], [SLOW, 2, 0, 'new', [DB]]],
      'the folded incident counts for no kind',
    )
    assert.deepEqual(
      findings.filter((f) => f.kind === 'service' && mine(f))
        .map((
          f,
        ) => [
          f.service,
          f.failed_checks,
          f.failed_checks_before,
          f.incidents,
          f.incidents_before,
          f.trend,
        ]),
      [[API, 8, 5, 3, 1, 'rising'], [DB, 4, 7, 2, 0, 'steady']],
    )
    const recurring = findings.filter((f) => f.kind === 'recurring')
    assert.equal(recurring.length, 1)
    assert.deepEqual(
      { ...recurring[0], first_opened: undefined, last_opened: undefined },
      {
        kind: 'recurring',
        service: API,
        incident_kind: DOWN,
        count: 3,
        first_opened: undefined,
        last_opened: undefined,
        open_now: true,
        healed: 1,
        mean_minutes_open: 486.7,
        top_pattern: 'timeout after <duration>',
        recommendation_key: DOWN,
      },
    )
    const outcomes = findings.find((f) => f.kind === 'outcomes') as unknown as {
      checks: Record<string, number | boolean>
      incidents: Record<string, number>
      heals: { this: Record<string, number>; before: Record<string, number> }
      alerts: { this: Record<string, number>; before: Record<string, number> }
    }
    assert.deepEqual(outcomes.checks, {
      total: 12,
      total_before: 13,
      failed: 12,
      failed_before: 12,
      with_error: 12,
      with_error_before: 12,
      sampled: false,
    })
    assert.deepEqual(outcomes.incidents, { opened: 5, opened_before: 1 })
    const plus = (base: Record<string, number>, key: string) => (base[key] ?? 0) + 1
    assert.equal(outcomes.heals.this.succeeded, plus(baseline.heals.this, 'succeeded'))
    assert.equal(outcomes.heals.this.failed, plus(baseline.heals.this, 'failed'))
    assert.equal(outcomes.heals.before.undone, plus(baseline.heals.before, 'undone'))
    assert.equal(outcomes.alerts.this.dead, plus(baseline.alerts.this, 'dead'))
    assert.equal(outcomes.alerts.before.sent, plus(baseline.alerts.before, 'sent'))

    assert.equal(
      result.summary,
      `12 failed checks in 7 days (12 the 7 before); top error patterns: "timeout after <duration>" on ${API} × 6 (rising), ` +
        `"query canceled after <duration>" on ${DB} × 3 (steady), "HTTP 503 from https://wk-api.example.com/items/<n>" on ${API} × 2 (new); ` +
        `1 new, 1 gone; 5 incidents (1 before), most ${DOWN} × 3; recurring: ${API} ${DOWN} × 3; recommendations: 1 opened, 0 resolved`,
    )
    const title =
      `${API}: ${DOWN} opened 3 times in 7 days (1 healed by Vigil): a recurring problem — find and fix its cause rather than its symptoms`
    assert.deepEqual(result.actions, [
      {
        action: 'recommendation_opened',
        kind: 'recurring_incident',
        service: API,
        key: DOWN,
        title,
      },
    ])
    const recommendations = () =>
      tx`select r.status, r.key, r.title, r.detail ->> 'count' as count, r.incident_id
           from vigil.recommendations r join vigil.services s on s.id = r.service_id
          where s.name = ${API} and r.kind = 'recurring_incident' order by r.id`
    const opened = await recommendations()
    assert.deepEqual(opened.map((r) => [r.status, r.key, r.title, r.count]), [[
      'open',
      DOWN,
      title,
      '3',
    ]])

    const again = await runAs(tx, errorPatterns, env)
    assert.deepEqual(again.actions, [], 'the same week again changes nothing')
    assert.equal((await recommendations()).length, 1, 'updated in place, not duplicated')

    // One of the three moves to the week before: no longer recurring.
    await tx`update vigil.incidents set opened_at = now() - interval '10 days' where id = ${second}`
    const later = await runAs(tx, errorPatterns, env)
    assert.deepEqual(later.actions, [
      {
        action: 'recommendation_resolved',
        kind: 'recurring_incident',
        service: API,
        key: DOWN,
        title,
      },
    ])
    assert.deepEqual((await recommendations()).map((r) => r.status), ['resolved'])
    assert.match(later.summary, /recommendations: 0 opened, 1 resolved$/)
  })
})

/** Daily snapshots from `days` days ago to today; `counters(i)` gives day i's cumulative counters. */
async function plantSnapshots(
  tx: Tx,
  queryid: number,
  query: string,
  from: number,
  days: number,
  counters: (i: number) => [calls: number, total: number, rows: number, hit: number, read: number],
) {
  const rows = []
  for (let i = from; i <= days; i++) rows.push([days - i, ...counters(i)])
  await tx`
    insert into vigil.statement_snapshots
      (taken_on, dbid, userid, queryid, query, calls, total_exec_ms, mean_exec_ms, rows, shared_blks_hit, shared_blks_read)
    select (now() at time zone 'utc')::date - r.ago, (select oid from pg_database where datname = current_database()),
           10, ${queryid}, ${query}, r.calls, r.total, r.total / r.calls, r.rows, r.hit, r.read
      from jsonb_to_recordset(${
    tx.json(
      rows.map(([ago, calls, total, rows, hit, read]) => ({ ago, calls, total, rows, hit, read })),
    )
  })
           as r(ago int, calls bigint, total float8, rows bigint, hit bigint, read bigint)`
}

const Q1 = 'select * from wk_orders where customer_id = $1'
const Q2 = 'select count(*) from wk_sessions where user_id = $1'
const Q3 = 'select * from wk_reports where month = $1'
const Q4 = 'update wk_rare set seen = now() where id = $1'

/** 15 days: Q1 10 → 25 ms a call, Q2 steady with a reset 3 days ago, Q3 new 5 days ago, Q4 too rare. */
async function plantWeeks(tx: Tx) {
  const prev = (i: number) => Math.min(i, 7)
  const cur = (i: number) => Math.max(i - 7, 0)
  await plantSnapshots(tx, 4201, Q1, 0, 14, (i) => {
    const calls = 1000 * i + 500
    return [
      calls,
      5000 + 10_000 * prev(i) + 25_000 * cur(i),
      calls,
      50_000 + 100_000 * prev(i) + 80_000 * cur(i),
      20_000 * cur(i),
    ]
  })
  await plantSnapshots(tx, 4202, Q2, 0, 14, (i) => {
    const calls = i <= 10 ? 5000 * (i + 1) : 2000 + 5000 * (i - 11)
    return [calls, 2 * calls, calls / 2, calls, 0]
  })
  await plantSnapshots(tx, 4203, Q3, 9, 14, (i) => {
    const calls = 100_000 + 20_000 * (i - 9)
    return [calls, 5 * calls, calls, 10 * calls, 0]
  })
  await plantSnapshots(
    tx,
    4204,
    Q4,
    0,
    14,
    (i) => [10 * i + 10, 10 + 10 * prev(i) + 500 * cur(i), 0, 0, 0],
  )
}

Deno.test('performance_report: a planted regression is found and recommended once, resolved when gone; resets never go negative', async () => {
  await rolledBack(async (tx) => {
    await isolateChecks(tx)
    await isolateSnapshots(tx)
    await services(tx)
    await plantChecks(tx, [
      ...Array.from(
        { length: 20 },
        (_, i) => check(API, `${2 + i} hours`, 'healthy', 100 + 10 * i, null),
      ),
      ...Array.from(
        { length: 20 },
        (_, i) => check(API, `${8 * 24 + i} hours`, 'healthy', 50 + 5 * i, null),
      ),
    ])
    for (
      const [name, ago, value] of [
        ['query_duration_p95', '1 day', 20],
        ['query_duration_p95', '2 days', 30],
        ['query_duration_p95', '8 days', 10],
        ['query_duration_p95', '9 days', 10],
        ['cache_hit_ratio', '1 day', 0.9],
        ['cache_hit_ratio', '2 days', 0.8],
        ['cache_hit_ratio', '8 days', 0.99],
        ['cache_hit_ratio', '9 days', 0.99],
      ] as const
    ) {
      await tx`insert into vigil.metrics (service_id, name, value, recorded_at)
               select id, ${name}::vigil.metric_name, ${value}, now() - ${ago}::interval
                 from vigil.services where name = ${PG}`
    }
    await plantWeeks(tx)

    const result = await runAs(tx, performanceReport)
    assert.equal(result.status, 'succeeded')
    const findings = result.findings as Finding[]
    const api = findings.find((f) => f.kind === 'latency' && f.service === API)
    assert.deepEqual(api, {
      kind: 'latency',
      service: API,
      checks: 20,
      p50_ms: 195,
      p95_ms: 280.5,
      checks_before: 20,
      p50_ms_before: 97.5,
      p95_ms_before: 140.3,
      p95_change_pct: 100,
      verdict: 'slower',
      sampled: false,
    })
    assert.deepEqual(
      findings.filter((f) => f.kind === 'metric' && f.service === PG)
        .map((
          f,
        ) => [f.metric, f.avg, f.avg_before, f.worst, f.worst_before, f.change_pct, f.verdict]),
      [
        ['cache_hit_ratio', 0.85, 0.99, 0.8, 0.99, -14.1, 'worse'],
        ['query_duration_p95', 25, 10, 30, 10, 150, 'worse'],
      ],
    )
    const today = new Date().toISOString().slice(0, 10)
    const history = findings.find((f) => f.kind === 'statement_history')!
    assert.deepEqual(
      { ...history, ends_on: undefined, first_on: undefined, last_on: undefined },
      {
        kind: 'statement_history',
        period_days: 7,
        ends_on: undefined,
        snapshot_days: 15,
        first_on: undefined,
        last_on: undefined,
        covered_days: 7,
        covered_days_before: 7,
        comparable: true,
      },
    )
    assert.equal(history.last_on, today)

    const numbers = (
      calls: number,
      total: number,
      perDay: number,
      rows: number,
      hit: number | null,
      resets = 0,
    ) => ({
      calls,
      total_ms: total,
      mean_ms: total / calls,
      calls_per_day: perDay,
      rows_per_call: rows,
      cache_hit_share: hit,
      resets,
    })
    assert.deepEqual(
      findings.filter((f) => f.kind === 'top_statement')
        .map((f) => [f.rank, f.queryid, f.share_of_time, f.change_pct, f.this, f.before]),
      [
        [1, '4203', 0.6734, null, numbers(100_000, 500_000, 14_285.7, 1, 1), null],
        [
          2,
          '4201',
          0.2357,
          150,
          numbers(7000, 175_000, 1000, 1, 0.8),
          numbers(7000, 70_000, 1000, 1, 1),
        ],
        [
          3,
          '4202',
          0.0862,
          0,
          numbers(32_000, 64_000, 4571.4, 0.5, 1, 1),
          numbers(35_000, 70_000, 5000, 0.5, 1),
        ],
        [4, '4204', 0.0047, 4900, numbers(70, 3500, 10, 0, null), numbers(70, 70, 10, 0, null)],
      ],
      'Q2 counts 2,000 calls for the reset day, never a negative difference; Q3 has no week before',
    )
    const regressions = findings.filter((f) => f.kind === 'regression')
    assert.deepEqual(regressions.map((f) => [f.queryid, f.query, f.change_pct, f.hints]), [
      ['4201', Q1, 150, [
        'more of its reads come from disk (cache hits 100 % → 80 %): the working set outgrew shared_buffers, or a plan now scans more',
      ]],
    ], 'Q4 is 50× slower but with 70 calls a week: not a regression')
    assert.deepEqual(
      findings.filter((f) => f.kind === 'new_heavy').map((f) => [f.queryid, f.share_of_time]),
      [['4203', 0.6734]],
    )
    assert.match(
      result.summary,
      new RegExp(
        `check p95 .*${API} 140 → 281 ms \\(slower\\).*; 1 statement\\(s\\) regressed: ` +
          'select \\* from wk_orders where customer_id = \\$1 10\\.0 → 25\\.0 ms \\(\\+150 %\\); 1 new heavy statement\\(s\\); ' +
          'most time: select \\* from wk_reports where month = \\$1 \\(67\\.3 %\\); ' +
          'recommendations: 1 opened, 0 resolved$',
      ),
    )
    const title =
      `Statement 4201 is +150 % slower a call than the week before (10.0 → 25.0 ms over 7,000 calls): ${Q1}`
    assert.deepEqual(result.actions, [
      {
        action: 'recommendation_opened',
        kind: 'query_regression',
        service: PG,
        key: '4201',
        title,
      },
    ])
    const recommendations = () =>
      tx`select r.status, r.key, r.title, r.detail -> 'before' ->> 'mean_ms' as before_ms
           from vigil.recommendations r join vigil.services s on s.id = r.service_id
          where s.name = ${PG} and r.kind = 'query_regression' order by r.id`
    assert.deepEqual(
      (await recommendations()).map((r) => [r.status, r.key, r.title, r.before_ms]),
      [
        ['open', '4201', title, '10'],
      ],
    )

    const again = await runAs(tx, performanceReport)
    assert.deepEqual(again.actions, [])
    assert.equal((await recommendations()).length, 1, 'updated in place, not duplicated')

    // Q1 back to 10 ms a call this week: no longer regressed.
    await tx`update vigil.statement_snapshots set total_exec_ms = 10 * calls, mean_exec_ms = 10 where queryid = 4201`
    const fixed = await runAs(tx, performanceReport)
    assert.equal((fixed.findings as Finding[]).filter((f) => f.kind === 'regression').length, 0)
    assert.deepEqual(fixed.actions, [
      {
        action: 'recommendation_resolved',
        kind: 'query_regression',
        service: PG,
        key: '4201',
        title,
      },
    ])
    assert.deepEqual((await recommendations()).map((r) => r.status), ['resolved'])
  })
})

Deno.test('statement_benchmark: this month against the last, a verdict per statement, without running any', async () => {
  await rolledBack(async (tx) => {
    await isolateSnapshots(tx)
    const prev = (i: number) => Math.min(i, 30)
    const cur = (i: number) => Math.max(i - 30, 0)
    const B1 = 'select * from wk_faster where id = $1'
    const B2 = 'select * from wk_slower where id = $1'
    const B3 = 'select * from wk_steady where id = $1'
    const B4 = 'select * from wk_new where id = $1'
    await plantSnapshots(
      tx,
      5101,
      B1,
      0,
      60,
      (i) => [100 * i + 100, 2000 + 2000 * prev(i) + 1000 * cur(i), 0, 0, 0],
    )
    await plantSnapshots(
      tx,
      5102,
      B2,
      0,
      60,
      (i) => [50 * i + 50, 200 + 200 * prev(i) + 300 * cur(i), 0, 0, 0],
    )
    await plantSnapshots(tx, 5103, B3, 0, 60, (i) => {
      const calls = i < 45 ? 1000 * (i + 1) : 400 + 1000 * (i - 45)
      return [calls, calls, 2 * calls, 10 * calls, calls]
    })
    await plantSnapshots(
      tx,
      5104,
      B4,
      40,
      60,
      (i) => [10 * (i - 39), 1000 + 1000 * (i - 40), 0, 0, 0],
    )

    const result = await runAs(tx, statementBenchmark)
    assert.equal(result.status, 'succeeded')
    const rows = (result.findings as Finding[]).filter((f) => f.kind === 'statement')
    const n = (
      calls: number,
      total: number,
      perDay: number,
      rows: number,
      hit: number | null,
      resets = 0,
    ) => ({
      calls,
      total_ms: total,
      mean_ms: total / calls,
      calls_per_day: perDay,
      rows_per_call: rows,
      cache_hit_share: hit,
      resets,
    })
    assert.deepEqual(
      rows.map((r) => [r.rank, r.queryid, r.query, r.verdict, r.change_pct, r.this, r.before]),
      [
        [
          1,
          '5101',
          B1,
          'faster',
          -50,
          n(3000, 30_000, 100, 0, null),
          n(3000, 60_000, 100, 0, null),
        ],
        [
          2,
          '5103',
          B3,
          'steady',
          0,
          n(29_400, 29_400, 980, 2, 0.9091, 1),
          n(30_000, 30_000, 1000, 2, 0.9091),
        ],
        [3, '5104', B4, 'new', null, n(200, 20_000, 6.7, 0, null), null],
        [4, '5102', B2, 'slower', 50, n(1500, 9000, 50, 0, null), n(1500, 6000, 50, 0, null)],
      ],
    )
    assert.equal(
      result.summary,
      `top 4 statements over 30 days against the 30 before: 1 slower, 1 faster, 1 steady, 1 new; ` +
        `slower: ${B2} 4.00 → 6.00 ms (+50 %); ` +
        '1 had their counters reset this month (pg_stat_statements_reset or eviction): what ran just before is not counted',
    )
    const top2 = await runAs(tx, statementBenchmark, { VIGIL_BENCHMARK_TOP: '2' })
    assert.deepEqual(
      (top2.findings as Finding[]).filter((f) => f.kind === 'statement').map((f) => f.queryid),
      ['5101', '5103'],
    )
  })
})

Deno.test('empty history: each task says not enough history yet, and leaves recommendations alone', async () => {
  await rolledBack(async (tx) => {
    await isolateChecks(tx)
    await isolateSnapshots(tx)
    await services(tx)
    await tx`select vigil.recommend(id, null, ${
      tx.json([{ kind: 'query_regression', key: '4201', title: 'planted earlier' }])
    })
               from vigil.services where name = ${PG}`

    const errors = await runAs(tx, errorPatterns)
    assert.deepEqual([errors.status, errors.summary, errors.actions], [
      'succeeded',
      'not enough history yet: no checks and no incidents in the last 14 days',
      undefined,
    ])
    const performance = await runAs(tx, performanceReport)
    assert.deepEqual([performance.status, performance.summary, performance.actions], [
      'succeeded',
      'not enough history yet: no checks with a response time in the last 7 days, and statement snapshots cover 0 of the last 7 days and 0 of the 7 before',
      [],
    ])
    const bench = await runAs(tx, statementBenchmark)
    assert.deepEqual([bench.status, bench.summary], [
      'succeeded',
      'not enough history yet: statement snapshots cover 0 of the last 30 days and 0 of the 30 before; the benchmark needs both',
    ])
    // Two snapshots a week apart: this week is covered, the week before is not.
    await plantSnapshots(tx, 4201, Q1, 7, 14, (i) => [i * 100, i * 1000, 0, 0, 0])
    const young = await runAs(tx, performanceReport)
    assert.match(
      young.summary,
      /statements: not enough history yet \(statement snapshots cover 7 of the last 7 days and 0 of the 7 before\)/,
    )
    const [{ status }] = await tx`
      select r.status from vigil.recommendations r join vigil.services s on s.id = r.service_id
       where s.name = ${PG} and r.kind = 'query_regression'`
    assert.equal(status, 'open', 'without a week to compare with, nothing is resolved')
  })
})

Deno.test('bad settings are named; a vanished table or a missing pg_stat_statements is a clear TaskError', async () => {
  const bad = (name: string, value: string) => (key: string) => key === name ? value : undefined
  for (
    const [task, name, value, words] of [
      [errorPatterns, 'VIGIL_ERROR_PATTERNS_TOP', '0', 'a whole number from 1 to 100'],
      [errorPatterns, 'VIGIL_ERROR_PATTERNS_STEADY_PCT', 'lots', 'a percentage from 0 to 10000'],
      [performanceReport, 'VIGIL_PERFORMANCE_NEW_HEAVY_SHARE', '5', 'a share from 0 to 1'],
      [
        performanceReport,
        'VIGIL_PERFORMANCE_REGRESSION_MIN_MS',
        '-1',
        'a number of ms from 0 to 60000',
      ],
      [statementBenchmark, 'VIGIL_BENCHMARK_TOP', '51', 'a whole number from 1 to 50'],
    ] as const
  ) {
    await assert.rejects(
      task.run({ sql: null as never, env: bad(name, value), signal: AbortSignal.timeout(1000) }),
      (e: Error) => {
        assert.ok(e instanceof TaskError)
        assert.equal(e.message, `bad settings: ${name} must be ${words}, got "${value}"`)
        return true
      },
    )
  }
  await rolledBack(async (tx) => {
    const gone = await failureOf(
      tx,
      'alter table vigil.statement_snapshots rename to statement_snapshots_gone',
      statementBenchmark,
    )
    assert.ok(gone instanceof TaskError)
    assert.equal(
      gone.message,
      'relation "vigil.statement_snapshots" does not exist (SQLSTATE 42P01): are the migrations applied?',
    )
    const checks = await failureOf(
      tx,
      'alter table vigil.checks rename to checks_gone',
      errorPatterns,
    )
    assert.ok(checks instanceof TaskError)
    assert.match(checks.message, /^relation "vigil\.checks" does not exist/)
    for (const task of [performanceReport, statementBenchmark]) {
      const missing = await failureOf(tx, 'drop extension pg_stat_statements', task)
      assert.ok(missing instanceof TaskError)
      assert.match(missing.message, /^pg_stat_statements is not installed in this database/)
    }
  })
})
