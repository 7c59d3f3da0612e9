// report: makes the daily and weekly reports that are due (pg_cron asks twice an hour through
// vigil.invoke; 09:00 in vigil.report_settings.time_zone by default), or one period on request
// ({kind, date}). Each is stored in vigil.reports and queued for the report contacts; notify sends
// it (email as HTML and text, Slack, Discord, webhooks). Only the service role may call it.
import { z } from 'zod'
import { sql } from '../_shared/db.ts'
import { servicePost } from '../_shared/caller.ts'
import { json } from '../_shared/http.ts'
import { tasksFor } from '../_shared/maintenance/registry.ts'
import { connectionSecrets } from '../_shared/probes/types.ts'
import { ReportKind } from '../_shared/reports/facts.ts'
import { makeReports, ReportRequestError } from '../_shared/reports/make.ts'

const Body = z.strictObject({
  trigger: z.enum(['cron', 'manual']).optional(),
  kind: ReportKind.optional(),
  date: z.iso.date().optional(),
  again: z.boolean().optional(),
}).refine((b) => b.date === undefined || b.kind !== undefined, {
  path: ['kind'],
  message: 'a date needs a kind (daily or weekly)',
}).refine((b) => b.again === undefined || b.kind !== undefined, {
  path: ['kind'],
  message: 'again needs a kind (daily or weekly) and optionally a date',
})

const dashboardUrl = Deno.env.get('VIGIL_DASHBOARD_URL') || undefined

Deno.serve(async (req) => {
  const body = await servicePost(req, Body)
  if (!body.ok) return body.response
  try {
    const reports = await makeReports(sql(), body.data, {
      worker: `report-${crypto.randomUUID().slice(0, 8)}`,
      render: {
        dashboardUrl,
        tasks: {
          daily: tasksFor('daily').map((t) => t.name),
          weekly: tasksFor('weekly').map((t) => t.name),
          monthly: tasksFor('monthly').map((t) => t.name),
        },
      },
      secrets: connectionSecrets(Deno.env.get('VIGIL_DB_URL')),
    })
    for (const r of reports) {
      if (r.error) {
        console.error(`report: the ${r.kind} report of ${r.period_start} failed: ${r.error}`)
      } else if (r.id) {
        console.log(`report: ${r.kind} ${r.period_start} made, queued for ${r.recipients} contacts`)
      }
    }
    const failed = reports.some((r) => r.error)
    return json({ reports }, failed ? 500 : 200)
  } catch (error) {
    if (error instanceof ReportRequestError) return json({ error: error.message }, 422)
    const code = (error as { code?: string })?.code ?? (error as Error)?.name ?? 'unknown'
    console.error(`report: the reports could not be made (${code})`)
    return json({ error: `the reports could not be made (${code})` }, 500)
  }
})
