// health-check: one watch cycle over every enabled service in vigil.services. pg_cron calls it
// through vigil.invoke every 30 seconds (every minute on pg_cron 1.4); POST it to run one now.
import { z } from 'zod'
import { WITHHELD_FROM_PROBES } from '../../../shared/probe-configs.ts'
import { runCycle } from '../_shared/health/cycle.ts'
import { sql } from '../_shared/db.ts'
import { refuseUnlessServiceRole } from '../_shared/caller.ts'
import { json, readJsonBody } from '../_shared/http.ts'
import { guardedFetch, policyFromEnv } from '../_shared/outbound.ts'

const Env = z.object({
  SUPABASE_URL: z.url(),
  VIGIL_DB_URL: z.string().min(1),
  VIGIL_DEADMAN_URL: z.url().optional().or(z.literal('').transform(() => undefined)),
})
const Body = z.strictObject({
  trigger: z.enum(['cron', 'manual']).default('manual'),
  /** Run only these services (by name). */
  services: z.array(z.string().min(1).max(63)).min(1).max(1000).optional(),
})

// Parsed once; a bad environment is reported on every call by variable name, never by value.
const env = Env.safeParse(Deno.env.toObject())

// The deployment's outbound policy, read once: every request this function makes goes through it.
const outbound = guardedFetch(policyFromEnv((name) => Deno.env.get(name)))

Deno.serve(async (req) => {
  if (req.method !== 'POST') return json({ error: 'method not allowed' }, 405, { allow: 'POST' })
  const refused = refuseUnlessServiceRole(req)
  if (refused) return refused
  if (!env.success) {
    const names = env.error.issues.map((i) => i.path.join('.')).join(', ')
    console.error(`health-check: environment invalid: ${names}`)
    return json({ error: `function environment invalid: ${names}` }, 500)
  }
  const body = await readJsonBody(req, Body)
  if (!body.ok) return body.response
  try {
    const report = await runCycle({
      sql: sql(),
      // Probes may read any secret but the database's URL and Vigil's own, which must never leave.
      secret: (name) => (WITHHELD_FROM_PROBES.has(name) ? undefined : Deno.env.get(name)),
      projectUrl: env.data.SUPABASE_URL,
      deadmanUrl: env.data.VIGIL_DEADMAN_URL,
      auditSecret: Deno.env.get('VIGIL_AUDIT_SECRET'),
      databaseUrls: [Deno.env.get('SUPABASE_DB_URL'), Deno.env.get('VIGIL_DB_URL')],
      fetch: outbound,
      only: body.data.services,
    })
    return json(report)
  } catch (error) {
    // Driver errors can carry connection details: log the code only.
    const code = (error as { code?: string })?.code ?? (error as Error)?.name ?? 'unknown'
    console.error(`health-check: the cycle could not be recorded (${code})`)
    return json({ error: `the cycle could not be recorded (${code})` }, 500)
  }
})
