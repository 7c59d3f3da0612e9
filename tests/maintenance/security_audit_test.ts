// security_audit as the maintenance function runs it: the project database linted as vigil_agent,
// each kind of finding one incident with its fixes, updated as objects change, resolved when fixed.
import assert from 'node:assert/strict'
import { securityAudit } from '../../supabase/functions/_shared/maintenance/tasks/security-audit.ts'
import { agentSql, testSql } from '../_env.ts'

Deno.test('a planted table without RLS is found, tracked as one incident, resolved when fixed', async () => {
  const sql = testSql()
  const agent = agentSql()
  const stamp = Date.now().toString(36)
  const schema = `t_audit_${stamp}`
  const service = `audit-db-${stamp}`
  const env = (name: string) => (name === 'VIGIL_EXPOSED_SCHEMAS' ? schema : undefined)
  const run = () => securityAudit.run({ sql: agent, env, signal: AbortSignal.timeout(30_000) })
  try {
    await sql.unsafe(
      `create schema ${schema}; create table ${schema}.patients (id int primary key, name text)`,
    )
    await sql`insert into vigil.services (name, kind, environment, config, heal_enabled)
              values (${service}, 'postgres', 'dev', '{}', false)`

    const first = await run()
    assert.equal(first.status, 'succeeded')
    assert.match(
      first.summary,
      new RegExp(`finding\\(s\\) in ${schema}: .*rls_disabled_in_public × 1`),
    )
    const findings = first.findings as { lint: string; object: string; remediation: string }[]
    const rls = findings.find((f) => f.lint === 'rls_disabled_in_public')
    assert.equal(rls?.object, `${schema}.patients`)
    assert.match(rls!.remediation, /enable row level security/)
    const incident = async () =>
      (await sql`
        select i.status, i.severity::text, i.title from vigil.incidents i join vigil.services s on s.id = i.service_id
         where s.name = ${service} and i.kind = 'lint_rls_disabled_in_public' order by i.id desc limit 1`)[
        0
      ]
    const opened = await incident()
    assert.deepEqual([opened.status, opened.severity], ['open', 'critical'])
    assert.match(opened.title, /row level security disabled/)

    // Run again unchanged: the same incident, no second one.
    await run()
    const [{ n }] = await sql`
      select count(*)::int as n from vigil.incidents i join vigil.services s on s.id = i.service_id
       where s.name = ${service} and i.kind = 'lint_rls_disabled_in_public'`
    assert.equal(n, 1)

    await sql.unsafe(`alter table ${schema}.patients enable row level security`)
    const fixed = await run()
    assert.doesNotMatch(fixed.summary, /rls_disabled_in_public/)
    assert.equal((await incident()).status, 'resolved', 'resolved once fixed')
  } finally {
    await sql`update vigil.incidents set status = 'resolved', resolved_at = now()
               where status = 'open' and service_id in (select id from vigil.services where name = ${service})`
    await sql`update vigil.services set enabled = false where name = ${service}`
    await sql.unsafe(`drop schema if exists ${schema} cascade`)
    await agent.end()
    await sql.end()
  }
})
