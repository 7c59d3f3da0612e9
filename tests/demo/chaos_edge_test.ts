// The edge faults (demo/chaos/edge-faults.ts) on a private stack with its demo, so the gateway
// serves the demo's own function and the functions trust the demo's CA as they would any CA: each
// fault is really there (the served certificate's notAfter days away; the function answering 500),
// harmless twice, found by Vigil (an incident with the fault's finding), healed by
// renew_certificate or paged to a person, and removed by clear — also from a crashed run's record.
import assert from 'node:assert/strict'
import postgres from 'postgres'
import { faultNamed } from '../../demo/chaos/registry.ts'
import { readRecord, writeRecord } from '../../demo/chaos/procs.ts'
import { startChaosStack } from '../../demo/chaos/suite.ts'
import { targetOf } from '../../demo/chaos/target.ts'
import { DEMO_FUNCTION } from '../../demo/main.ts'
import { privateStateDir, type Stack } from '../../devstack/stack.ts'
import { readCertificateExpiry } from '../../supabase/functions/_shared/probes/http.ts'
import { eventually } from '../_env.ts'

const DAY_MS = 86_400_000

async function cycle(stack: Stack): Promise<void> {
  const res = await fetch(`${stack.apiUrl}/functions/v1/health-check`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${stack.keys.service_role}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ trigger: 'manual' }),
    signal: AbortSignal.timeout(60_000),
  })
  await res.body?.cancel()
  assert.ok(res.ok, `health-check answered ${res.status}`)
}

/** Runs cycles until `probe` holds (or the time is up). */
async function cyclesUntil<T>(
  stack: Stack,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  return await eventually(
    async () => {
      const value = await probe()
      if (value !== undefined) return value
      await cycle(stack)
      await new Promise((r) => setTimeout(r, 500))
      return await probe()
    },
    timeoutMs,
    what,
  )
}

async function served(url: string): Promise<Date> {
  const read = await readCertificateExpiry(new URL(url), AbortSignal.timeout(5_000))
  if ('error' in read) throw new Error(read.error)
  return read.expiresAt
}

Deno.test({
  name: 'chaos: certificate_expiry is renewed by Vigil, failing_edge_function pages a person',
  // The stack's own timers and sockets end with stack.stop(); the demo's processes with it.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const stateDir = await privateStateDir('vigil-chaos-edge-test-')
    const stack = await startChaosStack(stateDir)
    const demo = stack.demo!
    const target = targetOf(stack.dbUrl, demo, stateDir)
    const sql = postgres(stack.dbUrl, { max: 2, onnotice: () => {} })
    const incidentOn = (service: string, since: Date) => async () => {
      const [row] = await sql<{ id: number; kind: string; resolved_at: Date | null }[]>`
        select i.id::int, i.kind, i.resolved_at from vigil.incidents i
          join vigil.services s on s.id = i.service_id
         where s.name = ${service} and i.opened_at >= ${since} and i.folded_into is null
         order by i.opened_at limit 1`
      return row
    }
    try {
      await cyclesUntil(
        stack,
        async () => {
          const [r] = await sql<{ n: number }[]>`
          select count(*)::int as n from vigil.services
           where name in ('demo-https', 'demo-checkout') and status = 'healthy'`
          return r.n === 2 ? true : undefined
        },
        60_000,
        'demo-https and demo-checkout healthy',
      )

      await t.step(
        'certificate_expiry: days from expiry, seen, renewed by Vigil, cleared',
        async () => {
          const f = faultNamed('certificate_expiry')!
          const healthy = await served(demo.urls.https)
          assert.ok(healthy.getTime() - Date.now() > 80 * DAY_MS, `healthy until ${healthy}`)
          const since = new Date()
          const said = await f.inject(target)
          assert.match(said, /now serves a certificate that expires in [45] days/)
          const near = await served(demo.urls.https)
          const days = (near.getTime() - Date.now()) / DAY_MS
          assert.ok(days > 4 && days <= 5, `notAfter ${near.toISOString()}: ${days} days`)
          assert.equal(await f.active(target), true)
          assert.equal(await f.inject(target), 'certificate_expiry is already active')
          assert.equal((await served(demo.urls.https)).getTime(), near.getTime(), 'made once')

          // The renewal endpoint takes its own token only.
          const refused = await fetch(`${demo.urls.edge}/_tls/renew`, {
            method: 'POST',
            headers: { authorization: `Bearer ${demo.credentials.controlToken}` },
          })
          assert.equal(refused.status, 401)
          await refused.body?.cancel()

          const incident = await cyclesUntil(
            stack,
            incidentOn('demo-https', since),
            60_000,
            'an incident on demo-https',
          )
          assert.equal(incident.kind, f.expects.incident)
          const [finding] = await sql<{ days: number }[]>`
          select (f->'evidence'->>'days_left')::int as days
            from vigil.checks c join vigil.services s on s.id = c.service_id,
                 jsonb_array_elements(c.measurements->'findings') f
           where s.name = 'demo-https' and c.checked_at >= ${since}
             and f->>'kind' = ${f.expects.finding}
           limit 1`
          assert.ok(finding && finding.days >= 4 && finding.days <= 5, JSON.stringify(finding))
          const heal = await cyclesUntil(
            stack,
            async () => {
              const [h] = await sql<{ strategy: string; outcome: string }[]>`
            select strategy, outcome::text from vigil.heal_actions
             where incident_id = ${incident.id} and phase = 'result' order by seq limit 1`
              return h
            },
            60_000,
            'a heal of the certificate',
          )
          assert.deepEqual({ ...heal }, { strategy: 'renew_certificate', outcome: 'succeeded' })
          const renewed = await served(demo.urls.https)
          assert.ok(renewed.getTime() - Date.now() > 80 * DAY_MS, `renewed until ${renewed}`)
          assert.equal(demo.edge.tls!.certificate().issued, 3, 'first, the fault, the renewal')
          await cyclesUntil(
            stack,
            async () => (await incidentOn('demo-https', since)())?.resolved_at ?? undefined,
            60_000,
            'the incident resolved',
          )

          assert.equal(await f.active(target), false)
          assert.equal(await f.clear(target), true, 'its record was still there')
          assert.equal(await readRecord(stateDir, 'certificate_expiry'), null)
          assert.equal(await f.clear(target), false, 'clearing again finds nothing')
          assert.equal(demo.edge.tls!.certificate().issued, 3, 'a healthy certificate is kept')

          // A crashed run: the short certificate served, no record of it; clear still finds it.
          await f.inject(target)
          await Deno.remove(`${stateDir}/chaos/certificate_expiry.json`)
          assert.equal(await f.clear(target), true)
          const back = await served(demo.urls.https)
          assert.ok(back.getTime() - Date.now() > 80 * DAY_MS, `cleared to ${back}`)
        },
      )

      await t.step(
        'failing_edge_function: 500 from the function, a person paged, cleared',
        async () => {
          const f = faultNamed('failing_edge_function')!
          const checkout = () =>
            fetch(`${stack.apiUrl}/functions/v1/${DEMO_FUNCTION}`, {
              method: 'POST',
              headers: {
                authorization: `Bearer ${stack.keys.service_role}`,
                'content-type': 'application/json',
              },
              body: JSON.stringify({ items: [{ sku: 'tea', qty: 2 }] }),
            })
          const ok = await checkout()
          assert.equal(ok.status, 200)
          assert.equal((await ok.json()).total_cents, 1080)
          const contacts = await sql<{ id: string }[]>`
          insert into vigil.contacts (name, role, channel, address, secret_name) values
            ('Edge test team', 'team', 'slack', '#chaos', 'VIGIL_LOCAL_SLACK_WEBHOOK_URL'),
            ('Edge test on-call', 'on_call', 'email', 'oncall@example.org', null)
          returning id`
          try {
            const since = new Date()
            assert.match(await f.inject(target), /demo-checkout throws on every cart/)
            assert.equal(await f.inject(target), 'failing_edge_function is already active')
            const broken = await checkout()
            assert.equal(broken.status, 500)
            assert.equal(broken.headers.get('x-vigil-function'), DEMO_FUNCTION)
            await broken.body?.cancel()

            const incident = await cyclesUntil(
              stack,
              incidentOn('demo-checkout', since),
              60_000,
              'an incident on demo-checkout',
            )
            assert.equal(incident.kind, f.expects.incident)
            const [check] = await sql<{ code: number; error: string }[]>`
            select (c.measurements->>'status_code')::int as code, c.error
              from vigil.checks c join vigil.services s on s.id = c.service_id
             where s.name = 'demo-checkout' and c.checked_at >= ${since} and c.status = 'down'
             order by c.id limit 1`
            assert.equal(check.code, 500)
            assert.match(check.error, /demo-checkout answered HTTP 500, expected 200/)
            // Nothing heals broken code: a person is told, on the recording stand-ins.
            const paged = await eventually(
              async () => {
                const [a] = await sql<{ n: number }[]>`
              select count(*)::int as n from vigil.alerts where incident_id = ${incident.id}
                 and event in ('page', 'reminder') and status in ('sent', 'sending', 'pending')`
                return a.n > 0 && stack.providers.requests({ since }).length > 0 ? true : undefined
              },
              30_000,
              'a page',
            )
            assert.ok(paged)
            const [healed] = await sql<{ n: number }[]>`
            select count(*)::int as n from vigil.heal_actions
             where incident_id = ${incident.id} and phase = 'result' and outcome = 'succeeded'`
            assert.equal(healed.n, 0)

            assert.equal(await f.clear(target), true)
            assert.equal(await f.clear(target), false, 'clearing again finds nothing')
            const fixed = await checkout()
            assert.equal(fixed.status, 200)
            await fixed.body?.cancel()
            await cyclesUntil(
              stack,
              async () => (await incidentOn('demo-checkout', since)())?.resolved_at ?? undefined,
              60_000,
              'the incident resolved',
            )

            // A crashed run's record alone (the flag already off) is still cleared and reported.
            await writeRecord(stateDir, {
              fault: 'failing_edge_function',
              injected_at: new Date().toISOString(),
              groups: [],
            })
            assert.equal(await f.active(target), false)
            assert.equal(await f.clear(target), true)
            assert.equal(await readRecord(stateDir, 'failing_edge_function'), null)
          } finally {
            await sql`delete from vigil.contacts where id = any(${
              contacts.map((c) => c.id)
            }::uuid[])`
          }
        },
      )
    } finally {
      for (const name of ['certificate_expiry', 'failing_edge_function']) {
        await faultNamed(name)!.clear(target).catch(() => {})
      }
      await sql.end()
      await stack.stop()
      await Deno.remove(stateDir, { recursive: true }).catch(() => {})
    }
  },
})
