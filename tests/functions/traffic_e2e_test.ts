// Real traffic on the local stack: the health-check function's traffic probe asks the stack's Logs
// API stand-in (devstack/logs-api.ts, on the providers' port), which serves what the gateway
// answered and what the real cluster wrote into its log file. A planted error spike opens an
// incident whose page names the top error with its share and carries the error analysis; a
// row-level security refusal made by an ordinary login role, logged by the real cluster, is read
// back from the log file and named with its table.
import assert from 'node:assert/strict'
import { eventually, roleSql, testSql, testStack, withCronPaused } from '../_env.ts'
import { createLoginRole, healthCycle } from '../heal/_fixtures.ts'
import { LOCAL_PROJECT_REF, type LogEvent } from '../../devstack/logs-api.ts'

async function plant(events: Partial<LogEvent>[]) {
  const res = await fetch(`${testStack().providersUrl}/_logs/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(events),
  })
  assert.equal(res.status, 200, await res.text())
}

async function forget() {
  const res = await fetch(`${testStack().providersUrl}/_logs/events`, { method: 'DELETE' })
  await res.body?.cancel()
}

function requests(n: number, method: string, path: string, status: number): Partial<LogEvent>[] {
  return Array.from({ length: n }, () => ({
    source: 'edge_logs' as const,
    log_attributes: {
      'request.method': method,
      'request.path': path,
      'response.status_code': String(status),
      'response.origin_time': '35',
    },
  }))
}

function functionErrors(n: number, message: string): Partial<LogEvent>[] {
  return Array.from({ length: n }, () => ({
    source: 'function_logs' as const,
    event_message: message,
    severity_text: 'ERROR',
    log_attributes: { function_id: 'checkout', level: 'error' },
  }))
}

async function withTrafficService(
  fn: (sql: ReturnType<typeof testSql>, name: string) => Promise<void>,
  config: Record<string, unknown> = {},
) {
  const sql = testSql()
  const name = `traffic-e2e-${Date.now().toString(36)}`
  try {
    await forget()
    await sql`insert into vigil.services (name, kind, environment, config)
              values (${name}, 'traffic', 'qa', ${
      sql.json({
        api_url: testStack().providersUrl,
        project_ref: LOCAL_PROJECT_REF,
        window_minutes: 1,
        ...config,
      })
    })`
    await withCronPaused(sql, ['vigil-health-check'], () => fn(sql, name))
  } finally {
    await sql`delete from vigil.contacts where name = ${`${name} on-call`}`
    await sql`delete from vigil.services where name = ${name}`
    await sql.end()
  }
}

Deno.test('a planted error spike opens an incident whose page names the top error with its share, with the error analysis', async () => {
  await withTrafficService(async (sql, name) => {
    await sql`insert into vigil.contacts (name, role, channel, address, environment)
              values (${`${name} on-call`}, 'on_call', 'email', 'oncall@example.org', 'qa')`
    // Calm enough that what other sessions put in the window meanwhile (the gateway's own answers
    // are edge logs too: one stray 5xx among 200 requests is past the 0.1 % warning) leaves it so.
    await plant(requests(2000, 'GET', '/rest/v1/orders', 200))
    const calm = await healthCycle([name])
    const [calmCheck] = await sql<{ error: string | null }[]>`
      select c.error from vigil.checks c join vigil.services s on s.id = c.service_id
       where s.name = ${name} order by c.id desc limit 1`
    assert.equal(calm.healthy, 1, `${JSON.stringify(calm)}: ${calmCheck?.error}`)

    await plant([
      ...requests(80, 'POST', '/rest/v1/orders', 503),
      // Many, so they lead whatever else the cluster logs meanwhile (CI's other sessions do).
      ...functionErrors(340, 'Error: Database connection refused'),
      ...functionErrors(160, 'TypeError: cannot read properties of undefined'),
    ])
    const incident = await eventually(
      async () => {
        await healthCycle([name])
        const [row] = await sql<{ id: number; severity: string }[]>`
          select i.id::int, i.severity::text from vigil.incidents i
            join vigil.services s on s.id = i.service_id
           where s.name = ${name} and i.status = 'open'`
        return row
      },
      30_000,
      'an incident on the traffic service',
    )
    assert.equal(incident.severity, 'critical')
    const [check] = await sql<{ error: string; measurements: Record<string, unknown> }[]>`
      select c.error, c.measurements from vigil.checks c join vigil.services s on s.id = c.service_id
       where s.name = ${name} order by c.id desc limit 1`
    assert.match(
      check.error,
      /^5xx on [\d.]+ % of \d+ API requests in 1 min .*; top error: Error: Database connection refused — \d+(\.\d)? % of \d+ error lines; most failing: POST \/rest\/v1\/orders \(80 of 80\)/,
    )
    // The planted error leads, and its share is of every error line in the window.
    const [lead] = check.measurements.top_errors as {
      message: string
      lines: number
      share_pct: number
    }[]
    const total = check.measurements.error_lines as number
    assert.equal(lead.message, 'Error: Database connection refused')
    assert.equal(lead.lines, 340)
    assert.equal(lead.share_pct, Math.round((340 / total) * 1000) / 10)
    assert.match(check.error, new RegExp(`— ${lead.share_pct} % of ${total} error lines`))

    // auto-heal, from the incident's trigger: nothing to heal, so on-call is paged with the
    // analysis in the page.
    const alert = await eventually(
      async () => {
        const [row] = await sql<{ subject: string; body: string }[]>`
          select subject, body from vigil.alerts where incident_id = ${incident.id} and channel = 'email'`
        return row
      },
      20_000,
      'the page to on-call',
    )
    assert.match(
      alert.body,
      /top error: Error: Database connection refused — \d+(\.\d)? % of \d+ error lines/,
    )
    assert.match(alert.body, /Error analysis of traffic-e2e-/)
    assert.match(alert.body, /Suggested fix: the database is refusing connections/)
    const [{ analysis }] = await sql<{ analysis: Record<string, unknown> }[]>`
      select detail -> 'error_analysis' as analysis from vigil.incidents where id = ${incident.id}`
    const endpoints = analysis.endpoints as { endpoint: string }[]
    assert.equal(endpoints[0].endpoint, 'POST /rest/v1/orders')
    assert.match(String(analysis.suggestion), /database is refusing connections/)
    // Refusals other sessions provoke on purpose are the RLS test's business, not this one's.
  }, { rls_violations_warning: 1_000_000 })
})

Deno.test('a row-level security refusal, logged by the real cluster, is read from its log file and named with its table', async () => {
  const role = `traffic_rls_${Date.now().toString(36)}`
  const owner = testSql()
  const table = `${role}_visits`
  await owner.unsafe(`create table public.${table} (id int primary key, clinic text not null)`)
  await owner.unsafe(`alter table public.${table} enable row level security`)
  await createLoginRole(owner, role, 'rls-test-password')
  await owner.unsafe(`grant insert, select on public.${table} to ${role}`)
  await owner.unsafe(
    `create policy own_clinic on public.${table} for insert to ${role} with check (clinic = 'north')`,
  )
  const app = roleSql(role, 'rls-test-password')
  try {
    await withTrafficService(async (sql, name) => {
      await plant(requests(60, 'GET', '/rest/v1/visits', 200))
      const calm = await healthCycle([name])
      assert.equal(calm.healthy, 1, JSON.stringify(calm))
      // As an app would: an insert the policy refuses, which the server writes into its log.
      await assert.rejects(
        app.unsafe(`insert into public.${table} values (1, 'south')`),
        /violates row-level security policy/,
      )
      const check = await eventually(
        async () => {
          await healthCycle([name])
          const [row] = await sql<{ status: string; error: string | null }[]>`
            select c.status::text, c.error from vigil.checks c join vigil.services s on s.id = c.service_id
             where s.name = ${name} order by c.id desc limit 1`
          // Other sessions' refusals may degrade it first: wait for the one this test made.
          return row.status === 'degraded' && row.error?.includes(table) ? row : undefined
        },
        20_000,
        'the refusal read back from the cluster log',
      )
      assert.match(
        check.error!,
        new RegExp(`\\d+ row-level security or permission refusals? on [^;]*${table}`),
      )
    }, {
      rls_violations_warning: 1,
      latency_warning_ms: 60_000,
      latency_critical_ms: 120_000,
      top: 25,
    })
  } finally {
    await app.end()
    await owner.unsafe(`drop table if exists public.${table}`)
    await owner.unsafe(`drop role if exists ${role}`)
    await owner.end()
  }
})
