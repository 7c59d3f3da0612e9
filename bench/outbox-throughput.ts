// How fast the outbox drains to a local webhook stand-in, through the notify function over HTTP
// (two calls at once, as the trigger and the sweep can make them), and that nothing is lost or sent
// twice. Two shapes: every alert to a contact of its own (one request per alert), and the same
// number over 50 contacts (grouped, at most 20 alerts a request). Goal: at least 500 alerts/s.
import postgres from 'postgres'
import type { BenchContext, BenchResult } from '../devstack/bench.ts'

const ALERTS = 5000
const GOAL = 500

interface Shape {
  contacts: number
  alerts_per_second: number
  requests: number
  seconds: number
  lost: number
  duplicated: number
}

export async function run({ stack }: BenchContext): Promise<BenchResult> {
  const sql = postgres(stack.dbUrl, { max: 4, onnotice: () => {} })
  const shapes: Shape[] = []
  try {
    await sql`update cron.job set active = false where jobname in ('vigil-health-check', 'vigil-notify-sweep')`
    // The bench calls notify itself, after queueing everything: the queueing is not measured.
    await sql`alter table vigil.alerts disable trigger alerts_wake_notify`
    const [svc] = await sql<{ id: string }[]>`
      insert into vigil.services (name, kind, environment, config)
      values ('bench-outbox', 'http', 'prod', ${
      sql.json({ url: 'http://127.0.0.1:9/' })
    }) returning id`
    for (const contacts of [ALERTS, 50]) {
      await sql`delete from vigil.contacts where name like 'bench-outbox-%'`
      await sql`
        insert into vigil.contacts (name, role, channel, address, secret_name, environment)
        select 'bench-outbox-' || g, 'team', 'webhook', ${stack.providers.url} || '/webhook/bench-' || g,
               'VIGIL_LOCAL_WEBHOOK_SECRET', 'prod'
          from generate_series(1, ${contacts}) g`
      await sql`
        insert into vigil.alerts (service_id, contact_id, channel, recipient, severity, priority, event, subject, body)
        select ${svc.id}, c.id, 'webhook', c.address, 'info', 'info', 'notice', 'bench ' || g, 'bench alert ' || g
          from generate_series(1, ${ALERTS}) g
          join vigil.contacts c on c.name = 'bench-outbox-' || (1 + (g - 1) % ${contacts})`
      stack.providers.clear()
      const started = performance.now()
      const call = () =>
        fetch(`${stack.apiUrl}/functions/v1/notify`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${stack.keys.service_role}`,
            'content-type': 'application/json',
          },
          body: '{"trigger": "manual"}',
        }).then((r) => r.json())
      for (let i = 0; i < 20; i++) {
        await Promise.all([call(), call()])
        const [left] =
          await sql`select count(*)::int as n from vigil.alerts where service_id = ${svc.id} and status <> 'sent'`
        if (left.n === 0) break
      }
      const seconds = (performance.now() - started) / 1000
      const seen = new Map<number, number>()
      const requests = stack.providers.requests({ provider: 'webhook' })
      for (const r of requests) {
        for (const a of (r.body as { alerts: { id: number }[] }).alerts) {
          seen.set(a.id, (seen.get(a.id) ?? 0) + 1)
        }
      }
      const ids = await sql<
        { id: number }[]
      >`select id from vigil.alerts where service_id = ${svc.id}`
      shapes.push({
        contacts,
        alerts_per_second: Math.round(ALERTS / seconds),
        requests: requests.length,
        seconds: Math.round(seconds * 100) / 100,
        lost: ids.filter((r) => !seen.has(Number(r.id))).length,
        duplicated: [...seen.values()].filter((n) => n > 1).length,
      })
      await sql`update vigil.alerts set status = 'suppressed', suppressed_reason = 'bench over'
                 where service_id = ${svc.id} and status <> 'sent'`
      await sql`delete from vigil.alerts where service_id = ${svc.id}`
    }
  } finally {
    await sql`alter table vigil.alerts enable trigger alerts_wake_notify`
    await sql`update cron.job set active = true where jobname in ('vigil-health-check', 'vigil-notify-sweep')`
    await sql`delete from vigil.contacts where name like 'bench-outbox-%'`
    await sql.end()
  }
  const [single, grouped] = shapes
  const clean = shapes.every((s) => s.lost === 0 && s.duplicated === 0)
  return {
    name: 'outbox-throughput',
    measures:
      `${ALERTS} alerts drained by notify to a webhook stand-in: one contact each, then 50 contacts (grouped)`,
    result:
      `${single.alerts_per_second} alerts/s one per request (${single.requests} requests in ${single.seconds} s); ` +
      `${grouped.alerts_per_second} alerts/s grouped (${grouped.requests} requests); ` +
      `${shapes.reduce((n, s) => n + s.lost, 0)} lost, ${
        shapes.reduce((n, s) => n + s.duplicated, 0)
      } duplicated`,
    goal: `≥ ${GOAL} alerts/s, none lost or duplicated`,
    passed: clean && single.alerts_per_second >= GOAL,
    shapes,
  }
}
