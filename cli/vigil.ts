// The vigil CLI: Vigil's state and its everyday actions from a terminal, against the local stack or
// a Supabase project, through the project's own API (PostgREST on schema vigil, and the functions)
// with the service-role key, as the dashboard reads it. Readable tables, or --json.
//
//   npm run vigil -- status                      every service, its status and 24-hour uptime
//   npm run vigil -- incidents [--all]           open incidents (--all: the latest 50 of any state)
//   npm run vigil -- ack <incident>              acknowledge an open incident (its reminders stop)
//   npm run vigil -- silence <service> <30m|2h|1d> [--reason "…"]   hold a service's alerts
//   npm run vigil -- heal <incident> --dry-run   what Vigil would do for it now, doing nothing
//   npm run vigil -- analyze [service]           the analysis now (slow queries, anomalies, …)
//   npm run vigil -- apply [vigil.yml] [--dry-run [--exit-code]] [--force] [--prune]
//                                                make the configuration what the file says
//
// VIGIL_URL (or SUPABASE_URL) and VIGIL_SERVICE_ROLE_KEY (or SUPABASE_SERVICE_ROLE_KEY) name the
// project; unset, the local stack of `npm start` (http://127.0.0.1:54321 and its local key).
import { createClient, type SupabaseClient } from '@supabase/supabase-js'
import { basename, isAbsolute, join } from 'node:path'
import { ConfigInvalid, parseConfig } from './config-file.ts'
import { type ConfigState, describePlan, makePlan } from './apply.ts'
import { localKeys } from '../devstack/jwt.ts'
import { LOCAL_JWT_SECRET } from '../devstack/config.ts'

export const COMMANDS = {
  status: 'every service, its status and 24-hour uptime',
  incidents: 'open incidents (--all: the latest 50 of any state)',
  ack: '<incident>: acknowledge an open incident',
  silence: '<service> <duration: 30m, 2h, 1d> [--reason "…"]: hold its alerts for a while',
  heal: '<incident> --dry-run: what Vigil would do for it now, doing nothing',
  analyze: '[service]: the analysis now (Markdown; --json for the structure)',
  apply:
    '[vigil.yml] [--dry-run [--exit-code]] [--force] [--prune]: make the configuration what the file says (--dry-run: show the changes; --exit-code: exit 4 if there are any)',
  help: 'this list',
} as const
type Command = keyof typeof COMMANDS

export class UsageError extends Error {
  override name = 'UsageError'
}

/** Refused for the database's sake (drift, a schema it does not know): exit code 3. */
export class RefusedError extends Error {
  override name = 'RefusedError'
}

/** apply --dry-run --exit-code found changes to make: the plan is printed, and the exit code is 4. */
export class PendingChanges extends Error {
  override name = 'PendingChanges'
  constructor(readonly output: string) {
    super('changes pending')
  }
}

export interface Options {
  json: boolean
  all: boolean
  dryRun: boolean
  force: boolean
  prune: boolean
  exitCode: boolean
  reason?: string
}

export interface Target {
  url: string
  key: string
}

/** The project to talk to, from the environment; the local stack when nothing is set. */
export async function targetFrom(env: (name: string) => string | undefined): Promise<Target> {
  const url = env('VIGIL_URL') ?? env('SUPABASE_URL') ?? 'http://127.0.0.1:54321'
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new UsageError(
      `VIGIL_URL must be the project's URL (https://<ref>.supabase.co), not ${JSON.stringify(url)}`,
    )
  }
  const key = env('VIGIL_SERVICE_ROLE_KEY') ?? env('SUPABASE_SERVICE_ROLE_KEY')
  if (key) return { url: parsed.origin, key }
  if (['127.0.0.1', 'localhost'].includes(parsed.hostname)) {
    return { url: parsed.origin, key: (await localKeys(LOCAL_JWT_SECRET)).service_role }
  }
  throw new UsageError(
    `VIGIL_SERVICE_ROLE_KEY is not set: the CLI needs the project's service-role key for ${parsed.origin}`,
  )
}

/** "30m", "2h", "1d", "90s" as milliseconds; a clear error naming the argument otherwise. */
export function durationMs(text: string): number {
  const m = text.match(/^(\d{1,6})(s|m|h|d)$/)
  const ms = m
    ? Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's']!
    : 0
  if (!m || ms <= 0) {
    throw new UsageError(
      `duration must be a number and a unit (s, m, h, d), like 30m or 2h; not ${
        JSON.stringify(text)
      }`,
    )
  }
  if (ms > 30 * 86_400_000) throw new UsageError('duration must be at most 30 days')
  return ms
}

/** Rows as a table with a header, columns as wide as their widest cell. */
export function table(headers: string[], rows: (string | number | null)[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === null ? '—' : String(c))))
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)))
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n')
}

function client(t: Target): SupabaseClient<any, 'vigil'> {
  return createClient<any, 'vigil'>(t.url, t.key, {
    db: { schema: 'vigil' },
    auth: { persistSession: false, autoRefreshToken: false },
  })
}

function failed(what: string, error: { message?: string } | null): never {
  throw new Error(`could not ${what}: ${error?.message ?? 'no answer'}`)
}

/** Rows asked for a page at a time: the API answers at most max_rows (1,000 on Supabase) a request. */
const PAGE_ROWS = 1000

/**
 * Every row of a read, page after page until one comes back empty (a project's max_rows may be
 * below a page, so a short page does not prove the end). `page` must order the rows stably.
 */
async function allRows<T>(
  what: string,
  page: (
    from: number,
    to: number,
  ) => PromiseLike<{ data: T[] | null; error: { message?: string } | null }>,
): Promise<T[]> {
  const rows: T[] = []
  for (let from = 0;; from += PAGE_ROWS) {
    const { data, error } = await page(from, from + PAGE_ROWS - 1)
    if (error) failed(what, error)
    if (!data?.length) return rows
    rows.push(...data)
    if (data.length < PAGE_ROWS) {
      // Fewer than asked: either the end, or a smaller max_rows; ask on from where it stopped.
      from -= PAGE_ROWS - data.length
    }
  }
}

async function serviceIdOf(db: SupabaseClient<any, 'vigil'>, name: string): Promise<string> {
  const { data, error } = await db.from('services').select('id').eq('name', name).limit(1)
  if (error) failed('read the services', error)
  if (!data?.length) {
    throw new UsageError(`no service is named ${JSON.stringify(name)} (vigil status lists them)`)
  }
  return data[0].id
}

/** One command's output (text or JSON), or a UsageError / Error with what went wrong. */
export async function run(argv: string[], t: Target): Promise<string> {
  const options: Options = {
    json: false,
    all: false,
    dryRun: false,
    force: false,
    prune: false,
    exitCode: false,
  }
  const args: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--json') options.json = true
    else if (a === '--all') options.all = true
    else if (a === '--dry-run') options.dryRun = true
    else if (a === '--force') options.force = true
    else if (a === '--prune') options.prune = true
    else if (a === '--exit-code') options.exitCode = true
    else if (a === '--reason') {
      const reason = argv[++i]
      if (!reason) throw new UsageError('--reason needs a text')
      options.reason = reason
    } else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}`)
    else args.push(a)
  }
  const [command = 'help', ...rest] = args
  if (!(command in COMMANDS)) {
    throw new UsageError(`unknown command ${JSON.stringify(command)}; the commands:\n${help()}`)
  }
  const db = client(t)
  const out = (
    data: unknown,
    text: () => string,
  ) => (options.json ? JSON.stringify(data, null, 2) : text())

  switch (command as Command) {
    case 'help':
      return help()
    case 'status': {
      const [services, uptime] = await Promise.all([
        allRows<
          {
            id: string
            name: string
            kind: string
            environment: string
            status: string
            enabled: boolean
          }
        >(
          'read the services',
          (from, to) =>
            db.from('services').select('id, name, kind, environment, status, enabled').order('name')
              .range(from, to),
        ),
        allRows<{ service_id: string; uptime_24h: number | null }>(
          'read the uptime',
          (from, to) =>
            db.from('service_uptime').select('service_id, uptime_24h').order('service_id').range(
              from,
              to,
            ),
        ),
      ])
      const up = new Map(uptime.map((u) => [u.service_id, u.uptime_24h]))
      const rows = services.map((s) => ({
        name: s.name,
        kind: s.kind,
        environment: s.environment,
        status: s.enabled ? s.status : 'disabled',
        uptime_24h: up.get(s.id) === null || up.get(s.id) === undefined
          ? null
          : Number(up.get(s.id)),
      }))
      return out(rows, () =>
        rows.length
          ? table(
            ['SERVICE', 'KIND', 'ENV', 'STATUS', 'UPTIME 24H'],
            rows.map((
              r,
            ) => [
              r.name,
              r.kind,
              r.environment,
              r.status,
              r.uptime_24h === null ? null : `${r.uptime_24h} %`,
            ]),
          )
          : 'No services yet: insert into vigil.services (README, "Watching services").')
    }
    case 'incidents': {
      let q = db.from('incidents').select(
        'id, service_id, severity, status, title, opened_at, resolved_at, acknowledged_at, escalation_level',
      ).order('opened_at', { ascending: false }).limit(50)
      if (!options.all) q = q.eq('status', 'open')
      const incidents = await q
      if (incidents.error) failed('read the incidents', incidents.error)
      // Only the incidents' own services, however many the project watches.
      const ids = [...new Set((incidents.data ?? []).map((i) => i.service_id).filter(Boolean))]
      const services = ids.length
        ? await db.from('services').select('id, name').in('id', ids)
        : { data: [], error: null }
      if (services.error) failed('read the services', services.error)
      const names = new Map((services.data ?? []).map((s) => [s.id, s.name]))
      const rows = (incidents.data ?? []).map((i) => ({
        ...i,
        service: names.get(i.service_id) ?? null,
      }))
      return out(rows, () =>
        rows.length
          ? table(
            ['ID', 'SEVERITY', 'SERVICE', 'STATUS', 'OPENED', 'ACK', 'TITLE'],
            rows.map((r) => [
              r.id,
              r.severity,
              r.service,
              r.status,
              String(r.opened_at).slice(0, 16).replace('T', ' '),
              r.acknowledged_at ? 'yes' : 'no',
              r.title,
            ]),
          )
          : options.all
          ? 'No incidents.'
          : 'No open incidents.')
    }
    case 'ack': {
      const id = Number(rest[0])
      if (!Number.isSafeInteger(id) || id <= 0) {
        throw new UsageError(
          `ack needs an incident number (vigil incidents lists them), not ${
            JSON.stringify(rest[0] ?? '')
          }`,
        )
      }
      const { data, error } = await db.from('incidents').update({
        acknowledged_at: new Date().toISOString(),
      })
        .eq('id', id).eq('status', 'open').is('acknowledged_at', null).select('id, title')
      if (error) failed('acknowledge it', error)
      if (!data?.length) {
        const { data: found } = await db.from('incidents').select('id, status, acknowledged_at').eq(
          'id',
          id,
        )
        if (!found?.length) throw new UsageError(`there is no incident ${id}`)
        const [f] = found
        throw new UsageError(
          f.status !== 'open'
            ? `incident ${id} is ${f.status}: nothing to acknowledge`
            : `incident ${id} was acknowledged already`,
        )
      }
      return out(data[0], () => `Acknowledged incident ${id}: ${data[0].title}`)
    }
    case 'silence': {
      const [service, duration] = rest
      if (!service || !duration) {
        throw new UsageError('silence needs a service and a duration: vigil silence api 2h')
      }
      const ms = durationMs(duration)
      const serviceId = await serviceIdOf(db, service)
      const endsAt = new Date(Date.now() + ms).toISOString()
      const reason = options.reason ?? 'silenced from the vigil CLI'
      const { data, error } = await db.from('silences').insert({
        service_id: serviceId,
        ends_at: endsAt,
        reason,
      }).select('id, ends_at')
      if (error) failed('silence it', error)
      return out(
        { id: data![0].id, service, ends_at: data![0].ends_at, reason },
        () =>
          `Silenced ${service} until ${
            String(data![0].ends_at).slice(0, 16).replace('T', ' ')
          } UTC (silence ${data![0].id}): ${reason}`,
      )
    }
    case 'heal': {
      const id = Number(rest[0])
      if (!Number.isSafeInteger(id) || id <= 0) {
        throw new UsageError(`heal needs an incident number, not ${JSON.stringify(rest[0] ?? '')}`)
      }
      if (!options.dryRun) {
        throw new UsageError(
          'heal only previews, with --dry-run: Vigil heals an incident by itself when it opens',
        )
      }
      const { status, body } = await callFunction(t, 'auto-heal', {
        incident_id: id,
        preview: true,
      })
      const preview = body as {
        service: string
        incident: { kind: string; status: string; heal_attempts: number }
        problems: { kind: string; reason: string }[]
        steps: { problem: string; strategy: string; mode: string; would: string; why: string }[]
        next: string
        error?: string
      } | null
      if (status === 404 || status === 400) {
        throw new UsageError(preview?.error ?? `auto-heal answered ${status}`)
      }
      if (status !== 200 || !preview) {
        throw new Error(`auto-heal answered ${status}: ${preview?.error ?? 'no body'}`)
      }
      return out(preview, () =>
        [
          `Incident ${id} on ${preview.service} (${preview.incident.kind}, ${preview.incident.status}, ${preview.incident.heal_attempts} heal attempts)`,
          ...preview.problems.map((p) => `Problem: ${p.kind}: ${p.reason}`),
          ...(preview.steps.length
            ? [
              '',
              table(
                ['STRATEGY', 'MODE', 'WOULD', 'WHY'],
                preview.steps.map((s) => [s.strategy, s.mode, s.would, s.why]),
              ),
            ]
            : []),
          '',
          `Next: ${preview.next}`,
          'Nothing was done (--dry-run).',
        ].join('\n'))
    }
    case 'analyze': {
      const { status, body } = await callFunction(t, 'analyze', rest[0] ? { service: rest[0] } : {})
      const answer = body as { markdown?: string; error?: string } | null
      if (status === 404 || status === 400) {
        throw new UsageError(answer?.error ?? `analyze answered ${status}`)
      }
      if (status !== 200 || !answer) {
        throw new Error(`analyze answered ${status}: ${answer?.error ?? 'no body'}`)
      }
      return out(answer, () => answer.markdown ?? JSON.stringify(answer, null, 2))
    }
    case 'apply':
      return await apply(db, rest[0], options)
  }
}

/** The newest of Vigil's migrations this CLI ships: the schema it knows. */
export async function cliSchema(): Promise<string> {
  const dir = new URL('../supabase/migrations/', import.meta.url)
  let newest = ''
  for await (const entry of Deno.readDir(dir)) {
    const version = entry.name.match(/^(\d{14})_vigil_.*\.sql$/)?.[1]
    if (version && version > newest) newest = version
  }
  if (!newest) throw new Error('this CLI ships no migrations (supabase/migrations)')
  return newest
}

async function apply(
  db: SupabaseClient<any, 'vigil'>,
  fileArg: string | undefined,
  options: Options,
): Promise<string> {
  // npm run starts in the package's folder; a relative path means where the person was.
  const base = Deno.env.get('INIT_CWD') ?? Deno.cwd()
  const file = fileArg ?? 'vigil.yml'
  const path = isAbsolute(file) ? file : join(base, file)
  let text: string
  try {
    text = await Deno.readTextFile(path)
  } catch (error) {
    throw new UsageError(
      error instanceof Deno.errors.NotFound
        ? `no ${file} ${
          fileArg ? '' : 'here '
        }to apply (name the file: vigil apply path/to/vigil.yml; examples/vigil.yml is a sample)`
        : `cannot read ${file}: ${(error as Error).message}`,
    )
  }
  let managed
  try {
    managed = parseConfig(text, basename(file)).managed
  } catch (error) {
    if (error instanceof ConfigInvalid) throw new UsageError(error.message)
    throw error
  }
  const known = await cliSchema()
  const { data, error } = await db.rpc('config_state')
  if (error) {
    if (error.code === 'PGRST202' || error.code === '42883') {
      throw new RefusedError(
        `the database has no vigil.config_state(): its Vigil schema is older than config as code (20261203000400); push the migrations first (supabase db push)`,
      )
    }
    failed('read the configuration', error)
  }
  const state = data as ConfigState
  if (state.db_schema && state.db_schema > known) {
    throw new RefusedError(
      `the database's Vigil schema (migration ${state.db_schema}) is newer than this CLI knows (${known}): update the CLI before applying`,
    )
  }
  if (state.db_schema && state.db_schema < known) {
    throw new RefusedError(
      `the database's Vigil schema (migration ${state.db_schema}) is older than this CLI's (${known}): push the migrations first (supabase db push)`,
    )
  }
  const plan = makePlan(managed, state, { prune: options.prune })
  if (plan.problems.length > 0) {
    throw new RefusedError(
      `cannot apply ${file}:\n` +
        plan.problems.map((p) => `  ${p.table} ${p.key}: ${p.message}`).join('\n'),
    )
  }
  const digest = new Uint8Array(
    await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)),
  )
  const sha = [...digest].map((b) => b.toString(16).padStart(2, '0')).join('')
  const conflicts = plan.drift.filter((d) => d.conflict).length
  const report = (applied: number | null) => ({
    file,
    sha256: sha,
    db_schema: state.db_schema,
    dry_run: options.dryRun,
    ops: plan.ops,
    drift: plan.drift,
    released: plan.released,
    unmanaged: plan.unmanaged,
    applied,
  })
  const described = describePlan(plan, state)
  const refusal = `${conflicts} ${
    conflicts === 1 ? 'row' : 'rows'
  } changed in SQL since the previous apply would be overwritten (marked !): put the change in the file to keep it, or apply --force to put the file's values back`
  if (options.dryRun) {
    const text = options.json ? JSON.stringify(report(null), null, 2) : [
      described,
      ...(conflicts ? [`apply would refuse: ${refusal}.`] : []),
      'Nothing was changed (--dry-run).',
    ].join('\n')
    // For CI: 0 when the database holds what the file says, 4 when apply would change it, 3 when
    // apply would refuse (drift the file would overwrite).
    if (options.exitCode && conflicts) {
      throw new RefusedError(`refused: ${refusal}.\n\n${described}`)
    }
    if (options.exitCode && (plan.ops.length > 0 || plan.managedChanged)) {
      throw new PendingChanges(text)
    }
    return text
  }
  if (options.exitCode) throw new UsageError('--exit-code goes with --dry-run')
  if (conflicts && !options.force) throw new RefusedError(`refused: ${refusal}.\n\n${described}`)
  if (plan.ops.length === 0 && !plan.managedChanged) {
    return options.json ? JSON.stringify(report(null), null, 2) : described
  }
  const user = Deno.env.get('USER') ?? Deno.env.get('USERNAME') ?? 'someone'
  const result = await db.rpc('apply_config', {
    plan: {
      cli_schema: known,
      base_apply_id: state.last_apply?.id ?? null,
      applied_by: `${user}@${Deno.hostname()} (vigil CLI)`,
      source: `${basename(file)} sha256:${sha}`,
      forced: options.force && conflicts > 0,
      managed,
      drift: plan.drift,
      ops: plan.ops,
    },
  })
  if (result.error) {
    if (['40001', '55000'].includes(result.error.code ?? '')) {
      throw new RefusedError(result.error.message)
    }
    failed('apply it', result.error)
  }
  const id = (result.data as { id: number }).id
  return options.json
    ? JSON.stringify(report(id), null, 2)
    : `${described}\nApplied: apply ${id} in vigil.config_applies.`
}

/** POST a function of the project with the service-role key: its status and JSON body. */
async function callFunction(t: Target, name: string, body: unknown) {
  const res = await fetch(`${t.url}/functions/v1/${name}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: res.status, body: await res.json().catch(() => null) as unknown }
}

export function help(): string {
  return Object.entries(COMMANDS).map(([c, what]) => `  ${c.padEnd(10)} ${what}`).join('\n') +
    '\n  (--json after any command prints JSON)'
}

if (import.meta.main) {
  try {
    const t = await targetFrom((name) => Deno.env.get(name))
    console.log(await run(Deno.args, t))
  } catch (error) {
    if (error instanceof PendingChanges) {
      console.log(error.output)
      Deno.exit(4)
    }
    console.error(`vigil: ${(error as Error).message}`)
    Deno.exit(error instanceof UsageError ? 2 : error instanceof RefusedError ? 3 : 1)
  }
}
