// The demo app's process supervisor: spawns demo/app.ts as its own OS process, restarts it when it
// crashes (with backoff), and takes Vigil's supervisor action (shared/service-actions.ts), exactly
// as heal/external.ts sends it:
//   POST / {"action": "restart" | "disable", "service": "<name>"}
// restart kills the process and starts a new one (faults and leaked memory gone, the deployed
// version kept); disable stops it until the next restart. GET / answers the state.
// Dev tooling only: never deployed.
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import { READY_MARKER } from './app.ts'
import { describeIssues, json, readObject } from './http.ts'

const APP_SCRIPT = fileURLToPath(new URL('./app.ts', import.meta.url))
const DENO_CONFIG = fileURLToPath(new URL('../deno.json', import.meta.url))
/** What Deno needs from the parent to find its cache and npm packages; nothing else is inherited. */
const RUNTIME_ENV_KEYS = ['PATH', 'HOME', 'DENO_DIR', 'XDG_CACHE_HOME', 'NPM_CONFIG_REGISTRY']
const READY_TIMEOUT_MS = 30_000
const STOP_GRACE_MS = 2_000
/** Waits before respawning a crashed app: doubling from the first, capped at the last. */
const BACKOFF_MS = [500, 30_000] as const
/** A process that ran this long before crashing starts the backoff again from the first wait. */
const STABLE_MS = 30_000

export type SupervisedState = 'starting' | 'running' | 'crashed' | 'disabled' | 'stopped'

export interface AppSettings {
  port: number
  hostname?: string
  /** demo_app's connection string. */
  dbUrl: string
  controlToken: string
  /** The version it starts with; deploy() changes it. */
  version: string
  memoryLimitBytes: number
}

export interface SupervisorOptions {
  /** 0: a free port. */
  port: number
  hostname?: string
  /** The name Vigil's action names (`service`). */
  service: string
  app: AppSettings
  log?: (line: string) => void
}

export interface SupervisorStatus {
  service: string
  state: SupervisedState
  pid: number | null
  version: string
  restarts: number
  crashes: number
  started_at: string | null
  last_exit: string | null
}

export interface Supervisor {
  url: string
  port: number
  service: string
  appUrl: string
  status(): SupervisorStatus
  restart(): Promise<SupervisorStatus>
  disable(): Promise<SupervisorStatus>
  /** Puts `version` live: told to the running app, and used by every later start. */
  deploy(version: string): Promise<void>
  stop(): Promise<void>
}

const ActionRequest = z.strictObject({
  action: z.enum(['restart', 'disable'], { error: 'must be "restart" or "disable"' }),
  service: z.string({ error: 'must name the supervised service' }).min(1, 'must not be empty'),
})

interface Running {
  child: Deno.ChildProcess
  /** Set when we stop it, so its exit is not taken for a crash. */
  expected: boolean
  startedAt: number
  exited: Promise<Deno.CommandStatus>
}

export async function startSupervisor(options: SupervisorOptions): Promise<Supervisor> {
  const log = options.log ?? (() => {})
  const app = { ...options.app }
  const hostname = app.hostname ?? '127.0.0.1'
  const appUrl = `http://${hostname}:${app.port}`
  let current: Running | null = null
  let state: SupervisedState = 'starting'
  let restarts = 0
  let crashes = 0
  let crashStreak = 0
  let lastExit: string | null = null
  let respawnTimer: ReturnType<typeof setTimeout> | undefined
  let stopping = false
  // One action at a time: a restart never races a crash respawn or a disable.
  let queue: Promise<unknown> = Promise.resolve()
  const serial = <T>(job: () => Promise<T>): Promise<T> => {
    const next = queue.then(job, job)
    queue = next.catch(() => {})
    return next
  }

  const status = (): SupervisorStatus => ({
    service: options.service,
    state,
    pid: current?.child.pid ?? null,
    version: app.version,
    restarts,
    crashes,
    started_at: current ? new Date(current.startedAt).toISOString() : null,
    last_exit: lastExit,
  })

  const spawn = async (): Promise<void> => {
    const env: Record<string, string> = {}
    for (const key of RUNTIME_ENV_KEYS) {
      const value = Deno.env.get(key)
      if (value !== undefined) env[key] = value
    }
    Object.assign(env, {
      NO_COLOR: '1',
      DEMO_APP_PORT: String(app.port),
      DEMO_APP_HOSTNAME: hostname,
      DEMO_DB_URL: app.dbUrl,
      DEMO_CONTROL_TOKEN: app.controlToken,
      DEMO_VERSION: app.version,
      DEMO_MEMORY_LIMIT_BYTES: String(app.memoryLimitBytes),
      DEMO_EXIT_WITH_PARENT: '1',
    })
    state = 'starting'
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        'run',
        '--no-prompt',
        '--allow-net',
        '--allow-env',
        '--allow-read',
        '--allow-sys',
        '--config',
        DENO_CONFIG,
        APP_SCRIPT,
      ],
      env,
      clearEnv: true,
      stdin: 'piped',
      stdout: 'piped',
      stderr: 'piped',
      // Its own process group: a Ctrl-C in the terminal reaches the stack, which stops it in order.
      detached: true,
    }).spawn()
    const running: Running = {
      child,
      expected: false,
      startedAt: Date.now(),
      exited: child.status,
    }
    current = running
    const ready = Promise.withResolvers<void>()
    pump(child.stdout, (line) => {
      if (line.startsWith(READY_MARKER)) ready.resolve()
      else log(`[app ${child.pid}] ${line}`)
    })
    pump(child.stderr, (line) => log(`[app ${child.pid}] ${line}`))
    running.exited.then((st) => {
      const how = st.signal ? `signal ${st.signal}` : `code ${st.code}`
      lastExit = `${new Date().toISOString()} pid ${child.pid} exited with ${how}`
      ready.reject(new Error(`the app exited with ${how} before it listened`))
      if (running.expected || stopping || current !== running) return
      crashes++
      state = 'crashed'
      crashStreak = Date.now() - running.startedAt >= STABLE_MS ? 1 : crashStreak + 1
      const wait = Math.min(BACKOFF_MS[0] * 2 ** (crashStreak - 1), BACKOFF_MS[1])
      log(`the app (pid ${child.pid}) exited with ${how}; starting it again in ${wait} ms`)
      respawnTimer = setTimeout(() => {
        respawnTimer = undefined
        serial(async () => {
          if (stopping || state !== 'crashed') return
          await spawn().catch((error) => {
            log(`the app did not start again: ${error.message}`)
          })
        })
      }, wait)
    })
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      await Promise.race([
        ready.promise,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`the app did not listen within ${READY_TIMEOUT_MS} ms`)),
            READY_TIMEOUT_MS,
          )
        }),
      ])
    } catch (error) {
      await kill(running)
      state = 'crashed'
      throw error
    } finally {
      clearTimeout(timer)
    }
    state = 'running'
    log(`the app runs (pid ${child.pid}, version ${app.version}) at ${appUrl}`)
  }

  const kill = async (running: Running | null): Promise<void> => {
    if (!running) return
    running.expected = true
    const signal = (sig: Deno.Signal) => {
      try {
        running.child.kill(sig)
      } catch { /* already gone */ }
    }
    signal('SIGTERM')
    let timer: ReturnType<typeof setTimeout> | undefined
    const gone = await Promise.race([
      running.exited.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), STOP_GRACE_MS))),
    ])
    clearTimeout(timer)
    if (!gone) {
      signal('SIGKILL')
      await running.exited
    }
    if (current === running) current = null
  }

  const cancelRespawn = () => {
    clearTimeout(respawnTimer)
    respawnTimer = undefined
  }

  const restart = () =>
    serial(async () => {
      cancelRespawn()
      const before = current?.child.pid ?? null
      await kill(current)
      await spawn()
      restarts++
      log(`restarted the app: pid ${before ?? 'none'} → ${current?.child.pid}`)
      return status()
    })

  const disable = () =>
    serial(async () => {
      cancelRespawn()
      await kill(current)
      state = 'disabled'
      log('disabled the app: it stays stopped until restarted')
      return status()
    })

  const deploy = (version: string) =>
    serial(async () => {
      app.version = version
      if (state !== 'running' || !current) return
      const res = await fetch(`${appUrl}/_deploy`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${app.controlToken}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ version }),
      })
      await res.body?.cancel()
      if (!res.ok) throw new Error(`the app refused version ${version} (HTTP ${res.status})`)
    })

  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url)
    if (url.pathname !== '/') return json({ error: `no route ${url.pathname}` }, 404)
    if (request.method === 'GET') return json(status())
    if (request.method !== 'POST') return json({ error: 'method: must be GET or POST' }, 405)
    const body = await readObject(request)
    if (!body.ok) return json({ error: body.error }, 400)
    const parsed = ActionRequest.safeParse(body.value)
    if (!parsed.success) return json({ error: describeIssues(parsed.error) }, 400)
    const { action, service } = parsed.data
    if (service !== options.service) {
      return json({
        error: `service: no supervised service named ${
          JSON.stringify(service)
        } (this supervisor runs ${options.service})`,
      }, 404)
    }
    try {
      const after = action === 'restart' ? await restart() : await disable()
      return json({ ok: true, action, ...after })
    } catch (error) {
      return json({
        ok: false,
        action,
        error: error instanceof Error ? error.message : String(error),
        ...status(),
      }, 500)
    }
  }

  await serial(spawn)
  const listening = Promise.withResolvers<void>()
  let server: Deno.HttpServer<Deno.NetAddr>
  try {
    server = Deno.serve({
      hostname: options.hostname ?? '127.0.0.1',
      port: options.port,
      onListen: () => listening.resolve(),
    }, handle)
    await listening.promise
  } catch (error) {
    stopping = true
    await kill(current)
    throw error
  }
  const port = server.addr.port

  return {
    url: `http://${options.hostname ?? '127.0.0.1'}:${port}`,
    port,
    service: options.service,
    appUrl,
    status,
    restart,
    disable,
    deploy,
    async stop() {
      stopping = true
      cancelRespawn()
      await queue
      await kill(current)
      state = 'stopped'
      await server.shutdown()
    },
  }
}

/** Calls `line` for each line the stream carries, until it ends. */
function pump(stream: ReadableStream<Uint8Array>, line: (text: string) => void): void {
  let rest = ''
  stream.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({
      write(chunk) {
        const parts = (rest + chunk).split('\n')
        rest = parts.pop() ?? ''
        for (const part of parts) if (part.trim()) line(part)
      },
      close() {
        if (rest.trim()) line(rest)
      },
    }),
  ).catch(() => {})
}
