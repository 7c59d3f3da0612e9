// vetStatement on a table in the application's own schema, which the agent has no USAGE on: the
// names are looked up in the catalog (to_regclass would need USAGE; the chaos suite's slow_query
// found it), and a plain SELECT is planned as pg_read_all_data, which may read it.
import assert from 'node:assert/strict'
import {
  EXPLAINER_ROLE,
  vetStatement,
} from '../../supabase/functions/_shared/heal/strategies/vet-statement.ts'
import { agentSql, testSql } from '../_env.ts'
import { createLoginRole, uniqueId } from './_fixtures.ts'

Deno.test('a statement on a table in a schema the agent cannot use is vetted, to be planned as pg_read_all_data', async () => {
  const sql = testSql()
  const agent = agentSql()
  const id = uniqueId()
  const role = `t_vet_app_${id}`
  const schema = `t_vet_${id}`
  try {
    await createLoginRole(sql, role, 'vet-test-password')
    await sql.unsafe(`create schema ${schema} authorization ${role}`)
    await sql.unsafe(`create table ${schema}.orders (id int, customer_id int)`)
    await sql.unsafe(`alter table ${schema}.orders owner to ${role}`)
    const [{ usage }] =
      await sql`select has_schema_privilege('vigil_agent', ${schema}, 'USAGE') as usage`
    assert.equal(usage, false, 'the agent has no USAGE on the app schema')
    const vetted = await vetStatement(
      agent,
      `select * from ${schema}.orders where customer_id = $1`,
      role,
    )
    assert.equal(vetted.ok, true, JSON.stringify(vetted))
    assert.equal(
      vetted.ok && vetted.role,
      EXPLAINER_ROLE,
      'not its own role: the agent may not take it',
    )
  } finally {
    await sql.unsafe(`drop schema if exists ${schema} cascade`)
    await sql.unsafe(`drop role if exists ${role}`)
    await sql.end()
    await agent.end()
  }
})
