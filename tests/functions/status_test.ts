// The public status function, over HTTP through the gateway, on the real schema.
import assert from 'node:assert/strict'
import { testSql, testStack } from '../_env.ts'

interface StatusBody {
  status: string
  services: { name: string; status: string; uptime_24h: number | null }[]
}

async function getStatus(init: RequestInit = {}): Promise<Response> {
  return await fetch(`${testStack().apiUrl}/functions/v1/status`, init)
}

Deno.test('status answers anyone with each enabled service, its uptime, and the worst status overall', async () => {
  const sql = testSql()
  const names = ['status-test-api', 'status-test-db', 'status-test-off']
  try {
    const services = await sql<{ id: string; name: string }[]>`
      insert into vigil.services (name, kind, config, status, enabled) values
        (${names[0]}, 'http', '{"url": "http://127.0.0.1:9/"}', 'degraded', true),
        (${names[1]}, 'postgres', '{}', 'healthy', true),
        (${names[2]}, 'http', '{"url": "http://127.0.0.1:9/"}', 'down', false)
      returning id, name`
    const api = services.find((s) => s.name === names[0])!.id
    // Three of four checks in the window were not down: 75 % uptime.
    await sql`
      insert into vigil.checks (service_id, status, response_ms, error, checked_at) values
        (${api}, 'healthy', 12, null, now() - interval '3 hours'),
        (${api}, 'degraded', 420, null, now() - interval '2 hours'),
        (${api}, 'down', null, 'connection refused', now() - interval '1 hour'),
        (${api}, 'healthy', 15, null, now())`

    const res = await getStatus() // no token: verify_jwt = false for status
    assert.equal(res.status, 200)
    const body = await res.json() as StatusBody
    const mine = body.services.filter((s) => names.includes(s.name))
    assert.deepEqual(mine, [
      { name: 'status-test-api', status: 'degraded', uptime_24h: 75 },
      { name: 'status-test-db', status: 'healthy', uptime_24h: null },
    ])
    assert.equal(body.status, 'degraded')

    await sql`update vigil.services set status = 'down' where name = ${names[1]}`
    const worse = await (await getStatus({ method: 'POST', body: '{}' })).json() as StatusBody
    assert.equal(worse.status, 'down', 'POST (as vigil.invoke sends) answers like GET')
  } finally {
    await sql`delete from vigil.services where name in ${sql(names)}`
    await sql.end()
  }
})

Deno.test('status refuses methods it does not serve and answers CORS preflights', async () => {
  const put = await getStatus({ method: 'PUT', body: '{}' })
  assert.equal(put.status, 405)
  assert.match(put.headers.get('allow') ?? '', /GET/)
  await put.body?.cancel()
  const options = await getStatus({ method: 'OPTIONS' })
  assert.equal(options.status, 204)
  assert.equal(options.headers.get('access-control-allow-origin'), '*')
  await options.body?.cancel()
})
