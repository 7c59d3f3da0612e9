// What the backup tasks (backup_check, dr_drill, backup_verification) share: where backups are —
// Supabase's Management API for a watched project, and a backup runner (devstack/backup-runner.ts)
// that takes pg_dump dumps, verifies them and restores them into a scratch database — how each is
// asked, how the answers are judged, and the one backup_failed incident per database service.
import type postgres from 'postgres'
import { z } from 'zod'
import { SupabaseManagementConfig } from '../../../../shared/probe-configs.ts'
import { guardedFetch, policyFromEnv, TargetRefused } from '../outbound.ts'
import { clip, endpoint, errorMessage, excerpt, parseJson } from '../probes/support.ts'
import { redact } from '../probes/types.ts'
import { readSettings, refuseBadSettings, type Rule } from './settings.ts'
import { type TaskContext, TaskError } from './types.ts'

// ---- settings ----

const hours: Rule<number> = [
  z.coerce.number().positive().max(24 * 90),
  'a number of hours above 0, at most 2160',
]
const serviceName: Rule<string> = [z.string().min(1).max(200), 'a service name']

const BACKUP_SETTINGS = {
  /** The newest backup may be this old; older, the project has no recent backup. */
  VIGIL_BACKUP_MAX_AGE_HOURS: [hours, 26],
  /** The vigil.services row (postgres) the runner's dumps belong to; unset: the watched database Vigil lives in. */
  VIGIL_BACKUP_SERVICE: [serviceName, undefined],
} as const

export interface BackupSettings {
  maxAgeHours: number
  service?: string
  /** The backup runner, when one is configured (VIGIL_BACKUP_RUNNER_URL and _TOKEN). */
  runner?: { url: string; token: string }
}

/** The settings, every bad one named at once; the token is only ever checked for presence. */
export function backupSettings(env: TaskContext['env']): BackupSettings {
  const { values, problems } = readSettings(env, BACKUP_SETTINGS)
  const rawUrl = env('VIGIL_BACKUP_RUNNER_URL')?.trim() || undefined
  const token = env('VIGIL_BACKUP_RUNNER_TOKEN')?.trim() || undefined
  let runner: BackupSettings['runner']
  if (rawUrl) {
    const url = URL.canParse(rawUrl) ? new URL(rawUrl) : null
    if (!url || !/^https?:$/.test(url.protocol)) {
      problems.push('VIGIL_BACKUP_RUNNER_URL must be an http(s) URL')
    } else if (url.username || url.password) {
      problems.push(
        'VIGIL_BACKUP_RUNNER_URL must not carry credentials (the token goes in VIGIL_BACKUP_RUNNER_TOKEN)',
      )
    } else if (!token) {
      problems.push('VIGIL_BACKUP_RUNNER_TOKEN is not set, and VIGIL_BACKUP_RUNNER_URL is')
    } else runner = { url: rawUrl.replace(/\/+$/, ''), token }
  }
  refuseBadSettings(problems)
  return {
    maxAgeHours: values.VIGIL_BACKUP_MAX_AGE_HOURS,
    service: values.VIGIL_BACKUP_SERVICE,
    runner,
  }
}

// ---- the runner's answers (devstack/backup-runner.ts writes them; the tasks read them) ----

export const BACKUP_ID = /^\d{8}T\d{6}Z-[0-9a-f]{8}$/

export const TableFacts = z.object({
  schema: z.string(),
  name: z.string(),
  rows: z.number().int().nonnegative(),
  /** sum(hashtextextended(row::text, 0)) over the table: equal rows in any order, equal sums. */
  checksum: z.string().regex(/^-?\d+$/),
})
export type TableFacts = z.infer<typeof TableFacts>

/** Something in the dump that a restore into a second database cannot hold, and why. */
export const LeftOut = z.object({
  extension: z.string(),
  schemas: z.array(z.string()),
  tables: z.array(z.string()),
  sequences: z.array(z.string()),
  why: z.string(),
})
export type LeftOut = z.infer<typeof LeftOut>

export const BackupSummary = z.object({
  id: z.string().regex(BACKUP_ID),
  taken_at: z.string(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  tables: z.number().int().nonnegative(),
  database: z.string(),
  server_version: z.string(),
  dump_seconds: z.number().nonnegative(),
})
export type BackupSummary = z.infer<typeof BackupSummary>

/** What a dump's manifest holds: its summary, every table's count and checksum, what is left out. */
export const Manifest = BackupSummary.omit({ tables: true }).extend({
  format: z.literal(1),
  tables: z.array(TableFacts),
  large_objects: z.number().int().nonnegative(),
  left_out: z.array(LeftOut),
})
export type Manifest = z.infer<typeof Manifest>

export const TakeAnswer = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), backup: BackupSummary }),
  z.object({ ok: z.literal(false), stage: z.literal('dump'), error: z.string() }),
])

export const Verification = z.object({
  id: z.string(),
  taken_at: z.string().nullable(),
  ok: z.boolean(),
  problems: z.array(z.string()),
})
export type Verification = z.infer<typeof Verification>
export const VerifyAnswer = z.object({ results: z.array(Verification) })

export const TableDifference = z.object({
  table: z.string(),
  expected_rows: z.number(),
  restored_rows: z.number().nullable(),
  expected_checksum: z.string(),
  restored_checksum: z.string().nullable(),
  why: z.string(),
})
export type TableDifference = z.infer<typeof TableDifference>

export const DrillAnswer = z.object({
  ok: z.boolean(),
  /** Where it stopped: integrity (the file), restore (pg_restore), compare (the data), or null. */
  stage: z.enum(['dump', 'integrity', 'restore', 'compare']).nullable(),
  error: z.string().nullable(),
  backup: z.object({ id: z.string(), taken_at: z.string().nullable(), bytes: z.number() })
    .nullable(),
  /** The runner had no dump kept (or was asked for a new one) and took one for this drill. */
  taken_for_drill: z.boolean(),
  restore_seconds: z.number().nullable(),
  compare_seconds: z.number().nullable(),
  tables_compared: z.number().int(),
  tables_equal: z.number().int(),
  differences: z.array(TableDifference),
  large_objects: z.object({ expected: z.number(), restored: z.number().nullable() }).nullable(),
  left_out: z.array(LeftOut),
  /** The scratch database could not be dropped afterwards (it is dropped before the next drill). */
  cleanup: z.string().nullable(),
})
export type DrillAnswer = z.infer<typeof DrillAnswer>

/**
 * Each table of the manifest against what the restore holds: a table missing, a row count or a
 * checksum that differs is a difference. Tables of what was left out are not compared.
 */
export function compareTables(
  expected: TableFacts[],
  restored: TableFacts[],
  leftOut: LeftOut[],
): { compared: number; equal: number; differences: TableDifference[] } {
  const skip = new Set(leftOut.flatMap((l) => l.tables))
  const found = new Map(restored.map((t) => [qualified(t), t]))
  const differences: TableDifference[] = []
  let compared = 0
  for (const want of expected) {
    const table = qualified(want)
    if (skip.has(table)) continue
    compared++
    const got = found.get(table)
    const base = { table, expected_rows: want.rows, expected_checksum: want.checksum }
    if (!got) {
      differences.push({
        ...base,
        restored_rows: null,
        restored_checksum: null,
        why: 'missing from the restore',
      })
    } else if (got.rows !== want.rows || got.checksum !== want.checksum) {
      differences.push({
        ...base,
        restored_rows: got.rows,
        restored_checksum: got.checksum,
        why: got.rows !== want.rows
          ? `${got.rows} row(s) restored, ${want.rows} dumped`
          : `same ${got.rows} row(s), different contents (checksum)`,
      })
    }
  }
  return { compared, equal: compared - differences.length, differences }
}

export function qualified(t: { schema: string; name: string }): string {
  return `${t.schema}.${t.name}`
}

// ---- asking the runner ----

/** A failure of the runner itself (unreachable, refused, broken): the run fails, nothing is judged. */
export class RunnerError extends TaskError {}

export interface RunnerClient {
  get<T>(path: string, schema: z.ZodType<T>): Promise<T>
  post<T>(path: string, body: unknown, schema: z.ZodType<T>): Promise<T>
}

export function runnerClient(
  runner: NonNullable<BackupSettings['runner']>,
  ctx: Pick<TaskContext, 'env' | 'signal'>,
  fetcher: typeof fetch = guardedFetch(policyFromEnv(ctx.env)),
): RunnerClient {
  const secrets = [runner.token]
  const call = async <T>(method: string, path: string, body: unknown, schema: z.ZodType<T>) => {
    const what = `the backup runner (${method} ${path})`
    let res: Response
    try {
      res = await fetcher(endpoint(runner.url, path), {
        method,
        headers: {
          authorization: `Bearer ${runner.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: ctx.signal,
        redirect: 'manual',
      })
    } catch (e) {
      if (ctx.signal.aborted) throw new RunnerError(`${what} did not answer in time`)
      const why = e instanceof TargetRefused ? e.message : `unreachable: ${errorMessage(e)}`
      throw new RunnerError(`${what}: ${redact(why, secrets)}`)
    }
    const text = await res.text()
    if (res.status === 401 || res.status === 403) {
      throw new RunnerError(`${what} refused VIGIL_BACKUP_RUNNER_TOKEN (HTTP ${res.status})`)
    }
    const answer = parseJson(text) as { error?: unknown } | undefined
    if (res.status !== 200) {
      const said = typeof answer?.error === 'string' ? answer.error : text
      throw new RunnerError(
        `${what} answered HTTP ${res.status}${
          res.status >= 500 || res.status === 429 ? ' (retryable)' : ''
        }: ${excerpt(said, secrets, 600)}`,
      )
    }
    const parsed = schema.safeParse(answer)
    if (!parsed.success) {
      throw new RunnerError(`${what} answered in an unexpected shape: ${excerpt(text, secrets)}`)
    }
    return parsed.data
  }
  return {
    get: (path, schema) => call('GET', path, undefined, schema),
    post: (path, body, schema) => call('POST', path, body, schema),
  }
}

// ---- Supabase's Management API: GET /v1/projects/{ref}/database/backups ----

/**
 * V1BackupsResponse: {region, walg_enabled, pitr_enabled, backups: [{is_physical_backup, status
 * (COMPLETED, FAILED, PENDING, REMOVED, ARCHIVED, CANCELLED), inserted_at}], physical_backup_data:
 * {earliest_physical_backup_date_unix?, latest_physical_backup_date_unix?}}.
 */
export const BackupList = z.looseObject({
  region: z.string().nullish(),
  walg_enabled: z.boolean().nullish(),
  pitr_enabled: z.boolean().nullish(),
  backups: z.array(z.looseObject({
    is_physical_backup: z.boolean().nullish(),
    status: z.string().min(1),
    inserted_at: z.string().min(1),
  })),
  physical_backup_data: z.looseObject({
    earliest_physical_backup_date_unix: z.number().nullish(),
    latest_physical_backup_date_unix: z.number().nullish(),
  }).nullish(),
})
export type BackupList = z.infer<typeof BackupList>

export interface ManagementSource {
  service_id: string
  service: string
  config: SupabaseManagementConfig
}

/** Enabled supabase_management services: the projects whose backups Supabase lists. */
export async function managementSources(sql: postgres.Sql): Promise<ManagementSource[]> {
  const rows = await sql<{ id: string; name: string; config: unknown }[]>`
    select id, name, config from vigil.services
     where kind = 'supabase_management' and enabled order by name`
  return rows.flatMap((r) => {
    const parsed = SupabaseManagementConfig.safeParse(r.config)
    return parsed.success ? [{ service_id: r.id, service: r.name, config: parsed.data }] : []
  })
}

/** The project's backup list, or a TaskError saying why not (never the token). */
export async function fetchBackupList(
  source: ManagementSource,
  ctx: Pick<TaskContext, 'env' | 'signal'>,
  fetcher: typeof fetch = guardedFetch(policyFromEnv(ctx.env)),
): Promise<BackupList> {
  const { config, service } = source
  const token = ctx.env(config.access_token_secret)?.trim()
  const what = `${service}: the Management API's backup list of project ${config.project_ref}`
  if (!token) throw new TaskError(`${what}: secret ${config.access_token_secret} is not set`)
  const secrets = [token]
  let res: Response
  try {
    res = await fetcher(
      endpoint(
        config.api_url,
        `/v1/projects/${encodeURIComponent(config.project_ref)}/database/backups`,
      ),
      {
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
        signal: ctx.signal,
        redirect: 'manual',
      },
    )
  } catch (e) {
    if (ctx.signal.aborted) throw new TaskError(`${what}: no answer in time (retryable)`)
    const why = e instanceof TargetRefused ? e.message : `unreachable: ${errorMessage(e)}`
    throw new TaskError(`${what}: ${redact(why, secrets)} (retryable)`)
  }
  const text = await res.text()
  if (res.status === 401 || res.status === 403) {
    throw new TaskError(
      `${what}: the access token in ${config.access_token_secret} was refused (HTTP ${res.status})`,
    )
  }
  if (res.status === 404) throw new TaskError(`${what}: project not found (HTTP 404)`)
  if (res.status === 429 || res.status >= 500) {
    const after = res.headers.get('retry-after')
    throw new TaskError(
      `${what}: HTTP ${res.status}${res.status === 429 ? ' rate limited' : ''} (retryable${
        after ? `, retry after ${clip(after, 20)} s` : ''
      })`,
    )
  }
  if (res.status !== 200) {
    throw new TaskError(`${what}: HTTP ${res.status}: ${excerpt(text, secrets)}`)
  }
  const parsed = BackupList.safeParse(parseJson(text))
  if (!parsed.success) {
    throw new TaskError(`${what}: an unexpected answer: ${excerpt(text, secrets)}`)
  }
  return parsed.data
}

export interface ListVerdict {
  region: string | null
  pitr_enabled: boolean | null
  walg_enabled: boolean | null
  listed: number
  by_status: Record<string, number>
  latest_completed_at: string | null
  /** The newest moment the project can be restored to: a completed backup or PITR's latest point. */
  recovery_point_at: string | null
  recovery_point_age_hours: number | null
  pitr_window: { earliest: string | null; latest: string | null } | null
  /** What makes the backups unsafe: each a sentence; none, and the backups are fine. */
  problems: string[]
  /** Worth knowing, not wrong: PITR off, a backup in progress, an old failure since recovered. */
  notes: string[]
}

/** Supabase writes inserted_at without a zone at times: it is UTC. */
function apiTime(text: string): number {
  const zoned = /(?:Z|[+-]\d\d:?\d\d)$/i.test(text) ? text : `${text}Z`
  return Date.parse(zoned)
}

function iso(ms: number): string {
  return new Date(ms).toISOString()
}

const hoursBetween = (from: number, to: number) => Math.round(((to - from) / 3_600_000) * 10) / 10

/** A project's backup list judged: the newest recovery point's age, failures since, PITR. */
export function judgeBackupList(list: BackupList, nowMs: number, maxAgeHours: number): ListVerdict {
  const dated = list.backups
    .map((b) => ({ ...b, at: apiTime(b.inserted_at) }))
    .filter((b) => Number.isFinite(b.at))
    .sort((a, b) => b.at - a.at)
  const byStatus: Record<string, number> = {}
  for (const b of list.backups) byStatus[b.status] = (byStatus[b.status] ?? 0) + 1
  const completed = dated.find((b) => b.status === 'COMPLETED')
  const physical = list.physical_backup_data ?? null
  const pitrLatest = physical?.latest_physical_backup_date_unix
    ? physical.latest_physical_backup_date_unix * 1000
    : null
  const point = Math.max(completed?.at ?? -Infinity, pitrLatest ?? -Infinity)
  const recovery = Number.isFinite(point) ? point : null
  const problems: string[] = []
  const notes: string[] = []
  const age = recovery === null ? null : hoursBetween(recovery, nowMs)
  if (recovery === null) {
    problems.push('no completed backup is listed: the project cannot be restored from a backup')
  } else if (age! > maxAgeHours) {
    problems.push(
      `the newest backup is ${age} h old (${iso(recovery)}), over the ${maxAgeHours} h allowed`,
    )
  }
  const failedSince = dated.filter((b) =>
    (b.status === 'FAILED' || b.status === 'CANCELLED') && b.at > (completed?.at ?? -Infinity)
  )
  if (failedSince.length > 0) {
    problems.push(
      `${failedSince.length} backup(s) ${
        completed ? 'since the last completed one' : 'listed'
      } ended ${[...new Set(failedSince.map((b) => b.status))].join('/')}, the newest at ${
        iso(failedSince[0].at)
      }`,
    )
  }
  const olderFailures =
    dated.filter((b) =>
      (b.status === 'FAILED' || b.status === 'CANCELLED') && !failedSince.includes(b)
    ).length
  if (olderFailures > 0) {
    notes.push(`${olderFailures} older failed backup(s), each followed by a completed one`)
  }
  const running = dated.filter((b) => b.status === 'PENDING')
  if (running.length > 0) notes.push(`a backup is in progress since ${iso(running[0].at)}`)
  const window = physical &&
      (physical.earliest_physical_backup_date_unix || physical.latest_physical_backup_date_unix)
    ? {
      earliest: physical.earliest_physical_backup_date_unix
        ? iso(physical.earliest_physical_backup_date_unix * 1000)
        : null,
      latest: pitrLatest === null ? null : iso(pitrLatest),
    }
    : null
  if (list.pitr_enabled) {
    notes.push(
      window
        ? `PITR enabled: restorable to any moment from ${window.earliest ?? '?'} to ${
          window.latest ?? '?'
        }`
        : 'PITR enabled, but no recovery window is reported yet',
    )
  } else {
    notes.push('PITR not enabled: the project can be restored to a daily backup, not to a moment')
  }
  return {
    region: list.region ?? null,
    pitr_enabled: list.pitr_enabled ?? null,
    walg_enabled: list.walg_enabled ?? null,
    listed: list.backups.length,
    by_status: byStatus,
    latest_completed_at: completed ? iso(completed.at) : null,
    recovery_point_at: recovery === null ? null : iso(recovery),
    recovery_point_age_hours: age,
    pitr_window: window,
    problems,
    notes,
  }
}

// ---- the incident ----

export interface BackupService {
  id: string
  name: string
}

/**
 * The postgres service the runner's dumps belong to: VIGIL_BACKUP_SERVICE by name, else the
 * watched database Vigil lives in (a postgres service without a connection_secret).
 */
export async function runnerService(
  sql: postgres.Sql,
  settings: BackupSettings,
): Promise<BackupService | null> {
  const [row] = settings.service
    ? await sql<BackupService[]>`
        select id, name from vigil.services where name = ${settings.service} and enabled`
    : await sql<BackupService[]>`
        select id, name from vigil.services
         where kind = 'postgres' and enabled and not config ? 'connection_secret'
         order by name limit 1`
  if (!row && settings.service) {
    throw new TaskError(
      `VIGIL_BACKUP_SERVICE names ${settings.service}, which is not an enabled service`,
    )
  }
  return row ?? null
}

export const BACKUP_INCIDENT = 'backup_failed'

/**
 * One open backup_failed incident per service, critical, its detail holding each failing task's
 * reason: a task's good run takes its own reason out, and the incident resolves once none is left
 * (a good backup_check does not clear a drill that failed). The row is locked before it changes.
 *
 * Opening it pages on-call at once (vigil.escalate level 3; the ladder takes it to the senior when
 * nobody acknowledges). The heal engine never acts on it: backup_failed is an advisory kind
 * (shared/kinds.ts), because no heal can make a backup good — re-taking or restoring is a
 * person's call — and healing the service's other findings in its name would be wrong.
 */
export async function trackBackupIncident(
  sql: postgres.Sql,
  service: BackupService,
  task: string,
  failure: string | null,
): Promise<Record<string, unknown> | null> {
  return await sql.begin(async (tx) => {
    const [open] = await tx<{ id: number; failing: Record<string, { reason: string }> | null }[]>`
      select id::int, detail -> 'failing' as failing from vigil.incidents
       where service_id = ${service.id} and kind = ${BACKUP_INCIDENT} and status = 'open'
       for update`
    const failing = { ...(open?.failing ?? {}) }
    if (failure === null) {
      if (!open || !(task in failing)) return null
      delete failing[task]
      if (Object.keys(failing).length === 0) {
        await tx`
          update vigil.incidents
             set status = 'resolved', resolved_at = now(),
                 detail = detail || jsonb_build_object('failing', '{}'::jsonb, 'resolved_by', ${task}::text)
           where id = ${open.id}`
        return { service: service.name, incident_id: open.id, action: 'resolved' }
      }
      await tx`
        update vigil.incidents set detail = detail || ${tx.json({ failing })}
         where id = ${open.id}`
      return { service: service.name, incident_id: open.id, action: 'cleared', task }
    }
    failing[task] = { reason: failure, at: new Date().toISOString() } as { reason: string }
    const title = clip(`${service.name}: ${task} failed: ${failure}`, 300)
    const detail = { failing } as postgres.JSONValue
    let id: number
    let action: string
    if (!open) {
      ;[{ id }] = await tx<{ id: number }[]>`
        insert into vigil.incidents (service_id, kind, severity, title, detail)
        values (${service.id}, ${BACKUP_INCIDENT}, 'critical', ${title}, ${tx.json(detail)})
        returning id::int`
      action = 'opened'
    } else {
      id = open.id
      await tx`
        update vigil.incidents set title = ${title}, detail = detail || ${tx.json(detail)}
         where id = ${id}`
      action = 'updated'
    }
    await tx`select vigil.escalate(${id}, 3, ${clip(`${task} failed: ${failure}`, 500)})`
    return { service: service.name, incident_id: id, action, title }
  }) as Record<string, unknown> | null
}

/** "pg_cron (cron.job, cron.job_run_details)": what a restore left out, for summaries (why: in the findings). */
export function leftOutWords(leftOut: LeftOut[]): string {
  return leftOut.map((l) =>
    l.tables.length ? `${l.extension} (${l.tables.join(', ')})` : l.extension
  )
    .join(', ')
}
