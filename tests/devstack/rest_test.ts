// The PostgREST stand-in (devstack/rest.ts) through the real supabase-js client: the rights the
// database grants each role are the rights a request gets, and names and values from the request
// never become SQL. Runs against the stack `npm test` starts; leaves no row and no setting changed.
import assert from 'node:assert/strict'
import { createClient, type SupabaseClient } from '@supabase/supabase-js'
import { DEV_OPERATOR, DEV_VIEWER, type DevUser, LOCAL_JWT_SECRET } from '../../devstack/config.ts'
import { signJwt } from '../../devstack/jwt.ts'
import { postgresStatus } from '../../devstack/rest.ts'
import { testSql, testStack } from '../_env.ts'

const stack = testStack()
const PREFIX = `rest-test-${crypto.randomUUID().slice(0, 8)}`
const NAMES = [`${PREFIX}-a`, `${PREFIX}-b`, `${PREFIX}-c`]

function client(key = stack.anonKey): SupabaseClient<any, 'vigil'> {
  return createClient(stack.apiUrl, key, {
    db: { schema: 'vigil' },
    auth: { persistSession: false, autoRefreshToken: false },
  })
}

async function signedIn(user: DevUser): Promise<SupabaseClient<any, 'vigil'>> {
  const c = client()
  const { error } = await c.auth.signInWithPassword({ email: user.email, password: user.password })
  assert.equal(error, null)
  return c
}

/** Three disabled services (the stack's health checks leave them alone), removed afterwards. */
async function withServices(fn: () => Promise<void>): Promise<void> {
  const sql = testSql()
  try {
    await sql`insert into vigil.services (name, kind, config, enabled, description)
              select n, 'http', ${sql.json({ url: 'http://127.0.0.1:9/rest-test' })}, false,
                     case when i = 2 then null else 'service ' || i end
                from unnest(${NAMES}::text[]) with ordinality as u(n, i)`
    await fn()
  } finally {
    await sql`delete from vigil.services where name like ${PREFIX + '%'}`
    await sql.end()
  }
}

function rest(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${stack.apiUrl}/rest/v1${path}`, init)
}

Deno.test('the operator reads vigil.services; a signed-in non-operator reads no row (RLS)', async () => {
  await withServices(async () => {
    const operator = await signedIn(DEV_OPERATOR)
    const { data, error, status } = await operator.from('services')
      .select('name,kind,enabled,description').like('name', `${PREFIX}%`).order('name')
    assert.equal(error, null)
    assert.equal(status, 200)
    assert.deepEqual(data, [
      { name: NAMES[0], kind: 'http', enabled: false, description: 'service 1' },
      { name: NAMES[1], kind: 'http', enabled: false, description: null },
      { name: NAMES[2], kind: 'http', enabled: false, description: 'service 3' },
    ])
    const viewer = await signedIn(DEV_VIEWER)
    const seen = await viewer.from('services').select('*').like('name', `${PREFIX}%`)
    assert.equal(seen.error, null)
    assert.deepEqual(seen.data, [])
  })
})

Deno.test('anon reads vigil.public_status but is refused vigil.services with 401', async () => {
  const anon = client()
  const status = await anon.from('public_status').select('name,status,uptime_24h')
  assert.equal(status.error, null)
  assert.ok(Array.isArray(status.data))
  const services = await anon.from('services').select('id')
  assert.equal(services.status, 401)
  assert.equal(services.error?.code, '42501')
  assert.match(services.error?.message ?? '', /permission denied for table services/)
})

Deno.test('values come back as PostgREST gives them: jsonb as JSON, timestamptz as ISO text', async () => {
  await withServices(async () => {
    const service = client(stack.serviceRoleKey)
    const { data, error } = await service.from('services').select('config,created_at,enabled')
      .eq('name', NAMES[0]).single()
    assert.equal(error, null)
    assert.deepEqual(data.config, { url: 'http://127.0.0.1:9/rest-test' })
    assert.equal(data.enabled, false)
    assert.match(data.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/)
  })
})

Deno.test('filters, not., order, limit, offset, range, single, maybeSingle and count', async () => {
  await withServices(async () => {
    const db = client(stack.serviceRoleKey)
    const names = async (q: PromiseLike<{ data: any; error: any }>) => {
      const { data, error } = await q
      assert.equal(error, null)
      return (data as { name: string }[]).map((r) => r.name)
    }
    const base = () => db.from('services').select('name').like('name', `${PREFIX}%`)
    assert.deepEqual(await names(base().eq('name', NAMES[1])), [NAMES[1]])
    assert.deepEqual(await names(base().neq('name', NAMES[1]).order('name')), [NAMES[0], NAMES[2]])
    assert.deepEqual(await names(base().gt('name', NAMES[0]).order('name')), [NAMES[1], NAMES[2]])
    assert.deepEqual(await names(base().gte('name', NAMES[1]).lt('name', NAMES[2])), [NAMES[1]])
    assert.deepEqual(await names(base().lte('name', NAMES[0])), [NAMES[0]])
    assert.deepEqual(await names(base().ilike('name', `${PREFIX.toUpperCase()}-B`)), [NAMES[1]])
    assert.deepEqual(await names(base().is('description', null)), [NAMES[1]])
    assert.deepEqual(
      await names(base().not('description', 'is', null).order('name', { ascending: false })),
      [NAMES[2], NAMES[0]],
    )
    assert.deepEqual(await names(base().in('name', [NAMES[0], NAMES[2]]).order('name')), [
      NAMES[0],
      NAMES[2],
    ])
    assert.deepEqual(await names(base().not('name', 'in', `(${NAMES[0]},${NAMES[2]})`)), [
      NAMES[1],
    ])
    assert.deepEqual(await names(base().in('name', [])), [])
    assert.deepEqual(await names(base().is('enabled', false).order('name').limit(1)), [NAMES[0]])
    assert.deepEqual(await names(base().order('name').range(1, 2)), [NAMES[1], NAMES[2]])
    assert.deepEqual(
      await names(base().order('description', { ascending: true, nullsFirst: true }).order('name')),
      [NAMES[1], NAMES[0], NAMES[2]],
    )

    const one = await base().eq('name', NAMES[2]).single()
    assert.deepEqual(one.data, { name: NAMES[2] })
    const none = await base().eq('name', 'nothing').single()
    assert.equal(none.status, 406)
    assert.equal(none.error?.code, 'PGRST116')
    const many = await base().single()
    assert.equal(many.error?.code, 'PGRST116')
    const maybe = await base().eq('name', 'nothing').maybeSingle()
    assert.equal(maybe.error, null)
    assert.equal(maybe.data, null)

    const counted = await db.from('services').select('name', { count: 'exact' })
      .like('name', `${PREFIX}%`).order('name').limit(2)
    assert.equal(counted.count, 3)
    assert.equal(counted.data?.length, 2)
    assert.equal(counted.status, 206)
    const stripped = await base().select('name,description').eq('name', NAMES[1]).stripNulls()
    assert.deepEqual(stripped.data, [{ name: NAMES[1] }])
    const ranged = await rest(`/services?select=name&name=like.${PREFIX}*&order=name`, {
      headers: { apikey: stack.serviceRoleKey, 'accept-profile': 'vigil', range: '1-1' },
    })
    assert.deepEqual(await ranged.json(), [{ name: NAMES[1] }])
    assert.equal(ranged.headers.get('content-range'), '1-1/*')
    const head = await db.from('services').select('*', { count: 'exact', head: true })
      .like('name', `${PREFIX}%`)
    assert.equal(head.count, 3)
    assert.equal(head.data, null)
  })
})

Deno.test("the operator's PATCH of the kill switch lands, in their name; the viewer's changes nothing", async () => {
  const sql = testSql()
  const [before] = await sql<{ kill_switch: boolean }[]>`
    select kill_switch from vigil.settings where environment = 'dev'`
  const started = new Date()
  try {
    const operator = await signedIn(DEV_OPERATOR)
    const { data, error, status } = await operator.from('settings')
      .update({ kill_switch: !before.kill_switch }).eq('environment', 'dev')
      .select('environment,kill_switch,updated_by').single()
    assert.equal(error, null)
    assert.equal(status, 200)
    assert.deepEqual(data, {
      environment: 'dev',
      kill_switch: !before.kill_switch,
      updated_by: DEV_OPERATOR.id,
    })
    const changes = await sql<{ actor: string; actor_name: string; new_value: boolean }[]>`
      select actor::text, actor_name, new_value from vigil.control_changes
       where target = 'settings:dev' and field = 'kill_switch' and changed_at >= ${started}
       order by id`
    assert.deepEqual(changes.map((c) => ({ ...c })), [
      { actor: DEV_OPERATOR.id, actor_name: DEV_OPERATOR.email, new_value: !before.kill_switch },
    ])
    const back = await operator.from('settings').update({ kill_switch: before.kill_switch })
      .eq('environment', 'dev')
    assert.equal(back.error, null)
    assert.equal(back.status, 204)

    const viewer = await signedIn(DEV_VIEWER)
    const refused = await viewer.from('settings').update({ kill_switch: !before.kill_switch })
      .eq('environment', 'dev').select()
    assert.equal(refused.error, null)
    assert.deepEqual(refused.data, [])
    const [after] = await sql<{ kill_switch: boolean }[]>`
      select kill_switch from vigil.settings where environment = 'dev'`
    assert.equal(after.kill_switch, before.kill_switch)
  } finally {
    await sql`update vigil.settings set kill_switch = ${before.kill_switch}
               where environment = 'dev' and kill_switch <> ${before.kill_switch}`
    await sql.end()
  }
})

Deno.test('a PATCH of a column without an UPDATE grant is refused with 403 42501', async () => {
  const operator = await signedIn(DEV_OPERATOR)
  const { error, status } = await operator.from('settings').update({ slow_query_ms: 1234 })
    .eq('environment', 'dev')
  assert.equal(status, 403)
  assert.equal(error?.code, '42501')
  const unknown = await operator.from('settings').update({ no_such_column: 1 }).eq(
    'environment',
    'dev',
  )
  assert.equal(unknown.status, 400)
  assert.equal(unknown.error?.code, 'PGRST204')
})

Deno.test('.single() on a PATCH that would touch several rows is refused and undone', async () => {
  await withServices(async () => {
    const db = client(stack.serviceRoleKey)
    const { error, status } = await db.from('services').update({ description: 'changed' })
      .like('name', `${PREFIX}%`).select('name').single()
    assert.equal(status, 406)
    assert.equal(error?.code, 'PGRST116')
    const sql = testSql()
    try {
      const rows = await sql`select 1 from vigil.services
                              where name like ${PREFIX + '%'} and description = 'changed'`
      assert.equal(rows.length, 0)
    } finally {
      await sql.end()
    }
  })
})

Deno.test('insert and delete as the service role, with constraint errors mapped like PostgREST', async () => {
  const db = client(stack.serviceRoleKey)
  const sql = testSql()
  try {
    const inserted = await db.from('services').insert({
      name: `${PREFIX}-new`,
      kind: 'http',
      enabled: false,
      config: { url: 'http://127.0.0.1:9/new' },
    }).select('name,config').single()
    assert.equal(inserted.error, null)
    assert.equal(inserted.status, 201)
    assert.deepEqual(inserted.data, {
      name: `${PREFIX}-new`,
      config: { url: 'http://127.0.0.1:9/new' },
    })
    const bulk = await db.from('services').insert([
      {
        name: `${PREFIX}-bulk1`,
        kind: 'http',
        enabled: false,
        config: { url: 'http://x.invalid' },
      },
      {
        name: `${PREFIX}-bulk2`,
        kind: 'http',
        enabled: false,
        config: { url: 'http://x.invalid' },
      },
    ])
    assert.equal(bulk.error, null)
    assert.equal(bulk.status, 201)
    const duplicate = await db.from('services').insert({
      name: `${PREFIX}-new`,
      kind: 'http',
      enabled: false,
      config: { url: 'http://127.0.0.1:9/new' },
    })
    assert.equal(duplicate.status, 409)
    assert.equal(duplicate.error?.code, '23505')
    const badName = await db.from('services').insert({ name: 'Bad Name!', kind: 'http' })
    assert.equal(badName.status, 400)
    assert.equal(badName.error?.code, '23514')
    const badEnum = await db.from('services').insert({ name: `${PREFIX}-x`, kind: 'nope' })
    assert.equal(badEnum.status, 400)
    assert.equal(badEnum.error?.code, '22P02')

    const deleted = await db.from('services').delete().like('name', `${PREFIX}-%`).select('name')
    assert.equal(deleted.error, null)
    assert.equal(deleted.data?.length, 3)
    const left = await sql`select 1 from vigil.services where name like ${PREFIX + '%'}`
    assert.equal(left.length, 0)
  } finally {
    await sql`delete from vigil.services where name like ${PREFIX + '%'}`
    await sql.end()
  }
})

Deno.test('rpc: health_score for the operator, refused to anon, unknown function 404', async () => {
  const operator = await signedIn(DEV_OPERATOR)
  const { data, error } = await operator.rpc('health_score')
  assert.equal(error, null)
  assert.deepEqual(Object.keys(data).sort(), ['band', 'score', 'services'])
  const viaGet = await operator.rpc('health_score', {}, { get: true })
  assert.deepEqual(viaGet.data, data)
  const anon = await client().rpc('health_score')
  assert.equal(anon.status, 401)
  assert.equal(anon.error?.code, '42501')
  const unknown = await operator.rpc('no_such_function', { a: 1 })
  assert.equal(unknown.status, 404)
  assert.equal(unknown.error?.code, 'PGRST202')
  const wrongArgs = await operator.rpc('health_score', { surprise: 1 })
  assert.equal(wrongArgs.error?.code, 'PGRST202')
})

Deno.test('rpc: named arguments, setof rows with filters and order, scalars', async () => {
  const sql = testSql()
  try {
    await sql.unsafe(`
      create or replace function public.rest_test_series(n int, word text default 'x')
      returns table (i int, label text) language sql stable
      as $$ select g, word || g from generate_series(1, n) g $$;
      create or replace function public.rest_test_add(a int, b int) returns int
      language sql immutable as $$ select a + b $$;
      grant execute on function public.rest_test_series(int, text), public.rest_test_add(int, int)
        to anon;`)
    const anon = createClient(stack.apiUrl, stack.anonKey, {
      auth: { persistSession: false, autoRefreshToken: false },
    })
    const sum = await anon.rpc('rest_test_add', { a: 2, b: 40 })
    assert.equal(sum.error, null)
    assert.equal(sum.data, 42)
    const rows = await anon.rpc('rest_test_series', { n: 4, word: 'n' }).gte('i', 2)
      .order('i', { ascending: false }).limit(2)
    assert.equal(rows.error, null)
    assert.deepEqual(rows.data, [{ i: 4, label: 'n4' }, { i: 3, label: 'n3' }])
    const defaulted = await anon.rpc('rest_test_series', { n: 1 })
    assert.deepEqual(defaulted.data, [{ i: 1, label: 'x1' }])
    const viaGet = await anon.rpc('rest_test_series', { n: 2 }, { get: true }).eq('i', 2)
    assert.deepEqual(viaGet.data, [{ i: 2, label: 'x2' }])
    const badValue = await anon.rpc('rest_test_add', { a: 'two', b: 1 })
    assert.equal(badValue.status, 400)
    assert.equal(badValue.error?.code, '22P02')
  } finally {
    await sql.unsafe(`drop function if exists public.rest_test_series(int, text);
                      drop function if exists public.rest_test_add(int, int);`)
    await sql.end()
  }
})

Deno.test('unknown tables answer 404 PGRST205; a schema not exposed answers 406 PGRST106', async () => {
  const operator = await signedIn(DEV_OPERATOR)
  const missing = await operator.from('no_such_table').select('*')
  assert.equal(missing.status, 404)
  assert.equal(missing.error?.code, 'PGRST205')
  assert.match(missing.error?.message ?? '', /'vigil\.no_such_table'/)
  const hidden = await operator.schema('auth').from('users').select('*')
  assert.equal(hidden.status, 406)
  assert.equal(hidden.error?.code, 'PGRST106')
  assert.match(hidden.error?.message ?? '', /public, graphql_public, vigil/)
})

Deno.test('bad, foreign and expired JWTs answer 401; no key at all answers 401', async () => {
  const headers = (token: string) => ({ apikey: stack.anonKey, authorization: `Bearer ${token}` })
  const garbage = await rest('/public_status', { headers: headers('not-a-jwt') })
  assert.equal(garbage.status, 401)
  assert.equal((await garbage.json()).code, 'PGRST301')
  const foreign = await signJwt(
    { role: 'service_role' },
    'another-secret-with-at-least-32-characters',
  )
  const forged = await rest('/public_status', { headers: headers(foreign) })
  assert.equal(forged.status, 401)
  assert.equal((await forged.json()).code, 'PGRST301')
  const expiredToken = await signJwt({
    role: 'authenticated',
    sub: DEV_OPERATOR.id,
    app_metadata: { role: 'devops' },
    exp: Math.floor(Date.now() / 1000) - 10,
  }, LOCAL_JWT_SECRET)
  const expired = await rest('/settings', {
    headers: { ...headers(expiredToken), 'accept-profile': 'vigil' },
  })
  assert.equal(expired.status, 401)
  assert.deepEqual(await expired.json(), {
    code: 'PGRST303',
    details: null,
    hint: null,
    message: 'JWT expired',
  })
  const strangeRole = await signJwt({ role: 'postgres' }, LOCAL_JWT_SECRET)
  const escalated = await rest('/public_status', { headers: headers(strangeRole) })
  assert.equal(escalated.status, 401)
  await escalated.body?.cancel()
  const keyless = await rest('/public_status')
  assert.equal(keyless.status, 401)
  await keyless.body?.cancel()
})

Deno.test('injection through names, filters, order and values is refused or harmless', async () => {
  await withServices(async () => {
    const db = client(stack.serviceRoleKey)
    const attempts = [
      db.from('services').select('name, (select 1)'),
      db.from('services').select('name"; drop table vigil.checks; --'),
      db.from('services').select('"name"" from vigil.settings --"'),
      db.from('services').select('name').order('name; drop table vigil.checks'),
      db.from('services').select('name').order('name.desc,(select 1)'),
      db.from('services').select('name').eq('name" = name or true --', 'x'),
      db.from('services').select('name').filter('name', 'eq) or (true', 'x'),
      db.from('services').select('name').filter('name', 'is', 'null or true'),
      db.from('services; drop table vigil.checks').select('*'),
    ]
    for (const attempt of attempts) {
      const { error, status } = await attempt
      assert.ok(status === 400 || status === 404, `status ${status}`)
      assert.ok(error?.code, 'an error with a code')
    }
    const harmless = [
      db.from('services').select('name').eq('name', "x' or '1'='1"),
      db.from('services').select('name').in('name', ["a') or true --", 'b']),
      db.from('services').select('name').like('name', "%' or 1=1 --"),
    ]
    for (const attempt of harmless) {
      const { error, data } = await attempt
      assert.equal(error, null)
      assert.deepEqual(data, [])
    }
    const sql = testSql()
    try {
      const [{ n }] = await sql`select count(*)::int as n from vigil.services where name like ${
        PREFIX + '%'
      }`
      assert.equal(n, 3)
      assert.equal((await sql`select to_regclass('vigil.checks') is not null as ok`)[0].ok, true)
    } finally {
      await sql.end()
    }
  })
})

Deno.test('embedding and unsupported syntax are refused with 400 and a clear message', async () => {
  const db = client(stack.serviceRoleKey)
  const embedded = await db.from('services').select('name, checks(status)')
  assert.equal(embedded.status, 400)
  assert.match(embedded.error?.message ?? '', /embedding/)
  const orFilter = await db.from('services').select('name').or('name.eq.a,name.eq.b')
  assert.equal(orFilter.status, 400)
  assert.match(orFilter.error?.message ?? '', /not supported/)
  const badJson = await rest('/services', {
    method: 'POST',
    headers: {
      apikey: stack.serviceRoleKey,
      'content-profile': 'vigil',
      'content-type': 'application/json',
    },
    body: '{"name": ',
  })
  assert.equal(badJson.status, 400)
  assert.equal((await badJson.json()).code, 'PGRST102')
})

Deno.test('CORS: preflight answers 204 and every answer allows any origin', async () => {
  const preflight = await rest('/services', {
    method: 'OPTIONS',
    headers: {
      origin: 'http://127.0.0.1:54323',
      'access-control-request-method': 'PATCH',
      'access-control-request-headers': 'authorization, apikey, content-profile, prefer',
    },
  })
  assert.equal(preflight.status, 204)
  assert.equal(preflight.headers.get('access-control-allow-origin'), '*')
  assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /PATCH/)
  for (const h of ['authorization', 'apikey', 'content-profile', 'prefer', 'range']) {
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', new RegExp(h))
  }
  await preflight.body?.cancel()
  const answer = await rest('/public_status', {
    headers: { apikey: stack.anonKey, 'accept-profile': 'vigil', origin: 'http://127.0.0.1:54323' },
  })
  assert.equal(answer.headers.get('access-control-allow-origin'), '*')
  assert.match(answer.headers.get('access-control-expose-headers') ?? '', /Content-Range/)
  assert.equal(answer.headers.get('content-type'), 'application/json; charset=utf-8')
  await answer.body?.cancel()
})

Deno.test('SQLSTATEs map to HTTP statuses as PostgREST maps them', () => {
  const cases: [string, 'anon' | 'authenticated', number][] = [
    ['42501', 'anon', 401],
    ['42501', 'authenticated', 403],
    ['23505', 'authenticated', 409],
    ['23503', 'authenticated', 409],
    ['23514', 'authenticated', 400],
    ['23502', 'authenticated', 400],
    ['P0001', 'authenticated', 400],
    ['42883', 'authenticated', 404],
    ['25006', 'authenticated', 405],
    ['57014', 'authenticated', 500],
    ['08006', 'authenticated', 503],
    ['22P02', 'authenticated', 400],
  ]
  for (const [code, role, status] of cases) assert.equal(postgresStatus(code, role), status, code)
})
