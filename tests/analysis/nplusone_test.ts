// N+1 detection: the pure rule on planted samples, then a real N+1 run by an ordinary login role
// against the real database, sampled from pg_stat_statements, found by the analyze function and
// kept as a recommendation with the suggested fix.
import assert from 'node:assert/strict'
import {
  findNPlusOne,
  shortQuery,
  type StatementSample,
} from '../../supabase/functions/_shared/analysis/nplusone.ts'
import {
  type NPlusOne,
  slowQueryReport,
} from '../../supabase/functions/_shared/maintenance/tasks/slow-query-report.ts'
import { agentSql, roleSql, testSql, testStack } from '../_env.ts'

const PARENT = 'select id, name from users where team_id = $1 order by name'
const CHILD = 'select id, domain from domains where owner_id = $1'

/** Cumulative samples from calls per period: one sample before, one after each period. */
function planted(perPeriod: Record<string, { query: string; calls: number[]; ms?: number }>) {
  const samples: StatementSample[] = []
  const periods = Object.values(perPeriod)[0].calls.length
  const start = Date.parse('2026-12-02T10:00:00Z')
  for (const [queryid, s] of Object.entries(perPeriod)) {
    let calls = 100
    for (let i = 0; i <= periods; i++) {
      if (i > 0) calls += s.calls[i - 1]
      samples.push({
        taken_at: new Date(start + i * 60_000),
        queryid,
        query: s.query,
        calls,
        total_exec_ms: calls * (s.ms ?? 0.2),
      })
    }
  }
  return samples
}

Deno.test('findNPlusOne: a cheap per-row lookup in lockstep with its list, ~50 per call, is found and worded', () => {
  const found = findNPlusOne(planted({
    '1': { query: PARENT, calls: [1, 2, 0, 1, 3, 0] },
    '2': { query: CHILD, calls: [50, 100, 0, 50, 150, 0] },
    // Busy on its own rhythm: no pair.
    '3': { query: 'select * from sessions where token = $1', calls: [400, 10, 300, 0, 20, 500] },
    // In step but few per call: no N+1.
    '4': { query: 'select count(*) from teams where id = $1', calls: [1, 2, 0, 1, 3, 0] },
  }))
  assert.equal(found.length, 1)
  const [f] = found
  assert.equal(f.parent.queryid, '1')
  assert.equal(f.child.queryid, '2')
  assert.equal(f.ratio, 50)
  assert.equal(f.periods, 4)
  assert.equal(
    f.text,
    `N+1 pattern: \`${CHILD}\` runs ~50 times per call of \`${PARENT}\``,
  )
  assert.match(f.suggestion, /join its table on owner_id .*owner_id = any\(\$1\)/)
})

Deno.test('findNPlusOne: an expensive child, one with no per-row filter, one out of step, an unsteady ratio and a reset find nothing', () => {
  const parent = { query: PARENT, calls: [1, 2, 1, 1] }
  assert.deepEqual(
    findNPlusOne(planted({ '1': parent, '2': { query: CHILD, calls: [50, 100, 50, 50], ms: 40 } })),
    [],
    'each call costs 40 ms: a slow statement, not round trips',
  )
  assert.deepEqual(
    findNPlusOne(planted({
      '1': parent,
      '2': { query: 'select * from domains order by id', calls: [50, 100, 50, 50] },
    })),
    [],
    'no parameter to filter on: not a per-row lookup',
  )
  assert.deepEqual(
    findNPlusOne(planted({
      '1': { query: PARENT, calls: [1, 0, 1, 0, 1, 0] },
      '2': { query: CHILD, calls: [50, 300, 50, 300, 50, 300] },
    })),
    [],
    'most of its calls come when the list does not run',
  )
  assert.deepEqual(
    findNPlusOne(planted({
      '1': { query: PARENT, calls: [1, 1, 1, 1] },
      '2': { query: CHILD, calls: [5, 200, 8, 90] },
    })),
    [],
    'a ratio all over the place is a shared rhythm, not a loop',
  )
  const reset = planted({ '1': parent, '2': { query: CHILD, calls: [50, 100, 50, 50] } })
  // pg_stat_statements reset after the second sample: counters start again from near zero.
  for (const s of reset) {
    if (s.taken_at.getTime() >= Date.parse('2026-12-02T10:02:00Z')) s.calls -= 100
  }
  const afterReset = findNPlusOne(reset)
  assert.equal(afterReset.length, 1, 'the other periods still show it')
  assert.equal(afterReset[0].periods, 3)
  assert.deepEqual(findNPlusOne([]), [])
})

Deno.test('shortQuery folds spaces and cuts long statements', () => {
  assert.equal(shortQuery('select  1\n  from x'), 'select 1 from x')
  assert.equal(shortQuery('x'.repeat(200)).length, 120)
})

Deno.test('a real N+1 by an ordinary login role is sampled, found by analyze, and recommended with its fix', async () => {
  const sql = testSql()
  const schema = `nplus_${Date.now().toString(36)}`
  const role = `${schema}_app`
  const password = 'local-test-password-nplus'
  const app = roleSql(role, password)
  const agent = agentSql()
  const [svc] = await sql<{ id: string }[]>`
    insert into vigil.services (name, kind, config, heal_enabled, created_at)
    values (${`${schema}-db`}, 'postgres', '{}', false, '2000-01-01') returning id::text`
  try {
    await sql.unsafe(`
      create role ${role} login password '${password}';
      create schema ${schema} authorization ${role};
      create table ${schema}.users (id int primary key, team_id int, name text);
      create table ${schema}.domains (id int primary key, owner_id int, domain text);
      insert into ${schema}.users select g, g % 3, 'user ' || g from generate_series(1, 30) g;
      insert into ${schema}.domains select g, g % 30 + 1, 'd' || g || '.example' from generate_series(1, 90) g;
      create index on ${schema}.domains (owner_id);
      grant usage on schema ${schema} to ${role};
      grant select on all tables in schema ${schema} to ${role};`)
    // The app's loop: a list of a team's users, then one query per user for their domains.
    const page = async (team: number) => {
      const users = await app`select id, name from ${
        app(schema)
      }.users where team_id = ${team} order by name`
      for (const u of users) {
        await app`select id, domain from ${app(schema)}.domains where owner_id = ${u.id}`
      }
    }
    // A statement is known from its first sample on: the first burst only makes it known. The
    // samples take every statement (the default takes the 300 most called: on a database that has
    // run the whole suite, a list called once is not among them).
    for (const burst of [[0], [1], [1, 2], [0]]) {
      for (const team of burst) await page(team)
      await sql`select vigil.sample_statements(5000)`
    }
    const { apiUrl, serviceRoleKey } = testStack()
    const res = await fetch(`${apiUrl}/functions/v1/analyze`, {
      method: 'POST',
      headers: { authorization: `Bearer ${serviceRoleKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ trigger: 'manual' }),
    })
    const run = await res.json()
    assert.equal(res.status, 200, JSON.stringify(run))
    const [rec] = await sql<{ title: string; detail: Record<string, any> }[]>`
      select title, detail from vigil.recommendations
       where kind = 'n_plus_one' and status = 'open' and title like ${`%${schema}".domains%`}`
    const seen = await sql`
      select taken_at, calls::int, left(query, 60) as query from vigil.statement_samples
       where query like ${`%${schema}".%`} order by taken_at`
    assert.ok(
      rec,
      `an n_plus_one recommendation; the run said ${JSON.stringify(run.n_plus_one)}; samples ${
        JSON.stringify(seen)
      }`,
    )
    assert.match(
      rec.title,
      new RegExp(
        `^N\\+1 pattern: \`select id, domain from "?${schema}"?\\.domains where owner_id = \\$1\` runs ~10 times per call of \`select id, name from "?${schema}"?\\.users where team_id = \\$1 order by name\`$`,
      ),
    )
    assert.equal(rec.detail.ratio, 10)
    assert.match(rec.detail.suggestion, /owner_id = any\(\$1\)/)
    // Vigil's own statements are never sampled.
    const [own] = await sql<{ n: number }[]>`
      select count(*)::int as n from vigil.statement_samples s join pg_roles r on r.oid = s.userid
       where r.rolname like 'vigil\\_%'`
    assert.equal(own.n, 0)

    // The daily slow-query report lists it after the slowest statements.
    const report = await slowQueryReport.run({
      sql: agent,
      env: () => undefined,
      signal: AbortSignal.timeout(60_000),
    })
    const listed = (report.findings as NPlusOne[]).find((f) =>
      f.kind === 'n_plus_one' && f.title === rec.title
    )
    assert.ok(listed, JSON.stringify(report.findings))
    assert.match(listed.suggestion ?? '', /owner_id = any\(\$1\)/)
    assert.match(report.summary, /\d+ N\+1 patterns? open/)
  } finally {
    await agent.end()
    await app.end()
    await sql`delete from vigil.services where id = ${svc.id}`
    await sql`delete from vigil.recommendations where kind = 'n_plus_one' and title like ${`%${schema}%`}`
    await sql.unsafe(`drop schema if exists ${schema} cascade; drop role if exists ${role};`)
    await sql.end()
  }
})
