// The local stack's private Postgres 15 cluster: create, start, stop, bootstrap, migrate.
// Postgres refuses to run as root, so when we are root every server process runs as the
// `postgres` OS user (setpriv execs, so the child we hold is the postmaster itself).
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import postgres from 'postgres'
import { AGENT_DB_USER, LOCAL_AGENT_PASSWORD, ROOT } from './config.ts'

export const PG_BIN = '/usr/lib/postgresql/15/bin'
const SETPRIV = ['/usr/bin/setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '--']
const isRoot = Deno.uid() === 0

export class StackError extends Error {
  override name = 'StackError'
}

export interface PostgresOptions {
  dataDir: string
  port: number
  /** Durability off: for throwaway test clusters only. */
  ephemeral?: boolean
  log?: (line: string) => void
  /**
   * Whether the postmaster stopping now is a planned outage that someone will end by starting the
   * cluster again (the chaos fault database_down): then the server waits for that postmaster and
   * follows it, instead of counting as exited. Asked each time the postmaster is found gone.
   */
  plannedOutage?: () => Promise<boolean>
}

export interface PostgresServer {
  /** The postmaster now: ours, or the one that started after a planned outage. */
  readonly pid: number
  port: number
  url: string
  stop(): Promise<void>
  /**
   * Resolves with the exit code when the postmaster exits for whatever reason, except in a planned
   * outage (PostgresOptions.plannedOutage), which it outlasts: then when the outage ends without
   * the cluster running again (code -1 when the postmaster was not ours to wait for).
   */
  exited: Promise<number>
}

/** argv run as the postgres OS user when we are root (Postgres refuses to run as root). */
export function asServerUser(argv: string[]): string[] {
  return isRoot ? [...SETPRIV, ...argv] : argv
}

async function output(argv: string[], opts: Deno.CommandOptions = {}) {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: 'piped',
    stderr: 'piped',
    ...opts,
  })
    .output()
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr)
  return { code: out.code, text }
}

async function chownToServerUser(path: string) {
  if (!isRoot) return
  const { code, text } = await output(['chown', '-R', 'postgres:postgres', path])
  if (code !== 0) throw new StackError(`cannot give ${path} to the postgres user: ${text.trim()}`)
}

/** The postgres OS user must be able to reach the data folder through every parent. */
async function assertReachableByServerUser(dir: string) {
  if (!isRoot) return
  const { code } = await output([...SETPRIV, 'test', '-x', dir])
  if (code !== 0) {
    throw new StackError(
      `the postgres OS user cannot reach ${dir}; give its parent folders search permission ` +
        `(chmod o+x on each) or move the checkout out of a private folder such as /root`,
    )
  }
}

export function clusterExists(dataDir: string): boolean {
  return existsSync(join(dataDir, 'PG_VERSION'))
}

/**
 * Creates a cluster with initdb in a scratch folder and renames it into place only when
 * complete, so an interrupted initdb never leaves a half-made data folder behind.
 */
export async function initCluster(dataDir: string, password: string): Promise<void> {
  if (clusterExists(dataDir)) return
  if (existsSync(dataDir)) {
    throw new StackError(
      `${dataDir} exists but is not a Postgres data folder; remove it or run npm run reset`,
    )
  }
  const parent = dirname(dataDir)
  await Deno.mkdir(parent, { recursive: true })
  await assertReachableByServerUser(parent)
  const scratch = `${dataDir}.init-${Deno.pid}`
  await Deno.remove(scratch, { recursive: true }).catch(() => {})
  await Deno.mkdir(scratch, { mode: 0o700 })
  const pwfile = `${scratch}.pw`
  await Deno.writeTextFile(pwfile, password + '\n', { mode: 0o600 })
  await chownToServerUser(scratch)
  await chownToServerUser(pwfile)
  try {
    const { code, text } = await output(asServerUser([
      `${PG_BIN}/initdb`,
      '-D',
      scratch,
      '-U',
      'postgres',
      `--pwfile=${pwfile}`,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C.UTF-8',
    ]))
    if (code !== 0) throw new StackError(`initdb failed:\n${text.trim()}`)
    await Deno.rename(scratch, dataDir)
  } catch (err) {
    await Deno.remove(scratch, { recursive: true }).catch(() => {})
    throw err
  } finally {
    await Deno.remove(pwfile).catch(() => {})
  }
}

function serverSettings(opts: PostgresOptions): Record<string, string> {
  const settings: Record<string, string> = {
    port: String(opts.port),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: opts.dataDir,
    shared_preload_libraries: 'pg_cron,pg_stat_statements',
    'cron.database_name': 'postgres',
    'cron.use_background_workers': 'on',
    max_worker_processes: '20',
    wal_level: 'logical',
    'pg_stat_statements.track': 'all',
    track_io_timing: 'on',
    logging_collector: 'on',
    log_directory: 'log',
    log_filename: 'postgresql-%a.log',
    log_truncate_on_rotation: 'on',
    // The SQLSTATE (%e) and UTC times let the Logs API stand-in (devstack/logs-api.ts) read it.
    log_line_prefix: '%m [%p] %e %q%u@%d ',
    log_timezone: 'UTC',
  }
  if (opts.ephemeral) {
    Object.assign(settings, { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' })
  }
  return settings
}

/**
 * Settings only some minor releases know. Debian's 15.20 added `output_plugin_libraries`, a list
 * of the logical decoding plugins a replication user may load (pgoutput and test_decoding by
 * default): the Realtime stand-in decodes with wal2json, so it is named there. An older server
 * refuses to start with a parameter it does not know, so each is set only when the binary lists it.
 */
async function releaseSettings(): Promise<Record<string, string>> {
  const { code, text } = await output(asServerUser([`${PG_BIN}/postgres`, '--describe-config']))
  if (code !== 0) return {}
  const known = new Set(text.split('\n').map((line) => line.split('\t')[0]))
  return known.has('output_plugin_libraries')
    ? { output_plugin_libraries: 'pgoutput, test_decoding, wal2json' }
    : {}
}

/** Whether a process with this pid exists (signal 0 semantics, via SIGCONT which is harmless). */
export function pidAlive(pid: number): boolean {
  try {
    Deno.kill(pid, 'SIGCONT')
    return true
  } catch {
    return false
  }
}

/** The pid of a postmaster still running on this data folder (left by a stack that died), if any. */
export async function runningPostmaster(dataDir: string): Promise<number | null> {
  const pidFile = join(dataDir, 'postmaster.pid')
  const text = await Deno.readTextFile(pidFile).catch(() => null)
  const pid = text ? Number(text.split('\n')[0]) : NaN
  if (!Number.isInteger(pid) || pid <= 0 || !pidAlive(pid)) return null
  const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => '')
  return cmdline.includes('postgres') ? pid : null
}

async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return true
    await new Promise((r) => setTimeout(r, 100))
  }
  return !pidAlive(pid)
}

/** Fast shutdown (SIGINT) of a postmaster we do not hold a handle for; immediate if it hangs. */
export async function stopPostmaster(pid: number): Promise<void> {
  try {
    Deno.kill(pid, 'SIGINT')
  } catch {
    return
  }
  if (await waitForExit(pid, 30_000)) return
  try {
    Deno.kill(pid, 'SIGQUIT')
  } catch { /* gone */ }
  await waitForExit(pid, 10_000)
}

export async function startPostgres(
  opts: PostgresOptions,
  password: string,
): Promise<PostgresServer> {
  const args = [`${PG_BIN}/postgres`, '-D', opts.dataDir]
  const settings = { ...serverSettings(opts), ...await releaseSettings() }
  for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`)
  // Its own session: a Ctrl-C meant for `npm start` reaches the stack, which stops postgres last.
  const argv = ['/usr/bin/setsid', ...asServerUser(args)]
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: 'null',
    stdout: 'piped',
    stderr: 'piped',
    env: { LANG: 'C.UTF-8', PATH: '/usr/bin:/bin' },
    clearEnv: true,
  }).spawn()
  const early: string[] = []
  const collect = (stream: ReadableStream<Uint8Array>) =>
    stream.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({
        write(chunk) {
          for (const line of chunk.split('\n').filter(Boolean)) {
            if (early.length < 50) early.push(line)
            opts.log?.(line)
          }
        },
      }),
    ).catch(() => {})
  const drained = Promise.all([collect(child.stdout), collect(child.stderr)])
  const exited = child.status.then(async (s) => {
    await drained
    return s.code
  })

  const url = `postgresql://postgres:${
    encodeURIComponent(password)
  }@127.0.0.1:${opts.port}/postgres`
  const ready = await Promise.race([
    waitUntilAccepting(url, 60_000).then(() => true),
    exited.then(() => false),
  ])
  if (!ready) {
    const logTail = await tailServerLog(opts.dataDir)
    throw new StackError(`postgres did not start:\n${[...early, ...logTail].join('\n')}`)
  }

  let stopping: Promise<void> | null = null
  // The postmaster we follow after a planned outage: not our child, stopped by pid.
  let successor: number | null = null
  const gone = exited.then(async (code) => {
    if (stopping || !opts.plannedOutage) return code
    while (!stopping) {
      const pid = await runningPostmaster(opts.dataDir)
      if (pid !== null) {
        if (successor !== pid) opts.log?.(`postgres is running again (pid ${pid}): following it`)
        successor = pid
        await sleep(500)
        continue
      }
      // Checked after the postmaster, so one started (and its outage ended) in between is seen.
      if (!await opts.plannedOutage() && await runningPostmaster(opts.dataDir) === null) {
        return successor === null ? code : -1
      }
      if (successor !== null) opts.log?.('postgres stopped again (a planned outage)')
      successor = null
      await sleep(500)
    }
    return code
  })
  if (opts.plannedOutage) {
    exited.then(() => {
      if (!stopping) opts.log?.('postgres stopped: a planned outage, waiting for it to start again')
    })
  }
  return {
    get pid() {
      return successor ?? child.pid
    },
    port: opts.port,
    url,
    exited: gone,
    stop() {
      stopping ??= (async () => {
        try {
          child.kill('SIGINT')
        } catch { /* already gone */ }
        let timer: ReturnType<typeof setTimeout> | undefined
        const done = await Promise.race([
          exited.then(() => true),
          new Promise<boolean>((r) => timer = setTimeout(() => r(false), 30_000)),
        ])
        clearTimeout(timer)
        if (!done) {
          try {
            child.kill('SIGQUIT')
          } catch { /* gone */ }
          await exited
        }
        // A postmaster started after a planned outage (or one starting now) is ours to stop too.
        const later = await runningPostmaster(opts.dataDir)
        if (later !== null) await stopPostmaster(later)
      })()
      return stopping
    },
  }
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms))
}

async function tailServerLog(dataDir: string): Promise<string[]> {
  const logDir = join(dataDir, 'log')
  const files: string[] = []
  try {
    for await (const e of Deno.readDir(logDir)) if (e.isFile) files.push(join(logDir, e.name))
  } catch {
    return []
  }
  const lines: string[] = []
  for (const f of files) {
    const text = await Deno.readTextFile(f).catch(() => '')
    lines.push(...text.split('\n').filter(Boolean).slice(-15))
  }
  return lines
}

export async function waitUntilAccepting(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} })
    try {
      await sql`select 1`
      return
    } catch (err) {
      last = err
    } finally {
      await sql.end({ timeout: 1 })
    }
    await sleep(150)
  }
  throw new StackError(`postgres did not accept connections within ${timeoutMs} ms: ${last}`)
}

/** What Supabase's image already has (roles, extensions schema, auth helpers, publication). */
export async function bootstrap(url: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  try {
    await sql.unsafe(await Deno.readTextFile(join(ROOT, 'devstack', 'bootstrap.sql')))
  } finally {
    await sql.end()
  }
}

/**
 * Lets vigil_agent (created NOLOGIN by a migration) log in with the local password, as README's
 * "Security model" has a project do with its own; returns the agent's connection string.
 */
export async function enableAgent(url: string): Promise<string> {
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  try {
    await sql.unsafe(
      `alter role ${AGENT_DB_USER} with login password '${LOCAL_AGENT_PASSWORD}'`,
    )
  } finally {
    await sql.end()
  }
  const agent = new URL(url)
  agent.username = AGENT_DB_USER
  agent.password = LOCAL_AGENT_PASSWORD
  return agent.toString()
}

/**
 * Applies supabase/migrations with the Supabase CLI, the same files `supabase db push` ships.
 * The CLI records each applied version in supabase_migrations.schema_migrations.
 */
export async function applyMigrations(url: string, workdir = ROOT): Promise<string> {
  const cli = join(ROOT, 'node_modules', '.bin', 'supabase')
  const { code, text } = await output(
    [
      cli,
      'migration',
      'up',
      `--remote=${url}?sslmode=disable`,
      '--include-all',
      '--workdir',
      workdir,
      '--yes',
    ],
    { cwd: workdir, env: { SUPABASE_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' } },
  )
  const clean = text.replaceAll(url, '<db-url>').trim()
  if (code !== 0) {
    throw new StackError(`a migration failed (nothing after it was applied):\n${clean}`)
  }
  return clean
}
