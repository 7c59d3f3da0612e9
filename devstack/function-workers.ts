// Deno subprocesses per edge function, started on first use and restarted after they die, like
// the per-function workers of Supabase's edge runtime. One per function unless a function is
// scaled out (maxWorkers): then a request goes to an idle worker, and a new one starts while all are
// busy, up to the cap, as the edge runtime starts workers for concurrent requests. Dev tooling only.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ROOT } from './config.ts'
import { readDotenv } from './dotenv.ts'
import { FAILED_MARKER, READY_MARKER } from './function-host.ts'

const HOST_SCRIPT = fileURLToPath(new URL('./function-host.ts', import.meta.url))
const FUNCTION_PERMISSIONS = [
  '--no-prompt',
  '--allow-net',
  '--allow-env',
  '--allow-read',
  '--allow-sys',
  // Edge functions can only write to /tmp on Supabase.
  '--allow-write=/tmp',
]
/** The only parent variables a worker inherits: what Deno needs to find its cache and npm. */
const RUNTIME_ENV_KEYS = [
  'PATH',
  'HOME',
  'DENO_DIR',
  'XDG_CACHE_HOME',
  'NPM_CONFIG_REGISTRY',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'DENO_CERT',
  'DENO_TLS_CA_STORE',
]
/** Env whose values are not secret, so error messages keep them readable. */
const PUBLIC_ENV_KEYS = new Set([...RUNTIME_ENV_KEYS, 'SUPABASE_URL'])
const MIN_SECRET_LENGTH = 8
const STARTUP_FAILURE_LINES = 12
const STOP_GRACE_MS = 3_000
/** The host enforces the start timeout itself and says why; this is the margin to let it. */
const HOST_REPORT_GRACE_MS = 2_000

export interface WorkerPoolOptions {
  functionsDir: string
  /** Folders of further functions (the demo's), served where functionsDir has no such name. */
  extraFunctionsDirs?: readonly string[]
  /** Env every function gets (SUPABASE_URL, keys…); the env file cannot override SUPABASE_*. */
  env: Record<string, string>
  envFile: string
  watch: boolean
  startTimeoutMs: number
  log: (line: string) => void
  /** Workers per function at most: a number for all, or by name (default 1: one per function). */
  maxWorkers?: number | Record<string, number>
}

/** The most workers one function may be scaled out to. */
export const MAX_WORKERS_PER_FUNCTION = 64

/** A worker lent to one request; release it when the response has ended. */
export interface WorkerLease {
  url: string
  release(): void
}

/** A worker that could not start; its message is safe to show (secrets redacted). */
export class FunctionStartError extends Error {
  override name = 'FunctionStartError'
}

export class FunctionWorkerPool {
  #workers = new Map<string, FunctionWorker[]>()
  #limits = new Map<string, number>()
  #stopped = false

  constructor(private readonly options: WorkerPoolOptions) {
    const { maxWorkers } = options
    if (maxWorkers !== undefined && typeof maxWorkers === 'object') {
      for (const [name, max] of Object.entries(maxWorkers)) this.scale(name, max)
    }
  }

  /** Base URL of a running worker for the function, cold-starting one if needed. */
  async url(name: string): Promise<string> {
    const lease = await this.lease(name)
    lease.release()
    return lease.url
  }

  /**
   * A worker for one request: an idle one, else a new one while the function is under its cap,
   * else the least busy. Release the lease when the response has ended.
   */
  async lease(name: string): Promise<WorkerLease> {
    if (this.#stopped) throw new FunctionStartError('the gateway is stopping')
    const group = this.#workers.get(name) ?? []
    this.#workers.set(name, group)
    let worker = group.find((w) => w.inflight === 0)
    if (!worker && group.length < this.maxWorkers(name)) {
      worker = new FunctionWorker(name, this.options)
      group.push(worker)
    }
    worker ??= group.reduce((a, b) => (b.inflight < a.inflight ? b : a))
    worker.inflight++
    let released = false
    const release = () => {
      if (!released) worker.inflight--
      released = true
    }
    try {
      return { url: await worker.url(), release }
    } catch (error) {
      release()
      throw error
    }
  }

  /** Lets a function run up to `max` workers at once (1 to MAX_WORKERS_PER_FUNCTION). */
  scale(name: string, max: number): void {
    if (!Number.isInteger(max) || max < 1 || max > MAX_WORKERS_PER_FUNCTION) {
      throw new RangeError(
        `workers per function: a whole number from 1 to ${MAX_WORKERS_PER_FUNCTION}`,
      )
    }
    this.#limits.set(name, max)
  }

  maxWorkers(name: string): number {
    const all = this.options.maxWorkers
    return this.#limits.get(name) ?? (typeof all === 'number' ? all : 1)
  }

  /** The process ids of the function's running workers (for measurements: /proc/<pid>/status). */
  pids(name: string): number[] {
    return (this.#workers.get(name) ?? []).map((w) => w.pid).filter((p): p is number => p !== null)
  }

  async stopAll(): Promise<void> {
    this.#stopped = true
    await Promise.all([...this.#workers.values()].flat().map((worker) => worker.stop()))
  }
}

/** Keeps one subprocess alive for one function; concurrent callers share a cold start. */
class FunctionWorker {
  /** Requests this worker is serving (or starting for). */
  inflight = 0
  #process: WorkerProcess | null = null
  #listeningUrl: string | null = null
  #starting: Promise<string> | null = null
  #stopped = false

  constructor(readonly name: string, private readonly options: WorkerPoolOptions) {}

  url(): Promise<string> {
    if (this.#starting) return this.#starting
    if (this.#listeningUrl && !this.#process?.exited) return Promise.resolve(this.#listeningUrl)
    this.#starting = this.#start().finally(() => this.#starting = null)
    return this.#starting
  }

  get pid(): number | null {
    return this.#process && !this.#process.exited ? this.#process.pid : null
  }

  async stop(): Promise<void> {
    this.#stopped = true
    await this.#process?.stop()
  }

  async #start(): Promise<string> {
    const { name, options } = this
    this.#listeningUrl = null
    let secrets: string[] = []
    try {
      const env = await workerEnv(options)
      secrets = secretValues(env)
      if (this.#stopped) throw new Error('the gateway is stopping')
      this.#process = new WorkerProcess(name, spawnArgs(name, options, freePort()), env, options)
      const port = await this.#process.ready(options.startTimeoutMs + HOST_REPORT_GRACE_MS)
      this.#listeningUrl = `http://127.0.0.1:${port}`
      return this.#listeningUrl
    } catch (error) {
      await this.#process?.stop()
      const reason = error instanceof Error ? error.message : String(error)
      throw new FunctionStartError(redact(reason, secrets))
    }
  }
}

/** One `deno run function-host.ts` subprocess and the pumps that read its output. */
class WorkerProcess {
  exited = false
  readonly #child: Deno.ChildProcess
  readonly #status: Promise<Deno.CommandStatus>
  readonly #pumps: Promise<void>
  readonly #listening = Promise.withResolvers<number>()
  readonly #startupStderr: string[] = []
  #listened = false
  #stopping = false

  get pid(): number {
    return this.#child.pid
  }

  constructor(
    readonly name: string,
    args: string[],
    env: Record<string, string>,
    private readonly options: WorkerPoolOptions,
  ) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args,
      env,
      clearEnv: true,
      stdin: 'null',
      stdout: 'piped',
      stderr: 'piped',
    }).spawn()
    this.#status = this.#child.status.then((status) => {
      this.exited = true
      if (!this.#stopping) this.#log(`worker exited with code ${status.code}`)
      return status
    })
    this.#pumps = Promise.all([
      forEachLine(this.#child.stdout, (line) => this.#onStdout(line)),
      forEachLine(this.#child.stderr, (line) => this.#onStderr(line)),
    ]).then(() => {})
    this.#listening.promise.catch(() => {})
  }

  /** Resolves with the port once the function listens; rejects with the reason it did not. */
  async ready(timeoutMs: number): Promise<number> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const exitedFirst = this.#status.then(async (status) => {
      await this.#pumps
      throw new Error(this.#startupFailure(`exited with code ${status.code}`))
    })
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(this.#startupFailure(`did not listen within ${timeoutMs} ms`))),
        timeoutMs,
      )
    })
    try {
      return await Promise.race([this.#listening.promise, exitedFirst, timedOut])
    } finally {
      clearTimeout(timer)
      exitedFirst.catch(() => {})
    }
  }

  async stop(): Promise<void> {
    this.#stopping = true
    if (!this.exited) {
      // SIGTERM gives EdgeRuntime.waitUntil work its grace; under --watch only SIGINT ends
      // the watcher itself.
      this.#child.kill(this.options.watch ? 'SIGINT' : 'SIGTERM')
      const timer = setTimeout(() => this.exited || this.#child.kill('SIGKILL'), STOP_GRACE_MS)
      await this.#status
      clearTimeout(timer)
    }
    await this.#pumps
  }

  #onStdout(line: string): void {
    if (line.startsWith(`${READY_MARKER} `)) {
      this.#listened = true
      this.#listening.resolve(Number(line.slice(READY_MARKER.length + 1)))
    } else if (line.startsWith(`${FAILED_MARKER} `)) {
      this.#onFailed(JSON.parse(line.slice(FAILED_MARKER.length + 1)))
    } else {
      this.#log(line)
    }
  }

  #onFailed(reason: string): void {
    if (!this.#listened) {
      this.#listening.reject(new Error(firstLines(reason, STARTUP_FAILURE_LINES)))
      return
    }
    // A --watch reload that failed leaves a process that never answers: retire it, so the
    // next request cold-starts the function and reports why it fails.
    this.#log('reload failed; the worker stops and restarts on the next request')
    void this.stop()
  }

  #onStderr(line: string): void {
    if (this.#startupStderr.length < STARTUP_FAILURE_LINES) this.#startupStderr.push(line)
    this.#log(line)
  }

  #startupFailure(what: string): string {
    const stderr = this.#startupStderr.filter((line) => line.trim() !== '').join('\n')
    return stderr ? `${what}: ${stderr}` : what
  }

  #log(line: string): void {
    this.options.log(`[fn ${this.name}] ${line}`)
  }
}

/**
 * The folder holding the function's index.ts: functionsDir first, then the extra folders in order;
 * null when none has it.
 */
export function functionDirOf(
  options: Pick<WorkerPoolOptions, 'functionsDir' | 'extraFunctionsDirs'>,
  name: string,
): string | null {
  for (const root of [options.functionsDir, ...(options.extraFunctionsDirs ?? [])]) {
    const dir = join(root, name)
    try {
      if (Deno.statSync(join(dir, 'index.ts')).isFile) return dir
    } catch { /* not in this folder */ }
  }
  return null
}

function spawnArgs(name: string, options: WorkerPoolOptions, port: number): string[] {
  const functionDir = functionDirOf(options, name) ?? join(options.functionsDir, name)
  const root = join(functionDir, '..')
  const watch = options.watch ? [`--watch=${root}`, '--no-clear-screen'] : []
  return [
    'run',
    ...FUNCTION_PERMISSIONS,
    '--config',
    denoConfigFor(functionDir),
    ...watch,
    HOST_SCRIPT,
    join(functionDir, 'index.ts'),
    String(port),
    String(options.startTimeoutMs),
  ]
}

/** A function may bring its own deno.json (Supabase's recommended per-function import map). */
function denoConfigFor(functionDir: string): string {
  const own = ['deno.json', 'deno.jsonc'].map((file) => join(functionDir, file)).find(existsSync)
  return own ?? join(ROOT, 'deno.json')
}

async function workerEnv(options: WorkerPoolOptions): Promise<Record<string, string>> {
  const env: Record<string, string> = {}
  for (const key of RUNTIME_ENV_KEYS) {
    const value = Deno.env.get(key)
    if (value !== undefined) env[key] = value
  }
  // Worker output goes to a log, not a terminal.
  env.NO_COLOR = '1'
  // A function with its own deno.json fetches its npm packages itself, as on deploy; Deno's
  // built-in roots may lack a CA this machine trusts, so use the system store unless told otherwise.
  env.DENO_TLS_CA_STORE ??= 'system'
  Object.assign(env, options.env)
  for (const [key, value] of Object.entries(await readDotenv(options.envFile))) {
    if (key.startsWith('SUPABASE_')) {
      options.log(
        `[gateway] skipping ${key} from ${options.envFile}: names starting with SUPABASE_ are reserved`,
      )
    } else {
      env[key] = value
    }
  }
  return env
}

/** Env values that must not reach an HTTP client, longest first so overlaps redact fully. */
function secretValues(env: Record<string, string>): string[] {
  const secrets = new Set<string>()
  for (const [key, value] of Object.entries(env)) {
    if (PUBLIC_ENV_KEYS.has(key)) continue
    secrets.add(value)
    for (const password of urlPasswords(value)) secrets.add(password)
  }
  return [...secrets].filter((value) => value.length >= MIN_SECRET_LENGTH)
    .sort((a, b) => b.length - a.length)
}

/** A connection string's password, as written and decoded: errors may quote either. */
function urlPasswords(value: string): string[] {
  const password = URL.canParse(value) ? new URL(value).password : ''
  if (!password) return []
  try {
    return [password, decodeURIComponent(password)]
  } catch {
    return [password]
  }
}

function redact(text: string, secrets: string[]): string {
  return secrets.reduce((redacted, secret) => redacted.replaceAll(secret, '[redacted]'), text)
}

function firstLines(text: string, count: number): string {
  return text.split('\n').slice(0, count).join('\n')
}

function freePort(): number {
  const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const { port } = listener.addr
  listener.close()
  return port
}

async function forEachLine(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  let buffered = ''
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (buffered + chunk).split('\n')
    buffered = lines.pop() ?? ''
    for (const line of lines) onLine(line.replace(/\r$/, ''))
  }
  if (buffered) onLine(buffered)
}
