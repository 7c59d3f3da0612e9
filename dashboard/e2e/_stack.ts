// What the end-to-end tests share: the running stack `npm test` started (its URLs and keys from the
// environment), Debian's Chromium driven by playwright-core, and the database as its owner.
import { type Browser, chromium, type Page } from 'playwright-core'
import postgres from 'postgres'

export interface E2eStack {
  dashboardUrl: string
  apiUrl: string
  dbUrl: string
  anonKey: string
  serviceRoleKey: string
  operator: { email: string; password: string }
  viewer: { email: string; password: string }
}

export function e2eStack(): E2eStack {
  const get = (name: string) => {
    const value = process.env[name]
    if (!value) throw new Error(`${name} is not set: run the tests with \`npm test\` from the project root`)
    return value
  }
  return {
    dashboardUrl: get('VIGIL_TEST_DASHBOARD_URL').replace(/\/$/, ''),
    apiUrl: get('VIGIL_TEST_API_URL'),
    dbUrl: get('VIGIL_TEST_DB_URL'),
    anonKey: get('VIGIL_TEST_ANON_KEY'),
    serviceRoleKey: get('VIGIL_TEST_SERVICE_ROLE_KEY'),
    operator: { email: get('VIGIL_TEST_OPERATOR_EMAIL'), password: get('VIGIL_TEST_OPERATOR_PASSWORD') },
    viewer: { email: get('VIGIL_TEST_VIEWER_EMAIL'), password: get('VIGIL_TEST_VIEWER_PASSWORD') },
  }
}

/** Debian's Chromium, never a downloaded one. */
export async function launchBrowser(): Promise<Browser> {
  return await chromium.launch({
    executablePath: process.env.VIGIL_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  })
}

export function ownerSql(max = 3) {
  return postgres(e2eStack().dbUrl, { max, onnotice: () => {} })
}

/** Signs in with the development operator button and waits for the operator's page. */
export async function signInAsOperator(page: Page): Promise<void> {
  await page.goto(e2eStack().dashboardUrl + '/')
  await page.getByRole('button', { name: /development operator/i }).click()
  await page.getByRole('heading', { name: /Services/ }).waitFor()
}

/** One health-check run for these services, as pg_cron's job would ask for it. */
export async function runHealthCheck(services: string[]): Promise<void> {
  const { apiUrl, serviceRoleKey } = e2eStack()
  const res = await fetch(`${apiUrl}/functions/v1/health-check`, {
    method: 'POST',
    headers: { authorization: `Bearer ${serviceRoleKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ services }),
  })
  if (!res.ok) throw new Error(`health-check answered ${res.status}: ${await res.text()}`)
  await res.body?.cancel()
}

/** Closes every Realtime socket of the local stack and refuses new ones for a while. */
export async function dropRealtime(refuseMs: number): Promise<void> {
  const { apiUrl, serviceRoleKey } = e2eStack()
  const res = await fetch(`${apiUrl}/realtime/v1/api/drop`, {
    method: 'POST',
    headers: { authorization: `Bearer ${serviceRoleKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ refuse_ms: refuseMs }),
  })
  if (!res.ok) throw new Error(`the realtime drop answered ${res.status}`)
  await res.body?.cancel()
}

/** With VIGIL_SCREENSHOTS_DIR set (see README: the screenshots in docs/), the page as it is now. */
export async function screenshot(page: Page, name: string, fullPage = false): Promise<void> {
  const dir = process.env.VIGIL_SCREENSHOTS_DIR
  if (dir) await page.screenshot({ path: `${dir}/${name}.png`, fullPage })
}
