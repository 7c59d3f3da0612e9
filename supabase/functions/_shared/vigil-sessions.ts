// Which database sessions are Vigil's own: recognised by their role, never by the application
// name a client chooses (a session may call itself 'vigil-x' and gains nothing by it). Vigil's
// functions log in as vigil_agent; the name 'vigil-*' they give their sessions is for people.
import type postgres from 'postgres'

/** The role Vigil's functions log in as (VIGIL_DB_URL). */
export const AGENT_ROLE = 'vigil_agent'

/**
 * SQL, true when the session (`usename`, `application_name` columns) is Vigil's: any session of
 * the agent's role; on a target Vigil reaches through a service's connection_secret, a session of
 * the role that secret logs in as AND named vigil-* (that role may be the application's own, whose
 * other sessions stay watched and healable). A superuser's sessions are never taken for Vigil's:
 * they are protected for that reason already, and must stay in sight.
 */
export function vigilRole(sql: postgres.Sql<any>, usename: string, applicationName: string) {
  for (const column of [usename, applicationName]) {
    if (!/^[a-z_][a-z0-9_.]*$/.test(column)) throw new Error(`not a column reference: ${column}`)
  }
  const role = `coalesce(${usename}::text, '')`
  return sql.unsafe(`(${role} = '${AGENT_ROLE}' or (${role} = session_user
    and coalesce(${applicationName}, '') like 'vigil-%'
    and not coalesce((select r.rolsuper from pg_catalog.pg_roles r where r.rolname = session_user), false)))`)
}
