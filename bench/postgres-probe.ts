// What one postgres probe costs the database it watches: the execution (and, where the server
// tracks it, planning) time of the probe's own statements, read from pg_stat_statements.
// It resets pg_stat_statements on the bench stack's database, runs the probe RUNS times on one
// persistent connection, as a scraper would, and reads after each run how much database time the
// probe's statements (marked /* vigil:postgres-probe */) took.
// Goal: at most 10 ms per probe on an empty database; postgres_exporter spends about 7 ms there.
import postgres from 'postgres'
import type { BenchContext, BenchResult } from '../devstack/bench.ts'
import { postgresProbe, PROBE_MARKER } from '../supabase/functions/_shared/probes/postgres.ts'
import type { ProbeContext } from '../supabase/functions/_shared/probes/types.ts'
import { resolveThresholds } from '../shared/thresholds.ts'

const GOAL_MS = 10
const RUNS = 50

export async function run({ stack }: BenchContext): Promise<BenchResult> {
  const url = stack.dbUrl
  const runs = RUNS
  const admin = postgres(url, {
    max: 1,
    onnotice: () => {},
    connection: { application_name: 'vigil-bench' },
  })
  let db: postgres.Sql | undefined
  let created = false
  try {
    let [pss] = await admin<{ schema: string }[]>`
      select n.nspname as schema from pg_extension e join pg_namespace n on n.oid = e.extnamespace
      where e.extname = 'pg_stat_statements'`
    if (!pss) {
      // A brand-new database: measure with the extension where Supabase puts it, then take it away.
      await admin`create schema if not exists extensions`
      await admin`create extension pg_stat_statements with schema extensions`
      created = true
      pss = { schema: 'extensions' }
    }
    const view = admin`${admin(pss.schema)}.pg_stat_statements`
    // Planning is only counted when tracked; a superuser can switch it on for the probe's session.
    let planningTracked = true
    try {
      db = await open(url, { 'pg_stat_statements.track_planning': 'on' })
    } catch {
      planningTracked = false
      db = await open(url, {})
    }
    const probeTotal = async () => {
      const [row] = await admin<{ ms: number; calls: number }[]>`
        select coalesce(sum(total_exec_time + total_plan_time), 0)::float8 as ms, coalesce(sum(calls), 0)::float8 as calls
        from ${view}
        where query like ${'%' + PROBE_MARKER + '%'} and toplevel
          and dbid = (select oid from pg_database where datname = current_database())`
      return row
    }

    await admin`select ${admin(pss.schema)}.pg_stat_statements_reset()`
    const config = postgresProbe.config.parse({})
    const ctx: ProbeContext = {
      service: { id: crypto.randomUUID(), name: 'bench-db', kind: 'postgres', environment: 'dev' },
      thresholds: resolveThresholds(),
      signal: new AbortController().signal,
      secret: () => undefined,
      projectUrl: 'http://127.0.0.1',
      db,
      fetch,
    }
    const dbMs: number[] = []
    const wallMs: number[] = []
    let statements = 0
    let before = await probeTotal()
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now()
      const result = await postgresProbe.run(config, ctx)
      wallMs.push(performance.now() - t0)
      if (result.status === 'down') throw new Error(`the probe failed: ${result.error}`)
      ctx.previous = result.measurements
      const after = await probeTotal()
      dbMs.push(after.ms - before.ms)
      statements = after.calls - before.calls
      before = after
    }

    const db_ms_per_probe = summary(dbMs)
    const wall_ms = summary(wallMs)
    const passed = db_ms_per_probe.mean <= GOAL_MS
    const [server] = await admin<{ version: string; relations: number; entries: number }[]>`
      select current_setting('server_version') as version, (select count(*) from pg_class)::int as relations,
             (select count(*) from ${view})::int as entries`
    return {
      name: 'postgres-probe',
      measures:
        `database time one postgres probe costs the watched database (empty, with Vigil's schema; mean of ${runs})`,
      result: `${db_ms_per_probe.mean} ms (p95 ${db_ms_per_probe.p95}), wall ${wall_ms.mean} ms`,
      goal: `≤ ${GOAL_MS} ms (postgres_exporter: about 7 ms a scrape)`,
      passed,
      runs,
      db_ms_per_probe,
      wall_ms,
      server_version: server.version,
      relations: server.relations,
      pg_stat_statements_entries: server.entries,
      statements_per_probe: statements,
      planning_time_included: planningTracked,
      first_run_db_ms: round(dbMs[0]),
      connection: 'one persistent connection, prepare: false (every statement parsed and planned)',
    }
  } finally {
    await db?.end()
    if (created) await admin`drop extension if exists pg_stat_statements`.catch(() => {})
    await admin.end()
  }
}

async function open(url: string, settings: Record<string, string>): Promise<postgres.Sql> {
  const sql = postgres(url, {
    max: 1,
    prepare: false,
    onnotice: () => {},
    connection: { application_name: 'vigil-health-check', ...settings },
  })
  try {
    await sql`select 1`
    return sql
  } catch (err) {
    await sql.end()
    throw err
  }
}

function summary(xs: number[]) {
  const sorted = [...xs].sort((a, b) => a - b)
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length
  return {
    mean: round(mean),
    p95: round(sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)]),
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100
}
