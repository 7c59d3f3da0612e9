// Constants and paths of the Docker-free local stack. Dev tooling only: never deployed.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '')
export const STATE_DIR = join(ROOT, '.vigil')
export const SUPABASE_DIR = join(ROOT, 'supabase')
export const FUNCTIONS_DIR = join(SUPABASE_DIR, 'functions')
export const CONFIG_TOML = join(SUPABASE_DIR, 'config.toml')

/** Same ports as `supabase start`, so configs are interchangeable. */
export const DEFAULT_DB_PORT = 54322
export const DEFAULT_API_PORT = 54321
/** Where alerts land locally (Supabase's local mail catcher, Inbucket, uses the same port). */
export const DEFAULT_PROVIDERS_PORT = 54324

/** Supabase's well-known local JWT secret; the keys signed with it match `supabase start`'s. */
export const LOCAL_JWT_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long'

export const DB_USER = 'postgres'
export const DB_PASSWORD = 'postgres'
export const DB_NAME = 'postgres'

export function dbUrl(port: number, host = '127.0.0.1'): string {
  return `postgresql://${DB_USER}:${DB_PASSWORD}@${host}:${port}/${DB_NAME}`
}

/** The role Vigil's functions log in as: a migration creates it, the local stack lets it log in. */
export const AGENT_DB_USER = 'vigil_agent'
export const LOCAL_AGENT_PASSWORD = 'local-agent-password-for-development-only'

/** Signs heal approval links locally; a real project sets its own with `supabase secrets set`. */
export const LOCAL_APPROVAL_SECRET = 'local-approval-secret-for-development-only'

/** Keys the heal audit's anchors locally; a real project sets its own, kept outside the database. */
export const LOCAL_AUDIT_SECRET = 'local-audit-secret-for-development-only'
