// analyze: pg_cron asks every minute ({"trigger": "cron"}) to run the analysis: each metric series
// through its anomaly detector, forecasts for what runs out, and the anomaly and forecast incidents
// settled (supabase/functions/_shared/analysis/run.ts). Asked by a person ({"service": "demo-api"}
// or {} for the whole project, "why is our API slow today?"), it answers the analysis as it
// stands, as JSON and as Markdown. Only the service role may call it.
import { z } from 'zod'
import { sql } from '../_shared/db.ts'
import { servicePost } from '../_shared/caller.ts'
import { json } from '../_shared/http.ts'
import { currentAnalysis, markdownOf, UnknownService } from '../_shared/analysis/current.ts'
import { runAnalysis } from '../_shared/analysis/run.ts'

const Body = z.union([
  z.strictObject({ trigger: z.enum(['cron', 'manual']) }),
  z.strictObject({
    service: z.string().min(1).max(200).optional(),
    format: z.enum(['json', 'markdown']).optional(),
  }),
])

Deno.serve(async (req) => {
  const body = await servicePost(req, Body)
  if (!body.ok) return body.response
  try {
    if ('trigger' in body.data) {
      const started = performance.now()
      const run = await runAnalysis(sql())
      return json({ ...run, took_ms: Math.round(performance.now() - started) })
    }
    const analysis = await currentAnalysis(sql(), body.data.service ?? null)
    if (body.data.format === 'markdown') {
      return new Response(markdownOf(analysis), {
        headers: { 'content-type': 'text/markdown; charset=utf-8' },
      })
    }
    return json({ ...analysis, markdown: markdownOf(analysis) })
  } catch (error) {
    if (error instanceof UnknownService) return json({ error: `service: ${error.message}` }, 400)
    const code = (error as { code?: string })?.code ?? (error as Error)?.name ?? 'unknown'
    console.error(`analyze: failed (${code})`)
    return json({ error: `the analysis failed (${code})` }, 500)
  }
})
