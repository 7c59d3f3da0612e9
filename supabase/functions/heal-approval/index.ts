// heal-approval: where the approve/reject links in an alert lead. GET shows what would be done and
// asks for confirmation (mail and chat previews follow links, so a GET never decides); POST
// records the decision, and an approval makes auto-heal act. The signed link is the credential.
import { z } from 'zod'
import { sql } from '../_shared/db.ts'
import { type Decision, verifyApproval } from '../_shared/heal/approval-links.ts'
import { escapeHtml as escape, htmlPage as page } from '../_shared/html.ts'

const Query = z.object({
  decision: z.enum(['approved', 'rejected']),
  expires: z.coerce.number().int().positive(),
  sig: z.string().regex(/^[0-9a-f]{64}$/),
  /** The alert the link came in: who decided. */
  by: z.coerce.number().int().positive().optional(),
})

const secret = Deno.env.get('VIGIL_APPROVAL_SECRET') ?? ''

interface Approval {
  strategy: string
  plan: { action?: string; reason?: string }
  decision: string | null
  expires_at: Date
  service: string
}

Deno.serve(async (req) => {
  if (req.method !== 'GET' && req.method !== 'POST') {
    return page(405, 'Not allowed', '<p>Use the link from the alert.</p>')
  }
  if (secret.length < 16) {
    console.error('heal-approval: VIGIL_APPROVAL_SECRET is not set (16 characters at least)')
    return page(
      503,
      'Approvals by link are not set up',
      '<p>Approve from the dashboard instead.</p>',
    )
  }
  const url = new URL(req.url)
  const actionId = url.pathname.split('/').filter(Boolean)[1] ?? ''
  const query = Query.safeParse(Object.fromEntries(url.searchParams))
  if (!z.uuid().safeParse(actionId).success || !query.success) {
    return page(400, 'This link is incomplete', '<p>Open the whole link from the alert.</p>')
  }
  const { decision, expires, sig, by } = query.data
  if (!(await verifyApproval(actionId, decision as Decision, expires, sig, secret, by))) {
    return page(
      403,
      'This link is not valid',
      '<p>It may have been altered. Use the link from the alert.</p>',
    )
  }
  if (expires * 1000 < Date.now()) {
    return page(410, 'This link has expired', '<p>The heal was not approved in time.</p>')
  }

  const [approval] = await sql()<Approval[]>`
    select a.strategy, a.plan, a.decision, a.expires_at, s.name as service
      from vigil.heal_approvals a join vigil.services s on s.id = a.service_id
     where a.action_id = ${actionId}`
  if (!approval) return page(404, 'No such heal', '<p>It may have been removed.</p>')
  const what = `${approval.plan.action ?? approval.strategy} on ${approval.service}`
  if (approval.decision) {
    return page(
      409,
      'Already decided',
      `<p>${escape(what)} was already ${escape(approval.decision)}.</p>`,
    )
  }

  if (req.method === 'GET') {
    const verb = decision === 'approved' ? 'Approve' : 'Reject'
    return page(
      200,
      `${verb} ${what}?`,
      `<p>${escape(approval.plan.reason ?? '')}</p>` +
        `<form method="post"><button type="submit">${verb}</button></form>`,
    )
  }
  try {
    const [recipient] = by === undefined ? [] : await sql()<{ name: string }[]>`
      select c.name from vigil.alerts a join vigil.contacts c on c.id = a.contact_id
       where a.id = ${by} and a.incident_id = (select incident_id from vigil.heal_approvals where action_id = ${actionId})`
    const who = recipient ? `${recipient.name} (alert link)` : 'someone with the link'
    const updated = await sql()`
      update vigil.heal_approvals set decision = ${decision}, decided_by_name = ${who}
       where action_id = ${actionId} and decision is null returning 1`
    if (updated.length === 0) {
      return page(409, 'Already decided', `<p>${escape(what)} was decided meanwhile.</p>`)
    }
  } catch (error) {
    if ((error as { code?: string }).code === '23514') {
      return page(410, 'This heal can no longer be decided', '<p>It expired.</p>')
    }
    console.error(
      `heal-approval: recording the decision failed (${
        (error as { code?: string }).code ?? 'unknown'
      })`,
    )
    return page(503, 'Not recorded', '<p>The decision could not be recorded; try again.</p>')
  }
  return page(
    200,
    decision === 'approved' ? 'Approved' : 'Rejected',
    `<p>${escape(what)}: ${escape(decision)}. Thank you.</p>`,
  )
})
