// The one Postgres client of a function worker, connected straight to the database.
import postgres from 'postgres'

let client: postgres.Sql | undefined

/**
 * A memoized client from SUPABASE_DB_URL. prepare: false because Supabase's transaction pooler
 * has no prepared statements; two connections because a worker serves few requests at once.
 */
export function sql(): postgres.Sql {
  if (!client) {
    const url = Deno.env.get('SUPABASE_DB_URL')
    if (!url) throw new Error('SUPABASE_DB_URL is not set')
    client = postgres(url, { max: 2, prepare: false, idle_timeout: 20, connect_timeout: 5 })
  }
  return client
}
