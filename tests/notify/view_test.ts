// From a claimed outbox row to what a channel sends: which links a message may carry, and the words
// chosen for it. No database: the rows are what vigil.claim_alerts returns.
import assert from 'node:assert/strict'
import { verifyAck } from '../../supabase/functions/_shared/notify/ack-links.ts'
import { type ClaimedRow, viewOf } from '../../supabase/functions/_shared/notify/view.ts'

const SECRET = 'a-link-secret-of-some-length'
const now = new Date()

function row(over: Partial<ClaimedRow> & { role?: string } = {}): ClaimedRow {
  const { role = 'on_call', ...rest } = over
  return {
    id: 5,
    incident_id: 9,
    event: 'page',
    priority: 'P0',
    severity: 'critical',
    subject: '[P0][PROD] api is down',
    body: 'api is down. restart_service attempt 3 of 3 failed',
    dedup_key: 'vigil-incident-9',
    attempt: 1,
    created_at: now.toISOString(),
    channel: 'sms',
    reason: 'restart_service attempt 3 of 3 failed',
    contact: {
      id: 'c1',
      name: 'Ana',
      role,
      channel: 'sms',
      address: '+15551234567',
      secret_name: null,
    },
    service: 'api',
    environment: 'prod',
    incident: {
      title: 'api is down',
      opened_at: new Date(now.getTime() - 600_000).toISOString(),
      resolved_at: null,
      status: 'open',
      error: 'connection refused',
      affected: ['auth'],
      acknowledged_by: null,
    },
    tried: [{
      strategy: 'restart_service',
      attempt: 3,
      outcome: 'failed',
      detail: 'webhook answered 500',
    }],
    pending_approval: null,
    ack_link_hours: 24,
    ...rest,
  } as ClaimedRow
}

const links = { projectUrl: 'https://ref.supabase.co', linkSecret: SECRET }

Deno.test('a page carries a signed ack link for its own alert, the cause, what was tried and why now', async () => {
  const { view, to } = await viewOf(row(), links)
  const token = view.links.acknowledge!.split('/functions/v1/ack/')[1]
  const verdict = await verifyAck(token, SECRET)
  assert.ok(verdict.ok && verdict.alertId === 5 && !verdict.expired)
  assert.equal(view.summary, 'connection refused', "a page's summary is the check's own error")
  assert.deepEqual(view.tried, ['restart_service failed (attempt 3 of 3)'])
  assert.equal(view.reason, 'restart_service attempt 3 of 3 failed')
  assert.equal(view.suggestion, "check the service's logs and its last deploy")
  assert.deepEqual(view.affected, ['auth'])
  assert.deepEqual([to.channel, to.address, to.name], ['sms', '+15551234567', 'Ana'])
})

Deno.test("approve and reject links go only to a person's own sms or email", async () => {
  const approval = {
    action_id: '00000000-0000-4000-8000-000000000001',
    strategy: 'failover',
    action: 'promote the replica',
    expires_at: new Date(now.getTime() + 3_600_000).toISOString(),
  }
  const mine = await viewOf(row({ pending_approval: approval }), links)
  assert.match(mine.view.links.approve ?? '', /heal-approval\/.*decision=approved/)
  assert.match(mine.view.links.reject ?? '', /decision=rejected/)
  assert.match(mine.view.suggestion ?? '', /approve or reject the planned promote the replica/)
  const team = await viewOf(row({ pending_approval: approval, role: 'team' }), links)
  assert.equal(team.view.links.approve, undefined, 'a team contact is a shared channel')
  const slack = await viewOf(
    row({
      pending_approval: approval,
      channel: 'slack',
      contact: {
        id: 'c2',
        name: 'Ana',
        role: 'on_call',
        channel: 'slack',
        address: '#ana',
        secret_name: 'ANA_SLACK',
      },
    }),
    links,
  )
  assert.equal(slack.view.links.approve, undefined, 'chat is readable by others, even a DM channel')
})

Deno.test('no ack link once it is over, or without a secret; the static page when functions cannot serve pages', async () => {
  const resolved = await viewOf(row({ event: 'resolved' }), links)
  assert.equal(resolved.view.links.acknowledge, undefined)
  const unsigned = await viewOf(row(), { projectUrl: links.projectUrl, linkSecret: 'short' })
  assert.equal(
    unsigned.view.links.acknowledge,
    undefined,
    'a secret under 16 characters signs nothing',
  )
  const hosted = await viewOf(row(), {
    ...links,
    ackPageUrl: 'https://status.example.org/ack.html',
  })
  const url = new URL(hosted.view.links.acknowledge!)
  assert.equal(`${url.origin}${url.pathname}`, 'https://status.example.org/ack.html')
  assert.equal(url.searchParams.get('api'), 'https://ref.supabase.co')
  assert.ok((await verifyAck(url.hash.slice(1), SECRET)).ok, 'the token rides in the fragment')
  const dash = await viewOf(row(), { ...links, dashboardUrl: 'https://status.example.org/' })
  assert.equal(dash.view.links.dashboard, 'https://status.example.org/#/incidents/9')
})
