// Every function endpoint, fed what an attacker or a broken client would send: malformed JSON,
// wrong types, unknown fields, huge and deeply nested bodies, forged, expired and foreign tokens,
// random paths and queries. Properties: never a 5xx, never a secret in the answer, every refusal a
// 4xx saying what is wrong, and the function still answers afterwards (its process did not die).
// Bodies are generated never to pass a schema, so nothing here acts (no cycle, heal or send).
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { LOCAL_APPROVAL_SECRET, LOCAL_JWT_SECRET } from '../../devstack/config.ts'
import { LOCAL_PROVIDER_CREDENTIALS } from '../../devstack/providers.ts'
import { signJwt } from '../../devstack/jwt.ts'
import { testStack } from '../_env.ts'

const RUNS = 25

function secrets(): string[] {
  const { serviceRoleKey, dbUrl } = testStack()
  const c = LOCAL_PROVIDER_CREDENTIALS
  return [
    serviceRoleKey,
    dbUrl,
    LOCAL_APPROVAL_SECRET,
    LOCAL_JWT_SECRET,
    c.twilioAuthToken,
    c.sendgridApiKey,
    c.pagerdutyRoutingKey,
    c.webhookSecret,
  ]
}

interface Sent {
  method: string
  path: string
  body?: string
  token?: string
}

async function send(r: Sent): Promise<{ status: number; text: string }> {
  const res = await fetch(`${testStack().apiUrl}/functions/v1/${r.path}`, {
    method: r.method,
    headers: {
      'content-type': 'application/json',
      ...(r.token !== undefined && { authorization: `Bearer ${r.token}` }),
    },
    body: r.method === 'GET' || r.method === 'HEAD' ? undefined : r.body,
  })
  return { status: res.status, text: await res.text() }
}

function judge(r: Sent, answer: { status: number; text: string }) {
  const what = `${r.method} ${r.path} ${(r.body ?? '').slice(0, 80)}`
  assert.ok(answer.status < 500, `${what} answered ${answer.status}: ${answer.text.slice(0, 200)}`)
  for (const s of secrets()) assert.ok(!answer.text.includes(s), `${what}: a secret in the answer`)
  if (answer.status >= 400 && answer.status !== 404 && answer.status !== 405) {
    assert.ok(answer.text.trim().length > 0, `${what}: a refusal says why`)
  }
}

/** JSON that no function's schema accepts: not an object, or an object with a field none knows. */
const notJson = (t: string) => {
  if (!t.trim()) return false // an empty body is {}: it would act
  try {
    JSON.parse(t)
    return false
  } catch {
    return true
  }
}
const invalidBody = fc.oneof(
  fc.string({ maxLength: 200 }).filter(notJson),
  fc.jsonValue().filter((v) => v === null || typeof v !== 'object' || Array.isArray(v)).map((v) =>
    JSON.stringify(v)
  ),
  fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }))
    .map((o) => JSON.stringify({ ...o, fuzz_unknown_field: true })),
  fc.record({
    incident_id: fc.oneof(fc.string(), fc.double(), fc.constant(-1), fc.constant(0)),
    services: fc.oneof(fc.string(), fc.integer(), fc.array(fc.integer(), { maxLength: 3 })),
    trigger: fc.string({ maxLength: 10 }).filter((t) => !['cron', 'manual', 'alert'].includes(t)),
  }).map((o) => JSON.stringify(o)),
)

async function tokens() {
  const { anonKey, serviceRoleKey } = testStack()
  return [
    undefined,
    '',
    'not-a-jwt',
    anonKey,
    serviceRoleKey,
    `${serviceRoleKey.slice(0, -4)}AAAA`,
    await signJwt({ role: 'service_role', exp: 1 }, LOCAL_JWT_SECRET),
    await signJwt({ role: 'service_role' }, 'another-secret-that-is-long-enough-to-sign'),
    await signJwt({ role: 'authenticated', app_metadata: { role: 'devops' } }, LOCAL_JWT_SECRET),
  ]
}

Deno.test('the acting functions: bad bodies and bad tokens get a clear 4xx, never a 5xx or a secret', async () => {
  const all = await tokens()
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('health-check', 'auto-heal', 'notify', 'maintenance', 'analyze'),
      fc.constantFrom(...all),
      invalidBody,
      async (fn, token, body) => {
        const r = { method: 'POST', path: fn, body, token }
        const answer = await send(r)
        judge(r, answer)
        assert.ok(answer.status >= 400, `${fn} accepted ${body.slice(0, 80)}`)
      },
    ),
    { numRuns: RUNS * 3 },
  )
})

Deno.test('huge and deeply nested bodies are refused, not choked on', async () => {
  const { serviceRoleKey } = testStack()
  const huge = JSON.stringify({ services: ['x'.repeat(200_000)] })
  const deep = '['.repeat(30_000) + ']'.repeat(30_000) // under the size limit: it is parsed
  for (const fn of ['health-check', 'auto-heal', 'notify', 'maintenance', 'analyze']) {
    const big = await send({ method: 'POST', path: fn, body: huge, token: serviceRoleKey })
    assert.equal(big.status, 413, `${fn}: ${big.text.slice(0, 120)}`)
    assert.match(big.text, /at most 65536 bytes/)
    const nested = await send({ method: 'POST', path: fn, body: deep, token: serviceRoleKey })
    assert.equal(nested.status, 400, `${fn} nested: ${nested.text.slice(0, 120)}`)
  }
})

Deno.test('the link and ping endpoints: random paths, queries and methods get a 4xx', async () => {
  const segment = fc.stringMatching(/^[A-Za-z0-9._~%-]{0,80}$/)
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('ack', 'heal-approval', 'heartbeat', 'status', 'metrics'),
      fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
      segment,
      fc.dictionary(fc.constantFrom('decision', 'expires', 'sig', 'x'), segment, { maxKeys: 3 }),
      async (fn, method, path, query) => {
        const q = new URLSearchParams(query).toString()
        const r = {
          method,
          path: `${fn}/${encodeURIComponent(path)}${q ? `?${q}` : ''}`,
          body: '{}',
        }
        const answer = await send(r)
        judge(r, answer)
        if (fn !== 'status') {
          assert.ok(answer.status >= 400, `${r.method} ${r.path} answered ${answer.status}`)
        }
      },
    ),
    { numRuns: RUNS * 2 },
  )
})

Deno.test('after the fuzzing every function still answers as before', async () => {
  const { serviceRoleKey } = testStack()
  const notify = await send({
    method: 'POST',
    path: 'notify',
    body: '{"trigger": "manual"}',
    token: serviceRoleKey,
  })
  assert.equal(notify.status, 200, notify.text)
  const heal = await send({
    method: 'POST',
    path: 'auto-heal',
    body: '{"incident_id": 987654321}',
    token: serviceRoleKey,
  })
  assert.equal(heal.status, 200, heal.text)
  const status = await send({ method: 'GET', path: 'status' })
  assert.equal(status.status, 200, status.text)
})
