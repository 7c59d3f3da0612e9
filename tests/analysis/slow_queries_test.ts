// The slow-query report: plan findings read from real generic plans of the local database, then a
// planted missing index run by an ordinary login role, found by the daily slow_query_report task
// (as vigil_agent, as the maintenance function runs it) with its CREATE INDEX and hypopg's gain, and
// kept as a slow_query recommendation.
import assert from 'node:assert/strict'
import postgres from 'postgres'
import { planFindings } from '../../supabase/functions/_shared/analysis/plan-findings.ts'
import type { PlanNode } from '../../supabase/functions/_shared/heal/strategies/add-missing-index/plan-reading.ts'
import {
  type SlowQuery,
  slowQueryReport,
} from '../../supabase/functions/_shared/maintenance/tasks/slow-query-report.ts'
import { agentSql, roleSql, testSql, testStack } from '../_env.ts'

type Sql = ReturnType<typeof testSql>

async function plan(sql: Sql, query: string): Promise<PlanNode> {
  const [row] = await sql.unsafe(`explain (verbose, format json) ${query}`)
  const doc = row['QUERY PLAN']
  return (typeof doc === 'string' ? JSON.parse(doc) : doc)[0].Plan
}

async function sizes(sql: Sql, schema: string): Promise<Map<string, number>> {
  const rows = await sql<{ name: string; rows: number }[]>`
    select n.nspname || '.' || c.relname as name, c.reltuples::float8 as rows
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = ${schema} and c.relkind = 'r'`
  return new Map(rows.map((r) => [r.name, r.rows]))
}

async function plantTables(sql: Sql, schema: string) {
  await sql.unsafe(`
    create schema ${schema};
    create table ${schema}.customers (id int primary key, region int, name text);
    create table ${schema}.orders (id int primary key, customer_id int, total numeric, note text);
    insert into ${schema}.customers select g, g % 10, 'c' || g from generate_series(1, 2000) g;
    insert into ${schema}.orders
      select g, g % 2000 + 1, (g % 97)::numeric, repeat('x', 40) from generate_series(1, 60000) g;
    analyze ${schema}.customers;
    analyze ${schema}.orders;`)
}

Deno.test('plan findings on real plans: a seq scan over a large table, a cartesian product, a row explosion, repeated subqueries', async () => {
  const sql = testSql()
  const schema = `sq_plan_${Date.now().toString(36)}`
  try {
    await plantTables(sql, schema)
    const rows = await sizes(sql, schema)

    const scan = await planFindings(
      await plan(sql, `select * from ${schema}.orders where note like 'a%'`),
      rows,
      [],
    )
    assert.deepEqual(scan.map((f) => f.kind), ['seq_scan'])
    assert.match(
      scan[0].text,
      new RegExp(`^Sequential scan over ${schema}\\.orders \\(~60,000 rows\\), filtering`),
    )
    assert.match(scan[0].fix, /reads most of the table/)

    const small = await planFindings(
      await plan(sql, `select * from ${schema}.customers where name like 'a%'`),
      rows,
      [],
    )
    assert.deepEqual(small, [], 'a 2,000-row table is not large')

    const cartesian = await planFindings(
      await plan(
        sql,
        `select c.name, d.name from ${schema}.customers c, ${schema}.customers d where c.region = 1 and d.region = 2`,
      ),
      rows,
      [],
    )
    assert.deepEqual(cartesian.map((f) => f.kind), ['cartesian_product'])
    assert.match(
      cartesian[0].text,
      /^Cartesian product: .*customers × .*customers are joined with no condition/,
    )

    const joined = await planFindings(
      await plan(
        sql,
        `select c.name, d.name from ${schema}.customers c join ${schema}.customers d on d.id = c.id + 1 where c.region = 1`,
      ),
      rows,
      [],
    )
    assert.deepEqual(joined, [], 'a join with its condition is no cartesian product')

    const explosion = await planFindings(
      await plan(
        sql,
        `select a.id, b.id from ${schema}.orders a join ${schema}.orders b on a.customer_id = b.customer_id`,
      ),
      rows,
      [],
    )
    assert.ok(explosion.some((f) => f.kind === 'row_explosion'), JSON.stringify(explosion))
    const boom = explosion.find((f) => f.kind === 'row_explosion')!
    assert.match(
      boom.text,
      /^Row explosion: the hash join of .*orders and .*orders yields ~1,8\d\d,\d{3} rows from inputs of at most ~60,000$/,
    )

    const subqueries = await planFindings(
      await plan(
        sql,
        `select c.id,
                (select count(*) from ${schema}.orders o where o.customer_id = c.id) as n,
                (select sum(total) from ${schema}.orders o where o.customer_id = c.id) as spent
           from ${schema}.customers c where c.region = 3`,
      ),
      rows,
      [],
    )
    const repeated = subqueries.find((f) => f.kind === 'repeated_subqueries')
    assert.ok(repeated, JSON.stringify(subqueries))
    assert.equal(repeated.kind === 'repeated_subqueries' && repeated.subqueries, 2)
    assert.match(
      repeated.text,
      /^2 correlated subqueries each read .*orders once per row, each computing one aggregate$/,
    )
    assert.match(repeated.fix, /one aggregation/)
  } finally {
    await sql.unsafe(`drop schema if exists ${schema} cascade`)
    await sql.end()
  }
})

Deno.test('a planted missing index is in the slow-query report with its CREATE INDEX and hypopg gain, and becomes a recommendation', async () => {
  const sql = testSql()
  const agent = agentSql()
  const schema = `sq_${Date.now().toString(36)}`
  const role = `${schema}_app`
  const password = 'local-test-password-slowq'
  const app = roleSql(role, password)
  const [{ slow }] = await sql<{ slow: number }[]>`
    select slow_query_ms as slow from vigil.settings where environment = 'prod'`
  // The report belongs to the service watching the project database (the demo's, when it runs).
  const [svc] = await sql<{ id: string }[]>`
    insert into vigil.services (name, kind, config, heal_enabled)
    values (${`${schema}-db`}, 'postgres', '{}', false) returning id::text`
  try {
    await plantTables(sql, schema)
    await sql.unsafe(`
      create role ${role} login password '${password}';
      grant usage on schema ${schema} to ${role};
      grant select on all tables in schema ${schema} to ${role};
      create function ${schema}.tax(numeric) returns numeric language sql as 'select $1 * 1.2';`)
    // The statistics start again here (as after pg_stat_statements_reset on a real project): what
    // the rest of the suite ran does not crowd the top.
    await sql`select extensions.pg_stat_statements_reset()`
    // The app's statement: a customer's orders, with no index on customer_id.
    for (let i = 0; i < 5; i++) {
      await app`select id, total from ${app(schema)}.orders where customer_id = ${i + 1}`
    }
    // And one whose plan Vigil will not build: planning it could run the app's own function.
    for (let i = 0; i < 2; i++) {
      await app`select ${app(schema)}.tax(total) from ${app(schema)}.orders where total > ${i}`
    }
    // Past slow_query_ms: lowered for the test (60,000 rows read in a few ms).
    await sql`update vigil.settings set slow_query_ms = 1 where environment = 'prod'`

    const result = await slowQueryReport.run({
      sql: agent,
      env: (name) => ({ VIGIL_SLOW_QUERY_TOP: '20' } as Record<string, string>)[name],
      signal: AbortSignal.timeout(60_000),
    })
    assert.equal(result.status, 'succeeded', result.summary)
    assert.match(
      result.summary,
      /^Top \d+ slowest queries of \d+ over 1 ms since \d{4}-\d\d-\d\dT\d\d:\d\dZ: /,
    )
    const ours = (result.findings as SlowQuery[]).find((q) =>
      q.query.includes(`${schema}".orders where customer_id`)
    )
    assert.ok(ours, result.summary)
    assert.equal(ours.role, role)
    const refused = (result.findings as SlowQuery[]).find((q) => q.query.includes('.tax(total)'))
    assert.ok(refused, result.summary)
    assert.equal(refused.plan, null)
    assert.deepEqual(refused.findings, [])
    assert.match(refused.note ?? '', /not planned: .*tax/)
    assert.match(refused.text, /- Plan: none \(not planned: /)
    const missing = ours.findings.find((f) => f.kind === 'missing_index')
    assert.ok(missing && missing.kind === 'missing_index', JSON.stringify(ours))
    assert.deepEqual(missing.columns, ['customer_id'])
    assert.match(
      missing.index_sql,
      new RegExp(
        `^create index concurrently .* on "?${schema}"?\\."?orders"? \\("?customer_id"?\\)`,
        'i',
      ),
    )
    assert.ok(missing.factor >= 2, `hypopg's gain ${missing.factor}`)
    assert.match(missing.text, /hypopg estimates the statement [\d,.]+× cheaper/)
    const scan = ours.findings.find((f) => f.kind === 'seq_scan')
    assert.ok(scan, 'the sequential scan over 60,000 rows is named too')
    assert.match(scan.fix, /the index above/)
    assert.match(
      ours.text,
      /^\d+\. `select id, total from .*orders where customer_id = \$1` — [\d.,]+ ms a call, 5 calls/,
    )
    assert.match(ours.text, /Fix: `create index concurrently/i)

    const [rec] = await sql<{ title: string; detail: Record<string, any> }[]>`
      select r.title, r.detail from vigil.recommendations r
       where r.kind = 'slow_query' and r.status = 'open' and r.key = ${ours.queryid}`
    assert.ok(rec, 'kept as a slow_query recommendation')
    assert.match(
      rec.title,
      /^Slow query #\d+: `select id, total from .*orders where customer_id = \$1`/,
    )
    assert.equal(rec.detail.findings[0].kind, 'missing_index')

    // As the maintenance function records it: a run today (what analyze shows) and one on a day of
    // 2023 of its own (what that day's report shows).
    const day = new Date(Date.UTC(2023, 2, 1 + (Math.floor(Date.now() / 1000) % 28)))
      .toISOString().slice(0, 10)
    for (const at of [new Date(), new Date(`${day}T12:00:00Z`)]) {
      await sql`
        insert into vigil.maintenance_runs (task, cadence, status, started_at, finished_at, lease_until,
                                            worker, summary, findings)
        values ('slow_query_report', 'daily', 'succeeded', ${at}, ${at}, ${at}, 'slow-queries-test',
                ${result.summary}, ${sql.json([ours] as never)})`
    }
    const { apiUrl, serviceRoleKey } = testStack()
    const call = (fn: string, body: unknown) =>
      fetch(`${apiUrl}/functions/v1/${fn}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${serviceRoleKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    const analysis = await call('analyze', { format: 'markdown' })
    assert.equal(analysis.status, 200)
    const markdown = await analysis.text()
    assert.match(markdown, /## Slow-query report \(\d{4}-\d\d-\d\dT\d\d:\d\d UTC\)/)
    assert.ok(markdown.includes(ours.text), markdown)

    const made = await call('report', { kind: 'daily', date: day, again: true })
    const madeBody = await made.json()
    assert.equal(made.status, 200, JSON.stringify(madeBody))
    const [stored] = await sql<{ text: string }[]>`
      select body_text as text from vigil.reports where id = ${madeBody.reports[0].id}`
    assert.match(stored.text, /TOP 1 SLOWEST QUERY/)
    assert.match(stored.text, /#\d+: Missing index on .*orders \(customer_id\): hypopg estimates/)

    // Nothing past the threshold any more: the report says so and its recommendations resolve.
    await sql`update vigil.settings set slow_query_ms = 3600000 where environment = 'prod'`
    const quiet = await slowQueryReport.run({
      sql: agent,
      env: () => undefined,
      signal: AbortSignal.timeout(60_000),
    })
    assert.match(quiet.summary, /^no statement over 3600000 ms a call.*not enough data/)
    const [after] = await sql<{ status: string }[]>`
      select status from vigil.recommendations where kind = 'slow_query' and key = ${ours.queryid}
       order by id desc limit 1`
    assert.equal(after.status, 'resolved')
  } finally {
    await sql`update vigil.settings set slow_query_ms = ${slow} where environment = 'prod'`
    await app.end()
    await sql`delete from vigil.maintenance_runs where worker = 'slow-queries-test'`
    await sql`delete from vigil.services where id = ${svc.id}`
    await sql.unsafe(`drop schema if exists ${schema} cascade; drop role if exists ${role}`)
    await sql.end()
    await agent.end()
  }
})

Deno.test('without pg_stat_statements the slow-query report is not applicable, and says why', async () => {
  const sql = testSql()
  const name = `sq_none_${Date.now().toString(36)}`
  await sql.unsafe(`create database ${name}`)
  const url = new URL(testStack().dbUrl)
  url.pathname = `/${name}`
  const bare = postgres(url.toString(), { max: 1, onnotice: () => {} })
  try {
    const result = await slowQueryReport.run({
      sql: bare,
      env: () => undefined,
      signal: AbortSignal.timeout(30_000),
    })
    assert.equal(result.status, 'not_applicable')
    assert.match(result.summary, /^pg_stat_statements is not installed in this database/)
  } finally {
    await bare.end()
    await sql.unsafe(`drop database if exists ${name}`)
    await sql.end()
  }
})
