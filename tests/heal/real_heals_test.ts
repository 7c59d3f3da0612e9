// Real problems in the real database, each detected by the real probe, healed by the real strategy,
// verified and audited: connections exhausted by idle sessions (through the whole running stack),
// and a slow query on a large table without an index (the engine on a real check).
import assert from 'node:assert/strict'
import postgres from 'postgres'
import { runCycle } from '../../supabase/functions/_shared/health/cycle.ts'
import { healIncident } from '../../supabase/functions/_shared/heal/engine.ts'
import { agentSql, eventually, testSql, testStack } from '../_env.ts'
import { createLoginRole, postHealthCheck, retireService } from './_fixtures.ts'

type Sql = ReturnType<typeof testSql>

/** A non-superuser application role: superuser sessions are protected from every heal. */
async function withAppRole<T>(sql: Sql, fn: (url: string, role: string) => Promise<T>): Promise<T> {
  const role = `real_heal_app_${Date.now()}`
  const url = await createLoginRole(sql, role, 'real-heal-password')
  try {
    return await fn(url, role)
  } finally {
    await sql.unsafe(
      `select pg_terminate_backend(pid) from pg_stat_activity where usename = '${role}'`,
    )
    await sql.unsafe(`drop owned by ${role}`).catch(() => {})
    await sql.unsafe(`drop role if exists ${role}`).catch(() => {})
  }
}

Deno.test({
  name:
    'idle sessions exhausting the connections are found, the oldest terminated, usage back under target, audited',
  sanitizeResources: false,
  async fn() {
    const sql = testSql(2)
    const name = `real-heal-connections-${Date.now()}`
    const clients: postgres.Sql[] = []
    await sql`update cron.job set active = false where jobname in ('vigil-health-check', 'vigil-heal-retry')`
    try {
      await withAppRole(sql, async (url) => {
        const [{ used, max }] = await sql`
          select (select count(*) from pg_stat_activity where backend_type = 'client backend')::int as used,
                 current_setting('max_connections')::int as max`
        const needed = Math.ceil(max * 0.92) - used
        for (let i = 0; i < needed; i++) {
          const client = postgres(url, {
            max: 1,
            onnotice: () => {},
            connection: { application_name: `idle-app-${i}` },
          })
          await client`select 1`
          clients.push(client)
        }
        await sql`
          insert into vigil.services (name, kind, environment, config, failure_threshold)
          values (${name}, 'postgres', 'dev', '{"connections_warning_pct": 80, "connections_critical_pct": 85}', 1)`
        await sql`
          insert into vigil.heal_policies (environment, strategy, mode, config)
          values ('dev', 'kill_idle_connections', 'auto', '{"idle_minutes": 0.01, "trigger_pct": 85, "target_pct": 60}')
          on conflict (environment, strategy) do update set mode = 'auto', config = excluded.config`
        await new Promise((r) => setTimeout(r, 1500)) // idle for longer than idle_minutes

        const res = await postHealthCheck([name])
        const report = await res.json()
        assert.equal(report.down, 1, `the probe sees the exhaustion: ${JSON.stringify(report)}`)

        const result = await eventually(
          async () => {
            const [row] = await sql`
            select a.outcome::text, a.detail, a.measurements_before, a.measurements_after, a.target
              from vigil.heal_actions a join vigil.services s on s.id = a.service_id
             where s.name = ${name} and a.phase = 'result'`
            return row
          },
          30_000,
          'the heal result',
        )
        assert.equal(result.outcome, 'succeeded', result.detail)
        const [{ usage }] = await sql`
          select round(100.0 * count(*) / current_setting('max_connections')::int)::int as usage
            from pg_stat_activity where backend_type = 'client backend'`
        assert.ok(usage < 70, `usage fell to ${usage} %`)
        const terminated = (result.target.sessions as { application_name: string }[]).map((s) =>
          s.application_name
        )
        assert.ok(
          terminated.length > 0 && terminated.every((n) => n.startsWith('idle-app-')),
          `only the app's idle sessions: ${terminated}`,
        )
        assert.equal(terminated[0], 'idle-app-0', 'the oldest first')
      })
    } finally {
      await Promise.all(clients.map((c) => c.end({ timeout: 1 }).catch(() => {})))
      await sql`update cron.job set active = true where jobname in ('vigil-health-check', 'vigil-heal-retry')`
      await retireService(sql, name, 'kill_idle_connections')
      await sql.end()
    }
  },
})

Deno.test({
  name:
    'a slow query on a large table without an index gets the index, verified by the planner, audited',
  sanitizeResources: false,
  async fn() {
    const sql = testSql(4)
    const agent = agentSql(4)
    const name = `real-heal-slow-query-${Date.now()}`
    const table = `real_heal_orders_${Date.now()}`
    try {
      await withAppRole(sql, async (url, role) => {
        await sql.unsafe(`
          create table ${table} (id bigint primary key, customer int, note text);
          insert into ${table} select g, g % 5000, md5(g::text) from generate_series(1, 200000) g;
          analyze ${table};
          grant select on ${table} to ${role}`)
        // Only the application's statements in the statistics, as on a database that ran for a while.
        await sql`select extensions.pg_stat_statements_reset()`
        const app = postgres(url, { max: 1, onnotice: () => {} })
        for (let i = 0; i < 20; i++) {
          await app.unsafe(`select * from ${table} where customer = $1`, [i])
        }
        await app.end()
        await sql`update vigil.settings set slow_query_ms = 1 where environment = 'dev'`
        await sql`
          insert into vigil.services (name, kind, environment, config) values (${name}, 'postgres', 'dev', '{"slow_statements": 20}')`
        await sql`
          insert into vigil.heal_policies (environment, strategy, mode, config)
          values ('dev', 'add_missing_index', 'auto', '{"mode": "create", "min_mean_ms": 1, "min_calls": 5}')
          on conflict (environment, strategy) do update set mode = 'auto', config = excluded.config`

        // Vigil runs as its agent, which owns nothing: the index is built by vigil.build_index.
        // The cycle opens the slow_queries incident; its heal request is held so that only this
        // test's engine acts.
        const db = testStack().agentDbUrl
        await sql`alter table vigil.incidents disable trigger incidents_request_heal`
        const cycle = await runCycle({
          sql: agent,
          only: [name],
          projectUrl: 'http://127.0.0.1:1',
          secret: (n) => (n === 'VIGIL_DB_URL' ? db : undefined),
        })
        const [check] =
          await sql`select measurements -> 'statements' -> 'slow' as slow from vigil.checks where cycle_id = ${cycle.cycle_id}`
        assert.ok(JSON.stringify(check.slow).includes(table), 'the probe lists the slow statement')

        const [{ id }] = await sql`
          select i.id::int from vigil.incidents i join vigil.services s on s.id = i.service_id
           where s.name = ${name} and i.kind = 'slow_queries' and i.status = 'open'`
        await sql`alter table vigil.incidents enable trigger incidents_request_heal`

        const report = await healIncident({ incidentId: id }, {
          sql: agent,
          projectUrl: 'http://127.0.0.1:1',
          secret: (n) => (n === 'VIGIL_DB_URL' ? db : undefined),
        })
        assert.equal(report.outcome, 'succeeded', report.detail)
        assert.equal(report.strategy, 'add_missing_index')
        const indexes = await sql`
          select indexname, indexdef from pg_indexes where tablename = ${table} and indexname like 'vigil_idx_%'`
        assert.equal(indexes.length, 1)
        assert.match(indexes[0].indexdef, /\(customer\)/)
        const [built] = await sql`
          select built_by from vigil.built_indexes where index_name = ${
          indexes[0].indexname
        } and dropped_at is null`
        assert.equal(
          built?.built_by,
          'vigil_agent',
          'built in place by vigil.build_index for the agent',
        )
        const rows = await sql`
          select phase::text, outcome::text from vigil.heal_actions where incident_id = ${id} order by seq`
        assert.deepEqual(rows.map((r) => [r.phase, r.outcome]), [['intent', 'pending'], [
          'result',
          'succeeded',
        ]])
      })
    } finally {
      await sql`alter table vigil.incidents enable trigger incidents_request_heal`
      await sql`update vigil.settings set slow_query_ms = 1000 where environment = 'dev'`
      await retireService(sql, name, 'add_missing_index')
      await sql.unsafe(`drop table if exists ${table}`)
      await sql.end()
      await agent.end()
    }
  },
})

Deno.test({
  name:
    'a slow statement on a large table opens a slow_queries incident, and the advisor leaves an index recommendation',
  sanitizeResources: false,
  async fn() {
    const sql = testSql(4)
    const agent = agentSql(4)
    const name = `real-heal-recommend-${Date.now()}`
    const table = `real_heal_visits_${Date.now()}`
    await sql`update cron.job set active = false where jobname in ('vigil-health-check', 'vigil-heal-retry')`
    try {
      await withAppRole(sql, async (url, role) => {
        await sql.unsafe(`
          create table ${table} (id bigint primary key, patient int, note text);
          insert into ${table} select g, g % 5000, md5(g::text) from generate_series(1, 200000) g;
          analyze ${table};
          grant select on ${table} to ${role}`)
        await sql`select extensions.pg_stat_statements_reset()`
        const app = postgres(url, { max: 1, onnotice: () => {} })
        for (let i = 0; i < 20; i++) {
          await app.unsafe(`select * from ${table} where patient = $1`, [i])
        }
        await app.end()
        await sql`update vigil.settings set slow_query_ms = 1 where environment = 'dev'`
        // No policy: add_missing_index suggests, the default.
        await sql`delete from vigil.heal_policies where environment = 'dev' and strategy = 'add_missing_index'`
        await sql`insert into vigil.services (name, kind, environment) values (${name}, 'postgres', 'dev')`

        await runCycle({
          sql: agent,
          only: [name],
          projectUrl: 'http://127.0.0.1:1',
          secret: (n) => (n === 'VIGIL_DB_URL' ? testStack().agentDbUrl : undefined),
        })
        const [incident] = await sql`
          select i.id, i.kind, i.severity::text from vigil.incidents i join vigil.services s on s.id = i.service_id
           where s.name = ${name} and i.status = 'open'`
        assert.deepEqual([incident?.kind, incident?.severity], ['slow_queries', 'warning'])

        // The incident asked the real auto-heal (through the relay): its suggestion is kept.
        const recommendation = await eventually(
          async () => {
            const [row] = await sql`
            select r.kind, r.title, r.detail, r.status, r.incident_id from vigil.recommendations r
              join vigil.services s on s.id = r.service_id where s.name = ${name}`
            return row
          },
          30_000,
          'the recommendation',
        )
        assert.equal(recommendation.kind, 'index')
        assert.equal(recommendation.status, 'open')
        assert.equal(recommendation.incident_id, incident.id)
        assert.match(
          recommendation.title,
          new RegExp(`^CREATE INDEX CONCURRENTLY .*"${table}" \\("patient"\\)$`),
        )
        assert.ok(recommendation.detail.factor >= 2, 'with its estimated gain')
        const indexes =
          await sql`select 1 from pg_indexes where tablename = ${table} and indexname like 'vigil_idx_%'`
        assert.equal(indexes.length, 0, 'suggested, not built')
      })
    } finally {
      await sql`update cron.job set active = true where jobname in ('vigil-health-check', 'vigil-heal-retry')`
      await sql`update vigil.settings set slow_query_ms = 1000 where environment = 'dev'`
      await retireService(sql, name, 'add_missing_index')
      await sql`update vigil.incidents set status = 'resolved', resolved_at = now()
                 where status = 'open' and service_id in (select id from vigil.services where name = ${name})`
      await sql.unsafe(`drop table if exists ${table}`)
      await sql.end()
      await agent.end()
    }
  },
})
