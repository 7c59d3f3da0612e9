// The dashboard's first screen in Debian's Chromium: from navigation to the health score and every
// service card on screen, for a signed-in operator. Run by bench/dashboard-first-screen.ts, which
// loads the history first; prints one JSON line. Env: DASHBOARD_URL, SERVICES, RUNS.
import { chromium } from 'playwright-core'

const url = process.env.DASHBOARD_URL
const services = Number(process.env.SERVICES ?? 50)
const runs = Number(process.env.RUNS ?? 10)

const browser = await chromium.launch({
  executablePath: process.env.VIGIL_CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
})
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  const page = await context.newPage()
  const firstScreen = () =>
    page.waitForFunction(
      (n) =>
        document.querySelector('[data-testid="health-score"]') !== null &&
        document.querySelectorAll('ul[aria-label="Service status"] > li').length >= n,
      services,
      { timeout: 30_000, polling: 'raf' },
    )
  // Signing in is not part of the first screen: the session then lives in localStorage.
  await page.goto(url)
  await page.getByRole('button', { name: /development operator/i }).click()
  await firstScreen()

  const times = []
  for (let i = 0; i < runs; i++) {
    const t0 = Date.now()
    await page.goto(url, { waitUntil: 'commit' })
    await firstScreen()
    times.push(Date.now() - t0)
  }
  // A cold load: a new browser context, nothing cached, signed in by the same stored session.
  const state = await context.storageState()
  const cold = await browser.newContext({ viewport: { width: 1280, height: 900 }, storageState: state })
  const coldPage = await cold.newPage()
  const t0 = Date.now()
  await coldPage.goto(url, { waitUntil: 'commit' })
  await coldPage.waitForFunction(
    (n) => document.querySelectorAll('ul[aria-label="Service status"] > li').length >= n,
    services,
    { timeout: 30_000, polling: 'raf' },
  )
  const coldMs = Date.now() - t0
  times.sort((a, b) => a - b)
  console.log(JSON.stringify({
    runs,
    median_ms: times[Math.floor(times.length / 2)],
    worst_ms: times.at(-1),
    cold_ms: coldMs,
    times_ms: times,
  }))
} finally {
  await browser.close()
}
