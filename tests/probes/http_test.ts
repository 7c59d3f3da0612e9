// The http probe against real local servers (Deno.serve on 127.0.0.1, free ports): every rule of
// the probe, including redirects, body caps, secrets, timeouts and TLS (certificates made here).
import assert from 'node:assert/strict'
import postgres from 'postgres'
import {
  ERROR_SAMPLES,
  httpProbe,
  readCertificateExpiry,
} from '../../supabase/functions/_shared/probes/http.ts'
import type { ProbeContext, ProbeResult } from '../../supabase/functions/_shared/probes/types.ts'
import { resolveThresholds } from '../../shared/thresholds.ts'

interface RunOptions {
  secrets?: Record<string, string>
  signal?: AbortSignal
  fetch?: typeof fetch
  thresholds?: Record<string, number>
}

/** Runs the probe with a context as the health-check function builds one. */
async function probe(
  config: Record<string, unknown>,
  options: RunOptions = {},
): Promise<ProbeResult> {
  const db = postgres('postgres://unused@127.0.0.1:1/x', { max: 1 }) // never queried: connects lazily
  const ctx: ProbeContext = {
    service: {
      id: '00000000-0000-4000-8000-000000000001',
      name: 'test api',
      kind: 'http',
      environment: 'dev',
    },
    thresholds: resolveThresholds(options.thresholds ?? {}),
    signal: options.signal ?? new AbortController().signal,
    secret: (name) => options.secrets?.[name],
    projectUrl: 'http://127.0.0.1:54321',
    db,
    fetch: options.fetch ?? fetch,
  }
  try {
    return await httpProbe.run(httpProbe.config.parse(config), ctx)
  } finally {
    await db.end()
  }
}

type Handler = (request: Request) => Response | Promise<Response>

/** Serves `handler` on a free port for the length of `body`. */
async function withServer(
  handler: Handler,
  body: (base: string) => Promise<void>,
  tls?: { cert: string; key: string },
): Promise<void> {
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen() {}, ...tls }, handler)
  try {
    await body(`${tls ? 'https' : 'http'}://127.0.0.1:${server.addr.port}`)
  } finally {
    await server.shutdown()
  }
}

const JSON_DOC = { status: 'ok', version: '1.4.2', data: { items: [{ id: 1, name: 'first' }] } }
const MB = 1_048_576

/** The demo target: one route per behaviour the probe must judge. */
const target: Handler = async (request) => {
  const url = new URL(request.url)
  const [, first, second] = url.pathname.split('/')
  switch (first) {
    case 'ok':
      return new Response('all good here')
    case 'status':
      return new Response(`status ${second}`, { status: Number(second) })
    case 'slow':
      await new Promise((resolve) => setTimeout(resolve, Number(second)))
      return new Response('slow but fine')
    case 'json':
      return Response.json(JSON_DOC)
    case 'html':
      return new Response('<!doctype html><html><body>Bad gateway</body></html>', {
        headers: { 'content-type': 'text/html; charset=utf-8' },
      })
    case 'version':
      return new Response('app build 1.4.2', { headers: { 'x-app-version': '1.4.2' } })
    case 'redirect':
      if (second === 'a') return redirect('/redirect/b', 302)
      if (second === 'b') return redirect(`${url.origin}/ok`, 301)
      break
    case 'loop':
      return redirect(second === '1' ? '/loop/2' : '/loop/1', 302)
    case 'chain':
      return redirect(`/chain/${Number(second) + 1}`, 307)
    case 'see-other':
      return redirect('/method', 303)
    case 'method':
      return new Response(`method ${request.method}`)
    case 'declared-big':
      return new Response(new Uint8Array(10 * MB))
  }
  return new Response('not found', { status: 404 })
}

function redirect(location: string, status: number): Response {
  return new Response(null, { status, headers: { location } })
}

// ---- status, latency, body ---------------------------------------------------------------------

Deno.test('a 200 from a fast endpoint is healthy, with its measurements and duration metric', async () => {
  await withServer(target, async (base) => {
    const result = await probe({ url: `${base}/ok` })
    assert.equal(result.status, 'healthy', result.error)
    assert.equal(result.error, undefined)
    assert.equal(result.measurements.status_code, 200)
    assert.equal(result.measurements.body_bytes, 'all good here'.length)
    assert.deepEqual(result.measurements.redirects, [])
    assert.equal(typeof result.responseMs, 'number')
    assert.equal(result.measurements.response_ms, result.responseMs)
    assert.deepEqual(result.metrics, [{ name: 'http_request_duration', value: result.responseMs }])
    assert.equal('tls_days_left' in result.measurements, false, 'no TLS figures for plain http')
    assert.doesNotThrow(() => JSON.parse(JSON.stringify(result.measurements)))
  })
})

Deno.test('a status outside expected_status is down, naming what came and what was expected', async () => {
  await withServer(target, async (base) => {
    const result = await probe({ url: `${base}/status/404` })
    assert.equal(result.status, 'down')
    assert.equal(result.error, 'got status 404, expected 200')
    assert.equal(result.measurements.status_code, 404)
    assert.equal(result.measurements.body_excerpt, 'status 404')
    assert.equal(result.measurements.error_samples, undefined, 'a 4xx is not asked again')

    const accepted = await probe({ url: `${base}/status/503`, expected_status: [200, 503] })
    assert.equal(accepted.status, 'healthy', accepted.error)
  })
})

/** A target answering the statuses of `script` in turn (then 200), counting requests by method. */
function scripted(script: number[]) {
  const seen: string[] = []
  const handler: Handler = (request) => {
    seen.push(request.method)
    const status = script[seen.length - 1] ?? 200
    return new Response(`status ${status}`, { status })
  }
  return { handler, seen }
}

Deno.test('a 5xx is asked again: most requests failing is an error spike, decisive on this check', async () => {
  const spike = scripted([500, 500, 200, 503, 500])
  await withServer(spike.handler, async (base) => {
    const result = await probe({ url: `${base}/api` })
    assert.equal(result.status, 'down')
    assert.equal(spike.seen.length, 1 + ERROR_SAMPLES)
    assert.deepEqual(result.measurements.error_samples, {
      requests: 5,
      failed: 4,
      error_rate_pct: 80,
    })
    assert.equal(result.measurements.decisive_status, 'down')
    assert.equal(result.error, 'got status 500, expected 200; 4 of 5 requests failed (80 % errors)')
  })
})

Deno.test('a 5xx blip is asked again and stays a plain failure; a POST is never repeated', async () => {
  const blip = scripted([502, 200, 200, 500, 200])
  await withServer(blip.handler, async (base) => {
    const result = await probe({ url: `${base}/api` })
    assert.equal(result.status, 'down')
    assert.deepEqual(result.measurements.error_samples, {
      requests: 5,
      failed: 2,
      error_rate_pct: 40,
    })
    assert.equal(
      result.measurements.decisive_status,
      undefined,
      'under 60 %: the hysteresis decides',
    )
  })
  const post = scripted([500, 500, 500])
  await withServer(post.handler, async (base) => {
    const result = await probe({ url: `${base}/api`, method: 'POST', body: '{}' })
    assert.equal(result.status, 'down')
    assert.deepEqual(post.seen, ['POST'])
    assert.equal(result.measurements.error_samples, undefined)
    assert.equal(result.error, 'got status 500, expected 200')
  })
})

Deno.test('latency is judged against the service band, else the environment thresholds', async () => {
  await withServer(target, async (base) => {
    const warned = await probe({
      url: `${base}/slow/250`,
      latency_warning_ms: 100,
      latency_critical_ms: 5000,
    })
    assert.equal(warned.status, 'degraded')
    assert.match(warned.error!, /^slow: responded in \d+(\.\d)? ms \(warning from 100 ms\)$/)
    assert.ok(warned.responseMs! >= 250)

    const critical = await probe({
      url: `${base}/slow/250`,
      latency_warning_ms: 100,
      latency_critical_ms: 200,
    })
    assert.equal(critical.status, 'down')
    assert.match(critical.error!, /critical above 200 ms/)

    const fromThresholds = await probe({ url: `${base}/slow/250` }, {
      thresholds: { api_p95_warning_ms: 50, api_p95_critical_ms: 100 },
    })
    assert.equal(fromThresholds.status, 'down')
    assert.equal(fromThresholds.measurements.latency_warning_ms, 50)
    assert.equal(fromThresholds.measurements.latency_critical_ms, 100)

    const defaults = await probe({ url: `${base}/ok` })
    assert.equal(defaults.measurements.latency_warning_ms, 200)
    assert.equal(defaults.measurements.latency_critical_ms, 500)
  })
})

Deno.test('body_contains passes when the text is there and is down when it is not', async () => {
  await withServer(target, async (base) => {
    assert.equal((await probe({ url: `${base}/ok`, body_contains: 'all good' })).status, 'healthy')
    const result = await probe({ url: `${base}/ok`, body_contains: 'database: up' })
    assert.equal(result.status, 'down')
    assert.equal(result.error, 'body does not contain "database: up"')
    assert.equal(result.measurements.body_excerpt, 'all good here')
  })
})

Deno.test('json_path and json_equals: match, mismatch, missing path, non-JSON body', async () => {
  await withServer(target, async (base) => {
    const exists = await probe({ url: `${base}/json`, json_path: '$.data.items[0].name' })
    assert.equal(exists.status, 'healthy', exists.error)
    assert.equal(exists.measurements.json_value, 'first')

    const equal = await probe({
      url: `${base}/json`,
      json_path: '$.data.items[0].id',
      json_equals: 1,
    })
    assert.equal(equal.status, 'healthy', equal.error)

    const mismatch = await probe({
      url: `${base}/json`,
      json_path: '$.status',
      json_equals: 'degraded',
    })
    assert.equal(mismatch.status, 'down')
    assert.equal(mismatch.error, '$.status is "ok", expected "degraded"')

    const typed = await probe({
      url: `${base}/json`,
      json_path: '$.data.items[0].id',
      json_equals: '1',
    })
    assert.equal(typed.error, '$.data.items[0].id is 1, expected "1"', 'a number is not its string')

    const missingKey = await probe({ url: `${base}/json`, json_path: '$.data.total' })
    assert.equal(missingKey.status, 'down')
    assert.equal(missingKey.error, 'JSON path $.data.total not found: $.data has no key "total"')

    const missingIndex = await probe({ url: `${base}/json`, json_path: '$.data.items[3].id' })
    assert.equal(
      missingIndex.error,
      'JSON path $.data.items[3].id not found: $.data.items has 1 items',
    )

    const notJson = await probe({ url: `${base}/html`, json_path: '$.status', json_equals: 'ok' })
    assert.equal(notJson.status, 'down')
    assert.match(
      notJson.error!,
      /^body is not valid JSON \(content-type text\/html; charset=utf-8\), so \$\.status cannot be read; body starts "<!doctype html>/,
    )
  })
})

Deno.test('a 10 MB streamed body with the default 1 MiB cap is down and is not read to the end', async () => {
  const chunk = new Uint8Array(65_536).fill(97)
  let produced = 0
  let cancelled = false
  let ended!: Promise<void>
  const handler: Handler = () => {
    let end!: () => void
    ended = new Promise((resolve) => (end = resolve))
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (produced >= 10 * MB) {
          controller.close()
          end()
          return
        }
        produced += chunk.byteLength
        controller.enqueue(chunk)
      },
      cancel() {
        cancelled = true
        end()
      },
    })
    return new Response(body) // no content-length: the probe must count as it streams
  }
  await withServer(handler, async (base) => {
    const result = await probe({ url: `${base}/` })
    assert.equal(result.status, 'down')
    assert.equal(result.error, 'body larger than 1048576 bytes')
    assert.equal(result.measurements.status_code, 200)
    const read = result.measurements.body_bytes as number
    assert.ok(
      read > MB && read < 2 * MB,
      `read ${read} bytes: just past the cap, not the whole body`,
    )
    await ended
    assert.ok(cancelled, 'the probe hung up: the server never got to send the whole body')
    assert.ok(produced < 10 * MB, `server produced ${produced} bytes`)
  })
})

Deno.test('a declared 10 MB body is refused from its content-length without reading it', async () => {
  await withServer(target, async (base) => {
    const result = await probe({ url: `${base}/declared-big`, max_body_bytes: 1024 })
    assert.equal(result.status, 'down')
    assert.equal(result.error, `body larger than 1024 bytes (content-length ${10 * MB})`)
    assert.equal(result.measurements.body_bytes, 0)
  })
})

// ---- redirects ---------------------------------------------------------------------------------

Deno.test('a redirect chain is followed hop by hop and recorded', async () => {
  await withServer(target, async (base) => {
    const result = await probe({ url: `${base}/redirect/a`, body_contains: 'all good' })
    assert.equal(result.status, 'healthy', result.error)
    assert.deepEqual(result.measurements.redirects, [
      { url: `${base}/redirect/a`, status: 302, location: '/redirect/b' },
      { url: `${base}/redirect/b`, status: 301, location: `${base}/ok` },
    ])
    assert.equal(result.measurements.final_url, `${base}/ok`)

    const seeOther = await probe({
      url: `${base}/see-other`,
      method: 'POST',
      body: 'x',
      body_contains: 'method GET',
    })
    assert.equal(seeOther.status, 'healthy', seeOther.error)
  })
})

Deno.test('a redirect loop is down, showing the loop', async () => {
  await withServer(target, async (base) => {
    const result = await probe({ url: `${base}/loop/1` })
    assert.equal(result.status, 'down')
    assert.equal(result.error, `redirect loop: ${base}/loop/1 → ${base}/loop/2 → ${base}/loop/1`)
  })
})

Deno.test('more redirects than max_redirects is down', async () => {
  await withServer(target, async (base) => {
    const result = await probe({ url: `${base}/chain/0`, max_redirects: 3 })
    assert.equal(result.status, 'down')
    assert.equal(result.error, `too many redirects: more than 3 (last to ${base}/chain/4)`)
    assert.equal((result.measurements.redirects as unknown[]).length, 4)
  })
})

Deno.test('without follow_redirects a 3xx is judged by expected_status', async () => {
  await withServer(target, async (base) => {
    const unexpected = await probe({ url: `${base}/redirect/a`, follow_redirects: false })
    assert.equal(unexpected.status, 'down')
    assert.equal(unexpected.error, 'got status 302, expected 200')

    const expected = await probe({
      url: `${base}/redirect/a`,
      follow_redirects: false,
      expected_status: [302],
    })
    assert.equal(expected.status, 'healthy', expected.error)
    assert.deepEqual(expected.measurements.redirects, [])
  })
})

// ---- served version ----------------------------------------------------------------------------

Deno.test('expected_version is read from a header, a JSON path or the body; a stale one is degraded', async () => {
  await withServer(target, async (base) => {
    const header = await probe({
      url: `${base}/version`,
      expected_version: { value: '1.4.2', header: 'x-app-version' },
    })
    assert.equal(header.status, 'healthy', header.error)
    assert.equal(header.measurements.served_version, '1.4.2')

    const staleHeader = await probe({
      url: `${base}/version`,
      expected_version: { value: '1.5.0', header: 'x-app-version' },
    })
    assert.equal(staleHeader.status, 'degraded')
    assert.equal(staleHeader.error, 'serving version 1.4.2, expected 1.5.0')
    assert.equal(staleHeader.measurements.served_version, '1.4.2')

    const noHeader = await probe({
      url: `${base}/ok`,
      expected_version: { value: '1.5.0', header: 'x-app-version' },
    })
    assert.equal(noHeader.status, 'degraded')
    assert.equal(
      noHeader.error,
      'serving an unknown version (no x-app-version header), expected 1.5.0',
    )
    assert.equal(noHeader.measurements.served_version, null)

    const json = await probe({
      url: `${base}/json`,
      expected_version: { value: '1.4.2', json_path: '$.version' },
    })
    assert.equal(json.status, 'healthy', json.error)
    assert.equal(json.measurements.served_version, '1.4.2')

    const staleJson = await probe({
      url: `${base}/json`,
      expected_version: { value: '2.0.0', json_path: '$.version' },
    })
    assert.equal(staleJson.status, 'degraded')
    assert.equal(staleJson.error, 'serving version 1.4.2, expected 2.0.0')

    const jsonOnHtml = await probe({
      url: `${base}/html`,
      expected_version: { value: '2.0.0', json_path: '$.version' },
    })
    assert.equal(jsonOnHtml.status, 'down', 'a JSON assertion on a non-JSON body is down')
    assert.match(jsonOnHtml.error!, /^body is not valid JSON/)

    const body = await probe({ url: `${base}/version`, expected_version: { value: '1.4.2' } })
    assert.equal(body.status, 'healthy', body.error)
    assert.equal(body.measurements.served_version, '1.4.2')

    const staleBody = await probe({ url: `${base}/version`, expected_version: { value: '1.5.0' } })
    assert.equal(staleBody.status, 'degraded')
    assert.equal(
      staleBody.error,
      'serving an unknown version (body does not mention "1.5.0"), expected 1.5.0',
    )
  })
})

// ---- secrets -----------------------------------------------------------------------------------

const BEARER = 'Bearer vigil-test-s3cr3t-token'
const API_KEY = 'vigil-test-api-key-0042'

Deno.test('header_secrets are sent, and appear in no measurement or error even when echoed back', async () => {
  const received: Headers[] = []
  const echo: Handler = (request) => {
    received.push(request.headers)
    const path = new URL(request.url).pathname
    if (path === '/echo') {
      return new Response(`denied: ${request.headers.get('authorization')}`, { status: 401 })
    }
    return new Response(`hello ${request.headers.get('x-api-key')}`)
  }
  await withServer(echo, async (base) => {
    const config = {
      url: `${base}/ok`,
      headers: { 'x-plain': 'visible' },
      header_secrets: { authorization: 'VIGIL_TEST_BEARER', 'x-api-key': 'VIGIL_TEST_API_KEY' },
      body_contains: 'no such text',
    }
    const secrets = { VIGIL_TEST_BEARER: BEARER, VIGIL_TEST_API_KEY: API_KEY }
    const failing = await probe(config, { secrets })
    const denied = await probe({ ...config, url: `${base}/echo`, body_contains: undefined }, {
      secrets,
    })

    assert.equal(received.length, 2)
    for (const headers of received) {
      assert.equal(headers.get('authorization'), BEARER)
      assert.equal(headers.get('x-api-key'), API_KEY)
      assert.equal(headers.get('x-plain'), 'visible')
    }
    assert.equal(failing.status, 'down')
    assert.equal(failing.measurements.body_excerpt, 'hello [redacted]')
    assert.equal(denied.status, 'down')
    assert.equal(denied.measurements.body_excerpt, 'denied: [redacted]')
    for (const result of [failing, denied]) {
      const text = JSON.stringify(result)
      assert.ok(!text.includes(API_KEY) && !text.includes('vigil-test-s3cr3t-token'), text)
    }
  })
})

Deno.test('secret headers follow same-origin redirects but are dropped on a cross-origin one', async () => {
  const seen: Record<string, string | null>[] = []
  const record: Handler = (request) => {
    seen.push({ path: new URL(request.url).pathname, key: request.headers.get('x-api-key') })
    return new Response('landed')
  }
  await withServer(record, async (other) => {
    const hopping: Handler = (request) => {
      const path = new URL(request.url).pathname
      if (path === '/away') return redirect(`${other}/landing`, 302)
      if (path === '/here') return redirect('/there', 302)
      return record(request)
    }
    await withServer(hopping, async (base) => {
      const config = { header_secrets: { 'x-api-key': 'VIGIL_TEST_API_KEY' } }
      const secrets = { VIGIL_TEST_API_KEY: API_KEY }
      assert.equal((await probe({ ...config, url: `${base}/here` }, { secrets })).status, 'healthy')
      assert.equal((await probe({ ...config, url: `${base}/away` }, { secrets })).status, 'healthy')
    })
  })
  assert.deepEqual(seen, [{ path: '/there', key: API_KEY }, { path: '/landing', key: null }])
})

Deno.test('a missing secret is down, naming the secret, and no request is sent', async () => {
  let requests = 0
  await withServer(() => (requests++, new Response('ok')), async (base) => {
    const result = await probe({
      url: `${base}/`,
      header_secrets: { authorization: 'VIGIL_TEST_MISSING' },
    })
    assert.equal(result.status, 'down')
    assert.equal(result.error, 'secret VIGIL_TEST_MISSING (for header authorization) is not set')
  })
  assert.equal(requests, 0)
})

// ---- network failures --------------------------------------------------------------------------

/** A port nothing listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const { port } = listener.addr
  listener.close()
  return port
}

Deno.test('a refused connection is down', async () => {
  const port = closedPort()
  const result = await probe({ url: `http://127.0.0.1:${port}/health` })
  assert.equal(result.status, 'down')
  assert.equal(result.error, `connection refused by 127.0.0.1:${port}`)
  assert.equal(result.responseMs, undefined)
})

Deno.test('a host that does not resolve is a DNS failure', async () => {
  const result = await probe({ url: 'http://vigil-http-probe.invalid/health' })
  assert.equal(result.status, 'down')
  assert.equal(result.error, 'DNS lookup failed for host vigil-http-probe.invalid')
})

Deno.test('a server that never answers is down promptly once the signal aborts', async () => {
  const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 }) // accepts in the kernel, never replies
  const controller = new AbortController()
  const timer = setTimeout(
    () => controller.abort(new DOMException('probe timeout', 'TimeoutError')),
    300,
  )
  try {
    const started = Date.now()
    const result = await probe({ url: `http://127.0.0.1:${listener.addr.port}/` }, {
      signal: controller.signal,
    })
    assert.equal(result.status, 'down')
    assert.match(result.error!, /^no response within the timeout \(gave up after \d+ ms\)$/)
    assert.ok(Date.now() - started < 5000, 'returns when aborted, not when the server gives up')
  } finally {
    clearTimeout(timer)
    listener.close()
  }
})

Deno.test('a body that stalls after the headers stops being read when the signal aborts', async () => {
  const controller = new AbortController()
  let release!: () => void
  const stalled = new Promise<void>((resolve) => (release = resolve))
  const handler: Handler = () =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode('partial'))
          setTimeout(() => controller.abort(), 100)
        },
        pull: () => stalled,
        cancel: () => release(),
      }),
    )
  await withServer(handler, async (base) => {
    const result = await probe({ url: `${base}/` }, { signal: controller.signal })
    assert.equal(result.status, 'down')
    assert.match(result.error!, /^body not complete within the timeout/)
    release()
  })
})

// ---- TLS ---------------------------------------------------------------------------------------

interface TestCerts {
  /** A test CA, and a 5-day leaf for localhost/127.0.0.1 it signed. */
  ca: string
  leafCert: string
  leafKey: string
  /** `openssl req -x509` output: self-signed, trusted by nobody. */
  selfCert: string
  selfKey: string
  leafNotAfter: Date
}

async function openssl(dir: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command('openssl', {
    args,
    cwd: dir,
    stdout: 'piped',
    stderr: 'piped',
  }).output()
  if (!out.success) {
    throw new Error(`openssl ${args.join(' ')}: ${new TextDecoder().decode(out.stderr)}`)
  }
  return new TextDecoder().decode(out.stdout)
}

async function makeCerts(): Promise<TestCerts> {
  const dir = await Deno.makeTempDir({ prefix: 'vigil-http-probe-' })
  try {
    await openssl(
      dir,
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '5',
      '-subj',
      '/CN=localhost',
      '-keyout',
      'self.key',
      '-out',
      'self.pem',
    )
    await openssl(
      dir,
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '30',
      '-subj',
      '/CN=Vigil Test CA',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
    )
    await openssl(
      dir,
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-keyout',
      'leaf.key',
      '-out',
      'leaf.csr',
    )
    await Deno.writeTextFile(
      `${dir}/leaf.ext`,
      'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
    )
    await openssl(
      dir,
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-set_serial',
      '1',
      '-days',
      '5',
      '-extfile',
      'leaf.ext',
      '-out',
      'leaf.pem',
    )
    const endDate = (await openssl(dir, 'x509', '-noout', '-enddate', '-in', 'leaf.pem')).trim()
      .replace('notAfter=', '')
    const read = (name: string) => Deno.readTextFile(`${dir}/${name}`)
    return {
      ca: await read('ca.pem'),
      leafCert: await read('leaf.pem'),
      leafKey: await read('leaf.key'),
      selfCert: await read('self.pem'),
      selfKey: await read('self.key'),
      leafNotAfter: new Date(endDate),
    }
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
}

let certs: Promise<TestCerts> | undefined
const testCerts = () => (certs ??= makeCerts())

/** A fetch that trusts the test CA, as ctx.fetch. */
function trustingFetch(ca: string): { fetch: typeof fetch; close(): void } {
  const client = Deno.createHttpClient({ caCerts: [ca] })
  return {
    fetch: (input, init) => fetch(input, { ...init, client }),
    close: () => client.close(),
  }
}

Deno.test('a self-signed certificate is a TLS error, down', async () => {
  const { selfCert, selfKey } = await testCerts()
  await withServer(target, async (base) => {
    const result = await probe({ url: `${base}/ok` })
    assert.equal(result.status, 'down')
    assert.match(result.error!, /^TLS error: certificate of 127\.0\.0\.1 is (a )?self-signed/)
  }, { cert: selfCert, key: selfKey })
})

Deno.test('a trusted certificate 5 days from expiry gives tls_days_left 4 or 5 and is degraded', async () => {
  const { ca, leafCert, leafKey, leafNotAfter } = await testCerts()
  const trusting = trustingFetch(ca)
  try {
    await withServer(target, async (base) => {
      const result = await probe({ url: `${base}/ok` }, { fetch: trusting.fetch })
      assert.equal(result.status, 'degraded', result.error)
      const days = result.measurements.tls_days_left as number
      assert.ok(days === 4 || days === 5, `tls_days_left ${days}`)
      assert.equal(result.measurements.tls_expires_at, leafNotAfter.toISOString())
      assert.equal(result.measurements.tls_source, 'node:tls')
      assert.equal(
        result.error,
        `TLS certificate expires in ${days} days (${leafNotAfter.toISOString()})`,
      )
      assert.deepEqual(result.metrics?.find((m) => m.name === 'tls_days_left'), {
        name: 'tls_days_left',
        value: days,
      })

      const critical = await probe({
        url: `${base}/ok`,
        tls_warning_days: 30,
        tls_critical_days: 10,
      }, { fetch: trusting.fetch })
      assert.equal(critical.status, 'down')

      const relaxed = await probe(
        { url: `${base}/ok`, tls_warning_days: 2, tls_critical_days: 1 },
        { fetch: trusting.fetch },
      )
      assert.equal(relaxed.status, 'healthy', relaxed.error)
      assert.equal(relaxed.measurements.tls_days_left, days)
    }, { cert: leafCert, key: leafKey })
  } finally {
    trusting.close()
  }
})

Deno.test('certificate expiry reads the same through node:tls and a bare TLS 1.2 handshake', async () => {
  const { leafCert, leafKey, leafNotAfter } = await testCerts()
  await withServer(target, async (base) => {
    const signal = new AbortController().signal
    for (const host of [base, base.replace('127.0.0.1', 'localhost')]) {
      for (const via of ['node:tls', 'tls1.2-handshake'] as const) {
        const expiry = await readCertificateExpiry(new URL(host), signal, via)
        assert.deepEqual(expiry, { expiresAt: leafNotAfter, via }, `${via} on ${host}`)
      }
    }
  }, { cert: leafCert, key: leafKey })
})

Deno.test('an unreadable certificate expiry never fails the probe by itself: null with a note', async () => {
  await withServer(target, async (base) => {
    // Plain http on the port: the request succeeds over http, the TLS read cannot.
    const expiry = await readCertificateExpiry(
      new URL(base.replace('http:', 'https:')),
      new AbortController().signal,
    )
    assert.ok('error' in expiry)
    assert.match(expiry.error, /node:tls: .+; TLS 1\.2 handshake: .+/)
  })
  const port = closedPort()
  const result = await probe({ url: `https://127.0.0.1:${port}/` })
  assert.equal(result.status, 'down')
  assert.equal(
    result.error,
    `connection refused by 127.0.0.1:${port}`,
    'the TLS note is not an error',
  )
  assert.equal(result.measurements.tls_days_left, null)
  assert.match(result.measurements.tls_note as string, /^certificate expiry not checked: /)
})
