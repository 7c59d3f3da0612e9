// The links in an approval request: a GET only asks, a POST decides, and an altered or expired
// link decides nothing.
import assert from 'node:assert/strict'
import { LOCAL_APPROVAL_SECRET } from '../../devstack/config.ts'
import {
  approvalLinks,
  signApproval,
} from '../../supabase/functions/_shared/heal/approval-links.ts'
import { testSql, testStack } from '../_env.ts'

Deno.test('an approval link asks on GET, decides on POST, once; tampered, expired and unknown links do nothing', async () => {
  const sql = testSql()
  const name = `approval-link-${Date.now()}`
  const actionId = crypto.randomUUID()
  await sql`alter table vigil.incidents disable trigger incidents_request_heal`
  try {
    const [{ sid, iid }] = await sql`
      with s as (insert into vigil.services (name, kind, config) values (${name}, 'http', '{"url": "http://127.0.0.1:9/"}') returning id),
           i as (insert into vigil.incidents (service_id, kind, severity, title) select id, 'service_unhealthy', 'critical', 'down' from s returning id, service_id)
      select service_id as sid, id::int as iid from i`
    const [{ expires_at }] = await sql`
      insert into vigil.heal_approvals (action_id, incident_id, service_id, strategy, plan)
      values (${actionId}, ${iid}, ${sid}, 'restart_service', '{"action": "restart", "reason": "the API is down"}')
      returning expires_at`
    const { apiUrl } = testStack()
    const links = await approvalLinks(apiUrl, actionId, expires_at, LOCAL_APPROVAL_SECRET)

    const ask = await fetch(links.approved)
    assert.equal(ask.status, 200)
    const html = await ask.text()
    assert.match(html, /Approve restart on approval-link-/)
    assert.match(html, /<form method="post">/)
    const [before] =
      await sql`select decision from vigil.heal_approvals where action_id = ${actionId}`
    assert.equal(before.decision, null, 'a GET (a mail preview, say) decides nothing')

    const tampered = new URL(links.approved)
    tampered.searchParams.set('decision', 'rejected')
    const forged = await fetch(tampered, { method: 'POST' })
    assert.equal(forged.status, 403)
    await forged.body?.cancel()

    const past = Math.floor(Date.now() / 1000) - 60
    const expired = new URL(links.approved)
    expired.searchParams.set('expires', String(past))
    expired.searchParams.set(
      'sig',
      await signApproval(actionId, 'approved', past, LOCAL_APPROVAL_SECRET),
    )
    const late = await fetch(expired, { method: 'POST' })
    assert.equal(late.status, 410)
    await late.body?.cancel()

    const unknown =
      (await approvalLinks(apiUrl, crypto.randomUUID(), expires_at, LOCAL_APPROVAL_SECRET)).approved
    const missing = await fetch(unknown, { method: 'POST' })
    assert.equal(missing.status, 404)
    await missing.body?.cancel()

    const before2 = await sql`select coalesce(max(id), 0)::int as max from vigil.invocations`
    const decide = await fetch(links.approved, { method: 'POST' })
    assert.equal(decide.status, 200)
    assert.match(await decide.text(), /approved/)
    const [after] =
      await sql`select decision, decided_at is not null as has_time from vigil.heal_approvals where action_id = ${actionId}`
    assert.deepEqual({ ...after }, { decision: 'approved', has_time: true })
    const asked = await sql`
      select body from vigil.invocations where fn = 'auto-heal' and id > ${
      before2[0].max
    } and body ->> 'approval' = ${actionId}`
    assert.equal(asked.length, 1, 'the approval asks auto-heal to act')

    const again = await fetch(links.rejected, { method: 'POST' })
    assert.equal(again.status, 409)
    await again.body?.cancel()
  } finally {
    await sql`alter table vigil.incidents enable trigger incidents_request_heal`
    await sql`update vigil.services set enabled = false where name = ${name}`
    await sql`update vigil.incidents set status = 'resolved', resolved_at = now() where status = 'open' and service_id in (select id from vigil.services where name = ${name})`
    await sql.end()
  }
})

Deno.test('a decision by link names the contact it was sent to; the recipient cannot be swapped', async () => {
  const sql = testSql()
  const name = `approval-by-${Date.now()}`
  const actionId = crypto.randomUUID()
  await sql`alter table vigil.incidents disable trigger incidents_request_heal`
  try {
    const [{ sid, iid }] = await sql`
      with s as (insert into vigil.services (name, kind, config) values (${name}, 'http', '{"url": "http://127.0.0.1:9/"}') returning id),
           i as (insert into vigil.incidents (service_id, kind, severity, title) select id, 'service_unhealthy', 'critical', 'down' from s returning id, service_id)
      select service_id as sid, id::int as iid from i`
    const [{ expires_at }] = await sql`
      insert into vigil.heal_approvals (action_id, incident_id, service_id, strategy, plan)
      values (${actionId}, ${iid}, ${sid}, 'restart_service', '{"action": "restart", "reason": "the API is down"}')
      returning expires_at`
    const [contact] = await sql`
      insert into vigil.contacts (name, role, channel, address, enabled) values (${`${name} Dee`}, 'on_call', 'email', 'dee@example.org', false)
      returning id`
    // The alert the link went out in (recorded, never sent).
    const [alert] = await sql`
      insert into vigil.alerts (incident_id, service_id, contact_id, channel, recipient, severity, subject, body, status, suppressed_reason)
      values (${iid}, ${sid}, ${contact.id}, 'email', 'dee@example.org', 'critical', 's', 'b', 'suppressed', 'test')
      returning id::int`
    const { apiUrl } = testStack()
    const links = await approvalLinks(apiUrl, actionId, expires_at, LOCAL_APPROVAL_SECRET, alert.id)
    const swapped = new URL(links.rejected)
    swapped.searchParams.set('by', String(alert.id + 1))
    const forged = await fetch(swapped, { method: 'POST' })
    assert.equal(forged.status, 403, 'the recipient is signed with the rest')
    await forged.body?.cancel()
    const res = await fetch(links.rejected, { method: 'POST' })
    assert.equal(res.status, 200)
    await res.body?.cancel()
    const [row] =
      await sql`select decision, decided_by_name from vigil.heal_approvals where action_id = ${actionId}`
    assert.deepEqual({ ...row }, {
      decision: 'rejected',
      decided_by_name: `${name} Dee (alert link)`,
    })
  } finally {
    await sql`alter table vigil.incidents enable trigger incidents_request_heal`
    await sql`update vigil.incidents set status = 'resolved', resolved_at = now()
               where service_id in (select id from vigil.services where name = ${name}) and status = 'open'`
    await sql`update vigil.services set enabled = false where name = ${name}`
    await sql.end()
  }
})
