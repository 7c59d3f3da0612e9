// The error analysis on real rows, read as vigil_agent reads it: a traffic service's top errors and
// failing endpoints, a Sentry project's top issues, the database it depends on down, and a deploy
// that went live ten minutes before, in one analysis whose words name each; and the fix rules.
import assert from 'node:assert/strict'
import { agentSql, testSql } from '../_env.ts'
import {
  analyseErrors,
  suggestFix,
} from '../../supabase/functions/_shared/analysis/error-analysis.ts'

Deno.test('on real rows: top errors from the logs and Sentry, the failing chain upstream and a recent deploy, in words', async () => {
  const sql = testSql()
  const agent = agentSql()
  const tag = `erran-${Date.now().toString(36)}`
  try {
    // Disabled (no cycle probes them) and never healed: only this test writes their checks.
    await sql`alter table vigil.incidents disable trigger incidents_request_heal`
    const [db] = await sql<{ id: string }[]>`
      insert into vigil.services (name, kind, environment, config, enabled)
      values (${`${tag}-db`}, 'postgres', 'qa', '{}', false) returning id`
    const [traffic] = await sql<{ id: string }[]>`
      insert into vigil.services (name, kind, environment, config, enabled, depends_on)
      values (${`${tag}-traffic`}, 'traffic', 'qa', ${
      sql.json({ project_ref: 'abcdefghijklmnopqrst' })
    }, false, ${[`${tag}-db`]}::text[]) returning id`
    const [sentry] = await sql<{ id: string }[]>`
      insert into vigil.services (name, kind, environment, config, enabled)
      values (${`${tag}-sentry`}, 'sentry', 'qa', ${
      sql.json({ organization: 'acme', project: 'shop' })
    }, false) returning id`
    const [web] = await sql<{ id: string }[]>`
      insert into vigil.services (name, kind, environment, config, enabled)
      values (${`${tag}-web`}, 'vercel', 'qa', ${sql.json({ project_id: 'prj_1' })}, false)
      returning id`
    // The database has been down three checks running (its status follows its checks).
    for (let i = 0; i < 3; i++) {
      await sql`insert into vigil.checks (service_id, status, error)
                values (${db.id}, 'down', 'connection refused (127.0.0.1:5432)')`
    }
    await sql`insert into vigil.checks (service_id, status, measurements) values (${sentry.id}, 'healthy', ${
      sql.json({
        top_issues: [
          { title: 'Error: Database connection refused', share_pct: 71, events: 710 },
          { title: 'TimeoutError: fetch failed', share_pct: 29, events: 290 },
        ],
      })
    })`
    await sql`insert into vigil.deployments (service_id, deployment_id, previous_deployment_id, version, finished_at)
              values (${web.id}, 'dpl_bad', 'dpl_good', 'shop@1.4.3', now() - interval '10 minutes')`
    await sql`insert into vigil.checks (service_id, status, error, measurements) values (${traffic.id}, 'down', '5xx on 23.1 %', ${
      sql.json({
        requests: 260,
        error_rate_pct: 23.1,
        baseline_error_rate_pct: 0.2,
        top_errors: [
          {
            message: 'Error: Database connection refused',
            source: 'function_logs',
            lines: 34,
            share_pct: 68,
          },
          {
            message: 'TypeError: cannot read properties of undefined',
            source: 'function_logs',
            lines: 16,
            share_pct: 32,
          },
        ],
        failing_endpoints: [{
          endpoint: 'POST /rest/v1/orders',
          server_errors: 60,
          requests: 60,
          error_rate_pct: 100,
          p95_ms: 35,
        }],
      })
    })`

    const analysis = await analyseErrors(agent, traffic.id)
    assert.ok(analysis)
    assert.deepEqual(analysis.top_errors.map((e) => [e.message, e.share_pct, e.from]), [
      ['Error: Database connection refused', 68, 'logs (function_logs)'],
      ['TypeError: cannot read properties of undefined', 32, 'logs (function_logs)'],
      ['Error: Database connection refused', 71, `Sentry ${tag}-sentry`],
      ['TimeoutError: fetch failed', 29, `Sentry ${tag}-sentry`],
    ])
    assert.deepEqual(analysis.chain.map((c) => [c.service, c.status]), [[`${tag}-db`, 'down']])
    assert.equal(analysis.deploy?.deployment_id, 'dpl_bad')
    assert.equal(analysis.deploy?.service, `${tag}-web`)
    const lines = analysis.text.split('\n')
    assert.equal(
      lines[0],
      `Error analysis of ${tag}-traffic: errors on 23.1 % of 260 requests (baseline 0.2 %).`,
    )
    assert.match(
      lines[1],
      /^Top errors: Error: Database connection refused — 68 % \(logs \(function_logs\)\); /,
    )
    assert.equal(lines[2], 'Affected endpoints: POST /rest/v1/orders (60 of 60 failed).')
    assert.match(
      lines[3],
      new RegExp(
        `^Dependency chain: ${tag}-db down since \\d\\d:\\d\\d UTC → ${tag}-traffic errors\\.$`,
      ),
    )
    assert.match(
      lines[4],
      new RegExp(`^Deploy: shop@1\\.4\\.3 on ${tag}-web at \\d\\d:\\d\\d UTC\\.$`),
    )
    assert.equal(
      lines[5],
      'Suggested fix: a deploy (shop@1.4.3) went live just before: roll it back if the errors began with it; ' +
        'the database is refusing connections: see to the database first (is it up? is its pool full? kill idle connections or raise the pool), then the errors stop on their own.',
    )

    // A check with nothing to analyse (no top errors, no failing endpoint) has no analysis.
    await sql`insert into vigil.checks (service_id, status, measurements) values (${traffic.id}, 'healthy', ${
      sql.json({ requests: 10, top_errors: [], failing_endpoints: [] })
    })`
    assert.equal(await analyseErrors(agent, traffic.id), null)
  } finally {
    await sql`alter table vigil.incidents enable trigger incidents_request_heal`
    await sql`delete from vigil.services where name like ${`${tag}-%`}`
    await sql.end()
    await agent.end()
  }
})

Deno.test('the fix follows the top error: timeouts, refusals by a policy, memory, code; upstream first when it is failing', () => {
  assert.match(
    suggestFix('canceling statement due to statement timeout', false, null),
    /^requests run out of time/,
  )
  assert.match(
    suggestFix('new row violates row-level security policy for table "visits"', false, null),
    /^the app is refused by a permission or row-level security policy/,
  )
  assert.match(suggestFix('Memory limit exceeded', false, null), /^a process runs out of memory/)
  assert.match(
    suggestFix('TypeError: x is not a function', false, null),
    /^a code error in the app/,
  )
  assert.equal(
    suggestFix('Error: something odd', true, null),
    'fix the failing service upstream first: these errors follow from it; read the top error in the logs; nothing Vigil knows explains it yet',
  )
})
