// The local stack's change feed: logical decoding with wal2json, row changes in commit order with
// their types, new row and old key, as the Realtime stand-in will deliver them.
import assert from 'node:assert/strict'
import { ChangeFeed } from '../../devstack/realtime-changes.ts'
import { eventually, testSql } from '../_env.ts'

Deno.test('inserts, updates and deletes of the watched tables come out in commit order, typed', async () => {
  const sql = testSql(3)
  const table = `feed_${crypto.randomUUID().replaceAll('-', '').slice(0, 10)}`
  const other = `${table}_other`
  await sql.unsafe(`create table public.${table} (id int primary key, note text, at timestamptz)`)
  await sql.unsafe(`create table public.${other} (id int primary key)`)
  const feed = new ChangeFeed(sql, `public.${table}`)
  try {
    await feed.start()
    assert.deepEqual(await feed.poll(), [], 'nothing before the first change')
    await sql.unsafe(`insert into public.${table} values (1, 'first', '2026-12-02T08:00:00Z')`)
    await sql.unsafe(`insert into public.${other} values (1)`)
    await sql.unsafe(`update public.${table} set note = 'second' where id = 1`)
    await sql.unsafe(`delete from public.${table} where id = 1`)
    // Decoding reads only WAL already flushed (the test cluster commits asynchronously): poll.
    const changes: Awaited<ReturnType<ChangeFeed['poll']>> = []
    await eventually(
      async () => {
        changes.push(...await feed.poll())
        return changes.length >= 3 ? true : undefined
      },
      10_000,
      'the three changes',
    )
    assert.deepEqual(changes.map((c) => [c.table, c.type]), [
      [table, 'INSERT'],
      [table, 'UPDATE'],
      [table, 'DELETE'],
    ], 'only the watched table, in order')
    const [insert, update, del] = changes
    assert.equal(insert.schema, 'public')
    assert.deepEqual(insert.columns.map((c) => [c.name, c.type]), [
      ['id', 'integer'],
      ['note', 'text'],
      ['at', 'timestamp with time zone'],
    ])
    assert.deepEqual([insert.record.id, insert.record.note], [1, 'first'])
    assert.deepEqual(insert.old_record, {})
    assert.deepEqual(insert.pk, ['id'])
    assert.ok(!Number.isNaN(Date.parse(insert.commit_timestamp)))
    assert.equal(update.record.note, 'second')
    assert.deepEqual(update.old_record, { id: 1 }, 'the old row by its primary key')
    assert.deepEqual([del.record, del.old_record], [{}, { id: 1 }])
    await new Promise((r) => setTimeout(r, 300))
    assert.deepEqual(await feed.poll(), [], 'each change once')
  } finally {
    await feed.stop()
    await sql.unsafe(`drop table if exists public.${table}, public.${other}`)
    const [slots] =
      await sql`select count(*)::int as n from pg_replication_slots where slot_name like 'vigil_realtime_%' and not active`
    await sql.end()
    assert.equal(slots.n, 0, 'no slot left behind')
  }
})
