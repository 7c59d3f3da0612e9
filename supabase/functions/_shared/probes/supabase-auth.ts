// Supabase Auth (GoTrue): /health answers, and, when configured, a test user can sign in.
// GoTrue's routes (supabase/auth internal/api/api.go): GET /health → {version, name, description};
// POST /token?grant_type=password {email, password} and ?grant_type=refresh_token {refresh_token}
// → {access_token, refresh_token, …}; POST /logout?scope=local with the user's Bearer token → 204.
import { z } from 'zod'
import type { Finding } from '../../../../shared/findings.ts'
import type { CheckStatus } from '../../../../shared/kinds.ts'
import { SupabaseAuthConfig } from '../../../../shared/probe-configs.ts'
import {
  type Answer,
  down,
  endpoint,
  excerpt,
  judgeLatency,
  missingSecret,
  parseJson,
  send,
} from './support.ts'
import { type Metric, type Probe, type ProbeContext, redact, worst } from './types.ts'

const HealthBody = z.looseObject({ name: z.string().optional(), version: z.string().optional() })
const Session = z.looseObject({ access_token: z.string().min(1), refresh_token: z.string().min(1) })
const MAX_BODY_BYTES = 65_536

export const supabaseAuthProbe: Probe<SupabaseAuthConfig> = {
  kind: 'supabase_auth',
  config: SupabaseAuthConfig,
  async run(config, ctx) {
    const apikey = ctx.secret(config.apikey_secret)
    if (!apikey) return missingSecret(config.apikey_secret)
    const login = config.synthetic_login
    const password = login ? ctx.secret(login.password_secret) : undefined
    if (login && !password) return missingSecret(login.password_secret)
    const secrets: (string | undefined)[] = [apikey, password]
    const base = endpoint(config.url ?? ctx.projectUrl, '/auth/v1')

    const health = await send(ctx, `${base}/health`, {
      headers: { apikey, accept: 'application/json' },
    }, MAX_BODY_BYTES)
    if ('failure' in health) {
      return down(`auth health check failed: ${redact(health.failure, secrets)}`, {}, health.ms)
    }
    const measurements: Record<string, unknown> = {
      health_status_code: health.status,
      latency_ms: health.ms,
    }
    if (health.status !== 200) {
      return down(
        `auth health answered HTTP ${health.status}: ${excerpt(health.text, secrets)}`,
        measurements,
        health.ms,
      )
    }
    const parsed = HealthBody.safeParse(parseJson(health.text))
    if (!parsed.success) {
      return down(
        `auth health: unexpected response (not GoTrue's JSON): ${excerpt(health.text, secrets)}`,
        measurements,
        health.ms,
      )
    }
    if (parsed.data.version) measurements.version = parsed.data.version

    const latency = judgeLatency(health.ms, config, ctx.thresholds)
    Object.assign(measurements, latency.measurements)
    const problems = latency.problem ? [latency.problem] : []
    const metrics: Metric[] = [{
      name: 'http_request_duration',
      value: health.ms,
      labels: { endpoint: 'auth_health' },
    }]
    let status: CheckStatus = latency.status
    const findings: Finding[] = []

    if (login && password) {
      const outcome = await signIn(ctx, base, apikey, login.email, password)
      for (const token of outcome.tokens) secrets.push(token)
      measurements.login_ok = outcome.ok
      if (outcome.loginMs !== undefined) measurements.login_ms = outcome.loginMs
      if (outcome.refreshMs !== undefined) measurements.refresh_ms = outcome.refreshMs
      if (outcome.logoutOk !== undefined) measurements.logout_ok = outcome.logoutOk
      metrics.push({ name: 'login_success_rate', value: outcome.ok ? 100 : 0 })
      if (outcome.loginMs !== undefined) {
        metrics.push({
          name: 'http_request_duration',
          value: outcome.loginMs,
          labels: { endpoint: 'auth_token' },
        })
      }
      if (!outcome.ok) {
        // Auth answers its health check, but users cannot sign in.
        const reason = redact(outcome.error ?? 'sign-in failed', secrets)
        measurements.login_error = reason
        problems.push(`synthetic sign-in failed: ${reason}`)
        status = worst(status, 'degraded')
        findings.push({ kind: 'login_failed', status: 'degraded', evidence: { reason } })
      }
    }

    return {
      status,
      responseMs: health.ms,
      measurements,
      metrics,
      findings,
      ...(status === 'healthy' ? {} : { error: redact(problems.join('; '), secrets) }),
    }
  },
}

interface SignInOutcome {
  ok: boolean
  error?: string
  loginMs?: number
  refreshMs?: number
  logoutOk?: boolean
  /** Tokens GoTrue handed out: redacted from everything this probe reports. */
  tokens: string[]
}

/** Password grant, then refresh-token grant, then sign-out so the sessions do not pile up. */
async function signIn(
  ctx: ProbeContext,
  base: string,
  apikey: string,
  email: string,
  password: string,
): Promise<SignInOutcome> {
  const tokens: string[] = []
  const post = (path: string, body: unknown) =>
    send(ctx, `${base}${path}`, {
      method: 'POST',
      headers: { apikey, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
    }, MAX_BODY_BYTES)

  const first = await post('/token?grant_type=password', { email, password })
  if ('failure' in first) {
    return { ok: false, error: `token request failed: ${first.failure}`, tokens }
  }
  const signedIn = readSession(first)
  if (!('session' in signedIn)) {
    return { ok: false, error: signedIn.error, loginMs: first.ms, tokens }
  }
  const session = signedIn.session
  tokens.push(session.access_token, session.refresh_token)

  const second = await post('/token?grant_type=refresh_token', {
    refresh_token: session.refresh_token,
  })
  if ('failure' in second) {
    return {
      ok: false,
      error: `token refresh failed: ${second.failure}`,
      loginMs: first.ms,
      tokens,
    }
  }
  const renewed = readSession(second)
  if (!('session' in renewed)) {
    return {
      ok: false,
      error: `token refresh: ${renewed.error}`,
      loginMs: first.ms,
      refreshMs: second.ms,
      tokens,
    }
  }
  const refreshed = renewed.session
  tokens.push(refreshed.access_token, refreshed.refresh_token)

  const out = await send(ctx, `${base}/logout?scope=local`, {
    method: 'POST',
    headers: { apikey, authorization: `Bearer ${refreshed.access_token}` },
  }, MAX_BODY_BYTES)
  const logoutOk = !('failure' in out) && out.status >= 200 && out.status < 300
  return { ok: true, loginMs: first.ms, refreshMs: second.ms, logoutOk, tokens }
}

function readSession(answer: Answer): { session: z.infer<typeof Session> } | { error: string } {
  if (answer.status !== 200) return { error: gotrueError(answer.status, answer.text) }
  const session = Session.safeParse(parseJson(answer.text))
  return session.success
    ? { session: session.data }
    : { error: 'HTTP 200 without an access_token and refresh_token' }
}

/**
 * GoTrue's error bodies: {code, error_code, msg} (default), {code, message} (API version
 * 2024-01-01) and the OAuth shape {error, error_description}.
 */
function gotrueError(status: number, text: string): string {
  const body = parseJson(text)
  if (!body || typeof body !== 'object') return `HTTP ${status}: ${excerpt(text, [])}`
  const b = body as Record<string, unknown>
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined)
  const message = str(b.msg) ?? str(b.message) ?? str(b.error_description) ?? str(b.error)
  const code = str(b.error_code) ?? str(b.code) ??
    (str(b.error_description) ? str(b.error) : undefined)
  return `HTTP ${status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`
}
