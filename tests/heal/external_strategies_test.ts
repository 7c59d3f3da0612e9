// The strategies that act through external providers, against local HTTP servers standing in for
// the operator's webhooks, the Supabase Management API, Cloudflare, Vercel and Netlify. Each fake
// records every request (method, path, query, Authorization, JSON body) and the tests check them
// the way the real API would, so a passing test means the adapter speaks that API. purge_own_data
// runs against the real test database (VIGIL_TEST_DB_URL).
import assert from 'node:assert/strict'
import postgres from 'postgres'
import {
  parseServiceActions,
  readAction,
  serviceActionsJsonSchema,
} from '../../shared/service-actions.ts'
import { resolveThresholds } from '../../shared/thresholds.ts'
import { httpProbe } from '../../supabase/functions/_shared/probes/http.ts'
import type { ProbeResult } from '../../supabase/functions/_shared/probes/types.ts'
import { purgeCdnStrategy } from '../../supabase/functions/_shared/heal/strategies/purge-cdn.ts'
import { purgeOwnDataStrategy } from '../../supabase/functions/_shared/heal/strategies/purge-own-data.ts'
import { refreshAuthStrategy } from '../../supabase/functions/_shared/heal/strategies/refresh-auth.ts'
import { renewCertificateStrategy } from '../../supabase/functions/_shared/heal/strategies/renew-certificate.ts'
import { restartServiceStrategy } from '../../supabase/functions/_shared/heal/strategies/restart-service.ts'
import { retryDeployStrategy } from '../../supabase/functions/_shared/heal/strategies/retry-deploy.ts'
import { rollbackDeployStrategy } from '../../supabase/functions/_shared/heal/strategies/rollback-deploy.ts'
import {
  type ActResult,
  type HealContext,
  HealError,
  NotYet,
  type Plan,
  type Problem,
  type Strategy,
  type Verification,
} from '../../supabase/functions/_shared/heal/types.ts'
import { LIVE_PROBES, RECHECK_SECONDS } from '../../supabase/functions/_shared/heal/external.ts'
import { baseHealContext } from './_fixtures.ts'
import { testSql } from '../_env.ts'
import {
  DisableServiceConfig,
  disableServiceStrategy,
} from '../../supabase/functions/_shared/heal/strategies/disable-service.ts'

// Distinct secret values, so a leak names its source.
const SECRETS: Record<string, string> = {
  RESTART_TOKEN: 'rst_9f8e7d6c5b4a39281706f5e4d3c2b1a0',
  VIGIL_SUPABASE_ACCESS_TOKEN: 'sbp_0123456789abcdef0123456789abcdef01234567',
  CLOUDFLARE_TOKEN: 'cf_Zq1xW2ec3rV4tb5yN6um7iK8ol9pA0sD',
  VERCEL_TOKEN: 'vercel_tkn_A1b2C3d4E5f6G7h8I9j0',
  NETLIFY_TOKEN: 'nfp_Netlify0123456789abcdefABCDEF',
  RENEW_TOKEN: 'renew_7a6b5c4d3e2f1a0b',
  AUTH_TOKEN: 'auth_refresh_0f1e2d3c4b5a6978',
}
const HOOK_KEY = 'hK3yS3cr3tD3pl0yH00k'
const REF = 'abcdefghijklmnopqrst'
const ZONE = '023e105f4ecef8ad9ca31a8372d0c353'
const SERVICE_ID = '00000000-0000-4000-8000-0000000000aa'

// ---- fake providers ----

interface Recorded {
  method: string
  path: string
  query: Record<string, string>
  authorization: string | null
  contentType: string | null
  body: unknown
}

/** `finished` settles when the test body is done, before the server shuts down. */
type Route = (
  request: Request,
  seen: Recorded,
  finished: Promise<void>,
) => Response | Promise<Response>

/** Serves the routes ("METHOD /path") on a free port; every request is recorded, unknown ones get 404. */
async function withProvider(
  routes: Record<string, Route>,
  body: (base: string, requests: Recorded[]) => Promise<void>,
): Promise<void> {
  const requests: Recorded[] = []
  const { promise: finished, resolve: finish } = Promise.withResolvers<void>()
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen() {} }, async (request) => {
    const url = new URL(request.url)
    const text = await request.text()
    const seen: Recorded = {
      method: request.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      authorization: request.headers.get('authorization'),
      contentType: request.headers.get('content-type'),
      body: text ? JSON.parse(text) : undefined,
    }
    requests.push(seen)
    const route = routes[`${request.method} ${url.pathname}`]
    return route
      ? await route(request, seen, finished)
      : Response.json({ message: 'no such route' }, { status: 404 })
  })
  try {
    await body(`http://127.0.0.1:${server.addr.port}`, requests)
  } finally {
    finish()
    await server.shutdown()
  }
}

/** Never answers while the test runs (the client has given up by then). */
const hang: Route = (_request, _seen, finished) =>
  finished.then(() => new Response(null, { status: 503 }))

// ---- heal context ----

/** A db that fails the test if touched: these strategies must not use Vigil's database. */
const noDb = new Proxy(function () {}, {
  apply() {
    throw new Error('this strategy must not touch the database')
  },
  get() {
    throw new Error('this strategy must not touch the database')
  },
}) as unknown as postgres.Sql

const down = (error = 'connection refused'): ProbeResult => ({
  status: 'down',
  measurements: {},
  error,
})
const healthy = (measurements: Record<string, unknown> = {}): ProbeResult => ({
  status: 'healthy',
  measurements,
})

/** A reprobe answering these results in turn, then the last one forever; counts its calls. */
function probes(
  ...results: ProbeResult[]
): { reprobe: () => Promise<ProbeResult>; calls: () => number } {
  let i = 0
  return {
    reprobe: () => Promise.resolve(results[Math.min(i++, results.length - 1)]),
    calls: () => i,
  }
}

interface ContextOptions {
  actions: Record<string, unknown>
  reprobe?: () => Promise<ProbeResult>
  dryRun?: boolean
  signal?: AbortSignal
  secrets?: Record<string, string>
  config?: Record<string, unknown>
  kind?: HealContext['service']['kind']
  db?: postgres.Sql
}

function context(o: ContextOptions): HealContext {
  const secrets = o.secrets ?? SECRETS
  return baseHealContext({
    service: {
      id: SERVICE_ID,
      name: 'web',
      kind: o.kind ?? 'http',
      environment: 'prod',
      config: o.config ?? {},
    },
    actions: o.actions,
    incidentId: 42,
    db: o.db ?? noDb,
    dryRun: o.dryRun ?? false,
    signal: o.signal ?? new AbortController().signal,
    secret: (name) => secrets[name],
    reprobe: o.reprobe ?? probes(down()).reprobe,
  })
}

const problem = (kind: Problem['kind'], evidence: Record<string, unknown> = {}): Problem => ({
  kind,
  reason: `test: ${kind}`,
  evidence,
})

const fast = { verify_timeout_ms: 2_000, verify_interval_ms: 20, request_timeout_ms: 2_000 }

interface Healed {
  plan: Plan
  result: ActResult
  verification: Verification
}

/** plan → act → verify, as the engine runs them. */
async function heal<C>(
  strategy: Strategy<C>,
  p: Problem,
  ctx: HealContext,
  config: Record<string, unknown> = fast,
): Promise<Healed> {
  const parsed = strategy.config.parse(config)
  const plan = await strategy.plan(p, ctx, parsed)
  assert.ok(plan, `${strategy.name} planned nothing`)
  const result = await strategy.act(plan, ctx, parsed)
  const verification = await strategy.verify(plan, result, ctx, parsed)
  return { plan, result, verification }
}

/** The HealError an act (after a plan) throws. */
async function actError<C>(
  strategy: Strategy<C>,
  p: Problem,
  ctx: HealContext,
  config: Record<string, unknown> = fast,
): Promise<HealError> {
  const parsed = strategy.config.parse(config)
  try {
    const plan = await strategy.plan(p, ctx, parsed)
    assert.ok(plan, `${strategy.name} planned nothing`)
    await strategy.act(plan, ctx, parsed)
  } catch (error) {
    assert.ok(error instanceof HealError, `expected a HealError, got ${error}`)
    assertNoSecret(error.message)
    return error
  }
  assert.fail(`${strategy.name} did not fail`)
}

/** No token, hook URL or hook key in a text that is stored or shown. */
function assertNoSecret(text: string) {
  for (const [name, value] of Object.entries(SECRETS)) {
    assert.ok(!text.includes(value), `the value of ${name} leaked: ${text}`)
  }
  assert.ok(!text.includes(HOOK_KEY), `the deploy hook's key leaked: ${text}`)
}

const json = (body: unknown, status = 200) => Response.json(body, { status })

// ---- ServiceActions ----

Deno.test('ServiceActions accepts every action and fills the documented defaults', () => {
  const parsed = parseServiceActions({
    restart: {
      type: 'supabase_management',
      project_ref: REF,
      access_token_secret: 'VIGIL_SUPABASE_ACCESS_TOKEN',
    },
    cdn: {
      type: 'cloudflare',
      zone_id: ZONE,
      token_secret: 'CLOUDFLARE_TOKEN',
      files: ['https://example.com/app.js'],
    },
    rebuild: { hook_url_secret: 'VERCEL_DEPLOY_HOOK' },
    rollback: {
      type: 'vercel',
      project_id: 'prj_web',
      token_secret: 'VERCEL_TOKEN',
      team_id: 'team_1',
    },
    deploy_retry: { hook_url_secret: 'VERCEL_DEPLOY_HOOK' },
    certificate_renewal: { url: 'https://ops.example.com/renew', token_secret: 'RENEW_TOKEN' },
    auth_refresh: { url: 'https://ops.example.com/auth/refresh' },
  })
  assert.ok(parsed.ok, JSON.stringify(parsed))
  assert.equal(
    parsed.value.restart?.type === 'supabase_management' && parsed.value.restart.api_url,
    'https://api.supabase.com',
  )
  assert.equal(parsed.value.cdn?.api_url, 'https://api.cloudflare.com')
  assert.equal(parsed.value.rollback?.api_url, 'https://api.vercel.com')

  const webhook = readAction({
    restart: { type: 'webhook', url: 'https://ops.example.com/restart' },
  }, 'restart')
  assert.ok(webhook.ok && webhook.value?.type === 'webhook')
  assert.equal(webhook.value.method, 'POST')
  const netlify = readAction({
    rollback: { type: 'netlify', site_id: 'my-site', token_secret: 'NETLIFY_TOKEN' },
  }, 'rollback')
  assert.ok(netlify.ok)
  assert.equal(netlify.value?.api_url, 'https://api.netlify.com')
  assert.deepEqual(parseServiceActions({}), { ok: true, value: {} })
  assert.deepEqual(readAction({}, 'cdn'), { ok: true, value: undefined })
  assert.equal((serviceActionsJsonSchema() as { type: string }).type, 'object')
})

Deno.test('ServiceActions validation errors name the field, and secrets must be named, never inline', () => {
  const parsed = parseServiceActions({
    restart: {
      type: 'webhook',
      url: 'ftp://ops.example.com/restart',
      token_secret: 'lower_case',
      token: 'inline-token',
    },
    cdn: {
      type: 'cloudflare',
      zone_id: 'not-a-zone',
      token_secret: 'CLOUDFLARE_TOKEN',
      files: ['nope'],
    },
    rollback: { type: 'vercel', project_id: 'prj/../x', token_secret: 'VERCEL_TOKEN' },
    rebuild: { hook_url: 'https://api.vercel.com/v1/integrations/deploy/prj/key' },
    certificate_renewal: { url: 'https://ops.example.com/renew', token_secret: 'RENEW TOKEN' },
    unknown_action: {},
  })
  assert.ok(!parsed.ok)
  const text = parsed.errors.join('\n')
  for (
    const field of [
      'actions.restart.url: must be an http(s) URL',
      'actions.restart.token_secret: must name an environment variable',
      'actions.restart: Unrecognized key: "token"',
      'actions.cdn.zone_id: must be a 32-character Cloudflare zone id',
      'actions.cdn.files.0: must be an http(s) URL',
      'actions.rollback.project_id: must be a Vercel project id',
      'actions.rebuild.hook_url_secret',
      'actions.rebuild: Unrecognized key: "hook_url"',
      'actions.certificate_renewal.token_secret',
      'actions: Unrecognized key: "unknown_action"',
    ]
  ) assert.ok(text.includes(field), `no error for ${field} in:\n${text}`)

  const restart = readAction({ restart: { type: 'kubernetes' } }, 'restart')
  assert.ok(!restart.ok)
  assert.match(restart.errors.join(), /^actions\.restart(\.type)?: /)
  const management = readAction(
    { restart: { type: 'supabase_management', project_ref: 'SHORT' } },
    'restart',
  )
  assert.ok(!management.ok)
  assert.ok(
    management.errors.some((e) =>
      e.startsWith('actions.restart.project_ref: must be a 20-character project ref')
    ),
  )
  assert.ok(management.errors.some((e) => e.startsWith('actions.restart.access_token_secret: ')))
})

Deno.test('a strategy whose action is invalid fails to plan, naming the field', async () => {
  const ctx = context({ actions: { restart: { type: 'webhook', url: 'not a url' } } })
  await assert.rejects(
    restartServiceStrategy.plan(
      problem('service_unhealthy'),
      ctx,
      restartServiceStrategy.config.parse({}),
    ),
    (e: Error) =>
      e instanceof HealError && /actions\.restart\.url: must be an http\(s\) URL/.test(e.message),
  )
})

// ---- restart_service ----

Deno.test('restart_service: the webhook gets a POST with the Bearer token and the incident, then the service is re-probed until healthy', async () => {
  await withProvider(
    { 'POST /hooks/restart': () => json({ ok: true }) },
    async (base, requests) => {
      const probe = probes(down(), down(), healthy())
      const ctx = context({
        actions: {
          restart: {
            type: 'webhook',
            url: `${base}/hooks/restart?source=vigil`,
            token_secret: 'RESTART_TOKEN',
          },
        },
        reprobe: probe.reprobe,
      })
      const { plan, result, verification } = await heal(
        restartServiceStrategy,
        problem('service_unhealthy', { error: 'down' }),
        ctx,
      )

      assert.deepEqual(plan.target, {
        service: 'web',
        via: 'webhook',
        method: 'POST',
        url: `${base}/hooks/restart`,
      })
      assert.equal(plan.before.status, 'down')
      assert.equal(requests.length, 1)
      const [seen] = requests
      assert.equal(seen.method, 'POST')
      assert.equal(seen.path, '/hooks/restart')
      assert.deepEqual(seen.query, { source: 'vigil' })
      assert.equal(seen.authorization, `Bearer ${SECRETS.RESTART_TOKEN}`)
      assert.match(seen.contentType ?? '', /application\/json/)
      assert.deepEqual(seen.body, {
        action: 'restart',
        service: 'web',
        service_id: SERVICE_ID,
        incident_id: 42,
      })
      assert.match(result.detail, /restart webhook .* accepted the restart/)
      assert.equal(verification.improved, true)
      assert.equal(verification.worse, false)
      assert.equal(verification.after.status, 'healthy')
      assert.equal(verification.after.probes, 2, 'one probe for the plan, then down and healthy')
      assert.equal(probe.calls(), 3)
      assertNoSecret(JSON.stringify({ plan, result, verification }))
    },
  )
})

Deno.test('restart_service: a webhook configured with PUT and its own body sends exactly that', async () => {
  await withProvider(
    { 'PUT /restart': () => new Response(null, { status: 204 }) },
    async (base, requests) => {
      const ctx = context({
        actions: {
          restart: {
            type: 'webhook',
            url: `${base}/restart`,
            method: 'PUT',
            body: { service: 'api', force: true },
          },
        },
        reprobe: probes(down(), healthy()).reprobe,
      })
      await heal(restartServiceStrategy, problem('service_unhealthy'), ctx)
      assert.equal(requests.length, 1)
      assert.equal(requests[0].method, 'PUT')
      assert.equal(requests[0].authorization, null, 'no token_secret, no Authorization header')
      assert.deepEqual(requests[0].body, { service: 'api', force: true })
    },
  )
})

Deno.test('restart_service: a webhook answering 500 is a HealError with the status and a redacted excerpt', async () => {
  await withProvider({
    // Services echo what they were sent: the token must not come back out through the excerpt.
    'POST /restart': (request) =>
      new Response(`upstream failed for ${request.headers.get('authorization')}`, { status: 500 }),
  }, async (base) => {
    const ctx = context({
      actions: {
        restart: { type: 'webhook', url: `${base}/restart`, token_secret: 'RESTART_TOKEN' },
      },
    })
    const error = await actError(restartServiceStrategy, problem('service_unhealthy'), ctx)
    assert.match(
      error.message,
      /restart webhook \(POST http:\/\/127\.0\.0\.1:\d+\/restart\) answered 500: upstream failed for Bearer \[redacted\]/,
    )
  })
})

Deno.test('restart_service: a webhook answering 401 names the secret to check', async () => {
  await withProvider({ 'POST /restart': () => json({ error: 'bad token' }, 401) }, async (base) => {
    const ctx = context({
      actions: {
        restart: { type: 'webhook', url: `${base}/restart`, token_secret: 'RESTART_TOKEN' },
      },
    })
    const error = await actError(restartServiceStrategy, problem('service_unhealthy'), ctx)
    assert.match(
      error.message,
      /answered 401 \(check the token in RESTART_TOKEN and its permissions\): \{"error":"bad token"\}/,
    )
  })
})

Deno.test("restart_service: a webhook that hangs is given up at the heal's deadline (ctx.signal)", async () => {
  await withProvider({ 'POST /restart': hang }, async (base) => {
    const deadline = new AbortController()
    const timer = setTimeout(() => deadline.abort(), 200)
    try {
      const ctx = context({
        actions: { restart: { type: 'webhook', url: `${base}/restart` } },
        signal: deadline.signal,
      })
      const started = performance.now()
      const error = await actError(restartServiceStrategy, problem('service_unhealthy'), ctx)
      assert.match(
        error.message,
        /the restart webhook .*: the heal's deadline passed while waiting for an answer/,
      )
      assert.ok(performance.now() - started < 2_000, 'gave up promptly')
    } finally {
      clearTimeout(timer)
    }
  })
})

Deno.test('restart_service: a webhook that hangs is given up after request_timeout_ms', async () => {
  await withProvider({ 'POST /restart': hang }, async (base) => {
    const ctx = context({ actions: { restart: { type: 'webhook', url: `${base}/restart` } } })
    const error = await actError(restartServiceStrategy, problem('service_unhealthy'), ctx, {
      ...fast,
      request_timeout_ms: 150,
    })
    assert.match(error.message, /: no answer within 150 ms$/)
  })
})

Deno.test('restart_service: the Management API gets POST /v1/projects/{ref}/restart with the access token', async () => {
  await withProvider(
    { [`POST /v1/projects/${REF}/restart`]: () => json({}) },
    async (base, requests) => {
      const ctx = context({
        actions: {
          restart: {
            type: 'supabase_management',
            api_url: `${base}/`,
            project_ref: REF,
            access_token_secret: 'VIGIL_SUPABASE_ACCESS_TOKEN',
          },
        },
        reprobe: probes(down(), healthy()).reprobe,
      })
      const { plan, result, verification } = await heal(
        restartServiceStrategy,
        problem('service_unhealthy'),
        ctx,
      )
      assert.deepEqual(requests.map((r) => [r.method, r.path, r.authorization, r.body]), [
        [
          'POST',
          `/v1/projects/${REF}/restart`,
          `Bearer ${SECRETS.VIGIL_SUPABASE_ACCESS_TOKEN}`,
          undefined,
        ],
      ])
      assert.equal(plan.target.project_ref, REF)
      assert.match(
        result.detail,
        new RegExp(`Management API accepted the restart of project ${REF}`),
      )
      assert.equal(verification.improved, true)
    },
  )
})

Deno.test('restart_service: the Management API answering 429 or without the token set fails clearly', async () => {
  await withProvider({
    [`POST /v1/projects/${REF}/restart`]: () => json({ message: 'Too many requests' }, 429),
  }, async (base) => {
    const actions = {
      restart: {
        type: 'supabase_management',
        api_url: base,
        project_ref: REF,
        access_token_secret: 'VIGIL_SUPABASE_ACCESS_TOKEN',
      },
    }
    const limited = await actError(
      restartServiceStrategy,
      problem('service_unhealthy'),
      context({ actions }),
    )
    assert.match(
      limited.message,
      new RegExp(
        `Management API restart of project ${REF} answered 429 \\(rate limited\\): .*Too many requests`,
      ),
    )
    const unset = await actError(
      restartServiceStrategy,
      problem('service_unhealthy'),
      context({ actions, secrets: {} }),
    )
    assert.equal(
      unset.message,
      'secret VIGIL_SUPABASE_ACCESS_TOKEN (Supabase access token) is not set',
    )
  })
})

Deno.test("restart_service: the demo supervisor gets {action: 'restart', service}", async () => {
  await withProvider(
    { 'POST /supervisor': () => json({ restarted: 'demo-api' }) },
    async (base, requests) => {
      const ctx = context({
        actions: {
          restart: { type: 'supervisor', url: `${base}/supervisor`, service: 'demo-api' },
        },
        reprobe: probes(down(), healthy()).reprobe,
      })
      const { result } = await heal(restartServiceStrategy, problem('service_unhealthy'), ctx)
      assert.deepEqual(requests.map((r) => [r.method, r.path, r.authorization, r.body]), [
        ['POST', '/supervisor', null, { action: 'restart', service: 'demo-api' }],
      ])
      assert.equal(result.detail, 'the supervisor restarted demo-api')
    },
  )
})

Deno.test('restart_service: verify gives up after verify_timeout_ms, not improved and never worse', async () => {
  await withProvider({ 'POST /restart': () => json({}) }, async (base) => {
    const ctx = context({
      actions: { restart: { type: 'webhook', url: `${base}/restart` } },
      reprobe: probes(down('still refused')).reprobe,
    })
    const started = performance.now()
    const { verification } = await heal(restartServiceStrategy, problem('service_unhealthy'), ctx, {
      verify_timeout_ms: 300,
      verify_interval_ms: 50,
    })
    const took = performance.now() - started
    assert.equal(verification.improved, false)
    assert.equal(verification.worse, false)
    assert.equal(verification.after.status, 'down')
    assert.ok(Number(verification.after.probes) >= 4, `probed ${verification.after.probes} times`)
    assert.match(verification.detail, /^still down after 0\.\d s \(\d+ probes\): still refused$/)
    assert.ok(took >= 290 && took < 1_500, `verify took ${took} ms`)
  })
})

Deno.test('restart_service: verify stops at the heal deadline even with a long verify timeout', async () => {
  const deadline = new AbortController()
  const ctx = context({ actions: {}, reprobe: probes(down()).reprobe, signal: deadline.signal })
  const timer = setTimeout(() => deadline.abort(), 150)
  try {
    const started = performance.now()
    const plan: Plan = {
      action: 'restart_service',
      target: {},
      reason: '',
      before: { status: 'down' },
    }
    const config = restartServiceStrategy.config.parse({
      verify_timeout_ms: 60_000,
      verify_interval_ms: 5_000,
    })
    const verification = await restartServiceStrategy.verify(plan, { detail: '' }, ctx, config)
    assert.equal(verification.improved, false)
    assert.ok(performance.now() - started < 1_000)
  } finally {
    clearTimeout(timer)
  }
})

Deno.test('restart_service: nothing to plan without a restart action; asked again later when the service answers healthy just now', async () => {
  const config = restartServiceStrategy.config.parse({})
  assert.equal(
    await restartServiceStrategy.plan(
      problem('service_unhealthy'),
      context({ actions: {} }),
      config,
    ),
    null,
  )
  const answers = probes(healthy())
  const recovered = context({
    actions: { restart: { type: 'webhook', url: 'http://127.0.0.1:9/restart' } },
    reprobe: answers.reprobe,
  })
  // Recovered, it passes every probe: not now, not a page.
  await assert.rejects(
    restartServiceStrategy.plan(problem('service_unhealthy'), recovered, config),
    (err: unknown) => {
      assert.ok(err instanceof NotYet)
      assert.equal(err.retryInSeconds, RECHECK_SECONDS)
      assert.match(err.message, /answered healthy when probed just now \(3 times in a row\)/)
      return true
    },
  )
  assert.equal(answers.calls(), LIVE_PROBES)
})

Deno.test('restart_service: a flapping service that passes one probe of three is restarted all the same', async () => {
  // An error spike failing most requests: one lucky answer is no evidence it recovered.
  const answers = probes(healthy(), healthy(), down())
  const flapping = context({
    actions: { restart: { type: 'webhook', url: 'http://127.0.0.1:9/restart' } },
    reprobe: answers.reprobe,
  })
  const plan = await restartServiceStrategy.plan(
    problem('service_unhealthy'),
    flapping,
    restartServiceStrategy.config.parse({}),
  )
  assert.equal(plan?.action, 'restart_service')
  assert.equal(plan?.before.status, 'down', 'the failing answer is what it acts on')
  assert.equal(answers.calls(), 3)
})

// ---- purge_cdn (Cloudflare) ----

const cloudflareOk = () =>
  json({ success: true, errors: [], messages: [], result: { id: 'purge-0123' } })
const purgePath = `/client/v4/zones/${ZONE}/purge_cache`

Deno.test('purge_cdn: Cloudflare purge_everything with the Bearer token, then the rebuild hook', async () => {
  await withProvider({
    [`POST ${purgePath}`]: cloudflareOk,
    [`POST /v1/integrations/deploy/prj_web/${HOOK_KEY}`]: () =>
      json({ job: { id: 'job-1', state: 'PENDING' } }, 201),
  }, async (base, requests) => {
    const secrets = {
      ...SECRETS,
      REBUILD_HOOK: `${base}/v1/integrations/deploy/prj_web/${HOOK_KEY}`,
    }
    const ctx = context({
      actions: {
        cdn: { type: 'cloudflare', api_url: base, zone_id: ZONE, token_secret: 'CLOUDFLARE_TOKEN' },
        rebuild: { hook_url_secret: 'REBUILD_HOOK' },
      },
      secrets,
      reprobe: probes(healthy({ served_version: 'v1' })).reprobe,
    })
    const { plan, result } = await heal(
      purgeCdnStrategy,
      problem('stale_frontend', { served_version: 'v1' }),
      ctx,
      {
        ...fast,
        verify_timeout_ms: 0,
      },
    )
    assert.deepEqual(requests.map((r) => [r.method, r.path, r.authorization, r.body]), [
      ['POST', purgePath, `Bearer ${SECRETS.CLOUDFLARE_TOKEN}`, { purge_everything: true }],
      ['POST', `/v1/integrations/deploy/prj_web/${HOOK_KEY}`, null, undefined],
    ])
    assert.equal(plan.target.scope, 'everything')
    assert.equal(plan.target.rebuild_hook, 'REBUILD_HOOK')
    assert.equal(plan.before.served_version, 'v1')
    assert.equal(
      result.detail,
      `purged everything from Cloudflare zone ${ZONE} (purge purge-0123) and triggered the rebuild hook`,
    )
    assertNoSecret(JSON.stringify({ plan, result }))
  })
})

Deno.test('purge_cdn: Cloudflare purge by files sends {files: [...]}', async () => {
  await withProvider({ [`POST ${purgePath}`]: cloudflareOk }, async (base, requests) => {
    const files = ['https://www.example.com/index.html', 'https://www.example.com/assets/app.js']
    const ctx = context({
      actions: {
        cdn: {
          type: 'cloudflare',
          api_url: base,
          zone_id: ZONE,
          token_secret: 'CLOUDFLARE_TOKEN',
          files,
        },
      },
      reprobe: probes(healthy()).reprobe,
    })
    const { result } = await heal(purgeCdnStrategy, problem('stale_frontend'), ctx, {
      ...fast,
      verify_timeout_ms: 0,
    })
    assert.equal(requests.length, 1)
    assert.deepEqual(requests[0].body, { files })
    assert.equal(requests[0].authorization, `Bearer ${SECRETS.CLOUDFLARE_TOKEN}`)
    assert.match(result.detail, /^purged 2 URLs from Cloudflare zone/)
  })
})

Deno.test('purge_cdn: Cloudflare answering success: false, or 403 with its error envelope, is a HealError', async () => {
  await withProvider({
    [`POST ${purgePath}`]: (request) =>
      request.headers.get('authorization') === `Bearer ${SECRETS.CLOUDFLARE_TOKEN}`
        ? json({
          success: false,
          errors: [{
            code: 1012,
            message: 'Request must contain one of purge_everything or files',
          }],
          messages: [],
          result: null,
        })
        : json({
          success: false,
          errors: [{
            code: 10000,
            message: `Authentication error for ${request.headers.get('authorization')}`,
          }],
        }, 403),
  }, async (base) => {
    const actions = {
      cdn: { type: 'cloudflare', api_url: base, zone_id: ZONE, token_secret: 'CLOUDFLARE_TOKEN' },
    }
    const rejected = await actError(
      purgeCdnStrategy,
      problem('stale_frontend'),
      context({ actions }),
    )
    assert.equal(
      rejected.message,
      `Cloudflare purge_cache for zone ${ZONE} answered success: false: error 1012: Request must contain one of purge_everything or files`,
    )
    const wrongToken = { ...SECRETS, CLOUDFLARE_TOKEN: 'cf_some_other_token_value_0000' }
    const denied = await actError(
      purgeCdnStrategy,
      problem('stale_frontend'),
      context({ actions, secrets: wrongToken }),
    )
    assert.match(
      denied.message,
      /answered 403 \(check the token in CLOUDFLARE_TOKEN and its permissions\): error 10000: Authentication error for Bearer \[redacted\]/,
    )
    assert.ok(!denied.message.includes(wrongToken.CLOUDFLARE_TOKEN))
  })
})

Deno.test('purge_cdn: verify re-probes the real http probe until the frontend serves the expected version', async () => {
  let purged = false
  let servedAfterPurge = 0
  const frontend = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen() {} }, () => {
    // The edge keeps the old copy for two more requests after the purge, as caches settle.
    const version = purged && ++servedAfterPurge > 2 ? 'v2' : 'v1'
    return new Response(`<html>${version}</html>`, { headers: { 'x-app-version': version } })
  })
  const site = `http://127.0.0.1:${frontend.addr.port}/`
  const probeConfig = httpProbe.config.parse({
    url: site,
    expected_version: { value: 'v2', header: 'x-app-version' },
  })
  const reprobe = () =>
    httpProbe.run(probeConfig, {
      service: { id: SERVICE_ID, name: 'web', kind: 'http', environment: 'prod' },
      thresholds: resolveThresholds({ api_p95_warning_ms: 5_000, api_p95_critical_ms: 10_000 }),
      signal: new AbortController().signal,
      secret: () => undefined,
      projectUrl: 'http://127.0.0.1:54321',
      db: noDb,
      fetch,
    })
  try {
    await withProvider({
      [`POST ${purgePath}`]: () => {
        purged = true
        return cloudflareOk()
      },
    }, async (base, requests) => {
      const before = await reprobe()
      assert.equal(before.status, 'degraded', 'the http probe marks a stale version as degraded')
      assert.equal(before.measurements.served_version, 'v1')
      const ctx = context({
        actions: {
          cdn: {
            type: 'cloudflare',
            api_url: base,
            zone_id: ZONE,
            token_secret: 'CLOUDFLARE_TOKEN',
          },
        },
        config: { url: site, expected_version: { value: 'v2', header: 'x-app-version' } },
        reprobe,
      })
      const { plan, verification } = await heal(
        purgeCdnStrategy,
        problem('stale_frontend', {
          served_version: before.measurements.served_version,
          url: site,
        }),
        ctx,
        { ...fast, verify_interval_ms: 30 },
      )
      assert.equal(requests.length, 1)
      assert.deepEqual(plan.before, {
        served_version: 'v1',
        expected_version: 'v2',
        status: 'degraded',
      })
      assert.equal(verification.improved, true)
      assert.equal(verification.worse, false)
      assert.equal(verification.after.served_version, 'v2')
      assert.equal(verification.after.status, 'healthy')
      assert.equal(verification.after.probes, 3, 'v1, v1, then v2')
      assert.match(verification.detail, /^now serving version v2 after/)
    })
  } finally {
    await frontend.shutdown()
  }
})

Deno.test('purge_cdn: verify times out while the old version is still served; nothing to do when already fresh', async () => {
  await withProvider({ [`POST ${purgePath}`]: cloudflareOk }, async (base) => {
    const actions = {
      cdn: { type: 'cloudflare', api_url: base, zone_id: ZONE, token_secret: 'CLOUDFLARE_TOKEN' },
    }
    const config = { expected_version: { value: 'v2' } }
    const stale: ProbeResult = {
      status: 'degraded',
      measurements: { served_version: 'v1' },
      error: 'serving version v1, expected v2',
    }
    const ctx = context({ actions, config, reprobe: probes(stale).reprobe })
    const { verification } = await heal(
      purgeCdnStrategy,
      problem('stale_frontend', { served_version: 'v1' }),
      ctx,
      {
        verify_timeout_ms: 150,
        verify_interval_ms: 30,
      },
    )
    assert.equal(verification.improved, false)
    assert.equal(verification.worse, false)
    assert.match(verification.detail, /^still serving version v1: degraded after/)

    const fresh = context({
      actions,
      config,
      reprobe: probes(healthy({ served_version: 'v2' })).reprobe,
    })
    assert.equal(
      await purgeCdnStrategy.plan(
        problem('stale_frontend'),
        fresh,
        purgeCdnStrategy.config.parse({}),
      ),
      null,
    )
    assert.equal(
      await purgeCdnStrategy.plan(
        problem('stale_frontend'),
        context({ actions: {} }),
        purgeCdnStrategy.config.parse({}),
      ),
      null,
    )
  })
})

// ---- rollback_deploy (Vercel, Netlify) ----

const HOUR = 3_600_000
const T0 = Date.UTC(2026, 10, 20, 12)

Deno.test('rollback_deploy: Vercel rolls production back to the previous READY production deployment, not the current one', async () => {
  const deployments = [
    {
      uid: 'dpl_current',
      created: T0,
      state: 'READY',
      readyState: 'READY',
      target: 'production',
      url: 'web-current.vercel.app',
    },
    // The filters are the API's job; the adapter checks again, so these two are never chosen.
    {
      uid: 'dpl_preview',
      created: T0 - 1 * HOUR,
      state: 'READY',
      readyState: 'READY',
      target: null,
      url: 'web-preview.vercel.app',
    },
    {
      uid: 'dpl_errored',
      created: T0 - 2 * HOUR,
      state: 'ERROR',
      readyState: 'ERROR',
      target: 'production',
      url: null,
    },
    {
      uid: 'dpl_previous',
      created: T0 - 3 * HOUR,
      state: 'READY',
      readyState: 'READY',
      target: 'production',
      url: 'web-previous.vercel.app',
      isRollbackCandidate: true,
    },
    {
      uid: 'dpl_older',
      created: T0 - 4 * HOUR,
      state: 'READY',
      readyState: 'READY',
      target: 'production',
      url: 'web-older.vercel.app',
    },
  ]
  await withProvider({
    'GET /v6/deployments': () =>
      json({
        pagination: { count: deployments.length, next: null, prev: null },
        deployments: [...deployments].reverse(),
      }),
    'POST /v1/projects/prj_web/rollback/dpl_previous': () => new Response(null, { status: 201 }),
  }, async (base, requests) => {
    const ctx = context({
      actions: {
        rollback: {
          type: 'vercel',
          api_url: base,
          project_id: 'prj_web',
          token_secret: 'VERCEL_TOKEN',
          team_id: 'team_1',
        },
      },
      reprobe: probes(down('500 from the new deploy'), healthy()).reprobe,
    })
    const { plan, result, verification } = await heal(
      rollbackDeployStrategy,
      problem('failed_deploy'),
      ctx,
    )

    assert.equal(requests.length, 2)
    const [list, rollback] = requests
    assert.equal(list.method, 'GET')
    assert.equal(list.path, '/v6/deployments')
    assert.deepEqual(list.query, {
      projectId: 'prj_web',
      target: 'production',
      state: 'READY',
      limit: '20',
      teamId: 'team_1',
    })
    assert.equal(list.authorization, `Bearer ${SECRETS.VERCEL_TOKEN}`)
    assert.equal(rollback.method, 'POST')
    assert.equal(rollback.path, '/v1/projects/prj_web/rollback/dpl_previous')
    assert.equal(rollback.query.teamId, 'team_1')
    assert.equal(rollback.query.description, 'Vigil incident 42: rolled back from dpl_current')
    assert.equal(rollback.authorization, `Bearer ${SECRETS.VERCEL_TOKEN}`)

    assert.deepEqual(plan.target.from, {
      id: 'dpl_current',
      created: new Date(T0).toISOString(),
      url: 'web-current.vercel.app',
    })
    assert.equal((plan.target.to as { id: string }).id, 'dpl_previous')
    assert.equal(plan.before.deployment, 'dpl_current')
    assert.match(
      result.detail,
      /rolled back from dpl_current to dpl_previous; to roll forward, promote dpl_current/,
    )
    assert.equal(verification.improved, true)
    assert.equal(verification.after.rolled_back_from, 'dpl_current')
    assertNoSecret(JSON.stringify({ plan, result, verification }))
  })
})

Deno.test('rollback_deploy: nothing to roll back when the failed deployment never went live or none precedes it', async () => {
  const deployments = [{
    uid: 'dpl_only',
    created: T0,
    state: 'READY',
    readyState: 'READY',
    target: 'production',
  }]
  await withProvider(
    { 'GET /v6/deployments': () => json({ deployments }) },
    async (base, requests) => {
      const actions = {
        rollback: {
          type: 'vercel',
          api_url: base,
          project_id: 'prj_web',
          token_secret: 'VERCEL_TOKEN',
        },
      }
      const config = rollbackDeployStrategy.config.parse({})
      const ctx = context({ actions })
      assert.equal(
        await rollbackDeployStrategy.plan(
          problem('failed_deploy', { deployment_id: 'dpl_failed_build' }),
          ctx,
          config,
        ),
        null,
      )
      assert.equal(await rollbackDeployStrategy.plan(problem('failed_deploy'), ctx, config), null)
      assert.equal(requests.length, 2)
      assert.equal(requests[0].query.teamId, undefined, 'no team, no teamId')
      assert.equal(
        await rollbackDeployStrategy.plan(
          problem('failed_deploy'),
          context({ actions: {} }),
          config,
        ),
        null,
      )
    },
  )
})

Deno.test('rollback_deploy: Vercel answering 401 fails the plan with its own error, the token redacted', async () => {
  await withProvider({
    'GET /v6/deployments': (request) =>
      json({
        error: {
          code: 'forbidden',
          message: `Not authorized: ${request.headers.get('authorization')}`,
        },
      }, 401),
  }, async (base) => {
    const ctx = context({
      actions: {
        rollback: {
          type: 'vercel',
          api_url: base,
          project_id: 'prj_web',
          token_secret: 'VERCEL_TOKEN',
        },
      },
    })
    const error = await actError(rollbackDeployStrategy, problem('failed_deploy'), ctx)
    assert.match(
      error.message,
      /^Vercel deployments of project prj_web answered 401 \(check the token in VERCEL_TOKEN and its permissions\): forbidden: Not authorized: Bearer \[redacted\]$/,
    )
  })
})

Deno.test('rollback_deploy: Netlify restores the previous published ready deploy', async () => {
  const iso = (hoursAgo: number) => new Date(T0 - hoursAgo * HOUR).toISOString()
  const deploys = [
    {
      id: 'd_building',
      state: 'building',
      context: 'production',
      created_at: iso(0),
      published_at: null,
    },
    {
      id: 'd_current',
      state: 'ready',
      context: 'production',
      created_at: iso(1),
      published_at: iso(1),
      deploy_ssl_url: 'https://d-current--site.netlify.app',
    },
    {
      id: 'd_failed',
      state: 'error',
      context: 'production',
      created_at: iso(2),
      published_at: null,
    },
    {
      id: 'd_preview',
      state: 'ready',
      context: 'deploy-preview',
      created_at: iso(3),
      published_at: null,
    },
    {
      id: 'd_never_published',
      state: 'ready',
      context: 'production',
      created_at: iso(4),
      published_at: null,
    },
    {
      id: 'd_previous',
      state: 'ready',
      context: 'production',
      created_at: iso(5),
      published_at: iso(5),
      deploy_ssl_url: 'https://d-previous--site.netlify.app',
    },
    {
      id: 'd_older',
      state: 'ready',
      context: 'production',
      created_at: iso(6),
      published_at: iso(6),
    },
  ]
  await withProvider({
    'GET /api/v1/sites/my-site.netlify.app/deploys': () => json(deploys),
    'POST /api/v1/sites/my-site.netlify.app/deploys/d_previous/restore': () =>
      json({ ...deploys[5], published_at: iso(0) }, 201),
  }, async (base, requests) => {
    const ctx = context({
      actions: {
        rollback: {
          type: 'netlify',
          api_url: base,
          site_id: 'my-site.netlify.app',
          token_secret: 'NETLIFY_TOKEN',
        },
      },
      reprobe: probes(down(), healthy()).reprobe,
    })
    const { plan, result, verification } = await heal(
      rollbackDeployStrategy,
      problem('stale_frontend', { served_version: 'v1' }),
      ctx,
      {
        ...fast,
        candidates: 30,
      },
    )
    assert.deepEqual(requests.map((r) => [r.method, r.path, r.query, r.authorization, r.body]), [
      [
        'GET',
        '/api/v1/sites/my-site.netlify.app/deploys',
        { per_page: '30' },
        `Bearer ${SECRETS.NETLIFY_TOKEN}`,
        undefined,
      ],
      [
        'POST',
        '/api/v1/sites/my-site.netlify.app/deploys/d_previous/restore',
        {},
        `Bearer ${SECRETS.NETLIFY_TOKEN}`,
        undefined,
      ],
    ])
    assert.equal((plan.target.from as { id: string }).id, 'd_current')
    assert.equal((plan.target.to as { id: string }).id, 'd_previous')
    assert.match(plan.reason, /^purging did not fix web/)
    assert.match(
      result.detail,
      /restored to deploy d_previous, rolled back from d_current; to roll forward, publish deploy d_current again/,
    )
    assert.equal(verification.improved, true)
  })
})

Deno.test('rollback_deploy: Netlify restoring another deploy than asked, or answering 500, is a HealError', async () => {
  await withProvider({
    'GET /api/v1/sites/site-1/deploys': () =>
      json([
        {
          id: 'd2',
          state: 'ready',
          created_at: '2026-11-20T12:00:00Z',
          published_at: '2026-11-20T12:00:00Z',
        },
        {
          id: 'd1',
          state: 'ready',
          created_at: '2026-11-19T12:00:00Z',
          published_at: '2026-11-19T12:00:00Z',
        },
      ]),
    'POST /api/v1/sites/site-1/deploys/d1/restore': () =>
      json({ id: 'd9', state: 'ready', created_at: '2026-11-19T12:00:00Z' }, 201),
  }, async (base) => {
    const ctx = context({
      actions: {
        rollback: {
          type: 'netlify',
          api_url: base,
          site_id: 'site-1',
          token_secret: 'NETLIFY_TOKEN',
        },
      },
    })
    const error = await actError(rollbackDeployStrategy, problem('failed_deploy'), ctx)
    assert.equal(
      error.message,
      'Netlify restore of deploy d1 on site site-1 answered with deploy d9 instead',
    )
  })
  await withProvider({
    'GET /api/v1/sites/site-1/deploys': () =>
      json({ code: 500, message: 'Internal Server Error' }, 500),
  }, async (base) => {
    const ctx = context({
      actions: {
        rollback: {
          type: 'netlify',
          api_url: base,
          site_id: 'site-1',
          token_secret: 'NETLIFY_TOKEN',
        },
      },
    })
    const error = await actError(rollbackDeployStrategy, problem('failed_deploy'), ctx)
    assert.equal(
      error.message,
      'Netlify deploys of site site-1 answered 500: Internal Server Error',
    )
  })
})

// ---- retry_deploy ----

Deno.test('retry_deploy: posts the deploy hook once; the hook URL never appears in the audit or an error', async () => {
  let status = 201
  await withProvider({
    [`POST /v1/integrations/deploy/prj_web/${HOOK_KEY}`]: (request) =>
      status === 201
        ? json({ job: { id: 'job-7', state: 'PENDING', createdAt: T0 } }, 201)
        : new Response(`no such hook ${request.url}`, { status }),
  }, async (base, requests) => {
    const secrets = {
      ...SECRETS,
      DEPLOY_HOOK: `${base}/v1/integrations/deploy/prj_web/${HOOK_KEY}`,
    }
    const actions = { deploy_retry: { hook_url_secret: 'DEPLOY_HOOK' } }
    const ctx = context({ actions, secrets, reprobe: probes(down(), healthy()).reprobe })
    const config = retryDeployStrategy.config.parse(fast)
    assert.equal(
      await retryDeployStrategy.plan(problem('failed_deploy', { retried: true }), ctx, config),
      null,
      'once per incident',
    )

    const { plan, result, verification } = await heal(
      retryDeployStrategy,
      problem('failed_deploy'),
      ctx,
    )
    assert.deepEqual(requests.map((r) => [r.method, r.path, r.authorization]), [[
      'POST',
      `/v1/integrations/deploy/prj_web/${HOOK_KEY}`,
      null,
    ]])
    assert.equal(result.detail, 'triggered the deploy hook in DEPLOY_HOOK (job job-7)')
    assert.equal(verification.improved, true)
    assertNoSecret(JSON.stringify({ plan, result, verification }))

    status = 500
    const error = await actError(
      retryDeployStrategy,
      problem('failed_deploy'),
      context({ actions, secrets }),
    )
    assert.match(
      error.message,
      /^the deploy hook \(the URL in DEPLOY_HOOK\) answered 500: no such hook \[redacted\]$/,
    )
    const unset = await actError(
      retryDeployStrategy,
      problem('failed_deploy'),
      context({ actions }),
    )
    assert.equal(unset.message, 'secret DEPLOY_HOOK (the deploy hook URL) is not set')
  })
})

// ---- renew_certificate ----

Deno.test('renew_certificate: calls the renewal endpoint, improved once tls_days_left grew', async () => {
  await withProvider(
    { 'POST /acme/renew': () => json({ queued: true }, 202) },
    async (base, requests) => {
      const tls = (days: number): ProbeResult => ({
        status: days < 14 ? 'degraded' : 'healthy',
        measurements: { tls_days_left: days },
      })
      const ctx = context({
        actions: {
          certificate_renewal: { url: `${base}/acme/renew`, token_secret: 'RENEW_TOKEN' },
        },
        reprobe: probes(tls(5), tls(5), tls(89)).reprobe,
      })
      const { plan, verification } = await heal(
        renewCertificateStrategy,
        problem('certificate_expiring', { tls_days_left: 5 }),
        ctx,
      )
      assert.deepEqual(requests.map((r) => [r.method, r.path, r.authorization, r.body]), [
        ['POST', '/acme/renew', `Bearer ${SECRETS.RENEW_TOKEN}`, {
          action: 'renew_certificate',
          service: 'web',
          service_id: SERVICE_ID,
          incident_id: 42,
        }],
      ])
      assert.deepEqual(plan.before, { tls_days_left: 5 })
      assert.equal(verification.improved, true)
      assert.equal(verification.after.tls_days_left, 89)
      assert.equal(verification.detail, 'the certificate now expires in 89 days (was 5)')

      const stuck = context({
        actions: { certificate_renewal: { url: `${base}/acme/renew` } },
        reprobe: probes(tls(5)).reprobe,
      })
      const unchanged = await heal(
        renewCertificateStrategy,
        problem('certificate_expiring', { tls_days_left: 5 }),
        stuck,
        {
          verify_timeout_ms: 100,
          verify_interval_ms: 20,
        },
      )
      assert.equal(unchanged.verification.improved, false)
      assert.equal(requests.at(-1)?.authorization, null)
    },
  )
})

// ---- refresh_auth ----

Deno.test('refresh_auth: calls the auth refresh webhook, else the restart action', async () => {
  await withProvider({
    'POST /auth/refresh': () => json({ refreshed: true }),
    'POST /restart': () => json({ restarted: true }),
  }, async (base, requests) => {
    const failing: ProbeResult = {
      status: 'down',
      measurements: { login_ok: false },
      error: 'sign-in answered 500',
    }
    const ok = healthy({ login_ok: true })
    const refresh = context({
      actions: {
        auth_refresh: { url: `${base}/auth/refresh`, token_secret: 'AUTH_TOKEN' },
        restart: { type: 'webhook', url: `${base}/restart` },
      },
      kind: 'supabase_auth',
      reprobe: probes(failing, ok).reprobe,
    })
    const first = await heal(
      refreshAuthStrategy,
      problem('auth_failures', { login_ok: false }),
      refresh,
    )
    assert.equal(first.plan.target.via, 'auth_refresh')
    assert.equal(first.verification.improved, true)

    const restart = context({
      actions: {
        restart: { type: 'webhook', url: `${base}/restart`, token_secret: 'RESTART_TOKEN' },
      },
      kind: 'supabase_auth',
      reprobe: probes(failing, ok).reprobe,
    })
    const second = await heal(
      refreshAuthStrategy,
      problem('auth_failures', { login_ok: false }),
      restart,
    )
    assert.equal(second.plan.target.via, 'webhook')
    assert.deepEqual(requests.map((r) => [r.path, r.authorization, r.body]), [
      ['/auth/refresh', `Bearer ${SECRETS.AUTH_TOKEN}`, {
        action: 'refresh_auth',
        service: 'web',
        service_id: SERVICE_ID,
        incident_id: 42,
      }],
      ['/restart', `Bearer ${SECRETS.RESTART_TOKEN}`, {
        action: 'restart',
        service: 'web',
        service_id: SERVICE_ID,
        incident_id: 42,
      }],
    ])
    const config = refreshAuthStrategy.config.parse({})
    assert.equal(
      await refreshAuthStrategy.plan(problem('auth_failures'), context({ actions: {} }), config),
      null,
    )
  })
})

// ---- dry run and secrets, across every external strategy ----

interface Case {
  strategy: Strategy<any>
  problem: Problem
  actions: (base: string) => Record<string, unknown>
}

const CASES: Case[] = [
  {
    strategy: restartServiceStrategy,
    problem: problem('service_unhealthy'),
    actions: (b) => ({
      restart: { type: 'webhook', url: `${b}/x`, token_secret: 'RESTART_TOKEN' },
    }),
  },
  {
    strategy: restartServiceStrategy,
    problem: problem('service_unhealthy'),
    actions: (b) => ({
      restart: {
        type: 'supabase_management',
        api_url: b,
        project_ref: REF,
        access_token_secret: 'VIGIL_SUPABASE_ACCESS_TOKEN',
      },
    }),
  },
  {
    strategy: purgeCdnStrategy,
    problem: problem('stale_frontend'),
    actions: (b) => ({
      cdn: { type: 'cloudflare', api_url: b, zone_id: ZONE, token_secret: 'CLOUDFLARE_TOKEN' },
    }),
  },
  {
    strategy: retryDeployStrategy,
    problem: problem('failed_deploy'),
    actions: () => ({ deploy_retry: { hook_url_secret: 'DEPLOY_HOOK' } }),
  },
  {
    strategy: renewCertificateStrategy,
    problem: problem('certificate_expiring'),
    actions: (b) => ({ certificate_renewal: { url: `${b}/x`, token_secret: 'RENEW_TOKEN' } }),
  },
  {
    strategy: refreshAuthStrategy,
    problem: problem('auth_failures'),
    actions: (b) => ({ auth_refresh: { url: `${b}/x`, token_secret: 'AUTH_TOKEN' } }),
  },
]

Deno.test('every external strategy refuses to act in dry-run mode and sends nothing', async () => {
  await withProvider({}, async (base, requests) => {
    for (const c of CASES) {
      const ctx = context({
        actions: c.actions(base),
        dryRun: true,
        secrets: { ...SECRETS, DEPLOY_HOOK: `${base}/hook/${HOOK_KEY}` },
      })
      const config = c.strategy.config.parse({})
      const plan = await c.strategy.plan(c.problem, ctx, config)
      assert.ok(plan, `${c.strategy.name} planned nothing`)
      await assert.rejects(
        c.strategy.act(plan, ctx, config),
        (e: Error) => e instanceof HealError && /^dry run: refusing to /.test(e.message),
      )
    }
    const rollbackPlan: Plan = {
      action: 'rollback_deploy',
      target: {
        from: { id: 'a', created: '', url: null },
        to: { id: 'b', created: '', url: null },
      },
      reason: '',
      before: {},
    }
    const rollback = context({
      actions: {
        rollback: { type: 'netlify', api_url: base, site_id: 's', token_secret: 'NETLIFY_TOKEN' },
      },
      dryRun: true,
    })
    await assert.rejects(
      rollbackDeployStrategy.act(rollbackPlan, rollback, rollbackDeployStrategy.config.parse({})),
      /dry run/,
    )
    assert.deepEqual(requests, [], 'a dry run calls no provider')
  })
})

Deno.test('no token, hook URL or hook key in any error, whatever the provider echoes back', async () => {
  // Every route answers an error quoting the request's Authorization header and URL.
  const echo: Route = (request) =>
    new Response(`denied: ${request.headers.get('authorization')} at ${request.url}`, {
      status: 401,
    })
  const routes: Record<string, Route> = {
    'POST /x': echo,
    [`POST /v1/projects/${REF}/restart`]: echo,
    [`POST ${purgePath}`]: echo,
    [`POST /hook/${HOOK_KEY}`]: echo,
    'GET /v6/deployments': echo,
    'GET /api/v1/sites/s/deploys': echo,
  }
  await withProvider(routes, async (base, requests) => {
    const secrets = { ...SECRETS, DEPLOY_HOOK: `${base}/hook/${HOOK_KEY}` }
    const cases: Case[] = [
      ...CASES,
      {
        strategy: rollbackDeployStrategy,
        problem: problem('failed_deploy'),
        actions: (b) => ({
          rollback: { type: 'vercel', api_url: b, project_id: 'p', token_secret: 'VERCEL_TOKEN' },
        }),
      },
      {
        strategy: rollbackDeployStrategy,
        problem: problem('failed_deploy'),
        actions: (b) => ({
          rollback: { type: 'netlify', api_url: b, site_id: 's', token_secret: 'NETLIFY_TOKEN' },
        }),
      },
    ]
    for (const c of cases) {
      const error = await actError(
        c.strategy,
        c.problem,
        context({ actions: c.actions(base), secrets }),
      )
      assert.match(error.message, /answered 401/, c.strategy.name)
      assert.match(
        error.message,
        /denied: (Bearer \[redacted\]|null) at /,
        'the excerpt is kept, redacted',
      )
    }
    assert.equal(requests.length, cases.length)
    assert.ok(
      requests.every((r) => r.authorization === null || !r.authorization.includes('[redacted]')),
      'the real token was sent',
    )
  })
})

Deno.test('an unreachable provider is a HealError, not a crash', async () => {
  const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const port = (listener.addr as Deno.NetAddr).port
  listener.close()
  const ctx = context({
    actions: {
      cdn: {
        type: 'cloudflare',
        api_url: `http://127.0.0.1:${port}`,
        zone_id: ZONE,
        token_secret: 'CLOUDFLARE_TOKEN',
      },
    },
  })
  const error = await actError(purgeCdnStrategy, problem('stale_frontend'), ctx)
  assert.match(error.message, new RegExp(`^Cloudflare purge_cache for zone ${ZONE} unreachable: `))
})

// ---- purge_own_data (real database) ----

const DB_URL = Deno.env.get('VIGIL_TEST_DB_URL') ??
  'postgresql://postgres:postgres@127.0.0.1:56001/postgres'

Deno.test("purge_own_data: deletes Vigil's expired rows on the real database, vacuums, and compares sizes", async () => {
  const sql = postgres(DB_URL, { max: 2, onnotice: () => {} })
  const name = `purge-own-${crypto.randomUUID().slice(0, 8)}`
  try {
    const [{ missing }] = await sql<{ missing: string[] }[]>`
      select array(select f from unnest(array['apply_retention', 'sweep_invocations']) f
                    where to_regproc('vigil.' || f) is null) as missing`
    assert.deepEqual(
      missing,
      [],
      `the test database (${new URL(DB_URL).port}) lacks Vigil's migrations: apply them first`,
    )

    const [service] = await sql<{ id: string }[]>`
      insert into vigil.services (name, kind, config) values (${name}, 'http', ${
      sql.json({ url: 'http://127.0.0.1:9/' })
    })
      returning id`
    await sql`
      insert into vigil.checks (service_id, checked_at, status, measurements)
      select ${service.id}, now() - make_interval(days => d), 'healthy', '{}'
        from (values (40), (35), (1), (0)) v(d)`
    await sql`
      insert into vigil.metrics (service_id, name, value, recorded_at)
      select ${service.id}, 'http_request_duration', 12.5, now() - make_interval(days => d)
        from (values (45), (31), (2)) v(d)`
    const [invocation] = await sql<{ id: number }[]>`
      insert into vigil.invocations (fn, transport, state, status_code, requested_at, completed_at)
      values ('purge-own-data-test', 'notify', 'succeeded', 200, now() - interval '9 days', now() - interval '9 days')
      returning id`
    const count = async () => {
      const [row] = await sql<{ checks: number; metrics: number; invocations: number }[]>`
        select (select count(*)::int from vigil.checks where service_id = ${service.id}) as checks,
               (select count(*)::int from vigil.metrics where service_id = ${service.id}) as metrics,
               (select count(*)::int from vigil.invocations where id = ${invocation.id}) as invocations`
      return row
    }
    assert.deepEqual(await count(), { checks: 4, metrics: 3, invocations: 1 })

    const ctx = (dryRun: boolean) => ({
      ...context({ actions: {}, db: sql, kind: 'prometheus' }),
      dryRun,
      reprobe: () => Promise.reject(new Error('no reprobe')),
    })
    const config = purgeOwnDataStrategy.config.parse({})
    const p = problem('disk_low', { disk_usage_percent: 93 })

    const dryPlan = await purgeOwnDataStrategy.plan(p, ctx(true), config)
    assert.ok(dryPlan)
    await assert.rejects(
      purgeOwnDataStrategy.act(dryPlan, ctx(true), config),
      /^HealError: dry run: refusing/,
    )
    assert.deepEqual(
      await count(),
      { checks: 4, metrics: 3, invocations: 1 },
      'a dry run deletes nothing',
    )

    const { plan, result, verification } = await heal(purgeOwnDataStrategy, p, ctx(false), {})
    assert.deepEqual(plan.target, {
      functions: ['vigil.apply_retention()', 'vigil.sweep_invocations()'],
      vacuum: ['vigil.checks', 'vigil.metrics'],
    })
    assert.ok(Number(plan.before.database_size_bytes) > 0)
    assert.deepEqual(
      await count(),
      { checks: 2, metrics: 1, invocations: 0 },
      'only rows past retention are gone',
    )
    assert.match(
      result.detail,
      /^deleted expired rows \(\d+ checks, \d+ cycle_runs, \d+ cycles, \d+ metrics, \d+ rollups\); forgot \d+ finished invocations; vacuumed vigil\.checks and vigil\.metrics$/,
    )
    assert.ok(typeof verification.after.database_size_bytes === 'number')
    assert.equal(
      verification.improved,
      Number(verification.after.database_size_bytes) <= Number(plan.before.database_size_bytes),
    )
    assert.equal(verification.worse, false)

    const [vacuumed] = await sql<{ at: Date | null }[]>`
      select greatest(last_vacuum, last_autovacuum) as at from pg_stat_user_tables where schemaname = 'vigil' and relname = 'checks'`
    assert.ok(vacuumed.at, 'vigil.checks was vacuumed')

    const elsewhere = {
      ...ctx(false),
      service: {
        ...ctx(false).service,
        kind: 'postgres' as const,
        config: { connection_secret: 'OTHER_DB_URL' },
      },
    }
    assert.equal(
      await purgeOwnDataStrategy.plan(p, elsewhere, config),
      null,
      'purging here frees nothing on another database',
    )
  } finally {
    await sql`delete from vigil.services where name = ${name}`.catch(() => {})
    await sql.end()
  }
})

Deno.test('disable_service: memory high again soon after a restart that worked takes the service out of service', async () => {
  const sql = testSql(2)
  const name = `disable-test-${Date.now()}`
  try {
    const [{ id }] = await sql`
      insert into vigil.services (name, kind, environment, config) values (${name}, 'http', 'qa', '{"url": "http://127.0.0.1:9/"}')
      returning id`
    const [{ id: incidentId }] = await sql`
      insert into vigil.incidents (service_id, kind, severity, title) values (${id}, 'service_unhealthy', 'critical', 'leak')
      returning id::int`
    await withProvider(
      { 'POST /hooks/disable': () => json({ ok: true }) },
      async (base, requests) => {
        const memoryHigh = {
          status: 'degraded' as const,
          measurements: {},
          findings: [{
            kind: 'memory_high' as const,
            status: 'degraded' as const,
            evidence: { usage_pct: 93 },
          }],
        }
        const settled = { status: 'down' as const, measurements: {}, error: 'out of service' }
        const ctx = {
          ...context({
            actions: {
              restart: { type: 'webhook', url: `${base}/hooks/restart` },
              disable: {
                type: 'webhook',
                url: `${base}/hooks/disable`,
                token_secret: 'RESTART_TOKEN',
              },
            },
            reprobe: probes(memoryHigh, settled).reprobe,
            db: sql,
          }),
          service: { id, name, kind: 'http' as const, environment: 'qa' as const, config: {} },
          incidentId,
        }
        const memory = problem('service_unhealthy', { memory_usage_percent: 93 })
        const config = DisableServiceConfig.parse(fast)
        // No restart yet: restart_service has its turn.
        assert.equal(await disableServiceStrategy.plan(memory, ctx, config), null)
        // A restart that worked 5 minutes ago, and memory is high again: a leak.
        await sql`
          insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome, created_at)
          values (gen_random_uuid(), 'result', ${incidentId}, ${id}, 'restart_service', 1, 'restarted', 'succeeded',
                  now() - interval '5 minutes')`
        const { plan, result, verification } = await heal(disableServiceStrategy, memory, ctx)
        assert.equal(plan.action, 'disable_service')
        assert.match(
          plan.reason,
          /memory is at 93 % again 5(\.\d)? min after a restart that worked/,
        )
        assert.deepEqual(requests.map((r) => [r.method, r.path, r.authorization, r.body]), [[
          'POST',
          '/hooks/disable',
          `Bearer ${SECRETS.RESTART_TOKEN}`,
          { action: 'disable', service: name, service_id: id, incident_id: incidentId },
        ]])
        assert.match(result.detail, /disable webhook .* accepted taking/)
        assert.equal(verification.improved, true, 'out of service, it no longer leaks')
        // Memory that is not the trouble (a plain outage): never disabled.
        assert.equal(
          await disableServiceStrategy.plan(
            problem('service_unhealthy', { error: 'down' }),
            ctx,
            config,
          ),
          null,
        )
      },
    )
  } finally {
    await sql`update vigil.services set enabled = false where name = ${name}`
    await sql`update vigil.incidents set status = 'resolved', resolved_at = now()
               where status = 'open' and service_id in (select id from vigil.services where name = ${name})`
    await sql.end()
  }
})
