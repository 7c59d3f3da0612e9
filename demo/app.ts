// The demo app: a small shop API standing in for a product built on Supabase, run as its own OS
// process by demo/supervisor.ts, so a restart really restarts it and a leak is really in its RSS.
//   GET  /health                200 {status, version, db} after `select 1` through its pool; 503 without the DB
//   GET  /api/orders?customer=  a customer's latest orders, read from demo.orders as demo_app
//   GET  /version               {version} and x-demo-version (demo/edge.ts caches it)
//   GET  /metrics               Prometheus text: node_exporter's names for a container of
//                               DEMO_MEMORY_LIMIT_BYTES, from this process's RSS and CPU time
//   POST /_chaos, GET /_chaos   faults (demo/faults.ts), Bearer control token
//   POST /_deploy {version}     the version a deploy put live (demo/vercel.ts, via the supervisor)
// Configured by DEMO_* environment variables (readConfig). Dev tooling only: never deployed.
import { statfsSync } from 'node:fs'
import { cpuUsage } from 'node:process'
import postgres from 'postgres'
import { z } from 'zod'
import { ChaosRequest, type ChaosState, Version } from './faults.ts'
import { bearer, describeIssues, json, readObject, sameToken } from './http.ts'

/** The line the app prints once it listens; the supervisor waits for it. */
export const READY_MARKER = 'DEMO_APP_READY '

const Config = z.object({
  DEMO_APP_PORT: z.coerce.number().int().min(1).max(65535),
  DEMO_APP_HOSTNAME: z.string().default('127.0.0.1'),
  DEMO_DB_URL: z.string().url(),
  DEMO_CONTROL_TOKEN: z.string().min(16),
  DEMO_VERSION: Version,
  DEMO_MEMORY_LIMIT_BYTES: z.coerce.number().int().min(16 * 1024 * 1024).default(256 * 1024 * 1024),
  /** Set by the supervisor: exit when stdin closes, so a supervisor that died leaves no orphan. */
  DEMO_EXIT_WITH_PARENT: z.enum(['0', '1']).default('0'),
})
type Config = z.infer<typeof Config>

const MIB = 1024 * 1024
const LEAK_TICK_MS = 250
const DB_TIMEOUT_MS = 3_000

function readConfig(): Config {
  const parsed = Config.safeParse(Deno.env.toObject())
  if (!parsed.success) {
    console.error(`demo app: bad configuration: ${describeIssues(parsed.error)}`)
    Deno.exit(2)
  }
  return parsed.data
}

interface Faults {
  errors: number
  latencyMs: number
  leakMbPerS: number
  version: string | null
}

const noFaults = (): Faults => ({ errors: 0, latencyMs: 0, leakMbPerS: 0, version: null })

export function startApp(config: Config) {
  const sql = postgres(config.DEMO_DB_URL, {
    // Kept open, as an app's pool is: a health check never pays for a new connection.
    max: 5,
    connect_timeout: DB_TIMEOUT_MS / 1000,
    connection: { application_name: 'vigil-demo-app' },
    onnotice: () => {},
  })
  let deployed = config.DEMO_VERSION
  let faults = noFaults()
  let leaked: Uint8Array[] = []
  let leakedBytes = 0
  let leakTimer: ReturnType<typeof setInterval> | undefined
  const requests = new Map<string, number>()

  const state = (): ChaosState => ({
    errors: faults.errors,
    latency_ms: faults.latencyMs,
    leak_mb_per_s: faults.leakMbPerS,
    version: faults.version,
    deployed_version: deployed,
    leaked_bytes: leakedBytes,
    pid: Deno.pid,
  })

  const leak = () => {
    const bytes = Math.round(faults.leakMbPerS * MIB * LEAK_TICK_MS / 1000)
    // fill() touches every page, so the memory is resident, not just reserved.
    if (bytes > 0) {
      leaked.push(new Uint8Array(bytes).fill(0xa5))
      leakedBytes += bytes
    }
    const rss = Deno.memoryUsage().rss
    if (rss > config.DEMO_MEMORY_LIMIT_BYTES) {
      // What a container's OOM killer does at its memory limit.
      console.error(
        `demo app: out of memory: RSS ${rss} bytes over the ${config.DEMO_MEMORY_LIMIT_BYTES}-byte limit; killed`,
      )
      Deno.exit(137)
    }
  }

  const applyFaults = (change: ChaosRequest) => {
    if (change.clear) {
      faults = noFaults()
      leaked = []
      leakedBytes = 0
    }
    if (change.errors !== undefined) faults.errors = change.errors
    if (change.latency_ms !== undefined) faults.latencyMs = change.latency_ms
    if (change.leak_mb_per_s !== undefined) faults.leakMbPerS = change.leak_mb_per_s
    if (change.version !== undefined) faults.version = change.version
    clearInterval(leakTimer)
    leakTimer = faults.leakMbPerS > 0 ? setInterval(leak, LEAK_TICK_MS) : undefined
  }

  const withTimeout = <T>(promise: Promise<T>, what: string): Promise<T> => {
    let timer: ReturnType<typeof setTimeout> | undefined
    return Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what}: no answer within ${DB_TIMEOUT_MS} ms`)),
          DB_TIMEOUT_MS,
        )
      }),
    ]).finally(() => clearTimeout(timer))
  }

  const served = () => faults.version ?? deployed

  const health = async (): Promise<Response> => {
    try {
      await withTimeout(sql`select 1`, 'the database')
      return json({ status: 'ok', version: served(), db: 'ok' })
    } catch (error) {
      return json(
        { status: 'down', version: served(), db: 'unreachable', error: message(error) },
        503,
      )
    }
  }

  const orders = async (url: URL): Promise<Response> => {
    const raw = url.searchParams.get('customer') ?? ''
    if (!/^[1-9]\d{0,8}$/.test(raw)) {
      return json({ error: 'customer: must be a customer id (a positive whole number)' }, 400)
    }
    const customer = Number(raw)
    try {
      const [who] = await sql`
        select id, name, email from demo.customers where id = ${customer}`
      if (!who) return json({ error: `customer: no customer ${customer}` }, 404)
      // No index on customer_id, on purpose: this scans the table (a slow query to find and fix).
      const rows = await sql`
        select id, amount_cents, status, created_at
          from demo.orders
         where customer_id = ${customer}
         order by created_at desc
         limit 20`
      return json({
        customer: { id: Number(who.id), name: who.name, email: who.email },
        orders: rows.map((r) => ({ ...r, id: Number(r.id) })),
      })
    } catch (error) {
      return json({ error: `the database: ${message(error)}` }, 503)
    }
  }

  const metrics = (): Response => {
    const rss = Deno.memoryUsage().rss
    const cpu = cpuUsage()
    const user = cpu.user / 1e6
    const system = cpu.system / 1e6
    const idle = Math.max(0, performance.now() / 1000 - user - system)
    const limit = config.DEMO_MEMORY_LIMIT_BYTES
    const lines = [
      '# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes (the container limit).',
      '# TYPE node_memory_MemTotal_bytes gauge',
      `node_memory_MemTotal_bytes ${limit}`,
      '# HELP node_memory_MemAvailable_bytes Memory information field MemAvailable_bytes (the limit less the RSS).',
      '# TYPE node_memory_MemAvailable_bytes gauge',
      `node_memory_MemAvailable_bytes ${Math.max(0, limit - rss)}`,
      '# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.',
      '# TYPE node_cpu_seconds_total counter',
      `node_cpu_seconds_total{cpu="0",mode="idle"} ${idle.toFixed(6)}`,
      `node_cpu_seconds_total{cpu="0",mode="system"} ${system.toFixed(6)}`,
      `node_cpu_seconds_total{cpu="0",mode="user"} ${user.toFixed(6)}`,
    ]
    try {
      const fs = statfsSync('/')
      const labels = '{device="rootfs",fstype="rootfs",mountpoint="/"}'
      lines.push(
        '# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.',
        '# TYPE node_filesystem_avail_bytes gauge',
        `node_filesystem_avail_bytes${labels} ${fs.bavail * fs.bsize}`,
        '# HELP node_filesystem_size_bytes Filesystem size in bytes.',
        '# TYPE node_filesystem_size_bytes gauge',
        `node_filesystem_size_bytes${labels} ${fs.blocks * fs.bsize}`,
      )
    } catch { /* no filesystem numbers: the probe says so */ }
    lines.push(
      '# HELP process_resident_memory_bytes Resident memory size in bytes.',
      '# TYPE process_resident_memory_bytes gauge',
      `process_resident_memory_bytes ${rss}`,
      '# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.',
      '# TYPE process_start_time_seconds gauge',
      `process_start_time_seconds ${(performance.timeOrigin / 1000).toFixed(3)}`,
      '# HELP demo_app_leaked_bytes Memory the leak fault holds.',
      '# TYPE demo_app_leaked_bytes gauge',
      `demo_app_leaked_bytes ${leakedBytes}`,
      '# HELP demo_app_info The version the app serves.',
      '# TYPE demo_app_info gauge',
      `demo_app_info{version="${served()}"} 1`,
      '# HELP demo_app_requests_total Requests answered, by route and status code.',
      '# TYPE demo_app_requests_total counter',
      ...[...requests].sort(([a], [b]) => a.localeCompare(b)).map(([key, n]) => {
        const [route, code] = key.split(' ')
        return `demo_app_requests_total{route="${route}",code="${code}"} ${n}`
      }),
    )
    return new Response(lines.join('\n') + '\n', {
      headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' },
    })
  }

  const control = async (request: Request, url: URL): Promise<Response> => {
    if (!sameToken(bearer(request), config.DEMO_CONTROL_TOKEN)) {
      return json({ error: 'authorization: a Bearer control token is required' }, 401, {
        'www-authenticate': 'Bearer realm="vigil-demo"',
      })
    }
    if (url.pathname === '/_chaos' && request.method === 'GET') return json(state())
    if (request.method !== 'POST') return json({ error: 'method: not allowed' }, 405)
    const body = await readObject(request)
    if (!body.ok) return json({ error: body.error }, 400)
    if (url.pathname === '/_deploy') {
      const parsed = z.strictObject({ version: Version }).safeParse(body.value)
      if (!parsed.success) return json({ error: describeIssues(parsed.error) }, 400)
      deployed = parsed.data.version
      return json(state())
    }
    const parsed = ChaosRequest.safeParse(body.value)
    if (!parsed.success) return json({ error: describeIssues(parsed.error) }, 400)
    applyFaults(parsed.data)
    return json(state())
  }

  const route = async (request: Request, url: URL): Promise<Response> => {
    const path = url.pathname
    if (path === '/_chaos' || path === '/_deploy') return await control(request, url)
    if (path === '/metrics' && request.method === 'GET') return metrics()
    const faulty = path === '/health' || path.startsWith('/api/')
    if ((faulty || path === '/version') && faults.latencyMs > 0) {
      await new Promise((r) => setTimeout(r, faults.latencyMs))
    }
    if (faulty && faults.errors > 0 && Math.random() < faults.errors) {
      return json({ error: 'internal server error' }, 500)
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return json({ error: 'method: not allowed' }, 405)
    }
    if (path === '/health') return await health()
    if (path === '/api/orders') return await orders(url)
    if (path === '/version') {
      const version = served()
      return json({ version }, 200, {
        'x-demo-version': version,
        'cache-control': 'public, max-age=31536000',
      })
    }
    if (path === '/') {
      return json({
        app: 'vigil-demo',
        routes: ['/health', '/api/orders?customer=<id>', '/version', '/metrics', '/_chaos'],
      })
    }
    return json({ error: `no route ${path}` }, 404)
  }

  const server = Deno.serve({
    hostname: config.DEMO_APP_HOSTNAME,
    port: config.DEMO_APP_PORT,
    onListen: ({ port }) => console.log(READY_MARKER + JSON.stringify({ port, pid: Deno.pid })),
    onError: (error) => json({ error: `internal error: ${message(error)}` }, 500),
  }, async (request) => {
    const url = new URL(request.url)
    const response = await route(request, url)
    const name = ['/health', '/api/orders', '/version', '/metrics', '/_chaos', '/_deploy'].includes(
        url.pathname,
      )
      ? url.pathname
      : 'other'
    const key = `${name} ${response.status}`
    requests.set(key, (requests.get(key) ?? 0) + 1)
    return response
  })

  return {
    server,
    async stop() {
      clearInterval(leakTimer)
      await server.shutdown()
      await sql.end({ timeout: 1 })
    },
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

if (import.meta.main) {
  const config = readConfig()
  startApp(config)
  if (config.DEMO_EXIT_WITH_PARENT === '1') {
    // The supervisor holds our stdin; when it is gone, so are we.
    ;(async () => {
      for await (const _ of Deno.stdin.readable) { /* nothing is sent */ }
      Deno.exit(0)
    })()
  }
}
