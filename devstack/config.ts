// Constants and paths of the Docker-free local stack. Dev tooling only: never deployed.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '')
export const STATE_DIR = join(ROOT, '.vigil')
export const SUPABASE_DIR = join(ROOT, 'supabase')
export const FUNCTIONS_DIR = join(SUPABASE_DIR, 'functions')
export const CONFIG_TOML = join(SUPABASE_DIR, 'config.toml')
/** The dashboard's static build (`npm run build` in dashboard/; preflight makes it when stale). */
export const DASHBOARD_DIST = join(ROOT, 'dashboard', 'dist')

/** Same ports as `supabase start`, so configs are interchangeable. */
export const DEFAULT_DB_PORT = 54322
export const DEFAULT_API_PORT = 54321
/** Where alerts land locally (Supabase's local mail catcher, Inbucket, uses the same port). */
export const DEFAULT_PROVIDERS_PORT = 54324
/** The dashboard, where `supabase start` serves Studio. */
export const DEFAULT_DASHBOARD_PORT = 54323
/**
 * The demo target (demo/): its app, CDN edge, process supervisor, Vercel stand-in and the edge's
 * HTTPS listener, just past
 * the ports `supabase start` uses.
 */
export const DEFAULT_DEMO_PORTS = {
  app: 54330,
  edge: 54331,
  supervisor: 54332,
  vercel: 54333,
  tls: 54334,
}

/** Supabase's well-known local JWT secret; the keys signed with it match `supabase start`'s. */
export const LOCAL_JWT_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long'

export const DB_USER = 'postgres'
export const DB_PASSWORD = 'postgres'
export const DB_NAME = 'postgres'

export function dbUrl(port: number, host = '127.0.0.1'): string {
  return `postgresql://${DB_USER}:${DB_PASSWORD}@${host}:${port}/${DB_NAME}`
}

/**
 * The role PostgREST logs in as (devstack/bootstrap.sql creates it): it may only switch to anon,
 * authenticated and service_role, so the REST stand-in never holds the owner's rights.
 */
export const AUTHENTICATOR_USER = 'authenticator'
export const LOCAL_AUTHENTICATOR_PASSWORD = 'postgres'

/** The same server and database as `url`, logged in as another role. */
export function urlAs(url: string, user: string, password: string): string {
  const parsed = new URL(url)
  parsed.username = encodeURIComponent(user)
  parsed.password = encodeURIComponent(password)
  return parsed.toString()
}

/** The role Vigil's functions log in as: a migration creates it, the local stack lets it log in. */
export const AGENT_DB_USER = 'vigil_agent'
export const LOCAL_AGENT_PASSWORD = 'local-agent-password-for-development-only'

/** Signs heal approval links locally; a real project sets its own with `supabase secrets set`. */
export const LOCAL_APPROVAL_SECRET = 'local-approval-secret-for-development-only'

/** Keys the heal audit's anchors locally; a real project sets its own, kept outside the database. */
export const LOCAL_AUDIT_SECRET = 'local-audit-secret-for-development-only'

/** The token Prometheus scrapes /functions/v1/metrics with on the local stack. */
export const LOCAL_METRICS_TOKEN = 'local-metrics-token-for-development-only'

/** A development account of the local Auth stand-in (devstack/auth.ts); never exists on Supabase. */
export interface DevUser {
  id: string
  email: string
  password: string
  /** Copied into the JWT's app_metadata; role 'devops' makes an operator (vigil.is_operator()). */
  appRole?: string
}

/** The local operator: signs in to the dashboard and may switch the kill switch and dry run. */
export const DEV_OPERATOR: DevUser = {
  id: '00000000-0000-4000-8000-00000000d0e5',
  email: 'operator@vigil.local',
  password: 'local-operator-password-for-development-only',
  appRole: 'devops',
}

/** A signed-in user who is not an operator: RLS shows them nothing but the public status. */
export const DEV_VIEWER: DevUser = {
  id: '00000000-0000-4000-8000-00000000f1e3',
  email: 'viewer@vigil.local',
  password: 'local-viewer-password-for-development-only',
}

export const DEV_USERS: readonly DevUser[] = [DEV_OPERATOR, DEV_VIEWER]
