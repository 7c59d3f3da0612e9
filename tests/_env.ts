// What `npm test` hands every Deno test: its private stack's URLs and keys.
import postgres from 'postgres'

export interface TestStack {
  /** postgres, the owner: for set-up and checks. */
  dbUrl: string
  /** vigil_agent, the role the functions connect as. */
  agentDbUrl: string
  apiUrl: string
  anonKey: string
  serviceRoleKey: string
  /** The stack's stand-ins for the alert providers (devstack/providers.ts), with their control API. */
  providersUrl: string
}

export function testStack(): TestStack {
  const get = (name: string) => {
    const value = Deno.env.get(name)
    if (!value) {
      throw new Error(
        `${name} is not set: run the tests with \`npm test\`, which starts a private stack`,
      )
    }
    return value
  }
  return {
    dbUrl: get('VIGIL_TEST_DB_URL'),
    agentDbUrl: get('VIGIL_TEST_AGENT_DB_URL'),
    apiUrl: get('VIGIL_TEST_API_URL'),
    anonKey: get('VIGIL_TEST_ANON_KEY'),
    serviceRoleKey: get('VIGIL_TEST_SERVICE_ROLE_KEY'),
    providersUrl: get('VIGIL_TEST_PROVIDERS_URL'),
  }
}

/** A small client on the test database, as postgres; the caller ends it. */
export function testSql(max = 2) {
  return postgres(testStack().dbUrl, { max, onnotice: () => {} })
}

/** A small client logged in as vigil_agent, as the functions are; the caller ends it. */
export function agentSql(max = 2) {
  return postgres(testStack().agentDbUrl, { max, onnotice: () => {} })
}

/** Polls until `probe` returns a value other than undefined, or fails after timeoutMs. */
export async function eventually<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const value = await probe()
    if (value !== undefined) return value
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

/**
 * Runs fn with these pg_cron jobs paused (the minutely health cycle, say), so they cannot probe
 * or heal a test's services in between the test's own steps; resumed whatever happens.
 */
export async function withCronPaused<T>(
  sql: ReturnType<typeof testSql>,
  jobs: string[],
  fn: () => Promise<T>,
): Promise<T> {
  const list = jobs.join(',')
  await sql`update cron.job set active = false where jobname = any(string_to_array(${list}, ','))`
  try {
    return await fn()
  } finally {
    await sql`update cron.job set active = true where jobname = any(string_to_array(${list}, ','))`
  }
}

/** The URL of the test database logged in as `role` (an ordinary login role a test created). */
export function roleUrl(role: string, password: string): string {
  const url = new URL(testStack().dbUrl)
  url.username = role
  url.password = password
  return url.href
}

/** A one-connection client logged in as `role`; the caller ends it. */
export function roleSql(role: string, password: string) {
  return postgres(roleUrl(role, password), { max: 1, onnotice: () => {} })
}
