// Runtime configuration: window.__VIGIL__ (set by /config.js, served by the host) wins, then the
// build-time VITE_ variables. One build serves any host.

export interface DevOperator {
  email: string
  password: string
}

export interface VigilConfig {
  supabaseUrl: string
  anonKey: string
  devOperator?: DevOperator
}

export type ConfigResult = { ok: true; config: VigilConfig } | { ok: false; missing: string[] }

interface RawConfig {
  supabaseUrl?: unknown
  anonKey?: unknown
  devOperator?: unknown
}

declare global {
  interface Window {
    __VIGIL__?: RawConfig
  }
}

const str = (v: unknown): string => (typeof v === 'string' ? v.trim() : '')

export function readConfig(
  runtime: RawConfig | undefined,
  env: { VITE_SUPABASE_URL?: string; VITE_SUPABASE_ANON_KEY?: string },
): ConfigResult {
  const supabaseUrl = (str(runtime?.supabaseUrl) || str(env.VITE_SUPABASE_URL)).replace(/\/+$/, '')
  const anonKey = str(runtime?.anonKey) || str(env.VITE_SUPABASE_ANON_KEY)
  const missing: string[] = []
  if (!/^https?:\/\/./.test(supabaseUrl)) missing.push('supabaseUrl (or VITE_SUPABASE_URL)')
  if (!anonKey) missing.push('anonKey (or VITE_SUPABASE_ANON_KEY)')
  if (missing.length) return { ok: false, missing }
  const dev = runtime?.devOperator as { email?: unknown; password?: unknown } | undefined
  const devOperator =
    dev && str(dev.email) && typeof dev.password === 'string'
      ? { email: str(dev.email), password: dev.password }
      : undefined
  return { ok: true, config: { supabaseUrl, anonKey, ...(devOperator ? { devOperator } : {}) } }
}

export function loadConfig(): ConfigResult {
  return readConfig(typeof window === 'undefined' ? undefined : window.__VIGIL__, {
    VITE_SUPABASE_URL: import.meta.env.VITE_SUPABASE_URL as string | undefined,
    VITE_SUPABASE_ANON_KEY: import.meta.env.VITE_SUPABASE_ANON_KEY as string | undefined,
  })
}
