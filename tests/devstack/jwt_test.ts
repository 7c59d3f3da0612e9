import assert from 'node:assert/strict'
import { LOCAL_JWT_SECRET } from '../../devstack/config.ts'
import { JwtError, localKeys, signJwt, verifyJwt } from '../../devstack/jwt.ts'

const SUPABASE_LOCAL_ANON_KEY =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0'
const SUPABASE_LOCAL_SERVICE_ROLE_KEY =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU'
const SECRET = 'a-test-secret-that-is-at-least-32-characters'
const nowSeconds = () => Math.floor(Date.now() / 1000)

function base64Url(value: unknown): string {
  return btoa(JSON.stringify(value)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
}

async function rejectsWith(token: string, reason: JwtError['reason'], secret = SECRET) {
  await assert.rejects(verifyJwt(token, secret), (error) => {
    assert.ok(error instanceof JwtError, `expected JwtError, got ${error}`)
    assert.equal(error.reason, reason)
    return true
  })
}

Deno.test('localKeys with the local secret are the keys of `supabase start`', async () => {
  const keys = await localKeys(LOCAL_JWT_SECRET)
  assert.equal(keys.anon, SUPABASE_LOCAL_ANON_KEY)
  assert.equal(keys.service_role, SUPABASE_LOCAL_SERVICE_ROLE_KEY)
})

Deno.test('verifyJwt accepts the well-known keys and returns their payload', async () => {
  assert.deepEqual(await verifyJwt(SUPABASE_LOCAL_SERVICE_ROLE_KEY, LOCAL_JWT_SECRET), {
    iss: 'supabase-demo',
    role: 'service_role',
    exp: 1983812996,
  })
})

Deno.test('signJwt and verifyJwt round-trip a payload', async () => {
  const payload = {
    sub: 'user-1',
    role: 'authenticated',
    exp: nowSeconds() + 60,
    nbf: nowSeconds() - 1,
  }
  assert.deepEqual(await verifyJwt(await signJwt(payload, SECRET), SECRET), payload)
})

Deno.test('verifyJwt rejects a token signed with another secret', async () => {
  await rejectsWith(
    await signJwt({ role: 'anon' }, 'another-secret-of-sufficient-length!!'),
    'bad_signature',
  )
})

Deno.test('verifyJwt rejects a tampered payload', async () => {
  const [header, , signature] = (await signJwt({ role: 'anon' }, SECRET)).split('.')
  await rejectsWith(
    `${header}.${base64Url({ role: 'service_role' })}.${signature}`,
    'bad_signature',
  )
})

Deno.test('verifyJwt rejects a tampered signature', async () => {
  const token = await signJwt({ role: 'anon' }, SECRET)
  const flipped = token.slice(0, -2) + (token.at(-2) === 'A' ? 'B' : 'A') + token.at(-1)
  await rejectsWith(flipped, 'bad_signature')
})

Deno.test('verifyJwt rejects an expired token', async () => {
  await rejectsWith(await signJwt({ role: 'anon', exp: nowSeconds() - 1 }, SECRET), 'expired')
})

Deno.test('verifyJwt rejects a token used before nbf', async () => {
  await rejectsWith(
    await signJwt({ role: 'anon', nbf: nowSeconds() + 60 }, SECRET),
    'not_yet_valid',
  )
})

Deno.test('verifyJwt rejects alg none, with or without a signature', async () => {
  const unsigned = `${base64Url({ alg: 'none', typ: 'JWT' })}.${
    base64Url({ role: 'service_role' })
  }`
  // The algorithm is checked first: none is refused whatever follows it.
  await rejectsWith(`${unsigned}.`, 'unsupported_alg')
  await rejectsWith(`${unsigned}.c2lnbmF0dXJl`, 'unsupported_alg')
})

Deno.test('verifyJwt rejects algorithms other than HS256', async () => {
  const [, payload, signature] = (await signJwt({ role: 'anon' }, SECRET)).split('.')
  for (const alg of ['HS512', 'RS256', 'hs256']) {
    await rejectsWith(
      `${base64Url({ alg, typ: 'JWT' })}.${payload}.${signature}`,
      'unsupported_alg',
    )
  }
})

Deno.test('verifyJwt rejects malformed tokens', async () => {
  const valid = await signJwt({ role: 'anon' }, SECRET)
  const [header, payload, signature] = valid.split('.')
  for (
    const token of [
      '',
      'not-a-jwt',
      `${header}.${payload}`,
      `${valid}.extra`,
      `${header}.${payload}.sig+nature`,
      `${base64Url('a string')}.${payload}.${signature}`,
      `${header}.${btoa('{not json')}.${signature}`,
    ]
  ) {
    await assert.rejects(verifyJwt(token, SECRET), JwtError, `accepted ${JSON.stringify(token)}`)
  }
})

Deno.test('verifyJwt rejects a non-numeric exp', async () => {
  await rejectsWith(
    await signJwt({ role: 'anon', exp: '9999999999' as unknown as number }, SECRET),
    'malformed',
  )
})
