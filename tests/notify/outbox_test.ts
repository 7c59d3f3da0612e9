// Alert delivery end to end on the test stack: a check opens an incident, auto-heal finds nothing
// to do and pages, the alerts trigger wakes the notify function through vigil.invoke, and the
// stack's stand-ins for the providers (devstack/providers.ts) receive the requests and check them
// as the real APIs would. Failures are injected through the stand-ins' control API.
import assert from 'node:assert/strict'
import { LOCAL_PROVIDER_CREDENTIALS } from '../../devstack/providers.ts'
import { verifyWebhookSignature } from '../../supabase/functions/_shared/notify/channels/webhook.ts'
import { deliverDue } from '../../supabase/functions/_shared/notify/deliver.ts'
import { NOTIFIERS } from '../../supabase/functions/_shared/notify/registry.ts'
import { guardedFetch } from '../../supabase/functions/_shared/outbound.ts'
import type { Notifier } from '../../supabase/functions/_shared/notify/types.ts'
import { eventually, testStack } from '../_env.ts'
import {
  awaitReceived,
  behave,
  received,
  type Recorded,
  withOutboxToItself,
  withScene,
} from './_stand_ins.ts'

const creds = LOCAL_PROVIDER_CREDENTIALS
const ACK_LINK = /https?:\/\/[^\s"<>]+\/functions\/v1\/ack\/[0-9]+\.[0-9a-z]+\.[A-Za-z0-9_-]{22}/

function webhookAlerts(
  r: Recorded,
): {
  id: number
  incident_id: number
  event: string
  priority: string
  links: Record<string, string>
}[] {
  return (r.body as { alerts: never[] }).alerts
}

Deno.test('a service goes down: the webhook and Slack contacts get the page, signed, and every try is recorded', async () => {
  await withScene('notify-e2e-down', async (s) => {
    const since = new Date()
    await s.hook('e2e-down')
    await s.contact({
      role: 'team',
      channel: 'slack',
      address: '#ops',
      secret_name: 'VIGIL_LOCAL_SLACK_WEBHOOK_URL',
    })
    const incidentId = await s.goDown()

    const [hook] = await awaitReceived('webhook', since, (r) => r.raw.includes(s.name))
    assert.equal(hook.answered, 200)
    assert.ok(
      await verifyWebhookSignature(
        hook.raw,
        hook.headers['x-vigil-timestamp'],
        hook.headers['x-vigil-signature'],
        creds.webhookSecret,
      ),
      "the body is signed with the contact's secret",
    )
    const [alert] = webhookAlerts(hook)
    assert.equal(alert.incident_id, incidentId)
    assert.equal(alert.event, 'page')
    assert.equal(alert.priority, 'P0', 'critical in prod')
    assert.match(alert.links.acknowledge, ACK_LINK)

    const [slack] = await awaitReceived('slack', since, (r) => r.raw.includes(s.name))
    assert.equal(slack.answered, 200)
    assert.match(JSON.stringify(slack.body), /connection refused/, 'the message says what is wrong')

    // The stand-in saw the request before notify recorded the answer: wait for the record.
    const rows = await eventually(
      async () => {
        const rows = await s.sql<{ channel: string; status: string; attempts: string[] }[]>`
        select a.channel::text, a.status::text,
               (select json_agg(t.outcome order by t.id) from vigil.alert_attempts t where t.alert_id = a.id) as attempts
          from vigil.alerts a where a.incident_id = ${incidentId} order by a.channel`
        return rows.every((r) => r.status !== 'sending') ? rows : undefined
      },
      10_000,
      'both attempts recorded',
    )
    assert.deepEqual(rows.map((r) => [r.channel, r.status, r.attempts]), [
      ['slack', 'sent', ['delivered']],
      ['webhook', 'sent', ['delivered']],
    ])
    const [inc] = await s.sql`select escalation_level from vigil.incidents where id = ${incidentId}`
    assert.equal(inc.escalation_level, 3, 'on-call was paged at the third rung')
  })
})

Deno.test('a provider outage loses nothing: 503s are retried with backoff until the webhook answers', async () => {
  await withScene('notify-e2e-outage', async (s) => {
    const since = new Date()
    await behave({ provider: 'webhook', mode: 'status', status: 503, times: 2 })
    await s.hook('e2e-outage')
    const incidentId = await s.goDown()
    const hits = await awaitReceived(
      'webhook',
      since,
      (r) => r.raw.includes(s.name) && r.answered === 200,
      1,
      30_000,
    )
    assert.equal(hits.length, 1)
    const tries = (await received('webhook', since)).filter((r) => r.raw.includes(s.name)).map((
      r,
    ) => r.answered)
    assert.deepEqual(tries, [503, 503, 200])
    const attempts = await s.sql<
      { outcome: string; status_code: number | null; error: string | null }[]
    >`
      select t.outcome, t.status_code, t.error from vigil.alert_attempts t join vigil.alerts a on a.id = t.alert_id
       where a.incident_id = ${incidentId} order by t.id`
    assert.deepEqual(attempts.map((a) => [a.outcome, a.status_code]), [
      ['retryable', 503],
      ['retryable', 503],
      ['delivered', 200],
    ])
    assert.match(attempts[0].error ?? '', /503/)
  })
})

Deno.test('429 with Retry-After: the next try waits at least that long', async () => {
  await withScene('notify-e2e-429', async (s) => {
    const since = new Date()
    await behave({ provider: 'webhook', mode: 'retry_after', seconds: 2, times: 1 })
    await s.hook('e2e-429')
    const incidentId = await s.goDown()
    await awaitReceived(
      'webhook',
      since,
      (r) => r.raw.includes(s.name) && r.answered === 200,
      1,
      30_000,
    )
    const attempts = await s.sql<{ outcome: string; started_at: Date }[]>`
      select t.outcome, t.started_at from vigil.alert_attempts t join vigil.alerts a on a.id = t.alert_id
       where a.incident_id = ${incidentId} order by t.id`
    assert.deepEqual(attempts.map((a) => a.outcome), ['retryable', 'delivered'])
    const gap = attempts[1].started_at.getTime() - attempts[0].started_at.getTime()
    assert.ok(gap >= 2_000, `the retry came ${gap} ms after the 429, not before Retry-After`)
  })
})

Deno.test('a provider that redirects or answers garbage: a recorded failed attempt, then a retry', async () => {
  await withScene('notify-e2e-garbage', async (s) => {
    await behave({ provider: 'webhook', mode: 'redirect', times: 1 })
    await behave({ provider: 'pagerduty', mode: 'garbage', times: 1 })
    await s.hook('e2e-garbage')
    await s.contact({
      role: 'on_call',
      channel: 'pagerduty',
      address: 'Ops',
      secret_name: 'VIGIL_LOCAL_PAGERDUTY_ROUTING_KEY',
    })
    const incidentId = await s.goDown()
    const attempts = await eventually(
      async () => {
        const rows = await s.sql<{ channel: string; outcomes: string[]; error: string | null }[]>`
        select a.channel::text, json_agg(t.outcome order by t.id) as outcomes,
               (array_agg(t.error order by t.id))[1] as error
          from vigil.alerts a join vigil.alert_attempts t on t.alert_id = a.id
         where a.incident_id = ${incidentId} group by a.channel order by a.channel`
        return rows.length === 2 && rows.every((r) => r.outcomes.at(-1) === 'delivered')
          ? rows
          : undefined
      },
      20_000,
      'both alerts delivered after one failed try',
    )
    assert.deepEqual(attempts.map((a) => [a.channel, a.outcomes]), [
      ['pagerduty', ['retryable', 'delivered']],
      ['webhook', ['retryable', 'delivered']],
    ])
    assert.match(
      attempts[1].error ?? '',
      /30[0-9]|redirect/i,
      'the redirect is named, and not followed',
    )
  })
})

Deno.test("a permanent refusal marks the contact failing and falls back to the person's next channel", async () => {
  await withScene('notify-e2e-fallback', async (s) => {
    const since = new Date()
    await behave({
      provider: 'twilio',
      mode: 'status',
      status: 400,
      body: JSON.stringify({
        code: 21211,
        message: "The 'To' number is not a valid phone number.",
        status: 400,
      }),
      times: 1,
    })
    const phone = await s.contact({
      name: 'Ana e2e',
      role: 'on_call',
      channel: 'sms',
      address: '+15550107777',
    })
    await s.contact({
      name: 'Ana e2e',
      role: 'on_call',
      channel: 'email',
      address: 'ana-e2e@example.org',
    })
    const incidentId = await s.goDown()
    const [mail] = await awaitReceived(
      'sendgrid',
      since,
      (r) => r.raw.includes('ana-e2e@example.org'),
    )
    assert.equal(mail.answered, 202)
    assert.match(JSON.stringify(mail.body), new RegExp(s.name))
    const [contact] = await s
      .sql`select failing_since, failing_reason from vigil.contacts where id = ${phone}`
    assert.ok(contact.failing_since, 'the phone number is marked failing')
    assert.match(contact.failing_reason, /400|21211|not a valid/)
    const log = await s.sql<{ message: string }[]>`
      select message from vigil.incident_log where incident_id = ${incidentId} order by id`
    assert.ok(
      log.some((l) => /could not go by sms .*trying email/.test(l.message)),
      JSON.stringify(log),
    )
    const alerts = await eventually(
      async () => {
        const rows = await s.sql<{ channel: string; status: string; fallback: boolean }[]>`
        select channel::text, status::text, fallback_of is not null as fallback from vigil.alerts
         where incident_id = ${incidentId} order by id`
        return rows.every((r) => r.status !== 'sending') ? rows : undefined
      },
      10_000,
      'the fallback recorded',
    )
    assert.deepEqual(alerts.map((a) => [a.channel, a.status, a.fallback]), [
      ['sms', 'dead', false],
      ['email', 'sent', true],
    ])
  })
})

Deno.test("two notify workers at once, and the stack's own: every alert is sent exactly once", async () => {
  await withScene('notify-e2e-race', async (s) => {
    const since = new Date()
    const contacts: string[] = []
    for (let i = 0; i < 10; i++) {
      contacts.push(
        await s.hook(`race-${i}`, 'on_call', `race-${i}`),
      )
    }
    const ids = await s.sql<{ id: number }[]>`
      insert into vigil.alerts (service_id, contact_id, channel, recipient, severity, priority, event, subject, body)
      select ${s.serviceId}, c.id, 'webhook', c.address, 'warning', 'P2', 'notice', 'race ' || g, ${s.name} || ' race ' || g
        from vigil.contacts c, generate_series(1, 30) g
       where c.id = any(${contacts}::uuid[])
      returning id`
    const env = {
      secret: (
        name: string,
      ) => (name === 'VIGIL_LOCAL_WEBHOOK_SECRET' ? creds.webhookSecret : undefined),
      fetch,
      timeoutMs: 5_000,
    }
    const links = { projectUrl: testStack().apiUrl }
    const [a, b] = await Promise.all([
      deliverDue({ sql: s.sql, env, links, worker: 'race-a', budgetMs: 5_000, batch: 25 }),
      deliverDue({ sql: s.sql, env, links, worker: 'race-b', budgetMs: 5_000, batch: 25 }),
    ])
    await eventually(
      async () => {
        const [left] = await s.sql`select count(*)::int as n from vigil.alerts
                                  where id = any(${
          ids.map((r) => r.id)
        }::bigint[]) and status <> 'sent'`
        return left.n === 0 ? true : undefined
      },
      15_000,
      'every race alert sent',
    )
    const seen = new Map<number, number>()
    for (const r of await received('webhook', since)) {
      if (!r.raw.includes(`${s.name} race`)) continue
      for (const alert of webhookAlerts(r)) seen.set(alert.id, (seen.get(alert.id) ?? 0) + 1)
    }
    assert.equal(seen.size, 300, 'all 300 alerts reached the webhooks')
    assert.deepEqual([...seen.values()].filter((n) => n !== 1), [], 'none twice')
    const [attempts] = await s.sql`
      select count(*)::int as delivered, count(distinct alert_id)::int as alerts from vigil.alert_attempts
       where alert_id = any(${ids.map((r) => r.id)}::bigint[]) and outcome = 'delivered'`
    assert.deepEqual({ ...attempts }, { delivered: 300, alerts: 300 })
    assert.ok(a.claimed + b.claimed <= 300)
  })
})

Deno.test('the ladder heard: heals fail, on-call paged, reminder, acknowledged by link, PagerDuty told, resolved notice', async () => {
  const { apiUrl, providersUrl, serviceRoleKey } = testStack()
  // The restart webhook refuses (the stand-in wants a signature the restart does not carry): every heal fails.
  const restart = { restart: { type: 'webhook', url: `${providersUrl}/webhook/restart-refused` } }
  await withScene('notify-e2e-ladder', async (s) => {
    const since = new Date()
    await s.contact({ name: 'Bo e2e', role: 'on_call', channel: 'sms', address: '+15550108888' })
    await s.contact({
      name: 'Ops PagerDuty',
      role: 'on_call',
      channel: 'pagerduty',
      address: 'Ops service',
      secret_name: 'VIGIL_LOCAL_PAGERDUTY_ROUTING_KEY',
    })
    const incidentId = await s.goDown()
    // Attempt 1 runs on its own when the incident opens; 2 and 3 as the retry job would ask.
    for (const attempt of [1, 2]) {
      await eventually(
        async () => {
          const [i] = await s
            .sql`select heal_attempts, heal_claimed_by from vigil.incidents where id = ${incidentId}`
          return i.heal_attempts === attempt && i.heal_claimed_by === null ? true : undefined
        },
        15_000,
        `heal attempt ${attempt} to end`,
      )
      assert.deepEqual(
        await received('twilio', since),
        [],
        `nobody is paged after attempt ${attempt}`,
      )
      const res = await fetch(`${apiUrl}/functions/v1/auto-heal`, {
        method: 'POST',
        headers: { authorization: `Bearer ${serviceRoleKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ incident_id: incidentId, reason: 'retry' }),
      })
      assert.equal((await res.json()).outcome, 'failed')
    }
    const forBo = (r: Recorded) => (r.body as { To?: string }).To === '+15550108888'
    const [page] = await awaitReceived('twilio', since, forBo)
    const sms = (page.body as { Body: string }).Body
    assert.match(sms, /P0/)
    const link = sms.match(ACK_LINK)?.[0]
    assert.ok(link, `the SMS carries an ack link: ${sms}`)
    const dedup = `vigil-incident-${incidentId}`
    const pd = (action: string) => (r: Recorded) =>
      (r.body as { dedup_key?: string; event_action?: string }).dedup_key === dedup &&
      (r.body as { event_action?: string }).event_action === action
    const [trigger] = await awaitReceived('pagerduty', since, pd('trigger'))
    assert.match(
      JSON.stringify((trigger.body as { payload: unknown }).payload),
      /restart_service failed \(attempt 3 of 3\)/,
      'the page says what Vigil already tried',
    )

    // Half an hour later and nobody has acknowledged: a reminder.
    await s
      .sql`update vigil.alerts set created_at = created_at - interval '31 minutes' where incident_id = ${incidentId}`
    await s.sql`select vigil.sweep_alerts()`
    const smses = await awaitReceived('twilio', since, forBo, 2)
    assert.match((smses[1].body as { Body: string }).Body, /still open|not acknowledged|reminder/i)

    // The link: a GET only asks, a POST acknowledges in Bo's name.
    const local = link!.replace(/^https?:\/\/[^/]+/, apiUrl)
    const ask = await fetch(local)
    assert.equal(ask.status, 200)
    assert.match(await ask.text(), /<form method="post">/)
    const [still] = await s
      .sql`select acknowledged_at from vigil.incidents where id = ${incidentId}`
    assert.equal(still.acknowledged_at, null, 'a GET does not acknowledge')
    const ack = await fetch(local, { method: 'POST' })
    assert.equal(ack.status, 200)
    assert.match(await ack.text(), /Acknowledged/)
    const [inc] = await s
      .sql`select acknowledged_at, acknowledged_by_name from vigil.incidents where id = ${incidentId}`
    assert.ok(inc.acknowledged_at)
    assert.equal(inc.acknowledged_by_name, 'Bo e2e (alert link)')
    await awaitReceived('pagerduty', since, pd('acknowledge'))
    const again = await fetch(local, { method: 'POST' })
    assert.match(await again.text(), /Already acknowledged/)

    // Acknowledged: no more reminders.
    await s
      .sql`update vigil.alerts set created_at = created_at - interval '31 minutes' where incident_id = ${incidentId}`
    await s.sql`select vigil.sweep_alerts()`
    const [reminders] = await s.sql`select count(*)::int as n from vigil.alerts
                                     where incident_id = ${incidentId} and event = 'reminder' and channel = 'sms'`
    assert.equal(
      reminders.n,
      1,
      `one reminder before the acknowledgement, none after (${reminders.n})`,
    )

    // Back up: the resolved notice reaches everyone who was paged.
    await s
      .sql`insert into vigil.checks (service_id, status) values (${s.serviceId}, 'healthy'), (${s.serviceId}, 'healthy')`
    await awaitReceived('pagerduty', since, pd('resolve'))
    const all = await awaitReceived('twilio', since, forBo, 3)
    assert.match((all[2].body as { Body: string }).Body, /resolved/i)
  }, restart)
})

Deno.test('a silenced service: the page is recorded as suppressed and nothing is sent', async () => {
  await withScene('notify-e2e-silence', async (s) => {
    await s.hook('e2e-silence')
    await s.sql`insert into vigil.silences (service_id, ends_at, reason, kind)
                values (${s.serviceId}, now() + interval '1 hour', 'deploying v2', 'maintenance')`
    const incidentId = await s.goDown()
    const [alert] = await eventually(
      async () => {
        const rows = await s
          .sql`select status::text, suppressed_reason from vigil.alerts where incident_id = ${incidentId}`
        return rows.length ? rows : undefined
      },
      15_000,
      'the page to be recorded',
    )
    assert.equal(alert.status, 'suppressed')
    assert.match(alert.suppressed_reason, /maintenance window .*deploying v2/)
  })
})

Deno.test('no secret appears in an attempt, an alert, the log or a response, even when providers echo them', async () => {
  await withScene('notify-e2e-secrets', async (s) => {
    const since = new Date()
    const slackUrl = `${testStack().providersUrl}${creds.slackPath}`
    // Each stand-in refuses, repeating the credential it was sent, as real services sometimes do.
    await behave({
      provider: 'slack',
      mode: 'status',
      status: 400,
      body: `invalid_payload posting to ${slackUrl}`,
    })
    await behave({
      provider: 'twilio',
      mode: 'status',
      status: 401,
      body: JSON.stringify({
        code: 20003,
        message: `bad credentials ${creds.twilioAccountSid}:${creds.twilioAuthToken}`,
      }),
    })
    await behave({
      provider: 'pagerduty',
      mode: 'status',
      status: 400,
      body: JSON.stringify({
        status: 'invalid event',
        errors: [`routing key ${creds.pagerdutyRoutingKey}`],
      }),
    })
    await behave({
      provider: 'sendgrid',
      mode: 'status',
      status: 401,
      body: `{"errors":[{"message":"key ${creds.sendgridApiKey}"}]}`,
    })
    await s.contact({
      name: 'leak',
      role: 'on_call',
      channel: 'slack',
      address: '#ops',
      secret_name: 'VIGIL_LOCAL_SLACK_WEBHOOK_URL',
    })
    await s.contact({ name: 'leak', role: 'on_call', channel: 'sms', address: '+15550109999' })
    await s.contact({
      name: 'leak',
      role: 'on_call',
      channel: 'pagerduty',
      address: 'Ops',
      secret_name: 'VIGIL_LOCAL_PAGERDUTY_ROUTING_KEY',
    })
    await s.contact({
      name: 'leak',
      role: 'on_call',
      channel: 'email',
      address: 'leak@example.org',
    })
    const incidentId = await s.goDown()
    await eventually(
      async () => {
        const [r] = await s
          .sql`select count(*) filter (where status = 'dead')::int as dead, count(*)::int as n
                                from vigil.alerts where incident_id = ${incidentId}`
        return r.n >= 4 && r.dead === r.n ? true : undefined
      },
      20_000,
      'every channel to fail for good',
    ).catch(async (e) => {
      const rows = await s
        .sql`select channel::text, status::text, last_error from vigil.alerts where incident_id = ${incidentId}`
      throw new Error(`${e.message}: ${JSON.stringify(rows)}`)
    })
    assert.ok((await received('slack', since)).length >= 1)
    const text = JSON.stringify(
      await s.sql`
      select (select json_agg(t) from vigil.alert_attempts t join vigil.alerts a on a.id = t.alert_id where a.incident_id = ${incidentId}) as attempts,
             (select json_agg(a) from vigil.alerts a where a.incident_id = ${incidentId}) as alerts,
             (select json_agg(l) from vigil.incident_log l where l.incident_id = ${incidentId}) as log,
             (select json_agg(c) from vigil.contacts c where c.name = 'leak') as contacts,
             (select json_agg(i) from vigil.invocations i where i.fn = 'notify' and i.requested_at > ${since}) as invocations`,
    )
    assert.match(text, /401|400/, 'the refusals were recorded')
    for (const [name, value] of Object.entries({ ...creds, slackUrl })) {
      if (
        typeof value !== 'string' || value.length < 8 || name === 'twilioFrom' ||
        name === 'discordPath'
      ) continue
      assert.ok(!text.includes(value), `${name} leaked into the database`)
    }
  })
})

Deno.test('notify: only the service role may drain the outbox; a bad body is named', async () => {
  const { apiUrl, anonKey, serviceRoleKey } = testStack()
  const call = (headers: Record<string, string>, body = '{}') =>
    fetch(`${apiUrl}/functions/v1/notify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    })
  const none = await call({})
  assert.equal(none.status, 401)
  await none.body?.cancel()
  const anon = await call({ authorization: `Bearer ${anonKey}` })
  assert.equal(anon.status, 403, 'the anon key, shipped in every frontend, is refused')
  assert.match((await anon.json()).error, /service role/)
  const bad = await call(
    { authorization: `Bearer ${serviceRoleKey}` },
    '{"trigger": "whenever", "x": 1}',
  )
  assert.equal(bad.status, 400)
  const { error } = await bad.json()
  assert.match(error, /trigger/)
  assert.match(error, /x/)
  const ok = await call({ authorization: `Bearer ${serviceRoleKey}` }, '{"trigger": "manual"}')
  assert.equal(ok.status, 200)
  const report = await ok.json()
  assert.equal(typeof report.claimed, 'number')
})

Deno.test('ack links: malformed, forged and expired tokens acknowledge nothing', async () => {
  const { apiUrl } = testStack()
  const get = async (token: string, method = 'GET') => {
    const res = await fetch(`${apiUrl}/functions/v1/ack/${token}`, { method })
    await res.body?.cancel()
    return res.status
  }
  assert.equal(await get('nonsense'), 400)
  assert.equal(await get('1.zzzzzz.AAAAAAAAAAAAAAAAAAAAAA', 'POST'), 403)
  const { signAck } = await import('../../supabase/functions/_shared/notify/ack-links.ts')
  const { LOCAL_APPROVAL_SECRET } = await import('../../devstack/config.ts')
  const expired = await signAck(1, new Date(Date.now() - 60_000), LOCAL_APPROVAL_SECRET)
  assert.equal(await get(expired, 'POST'), 410)
  const unknown = await signAck(987654321, new Date(Date.now() + 60_000), LOCAL_APPROVAL_SECRET)
  assert.equal(await get(unknown), 404)
  assert.equal(await get(unknown, 'PUT'), 405)
})

Deno.test('ack for the static page: JSON answers, CORS, and the link that leads there', async () => {
  const { apiUrl } = testStack()
  await withScene('notify-e2e-ackjson', async (s) => {
    const since = new Date()
    await s.contact({ name: 'Cy e2e', role: 'on_call', channel: 'sms', address: '+15550106666' })
    const incidentId = await s.goDown()
    const [page] = await awaitReceived(
      'twilio',
      since,
      (r) => (r.body as { To?: string }).To === '+15550106666',
    )
    const link = (page.body as { Body: string }).Body.match(ACK_LINK)![0]
    const token = link.split('/').at(-1)!
    const endpoint = `${apiUrl}/functions/v1/ack/${token}`

    const pre = await fetch(endpoint, {
      method: 'OPTIONS',
      headers: { origin: 'https://status.example.org' },
    })
    await pre.body?.cancel()
    assert.equal(
      pre.headers.get('access-control-allow-origin'),
      '*',
      'a static page elsewhere may ask',
    )
    const asked = await fetch(endpoint, { headers: { accept: 'application/json' } })
    assert.equal(asked.status, 200)
    const open = await asked.json()
    assert.equal(open.state, 'open')
    assert.equal(open.incident.id, incidentId)
    assert.equal(open.incident.service, s.name)
    const [still] = await s
      .sql`select acknowledged_at from vigil.incidents where id = ${incidentId}`
    assert.equal(still.acknowledged_at, null, 'asking acknowledges nothing')
    const done =
      await (await fetch(endpoint, { method: 'POST', headers: { accept: 'application/json' } }))
        .json()
    assert.deepEqual([done.state, done.by], ['acknowledged', 'Cy e2e (alert link)'])
    const forged = await fetch(`${apiUrl}/functions/v1/ack/1.zzzzzz.AAAAAAAAAAAAAAAAAAAAAA`, {
      method: 'POST',
      headers: { accept: 'application/json' },
    })
    assert.equal(forged.status, 403)
    assert.deepEqual(await forged.json(), { title: 'This link is not valid', state: 'forged' })
  })
  // Where functions may not serve pages, the link leads to the static page, the token in its fragment.
  const { ackLink } = await import('../../supabase/functions/_shared/notify/ack-links.ts')
  const link = await ackLink(
    'https://ref.supabase.co',
    42,
    new Date(Date.now() + 60_000),
    'a-secret-of-16-chars+',
    'https://status.example.org/ack.html',
  )
  const url = new URL(link)
  assert.equal(url.origin + url.pathname, 'https://status.example.org/ack.html')
  assert.equal(url.searchParams.get('api'), 'https://ref.supabase.co')
  assert.match(url.hash, /^#42\.[0-9a-z]+\.[A-Za-z0-9_-]{22}$/)
  const page = await Deno.readTextFile(new URL('../../dashboard/public/ack.html', import.meta.url))
  assert.ok(
    page.includes("'/functions/v1/ack/'") || page.includes('/functions/v1/ack/${'),
    'the page asks the ack function',
  )
  assert.ok(page.includes("accept: 'application/json'"), 'in JSON')
})

Deno.test('a worker past its budget hands back what it claimed, unsent and not counted', async () => {
  await withScene('notify-e2e-budget', async (s) => {
    // Nothing else may claim these rows while the test's worker runs.
    await withOutboxToItself(s.sql, async () => {
      const contact = await s.hook('e2e-budget')
      // Queued as not yet due, so the insert wakes nobody; then made due.
      const ids = (await s.sql<{ id: number }[]>`
        insert into vigil.alerts (service_id, contact_id, channel, recipient, severity, priority, event, subject, body, next_attempt_at)
        select ${s.serviceId}, ${contact}, 'webhook', 'x', 'info', 'P3', 'notice', 'budget ' || g, 'b', now() + interval '1 hour'
          from generate_series(1, 5) g returning id`).map((r) => Number(r.id))
      await s.sql`update vigil.alerts set next_attempt_at = now() where id = any(${ids}::bigint[])`
      const slow: Notifier = {
        channel: 'webhook',
        groups: false,
        send: () =>
          new Promise((r) => setTimeout(() => r({ kind: 'delivered', status: 200 }), 300)),
      }
      const report = await deliverDue({
        sql: s.sql,
        env: { secret: () => undefined, fetch, timeoutMs: 1_000 },
        links: { projectUrl: 'http://127.0.0.1:1' },
        notifiers: { ...NOTIFIERS, webhook: slow },
        worker: 'budget-w',
        budgetMs: 150,
        concurrency: 1,
      })
      assert.deepEqual([report.claimed, report.requests, report.released], [5, 1, 4])
      const rows = await s.sql<{ status: string; attempts: number; claimed_by: string | null }[]>`
        select status::text, attempts, claimed_by from vigil.alerts where id = any(${ids}::bigint[]) order by id`
      assert.deepEqual(rows.map((r) => r.status).sort(), [
        'pending',
        'pending',
        'pending',
        'pending',
        'sent',
      ])
      assert.ok(rows.every((r) => r.claimed_by === null))
      assert.deepEqual(rows.filter((r) => r.status === 'pending').map((r) => r.attempts), [
        0,
        0,
        0,
        0,
      ])
    })
  })
})

Deno.test('a secret quoted by a check error is struck from every message', async () => {
  const { serviceRoleKey } = testStack()
  await withScene('notify-e2e-strike', async (s) => {
    const since = new Date()
    await s.hook('e2e-strike')
    await s.contact({
      role: 'team',
      channel: 'slack',
      address: '#ops',
      secret_name: 'VIGIL_LOCAL_SLACK_WEBHOOK_URL',
    })
    await s.goDown(`401 from upstream: bad key ${serviceRoleKey} (token ${creds.twilioAuthToken})`)
    const [hook] = await awaitReceived('webhook', since, (r) => r.raw.includes(s.name))
    const [slack] = await awaitReceived('slack', since, (r) => r.raw.includes(s.name))
    for (const r of [hook, slack]) {
      assert.match(r.raw, /401 from upstream/, 'the cause is told')
      assert.ok(
        !r.raw.includes(serviceRoleKey),
        `the service role key left in a ${r.provider} message`,
      )
      assert.ok(
        !r.raw.includes(creds.twilioAuthToken),
        `the Twilio token left in a ${r.provider} message`,
      )
    }
  })
})

Deno.test('a webhook at a private address is refused before it is called, and the contact marked failing', async () => {
  await withScene('notify-e2e-ssrf', async (s) => {
    // Nothing else may claim these rows while the test's worker runs.
    await withOutboxToItself(s.sql, async () => {
      const since = new Date()
      const contact = await s.hook('e2e-ssrf')
      const [alert] = await s.sql<{ id: number }[]>`
        insert into vigil.alerts (service_id, contact_id, channel, recipient, severity, priority, event, subject, body, next_attempt_at)
        values (${s.serviceId}, ${contact}, 'webhook', 'x', 'warning', 'P2', 'notice', 'ssrf', 'b', now() + interval '1 hour')
        returning id`
      await s.sql`update vigil.alerts set next_attempt_at = now() where id = ${alert.id}`
      // The deployment's policy on Supabase: private targets refused.
      const report = await deliverDue({
        sql: s.sql,
        env: {
          secret: (n) => (n === 'VIGIL_LOCAL_WEBHOOK_SECRET' ? creds.webhookSecret : undefined),
          fetch: guardedFetch({ allowPrivate: false }),
          timeoutMs: 2_000,
        },
        links: { projectUrl: testStack().apiUrl },
        worker: 'ssrf-w',
        budgetMs: 2_000,
      })
      assert.equal(report.failed, 1)
      assert.deepEqual(await received('webhook', since), [], 'nothing reached the address')
      const [row] = await s
        .sql`select status::text, last_error from vigil.alerts where id = ${alert.id}`
      assert.equal(row.status, 'dead')
      assert.match(
        row.last_error,
        /refused to call http:\/\/127\.0\.0\.1:\d+: 127\.0\.0\.1 resolves to a loopback address/,
      )
      const [c] = await s.sql`select failing_since from vigil.contacts where id = ${contact}`
      assert.ok(c.failing_since, "the contact's URL is at fault: it is marked failing")
    })
  })
})
