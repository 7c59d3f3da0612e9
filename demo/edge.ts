// The demo's CDN: a caching reverse proxy in front of the app, and Cloudflare's purge API for it.
//   GET  /version (and the other cached paths)   from the cache for `ttlSeconds`, with
//        cf-cache-status: HIT | MISS | EXPIRED and age, as Cloudflare answers
//   any other path                               passed through (cf-cache-status: DYNAMIC)
//   POST /client/v4/zones/{zone_id}/purge_cache  Authorization: Bearer <API token>, body
//        {"purge_everything": true} or {"files": [url | {url, headers}, …]} (at most 100), answered
//        in Cloudflare's v4 envelope {success, errors: [{code, message}], messages, result: {id}}
//        (developers.cloudflare.com/api/resources/cache/methods/purge); a wrong token is 403 with
//        error 10000, an unknown zone 404 with error 7003.
// The origin unreachable is Cloudflare's 521, too slow its 522. With `tls`, the same is served over
// HTTPS too (demo/tls.ts), and its certificate is managed here:
//   POST /_tls/renew   Authorization: Bearer <renewal token>: a fresh 90-day certificate (what an
//                      ACME client's renewal hook does; Vigil's certificate_renewal action calls it)
//   GET  /_tls, POST /_tls/chaos {"expires_in_days": n} | {"clear": true}   Bearer <control token>:
//                      the certificate served now; a near-expiry one, or a healthy one again
// Dev tooling only: never deployed.
import { z } from 'zod'
import type { CertificateAuthority } from './certificates.ts'
import { bearer, describeIssues, json, randomHex, readObject, sameToken } from './http.ts'
import { HEALTHY_DAYS, startTls, type TlsListener } from './tls.ts'

export interface EdgeOptions {
  /** 0: a free port. */
  port: number
  hostname?: string
  /** The app, e.g. http://127.0.0.1:54330. */
  originUrl: string
  zoneId: string
  apiToken: string
  /** How long a cached answer is served (default a day: only a purge makes it fresh sooner). */
  ttlSeconds?: number
  /** Paths cached (default ['/version']). */
  cachedPaths?: string[]
  originTimeoutMs?: number
  /** Also serve HTTPS, with a certificate of this CA that the /_tls routes renew or shorten. */
  tls?: {
    /** 0: a free port. */
    port: number
    ca: CertificateAuthority
    renewToken: string
    controlToken: string
  }
  log?: (line: string) => void
}

export interface PurgeRecord {
  at: Date
  zone: string
  /** Whether the request carried the right token (the token itself is never kept). */
  authorized: boolean
  body: unknown
  status: number
}

export interface Edge {
  url: string
  port: number
  zoneId: string
  /** The purge API's base, what a cloudflare `cdn` action names as api_url. */
  apiUrl: string
  purgeAll(): void
  cached(): string[]
  purges(): PurgeRecord[]
  /** The HTTPS listener, when asked for. */
  tls: TlsListener | null
  stop(): Promise<void>
}

/** The certificate fault's body: a certificate expiring in so many days, or a healthy one again. */
const TlsChaos = z.union([
  z.strictObject({
    expires_in_days: z.number({ error: 'must be a whole number of days from 1 to 30' }).int(
      'must be a whole number of days from 1 to 30',
    ).min(1, 'must be from 1 to 30').max(30, 'must be from 1 to 30'),
  }),
  z.strictObject({ clear: z.literal(true, { error: 'must be true' }) }),
], { error: 'name expires_in_days or clear' })

interface Entry {
  status: number
  headers: [string, string][]
  body: Uint8Array
  storedAt: number
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
])
const MAX_FILES = 100
const MAX_RECORDED = 1_000

function envelope(
  status: number,
  errors: { code: number; message: string }[],
  result: unknown = null,
): Response {
  return json({ success: errors.length === 0, errors, messages: [], result }, status)
}

export async function startEdge(options: EdgeOptions): Promise<Edge> {
  const log = options.log ?? (() => {})
  const ttlMs = (options.ttlSeconds ?? 86_400) * 1000
  const cachedPaths = new Set(options.cachedPaths ?? ['/version'])
  const origin = new URL(options.originUrl)
  const cache = new Map<string, Entry>()
  const recorded: PurgeRecord[] = []
  const keyOf = (url: URL) => `${url.host}${url.pathname}${url.search}`

  const purge = async (request: Request, zone: string): Promise<Response> => {
    const raw = await request.text()
    let body: unknown
    try {
      body = JSON.parse(raw)
    } catch {
      body = raw
    }
    const authorized = sameToken(bearer(request), options.apiToken)
    const answer = (() => {
      if (!authorized) return envelope(403, [{ code: 10000, message: 'Authentication error' }])
      if (zone !== options.zoneId) {
        return envelope(404, [{
          code: 7003,
          message:
            `Could not route to /zones/${zone}/purge_cache, perhaps your object identifier is invalid?`,
        }])
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        return envelope(400, [{ code: 6007, message: 'Malformed JSON in request body' }])
      }
      const b = body as Record<string, unknown>
      const keys = Object.keys(b)
      if (b.purge_everything === true && keys.length === 1) {
        const dropped = cache.size
        cache.clear()
        log(`purged everything (${dropped} cached)`)
        return envelope(200, [], { id: randomHex(16) })
      }
      if (Array.isArray(b.files) && keys.length === 1) {
        if (b.files.length === 0 || b.files.length > MAX_FILES) {
          return envelope(400, [{
            code: 1015,
            message: `files must list from 1 to ${MAX_FILES} URLs`,
          }])
        }
        const urls: URL[] = []
        for (const f of b.files) {
          const text = typeof f === 'string'
            ? f
            : (f && typeof f === 'object' ? (f as { url?: unknown }).url : undefined)
          let url: URL | undefined
          try {
            url = typeof text === 'string' ? new URL(text) : undefined
          } catch { /* below */ }
          if (!url || !/^https?:$/.test(url.protocol)) {
            return envelope(400, [{
              code: 1016,
              message: `files: ${JSON.stringify(text ?? f)} is not an http(s) URL`,
            }])
          }
          urls.push(url)
        }
        let dropped = 0
        for (const url of urls) if (cache.delete(keyOf(url))) dropped++
        log(`purged ${urls.length} URL(s) (${dropped} cached)`)
        return envelope(200, [], { id: randomHex(16) })
      }
      return envelope(400, [{
        code: 1012,
        message:
          'Request must contain one of "purge_everything" or "files" (this stand-in purges by those only)',
      }])
    })()
    recorded.push({ at: new Date(), zone, authorized, body, status: answer.status })
    if (recorded.length > MAX_RECORDED) recorded.splice(0, recorded.length - MAX_RECORDED)
    return answer
  }

  /** The request sent on to the origin: same method, path, headers and body. */
  const toOrigin = async (request: Request, url: URL): Promise<Response> => {
    const target = new URL(url.pathname + url.search, origin)
    const headers = new Headers()
    for (const [k, v] of request.headers) if (!HOP_BY_HOP.has(k)) headers.set(k, v)
    headers.set('x-forwarded-host', url.host)
    const hasBody = request.method !== 'GET' && request.method !== 'HEAD'
    try {
      return await fetch(target, {
        method: request.method,
        headers,
        body: hasBody ? await request.arrayBuffer() : undefined,
        redirect: 'manual',
        signal: AbortSignal.timeout(options.originTimeoutMs ?? 15_000),
      })
    } catch (error) {
      const timedOut = error instanceof DOMException && error.name === 'TimeoutError'
      // Cloudflare's own codes: 521 web server is down, 522 connection timed out.
      return new Response(
        timedOut
          ? 'error code: 522 (the origin did not answer in time)'
          : 'error code: 521 (the origin is down)',
        { status: timedOut ? 522 : 521, headers: { 'content-type': 'text/plain' } },
      )
    }
  }

  const fromCache = async (request: Request, url: URL): Promise<Response> => {
    const key = keyOf(url)
    const hit = cache.get(key)
    const now = Date.now()
    if (hit && now - hit.storedAt < ttlMs) {
      const headers = new Headers(hit.headers)
      headers.set('cf-cache-status', 'HIT')
      headers.set('age', String(Math.floor((now - hit.storedAt) / 1000)))
      return new Response(request.method === 'HEAD' ? null : hit.body.slice(), {
        status: hit.status,
        headers,
      })
    }
    const upstream = await toOrigin(request, url)
    const body = new Uint8Array(await upstream.arrayBuffer())
    const headers = new Headers()
    for (const [k, v] of upstream.headers) if (!HOP_BY_HOP.has(k)) headers.set(k, v)
    if (upstream.status === 200 && request.method === 'GET') {
      cache.set(key, { status: 200, headers: [...headers], body, storedAt: now })
    }
    headers.set('cf-cache-status', hit ? 'EXPIRED' : 'MISS')
    headers.set('age', '0')
    return new Response(request.method === 'HEAD' ? null : body, {
      status: upstream.status,
      headers,
    })
  }

  let tls: TlsListener | null = null
  const tlsControl = async (request: Request, url: URL): Promise<Response> => {
    if (!tls || !options.tls) return json({ error: 'this edge serves no HTTPS' }, 404)
    const renew = url.pathname === '/_tls/renew'
    const token = renew ? options.tls.renewToken : options.tls.controlToken
    if (!sameToken(bearer(request), token)) {
      return json({ error: 'authorization: a Bearer token is required' }, 401, {
        'www-authenticate': 'Bearer realm="vigil-demo-edge"',
      })
    }
    if (url.pathname === '/_tls' && request.method === 'GET') return json(tls.certificate())
    if (request.method !== 'POST') return json({ error: 'method: not allowed' }, 405)
    if (renew) {
      // Vigil's webhook body ({action, service, …}) says who asked; any body is accepted.
      await request.body?.cancel()
      const now = await tls.swap(HEALTHY_DAYS)
      log(`certificate renewed: valid until ${now.not_after}`)
      return json({ renewed: true, ...now })
    }
    if (url.pathname !== '/_tls/chaos') return json({ error: `no route ${url.pathname}` }, 404)
    const body = await readObject(request)
    if (!body.ok) return json({ error: body.error }, 400)
    const parsed = TlsChaos.safeParse(body.value)
    if (!parsed.success) return json({ error: describeIssues(parsed.error) }, 400)
    const days = 'clear' in parsed.data ? HEALTHY_DAYS : parsed.data.expires_in_days
    return json(await tls.swap(days))
  }

  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url)
    if (url.pathname === '/_tls' || url.pathname.startsWith('/_tls/')) {
      return await tlsControl(request, url)
    }
    const m = /^\/client\/v4\/zones\/([^/]+)\/purge_cache$/.exec(url.pathname)
    if (m) {
      if (request.method !== 'POST') {
        return envelope(405, [{ code: 10405, message: 'Method not allowed' }])
      }
      return await purge(request, decodeURIComponent(m[1]))
    }
    if ((request.method === 'GET' || request.method === 'HEAD') && cachedPaths.has(url.pathname)) {
      return await fromCache(request, url)
    }
    const upstream = await toOrigin(request, url)
    const headers = new Headers()
    for (const [k, v] of upstream.headers) if (!HOP_BY_HOP.has(k)) headers.set(k, v)
    headers.set('cf-cache-status', 'DYNAMIC')
    return new Response(upstream.body, { status: upstream.status, headers })
  }

  const hostname = options.hostname ?? '127.0.0.1'
  const listening = Promise.withResolvers<void>()
  const server = Deno.serve({
    hostname,
    port: options.port,
    onListen: () => listening.resolve(),
    onError: (error) => {
      log(`edge error: ${error instanceof Error ? error.message : error}`)
      return new Response('error code: 500', { status: 500 })
    },
  }, handle)
  await listening.promise
  const url = `http://${hostname}:${server.addr.port}`
  if (options.tls) {
    try {
      tls = await startTls({
        port: options.tls.port,
        hostname,
        ca: options.tls.ca,
        handler: handle,
        log,
      })
    } catch (error) {
      await server.shutdown()
      throw error
    }
  }
  return {
    url,
    port: server.addr.port,
    zoneId: options.zoneId,
    apiUrl: url,
    purgeAll: () => cache.clear(),
    cached: () => [...cache.keys()],
    purges: () => [...recorded],
    tls,
    async stop() {
      await tls?.stop()
      await server.shutdown()
    },
  }
}
