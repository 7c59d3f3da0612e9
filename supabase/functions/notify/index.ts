// notify: drains the alert outbox. Woken by the alerts insert trigger (through vigil.invoke) the
// moment something is queued, and by the vigil-notify-sweep job every minute for retries, grouped
// alerts and the end of quiet hours. Only the service role may call it.
import { z } from 'zod'
import { refuseUnlessServiceRole } from '../_shared/caller.ts'
import { sql } from '../_shared/db.ts'
import { envInvalid, json, readJsonBody } from '../_shared/http.ts'
import { deliverDue } from '../_shared/notify/deliver.ts'

const Env = z.object({ SUPABASE_URL: z.url(), SUPABASE_DB_URL: z.string().min(1) })
const Body = z.strictObject({
  trigger: z.enum(['alert', 'cron', 'manual']).default('manual'),
})

const env = Env.safeParse(Deno.env.toObject())

// What must never leave in a message, whatever a check error or heal detail quoted: the values of
// the function's own credentials.
const secretValues = Object.entries(Deno.env.toObject())
  .filter(([name, value]) =>
    /KEY|TOKEN|SECRET|PASSWORD|DB_URL|WEBHOOK|SID/.test(name) && value.length >= 8
  )
  .map(([, value]) => value)

Deno.serve(async (req) => {
  if (req.method !== 'POST') return json({ error: 'method not allowed' }, 405, { allow: 'POST' })
  const refused = refuseUnlessServiceRole(req)
  if (refused) return refused
  if (!env.success) return envInvalid(env.error)
  const body = await readJsonBody(req, Body)
  if (!body.ok) return body.response
  try {
    const report = await deliverDue({
      sql: sql(),
      secretValues,
      env: {
        secret: (name) => Deno.env.get(name) || undefined,
        fetch,
        timeoutMs: 10_000,
      },
      links: {
        projectUrl: Deno.env.get('VIGIL_PUBLIC_URL') || env.data.SUPABASE_URL,
        linkSecret: Deno.env.get('VIGIL_APPROVAL_SECRET'),
        dashboardUrl: Deno.env.get('VIGIL_DASHBOARD_URL') || undefined,
        ackPageUrl: Deno.env.get('VIGIL_ACK_PAGE_URL') || undefined,
      },
    })
    if (report.claimed > 0) {
      console.log(
        `notify (${body.data.trigger}): ${report.claimed} claimed, ${report.requests} requests, ` +
          `${report.delivered} delivered, ${report.retrying} to retry, ${report.failed} failed, ` +
          `${report.released} handed back, ${report.unrecorded} unrecorded, ${report.ms} ms`,
      )
    }
    return json(report)
  } catch (error) {
    const code = (error as { code?: string })?.code ?? (error as Error)?.name ?? 'unknown'
    console.error(`notify: the outbox could not be drained (${code})`)
    return json({ error: `the outbox could not be drained (${code})` }, 500)
  }
})
