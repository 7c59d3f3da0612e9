// The outbox's worker: claims due alerts (vigil.claim_alerts, FOR UPDATE SKIP LOCKED, so two
// workers never hold the same row), groups those bound for one contact into one message, sends
// through the contact's channel, and records each request (vigil.record_alert_attempt), which
// decides in SQL what comes next: sent, a retry with backoff, or the person's next channel.
import type postgres from 'postgres'
import { type AlertChannel, REPORT_CHANNELS } from '../../../../shared/kinds.ts'
import { TargetRefused } from '../outbound.ts'
import { redact, redactDeep } from '../probes/types.ts'
import { NOTIFIERS } from './registry.ts'
import type { AlertView, Endpoint, Notifier, NotifyEnv, SendResult } from './types.ts'
import { ClaimedRow, type Links, viewOf } from './view.ts'

export interface DeliverOptions {
  sql: postgres.Sql
  env: NotifyEnv
  links: Links
  /** Names the claims in vigil.alerts.claimed_by and the attempt rows. */
  worker?: string
  notifiers?: Record<AlertChannel, Notifier>
  /** Rows per claim. */
  batch?: number
  /** Provider requests in flight at once. */
  concurrency?: number
  /**
   * Starts no send after this long (what is claimed and not yet sent is handed back) and waits for
   * nothing due beyond it. With one request's timeout it must stay under the claim's lease (2 min).
   */
  budgetMs?: number
  /** Values struck from every message before it leaves (the function's own secrets). */
  secretValues?: string[]
  /** Alerts per message at most (a group beyond it becomes several messages). */
  maxGroup?: number
}

export interface DeliverReport {
  worker: string
  claimed: number
  requests: number
  delivered: number
  retrying: number
  failed: number
  /** Claimed, then handed back unsent because the budget ran out. */
  released: number
  /** Sent, but the outcome could not be recorded (the lease will send them again). */
  unrecorded: number
  ms: number
}

interface Job {
  ids: number[]
  views: AlertView[]
  to: Endpoint
  notifier: Notifier
}

/** Drains what is due now, and what falls due within the budget (a retry, a grouping window). */
export async function deliverDue(options: DeliverOptions): Promise<DeliverReport> {
  const started = performance.now()
  const worker = options.worker ?? `notify-${crypto.randomUUID().slice(0, 8)}`
  const budgetMs = options.budgetMs ?? 40_000
  const report: DeliverReport = {
    worker,
    claimed: 0,
    requests: 0,
    delivered: 0,
    retrying: 0,
    failed: 0,
    released: 0,
    unrecorded: 0,
    ms: 0,
  }
  const left = () => budgetMs - (performance.now() - started)
  while (left() > 0) {
    const rows = await options.sql<{ row: unknown }[]>`
      select r as row from vigil.claim_alerts(${worker}, ${options.batch ?? 100}) r`
    if (rows.length === 0) {
      // Something due soon (a retry's backoff, the end of a grouping window) is worth waiting for.
      const wait = await nextDueInMs(options.sql)
      if (wait === null || wait > Math.min(left(), 35_000)) break
      await new Promise((r) => setTimeout(r, Math.max(wait, 50)))
      continue
    }
    report.claimed += rows.length
    const jobs = await jobsOf(rows.map((r) => r.row), options, worker, report)
    const unsent: number[] = []
    await pool(jobs, options.concurrency ?? 8, async (job) => {
      // Past the budget a send could outlive the claim's lease and go out twice: hand it back.
      if (left() <= 0) unsent.push(...job.ids)
      else await run(job, options, worker, report)
    })
    if (unsent.length) {
      await options.sql`select vigil.release_alerts(${worker}, ${options.sql.json(unsent)})`
      report.released += unsent.length
    }
  }
  report.ms = Math.round(performance.now() - started)
  return report
}

async function nextDueInMs(sql: postgres.Sql): Promise<number | null> {
  const [r] = await sql<{ ms: number | null }[]>`
    select (extract(epoch from min(next_attempt_at) - now()) * 1000)::float8 as ms
      from vigil.alerts where status in ('pending', 'failed')`
  return r?.ms ?? null
}

/** Parses the rows, refuses those that cannot be sent, and groups the rest per contact. */
async function jobsOf(
  raw: unknown[],
  options: DeliverOptions,
  worker: string,
  report: DeliverReport,
): Promise<Job[]> {
  const notifiers = options.notifiers ?? NOTIFIERS
  const maxGroup = options.maxGroup ?? 20
  const groups = new Map<string, Job>()
  const jobs: Job[] = []
  for (const item of raw) {
    const parsed = ClaimedRow.safeParse(item)
    const id = Number((item as { id?: unknown })?.id)
    if (!parsed.success) {
      const fields = parsed.error.issues.map((i) => i.path.join('.') || 'row').join(', ')
      await record(options.sql, worker, [id], fail(`the alert row could not be read (${fields})`))
      report.failed++
      continue
    }
    const row = parsed.data
    if (!row.contact.id) {
      await record(options.sql, worker, [row.id], fail('the contact was deleted'))
      report.failed++
      continue
    }
    if (row.contact.channel !== row.channel) {
      await record(
        options.sql,
        worker,
        [row.id],
        fail(
          `the contact moved from ${row.channel} to ${row.contact.channel} after the alert was queued`,
        ),
      )
      report.failed++
      continue
    }
    if (row.event === 'report') {
      const refusal = !row.report
        ? 'the report is no longer stored'
        : !(REPORT_CHANNELS as readonly string[]).includes(row.channel)
        ? `reports go by ${REPORT_CHANNELS.join(', ')}, never by ${row.channel}`
        : null
      if (refusal) {
        await record(options.sql, worker, [row.id], fail(refusal))
        report.failed++
        continue
      }
    }
    let prepared: Awaited<ReturnType<typeof viewOf>>
    try {
      prepared = await viewOf(row, options.links)
    } catch (error) {
      // One row that cannot be made into a message must not hold back the batch.
      await record(
        options.sql,
        worker,
        [row.id],
        fail(`the message could not be prepared: ${String(error)}`),
      )
      report.failed++
      continue
    }
    const { view, to } = prepared
    if (options.secretValues?.length) strike(view, options.secretValues)
    const notifier = notifiers[row.channel]
    const key = `${row.contact.id}|${row.channel}`
    // A report is a message of its own: never folded into a page, nor a page into it.
    const grouped = notifier.groups && row.event !== 'report'
    const open = grouped ? groups.get(key) : undefined
    if (open && open.ids.length < maxGroup) {
      open.ids.push(row.id)
      open.views.push(view)
      continue
    }
    const job: Job = { ids: [row.id], views: [view], to, notifier }
    jobs.push(job)
    if (grouped) groups.set(key, job)
  }
  return jobs
}

/** notify's own refusals are about the row, never the contact. */
function fail(error: string): SendResult {
  return { kind: 'permanent', error, scope: 'alert' }
}

/** Strikes secret values from everything in a message that came from outside Vigil's own words. */
function strike(view: AlertView, secrets: string[]) {
  const r = (t: string) => redact(t, secrets)
  view.title = r(view.title)
  view.summary = r(view.summary)
  if (view.suggestion) view.suggestion = r(view.suggestion)
  if (view.reason) view.reason = r(view.reason)
  view.tried = view.tried.map(r)
  view.affected = view.affected.map(r)
  if (view.report) {
    view.report.text = r(view.report.text)
    view.report.html = r(view.report.html)
    view.report.facts = redactDeep(view.report.facts, secrets) as typeof view.report.facts
  }
}

async function run(job: Job, options: DeliverOptions, worker: string, report: DeliverReport) {
  // Every secret the channel read is struck from what is recorded, whatever the channel did.
  const used: string[] = []
  let refused: TargetRefused | undefined
  const env: NotifyEnv = {
    ...options.env,
    fetch: async (input, init) => {
      try {
        return await options.env.fetch(input, init)
      } catch (error) {
        if (error instanceof TargetRefused) refused = error
        throw error
      }
    },
    secret: (name) => {
      const value = options.env.secret(name)
      if (value) used.push(value)
      return value
    },
  }
  const startedAt = new Date()
  const t0 = performance.now()
  let result: SendResult
  try {
    result = await job.notifier.send(job.views, job.to, env)
  } catch (error) {
    result = {
      kind: 'retryable',
      error: `the ${job.to.channel} channel failed unexpectedly: ${String(error)}`,
    }
  }
  // A target the outbound guard refused will be refused again: the URL is the contact's (webhook,
  // chat) or the project's (a provider's base URL), and no retry can help.
  if (refused && result.kind !== 'delivered') {
    const contactsUrl = job.to.channel === 'webhook' || job.to.channel === 'slack' ||
      job.to.channel === 'discord'
    result = {
      kind: 'permanent',
      scope: contactsUrl ? 'contact' : 'provider',
      error: refused.message,
    }
  }
  report.requests++
  if (result.kind === 'delivered') report.delivered += job.ids.length
  else if (result.kind === 'retryable') report.retrying += job.ids.length
  else report.failed += job.ids.length
  const timing = {
    started_at: startedAt.toISOString(),
    duration_ms: Math.round(performance.now() - t0),
  }
  // One more try after a hiccup; then the rows stay claimed and go out again when the lease ends
  // (at least once, never lost), and the run goes on with the others.
  for (let tries = 0; tries < 2; tries++) {
    try {
      await record(options.sql, worker, job.ids, result, timing, used)
      return
    } catch {
      await new Promise((r) => setTimeout(r, 200))
    }
  }
  report.unrecorded += job.ids.length
}

async function record(
  sql: postgres.Sql,
  worker: string,
  ids: number[],
  result: SendResult,
  timing: { started_at?: string; duration_ms?: number } = {},
  secrets: string[] = [],
) {
  const payload = {
    outcome: result.kind,
    scope: result.kind === 'permanent' ? result.scope ?? 'alert' : null,
    status_code: result.status ?? null,
    error: result.kind === 'delivered' ? null : redact(result.error, secrets),
    retry_after_ms: result.kind === 'retryable' ? result.retryAfterMs ?? null : null,
    provider_id: result.kind === 'delivered' ? result.providerId ?? null : null,
    request_id: crypto.randomUUID(),
    ...timing,
  }
  await sql`select vigil.record_alert_attempt(${worker}, ${sql.json(ids)}, ${sql.json(payload)})`
}

async function pool<T>(items: T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const workers = Array.from({ length: Math.min(size, items.length) }, async () => {
    while (next < items.length) await fn(items[next++])
  })
  await Promise.all(workers)
}
