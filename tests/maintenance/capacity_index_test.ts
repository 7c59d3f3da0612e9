// capacity_planning and index_review on the real local database, run as vigil_agent: projections
// from 30 days of planted hourly metrics and the capacity_forecast incident they open and resolve;
// planted unused, duplicate and invalid indexes and an advisor's recommendation, each with its fix.
import assert from 'node:assert/strict'
import {
  capacityEnv,
  capacityPlanning,
  fitTrend,
  theilSen,
} from '../../supabase/functions/_shared/maintenance/tasks/capacity-planning.ts'
import {
  type IndexFinding,
  indexReview,
  type IndexRow,
  reviewIndexes,
} from '../../supabase/functions/_shared/maintenance/tasks/index-review.ts'
import { TaskError } from '../../supabase/functions/_shared/maintenance/types.ts'
import { MANAGED_SCHEMAS } from '../../supabase/functions/_shared/managed-schemas.ts'
import { agentSql, testSql } from '../_env.ts'

const GiB = 1024 ** 3
const MiB = 1024 ** 2
const DISK_LIMIT = 10 * GiB
const GROWTH_PER_DAY = 120 * MiB

interface Forecast {
  service: string
  metric: string
  current: number | null
  slope_per_day: number | null
  days_left: number | null
  reaches_on: string | null
  outlook: string
  confidence: string
  notes: string[]
}

Deno.test('Theil–Sen: one wild hour does not move the slope; under 24 hourly points, no trend', () => {
  const xs = Array.from({ length: 48 }, (_, h) => h / 24)
  const ys = xs.map((x) => 1000 + 50 * x)
  ys[30] = 1e9 // a bulk load deleted an hour later
  assert.equal(theilSen(xs, ys).slope, 50)
  const trend = fitTrend(xs, ys)!
  assert.equal(trend.points, 48)
  assert.equal(trend.slope_per_day, 50)
  assert.equal(fitTrend(xs.slice(0, 23), ys.slice(0, 23)), null)
})

Deno.test('capacity settings: every bad value is named at once', () => {
  const env = (values: Record<string, string>) => (name: string) => values[name]
  const defaults = capacityEnv(env({ VIGIL_DISK_LIMIT_BYTES: ' ' }))
  assert.equal(defaults.VIGIL_CAPACITY_ALERT_DAYS, 14)
  assert.equal(defaults.VIGIL_DISK_LIMIT_BYTES, undefined, 'blank is unset, not 0')
  assert.throws(
    () => capacityEnv(env({ VIGIL_DISK_LIMIT_BYTES: '-1', VIGIL_CAPACITY_ALERT_DAYS: 'soon' })),
    (e: Error) =>
      e instanceof TaskError && /VIGIL_DISK_LIMIT_BYTES/.test(e.message) &&
      /VIGIL_CAPACITY_ALERT_DAYS/.test(e.message),
  )
})

Deno.test('capacity_planning: disk full in about 6 days opens a capacity_forecast incident; flat resolves it', async () => {
  const sql = testSql()
  const agent = agentSql()
  const stamp = Date.now().toString(36)
  const service = `cap-db-${stamp}`
  const young = `cap-young-${stamp}`
  const frozen = `cap-frozen-${stamp}`
  const env = (name: string) => (name === 'VIGIL_DISK_LIMIT_BYTES' ? String(DISK_LIMIT) : undefined)
  const run = () => capacityPlanning.run({ sql: agent, env, signal: AbortSignal.timeout(30_000) })
  const mine = (findings: unknown[] | undefined, name = service) =>
    Object.fromEntries(
      (findings as Forecast[]).filter((f) => f.service === name).map((f) => [f.metric, f]),
    )
  const incidents = () =>
    sql<{ status: string; severity: string; title: string; detail: Record<string, unknown> }[]>`
      select i.status::text, i.severity::text, i.title, i.detail
        from vigil.incidents i join vigil.services s on s.id = i.service_id
       where s.name = ${service} and i.kind = 'capacity_forecast' order by i.id`
  try {
    const [{ id }] = await sql`
      insert into vigil.services (name, kind, environment, config, heal_enabled)
      values (${service}, 'postgres', 'dev', '{}', false) returning id`
    const [{ id: youngId }] = await sql`
      insert into vigil.services (name, kind, environment, config, heal_enabled)
      values (${young}, 'postgres', 'dev', '{}', false) returning id`
    const [{ id: frozenId }] = await sql`
      insert into vigil.services (name, kind, environment, config, heal_enabled)
      values (${frozen}, 'postgres', 'dev', '{}', false) returning id`
    await sql`
      insert into vigil.metrics (service_id, name, value, recorded_at)
      select ${frozenId}, 'xid_age', 250e6, now() - make_interval(hours => h)
        from generate_series(0, 29) h`
    // 720 hours up to now: size 6 days of growth short of the limit, XID age 1M a day from 130M,
    // connections flat around 5 (4, 5, 6 in turn).
    const full = DISK_LIMIT - 6 * GROWTH_PER_DAY
    await sql`
      insert into vigil.metrics (service_id, name, value, recorded_at)
      select ${id}, m.name::vigil.metric_name, m.value, now() - make_interval(hours => h)
        from generate_series(0, 719) h,
        lateral (values
          ('database_size_bytes', ${full}::float8 - ${GROWTH_PER_DAY}::float8 * h / 24),
          ('xid_age', 130e6 - 1e6 * h / 24.0),
          ('active_connections', 5 + (h % 3) - 1)) m(name, value)`
    await sql`
      insert into vigil.metrics (service_id, name, value, recorded_at)
      select ${youngId}, 'database_size_bytes', 1e9 + h, now() - make_interval(hours => h)
        from generate_series(0, 9) h`

    const [{ max }] = await sql`select current_setting('max_connections') as max`
    const first = await run()
    assert.equal(first.status, 'succeeded')
    const f = mine(first.findings)
    const size = f.database_size_bytes
    assert.equal(size.outlook, 'reaches its limit')
    assert.ok(Math.abs(size.days_left! - 6) < 0.1, `days left ${size.days_left}`)
    assert.ok(Math.abs(size.slope_per_day! - GROWTH_PER_DAY) < 1, `slope ${size.slope_per_day}`)
    const sixDays = new Date(Date.now() + 6 * 86_400_000).toISOString().slice(0, 10)
    assert.equal(size.reaches_on, sixDays)
    assert.match(size.confidence, /^720 hourly points over (29\.\d|30) days, r² 1\b/)
    assert.equal(f.xid_age.outlook, 'not within 365 days')
    assert.ok(Math.abs(f.xid_age.slope_per_day! - 1e6) < 1)
    assert.match(f.xid_age.notes.join(' '), /autovacuum_freeze_max_age \(200M\) in about 70 days/)
    assert.equal(f.active_connections.outlook, 'flat or falling')
    assert.equal(f.active_connections.slope_per_day, 0)
    assert.ok(
      first.summary.includes(
        `${service}: 9.3 GB, +120 MB/day, disk full in about 6 days (${sixDays}); ` +
          `XID age 130M, +1M/day, XID wraparound not within 365 days; connections 4 of ${max}, flat`,
      ),
      first.summary,
    )
    assert.ok(first.summary.includes(`${young}: not enough history yet`), first.summary)
    // Flat, but already past the age where anti-wraparound vacuums start: said whatever the trend.
    assert.ok(
      first.summary.includes(
        `${frozen}: database size: not enough history yet; XID age 250M, +0/day, flat or falling ` +
          '(past autovacuum_freeze_max_age (200M): freezing vacuums are not keeping up',
      ),
      first.summary,
    )
    const y = mine(first.findings, young)
    assert.equal(y.database_size_bytes.outlook, 'not enough history yet')
    assert.match(y.database_size_bytes.confidence, /^10 hourly point\(s\) of the 24/)

    const [opened] = await incidents()
    assert.deepEqual([opened.status, opened.severity], ['open', 'warning'])
    assert.equal(opened.title, `${service}: disk full in about 6 days`)
    const [detailForecast] = opened.detail.forecasts as Forecast[]
    assert.equal(detailForecast.metric, 'database_size_bytes')
    assert.equal(detailForecast.reaches_on, sixDays)
    assert.deepEqual(
      (first.actions as { service: string; action: string }[]).find((a) => a.service === service)
        ?.action,
      'opened',
    )
    const [{ n: youngIncidents }] = await sql`
      select count(*)::int as n from vigil.incidents where service_id = ${youngId}`
    assert.equal(youngIncidents, 0, 'too little history opens nothing')

    // Again, unchanged: the same incident, updated, not a second one.
    const again = await run()
    assert.equal((await incidents()).length, 1)
    assert.equal(
      (again.actions as { service: string; action: string }[]).find((a) => a.service === service)
        ?.action,
      'updated',
    )

    // The growth stops: nothing reaches its limit within 14 days, the incident is resolved.
    await sql`delete from vigil.metrics where service_id = ${id} and name = 'database_size_bytes'`
    await sql`
      insert into vigil.metrics (service_id, name, value, recorded_at)
      select ${id}, 'database_size_bytes', ${full}::float8, now() - make_interval(hours => h)
        from generate_series(0, 719) h`
    const flat = await run()
    assert.equal(mine(flat.findings).database_size_bytes.outlook, 'flat or falling')
    assert.ok(flat.summary.includes(`${service}: 9.3 GB, +0 bytes/day, flat or falling`))
    const after = await incidents()
    assert.deepEqual(after.map((i) => i.status), ['resolved'])
    assert.equal(after[0].detail.resolved_by, 'capacity_planning')

    // Without a disk limit the size is projected to nothing, and says so.
    const noLimit = await capacityPlanning.run({
      sql: agent,
      env: () => undefined,
      signal: AbortSignal.timeout(30_000),
    })
    assert.equal(mine(noLimit.findings).database_size_bytes.outlook, 'no limit known')
    assert.ok(
      noLimit.summary.includes(`${service}: 9.3 GB, +0 bytes/day, no disk limit configured`),
    )
  } finally {
    await sql`update vigil.incidents set status = 'resolved', resolved_at = now()
               where status = 'open' and service_id in (
                 select id from vigil.services where name in (${service}, ${young}, ${frozen}))`
    await sql`update vigil.services set enabled = false
               where name in (${service}, ${young}, ${frozen})`
    await agent.end()
    await sql.end()
  }
})

Deno.test('index_review: unused, duplicate, invalid and missing indexes, each with its fix', async () => {
  const sql = testSql()
  const agent = agentSql()
  const stamp = Date.now().toString(36)
  const schema = `t_idx_${stamp}`
  const service = `idx-db-${stamp}`
  try {
    await sql.unsafe(`
      create schema ${schema};
      create table ${schema}.orders (id int primary key, customer int, status text, created date);
      insert into ${schema}.orders
        select g, g % 500, (array['new', 'paid', 'shipped'])[g % 3 + 1], date '2026-01-01' + g % 300
          from generate_series(1, 20000) g;
      create index orders_status on ${schema}.orders (status);
      create index orders_customer_a on ${schema}.orders (customer);
      create index orders_customer_b on ${schema}.orders (customer);
      create index orders_customer_created on ${schema}.orders (customer, created);
      create table ${schema}.codes (code int);
      insert into ${schema}.codes values (1), (1);`)
    // A failed CREATE INDEX CONCURRENTLY (outside a transaction) leaves its index invalid.
    await assert.rejects(
      sql.unsafe(`create unique index concurrently codes_code on ${schema}.codes (code)`),
      (e: { code?: string }) => e.code === '23505',
    )
    const [{ id }] = await sql`
      insert into vigil.services (name, kind, environment, config, heal_enabled)
      values (${service}, 'postgres', 'dev', '{}', false) returning id`
    const create = `CREATE INDEX CONCURRENTLY IF NOT EXISTS "vigil_idx_orders_created" ON ` +
      `"${schema}"."orders" ("created")`
    await sql`
      insert into vigil.recommendations (service_id, kind, key, title, detail)
      values (${id}, 'index', ${`${schema}.vigil_idx_orders_created`}, ${create},
              ${
      sql.json({
        schema,
        table: 'orders',
        columns: ['created'],
        statement: 'select * from orders where created = $1',
        mean_ms: 84.2,
        calls: 1200,
        cost_before: 389.5,
        cost_after: 8.3,
        factor: 46.93,
      })
    })`

    const result = await indexReview.run({
      sql: agent,
      env: () => undefined,
      signal: AbortSignal.timeout(30_000),
    })
    assert.equal(result.status, 'succeeded')
    const findings = result.findings as (IndexFinding & Record<string, unknown>)[]
    const about = (index: string) => findings.filter((f) => f.index === `${schema}.${index}`)
    const kinds = (index: string) => about(index).map((f) => f.kind).sort()

    assert.deepEqual(kinds('orders_status'), ['unused'])
    assert.equal(about('orders_status')[0].fix, `drop index concurrently ${schema}.orders_status;`)
    assert.ok((about('orders_status')[0].size_bytes as number) > 8 * 8192)

    const [dupB] = about('orders_customer_b').filter((f) => f.kind === 'duplicate')
    assert.equal(dupB.covered_by, `${schema}.orders_customer_a`)
    assert.equal(dupB.how, 'same definition')
    assert.equal(dupB.fix, `drop index concurrently ${schema}.orders_customer_b;`)
    const [prefixA] = about('orders_customer_a').filter((f) => f.kind === 'duplicate')
    assert.equal(prefixA.covered_by, `${schema}.orders_customer_created`)
    assert.equal(prefixA.how, 'leading prefix')
    assert.equal(
      about('orders_customer_created').filter((f) => f.kind === 'duplicate').length,
      0,
      'the longer index is the one kept',
    )

    const [invalid] = about('codes_code')
    assert.equal(invalid.kind, 'invalid')
    assert.equal(invalid.fix, `reindex index concurrently ${schema}.codes_code;`)
    assert.equal(invalid.alternative, `drop index concurrently ${schema}.codes_code;`)
    assert.match(invalid.note as string, /failed on duplicate values/)

    assert.deepEqual(about('orders_pkey'), [], 'a primary key is never unused')
    assert.ok(!findings.some((f) => String(f.index).startsWith('vigil.')), 'Vigil’s schema skipped')

    const [missing] = findings.filter((f) => f.kind === 'missing' && f.service === service)
    assert.equal(missing.index, `${schema}.vigil_idx_orders_created`)
    assert.equal(missing.table, `${schema}.orders`)
    assert.equal(missing.fix, `${create};`)
    assert.equal(
      missing.estimated_gain,
      'estimated cost 389.5 → 8.3 (46.9× cheaper, hypopg) for a statement averaging 84.2 ms over 1200 calls',
    )
    assert.match(result.summary, /\d+ unused, \d+ duplicate, \d+ invalid, \d+ missing/)

    // Report-only: every index is still there.
    const [{ n }] = await sql`
      select count(*)::int as n from pg_indexes where schemaname = ${schema}`
    assert.equal(n, 6)
  } finally {
    await sql`update vigil.recommendations set status = 'resolved', resolved_at = now()
               where status = 'open' and service_id in (select id from vigil.services where name = ${service})`
    await sql`update vigil.services set enabled = false where name = ${service}`
    await sql.unsafe(`drop schema if exists ${schema} cascade`)
    await agent.end()
    await sql.end()
  }
})

Deno.test('index_review: a REINDEX CONCURRENTLY leftover is dropped, not rebuilt; one being built is left alone', () => {
  const row = (index: string, over: Partial<IndexRow> = {}): IndexRow => ({
    oid: index.length,
    schema: 'app',
    table: 't',
    index,
    qualified: `app.${index}`,
    method: 'btree',
    unique: false,
    primary: false,
    valid: false,
    ready: true,
    constraint_name: null,
    replica_identity: false,
    partition: false,
    building: false,
    key_count: 1,
    columns: [2],
    opclasses: ['1978'],
    collations: ['0'],
    options: ['0'],
    expressions: null,
    predicate: null,
    pages: 100,
    bytes: 819_200,
    scans: 0,
    definition: `CREATE INDEX ${index} ON app.t USING btree (b)`,
    ...over,
  })
  const findings = reviewIndexes(
    [row('t_b_idx_ccnew'), row('t_b_building_idx', { building: true })],
    null,
  )
  assert.equal(findings.length, 1)
  assert.equal(findings[0].kind, 'invalid')
  assert.equal(findings[0].fix, 'drop index concurrently app.t_b_idx_ccnew;')
})

Deno.test('the managed schemas are the ones vigil.unindexable_schema refuses, and only those', async () => {
  const sql = testSql()
  try {
    const listed = JSON.stringify([...MANAGED_SCHEMAS, 'public', 'app'])
    const rows = await sql<{ schema: string; refused: boolean }[]>`
      select s as schema, vigil.unindexable_schema(s) as refused
        from jsonb_array_elements_text(${listed}::text::jsonb) s`
    assert.deepEqual(
      rows.filter((r) => r.refused).map((r) => r.schema),
      [...MANAGED_SCHEMAS],
    )
    // Same length as the SQL array: a schema added on one side only fails here.
    const [{ n }] = await sql`
      select array_length(regexp_split_to_array(substring(
        pg_get_functiondef('vigil.unindexable_schema(text)'::regprocedure)
        from ${String.raw`array\[([^\]]*)\]`}), ','), 1) as n`
    assert.equal(n, MANAGED_SCHEMAS.size)
  } finally {
    await sql.end()
  }
})
