// ack: where the Acknowledge link in every SMS, email and chat message leads. GET shows the
// incident and asks (link previews and mail scanners follow links, so a GET never acknowledges);
// POST acknowledges in the name of the contact the alert went to. The signed, expiring token in
// the path is the credential (VIGIL_APPROVAL_SECRET signs it).
import { sql } from '../_shared/db.ts'
import { escapeHtml as escape, htmlPage as page } from '../_shared/html.ts'
import { verifyAck } from '../_shared/notify/ack-links.ts'

const secret = Deno.env.get('VIGIL_APPROVAL_SECRET') ?? ''

interface Target {
  incident_id: number
  title: string
  status: string
  opened_at: Date
  acknowledged_at: Date | null
  acknowledged_by_name: string | null
  contact: string | null
  service: string
}

Deno.serve(async (req) => {
  if (req.method !== 'GET' && req.method !== 'POST') {
    return page(405, 'Not allowed', '<p>Open the link from the alert.</p>')
  }
  if (secret.length < 16) {
    console.error('ack: VIGIL_APPROVAL_SECRET is not set (16 characters at least)')
    return page(
      503,
      'Acknowledging by link is not set up',
      '<p>Acknowledge from the dashboard instead.</p>',
    )
  }
  const token = new URL(req.url).pathname.split('/').filter(Boolean).at(-1) ?? ''
  const verdict = await verifyAck(token, secret)
  if (!verdict.ok) {
    return verdict.reason === 'malformed'
      ? page(400, 'This link is incomplete', '<p>Open the whole link from the alert.</p>')
      : page(
        403,
        'This link is not valid',
        '<p>It may have been altered. Use the link from the alert.</p>',
      )
  }
  if (verdict.expired) {
    return page(410, 'This link has expired', '<p>Acknowledge from the dashboard instead.</p>')
  }

  const [target] = await sql()<Target[]>`
    select i.id as incident_id, i.title, i.status::text, i.opened_at, i.acknowledged_at, i.acknowledged_by_name,
           c.name as contact, s.name as service
      from vigil.alerts a
      join vigil.incidents i on i.id = a.incident_id
      join vigil.services s on s.id = i.service_id
      left join vigil.contacts c on c.id = a.contact_id
     where a.id = ${verdict.alertId}`
  if (!target) return page(404, 'No such incident', '<p>It may have been removed.</p>')
  const what = `${target.title} (incident ${target.incident_id})`
  if (target.status !== 'open') {
    return page(409, 'Already resolved', `<p>${escape(what)} is already resolved.</p>`)
  }
  if (target.acknowledged_at) {
    return page(
      200,
      'Already acknowledged',
      `<p>${escape(what)} was acknowledged by ${
        escape(target.acknowledged_by_name ?? 'someone')
      } at ${escape(target.acknowledged_at.toISOString().slice(11, 16))} UTC.</p>`,
    )
  }
  if (req.method === 'GET') {
    return page(
      200,
      `Acknowledge ${target.title}?`,
      `<p>${escape(target.service)}: open since ${
        escape(target.opened_at.toISOString().slice(11, 16))
      } UTC.` +
        ' Acknowledging stops the reminders and the escalation to the senior contact.</p>' +
        '<form method="post"><button type="submit">Acknowledge</button></form>',
    )
  }
  try {
    const by = `${target.contact ?? 'a contact'} (alert link)`
    const [{ result }] = await sql()<{ result: { acknowledged: boolean; by: string | null } }[]>`
      select vigil.acknowledge_incident(${target.incident_id}, ${by}) as result`
    if (!result.acknowledged) {
      return page(
        409,
        'Not acknowledged',
        `<p>${escape(what)} was resolved or acknowledged meanwhile.</p>`,
      )
    }
    return page(
      200,
      'Acknowledged',
      `<p>${escape(what)}: acknowledged by ${escape(result.by ?? by)}. Thank you.</p>`,
    )
  } catch (error) {
    console.error(
      `ack: recording the acknowledgement failed (${
        (error as { code?: string }).code ?? 'unknown'
      })`,
    )
    return page(503, 'Not recorded', '<p>The acknowledgement could not be recorded; try again.</p>')
  }
})
