// Fixtures shared by the heal tests: the test database's URL, a HealContext as the engine builds
// one, unique scratch names, application login roles, and a health-check cycle on the stack.
import type postgres from 'postgres'
import type { HealContext } from '../../supabase/functions/_shared/heal/types.ts'
import { roleUrl, testStack } from '../_env.ts'

/** The private stack's database, as `npm test` hands it over. */
export function dbUrl(): string {
  const url = Deno.env.get('VIGIL_TEST_DB_URL')
  if (!url) {
    throw new Error(
      'VIGIL_TEST_DB_URL is not set: run the tests with `npm test`, which starts a private stack',
    )
  }
  return url
}

/** Ten hex characters, for scratch names no other test (or earlier run) uses. */
export function uniqueId(): string {
  return crypto.randomUUID().replaceAll('-', '').slice(0, 10)
}

/**
 * A HealContext as the engine hands it to a strategy: a postgres service of dev, no actions, no
 * secrets, no protect lists, no dry run and no deadline, unless `over` says otherwise.
 */
export function baseHealContext(over: Partial<HealContext> & Pick<HealContext, 'db'>): HealContext {
  return {
    service: {
      id: crypto.randomUUID(),
      name: 'test-db',
      kind: 'postgres',
      environment: 'dev',
      config: {},
    },
    actions: {},
    incidentId: 1,
    dryRun: false,
    signal: new AbortController().signal,
    secret: () => undefined,
    fetch,
    reprobe: () => Promise.reject(new Error('not used')),
    protectedRoles: [],
    protectedApplications: [],
    ...over,
  }
}

type AnySql = postgres.Sql<any>

/**
 * Creates a non-superuser login role on the test database (superuser sessions are protected from
 * every heal) and returns the URL that logs in as it.
 */
export async function createLoginRole(
  sql: AnySql,
  role: string,
  password: string,
): Promise<string> {
  await sql.unsafe(`create role ${role} login password '${password}' nosuperuser`)
  return roleUrl(role, password)
}

/** One health-check run that must succeed: its report. */
export async function healthCycle(services: string[]): Promise<Record<string, unknown>> {
  const res = await postHealthCheck(services)
  const body = await res.json()
  if (res.status !== 200) {
    throw new Error(`health-check answered ${res.status}: ${JSON.stringify(body)}`)
  }
  return body
}

/** One run of the health-check function on the running stack, for these services. */
export async function postHealthCheck(services: string[]): Promise<Response> {
  const { apiUrl, serviceRoleKey } = testStack()
  return await fetch(`${apiUrl}/functions/v1/health-check`, {
    method: 'POST',
    headers: { authorization: `Bearer ${serviceRoleKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ services }),
  })
}

/**
 * After an end-to-end heal test: the strategy's dev policy goes, the test's service is disabled
 * and its open incidents resolved.
 */
export async function retireService(sql: AnySql, name: string, strategy: string): Promise<void> {
  await sql`delete from vigil.heal_policies where environment = 'dev' and strategy = ${strategy}`
  await sql`update vigil.services set enabled = false where name = ${name}`
  await sql`update vigil.incidents set status = 'resolved', resolved_at = now() where status = 'open' and service_id in (select id from vigil.services where name = ${name})`
}
