// The logs probe: new lines of a real log file (and a rotated one), matched by the real
// vigil.match_log_lines against the built-in patterns; matches held across quiet checks; the
// Management API's logs endpoint through a recording peer, with its 429s, 5xxs, a wrong token and
// a body that is not what it should be.
import assert from 'node:assert/strict'
import {
  hold,
  logsProbe,
  masked,
  type Match,
} from '../../supabase/functions/_shared/probes/logs.ts'
import { agentSql } from '../_env.ts'
import { assertNoSecrets, json, runProbe, withPeer } from './_harness.ts'

const REF = 'abcdefghijklmnopqrst'
const TOKEN = 'sbp_local_test_token_logs_0123456789'

async function withLogDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: 'vigil-logs-' })
  try {
    await fn(dir)
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
}

const append = (file: string, text: string | Uint8Array) =>
  typeof text === 'string'
    ? Deno.writeTextFile(file, text, { append: true })
    : Deno.writeFile(file, text, { append: true })

Deno.test('file: the first check starts at the end; new lines are matched, a PANIC about corruption is decisive and paged', async () => {
  const db = agentSql()
  await withLogDir(async (dir) => {
    const file = `${dir}/postgresql-Thu.log`
    await Deno.writeTextFile(
      file,
      '2026-12-03 04:00:00.000 UTC [11] PANIC:  could not read block 7 in file "base/5/1": old\n',
    )
    const config = { source: 'file', path: dir }
    const first = await runProbe(logsProbe, config, { db })
    assert.equal(first.status, 'healthy', 'what was there before Vigil watched is history')
    assert.deepEqual(first.measurements.cursor, { file, offset: (await Deno.stat(file)).size })

    await append(
      file,
      "2026-12-03 04:01:00.000 UTC [12] app@postgres LOG:  statement: select 'secret-value'\n" +
        '2026-12-03 04:01:01.000 UTC [13] PANIC:  could not read block 7 in file "base/5/16384": read only 0 of 8192 bytes\n',
    )
    // A line not in UTF-8, and one still being written (no newline yet).
    await append(file, new Uint8Array([0x45, 0x52, 0xff, 0xfe, 0x0a]))
    await append(file, '2026-12-03 04:01:02.000 UTC [14] FATAL:  the database system is shut')
    const second = await runProbe(logsProbe, config, { db, previous: first.measurements })
    assert.equal(second.status, 'down', second.error)
    assert.equal(second.measurements.decisive_status, 'down')
    assert.equal(second.measurements.lines_read, 3)
    const matches = second.measurements.matches as Match[]
    assert.deepEqual(matches.map((m) => m.pattern).sort(), ['server_panic', 'suspected_corruption'])
    assert.ok(matches.every((m) => m.action === 'page' && m.severity === 'critical'))
    assert.match(second.error!, /^suspected corruption \(1 line, paged\): .*could not read block 7/)
    assert.ok(!JSON.stringify(second).includes('secret-value'))

    // The half-written line is read once it ends; the held PANIC keeps the service down.
    await append(file, 'ting down\n')
    const third = await runProbe(logsProbe, config, { db, previous: second.measurements })
    assert.equal(third.measurements.lines_read, 1)
    assert.deepEqual(
      (third.measurements.matches as Match[]).map((m) => m.pattern),
      ['database_fatal'],
    )
    assert.equal(third.status, 'down', 'the PANIC is held for hold_minutes')
    assert.deepEqual(
      (third.measurements.held as Match[]).map((m) => m.pattern),
      ['suspected_corruption', 'server_panic', 'database_fatal'],
    )

    // Rotation: the rest of the old file, then the new one from its start.
    await append(file, '2026-12-03 04:02:00.000 UTC [15] LOG:  last line of the old file\n')
    const next = `${dir}/postgresql-Fri.log`
    await Deno.writeTextFile(next, '2026-12-04 00:00:00.000 UTC [16] LOG:  checkpoint starting\n')
    const later = new Date(Date.now() + 1000)
    await Deno.utime(next, later, later)
    const rotated = await runProbe(logsProbe, config, { db, previous: third.measurements })
    assert.equal(rotated.measurements.lines_read, 2)
    assert.deepEqual(rotated.measurements.cursor, {
      file: next,
      offset: (await Deno.stat(next)).size,
    })
  })
  await db.end()
})

Deno.test('file: a huge page waits for the next check, a missing path is down naming it', async () => {
  const db = agentSql()
  await withLogDir(async (dir) => {
    const file = `${dir}/big.log`
    await Deno.writeTextFile(file, '')
    const config = { source: 'file', path: file, max_bytes: 1024 }
    const first = await runProbe(logsProbe, config, { db })
    await append(file, 'x'.repeat(100) + '\n'.repeat(1) + 'LOG: filler line\n'.repeat(200))
    const second = await runProbe(logsProbe, config, { db, previous: first.measurements })
    assert.equal(second.measurements.truncated, true)
    const offset = (second.measurements.cursor as { offset: number }).offset
    assert.ok(offset > 0 && offset <= 1024, `read ${offset} bytes of a 1,024-byte budget`)
    const third = await runProbe(logsProbe, config, { db, previous: second.measurements })
    assert.ok((third.measurements.cursor as { offset: number }).offset > offset)

    const gone = await runProbe(logsProbe, { source: 'file', path: `${dir}/nope` }, { db })
    assert.equal(gone.status, 'down')
    assert.match(gone.error!, /^cannot read .*\/nope: /)
  })
  await db.end()
})

Deno.test('held matches expire after hold_minutes; a repeated pattern counts on', () => {
  const m = (pattern: string, count = 1): Match => ({
    pattern,
    severity: 'warning',
    action: 'alert',
    count,
    line: 'FATAL:  database "x" does not exist',
    at: null,
    description: '',
    priority: 0,
  })
  const t0 = new Date('2026-12-03T10:00:00Z')
  const held = hold([], [m('database_fatal', 2)], t0, 60)
  const again = hold(held, [m('database_fatal', 3)], new Date('2026-12-03T10:30:00Z'), 60)
  assert.equal(again[0].count, 5)
  assert.equal(again[0].first_at, '2026-12-03T10:00:00.000Z')
  assert.deepEqual(hold(again, [], new Date('2026-12-03T11:29:00Z'), 60).length, 1)
  assert.deepEqual(hold(again, [], new Date('2026-12-03T11:31:00Z'), 60), [])
  assert.equal(masked("ERROR:  x at 'p@ss' and\tthen"), "ERROR:  x at '…' and then")
})

Deno.test('logs_api: rows after the cursor, 429 asked again with backoff, the token never shown', async () => {
  const db = agentSql()
  let calls = 0
  // Lines written after the first check (which starts at the end of the log): a minute from now,
  // in whole seconds, as the two shapes the endpoint gives timestamps in.
  const t1 = new Date(Math.ceil(Date.now() / 1000) * 1000 + 60_000)
  const t2 = new Date(t1.getTime() + 1000)
  await withPeer(() => (req) => {
    calls++
    if (req.headers.get('authorization') !== `Bearer ${TOKEN}`) return json({ message: 'no' }, 401)
    if (calls === 2) return json({ message: 'slow down' }, 429)
    const url = new URL(`http://x${req.path}`)
    assert.match(url.pathname, new RegExp(`^/v1/projects/${REF}/analytics/endpoints/logs$`))
    assert.match(url.searchParams.get('sql')!, /from logs where source in \('postgres_logs'\)/)
    if (calls === 1) return json({ result: [] })
    return json({
      result: [
        {
          id: 'a1',
          timestamp: t1.getTime() * 1000,
          event_message: 'LOG:  checkpoint complete',
        },
        {
          id: 'a2',
          timestamp: t2.toISOString().slice(0, 19).replace('T', ' '),
          event_message: 'PANIC:  invalid page in block 12 of relation base/5/1',
        },
      ],
    })
  }, async (base) => {
    const config = { source: 'logs_api', api_url: base, project_ref: REF }
    const secrets = { VIGIL_SUPABASE_ACCESS_TOKEN: TOKEN }
    const first = await runProbe(logsProbe, config, { db, secrets })
    assert.equal(first.status, 'healthy', first.error)
    const second = await runProbe(logsProbe, config, { db, secrets, previous: first.measurements })
    assert.equal(second.measurements.attempts, 2, 'the 429 was asked again')
    assert.equal(second.status, 'down', second.error)
    assert.equal(second.measurements.lines_read, 2)
    assert.deepEqual(second.measurements.cursor, { after: t2.toISOString(), ids: ['a2'] })
    assertNoSecrets(second, [TOKEN])

    const wrong = await runProbe(logsProbe, config, {
      db,
      secrets: { VIGIL_SUPABASE_ACCESS_TOKEN: 'wrong' },
    })
    assert.equal(wrong.status, 'down')
    assert.equal(
      wrong.error,
      'access token in VIGIL_SUPABASE_ACCESS_TOKEN rejected by the logs endpoint (HTTP 401)',
    )
  })
  await db.end()
})

Deno.test('logs_api: a 5xx that lasts is degraded with its attempts, an error body names the refusal, the cursor is kept', async () => {
  const db = agentSql()
  let mode: 'fail' | 'error' | 'garbage' = 'fail'
  await withPeer(() => () => {
    if (mode === 'fail') return new Response('upstream down', { status: 503 })
    if (mode === 'error') return json({ error: { message: 'Table "x" does not exist.' } })
    return new Response('<html>', { status: 200 })
  }, async (base) => {
    const config = { source: 'logs_api', api_url: base, project_ref: REF }
    const secrets = { VIGIL_SUPABASE_ACCESS_TOKEN: TOKEN }
    const previous = { cursor: { after: '2026-12-03T10:00:00.000Z', ids: [] }, held: [] }
    const failing = await runProbe(logsProbe, config, { db, secrets, previous })
    assert.equal(failing.status, 'degraded')
    assert.match(failing.error!, /^logs endpoint answered HTTP 503 \(3 attempts\): upstream down/)
    assert.deepEqual(failing.measurements.cursor, previous.cursor, 'nothing read, nothing lost')
    mode = 'error'
    const refused = await runProbe(logsProbe, config, { db, secrets, previous })
    assert.match(refused.error!, /^logs endpoint refused the query: .*does not exist/)
    mode = 'garbage'
    const garbage = await runProbe(logsProbe, config, { db, secrets, previous })
    assert.match(
      garbage.error!,
      /^logs endpoint answered something else than \{result: \[\.\.\.\]\}/,
    )
  })
  await db.end()
})
