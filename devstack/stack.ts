// Composes the local stack: Postgres (bootstrapped and migrated), the functions gateway and the
// invoke relay. `npm start` runs one on the default ports; `npm test` runs its own on free ports.
import { join } from 'node:path'
import {
  AUTHENTICATOR_USER,
  CONFIG_TOML,
  DASHBOARD_DIST,
  DEV_OPERATOR,
  DEV_USERS,
  FUNCTIONS_DIR,
  LOCAL_APPROVAL_SECRET,
  LOCAL_AUDIT_SECRET,
  LOCAL_AUTHENTICATOR_PASSWORD,
  LOCAL_JWT_SECRET,
  LOCAL_METRICS_TOKEN,
  urlAs,
} from './config.ts'
import {
  applyMigrations,
  bootstrap,
  enableAgent,
  initCluster,
  type PostgresServer,
  runningPostmaster,
  StackError,
  startPostgres,
  stopPostmaster,
} from './db.ts'
import { type DashboardServer, hasBuild, startDashboardServer } from './dashboard-server.ts'
import { type Gateway, startGateway } from './gateway.ts'
import { type Providers, startProviders } from './providers.ts'
import { createLogsApi, LOCAL_ACCESS_TOKEN, LOCAL_PROJECT_REF, type LogsApi } from './logs-api.ts'
import { type BackupRunner, newRunnerToken, startBackupRunner } from './backup-runner.ts'
import { type Demo, DEMO_FUNCTIONS_DIR, type DemoPorts, startDemo } from '../demo/main.ts'
import { DEMO_SECRET_NAMES } from '../demo/seed.ts'
import { recordPath } from '../demo/chaos/procs.ts'
import { localKeys } from './jwt.ts'
import { type Realtime, startRealtime } from './realtime.ts'
import { type InvokeRelay, startInvokeRelay } from './relay.ts'

export interface StackOptions {
  /** Folder holding the cluster (db/) and anything else the stack keeps. */
  stateDir: string
  dbPort: number
  apiPort: number
  /** Where the stand-ins for Twilio, SendGrid, Slack, Discord, PagerDuty and webhooks listen (0 or absent: a free port). */
  providersPort?: number
  /** Where the built dashboard is served (0 or absent: a free port); not served when it is not built. */
  dashboardPort?: number
  ephemeral?: boolean
  watch?: boolean
  /**
   * Also run the demo target (demo/): an app with its database objects, CDN edge, supervisor and
   * Vercel stand-in, registered in vigil.services. `npm start` runs it; test stacks do not.
   */
  demo?: boolean
  /** Where the demo's parts listen (0 or absent: free ports). */
  demoPorts?: DemoPorts
  /** Silence after which the dead man's switch stand-in turns down (tests use less). */
  deadmanAllowanceS?: number
  log?: (source: string, line: string) => void
}

export interface Stack {
  /** postgres: the owner's connection, for set-up and tests. */
  dbUrl: string
  /** vigil_agent: what the functions connect with (their VIGIL_DB_URL). */
  agentDbUrl: string
  apiUrl: string
  keys: { anon: string; service_role: string }
  postgres: PostgresServer
  gateway: Gateway
  relay: InvokeRelay
  /** The Realtime stand-in behind the gateway's /realtime/v1. */
  realtime: Realtime
  /** Local stand-ins for the alert providers; the functions' VIGIL_*_API_URL secrets point here. */
  providers: Providers
  /** The Logs API's stand-in, served on the providers' port (/v1/projects/…/analytics/…). */
  logsApi: LogsApi
  /** The dashboard (dashboard/dist) and its /status page; null when it has not been built. */
  dashboard: DashboardServer | null
  /** pg_dump/pg_restore for the backup tasks; the functions' VIGIL_BACKUP_RUNNER_URL points here. */
  backupRunner: BackupRunner
  /** The demo target when asked for (StackOptions.demo); its secrets are in the functions' env. */
  demo: Demo | null
  migrations: string
  stop(): Promise<void>
}

/** What the chaos tools read to find the running demo (<stateDir>/demo.json, this user only). */
export const DEMO_FILE = 'demo.json'

export function assertPortFree(port: number, what: string): void {
  try {
    const listener = Deno.listen({ hostname: '127.0.0.1', port })
    listener.close()
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) {
      throw new StackError(
        `port ${port} (${what}) is already in use by another program; stop that program or free the port, then try again`,
      )
    }
    throw err
  }
}

/** A throwaway state folder the postgres OS user can reach (mkdtemp makes it 0700). */
export async function privateStateDir(prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix })
  await Deno.chmod(dir, 0o755)
  return dir
}

/** A port the OS says is free now (for test stacks that must not collide with `npm start`). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const { port } = listener.addr as Deno.NetAddr
  listener.close()
  return port
}

/** Stops a postmaster a crashed stack left running on this data folder, so ours can start. */
async function reclaimDataDir(dataDir: string, log: (line: string) => void) {
  const orphan = await runningPostmaster(dataDir)
  if (orphan === null) return
  log(`stopping postgres (pid ${orphan}) left running by a stack that did not shut down`)
  await stopPostmaster(orphan)
}

export async function startDatabase(
  opts: StackOptions,
): Promise<{ postgres: PostgresServer; migrations: string; agentUrl: string }> {
  const log = (line: string) => opts.log?.('db', line)
  const dataDir = join(opts.stateDir, 'db')
  await reclaimDataDir(dataDir, log)
  assertPortFree(opts.dbPort, 'Postgres')
  await initCluster(dataDir, 'postgres')
  const postgres = await startPostgres({
    dataDir,
    port: opts.dbPort,
    ephemeral: opts.ephemeral,
    log,
    // The chaos fault database_down stops the cluster and starts it again: the stack waits it out
    // (its record says so) instead of stopping with it.
    plannedOutage: () =>
      Deno.stat(recordPath(opts.stateDir, 'database_down')).then(() => true, () => false),
  }, 'postgres')
  try {
    await bootstrap(postgres.url)
    const migrations = await applyMigrations(postgres.url)
    const agentUrl = await enableAgent(postgres.url)
    return { postgres, migrations, agentUrl }
  } catch (err) {
    await postgres.stop()
    throw err
  }
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  assertPortFree(opts.apiPort, 'functions gateway')
  if (opts.demo) {
    for (const [part, port] of Object.entries(opts.demoPorts ?? {})) {
      if (port) assertPortFree(port, `demo ${part}`)
    }
  }
  const { postgres, migrations, agentUrl } = await startDatabase(opts)
  const stoppers: (() => Promise<void>)[] = [() => postgres.stop()]
  const stopAll = async () => {
    for (const stop of stoppers.reverse()) await stop().catch(() => {})
    stoppers.length = 0
  }
  try {
    const keys = await localKeys(LOCAL_JWT_SECRET)
    const apiUrl = `http://127.0.0.1:${opts.apiPort}`
    if (opts.providersPort) assertPortFree(opts.providersPort, 'provider stand-ins')
    // The Logs API's stand-in: what the gateway answers and what the cluster logs, on the
    // providers' port, for the traffic and logs kinds' logs_api source.
    const logsApi = createLogsApi({
      token: LOCAL_ACCESS_TOKEN,
      projectRef: LOCAL_PROJECT_REF,
      postgresLogDir: join(opts.stateDir, 'db', 'log'),
    })
    const providers = await startProviders({
      port: opts.providersPort ?? 0,
      log: (line) => opts.log?.('providers', line),
      deadmanAllowanceS: opts.deadmanAllowanceS,
      extra: logsApi.handle,
    })
    stoppers.push(() => providers.stop())
    // Logical decoding needs the owner's rights; RLS is applied per subscriber as Supabase does.
    const realtime = await startRealtime({
      dbUrl: postgres.url,
      jwtSecret: LOCAL_JWT_SECRET,
      log: (line) => opts.log?.('realtime', line),
    })
    stoppers.push(() => realtime.stop())
    // Dumps this database; each drill restores into vigil_restore_drill on the same cluster.
    const backupToken = newRunnerToken()
    const scratch = new URL(postgres.url)
    scratch.pathname = '/vigil_restore_drill'
    const backupRunner = await startBackupRunner({
      sourceUrl: postgres.url,
      scratchUrl: scratch.toString(),
      dir: join(opts.stateDir, 'backups'),
      token: backupToken,
      log: (line) => opts.log?.('backup-runner', line),
    })
    stoppers.push(() => backupRunner.stop())
    let demo: Demo | null = null
    if (opts.demo) {
      demo = await startDemo({
        dbUrl: postgres.url,
        stateDir: opts.stateDir,
        ports: opts.demoPorts,
        log: (line) => opts.log?.('demo', line),
      }).catch((err) => {
        throw new StackError(
          `the demo target did not start: ${err instanceof Error ? err.message : err} ` +
            '(npm start -- --no-demo leaves it out)',
        )
      })
      stoppers.push(() => demo!.stop())
      const file = join(opts.stateDir, DEMO_FILE)
      await writeDemoFile(file, postgres.url, demo)
      stoppers.push(() => Deno.remove(file).catch(() => {}))
    }
    const gateway = await startGateway({
      port: opts.apiPort,
      functionsDir: FUNCTIONS_DIR,
      // The demo's own function (demo-checkout) is served as a project's would be, never deployed.
      extraFunctionsDirs: demo ? [DEMO_FUNCTIONS_DIR] : [],
      configToml: CONFIG_TOML,
      jwtSecret: LOCAL_JWT_SECRET,
      watch: opts.watch,
      env: {
        SUPABASE_URL: apiUrl,
        SUPABASE_DB_URL: postgres.url,
        // The functions connect as vigil_agent, never as postgres.
        VIGIL_DB_URL: agentUrl,
        SUPABASE_ANON_KEY: keys.anon,
        SUPABASE_SERVICE_ROLE_KEY: keys.service_role,
        VIGIL_APPROVAL_SECRET: LOCAL_APPROVAL_SECRET,
        VIGIL_AUDIT_SECRET: LOCAL_AUDIT_SECRET,
        VIGIL_METRICS_TOKEN: LOCAL_METRICS_TOKEN,
        // Every target and stand-in of the local stack listens on loopback.
        VIGIL_ALLOW_PRIVATE_TARGETS: 'true',
        // Alerts go to the local stand-ins unless supabase/functions/.env names real providers.
        ...providers.env(),
        VIGIL_BACKUP_RUNNER_URL: backupRunner.url,
        // The Logs API stand-in's token (a traffic service's api_url is the providers' URL).
        VIGIL_SUPABASE_ACCESS_TOKEN: LOCAL_ACCESS_TOKEN,
        VIGIL_BACKUP_RUNNER_TOKEN: backupToken,
        // The tokens and deploy hook the demo's seeded services name.
        ...(demo ? demo.env() : {}),
        // The probes reach the demo's HTTPS edge as any client would: trusting its CA, added to
        // (never instead of) the roots they already trust.
        ...(demo ? { DENO_CERT: await trustBundle(opts.stateDir, demo.caFile) } : {}),
      },
      log: (line) => opts.log?.('gateway', line),
      // /rest/v1 and /auth/v1: PostgREST's login role, and the development accounts.
      dbUrl: urlAs(postgres.url, AUTHENTICATOR_USER, LOCAL_AUTHENTICATOR_PASSWORD),
      apiUrl,
      authUsers: DEV_USERS,
      realtime,
      onRequest: logsApi.gatewayRequest,
    })
    stoppers.push(() => gateway.stop())
    const relay = await startInvokeRelay({
      dbUrl: postgres.url,
      gatewayUrl: apiUrl,
      serviceRoleKey: keys.service_role,
      log: (line) => opts.log?.('relay', line),
    })
    stoppers.push(() => relay.stop())
    let dashboard: DashboardServer | null = null
    if (await hasBuild(DASHBOARD_DIST)) {
      if (opts.dashboardPort) assertPortFree(opts.dashboardPort, 'dashboard')
      dashboard = startDashboardServer({
        port: opts.dashboardPort ?? 0,
        distDir: DASHBOARD_DIST,
        config: {
          supabaseUrl: apiUrl,
          anonKey: keys.anon,
          devOperator: { email: DEV_OPERATOR.email, password: DEV_OPERATOR.password },
        },
        log: (line) => opts.log?.('dashboard', line),
      })
      stoppers.push(() => dashboard!.stop())
    } else {
      opts.log?.('dashboard', `not served: ${DASHBOARD_DIST} has no build`)
    }
    return {
      dbUrl: postgres.url,
      agentDbUrl: agentUrl,
      apiUrl,
      keys,
      postgres,
      gateway,
      relay,
      realtime,
      providers,
      logsApi,
      dashboard,
      backupRunner,
      demo,
      migrations,
      stop: stopAll,
    }
  } catch (err) {
    await stopAll()
    throw err
  }
}

/**
 * A PEM file of the demo's CA and whatever DENO_CERT named already (DENO_CERT takes one file), in
 * the demo's folder.
 */
async function trustBundle(stateDir: string, caFile: string): Promise<string> {
  const own = Deno.env.get('DENO_CERT')
  const parts = [
    own ? await Deno.readTextFile(own).catch(() => '') : '',
    await Deno.readTextFile(caFile),
  ]
  const file = join(stateDir, 'demo', 'trust.pem')
  await Deno.writeTextFile(file, parts.filter(Boolean).map((p) => p.trim() + '\n').join(''), {
    mode: 0o600,
  })
  return file
}

async function writeDemoFile(file: string, dbUrl: string, demo: Demo): Promise<void> {
  const doc = {
    db_url: dbUrl,
    app_db_url: demo.appDbUrl,
    app: { url: demo.urls.app, token: demo.credentials.controlToken },
    supervisor: { url: demo.urls.supervisor, service: demo.supervisor.service },
    edge: {
      url: demo.urls.edge,
      zone_id: demo.credentials.zoneId,
      token: demo.credentials.cloudflareToken,
    },
    vercel: {
      url: demo.urls.vercel,
      project_id: demo.credentials.projectId,
      control_token: demo.credentials.controlToken,
      deploy_hook_url: demo.env()[DEMO_SECRET_NAMES.deployHookUrl],
    },
    tls: { url: demo.urls.https, ca_file: demo.caFile },
    functions: { flags_file: demo.flagsFile },
    services: demo.services.map((s) => s.name),
  }
  await Deno.writeTextFile(file, JSON.stringify(doc, null, 2) + '\n', { mode: 0o600 })
  await Deno.chmod(file, 0o600)
}
