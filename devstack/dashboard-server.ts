// Serves the built dashboard (dashboard/dist) the way any static host would, plus the one thing a
// host adds: /config.js, telling the app where the project's API is. /status is the public status
// page. Dev tooling only: on a real deployment any static host serves the same files.
import { extname, join, normalize } from 'node:path'

export interface DashboardConfig {
  supabaseUrl: string
  anonKey: string
  /** The local stack's development operator, offered as a one-click sign-in. Never on a real host. */
  devOperator?: { email: string; password: string }
}

export interface DashboardServer {
  url: string
  port: number
  stop(): Promise<void>
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
}

/** True when dashboard/dist holds a build (the app's index.html and the status page). */
export async function hasBuild(distDir: string): Promise<boolean> {
  for (const page of ['index.html', 'status.html']) {
    if (!(await Deno.stat(join(distDir, page)).catch(() => null))?.isFile) return false
  }
  return true
}

export function startDashboardServer(opts: {
  port: number
  distDir: string
  config: DashboardConfig
  log?: (line: string) => void
}): DashboardServer {
  const api = new URL(opts.config.supabaseUrl)
  const ws = `${api.protocol === 'https:' ? 'wss:' : 'ws:'}//${api.host}`
  const headers = {
    // The app talks to the project's API and its Realtime socket, and to nothing else.
    'content-security-policy': [
      "default-src 'self'",
      `connect-src 'self' ${api.origin} ${ws}`,
      "img-src 'self' data:",
      "style-src 'self' 'unsafe-inline'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  }
  const configJs = `window.__VIGIL__ = ${JSON.stringify(opts.config)};\n`

  // Each file is kept with its gzip form until it changes on disk (a rebuild): compressing on
  // every request would cost a phone its first screen.
  const files = new Map<
    string,
    { mtime: number; body: Uint8Array<ArrayBuffer>; gzip: Uint8Array<ArrayBuffer> }
  >()

  async function load(full: string) {
    const mtime = (await Deno.stat(full)).mtime?.getTime() ?? 0
    const cached = files.get(full)
    if (cached?.mtime === mtime) return cached
    const body = await Deno.readFile(full)
    const gzip = new Uint8Array(
      await new Response(new Blob([body]).stream().pipeThrough(new CompressionStream('gzip')))
        .arrayBuffer(),
    )
    const entry = { mtime, body, gzip }
    files.set(full, entry)
    return entry
  }

  async function file(req: Request, path: string, cache: string): Promise<Response | null> {
    const full = normalize(join(opts.distDir, path))
    if (!full.startsWith(normalize(opts.distDir) + '/')) return null
    let entry
    try {
      entry = await load(full)
    } catch {
      return null
    }
    const gzip = /\bgzip\b/.test(req.headers.get('accept-encoding') ?? '') &&
      entry.gzip.length < entry.body.length
    return new Response(req.method === 'HEAD' ? null : gzip ? entry.gzip : entry.body, {
      headers: {
        ...headers,
        'content-type': TYPES[extname(full)] ?? 'application/octet-stream',
        'cache-control': cache,
        vary: 'accept-encoding',
        ...(gzip ? { 'content-encoding': 'gzip' } : {}),
      },
    })
  }

  const server = Deno.serve({
    port: opts.port,
    hostname: '127.0.0.1',
    onListen() {},
    onError(error) {
      opts.log?.(`dashboard server: ${error instanceof Error ? error.message : error}`)
      return new Response('Internal error', { status: 500 })
    },
  }, async (req) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return new Response('Method not allowed', { status: 405, headers: { allow: 'GET, HEAD' } })
    }
    const { pathname } = new URL(req.url)
    if (pathname === '/config.js') {
      return new Response(configJs, {
        headers: {
          ...headers,
          'content-type': TYPES['.js'],
          'cache-control': 'no-store',
        },
      })
    }
    if (pathname === '/status' || pathname === '/status/') {
      return (await file(req, 'status.html', 'no-cache')) ?? notBuilt()
    }
    // Vite names built assets by content hash: they never change under the same name.
    if (pathname.startsWith('/assets/')) {
      return (await file(req, pathname.slice(1), 'public, max-age=31536000, immutable')) ??
        new Response('Not found', { status: 404 })
    }
    if (pathname !== '/' && extname(pathname) !== '') {
      return (await file(req, decodeURIComponent(pathname.slice(1)), 'no-cache')) ??
        new Response('Not found', { status: 404 })
    }
    // Every other path is the app's (it has one page; a deep link still loads it).
    return (await file(req, 'index.html', 'no-cache')) ?? notBuilt()
  })
  const port = (server.addr as Deno.NetAddr).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stop: async () => {
      await server.shutdown()
    },
  }
}

function notBuilt(): Response {
  return new Response(
    'The dashboard is not built: run `npm start` again, or `npm run build --prefix dashboard`.',
    { status: 503, headers: { 'content-type': 'text/plain; charset=utf-8' } },
  )
}
