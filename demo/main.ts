// The demo target `npm start` brings up beside Vigil (issue 12): a small app standing in for a
// product built on Supabase, with what Vigil needs to watch and heal it for real —
//   app         demo/app.ts, its own OS process: /health, /api/orders, /version, /metrics, /_chaos
//   supervisor  demo/supervisor.ts: restarts it on Vigil's request (and after a crash), disables it
//   edge        demo/edge.ts: caches /version in front of it, with Cloudflare's purge API; serves
//               HTTPS too (demo/tls.ts), with a certificate of the demo's own CA (demo/certificates.ts)
//   vercel      demo/vercel.ts: its deployments, rollback and a deploy hook, in Vercel's API shape
// and its edge function demo-checkout (demo/functions/, served by the stack's gateway beside
// Vigil's), its database objects (demo/database.ts) and its rows in vigil.services (demo/seed.ts).
// Dev tooling only: never deployed.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { certificateAuthority } from './certificates.ts'
import { DEFAULT_DATA, type DemoData, demoDbUrl, ensureDemoDatabase } from './database.ts'
import { type Edge, startEdge } from './edge.ts'
import { freePort } from './http.ts'
import { DEMO_SECRET_NAMES, type DemoService, demoServices, seedDemoServices } from './seed.ts'
import { startSupervisor, type Supervisor } from './supervisor.ts'
import { startVercel, type Vercel } from './vercel.ts'

export interface DemoPorts {
  /** 0 or absent: a free port. */
  app?: number
  edge?: number
  supervisor?: number
  vercel?: number
  /** The edge's HTTPS listener. */
  tls?: number
}

/** A free port for every part, chosen now (a stack whose ports must be known before it starts). */
export function freeDemoPorts(): Required<DemoPorts> {
  return {
    app: freePort(),
    edge: freePort(),
    supervisor: freePort(),
    vercel: freePort(),
    tls: freePort(),
  }
}

/** The demo's own edge functions, which the local gateway serves beside supabase/functions/. */
export const DEMO_FUNCTIONS_DIR = fileURLToPath(new URL('./functions', import.meta.url))
/** The edge function the demo's supabase_functions service invokes. */
export const DEMO_FUNCTION = 'demo-checkout'

export interface DemoCredentials {
  /** The fault-control API's Bearer token (app and Vercel stand-in). */
  controlToken: string
  cloudflareToken: string
  zoneId: string
  vercelToken: string
  projectId: string
  projectName: string
  /** The secret part of the deploy hook's URL. */
  hookId: string
  /** The Bearer token of the edge's certificate renewal endpoint (POST /_tls/renew). */
  certificateToken: string
}

/** Fixed local values in the real formats; the demo is a development tool on loopback only. */
export const LOCAL_DEMO_CREDENTIALS: DemoCredentials = {
  controlToken: 'local-demo-control-token-for-development-only',
  cloudflareToken: 'demoLocalCloudflareApiToken0000000000000',
  zoneId: '0de70de70de70de70de70de70de70de7',
  vercelToken: 'demoLocalVercelToken0000',
  projectId: 'prj_vigildemo00000000000000000000',
  projectName: 'vigil-demo',
  hookId: 'demoLocalDeployHook0',
  certificateToken: 'local-demo-certificate-renewal-token',
}

/** The name the supervisor answers to (the seeded restart and disable actions name it). */
export const SUPERVISED_SERVICE = 'demo-app'
export const DEFAULT_VERSION = 'v1'
/** The container limit /metrics reports as node_memory_MemTotal_bytes. */
export const DEFAULT_MEMORY_LIMIT_BYTES = 256 * 1024 * 1024

export interface DemoOptions {
  /** The stack's superuser connection: the demo's database objects are created with it. */
  dbUrl: string
  ports?: DemoPorts
  version?: string
  memoryLimitBytes?: number
  data?: DemoData
  credentials?: DemoCredentials
  /**
   * Where the demo keeps its CA, certificates and feature flags (<stateDir>/demo, this user only);
   * absent: a temporary folder, removed by stop().
   */
  stateDir?: string
  /** Upsert the demo's services into vigil.services (default true). */
  seed?: boolean
  log?: (line: string) => void
}

export interface Demo {
  urls: {
    app: string
    edge: string
    supervisor: string
    vercel: string
    /** The edge over HTTPS (https://127.0.0.1:<port>). */
    https: string
  }
  credentials: DemoCredentials
  /** The demo CA's certificate (PEM file): what a client trusts to reach urls.https. */
  caFile: string
  /** The feature flags demo-checkout reads on every request (JSON; tax_v2 breaks it). */
  flagsFile: string
  /** demo_app's connection string (what the app uses). */
  appDbUrl: string
  data: DemoData
  /** The rows seeded into vigil.services (or that would be). */
  services: DemoService[]
  supervisor: Supervisor
  edge: Edge
  vercel: Vercel
  /**
   * What the edge functions' environment gets: the secrets the seeded rows name (DEMO_SECRET_NAMES)
   * and where demo-checkout reads its flags.
   */
  env(): Record<string, string>
  /** Upserts the services again (idempotent). */
  seed(): Promise<void>
  stop(): Promise<void>
}

export async function startDemo(options: DemoOptions): Promise<Demo> {
  const log = options.log ?? (() => {})
  const credentials = options.credentials ?? LOCAL_DEMO_CREDENTIALS
  const ports = options.ports ?? {}
  const version = options.version ?? DEFAULT_VERSION
  const data = await ensureDemoDatabase(options.dbUrl, options.data ?? DEFAULT_DATA)
  const appDbUrl = demoDbUrl(options.dbUrl)
  const stoppers: (() => Promise<void>)[] = []
  const stopAll = async () => {
    for (const stop of stoppers.reverse()) await stop().catch(() => {})
    stoppers.length = 0
  }
  try {
    const dir = options.stateDir
      ? join(options.stateDir, 'demo')
      : await Deno.makeTempDir({ prefix: 'vigil-demo-' })
    if (!options.stateDir) stoppers.push(() => Deno.remove(dir, { recursive: true }))
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 })
    await Deno.chmod(dir, 0o700)
    const ca = await certificateAuthority(join(dir, 'tls'))
    const flagsFile = join(dir, 'flags.json')
    await Deno.writeTextFile(flagsFile, '{}\n', { mode: 0o600 })
    const supervisor = await startSupervisor({
      port: ports.supervisor ?? 0,
      service: SUPERVISED_SERVICE,
      app: {
        port: ports.app || freePort(),
        dbUrl: appDbUrl,
        controlToken: credentials.controlToken,
        version,
        memoryLimitBytes: options.memoryLimitBytes ?? DEFAULT_MEMORY_LIMIT_BYTES,
      },
      log: (line) => log(`[supervisor] ${line}`),
    })
    stoppers.push(() => supervisor.stop())
    const edge = await startEdge({
      port: ports.edge ?? 0,
      originUrl: supervisor.appUrl,
      zoneId: credentials.zoneId,
      apiToken: credentials.cloudflareToken,
      tls: {
        port: ports.tls ?? 0,
        ca,
        renewToken: credentials.certificateToken,
        controlToken: credentials.controlToken,
      },
      log: (line) => log(`[edge] ${line}`),
    })
    stoppers.push(() => edge.stop())
    const vercel = await startVercel({
      port: ports.vercel ?? 0,
      projectId: credentials.projectId,
      projectName: credentials.projectName,
      token: credentials.vercelToken,
      hookId: credentials.hookId,
      controlToken: credentials.controlToken,
      version,
      // Vercel's own edge serves a new production deployment at once: the demo's CDN drops its copy.
      onProduction: async (v) => {
        await supervisor.deploy(v)
        edge.purgeAll()
      },
      log: (line) => log(`[vercel] ${line}`),
    })
    stoppers.push(() => vercel.stop())
    const services = demoServices({
      appUrl: supervisor.appUrl,
      edgeUrl: edge.url,
      httpsUrl: edge.tls!.url,
      function: DEMO_FUNCTION,
      supervisorUrl: supervisor.url,
      supervisedService: SUPERVISED_SERVICE,
      vercelUrl: vercel.url,
      zoneId: credentials.zoneId,
      projectId: credentials.projectId,
      version,
    })
    const seed = () => seedDemoServices(options.dbUrl, services)
    if (options.seed ?? true) await seed()
    log(
      `demo up: app ${supervisor.appUrl}, edge ${edge.url} and ${
        edge.tls!.url
      }, supervisor ${supervisor.url}, vercel ${vercel.url}`,
    )
    return {
      urls: {
        app: supervisor.appUrl,
        edge: edge.url,
        supervisor: supervisor.url,
        vercel: vercel.url,
        https: edge.tls!.url,
      },
      credentials,
      caFile: ca.caFile,
      flagsFile,
      appDbUrl,
      data,
      services,
      supervisor,
      edge,
      vercel,
      env: () => ({
        [DEMO_SECRET_NAMES.cloudflareToken]: credentials.cloudflareToken,
        [DEMO_SECRET_NAMES.vercelToken]: credentials.vercelToken,
        [DEMO_SECRET_NAMES.deployHookUrl]: vercel.deployHookUrl,
        [DEMO_SECRET_NAMES.certificateToken]: credentials.certificateToken,
        VIGIL_DEMO_FLAGS_FILE: flagsFile,
      }),
      seed,
      stop: stopAll,
    }
  } catch (error) {
    await stopAll()
    throw error
  }
}
