// A log line about corruption, written by the real cluster into its real log file, read by the
// health-check function's logs probe, opens a critical incident on that one check, and the heal
// engine hands it straight to people (escalation level 3, paged) without acting on it.
import assert from 'node:assert/strict'
import { eventually, testSql, withCronPaused } from '../_env.ts'
import { healthCycle } from '../heal/_fixtures.ts'

const cycle = healthCycle

Deno.test('a PANIC about an unreadable block in the cluster log pages people at once, and Vigil does nothing to the database', async () => {
  const sql = testSql()
  const name = `logs-e2e-${Date.now().toString(36)}`
  try {
    const [{ dir }] = await sql<{ dir: string }[]>`
      select case when current_setting('log_directory') like '/%' then current_setting('log_directory')
                  else current_setting('data_directory') || '/' || current_setting('log_directory') end as dir`
    await sql`insert into vigil.services (name, kind, config)
              values (${name}, 'logs', ${sql.json({ source: 'file', path: dir })})`
    await withCronPaused(sql, ['vigil-health-check'], async () => {
      // The first check starts at the end of the log: what was there before is history.
      const first = await cycle([name])
      assert.equal(first.healthy, 1, JSON.stringify(first))

      // Through the server's own logging: the line a torn page makes Postgres write.
      await sql.unsafe(
        `do $$ begin raise warning 'PANIC:  could not read block 7 in file "base/5/16384": read only 0 of 8192 bytes'; end $$`,
      )
      const incident = await eventually(
        async () => {
          await cycle([name])
          const [row] = await sql<
            {
              id: number
              severity: string
              title: string
              escalation_level: number
              paged: string
            }[]
          >`
          select i.id::int, i.severity::text, i.title, i.escalation_level, i.paged_priority::text as paged
            from vigil.incidents i join vigil.services s on s.id = i.service_id
           where s.name = ${name} and i.status = 'open'`
          return row
        },
        15_000,
        'an incident on the logs service',
      )
      assert.equal(incident.severity, 'critical')
      // auto-heal runs from the incident's trigger: it escalates at once, acting on nothing.
      const log = await eventually(
        async () => {
          const rows = await sql<{ message: string }[]>`
          select message from vigil.incident_log where incident_id = ${incident.id} order by id`
          const text = rows.map((r) => r.message).join('\n')
          return /escalation level 3: .*suspected corruption/.test(text) ? text : undefined
        },
        15_000,
        'the escalation',
      )
      assert.match(log, /Vigil never acts on a log pattern: a human must look/)
      const [after] = await sql<{ escalation_level: number }[]>`
        select escalation_level from vigil.incidents where id = ${incident.id}`
      assert.equal(after.escalation_level, 3)
      const [heals] = await sql<{ n: number }[]>`
        select count(*)::int as n from vigil.heal_actions where incident_id = ${incident.id}
           and phase = 'intent'`
      assert.equal(heals.n, 0, 'no heal was even intended')
      const [check] = await sql<{ error: string; decisive: string }[]>`
        select c.error, c.measurements ->> 'decisive_status' as decisive from vigil.checks c
          join vigil.services s on s.id = c.service_id where s.name = ${name}
         order by c.id desc limit 1`
      assert.equal(check.decisive, 'down')
      assert.match(check.error, /^suspected corruption \(1 line, paged\): .*could not read block 7/)
    })
  } finally {
    await sql`delete from vigil.services where name = ${name}`
    await sql.end()
  }
})
