// The vigil CLI as a person runs it (`npx vigil …`, a process of its own) against the test stack:
// status and incidents as tables and as JSON, ack and silence writing what they say, analyze through
// the function; bad input refused naming what is wrong, with exit code 2.
import assert from 'node:assert/strict'
import { durationMs, table } from '../../cli/vigil.ts'
import { testSql, testStack } from '../_env.ts'
import { vigil } from './_cli.ts'

Deno.test('status and incidents, as tables and as JSON; ack and silence do what they say', async () => {
  const sql = testSql()
  const name = `cli-${Date.now().toString(36)}`
  await sql`alter table vigil.incidents disable trigger incidents_request_heal`
  try {
    const [svc] = await sql<{ id: string }[]>`
      insert into vigil.services (name, kind, environment, config, enabled)
      values (${name}, 'http', 'qa', '{"url": "http://127.0.0.1:9/"}', false) returning id`
    const [inc] = await sql<{ id: number }[]>`
      insert into vigil.incidents (service_id, kind, severity, title)
      values (${svc.id}, 'service_unhealthy', 'critical', ${`${name} is down`}) returning id::int`

    const status = await vigil('status')
    assert.equal(status.code, 0, status.stderr)
    assert.match(status.stdout, /^SERVICE +KIND +ENV +STATUS +UPTIME 24H$/m)
    assert.match(status.stdout, new RegExp(`^${name} +http +qa +disabled +—$`, 'm'))
    const asJson = JSON.parse((await vigil('status', '--json')).stdout) as { name: string }[]
    assert.ok(asJson.some((s) => s.name === name))

    const open = await vigil('incidents')
    assert.match(
      open.stdout,
      new RegExp(`^${inc.id} +critical +${name} +open +.* no +${name} is down$`, 'm'),
    )

    // What Vigil would do, doing nothing: no restart action, so people would be paged.
    const preview = await vigil('heal', String(inc.id), '--dry-run')
    assert.equal(preview.code, 0, preview.stderr)
    assert.match(
      preview.stdout,
      new RegExp(`^Incident ${inc.id} on ${name} \\(service_unhealthy, open, 0 heal attempts\\)`),
    )
    assert.match(preview.stdout, /^Next: page on-call: no strategy has anything to do/m)
    assert.match(preview.stdout, /^Nothing was done \(--dry-run\)\.$/m)
    const [{ written }] = await sql<{ written: number }[]>`
      select (select count(*) from vigil.heal_actions where incident_id = ${inc.id})
           + (select count(*) from vigil.incident_log where incident_id = ${inc.id})
           + (select count(*) from vigil.alerts where incident_id = ${inc.id}) as written`
    assert.equal(Number(written), 0, 'a dry run writes nothing')
    const real = await vigil('heal', String(inc.id))
    assert.equal(real.code, 2)
    assert.match(real.stderr, /heal only previews, with --dry-run/)

    const ack = await vigil('ack', String(inc.id))
    assert.equal(ack.code, 0, ack.stderr)
    assert.equal(ack.stdout.trim(), `Acknowledged incident ${inc.id}: ${name} is down`)
    const [row] = await sql`select acknowledged_at from vigil.incidents where id = ${inc.id}`
    assert.ok(row.acknowledged_at, 'acknowledged in the database')
    const again = await vigil('ack', String(inc.id))
    assert.equal(again.code, 2)
    assert.equal(again.stderr.trim(), `vigil: incident ${inc.id} was acknowledged already`)

    const silence = await vigil('silence', name, '2h', '--reason', 'migrating the API')
    assert.equal(silence.code, 0, silence.stderr)
    assert.match(
      silence.stdout.trim(),
      new RegExp(`^Silenced ${name} until .* UTC \\(silence \\d+\\): migrating the API$`),
    )
    const [s] = await sql<{ reason: string; hours: number }[]>`
      select reason, round(extract(epoch from ends_at - starts_at) / 3600)::int as hours
        from vigil.silences where service_id = ${svc.id}`
    assert.deepEqual({ ...s }, { reason: 'migrating the API', hours: 2 })

    const analysis = await vigil('analyze', name)
    assert.equal(analysis.code, 0, analysis.stderr)
    assert.match(analysis.stdout, new RegExp(name))
  } finally {
    await sql`alter table vigil.incidents enable trigger incidents_request_heal`
    await sql`update vigil.incidents set status = 'resolved', resolved_at = now()
               where status = 'open' and service_id in (select id from vigil.services where name = ${name})`
    await sql`delete from vigil.services where name = ${name}`
    await sql.end()
  }
})

Deno.test('bad input is refused naming what is wrong, with exit code 2; a wrong key is an error', async () => {
  const unknown = await vigil('frob')
  assert.equal(unknown.code, 2)
  assert.match(unknown.stderr, /^vigil: unknown command "frob"; the commands:\n {2}status /)
  assert.equal((await vigil('ack', 'twelve')).code, 2)
  assert.match((await vigil('ack', '999999999')).stderr, /there is no incident 999999999/)
  const noService = await vigil('silence', 'no-such-service', '1h')
  assert.equal(
    noService.stderr.trim(),
    'vigil: no service is named "no-such-service" (vigil status lists them)',
  )
  assert.match(
    (await vigil('silence', 'x', '2 hours')).stderr,
    /duration must be a number and a unit/,
  )
  assert.match((await vigil('status', '--colour')).stderr, /unknown option --colour/)
  const { apiUrl } = testStack()
  const wrongKey = await new Deno.Command('node', {
    args: [new URL('../../cli/bin.mjs', import.meta.url).pathname, 'status'],
    env: { VIGIL_URL: apiUrl, VIGIL_SERVICE_ROLE_KEY: 'not-a-key' },
    stdout: 'piped',
    stderr: 'piped',
  }).output()
  assert.equal(wrongKey.code, 1)
  assert.match(new TextDecoder().decode(wrongKey.stderr), /^vigil: could not read the services: /)
  assert.ok(!new TextDecoder().decode(wrongKey.stderr).includes('not-a-key'))
  const remote = await new Deno.Command('node', {
    args: [new URL('../../cli/bin.mjs', import.meta.url).pathname, 'status'],
    env: { VIGIL_URL: 'https://abcdefghijklmnopqrst.supabase.co' },
    stdout: 'piped',
    stderr: 'piped',
  }).output()
  assert.equal(remote.code, 2)
  assert.match(new TextDecoder().decode(remote.stderr), /VIGIL_SERVICE_ROLE_KEY is not set/)
})

Deno.test('durations and tables', () => {
  assert.equal(durationMs('30m'), 1_800_000)
  assert.equal(durationMs('1d'), 86_400_000)
  assert.throws(() => durationMs('0m'), /duration must be/)
  assert.throws(() => durationMs('31d'), /at most 30 days/)
  assert.equal(
    table(['A', 'BB'], [['x', null], ['long', 2]]),
    'A     BB\n----  --\nx     —\nlong  2',
  )
})

Deno.test("status lists every service, past the API's 1,000 rows a request", async () => {
  const sql = testSql()
  const prefix = `cli-many-${Date.now().toString(36)}`
  try {
    await sql`insert into vigil.services (name, kind, environment, config, enabled)
              select ${prefix} || '-' || lpad(i::text, 4, '0'), 'http', 'qa',
                     '{"url": "http://127.0.0.1:9/"}', false
                from generate_series(1, 1005) i`
    const listed = await vigil('status', '--json')
    assert.equal(listed.code, 0, listed.stderr)
    const names = (JSON.parse(listed.stdout) as { name: string }[]).map((s) => s.name)
    assert.equal(names.filter((n) => n.startsWith(`${prefix}-`)).length, 1005)
    assert.equal(new Set(names).size, names.length, 'no service twice across pages')
  } finally {
    await sql`delete from vigil.services where name like ${prefix + '-%'}`
  }
})
