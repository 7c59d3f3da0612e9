// The one Postgres client of a function worker, connected straight to the database as Vigil's
// least-privilege role, vigil_agent (VIGIL_DB_URL), never as the tables' owner.
import postgres from 'postgres'

/** The secret holding vigil_agent's connection string. */
export const AGENT_DB_URL = 'VIGIL_DB_URL'

let client: postgres.Sql | undefined

/**
 * A memoized client from VIGIL_DB_URL. prepare: false because Supabase's transaction pooler
 * has no prepared statements; two connections because a worker serves few requests at once.
 */
export function sql(): postgres.Sql {
  if (!client) {
    const url = Deno.env.get(AGENT_DB_URL)
    if (!url) {
      throw new Error(
        `${AGENT_DB_URL} is not set: Vigil connects as vigil_agent (README, "Security model")`,
      )
    }
    client = postgres(url, { max: 2, prepare: false, idle_timeout: 20, connect_timeout: 5 })
  }
  return client
}
