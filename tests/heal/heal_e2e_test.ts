// Healing end to end on the running stack: a real blocking chain in the real database is seen by
// the health-check function, the incident trigger asks auto-heal (through vigil.invoke and the
// relay), and the root blocker is terminated so its waiter completes — all recorded in the audit.
import assert from 'node:assert/strict'
import postgres from 'postgres'
import { eventually, testSql, testStack } from '../_env.ts'
import { createLoginRole, postHealthCheck, retireService } from './_fixtures.ts'

async function cycle(services: string[]) {
  const res = await postHealthCheck(services)
  assert.equal(res.status, 200, await res.clone().text())
  return await res.json()
}

Deno.test({
  name:
    'a real blocking chain is detected in one cycle, its root blocker terminated though three unrelated services are down, its waiter completes, and the audit says so',
  sanitizeResources: false,
  async fn() {
    const sql = testSql(4)
    const name = `e2e-heal-own-db-${Date.now()}`
    const table = `e2e_heal_locks_${Date.now()}`
    // The application's own role: superuser sessions are protected and would never be touched.
    const role = `e2e_app_${Date.now()}`
    const appUrl = await createLoginRole(sql, role, 'e2e-app-password')
    const blocker = postgres(appUrl, {
      max: 1,
      onnotice: () => {},
      connection: { application_name: 'e2e-root-blocker' },
    })
    const waiter = postgres(appUrl, {
      max: 1,
      onnotice: () => {},
      connection: { application_name: 'e2e-waiter' },
    })
    await sql`update cron.job set active = false where jobname = 'vigil-health-check'`
    try {
      await sql.unsafe(
        `create table ${table} (id int primary key, v int); insert into ${table} values (1, 0)`,
      )
      await sql.unsafe(`grant select, update on ${table} to ${role}`)
      // The default failure threshold (3 checks): a wait past its threshold is lasting evidence,
      // so one cycle opens the incident.
      await sql`
        insert into vigil.services (name, kind, environment, config)
        values (${name}, 'postgres', 'dev', '{"blocked_warning_seconds": 1, "blocked_critical_seconds": 2}')`
      // Three unrelated services are down: that never holds back the database's own heal.
      for (const x of ['a', 'b', 'c']) {
        await sql`
          insert into vigil.services (name, kind, environment, config, status)
          values (${`${name}-unrelated-${x}`}, 'http', 'dev', '{"url": "http://127.0.0.1:9/"}', 'down')`
      }
      await sql`
        insert into vigil.heal_policies (environment, strategy, mode, config)
        values ('dev', 'terminate_blocker', 'auto', '{"min_wait_seconds": 1}')
        on conflict (environment, strategy) do update set mode = 'auto', config = excluded.config`

      // The root blocker takes a row lock and sits idle in its transaction; the waiter queues on it.
      // One connection, a plain BEGIN: postgres.js crashes when the server ends a reserved or
      // sql.begin() connection, and ending it is the point here.
      await blocker`begin`
      await blocker.unsafe(`update ${table} set v = 1 where id = 1`)
      const [{ pid: blockerPid }] = await blocker`select pg_backend_pid() as pid`
      const waited = waiter.unsafe(`update ${table} set v = 2 where id = 1`).then(
        () => 'completed',
        (e) => `failed: ${e.message}`,
      )
      await new Promise((r) => setTimeout(r, 2500))

      const report = await cycle([name])
      assert.equal(report.down, 1, 'the probe sees the chain past its critical wait')

      const outcome = await Promise.race([
        waited,
        new Promise((r) => setTimeout(() => r('still waiting after 30 s'), 30_000)),
      ])
      if (outcome !== 'completed') {
        const trail = await sql`
          select a.phase::text, a.outcome::text, a.detail from vigil.heal_actions a
            join vigil.services s on s.id = a.service_id where s.name = ${name} order by a.seq`
        const asked =
          await sql`select state, status_code, error, body from vigil.invocations where fn = 'auto-heal' order by id desc limit 3`
        assert.fail(
          `the waiter is ${outcome}; heal rows: ${JSON.stringify(trail)}; invocations: ${
            JSON.stringify(asked)
          }`,
        )
      }
      const alive = await sql`select 1 from pg_stat_activity where pid = ${blockerPid}`
      assert.equal(alive.length, 0, 'the blocker was terminated')
      const actions = await eventually(
        async () => {
          const rows = await sql`
          select a.phase::text, a.outcome::text, a.strategy, a.target, a.reason, a.detail
            from vigil.heal_actions a join vigil.services s on s.id = a.service_id
           where s.name = ${name} order by a.seq`
          return rows.length >= 2 ? rows : undefined
        },
        30_000,
        'the heal to be recorded',
      )
      assert.deepEqual(actions.map((a) => [a.phase, a.outcome, a.strategy]), [
        ['intent', 'pending', 'terminate_blocker'],
        ['result', 'succeeded', 'terminate_blocker'],
      ])
      assert.match(JSON.stringify(actions[0].target), new RegExp(`"pid":${blockerPid}\\b`))
      assert.match(actions[0].reason, /blocked/)
      const [audit] = await sql`select intact from vigil.verify_heal_audit()`
      assert.equal(audit.intact, true)
      const invocation = await eventually(
        async () => {
          const [row] = await sql`
          select i.state, i.status_code from vigil.invocations i
            join vigil.incidents inc on inc.id = (i.body ->> 'incident_id')::bigint
            join vigil.services s on s.id = inc.service_id
           where i.fn = 'auto-heal' and s.name = ${name} and i.state not in ('pending', 'sent')
           order by i.id limit 1`
          return row
        },
        10_000,
        'the auto-heal invocation to be recorded',
      )
      assert.deepEqual({ ...invocation }, { state: 'succeeded', status_code: 200 })
    } finally {
      await sql`update cron.job set active = true where jobname = 'vigil-health-check'`
      await sql`delete from vigil.services where name like ${`${name}-unrelated-%`}`
      await retireService(sql, name, 'terminate_blocker')
      await blocker.end({ timeout: 1 }).catch(() => {})
      await waiter.end({ timeout: 1 }).catch(() => {})
      await sql.unsafe(`drop table if exists ${table}`)
      await sql.unsafe(`drop role if exists ${role}`)
      await sql.end()
    }
  },
})

Deno.test({
  name:
    'a protected blocker pages on-call within one cycle and leaves the breaker closed; an ordinary chain on the same database is then healed',
  sanitizeResources: false,
  async fn() {
    const sql = testSql(4)
    const name = `e2e-heal-protected-${Date.now()}`
    const table = `e2e_heal_protected_${Date.now()}`
    const role = `e2e_app_p_${Date.now()}`
    const appUrl = await createLoginRole(sql, role, 'e2e-app-password')
    const session = (url: string, application: string) =>
      postgres(url, { max: 1, onnotice: () => {}, connection: { application_name: application } })
    // A superuser's session: protected by design, never signalled.
    const superBlocker = session(testStack().dbUrl, 'e2e-superuser-blocker')
    const appBlocker = session(appUrl, 'e2e-app-blocker')
    const waiter = session(appUrl, 'e2e-waiter')
    const heals = () =>
      sql<{ phase: string; outcome: string; strategy: string; detail: string | null }[]>`
        select a.phase::text, a.outcome::text, a.strategy, a.detail
          from vigil.heal_actions a join vigil.services s on s.id = a.service_id
         where s.name = ${name} order by a.seq`
    await sql`update cron.job set active = false where jobname in ('vigil-health-check', 'vigil-heal-retry')`
    try {
      await sql.unsafe(
        `create table ${table} (id int primary key, v int); insert into ${table} values (1, 0)`,
      )
      await sql.unsafe(`grant select, update on ${table} to ${role}`)
      await sql`
        insert into vigil.services (name, kind, environment, config, failure_threshold, success_threshold)
        values (${name}, 'postgres', 'dev', '{"blocked_warning_seconds": 1, "blocked_critical_seconds": 2}', 1, 1)`
      await sql`
        insert into vigil.heal_policies (environment, strategy, mode, config)
        values ('dev', 'terminate_blocker', 'auto', '{"min_wait_seconds": 1}')
        on conflict (environment, strategy) do update set mode = 'auto', config = excluded.config`

      await superBlocker`begin`
      await superBlocker.unsafe(`update ${table} set v = 1 where id = 1`)
      const [{ pid: superPid }] = await superBlocker`select pg_backend_pid() as pid`
      const firstWait = waiter.unsafe(`update ${table} set v = 2 where id = 1`).catch(() => {})
      await new Promise((r) => setTimeout(r, 2500))
      assert.equal((await cycle([name])).down, 1, 'the chain is seen')

      // One cycle: refused, recorded as such, and on-call paged at once.
      // (The refusal's rows are written before on-call is paged: wait for both.)
      const refused = await eventually(
        async () => {
          const rows = await heals()
          const [paged] = await sql`
            select 1 from vigil.incidents i join vigil.services s on s.id = i.service_id
             where s.name = ${name} and i.status = 'open' and i.escalation_level >= 3`
          return rows.some((r) => r.outcome === 'refused') && paged ? rows : undefined
        },
        30_000,
        'the refusal to be recorded and on-call paged',
      )
      assert.deepEqual(refused.map((r) => [r.phase, r.outcome, r.strategy]), [
        ['intent', 'pending', 'terminate_blocker'],
        ['result', 'refused', 'terminate_blocker'],
      ])
      assert.match(refused[1].detail!, /may not be touched: pid \d+: a superuser session/)
      const [inc] = await sql`
        select i.id, i.escalation_level, i.heal_attempts from vigil.incidents i
          join vigil.services s on s.id = i.service_id where s.name = ${name} and i.status = 'open'`
      assert.deepEqual(
        [inc.escalation_level, inc.heal_attempts],
        [3, 0],
        'on-call paged, no attempt used',
      )
      assert.equal((await sql`select 1 from pg_stat_activity where pid = ${superPid}`).length, 1)
      const [{ guard }] = await sql`
        select vigil.heal_guard(s.id, 'terminate_blocker') as guard from vigil.services s where s.name = ${name}`
      assert.equal(guard.breaker, 'closed', 'a refusal never counts as a failed heal')

      // The superuser lets go; the service recovers and the incident closes.
      await superBlocker`rollback`
      await firstWait
      await cycle([name])
      await eventually(
        async () => {
          const [row] = await sql`select status::text from vigil.incidents where id = ${inc.id}`
          return row.status === 'resolved' ? true : undefined
        },
        10_000,
        'the first incident to resolve',
      )

      // An ordinary chain on the same database: healed.
      await appBlocker`begin`
      await appBlocker.unsafe(`update ${table} set v = 3 where id = 1`)
      const [{ pid: appPid }] = await appBlocker`select pg_backend_pid() as pid`
      const secondWait = waiter.unsafe(`update ${table} set v = 4 where id = 1`).then(
        () => 'completed',
        (e) => `failed: ${e.message}`,
      )
      await new Promise((r) => setTimeout(r, 2500))
      assert.equal((await cycle([name])).down, 1)
      const outcome = await Promise.race([
        secondWait,
        new Promise((r) => setTimeout(() => r('still waiting after 30 s'), 30_000)),
      ])
      assert.equal(outcome, 'completed', JSON.stringify(await heals()))
      assert.equal((await sql`select 1 from pg_stat_activity where pid = ${appPid}`).length, 0)
      const last = await eventually(
        async () => {
          const rows = await heals()
          return rows.at(-1)?.outcome === 'succeeded' ? rows.at(-1) : undefined
        },
        30_000,
        'the heal to be recorded',
      )
      assert.equal(last!.strategy, 'terminate_blocker')
    } finally {
      await sql`update cron.job set active = true where jobname in ('vigil-health-check', 'vigil-heal-retry')`
      await retireService(sql, name, 'terminate_blocker')
      for (const c of [superBlocker, appBlocker, waiter]) {
        await c.end({ timeout: 1 }).catch(() => {})
      }
      await sql.unsafe(`drop table if exists ${table}`)
      await sql.unsafe(`drop role if exists ${role}`)
      await sql.end()
    }
  },
})
