// The dashboard in Debian's Chromium against the running local stack: the operator signs in, a real
// fault (a lock chain held by an ordinary login role) appears and heals live without a reload,
// acknowledge, kill switch and approve act and are audited, the connection drops and catches up,
// anon sees only /status, and bad states (non-operator, broken session, a 500) are shown clearly.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  dropRealtime,
  e2eStack,
  launchBrowser,
  ownerSql,
  runHealthCheck,
  screenshot,
  signInAsOperator,
} from './_stack'

const stamp = Date.now().toString(36)
const DB_SERVICE = `e2e-db-${stamp}`
const APPROVAL_SERVICE = `e2e-api-${stamp}`
const ROLE = `e2e_app_${stamp}`
const TABLE = `e2e_locks_${stamp}`

let browser: Browser
let context: BrowserContext
let page: Page
const sql = ownerSql()

beforeAll(async () => {
  browser = await launchBrowser()
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  page = await context.newPage()
  // The scheduled cycle would race the test's own; the test runs cycles itself.
  await sql`update cron.job set active = false where jobname = 'vigil-health-check'`
})

afterAll(async () => {
  await browser?.close()
  await sql`update cron.job set active = true where jobname = 'vigil-health-check'`
  await sql`update vigil.settings set kill_switch = false where environment = 'prod' and kill_switch`
  await sql`delete from vigil.heal_policies where environment = 'dev' and strategy = 'terminate_blocker'`
  await sql`update vigil.incidents set status = 'resolved', resolved_at = now()
             where status = 'open' and service_id in (select id from vigil.services where name in (${DB_SERVICE}, ${APPROVAL_SERVICE}))`
  await sql`update vigil.services set enabled = false where name in (${DB_SERVICE}, ${APPROVAL_SERVICE})`
  await sql.unsafe(`drop table if exists public.${TABLE}`)
  await sql.end()
})

/** The service's card in the grid. */
const card = (name: string) => page.getByRole('article', { name, exact: true })

describe('the operator', () => {
  it('signs in as the development operator and sees the real state of what is watched', async () => {
    await sql`insert into vigil.services (name, kind, environment, config)
              values (${APPROVAL_SERVICE}, 'http', 'dev', '{"url": "http://127.0.0.1:9/"}')`
    await signInAsOperator(page)
    await expect.poll(() => card(APPROVAL_SERVICE).count()).toBe(1)
    await expect.poll(() => page.getByText('Live', { exact: true }).count()).toBeGreaterThan(0)
    await screenshot(page, 'dashboard')
  })

  it('watches a real fault appear and heal live, without a reload', async () => {
    await sql.unsafe(`create role ${ROLE} login password 'e2e-app-password' nosuperuser`)
    await sql.unsafe(`create table public.${TABLE} (id int primary key, v int); insert into public.${TABLE} values (1, 0)`)
    await sql.unsafe(`grant select, update on public.${TABLE} to ${ROLE}`)
    await sql`insert into vigil.services (name, kind, environment, config)
              values (${DB_SERVICE}, 'postgres', 'dev', '{"blocked_warning_seconds": 1, "blocked_critical_seconds": 2}')`
    await sql`insert into vigil.heal_policies (environment, strategy, mode, config)
              values ('dev', 'terminate_blocker', 'auto', '{"min_wait_seconds": 1}')
              on conflict (environment, strategy) do update set mode = 'auto', config = excluded.config`
    await expect.poll(() => card(DB_SERVICE).count(), { timeout: 10_000 }).toBe(1)
    await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true))
    // The score on the page against SQL's own: equal before, equal after, and moved by the fault.
    // On a fresh stack nothing may be known yet: no score (null), shown as such.
    const dbScore = async (): Promise<number | null> => {
      const [{ s: score }] = await sql`select (vigil.health_score() ->> 'score')::float8 as s`
      return score
    }
    const pageScore = async (): Promise<number | null> => {
      const n = Number.parseFloat((await page.getByTestId('health-score').textContent()) ?? '')
      return Number.isNaN(n) ? null : n
    }
    const agrees = async () => {
      const [p, d] = [await pageScore(), await dbScore()]
      return p === null || d === null ? p === d : Math.abs(p - d) < 0.05
    }
    const scoreBefore = await dbScore()
    await expect.poll(agrees, { timeout: 10_000 }).toBe(true)

    const appUrl = new URL(e2eStack().dbUrl)
    appUrl.username = ROLE
    appUrl.password = 'e2e-app-password'
    // A plain BEGIN on one connection: postgres.js crashes when the server ends a reserved one.
    const blocker = postgres(appUrl.href, { max: 1, onnotice: () => {}, connection: { application_name: 'e2e-blocker' } })
    const waiter = postgres(appUrl.href, { max: 1, onnotice: () => {}, connection: { application_name: 'e2e-waiter' } })
    try {
      await blocker`begin`
      await blocker.unsafe(`update public.${TABLE} set v = 1 where id = 1`)
      const waited = waiter.unsafe(`update public.${TABLE} set v = 2 where id = 1`).then(() => 'completed', (e) => `failed: ${e.message}`)
      await new Promise((r) => setTimeout(r, 2500))
      await runHealthCheck([DB_SERVICE])

      // Live: the card says Down in words, the score moves, the heal log shows the blocker ended.
      await expect.poll(() => card(DB_SERVICE).textContent(), { timeout: 15_000 }).toMatch(/Down|Degraded/)
      await expect.poll(dbScore, { timeout: 15_000 }).not.toBe(scoreBefore)
      await expect.poll(agrees, { timeout: 15_000 }).toBe(true)
      const healLine = page.getByRole('list', { name: /Heal actions/ }).getByRole('listitem').filter({ hasText: DB_SERVICE })
      await expect.poll(() => healLine.first().textContent(), { timeout: 15_000 }).toMatch(/attempt 1\/3/)
      expect(await healLine.first().getByRole('img').getAttribute('aria-label')).toMatch(/succeeded/i)
      expect(await waited).toBe('completed')
      await screenshot(page, 'heal-live', true)
    } finally {
      await blocker.end({ timeout: 1 }).catch(() => {})
      await waiter.end({ timeout: 1 }).catch(() => {})
    }
    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true)
  })

  it('acknowledges the incident, recorded in the operator’s name', async () => {
    const incident = page.getByRole('article').filter({ hasText: DB_SERVICE }).filter({ has: page.getByRole('button', { name: 'Acknowledge' }) })
    await incident.first().getByRole('button', { name: 'Acknowledge' }).click()
    await expect.poll(() => page.getByText(`Acknowledged by ${e2eStack().operator.email}`).count(), { timeout: 10_000 }).toBeGreaterThan(0)
    const [row] = await sql`select acknowledged_by_name from vigil.incidents i join vigil.services s on s.id = i.service_id
                             where s.name = ${DB_SERVICE} and i.acknowledged_at is not null`
    expect(row?.acknowledged_by_name).toBe(e2eStack().operator.email)
  })

  it('stops the agent with the kill switch, after confirming, and the change is audited', async () => {
    await page.getByRole('switch', { name: 'Kill switch for prod' }).click()
    await page.getByRole('dialog').getByRole('button', { name: 'Turn on kill switch' }).click()
    await expect.poll(async () => (await sql`select kill_switch from vigil.settings where environment = 'prod'`)[0].kill_switch, { timeout: 10_000 }).toBe(true)
    const [change] = await sql`select actor_name, new_value from vigil.control_changes
                               where target = 'settings:prod' and field = 'kill_switch' order by id desc limit 1`
    expect(change).toMatchObject({ actor_name: e2eStack().operator.email, new_value: true })
    await expect.poll(() => page.getByRole('switch', { name: 'Kill switch for prod' }).getAttribute('aria-checked')).toBe('true')
    await expect.poll(() => page.getByText(/set kill switch on settings:prod/i).count(), { timeout: 10_000 }).toBeGreaterThan(0)
    await page.getByRole('switch', { name: 'Kill switch for prod' }).click()
    await expect.poll(async () => (await sql`select kill_switch from vigil.settings where environment = 'prod'`)[0].kill_switch, { timeout: 10_000 }).toBe(false)
  })

  it('approves a pending heal that appears live, and the decision names the operator', async () => {
    const [{ id: serviceId }] = await sql`select id from vigil.services where name = ${APPROVAL_SERVICE}`
    const [{ id: incidentId }] = await sql`
      insert into vigil.incidents (service_id, kind, severity, title)
      values (${serviceId}, 'service_unhealthy', 'critical', ${`${APPROVAL_SERVICE} is down`}) returning id`
    const actionId = crypto.randomUUID()
    await sql`insert into vigil.heal_approvals (action_id, incident_id, service_id, strategy, plan)
              values (${actionId}, ${incidentId}, ${serviceId}, 'restart_service',
                      ${sql.json({ action: `Restart ${APPROVAL_SERVICE}`, reason: 'it stopped answering' })})`
    // Other suites may have left approvals pending on the same stack: this test's own, by name.
    const box = page.getByRole('group', { name: `Approval for Restart ${APPROVAL_SERVICE}` })
    await expect.poll(() => box.count(), { timeout: 10_000 }).toBeGreaterThan(0)
    await box.getByRole('button', { name: 'Approve' }).click()
    await expect.poll(async () => (await sql`select decision, decided_by from vigil.heal_approvals where action_id = ${actionId}`)[0], { timeout: 10_000 })
      .toMatchObject({ decision: 'approved' })
    const [decided] = await sql`select decided_by::text from vigil.heal_approvals where action_id = ${actionId}`
    expect(decided.decided_by).toBeTruthy()
    await expect.poll(() => box.count(), { timeout: 10_000 }).toBe(0)
  })

  it('shows what the analysis flags, live: an anomaly and a forecast appear, and leave with their rows', async () => {
    // The minutely analysis would open incidents for these rows: it waits until they are gone.
    await sql`update cron.job set active = false where jobname = 'vigil-analyze'`
    try {
      const [{ id }] = await sql`select id from vigil.services where name = ${APPROVAL_SERVICE}`
      await sql`
        insert into vigil.metric_series (service_id, metric, labels, detector, value, score, baseline,
                                         anomalous_since, last_anomalous_at, forecast, forecast_at)
        values (${id}, 'cpu_usage_percent', '{}', ${sql.json({ format: 'e2e' })}, 93, 0.82,
                ${sql.json({ value: 93, expected: 40, low: 30, high: 50, ratio: 2.325, hourAgo: 41 })},
                now() - interval '5 minutes', now(), null, null),
               (${id}, 'memory_usage_percent', '{}', ${sql.json({ format: 'e2e' })}, 71, 0.1, null, null, null,
                ${sql.json({ status: 'crosses', text: 'memory 71 % rising 4.2 %/h: 100 % in ~7 h (between ~5 h and ~11 h)', etaSeconds: 25200 })},
                now())`
      const anomaly = page.getByRole('list', { name: 'Anomalies' }).getByRole('listitem').filter({ hasText: APPROVAL_SERVICE })
      const forecast = page.getByRole('list', { name: 'Forecasts' }).getByRole('listitem').filter({ hasText: APPROVAL_SERVICE })
      await expect.poll(() => anomaly.count(), { timeout: 10_000 }).toBe(1)
      expect(await anomaly.textContent()).toMatch(/CPU 93 % — expected ~40 %, ×2\.33 the baseline, 41 % an hour ago · score 0\.82 · anomalous for \d+ min/)
      await expect.poll(() => forecast.count(), { timeout: 10_000 }).toBe(1)
      expect(await forecast.textContent()).toBe(`${APPROVAL_SERVICE}: memory 71 % rising 4.2 %/h: 100 % in ~7 h (between ~5 h and ~11 h)`)
      await sql`delete from vigil.metric_series where service_id = ${id}`
      await expect.poll(() => anomaly.count(), { timeout: 10_000 }).toBe(0)
      await expect.poll(() => forecast.count(), { timeout: 10_000 }).toBe(0)
    } finally {
      await sql`update cron.job set active = true where jobname = 'vigil-analyze'`
    }
  })

  it('shows “live updates paused” when the connection drops, reconnects and catches up', async () => {
    await dropRealtime(3000)
    await expect.poll(() => page.getByText('Live updates paused — reconnecting…').count(), { timeout: 10_000 }).toBe(1)
    // While it is away, an incident opens: the page must show it once it is back, without a reload.
    const title = `${APPROVAL_SERVICE} slowed down while the page was away`
    await sql`insert into vigil.incidents (service_id, kind, severity, title)
              select id, 'slow_response', 'warning', ${title} from vigil.services where name = ${APPROVAL_SERVICE}`
    await expect.poll(() => page.getByText('Live updates paused — reconnecting…').count(), { timeout: 30_000 }).toBe(0)
    await expect.poll(() => page.getByText(title).count(), { timeout: 15_000 }).toBe(1)
    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true)
  })

  it('is usable at 375 px and by keyboard, with a visible focus', async () => {
    await page.setViewportSize({ width: 375, height: 800 })
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    expect(overflow).toBeLessThanOrEqual(0)
    await screenshot(page, 'mobile')
    await page.keyboard.press('Tab')
    const outline = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement
      const style = getComputedStyle(el)
      return { tag: el.tagName, outline: style.outlineStyle, width: style.outlineWidth }
    })
    expect(outline.tag).not.toBe('BODY')
    expect(outline.outline).not.toBe('none')
    await page.setViewportSize({ width: 1280, height: 900 })
  })
})

describe('accessibility', () => {
  it('the sign-in page, the operator’s page and the status page pass axe-core’s WCAG 2.1 A and AA rules, contrast included', async () => {
    const axe = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
    // axe runs as an injected script, which the pages' Content-Security-Policy rightly forbids.
    const checked = await browser.newContext({ bypassCSP: true })
    const p = await checked.newPage()
    const violations = async () => {
      await p.addScriptTag({ content: axe })
      const result = await p.evaluate(() =>
        (window as unknown as { axe: { run: (d: Document, o: object) => Promise<{ violations: { id: string; nodes: unknown[] }[] }> } }).axe.run(document, {
          runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
        }),
      )
      return result.violations.map((v) => `${v.id} (${v.nodes.length})`)
    }
    try {
      await p.goto(e2eStack().dashboardUrl + '/status')
      await p.getByText(APPROVAL_SERVICE).first().waitFor()
      expect(await violations()).toEqual([])
      await p.goto(e2eStack().dashboardUrl + '/')
      await p.getByRole('button', { name: /development operator/i }).waitFor()
      expect(await violations()).toEqual([])
      await p.getByRole('button', { name: /development operator/i }).click()
      await p.getByRole('heading', { name: /Services/ }).waitFor()
      await p.getByRole('heading', { name: /Performance/ }).waitFor()
      expect(await violations()).toEqual([])
    } finally {
      await checked.close()
    }
  })
})

describe('everyone else', () => {
  it('anon sees the public status page, and nothing internal', async () => {
    const anon = await browser.newContext({ viewport: { width: 375, height: 800 } })
    const p = await anon.newPage()
    try {
      await p.goto(e2eStack().dashboardUrl + '/status')
      await expect.poll(() => p.getByText(APPROVAL_SERVICE).count(), { timeout: 10_000 }).toBeGreaterThan(0)
      const text = (await p.textContent('body')) ?? ''
      expect(text).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-/) // no ids
      expect(text).not.toMatch(/kill switch|dry run|operator@|terminate|escalat|acknowledg/i)
      await screenshot(p, 'status')
      // The app itself asks anon to sign in; the API refuses anon the internal tables.
      await p.goto(e2eStack().dashboardUrl + '/')
      await p.getByRole('button', { name: 'Sign in', exact: true }).waitFor()
      const res = await fetch(`${e2eStack().apiUrl}/rest/v1/services?select=name`, {
        headers: { apikey: e2eStack().anonKey, 'accept-profile': 'vigil' },
      })
      expect(res.status).toBe(401)
    } finally {
      await anon.close()
    }
  })

  it('a signed-in user who is not an operator gets a clear screen, never rows', async () => {
    const other = await browser.newContext()
    const p = await other.newPage()
    try {
      await p.goto(e2eStack().dashboardUrl + '/')
      await p.getByLabel('Email').fill(e2eStack().viewer.email)
      await p.getByLabel('Password').fill(e2eStack().viewer.password)
      await p.getByRole('button', { name: 'Sign in', exact: true }).click()
      await p.getByText(/not an operator/i).first().waitFor()
      expect(await p.getByText(APPROVAL_SERVICE).count()).toBe(0)
    } finally {
      await other.close()
    }
  })

  it('a broken stored session and a failing read each give a clear state, never a blank page', async () => {
    const other = await browser.newContext()
    const p = await other.newPage()
    try {
      await p.goto(e2eStack().dashboardUrl + '/')
      await p.evaluate(() => {
        for (const key of Object.keys(localStorage)) if (key.endsWith('-auth-token')) localStorage.removeItem(key)
        localStorage.setItem('sb-127-auth-token', '{"access_token":"not.a.jwt","refresh_token":"x","expires_at":1}')
      })
      await p.reload()
      await p.getByRole('button', { name: 'Sign in', exact: true }).waitFor({ timeout: 15_000 })

      await p.route('**/rest/v1/rpc/dashboard_snapshot', (route) =>
        route.fulfill({ status: 500, contentType: 'application/json', body: '{"message":"boom"}' }),
      )
      await p.getByRole('button', { name: /development operator/i }).click()
      await p.getByRole('button', { name: 'Retry' }).waitFor({ timeout: 15_000 })
      await p.unroute('**/rest/v1/rpc/dashboard_snapshot')
      await p.getByRole('button', { name: 'Retry' }).click()
      await p.getByRole('heading', { name: /Services/ }).waitFor({ timeout: 15_000 })
    } finally {
      await other.close()
    }
  })
})
