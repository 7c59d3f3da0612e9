// auto-heal: heals one incident. Called through vigil.invoke by the incidents trigger (opened or
// worsened), by the vigil-heal-retry job, and when a human approves a planned heal.
import { z } from 'zod'
import { sql } from '../_shared/db.ts'
import { refuseUnlessServiceRole } from '../_shared/caller.ts'
import {
  healIncident,
  type HealOutcome,
  type HealReport,
  previewHeal,
} from '../_shared/heal/engine.ts'
import { envInvalid, json, readJsonBody } from '../_shared/http.ts'
import { guardedFetch, policyFromEnv } from '../_shared/outbound.ts'

const Env = z.object({ SUPABASE_URL: z.url(), VIGIL_DB_URL: z.string().min(1) })
const Body = z.strictObject({
  incident_id: z.number().int().positive(),
  approval: z.uuid().optional(),
  reason: z.enum(['opened', 'worsened', 'retry', 'manual']).default('manual'),
  /** What it would do now, without doing it (the CLI's heal --dry-run): nothing is written. */
  preview: z.boolean().default(false),
})

const env = Env.safeParse(Deno.env.toObject())

// The deployment's outbound policy, read once: every request this function makes goes through it.
const outbound = guardedFetch(policyFromEnv((name) => Deno.env.get(name)))

/**
 * What the caller learns: the outcome in general words. The plan and its details (pids, users,
 * query text) stay in vigil.heal_actions, where RLS decides who reads them.
 */
const SUMMARY: Record<HealOutcome, string> = {
  claimed_elsewhere: 'not handled here: the incident is not open, or another worker holds it',
  human_only: 'left to humans, who were paged',
  nothing_to_do: 'no strategy had anything to do; a human was paged',
  exhausted: 'the ladder is finished; the senior contact was paged',
  skipped: 'held back by a failsafe (kill switch, policy, rate limit or circuit breaker)',
  dry_run: 'decided and recorded, nothing done',
  awaiting_approval: 'waiting for a human to approve the plan',
  succeeded: 'healed, and verified',
  failed: 'the heal did not work',
  undone: 'the heal made things worse and was undone',
  waiting: 'a strategy will act once its own rules allow; asked again then, nobody paged',
}

function summary(report: HealReport) {
  return {
    incident_id: report.incident_id,
    outcome: report.outcome,
    ...(report.strategy && { strategy: report.strategy }),
    ...(report.attempt && { attempt: report.attempt }),
    ...(report.action_id && { action_id: report.action_id }),
    summary: SUMMARY[report.outcome],
  }
}

Deno.serve(async (req) => {
  if (req.method !== 'POST') return json({ error: 'method not allowed' }, 405, { allow: 'POST' })
  const refused = refuseUnlessServiceRole(req)
  if (refused) return refused
  if (!env.success) return envInvalid(env.error)
  const body = await readJsonBody(req, Body)
  if (!body.ok) return body.response
  const options = {
    sql: sql(),
    secret: (name: string) => Deno.env.get(name),
    projectUrl: env.data.SUPABASE_URL,
    fetch: outbound,
  }
  try {
    if (body.data.preview) {
      // Only the service role gets here, which may read the heal audit and its plans anyway.
      const preview = await previewHeal(body.data.incident_id, options)
      return preview
        ? json(preview)
        : json({ error: `incident_id: there is no incident ${body.data.incident_id}` }, 404)
    }
    const report = await healIncident(
      { incidentId: body.data.incident_id, approval: body.data.approval },
      options,
    )
    return json(summary(report))
  } catch (error) {
    const code = (error as { code?: string })?.code ?? (error as Error)?.name ?? 'unknown'
    console.error(`auto-heal: incident ${body.data.incident_id} could not be handled (${code})`)
    return json({ error: `the incident could not be handled (${code})` }, 500)
  }
})
