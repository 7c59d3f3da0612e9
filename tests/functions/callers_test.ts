// Who may call what. The functions that act (health-check, auto-heal, notify, maintenance, analyze) accept only the
// service role, whatever the gateway lets through: the anon key, a signed-in user's token and an
// operator's token are all valid JWTs the gateway passes on, and each is refused by the function
// itself, before anything is read or written.
import assert from 'node:assert/strict'
import { LOCAL_JWT_SECRET } from '../../devstack/config.ts'
import { signJwt } from '../../devstack/jwt.ts'
import { testSql, testStack } from '../_env.ts'

const ACTING = [
  ['health-check', '{"services": ["callers-test-nothing"]}'],
  ['auto-heal', '{"incident_id": 987654321}'],
  ['notify', '{"trigger": "manual"}'],
  ['maintenance', '{"task": "failover_test"}'],
  ['analyze', '{"service": "vigil-health-check"}'],
] as const

async function tokens() {
  const { anonKey, serviceRoleKey } = testStack()
  const exp = Math.floor(Date.now() / 1000) + 600
  const user = await signJwt({
    role: 'authenticated',
    sub: '00000000-0000-4000-8000-0000000000c1',
    email: 'user@example.org',
    exp,
  }, LOCAL_JWT_SECRET)
  const operator = await signJwt({
    role: 'authenticated',
    sub: '00000000-0000-4000-8000-0000000000c2',
    email: 'ops@example.org',
    app_metadata: { role: 'devops' },
    exp,
  }, LOCAL_JWT_SECRET)
  return { anon: anonKey, user, operator, service: serviceRoleKey }
}

async function post(
  fn: string,
  body: string,
  token?: string,
): Promise<{ status: number; json: any }> {
  const res = await fetch(`${testStack().apiUrl}/functions/v1/${fn}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token && { authorization: `Bearer ${token}` }),
    },
    body,
  })
  const text = await res.text()
  let json: unknown = null
  try {
    json = JSON.parse(text)
  } catch { /* the gateway's own answers are JSON too; keep null otherwise */ }
  return { status: res.status, json }
}

Deno.test('every acting function: no token 401; anon, user and operator 403; the service role in', async (t) => {
  const k = await tokens()
  for (const [fn, body] of ACTING) {
    await t.step(fn, async () => {
      assert.equal((await post(fn, body)).status, 401, 'no token')
      for (
        const [who, token, words] of [
          ['anon key', k.anon, /anon key/],
          ['signed-in user', k.user, /signed-in user/],
          ['operator', k.operator, /signed-in operator/],
        ] as const
      ) {
        const r = await post(fn, body, token)
        assert.equal(r.status, 403, who)
        assert.match(r.json.error, /only the service role/, who)
        assert.match(r.json.error, words, who)
      }
      const ok = await post(fn, body, k.service)
      assert.equal(ok.status, 200, `the service role: ${JSON.stringify(ok.json)}`)
    })
  }
})

Deno.test('auto-heal with the anon key writes nothing; with the service role it acts and says only a summary', async () => {
  const sql = testSql()
  const k = await tokens()
  const name = `callers-test-${Date.now().toString(36)}`
  try {
    const [svc] = await sql`
      insert into vigil.services (name, kind, environment, config, heal_enabled)
      values (${name}, 'http', 'dev', ${
      sql.json({ url: 'http://127.0.0.1:9/' })
    }, false) returning id`
    // Opened by hand, the heal request held back, so only the calls below act on it.
    await sql`alter table vigil.incidents disable trigger incidents_request_heal`
    const [inc] = await sql`
      insert into vigil.incidents (service_id, kind, severity, title)
      values (${svc.id}, 'service_unhealthy', 'critical', ${`${name} is down`}) returning id::int`
    await sql`alter table vigil.incidents enable trigger incidents_request_heal`
    const written = async () => {
      const [r] = await sql`
        select (select count(*) from vigil.heal_actions where incident_id = ${inc.id})::int as audit,
               (select count(*) from vigil.incident_log where incident_id = ${inc.id})::int as log,
               (select heal_claimed_by from vigil.incidents where id = ${inc.id}) as claimed_by`
      return { ...r }
    }
    for (const token of [k.anon, k.user, k.operator]) {
      assert.equal(
        (await post('auto-heal', JSON.stringify({ incident_id: inc.id }), token)).status,
        403,
      )
    }
    assert.deepEqual(
      await written(),
      { audit: 0, log: 0, claimed_by: null },
      'refused callers wrote nothing',
    )

    const ok = await post('auto-heal', JSON.stringify({ incident_id: inc.id }), k.service)
    assert.equal(ok.status, 200)
    assert.deepEqual(
      Object.keys(ok.json).sort(),
      ['incident_id', 'outcome', 'summary'].concat(
        ok.json.strategy ? ['strategy'] : [],
        ok.json.attempt ? ['attempt'] : [],
        ok.json.action_id ? ['action_id'] : [],
      ).sort(),
    )
    assert.equal(ok.json.detail, undefined, 'no plan, no session text in the answer')
    assert.ok(
      (await written()).log > 0,
      'the service role was heard: the incident has a timeline now',
    )
  } finally {
    await sql`update vigil.incidents set status = 'resolved', resolved_at = now()
               where service_id in (select id from vigil.services where name = ${name}) and status = 'open'`
    await sql`update vigil.services set enabled = false where name = ${name}`
    await sql.end()
  }
})

Deno.test('health-check with an operator token runs no cycle', async () => {
  const sql = testSql()
  const k = await tokens()
  try {
    const [before] = await sql`select count(*)::int as n from vigil.cycles`
    assert.equal((await post('health-check', '{}', k.operator)).status, 403)
    const [after] = await sql`select count(*)::int as n from vigil.cycles`
    assert.equal(after.n, before.n, 'no cycle was recorded')
  } finally {
    await sql.end()
  }
})
