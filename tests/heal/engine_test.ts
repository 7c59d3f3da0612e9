// The heal engine on the real database, with strategies scripted per test: failsafes, the audit
// rows, undo, the ladder, and bad input. Real strategies are tested in the other files here.
import assert from 'node:assert/strict'
import { z } from 'zod'
import {
  healIncident,
  type HealOptions,
  MAX_WAITS,
  previewHeal,
} from '../../supabase/functions/_shared/heal/engine.ts'
import {
  STRATEGIES_BY_PROBLEM,
  type StrategyRegistry,
} from '../../supabase/functions/_shared/heal/registry.ts'
import type { Strategy } from '../../supabase/functions/_shared/heal/types.ts'
import { testSql } from '../_env.ts'

type Sql = ReturnType<typeof testSql>

interface Script {
  verify?: { improved: boolean; worse: boolean }
  actThrows?: string
  acts?: { count: number }
  undone?: { count: number }
}

/** A restart_service stand-in whose act/verify outcomes the test chooses. */
function scripted(
  script: Script,
  name = 'restart_service',
  target: Record<string, unknown> = { service: 'x' },
): StrategyRegistry {
  const strategy: Strategy<{ tries: number }> = {
    name,
    problem: 'service_unhealthy',
    config: z.strictObject({ tries: z.number().int().min(1).default(1) }),
    plan: (problem) =>
      Promise.resolve({
        action: 'restart',
        target: { ...target },
        reason: 'restart it',
        before: { evidence: problem.evidence },
      }),
    act(_plan, ctx) {
      if (ctx.dryRun) throw new Error('acted in dry run')
      if (script.acts) script.acts.count++
      if (script.actThrows) return Promise.reject(new Error(script.actThrows))
      return Promise.resolve({ detail: 'restarted', undo: { was: 'running' } })
    },
    verify: () =>
      Promise.resolve({
        ...(script.verify ?? { improved: true, worse: false }),
        after: { status: 'checked' },
        detail: 'checked after',
      }),
    undo() {
      if (script.undone) script.undone.count++
      return Promise.resolve('put back')
    },
  }
  return { ...STRATEGIES_BY_PROBLEM, service_unhealthy: [strategy] }
}

interface Fixture {
  sql: Sql
  serviceId: string
  incidentId: number
  options: (strategies: StrategyRegistry) => HealOptions
}

/** A down http service with an open incident, in its own environment row settings (qa). */
async function withIncident(base: string, fn: (f: Fixture) => Promise<void>) {
  const name = `${base}-${Date.now()}`
  const sql = testSql(4)
  // The trigger would also ask the real auto-heal to act: keep that path quiet for these tests.
  await sql`alter table vigil.incidents disable trigger incidents_request_heal`
  try {
    const [{ id: serviceId }] = await sql`
      insert into vigil.services (name, kind, environment, config) values (${name}, 'http', 'qa', '{"url": "http://127.0.0.1:9/"}')
      returning id`
    await sql`insert into vigil.checks (service_id, status, error) values (${serviceId}, 'down', 'connection refused')`
    const [{ id }] = await sql`
      insert into vigil.incidents (service_id, kind, severity, title) values (${serviceId}, 'service_unhealthy', 'critical', ${`${name} is down`})
      returning id::int`
    await fn({
      sql,
      serviceId,
      incidentId: id,
      options: (strategies) => ({
        sql,
        strategies,
        secret: () => undefined,
        projectUrl: 'http://127.0.0.1:1',
      }),
    })
  } finally {
    await sql`alter table vigil.incidents enable trigger incidents_request_heal`
    await sql`update vigil.settings set dry_run = false, kill_switch = false where environment = 'qa'`
    await sql`delete from vigil.contacts where name like 'engine-test-%'`
    await sql`delete from vigil.heal_policies where environment = 'qa'`
    // heal_actions are append-only and reference the service: the service row stays, disabled.
    await sql`update vigil.services set enabled = false where name = ${name}`
    await sql`update vigil.incidents set status = 'resolved', resolved_at = now() where service_id in (select id from vigil.services where name = ${name}) and status = 'open'`
    await sql.end()
  }
}

async function auditRows(sql: Sql, incidentId: number) {
  return await sql<
    {
      phase: string
      outcome: string
      strategy: string
      attempt: number
      detail: string | null
      dry_run: boolean
    }[]
  >`
    select phase::text, outcome::text, strategy, attempt, detail, dry_run from vigil.heal_actions
     where incident_id = ${incidentId} order by seq`
}

Deno.test('a heal that works: an intent row before, a result row after, silent on the ladder', async () => {
  await withIncident('engine-test-ok', async ({ sql, incidentId, options }) => {
    const acts = { count: 0 }
    const report = await healIncident({ incidentId }, options(scripted({ acts })))
    assert.equal(report.outcome, 'succeeded')
    assert.equal(acts.count, 1)
    const rows = await auditRows(sql, incidentId)
    assert.deepEqual(rows.map((r) => [r.phase, r.outcome, r.attempt]), [['intent', 'pending', 1], [
      'result',
      'succeeded',
      1,
    ]])
    assert.match(rows[1].detail!, /restarted; checked after/)
    const [inc] =
      await sql`select heal_attempts, escalation_level, heal_claimed_by from vigil.incidents where id = ${incidentId}`
    assert.deepEqual({ ...inc }, { heal_attempts: 1, escalation_level: 0, heal_claimed_by: null })
    const [audit] = await sql`select intact from vigil.verify_heal_audit()`
    assert.equal(audit.intact, true)
  })
})

Deno.test('dry run decides and records but acts on nothing; the kill switch stops everything', async () => {
  await withIncident('engine-test-dry', async ({ sql, incidentId, options }) => {
    const acts = { count: 0 }
    await sql`update vigil.settings set dry_run = true where environment = 'qa'`
    const dry = await healIncident({ incidentId }, options(scripted({ acts })))
    assert.equal(dry.outcome, 'dry_run')
    await sql`update vigil.settings set dry_run = false, kill_switch = true where environment = 'qa'`
    const killed = await healIncident({ incidentId }, options(scripted({ acts })))
    assert.equal(killed.outcome, 'skipped')
    assert.match(killed.detail, /kill switch is on for qa/)
    assert.equal(acts.count, 0, 'nothing was acted on')
    const rows = await auditRows(sql, incidentId)
    assert.deepEqual(rows.map((r) => [r.phase, r.outcome, r.dry_run]), [
      ['intent', 'pending', false],
      ['result', 'dry_run', true],
      ['intent', 'pending', false],
      ['result', 'skipped', false],
    ])
  })
})

Deno.test('a heal that makes things worse is undone, recorded as undone, and counts as a failure', async () => {
  await withIncident('engine-test-worse', async ({ sql, incidentId, options }) => {
    const undone = { count: 0 }
    const report = await healIncident(
      { incidentId },
      options(scripted({ verify: { improved: false, worse: true }, undone })),
    )
    assert.equal(report.outcome, 'undone')
    assert.equal(undone.count, 1)
    assert.match(report.detail, /made things worse .* so it was undone: put back/)
    const [inc] = await sql`select escalation_level from vigil.incidents where id = ${incidentId}`
    assert.equal(inc.escalation_level, 1, 'a first failed attempt is logged silently')
  })
})

Deno.test('the ladder: attempt 2 warns, attempt 3 pages on-call, a failure after it the senior; then no more heals', async () => {
  await withIncident('engine-test-ladder', async ({ sql, incidentId, options }) => {
    await sql`insert into vigil.contacts (name, role, channel, address, environment) values
      ('engine-test-oncall', 'on_call', 'sms', '+15550001111', 'qa'),
      ('engine-test-senior', 'senior', 'email', 'senior@example.org', null)`
    const strategies = scripted({ actThrows: 'webhook answered 500: upstream unavailable' })
    const outcomes = []
    for (let i = 0; i < 4; i++) {
      outcomes.push((await healIncident({ incidentId }, options(strategies))).outcome)
    }
    assert.deepEqual(outcomes, ['failed', 'failed', 'failed', 'exhausted'])
    const log =
      await sql`select level, message from vigil.incident_log where incident_id = ${incidentId} order by id`
    assert.deepEqual(log.map((l) => l.level), ['info', 'warning', 'error', 'error'])
    assert.match(log[0].message, /attempt 1 of 3 failed: webhook answered 500/)
    const alerts =
      await sql`select channel::text, recipient, severity::text from vigil.alerts where incident_id = ${incidentId} order by id`
    assert.deepEqual(alerts.map((a) => [a.channel, a.recipient]), [['sms', '+15550001111'], [
      'email',
      'senior@example.org',
    ]])
    const results = (await auditRows(sql, incidentId)).filter((r) => r.phase === 'result')
    assert.equal(results.length, 3, 'no fourth heal after the ladder is finished')
  })
})

Deno.test('a flapping service does not cause a heal storm: the breaker opens and the rate limit holds', async () => {
  await withIncident('engine-test-flap', async ({ sql, serviceId, incidentId, options }) => {
    const acts = { count: 0 }
    const strategies = scripted({ acts, verify: { improved: false, worse: false } })
    // Many incidents in a row, as a flapping service opens and resolves them.
    const outcomes: string[] = []
    let current = incidentId
    for (let i = 0; i < 14; i++) {
      outcomes.push((await healIncident({ incidentId: current }, options(strategies))).outcome)
      await sql`update vigil.incidents set status = 'resolved', resolved_at = now() where id = ${current}`
      const [next] = await sql`
        insert into vigil.incidents (service_id, kind, severity, title) values (${serviceId}, 'service_unhealthy', 'critical', 'flap')
        returning id::int`
      current = next.id
    }
    assert.deepEqual(outcomes.slice(0, 3), ['failed', 'failed', 'failed'])
    assert.ok(
      outcomes.slice(3).every((o) => o === 'skipped'),
      `after three failures the breaker holds: ${outcomes}`,
    )
    assert.equal(acts.count, 3)
    const [guard] = await sql`select vigil.heal_guard(${serviceId}, 'restart_service') as g`
    assert.match(guard.g.reason, /circuit open: 3 of the last 3/)
    // The hourly limit is a separate, wider net over every strategy of the service: another
    // strategy (its own breaker closed) still gets no more than 10 heals an hour in all.
    const other = scripted({ acts, verify: { improved: true, worse: false } }, 'engine_test_other')
    for (let i = 0; i < 12; i++) {
      await healIncident({ incidentId: current }, options(other))
      await sql`update vigil.incidents set status = 'resolved', resolved_at = now() where id = ${current}`
      const [next] = await sql`
        insert into vigil.incidents (service_id, kind, severity, title) values (${serviceId}, 'service_unhealthy', 'critical', 'flap')
        returning id::int`
      current = next.id
    }
    const [{ n }] = await sql`
      select count(*)::int as n from vigil.heal_actions
       where service_id = ${serviceId} and phase = 'result' and outcome in ('succeeded', 'failed', 'undone')`
    assert.equal(n, 10, 'at most 10 heals per service per hour')
    assert.equal(acts.count, 10)
  })
})

Deno.test('an invalid strategy policy is a failed attempt with the reason, and the ladder moves (recorded as refused: nothing acted)', async () => {
  await withIncident('engine-test-policy', async ({ sql, incidentId, options }) => {
    await sql`insert into vigil.heal_policies (environment, strategy, mode, config) values ('qa', 'restart_service', 'auto', '{"tries": 0, "bogus": 1}')`
    const report = await healIncident({ incidentId }, options(scripted({})))
    assert.equal(report.outcome, 'failed')
    assert.match(
      report.detail,
      /policy config is invalid: .*tries.*bogus|policy config is invalid: .*bogus.*tries/,
    )
    const rows = await auditRows(sql, incidentId)
    assert.deepEqual(rows.map((r) => [r.phase, r.outcome]), [['intent', 'pending'], [
      'result',
      'refused',
    ]])
    const [inc] =
      await sql`select heal_attempts, escalation_level from vigil.incidents where id = ${incidentId}`
    assert.deepEqual({ ...inc }, { heal_attempts: 1, escalation_level: 1 })
  })
})

Deno.test('approval mode waits for a human, and runs once approved', async () => {
  await withIncident('engine-test-approval', async ({ sql, incidentId, options }) => {
    const acts = { count: 0 }
    await sql`insert into vigil.heal_policies (environment, strategy, mode) values ('qa', 'restart_service', 'approval')`
    await sql`insert into vigil.contacts (name, role, channel, address, environment) values
      ('engine-test-approver', 'on_call', 'email', 'oncall@example.org', 'qa')`
    const waiting = await healIncident(
      { incidentId },
      options(scripted({ acts })),
    )
    assert.equal(waiting.outcome, 'awaiting_approval')
    assert.equal(acts.count, 0)
    const [alert] =
      await sql`select body, reason from vigil.alerts where incident_id = ${incidentId}`
    assert.match(alert.reason, /^approval needed to /, 'on-call is asked')
    // The ask is logged and read by shared channels: the links are signed into personal messages only
    // (tests/notify/view_test.ts).
    assert.doesNotMatch(`${alert.body} ${alert.reason}`, /heal-approval|sig=/)
    const bogus = await healIncident(
      { incidentId, approval: crypto.randomUUID() },
      options(scripted({ acts })),
    )
    assert.equal(
      bogus.outcome,
      'awaiting_approval',
      'an approval id that was never granted is not an approval',
    )
    await sql`alter table vigil.heal_approvals disable trigger heal_approvals_decide`
    await sql`update vigil.heal_approvals set decision = 'approved', decided_at = now() where action_id = ${waiting
      .action_id!}`
    await sql`alter table vigil.heal_approvals enable trigger heal_approvals_decide`
    const done = await healIncident(
      { incidentId, approval: waiting.action_id },
      options(scripted({ acts })),
    )
    assert.equal(done.outcome, 'succeeded')
    assert.equal(acts.count, 1)
  })
})

Deno.test('two invocations for one incident never both act', async () => {
  await withIncident('engine-test-claim', async ({ incidentId, options }) => {
    const acts = { count: 0 }
    let release!: () => void
    const gate = new Promise<void>((r) => release = r)
    const slow = scripted({ acts })
    const strategy = slow.service_unhealthy[0]
    slow.service_unhealthy = [{
      ...strategy,
      act: async (...args) => {
        await gate
        return await strategy.act(...args)
      },
    }]
    const first = healIncident({ incidentId }, options(slow))
    await new Promise((r) => setTimeout(r, 300))
    const second = await healIncident({ incidentId }, options(slow))
    release()
    assert.equal(second.outcome, 'claimed_elsewhere')
    assert.equal((await first).outcome, 'succeeded')
    assert.equal(acts.count, 1)
  })
})

Deno.test('suspected corruption goes straight to humans, untouched', async () => {
  await withIncident('engine-test-corrupt', async ({ sql, serviceId, incidentId, options }) => {
    await sql`insert into vigil.contacts (name, role, channel, address, environment) values
      ('engine-test-oncall2', 'on_call', 'sms', '+15550002222', 'qa')`
    // What the database itself said, to a postgres probe: only that is trusted as evidence.
    await sql`update vigil.services set kind = 'postgres', config = '{}' where id = ${serviceId}`
    await sql`insert into vigil.checks (service_id, status, error) values
      (${serviceId}, 'down', 'PANIC: could not locate a valid checkpoint record: data corruption suspected')`
    const acts = { count: 0 }
    const report = await healIncident({ incidentId }, options(scripted({ acts })))
    assert.equal(report.outcome, 'human_only')
    assert.equal(acts.count, 0)
    const [inc] = await sql`select escalation_level from vigil.incidents where id = ${incidentId}`
    assert.equal(inc.escalation_level, 4)
  })
})

Deno.test('a flapping service whose latest check passed is diagnosed from its latest failing check, and healed', async () => {
  await withIncident('engine-test-flapping', async ({ sql, incidentId, serviceId, options }) => {
    // An error spike failing most checks, not all: the latest one passed, the one before failed.
    await sql`insert into vigil.checks (service_id, status) values (${serviceId}, 'healthy')`
    const acts = { count: 0 }
    const report = await healIncident({ incidentId }, options(scripted({ acts })))
    assert.equal(report.outcome, 'succeeded')
    assert.equal(acts.count, 1)
    const [log] = await sql`
      select message from vigil.incident_log
       where incident_id = ${incidentId} and message like 'the latest check passed%'`
    assert.match(log.message, /diagnosed from the failing one of \d\d:\d\d:\d\d/)
  })
})

Deno.test('an open incident whose service has passed its checks for minutes is looked at again after its next check, nobody paged; after MAX_WAITS such waits, a person', async () => {
  await withIncident('engine-test-recovering', async ({ sql, incidentId, serviceId, options }) => {
    // Its failing check is old news; the latest passed.
    await sql`update vigil.checks set checked_at = now() - interval '20 minutes' where service_id = ${serviceId}`
    await sql`insert into vigil.checks (service_id, status) values (${serviceId}, 'healthy')`
    const acts = { count: 0 }
    const report = await healIncident({ incidentId }, options(scripted({ acts })))
    assert.equal(report.outcome, 'waiting')
    assert.match(report.detail ?? '', /latest check of .* passed \(asked again in 45 s\)/)
    assert.equal(acts.count, 0)
    const [inc] = await sql`
      select escalation_level, heal_not_before > now() + interval '30 seconds' as later
        from vigil.incidents where id = ${incidentId}`
    assert.deepEqual([inc.escalation_level, inc.later], [0, true], 'nobody paged; asked again')

    // Waiting has a bound: the MAX_WAITS-th time, a person is asked to look.
    await sql`insert into vigil.incident_log (incident_id, level, message)
              select ${incidentId}, 'info', 'waiting: an earlier wait' from generate_series(2, ${MAX_WAITS})`
    const last = await healIncident({ incidentId }, options(scripted({ acts })))
    assert.equal(last.outcome, 'nothing_to_do')
    assert.match(last.detail ?? '', new RegExp(`asked ${MAX_WAITS} times`))
    const [after] = await sql`select escalation_level from vigil.incidents where id = ${incidentId}`
    assert.equal(after.escalation_level, 3)
    assert.equal(acts.count, 0)
  })
})

Deno.test('a capacity forecast or a security lint is never healed nor paged as unhealable, whatever the service’s findings', async () => {
  await withIncident('engine-test-advisory', async ({ sql, incidentId, options }) => {
    for (const kind of ['capacity_forecast', 'lint_rls_disabled_in_public']) {
      await sql`update vigil.incidents set kind = ${kind}, escalation_level = 0 where id = ${incidentId}`
      const acts = { count: 0 }
      // The service's latest check is down: a service_unhealthy strategy would act if asked.
      const report = await healIncident({ incidentId }, options(scripted({ acts })))
      assert.equal(report.outcome, 'nothing_to_do', kind)
      assert.match(report.detail ?? '', /report for people/)
      assert.equal(acts.count, 0, `${kind}: nothing acted`)
      const [inc] =
        await sql`select escalation_level, heal_attempts from vigil.incidents where id = ${incidentId}`
      assert.deepEqual(
        [inc.escalation_level, inc.heal_attempts],
        [0, 0],
        `${kind}: nobody paged, no attempt used`,
      )
    }
    assert.equal((await auditRows(sql, incidentId)).length, 0, 'no heal recorded')
  })
})

Deno.test('an approval covers one plan, once: a changed situation is asked again, a used approval acts on nothing', async () => {
  await withIncident('engine-test-bound', async ({ sql, incidentId, options }) => {
    const acts = { count: 0 }
    await sql`insert into vigil.heal_policies (environment, strategy, mode) values ('qa', 'restart_service', 'approval')`
    const target = { service: 'x' }
    const waiting = await healIncident(
      { incidentId },
      options(scripted({ acts }, 'restart_service', target)),
    )
    assert.equal(waiting.outcome, 'awaiting_approval')
    const [asked] =
      await sql`select plan_digest from vigil.heal_approvals where action_id = ${waiting
        .action_id!}`
    assert.match(asked.plan_digest, /^[0-9a-f]{64}$/, 'the approval records what the plan acts on')
    const approve = async (id: string) => {
      await sql`alter table vigil.heal_approvals disable trigger heal_approvals_decide`
      await sql`update vigil.heal_approvals set decision = 'approved', decided_at = now() where action_id = ${id}`
      await sql`alter table vigil.heal_approvals enable trigger heal_approvals_decide`
    }
    await approve(waiting.action_id!)

    // Meanwhile the plan changed (another blocker, another replica): the approval does not cover it.
    target.service = 'y'
    const changed = await healIncident(
      { incidentId, approval: waiting.action_id },
      options(scripted({ acts }, 'restart_service', target)),
    )
    assert.equal(
      changed.outcome,
      'awaiting_approval',
      'a plan that is not the approved one waits for a new approval',
    )
    assert.equal(acts.count, 0)
    const [log] =
      await sql`select message from vigil.incident_log where incident_id = ${incidentId} and message like 'approval %' order by id desc limit 1`
    assert.match(log.message, /the situation changed since it was approved/)

    await approve(changed.action_id!)
    const done = await healIncident(
      { incidentId, approval: changed.action_id },
      options(scripted({ acts }, 'restart_service', target)),
    )
    assert.equal(done.outcome, 'succeeded')
    assert.equal(acts.count, 1)
    const [used] =
      await sql`select consumed_at from vigil.heal_approvals where action_id = ${changed
        .action_id!}`
    assert.ok(used.consumed_at, 'consumed when it ran')

    // The same approval again (a repeated call): nothing is done twice.
    await sql`update vigil.incidents set status = 'open', heal_claimed_until = null where id = ${incidentId}`
    const again = await healIncident(
      { incidentId, approval: changed.action_id },
      options(scripted({ acts }, 'restart_service', target)),
    )
    assert.equal(again.outcome, 'skipped')
    assert.match(again.detail, /already used/)
    assert.equal(acts.count, 1)
  })
})

Deno.test("an approval does not lift the ladder's limit of three attempts", async () => {
  await withIncident('engine-test-bound-limit', async ({ sql, incidentId, options }) => {
    const acts = { count: 0 }
    await sql`update vigil.incidents set heal_attempts = 3 where id = ${incidentId}`
    const report = await healIncident(
      { incidentId, approval: crypto.randomUUID() },
      options(scripted({ acts })),
    )
    assert.equal(report.outcome, 'exhausted')
    assert.equal(acts.count, 0)
  })
})

Deno.test("a session holding the audit chain's lock does not freeze heals: the attempt fails in bounded time and pages", async () => {
  await withIncident('engine-test-chain-lock', async ({ sql, incidentId, options }) => {
    const acts = { count: 0 }
    // Another session takes the chain's lock and keeps it.
    const holder = testSql(1)
    await holder`begin`
    await holder`select from vigil.audit_chain for update`
    try {
      const started = performance.now()
      const report = await healIncident({ incidentId }, options(scripted({ acts })))
      const took = performance.now() - started
      assert.equal(report.outcome, 'skipped')
      assert.match(report.detail, /audit is locked/)
      assert.ok(
        took < 30_000,
        `it gave up instead of waiting for the lock (${Math.round(took)} ms)`,
      )
      assert.equal(acts.count, 0, 'nothing acts unrecorded')
      const [inc] = await sql`select escalation_level from vigil.incidents where id = ${incidentId}`
      assert.equal(inc.escalation_level, 3, 'a human is paged')
    } finally {
      await holder`rollback`
      await holder.end()
    }
  })
})

Deno.test('with VIGIL_AUDIT_SECRET every audit row of a heal is anchored', async () => {
  await withIncident('engine-test-anchor', async ({ sql, incidentId, options }) => {
    // The stack's own key: the cycles of the test stack check every anchor with it.
    const { LOCAL_AUDIT_SECRET } = await import('../../devstack/config.ts')
    const { anchorMac } = await import('../../supabase/functions/_shared/heal/anchor.ts')
    const report = await healIncident({ incidentId }, {
      ...options(scripted({})),
      secret: (name) => (name === 'VIGIL_AUDIT_SECRET' ? LOCAL_AUDIT_SECRET : undefined),
    })
    assert.equal(report.outcome, 'succeeded')
    const rows = await sql<{ seq: number; row_hash: string; mac: string | null }[]>`
      select h.seq::int, h.row_hash, a.mac
        from vigil.heal_actions h left join vigil.audit_anchors a on a.seq = h.seq and a.row_hash = h.row_hash
       where h.incident_id = ${incidentId} order by h.seq`
    assert.equal(rows.length, 2, 'an intent and a result row')
    for (const r of rows) {
      assert.equal(
        r.mac,
        await anchorMac(LOCAL_AUDIT_SECRET, r.seq, r.row_hash),
        `row ${r.seq} anchored with the key`,
      )
    }
  })
})

Deno.test('corruption words in a remote body or a query are not evidence: the heal goes on', async () => {
  await withIncident('engine-test-not-corrupt', async ({ sql, serviceId, incidentId, options }) => {
    // An HTTP target answering with text that quotes a PANIC, a FATAL: the target said it, not a database.
    await sql`insert into vigil.checks (service_id, status, error, measurements) values
      (${serviceId}, 'down', 'expected 200, got 500: PANIC: data corrupted (just kidding) FATAL: database is fine',
       '{"body_excerpt": "FATAL: database gone"}')`
    const acts = { count: 0 }
    const report = await healIncident({ incidentId }, options(scripted({ acts })))
    assert.notEqual(report.outcome, 'human_only')
    assert.equal(acts.count, 1, 'the restart ran')
  })
})

Deno.test('an approval covers the same sessions, tables or index however long they have waited', async () => {
  const { planDigest } = await import('../../supabase/functions/_shared/heal/engine.ts')
  const blocker = (over: Record<string, unknown>) => ({
    action: 'terminate_backend',
    reason: 'r',
    before: {},
    target: {
      database: 'postgres',
      blockers: [{
        pid: 4242,
        backend_start: '2026-12-02T04:00:00Z',
        usename: 'app',
        wait_seconds: 12,
        ...over,
      }],
      longest_wait_seconds: 12,
    },
  })
  const asked = await planDigest('terminate_blocker', blocker({}))
  assert.equal(
    await planDigest('terminate_blocker', {
      ...blocker({ wait_seconds: 95 }),
      target: { ...blocker({ wait_seconds: 95 }).target, longest_wait_seconds: 95 },
    }),
    asked,
    'the same blocker, having waited longer, is the approved plan',
  )
  assert.notEqual(
    await planDigest('terminate_blocker', blocker({ pid: 4243 })),
    asked,
    'another session is not',
  )
  assert.notEqual(
    await planDigest('terminate_blocker', blocker({ backend_start: '2026-12-02T04:05:00Z' })),
    asked,
    'nor the same pid reused by a new backend',
  )
  const vacuum = (dead: number) => ({
    action: 'vacuum',
    reason: 'r',
    before: {},
    target: { tables: [{ table: 'public.orders', dead, live: 1000, ratio: dead / 1000 }] },
  })
  assert.equal(
    await planDigest('vacuum_analyze', vacuum(400)),
    await planDigest('vacuum_analyze', vacuum(410)),
  )
  assert.notEqual(
    await planDigest('vacuum_analyze', vacuum(400)),
    await planDigest('vacuum_analyze', {
      ...vacuum(400),
      target: { tables: [{ table: 'public.users', dead: 400, live: 1000, ratio: 0.4 }] },
    }),
  )
})

Deno.test('an approved heal that cannot be recorded does not run, and its approval is given back', async () => {
  await withIncident('engine-test-approval-lock', async ({ sql, incidentId, options }) => {
    const acts = { count: 0 }
    await sql`insert into vigil.heal_policies (environment, strategy, mode) values ('qa', 'restart_service', 'approval')`
    const waiting = await healIncident({ incidentId }, options(scripted({ acts })))
    await sql`alter table vigil.heal_approvals disable trigger heal_approvals_decide`
    await sql`update vigil.heal_approvals set decision = 'approved', decided_at = now() where action_id = ${waiting
      .action_id!}`
    await sql`alter table vigil.heal_approvals enable trigger heal_approvals_decide`
    const holder = testSql(1)
    await holder`begin`
    await holder`select from vigil.audit_chain for update`
    try {
      const report = await healIncident(
        { incidentId, approval: waiting.action_id },
        options(scripted({ acts })),
      )
      assert.equal(report.outcome, 'skipped')
      assert.equal(acts.count, 0)
    } finally {
      await holder`rollback`
      await holder.end()
    }
    const [a] = await sql`select consumed_at from vigil.heal_approvals where action_id = ${waiting
      .action_id!}`
    assert.equal(a.consumed_at, null, 'the approval can still be used once the audit is writable')
    await sql`update vigil.incidents set heal_claimed_until = null where id = ${incidentId}`
    const done = await healIncident(
      { incidentId, approval: waiting.action_id },
      options(scripted({ acts })),
    )
    assert.equal(done.outcome, 'succeeded')
    assert.equal(acts.count, 1)
  })
})

Deno.test("a plan that quotes other sessions' statements reaches the audit without their literals", async () => {
  await withIncident('engine-test-scrub', async ({ sql, incidentId, options }) => {
    const target = {
      service: 'x',
      sessions: [{
        pid: 7,
        query: "update users set api_key = 'sk_live_0123' where id = 42 -- rotate",
      }],
    }
    const report = await healIncident(
      { incidentId },
      options(scripted({}, 'restart_service', target)),
    )
    assert.equal(report.outcome, 'succeeded')
    const rows = await sql<{ q: string }[]>`
      select target #>> '{sessions,0,query}' as q from vigil.heal_actions where incident_id = ${incidentId}`
    assert.equal(rows.length, 2)
    for (const r of rows) assert.equal(r.q, 'update users set api_key = $1 where id = $2')
  })
})

Deno.test("a heal action gets the provider secrets it names, never the project's keys nor Vigil's own", async () => {
  await withIncident('engine-secrets', async (f) => {
    const { LOCAL_AUDIT_SECRET } = await import('../../devstack/config.ts')
    const seen: Record<string, string | undefined> = {}
    const registry = scripted({})
    const [base] = registry.service_unhealthy
    const peek: Strategy<{ tries: number }> = {
      ...(base as Strategy<{ tries: number }>),
      act(_plan, ctx) {
        for (
          const name of [
            'VIGIL_CF_TOKEN',
            'SUPABASE_SERVICE_ROLE_KEY',
            'SUPABASE_SECRET_KEYS',
            'SUPABASE_DB_URL',
            'VIGIL_DB_URL',
            'VIGIL_APPROVAL_SECRET',
            'VIGIL_AUDIT_SECRET',
          ]
        ) seen[name] = ctx.secret(name)
        return Promise.resolve({ detail: 'peeked' })
      },
    }
    const report = await healIncident({ incidentId: f.incidentId }, {
      ...f.options({ ...registry, service_unhealthy: [peek] }),
      // The real audit key (the anchors must stay verifiable); made-up values for the rest.
      secret: (name) => (name === 'VIGIL_AUDIT_SECRET' ? LOCAL_AUDIT_SECRET : `value-of-${name}`),
    })
    assert.equal(report.outcome, 'succeeded', report.detail)
    assert.deepEqual(seen, {
      VIGIL_CF_TOKEN: 'value-of-VIGIL_CF_TOKEN',
      SUPABASE_SERVICE_ROLE_KEY: undefined,
      SUPABASE_SECRET_KEYS: undefined,
      SUPABASE_DB_URL: undefined,
      VIGIL_DB_URL: undefined,
      VIGIL_APPROVAL_SECRET: undefined,
      VIGIL_AUDIT_SECRET: undefined,
    })
  })
})

Deno.test('a refusal only a human can resolve pages on-call at once, uses no attempt and never opens the breaker', async () => {
  await withIncident('engine-test-refused', async ({ sql, serviceId, incidentId, options }) => {
    const { HumanNeeded } = await import('../../supabase/functions/_shared/heal/types.ts')
    const registry = scripted({})
    const [base] = registry.service_unhealthy
    const refusing: Strategy<{ tries: number }> = {
      ...(base as Strategy<{ tries: number }>),
      plan: () => Promise.reject(new HumanNeeded('every root blocker is a superuser session')),
    }
    const first = await healIncident(
      { incidentId },
      options({ ...registry, service_unhealthy: [refusing] }),
    )
    assert.equal(first.outcome, 'human_only')
    assert.match(first.detail, /will not act, a human must: every root blocker is a superuser/)
    const [inc] =
      await sql`select heal_attempts, escalation_level from vigil.incidents where id = ${incidentId}`
    assert.deepEqual({ ...inc }, { heal_attempts: 0, escalation_level: 3 }, 'on-call at once')
    assert.deepEqual((await auditRows(sql, incidentId)).map((r) => [r.phase, r.outcome]), [
      ['intent', 'pending'],
      ['result', 'refused'],
    ])
    // However often it is refused, the breaker stays closed and the ladder does not move on.
    for (let i = 0; i < 7; i++) {
      await healIncident({ incidentId }, options({ ...registry, service_unhealthy: [refusing] }))
    }
    const [{ guard }] = await sql`select vigil.heal_guard(${serviceId}, 'restart_service') as guard`
    assert.equal(guard.allowed, true, JSON.stringify(guard))
    assert.equal(guard.breaker, 'closed')
    assert.equal(
      guard.attempts_last_hour,
      0,
      'refusals are not heals: the rate limit does not count them',
    )
    // Then, the situation changed: the ordinary heal runs.
    const healed = await healIncident({ incidentId }, options(registry))
    assert.equal(healed.outcome, 'succeeded', healed.detail)
  })
})

Deno.test('topology, not a head count: unrelated services down never hold a heal back; a down dependency makes it wait for the root', async () => {
  await withIncident('engine-test-topology', async ({ sql, serviceId, incidentId, options }) => {
    const others = ['a', 'b', 'c'].map((x) => `engine-test-unrelated-${x}-${Date.now()}`)
    const root = `engine-test-root-${Date.now()}`
    try {
      for (const name of [...others, root]) {
        await sql`insert into vigil.services (name, kind, environment, config, status)
                  values (${name}, 'http', 'qa', '{"url": "http://127.0.0.1:9/"}', 'down')`
      }
      // Depending on the root, which is down: the root is healed first, this one waits.
      await sql`update vigil.services set depends_on = array[${root}]::text[] where id = ${serviceId}`
      const acts = { count: 0 }
      const waiting = await healIncident({ incidentId }, options(scripted({ acts })))
      assert.equal(waiting.outcome, 'skipped')
      assert.equal(
        waiting.detail,
        `${root} is down, which ${
          (await sql`select name from vigil.services where id = ${serviceId}`)[0].name
        } depends on: the root is healed first`,
      )
      assert.equal(acts.count, 0, 'nothing acted')
      const [{ level }] =
        await sql`select escalation_level as level from vigil.incidents where id = ${incidentId}`
      assert.equal(level, 0, 'nobody paged for it: its alerts fold into the root')

      // Without that dependency, three unrelated services down change nothing: it is healed.
      await sql`update vigil.services set depends_on = null where id = ${serviceId}`
      const healed = await healIncident({ incidentId }, options(scripted({ acts })))
      assert.equal(healed.outcome, 'succeeded', healed.detail)
      assert.equal(acts.count, 1)
    } finally {
      await sql`update vigil.services set depends_on = null where id = ${serviceId}`
      for (const name of [...others, root]) {
        await sql`delete from vigil.services where name = ${name}`
      }
    }
  })
})

Deno.test('sequencing: a strategy that acted and did not help goes to the back, so the next gets its turn', async () => {
  await withIncident('engine-test-sequence', async ({ sql, incidentId, options }) => {
    const purged = { count: 0 }
    const rolledBack = { count: 0 }
    const [purge] = scripted(
      { acts: purged, verify: { improved: false, worse: false } },
      'purge_cdn',
    ).service_unhealthy
    const [rollback] = scripted({ acts: rolledBack }, 'rollback_deploy').service_unhealthy
    const registry = { ...scripted({}), service_unhealthy: [purge, rollback] }
    const first = await healIncident({ incidentId }, options(registry))
    assert.deepEqual([first.strategy, first.outcome], ['purge_cdn', 'failed'])
    const second = await healIncident({ incidentId }, options(registry))
    assert.deepEqual([second.strategy, second.outcome], ['rollback_deploy', 'succeeded'])
    assert.deepEqual([purged.count, rolledBack.count], [1, 1])
    const rows = await auditRows(sql, incidentId)
    assert.deepEqual(rows.filter((r) => r.phase === 'result').map((r) => [r.strategy, r.outcome]), [
      ['purge_cdn', 'failed'],
      ['rollback_deploy', 'succeeded'],
    ])
  })
})

Deno.test('a heal that made things worse and cannot be undone says why, and pages on-call at once', async () => {
  await withIncident('engine-test-irreversible', async ({ sql, incidentId, options }) => {
    const registry = scripted({ verify: { improved: false, worse: true } })
    const { undo: _undo, ...rest } = registry.service_unhealthy[0] as Strategy<{ tries: number }>
    const irreversible = {
      ...rest,
      irreversible: 'a restart cannot be taken back',
    } as Strategy<{ tries: number }>
    const report = await healIncident(
      { incidentId },
      options({ ...registry, service_unhealthy: [irreversible] }),
    )
    assert.equal(report.outcome, 'failed')
    assert.match(
      report.detail,
      /it made things worse \(checked after\), and cannot be undone: a restart cannot be taken back/,
    )
    const [inc] =
      await sql`select heal_attempts, escalation_level from vigil.incidents where id = ${incidentId}`
    assert.deepEqual({ ...inc }, { heal_attempts: 1, escalation_level: 3 }, 'on-call on attempt 1')
  })
})

Deno.test('diagnosis reads typed findings; one with impossible values is dropped and said in the log', async () => {
  await withIncident('engine-test-findings', async ({ sql, serviceId, incidentId, options }) => {
    await sql`insert into vigil.checks (service_id, status, error, measurements) values (${serviceId}, 'down',
      'the error sentence mentions memory, which must not matter',
      ${
      sql.json({
        findings: [
          { kind: 'memory_high', status: 'down', evidence: { usage_pct: 180 } },
        ],
      } as never)
    })`
    const report = await healIncident({ incidentId }, options(scripted({})))
    assert.equal(report.strategy, 'restart_service', 'down with no valid finding: unhealthy')
    const [log] = await sql`
      select message from vigil.incident_log where incident_id = ${incidentId} and level = 'warning'
        and message like 'findings dropped%'`
    assert.match(log.message, /findings\[0\] \(memory_high\): usage_pct: /)
  })
})

Deno.test('a strategy that will act later (not yet) pages nobody, uses no attempt, and is asked again when it said', async () => {
  await withIncident('engine-test-not-yet', async ({ sql, incidentId, options }) => {
    const { NotYet } = await import('../../supabase/functions/_shared/heal/types.ts')
    const registry = scripted({})
    const [base] = registry.service_unhealthy
    const waiting: Strategy<{ tries: number }> = {
      ...(base as Strategy<{ tries: number }>),
      plan: () =>
        Promise.reject(new NotYet('2 idle sessions may be ended once idle 0.5 min', 12.3)),
    }
    const first = await healIncident(
      { incidentId },
      options({ ...registry, service_unhealthy: [waiting] }),
    )
    assert.equal(first.outcome, 'waiting')
    assert.equal(
      first.detail,
      'waiting: 2 idle sessions may be ended once idle 0.5 min (asked again in 13 s)',
    )
    const [inc] = await sql`
      select heal_attempts, escalation_level,
             extract(epoch from heal_not_before - now())::float8 as due_in
        from vigil.incidents where id = ${incidentId}`
    assert.equal(inc.heal_attempts, 0, 'no attempt used')
    assert.equal(inc.escalation_level, 0, 'nobody paged')
    assert.ok(inc.due_in > 10 && inc.due_in <= 13, `asked again in ${inc.due_in} s`)
    assert.equal((await auditRows(sql, incidentId)).length, 0, 'nothing recorded as tried')
    // When that moment has come, the retry job asks again, once.
    await sql`update vigil.incidents set heal_not_before = now() - interval '1 second', last_heal_at = now()
               where id = ${incidentId}`
    await sql`select vigil.retry_heals()`
    const [after] = await sql`
      select heal_not_before is null as cleared,
             exists (select from vigil.invocations v where v.fn = 'auto-heal'
                        and v.body ->> 'incident_id' = ${String(incidentId)}
                        and v.body ->> 'reason' = 'retry') as asked
        from vigil.incidents where id = ${incidentId}`
    assert.deepEqual({ ...after }, { cleared: true, asked: true }, 'retry_heals asked again, once')
    const healed = await healIncident({ incidentId }, options(registry))
    assert.equal(healed.outcome, 'succeeded', healed.detail)
  })
})

Deno.test('a preview says what the engine would do, by policy and failsafe, and does nothing', async () => {
  await withIncident('engine-test-preview', async ({ sql, incidentId, options }) => {
    const acts = { count: 0 }
    const first = await previewHeal(incidentId, options(scripted({ acts })))
    assert.ok(first)
    assert.deepEqual(first.steps.map((s) => [s.strategy, s.would]), [['restart_service', 'act']])
    assert.equal(first.next, 'act with restart_service: restart it')
    await sql`insert into vigil.heal_policies (environment, strategy, mode) values ('qa', 'restart_service', 'approval')`
    const asked = await previewHeal(incidentId, options(scripted({ acts })))
    assert.equal(asked!.steps[0].would, 'ask approval')
    await sql`update vigil.settings set kill_switch = true where environment = 'qa'`
    const held = await previewHeal(incidentId, options(scripted({ acts })))
    assert.equal(held!.steps[0].would, 'hold back')
    assert.match(held!.steps[0].why, /kill switch is on for qa/)
    assert.equal(acts.count, 0, 'nothing acted')
    assert.equal((await auditRows(sql, incidentId)).length, 0, 'nothing recorded')
    const [inc] =
      await sql`select heal_attempts, escalation_level from vigil.incidents where id = ${incidentId}`
    assert.deepEqual({ ...inc }, { heal_attempts: 0, escalation_level: 0 })
    assert.equal(await previewHeal(987654321, options(scripted({}))), null)
  })
})
