// The heal audit's anchors: auto-heal anchors every audit row with a key the database never sees;
// someone who can write the database and rewrites the chain after an edit (every hash recomputed,
// so vigil.verify_heal_audit() finds nothing wrong) is caught by the anchors, and each health-check
// cycle turns that into a security incident for humans. Tampering happens inside a transaction
// that is rolled back.
import assert from 'node:assert/strict'
import type postgres from 'postgres'
import { anchor, anchorMac, checkAnchors } from '../../supabase/functions/_shared/heal/anchor.ts'
import { runCycle } from '../../supabase/functions/_shared/health/cycle.ts'
import { testSql, testStack } from '../_env.ts'

const SECRET = 'a-test-audit-secret-of-some-length'

async function auditRow(tx: postgres.TransactionSql, detail: string) {
  const [svc] = await tx`select id from vigil.services where name = 'vigil-health-check'`
  const [row] = await tx<{ seq: number; row_hash: string }[]>`
    insert into vigil.heal_actions (action_id, phase, service_id, strategy, attempt, reason, outcome, detail)
    values (gen_random_uuid(), 'intent', ${svc.id}, 'anchor_test', 1, 'a test', 'pending', ${detail})
    returning seq::int, row_hash`
  await anchor(tx as unknown as postgres.Sql, SECRET, row.seq, row.row_hash)
  return row
}

async function rolledBack(fn: (tx: postgres.TransactionSql) => Promise<void>) {
  const sql = testSql()
  try {
    await sql.begin(async (tx) => {
      await fn(tx)
      throw new Error('rollback')
    }).catch((e) => {
      if ((e as Error).message !== 'rollback') throw e
    })
  } finally {
    await sql.end()
  }
}

Deno.test('anchored rows check out; the key decides the MAC', async () => {
  await rolledBack(async (tx) => {
    const a = await auditRow(tx, 'first')
    const b = await auditRow(tx, 'second')
    const verdict = await checkAnchors(tx as unknown as postgres.Sql, SECRET)
    assert.deepEqual(verdict, {
      ok: true,
      head: { seq: b.seq, mac: await anchorMac(SECRET, b.seq, b.row_hash) },
    })
    assert.notEqual(
      await anchorMac('another-key-of-some-length', a.seq, a.row_hash),
      await anchorMac(SECRET, a.seq, a.row_hash),
    )
    // Another key made none of them: nothing to hold the chain to, and nothing to complain of.
    const wrong = await checkAnchors(tx as unknown as postgres.Sql, 'another-key-of-some-length')
    assert.ok(wrong.ok && wrong.head?.seq !== b.seq)
  })
})

Deno.test('a chain rewritten after an edit passes its own walk, and fails the anchors', async () => {
  await rolledBack(async (tx) => {
    const edited = await auditRow(tx, 'terminated pid 4242')
    await auditRow(tx, 'verified')
    // What someone with the owner's rights could do: edit a row, then recompute every hash after it.
    await tx`alter table vigil.heal_actions disable trigger heal_actions_append_only`
    await tx`update vigil.heal_actions set detail = 'nothing happened' where seq = ${edited.seq}`
    const rows = await tx<
      { seq: number }[]
    >`select seq::int from vigil.heal_actions where seq >= ${edited.seq} order by seq`
    for (const r of rows) {
      await tx`update vigil.heal_actions h
                  set prev_hash = (select p.row_hash from vigil.heal_actions p where p.seq = h.seq - 1)
                where h.seq = ${r.seq}`
      await tx`update vigil.heal_actions h set row_hash = vigil.heal_action_hash(h) where h.seq = ${r.seq}`
    }
    await tx`alter table vigil.heal_actions enable always trigger heal_actions_append_only`
    const [walk] = await tx`select intact from vigil.verify_heal_audit()`
    assert.equal(walk.intact, true, 'the chain alone cannot tell')
    const verdict = await checkAnchors(tx as unknown as postgres.Sql, SECRET)
    assert.equal(verdict.ok, false)
    if (!verdict.ok) {
      assert.match(
        verdict.problem,
        /no longer has the hash it was anchored with: the chain was rewritten/,
      )
    }
  })
})

Deno.test('removing the newest anchored rows shows, and a cycle opens a security incident for humans', async () => {
  await rolledBack(async (tx) => {
    await auditRow(tx, 'one')
    const last = await auditRow(tx, 'two')
    await tx`alter table vigil.heal_actions disable trigger heal_actions_append_only`
    await tx`delete from vigil.heal_actions where seq = ${last.seq}`
    await tx`alter table vigil.heal_actions enable always trigger heal_actions_append_only`
    const report = await runCycle({
      sql: tx as unknown as postgres.Sql,
      secret: () => undefined,
      projectUrl: testStack().apiUrl,
      only: ['vigil-health-check'],
      auditSecret: SECRET,
    })
    assert.equal(report.services, 1)
    const [inc] = await tx`
      select i.kind, i.severity::text, i.detail from vigil.incidents i join vigil.services s on s.id = i.service_id
       where s.name = 'vigil-health-check' and i.status = 'open' and i.kind = 'security_incident'`
    assert.ok(inc, 'a security incident is open')
    assert.equal(inc.severity, 'critical')
    assert.match(
      inc.detail.problem,
      new RegExp(`audit row ${last.seq} is gone, though it was anchored`),
    )
  })
})

Deno.test('a plain edit of an anchored row (hash left alone) is caught too; a bogus future anchor changes nothing', async () => {
  await rolledBack(async (tx) => {
    const row = await auditRow(tx, 'terminated pid 4242')
    await tx`alter table vigil.heal_actions disable trigger heal_actions_append_only`
    await tx`update vigil.heal_actions set detail = 'nothing happened' where seq = ${row.seq}`
    await tx`alter table vigil.heal_actions enable always trigger heal_actions_append_only`
    const edited = await checkAnchors(tx as unknown as postgres.Sql, SECRET)
    assert.equal(edited.ok, false)
    if (!edited.ok) {
      assert.match(
        edited.problem,
        new RegExp(`audit row ${row.seq} was changed after it was written`),
      )
    }
  })
  await rolledBack(async (tx) => {
    const row = await auditRow(tx, 'fine')
    // Junk no key made, past the chain's end and past int4: ignored, and no overflow stops the check.
    await tx`insert into vigil.audit_anchors (seq, row_hash, mac) values (3000000000, ${
      'a'.repeat(64)
    }, ${'b'.repeat(64)})`
    const verdict = await checkAnchors(tx as unknown as postgres.Sql, SECRET)
    assert.equal(verdict.ok, true)
    if (verdict.ok) assert.equal(verdict.head?.seq, row.seq)
  })
})
