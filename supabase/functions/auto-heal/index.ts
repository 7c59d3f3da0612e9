// auto-heal: heals one incident. Called through vigil.invoke by the incidents trigger (opened or
// worsened), by the vigil-heal-retry job, and when a human approves a planned heal.
import { z } from 'zod'
import { sql } from '../_shared/db.ts'
import { healIncident } from '../_shared/heal/engine.ts'
import { envInvalid, json, readJsonBody } from '../_shared/http.ts'

const Env = z.object({ SUPABASE_URL: z.url(), SUPABASE_DB_URL: z.string().min(1) })
const Body = z.strictObject({
  incident_id: z.number().int().positive(),
  approval: z.uuid().optional(),
  reason: z.enum(['opened', 'worsened', 'retry', 'manual']).default('manual'),
})

const env = Env.safeParse(Deno.env.toObject())

Deno.serve(async (req) => {
  if (req.method !== 'POST') return json({ error: 'method not allowed' }, 405, { allow: 'POST' })
  if (!env.success) return envInvalid(env.error)
  const body = await readJsonBody(req, Body)
  if (!body.ok) return body.response
  try {
    const report = await healIncident(
      { incidentId: body.data.incident_id, approval: body.data.approval },
      {
        sql: sql(),
        secret: (name) => Deno.env.get(name),
        projectUrl: env.data.SUPABASE_URL,
      },
    )
    return json(report)
  } catch (error) {
    const code = (error as { code?: string })?.code ?? (error as Error)?.name ?? 'unknown'
    console.error(`auto-heal: incident ${body.data.incident_id} could not be handled (${code})`)
    return json({ error: `the incident could not be handled (${code})` }, 500)
  }
})
