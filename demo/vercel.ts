// A stand-in for Vercel's API for the demo's one project, speaking what heal/providers/vercel.ts
// and a deploy hook send (vercel.com/docs/rest-api), Bearer token checked:
//   GET  /v6/deployments?projectId=…&target=production&state=READY&limit=…
//        → {deployments: [{uid, name, url, created, state, readyState, target, isRollbackCandidate,
//           meta: {version}}], pagination}
//   POST /v1/projects/{idOrName}/rollback/{deploymentId}?description=…  → 201; production serves
//        that deployment's version again
//   POST /v1/integrations/deploy/{projectId}/{hookId}  (a deploy hook: the secret is the URL, no
//        token) → 201 {job: {id, state, createdAt}}; builds the source version as a new production
//        deployment, READY, or ERROR while a fault says so
// Errors are {error: {code, message}}. Its faults: POST /_chaos (Bearer control token)
// {"source_version": "v2"} (what the next build deploys: a commit pushed), {"fail_deploys": n}
// (the next n builds end in ERROR), {"clear": true}; GET /_chaos shows them. GET /_recorded lists
// the API requests (never a token). Production changes reach the app through `onProduction`.
// State lives in memory. Dev tooling only: never deployed.
import { z } from 'zod'
import { Version } from './faults.ts'
import { bearer, describeIssues, json, randomHex, readObject, sameToken } from './http.ts'

export interface VercelOptions {
  /** 0: a free port. */
  port: number
  hostname?: string
  projectId: string
  projectName: string
  token: string
  /** The deploy hook's secret part of the URL. */
  hookId: string
  controlToken: string
  /** The version production serves at start, as the first deployment. */
  version: string
  /** Puts a version live (the app serves it, the CDN drops what it cached, as Vercel's does). */
  onProduction: (version: string) => Promise<void>
  log?: (line: string) => void
}

export interface Deployment {
  uid: string
  name: string
  url: string
  created: number
  createdAt: number
  buildingAt: number
  ready: number
  state: 'READY' | 'ERROR'
  readyState: 'READY' | 'ERROR'
  target: 'production'
  isRollbackCandidate: boolean
  projectId: string
  meta: { version: string }
  creator: { uid: string; username: string }
  /** A failed build's reason, as Vercel reports it. */
  errorCode?: string
  errorMessage?: string
}

export interface VercelRecord {
  at: Date
  method: string
  path: string
  query: Record<string, string>
  /** Whether the request carried the right token (the token itself is never kept). */
  authorized: boolean
  status: number
}

export interface Vercel {
  url: string
  port: number
  projectId: string
  /** The deploy hook's URL: a secret (VIGIL_DEMO_DEPLOY_HOOK_URL). */
  deployHookUrl: string
  deployments(): Deployment[]
  production(): Deployment
  requests(): VercelRecord[]
  stop(): Promise<void>
}

const ChaosBody = z.strictObject({
  source_version: Version.optional(),
  fail_deploys: z.number({ error: 'must be a whole number from 0 to 100' }).int(
    'must be a whole number from 0 to 100',
  ).min(0, 'must be from 0 to 100').max(100, 'must be from 0 to 100').optional(),
  clear: z.literal(true, { error: 'must be true' }).optional(),
}).refine((b) => Object.keys(b).length > 0, {
  message: 'name at least one of source_version, fail_deploys, clear',
})

const MAX_RECORDED = 1_000
const vercelError = (status: number, code: string, message: string) =>
  json({ error: { code, message } }, status)

export async function startVercel(options: VercelOptions): Promise<Vercel> {
  const log = options.log ?? (() => {})
  const deployments: Deployment[] = []
  const recorded: VercelRecord[] = []
  let sourceVersion = options.version
  let failDeploys = 0
  let clock = 0

  const build = (version: string, state: 'READY' | 'ERROR'): Deployment => {
    // Strictly increasing, so "the newest" is never a tie.
    const now = Math.max(Date.now(), clock + 1)
    clock = now
    const id = randomHex(12)
    const d: Deployment = {
      uid: `dpl_${id}`,
      name: options.projectName,
      url: `${options.projectName}-${id.slice(0, 9)}.vercel.app`,
      created: now,
      createdAt: now,
      buildingAt: now,
      ready: now,
      state,
      readyState: state,
      target: 'production',
      isRollbackCandidate: state === 'READY',
      projectId: options.projectId,
      meta: { version },
      creator: { uid: 'demo', username: 'vigil-demo' },
      ...(state === 'ERROR'
        ? { errorCode: 'BUILD_FAILED', errorMessage: 'Command "npm run build" exited with 1' }
        : {}),
    }
    deployments.push(d)
    return d
  }
  let production = build(options.version, 'READY')

  const isProject = (idOrName: string | null) =>
    idOrName === options.projectId || idOrName === options.projectName

  const list = (url: URL): Response => {
    if (!isProject(url.searchParams.get('projectId'))) {
      return vercelError(404, 'not_found', 'Project not found')
    }
    const target = url.searchParams.get('target')
    const states = url.searchParams.get('state')?.split(',').map((s) => s.trim().toUpperCase())
    const rawLimit = url.searchParams.get('limit')
    const limit = rawLimit === null ? 20 : Number(rawLimit)
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      return vercelError(400, 'bad_request', 'Invalid query parameter `limit`: must be 1 to 100')
    }
    const found = deployments
      .filter((d) => !target || d.target === target)
      .filter((d) => !states || states.includes(d.state))
      .sort((a, b) => b.created - a.created)
    const page = found.slice(0, limit)
    return json({
      deployments: page,
      pagination: {
        count: page.length,
        next: found.length > limit ? page[page.length - 1].created : null,
        prev: null,
      },
    })
  }

  const rollback = async (idOrName: string, deploymentId: string): Promise<Response> => {
    if (!isProject(idOrName)) return vercelError(404, 'not_found', 'Project not found')
    const to = deployments.find((d) => d.uid === deploymentId)
    if (!to) return vercelError(404, 'not_found', 'Deployment not found')
    if (to.state !== 'READY' || to.target !== 'production') {
      return vercelError(
        400,
        'bad_request',
        `Deployment ${deploymentId} cannot be rolled back to: it is not a ready production deployment`,
      )
    }
    await options.onProduction(to.meta.version)
    production = to
    log(`rolled back to ${to.uid} (${to.meta.version})`)
    return new Response(null, { status: 201 })
  }

  const hook = async (projectId: string, hookId: string): Promise<Response> => {
    if (!isProject(projectId) || !sameToken(hookId, options.hookId)) {
      return vercelError(404, 'not_found', 'Deploy hook not found')
    }
    const failing = failDeploys > 0
    if (failing) failDeploys--
    const d = build(sourceVersion, failing ? 'ERROR' : 'READY')
    if (!failing) {
      await options.onProduction(d.meta.version)
      production = d
    }
    log(`deploy hook built ${d.uid} (${d.meta.version}): ${d.state}`)
    return json({ job: { id: randomHex(10), state: 'PENDING', createdAt: d.created } }, 201)
  }

  const chaos = async (request: Request): Promise<Response> => {
    if (!sameToken(bearer(request), options.controlToken)) {
      return json({ error: 'authorization: a Bearer control token is required' }, 401)
    }
    const state = () => ({
      source_version: sourceVersion,
      fail_deploys: failDeploys,
      production: { uid: production.uid, version: production.meta.version },
    })
    if (request.method === 'GET') return json(state())
    if (request.method !== 'POST') return json({ error: 'method: must be GET or POST' }, 405)
    const body = await readObject(request)
    if (!body.ok) return json({ error: body.error }, 400)
    const parsed = ChaosBody.safeParse(body.value)
    if (!parsed.success) return json({ error: describeIssues(parsed.error) }, 400)
    if (parsed.data.clear) {
      failDeploys = 0
      sourceVersion = production.meta.version
    }
    if (parsed.data.source_version !== undefined) sourceVersion = parsed.data.source_version
    if (parsed.data.fail_deploys !== undefined) failDeploys = parsed.data.fail_deploys
    return json(state())
  }

  const api = async (request: Request, url: URL): Promise<Response> => {
    const path = url.pathname
    const hookMatch = /^\/v1\/integrations\/deploy\/([^/]+)\/([^/]+)$/.exec(path)
    if (hookMatch) {
      if (request.method !== 'POST' && request.method !== 'GET') {
        return vercelError(405, 'method_not_allowed', 'Method not allowed')
      }
      return await hook(decodeURIComponent(hookMatch[1]), decodeURIComponent(hookMatch[2]))
    }
    if (!sameToken(bearer(request), options.token)) {
      return vercelError(
        403,
        'forbidden',
        bearer(request) ? 'Not authorized' : 'The request is missing an authentication token',
      )
    }
    if (path === '/v6/deployments' && request.method === 'GET') return list(url)
    const rollbackMatch = /^\/v1\/projects\/([^/]+)\/rollback\/([^/]+)$/.exec(path)
    if (rollbackMatch && request.method === 'POST') {
      return await rollback(
        decodeURIComponent(rollbackMatch[1]),
        decodeURIComponent(rollbackMatch[2]),
      )
    }
    return vercelError(404, 'not_found', `The requested path ${path} was not found`)
  }

  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url)
    if (url.pathname === '/_chaos') return await chaos(request)
    if (url.pathname === '/_recorded' && request.method === 'GET') return json(recorded)
    let response: Response
    try {
      response = await api(request, url)
    } catch (error) {
      response = vercelError(
        500,
        'internal_server_error',
        `production could not be changed: ${error instanceof Error ? error.message : error}`,
      )
    }
    const query = Object.fromEntries(url.searchParams)
    recorded.push({
      at: new Date(),
      method: request.method,
      // The deploy hook's id is its secret: never kept.
      path: url.pathname.replace(/^(\/v1\/integrations\/deploy\/[^/]+\/).+$/, '$1…'),
      query,
      authorized: sameToken(bearer(request), options.token),
      status: response.status,
    })
    if (recorded.length > MAX_RECORDED) recorded.splice(0, recorded.length - MAX_RECORDED)
    return response
  }

  const hostname = options.hostname ?? '127.0.0.1'
  const listening = Promise.withResolvers<void>()
  const server = Deno.serve({
    hostname,
    port: options.port,
    onListen: () => listening.resolve(),
  }, handle)
  await listening.promise
  const url = `http://${hostname}:${server.addr.port}`
  return {
    url,
    port: server.addr.port,
    projectId: options.projectId,
    deployHookUrl: `${url}/v1/integrations/deploy/${options.projectId}/${options.hookId}`,
    deployments: () => [...deployments],
    production: () => production,
    requests: () => [...recorded],
    stop: () => server.shutdown(),
  }
}
