import assert from 'node:assert/strict'
import { join } from 'node:path'
import postgres from 'postgres'
import { ROOT } from '../../devstack/config.ts'
import {
  applyMigrations,
  bootstrap,
  initCluster,
  StackError,
  startPostgres,
} from '../../devstack/db.ts'
import { freePort, privateStateDir } from '../../devstack/stack.ts'

async function tempState() {
  return await privateStateDir('vigil-db-test-')
}

Deno.test('a broken migration stops with the SQL error and the file, leaving the cluster sound', async () => {
  const state = await tempState()
  const workdir = join(state, 'project')
  await Deno.mkdir(join(workdir, 'supabase', 'migrations'), { recursive: true })
  await Deno.copyFile(
    join(ROOT, 'supabase', 'config.toml'),
    join(workdir, 'supabase', 'config.toml'),
  )
  for await (const e of Deno.readDir(join(ROOT, 'supabase', 'migrations'))) {
    await Deno.copyFile(
      join(ROOT, 'supabase', 'migrations', e.name),
      join(workdir, 'supabase', 'migrations', e.name),
    )
  }
  await Deno.writeTextFile(
    join(workdir, 'supabase', 'migrations', '29991231000000_broken.sql'),
    'create table vigil.half_made (id int);\ncreate tabel oops;\n',
  )
  const dataDir = join(state, 'db')
  await initCluster(dataDir, 'postgres')
  let pg = await startPostgres({ dataDir, port: freePort(), ephemeral: true }, 'postgres')
  try {
    await bootstrap(pg.url)
    await assert.rejects(applyMigrations(pg.url, workdir), (err: Error) => {
      assert.ok(err instanceof StackError)
      assert.match(err.message, /a migration failed/)
      assert.match(err.message, /29991231000000_broken\.sql/)
      assert.match(err.message, /syntax error/)
      assert.doesNotMatch(
        err.message,
        /postgres:postgres@/,
        'the database URL and password are not echoed',
      )
      return true
    })
    const sql = postgres(pg.url, { max: 1, onnotice: () => {} })
    const [state] = await sql`
      select to_regclass('vigil.services') is not null as earlier_applied,
             to_regclass('vigil.half_made') is null as broken_rolled_back`
    await sql.end()
    assert.deepEqual({ ...state }, { earlier_applied: true, broken_rolled_back: true })
    await pg.stop()
    pg = await startPostgres({ dataDir, port: freePort(), ephemeral: true }, 'postgres')
  } finally {
    await pg.stop()
    await Deno.remove(state, { recursive: true })
  }
})

Deno.test('initCluster refuses a folder that exists but is not a Postgres data folder', async () => {
  const state = await tempState()
  try {
    const dataDir = join(state, 'db')
    await Deno.mkdir(dataDir)
    await Deno.writeTextFile(join(dataDir, 'notes.txt'), 'precious')
    await assert.rejects(
      initCluster(dataDir, 'postgres'),
      /exists but is not a Postgres data folder/,
    )
    assert.equal(
      await Deno.readTextFile(join(dataDir, 'notes.txt')),
      'precious',
      'nothing was touched',
    )
  } finally {
    await Deno.remove(state, { recursive: true })
  }
})
