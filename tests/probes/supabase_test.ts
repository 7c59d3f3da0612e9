// The Supabase probe kinds against local protocol peers standing in for GoTrue, storage-api,
// Realtime (Phoenix channels over a websocket), the functions gateway and the Management API.
// Each peer checks what it receives (paths, headers, bodies, frames) the way the real service
// would, so a passing test means the probe speaks that service's API.
import assert from 'node:assert/strict'
import { resolveThresholds } from '../../shared/thresholds.ts'
import { supabaseAuthProbe } from '../../supabase/functions/_shared/probes/supabase-auth.ts'
import { supabaseFunctionsProbe } from '../../supabase/functions/_shared/probes/supabase-functions.ts'
import { supabaseManagementProbe } from '../../supabase/functions/_shared/probes/supabase-management.ts'
import {
  realtimeSocketUrl,
  supabaseRealtimeProbe,
} from '../../supabase/functions/_shared/probes/supabase-realtime.ts'
import { supabaseStorageProbe } from '../../supabase/functions/_shared/probes/supabase-storage.ts'
import { assertNoSecrets, type Handler, json, runProbe, type Seen, withPeer } from './_harness.ts'

// Legacy keys are JWTs; the new sb_… keys are not. Distinct values, so a leak names its source.
const ANON = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoiYW5vbiJ9.anon-signature-0123456789'
const SERVICE =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.service-signature-9876'
const SB_SECRET = 'sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz'
const PASSWORD = 'correct horse battery staple 42'
const ACCESS_TOKEN = 'sbp_0123456789abcdef0123456789abcdef01234567'
const EMAIL = 'vigil-probe@example.com'
const REF = 'abcdefghijklmnopqrst'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A port nothing listens on: bind one, note it, let it go. */
function closedPort(): string {
  const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const port = (listener.addr as Deno.NetAddr).port
  listener.close()
  return `http://127.0.0.1:${port}`
}

// ---- GoTrue ----

const access = (n: number) => `access-token-${n}-0f9e8d7c6b5a49382716`
const refresh = (n: number) => `refresh-token-${n}-a1b2c3d4e5f6`

function session(n: number) {
  return {
    access_token: access(n),
    token_type: 'bearer',
    expires_in: 3600,
    expires_at: Math.floor(Date.now() / 1000) + 3600,
    refresh_token: refresh(n),
    user: { id: '5f1e7a3c-0000-4000-8000-000000000abc', aud: 'authenticated', email: EMAIL },
  }
}

/** GoTrue behind the gateway: the routes and error shapes of supabase/auth internal/api. */
function gotrue(
  opts: { healthStatus?: number; healthBody?: string; delayMs?: number; refreshWorks?: boolean } =
    {},
): Handler {
  return async (req) => {
    if (opts.delayMs) await sleep(opts.delayMs)
    if (req.headers.get('apikey') !== ANON) return json({ message: 'Invalid API key' }, 401)
    if (req.method === 'GET' && req.path === '/auth/v1/health') {
      if (opts.healthBody !== undefined) {
        return new Response(opts.healthBody, { status: opts.healthStatus ?? 200 })
      }
      return json({
        version: 'v2.177.0',
        name: 'GoTrue',
        description: 'GoTrue is a user registration and authentication API',
      }, opts.healthStatus ?? 200)
    }
    if (req.method === 'POST' && req.path.startsWith('/auth/v1/token?')) {
      if (req.headers.get('content-type') !== 'application/json') {
        return json({ code: 400, msg: 'bad content type' }, 400)
      }
      const body = JSON.parse(req.body)
      if (req.path === '/auth/v1/token?grant_type=password') {
        assert.deepEqual(Object.keys(body).sort(), ['email', 'password'])
        if (body.email !== EMAIL || body.password !== PASSWORD) {
          return json({
            code: 400,
            error_code: 'invalid_credentials',
            msg: 'Invalid login credentials',
          }, 400)
        }
        return json(session(1))
      }
      if (req.path === '/auth/v1/token?grant_type=refresh_token') {
        assert.deepEqual(Object.keys(body), ['refresh_token'])
        if (opts.refreshWorks === false || body.refresh_token !== refresh(1)) {
          return json({
            code: 400,
            error_code: 'refresh_token_not_found',
            msg: 'Invalid Refresh Token: Refresh Token Not Found',
          }, 400)
        }
        return json(session(2))
      }
    }
    if (req.method === 'POST' && req.path === '/auth/v1/logout?scope=local') {
      if (req.headers.get('authorization') !== `Bearer ${access(2)}`) {
        return json({ code: 401, msg: 'invalid JWT' }, 401)
      }
      return new Response(null, { status: 204 })
    }
    return json({ code: 404, msg: 'Not found' }, 404)
  }
}

const authSecrets = { SUPABASE_ANON_KEY: ANON, VIGIL_PROBE_PASSWORD: PASSWORD }
const withLogin = { synthetic_login: { email: EMAIL, password_secret: 'VIGIL_PROBE_PASSWORD' } }

Deno.test('auth: a healthy GoTrue answers /auth/v1/health with the apikey header', async () => {
  await withPeer(() => gotrue(), async (url, seen) => {
    const result = await runProbe(supabaseAuthProbe, {}, { projectUrl: url, secrets: authSecrets })
    assert.equal(result.status, 'healthy', result.error)
    assert.equal(result.error, undefined)
    assert.deepEqual(seen.map((r) => `${r.method} ${r.path}`), ['GET /auth/v1/health'])
    assert.equal(seen[0].headers.get('apikey'), ANON)
    assert.equal(result.measurements.version, 'v2.177.0')
    assert.equal(
      result.measurements.latency_warning_ms,
      200,
      'the environment api_p95 band when the config has none',
    )
    assert.equal(typeof result.responseMs, 'number')
    assert.ok(result.metrics?.some((m) => m.name === 'http_request_duration'))
    assertNoSecrets(result, [ANON])
  })
})

Deno.test('auth: the synthetic login signs in, refreshes and signs out as GoTrue expects', async () => {
  await withPeer(() => gotrue(), async (url, seen) => {
    const result = await runProbe(supabaseAuthProbe, { url, ...withLogin }, {
      secrets: authSecrets,
    })
    assert.equal(result.status, 'healthy', result.error)
    assert.deepEqual(seen.map((r) => `${r.method} ${r.path}`), [
      'GET /auth/v1/health',
      'POST /auth/v1/token?grant_type=password',
      'POST /auth/v1/token?grant_type=refresh_token',
      'POST /auth/v1/logout?scope=local',
    ])
    assert.deepEqual(JSON.parse(seen[1].body), { email: EMAIL, password: PASSWORD })
    assert.deepEqual(JSON.parse(seen[2].body), { refresh_token: refresh(1) })
    for (const r of seen) assert.equal(r.headers.get('apikey'), ANON)
    assert.equal(result.measurements.login_ok, true)
    assert.equal(result.measurements.logout_ok, true)
    assert.equal(typeof result.measurements.login_ms, 'number')
    assert.equal(typeof result.measurements.refresh_ms, 'number')
    assert.deepEqual(result.metrics?.find((m) => m.name === 'login_success_rate'), {
      name: 'login_success_rate',
      value: 100,
    })
    assertNoSecrets(result, [ANON, PASSWORD, access(1), access(2), refresh(1), refresh(2)])
  })
})

Deno.test("auth: a refused sign-in is degraded with GoTrue's message, never the password", async () => {
  await withPeer(() => gotrue(), async (url) => {
    const result = await runProbe(supabaseAuthProbe, { url, ...withLogin }, {
      secrets: { ...authSecrets, VIGIL_PROBE_PASSWORD: 'a wrong password 123' },
    })
    assert.equal(result.status, 'degraded')
    assert.match(
      result.error ?? '',
      /synthetic sign-in failed: HTTP 400 invalid_credentials: Invalid login credentials/,
    )
    assert.equal(result.measurements.login_ok, false)
    assert.deepEqual(result.metrics?.find((m) => m.name === 'login_success_rate')?.value, 0)
    assertNoSecrets(result, [ANON, 'a wrong password 123'])
  })
})

Deno.test('auth: a refresh that fails is a failed login too', async () => {
  await withPeer(() => gotrue({ refreshWorks: false }), async (url, seen) => {
    const result = await runProbe(supabaseAuthProbe, { url, ...withLogin }, {
      secrets: authSecrets,
    })
    assert.equal(result.status, 'degraded')
    assert.match(
      result.error ?? '',
      /token refresh: HTTP 400 refresh_token_not_found: Invalid Refresh Token/,
    )
    assert.equal(seen.length, 3, 'no sign-out without a session')
    assertNoSecrets(result, [ANON, PASSWORD, access(1), refresh(1)])
  })
})

Deno.test('auth: a failing or foreign health answer is down', async (t) => {
  await t.step('HTTP 503', async () => {
    await withPeer(
      () => gotrue({ healthStatus: 503, healthBody: 'upstream connect error' }),
      async (url) => {
        const result = await runProbe(supabaseAuthProbe, { url }, { secrets: authSecrets })
        assert.equal(result.status, 'down')
        assert.match(result.error ?? '', /HTTP 503: upstream connect error/)
      },
    )
  })
  await t.step('200 that is not GoTrue', async () => {
    await withPeer(() => gotrue({ healthBody: '<html>maintenance</html>' }), async (url) => {
      const result = await runProbe(supabaseAuthProbe, { url }, { secrets: authSecrets })
      assert.equal(result.status, 'down')
      assert.match(result.error ?? '', /unexpected response/)
    })
  })
  await t.step('a rejected apikey', async () => {
    await withPeer(() => gotrue(), async (url) => {
      const result = await runProbe(supabaseAuthProbe, { url }, {
        secrets: { SUPABASE_ANON_KEY: 'eyJ.wrong.key-1234' },
      })
      assert.equal(result.status, 'down')
      assert.match(result.error ?? '', /HTTP 401/)
      assertNoSecrets(result, ['eyJ.wrong.key-1234'])
    })
  })
  await t.step('nothing listening', async () => {
    const result = await runProbe(supabaseAuthProbe, { url: closedPort() }, {
      secrets: authSecrets,
    })
    assert.equal(result.status, 'down')
    assert.match(result.error ?? '', /unreachable/)
  })
})

Deno.test('auth: latency is judged by the config band, else the environment api_p95 band', async () => {
  await withPeer(() => gotrue({ delayMs: 80 }), async (url) => {
    const warned = await runProbe(supabaseAuthProbe, {
      url,
      latency_warning_ms: 20,
      latency_critical_ms: 5000,
    }, { secrets: authSecrets })
    assert.equal(warned.status, 'degraded')
    assert.match(warned.error ?? '', /latency \d+ ms at or above warning 20 ms/)
    const critical = await runProbe(supabaseAuthProbe, {
      url,
      latency_warning_ms: 10,
      latency_critical_ms: 40,
    }, { secrets: authSecrets })
    assert.equal(critical.status, 'down')
    assert.match(critical.error ?? '', /above critical 40 ms/)
    const environment = await runProbe(supabaseAuthProbe, { url }, {
      secrets: authSecrets,
      thresholds: resolveThresholds({ api_p95_warning_ms: 20, api_p95_critical_ms: 5000 }),
    })
    assert.equal(environment.status, 'degraded')
    assert.equal(environment.measurements.latency_warning_ms, 20)
  })
})

Deno.test('auth: the probe deadline (ctx.signal) ends a hanging request as down', async () => {
  await withPeer((gate) => async () => {
    await gate
    return json({})
  }, async (url) => {
    const started = performance.now()
    const result = await runProbe(supabaseAuthProbe, { url }, {
      secrets: authSecrets,
      timeoutMs: 100,
    })
    assert.ok(performance.now() - started < 2000)
    assert.equal(result.status, 'down')
    assert.match(result.error ?? '', /timed out/)
  })
})

Deno.test('auth: missing secrets are down, naming the secret', async () => {
  const noKey = await runProbe(supabaseAuthProbe, {}, { secrets: {} })
  assert.deepEqual([noKey.status, noKey.error], ['down', 'secret SUPABASE_ANON_KEY is not set'])
  const noPassword = await runProbe(supabaseAuthProbe, withLogin, {
    secrets: { SUPABASE_ANON_KEY: ANON },
  })
  assert.deepEqual([noPassword.status, noPassword.error], [
    'down',
    'secret VIGIL_PROBE_PASSWORD is not set',
  ])
})

Deno.test('auth: requests go through ctx.fetch', async () => {
  await withPeer(() => gotrue(), async (url) => {
    const calls: string[] = []
    const recording: typeof fetch = (input, init) => {
      calls.push(String(input))
      return fetch(input, init)
    }
    const result = await runProbe(supabaseAuthProbe, { url }, {
      secrets: authSecrets,
      fetch: recording,
    })
    assert.equal(result.status, 'healthy')
    assert.deepEqual(calls, [`${url}/auth/v1/health`])
  })
})

// ---- storage-api ----

/** storage-api behind the gateway: GET /status (empty 200) and POST /object/list/:bucket. */
function storageApi(
  key: string,
  opts: { statusCode?: number; listAnswer?: Response } = {},
): Handler {
  return (req) => {
    if (req.headers.get('apikey') !== key) return json({ message: 'Invalid API key' }, 401)
    const bearer = req.headers.get('authorization')
    if (key.startsWith('eyJ') ? bearer !== `Bearer ${key}` : bearer !== null) {
      return json({
        statusCode: '403',
        error: 'Unauthorized',
        message: 'unexpected Authorization header',
      }, 400)
    }
    if (req.method === 'GET' && req.path === '/storage/v1/status') {
      return new Response(null, { status: opts.statusCode ?? 200 })
    }
    const list = /^\/storage\/v1\/object\/list\/([^/?]+)$/.exec(req.path)
    if (req.method === 'POST' && list) {
      assert.equal(req.headers.get('content-type'), 'application/json')
      assert.deepEqual(JSON.parse(req.body), { prefix: '', limit: 1, offset: 0 })
      if (opts.listAnswer) return opts.listAnswer
      if (decodeURIComponent(list[1]) !== 'avatars') {
        // What storage-api renders for ERRORS.NoSuchBucket: HTTP 400, statusCode '404'.
        return json(
          { statusCode: '404', error: 'Bucket not found', message: 'Bucket not found' },
          400,
        )
      }
      return json([{
        name: 'a.png',
        id: 'f2b0',
        updated_at: '2025-01-01T00:00:00Z',
        metadata: { size: 10 },
      }])
    }
    return json({ statusCode: '404', error: 'Not Found', message: 'Route not found' }, 404)
  }
}

Deno.test('storage: status answers and the bucket lists, with the service key as apikey and Bearer', async () => {
  await withPeer(() => storageApi(SERVICE), async (url, seen) => {
    const result = await runProbe(supabaseStorageProbe, { bucket: 'avatars' }, {
      projectUrl: url,
      secrets: { SUPABASE_SERVICE_ROLE_KEY: SERVICE },
    })
    assert.equal(result.status, 'healthy', result.error)
    assert.deepEqual(seen.map((r) => `${r.method} ${r.path}`), [
      'GET /storage/v1/status',
      'POST /storage/v1/object/list/avatars',
    ])
    assert.equal(result.measurements.objects_listed, 1)
    assertNoSecrets(result, [SERVICE])
  })
})

Deno.test('storage: an sb_secret key goes in apikey only (it is not a JWT)', async () => {
  await withPeer(() => storageApi(SB_SECRET), async (url, seen) => {
    const result = await runProbe(supabaseStorageProbe, {
      url,
      bucket: 'avatars',
      apikey_secret: 'VIGIL_STORAGE_KEY',
    }, {
      secrets: { VIGIL_STORAGE_KEY: SB_SECRET },
    })
    assert.equal(result.status, 'healthy', result.error)
    for (const r of seen) assert.equal(r.headers.get('authorization'), null)
    assertNoSecrets(result, [SB_SECRET])
  })
})

Deno.test('storage: a missing bucket is down with the reason', async () => {
  await withPeer(() => storageApi(SERVICE), async (url) => {
    const result = await runProbe(supabaseStorageProbe, { url, bucket: 'no such/bucket' }, {
      secrets: { SUPABASE_SERVICE_ROLE_KEY: SERVICE },
    })
    assert.equal(result.status, 'down')
    assert.equal(result.error, 'bucket "no such/bucket" not found')
  })
  // Newer storage-api releases: HTTP 404 with code NoSuchBucket.
  const newer = json({
    statusCode: '404',
    code: 'NoSuchBucket',
    error: 'NoSuchBucket',
    message: 'Bucket not found',
  }, 404)
  await withPeer(() => storageApi(SERVICE, { listAnswer: newer }), async (url) => {
    const result = await runProbe(supabaseStorageProbe, { url, bucket: 'avatars' }, {
      secrets: { SUPABASE_SERVICE_ROLE_KEY: SERVICE },
    })
    assert.equal(result.error, 'bucket "avatars" not found')
  })
})

Deno.test('storage: other list errors, a broken status and a malformed listing are down', async (t) => {
  const secrets = { SUPABASE_SERVICE_ROLE_KEY: SERVICE }
  await t.step("a refused list names storage-api's code and message, redacted", async () => {
    const refused = json({
      statusCode: '403',
      code: 'InvalidJWT',
      error: 'InvalidJWT',
      message: `bad token ${SERVICE}`,
    }, 400)
    await withPeer(() => storageApi(SERVICE, { listAnswer: refused }), async (url) => {
      const result = await runProbe(supabaseStorageProbe, { url, bucket: 'avatars' }, { secrets })
      assert.equal(result.status, 'down')
      assert.match(result.error ?? '', /answered HTTP 400: InvalidJWT: bad token \[redacted\]/)
      assertNoSecrets(result, [SERVICE])
    })
  })
  await t.step('status 502', async () => {
    await withPeer(() => storageApi(SERVICE, { statusCode: 502 }), async (url, seen) => {
      const result = await runProbe(supabaseStorageProbe, { url, bucket: 'avatars' }, { secrets })
      assert.equal(result.status, 'down')
      assert.match(result.error ?? '', /storage status answered HTTP 502/)
      assert.equal(seen.length, 1, 'no listing once the status check failed')
    })
  })
  await t.step('a 200 listing that is not an array', async () => {
    await withPeer(
      () => storageApi(SERVICE, { listAnswer: new Response('<html>oops</html>') }),
      async (url) => {
        const result = await runProbe(supabaseStorageProbe, { url, bucket: 'avatars' }, { secrets })
        assert.equal(result.status, 'down')
        assert.match(result.error ?? '', /unexpected response: <html>oops<\/html>/)
      },
    )
  })
  await t.step('the secret is missing', async () => {
    const result = await runProbe(supabaseStorageProbe, {}, { secrets: {} })
    assert.deepEqual([result.status, result.error], [
      'down',
      'secret SUPABASE_SERVICE_ROLE_KEY is not set',
    ])
  })
})

// ---- Realtime (Phoenix channels, serializer 1.0.0) ----

type Behaviour = 'ok' | 'refuse' | 'close' | 'silent'

/** Realtime's websocket: checks the URL, speaks vsn 1.0.0 frames, records what the client sent. */
function realtime(
  behaviour: Behaviour,
  frames: Record<string, unknown>[],
  opts: { delayMs?: number; noise?: boolean } = {},
): Handler {
  return (_req, raw) => {
    const url = new URL(raw.url)
    if (
      url.pathname !== '/realtime/v1/websocket' || url.searchParams.get('apikey') !== ANON ||
      url.searchParams.get('vsn') !== '1.0.0' ||
      raw.headers.get('upgrade')?.toLowerCase() !== 'websocket'
    ) return new Response('forbidden', { status: 403 })
    const { socket, response } = Deno.upgradeWebSocket(raw)
    const reply = (topic: string, ref: unknown, payload: unknown) =>
      socket.send(JSON.stringify({ topic, event: 'phx_reply', payload, ref }))
    socket.onmessage = async (e) => {
      const frame = JSON.parse(e.data)
      frames.push(frame)
      if (frame.event === 'phx_join') {
        if (behaviour === 'close') return socket.close(4000, 'going away')
        if (behaviour === 'silent') return
        if (opts.noise) {
          socket.send(new Uint8Array([2, 0, 0]))
          socket.send(
            JSON.stringify({
              topic: 'phoenix',
              event: 'phx_reply',
              payload: { status: 'ok', response: {} },
              ref: '99',
            }),
          )
          socket.send(
            JSON.stringify({ topic: frame.topic, event: 'presence_state', payload: {}, ref: null }),
          )
        }
        if (opts.delayMs) await sleep(opts.delayMs)
        if (behaviour === 'refuse') {
          return reply(frame.topic, frame.ref, {
            status: 'error',
            response: {
              reason:
                'Unauthorized: You do not have permissions to read from this Channel topic: vigil-probe',
            },
          })
        }
        return reply(frame.topic, frame.ref, { status: 'ok', response: { postgres_changes: [] } })
      }
      if (frame.event === 'phx_leave') {
        reply(frame.topic, frame.ref, { status: 'ok', response: {} })
        socket.send(
          JSON.stringify({
            topic: frame.topic,
            event: 'phx_close',
            payload: {},
            ref: frame.join_ref,
          }),
        )
      }
    }
    return response
  }
}

const realtimeSecrets = { SUPABASE_ANON_KEY: ANON }

Deno.test('realtime: the socket URL is derived from the project URL', () => {
  const https = realtimeSocketUrl('https://abc.supabase.co', 'k')
  assert.equal(https.href, 'wss://abc.supabase.co/realtime/v1/websocket?apikey=k&vsn=1.0.0')
  assert.equal(
    realtimeSocketUrl('http://127.0.0.1:54321/', 'k').href,
    'ws://127.0.0.1:54321/realtime/v1/websocket?apikey=k&vsn=1.0.0',
  )
  assert.equal(
    realtimeSocketUrl('wss://rt.example.com/realtime/v1', 'k').pathname,
    '/realtime/v1/websocket',
  )
  assert.equal(
    realtimeSocketUrl('ws://h/realtime/v1/websocket', 'k').pathname,
    '/realtime/v1/websocket',
  )
})

Deno.test('realtime: a channel join is acknowledged, then left, and the latency measured', async () => {
  const frames: Record<string, unknown>[] = []
  await withPeer(() => realtime('ok', frames, { noise: true }), async (url) => {
    const result = await runProbe(supabaseRealtimeProbe, {}, {
      projectUrl: url,
      secrets: realtimeSecrets,
    })
    assert.equal(result.status, 'healthy', result.error)
    assert.deepEqual(frames, [
      {
        topic: 'realtime:vigil-probe',
        event: 'phx_join',
        payload: {
          config: { broadcast: { self: false }, presence: { key: '' }, postgres_changes: [] },
        },
        ref: '1',
        join_ref: '1',
      },
      { topic: 'realtime:vigil-probe', event: 'phx_leave', payload: {}, ref: '2', join_ref: '1' },
    ])
    assert.equal(result.measurements.left_cleanly, true)
    assert.equal(result.measurements.topic, 'realtime:vigil-probe')
    assert.equal(typeof result.measurements.connect_ms, 'number')
    assert.equal(result.responseMs, result.measurements.join_ms)
    assert.match(
      String(result.measurements.endpoint),
      /^ws:\/\/127\.0\.0\.1:\d+\/realtime\/v1\/websocket$/,
    )
    assertNoSecrets(result, [ANON])
  })
})

Deno.test("realtime: a refused join is down with Realtime's reason", async () => {
  const frames: Record<string, unknown>[] = []
  await withPeer(() => realtime('refuse', frames), async (url) => {
    const result = await runProbe(supabaseRealtimeProbe, { url, topic: 'ops:probe' }, {
      secrets: realtimeSecrets,
    })
    assert.equal(result.status, 'down')
    assert.equal(
      result.error,
      'join refused: Unauthorized: You do not have permissions to read from this Channel topic: vigil-probe',
    )
    assert.equal(frames[0].topic, 'realtime:ops:probe')
    assert.equal(frames.length, 1, 'no leave after a refused join')
  })
})

Deno.test('realtime: a socket closed before the reply is down', async () => {
  await withPeer(() => realtime('close', []), async (url) => {
    const result = await runProbe(supabaseRealtimeProbe, { url }, { secrets: realtimeSecrets })
    assert.equal(result.status, 'down')
    assert.match(
      result.error ?? '',
      /socket closed before the join reply \(code 4000: going away\)/,
    )
  })
})

Deno.test('realtime: no join reply before the deadline is down, and the socket is closed', async () => {
  const frames: Record<string, unknown>[] = []
  await withPeer(() => realtime('silent', frames), async (url) => {
    const result = await runProbe(supabaseRealtimeProbe, { url }, {
      secrets: realtimeSecrets,
      timeoutMs: 150,
    })
    assert.equal(result.status, 'down')
    assert.match(result.error ?? '', /timed out after \d+ ms waiting for the join reply/)
    assert.equal(frames.length, 1)
  })
})

Deno.test('realtime: a refused upgrade or nothing listening is down, the key redacted', async () => {
  await withPeer(() => realtime('ok', []), async (url) => {
    const wrongKey = 'eyJ.wrong-realtime-key.x'
    const result = await runProbe(supabaseRealtimeProbe, { url }, {
      secrets: { SUPABASE_ANON_KEY: wrongKey },
    })
    assert.equal(result.status, 'down')
    assert.match(result.error ?? '', /could not open the websocket/)
    assertNoSecrets(result, [wrongKey])
  })
  const result = await runProbe(supabaseRealtimeProbe, { url: closedPort() }, {
    secrets: realtimeSecrets,
  })
  assert.equal(result.status, 'down')
  assert.match(result.error ?? '', /could not open the websocket/)
  assertNoSecrets(result, [ANON])
})

Deno.test('realtime: a slow join is judged against the latency band', async () => {
  await withPeer(() => realtime('ok', [], { delayMs: 80 }), async (url) => {
    const result = await runProbe(supabaseRealtimeProbe, {
      url,
      latency_warning_ms: 30,
      latency_critical_ms: 5000,
    }, { secrets: realtimeSecrets })
    assert.equal(result.status, 'degraded')
    assert.match(result.error ?? '', /join took \d+ ms, at or above warning 30 ms/)
  })
})

Deno.test('realtime: a missing secret is down, naming it', async () => {
  const result = await runProbe(supabaseRealtimeProbe, { apikey_secret: 'VIGIL_RT_KEY' }, {
    secrets: {},
  })
  assert.deepEqual([result.status, result.error], ['down', 'secret VIGIL_RT_KEY is not set'])
})

// ---- Edge Functions gateway ----

function functionsGateway(
  key: string,
  answer: (req: Seen) => Response | Promise<Response>,
): Handler {
  return (req) => {
    if (req.headers.get('apikey') !== key) return json({ msg: 'Invalid API key' }, 401)
    // verify_jwt: the gateway accepts a JWT in Authorization only.
    const bearer = req.headers.get('authorization')
    if (bearer && !/^Bearer eyJ[^.]*\.[^.]+\.[^.]*$/.test(bearer)) {
      return json({ code: 401, message: 'Invalid JWT' }, 401)
    }
    if (!req.path.startsWith('/functions/v1/')) return json({ code: 'NOT_FOUND' }, 404)
    return answer(req)
  }
}

const fnSecrets = { SUPABASE_SERVICE_ROLE_KEY: SERVICE }

Deno.test('functions: a POST with a JSON body reaches /functions/v1/<name><path> and answers as expected', async () => {
  await withPeer(() => functionsGateway(SERVICE, () => json({ ok: true })), async (url, seen) => {
    const result = await runProbe(supabaseFunctionsProbe, {
      function: 'hello-world',
      path: '/health?deep=1',
      body: '{"ping":true}',
    }, {
      projectUrl: url,
      secrets: fnSecrets,
    })
    assert.equal(result.status, 'healthy', result.error)
    assert.equal(seen[0].method, 'POST')
    assert.equal(seen[0].path, '/functions/v1/hello-world/health?deep=1')
    assert.equal(seen[0].headers.get('authorization'), `Bearer ${SERVICE}`)
    assert.equal(seen[0].headers.get('content-type'), 'application/json')
    assert.equal(seen[0].body, '{"ping":true}')
    assert.equal(result.measurements.status_code, 200)
    assertNoSecrets(result, [SERVICE])
  })
})

Deno.test('functions: GET, and a status listed in expected_status, are honoured', async () => {
  await withPeer(
    () => functionsGateway(SERVICE, () => new Response('queued', { status: 202 })),
    async (url, seen) => {
      const result = await runProbe(supabaseFunctionsProbe, {
        url,
        function: 'jobs',
        method: 'GET',
        expected_status: [200, 202],
      }, { secrets: fnSecrets })
      assert.equal(result.status, 'healthy', result.error)
      assert.equal(seen[0].method, 'GET')
      assert.equal(seen[0].path, '/functions/v1/jobs')
    },
  )
})

Deno.test('functions: an unexpected status is down with a redacted excerpt of the body', async () => {
  const boom = () => json({ error: `boom: config had ${SERVICE}`, code: 'WORKER_ERROR' }, 500)
  await withPeer(() => functionsGateway(SERVICE, boom), async (url) => {
    const result = await runProbe(supabaseFunctionsProbe, { url, function: 'hello' }, {
      secrets: fnSecrets,
    })
    assert.equal(result.status, 'down')
    assert.match(
      result.error ?? '',
      /^hello answered HTTP 500, expected 200: \{"error":"boom: config had \[redacted\]"/,
    )
    assertNoSecrets(result, [SERVICE])
  })
})

Deno.test('functions: an sb_ key is sent as apikey only, and a 401 explains verify_jwt', async () => {
  await withPeer(
    () =>
      functionsGateway(
        SB_SECRET,
        () => json({ code: 401, message: 'Missing authorization header' }, 401),
      ),
    async (url, seen) => {
      const result = await runProbe(supabaseFunctionsProbe, {
        url,
        function: 'hello',
        apikey_secret: 'VIGIL_FN_KEY',
      }, {
        secrets: { VIGIL_FN_KEY: SB_SECRET },
      })
      assert.equal(seen[0].headers.get('authorization'), null)
      assert.equal(result.status, 'down')
      assert.match(result.error ?? '', /verify_jwt/)
      assertNoSecrets(result, [SB_SECRET])
    },
  )
})

Deno.test('functions: a slow function is judged against the latency band; a hang against the deadline', async () => {
  await withPeer((gate) =>
    functionsGateway(SERVICE, async (req) => {
      if (req.path.endsWith('/hang')) await gate
      else await sleep(80)
      return json({ ok: true })
    }), async (url) => {
    const slow = await runProbe(supabaseFunctionsProbe, {
      url,
      function: 'slow',
      latency_warning_ms: 10,
      latency_critical_ms: 40,
    }, { secrets: fnSecrets })
    assert.equal(slow.status, 'down')
    assert.match(slow.error ?? '', /latency \d+ ms above critical 40 ms/)
    const hung = await runProbe(supabaseFunctionsProbe, { url, function: 'slow', path: '/hang' }, {
      secrets: fnSecrets,
      timeoutMs: 100,
    })
    assert.equal(hung.status, 'down')
    assert.match(hung.error ?? '', /invoking slow failed: timed out/)
  })
  const missing = await runProbe(supabaseFunctionsProbe, { function: 'x' }, { secrets: {} })
  assert.deepEqual([missing.status, missing.error], [
    'down',
    'secret SUPABASE_SERVICE_ROLE_KEY is not set',
  ])
})

// ---- Management API ----

function managementApi(answer: (services: string[]) => Response): Handler {
  return (req) => {
    if (req.headers.get('authorization') !== `Bearer ${ACCESS_TOKEN}`) {
      return json({ message: 'Unauthorized' }, 401)
    }
    const url = new URL(req.path, 'http://x')
    if (req.method !== 'GET' || url.pathname !== `/v1/projects/${REF}/health`) {
      return json({ message: 'Not Found' }, 404)
    }
    return answer((url.searchParams.get('services') ?? '').split(','))
  }
}

const healthy = (services: string[]) =>
  json(services.map((name) => ({ name, healthy: true, status: 'ACTIVE_HEALTHY' })))
const mgmtSecrets = { VIGIL_SUPABASE_ACCESS_TOKEN: ACCESS_TOKEN }

Deno.test('management: every requested service ACTIVE_HEALTHY is healthy, measured per service', async () => {
  await withPeer(() => managementApi(healthy), async (url, seen) => {
    const result = await runProbe(supabaseManagementProbe, { api_url: url, project_ref: REF }, {
      secrets: mgmtSecrets,
    })
    assert.equal(result.status, 'healthy', result.error)
    assert.equal(
      seen[0].path,
      `/v1/projects/${REF}/health?services=auth,db,pooler,realtime,rest,storage`,
    )
    assert.deepEqual(result.measurements.services, {
      auth: { status: 'ACTIVE_HEALTHY' },
      db: { status: 'ACTIVE_HEALTHY' },
      pooler: { status: 'ACTIVE_HEALTHY' },
      realtime: { status: 'ACTIVE_HEALTHY' },
      rest: { status: 'ACTIVE_HEALTHY' },
      storage: { status: 'ACTIVE_HEALTHY' },
    })
    assertNoSecrets(result, [ACCESS_TOKEN])
  })
})

Deno.test('management: UNHEALTHY is down naming the services; COMING_UP is degraded', async () => {
  const mixed = (services: string[]) =>
    json(
      services.map((name) =>
        name === 'db'
          ? { name, healthy: false, status: 'UNHEALTHY', error: 'connection refused' }
          : name === 'storage'
          ? { name, healthy: false, status: 'UNHEALTHY' }
          : name === 'realtime'
          ? { name, healthy: false, status: 'COMING_UP' }
          : {
            name,
            healthy: true,
            status: 'ACTIVE_HEALTHY',
            info: { name: 'GoTrue', version: '2.177.0' },
          }
      ),
    )
  await withPeer(() => managementApi(mixed), async (url) => {
    const all = await runProbe(supabaseManagementProbe, { api_url: url, project_ref: REF }, {
      secrets: mgmtSecrets,
    })
    assert.equal(all.status, 'down')
    assert.equal(all.error, 'unhealthy: db (connection refused), storage')
    assert.deepEqual(all.measurements.unhealthy, ['db', 'storage'])
    const rising = await runProbe(supabaseManagementProbe, {
      api_url: url,
      project_ref: REF,
      services: ['auth', 'realtime'],
    }, { secrets: mgmtSecrets })
    assert.equal(rising.status, 'degraded')
    assert.equal(rising.error, 'coming up: realtime')
  })
})

Deno.test('management: a rejected token, a malformed body and a missing service', async (t) => {
  await t.step('401 is down without the token', async () => {
    await withPeer(() => managementApi(healthy), async (url) => {
      const result = await runProbe(supabaseManagementProbe, { api_url: url, project_ref: REF }, {
        secrets: { VIGIL_SUPABASE_ACCESS_TOKEN: 'sbp_wrong_token_0000000000' },
      })
      assert.deepEqual([result.status, result.error], ['down', 'access token rejected (HTTP 401)'])
      assertNoSecrets(result, ['sbp_wrong_token_0000000000'])
    })
  })
  await t.step('a body that is not the documented shape', async () => {
    for (const body of ['{"status":"ok"}', '[{"name":"db","status":"GREEN"}]', 'not json']) {
      await withPeer(() => managementApi(() => new Response(body)), async (url) => {
        const result = await runProbe(supabaseManagementProbe, { api_url: url, project_ref: REF }, {
          secrets: mgmtSecrets,
        })
        assert.equal(result.status, 'down', body)
        assert.match(result.error ?? '', /^unexpected response from the Management API/)
      })
    }
  })
  await t.step('a requested service without a status', async () => {
    await withPeer(
      () => managementApi((s) => healthy(s.filter((n) => n !== 'pooler'))),
      async (url) => {
        const result = await runProbe(supabaseManagementProbe, { api_url: url, project_ref: REF }, {
          secrets: mgmtSecrets,
        })
        assert.deepEqual([result.status, result.error], [
          'degraded',
          'no status reported for: pooler',
        ])
      },
    )
  })
  await t.step('a missing secret', async () => {
    const result = await runProbe(supabaseManagementProbe, { project_ref: REF }, { secrets: {} })
    assert.deepEqual([result.status, result.error], [
      'down',
      'secret VIGIL_SUPABASE_ACCESS_TOKEN is not set',
    ])
  })
})
