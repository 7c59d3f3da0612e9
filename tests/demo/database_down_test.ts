// The chaos fault database_down on a private stack of its own (never the shared test stack's
// database): the cluster really stops (connection refused), the cycles fail and the dead man's
// switch stand-in hears nothing and turns down; the cluster starts again by itself, the stack
// (relay, gateway, functions, stand-ins) carries on without a restart, the first cycle finds
// Vigil's own heartbeat quiet past its allowance, an incident opens on vigil-health-check, a person
// is paged on a recording stand-in, and the incident resolves as the cycles resume. `clear` starts
// a stopped cluster at once. On a test's clock: the heartbeat allows 15 s, the outage lasts 25 s.
import assert from 'node:assert/strict'
import postgres from 'postgres'
import { faultNamed } from '../../demo/chaos/registry.ts'
import { startChaosStack } from '../../demo/chaos/suite.ts'
import { targetOf } from '../../demo/chaos/target.ts'
import { privateStateDir, type Stack } from '../../devstack/stack.ts'

const OUTAGE_S = 25
const HEARTBEAT_ALLOWANCE_S = 15

async function cycle(stack: Stack): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${stack.apiUrl}/functions/v1/health-check`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${stack.keys.service_role}`,
      'content-type': 'application/json',
    },
    body: '{}',
    signal: AbortSignal.timeout(30_000),
  })
  return { status: res.status, body: await res.json() }
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const v = await probe().catch(() => undefined)
    if (v !== undefined) return v
    await new Promise((r) => setTimeout(r, 500))
  }
  throw new Error(`${what} did not happen within ${ms / 1000} s`)
}

async function refused(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: '127.0.0.1', port })
    conn.close()
    return false
  } catch (error) {
    return error instanceof Deno.errors.ConnectionRefused
  }
}

Deno.test({
  name:
    'database_down: the cluster stops and starts again, the stack carries on, a person is paged',
  // The stack's own timers and sockets end with stack.stop().
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const fault = faultNamed('database_down')!
    const stateDir = await privateStateDir('vigil-database-down-test-')
    const stack = await startChaosStack(stateDir, { deadmanAllowanceS: HEARTBEAT_ALLOWANCE_S })
    const target = { ...targetOf(stack.dbUrl, stack.demo!, stateDir), outageSeconds: OUTAGE_S }
    const sql = postgres(stack.dbUrl, { max: 2, onnotice: () => {} })
    try {
      // Vigil's heartbeat on the test's clock; its failure threshold stays the default (3): the one
      // down check the first cycle after the outage writes is decisive (migration 003200).
      await sql`
        update vigil.services
           set config = ${sql.json({ source: 'cycles', period_seconds: 10, grace_seconds: 5 })}
         where name = 'vigil-health-check'`
      await sql`
        insert into vigil.contacts (name, role, channel, address, secret_name)
        values ('Outage team', 'team', 'slack', '#outage', 'VIGIL_LOCAL_SLACK_WEBHOOK_URL')`
      const first = await cycle(stack)
      assert.equal(first.status, 200, JSON.stringify(first.body))
      assert.equal(first.body.deadman, 'ok 200')
      assert.equal(stack.providers.deadman().status, 'up')

      const t0 = new Date()
      assert.match(await fault.inject(target), /is stopped; it starts again/)
      assert.equal(await fault.active(target), true)
      assert.match(await fault.inject(target), /already active/)
      assert.ok(await refused(stack.postgres.port), 'the cluster still accepts connections')

      // During: a cycle cannot even read its services, and pings nothing; the switch turns down.
      const pings = stack.providers.deadman().pings
      const during = await cycle(stack)
      assert.equal(during.status, 500)
      assert.match(String(during.body.error), /could not be recorded/)
      await until(
        'the dead man switch turning down',
        30_000,
        () => Promise.resolve(stack.providers.deadman().status === 'down' ? true : undefined),
      )
      assert.equal(stack.providers.deadman().pings, pings, 'pinged while the database was down')

      // After: the cluster starts by itself, the record goes, the stack carries on.
      await until('the cluster starting again', 60_000, async () => {
        await sql`select 1`
        return true
      })
      assert.ok(Date.now() - t0.getTime() >= OUTAGE_S * 1000, 'started again too soon')
      assert.equal(await fault.active(target), false)
      const incident = await until('an incident on vigil-health-check', 60_000, async () => {
        const after = await cycle(stack)
        assert.equal(after.status, 200, JSON.stringify(after.body))
        const [row] = await sql<{ id: string; kind: string; title: string }[]>`
          select i.id::text, i.kind, i.title from vigil.incidents i
            join vigil.services s on s.id = i.service_id
           where s.name = 'vigil-health-check' and i.opened_at >= ${t0}`
        return row
      })
      assert.equal(incident.kind, fault.expects.incident)
      assert.equal(stack.providers.deadman().status, 'up')
      // A person is told, through the relay and the notify function, on the Slack stand-in.
      await until(
        'the page on the Slack stand-in',
        60_000,
        () =>
          Promise.resolve(
            stack.providers.requests({ provider: 'slack', since: t0 })
                .some((r) => r.raw.includes('vigil-health-check'))
              ? true
              : undefined,
          ),
      )
      await until('the incident resolving as cycles resume', 60_000, async () => {
        await cycle(stack)
        const [row] = await sql<{ status: string }[]>`
          select status::text from vigil.incidents where id = ${incident.id}`
        return row.status === 'resolved' ? true : undefined
      })

      // clear starts a stopped cluster at once, and is harmless when nothing is left.
      await fault.inject({ ...target, outageSeconds: 600 })
      assert.ok(await refused(stack.postgres.port))
      assert.equal(await fault.clear(target), true)
      assert.equal(await fault.active(target), false)
      await sql`select 1`
      assert.equal(await fault.clear(target), false)
    } finally {
      await fault.clear(target).catch(() => {})
      await sql.end({ timeout: 1 })
      await stack.stop()
      await Deno.remove(stateDir, { recursive: true }).catch(() => {})
    }
  },
})
