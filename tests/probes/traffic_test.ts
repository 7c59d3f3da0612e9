// The traffic probe against the local stand-in of the Logs API (devstack/logs-api.ts, served over
// HTTP here): real traffic is judged once there is enough of it, an error spike names its top error
// with its share and the most failing endpoint, Auth's token success and RLS refusals are read,
// and every refusal of the endpoint is said in words without the token.
import assert from 'node:assert/strict'
import { resolveThresholds } from '../../shared/thresholds.ts'
import {
  createLogsApi,
  type LogEvent,
  type LogsApi,
  postgresLogRow,
} from '../../devstack/logs-api.ts'
import { trafficProbe } from '../../supabase/functions/_shared/probes/traffic.ts'
import { assertNoSecrets, runProbe } from './_harness.ts'

const TOKEN = 'sbp_traffic_test_token_0123456789abcdef0123'
const REF = 'abcdefghijklmnopqrst'
const secrets = { VIGIL_SUPABASE_ACCESS_TOKEN: TOKEN }

async function withStandIn(fn: (url: string, api: LogsApi) => Promise<void>) {
  const api = createLogsApi({ token: TOKEN, projectRef: REF })
  const server = Deno.serve(
    { hostname: '127.0.0.1', port: 0, onListen: () => {} },
    async (req) => (await api.handle(req, new URL(req.url))) ?? new Response('no', { status: 404 }),
  )
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, api)
  } finally {
    await server.shutdown()
  }
}

function requests(n: number, method: string, path: string, status: number, ms = 40) {
  return Array.from({ length: n }, (): Partial<LogEvent> => ({
    source: 'edge_logs',
    log_attributes: {
      'request.method': method,
      'request.path': path,
      'response.status_code': String(status),
      'response.origin_time': String(ms),
    },
  }))
}

function functionErrors(n: number, message: string) {
  return Array.from({ length: n }, (): Partial<LogEvent> => ({
    source: 'function_logs',
    event_message: message,
    severity_text: 'ERROR',
    log_attributes: { function_id: 'checkout', level: 'error' },
  }))
}

Deno.test('traffic: healthy traffic sets the baseline; a 5xx spike names its top error with its share and the most failing endpoint', async () => {
  await withStandIn(async (url, api) => {
    const config = { api_url: url, project_ref: REF }
    api.ingest(requests(150, 'GET', '/rest/v1/orders', 200))
    // The function's calls as the gateway tells them: edge_logs and function_edge_logs both.
    for (let i = 0; i < 50; i++) {
      api.gatewayRequest({ method: 'POST', path: '/functions/v1/checkout', status: 200, ms: 120 })
    }
    const calm = await runProbe(trafficProbe, config, { secrets })
    assert.equal(calm.status, 'healthy', calm.error)
    assert.equal(calm.measurements.requests, 200)
    assert.equal(calm.measurements.requests_per_minute, 40)
    assert.equal(calm.measurements.error_rate_pct, 0)
    assert.equal(calm.measurements.baseline_error_rate_pct, 0)
    assert.equal(calm.measurements.judged, true)
    assert.deepEqual(
      calm.metrics?.map((m) => [m.name, m.value]),
      [['throughput', 40], ['error_rate', 0], ['http_request_duration', 120]],
    )
    const functions = calm.measurements.functions as { function_id: string; requests: number }[]
    assert.deepEqual(functions.map((f) => [f.function_id, f.requests]), [['checkout', 50]])
    // What the endpoint was asked: the four named queries over the last five minutes.
    const asked = api.queries()
    assert.deepEqual(asked.map((q) => q.name).sort(), [
      'traffic endpoints',
      'traffic errors',
      'traffic functions',
      'traffic totals',
    ])
    const span = Date.parse(asked[0].end) - Date.parse(asked[0].start)
    assert.equal(span, 5 * 60_000)

    api.ingest([
      ...requests(60, 'POST', '/rest/v1/orders', 503),
      ...functionErrors(34, 'Error: Database connection refused'),
      ...functionErrors(16, 'TypeError: cannot read properties of undefined (reading "id")'),
    ])
    const spike = await runProbe(trafficProbe, config, { secrets, previous: calm.measurements })
    assert.equal(spike.status, 'down')
    assert.equal(
      spike.error,
      '5xx on 23.1 % of 260 API requests in 5 min (warning from 0.1 %, critical from 1 %; baseline 0 %); ' +
        'top error: Error: Database connection refused — 68 % of 50 error lines; ' +
        'most failing: POST /rest/v1/orders (60 of 60)',
    )
    const top = spike.measurements.top_errors as { message: string; share_pct: number }[]
    assert.deepEqual(top.map((t) => t.share_pct), [68, 32])
    // A spike is not normal: the baseline keeps what healthy checks taught it.
    assert.equal(spike.measurements.baseline_error_rate_pct, 0)
    assertNoSecrets(spike, [TOKEN])
  })
})

Deno.test('traffic: too little traffic is noted, not judged; Auth token failures and RLS refusals are read', async () => {
  await withStandIn(async (url, api) => {
    const config = { api_url: url, project_ref: REF }
    api.ingest(requests(10, 'GET', '/rest/v1/orders', 500))
    const quiet = await runProbe(trafficProbe, config, { secrets })
    assert.equal(quiet.status, 'healthy')
    assert.equal(
      quiet.measurements.not_judged,
      '10 API requests in 5 min, fewer than min_requests (50)',
    )
    assert.ok(!quiet.metrics?.some((m) => m.name === 'error_rate'), 'no rate from 10 requests')

    const token = (status: string) => ({
      source: 'auth_logs' as const,
      log_attributes: {
        path: '/token',
        status,
        error: status === '200' ? '' : 'Invalid Refresh Token: Refresh Token Not Found',
      },
    })
    api.ingest([
      ...Array.from({ length: 8 }, () => token('200')),
      ...Array.from({ length: 12 }, () => token('400')),
      postgresLogRow(
        '2026-12-03 10:00:00.000 UTC [4242] 42501 app@postgres ERROR:  new row violates row-level security policy for table "visits"',
      )!,
    ].map((e) => ({ ...e, timestamp: new Date().toISOString() })))
    const hurt = await runProbe(trafficProbe, config, { secrets })
    assert.equal(hurt.status, 'down')
    assert.match(
      hurt.error!,
      /^Auth: 40 % of 20 token requests succeeded \(warning below 90 %\); 12 refresh-token failures; 1 row-level security or permission refusal on visits$/,
    )
    assert.deepEqual(hurt.measurements.rls_violations, { count: 1, tables: ['visits'] })
    assert.deepEqual(hurt.metrics?.find((m) => m.name === 'login_success_rate')?.value, 40)

    // Thresholds come from the environment: a team that tolerates 50 % errors is not paged.
    api.ingest(requests(60, 'GET', '/rest/v1/orders', 200))
    const lenient = await runProbe(trafficProbe, {
      ...config,
      auth_success_warning_pct: 30,
      auth_success_critical_pct: 10,
      rls_violations_warning: 5,
    }, {
      secrets,
      thresholds: {
        ...resolveThresholds(),
        error_rate_warning_pct: 50,
        error_rate_critical_pct: 60,
      },
    })
    assert.equal(lenient.status, 'healthy', lenient.error)
  })
})

Deno.test('traffic: a wrong token, an unknown project, a 429 and rows of another shape are said in words, never with the token', async () => {
  await withStandIn(async (url) => {
    const wrong = await runProbe(trafficProbe, { api_url: url, project_ref: REF }, {
      secrets: { VIGIL_SUPABASE_ACCESS_TOKEN: 'sbp_wrong' },
    })
    assert.equal(wrong.status, 'down')
    assert.equal(
      wrong.error,
      'access token in VIGIL_SUPABASE_ACCESS_TOKEN rejected by the logs endpoint (HTTP 401)',
    )
    const unknown = await runProbe(trafficProbe, {
      api_url: url,
      project_ref: 'zzzzzzzzzzzzzzzzzzzz',
    }, { secrets })
    assert.match(
      unknown.error!,
      /^logs endpoint answered HTTP 404 \(1 attempts\): .*Project not found/,
    )
    const unset = await runProbe(trafficProbe, { api_url: url, project_ref: REF })
    assert.equal(unset.error, 'secret VIGIL_SUPABASE_ACCESS_TOKEN is not set')
    for (const r of [wrong, unknown, unset]) assertNoSecrets(r, [TOKEN])
  })
  // A peer that rate-limits, then answers a shape the probe does not know.
  let calls = 0
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen: () => {} }, () => {
    calls++
    if (calls <= 4) return new Response('{"message":"Too many requests"}', { status: 429 })
    return Response.json({ result: [{ requests: 'many' }] })
  })
  try {
    const config = { api_url: `http://127.0.0.1:${server.addr.port}`, project_ref: REF }
    const odd = await runProbe(trafficProbe, config, {
      secrets,
      previous: { baseline_error_rate_pct: 0.4 },
    })
    assert.equal(odd.status, 'down')
    assert.match(
      odd.error!,
      /^logs endpoint answered the totals query with rows of another shape: 0\.requests: /,
    )
    assert.ok((odd.measurements.attempts as number) >= 2, 'the 429s were asked again')
    assert.equal(odd.measurements.baseline_error_rate_pct, 0.4, 'a failed read keeps the baseline')
    assertNoSecrets(odd, [TOKEN])
  } finally {
    await server.shutdown()
  }
  assert.throws(
    () => trafficProbe.config.parse({ project_ref: REF, auth_success_warning_pct: 20 }),
    /auth_success_critical_pct must not be above auth_success_warning_pct/,
  )
  assert.throws(
    () => trafficProbe.config.parse({ project_ref: 'short' }),
    /20-character project ref/,
  )
})

Deno.test('the stand-in reads the cluster log prefix; other lines are skipped', () => {
  const row = postgresLogRow(
    '2026-12-03 10:00:00.123 UTC [77] 42501 app@postgres ERROR:  permission denied for table visits',
  )!
  assert.equal(row.timestamp, '2026-12-03T10:00:00.123Z')
  assert.equal(row.log_attributes!['parsed.sql_state_code'], '42501')
  assert.equal(row.event_message, 'ERROR:  permission denied for table visits')
  assert.equal(
    postgresLogRow('2026-12-03 10:00:00.123 UTC [77] 00000 app@postgres STATEMENT:  insert …'),
    null,
  )
  assert.equal(postgresLogRow('random text'), null)
})

Deno.test('traffic: an edge function stopped at its memory limit warns, with its time limits and 546s counted', async () => {
  await withStandIn(async (url, api) => {
    for (let i = 0; i < 20; i++) {
      api.gatewayRequest({
        method: 'POST',
        path: '/functions/v1/resize-image',
        status: i < 2 ? 546 : 200,
        ms: 900,
      })
    }
    api.ingest([
      {
        source: 'function_logs',
        event_message: 'shutdown',
        log_attributes: { function_id: 'resize-image', event_type: 'Shutdown', reason: 'Memory' },
      },
      {
        source: 'function_logs',
        event_message: 'wall clock time limit reached',
        log_attributes: { function_id: 'resize-image' },
      },
    ])
    const r = await runProbe(trafficProbe, { api_url: url, project_ref: REF }, { secrets })
    assert.equal(r.status, 'degraded')
    assert.equal(
      r.error,
      'function resize-image: 2 of 20 invocations failed; 2 answered 504/546, 1 stopped at the time limit, 1 stopped at the memory limit',
    )
    const [fn] = r.measurements.functions as Record<string, unknown>[]
    assert.deepEqual(
      [fn.requests, fn.failures, fn.resource_limits, fn.time_limits, fn.memory_limits, fn.p95_ms],
      [20, 2, 2, 1, 1, 900],
    )
  })
})
