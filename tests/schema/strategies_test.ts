// The heal strategies SQL knows (vigil.known_strategies(), what a heal policy may name) are exactly
// the registry's.
import assert from 'node:assert/strict'
import { STRATEGIES } from '../../supabase/functions/_shared/heal/registry.ts'
import { testSql } from '../_env.ts'

Deno.test('vigil.known_strategies() and the strategy registry list the same strategies', async () => {
  const sql = testSql(1)
  try {
    const [{ names }] = await sql<{ names: string[] }[]>`
      select to_jsonb(vigil.known_strategies()) as names`
    assert.deepEqual([...names].sort(), [...STRATEGIES.keys()].sort())
  } finally {
    await sql.end()
  }
})

Deno.test('every strategy either undoes what it did or says why it cannot', () => {
  for (const [name, s] of STRATEGIES) {
    const undoes = typeof s.undo === 'function'
    const says = typeof s.irreversible === 'string' && s.irreversible.length > 10
    assert.ok(undoes !== says, `${name}: exactly one of undo() and irreversible`)
  }
})
