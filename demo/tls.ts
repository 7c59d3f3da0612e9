// The demo's HTTPS listener: serves a handler (the CDN edge's) over TLS with a certificate of the
// demo's CA, and swaps the certificate when one is renewed or a fault shortens it — a new listener
// on the same port, as a TLS terminator reloads. Dev tooling only: never deployed.
import type { CertificateAuthority } from './certificates.ts'

/** What an ACME client issues: Let's Encrypt certificates last 90 days. */
export const HEALTHY_DAYS = 90

export interface TlsOptions {
  /** 0: a free port (kept across certificate swaps). */
  port: number
  hostname?: string
  ca: CertificateAuthority
  /** The first certificate's lifetime (default HEALTHY_DAYS). */
  days?: number
  handler: (request: Request) => Response | Promise<Response>
  log?: (line: string) => void
}

export interface CertificateState {
  not_after: string
  days_left: number
  /** How many certificates this listener has served (the first is 1). */
  issued: number
}

export interface TlsListener {
  /** https://127.0.0.1:<port> */
  url: string
  port: number
  caFile: string
  certificate(): CertificateState
  /** Issues a certificate valid for `days` days and serves it from now on. */
  swap(days: number): Promise<CertificateState>
  stop(): Promise<void>
}

const DAY_MS = 86_400_000

export async function startTls(options: TlsOptions): Promise<TlsListener> {
  const log = options.log ?? (() => {})
  const hostname = options.hostname ?? '127.0.0.1'
  let port = options.port
  let server: Deno.HttpServer<Deno.NetAddr> | null = null
  let notAfter = new Date(0)
  let issued = 0
  let swapping: Promise<unknown> = Promise.resolve()

  const serve = async (days: number) => {
    const { cert, key, notAfter: until } = await options.ca.issue(days)
    // A listener's certificate is fixed: the old one stops accepting before the new one binds.
    await server?.shutdown()
    const listening = Promise.withResolvers<void>()
    server = Deno.serve({
      hostname,
      port,
      cert,
      key,
      onListen: () => listening.resolve(),
      onError: (error) => {
        log(`https error: ${error instanceof Error ? error.message : error}`)
        return new Response('error code: 500', { status: 500 })
      },
    }, options.handler)
    await listening.promise
    port = server.addr.port
    notAfter = until
    issued++
    log(`serving a certificate valid until ${until.toISOString()} on https://${hostname}:${port}`)
  }

  const state = (): CertificateState => ({
    not_after: notAfter.toISOString(),
    days_left: Math.floor((notAfter.getTime() - Date.now()) / DAY_MS),
    issued,
  })

  await serve(options.days ?? HEALTHY_DAYS)
  return {
    url: `https://${hostname}:${port}`,
    port,
    caFile: options.ca.caFile,
    certificate: state,
    swap(days) {
      const next = swapping.then(() => serve(days), () => serve(days)).then(state)
      swapping = next.catch(() => {})
      return next
    },
    async stop() {
      await swapping
      await server?.shutdown()
      server = null
    },
  }
}
