// The maintenance tasks on the real local database, as vigil_agent, and the function over HTTP.
import assert from 'node:assert/strict'
import { extensionVersions } from '../../supabase/functions/_shared/maintenance/tasks/extension-versions.ts'
import { failoverTest } from '../../supabase/functions/_shared/maintenance/tasks/failover-test.ts'
import { agentSql, testSql, testStack } from '../_env.ts'

const ctx = (sql: ReturnType<typeof agentSql>) => ({
  sql,
  env: () => undefined,
  signal: AbortSignal.timeout(30_000),
})

Deno.test('failover_test: no standby here, so not applicable — said, not faked', async () => {
  const agent = agentSql()
  try {
    const result = await failoverTest.run(ctx(agent))
    assert.equal(result.status, 'not_applicable')
    assert.match(result.summary, /no replica or standby is configured/)
  } finally {
    await agent.end()
  }
})

Deno.test('extension_versions: an extension behind the server’s version is named with its fix', async () => {
  const sql = testSql()
  const agent = agentSql()
  const schema = `t_ext_${Date.now().toString(36)}`
  try {
    await sql.unsafe(`create schema ${schema}; create extension seg version '1.3' schema ${schema}`)
    const result = await extensionVersions.run(ctx(agent))
    assert.equal(result.status, 'succeeded')
    assert.match(
      result.summary,
      /^Postgres 15\.\d+\b.*; \d+ extension\(s\) behind: .*seg 1\.3 → 1\.4/,
    )
    const seg = (result.findings as { extension?: string; fix?: string }[]).find((f) =>
      f.extension === 'seg'
    )
    assert.equal(seg?.fix, 'alter extension seg update;  -- 1.3 → 1.4')

    await sql`alter extension seg update`
    const after = await extensionVersions.run(ctx(agent))
    assert.doesNotMatch(after.summary, /seg/)
  } finally {
    await sql.unsafe(`drop schema if exists ${schema} cascade`)
    await agent.end()
    await sql.end()
  }
})

Deno.test('the maintenance function runs a cadence and records it; a bad body is a clear 400', async () => {
  const { apiUrl, serviceRoleKey } = testStack()
  const sql = testSql()
  const post = (body: unknown) =>
    fetch(`${apiUrl}/functions/v1/maintenance`, {
      method: 'POST',
      headers: { authorization: `Bearer ${serviceRoleKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
  try {
    const since = new Date()
    const res = await post({ cadence: 'weekly' })
    assert.equal(res.status, 200)
    const body = await res.json()
    assert.equal(body.cadence, 'weekly')
    const byTask = Object.fromEntries(
      (body.runs as { task: string; status: string }[]).map((r) => [r.task, r.status]),
    )
    assert.equal(byTask.failover_test, 'not_applicable')
    assert.equal(byTask.extension_versions, 'succeeded')
    const rows = await sql`
      select task, status, cadence from vigil.maintenance_runs
       where started_at >= ${since} and task in ('failover_test', 'extension_versions') order by id`
    assert.deepEqual(rows.map((r) => [r.task, r.status, r.cadence]), [
      ['failover_test', 'not_applicable', 'weekly'],
      ['extension_versions', 'succeeded', 'weekly'],
    ])

    const unknown = await post({ task: 'defragment_the_moon' })
    assert.equal(unknown.status, 400)
    assert.match(
      await unknown.text(),
      /unknown task; known: vacuum_analyze, statements_snapshot, failover_test, extension_versions/,
    )
    const both = await post({ cadence: 'yearly' })
    assert.equal(both.status, 400)
    await both.body?.cancel()
  } finally {
    await sql.end()
  }
})
