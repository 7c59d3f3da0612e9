// Entry of one subprocess that hosts one edge function, as a worker of Supabase's edge runtime
// does: the function calls Deno.serve as it would on Supabase, and this host decides where it
// listens. Dev tooling only: never deployed.
//
// Usage: deno run <perms> devstack/function-host.ts <path/to/index.ts> <port> [serve-timeout-ms]
// Prints `VIGIL_FUNCTION_READY <port>` on stdout once listening on 127.0.0.1:<port>, or
// `VIGIL_FUNCTION_FAILED <reason as JSON>` before exiting non-zero with the error on stderr.
import { pathToFileURL } from 'node:url'

export const READY_MARKER = 'VIGIL_FUNCTION_READY'
/** Under `deno run --watch` a failed run does not end the process: this line tells the gateway. */
export const FAILED_MARKER = 'VIGIL_FUNCTION_FAILED'
const DEFAULT_SERVE_TIMEOUT_MS = 30_000
const HOSTNAME = '127.0.0.1'

type ServeHandler = Deno.ServeHandler<Deno.NetAddr>
type ServeOptions = Partial<Deno.ServeTcpOptions> & { handler?: ServeHandler }

if (import.meta.main) await main(Deno.args)

async function main([modulePath, portArg, timeoutArg]: string[]): Promise<void> {
  const port = Number(portArg)
  if (!modulePath || !Number.isInteger(port) || port < 0) {
    fail('usage: function-host.ts <path/to/index.ts> <port> [serve-timeout-ms]')
  }
  const serveTimeoutMs = timeoutArg ? Number(timeoutArg) : DEFAULT_SERVE_TIMEOUT_MS
  const serveDeadline = setTimeout(
    () => fail(`function did not call Deno.serve within ${serveTimeoutMs} ms`),
    serveTimeoutMs,
  )
  installDenoServe(port, () => clearTimeout(serveDeadline))
  installEdgeRuntime()
  try {
    await import(pathToFileURL(modulePath).href)
  } catch (error) {
    fail(`function failed to load: ${describe(error)}`)
  }
}

function installDenoServe(port: number, onServing: () => void): void {
  const realServe = Deno.serve
  let served = false
  const hostedServe = (...args: unknown[]): Deno.HttpServer<Deno.NetAddr> => {
    if (served) throw new Error('Deno.serve was called twice: an edge function serves once')
    served = true
    onServing()
    const { handler, options } = splitServeArgs(args)
    return realServe({
      ...withoutListenOptions(options),
      port,
      hostname: HOSTNAME,
      onListen(addr) {
        console.log(`${READY_MARKER} ${addr.port}`)
        options.onListen?.(addr)
      },
    }, handler)
  }
  Object.defineProperty(Deno, 'serve', { value: hostedServe, writable: true, configurable: true })
}

function splitServeArgs(args: unknown[]): { handler: ServeHandler; options: ServeOptions } {
  const [first, second] = args
  if (typeof first === 'function') return { handler: first as ServeHandler, options: {} }
  const options = (first ?? {}) as ServeOptions
  const handler = typeof second === 'function' ? second as ServeHandler : options.handler
  if (!handler) throw new TypeError('Deno.serve needs a handler')
  return { handler, options }
}

/** Where to listen is the host's choice; the rest of the function's options are kept. */
function withoutListenOptions(options: ServeOptions): Partial<Deno.ServeTcpOptions> {
  const { handler: _handler, port: _port, hostname: _hostname, onListen: _onListen, ...rest } =
    options as ServeOptions & Record<string, unknown>
  for (const key of ['path', 'cert', 'key', 'transport']) delete rest[key]
  return rest
}

function installEdgeRuntime(): void {
  const pending = new Set<Promise<unknown>>()
  const waitUntil = <T>(promise: Promise<T>): Promise<T> => {
    const tracked = Promise.resolve(promise)
      .catch((error) => console.error(`EdgeRuntime.waitUntil task failed: ${describe(error)}`))
      .finally(() => pending.delete(tracked))
    pending.add(tracked)
    return promise
  }
  Object.defineProperty(globalThis, 'EdgeRuntime', { value: { waitUntil }, configurable: true })
  // Background work gets a short grace period when the gateway stops the worker.
  Deno.addSignalListener('SIGTERM', async () => {
    await Promise.race([Promise.allSettled(pending), new Promise((r) => setTimeout(r, 2_000))])
    Deno.exit(0)
  })
}

function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error)
}

function fail(message: string): never {
  console.error(message)
  console.log(`${FAILED_MARKER} ${JSON.stringify(message)}`)
  Deno.exit(1)
}
