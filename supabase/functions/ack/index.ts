// ack: where the Acknowledge link in every SMS, email and chat message leads. A GET shows the
// incident and asks (link previews and mail scanners follow links, so a GET never acknowledges); a
// POST acknowledges in the name of the contact the alert went to. The signed, expiring token in the
// path is the credential (VIGIL_APPROVAL_SECRET signs it).
//
// Hosted Supabase serves a function's GET as text/plain, never as a page. There the link leads to
// the static page dashboard/public/ack.html (VIGIL_ACK_PAGE_URL), which asks this function with
// `Accept: application/json` (CORS allowed: the token is the credential, not the origin). Locally,
// and wherever a function may serve HTML, the link comes here directly.
import { sql } from '../_shared/db.ts'
import { escapeHtml as escape, htmlPage } from '../_shared/html.ts'
import { corsHeaders, json, preflight } from '../_shared/http.ts'
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

/** One answer, as a page for a browser or as JSON for the static ack page. */
interface Answer {
  status: number
  title: string
  /** HTML, already escaped. */
  html: string
  /** What the static page needs: a state and the incident, never more. */
  data: Record<string, unknown>
}

const hhmm = (d: Date) => `${d.toISOString().slice(11, 16)} UTC`

async function answer(req: Request): Promise<Answer> {
  const say = (status: number, title: string, html: string, data: Record<string, unknown>) => ({
    status,
    title,
    html,
    data,
  })
  if (secret.length < 16) {
    console.error('ack: VIGIL_APPROVAL_SECRET is not set (16 characters at least)')
    return say(
      503,
      'Acknowledging by link is not set up',
      '<p>Acknowledge from the dashboard instead.</p>',
      {
        state: 'not_set_up',
      },
    )
  }
  const token = new URL(req.url).pathname.split('/').filter(Boolean).at(-1) ?? ''
  const verdict = await verifyAck(token, secret)
  if (!verdict.ok) {
    return verdict.reason === 'malformed'
      ? say(400, 'This link is incomplete', '<p>Open the whole link from the alert.</p>', {
        state: 'malformed',
      })
      : say(
        403,
        'This link is not valid',
        '<p>It may have been altered. Use the link from the alert.</p>',
        {
          state: 'forged',
        },
      )
  }
  if (verdict.expired) {
    return say(410, 'This link has expired', '<p>Acknowledge from the dashboard instead.</p>', {
      state: 'expired',
    })
  }

  const [target] = await sql()<Target[]>`
    select i.id as incident_id, i.title, i.status::text, i.opened_at, i.acknowledged_at, i.acknowledged_by_name,
           c.name as contact, s.name as service
      from vigil.alerts a
      join vigil.incidents i on i.id = a.incident_id
      join vigil.services s on s.id = i.service_id
      left join vigil.contacts c on c.id = a.contact_id
     where a.id = ${verdict.alertId}`
  if (!target) {
    return say(404, 'No such incident', '<p>It may have been removed.</p>', { state: 'unknown' })
  }
  const incident = {
    id: Number(target.incident_id),
    title: target.title,
    service: target.service,
    status: target.status,
    opened_at: target.opened_at.toISOString(),
  }
  const what = `${target.title} (incident ${target.incident_id})`
  if (target.status !== 'open') {
    return say(409, 'Already resolved', `<p>${escape(what)} is already resolved.</p>`, {
      state: 'resolved',
      incident,
    })
  }
  if (target.acknowledged_at) {
    const by = target.acknowledged_by_name ?? 'someone'
    return say(
      200,
      'Already acknowledged',
      `<p>${escape(what)} was acknowledged by ${escape(by)} at ${
        hhmm(target.acknowledged_at)
      }.</p>`,
      { state: 'acknowledged', by, at: target.acknowledged_at.toISOString(), incident },
    )
  }
  if (req.method === 'GET') {
    return say(
      200,
      `Acknowledge ${target.title}?`,
      `<p>${escape(target.service)}: open since ${hhmm(target.opened_at)}.` +
        ' Acknowledging stops the reminders and the escalation to the senior contact.</p>' +
        '<form method="post"><button type="submit">Acknowledge</button></form>',
      { state: 'open', incident },
    )
  }
  try {
    const by = `${target.contact ?? 'a contact'} (alert link)`
    const [{ result }] = await sql()<{ result: { acknowledged: boolean; by: string | null } }[]>`
      select vigil.acknowledge_incident(${target.incident_id}, ${by}) as result`
    if (!result.acknowledged) {
      return say(
        409,
        'Not acknowledged',
        `<p>${escape(what)} was resolved or acknowledged meanwhile.</p>`,
        {
          state: 'changed',
          incident,
        },
      )
    }
    return say(
      200,
      'Acknowledged',
      `<p>${escape(what)}: acknowledged by ${escape(result.by ?? by)}. Thank you.</p>`,
      {
        state: 'acknowledged',
        by: result.by ?? by,
        incident,
      },
    )
  } catch (error) {
    console.error(
      `ack: recording the acknowledgement failed (${
        (error as { code?: string }).code ?? 'unknown'
      })`,
    )
    return say(
      503,
      'Not recorded',
      '<p>The acknowledgement could not be recorded; try again.</p>',
      {
        state: 'not_recorded',
      },
    )
  }
}

Deno.serve(async (req) => {
  const wantsJson = (req.headers.get('accept') ?? '').includes('application/json')
  if (req.method === 'OPTIONS') return preflight()
  if (req.method !== 'GET' && req.method !== 'POST') {
    return wantsJson
      ? json({ state: 'not_allowed' }, 405, { allow: 'GET, POST' })
      : htmlPage(405, 'Not allowed', '<p>Open the link from the alert.</p>')
  }
  const a = await answer(req)
  if (!wantsJson) return htmlPage(a.status, a.title, a.html)
  return json({ title: a.title, ...a.data }, a.status, {
    ...corsHeaders,
    'cache-control': 'no-store',
  })
})
