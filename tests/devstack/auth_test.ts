// The GoTrue stand-in (devstack/auth.ts) through the real supabase-js client: password sign-in,
// the tokens RLS and the functions read, refresh-token rotation, logout and expiry.
import assert from 'node:assert/strict'
import { AuthApiError, createClient, type SupabaseClient } from '@supabase/supabase-js'
import { decodeJwt } from 'jose'
import {
  AUTHENTICATOR_USER,
  CONFIG_TOML,
  DEV_OPERATOR,
  DEV_USERS,
  DEV_VIEWER,
  type DevUser,
  FUNCTIONS_DIR,
  LOCAL_AUTHENTICATOR_PASSWORD,
  LOCAL_JWT_SECRET,
  urlAs,
} from '../../devstack/config.ts'
import { startGateway } from '../../devstack/gateway.ts'
import { signJwt } from '../../devstack/jwt.ts'
import { freePort } from '../../devstack/stack.ts'
import { testStack } from '../_env.ts'

const stack = testStack()

function client(apiUrl = stack.apiUrl): SupabaseClient<any, 'vigil'> {
  return createClient(apiUrl, stack.anonKey, {
    db: { schema: 'vigil' },
    auth: { persistSession: false, autoRefreshToken: false },
  })
}

async function signedIn(user: DevUser, apiUrl = stack.apiUrl) {
  const c = client(apiUrl)
  const { data, error } = await c.auth.signInWithPassword({
    email: user.email,
    password: user.password,
  })
  assert.equal(error, null)
  assert.ok(data.session)
  return { client: c, session: data.session }
}

function auth(path: string, init: RequestInit = {}, apiUrl = stack.apiUrl): Promise<Response> {
  const headers = new Headers(init.headers)
  if (!headers.has('apikey')) headers.set('apikey', stack.anonKey)
  return fetch(`${apiUrl}/auth/v1${path}`, { ...init, headers })
}

function refresh(refreshToken: string, apiUrl = stack.apiUrl): Promise<Response> {
  return auth('/token?grant_type=refresh_token', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-supabase-api-version': '2024-01-01' },
    body: JSON.stringify({ refresh_token: refreshToken }),
  }, apiUrl)
}

Deno.test('the operator signs in: a GoTrue session whose token carries what RLS reads', async () => {
  const { client: c, session } = await signedIn(DEV_OPERATOR)
  assert.equal(session.token_type, 'bearer')
  assert.equal(session.expires_in, 3600)
  assert.ok(Math.abs(session.expires_at! - (Date.now() / 1000 + 3600)) < 10)
  assert.equal(session.user.id, DEV_OPERATOR.id)
  assert.equal(session.user.email, DEV_OPERATOR.email)
  assert.equal(session.user.aud, 'authenticated')
  assert.equal(session.user.role, 'authenticated')
  assert.deepEqual(session.user.app_metadata, {
    provider: 'email',
    providers: ['email'],
    role: 'devops',
  })
  const claims = decodeJwt(session.access_token)
  assert.equal(claims.sub, DEV_OPERATOR.id)
  assert.equal(claims.role, 'authenticated')
  assert.equal(claims.aud, 'authenticated')
  assert.equal(claims.iss, `${stack.apiUrl}/auth/v1`)
  assert.equal(claims.email, DEV_OPERATOR.email)
  assert.equal((claims.app_metadata as { role?: string }).role, 'devops')
  assert.equal(claims.is_anonymous, false)
  assert.equal(typeof claims.session_id, 'string')
  assert.equal(claims.exp! - claims.iat!, 3600)

  const got = await c.auth.getUser()
  assert.equal(got.error, null)
  assert.equal(got.data.user?.email, DEV_OPERATOR.email)
  const current = await c.auth.getSession()
  assert.equal(current.data.session?.access_token, session.access_token)

  const viewer = await signedIn(DEV_VIEWER)
  assert.deepEqual(viewer.session.user.app_metadata, { provider: 'email', providers: ['email'] })
})

Deno.test('a wrong password or an unknown email is an AuthApiError: invalid_credentials', async () => {
  for (
    const [email, password] of [
      [DEV_OPERATOR.email, 'wrong-password'],
      [DEV_OPERATOR.email, DEV_VIEWER.password],
      ['nobody@vigil.local', DEV_OPERATOR.password],
    ]
  ) {
    const { data, error } = await client().auth.signInWithPassword({ email, password })
    assert.ok(error instanceof AuthApiError, `${email}: ${error}`)
    assert.equal(error.status, 400)
    assert.equal(error.code, 'invalid_credentials')
    assert.equal(error.message, 'Invalid login credentials')
    assert.equal(data.session, null)
  }
})

Deno.test('refresh rotates the refresh token; presenting a spent one ends the session', async () => {
  const { client: c, session } = await signedIn(DEV_OPERATOR)
  const refreshed = await c.auth.refreshSession()
  assert.equal(refreshed.error, null)
  const next = refreshed.data.session!
  assert.notEqual(next.refresh_token, session.refresh_token)
  assert.equal(decodeJwt(next.access_token).session_id, decodeJwt(session.access_token).session_id)

  const reused = await refresh(session.refresh_token)
  assert.equal(reused.status, 400)
  assert.deepEqual(await reused.json(), {
    code: 'refresh_token_already_used',
    message: 'Invalid Refresh Token: Already Used',
  })
  // Reuse detection: whoever holds the newer token is signed out too.
  const after = await refresh(next.refresh_token)
  assert.equal(after.status, 400)
  assert.equal((await after.json()).code, 'refresh_token_not_found')
  const unknown = await refresh('not-a-refresh-token')
  assert.equal((await unknown.json()).code, 'refresh_token_not_found')
})

Deno.test('signOut revokes the session: its refresh token and access token no longer work at /auth/v1', async () => {
  const { client: c, session } = await signedIn(DEV_OPERATOR)
  const other = await signedIn(DEV_VIEWER)
  const { error } = await c.auth.signOut()
  assert.equal(error, null)
  const refreshAfter = await refresh(session.refresh_token)
  assert.equal(refreshAfter.status, 400)
  await refreshAfter.body?.cancel()
  const user = await client().auth.getUser(session.access_token)
  assert.ok(user.error)
  assert.equal(user.data.user, null)
  // Another user's session is untouched.
  const viewerUser = await other.client.auth.getUser()
  assert.equal(viewerUser.data.user?.email, DEV_VIEWER.email)
})

Deno.test('logout scope=local ends only that session; scope=global every session of the user', async () => {
  const first = await signedIn(DEV_OPERATOR)
  const second = await signedIn(DEV_OPERATOR)
  await first.client.auth.signOut({ scope: 'local' })
  assert.equal((await refresh(first.session.refresh_token)).status, 400)
  const stillIn = await refresh(second.session.refresh_token)
  assert.equal(stillIn.status, 200)
  const renewed = await stillIn.json()
  const third = await signedIn(DEV_OPERATOR)
  const out = await auth('/logout?scope=global', {
    method: 'POST',
    headers: { authorization: `Bearer ${third.session.access_token}` },
  })
  assert.equal(out.status, 204)
  assert.equal((await refresh(renewed.refresh_token)).status, 400)
})

Deno.test('/auth/v1 wants a project key in apikey, as Supabase gateway does', async () => {
  const body = JSON.stringify({ email: DEV_OPERATOR.email, password: DEV_OPERATOR.password })
  const noKey = await fetch(`${stack.apiUrl}/auth/v1/token?grant_type=password`, {
    method: 'POST',
    body,
  })
  assert.equal(noKey.status, 401)
  assert.match((await noKey.json()).message, /No API key/)
  const { session } = await signedIn(DEV_OPERATOR)
  for (
    const key of ['garbage', session.access_token, await signJwt({ role: 'anon' }, 'x'.repeat(40))]
  ) {
    const refused = await auth('/token?grant_type=password', {
      method: 'POST',
      headers: { apikey: key },
      body,
    })
    assert.equal(refused.status, 401)
    assert.match((await refused.json()).message, /Invalid API key/)
  }
  const settings = await auth('/settings')
  assert.equal(settings.status, 200)
  assert.equal((await settings.json()).external.email, true)
  const userNoToken = await auth('/user')
  assert.equal(userNoToken.status, 401)
  await userNoToken.body?.cancel()
  const unknownGrant = await auth('/token?grant_type=id_token', { method: 'POST', body: '{}' })
  assert.equal(unknownGrant.status, 400)
  await unknownGrant.body?.cancel()
  const preflight = await auth('/token?grant_type=password', {
    method: 'OPTIONS',
    headers: { apikey: '', origin: 'http://127.0.0.1:54323' },
  })
  assert.equal(preflight.status, 204)
  assert.equal(preflight.headers.get('access-control-allow-origin'), '*')
  await preflight.body?.cancel()
})

Deno.test('an access token expires after jwt_expiry; supabase-js refreshes it and reads again', async () => {
  const port = freePort()
  const apiUrl = `http://127.0.0.1:${port}`
  const dbPassword = LOCAL_AUTHENTICATOR_PASSWORD
  const logs: string[] = []
  const gateway = await startGateway({
    port,
    functionsDir: FUNCTIONS_DIR,
    configToml: CONFIG_TOML,
    jwtSecret: LOCAL_JWT_SECRET,
    env: {},
    dbUrl: urlAs(stack.dbUrl, AUTHENTICATOR_USER, dbPassword),
    apiUrl,
    authUsers: DEV_USERS,
    jwtExpirySeconds: 2,
    log: (line) => logs.push(line),
  })
  try {
    const { client: c, session } = await signedIn(DEV_OPERATOR, apiUrl)
    assert.equal(session.expires_in, 2)
    await new Promise((r) => setTimeout(r, 3100))
    const stale = await fetch(`${apiUrl}/rest/v1/settings?select=environment`, {
      headers: {
        apikey: stack.anonKey,
        authorization: `Bearer ${session.access_token}`,
        'accept-profile': 'vigil',
      },
    })
    assert.equal(stale.status, 401)
    assert.equal((await stale.json()).code, 'PGRST303')
    const user = await client(apiUrl).auth.getUser(session.access_token)
    assert.ok(user.error instanceof AuthApiError)
    assert.equal(user.error.code, 'bad_jwt')
    assert.equal(user.error.status, 401)

    // The client sees its session within the expiry margin and refreshes before the request.
    const { data, error } = await c.from('settings').select('environment').order('environment')
    assert.equal(error, null)
    assert.deepEqual(data, [{ environment: 'dev' }, { environment: 'qa' }, { environment: 'prod' }])
    const now = await c.auth.getSession()
    assert.notEqual(now.data.session?.access_token, session.access_token)
  } finally {
    await gateway.stop()
  }
})

Deno.test('REST never shows the database URL or password when the database is unreachable', async () => {
  const port = freePort()
  const secretPassword = 'a-password-that-must-not-leak'
  const logs: string[] = []
  const gateway = await startGateway({
    port,
    functionsDir: FUNCTIONS_DIR,
    configToml: CONFIG_TOML,
    jwtSecret: LOCAL_JWT_SECRET,
    env: {},
    dbUrl: `postgresql://authenticator:${secretPassword}@127.0.0.1:${freePort()}/postgres`,
    log: (line) => logs.push(line),
  })
  try {
    const response = await fetch(`${gateway.url}/rest/v1/public_status`, {
      headers: { apikey: stack.anonKey, 'accept-profile': 'vigil' },
    })
    const text = await response.text()
    assert.equal(response.status, 503)
    assert.ok(!text.includes(secretPassword))
    assert.ok(!text.includes('postgresql://'))
    assert.ok(!logs.join('\n').includes(secretPassword))
  } finally {
    await gateway.stop()
  }
})
