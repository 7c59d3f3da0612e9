// The invoke path end to end: SQL vigil.invoke → NOTIFY → relay → gateway → function, and the
// outcome back in vigil.invocations.
import assert from 'node:assert/strict'
import { eventually, testSql } from '../_env.ts'

interface Invocation {
  state: string
  status_code: number | null
  error: string | null
  duration_ms: number | null
  transport: string
}

async function outcome(sql: ReturnType<typeof testSql>, id: string): Promise<Invocation> {
  return await eventually(
    async () => {
      const [row] = await sql<Invocation[]>`
      select state, status_code, error, duration_ms, transport from vigil.invocations where id = ${id}`
      return row && !['pending', 'sent'].includes(row.state) ? row : undefined
    },
    30_000,
    `invocation ${id} to finish`,
  )
}

Deno.test('select vigil.invoke reaches the function and records its status code', async () => {
  const sql = testSql()
  try {
    const [{ id }] = await sql`select vigil.invoke('status', '{"from":"invoke_test"}')::text as id`
    const row = await outcome(sql, id)
    assert.equal(row.transport, 'notify')
    assert.equal(row.state, 'succeeded', `error: ${row.error}`)
    assert.equal(row.status_code, 200)
    assert.ok(row.duration_ms !== null && row.duration_ms >= 0)
  } finally {
    await sql.end()
  }
})

Deno.test('an invocation of a missing function is recorded as failed with 404 and the reason', async () => {
  const sql = testSql()
  try {
    const [{ id }] = await sql`select vigil.invoke('no-such-function')::text as id`
    const row = await outcome(sql, id)
    assert.equal(row.state, 'failed')
    assert.equal(row.status_code, 404)
    assert.match(row.error ?? '', /not found/i)
  } finally {
    await sql.end()
  }
})

Deno.test('an invocation in a transaction that rolls back is never sent', async () => {
  const sql = testSql()
  try {
    const before = await sql`select coalesce(max(id), 0)::text as max from vigil.invocations`
    await sql.begin(async (tx) => {
      await tx`select vigil.invoke('status', '{}')`
      throw new Error('rollback')
    }).catch(() => {})
    // A later invocation completes, so the relay has had its chance to see the first one.
    const [{ id }] = await sql`select vigil.invoke('status', '{}')::text as id`
    await outcome(sql, id)
    const rows = await sql`select id from vigil.invocations where id > ${
      before[0].max
    } and id <> ${id}`
    assert.equal(rows.length, 0)
  } finally {
    await sql.end()
  }
})

Deno.test('a pending invocation whose NOTIFY was missed is picked up by the relay catch-up', async () => {
  const sql = testSql()
  try {
    const [{ id }] = await sql`
      insert into vigil.invocations (fn, body, transport) values ('status', '{}', 'notify') returning id::text`
    const row = await outcome(sql, id)
    assert.equal(row.state, 'succeeded', `error: ${row.error}`)
  } finally {
    await sql.end()
  }
})
