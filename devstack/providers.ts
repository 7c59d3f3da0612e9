// Local stand-ins for the alert providers (Twilio, SendGrid, Slack, Discord, PagerDuty and a signed
// webhook receiver), on one port. Each route checks what the real API checks (credentials, required
// fields, limits) and answers in its shape, and every request is recorded: `npm start` runs it so a
// developer sees alerts land (http://127.0.0.1:54324/) without any account, and tests use it to
// check what a channel sent and to make a provider fail on purpose (behave()).
// Dev tooling only: never deployed.
import { verifyWebhookSignature } from '../supabase/functions/_shared/notify/channels/webhook.ts'

export const PROVIDERS = ['twilio', 'sendgrid', 'slack', 'discord', 'pagerduty', 'webhook'] as const
export type ProviderName = (typeof PROVIDERS)[number]

export interface ProviderCredentials {
  twilioAccountSid: string
  twilioAuthToken: string
  twilioFrom: string
  sendgridApiKey: string
  pagerdutyRoutingKey: string
  webhookSecret: string
  /** The path of the Slack incoming webhook: /slack/services/T…/B…/<token>. */
  slackPath: string
  /** The path of the Discord webhook: /discord/api/webhooks/<id>/<token>. */
  discordPath: string
}

/** Fixed values in the real formats, so the SDKs and any format check accept them. */
export const LOCAL_PROVIDER_CREDENTIALS: ProviderCredentials = {
  twilioAccountSid: 'AC' + '10ca1'.padEnd(32, '0'),
  twilioAuthToken: 'a1ca1'.padEnd(32, '0'),
  twilioFrom: '+15005550006',
  sendgridApiKey: 'SG.vigil_local_000000000.vigil_local_key_for_the_stand_in_only_0000',
  pagerdutyRoutingKey: 'vigillocalroutingkey'.padEnd(32, '0'),
  webhookSecret: 'vigil-local-webhook-signing-secret',
  slackPath: '/slack/services/T00000000/B00000000/vigillocalslacktoken000',
  discordPath: '/discord/api/webhooks/100000000000000000/vigil-local-discord-webhook-token',
}

export interface Recorded {
  at: Date
  provider: ProviderName
  method: string
  path: string
  query: Record<string, string>
  /** Lower-case names. */
  headers: Record<string, string>
  /** A form as an object, JSON as its value, anything else as text. */
  body: unknown
  raw: string
  /** The status answered; 0 while a hanging request waits. */
  answered: number
}

/** How the next matching requests are answered, instead of the provider's own answer. */
export type Behaviour =
  & {
    /** Only requests to this provider; all of them when absent. */
    provider?: ProviderName
    /** For the next `times` matching requests, then back to ok; until changed when absent. */
    times?: number
  }
  & (
    | { mode: 'ok' }
    /** This status; `echo` answers with what the request carried (auth, URL, body, headers). */
    | {
      mode: 'status'
      status: number
      body?: unknown
      headers?: Record<string, string>
      echo?: boolean
    }
    /** 429 with Retry-After: seconds (default 7). */
    | { mode: 'retry_after'; seconds?: number; echo?: boolean }
    /** No answer until the server stops. */
    | { mode: 'hang' }
    /** 302 to http://127.0.0.1:1/elsewhere. */
    | { mode: 'redirect' }
    /** The provider's success status with an HTML page instead of its answer. */
    | { mode: 'garbage'; echo?: boolean }
  )

/**
 * The dead man's switch stand-in (a Healthchecks.io check at /hc/<uuid>): each health-check cycle
 * pings it (VIGIL_DEADMAN_URL), and like Healthchecks.io it turns down when no ping came for its
 * period plus grace, and up at the next one. Pings are not alerts, so they are kept apart from
 * requests(); its down and up events are what Healthchecks.io would send to a person.
 */
export interface Deadman {
  /** new (never pinged), up, or down (silent past period + grace, or last pinged …/fail). */
  status: 'new' | 'up' | 'down'
  pings: number
  fails: number
  last_ping_at: Date | null
  events: { at: Date; status: 'up' | 'down'; why: string }[]
}

/**
 * The check's period plus grace: Healthchecks.io's defaults would be a day and an hour; here the
 * health-check cadence of pg_cron 1.4 (60 s) and as much again, as vigil-health-check allows.
 */
export const DEADMAN_ALLOWANCE_S = 120
const DEADMAN_PATH = '/hc/5f3c0c1e-0000-4000-8000-00000000d3ad'

export interface Providers {
  url: string
  port: number
  credentials: ProviderCredentials
  /** The edge-function secrets that point every channel here. */
  env(): Record<string, string>
  requests(filter?: { provider?: ProviderName; since?: Date }): Recorded[]
  /** The dead man's switch: what the cycles' pings told it. */
  deadman(): Deadman
  clear(): void
  behave(behaviour: Behaviour): void
  stop(): Promise<void>
}

export interface ProvidersOptions {
  /** 0 picks a free port; default 54324. */
  port?: number
  hostname?: string
  credentials?: ProviderCredentials
  log?: (line: string) => void
  /** Silence after which the dead man's switch turns down (default DEADMAN_ALLOWANCE_S). */
  deadmanAllowanceS?: number
  /** Further stand-ins on the same port (the Logs API's): undefined for a path they do not serve. */
  extra?: (request: Request, url: URL) => Promise<Response | undefined>
}

/** What a long-running `npm start` keeps; older requests are dropped. */
const MAX_RECORDED = 20_000
const MODES = ['ok', 'status', 'retry_after', 'hang', 'redirect', 'garbage']

export async function startProviders(options: ProvidersOptions = {}): Promise<Providers> {
  const credentials = options.credentials ?? LOCAL_PROVIDER_CREDENTIALS
  const log = options.log ?? (() => {})
  const hostname = options.hostname ?? '127.0.0.1'
  const recorded: Recorded[] = []
  const hanging = new Set<() => void>()
  // One behaviour per provider (and one for all of them), so several can misbehave at once.
  const behaviours = new Map<ProviderName | '*', Behaviour>()

  const behave = (b: Behaviour) => {
    if (b.mode === 'ok' && !b.provider) behaviours.clear()
    else if (b.mode === 'ok') behaviours.delete(b.provider!)
    else behaviours.set(b.provider ?? '*', b)
  }
  const requests = (filter: { provider?: ProviderName; since?: Date } = {}) =>
    recorded.filter((r) =>
      (!filter.provider || r.provider === filter.provider) &&
      (!filter.since || r.at.getTime() >= filter.since.getTime())
    )

  /** The behaviour for this request, counted down; undefined when the provider answers itself. */
  const take = (provider: ProviderName): Exclude<Behaviour, { mode: 'ok' }> | undefined => {
    const key = behaviours.has(provider) ? provider : '*'
    const b = behaviours.get(key)
    if (!b || b.mode === 'ok') return undefined
    if (b.times !== undefined) {
      if (b.times <= 0) return undefined
      if (b.times === 1) behaviours.delete(key)
      else behaviours.set(key, { ...b, times: b.times - 1 })
    }
    return b
  }

  const deadman: Deadman = { status: 'new', pings: 0, fails: 0, last_ping_at: null, events: [] }
  const turn = (status: 'up' | 'down', why: string) => {
    if (deadman.status === status) return
    deadman.status = status
    deadman.events.push({ at: new Date(), status, why })
    if (deadman.events.length > 1000) deadman.events.shift()
    log(`[providers] dead man's switch ${status}: ${why}`)
  }
  const silence = setInterval(() => {
    const last = deadman.last_ping_at
    const allowed = (options.deadmanAllowanceS ?? DEADMAN_ALLOWANCE_S) * 1000
    if (deadman.status === 'up' && last && Date.now() - last.getTime() > allowed) {
      turn('down', `no ping for ${Math.round((Date.now() - last.getTime()) / 1000)} s`)
    }
  }, 1000)
  const ping = (url: URL): Response | undefined => {
    if (url.pathname !== DEADMAN_PATH && url.pathname !== `${DEADMAN_PATH}/fail`) return undefined
    const failed = url.pathname.endsWith('/fail')
    deadman.last_ping_at = new Date()
    deadman.pings++
    if (failed) deadman.fails++
    turn(failed ? 'down' : 'up', failed ? 'a cycle pinged …/fail' : 'pinged')
    return new Response('OK', { status: 200 })
  }

  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url)
    const control = await controls(request, url)
    if (control) return control
    const served = await options.extra?.(request, url)
    if (served) return served
    const pinged = ping(url)
    if (pinged) {
      await request.body?.cancel()
      return pinged
    }
    const provider = route(url.pathname)
    if (!provider) return json({ error: `no stand-in at ${url.pathname}` }, 404)

    const raw = await request.text()
    const headers = Object.fromEntries([...request.headers].map(([k, v]) => [k.toLowerCase(), v]))
    const seen: Recorded = {
      at: new Date(),
      provider,
      method: request.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers,
      body: parseBody(raw, headers['content-type'] ?? ''),
      raw,
      answered: 0,
    }
    recorded.push(seen)
    if (recorded.length > MAX_RECORDED) recorded.splice(0, recorded.length - MAX_RECORDED)

    const b = take(provider)
    const response = b
      ? await misbehave(b, provider, seen)
      : await answer(provider, seen, credentials)
    seen.answered = response.status
    log(`[providers] ${provider} ${request.method} ${url.pathname} → ${response.status}`)
    return response
  }

  const misbehave = async (
    b: Exclude<Behaviour, { mode: 'ok' }>,
    provider: ProviderName,
    seen: Recorded,
  ): Promise<Response> => {
    // What a provider quoting the request back would show: credentials first, then the rest.
    const query = new URLSearchParams(seen.query).toString()
    const echo = {
      received: {
        authorization: seen.headers.authorization ?? null,
        url: `${seen.path}${query ? `?${query}` : ''}`,
        body: seen.raw,
        headers: seen.headers,
      },
    }
    switch (b.mode) {
      case 'status': {
        const body = b.echo ? echo : b.body ?? { message: `stand-in answered ${b.status}` }
        const init = { status: b.status, headers: b.headers }
        return typeof body === 'string' ? new Response(body, init) : json(body, b.status, b.headers)
      }
      case 'retry_after': {
        const seconds = b.seconds ?? 7
        const body = b.echo
          ? echo
          : { message: 'You are being rate limited.', retry_after: seconds, global: false }
        return json(body, 429, { 'retry-after': String(seconds) })
      }
      case 'redirect':
        return new Response(null, {
          status: 302,
          headers: { location: 'http://127.0.0.1:1/elsewhere' },
        })
      case 'garbage': {
        const page = `<html><body><h1>Welcome to nginx!</h1>${
          b.echo ? `<pre>${JSON.stringify(echo)}</pre>` : ''
        }</body></html>`
        return new Response(page, {
          status: SUCCESS_STATUS[provider],
          headers: { 'content-type': 'text/html' },
        })
      }
      case 'hang': {
        // Released by stop(); a client that gave up earlier does not need the answer.
        await new Promise<void>((resolve) => hanging.add(resolve))
        return json({ message: 'the stand-in stopped' }, 503)
      }
    }
  }

  const controls = async (request: Request, url: URL): Promise<Response | undefined> => {
    const { pathname } = url
    const method = request.method
    if (pathname === '/' && method === 'GET') return html(page(requests()))
    if (pathname === '/_recorded' && method === 'GET') {
      const provider = url.searchParams.get('provider') as ProviderName | null
      const since = url.searchParams.get('since')
      return json(
        requests({ provider: provider ?? undefined, since: since ? new Date(since) : undefined }),
      )
    }
    if (pathname === '/_recorded' && method === 'DELETE') {
      recorded.length = 0
      return new Response(null, { status: 204 })
    }
    if (pathname === '/_behaviour' && method === 'POST') {
      const b = parseBody(await request.text(), 'application/json') as Behaviour
      if (!b || typeof b !== 'object' || !MODES.includes(b.mode)) {
        return json({ error: `mode must be one of ${MODES.join(', ')}` }, 400)
      }
      if (b.provider && !PROVIDERS.includes(b.provider)) {
        return json({ error: `provider must be one of ${PROVIDERS.join(', ')}` }, 400)
      }
      behave(b)
      return new Response(null, { status: 204 })
    }
    if (pathname === '/_deadman' && method === 'GET') return json(deadman)
    if (pathname === '/_behaviour' && method === 'DELETE') {
      behave({ mode: 'ok' })
      return new Response(null, { status: 204 })
    }
    return undefined
  }

  const listening = Promise.withResolvers<void>()
  const server = Deno.serve({
    port: options.port ?? 54324,
    hostname,
    onListen: () => listening.resolve(),
    onError(error) {
      log(`[providers] ${error instanceof Error ? error.message : error}`)
      return json({ message: 'stand-in error' }, 500)
    },
  }, handle)
  await listening.promise
  const base = `http://${hostname}:${server.addr.port}`

  return {
    url: base,
    port: server.addr.port,
    credentials,
    env: () => ({
      VIGIL_TWILIO_API_URL: base,
      VIGIL_TWILIO_ACCOUNT_SID: credentials.twilioAccountSid,
      VIGIL_TWILIO_AUTH_TOKEN: credentials.twilioAuthToken,
      VIGIL_TWILIO_FROM: credentials.twilioFrom,
      VIGIL_SENDGRID_API_URL: base,
      VIGIL_SENDGRID_API_KEY: credentials.sendgridApiKey,
      VIGIL_SENDGRID_FROM: 'Vigil (local) <vigil@example.com>',
      VIGIL_PAGERDUTY_API_URL: base,
      VIGIL_LOCAL_SLACK_WEBHOOK_URL: base + credentials.slackPath,
      VIGIL_LOCAL_DISCORD_WEBHOOK_URL: base + credentials.discordPath,
      VIGIL_LOCAL_PAGERDUTY_ROUTING_KEY: credentials.pagerdutyRoutingKey,
      VIGIL_LOCAL_WEBHOOK_SECRET: credentials.webhookSecret,
      VIGIL_LOCAL_WEBHOOK_URL: `${base}/webhook/local`,
      VIGIL_DEADMAN_URL: base + DEADMAN_PATH,
    }),
    requests,
    deadman: () => structuredClone(deadman),
    clear: () => {
      recorded.length = 0
    },
    behave,
    async stop() {
      // A hanging request would otherwise hold the shutdown open forever.
      for (const release of hanging) release()
      hanging.clear()
      clearInterval(silence)
      await server.shutdown()
    },
  }
}

const SUCCESS_STATUS: Record<ProviderName, number> = {
  twilio: 201,
  sendgrid: 202,
  slack: 200,
  // 204 carries no body; a garbage answer needs one.
  discord: 200,
  pagerduty: 202,
  webhook: 200,
}

function route(path: string): ProviderName | undefined {
  if (path.startsWith('/2010-04-01/')) return 'twilio'
  if (path.startsWith('/v3/')) return 'sendgrid'
  if (path.startsWith('/slack/')) return 'slack'
  if (path.startsWith('/discord/')) return 'discord'
  if (path === '/v2/enqueue') return 'pagerduty'
  if (path.startsWith('/webhook/')) return 'webhook'
  return undefined
}

function answer(
  provider: ProviderName,
  seen: Recorded,
  credentials: ProviderCredentials,
): Response | Promise<Response> {
  switch (provider) {
    case 'twilio':
      return twilio(seen, credentials)
    case 'sendgrid':
      return sendgrid(seen, credentials)
    case 'slack':
      return slack(seen, credentials)
    case 'discord':
      return discord(seen, credentials)
    case 'pagerduty':
      return pagerduty(seen, credentials)
    case 'webhook':
      return webhook(seen, credentials)
  }
}

// ---- Twilio: POST /2010-04-01/Accounts/{Sid}/Messages.json ----

function twilio(seen: Recorded, c: ProviderCredentials): Response {
  const m = seen.path.match(/^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/)
  if (!m || seen.method !== 'POST') {
    return twilioError(404, 20404, `The requested resource ${seen.path} was not found`)
  }
  if (
    basicAuth(seen.headers.authorization) !== `${c.twilioAccountSid}:${c.twilioAuthToken}` ||
    m[1] !== c.twilioAccountSid
  ) {
    return twilioError(401, 20003, 'Authenticate')
  }
  const form = (typeof seen.body === 'object' && seen.body ? seen.body : {}) as Record<
    string,
    string
  >
  if (!form.To) return twilioError(400, 21604, "A 'To' phone number is required.")
  if (!/^\+[1-9]\d{6,14}$/.test(form.To)) {
    return twilioError(400, 21211, `The 'To' number ${form.To} is not a valid phone number.`)
  }
  const refusal = TWILIO_MAGIC_TO[form.To]
  if (refusal) return twilioError(400, refusal[0], refusal[1])
  if (!form.From && !form.MessagingServiceSid) {
    return twilioError(400, 21603, "A 'From' phone number is required.")
  }
  if (!form.Body) return twilioError(400, 21602, 'Message body is required.')
  if (form.Body.length > 1600) {
    return twilioError(
      400,
      21617,
      'The concatenated message body exceeds the 1600 character limit.',
    )
  }
  const sid = `SM${hex(16)}`
  const now = new Date().toUTCString().replace('GMT', '+0000')
  return json({
    sid,
    account_sid: c.twilioAccountSid,
    to: form.To,
    from: form.From ?? null,
    messaging_service_sid: form.MessagingServiceSid ?? null,
    body: form.Body,
    status: 'queued',
    num_segments: String(Math.ceil(form.Body.length / 153) || 1),
    direction: 'outbound-api',
    api_version: '2010-04-01',
    date_created: now,
    date_updated: now,
    date_sent: null,
    error_code: null,
    error_message: null,
    price: null,
    uri: `/2010-04-01/Accounts/${c.twilioAccountSid}/Messages/${sid}.json`,
  }, 201)
}

/**
 * Twilio's own magic numbers for test credentials, refused as Twilio refuses them: a way to see
 * each kind of bad number without a real one.
 */
export const TWILIO_MAGIC_TO: Record<string, [number, string]> = {
  '+15005550001': [21211, "The 'To' number +15005550001 is not a valid phone number."],
  '+15005550002': [21612, "The 'To' phone number is not currently reachable via SMS."],
  '+15005550003': [
    21408,
    "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: +15005550003.",
  ],
  '+15005550004': [21610, 'Attempt to send to unsubscribed recipient'],
  '+15005550009': [21614, "'To' number is not a valid mobile number"],
}

function twilioError(status: number, code: number, message: string): Response {
  return json(
    { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status },
    status,
  )
}

// ---- SendGrid: POST /v3/mail/send ----

function sendgrid(seen: Recorded, c: ProviderCredentials): Response {
  if (seen.path !== '/v3/mail/send' || seen.method !== 'POST') {
    return json({ errors: [{ message: 'Not Found', field: null, help: null }] }, 404)
  }
  if (seen.headers.authorization !== `Bearer ${c.sendgridApiKey}`) {
    return sendgridError(
      401,
      'The provided authorization grant is invalid, expired, or revoked',
      null,
    )
  }
  const mail = seen.body as any
  if (!mail || typeof mail !== 'object') return sendgridError(400, 'Bad Request', null)
  const to = mail.personalizations?.[0]?.to?.[0]?.email
  if (typeof to !== 'string' || !to.includes('@')) {
    return sendgridError(
      400,
      'The to array is required for all personalization objects, and must have at least one email object with a valid email address.',
      'personalizations.0.to',
    )
  }
  if (typeof mail.from?.email !== 'string' || !mail.from.email.includes('@')) {
    return sendgridError(
      400,
      'The from object must be provided for every email send.',
      'from.email',
    )
  }
  if (typeof mail.subject !== 'string' || !mail.subject.trim()) {
    return sendgridError(400, 'The subject is required.', 'subject')
  }
  const content = mail.content
  if (
    !Array.isArray(content) || content.length === 0 ||
    !content.every((p: any) =>
      typeof p?.type === 'string' && typeof p?.value === 'string' && p.value
    )
  ) {
    return sendgridError(
      400,
      'Unless a valid template_id is provided, the content parameter is required.',
      'content',
    )
  }
  return new Response(null, { status: 202, headers: { 'x-message-id': base64url(16) } })
}

function sendgridError(status: number, message: string, field: string | null): Response {
  return json({ errors: [{ message, field, help: null }] }, status)
}

// ---- Slack: POST <slackPath> ----

function slack(seen: Recorded, c: ProviderCredentials): Response {
  if (seen.path !== c.slackPath || seen.method !== 'POST') return text('no_service', 404)
  const doc = seen.body as any
  if (!doc || typeof doc !== 'object' || typeof doc.text !== 'string' || !doc.text) {
    return text('invalid_payload', 400)
  }
  if (doc.blocks !== undefined && !validBlocks(doc.blocks)) return text('invalid_blocks', 400)
  return text('ok', 200)
}

/** Slack's limits that a message builder can overstep: 50 blocks, 3000 per section, 75 per button. */
function validBlocks(blocks: unknown): boolean {
  if (!Array.isArray(blocks) || blocks.length > 50) return false
  return blocks.every((b: any) => {
    switch (b?.type) {
      case 'section':
        return typeof b.text?.text === 'string' && b.text.text.length <= 3000
      case 'header':
        return b.text?.type === 'plain_text' && b.text.text.length <= 150
      case 'actions':
        return Array.isArray(b.elements) && b.elements.length <= 25 &&
          b.elements.every((e: any) =>
            e.type === 'button' && e.text?.text?.length <= 75 &&
            (e.url === undefined || (/^https?:\/\//.test(e.url) && e.url.length <= 3000))
          )
      case 'divider':
        return true
      case 'context':
        return Array.isArray(b.elements) && b.elements.length <= 10
      default:
        return false
    }
  })
}

// ---- Discord: POST <discordPath> ----

function discord(seen: Recorded, c: ProviderCredentials): Response {
  if (seen.path !== c.discordPath || seen.method !== 'POST') {
    // The right webhook with another token is refused as such; any other is unknown.
    const webhookId = (path: string) => path.split('/').at(-2)
    if (seen.method === 'POST' && webhookId(seen.path) === webhookId(c.discordPath)) {
      return json({ message: 'Invalid Webhook Token', code: 50027 }, 401)
    }
    return json({ message: 'Unknown Webhook', code: 10015 }, 404)
  }
  const doc = seen.body as any
  if (!doc || typeof doc !== 'object') {
    return json({ message: 'The request body contains invalid JSON.', code: 50109 }, 400)
  }
  const content = doc.content
  if (typeof content !== 'string' || content.length === 0) {
    return json({ message: 'Cannot send an empty message', code: 50006 }, 400)
  }
  if (content.length > 2000) {
    return json({
      message: 'Invalid Form Body',
      code: 50035,
      errors: {
        content: {
          _errors: [{ code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 2000 or fewer in length.' }],
        },
      },
    }, 400)
  }
  if (seen.query.wait === 'true') {
    return json({
      id: String(BigInt(Date.now()) << 22n),
      content,
      timestamp: new Date().toISOString(),
    })
  }
  return new Response(null, { status: 204 })
}

// ---- PagerDuty: POST /v2/enqueue ----

function pagerduty(seen: Recorded, c: ProviderCredentials): Response {
  const invalid = (...errors: string[]) =>
    json({ status: 'invalid event', message: 'Event object is invalid', errors }, 400)
  const event = seen.body as any
  if (seen.method !== 'POST') return json({ message: 'Not Found' }, 404)
  if (!event || typeof event !== 'object') return invalid('Could not parse JSON')
  if (
    typeof event.routing_key !== 'string' || event.routing_key.length !== 32 ||
    event.routing_key !== c.pagerdutyRoutingKey
  ) {
    return invalid('Invalid routing key')
  }
  if (!['trigger', 'acknowledge', 'resolve'].includes(event.event_action)) {
    return invalid("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
  }
  if (event.event_action !== 'trigger' && !event.dedup_key) {
    return invalid(`'dedup_key' is required for ${event.event_action}`)
  }
  if (event.event_action === 'trigger') {
    const p = event.payload
    const missing = ['summary', 'source', 'severity'].filter((k) =>
      typeof p?.[k] !== 'string' || !p[k]
    )
    if (missing.length) return invalid(...missing.map((k) => `'payload.${k}' is missing or blank`))
    if (!['critical', 'error', 'warning', 'info'].includes(p.severity)) {
      return invalid(
        "'payload.severity' is invalid (must be one of: critical, error, warning, info)",
      )
    }
    if (p.summary.length > 1024) return invalid("'payload.summary' is longer than 1024 characters")
  }
  return json({
    status: 'success',
    message: 'Event processed',
    dedup_key: event.dedup_key ?? hex(16),
  }, 202)
}

// ---- a signed webhook receiver: POST /webhook/<name> ----

async function webhook(seen: Recorded, c: ProviderCredentials): Promise<Response> {
  if (seen.method !== 'POST') return json({ error: 'POST only' }, 405)
  const ok = await verifyWebhookSignature(
    seen.raw,
    seen.headers['x-vigil-timestamp'] ?? '',
    seen.headers['x-vigil-signature'] ?? '',
    c.webhookSecret,
  )
  if (!ok) return json({ error: 'invalid signature' }, 401)
  // The signed body names the delivery; a header saying otherwise was not what Vigil sent.
  const delivery = (seen.body as { delivery_id?: unknown } | null)?.delivery_id
  if (delivery !== seen.headers['x-vigil-delivery']) {
    return json(
      { error: 'x-vigil-delivery does not match the delivery_id signed in the body' },
      400,
    )
  }
  return json({ received: true, delivery_id: delivery })
}

// ---- the page a developer opens ----

function page(all: Recorded[]): string {
  const rows = [...all].reverse().map((r) =>
    `<tr><td>${r.at.toISOString().slice(11, 19)}</td><td>${r.provider}</td><td>${
      r.answered || '…'
    }</td>` +
    `<td><pre>${escapeHtml(messageOf(r))}</pre></td></tr>`
  )
  return `<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5"><title>Vigil: local alerts</title>
<style>body{font-family:sans-serif;margin:2em}td{vertical-align:top;padding:.4em .8em;border-bottom:1px solid #ddd}pre{white-space:pre-wrap;margin:0}</style>
</head><body><h1>Alerts sent to the local providers</h1>
<p>${all.length} recorded, newest first. <code>DELETE /_recorded</code> clears them.</p>
<table><tr><th>time (UTC)</th><th>provider</th><th>status</th><th>message</th></tr>
${rows.join('\n') || '<tr><td colspan="4">nothing yet</td></tr>'}
</table></body></html>`
}

/** What a human would have received. */
function messageOf(r: Recorded): string {
  const b = (r.body ?? {}) as any
  switch (r.provider) {
    case 'twilio':
      return `SMS to ${b.To}: ${b.Body}`
    case 'sendgrid':
      return `Email to ${b.personalizations?.[0]?.to?.[0]?.email}: ${b.subject}\n\n${
        b.content?.find((p: any) => p.type === 'text/plain')?.value ?? ''
      }`
    case 'slack':
      return `Slack: ${
        (b.blocks ?? []).filter((x: any) => x.type === 'section').map((x: any) => x.text?.text)
          .join(
            '\n\n',
          ) ||
        b.text
      }`
    case 'discord':
      return `Discord: ${b.content}`
    case 'pagerduty':
      return `PagerDuty ${b.event_action} ${b.dedup_key ?? ''}${
        b.payload ? `: ${b.payload.summary}` : ''
      }`
    case 'webhook':
      return `Webhook ${r.path}: ${
        (b.alerts ?? []).map((a: any) => `${a.event} ${a.title}`).join('; ')
      }`
  }
}

// ---- helpers ----

function parseBody(raw: string, contentType: string): unknown {
  if (contentType.includes('application/x-www-form-urlencoded')) {
    const out: Record<string, string | string[]> = {}
    for (const [k, v] of new URLSearchParams(raw)) {
      const prev = out[k]
      out[k] = prev === undefined ? v : [...[prev].flat(), v]
    }
    return out
  }
  try {
    return JSON.parse(raw)
  } catch {
    return raw
  }
}

function basicAuth(header: string | undefined): string | undefined {
  const m = header?.match(/^Basic\s+(\S+)$/i)
  if (!m) return undefined
  try {
    return new TextDecoder().decode(Uint8Array.from(atob(m[1]), (ch) => ch.charCodeAt(0)))
  } catch {
    return undefined
  }
}

function hex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))]
    .map((b) => b.toString(16).padStart(2, '0'))
    .join('')
}

function base64url(bytes: number): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(bytes))))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  })
}

function text(body: string, status: number): Response {
  return new Response(body, { status, headers: { 'content-type': 'text/plain' } })
}

function html(body: string): Response {
  return new Response(body, { headers: { 'content-type': 'text/html; charset=utf-8' } })
}

/**
 * A TCP server that answers every connection with bytes that are not HTTP, then hangs up: what a
 * provider URL pointing at the wrong service (or a broken proxy) looks like to a client.
 */
export function startGarbageServer(): { url: string; stop(): Promise<void> } {
  const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const open = new Set<Deno.Conn>()
  const served = new Set<Promise<void>>()
  const serve = async (conn: Deno.Conn) => {
    try {
      await conn.read(new Uint8Array(8192))
      await conn.write(new TextEncoder().encode('SSH-2.0-OpenSSH_9.6\r\n\u0000\u00ff not http\r\n'))
    } catch {
      // the client went first
    } finally {
      open.delete(conn)
      try {
        conn.close()
      } catch {
        // already closed
      }
    }
  }
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        open.add(conn)
        const p = serve(conn)
        served.add(p)
        p.finally(() => served.delete(p))
      }
    } catch {
      // the listener was closed
    }
  })()
  const { port } = listener.addr as Deno.NetAddr
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      listener.close()
      for (const conn of open) {
        try {
          conn.close()
        } catch {
          // already closed
        }
      }
      await accepting
      await Promise.allSettled([...served])
    },
  }
}
