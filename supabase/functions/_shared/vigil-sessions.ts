// Which database sessions are Vigil's own: recognised by their role, never by the application
// name a client chooses (a session may call itself 'vigil-x' and gains nothing by it). Vigil's
// functions log in as vigil_agent; the name 'vigil-*' they give their sessions is for people.
import type postgres from 'postgres'

/** The role Vigil's functions log in as (VIGIL_DB_URL). */
export const AGENT_ROLE = 'vigil_agent'

/**
 * SQL, true when the role named by the column `usename` is Vigil's: the agent, or the role this
 * connection logged in as unless that is a superuser (a superuser's sessions are protected for
 * that reason already, and must stay in sight).
 */
export function vigilRole(sql: postgres.Sql<any>, usename: string) {
  if (!/^[a-z_][a-z0-9_.]*$/.test(usename)) throw new Error(`not a column reference: ${usename}`)
  const role = `coalesce(${usename}::text, '')`
  return sql.unsafe(`(${role} = '${AGENT_ROLE}' or (${role} = session_user and not coalesce(
    (select r.rolsuper from pg_catalog.pg_roles r where r.rolname = session_user), false)))`)
}
