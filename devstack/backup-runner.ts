// The backup runner: a small HTTP service that owns pg_dump and pg_restore, which edge functions
// cannot run (no --allow-run). It takes a dump of one source database with a manifest (every
// table's row count and checksum, read in the dump's own snapshot), verifies dumps (sha256 and
// pg_restore --list), and drills a restore into one scratch database, which it drops and recreates
// each time, comparing every table with the manifest. The databases and the folder are fixed when
// it starts: a request can name neither. Every request carries the bearer token.
//
// `npm start` and `npm test` run one beside the stack. For a real project it runs on its own:
//   VIGIL_BACKUP_RUNNER_SOURCE_URL=postgresql://…  VIGIL_BACKUP_RUNNER_SCRATCH_URL=postgresql://…/vigil_restore_drill \
//   VIGIL_BACKUP_RUNNER_DIR=/var/lib/vigil-backups VIGIL_BACKUP_RUNNER_TOKEN=… deno run -A devstack/backup-runner.ts
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { join } from 'node:path'
import postgres from 'postgres'
import { z } from 'zod'
import { json, readJsonBody } from '../supabase/functions/_shared/http.ts'
import {
  BACKUP_ID,
  type BackupSummary,
  compareTables,
  type DrillAnswer,
  type LeftOut,
  Manifest,
  type TableFacts,
  type Verification,
} from '../supabase/functions/_shared/maintenance/backups.ts'

export const DEFAULT_PG_BIN = '/usr/lib/postgresql/15/bin'
export const DEFAULT_KEEP = 7

/** Extensions a restore into a second database of the same cluster cannot create, and why. */
const KNOWN_LEFT_OUT: Record<string, string> = {
  pg_cron:
    'pg_cron can exist only in the database named by cron.database_name, so a restore into any ' +
    'other database cannot create it; its jobs (cron.job) are in the dump and come back with a ' +
    'restore of the whole cluster or into that database',
}

export interface BackupRunnerOptions {
  /** The database dumped. */
  sourceUrl: string
  /** The database each drill drops, recreates and restores into; never the source. */
  scratchUrl: string
  /** Where the dumps and their manifests are kept. */
  dir: string
  /** The bearer token every request must carry (at least 32 characters). */
  token: string
  /** How many dumps are kept (oldest removed first). */
  keep?: number
  port?: number
  hostname?: string
  pgBin?: string
  /** Extensions left out of a drill's restore (default pg_cron), each said in every result. */
  leaveOut?: string[]
  log?: (line: string) => void
}

export interface BackupRunner {
  url: string
  port: number
  stop(): Promise<void>
}

/** A configuration the runner refuses to start with, every problem named. */
export class RunnerConfigError extends Error {
  override name = 'RunnerConfigError'
}

const RESERVED_DATABASES = ['postgres', 'template0', 'template1']

function databaseOf(url: URL): string {
  return decodeURIComponent(url.pathname.replace(/^\//, '')) || 'postgres'
}

function checkOptions(o: BackupRunnerOptions): void {
  const problems: string[] = []
  const parse = (name: string, raw: string) => {
    if (!URL.canParse(raw) || !/^postgres(ql)?:$/.test(new URL(raw).protocol)) {
      problems.push(`${name} must be a postgresql:// URL`)
      return null
    }
    return new URL(raw)
  }
  const source = parse('the source URL', o.sourceUrl)
  const scratch = parse('the scratch URL', o.scratchUrl)
  if (source && scratch) {
    const db = databaseOf(scratch)
    const sameServer = source.hostname === scratch.hostname &&
      (source.port || '5432') === (scratch.port || '5432')
    if (sameServer && db === databaseOf(source)) {
      problems.push('the scratch database must not be the source database: each drill drops it')
    }
    if (RESERVED_DATABASES.includes(db)) {
      problems.push(`the scratch database must be one of its own, not ${db}: each drill drops it`)
    }
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(db)) {
      problems.push('the scratch database name must be lower-case letters, digits and _')
    }
  }
  if (o.token.length < 32) problems.push('the token must be at least 32 characters')
  if (o.keep !== undefined && (!Number.isInteger(o.keep) || o.keep < 1 || o.keep > 365)) {
    problems.push('keep must be a whole number from 1 to 365')
  }
  if (problems.length) throw new RunnerConfigError(problems.join('; '))
}

/** Fixed output settings: a row's text (and so its checksum) is the same in both databases. */
const SESSION = {
  TimeZone: 'UTC',
  DateStyle: 'ISO, YMD',
  IntervalStyle: 'postgres',
  extra_float_digits: '3',
  bytea_output: 'hex',
  lc_monetary: 'C',
  search_path: '',
  // Never a silently filtered count: a policy that would hide rows is an error instead.
  row_security: 'off',
  application_name: 'vigil-backup-runner',
}

function connect(url: string): postgres.Sql {
  return postgres(url, {
    max: 1,
    onnotice: () => {},
    connect_timeout: 10,
    prepare: false,
    connection: SESSION,
  })
}

/** Everything a message about a database may repeat that must not be shown: URLs and passwords. */
function secretsOf(...urls: string[]): string[] {
  return urls.flatMap((url) => {
    try {
      const { password } = new URL(url)
      return password ? [url, password, decodeURIComponent(password)] : [url]
    } catch {
      return [url]
    }
  })
}

function scrub(text: string, secrets: string[]): string {
  let out = text
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[redacted]')
  return out
}

/** pg_dump's or pg_restore's complaint in one line: its error lines first, at most 1,500 chars. */
function toolMessage(stderr: string, secrets: string[]): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean)
  const errors = lines.filter((l) => /error|fatal|could not|failed/i.test(l))
  const text = (errors.length ? errors : lines).join(' ').replace(/\s+/g, ' ')
  const clean = scrub(text, secrets)
  return clean.length > 1500 ? `${clean.slice(0, 1500)}…` : clean || '(no message)'
}

function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/** Whether `given` is the token, in time that does not depend on where they differ. */
function tokenMatches(given: string, token: string): boolean {
  return timingSafeEqual(sha256(given), sha256(token))
}

async function fileSha256(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256')
  let bytes = 0
  using file = await Deno.open(path, { read: true })
  for await (const chunk of file.readable) {
    hash.update(chunk)
    bytes += chunk.byteLength
  }
  return { sha256: hash.digest('hex'), bytes }
}

/** Filters `pg_restore --list` output: what is left out goes, everything else stays. */
export function useList(list: string, leftOut: LeftOut[]): { keep: string; removed: string[] } {
  const extensions = new Set(leftOut.map((l) => l.extension))
  const schemas = new Set(leftOut.flatMap((l) => l.schemas))
  const objects = new Set(leftOut.flatMap((l) => [...l.tables, ...l.sequences]))
  const removed: string[] = []
  const kept = list.split('\n').filter((line) => {
    // "<id>; <catalog oid> <oid> <DESC WORDS> <schema or -> <name> <owner>"
    const m = /^\d+; \d+ \d+ ([A-Z][A-Z ]*[A-Z]) (\S+) (.*)$/.exec(line)
    if (!m) return true
    const [, desc, namespace, rest] = m
    const name = rest.split(' ')[0]
    const out = (desc === 'EXTENSION' && extensions.has(name)) ||
      (desc === 'COMMENT' && namespace === '-' &&
        [...extensions].some((e) =>
          rest.startsWith(`EXTENSION ${e} `) || rest === `EXTENSION ${e}`
        )) ||
      ((desc === 'ACL' || desc === 'COMMENT') && namespace === '-' &&
        [...schemas].some((s) => rest.startsWith(`SCHEMA ${s} `) || rest === `SCHEMA ${s}`)) ||
      (desc === 'SCHEMA' && schemas.has(name)) ||
      schemas.has(namespace) ||
      ((desc === 'TABLE DATA' || desc === 'SEQUENCE SET') && objects.has(`${namespace}.${name}`))
    if (out) removed.push(line)
    return !out
  })
  return { keep: kept.join('\n'), removed }
}

interface Described {
  database: string
  server_version: string
  tables: TableFacts[]
  large_objects: number
  left_out: LeftOut[]
}

/** Every ordinary table pg_dump writes the rows of: its own, and extensions' configuration tables. */
async function describe(
  sql: postgres.Sql | postgres.TransactionSql,
): Promise<Omit<Described, 'left_out'>> {
  const [{ database, server_version }] = await sql<{ database: string; server_version: string }[]>`
    select current_database() as database, current_setting('server_version') as server_version`
  const list = await sql<{ schema: string; name: string }[]>`
    select n.nspname as schema, c.relname as name
      from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where c.relkind = 'r' and c.relpersistence <> 't'
       and n.nspname <> all (array['pg_catalog', 'information_schema'])
       and n.nspname !~ '^pg_(toast|temp)'
       and (not exists (select from pg_catalog.pg_depend d
                         where d.classid = 'pg_catalog.pg_class'::regclass and d.objid = c.oid
                           and d.deptype = 'e')
            or exists (select from pg_catalog.pg_extension e
                        where c.oid = any (e.extconfig)
                          and coalesce(e.extcondition[array_position(e.extconfig, c.oid)], '') = ''))
     order by 1, 2`
  const tables: TableFacts[] = []
  for (const t of list) {
    const [row] = await sql.unsafe<{ rows: string; checksum: string }[]>(
      `select count(*)::int8::text as rows,
              coalesce(sum(pg_catalog.hashtextextended(vigil_backup_row::text, 0)), 0)::text as checksum
         from only ${ident(t.schema)}.${ident(t.name)} vigil_backup_row`,
    )
    tables.push({ schema: t.schema, name: t.name, rows: Number(row.rows), checksum: row.checksum })
  }
  const [{ n }] = await sql<{ n: string }[]>`
    select count(*)::int8::text as n from pg_catalog.pg_largeobject_metadata`
  return { database, server_version, tables, large_objects: Number(n) }
}

async function leftOutOf(
  sql: postgres.TransactionSql,
  extensions: string[],
): Promise<LeftOut[]> {
  if (extensions.length === 0) return []
  const rows = await sql<
    { extension: string; schemas: string[]; tables: string[]; sequences: string[] }[]
  >`
    select e.extname as extension,
           array(select n.nspname::text from pg_catalog.pg_depend d
                   join pg_catalog.pg_namespace n on n.oid = d.objid
                  where d.classid = 'pg_catalog.pg_namespace'::regclass and d.deptype = 'e'
                    and d.refclassid = 'pg_catalog.pg_extension'::regclass and d.refobjid = e.oid
                  order by 1) as schemas,
           array(select n.nspname || '.' || c.relname from pg_catalog.pg_depend d
                   join pg_catalog.pg_class c on c.oid = d.objid
                   join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                  where d.classid = 'pg_catalog.pg_class'::regclass and d.deptype = 'e'
                    and d.refclassid = 'pg_catalog.pg_extension'::regclass and d.refobjid = e.oid
                    and c.relkind = 'r' order by 1) as tables,
           array(select n.nspname || '.' || c.relname from pg_catalog.pg_depend d
                   join pg_catalog.pg_class c on c.oid = d.objid
                   join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                  where d.classid = 'pg_catalog.pg_class'::regclass and d.deptype = 'e'
                    and d.refclassid = 'pg_catalog.pg_extension'::regclass and d.refobjid = e.oid
                    and c.relkind = 'S' order by 1) as sequences
      from pg_catalog.pg_extension e
     where e.extname = any (${extensions}::text[])
     order by 1`
  return rows.map((r) => ({
    ...r,
    why: KNOWN_LEFT_OUT[r.extension] ??
      `${r.extension} is left out of drills by the runner's configuration (VIGIL_BACKUP_RUNNER_LEAVE_OUT)`,
  }))
}

/** One operation at a time: dumps and drills are heavy, and every drill uses the one scratch database. */
function serial() {
  let tail: Promise<unknown> = Promise.resolve()
  return <T>(work: () => Promise<T>): Promise<T> => {
    const run = tail.then(work, work)
    tail = run.catch(() => {})
    return run
  }
}

/** A failure of the runner or its databases (not a verdict on a backup): answered 503. */
class Unavailable extends Error {}

const TakeBody = z.strictObject({})
const VerifyBody = z.union([
  z.strictObject({ id: z.string().regex(BACKUP_ID, 'must be a backup id from GET /backups') }),
  z.strictObject({ all: z.literal(true) }),
  z.strictObject({}),
])
const DrillBody = z.strictObject({
  backup: z.union([
    z.enum(['latest', 'oldest', 'new']),
    z.string().regex(BACKUP_ID, "must be 'latest', 'oldest', 'new' or a backup id"),
  ]).optional(),
})

export async function startBackupRunner(options: BackupRunnerOptions): Promise<BackupRunner> {
  checkOptions(options)
  const keep = options.keep ?? DEFAULT_KEEP
  const pgBin = options.pgBin ?? DEFAULT_PG_BIN
  const leaveOut = options.leaveOut ?? Object.keys(KNOWN_LEFT_OUT)
  const log = options.log ?? (() => {})
  const secrets = secretsOf(options.sourceUrl, options.scratchUrl)
  const dir = options.dir
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 })
  const exclusive = serial()

  /** A pg tool, its password in the environment rather than on the command line. */
  const tool = async (bin: string, args: string[], url?: string) => {
    const env: Record<string, string> = { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' }
    const argv = [...args]
    if (url) {
      const u = new URL(url)
      if (u.password) env.PGPASSWORD = decodeURIComponent(u.password)
      u.password = ''
      argv.push('--dbname', u.toString())
    }
    const out = await new Deno.Command(join(pgBin, bin), {
      args: argv,
      env,
      clearEnv: true,
      stdin: 'null',
      stdout: 'piped',
      stderr: 'piped',
    }).output()
    const dec = new TextDecoder()
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) }
  }

  const paths = (id: string) => ({
    dump: join(dir, `${id}.dump`),
    manifest: join(dir, `${id}.json`),
  })

  const manifests = async (): Promise<Manifest[]> => {
    const found: Manifest[] = []
    for await (const e of Deno.readDir(dir)) {
      const id = e.name.replace(/\.json$/, '')
      if (!e.isFile || !e.name.endsWith('.json') || !BACKUP_ID.test(id)) continue
      const parsed = Manifest.safeParse(
        JSON.parse(await Deno.readTextFile(join(dir, e.name)).catch(() => 'null')),
      )
      if (parsed.success && parsed.data.id === id) found.push(parsed.data)
    }
    return found.sort((a, b) => a.taken_at.localeCompare(b.taken_at) || a.id.localeCompare(b.id))
  }

  const summary = (m: Manifest): BackupSummary => ({
    id: m.id,
    taken_at: m.taken_at,
    bytes: m.bytes,
    sha256: m.sha256,
    tables: m.tables.length,
    database: m.database,
    server_version: m.server_version,
    dump_seconds: m.dump_seconds,
  })

  const take = async (): Promise<
    { ok: true; manifest: Manifest } | { ok: false; error: string }
  > => {
    const now = new Date()
    const id = `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${
      randomBytes(4).toString('hex')
    }`
    const { dump, manifest: manifestPath } = paths(id)
    const partial = `${dump}.partial`
    const started = performance.now()
    const src = connect(options.sourceUrl)
    try {
      // The rows are counted and hashed in the snapshot pg_dump dumps, exported by this
      // transaction and held open until pg_dump is done: writes meanwhile are in neither.
      const facts = await src.begin('isolation level repeatable read read only', async (tx) => {
        const [{ snapshot }] = await tx<
          { snapshot: string }[]
        >`select pg_export_snapshot() as snapshot`
        const dumping = tool('pg_dump', [
          '--format=custom',
          `--snapshot=${snapshot}`,
          `--file=${partial}`,
        ], options.sourceUrl)
        const [described, dumped] = await Promise.allSettled([
          (async () => ({ ...await describe(tx), left_out: await leftOutOf(tx, leaveOut) }))(),
          dumping,
        ])
        if (dumped.status === 'rejected') throw dumped.reason
        if (dumped.value.code !== 0) {
          return { error: `pg_dump failed: ${toolMessage(dumped.value.stderr, secrets)}` }
        }
        if (described.status === 'rejected') throw described.reason
        return described.value
      })
      if ('error' in facts) return { ok: false, error: facts.error }
      const file = await fileSha256(partial)
      const manifest: Manifest = {
        format: 1,
        id,
        taken_at: now.toISOString(),
        bytes: file.bytes,
        sha256: file.sha256,
        database: facts.database,
        server_version: facts.server_version,
        dump_seconds: Math.round((performance.now() - started) / 10) / 100,
        tables: facts.tables,
        large_objects: facts.large_objects,
        left_out: facts.left_out,
      }
      await Deno.rename(partial, dump)
      await Deno.writeTextFile(`${manifestPath}.partial`, JSON.stringify(manifest, null, 1))
      await Deno.rename(`${manifestPath}.partial`, manifestPath)
      log(`took backup ${id} (${file.bytes} bytes, ${facts.tables.length} tables)`)
      await rotate()
      return { ok: true, manifest }
    } catch (e) {
      const code = (e as { code?: string }).code
      const message = scrub(e instanceof Error ? e.message : String(e), secrets)
      return {
        ok: false,
        error: `the backup could not be taken: ${code ? `${code} ` : ''}${message}`,
      }
    } finally {
      await src.end({ timeout: 5 }).catch(() => {})
      await Deno.remove(partial).catch(() => {})
    }
  }

  const rotate = async () => {
    const all = await manifests()
    for (const old of all.slice(0, Math.max(0, all.length - keep))) {
      const p = paths(old.id)
      await Deno.remove(p.manifest).catch(() => {})
      await Deno.remove(p.dump).catch(() => {})
      log(`removed backup ${old.id} (more than ${keep} kept)`)
    }
  }

  const verify = async (m: Manifest): Promise<Verification> => {
    const { dump } = paths(m.id)
    const problems: string[] = []
    const file = await fileSha256(dump).catch(() => null)
    if (!file) {
      problems.push(`backup ${m.id}: the dump file is missing`)
    } else {
      if (file.bytes !== m.bytes) {
        problems.push(
          `backup ${m.id}: the file has ${file.bytes} bytes, the manifest says ${m.bytes}`,
        )
      }
      if (file.sha256 !== m.sha256) {
        problems.push(
          `backup ${m.id}: sha256 of the file is ${file.sha256.slice(0, 12)}…, the manifest says ${
            m.sha256.slice(0, 12)
          }… (the dump changed after it was taken)`,
        )
      }
      const listed = await tool('pg_restore', ['--list', dump])
      if (listed.code !== 0) {
        problems.push(
          `backup ${m.id}: pg_restore cannot read it: ${toolMessage(listed.stderr, secrets)}`,
        )
      }
    }
    return { id: m.id, taken_at: m.taken_at, ok: problems.length === 0, problems }
  }

  /** Drops and recreates the scratch database through the same server's postgres database. */
  const scratchAdmin = () => {
    const admin = new URL(options.scratchUrl)
    admin.pathname = '/postgres'
    return connect(admin.toString())
  }
  const scratchName = databaseOf(new URL(options.scratchUrl))

  const dropScratch = async (): Promise<string | null> => {
    const admin = scratchAdmin()
    try {
      await admin.unsafe(`drop database if exists ${ident(scratchName)} with (force)`)
      return null
    } catch (e) {
      return scrub(
        `the scratch database ${scratchName} could not be dropped: ${(e as Error).message}`,
        secrets,
      )
    } finally {
      await admin.end({ timeout: 5 }).catch(() => {})
    }
  }

  const drill = async (which: string): Promise<DrillAnswer> => {
    const answer: DrillAnswer = {
      ok: false,
      stage: null,
      error: null,
      backup: null,
      taken_for_drill: false,
      restore_seconds: null,
      compare_seconds: null,
      tables_compared: 0,
      tables_equal: 0,
      differences: [],
      large_objects: null,
      left_out: [],
      cleanup: null,
    }
    const all = await manifests()
    let manifest = which === 'latest'
      ? all.at(-1)
      : which === 'oldest'
      ? all[0]
      : which === 'new'
      ? undefined
      : all.find((m) => m.id === which)
    if (!manifest && which !== 'latest' && which !== 'oldest' && which !== 'new') {
      throw new NotFound(`no backup ${which} is kept (GET /backups lists them)`)
    }
    if (!manifest) {
      const taken = await take()
      if (!taken.ok) return { ...answer, stage: 'dump', error: taken.error }
      manifest = taken.manifest
      answer.taken_for_drill = true
    }
    answer.backup = { id: manifest.id, taken_at: manifest.taken_at, bytes: manifest.bytes }
    answer.left_out = manifest.left_out
    const integrity = await verify(manifest)
    if (!integrity.ok) {
      return { ...answer, stage: 'integrity', error: integrity.problems.join('; ') }
    }

    const { dump } = paths(manifest.id)
    const listed = await tool('pg_restore', ['--list', dump])
    const { keep: kept } = useList(listed.stdout, manifest.left_out)
    const listPath = join(dir, `drill-${manifest.id}.list`)
    await Deno.writeTextFile(listPath, kept)
    // A scratch server that cannot be reached is the runner's problem, not the backup's.
    const admin = scratchAdmin()
    try {
      await admin.unsafe(`drop database if exists ${ident(scratchName)} with (force)`)
      await admin.unsafe(`create database ${ident(scratchName)} template template0`)
    } catch (e) {
      await Deno.remove(listPath).catch(() => {})
      const code = (e as { code?: string }).code
      throw new Unavailable(
        scrub(
          `the scratch database ${scratchName} could not be recreated: ${code ? `${code} ` : ''}${
            (e as Error).message
          }`,
          secrets,
        ),
      )
    } finally {
      await admin.end({ timeout: 5 }).catch(() => {})
    }
    try {
      const started = performance.now()
      const restored = await tool(
        'pg_restore',
        [
          '--exit-on-error',
          '--single-transaction',
          '--no-password',
          `--use-list=${listPath}`,
          dump,
        ],
        options.scratchUrl,
      )
      answer.restore_seconds = Math.round((performance.now() - started) / 10) / 100
      if (restored.code !== 0) {
        return {
          ...answer,
          stage: 'restore',
          error: `pg_restore failed: ${toolMessage(restored.stderr, secrets)}`,
        }
      }
      const comparing = performance.now()
      const scratch = connect(options.scratchUrl)
      let facts: Awaited<ReturnType<typeof describe>>
      try {
        facts = await describe(scratch)
      } finally {
        await scratch.end({ timeout: 5 }).catch(() => {})
      }
      const result = compareTables(manifest.tables, facts.tables, manifest.left_out)
      answer.compare_seconds = Math.round((performance.now() - comparing) / 10) / 100
      answer.tables_compared = result.compared
      answer.tables_equal = result.equal
      answer.differences = result.differences
      answer.large_objects = { expected: manifest.large_objects, restored: facts.large_objects }
      const problems = result.differences.map((d) => `${d.table}: ${d.why}`)
      if (facts.large_objects !== manifest.large_objects) {
        problems.push(
          `${facts.large_objects} large object(s) restored, ${manifest.large_objects} dumped`,
        )
      }
      if (problems.length) {
        return {
          ...answer,
          stage: 'compare',
          error: `backup ${manifest.id}: ${problems.length} difference(s) after the restore: ${
            problems.slice(0, 10).join('; ')
          }${problems.length > 10 ? '; …' : ''}`,
        }
      }
      return { ...answer, ok: true }
    } finally {
      await Deno.remove(listPath).catch(() => {})
      answer.cleanup = await dropScratch()
    }
  }

  const handle = async (req: Request): Promise<Response> => {
    const auth = req.headers.get('authorization') ?? ''
    const given = /^Bearer (.+)$/.exec(auth)?.[1] ?? ''
    if (!tokenMatches(given, options.token)) {
      await req.body?.cancel()
      return json({ error: 'a valid bearer token is required' }, 401)
    }
    const { pathname } = new URL(req.url)
    const route = `${req.method} ${pathname}`
    try {
      switch (route) {
        case 'GET /backups':
          return json({ backups: (await manifests()).reverse().map(summary) })
        case 'POST /backups': {
          const body = await readJsonBody(req, TakeBody)
          if (!body.ok) return body.response
          const taken = await exclusive(take)
          return json(
            taken.ok
              ? { ok: true, backup: summary(taken.manifest) }
              : { ok: false, stage: 'dump', error: taken.error },
          )
        }
        case 'POST /backups/verify': {
          const body = await readJsonBody(req, VerifyBody)
          if (!body.ok) return body.response
          const results = await exclusive(async () => {
            const all = await manifests()
            const chosen = 'all' in body.data
              ? all
              : 'id' in body.data
              ? all.filter((m) => m.id === (body.data as { id: string }).id)
              : all.slice(-1)
            if ('id' in body.data && chosen.length === 0) {
              throw new NotFound(`no backup ${body.data.id} is kept (GET /backups lists them)`)
            }
            const out: Verification[] = []
            for (const m of chosen) out.push(await verify(m))
            return out
          })
          return json({ results })
        }
        case 'POST /drill': {
          const body = await readJsonBody(req, DrillBody)
          if (!body.ok) return body.response
          return json(await exclusive(() => drill(body.data.backup ?? 'latest')))
        }
        default:
          await req.body?.cancel()
          return json({ error: `no such endpoint: ${route}` }, 404)
      }
    } catch (e) {
      if (e instanceof NotFound) return json({ error: e.message }, 404)
      if (e instanceof Unavailable) return json({ error: e.message }, 503)
      const message = scrub(e instanceof Error ? e.message : String(e), secrets)
      log(`${route} failed: ${message}`)
      return json({ error: `the backup runner failed: ${message}` }, 500)
    }
  }

  const listening = Promise.withResolvers<void>()
  const hostname = options.hostname ?? '127.0.0.1'
  const server = Deno.serve({
    port: options.port ?? 0,
    hostname,
    onListen: () => listening.resolve(),
    onError(error) {
      log(`error: ${scrub(error instanceof Error ? error.message : String(error), secrets)}`)
      return json({ error: 'the backup runner failed' }, 500)
    },
  }, handle)
  await listening.promise
  const url = `http://${hostname}:${server.addr.port}`
  log(`listening on ${url}; dumps in ${dir}, ${keep} kept`)
  return { url, port: server.addr.port, stop: () => server.shutdown() }
}

class NotFound extends Error {}

/** A token for a runner started beside a local stack. */
export function newRunnerToken(): string {
  return randomBytes(32).toString('hex')
}

/** The runner's settings from its environment, every problem named at once. */
export function runnerOptionsFromEnv(
  get: (name: string) => string | undefined,
): BackupRunnerOptions {
  const problems: string[] = []
  const need = (name: string) => {
    const value = get(name)?.trim()
    if (!value) problems.push(`${name} is not set`)
    return value ?? ''
  }
  const options: BackupRunnerOptions = {
    sourceUrl: need('VIGIL_BACKUP_RUNNER_SOURCE_URL'),
    scratchUrl: need('VIGIL_BACKUP_RUNNER_SCRATCH_URL'),
    dir: need('VIGIL_BACKUP_RUNNER_DIR'),
    token: need('VIGIL_BACKUP_RUNNER_TOKEN'),
    hostname: get('VIGIL_BACKUP_RUNNER_HOST')?.trim() || '127.0.0.1',
    pgBin: get('VIGIL_BACKUP_RUNNER_PG_BIN')?.trim() || DEFAULT_PG_BIN,
  }
  const number = (name: string, min: number, max: number) => {
    const raw = get(name)?.trim()
    if (!raw) return undefined
    const n = Number(raw)
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max}`)
    }
    return n
  }
  options.port = number('VIGIL_BACKUP_RUNNER_PORT', 1, 65535) ?? 54325
  options.keep = number('VIGIL_BACKUP_RUNNER_KEEP', 1, 365)
  const leaveOut = get('VIGIL_BACKUP_RUNNER_LEAVE_OUT')
  if (leaveOut !== undefined) {
    options.leaveOut = leaveOut.split(',').map((s) => s.trim()).filter(Boolean)
  }
  if (problems.length) throw new RunnerConfigError(problems.join('; '))
  return options
}

if (import.meta.main) {
  try {
    const runner = await startBackupRunner({
      ...runnerOptionsFromEnv((name) => Deno.env.get(name)),
      log: (line) => console.log(`[backup-runner] ${line}`),
    })
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      Deno.addSignalListener(sig, () => runner.stop().then(() => Deno.exit(0)))
    }
  } catch (e) {
    if (!(e instanceof RunnerConfigError)) throw e
    console.error(`backup-runner: ${e.message}`)
    Deno.exit(2)
  }
}
