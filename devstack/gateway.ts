// The local API gateway: serves /functions/v1/<name> like Supabase's, checking the JWT where
// config.toml asks for it and proxying to one Deno subprocess per function; and, when configured,
// the PostgREST and GoTrue stand-ins at /rest/v1 and /auth/v1. Dev tooling only: never deployed.
import { join } from 'node:path'
import { parse as parseToml } from 'smol-toml'
import { z } from 'zod'
import { AUTH_PREFIX, type AuthHandler, createAuth } from './auth.ts'
import type { DevUser } from './config.ts'
import {
  functionDirOf,
  FunctionStartError,
  FunctionWorkerPool,
  type WorkerLease,
} from './function-workers.ts'
import { verifyJwt } from './jwt.ts'
import type { Realtime } from './realtime.ts'
import { createRest, REST_PREFIX, type RestHandler } from './rest.ts'

const FUNCTIONS_PREFIX = '/functions/v1'
const REALTIME_PREFIX = '/realtime/v1'
const DropBody = z.object({ refuse_ms: z.number().int().min(0).max(60_000).default(0) })

const under = (pathname: string, prefix: string) =>
  pathname === prefix || pathname.startsWith(`${prefix}/`)

/** Equal keys, compared in time independent of where they differ. */
function sameKey(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given)
  const b = new TextEncoder().encode(expected)
  let diff = a.length ^ b.length
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i]
  return diff === 0
}
const FUNCTION_NAME = /^[A-Za-z0-9_-]+$/
/** Supabase's free-tier wall clock limit per request. */
const DEFAULT_WALL_CLOCK_LIMIT_MS = 150_000
const DEFAULT_START_TIMEOUT_MS = 30_000
const HOP_BY_HOP_HEADERS = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
]

export interface GatewayOptions {
  port: number
  /** Default 127.0.0.1. */
  hostname?: string
  functionsDir: string
  /**
   * Folders of further functions served the same way (the demo's own, demo/functions/); a name in
   * functionsDir wins. config.toml and functionsDir/.env apply to them too.
   */
  extraFunctionsDirs?: readonly string[]
  configToml: string
  jwtSecret: string
  /** Env every function gets: SUPABASE_URL, SUPABASE_DB_URL, keys… */
  env: Record<string, string>
  /** Dotenv file with the functions' own secrets; default <functionsDir>/.env, may be missing. */
  envFile?: string
  /** Restart a function's worker when a file under functionsDir changes. */
  watch?: boolean
  /** Per-request wall clock limit; default 150 s as on Supabase's free tier. */
  wallClockLimitMs?: number
  /** How long a cold start may take before the request fails with 503; default 30 s. */
  startTimeoutMs?: number
  log?: (line: string) => void
  /** Serves /rest/v1 (devstack/rest.ts) on this database URL; it should log in as `authenticator`. */
  dbUrl?: string
  /** Serves /auth/v1 (devstack/auth.ts) for these accounts; needs apiUrl (the tokens' issuer). */
  authUsers?: readonly DevUser[]
  apiUrl?: string
  /** Access-token lifetime in seconds; default config.toml [auth] jwt_expiry, else 3600. */
  jwtExpirySeconds?: number
  /** Serves /realtime/v1 (devstack/realtime.ts); started and stopped by its owner. */
  realtime?: Realtime
  /** Told of every request answered, as Supabase's API gateway logs it (devstack/logs-api.ts). */
  onRequest?: (r: { method: string; path: string; status: number; ms: number }) => void
  /**
   * Workers per function at most (default 1: one process per function, serving every request).
   * More lets concurrent requests each have a process, as Supabase's edge runtime scales out.
   */
  maxWorkers?: number | Record<string, number>
}

export interface Gateway {
  url: string
  port: number
  /** Lets a function run up to `maxWorkers` workers at once (see GatewayOptions.maxWorkers). */
  scale(name: string, maxWorkers: number): void
  /** The process ids of a function's running workers. */
  workerPids(name: string): number[]
  stop(): Promise<void>
}

interface FunctionSettings {
  verifyJwt: boolean
}

const ConfigToml = z.looseObject({
  functions: z.record(z.string(), z.looseObject({ verify_jwt: z.boolean().optional() }))
    .optional(),
  api: z.looseObject({
    schemas: z.array(z.string().min(1)).min(1).optional(),
    extra_search_path: z.array(z.string().min(1)).optional(),
    max_rows: z.number().int().positive().optional(),
  }).optional(),
  auth: z.looseObject({ jwt_expiry: z.number().int().positive().optional() }).optional(),
})
type ConfigToml = z.infer<typeof ConfigToml>

/** The CORS answer Supabase's gateway gives the browser for /rest/v1 and /auth/v1. */
const CORS_HEADERS: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET,POST,PATCH,PUT,DELETE,OPTIONS,HEAD',
  'access-control-allow-headers':
    'authorization, apikey, content-type, x-client-info, accept-profile, content-profile, prefer, range, x-supabase-api-version, x-retry-count',
  'access-control-expose-headers': 'Content-Range, Content-Profile, X-Supabase-Api-Version',
  'access-control-max-age': '3600',
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const log = options.log ?? console.log
  const config = await readConfigToml(options.configToml)
  const settings = functionSettings(config)
  const services = apiServices(options, config, log)
  const workers = new FunctionWorkerPool({
    functionsDir: options.functionsDir,
    extraFunctionsDirs: options.extraFunctionsDirs,
    env: options.env,
    envFile: options.envFile ?? join(options.functionsDir, '.env'),
    watch: options.watch ?? false,
    startTimeoutMs: options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
    log,
    maxWorkers: options.maxWorkers,
  })
  const router = new FunctionRouter(options, settings, workers, services)
  const hostname = options.hostname ?? '127.0.0.1'
  const server = Deno.serve({
    port: options.port,
    hostname,
    onListen() {},
    onError(error) {
      log(`[gateway] ${error instanceof Error ? error.message : error}`)
      return json({ code: 'INTERNAL_ERROR', message: 'gateway error' }, 500)
    },
  }, async (request) => {
    const started = performance.now()
    const response = await router.handle(request)
    options.onRequest?.({
      method: request.method,
      path: new URL(request.url).pathname,
      status: response.status,
      ms: performance.now() - started,
    })
    return response
  })
  const { port } = server.addr
  return {
    url: `http://${hostname}:${port}`,
    port,
    scale: (name, maxWorkers) => workers.scale(name, maxWorkers),
    workerPids: (name) => workers.pids(name),
    async stop() {
      // Workers first: their closing connections end any response still streaming.
      await workers.stopAll()
      await server.shutdown()
      await services.rest?.close()
    },
  }
}

async function readConfigToml(configToml: string): Promise<ConfigToml> {
  const parsed = ConfigToml.safeParse(parseToml(await Deno.readTextFile(configToml)))
  if (!parsed.success) {
    throw new Error(`${configToml}: ${z.prettifyError(parsed.error)}`)
  }
  return parsed.data
}

/** The stand-ins the options ask for; the [api] and [auth] settings come from config.toml. */
interface ApiServices {
  rest?: RestHandler
  auth?: AuthHandler
}

function apiServices(
  options: GatewayOptions,
  config: ConfigToml,
  log: (line: string) => void,
): ApiServices {
  const services: ApiServices = {}
  if (options.dbUrl) {
    services.rest = createRest({
      dbUrl: options.dbUrl,
      jwtSecret: options.jwtSecret,
      // PostgREST's defaults when config.toml has no [api] table.
      schemas: config.api?.schemas ?? ['public'],
      extraSearchPath: config.api?.extra_search_path ?? ['public'],
      maxRows: config.api?.max_rows,
      log,
    })
  }
  if (options.authUsers) {
    if (!options.apiUrl) {
      throw new Error('authUsers needs apiUrl: the access tokens name their issuer')
    }
    services.auth = createAuth({
      apiUrl: options.apiUrl,
      jwtSecret: options.jwtSecret,
      users: options.authUsers,
      jwtExpirySeconds: options.jwtExpirySeconds ?? config.auth?.jwt_expiry ?? 3600,
    })
  }
  return services
}

/** `verify_jwt` per function from `[functions.<name>]`; absent means true, as on Supabase. */
function functionSettings(config: ConfigToml): Map<string, FunctionSettings> {
  const settings = new Map<string, FunctionSettings>()
  for (const [name, table] of Object.entries(config.functions ?? {})) {
    settings.set(name, { verifyJwt: table.verify_jwt ?? true })
  }
  return settings
}

class FunctionRouter {
  readonly #wallClockLimitMs: number

  constructor(
    private readonly options: GatewayOptions,
    private readonly settings: Map<string, FunctionSettings>,
    private readonly workers: FunctionWorkerPool,
    private readonly services: ApiServices,
  ) {
    this.#wallClockLimitMs = options.wallClockLimitMs ?? DEFAULT_WALL_CLOCK_LIMIT_MS
  }

  async handle(request: Request): Promise<Response> {
    const url = new URL(request.url)
    if (url.pathname === '/health' && request.method === 'GET') return json({ status: 'ok' })
    const api = this.#apiService(url.pathname)
    if (api) {
      if (request.method === 'OPTIONS') return withCors(preflight())
      try {
        return withCors(await api(request))
      } catch (error) {
        this.options.log?.(`[gateway] ${error instanceof Error ? error.message : error}`)
        return withCors(json({ code: 'INTERNAL_ERROR', message: 'gateway error' }, 500))
      }
    }
    if (this.options.realtime && under(url.pathname, REALTIME_PREFIX)) {
      return await this.#realtime(this.options.realtime, url, request)
    }
    const route = functionRoute(url.pathname)
    if (!route) return json({ code: 'NOT_FOUND', message: 'no route matched' }, 404)
    if (route.name !== '' && !FUNCTION_NAME.test(route.name)) {
      return json({ code: 'BAD_REQUEST', message: 'invalid function name' }, 400)
    }
    if (!this.#exists(route.name)) {
      return json({ code: 'NOT_FOUND', message: 'Requested function was not found' }, 404)
    }
    const denied = await this.#checkJwt(route.name, request)
    if (denied) return denied
    return this.#forward(route.name, `${route.path}${url.search}`, request)
  }

  /** The stand-in serving this path, if it is configured. */
  #apiService(pathname: string): ((request: Request) => Promise<Response>) | null {
    const { rest, auth } = this.services
    if (rest && under(pathname, REST_PREFIX)) return (request) => rest.handle(request)
    if (auth && under(pathname, AUTH_PREFIX)) return (request) => auth.handle(request)
    return null
  }

  #realtimePausedUntil = 0

  /**
   * The websocket, and a development control: POST …/api/drop (service role key) closes every
   * socket as a server restart would and refuses new ones for `refuse_ms`, so tests and people can
   * watch a client lose its live updates and catch up.
   */
  async #realtime(realtime: Realtime, url: URL, request: Request): Promise<Response> {
    if (url.pathname !== `${REALTIME_PREFIX}/api/drop`) {
      if (Date.now() < this.#realtimePausedUntil) {
        return json({ message: 'Realtime is paused by a development drop; retry shortly' }, 503)
      }
      return realtime.handle(request)
    }
    if (request.method !== 'POST') return json({ message: 'use POST' }, 405)
    const key = request.headers.get('authorization')?.match(/^Bearer\s+(\S+)$/i)?.[1] ?? ''
    const serviceKey = this.options.env.SUPABASE_SERVICE_ROLE_KEY ?? ''
    if (!serviceKey || !sameKey(key, serviceKey)) {
      return json({ message: 'the service role key is required' }, 401)
    }
    const body = DropBody.safeParse(await request.json().catch(() => ({})))
    if (!body.success) return json({ message: `refuse_ms: ${body.error.issues[0].message}` }, 400)
    this.#realtimePausedUntil = Date.now() + body.data.refuse_ms
    return json({ dropped: realtime.dropAll(), refused_ms: body.data.refuse_ms })
  }

  #exists(name: string): boolean {
    if (name === '' || name.startsWith('_') || name.startsWith('.')) return false
    return functionDirOf(this.options, name) !== null
  }

  /** The 401 to send, or null when the request may pass. */
  async #checkJwt(name: string, request: Request): Promise<Response | null> {
    const verify = this.settings.get(name)?.verifyJwt ?? true
    // CORS preflights carry no credentials, so browsers could never call the function.
    if (!verify || request.method === 'OPTIONS') return null
    const authorization = request.headers.get('authorization')
    if (!authorization) return json({ code: 401, message: 'Missing authorization header' }, 401)
    const token = /^Bearer\s+(\S+)$/i.exec(authorization)?.[1]
    try {
      if (!token) throw new Error('not a bearer token')
      await verifyJwt(token, this.options.jwtSecret)
      return null
    } catch {
      return json({ code: 401, message: 'Invalid JWT' }, 401)
    }
  }

  async #forward(name: string, pathAndQuery: string, request: Request): Promise<Response> {
    let lease: WorkerLease
    try {
      lease = await this.workers.lease(name)
    } catch (error) {
      if (!(error instanceof FunctionStartError)) throw error
      return json(
        { code: 'BOOT_ERROR', message: `Function "${name}" failed to start: ${error.message}` },
        503,
        name,
      )
    }
    const wallClock = new WallClock(this.#wallClockLimitMs)
    try {
      const upstream = await fetch(`${lease.url}${pathAndQuery}`, {
        method: request.method,
        headers: upstreamHeaders(request.headers),
        body: request.body,
        redirect: 'manual',
        signal: wallClock.signal,
      })
      return downstreamResponse(name, upstream, () => {
        wallClock.clear()
        lease.release()
      })
    } catch (error) {
      wallClock.clear()
      lease.release()
      if (wallClock.exceeded) {
        const message =
          `Function "${name}" exceeded the wall clock limit of ${this.#wallClockLimitMs} ms`
        return json({ code: 'WALL_CLOCK_LIMIT', message }, 504, name)
      }
      const reason = error instanceof Error ? error.message : String(error)
      return json(
        { code: 'BAD_GATEWAY', message: `Function "${name}" did not answer: ${reason}` },
        502,
        name,
      )
    }
  }
}

/** `/functions/v1/<name>[/rest]` → name and the path the function sees (`/<name>[/rest]`). */
function functionRoute(pathname: string): { name: string; path: string } | null {
  if (!pathname.startsWith(`${FUNCTIONS_PREFIX}/`)) return null
  const path = pathname.slice(FUNCTIONS_PREFIX.length)
  return { name: path.split('/')[1], path }
}

/**
 * Aborts the upstream call at the wall clock limit. A client that leaves early is not watched:
 * in Deno 2.9 reading request.signal warns (it also aborts after every successful response),
 * and the function keeps working after a disconnect on Supabase too.
 */
class WallClock {
  exceeded = false
  readonly #controller = new AbortController()
  readonly #timer: ReturnType<typeof setTimeout>

  constructor(limitMs: number) {
    this.#timer = setTimeout(() => {
      this.exceeded = true
      this.#controller.abort(new DOMException('wall clock limit exceeded', 'TimeoutError'))
    }, limitMs)
  }

  get signal(): AbortSignal {
    return this.#controller.signal
  }

  clear(): void {
    clearTimeout(this.#timer)
  }
}

function upstreamHeaders(incoming: Headers): Headers {
  const headers = withoutHopByHop(incoming)
  headers.delete('host')
  // The gateway's fetch would decompress the body but keep content-encoding: ask for none.
  headers.set('accept-encoding', 'identity')
  return headers
}

function downstreamResponse(name: string, upstream: Response, onEnd: () => void): Response {
  const headers = withoutHopByHop(upstream.headers)
  headers.set('x-vigil-function', name)
  if (!upstream.body) onEnd()
  return new Response(upstream.body && notifyingEnd(upstream.body, onEnd), {
    status: upstream.status,
    statusText: upstream.statusText,
    headers,
  })
}

function withoutHopByHop(source: Headers): Headers {
  const headers = new Headers(source)
  for (const name of HOP_BY_HOP_HEADERS) headers.delete(name)
  return headers
}

/** Passes a body through, calling onEnd once it is finished, failed or cancelled. */
function notifyingEnd(
  body: ReadableStream<Uint8Array>,
  onEnd: () => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader()
  return new ReadableStream({
    async pull(controller) {
      try {
        const { done, value } = await reader.read()
        if (done) {
          onEnd()
          controller.close()
        } else {
          controller.enqueue(value)
        }
      } catch (error) {
        onEnd()
        controller.error(error)
      }
    },
    cancel(reason) {
      onEnd()
      return reader.cancel(reason)
    },
  })
}

function preflight(): Response {
  return new Response(null, { status: 204 })
}

function withCors(response: Response): Response {
  for (const [name, value] of Object.entries(CORS_HEADERS)) response.headers.set(name, value)
  return response
}

function json(body: unknown, status = 200, functionName?: string): Response {
  const headers = new Headers({ 'content-type': 'application/json' })
  if (functionName) headers.set('x-vigil-function', functionName)
  return new Response(JSON.stringify(body), { status, headers })
}
