import assert from 'node:assert/strict'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Gateway, type GatewayOptions, startGateway } from '../../devstack/gateway.ts'
import { signJwt } from '../../devstack/jwt.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures', import.meta.url))
const FUNCTIONS_DIR = join(FIXTURES, 'functions')
const JWT_SECRET = 'gateway-test-secret-with-at-least-32-characters'
const DB_PASSWORD = 'db-password-only-the-function-knows'
const FIXTURE_SECRET = 'fixture-secret-from-the-env-file'
const FUNCTION_ENV = {
  SUPABASE_URL: 'http://127.0.0.1:54321',
  SUPABASE_DB_URL: `postgresql://postgres:${DB_PASSWORD}@127.0.0.1:1/postgres`,
  SUPABASE_ANON_KEY: 'anon-key-for-tests',
  SUPABASE_SERVICE_ROLE_KEY: 'service-role-key-for-tests',
}

interface TestGateway extends Gateway {
  logs: string[]
  fetch(path: string, init?: RequestInit): Promise<Response>
}

async function withGateway(
  overrides: Partial<GatewayOptions>,
  test: (gateway: TestGateway) => Promise<void>,
): Promise<void> {
  const envFile = await Deno.makeTempFile({ suffix: '.env' })
  await Deno.writeTextFile(
    envFile,
    `# functions' own secrets\nFIXTURE_SECRET="${FIXTURE_SECRET}"\nSUPABASE_URL=http://not-allowed.example\n`,
  )
  const logs: string[] = []
  const gateway = await startGateway({
    port: 0,
    functionsDir: FUNCTIONS_DIR,
    configToml: join(FIXTURES, 'config.toml'),
    jwtSecret: JWT_SECRET,
    env: FUNCTION_ENV,
    envFile,
    startTimeoutMs: 20_000,
    log: (line) => logs.push(line),
    ...overrides,
  })
  try {
    await test({ ...gateway, logs, fetch: (path, init) => fetch(`${gateway.url}${path}`, init) })
  } finally {
    await gateway.stop()
    await Deno.remove(envFile)
  }
}

async function json(response: Response): Promise<any> {
  assert.match(response.headers.get('content-type') ?? '', /application\/json/)
  return await response.json()
}

async function echo(gateway: TestGateway, path = '/functions/v1/echo', init?: RequestInit) {
  const response = await gateway.fetch(path, init)
  assert.equal(response.status, 200, await response.clone().text())
  return await json(response)
}

/** Live (not zombie) processes whose command line mentions the fixture functions. */
async function fixtureWorkerPids(): Promise<number[]> {
  const pids: number[] = []
  for await (const entry of Deno.readDir('/proc')) {
    if (!/^\d+$/.test(entry.name)) continue
    try {
      const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`)
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`)
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
      if (
        cmdline.includes('function-host.ts') && cmdline.includes(FUNCTIONS_DIR) && state !== 'Z'
      ) {
        pids.push(Number(entry.name))
      }
    } catch {
      // The process ended while we looked.
    }
  }
  return pids
}

async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

const processExists = async (pid: number) => {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`)
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

Deno.test('GET /health answers ok; unknown routes are 404 JSON', async () => {
  await withGateway({}, async (gateway) => {
    const health = await gateway.fetch('/health')
    assert.equal(health.status, 200)
    assert.deepEqual(await json(health), { status: 'ok' })
    const other = await gateway.fetch('/rest/v1/things')
    assert.equal(other.status, 404)
    assert.equal((await json(other)).code, 'NOT_FOUND')
  })
})

Deno.test('unknown, private and empty function names are 404; invalid names are 400', async () => {
  await withGateway({}, async (gateway) => {
    for (const path of ['/functions/v1/nope', '/functions/v1/_shared', '/functions/v1/']) {
      const response = await gateway.fetch(path)
      assert.equal(response.status, 404, path)
      assert.deepEqual(await json(response), {
        code: 'NOT_FOUND',
        message: 'Requested function was not found',
      })
    }
    for (const path of ['/functions/v1/ech%6f', '/functions/v1/a.b', '/functions/v1/%2e%2fecho']) {
      const response = await gateway.fetch(path)
      assert.equal(response.status, 400, path)
      assert.equal((await json(response)).code, 'BAD_REQUEST')
    }
  })
})

Deno.test('verify_jwt defaults to true: no token 401, bad token 401, good token 200', async () => {
  await withGateway({}, async (gateway) => {
    const missing = await gateway.fetch('/functions/v1/secure')
    assert.equal(missing.status, 401)
    assert.deepEqual(await json(missing), { code: 401, message: 'Missing authorization header' })

    const wrongSecret = await signJwt({ role: 'anon' }, 'some-other-secret-with-32-characters!!')
    const expired = await signJwt(
      { role: 'anon', exp: Math.floor(Date.now() / 1000) - 10 },
      JWT_SECRET,
    )
    for (
      const authorization of [
        `Bearer ${wrongSecret}`,
        `Bearer ${expired}`,
        'Bearer x.y.z',
        'Basic abc',
      ]
    ) {
      const response = await gateway.fetch('/functions/v1/secure', { headers: { authorization } })
      assert.equal(response.status, 401)
      const body = await response.text()
      assert.deepEqual(JSON.parse(body), { code: 401, message: 'Invalid JWT' })
      assert.ok(!body.includes(authorization.slice(7)), 'the token must not be echoed')
    }

    const token = await signJwt({ role: 'anon' }, JWT_SECRET)
    const ok = await gateway.fetch('/functions/v1/secure', {
      headers: { authorization: `Bearer ${token}` },
    })
    assert.equal(ok.status, 200)
    assert.equal(await ok.text(), 'secret stuff')
    assert.ok(gateway.logs.includes('[fn secure] secure listening'), gateway.logs.join('\n'))
  })
})

Deno.test('CORS preflight reaches a verify_jwt function without a token', async () => {
  await withGateway({}, async (gateway) => {
    const response = await gateway.fetch('/functions/v1/secure', { method: 'OPTIONS' })
    assert.equal(response.status, 200)
    assert.equal(await response.text(), 'secret stuff')
  })
})

Deno.test('verify_jwt = false lets a request without a token through', async () => {
  await withGateway({}, async (gateway) => {
    assert.equal((await echo(gateway)).method, 'GET')
  })
})

Deno.test('method, path, query, headers and body pass through; upstream headers come back', async () => {
  await withGateway({}, async (gateway) => {
    const response = await gateway.fetch('/functions/v1/echo/items/42?limit=5&tag=a%20b', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-custom': 'kept' },
      body: JSON.stringify({ hello: 'world' }),
    })
    assert.equal(response.status, 200)
    assert.equal(response.headers.get('x-vigil-function'), 'echo')
    assert.equal(response.headers.get('x-fixture'), 'yes')
    const received = await json(response)
    assert.equal(received.method, 'POST')
    assert.equal(received.path, '/echo/items/42')
    assert.equal(received.query, '?limit=5&tag=a%20b')
    assert.equal(received.headers['x-custom'], 'kept')
    assert.equal(received.headers['content-type'], 'application/json')
    assert.equal(received.body, '{"hello":"world"}')
  })
})

Deno.test('a streamed request body reaches the function whole', async () => {
  await withGateway({}, async (gateway) => {
    const chunks = ['first,', 'second,', 'third']
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk))
        controller.close()
      },
    })
    const received = await echo(gateway, '/functions/v1/echo', { method: 'PUT', body })
    assert.equal(received.body, chunks.join(''))
  })
})

Deno.test('functions get the gateway env and the env file, not the parent env', async () => {
  await withGateway({}, async (gateway) => {
    const received = await echo(gateway)
    for (const name of Object.keys(FUNCTION_ENV)) assert.ok(received.envNames.includes(name), name)
    assert.equal(received.fixtureSecret, FIXTURE_SECRET)
    const allowed = new Set([
      ...Object.keys(FUNCTION_ENV),
      'FIXTURE_SECRET',
      'PATH',
      'HOME',
      'DENO_DIR',
      'XDG_CACHE_HOME',
      'NPM_CONFIG_REGISTRY',
      'HTTP_PROXY',
      'HTTPS_PROXY',
      'NO_PROXY',
      'NO_COLOR',
      'DENO_CERT',
      'DENO_TLS_CA_STORE',
    ])
    assert.deepEqual(received.envNames.filter((name: string) => !allowed.has(name)), [])
    assert.ok(gateway.logs.some((line) => line.includes('skipping SUPABASE_URL')))
  })
})

Deno.test('functions may write to /tmp only', async () => {
  await withGateway({}, async (gateway) => {
    const received = await echo(gateway, '/functions/v1/echo/try-write')
    assert.equal(received.insideTmp, 'allowed')
    assert.equal(received.outsideTmp, 'NotCapable')
  })
})

Deno.test('concurrent first requests share one cold start', async () => {
  await withGateway({}, async (gateway) => {
    const answers = await Promise.all(Array.from({ length: 6 }, () => echo(gateway)))
    assert.equal(new Set(answers.map((answer) => answer.pid)).size, 1)
    assert.equal((await fixtureWorkerPids()).length, 1)
  })
})

Deno.test('a function that throws at import is a 503 naming it, without secrets', async () => {
  await withGateway({}, async (gateway) => {
    const response = await gateway.fetch('/functions/v1/boom')
    assert.equal(response.status, 503)
    const body = await response.text()
    const { code, message } = JSON.parse(body)
    assert.equal(code, 'BOOT_ERROR')
    assert.match(message, /^Function "boom" failed to start: /)
    assert.match(message, /cannot connect with/)
    assert.match(message, /\[redacted\]/)
    for (const secret of [DB_PASSWORD, FIXTURE_SECRET, FUNCTION_ENV.SUPABASE_DB_URL]) {
      assert.ok(!body.includes(secret), `response leaks ${secret}`)
    }
    // A failed start is not cached: the next request tries again.
    const again = await gateway.fetch('/functions/v1/boom')
    assert.equal(again.status, 503)
    await again.body?.cancel()
    assert.deepEqual(await fixtureWorkerPids(), [])
  })
})

Deno.test('a function that never calls Deno.serve fails its cold start in time', async () => {
  await withGateway({ startTimeoutMs: 1_500 }, async (gateway) => {
    const response = await gateway.fetch('/functions/v1/idle')
    assert.equal(response.status, 503)
    assert.match((await json(response)).message, /did not call Deno\.serve within 1500 ms/)
  })
})

Deno.test('a request over the wall clock limit is a 504', async () => {
  await withGateway({ wallClockLimitMs: 1_000 }, async (gateway) => {
    const started = Date.now()
    const response = await gateway.fetch('/functions/v1/slow')
    assert.equal(response.status, 504)
    assert.equal((await json(response)).code, 'WALL_CLOCK_LIMIT')
    assert.ok(Date.now() - started < 10_000)
  })
})

Deno.test('EdgeRuntime.waitUntil finishes background work and logs its failures', async () => {
  await withGateway({}, async (gateway) => {
    const accepted = await gateway.fetch('/functions/v1/bg', { method: 'POST' })
    assert.equal(accepted.status, 202)
    await accepted.body?.cancel()
    await waitUntil(async () =>
      (await (await gateway.fetch('/functions/v1/bg/count')).text()) === '1'
    )
    await waitUntil(() =>
      gateway.logs.some((line) =>
        line.startsWith('[fn bg] ') && line.includes('background task failed on purpose')
      )
    )
  })
})

Deno.test('a worker that died is restarted on the next request', async () => {
  await withGateway({}, async (gateway) => {
    const { pid } = await echo(gateway)
    Deno.kill(pid, 'SIGKILL')
    await waitUntil(async () => !(await processExists(pid)))
    await waitUntil(() => gateway.logs.some((line) => line.includes('[fn echo] worker exited')))
    const restarted = await echo(gateway)
    assert.notEqual(restarted.pid, pid)
  })
})

Deno.test('stop() leaves no function processes behind', async () => {
  const logs: string[] = []
  const gateway = await startGateway({
    port: 0,
    functionsDir: FUNCTIONS_DIR,
    configToml: join(FIXTURES, 'config.toml'),
    jwtSecret: JWT_SECRET,
    env: FUNCTION_ENV,
    envFile: join(FIXTURES, 'missing.env'),
    log: (line) => logs.push(line),
  })
  const token = await signJwt({ role: 'service_role' }, JWT_SECRET)
  for (const name of ['echo', 'secure', 'bg']) {
    const response = await fetch(`${gateway.url}/functions/v1/${name}`, {
      headers: { authorization: `Bearer ${token}` },
    })
    assert.ok(response.ok, name)
    await response.body?.cancel()
  }
  const slow = fetch(`${gateway.url}/functions/v1/slow`)
  await waitUntil(async () => (await fixtureWorkerPids()).length === 4)
  await gateway.stop()
  const hung = await slow
  assert.ok(hung.status >= 500)
  await hung.body?.cancel()
  assert.deepEqual(await fixtureWorkerPids(), [])
})

Deno.test('a function scaled out gives concurrent requests workers of their own, up to its cap', async () => {
  await withGateway({ maxWorkers: { echo: 3 } }, async (gateway) => {
    // Each request holds its worker until its body ends: four at once, with a cap of three.
    const bodies = Array.from({ length: 4 }, () => Promise.withResolvers<void>())
    const answers = bodies.map(({ promise }) =>
      gateway.fetch('/functions/v1/echo', {
        method: 'POST',
        body: new ReadableStream<Uint8Array>({
          async start(controller) {
            controller.enqueue(new TextEncoder().encode('held'))
            await promise
            controller.close()
          },
        }),
        // @ts-ignore: Deno's fetch takes a streamed body with duplex half
        duplex: 'half',
      }).then(json)
    )
    for (let i = 0; i < 100 && gateway.workerPids('echo').length < 3; i++) {
      await new Promise((r) => setTimeout(r, 100))
    }
    assert.equal(gateway.workerPids('echo').length, 3)
    for (const { resolve } of bodies) resolve()
    const pids = (await Promise.all(answers)).map((answer) => answer.pid)
    assert.equal(new Set(pids).size, 3, 'three workers, the fourth request shared one')
    assert.equal((await fixtureWorkerPids()).length, 3)
    // An idle worker serves the next request: no fourth process.
    assert.ok(pids.includes((await echo(gateway)).pid))
    assert.equal(gateway.workerPids('echo').length, 3)
  })
})
