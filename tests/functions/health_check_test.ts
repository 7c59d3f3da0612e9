// health-check end to end: services registered by plain SQL, probed by the real function through
// the gateway, statuses moved by the SQL state machine, incidents opened and resolved.
import assert from 'node:assert/strict'
import { eventually, testSql, testStack, withCronPaused } from '../_env.ts'
import { healthCycle } from '../heal/_fixtures.ts'

type Sql = ReturnType<typeof testSql>

/** A target whose health the test switches: up answers 200, down closes the listener. */
class Target {
  #server: Deno.HttpServer<Deno.NetAddr> | null = null
  constructor(readonly port: number) {}
  static start(): Target {
    const probe = Deno.listen({ hostname: '127.0.0.1', port: 0 })
    const port = (probe.addr as Deno.NetAddr).port
    probe.close()
    const target = new Target(port)
    target.up()
    return target
  }
  up() {
    this.#server = Deno.serve(
      { hostname: '127.0.0.1', port: this.port, onListen() {} },
      () => new Response('{"ok":true}'),
    )
  }
  async down() {
    await this.#server?.shutdown()
    this.#server = null
  }
  get url() {
    return `http://127.0.0.1:${this.port}/health`
  }
}

const cycle = healthCycle

async function status(sql: Sql, name: string): Promise<string> {
  const [row] = await sql`select status::text from vigil.services where name = ${name}`
  return row.status
}

Deno.test('a killed target is confirmed 5 s later, turns down on its second failed cycle, opens an incident, and recovery resolves it', async () => {
  const sql = testSql()
  const target = Target.start()
  const name = 'e2e-flaky-api'
  try {
    await withCronPaused(sql, ['vigil-health-check'], async () => {
      await sql`insert into vigil.services (name, kind, config, timeout_ms)
                values (${name}, 'http', ${sql.json({ url: target.url })}, 2000)`
      await cycle([name])
      await cycle([name])
      assert.equal(await status(sql, name), 'healthy')

      await target.down()
      // The first failure of a healthy service is probed again in the same cycle: two failures,
      // still within the threshold of three.
      const first = await cycle([name])
      assert.deepEqual(
        { ...(first.confirmation as Record<string, unknown>), cycle_id: undefined },
        { cycle_id: undefined, services: 1, still_failing: 1 },
      )
      assert.equal(await status(sql, name), 'healthy', 'two failures are within the hysteresis')
      const report = await cycle([name])
      assert.equal(report.confirmation, null, 'a service already failing is not confirmed again')
      assert.equal(report.down, 1)
      assert.equal(await status(sql, name), 'down')
      const [incident] = await sql`
        select i.status::text, i.severity::text, i.title from vigil.incidents i
          join vigil.services s on s.id = i.service_id where s.name = ${name}`
      assert.deepEqual({ ...incident }, {
        status: 'open',
        severity: 'critical',
        title: `${name} is down`,
      })
      const [check] = await sql`
        select c.error from vigil.checks c join vigil.services s on s.id = c.service_id
         where s.name = ${name} order by c.id desc limit 1`
      assert.match(check.error, /refused|connect/i)

      target.up()
      await cycle([name])
      assert.equal(await status(sql, name), 'down', 'one success is within the hysteresis')
      await cycle([name])
      assert.equal(await status(sql, name), 'healthy')
      const [resolved] = await sql`
        select i.status::text, i.resolved_at is not null as has_time from vigil.incidents i
          join vigil.services s on s.id = i.service_id where s.name = ${name}`
      assert.deepEqual({ ...resolved }, { status: 'resolved', has_time: true })
      const transitions = await sql`
        select t.from_status::text || '→' || t.to_status::text as t from vigil.status_transitions t
          join vigil.services s on s.id = t.service_id where s.name = ${name} order by t.id`
      assert.deepEqual(transitions.map((r) => r.t), [
        'unknown→healthy',
        'healthy→down',
        'down→healthy',
      ])
    })
  } finally {
    await target.down()
    await sql`delete from vigil.incidents where service_id in (select id from vigil.services where name = ${name})`
    await sql`delete from vigil.services where name = ${name}`
    await sql.end()
  }
})

Deno.test('the cron path: vigil.invoke(health-check) runs a cycle and its outcome is recorded', async () => {
  const sql = testSql()
  const target = Target.start()
  const name = 'e2e-invoked-api'
  try {
    await withCronPaused(sql, ['vigil-health-check'], async () => {
      await sql`insert into vigil.services (name, kind, config) values (${name}, 'http', ${
        sql.json({ url: target.url })
      })`
      const [{ id }] = await sql`select vigil.invoke('health-check', ${
        sql.json({ services: [name] })
      })::text as id`
      const done = await eventually(
        async () => {
          const [row] = await sql`select state, status_code from vigil.invocations where id = ${id}`
          return ['succeeded', 'failed', 'timed_out'].includes(row.state) ? row : undefined
        },
        30_000,
        'the invocation to finish',
      )
      assert.deepEqual({ ...done }, { state: 'succeeded', status_code: 200 })
      const [check] = await sql`
        select c.status::text, c.cycle_id is not null as in_cycle from vigil.checks c
          join vigil.services s on s.id = c.service_id where s.name = ${name}`
      assert.deepEqual({ ...check }, { status: 'healthy', in_cycle: true })
    })
  } finally {
    await target.down()
    await sql`delete from vigil.services where name = ${name}`
    await sql.end()
  }
})

Deno.test('health-check refuses a bad body with the field named, and GET', async () => {
  const { apiUrl, serviceRoleKey } = testStack()
  const headers = { authorization: `Bearer ${serviceRoleKey}`, 'content-type': 'application/json' }
  const bad = await fetch(`${apiUrl}/functions/v1/health-check`, {
    method: 'POST',
    headers,
    body: '{"services": "all", "extra": 1}',
  })
  assert.equal(bad.status, 400)
  const text = await bad.text()
  assert.match(text, /services/)
  assert.match(text, /extra/)
  const notJson = await fetch(`${apiUrl}/functions/v1/health-check`, {
    method: 'POST',
    headers,
    body: '{oops',
  })
  assert.equal(notJson.status, 400)
  await notJson.body?.cancel()
  const get = await fetch(`${apiUrl}/functions/v1/health-check`, { headers })
  assert.equal(get.status, 405)
  await get.body?.cancel()
  const anonymous = await fetch(`${apiUrl}/functions/v1/health-check`, {
    method: 'POST',
    body: '{}',
  })
  assert.equal(anonymous.status, 401, 'verify_jwt holds for health-check')
  await anonymous.body?.cancel()
})

Deno.test('a job pinging its heartbeat keeps its service healthy; an unknown token is a 404', async () => {
  const sql = testSql()
  const name = 'e2e-nightly-job'
  try {
    await sql`insert into vigil.services (name, kind, config)
              values (${name}, 'heartbeat', '{"source": "ping", "period_seconds": 60, "grace_seconds": 30}')`
    const [{ token }] = await sql`
      select t.token from vigil.heartbeat_tokens t join vigil.services s on s.id = t.service_id where s.name = ${name}`
    const { apiUrl } = testStack()
    const ping = await fetch(`${apiUrl}/functions/v1/heartbeat/${token}`, {
      method: 'POST',
      body: 'done',
    })
    assert.equal(ping.status, 200)
    assert.deepEqual(await ping.json(), { ok: true, service: name })
    const [{ pings }] = await sql`
      select t.pings::int from vigil.heartbeat_tokens t join vigil.services s on s.id = t.service_id where s.name = ${name}`
    assert.equal(pings, 1)
    for (const bogus of ['0'.repeat(64), 'not-a-token', `${token}x`]) {
      const res = await fetch(`${apiUrl}/functions/v1/heartbeat/${bogus}`)
      assert.equal(res.status, 404, bogus)
      await res.body?.cancel()
    }
    const report = await cycle([name])
    assert.equal(report.healthy, 1)
  } finally {
    await sql`delete from vigil.services where name = ${name}`
    await sql.end()
  }
})

Deno.test('the function connects as vigil_agent: its cycle is recorded by that role', async () => {
  const sql = testSql()
  try {
    const [before] = await sql`
      select coalesce(sum(calls), 0)::int as calls from extensions.pg_stat_statements
      where query like '%vigil.record_cycle%' and userid = 'vigil_agent'::regrole`
    await cycle(['no-such-service-anywhere'])
    const [after] = await sql`
      select coalesce(sum(calls), 0)::int as calls from extensions.pg_stat_statements
      where query like '%vigil.record_cycle%' and userid = 'vigil_agent'::regrole`
    assert.ok(after.calls > before.calls, 'record_cycle ran as vigil_agent')
  } finally {
    await sql.end()
  }
})
