// Correlation: incidents that start together on services the topology connects are one story,
// its likely root named first; the pure rule, then the analyze function writing it on real rows.
import assert from 'node:assert/strict'
import {
  correlate,
  type OpenIncident,
  WINDOW_MINUTES,
} from '../../supabase/functions/_shared/analysis/correlate.ts'
import { correlateOpen } from '../../supabase/functions/_shared/analysis/run.ts'
import { agentSql, testSql } from '../_env.ts'

const at = (minute: number) => new Date(Date.parse('2026-12-02T10:00:00Z') + minute * 60_000)

function incident(
  id: number,
  service: string,
  minute: number,
  extra: Partial<OpenIncident> = {},
): OpenIncident {
  return {
    id,
    service,
    kind: 'service_unhealthy',
    severity: 'critical',
    title: `${service} is down`,
    opened_at: at(minute),
    signals: [],
    status: 'down',
    ...extra,
  }
}

const topology = new Map([
  ['db', []],
  ['auth', ['db']],
  ['storage', ['db']],
  ['api', ['auth']],
  ['host', []],
  ['web', ['host']],
  ['elsewhere', []],
])

Deno.test('the database down first, then auth, storage and the API on top of it: one story, the database its root', () => {
  const [story, ...rest] = correlate([
    incident(3, 'api', 2),
    incident(1, 'db', 0, { signals: ['postgres'] }),
    incident(2, 'auth', 1),
    incident(4, 'storage', 1),
    incident(5, 'elsewhere', 1),
  ], topology)
  assert.equal(rest.length, 0, 'the unconnected service is its own story, of one')
  assert.equal(story.root, 1)
  assert.deepEqual(story.related.sort(), [2, 3, 4])
  assert.equal(story.hypothesis, 'database down')
  assert.match(
    story.text,
    /^database down: the services on top of db fail with it\. Likely root: #1 db is down; with /,
  )
})

Deno.test('memory climbing with responses slowing on the host and the web on it: OOM risk', () => {
  const [story] = correlate([
    incident(10, 'web', 3, {
      kind: 'anomaly',
      severity: 'info',
      title: 'web: response time 1,250 ms',
      signals: ['http_request_duration'],
    }),
    incident(11, 'host', 0, {
      kind: 'forecast',
      severity: 'warning',
      title: 'host: memory 100 % in ~4 h',
      signals: ['memory_usage_percent'],
    }),
  ], topology)
  assert.equal(story.hypothesis, 'OOM risk')
  assert.equal(story.root, 11, 'the service the web depends on')
  assert.match(story.text, /^OOM risk: memory is climbing while responses slow down\./)
})

Deno.test('too far apart in time, or not connected, is no story; a lone failure before its own anomaly leads', () => {
  assert.deepEqual(
    correlate([incident(1, 'db', 0), incident(2, 'auth', WINDOW_MINUTES + 1)], topology),
    [],
  )
  assert.deepEqual(correlate([incident(1, 'db', 0), incident(2, 'host', 1)], topology), [])
  const [same] = correlate([
    incident(7, 'api', 0, { kind: 'anomaly', severity: 'info', title: 'api: error rate 40 %' }),
    incident(8, 'api', 1),
  ], topology)
  assert.equal(same.root, 8, 'the failure, not its anomaly')
  assert.equal(same.hypothesis, 'started together')
  assert.deepEqual(correlate([], topology), [])
})

Deno.test('on real rows: each incident of a story carries it in detail.correlation, and loses it when the story ends', async () => {
  const sql = testSql()
  const agent = agentSql()
  const tag = `corr-${Date.now().toString(36)}`
  try {
    await sql`
      insert into vigil.services (name, kind, config, enabled, status) values
        (${`${tag}-db`}, 'postgres', '{}', false, 'down')`
    await sql`
      insert into vigil.services (name, kind, config, enabled, depends_on, status) values
        (${`${tag}-api`}, 'http', ${sql.json({ url: 'http://127.0.0.1:9/' })}, false,
         ${[`${tag}-db`]}::text[], 'down')`
    // Opened by hand, auto-heal held back: only the analysis writes on them.
    await sql`alter table vigil.incidents disable trigger incidents_request_heal`
    const ids = await sql<{ id: number }[]>`
      insert into vigil.incidents (service_id, kind, severity, title, opened_at)
      select id, 'service_unhealthy', 'critical'::vigil.severity, name || ' is down', now() - interval '2 minutes'
        from vigil.services where name = ${`${tag}-db`}
      union all
      select id, 'anomaly', 'info'::vigil.severity, name || ': error rate 40 %', now() - interval '1 minute'
        from vigil.services where name = ${`${tag}-api`}
      returning id::int`
    await sql`alter table vigil.incidents enable trigger incidents_request_heal`
    const [db, api] = ids.map((r) => r.id)

    // As the functions run it: vigil_agent.
    const found = await correlateOpen(agent)
    const ours = found.find((c) => c.root === db)
    assert.ok(ours, JSON.stringify(found))
    assert.deepEqual(ours.related, [api])
    assert.equal(ours.hypothesis, 'database down')
    const rows = await sql<{ id: number; correlation: Record<string, unknown> }[]>`
      select id::int, detail -> 'correlation' as correlation from vigil.incidents
       where id in (${db}, ${api}) order by id`
    for (const r of rows) {
      assert.equal(r.correlation.root, db)
      assert.equal(r.correlation.hypothesis, 'database down')
    }
    // The database's incident ends: the API's anomaly is a story of one, its link removed.
    await sql`update vigil.incidents set status = 'resolved', resolved_at = now() where id = ${db}`
    await correlateOpen(agent)
    const [left] = await sql<{ correlation: unknown }[]>`
      select detail -> 'correlation' as correlation from vigil.incidents where id = ${api}`
    assert.equal(left.correlation, null)
  } finally {
    await sql`delete from vigil.services where name like ${`${tag}-%`}`
    await sql.end()
    await agent.end()
  }
})
