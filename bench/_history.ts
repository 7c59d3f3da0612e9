// History for the benchmarks that read it: services with 30 days of 30-second checks (a synthetic
// outage every 97th check), loaded in bulk with the per-row status machine off (the hourly rollup
// trigger stays on, as it is what uptime reads).
import type postgres from 'postgres'

export const CHECKS_PER_SERVICE = 30 * 24 * 120

/** Creates `count` http services named `<prefix>-NN` with 30 days of checks; seconds it took. */
export async function loadHistory(
  sql: postgres.Sql,
  prefix: string,
  count: number,
): Promise<{ names: string[]; loadSeconds: number; checks: number }> {
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(2, '0')}`)
  await sql`insert into vigil.services ${
    sql(names.map((name, i) => ({
      name,
      kind: 'http',
      config: sql.json({ url: `http://127.0.0.1:9/${i}` }),
    })))
  }`
  await sql`alter table vigil.checks disable trigger checks_apply`
  const t0 = performance.now()
  try {
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
  } finally {
    await sql`alter table vigil.checks enable trigger checks_apply`
  }
  const loadSeconds = (performance.now() - t0) / 1000
  await sql`analyze vigil.checks`
  await sql`analyze vigil.check_rollups`
  const [{ checks }] = await sql<
    { checks: number }[]
  >`select count(*)::int as checks from vigil.checks`
  return { names, loadSeconds, checks }
}
