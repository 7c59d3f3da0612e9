// Uptime over 24 h / 7 d / 30 d / 90 d for 50 services with 30 days of 30-second checks
// (4.32 million rows), read from the hourly rollups; raw-check counting shown for comparison.
import postgres from 'postgres'
import type { BenchContext, BenchResult } from '../devstack/bench.ts'

const SERVICES = 50
const CHECKS_PER_SERVICE = 30 * 24 * 120 // 30 days every 30 s
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
    const names = Array.from(
      { length: SERVICES },
      (_, i) => `bench-uptime-${String(i).padStart(2, '0')}`,
    )
    await sql`insert into vigil.services ${
      sql(names.map((name, i) => ({
        name,
        kind: 'http',
        config: sql.json({ url: `http://127.0.0.1:9/${i}` }),
      })))
    }`
    // Loading history: the per-row status machine is for live checks; the rollup trigger stays on.
    await sql`alter table vigil.checks disable trigger checks_apply`
    const t0 = performance.now()
    for (const name of names) {
      await sql`
        insert into vigil.checks (service_id, checked_at, status, response_ms, error)
        select s.id, now() - n * interval '30 seconds',
               case when n % 97 = 0 then 'down'::vigil.check_status else 'healthy' end,
               (n % 200)::numeric,
               case when n % 97 = 0 then 'synthetic outage' end
          from vigil.services s, generate_series(1, ${CHECKS_PER_SERVICE}) n
         where s.name = ${name}`
    }
    const loadS = (performance.now() - t0) / 1000
    await sql`alter table vigil.checks enable trigger checks_apply`
    await sql`analyze vigil.checks`
    await sql`analyze vigil.check_rollups`
    const [{ rows }] = await sql`select count(*)::int as rows from vigil.checks`

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
    await sql`alter table vigil.checks enable trigger checks_apply`.catch(() => {})
    await sql`delete from vigil.services where name like 'bench-uptime-%'`
    await sql`update cron.job set active = true where jobname in ('vigil-health-check', 'vigil-watchdog')`
    await sql.end()
  }
}
