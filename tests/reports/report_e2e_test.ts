// The daily report through the real stack: history seeded on a day of early 2023 (a day of its
// own per run), the `report` function called as pg_cron calls it, the report stored with true
// numbers, and the stand-ins for SendGrid and Slack receiving it; made once however often asked;
// never grouped with an alert to the same person; bad requests refused naming the field.
import assert from 'node:assert/strict'
import { eventually, testStack } from '../_env.ts'
import { awaitReceived, type Recorded, withScene } from '../notify/_stand_ins.ts'

async function callReport(body: unknown, key = testStack().serviceRoleKey) {
  const res = await fetch(`${testStack().apiUrl}/functions/v1/report`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: res.status, body: await res.json() }
}

/** A day between 2 January and 20 February 2023 (no daylight-saving change), picked per run. */
function dayOfThisRun(): string {
  const d = new Date(Date.UTC(2023, 0, 2 + (Math.floor(Date.now() / 1000) % 50)))
  return d.toISOString().slice(0, 10)
}

const mailTo = (address: string) => (r: Recorded) =>
  JSON.stringify((r.body as { personalizations?: unknown })?.personalizations ?? '').includes(
    address,
  )

Deno.test('the daily report tells true numbers by email and Slack, once', async () => {
  await withScene('t-report', async (s) => {
    const { sql } = s
    const day = dayOfThisRun()
    const address = `${s.name}@example.org`
    const [saved] = await sql`select * from vigil.report_settings`
    const made: number[] = []
    try {
      await sql`update vigil.report_settings
                   set time_zone = 'Europe/Berlin', channels = '{email,slack}',
                       roles = '{on_call,senior,team}', currency = 'USD', sla_pct = 99.9,
                       minutes_per_manual_fix = 30, engineer_cost_per_hour = 100`
      const mailContact = await s.contact({ role: 'team', channel: 'email', address })
      await s.contact({
        role: 'team',
        channel: 'slack',
        address: '#ops',
        secret_name: 'VIGIL_LOCAL_SLACK_WEBHOOK_URL',
      })

      // Two services, healthy whenever the cycle checks them now (the stand-ins' own page).
      const url = `${testStack().providersUrl}/`
      const [api] = await sql<{ id: string }[]>`
        insert into vigil.services (name, kind, environment, config)
        values (${`${s.name}-api`}, 'http', 'prod', ${sql.json({ url })}) returning id`
      const [db] = await sql<{ id: string }[]>`
        insert into vigil.services (name, kind, environment, config)
        values (${`${s.name}-db`}, 'http', 'prod', ${sql.json({ url })}) returning id`
      const [{ from }] = await sql<{ from: Date }[]>`
        select (${day}::date::timestamp at time zone 'Europe/Berlin') as from`
      const at = (minutes: number) => new Date(from.getTime() + minutes * 60_000)
      // Uptime: 24 hours of 120 checks each; api had 6 down checks in one hour: 99.792 %.
      for (const [id, down] of [[api.id, 6], [db.id, 0]] as const) {
        await sql`
          insert into vigil.check_rollups (service_id, bucket, checks, healthy, degraded, down)
          select ${id}, ${from}::timestamptz + h * interval '1 hour', 120,
                 120 - case when h = 3 then ${down}::int else 0 end, 0,
                 case when h = 3 then ${down}::int else 0 end
            from generate_series(0, 23) h`
      }
      // Three incidents: healed by Vigil in 10 min; gone by itself in 1 min (a false positive);
      // handled by a person (acknowledged, paged) in 60 min. MTTR (600 + 60 + 3600) / 3 = 1420 s.
      const [healed] = await sql<{ id: number }[]>`
        insert into vigil.incidents (service_id, kind, severity, title, opened_at, resolved_at, status)
        values (${api.id}, 'service_unhealthy', 'critical', ${`${s.name}-api is down`}, ${at(120)},
                ${at(130)}, 'resolved') returning id::int`
      await sql`
        insert into vigil.incidents (service_id, kind, severity, title, opened_at, resolved_at, status)
        values (${db.id}, 'slow_response', 'warning', ${`${s.name}-db blipped`}, ${at(300)},
                ${at(301)}, 'resolved')`
      await sql`
        insert into vigil.incidents (service_id, kind, severity, title, opened_at, resolved_at, status,
                                     acknowledged_at, escalation_level, detail)
        values (${api.id}, 'service_unhealthy', 'critical', ${`${s.name}-api is slow to answer`},
                ${at(600)}, ${at(660)}, 'resolved', ${at(605)}, 3, ${
        sql.json({
          // What the heal engine keeps when errors nobody could heal paged people.
          error_analysis: {
            text: `Error analysis of ${s.name}-api: errors on 23.1 % of 260 requests.\n` +
              'Top errors: Error: Database connection refused — 68 % (logs (function_logs)).',
          },
        })
      })`
      await sql`
        insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt,
                                        reason, outcome, created_at)
        values (gen_random_uuid(), 'result', ${healed.id}, ${api.id}, 'restart_service', 1, 'down',
                'succeeded', ${at(125)})`

      const since = new Date()
      const first = await callReport({ trigger: 'manual', kind: 'daily', date: day })
      assert.equal(first.status, 200, JSON.stringify(first.body))
      const [report] = first.body.reports
      made.push(report.id)
      assert.equal(report.kind, 'daily')
      assert.equal(report.period_start, day)
      assert.ok(report.recipients >= 2, JSON.stringify(report))
      assert.match(
        report.summary,
        /: 1 of 2 services below the 99\.9 % SLA \(lowest 99\.79 %\); 3 incidents, 1 fixed by Vigil, (none|\d+) open now; 1 heal \(100 % succeeded\)\.$/,
      )

      // Stored, with the numbers seeded.
      const [row] = await sql<
        { status: string; text: string; facts: Record<string, any>; from_at: Date }[]
      >`
        select status, body_text as text, facts, from_at from vigil.reports where id = ${report.id}`
      assert.equal(row.status, 'ready')
      assert.equal(row.from_at.getTime(), from.getTime(), 'the day runs from Berlin midnight')
      const kpis = row.facts.kpis.kpis
      assert.deepEqual(
        [
          kpis.auto_heal_success_pct,
          kpis.false_positive_pct,
          kpis.manual_intervention_pct,
          kpis.mttr_seconds,
          kpis.engineer_minutes_saved,
          kpis.cost_per_incident,
        ],
        [100, 33.3, 33.3, 1420, 30, 16.67],
      )

      // The email: HTML and text, with the same true numbers.
      const [mail] = await awaitReceived('sendgrid', since, mailTo(address))
      const body = mail.body as {
        subject: string
        content: { type: string; value: string }[]
      }
      const date = new Intl.DateTimeFormat('en-GB', {
        weekday: 'long',
        day: 'numeric',
        month: 'short',
        year: 'numeric',
        timeZone: 'UTC',
      }).format(new Date(`${day}T12:00:00Z`)).replace(/,/g, '')
      assert.equal(body.subject, `Vigil daily report, ${date}`)
      const text = body.content.find((c) => c.type === 'text/plain')!.value
      const html = body.content.find((c) => c.type === 'text/html')!.value
      for (
        const part of [
          `${s.name}-api   99.792 %    BELOW SLA`,
          `${s.name}-db    100.000 %   met`,
          '3 detected, 3 resolved, 1 fixed by Vigil',
          `❌ critical — ${s.name}-api: ${s.name}-api is down — 10 min, fixed by Vigil`,
          `⚠️ warning — ${s.name}-db: ${s.name}-db blipped — 1 min`,
          'restart service — 1 succeeded',
          'Auto-heal success rate        100.0 %',
          'False-positive rate           33.3 %',
          'Mean time to recover (MTTR)   23 min',
          'Manual-intervention rate      33.3 %',
          'Engineer time saved           30 min',
          'Cost per incident             $16.67',
          `Below the 99.9 % SLA: ${s.name}-api at 99.792 %`,
          'ERROR ANALYSIS',
          'Top errors: Error: Database connection refused — 68 % (logs (function_logs)).',
        ]
      ) {
        assert.ok(text.includes(part), `the email's text lacks ${JSON.stringify(part)}:\n${text}`)
      }
      assert.equal(text, row.text, 'the email carries the stored text')
      assert.ok(
        html.includes('<td style="padding: .15rem 1rem .15rem 0; color: #b42318">99.792 %</td>'),
      )
      assert.ok(html.includes('Europe/Berlin'))

      // Slack: the same report as sections.
      const [chat] = await awaitReceived(
        'slack',
        since,
        (r) => JSON.stringify(r.body).includes(`${s.name}-api: 99.792 % · BELOW SLA`),
      )
      const payload = chat.body as { text: string; blocks: { text: { text: string } }[] }
      assert.equal(payload.text, report.summary)

      await eventually(
        async () => {
          const [d] = await sql`
          select count(*) filter (where status = 'sent')::int as sent, count(*)::int as all
            from vigil.alerts where report_id = ${report.id}`
          return d.sent === d.all && d.all >= 2 ? true : undefined
        },
        15_000,
        'every report alert sent',
      )

      // Once: asked again, nothing is made; made again on purpose, nobody hears it twice.
      const second = await callReport({ kind: 'daily', date: day })
      assert.equal(second.body.reports[0].skipped, 'made already, or being made by another worker')
      const again = await callReport({ kind: 'daily', date: day, again: true })
      assert.equal(again.body.reports[0].recipients, 0)

      // A report alert and a notice to the same person, due together, are two messages.
      const t1 = new Date()
      await sql`
        insert into vigil.alerts (report_id, service_id, contact_id, channel, recipient, severity,
                                  priority, event, subject, body)
        values (${report.id}, null, ${mailContact}, 'email', ${address}, 'info', 'info', 'report',
                'the report again', ${report.summary}),
               (null, ${api.id}, ${mailContact}, 'email', ${address}, 'info', 'info', 'notice',
                'a small notice', 'a small notice for the same person')`
      const both = await awaitReceived('sendgrid', t1, mailTo(address), 2)
      const subjects = both.map((r) => (r.body as { subject: string }).subject).sort()
      assert.equal(subjects.length, 2)
      assert.ok(subjects.some((x) => x === 'the report again'), subjects.join(' | '))
      const notice = both.find((r) =>
        (r.body as { subject: string }).subject !== 'the report again'
      )!
      assert.ok(!JSON.stringify(notice.body).includes('Uptime against'), 'the notice is alone')
    } finally {
      await sql`update vigil.report_settings
                   set time_zone = ${saved.time_zone}, channels = ${saved.channels},
                       roles = ${saved.roles}, currency = ${saved.currency}`
      await sql`delete from vigil.reports where id = any(${made}::bigint[])`
      await sql`update vigil.services set enabled = false where name like ${`${s.name}-%`}`
    }
  })
})

Deno.test('the report function refuses what it cannot do, naming the field', async () => {
  const future = new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10)
  const notYet = await callReport({ kind: 'daily', date: future })
  assert.equal(notYet.status, 422)
  assert.match(notYet.body.error, /^date: the daily period from \d{4}-\d\d-\d\d has not ended yet/)
  const badKind = await callReport({ kind: 'hourly' })
  assert.equal(badKind.status, 400)
  assert.match(JSON.stringify(badKind.body), /kind/)
  const badDate = await callReport({ kind: 'daily', date: '2025-02-30' })
  assert.equal(badDate.status, 400)
  assert.match(JSON.stringify(badDate.body), /date/)
  const dateAlone = await callReport({ date: '2025-02-01' })
  assert.equal(dateAlone.status, 400)
  assert.match(JSON.stringify(dateAlone.body), /a date needs a kind/)
  const extra = await callReport({ kind: 'daily', to: 'everyone' })
  assert.equal(extra.status, 400)
  const anon = await callReport({ kind: 'daily' }, testStack().anonKey)
  assert.ok(anon.status === 401 || anon.status === 403, String(anon.status))
})

Deno.test('pg_cron asks twice an hour; a report is due from 09:00 in the configured zone', async () => {
  const { testSql } = await import('../_env.ts')
  const sql = testSql()
  const [saved] = await sql`select * from vigil.report_settings`
  try {
    // Nothing is due on a stack installed today: its first report is tomorrow morning's.
    const quiet = await callReport({ trigger: 'cron' })
    assert.equal(quiet.status, 200)
    assert.deepEqual(quiet.body.reports, [])
    // Installed three days ago, sending at this UTC hour: yesterday's report is due now.
    await sql`update vigil.report_settings
                 set time_zone = 'UTC', send_hour = extract(hour from now() at time zone 'UTC')::int,
                     reporting_since = now() - interval '3 days', daily = true, weekly = false`
    const [{ yesterday }] =
      await sql`select ((now() at time zone 'UTC')::date - 1)::text as yesterday`
    await sql`delete from vigil.reports where kind = 'daily' and period_start = ${yesterday}::date`
    const due = await callReport({ trigger: 'cron' })
    assert.equal(due.status, 200, JSON.stringify(due.body))
    const [r] =
      await sql`select status from vigil.reports where kind = 'daily' and period_start = ${yesterday}::date`
    assert.equal(r?.status, 'ready', JSON.stringify(due.body))
  } finally {
    await sql`update vigil.report_settings
                 set time_zone = ${saved.time_zone}, send_hour = ${saved.send_hour},
                     reporting_since = ${saved.reporting_since}, daily = ${saved.daily}, weekly = ${saved.weekly}`
    await sql`delete from vigil.reports where kind = 'daily' and period_start >= current_date - 2`
    await sql.end()
  }
})
