// The report's forms from known facts: the summary, plain text with true numbers and trends, HTML
// with outside text escaped, Slack and Discord within their limits and with mentions disarmed, the
// email and webhook of a report alert; and the cron arithmetic behind "upcoming maintenance".
import assert from 'node:assert/strict'
import { nextRun, parseCron } from '../../shared/cron.ts'
import {
  DISCORD_LIMIT,
  discordContent,
} from '../../supabase/functions/_shared/notify/channels/discord.ts'
import { emailContent } from '../../supabase/functions/_shared/notify/channels/email.ts'
import { slackPayload } from '../../supabase/functions/_shared/notify/channels/slack.ts'
import { webhookAlert } from '../../supabase/functions/_shared/notify/channels/webhook.ts'
import type { AlertView } from '../../supabase/functions/_shared/notify/types.ts'
import { ReportFacts } from '../../supabase/functions/_shared/reports/facts.ts'
import {
  periodName,
  reportDocument,
  reportHtml,
  reportSummary,
  reportText,
} from '../../supabase/functions/_shared/reports/render.ts'
import { facts } from './_facts.ts'

function includes(text: string, part: string) {
  assert.ok(text.includes(part), `expected to find ${JSON.stringify(part)} in:\n${text}`)
}

Deno.test('the fixture has the shape vigil.report_facts returns', () => {
  assert.ok(ReportFacts.safeParse(facts()).success)
})

Deno.test('the summary says what matters in one line', () => {
  assert.deepEqual(
    reportSummary(facts()),
    'Wed 11 Mar 2026: 1 of 2 services below the 99.9 % SLA (lowest 99.52 %); 3 incidents, 2 fixed by Vigil, none open now; 4 heals (75 % succeeded).',
  )
  const calm = facts()
  calm.kpis.uptime = {
    services: [{ service: 'api', pct: 100, met: true }],
    lowest_pct: 100,
    services_below_sla: 0,
  }
  calm.kpis.incidents = { detected: 0, resolved: 0, fixed_by_vigil: 0, open_now: 1, by_kind: {} }
  calm.kpis.heals = {}
  assert.deepEqual(
    reportSummary(calm),
    'Wed 11 Mar 2026: the service met the 99.9 % SLA; no incidents, 1 open now; no heals.',
  )
  assert.deepEqual(
    periodName({
      ...facts(),
      kind: 'weekly',
      period: { ...facts().period, start_date: '2026-03-02', end_date: '2026-03-09' },
    }),
    'Mon 2 Mar 2026 – Sun 8 Mar 2026',
  )
})

Deno.test('the text has the true numbers, the trends, the assumptions and the schedule', () => {
  const text = reportText(reportDocument(facts(), { tasks: { daily: ['vacuum_analyze'] } }))
  includes(text, 'Vigil daily report — Wed 11 Mar 2026 (Europe/Berlin)')
  includes(text, 'api   99.520 %    BELOW SLA')
  includes(text, 'db    100.000 %   met')
  includes(text, 'API p95                      182 ms   was 120 ms, ▲ 52 % worse')
  includes(text, 'DB query p95                 12 ms    was 14 ms, ▼ 14 % better')
  // 0.20 against 0.19: under the noise floor of 0.05 points.
  includes(text, 'Error rate (failed checks)   0.20 %   was 0.19 %, about the same')
  includes(text, 'Deploy duration              —        no deployment source is watched yet')
  includes(text, '3 detected, 3 resolved, 2 fixed by Vigil, none open now.')
  includes(text, '❌ critical — api: api is down — 5 min, fixed by Vigil')
  includes(text, 'restart service — 2 succeeded, 1 failed')
  includes(text, 'Mean time to recover (MTTR)   3 min')
  includes(text, 'Prevented by maintenance      3 actions in 2 successful runs')
  includes(text, 'Engineer time saved           1 h')
  includes(text, 'Cost per incident             €16.67')
  includes(text, '100 EUR an hour')
  includes(text, 'db: disk full in about 6 days')
  // Berlin is UTC+1 in March before the 29th: 03:23Z is 04:23 local.
  includes(text, 'Daily maintenance — Fri 13 Mar 04:23 CET (vacuum analyze)')
  includes(text, 'Weekly maintenance — Sun 15 Mar 04:43 CET')
  includes(text, 'Below the 99.9 % SLA: api at 99.52 %')
  includes(text, 'Plan capacity: db: disk full in about 6 days')
  for (const line of text.split('\n')) assert.ok(line.length <= 120, `a line too long: ${line}`)
})

Deno.test('HTML escapes every text from outside', () => {
  const html = reportHtml(reportDocument(facts(), { dashboardUrl: 'https://vigil.example.org/' }))
  assert.ok(!html.includes('<img'), 'a service name must not become markup')
  includes(html, '&#60;img src=x onerror=alert(1)&#62;')
  includes(html, '<a href="https://vigil.example.org/">Open the dashboard</a>')
  includes(html, '99.520 %')
  assert.ok(html.startsWith('<!doctype html>'))
})

function reportAlert(f = facts()): AlertView {
  const doc = reportDocument(f)
  return {
    id: 9,
    incidentId: null,
    event: 'report',
    priority: 'info',
    severity: 'info',
    environment: 'prod',
    service: null,
    title: 'Vigil daily report, Wednesday 11 Mar 2026',
    summary: doc.summary,
    since: null,
    tried: [],
    suggestion: null,
    affected: [],
    links: { dashboard: 'https://vigil.example.org/' },
    dedupKey: 'vigil-report-daily-2026-03-11',
    createdAt: new Date('2026-03-12T08:00:00Z'),
    report: {
      id: 3,
      kind: 'daily',
      periodStart: '2026-03-11',
      periodEnd: '2026-03-12',
      text: reportText(doc),
      html: reportHtml(doc),
      facts: f,
    },
  }
}

Deno.test('a report goes by email as it was stored', () => {
  const alert = reportAlert()
  const mail = emailContent([alert])
  assert.deepEqual(mail.subject, 'Vigil daily report, Wednesday 11 Mar 2026')
  assert.deepEqual(mail.text, alert.report!.text)
  assert.deepEqual(mail.html, alert.report!.html)
})

Deno.test('a report goes to Slack as sections within its limits, mentions disarmed', () => {
  const payload = slackPayload([reportAlert()]) as {
    text: string
    blocks: { type: string; text: { type: string; text: string; verbatim: boolean } }[]
  }
  assert.deepEqual(payload.text, reportSummary(facts()))
  assert.ok(payload.blocks.length >= 1 && payload.blocks.length <= 50)
  for (const b of payload.blocks) {
    assert.deepEqual(b.type, 'section')
    assert.ok(b.text.text.length <= 3000)
    assert.ok(b.text.verbatim)
  }
  const all = payload.blocks.map((b) => b.text.text).join('\n')
  includes(all, '*Uptime against the 99.9 % SLA*')
  includes(all, '• api: 99.520 % · BELOW SLA')
  assert.ok(!all.includes('<!channel>'), 'a service name must not ping the channel')
  includes(all, '&lt;!channel&gt;')
  includes(all, '<https://vigil.example.org/|Open the dashboard>')
})

Deno.test('a long report is cut for Discord at a line, pointing to the rest', () => {
  const long = facts()
  long.incidents = Array.from({ length: 40 }, (_, i) => ({
    ...long.incidents[0],
    id: 100 + i,
    title: `incident number ${i} with a fairly long title to fill the message quickly`,
  }))
  const content = discordContent([reportAlert(long)])
  assert.ok(content.length <= DISCORD_LIMIT, `${content.length} characters`)
  includes(content, '**Vigil daily report')
  assert.ok(
    content.endsWith('…the rest: dashboard: <https://vigil.example.org/>'),
    content.slice(-80),
  )
  const short = discordContent([reportAlert()])
  assert.ok(!short.includes('…the rest'))
  assert.ok(!short.includes('@everyone'), 'no mention survives')
})

Deno.test('a webhook receives the report with its facts', () => {
  const body = webhookAlert(reportAlert()) as {
    event: string
    report: { facts: unknown; kind: string }
  }
  assert.deepEqual(body.event, 'report')
  assert.deepEqual(body.report.kind, 'daily')
  assert.deepEqual(body.report.facts, facts())
})

Deno.test('nextRun reads pg_cron schedules in UTC', () => {
  const at = new Date('2026-12-02T14:07:30Z')
  const next = (s: string) => nextRun(s, at)?.toISOString()
  assert.deepEqual(next('23 3 * * *'), '2026-12-03T03:23:00.000Z')
  assert.deepEqual(next('43 3 * * 0'), '2026-12-06T03:43:00.000Z')
  assert.deepEqual(next('53 3 1 * *'), '2027-01-01T03:53:00.000Z')
  assert.deepEqual(next('*/15 * * * *'), '2026-12-02T14:15:00.000Z')
  assert.deepEqual(next('0,30 * * * *'), '2026-12-02T14:30:00.000Z')
  assert.deepEqual(next('0 9-17/4 * * mon-fri'), '2026-12-02T17:00:00.000Z')
  assert.deepEqual(next('0 0 29 2 *'), '2028-02-29T00:00:00.000Z')
  // Both day fields restricted: the 13th or a Friday, whichever comes first.
  assert.deepEqual(next('0 0 13 * 5'), '2026-12-04T00:00:00.000Z')
  assert.deepEqual(next('@daily'), '2026-12-03T00:00:00.000Z')
  assert.deepEqual(next('0 0 * * 7'), '2026-12-06T00:00:00.000Z')
  assert.deepEqual(next('0 0 31 2 *'), undefined, 'a day that never comes')
  const bad = parseCron('61 * * * *')
  assert.ok(bad instanceof Error)
  assert.deepEqual(bad.message, 'minute "61": 61 is outside 0-59')
  assert.deepEqual(
    (parseCron('* * *') as Error).message,
    'a cron schedule has 5 fields, "* * *" has 3',
  )
  assert.deepEqual(
    (parseCron('0 0 * * 5-1') as Error).message,
    'day of week "5-1": range 5-1 runs backwards',
  )
  assert.deepEqual(nextRun('nonsense', at), null)
})

Deno.test('the slow-query report is its own block: each statement, its plan findings and fixes, outside text escaped', () => {
  const f = ReportFacts.parse({
    ...facts(),
    slow_queries: {
      at: '2026-03-11T03:00:00Z',
      summary: 'Top 2 slowest queries of 5 over 1000 ms',
      statements: [
        {
          rank: 1,
          query: "select id, total from shop.orders where customer_id = $1 and note <> '<b>'",
          mean_ms: 1250,
          calls: 4210,
          findings: [{
            kind: 'missing_index',
            text:
              'Missing index on shop.orders (customer_id): hypopg estimates the statement 94× cheaper (cost 12,345 → 131)',
            fix:
              'CREATE INDEX CONCURRENTLY IF NOT EXISTS "vigil_idx_orders_customer_id" ON "shop"."orders" ("customer_id")',
          }],
        },
        {
          rank: 2,
          query: 'insert into shop.audit select * from shop.staging',
          mean_ms: 1100,
          calls: 3,
          findings: [],
          note: 'not planned: an insert statement',
        },
      ],
      n_plus_one: [{
        title:
          'N+1 pattern: `select id, domain from domains where owner_id = $1` runs ~500 times per call of `select id, name from users where team_id = $1`',
        suggestion: 'join domains on owner_id, or owner_id = any($1) with all the ids',
      }],
    },
  })
  const doc = reportDocument(f)
  const text = reportText(doc)
  includes(text, 'TOP 2 SLOWEST QUERIES')
  includes(text, '  - #1 — select id, total from shop.orders where customer_id = $1')
  includes(text, '1.25 s a call, 4,210 calls')
  includes(
    text,
    '  - #1: Missing index on shop.orders (customer_id): hypopg estimates the statement 94× cheaper',
  )
  includes(text, 'Fix: CREATE INDEX CONCURRENTLY IF NOT EXISTS "vigil_idx_orders_customer_id"')
  includes(text, '  - #2: no plan finding (not planned: an insert statement)')
  includes(text, 'N+1 PATTERNS')
  includes(
    text,
    'runs ~500 times per call of `select id, name from users where team_id = $1`. Fix: join domains on owner_id',
  )
  const html = reportHtml(doc)
  assert.ok(!html.includes("<> '<b>'"), 'a statement must not become markup')
  // Without a run in the period there is no such block.
  assert.ok(!reportText(reportDocument(facts())).includes('SLOWEST QUER'))
})

Deno.test("the period's deployments are a block: each summary, a worse one marked bad", () => {
  const f = ReportFacts.parse({
    ...facts(),
    deployments: [{
      service: 'web-deploys',
      deployment_id: 'dpl_2',
      verdict: 'worse',
      summary:
        'Deployment dpl_2 of web-deploys: finished 2026-03-11 14:02 UTC. Impact over 15 minutes each side: API p95 100 → 900 ms, error rate 0 → 50 %. Verdict: worse (slower, more errors): consider rolling back to dpl_1.',
    }],
  })
  const doc = reportDocument(f)
  const block = doc.blocks.find((b) => b.title === 'Deployments')
  assert.ok(block)
  assert.equal(block.rows[0].tone, 'bad')
  includes(reportText(doc), 'Verdict: worse (slower, more errors): consider rolling back to dpl_1.')
  assert.ok(!reportDocument(facts()).blocks.some((b) => b.title === 'Deployments'))
})

Deno.test("the period's error analyses are a block: when each paged, and what explains it, in words", () => {
  const text = 'Error analysis of api-traffic: errors on 23.1 % of 260 requests (baseline 0 %).\n' +
    'Top errors: Error: Database connection refused — 68 % (logs (function_logs)).\n' +
    'Dependency chain: main-db down since 10:02 UTC → api-traffic errors.\n' +
    'Suggested fix: the database is refusing connections: see to the database first.'
  const f = ReportFacts.parse({
    ...facts(),
    error_analyses: [{ service: 'api-traffic', opened_at: '2026-03-11T10:03:00Z', text }],
  })
  const doc = reportDocument(f)
  const block = doc.blocks.find((b) => b.title === 'Error analysis')
  assert.ok(block)
  assert.equal(block.rows[0].tone, 'bad')
  const out = reportText(doc)
  includes(out, 'Error: Database connection refused — 68 %')
  includes(out, 'Dependency chain: main-db down since 10:02 UTC')
  assert.ok(!reportDocument(facts()).blocks.some((b) => b.title === 'Error analysis'))
})
