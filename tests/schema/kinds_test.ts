import assert from 'node:assert/strict'
import { SQL_ENUMS } from '../../shared/kinds.ts'
import { testSql } from '../_env.ts'

Deno.test('every kind list in shared/kinds.ts equals its SQL enum, value for value and in order', async () => {
  const sql = testSql()
  try {
    const rows = await sql<{ name: string; labels: string[] }[]>`
      select t.typname as name, array_agg(e.enumlabel order by e.enumsortorder)::text[] as labels
        from pg_type t
        join pg_enum e on e.enumtypid = t.oid
        join pg_namespace n on n.oid = t.typnamespace
       where n.nspname = 'vigil'
       group by t.typname`
    const inSql = Object.fromEntries(rows.map((r) => [r.name, r.labels]))
    assert.deepEqual(
      Object.keys(inSql).sort(),
      Object.keys(SQL_ENUMS).sort(),
      'the same enum types on both sides',
    )
    for (const [name, values] of Object.entries(SQL_ENUMS)) {
      assert.deepEqual(inSql[name], [...values], `vigil.${name}`)
    }
  } finally {
    await sql.end()
  }
})
