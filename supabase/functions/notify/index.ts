// notify: drains the alert outbox. Woken by the alerts insert trigger (through vigil.invoke) the
// moment something is queued, and by the vigil-notify-sweep job every minute for retries, grouped
// alerts and the end of quiet hours. Only the service role may call it.
import { z } from 'zod'
import { refuseUnlessServiceRole } from '../_shared/caller.ts'
import { sql } from '../_shared/db.ts'
import { envInvalid, json, readJsonBody } from '../_shared/http.ts'
import { deliverDue } from '../_shared/notify/deliver.ts'
import { guardedFetch, policyFromEnv } from '../_shared/outbound.ts'

const Env = z.object({ SUPABASE_URL: z.url(), VIGIL_DB_URL: z.string().min(1) })
const Body = z.strictObject({
  trigger: z.enum(['alert', 'cron', 'manual']).default('manual'),
})

const env = Env.safeParse(Deno.env.toObject())

// The deployment's outbound policy, read once: every request this function makes goes through it.
const outbound = guardedFetch(policyFromEnv((name) => Deno.env.get(name)))

// What must never leave in a message, whatever a check error or heal detail quoted: every value of
// the function's environment but the few that are public, and the parts of those that are URLs or
// connection strings (a path token, a password).
const PUBLIC =
  /^(SUPABASE_URL|SUPABASE_ANON_KEY|SUPABASE_PUBLISHABLE_KEYS|VIGIL_PUBLIC_URL|VIGIL_DASHBOARD_URL|VIGIL_ACK_PAGE_URL|VIGIL_\w+_API_URL|VIGIL_\w+_FROM|PATH|HOME|HOSTNAME|PWD|LANG|TERM|TZ|NO_COLOR|SHLVL|DENO_\w+|LC_\w+|XDG_\w+|TMPDIR)$/
const secretValues = Object.entries(Deno.env.toObject())
  .filter(([name, value]) => !PUBLIC.test(name) && value.length >= 8)
  // Parts shorter than 12 characters are words, not secrets (the local database's password is
  // 'postgres', which every message about a postgres service would lose).
  .flatMap(([, value]) => [value, ...urlParts(value).filter((part) => part.length >= 12)])
  .filter((v, i, all) => all.indexOf(v) === i)

function urlParts(value: string): string[] {
  try {
    const u = new URL(value)
    const last = u.pathname.split('/').filter(Boolean).at(-1) ?? ''
    return [u.pathname, last, u.search, u.password, decodeURIComponent(u.password)]
  } catch {
    return []
  }
}

// A malformed VIGIL_ACK_PAGE_URL must not stop the outbox: links then lead to the function itself.
const ackPage = z.url({ protocol: /^https?$/ }).safeParse(
  Deno.env.get('VIGIL_ACK_PAGE_URL') || undefined,
)
if (Deno.env.get('VIGIL_ACK_PAGE_URL') && !ackPage.success) {
  console.error(
    'notify: VIGIL_ACK_PAGE_URL is not an http(s) URL; ack links lead to the ack function instead',
  )
}

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
        fetch: outbound,
        timeoutMs: 10_000,
      },
      links: {
        projectUrl: Deno.env.get('VIGIL_PUBLIC_URL') || env.data.SUPABASE_URL,
        linkSecret: Deno.env.get('VIGIL_APPROVAL_SECRET'),
        dashboardUrl: Deno.env.get('VIGIL_DASHBOARD_URL') || undefined,
        ackPageUrl: ackPage.success ? ackPage.data : undefined,
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
