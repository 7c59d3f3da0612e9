import { createClient, type SupabaseClient } from '@supabase/supabase-js'
import type { VigilConfig } from '../config'

// No generated Database types: rows are typed by src/types.ts at the api boundary.
export type VigilClient = SupabaseClient<any, 'vigil', 'vigil'>

/** The one client: PostgREST, GoTrue and Realtime on Supabase or on the local stand-ins alike. */
export function createVigilClient(config: VigilConfig): VigilClient {
  return createClient(config.supabaseUrl, config.anonKey, {
    db: { schema: 'vigil' },
    auth: { persistSession: true, autoRefreshToken: true },
  }) as VigilClient
}
