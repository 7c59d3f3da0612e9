// Helpers for the alert tests that run through the stack: its provider stand-ins (driven over their
// control API, since the stack runs them in another process), and a service with an incident whose
// contacts are this test's alone.
import postgres from 'postgres'
import { eventually, testSql, testStack } from '../_env.ts'

export interface Recorded {
  at: string
  provider: 'twilio' | 'sendgrid' | 'slack' | 'discord' | 'pagerduty' | 'webhook'
  method: string
  path: string
  headers: Record<string, string>
  body: unknown
  raw: string
  answered: number
}

export interface Behaviour {
  provider?: Recorded['provider']
  mode: 'ok' | 'status' | 'retry_after' | 'hang' | 'redirect' | 'garbage'
  status?: number
  body?: string
  headers?: Record<string, string>
  seconds?: number
  times?: number
}

const base = () => testStack().providersUrl

/** What the stack's stand-ins received since `since`, of one provider. */
export async function received(provider: Recorded['provider'], since: Date): Promise<Recorded[]> {
  const url = new URL('/_recorded', base())
  url.searchParams.set('provider', provider)
  url.searchParams.set('since', since.toISOString())
  const res = await fetch(url)
  if (!res.ok) throw new Error(`stand-ins answered ${res.status}: ${await res.text()}`)
  return await res.json()
}

/** Waits for requests to `provider` that `match`, and returns them. */
export async function awaitReceived(
  provider: Recorded['provider'],
  since: Date,
  match: (r: Recorded) => boolean,
  count = 1,
  timeoutMs = 15_000,
): Promise<Recorded[]> {
  return await eventually(
    async () => {
      const hits = (await received(provider, since)).filter(match)
      return hits.length >= count ? hits : undefined
    },
    timeoutMs,
    `${count} ${provider} request(s) matching`,
  )
}

export async function behave(b: Behaviour): Promise<void> {
  const res = await fetch(new URL('/_behaviour', base()), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(b),
  })
  if (!res.ok) throw new Error(`stand-ins refused the behaviour: ${res.status} ${await res.text()}`)
  await res.body?.cancel()
}

export async function behaveNormally(): Promise<void> {
  const res = await fetch(new URL('/_behaviour', base()), { method: 'DELETE' })
  await res.body?.cancel()
}

export interface Scene {
  sql: postgres.Sql
  serviceId: string
  name: string
  /** Opens the service's incident the way a cycle does (a failed check) and returns its id. */
  goDown(error?: string): Promise<number>
  contact(
    row: { role: string; channel: string; address: string; secret_name?: string; name?: string },
  ): Promise<string>
  /** A webhook contact at the stand-ins' /webhook/<path>, signed with the local secret. */
  hook(path: string, role?: string, name?: string): Promise<string>
}

/**
 * A prod HTTP service, with no heal actions unless given (then auto-heal has nothing to do and pages
 * at once), its failure threshold at 1, in an environment whose contacts are emptied for the test and put back.
 */
export async function withScene(
  prefix: string,
  fn: (s: Scene) => Promise<void>,
  actions: Record<string, unknown> = {},
): Promise<void> {
  // Services stay (the audit keeps them), so each run gets a name of its own.
  const name = `${prefix}-${Date.now().toString(36)}`
  const sql = testSql(4)
  const saved = await sql`select id from vigil.contacts where enabled`
  // Only this test's contacts may be paged: the others are switched off, then switched back on.
  await sql`update vigil.contacts set enabled = false where enabled`
  await sql`update vigil.settings set alert_group_seconds = 0, alert_retry_base_seconds = 1 where environment = 'prod'`
  const [svc] = await sql<{ id: string }[]>`
    insert into vigil.services (name, kind, environment, config, failure_threshold, actions)
    values (${name}, 'http', 'prod', ${sql.json({ url: 'http://127.0.0.1:9/health' })}, 1, ${
    sql.json(actions as never)
  })
    returning id`
  const made: string[] = []
  const contactOf = async (
    row: { role: string; channel: string; address: string; secret_name?: string; name?: string },
  ) => {
    const [c] = await sql<{ id: string }[]>`
      insert into vigil.contacts (name, role, channel, address, secret_name, environment)
      values (${row.name ?? `${name}-${row.channel}`}, ${row.role}, ${row.channel}, ${row.address},
              ${row.secret_name ?? null}, 'prod')
      returning id`
    made.push(c.id)
    return c.id
  }
  try {
    await fn({
      sql,
      serviceId: svc.id,
      name,
      goDown: async (error = 'connection refused on GET http://127.0.0.1:9/health') => {
        await sql`insert into vigil.checks (service_id, status, error) values (${svc.id}, 'down', ${error})`
        const [inc] = await sql<{ id: number }[]>`
          select id from vigil.incidents where service_id = ${svc.id} and status = 'open'`
        return Number(inc.id)
      },
      hook: (path, role = 'on_call', name) =>
        contactOf({
          name,
          role,
          channel: 'webhook',
          address: `${testStack().providersUrl}/webhook/${path}`,
          secret_name: 'VIGIL_LOCAL_WEBHOOK_SECRET',
        }),
      contact: contactOf,
    })
  } finally {
    await behaveNormally().catch(() => {})
    // Nothing of this test may still be in flight for the next one.
    await sql`update vigil.incidents set status = 'resolved', resolved_at = now()
               where service_id = ${svc.id} and status = 'open'`.catch(() => {})
    await sql`update vigil.alerts set status = 'suppressed', suppressed_reason = 'test over', claimed_by = null,
                                      claimed_until = null
               where service_id = ${svc.id} and status in ('pending', 'failed')`
    await sql`update vigil.services set enabled = false where id = ${svc.id}`
    await sql`delete from vigil.contacts where id = any(${made}::uuid[])`.catch(() => {})
    await sql`update vigil.contacts set enabled = true where id = any(${
      saved.map((r) => r.id)
    }::uuid[])`
    await sql`update vigil.settings set alert_group_seconds = 30, alert_retry_base_seconds = 5 where environment = 'prod'`
    // The outbox churns rows; the probes' dead-tuple check in later tests must not see it.
    await sql`vacuum vigil.alerts, vigil.alert_attempts, vigil.contacts, vigil.incidents`
    await sql.end()
  }
}

/**
 * Runs `fn` with the outbox to itself: no sweep starts a notify worker, and the workers earlier
 * tests woke (they wait a while for work due soon) have ended.
 */
export async function withOutboxToItself(
  sql: postgres.Sql,
  fn: () => Promise<void>,
): Promise<void> {
  await sql`update cron.job set active = false where jobname = 'vigil-notify-sweep'`
  try {
    await eventually(
      async () => {
        const [busy] = await sql`select count(*)::int as n from vigil.invocations
                                where fn = 'notify' and state in ('pending', 'sent')`
        return busy.n === 0 ? true : undefined
      },
      60_000,
      'the notify workers of earlier tests to end',
    )
    await fn()
  } finally {
    await sql`update cron.job set active = true where jobname = 'vigil-notify-sweep'`
  }
}
