// The local stack's command line, reached through npm (see devstack/preflight.mjs):
//   npm start       run Postgres, the functions gateway and the invoke relay in the foreground
//   npm run reset   wipe the local database and recreate it from the migrations
//   npm test        every test suite against a private stack on free ports
//   npm run bench   the benchmarks in bench/, results in bench/results and README.md
import { join } from 'node:path'
import {
  DEFAULT_API_PORT,
  DEFAULT_DASHBOARD_PORT,
  DEFAULT_DB_PORT,
  DEFAULT_DEMO_PORTS,
  DEFAULT_PROVIDERS_PORT,
  DEV_OPERATOR,
  STATE_DIR,
} from './config.ts'
import { clusterExists, pidAlive, runningPostmaster, StackError, stopPostmaster } from './db.ts'
import { type Stack, startDatabase, startStack } from './stack.ts'
import { runBenchmarks } from './bench.ts'
import { runTests } from './test.ts'

// Overridable so tests can run the real CLI without touching the stack `npm start` runs.
const stateDir = Deno.env.get('VIGIL_STATE_DIR') ?? STATE_DIR
const dbPort = portFromEnv('VIGIL_DB_PORT', DEFAULT_DB_PORT)
const apiPort = portFromEnv('VIGIL_API_PORT', DEFAULT_API_PORT)
const providersPort = portFromEnv('VIGIL_PROVIDERS_PORT', DEFAULT_PROVIDERS_PORT)
const dashboardPort = portFromEnv('VIGIL_DASHBOARD_PORT', DEFAULT_DASHBOARD_PORT)
const demoPorts = {
  app: portFromEnv('VIGIL_DEMO_APP_PORT', DEFAULT_DEMO_PORTS.app),
  edge: portFromEnv('VIGIL_DEMO_EDGE_PORT', DEFAULT_DEMO_PORTS.edge),
  supervisor: portFromEnv('VIGIL_DEMO_SUPERVISOR_PORT', DEFAULT_DEMO_PORTS.supervisor),
  vercel: portFromEnv('VIGIL_DEMO_VERCEL_PORT', DEFAULT_DEMO_PORTS.vercel),
  tls: portFromEnv('VIGIL_DEMO_TLS_PORT', DEFAULT_DEMO_PORTS.tls),
}

function portFromEnv(name: string, fallback: number): number {
  const raw = Deno.env.get(name)
  if (raw === undefined || raw === '') return fallback
  const port = Number(raw)
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(
      `vigil: ${name} must be a port number from 1 to 65535, got ${JSON.stringify(raw)}`,
    )
    Deno.exit(2)
  }
  return port
}
const LOCK_FILE = join(stateDir, 'stack.json')

interface LockInfo {
  pid: number
  startedAt: string
  apiUrl: string
}

function say(line: string) {
  console.log(`vigil: ${line}`)
}

async function readLock(): Promise<LockInfo | null> {
  try {
    return JSON.parse(await Deno.readTextFile(LOCK_FILE)) as LockInfo
  } catch {
    return null
  }
}

/** The running stack's lock, or null; a lock whose process is gone is stale and removed. */
async function liveLock(): Promise<LockInfo | null> {
  const lock = await readLock()
  if (!lock) return null
  if (Number.isInteger(lock.pid) && lock.pid !== Deno.pid && pidAlive(lock.pid)) {
    const cmdline = await Deno.readTextFile(`/proc/${lock.pid}/cmdline`).catch(() => '')
    if (cmdline.includes('devstack/main.ts')) return lock
  }
  say(`removing the stale lock of a stack that is no longer running (pid ${lock.pid})`)
  await Deno.remove(LOCK_FILE).catch(() => {})
  return null
}

async function acquireLock(apiUrl: string): Promise<void> {
  const running = await liveLock()
  if (running) {
    throw new StackError(
      `Vigil's local stack is already running (pid ${running.pid}, since ${running.startedAt}) at ${running.apiUrl}; ` +
        'use that one, or stop it with Ctrl-C in its terminal first',
    )
  }
  await Deno.mkdir(stateDir, { recursive: true })
  const info: LockInfo = { pid: Deno.pid, startedAt: new Date().toISOString(), apiUrl }
  try {
    await Deno.writeTextFile(LOCK_FILE, JSON.stringify(info), { createNew: true })
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) {
      throw new StackError(
        'another `npm start` or `npm run reset` is starting at this moment; try again',
      )
    }
    throw err
  }
}

async function releaseLock() {
  const lock = await readLock()
  if (lock?.pid === Deno.pid) await Deno.remove(LOCK_FILE).catch(() => {})
}

function shutdownSignal(): Promise<string> {
  return new Promise((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      Deno.addSignalListener(sig, () => resolve(sig))
    }
  })
}

function logLine(source: string, line: string) {
  console.log(`[${source}] ${line}`)
}

/** `npm start -- --no-demo` leaves the demo target out. */
const START_OPTIONS = ['--no-demo']

async function start(args: string[]) {
  const unknown = args.filter((a) => !START_OPTIONS.includes(a))
  if (unknown.length) {
    throw new StackError(
      `unknown option ${unknown.join(', ')} for start; it takes ${START_OPTIONS.join(', ')}`,
    )
  }
  const demo = !args.includes('--no-demo')
  const apiUrl = `http://127.0.0.1:${apiPort}`
  await acquireLock(apiUrl)
  try {
    say('starting the local stack…')
    const stopRequested = shutdownSignal()
    const stack = await startStack({
      stateDir,
      dbPort,
      apiPort,
      providersPort,
      dashboardPort,
      demo,
      demoPorts,
      watch: true,
      log: logLine,
    })
    console.log(
      banner(
        stack.apiUrl,
        stack.dbUrl,
        stack.agentDbUrl,
        stack.keys,
        stack.providers.url,
        stack.dashboard?.url ?? null,
        stack.backupRunner.url,
      ) + demoBanner(stack),
    )
    const reason = await Promise.race([
      stopRequested,
      stack.postgres.exited.then((code) => `postgres exited unexpectedly (code ${code})`),
    ])
    say(`stopping (${reason})…`)
    await stack.stop()
    say('stopped')
    if (!reason.startsWith('SIG')) Deno.exitCode = 1
  } finally {
    await releaseLock()
  }
}

function banner(
  apiUrl: string,
  dbUrl: string,
  agentDbUrl: string,
  keys: { anon: string; service_role: string },
  providersUrl: string,
  dashboardUrl: string | null,
  backupRunnerUrl: string,
): string {
  return [
    '',
    'Vigil local stack is running. Ctrl-C stops it.',
    '',
    dashboardUrl
      ? `       Dashboard: ${dashboardUrl}  (public status page: ${dashboardUrl}/status)`
      : '       Dashboard: not built (npm start builds it; or npm run build --prefix dashboard)',
    `         API URL: ${apiUrl}`,
    `   Functions URL: ${apiUrl}/functions/v1/<name>`,
    `        REST URL: ${apiUrl}/rest/v1  (local PostgREST stand-in)`,
    `        Auth URL: ${apiUrl}/auth/v1  (local GoTrue stand-in)`,
    `          DB URL: ${dbUrl}`,
    `    VIGIL_DB_URL: ${agentDbUrl}  (vigil_agent: what the functions connect as)`,
    `        anon key: ${keys.anon}`,
    `service_role key: ${keys.service_role}`,
    `        Operator: ${DEV_OPERATOR.email} / ${DEV_OPERATOR.password}  (development account, local only)`,
    `   Postgres logs: ${join(stateDir, 'db', 'log')}`,
    `    Alerts inbox: ${providersUrl}/  (stand-ins for Twilio, SendGrid, Slack, Discord, PagerDuty, webhooks)`,
    `   Backup runner: ${backupRunnerUrl}  (pg_dump/pg_restore for backup_check, dr_drill, backup_verification; dumps in ${
      join(stateDir, 'backups')
    })`,
    '',
    `Try: curl -H "Authorization: Bearer ${keys.service_role}" ${apiUrl}/functions/v1/status`,
    `     psql ${dbUrl} -c "select vigil.invoke('status', '{}')"`,
    '',
  ].join('\n')
}

function demoBanner(stack: Stack): string {
  const demo = stack.demo
  if (!demo) return 'Demo target: left out (--no-demo)\n'
  const { urls, credentials: c } = demo
  return [
    'Demo target (demo/; npm start -- --no-demo leaves it out):',
    `        Demo app: ${urls.app}  (/health, /api/orders?customer=1, /version, /metrics; pid ${demo.supervisor.status().pid})`,
    `     Demo faults: curl -H "Authorization: Bearer ${c.controlToken}" -d '{"errors": 0.5}' ${urls.app}/_chaos`,
    `       Demo edge: ${urls.edge}/version  (CDN cache; Cloudflare purge API ${urls.edge}/client/v4/zones/${c.zoneId}/purge_cache)`,
    `      Demo HTTPS: ${urls.https}/version  (the edge over TLS; CA ${demo.caFile}; renewal POST ${urls.edge}/_tls/renew)`,
    `   Demo function: ${stack.apiUrl}/functions/v1/demo-checkout  (POST {"items": [{"sku": "tea", "qty": 2}]}; served from demo/functions/)`,
    ` Demo supervisor: ${urls.supervisor}  (POST {"action": "restart"|"disable", "service": "${demo.supervisor.service}"})`,
    `     Demo Vercel: ${urls.vercel}  (project ${c.projectId}: /v6/deployments, rollback, deploy hook)`,
    `   Demo services: ${demo.services.map((s) => s.name).join(', ')} (in vigil.services)`,
    '',
  ].join('\n')
}

async function reset() {
  await acquireLock('(resetting)')
  try {
    const dataDir = join(stateDir, 'db')
    const orphan = await runningPostmaster(dataDir)
    if (orphan !== null) await stopPostmaster(orphan)
    if (clusterExists(dataDir) || (await Deno.stat(dataDir).catch(() => null))) {
      say(`wiping ${dataDir}`)
      await Deno.remove(dataDir, { recursive: true })
    }
    const { postgres, migrations } = await startDatabase({
      stateDir,
      dbPort,
      apiPort,
      log: () => {},
    })
    console.log(migrations)
    await postgres.stop()
    say('the local database is fresh: bootstrapped and migrated')
  } finally {
    await releaseLock()
  }
}

const commands: Record<string, (args: string[]) => Promise<void>> = {
  start: (args) => start(args),
  reset: () => reset(),
  test: (args) => runTests(args),
  bench: (args) => runBenchmarks(args),
  'chaos-suite': async (args) => {
    const { runChaosSuite } = await import('../demo/chaos/suite.ts')
    await runChaosSuite(args)
  },
}

const [command, ...args] = Deno.args
const run = commands[command ?? '']
if (!run) {
  console.error(`usage: deno run -A devstack/main.ts <${Object.keys(commands).join('|')}>`)
  Deno.exit(2)
}
try {
  await run(args)
} catch (err) {
  if (err instanceof StackError) {
    console.error(`vigil: ${err.message}`)
    Deno.exit(1)
  }
  throw err
}
