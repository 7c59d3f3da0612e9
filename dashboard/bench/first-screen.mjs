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
/**
 * Runs in the page before any of its scripts: notes the moment, from navigation start, when the
 * score and every service card are in the document. Measured there, not by polling from outside.
 */
function observeFirstScreen(n) {
  new MutationObserver((_, observer) => {
    if (
      window.__firstScreenMs === undefined &&
      document.querySelector('[data-testid="health-score"]') !== null &&
      document.querySelectorAll('ul[aria-label="Service status"] > li').length >= n
    ) {
      window.__firstScreenMs = performance.now()
      observer.disconnect()
    }
  }).observe(document, { childList: true, subtree: true })
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  await context.addInitScript(observeFirstScreen, services)
  const page = await context.newPage()
  const firstScreen = async (p = page) => {
    await p.waitForFunction(() => window.__firstScreenMs !== undefined, null, { timeout: 30_000 })
    return Math.round(await p.evaluate(() => window.__firstScreenMs))
  }
  // Signing in is not part of the first screen: the session then lives in localStorage.
  await page.goto(url)
  await page.getByRole('button', { name: /development operator/i }).click()
  await firstScreen()

  const times = []
  for (let i = 0; i < runs; i++) {
    await page.goto(url, { waitUntil: 'commit' })
    times.push(await firstScreen())
  }
  // A cold load: a new browser context, nothing cached, signed in by the same stored session.
  const state = await context.storageState()
  const cold = await browser.newContext({ viewport: { width: 1280, height: 900 }, storageState: state })
  await cold.addInitScript(observeFirstScreen, services)
  const coldPage = await cold.newPage()
  await coldPage.goto(url, { waitUntil: 'commit' })
  const coldMs = await firstScreen(coldPage)
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
