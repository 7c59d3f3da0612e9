// A GoTrue (Supabase Auth) stand-in at /auth/v1: the few endpoints supabase-js needs to sign the
// local development accounts in and out (password grant, refresh, user, logout, settings).
// Sessions live in memory. Dev tooling only: never deployed.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'
import type { DevUser } from './config.ts'
import { JwtError, type JwtPayload, signJwt, verifyJwt } from './jwt.ts'

export const AUTH_PREFIX = '/auth/v1'
/** GoTrue's API version; from it on, error bodies are {code, message} (see auth-js handleError). */
const API_VERSION = '2024-01-01'
const API_VERSION_HEADER = 'x-supabase-api-version'
/** Bounds memory: the oldest session goes when a new one would exceed it. */
const MAX_SESSIONS = 1000

export interface AuthOptions {
  /** The stack's API URL; tokens name `<apiUrl>/auth/v1` as their issuer. */
  apiUrl: string
  jwtSecret: string
  users: readonly DevUser[]
  /** Access-token lifetime in seconds (config.toml [auth] jwt_expiry); default 3600. */
  jwtExpirySeconds?: number
}

export interface AuthHandler {
  /** Answers a request whose path starts with /auth/v1. */
  handle(request: Request): Promise<Response>
}

interface Session {
  id: string
  userId: string
  createdAt: Date
  /** The one refresh token that may still be used; the ones used before are in `spent`. */
  refreshToken: string
  spent: Set<string>
}

class AuthError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message)
  }
}

const PasswordGrant = z.object({ email: z.string(), password: z.string() })
const RefreshGrant = z.object({ refresh_token: z.string().min(1) })

export function createAuth(options: AuthOptions): AuthHandler {
  return new AuthStandIn(options)
}

class AuthStandIn implements AuthHandler {
  readonly #sessions = new Map<string, Session>()
  /** Every refresh token ever issued (current or spent) → its session id. */
  readonly #tokens = new Map<string, string>()
  readonly #expiry: number
  readonly #issuer: string
  readonly #users: readonly DevUser[]
  readonly #startedAt = new Date()
  readonly #lastSignIn = new Map<string, Date>()

  constructor(private readonly options: AuthOptions) {
    this.#expiry = options.jwtExpirySeconds ?? 3600
    if (!Number.isInteger(this.#expiry) || this.#expiry < 1) {
      throw new Error(`jwtExpirySeconds must be a positive integer, got ${this.#expiry}`)
    }
    this.#issuer = `${options.apiUrl}${AUTH_PREFIX}`
    this.#users = options.users
  }

  async handle(request: Request): Promise<Response> {
    const versioned = (request.headers.get(API_VERSION_HEADER) ?? '') >= API_VERSION
    try {
      const denied = await this.#checkApiKey(request)
      if (denied) return denied
      const url = new URL(request.url)
      const path = url.pathname.slice(AUTH_PREFIX.length).replace(/\/+$/, '')
      const route = `${request.method} ${path}`
      switch (route) {
        case 'POST /token':
          return reply(await this.#token(url.searchParams.get('grant_type'), request))
        case 'GET /user':
          return reply(this.#userObject(await this.#caller(request)))
        case 'POST /logout':
          this.#logout(await this.#caller(request), url.searchParams.get('scope') ?? 'global')
          return new Response(null, { status: 204, headers: versionHeaders() })
        case 'GET /settings':
          return reply(settings())
        case 'GET /health':
          return reply({ version: 'vigil-local', name: 'GoTrue', description: 'local stand-in' })
        default:
          throw new AuthError(404, 'not_found', `${route} is not served by the local Auth stand-in`)
      }
    } catch (error) {
      if (error instanceof AuthError) return authError(error, versioned)
      throw error
    }
  }

  /** Supabase's API gateway refuses any /auth/v1 call without a project key in `apikey`. */
  async #checkApiKey(request: Request): Promise<Response | null> {
    const key = request.headers.get('apikey')
    if (!key) {
      return reply({
        message: 'No API key found in request',
        hint: 'No `apikey` request header or url param was found.',
      }, 401)
    }
    try {
      const claims = await verifyJwt(key, this.options.jwtSecret)
      if (claims.role === 'anon' || claims.role === 'service_role') return null
    } catch {
      // Answered below, like any key that is not the project's.
    }
    return reply({
      message: 'Invalid API key',
      hint: 'Double check your Supabase `anon` or `service_role` API key.',
    }, 401)
  }

  async #token(grantType: string | null, request: Request): Promise<Record<string, unknown>> {
    const body = await readJson(request)
    if (grantType === 'password') {
      const parsed = PasswordGrant.safeParse(body)
      if (!parsed.success) {
        throw new AuthError(400, 'validation_failed', 'email and password are required strings')
      }
      const user = this.#checkPassword(parsed.data.email, parsed.data.password)
      if (!user) throw new AuthError(400, 'invalid_credentials', 'Invalid login credentials')
      return await this.#issue(user, this.#newSession(user))
    }
    if (grantType === 'refresh_token') {
      const parsed = RefreshGrant.safeParse(body)
      if (!parsed.success) {
        throw new AuthError(400, 'validation_failed', 'refresh_token is required (a string)')
      }
      return await this.#refresh(parsed.data.refresh_token)
    }
    throw new AuthError(
      400,
      'unsupported_grant_type',
      `grant_type ${
        JSON.stringify(grantType)
      } is not supported locally: use password or refresh_token`,
    )
  }

  /** The user, or null; every account's password is compared whatever the email, in constant time. */
  #checkPassword(email: string, password: string): DevUser | null {
    const wanted = email.trim().toLowerCase()
    let found: DevUser | null = null
    for (const user of this.#users) {
      const passwordMatches = sameSecret(password, user.password)
      if (user.email.toLowerCase() === wanted && passwordMatches) found = user
    }
    return found
  }

  #newSession(user: DevUser): Session {
    if (this.#sessions.size >= MAX_SESSIONS) {
      const oldest = this.#sessions.values().next().value
      if (oldest) this.#revoke(oldest)
    }
    const session: Session = {
      id: crypto.randomUUID(),
      userId: user.id,
      createdAt: new Date(),
      refreshToken: '',
      spent: new Set(),
    }
    this.#sessions.set(session.id, session)
    this.#lastSignIn.set(user.id, session.createdAt)
    return session
  }

  /**
   * Single use: the token is spent and a new one issued. Presenting a spent token again ends the
   * session (GoTrue's reuse detection), since someone else may hold a copy.
   */
  async #refresh(token: string): Promise<Record<string, unknown>> {
    const session = this.#sessions.get(this.#tokens.get(token) ?? '')
    if (!session) {
      throw new AuthError(
        400,
        'refresh_token_not_found',
        'Invalid Refresh Token: Refresh Token Not Found',
      )
    }
    if (session.refreshToken !== token) {
      this.#revoke(session)
      throw new AuthError(400, 'refresh_token_already_used', 'Invalid Refresh Token: Already Used')
    }
    const user = this.#users.find((u) => u.id === session.userId)
    if (!user) {
      this.#revoke(session)
      throw new AuthError(400, 'user_not_found', 'User from the refresh token no longer exists')
    }
    session.spent.add(token)
    return await this.#issue(user, session)
  }

  async #issue(user: DevUser, session: Session): Promise<Record<string, unknown>> {
    const refreshToken = randomBytes(32).toString('base64url')
    session.refreshToken = refreshToken
    this.#tokens.set(refreshToken, session.id)
    const iat = Math.floor(Date.now() / 1000)
    const exp = iat + this.#expiry
    const claims: JwtPayload = {
      aud: 'authenticated',
      exp,
      iat,
      iss: this.#issuer,
      sub: user.id,
      email: user.email,
      phone: '',
      app_metadata: appMetadata(user),
      user_metadata: {},
      role: 'authenticated',
      aal: 'aal1',
      amr: [{ method: 'password', timestamp: Math.floor(session.createdAt.getTime() / 1000) }],
      session_id: session.id,
      is_anonymous: false,
    }
    return {
      access_token: await signJwt(claims, this.options.jwtSecret),
      token_type: 'bearer',
      expires_in: this.#expiry,
      expires_at: exp,
      refresh_token: refreshToken,
      user: this.#userObject(user),
    }
  }

  /** The user of a valid access token whose session is still open, as GoTrue checks it. */
  async #caller(request: Request): Promise<DevUser & { sessionId: string }> {
    const token = /^Bearer\s+(\S+)$/i.exec(request.headers.get('authorization') ?? '')?.[1]
    if (!token) {
      throw new AuthError(401, 'no_authorization', 'This endpoint requires a valid Bearer token')
    }
    let claims: JwtPayload
    try {
      claims = await verifyJwt(token, this.options.jwtSecret)
    } catch (error) {
      const why = error instanceof JwtError ? error.message : 'unreadable token'
      // 401 as older GoTrue answers (newer ones say 403); auth-js treats both alike.
      throw new AuthError(
        401,
        'bad_jwt',
        `invalid JWT: unable to parse or verify signature, ${why}`,
      )
    }
    const user = this.#users.find((u) => u.id === claims.sub)
    if (!user || claims.role !== 'authenticated') {
      throw new AuthError(403, 'user_not_found', 'User from sub claim in JWT does not exist')
    }
    const sessionId = typeof claims.session_id === 'string' ? claims.session_id : ''
    if (!this.#sessions.has(sessionId)) {
      throw new AuthError(
        403,
        'session_not_found',
        'Session from session_id claim in JWT does not exist',
      )
    }
    return { ...user, sessionId }
  }

  #logout(caller: DevUser & { sessionId: string }, scope: string): void {
    if (!['global', 'local', 'others'].includes(scope)) {
      throw new AuthError(400, 'validation_failed', 'scope must be one of global, local, others')
    }
    for (const session of [...this.#sessions.values()]) {
      if (session.userId !== caller.id) continue
      const isCurrent = session.id === caller.sessionId
      if (scope === 'global' || (scope === 'local') === isCurrent) this.#revoke(session)
    }
  }

  #revoke(session: Session): void {
    this.#sessions.delete(session.id)
    this.#tokens.delete(session.refreshToken)
    for (const token of session.spent) this.#tokens.delete(token)
  }

  #userObject(user: DevUser): Record<string, unknown> {
    const created = this.#startedAt.toISOString()
    return {
      id: user.id,
      aud: 'authenticated',
      role: 'authenticated',
      email: user.email,
      email_confirmed_at: created,
      phone: '',
      confirmed_at: created,
      last_sign_in_at: this.#lastSignIn.get(user.id)?.toISOString() ?? null,
      app_metadata: appMetadata(user),
      user_metadata: {},
      identities: [],
      created_at: created,
      updated_at: created,
      is_anonymous: false,
    }
  }
}

function appMetadata(user: DevUser): Record<string, unknown> {
  return {
    provider: 'email',
    providers: ['email'],
    ...(user.appRole ? { role: user.appRole } : {}),
  }
}

function settings(): Record<string, unknown> {
  return {
    external: { email: true, phone: false, anonymous_users: false },
    disable_signup: true,
    mailer_autoconfirm: true,
    phone_autoconfirm: false,
    sms_provider: '',
    saml_enabled: false,
  }
}

/** Equal-length digests, so neither the content nor the length of the password leaks by timing. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(given), digest(expected))
}

async function readJson(request: Request): Promise<unknown> {
  try {
    return await request.json()
  } catch {
    throw new AuthError(400, 'bad_json', 'Could not parse request body as JSON')
  }
}

function versionHeaders(): Headers {
  return new Headers({ [API_VERSION_HEADER]: API_VERSION })
}

function reply(body: unknown, status = 200): Response {
  const headers = versionHeaders()
  headers.set('content-type', 'application/json; charset=utf-8')
  return new Response(JSON.stringify(body), { status, headers })
}

/** GoTrue's two error shapes: {code, message} for API version 2024-01-01 clients, else the legacy one. */
function authError(error: AuthError, versioned: boolean): Response {
  const body = versioned
    ? { code: error.code, message: error.message }
    : { code: error.status, error_code: error.code, msg: error.message }
  return reply(body, error.status)
}
