// Every channel against the local provider stand-ins (devstack/providers.ts), which check what the
// real APIs check: a passing test means the channel speaks the provider's protocol. Then each way a
// provider can fail, the classification notify acts on (delivered, retryable, permanent), and that
// no secret ever reaches a result or the console, even when a provider quotes the request back.
import assert from 'node:assert/strict'
import {
  type Behaviour,
  type ProviderCredentials,
  type ProviderName,
  type Providers,
  startGarbageServer,
  startProviders,
} from '../../devstack/providers.ts'
import { ALERT_CHANNELS, type AlertChannel } from '../../shared/kinds.ts'
import { retryAfterMs, type Scope } from '../../supabase/functions/_shared/notify/channels/http.ts'
import {
  deliveryId,
  verifyWebhookSignature,
} from '../../supabase/functions/_shared/notify/channels/webhook.ts'
import { smsText } from '../../supabase/functions/_shared/notify/format.ts'
import { notifierFor, NOTIFIERS } from '../../supabase/functions/_shared/notify/registry.ts'
import type {
  AlertView,
  Endpoint,
  SendResult,
} from '../../supabase/functions/_shared/notify/types.ts'
import { ACK_LINK, DASHBOARD_LINK, endpoint, notifyEnv, page } from './_alerts.ts'

const PHONE = '+15551234567'
const MAILBOX = 'ana@example.org'

interface Case {
  channel: AlertChannel
  provider: ProviderName
  to(p: Providers): Endpoint
  /** Variables without which the channel cannot send. */
  required: string[]
  /** Whose fault it is when one of them is unset: the project's, or the contact's own secret. */
  requiredScope: Scope
  /** Whose fault a bare 401 is: the project's credentials, or the contact's webhook or key. */
  unauthorisedScope: Scope
  /** The variables and endpoint that send this channel to `base` instead of the stand-in. */
  pointAt(
    vars: Record<string, string>,
    base: string,
    p: Providers,
  ): { vars: Record<string, string>; to: Endpoint }
}

const CASES: Case[] = [
  {
    channel: 'sms',
    provider: 'twilio',
    to: () => endpoint('sms', PHONE),
    required: ['VIGIL_TWILIO_ACCOUNT_SID', 'VIGIL_TWILIO_AUTH_TOKEN', 'VIGIL_TWILIO_FROM'],
    requiredScope: 'provider',
    unauthorisedScope: 'provider',
    pointAt: (vars, base) => ({
      vars: { ...vars, VIGIL_TWILIO_API_URL: base },
      to: endpoint('sms', PHONE),
    }),
  },
  {
    channel: 'email',
    provider: 'sendgrid',
    to: () => endpoint('email', MAILBOX),
    required: ['VIGIL_SENDGRID_API_KEY', 'VIGIL_SENDGRID_FROM'],
    requiredScope: 'provider',
    unauthorisedScope: 'provider',
    pointAt: (vars, base) => ({
      vars: { ...vars, VIGIL_SENDGRID_API_URL: base },
      to: endpoint('email', MAILBOX),
    }),
  },
  {
    channel: 'slack',
    provider: 'slack',
    to: () => endpoint('slack', '#ops', 'VIGIL_LOCAL_SLACK_WEBHOOK_URL'),
    required: ['VIGIL_LOCAL_SLACK_WEBHOOK_URL'],
    requiredScope: 'contact',
    unauthorisedScope: 'contact',
    pointAt: (vars, base, p) => ({
      vars: { ...vars, VIGIL_LOCAL_SLACK_WEBHOOK_URL: base + p.credentials.slackPath },
      to: endpoint('slack', '#ops', 'VIGIL_LOCAL_SLACK_WEBHOOK_URL'),
    }),
  },
  {
    channel: 'discord',
    provider: 'discord',
    to: () => endpoint('discord', '#ops', 'VIGIL_LOCAL_DISCORD_WEBHOOK_URL'),
    required: ['VIGIL_LOCAL_DISCORD_WEBHOOK_URL'],
    requiredScope: 'contact',
    unauthorisedScope: 'contact',
    pointAt: (vars, base, p) => ({
      vars: { ...vars, VIGIL_LOCAL_DISCORD_WEBHOOK_URL: base + p.credentials.discordPath },
      to: endpoint('discord', '#ops', 'VIGIL_LOCAL_DISCORD_WEBHOOK_URL'),
    }),
  },
  {
    channel: 'pagerduty',
    provider: 'pagerduty',
    to: () => endpoint('pagerduty', 'on-call', 'VIGIL_LOCAL_PAGERDUTY_ROUTING_KEY'),
    required: ['VIGIL_LOCAL_PAGERDUTY_ROUTING_KEY'],
    requiredScope: 'contact',
    unauthorisedScope: 'alert',
    pointAt: (vars, base) => ({
      vars: { ...vars, VIGIL_PAGERDUTY_API_URL: base },
      to: endpoint('pagerduty', 'on-call', 'VIGIL_LOCAL_PAGERDUTY_ROUTING_KEY'),
    }),
  },
  {
    channel: 'webhook',
    provider: 'webhook',
    to: (p) => endpoint('webhook', `${p.url}/webhook/local`, 'VIGIL_LOCAL_WEBHOOK_SECRET'),
    required: ['VIGIL_LOCAL_WEBHOOK_SECRET'],
    requiredScope: 'contact',
    unauthorisedScope: 'contact',
    pointAt: (vars, base) => ({
      vars,
      to: endpoint('webhook', `${base}/webhook/local`, 'VIGIL_LOCAL_WEBHOOK_SECRET'),
    }),
  },
]

async function withProviders(
  body: (p: Providers) => Promise<void>,
  credentials?: ProviderCredentials,
): Promise<void> {
  const p = await startProviders({ port: 0, credentials })
  try {
    await body(p)
  } finally {
    await p.stop()
  }
}

function send(
  c: Case,
  p: Providers,
  opts: {
    vars?: Record<string, string>
    to?: Endpoint
    alerts?: AlertView[]
    timeoutMs?: number
  } = {},
): Promise<SendResult> {
  return notifierFor(c.channel).send(
    opts.alerts ?? [page()],
    opts.to ?? c.to(p),
    notifyEnv(opts.vars ?? p.env(), opts.timeoutMs),
  )
}

function expectKind(result: SendResult, kind: SendResult['kind'], status?: number): void {
  assert.equal(result.kind, kind, `expected ${kind}, got ${JSON.stringify(result)}`)
  if (status !== undefined) assert.equal(result.status, status, JSON.stringify(result))
}

/** A port nothing listens on (Deno refuses port 1 outright, which is another error). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const { port } = listener.addr as Deno.NetAddr
  listener.close()
  return port
}

const errorOf = (r: SendResult) => (r.kind === 'delivered' ? '' : r.error)
const scopeOf = (r: SendResult) => (r.kind === 'permanent' ? r.scope : undefined)

// ---- the registry ----

Deno.test('registry: a notifier for every channel, grouping all but PagerDuty', () => {
  for (const channel of ALERT_CHANNELS) {
    assert.equal(notifierFor(channel).channel, channel)
    assert.equal(notifierFor(channel).groups, channel !== 'pagerduty')
  }
  assert.deepEqual(Object.keys(NOTIFIERS).sort(), [...ALERT_CHANNELS].sort())
})

// ---- every channel, every way a provider fails ----

for (const c of CASES) {
  Deno.test(`${c.channel}: outcomes by how ${c.provider} answers`, async (t) => {
    await withProviders(async (p) => {
      const only = (b: Behaviour) => p.behave({ provider: c.provider, times: 1, ...b } as Behaviour)

      await t.step('2xx → delivered, one request', async () => {
        p.clear()
        const r = await send(c, p)
        expectKind(r, 'delivered')
        const seen = p.requests({ provider: c.provider })
        assert.equal(seen.length, 1)
        assert.ok(seen[0].answered >= 200 && seen[0].answered < 300)
      })

      await t.step('5xx → retryable, and the next send goes through', async () => {
        only({ mode: 'status', status: 503 })
        expectKind(await send(c, p), 'retryable', 503)
        only({ mode: 'status', status: 500 })
        expectKind(await send(c, p), 'retryable', 500)
        expectKind(await send(c, p), 'delivered')
      })

      await t.step('429 with Retry-After → retryable with retryAfterMs', async () => {
        only({ mode: 'retry_after', seconds: 7 })
        const r = await send(c, p)
        expectKind(r, 'retryable', 429)
        assert.equal(r.kind === 'retryable' && r.retryAfterMs, 7000)
      })

      await t.step('400 and 401 → permanent, each with its scope', async () => {
        only({ mode: 'status', status: 400 })
        const refused = await send(c, p)
        expectKind(refused, 'permanent', 400)
        assert.equal(scopeOf(refused), 'alert', 'a bare 400 is about the message')
        only({ mode: 'status', status: 401 })
        const r = await send(c, p)
        expectKind(r, 'permanent', 401)
        assert.match(errorOf(r), new RegExp(`^${c.channel}: .* 401`))
        assert.equal(scopeOf(r), c.unauthorisedScope)
      })

      await t.step('no answer → retryable within about timeoutMs', async () => {
        only({ mode: 'hang' })
        const started = performance.now()
        const r = await send(c, p, { timeoutMs: 300 })
        const ms = performance.now() - started
        expectKind(r, 'retryable')
        assert.match(errorOf(r), /no answer within 300 ms/)
        assert.ok(ms >= 280 && ms < 1500, `took ${Math.round(ms)} ms`)
      })

      await t.step('a redirect → retryable, not followed', async () => {
        p.clear()
        only({ mode: 'redirect' })
        const r = await send(c, p)
        // Followed, the request would have failed against port 1, with no status to show.
        expectKind(r, 'retryable', 302)
        assert.match(errorOf(r), /redirect, not followed/)
        assert.equal(p.requests().length, 1)
      })

      await t.step('a 2xx that is not the provider’s answer', async () => {
        only({ mode: 'garbage' })
        const r = await send(c, p)
        // A webhook receiver may answer anything; every provider has its own answer.
        if (c.channel === 'webhook') expectKind(r, 'delivered')
        else {
          expectKind(r, 'retryable')
          assert.match(errorOf(r), /unexpected body: <html>/)
        }
      })

      await t.step('a server speaking something other than HTTP → retryable', async () => {
        const garbage = startGarbageServer()
        try {
          const { vars, to } = c.pointAt(p.env(), garbage.url, p)
          const r = await send(c, p, { vars, to })
          expectKind(r, 'retryable')
          assert.equal(r.status, undefined)
          assert.match(errorOf(r), /unreachable: .*invalid HTTP/)
        } finally {
          await garbage.stop()
        }
      })

      await t.step('nothing listening → retryable', async () => {
        const { vars, to } = c.pointAt(p.env(), `http://127.0.0.1:${closedPort()}`, p)
        const r = await send(c, p, { vars, to })
        expectKind(r, 'retryable')
        assert.match(errorOf(r), /unreachable: .*(refused|connect)/i)
      })

      await t.step('a missing secret → permanent, naming the variable', async () => {
        p.clear()
        for (const name of c.required) {
          const vars = { ...p.env(), [name]: '' }
          const r = await send(c, p, { vars })
          expectKind(r, 'permanent')
          assert.match(errorOf(r), new RegExp(`^${name} is not set`))
          assert.equal(scopeOf(r), c.requiredScope, name)
        }
        if (c.to(p).secretName) {
          const r = await send(c, p, { to: { ...c.to(p), secretName: null } })
          expectKind(r, 'permanent')
          assert.match(errorOf(r), /names no secret/)
          assert.equal(scopeOf(r), 'contact')
        }
        assert.equal(p.requests().length, 0, 'nothing is sent without credentials')
      })
    })
  })
}

Deno.test('no channel throws, whatever its environment does', async () => {
  const env = {
    secret: () => {
      throw new Error('the vault is on fire')
    },
    fetch: globalThis.fetch,
    timeoutMs: 300,
  }
  for (const channel of ALERT_CHANNELS) {
    const to = endpoint(channel, 'https://example.invalid/hook', 'X')
    const r = await notifierFor(channel).send([page()], to, env)
    assert.equal(r.kind, 'retryable', channel)
    assert.match(errorOf(r), /the vault is on fire/)
    const empty = await notifierFor(channel).send([], to, env)
    assert.equal(empty.kind, 'permanent')
    assert.equal(scopeOf(empty), 'alert')
  }
})

// ---- what each provider receives ----

const [SMS, EMAIL, SLACK, DISCORD, PAGERDUTY, WEBHOOK] = CASES

Deno.test('sms: Twilio gets To, From and Body with Basic auth; MG… senders go as a service', async () => {
  await withProviders(async (p) => {
    const { twilioAccountSid: sid, twilioAuthToken: token } = p.credentials
    const r = await send(SMS, p)
    expectKind(r, 'delivered', 201)
    assert.match(r.kind === 'delivered' ? r.providerId ?? '' : '', /^SM[0-9a-f]{32}$/)
    const [seen] = p.requests({ provider: 'twilio' })
    assert.equal(seen.path, `/2010-04-01/Accounts/${sid}/Messages.json`)
    assert.equal(seen.headers.authorization, `Basic ${btoa(`${sid}:${token}`)}`)
    assert.match(seen.headers['content-type'], /application\/x-www-form-urlencoded/)
    assert.deepEqual(seen.body, {
      To: PHONE,
      From: p.credentials.twilioFrom,
      Body: smsText([page()]),
    })

    p.clear()
    const service = 'MG' + '0'.repeat(32)
    expectKind(
      await send(SMS, p, { vars: { ...p.env(), VIGIL_TWILIO_FROM: service } }),
      'delivered',
    )
    const [viaService] = p.requests({ provider: 'twilio' })
    assert.equal((viaService.body as Record<string, string>).MessagingServiceSid, service)
    assert.equal((viaService.body as Record<string, string>).From, undefined)
  })
})

Deno.test('sms: Twilio’s refusals are permanent and say why', async () => {
  await withProviders(async (p) => {
    const invalid = await send(SMS, p, { to: endpoint('sms', '555-not-a-number') })
    expectKind(invalid, 'permanent', 400)
    assert.match(errorOf(invalid), /not a valid phone number \(code 21211\)/)

    const unauthorised = await send(SMS, p, {
      vars: { ...p.env(), VIGIL_TWILIO_AUTH_TOKEN: 'f'.repeat(32) },
    })
    expectKind(unauthorised, 'permanent', 401)
    assert.match(errorOf(unauthorised), /Authenticate \(code 20003\)/)

    const notAnAccount = await send(SMS, p, {
      vars: { ...p.env(), VIGIL_TWILIO_ACCOUNT_SID: 'SK' + '0'.repeat(32) },
    })
    expectKind(notAnAccount, 'permanent')
    assert.match(errorOf(notAnAccount), /VIGIL_TWILIO_ACCOUNT_SID does not hold an account SID/)
  })
})

Deno.test('email: SendGrid gets the message with Bearer auth, text and HTML', async () => {
  await withProviders(async (p) => {
    const r = await send(EMAIL, p)
    expectKind(r, 'delivered', 202)
    const [seen] = p.requests({ provider: 'sendgrid' })
    assert.ok(r.kind === 'delivered' && r.providerId && r.providerId.length >= 16)
    assert.equal(seen.path, '/v3/mail/send')
    assert.equal(seen.headers.authorization, `Bearer ${p.credentials.sendgridApiKey}`)
    const mail = seen.body as any
    assert.deepEqual(mail.personalizations[0].to, [{ email: MAILBOX }])
    assert.deepEqual(mail.from, { email: 'vigil@example.com', name: 'Vigil (local)' })
    assert.equal(mail.subject, '[P1][PROD] api is down')
    assert.deepEqual(mail.content.map((c: { type: string }) => c.type), ['text/plain', 'text/html'])
    assert.match(mail.content[0].value, /^🚨 P1 PROD api is down \(since 03:12 UTC\)\nCause: /)
    assert.ok(mail.content[1].value.includes(`<a href="${ACK_LINK}">Acknowledge</a>`))
    assert.equal(mail.tracking_settings.click_tracking.enable, false)

    const wrongKey = await send(EMAIL, p, {
      vars: { ...p.env(), VIGIL_SENDGRID_API_KEY: 'SG.x.y' },
    })
    expectKind(wrongKey, 'permanent', 401)
    assert.match(errorOf(wrongKey), /authorization grant is invalid/)

    const badFrom = await send(EMAIL, p, { vars: { ...p.env(), VIGIL_SENDGRID_FROM: 'Vigil' } })
    expectKind(badFrom, 'permanent')
    assert.match(errorOf(badFrom), /VIGIL_SENDGRID_FROM is not an email address/)
  })
})

Deno.test('slack: the webhook gets text, a mrkdwn section and URL buttons', async () => {
  await withProviders(async (p) => {
    expectKind(await send(SLACK, p), 'delivered', 200)
    const [seen] = p.requests({ provider: 'slack' })
    assert.equal(seen.path, p.credentials.slackPath)
    const doc = seen.body as any
    assert.equal(doc.text, '🚨 P1 PROD api is down (since 03:12 UTC)')
    assert.equal(doc.blocks[0].type, 'section')
    assert.equal(doc.blocks[0].text.type, 'mrkdwn')
    assert.match(
      doc.blocks[0].text.text,
      /^\*🚨 P1 PROD api is down\* \(since 03:12 UTC\)\n\*Cause:\*/,
    )
    assert.deepEqual(
      doc.blocks[1].elements.map((e: any) => [e.text.text, e.url]),
      [['Acknowledge', ACK_LINK], ['Dashboard', DASHBOARD_LINK]],
    )

    const gone = await send(SLACK, p, {
      vars: { ...p.env(), VIGIL_LOCAL_SLACK_WEBHOOK_URL: `${p.url}/slack/services/T1/B1/revoked` },
    })
    expectKind(gone, 'permanent', 404)
    assert.match(errorOf(gone), /no_service/)
  })
})

Deno.test('discord: the webhook gets content with mentions off; its retry_after counts', async () => {
  await withProviders(async (p) => {
    expectKind(await send(DISCORD, p), 'delivered', 204)
    const [seen] = p.requests({ provider: 'discord' })
    const doc = seen.body as any
    assert.deepEqual(doc.allowed_mentions, { parse: [] })
    assert.equal(doc.flags, 4)
    assert.match(doc.content, /^\*\*🚨 P1 PROD api is down\*\* \(since 03:12 UTC\)/)
    assert.ok(doc.content.includes(`Acknowledge: <${ACK_LINK}>`))

    // Discord's own retry_after (fractional seconds) is more precise than its header.
    p.behave({
      provider: 'discord',
      mode: 'status',
      status: 429,
      body: { message: 'You are being rate limited.', retry_after: 0.35, global: false },
      headers: { 'retry-after': '1' },
      times: 1,
    })
    const limited = await send(DISCORD, p)
    expectKind(limited, 'retryable', 429)
    assert.equal(limited.kind === 'retryable' && limited.retryAfterMs, 350)

    const unknown = await send(DISCORD, p, {
      vars: { ...p.env(), VIGIL_LOCAL_DISCORD_WEBHOOK_URL: `${p.url}/discord/api/webhooks/1/gone` },
    })
    expectKind(unknown, 'permanent', 404)
    assert.match(errorOf(unknown), /Unknown Webhook/)
  })
})

Deno.test('pagerduty: trigger, acknowledge and resolve under one dedup_key', async () => {
  await withProviders(async (p) => {
    const events = [
      page({ id: 1 }),
      page({ id: 2, event: 'reminder' }),
      page({
        id: 3,
        event: 'acknowledged',
        summary: 'api is down: acknowledged by Ana',
        acknowledgedBy: 'Ana',
      }),
      page({ id: 4, event: 'resolved', summary: 'api answers again' }),
    ]
    for (const alert of events) {
      const r = await send(PAGERDUTY, p, { alerts: [alert] })
      expectKind(r, 'delivered', 202)
      assert.equal(r.kind === 'delivered' && r.providerId, 'vigil-incident-42')
    }
    const sent = p.requests({ provider: 'pagerduty' }).map((r) => r.body as any)
    assert.deepEqual(sent.map((e) => e.event_action), [
      'trigger',
      'trigger',
      'acknowledge',
      'resolve',
    ])
    assert.ok(sent.every((e) => e.dedup_key === 'vigil-incident-42'))
    assert.ok(sent.every((e) => e.routing_key === p.credentials.pagerdutyRoutingKey))
    const trigger = sent[0]
    assert.equal(trigger.client, 'Vigil')
    assert.equal(trigger.client_url, DASHBOARD_LINK)
    assert.deepEqual(
      {
        summary: trigger.payload.summary,
        source: trigger.payload.source,
        severity: trigger.payload.severity,
        component: trigger.payload.component,
        group: trigger.payload.group,
        class: trigger.payload.class,
      },
      {
        summary: 'P1 PROD api is down: connection refused on GET https://api.example.org/health',
        source: 'api',
        severity: 'critical',
        component: 'api',
        group: 'prod',
        class: 'page',
      },
    )
    assert.deepEqual(trigger.payload.custom_details.affected, ['auth', 'storage'])
    assert.deepEqual(trigger.links.map((l: any) => l.href), [ACK_LINK, DASHBOARD_LINK])
    assert.equal(sent[2].payload, undefined)

    p.clear()
    await send(PAGERDUTY, p, { alerts: [page({ dedupKey: null, priority: 'P3' })] })
    const [fallback] = p.requests({ provider: 'pagerduty' }).map((r) => r.body as any)
    assert.equal(fallback.dedup_key, 'vigil-alert-7')
    assert.equal(fallback.payload.severity, 'warning')

    const wrongKey = await send(PAGERDUTY, p, {
      vars: { ...p.env(), VIGIL_LOCAL_PAGERDUTY_ROUTING_KEY: 'r'.repeat(32) },
    })
    expectKind(wrongKey, 'permanent', 400)
    assert.match(errorOf(wrongKey), /Invalid routing key/)
  })
})

Deno.test('pagerduty: stable resolves what flapping triggered, under its dedup_key', async () => {
  await withProviders(async (p) => {
    const key = 'vigil-flapping-api'
    const flapping = page({ id: 20, event: 'flapping', dedupKey: key, links: {} })
    const stable = page({ id: 21, event: 'stable', title: 'api is stable', dedupKey: key })
    for (const alert of [flapping, stable]) {
      const r = await send(PAGERDUTY, p, { alerts: [alert] })
      expectKind(r, 'delivered', 202)
      assert.equal(r.kind === 'delivered' && r.providerId, key)
    }
    const sent = p.requests({ provider: 'pagerduty' }).map((r) => r.body as any)
    assert.deepEqual(sent.map((e) => [e.event_action, e.dedup_key]), [
      ['trigger', key],
      ['resolve', key],
    ])
    assert.equal(sent[0].payload.class, 'flapping')
    assert.equal(sent[1].payload, undefined)
  })
})

Deno.test('pagerduty: no approve or reject link, and why the alert came in the details', async () => {
  await withProviders(async (p) => {
    const alert = page({
      reason: 'not acknowledged within 15 min',
      links: {
        acknowledge: ACK_LINK,
        approve: 'https://p.supabase.co/functions/v1/heal-approval?d=approved',
        reject: 'https://p.supabase.co/functions/v1/heal-approval?d=rejected',
        dashboard: DASHBOARD_LINK,
      },
    })
    expectKind(await send(PAGERDUTY, p, { alerts: [alert] }), 'delivered', 202)
    const [event] = p.requests({ provider: 'pagerduty' }).map((r) => r.body as any)
    assert.deepEqual(event.links, [
      { href: ACK_LINK, text: 'Acknowledge in Vigil' },
      { href: DASHBOARD_LINK, text: 'Dashboard in Vigil' },
    ])
    assert.ok(!JSON.stringify(event).includes('heal-approval'), 'nowhere else either')
    assert.equal(event.payload.custom_details.reason, 'not acknowledged within 15 min')
  })
})

Deno.test('webhook: signed JSON the receiver can verify', async () => {
  await withProviders(async (p) => {
    expectKind(await send(WEBHOOK, p), 'delivered', 200)
    expectKind(await send(WEBHOOK, p), 'delivered', 200)
    const [first, second] = p.requests({ provider: 'webhook' })
    const key = p.credentials.webhookSecret
    assert.equal(first.headers['content-type'], 'application/json')
    assert.equal(first.headers['user-agent'], 'Vigil')
    assert.equal(second.headers['x-vigil-delivery'], first.headers['x-vigil-delivery'])
    const ts = first.headers['x-vigil-timestamp']
    assert.ok(Math.abs(Number(ts) - Date.now() / 1000) < 10)
    const sig = first.headers['x-vigil-signature']
    assert.match(sig, /^v1=[0-9a-f]{64}$/)

    assert.equal(await verifyWebhookSignature(first.raw, ts, sig, key), true)
    assert.equal(await verifyWebhookSignature(first.raw, ts, sig, `${key}x`), false)
    assert.equal(
      await verifyWebhookSignature(first.raw.replace('api is down', 'api is up'), ts, sig, key),
      false,
    )
    assert.equal(await verifyWebhookSignature(first.raw, String(Number(ts) + 1), sig, key), false)
    assert.equal(await verifyWebhookSignature(first.raw, ts, 'v1=nothex', key), false)
    // A replay long after the fact is refused; a rotated key is accepted beside the old one.
    const later = new Date(Number(ts) * 1000 + 3_600_000)
    assert.equal(await verifyWebhookSignature(first.raw, ts, sig, key, { now: later }), false)
    assert.equal(
      await verifyWebhookSignature(first.raw, ts, `v1=${'0'.repeat(64)}, ${sig}`, key),
      true,
    )

    const body = first.body as any
    assert.equal(body.type, 'vigil.alerts')
    assert.deepEqual(Object.keys(body), ['type', 'delivery_id', 'sent_at', 'alerts'])
    assert.equal(body.delivery_id, first.headers['x-vigil-delivery'])
    assert.deepEqual(Object.keys(body.alerts[0]), [
      'id',
      'incident_id',
      'event',
      'priority',
      'severity',
      'environment',
      'service',
      'title',
      'reason',
      'summary',
      'since',
      'tried',
      'suggestion',
      'affected',
      'links',
      'dedup_key',
      'created_at',
    ])
    assert.equal(body.alerts[0].since, '2026-01-01T03:12:00.000Z')
    assert.equal(body.alerts[0].dedup_key, 'vigil-incident-42')
    assert.equal(body.alerts[0].reason, null)

    const wrongKey = await send(WEBHOOK, p, {
      vars: { ...p.env(), VIGIL_LOCAL_WEBHOOK_SECRET: 'not-the-receivers-key' },
    })
    expectKind(wrongKey, 'permanent', 401)

    const notUrl = await send(WEBHOOK, p, {
      to: endpoint('webhook', 'ftp://x', 'VIGIL_LOCAL_WEBHOOK_SECRET'),
    })
    expectKind(notUrl, 'permanent')
    assert.match(errorOf(notUrl), /not an http\(s\) URL/)
  })
})

/** The hex SHA-256 of `text`. */
async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('')
}

Deno.test('webhook: the delivery id is the same for the same alerts, and signed in the body', async () => {
  await withProviders(async (p) => {
    const [a, b, c] = [page({ id: 7 }), page({ id: 12 }), page({ id: 100 })]
    const sends = [[a], [a], [a, b], [b, a], [a, b, c], [b]]
    for (const alerts of sends) expectKind(await send(WEBHOOK, p, { alerts }), 'delivered', 200)
    const ids = p.requests({ provider: 'webhook' }).map((r) => {
      assert.equal((r.body as any).delivery_id, r.headers['x-vigil-delivery'])
      return r.headers['x-vigil-delivery']
    })
    // A retry of the same alerts says the same, whatever their order; other alerts, another id.
    assert.equal(ids[1], ids[0])
    assert.equal(ids[3], ids[2])
    assert.equal(new Set(ids).size, 4, JSON.stringify(ids))
    // The first 128 bits of the SHA-256 of the sorted ids, as a UUID (ids sort as numbers).
    const hex = (await sha256('7,12')).slice(0, 32)
    assert.equal(
      ids[2],
      `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
        hex.slice(20)
      }`,
    )
    assert.equal(await deliveryId([c, b, a]), ids[4])
    assert.match(ids[0], /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)

    // A request replayed under a new header still names its delivery in the signed body; the
    // stand-in, as a receiver, takes the body's word and refuses the disagreement.
    const [original] = p.requests({ provider: 'webhook' })
    const replay = await fetch(`${p.url}/webhook/local`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-vigil-timestamp': original.headers['x-vigil-timestamp'],
        'x-vigil-signature': original.headers['x-vigil-signature'],
        'x-vigil-delivery': crypto.randomUUID(),
      },
      body: original.raw,
    })
    assert.equal(replay.status, 400)
    assert.match(await replay.text(), /does not match the delivery_id signed in the body/)
    const ts = original.headers['x-vigil-timestamp']
    const edited = original.raw.replace(ids[0], crypto.randomUUID())
    assert.equal(
      await verifyWebhookSignature(
        edited,
        ts,
        original.headers['x-vigil-signature'],
        p.credentials.webhookSecret,
      ),
      false,
      'the id in the body cannot be changed without the key',
    )
  })
})

// ---- whose fault a permanent refusal is ----

/** One way a send fails for good, and whose fault it is. */
interface Refusal {
  what: string
  scope: Scope
  status?: number
  error?: RegExp
  /** The provider's answer to this one request, instead of its own. */
  answer?: { status: number; body: unknown }
  vars?: (p: Providers) => Record<string, string>
  to?: (p: Providers) => Endpoint
  /** Refused before any request. */
  unsent?: boolean
}

const twilioError = (status: number, code: number, message: string) => ({
  status,
  body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status },
})
const sendGridError = (status: number, message: string, field: string | null) => ({
  status,
  body: { errors: [{ message, field, help: null }] },
})
const smsTo = (address: string) => () => endpoint('sms', address)
const without = (name: string) => (p: Providers) => ({ ...p.env(), [name]: '' })
const withVar = (name: string, value: string) => (p: Providers) => ({ ...p.env(), [name]: value })

const REFUSALS: Record<AlertChannel, Refusal[]> = {
  sms: [
    { what: 'invalid To (21211)', to: smsTo('+15005550001'), scope: 'contact', error: /21211/ },
    {
      what: "region not enabled (21408): the account's setting",
      to: smsTo('+15005550003'),
      scope: 'provider',
    },
    { what: 'unsubscribed, STOP (21610)', to: smsTo('+15005550004'), scope: 'contact' },
    { what: 'not a mobile number (21614)', to: smsTo('+15005550009'), scope: 'contact' },
    { what: 'no number at all (21604)', to: smsTo(''), scope: 'contact', error: /21604/ },
    {
      what: 'authentication refused (401, 20003)',
      vars: withVar('VIGIL_TWILIO_AUTH_TOKEN', 'f'.repeat(32)),
      status: 401,
      scope: 'provider',
      error: /20003/,
    },
    {
      what: 'account suspended (20005)',
      answer: twilioError(403, 20005, 'Account not active'),
      status: 403,
      scope: 'provider',
    },
    {
      what: 'account not active (10001)',
      answer: twilioError(400, 10001, 'Account is not active'),
      scope: 'provider',
    },
    {
      what: 'the sender is not a Twilio number (21606)',
      answer: twilioError(400, 21606, "The 'From' phone number is not a valid, SMS-capable number"),
      scope: 'provider',
    },
    {
      what: 'VIGIL_TWILIO_FROM unset',
      vars: without('VIGIL_TWILIO_FROM'),
      scope: 'provider',
      unsent: true,
    },
    {
      what: 'an SID that is not an account’s',
      vars: withVar('VIGIL_TWILIO_ACCOUNT_SID', 'SK' + '0'.repeat(32)),
      scope: 'provider',
      unsent: true,
    },
    {
      what: 'VIGIL_TWILIO_API_URL not a URL',
      vars: withVar('VIGIL_TWILIO_API_URL', 'ftp://twilio'),
      scope: 'provider',
      unsent: true,
    },
    {
      what: 'body too long (21617)',
      answer: twilioError(400, 21617, 'The concatenated message body exceeds the 1600 limit'),
      status: 400,
      scope: 'alert',
    },
    {
      what: 'the SDK refuses a parameter',
      to: smsTo(undefined as unknown as string),
      scope: 'alert',
      error: /SDK refused/,
      unsent: true,
    },
  ],
  email: [
    {
      what: 'a recipient the stand-in refuses',
      to: () => endpoint('email', 'not-an-address'),
      status: 400,
      scope: 'contact',
    },
    {
      what: 'SendGrid’s own words for a bad recipient',
      answer: sendGridError(
        400,
        'Does not contain a valid address.',
        'personalizations.0.to.0.email',
      ),
      scope: 'contact',
    },
    {
      what: 'a refused key (401)',
      vars: withVar('VIGIL_SENDGRID_API_KEY', 'SG.x.y'),
      status: 401,
      scope: 'provider',
    },
    {
      what: 'an unverified sender (403)',
      answer: sendGridError(
        403,
        'The from address does not match a verified Sender Identity.',
        'from',
      ),
      status: 403,
      scope: 'provider',
    },
    {
      what: 'a sender SendGrid refuses (400 from.email)',
      answer: sendGridError(400, 'The from email does not contain a valid address.', 'from.email'),
      scope: 'provider',
    },
    {
      what: 'VIGIL_SENDGRID_API_KEY unset',
      vars: without('VIGIL_SENDGRID_API_KEY'),
      scope: 'provider',
      unsent: true,
    },
    {
      what: 'VIGIL_SENDGRID_FROM not an address',
      vars: withVar('VIGIL_SENDGRID_FROM', 'Vigil'),
      scope: 'provider',
      unsent: true,
    },
    {
      what: 'too large (413)',
      answer: sendGridError(413, 'Payload Too Large', null),
      status: 413,
      scope: 'alert',
    },
    {
      what: 'content refused (400)',
      answer: sendGridError(400, 'The content value must be a string.', 'content.0.value'),
      scope: 'alert',
    },
    {
      what: 'the SDK refuses a parameter',
      to: () => endpoint('email', undefined as unknown as string),
      scope: 'alert',
      error: /SDK refused/,
      unsent: true,
    },
  ],
  slack: [
    {
      what: 'a revoked webhook (404 no_service)',
      vars: (p) => ({ ...p.env(), VIGIL_LOCAL_SLACK_WEBHOOK_URL: `${p.url}/slack/services/T/B/x` }),
      status: 404,
      scope: 'contact',
      error: /no_service/,
    },
    { what: '403 invalid_token', answer: { status: 403, body: 'invalid_token' }, scope: 'contact' },
    {
      what: '410 channel_is_archived',
      answer: { status: 410, body: 'channel_is_archived' },
      scope: 'contact',
    },
    {
      what: '404 channel_not_found',
      answer: { status: 404, body: 'channel_not_found' },
      scope: 'contact',
    },
    {
      what: '403 action_prohibited',
      answer: { status: 403, body: 'action_prohibited' },
      scope: 'contact',
    },
    {
      what: 'its secret unset',
      vars: without('VIGIL_LOCAL_SLACK_WEBHOOK_URL'),
      scope: 'contact',
      unsent: true,
    },
    {
      what: 'its secret not a URL',
      vars: withVar('VIGIL_LOCAL_SLACK_WEBHOOK_URL', 'hooks.slack.com/services/T/B/x'),
      scope: 'contact',
      error: /does not hold an http\(s\) URL/,
      unsent: true,
    },
    {
      what: '400 invalid_payload',
      answer: { status: 400, body: 'invalid_payload' },
      scope: 'alert',
      error: /invalid_payload/,
    },
    { what: '400 invalid_blocks', answer: { status: 400, body: 'invalid_blocks' }, scope: 'alert' },
  ],
  discord: [
    {
      what: 'an unknown webhook (404, 10015)',
      vars: (p) => ({
        ...p.env(),
        VIGIL_LOCAL_DISCORD_WEBHOOK_URL: `${p.url}/discord/api/webhooks/1/gone`,
      }),
      status: 404,
      scope: 'contact',
      error: /Unknown Webhook/,
    },
    {
      what: 'an invalid token (401, 50027)',
      vars: (p) => ({
        ...p.env(),
        VIGIL_LOCAL_DISCORD_WEBHOOK_URL: `${p.url}${
          p.credentials.discordPath.replace(/[^/]+$/, 'revoked')
        }`,
      }),
      status: 401,
      scope: 'contact',
      error: /Invalid Webhook Token/,
    },
    {
      what: 'its secret unset',
      vars: without('VIGIL_LOCAL_DISCORD_WEBHOOK_URL'),
      scope: 'contact',
      unsent: true,
    },
    {
      what: 'its secret not a URL',
      vars: withVar('VIGIL_LOCAL_DISCORD_WEBHOOK_URL', 'not a url'),
      scope: 'contact',
      unsent: true,
    },
    {
      what: 'an invalid form body (400, 50035)',
      answer: { status: 400, body: { message: 'Invalid Form Body', code: 50035, errors: {} } },
      status: 400,
      scope: 'alert',
      error: /Invalid Form Body/,
    },
  ],
  pagerduty: [
    {
      what: 'an unknown routing key',
      vars: withVar('VIGIL_LOCAL_PAGERDUTY_ROUTING_KEY', 'r'.repeat(32)),
      status: 400,
      scope: 'contact',
      error: /Invalid routing key/,
    },
    {
      what: 'its secret unset',
      vars: without('VIGIL_LOCAL_PAGERDUTY_ROUTING_KEY'),
      scope: 'contact',
      unsent: true,
    },
    {
      what: 'an invalid payload',
      answer: {
        status: 400,
        body: {
          status: 'invalid event',
          message: 'Event object is invalid',
          errors: ["'payload.summary' is missing or blank"],
        },
      },
      status: 400,
      scope: 'alert',
      error: /payload\.summary/,
    },
    {
      what: 'VIGIL_PAGERDUTY_API_URL not a URL',
      vars: withVar('VIGIL_PAGERDUTY_API_URL', 'events.pagerduty.com'),
      scope: 'provider',
      unsent: true,
    },
  ],
  webhook: [
    {
      what: 'the receiver does not take the signature (401)',
      vars: withVar('VIGIL_LOCAL_WEBHOOK_SECRET', 'not-the-receivers-key'),
      status: 401,
      scope: 'contact',
    },
    { what: '403', answer: { status: 403, body: { error: 'forbidden' } }, scope: 'contact' },
    { what: '404', answer: { status: 404, body: { error: 'no such hook' } }, scope: 'contact' },
    { what: '410', answer: { status: 410, body: { error: 'gone' } }, scope: 'contact' },
    {
      what: 'an address that is not http(s)',
      to: () => endpoint('webhook', 'ftp://x', 'VIGIL_LOCAL_WEBHOOK_SECRET'),
      scope: 'contact',
      unsent: true,
    },
    {
      what: 'its signing key unset',
      vars: without('VIGIL_LOCAL_WEBHOOK_SECRET'),
      scope: 'contact',
      unsent: true,
    },
    { what: '400', answer: { status: 400, body: { error: 'bad' } }, scope: 'alert' },
    { what: '413', answer: { status: 413, body: { error: 'too large' } }, scope: 'alert' },
    { what: '422', answer: { status: 422, body: { error: 'unprocessable' } }, scope: 'alert' },
  ],
}

for (const c of CASES) {
  Deno.test(`${c.channel}: every permanent refusal says whose fault it is`, async (t) => {
    const scopes = new Set(REFUSALS[c.channel].map((r) => r.scope))
    // Every scope that can happen on the channel is tried (a provider setup only with a VIGIL_*).
    assert.ok(scopes.has('contact') && scopes.has('alert'), c.channel)
    await withProviders(async (p) => {
      for (const refusal of REFUSALS[c.channel]) {
        await t.step(`${refusal.what} → ${refusal.scope}`, async () => {
          p.clear()
          if (refusal.answer) {
            p.behave({ provider: c.provider, mode: 'status', times: 1, ...refusal.answer })
          }
          const r = await send(c, p, { vars: refusal.vars?.(p), to: refusal.to?.(p) })
          expectKind(r, 'permanent', refusal.status ?? refusal.answer?.status)
          assert.equal(scopeOf(r), refusal.scope, JSON.stringify(r))
          if (refusal.error) assert.match(errorOf(r), refusal.error)
          assert.equal(p.requests().length, refusal.unsent ? 0 : 1)
          p.behave({ mode: 'ok' })
        })
      }
    })
  })
}

Deno.test('Retry-After: seconds, fractions and HTTP dates', () => {
  const now = Date.parse('2026-01-01T00:00:00Z')
  assert.equal(retryAfterMs('7', now), 7000)
  assert.equal(retryAfterMs('0.25', now), 250)
  assert.equal(retryAfterMs('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000)
  assert.equal(retryAfterMs('Wed, 31 Dec 2025 23:00:00 GMT', now), 0)
  assert.equal(retryAfterMs('soon', now), undefined)
  assert.equal(retryAfterMs(null, now), undefined)
})

// ---- no secret leaves a send ----

/** Recognisable values, each distinct, in each provider's format. */
const LEAKY: ProviderCredentials = {
  twilioAccountSid: 'AC' + 'feedface'.repeat(4),
  twilioAuthToken: 'deadbeef'.repeat(4),
  twilioFrom: '+15005550006',
  sendgridApiKey: 'SG.LeakyKeyIdent0000000.LeakySendgridSecret0000000000000000000000000',
  pagerdutyRoutingKey: 'LEAKYROUTINGKEY'.padEnd(32, 'Z'),
  webhookSecret: 'leaky-webhook-hmac-key-0123456789',
  slackPath: '/slack/services/TLEAKY000/BLEAKY000/LeakySlackToken0000000000',
  discordPath: '/discord/api/webhooks/555555555555555555/LeakyDiscordToken000000000000',
}
const WEBHOOK_QUERY_TOKEN = 'LeakyQueryToken0123456789'

function secretValues(base: string): string[] {
  const c = LEAKY
  return [
    c.twilioAccountSid,
    c.twilioAuthToken,
    btoa(`${c.twilioAccountSid}:${c.twilioAuthToken}`),
    c.sendgridApiKey,
    c.pagerdutyRoutingKey,
    c.webhookSecret,
    base + c.slackPath,
    c.slackPath,
    'LeakySlackToken0000000000',
    base + c.discordPath,
    c.discordPath,
    'LeakyDiscordToken000000000000',
    WEBHOOK_QUERY_TOKEN,
  ]
}

const CONSOLE_METHODS = ['log', 'error', 'warn', 'info', 'debug'] as const

/** Runs `body` with everything written to the console collected instead of printed. */
async function capturingConsole(body: () => Promise<void>): Promise<string> {
  const saved = CONSOLE_METHODS.map((m) => console[m])
  let written = ''
  for (const m of CONSOLE_METHODS) {
    console[m] = (...args: unknown[]) => {
      written += args.map((a) => (typeof a === 'string' ? a : Deno.inspect(a))).join(' ') + '\n'
    }
  }
  try {
    await body()
  } finally {
    CONSOLE_METHODS.forEach((m, i) => (console[m] = saved[i]))
  }
  return written
}

Deno.test('no secret in any result or on the console, even when providers echo the request', async () => {
  await withProviders(async (p) => {
    const secrets = secretValues(p.url)
    const echoing: Behaviour[] = [
      { mode: 'status', status: 400, echo: true },
      { mode: 'status', status: 401, echo: true },
      { mode: 'status', status: 500, echo: true },
      { mode: 'retry_after', seconds: 3, echo: true },
      { mode: 'garbage', echo: true },
    ]
    const results: { channel: string; result: SendResult }[] = []
    const garbage = startGarbageServer()
    const written = await capturingConsole(async () => {
      for (const c of CASES) {
        const to = c.channel === 'webhook'
          ? endpoint(
            'webhook',
            `${p.url}/webhook/local?token=${WEBHOOK_QUERY_TOKEN}`,
            'VIGIL_LOCAL_WEBHOOK_SECRET',
          )
          : c.to(p)
        for (const b of echoing) {
          p.behave({ ...b, provider: c.provider, times: 1 } as Behaviour)
          results.push({ channel: c.channel, result: await send(c, p, { to }) })
        }
        // Runtime errors quote the URL they could not reach: a webhook's, with its token.
        const away = c.pointAt(p.env(), garbage.url, p)
        const awayTo = c.channel === 'webhook'
          ? endpoint(
            'webhook',
            `${garbage.url}/hook?token=${WEBHOOK_QUERY_TOKEN}`,
            'VIGIL_LOCAL_WEBHOOK_SECRET',
          )
          : away.to
        results.push({
          channel: c.channel,
          result: await send(c, p, { vars: away.vars, to: awayTo }),
        })
        p.behave({ mode: 'ok' })
      }
    })
    await garbage.stop()

    for (const { channel, result } of results) {
      const shown = JSON.stringify(result)
      for (const s of secrets) assert.ok(!shown.includes(s), `${channel} leaked ${s}: ${shown}`)
    }
    for (const s of secrets) assert.ok(!written.includes(s), `the console got ${s}`)
    // The echo did carry secrets into the errors, and they were taken out.
    for (const c of CASES) {
      const redacted = results.filter((r) =>
        r.channel === c.channel && errorOf(r.result).includes('[redacted]')
      )
      assert.ok(
        redacted.length >= 3,
        `${c.channel}: ${JSON.stringify(results.filter((r) => r.channel === c.channel))}`,
      )
    }
  }, LEAKY)
})
