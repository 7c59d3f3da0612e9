import { describe, expect, it } from 'vitest'
import { readConfig } from './config'

describe('runtime config', () => {
  it('prefers window.__VIGIL__ over the build variables', () => {
    const r = readConfig(
      { supabaseUrl: 'https://abc.supabase.co/', anonKey: 'k1', devOperator: { email: 'ops@vigil.local', password: 'pw' } },
      { VITE_SUPABASE_URL: 'http://other', VITE_SUPABASE_ANON_KEY: 'k2' },
    )
    expect(r).toEqual({ ok: true, config: { supabaseUrl: 'https://abc.supabase.co', anonKey: 'k1', devOperator: { email: 'ops@vigil.local', password: 'pw' } } })
  })
  it('falls back to VITE_ variables', () => {
    expect(readConfig(undefined, { VITE_SUPABASE_URL: 'http://127.0.0.1:54321', VITE_SUPABASE_ANON_KEY: 'k' })).toEqual({
      ok: true,
      config: { supabaseUrl: 'http://127.0.0.1:54321', anonKey: 'k' },
    })
  })
  it('names everything missing', () => {
    const r = readConfig({ devOperator: { email: 'x' } }, {})
    expect(r).toEqual({ ok: false, missing: ['supabaseUrl (or VITE_SUPABASE_URL)', 'anonKey (or VITE_SUPABASE_ANON_KEY)'] })
  })
})
