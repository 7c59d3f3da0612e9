// The daily maintenance tasks on the real local database, as vigil_agent (which owns no table):
// vacuum_analyze vacuums a bloated table through pg_cron and analyzes a stale one, records a table
// dropped between plan and act as a failed step while the others are done, and refuses bad
// thresholds; statements_snapshot keeps one row per statement per day, however often it runs.
import assert from 'node:assert/strict'
import {
  actVacuumAnalyze,
  planVacuumAnalyze,
  summarise,
  thresholdsFrom,
  vacuumAnalyze,
} from '../../supabase/functions/_shared/maintenance/tasks/vacuum-analyze.ts'
import { statementsSnapshot } from '../../supabase/functions/_shared/maintenance/tasks/statements-snapshot.ts'
import { TaskError } from '../../supabase/functions/_shared/maintenance/types.ts'
import { agentSql, eventually, testSql } from '../_env.ts'

const stamp = Date.now().toString(36)
type Sql = ReturnType<typeof testSql>

const envOf = (vars: Record<string, string>) => (name: string) => vars[name]

/** A table postgres owns, autovacuum off, with `dead` rows deleted of `rows`. */
async function table(sql: Sql, name: string, rows: number, dead: number) {
  await sql.unsafe(`
    create table ${name} (id int primary key, pad text) with (autovacuum_enabled = false);
    insert into ${name} select g, repeat('x', 40) from generate_series(1, ${rows}) g;
    delete from ${name} where id <= ${dead};`)
}

/** The statistics reach shared memory a little after the commit: wait until they show `dead`. */
async function statsShow(sql: Sql, name: string, dead: number, changed: number) {
  await sql`select pg_stat_force_next_flush()`
  await eventually(
    async () => {
      const [r] = await sql`
      select pg_stat_get_dead_tuples(${name}::regclass)::int as dead,
             pg_stat_get_mod_since_analyze(${name}::regclass)::int as changed`
      return r.dead === dead && r.changed === changed ? true : undefined
    },
    10_000,
    `the statistics of ${name}`,
  )
}

async function cleanUp(sql: Sql, schema: string) {
  await sql.unsafe(`drop schema if exists ${schema} cascade`)
  await sql`select cron.unschedule(jobid) from cron.job where command like ${`%${schema}%`}`
  await sql`delete from vigil.vacuum_requests where schema_name = ${schema}`
}

Deno.test('vacuum_analyze: pg_cron vacuums the bloated table, the stale one is analyzed, as the agent', async () => {
  const sql = testSql()
  const agent = agentSql()
  const schema = `t_daily_${stamp}`
  try {
    await sql.unsafe(`create schema ${schema}`)
    await table(sql, `${schema}.bloated`, 20_000, 18_000)
    await table(sql, `${schema}.stale`, 2000, 0)
    await statsShow(sql, `${schema}.bloated`, 18_000, 38_000)
    await statsShow(sql, `${schema}.stale`, 0, 2000)

    // pg_cron 1.4 runs a one-off job at the next minute.
    const result = await vacuumAnalyze.run({
      sql: agent,
      env: envOf({ VIGIL_MAINTENANCE_SCHEMAS: schema }),
      signal: AbortSignal.timeout(90_000),
    })
    assert.equal(result.status, 'succeeded')
    assert.equal(
      result.summary,
      `vacuumed 1 table (${schema}.bloated: 18,000 dead tuples → 0), analyzed 1`,
    )
    assert.deepEqual(
      (result.findings as { table: string; action: string; dead: number; live: number }[])
        .map((f) => [f.table, f.action, f.dead, f.live]),
      [['bloated', 'vacuum_analyze', 18_000, 2000], ['stale', 'analyze', 0, 2000]],
      'the numbers before, the worst first',
    )
    assert.deepEqual(
      (result.actions as { table: string; outcome: string; dead_after?: number }[])
        .map((a) => [a.table, a.outcome, a.dead_after]),
      [[`${schema}.bloated`, 'done', 0], [`${schema}.stale`, 'done', undefined]],
    )
    const [after] = await sql.unsafe(`
      select pg_stat_get_dead_tuples('${schema}.bloated'::regclass)::int as dead,
             pg_stat_get_last_analyze_time('${schema}.stale'::regclass) is not null as analyzed,
             pg_stat_get_mod_since_analyze('${schema}.stale'::regclass)::int as changed`)
    assert.deepEqual({ ...after }, { dead: 0, analyzed: true, changed: 0 })
    const requests = await sql`
      select table_name, outcome, requested_by from vigil.vacuum_requests where schema_name = ${schema}`
    assert.deepEqual(requests.map((r) => [r.table_name, r.outcome, r.requested_by]), [
      ['bloated', 'succeeded', 'vigil_agent'],
    ])
    const [jobs] =
      await sql`select count(*)::int as n from cron.job where command like ${`%${schema}%`}`
    assert.equal(jobs.n, 0, 'the one-off job is gone')

    const again = await vacuumAnalyze.run({
      sql: agent,
      env: envOf({ VIGIL_MAINTENANCE_SCHEMAS: schema }),
      signal: AbortSignal.timeout(10_000),
    })
    assert.deepEqual([again.status, again.summary], ['succeeded', 'nothing over the thresholds'])
  } finally {
    await cleanUp(sql, schema)
    await Promise.all([agent.end(), sql.end()])
  }
})

Deno.test('vacuum_analyze: tables dropped between plan and act are failed steps; the others are done', async () => {
  const sql = testSql()
  const agent = agentSql()
  const schema = `t_daily_gone_${stamp}`
  try {
    await sql.unsafe(`create schema ${schema}`)
    await table(sql, `${schema}.gone_bloated`, 2000, 1800)
    await table(sql, `${schema}.gone_stale`, 900, 0)
    await table(sql, `${schema}.kept_stale`, 700, 0)
    await statsShow(sql, `${schema}.gone_bloated`, 1800, 3800)
    await statsShow(sql, `${schema}.gone_stale`, 0, 900)
    await statsShow(sql, `${schema}.kept_stale`, 0, 700)

    const plan = await planVacuumAnalyze(
      agent,
      thresholdsFrom(envOf({ VIGIL_MAINTENANCE_SCHEMAS: schema })),
    )
    assert.deepEqual(plan.tables.map((t) => [t.table, t.action]), [
      ['gone_bloated', 'vacuum_analyze'],
      ['gone_stale', 'analyze'],
      ['kept_stale', 'analyze'],
    ])
    await sql.unsafe(`drop table ${schema}.gone_bloated, ${schema}.gone_stale`)

    const steps = await actVacuumAnalyze(agent, plan, AbortSignal.timeout(30_000))
    assert.deepEqual(steps.map((s) => [s.table, s.outcome, s.detail]), [
      [
        `${schema}.gone_bloated`,
        'failed',
        'it no longer exists (dropped or renamed since the plan)',
      ],
      [`${schema}.gone_stale`, 'failed', 'it no longer exists (dropped or renamed since the plan)'],
      [`${schema}.kept_stale`, 'done', 'ANALYZE ran'],
    ])
    assert.equal(
      summarise(plan, steps),
      `analyzed 1, 2 failed (${schema}.gone_bloated: it no longer exists (dropped or renamed since the plan); ${schema}.gone_stale: it no longer exists (dropped or renamed since the plan))`,
    )
    const [kept] = await sql.unsafe(
      `select pg_stat_get_mod_since_analyze('${schema}.kept_stale'::regclass)::int as changed`,
    )
    assert.equal(kept.changed, 0, 'the surviving table was analyzed')
  } finally {
    await cleanUp(sql, schema)
    await Promise.all([agent.end(), sql.end()])
  }
})

Deno.test('vacuum_analyze: bad thresholds are refused, every one named; nothing to do says so', async () => {
  const agent = agentSql()
  try {
    const bad = envOf({
      VIGIL_MAINTENANCE_VACUUM_MIN_DEAD_TUPLES: 'lots',
      VIGIL_MAINTENANCE_VACUUM_MIN_DEAD_RATIO: '1.5',
      VIGIL_MAINTENANCE_MAX_TABLES: '0',
      VIGIL_MAINTENANCE_SCHEMAS: 'public,,vigil',
    })
    await assert.rejects(
      vacuumAnalyze.run({ sql: agent, env: bad, signal: AbortSignal.timeout(5000) }),
      (e: unknown) => {
        assert.ok(e instanceof TaskError)
        assert.equal(
          e.message,
          'bad settings: VIGIL_MAINTENANCE_VACUUM_MIN_DEAD_TUPLES must be a whole number of at least 0, got "lots"; ' +
            'VIGIL_MAINTENANCE_VACUUM_MIN_DEAD_RATIO must be a share from 0 to 1, got "1.5"; ' +
            'VIGIL_MAINTENANCE_MAX_TABLES must be a whole number from 1 to 50, got "0"; ' +
            'VIGIL_MAINTENANCE_SCHEMAS has an empty schema name',
        )
        return true
      },
    )
    assert.deepEqual(thresholdsFrom(() => undefined), {
      min_dead_tuples: 1000,
      min_dead_ratio: 0.1,
      min_changes: 500,
      min_changed_ratio: 0.1,
      max_tables: 10,
      schemas: null,
    })
    const none = await vacuumAnalyze.run({
      sql: agent,
      env: envOf({ VIGIL_MAINTENANCE_SCHEMAS: `t_daily_empty_${stamp}` }),
      signal: AbortSignal.timeout(5000),
    })
    assert.deepEqual(
      [none.status, none.summary, none.actions],
      ['succeeded', 'nothing over the thresholds', []],
    )
  } finally {
    await agent.end()
  }
})

Deno.test('statements_snapshot: today’s rows are written once, however often it runs, without literals', async () => {
  const sql = testSql()
  const agent = agentSql()
  const literal = `vigil-literal-${stamp}`
  const [{ existed }] = await sql`
    select count(*)::int as existed from vigil.statement_snapshots
     where taken_on = (now() at time zone 'utc')::date`
  try {
    await sql`select ${literal}::text as marker`
    await sql.unsafe(`select '${literal}'::text as marker`)
    const env = envOf({ VIGIL_MAINTENANCE_STATEMENTS_LIMIT: '10000' })
    const first = await statementsSnapshot.run({
      sql: agent,
      env,
      signal: AbortSignal.timeout(10_000),
    })
    assert.equal(first.status, 'succeeded')
    assert.match(first.summary, /^\d+ statements; /)
    const second = await statementsSnapshot.run({
      sql: agent,
      env,
      signal: AbortSignal.timeout(10_000),
    })
    const taken = Number(/^(\d+) statements/.exec(second.summary)![1])
    assert.ok(taken > 0)
    const [today] = await agent`
      select count(*)::int as rows,
             count(distinct (dbid, userid, queryid))::int as statements,
             count(*) filter (where query like ${`%${literal}%`})::int as with_literal
        from vigil.statement_snapshots where taken_on = (now() at time zone 'utc')::date`
    assert.deepEqual({ ...today }, { rows: taken, statements: taken, with_literal: 0 })

    await assert.rejects(
      statementsSnapshot.run({
        sql: agent,
        env: envOf({ VIGIL_MAINTENANCE_STATEMENTS_LIMIT: 'all' }),
        signal: AbortSignal.timeout(5000),
      }),
      /VIGIL_MAINTENANCE_STATEMENTS_LIMIT must be a whole number from 1 to 10000, got "all"/,
    )
  } finally {
    if (existed === 0) {
      await sql`delete from vigil.statement_snapshots where taken_on = (now() at time zone 'utc')::date`
    }
    await Promise.all([agent.end(), sql.end()])
  }
})
