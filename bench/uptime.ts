// Uptime over 24 h / 7 d / 30 d / 90 d for 50 services with 30 days of 30-second checks
// (4.32 million rows), read from the hourly rollups; raw-check counting shown for comparison.
import postgres from 'postgres'
import type { BenchContext, BenchResult } from '../devstack/bench.ts'
import { loadHistory } from './_history.ts'

const SERVICES = 50
const RUNS = 20
const GOAL_MS = 100

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

async function timeQuery(run: () => Promise<unknown>): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now()
    await run()
    times.push(performance.now() - t0)
  }
  return Math.round(median(times) * 10) / 10
}

export async function run({ stack }: BenchContext): Promise<BenchResult> {
  const sql = postgres(stack.dbUrl, { max: 1, onnotice: () => {} })
  try {
    await sql`update cron.job set active = false where jobname in ('vigil-health-check', 'vigil-watchdog')`
    const { loadSeconds: loadS, checks: rows } = await loadHistory(sql, 'bench-uptime', SERVICES)

    const allWindowsMs = await timeQuery(() =>
      sql`select * from vigil.service_uptime where name like 'bench-uptime-%'`
    )
    const publicStatusMs = await timeQuery(() => sql`select * from vigil.public_status`)
    const oneServiceMs = await timeQuery(() =>
      sql`select vigil.uptime(id, interval '30 days') from vigil.services where name = 'bench-uptime-07'`
    )
    const rawMs = await timeQuery(() =>
      sql`
      select service_id, 100.0 * count(*) filter (where status <> 'down') / count(*)
        from vigil.checks where checked_at > now() - interval '30 days' group by service_id`
    )
    return {
      name: 'uptime',
      measures: `uptime of ${SERVICES} services over 24 h, 7 d, 30 d and 90 d with ${
        rows.toLocaleString('en')
      } checks (median of ${RUNS})`,
      result: `${allWindowsMs} ms (counting raw checks instead: ${rawMs} ms)`,
      goal: `< ${GOAL_MS} ms`,
      passed: allWindowsMs < GOAL_MS,
      checks: rows,
      load_seconds: Math.round(loadS),
      service_uptime_all_windows_ms: allWindowsMs,
      public_status_ms: publicStatusMs,
      one_service_30d_ms: oneServiceMs,
      raw_checks_30d_all_services_ms: rawMs,
    }
  } finally {
    await sql`delete from vigil.services where name like 'bench-uptime-%'`
    await sql`update cron.job set active = true where jobname in ('vigil-health-check', 'vigil-watchdog')`
    await sql.end()
  }
}
