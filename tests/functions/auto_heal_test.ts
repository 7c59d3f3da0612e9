// The auto-heal function's own boundary: what it refuses, and what it does with an incident
// that does not exist (nothing, and says so).
import assert from 'node:assert/strict'
import { testStack } from '../_env.ts'

async function call(body: string, method = 'POST'): Promise<Response> {
  const { apiUrl, serviceRoleKey } = testStack()
  return await fetch(`${apiUrl}/functions/v1/auto-heal`, {
    method,
    headers: { authorization: `Bearer ${serviceRoleKey}`, 'content-type': 'application/json' },
    ...(method === 'POST' && { body }),
  })
}

Deno.test('auto-heal refuses a malformed body naming every bad field', async () => {
  const res = await call('{"incident_id": "seven", "approval": "not-a-uuid", "extra": true}')
  assert.equal(res.status, 400)
  const { error } = await res.json()
  for (const field of ['incident_id', 'approval', 'extra']) assert.match(error, new RegExp(field))
  const notJson = await call('{incident')
  assert.equal(notJson.status, 400)
  await notJson.body?.cancel()
  const get = await call('', 'GET')
  assert.equal(get.status, 405)
  await get.body?.cancel()
})

Deno.test('auto-heal for an incident that is not open does nothing and says why', async () => {
  const res = await call('{"incident_id": 987654321}')
  assert.equal(res.status, 200)
  const report = await res.json()
  assert.equal(report.outcome, 'claimed_elsewhere')
  assert.match(report.summary, /not open/)
  assert.equal(report.detail, undefined, 'details stay in the audit')
})
