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
import { retryAfterMs } from '../../supabase/functions/_shared/notify/channels/http.ts'
import { verifyWebhookSignature } from '../../supabase/functions/_shared/notify/channels/webhook.ts'
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

      await t.step('400 and 401 → permanent', async () => {
        only({ mode: 'status', status: 400 })
        expectKind(await send(c, p), 'permanent', 400)
        only({ mode: 'status', status: 401 })
        const r = await send(c, p)
        expectKind(r, 'permanent', 401)
        assert.match(errorOf(r), new RegExp(`^${c.channel}: .* 401`))
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
        }
        if (c.to(p).secretName) {
          const r = await send(c, p, { to: { ...c.to(p), secretName: null } })
          expectKind(r, 'permanent')
          assert.match(errorOf(r), /names no secret/)
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
    assert.equal((await notifierFor(channel).send([], to, env)).kind, 'permanent')
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

Deno.test('webhook: signed JSON the receiver can verify, a fresh delivery id per send', async () => {
  await withProviders(async (p) => {
    expectKind(await send(WEBHOOK, p), 'delivered', 200)
    expectKind(await send(WEBHOOK, p), 'delivered', 200)
    const [first, second] = p.requests({ provider: 'webhook' })
    const key = p.credentials.webhookSecret
    assert.equal(first.headers['content-type'], 'application/json')
    assert.equal(first.headers['user-agent'], 'Vigil')
    assert.match(first.headers['x-vigil-delivery'], /^[0-9a-f-]{36}$/)
    assert.notEqual(first.headers['x-vigil-delivery'], second.headers['x-vigil-delivery'])
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
    assert.deepEqual(Object.keys(body.alerts[0]), [
      'id',
      'incident_id',
      'event',
      'priority',
      'severity',
      'environment',
      'service',
      'title',
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
