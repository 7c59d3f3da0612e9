// The dashboard's first screen with 30 days of history for 50 services (4.32 million checks, 300
// incidents, heal results): navigation to the health score and every service card on screen, in
// Debian's Chromium through the real stack (/auth/v1, /rest/v1, /realtime/v1); and the one read it
// makes, dashboard_snapshot, through the REST stand-in as the operator.
import { join } from 'node:path'
import postgres from 'postgres'
import type { BenchContext, BenchResult } from '../devstack/bench.ts'
import { DEV_OPERATOR, ROOT } from '../devstack/config.ts'
import { loadHistory } from './_history.ts'

const SERVICES = 50
const RUNS = 10
const GOAL_MS = 1000

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

/** Median time of an rpc through the REST stand-in as the signed-in operator. */
async function rpcMs(
  apiUrl: string,
  anonKey: string,
  token: string,
  fn: string,
  args: Record<string, unknown>,
  runs: number,
): Promise<{ ms: number; bytes: number }> {
  const times: number[] = []
  let bytes = 0
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    const res = await fetch(`${apiUrl}/rest/v1/rpc/${fn}`, {
      method: 'POST',
      headers: {
        apikey: anonKey,
        authorization: `Bearer ${token}`,
        'content-profile': 'vigil',
        'content-type': 'application/json',
      },
      body: JSON.stringify(args),
    })
    const body = await res.text()
    if (!res.ok) throw new Error(`${fn} answered ${res.status}: ${body.slice(0, 200)}`)
    bytes = body.length
    times.push(performance.now() - t0)
  }
  return { ms: Math.round(median(times) * 10) / 10, bytes }
}

async function operatorToken(apiUrl: string, anonKey: string): Promise<string> {
  const signIn = await fetch(`${apiUrl}/auth/v1/token?grant_type=password`, {
    method: 'POST',
    headers: { apikey: anonKey, 'content-type': 'application/json' },
    body: JSON.stringify({ email: DEV_OPERATOR.email, password: DEV_OPERATOR.password }),
  })
  const { access_token } = await signIn.json()
  return access_token
}

export async function run({ stack }: BenchContext): Promise<BenchResult> {
  if (!stack.dashboard) throw new Error('the dashboard is not built: npm run bench builds it first')
  const sql = postgres(stack.dbUrl, { max: 1, onnotice: () => {} })
  try {
    await sql`update cron.job set active = false where jobname in ('vigil-health-check', 'vigil-watchdog')`
    const { checks } = await loadHistory(sql, 'bench-dash', SERVICES)
    // A month of incidents, five still open, and a heal for each.
    await sql`
      insert into vigil.incidents (service_id, kind, severity, title, opened_at, status, resolved_at)
      select s.id, 'service_unhealthy', 'critical', s.name || ' was down',
             now() - n * interval '2 hours', 'resolved', now() - n * interval '2 hours' + interval '3 minutes'
        from generate_series(1, 300) n
        join lateral (select id, name from vigil.services where name like 'bench-dash-%'
                       order by name offset n % ${SERVICES} limit 1) s on true`
    await sql`
      insert into vigil.incidents (service_id, kind, severity, title)
      select id, 'slow_response', 'warning', name || ' is slow'
        from vigil.services where name like 'bench-dash-%' order by name limit 5`
    await sql`
      insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome, detail)
      select gen_random_uuid(), 'result', i.id, i.service_id, 'restart_service', 1, 'bench', 'succeeded', 'restarted'
        from vigil.incidents i join vigil.services s on s.id = i.service_id
       where s.name like 'bench-dash-%'`
    await sql`analyze vigil.incidents`
    await sql`analyze vigil.heal_actions`

    const token = await operatorToken(stack.apiUrl, stack.keys.anon)
    const rpc = (fn: string, args: Record<string, unknown>, runs: number) =>
      rpcMs(stack.apiUrl, stack.keys.anon, token, fn, args, runs)
    const snapshot = await rpc('dashboard_snapshot', {}, 20)
    const trends = {
      '1h': (await rpc('performance_trends', { p_window: '1h' }, 10)).ms,
      '24h': (await rpc('performance_trends', { p_window: '24h' }, 5)).ms,
      '7d': (await rpc('performance_trends', { p_window: '7d' }, 3)).ms,
    }
    const out = await new Deno.Command('node', {
      args: [join(ROOT, 'dashboard', 'bench', 'first-screen.mjs')],
      cwd: join(ROOT, 'dashboard'),
      env: { DASHBOARD_URL: stack.dashboard.url, SERVICES: String(SERVICES), RUNS: String(RUNS) },
      stdout: 'piped',
      stderr: 'inherit',
    }).output()
    if (!out.success) throw new Error('the browser run failed (see above)')
    const browser = JSON.parse(new TextDecoder().decode(out.stdout).trim().split('\n').at(-1)!)
    return {
      name: 'dashboard-first-screen',
      measures:
        `dashboard first screen (score and all ${SERVICES} service cards) for a signed-in operator, ${
          checks.toLocaleString('en')
        } checks of history, in Chromium (median of ${RUNS} loads)`,
      result:
        `median ${browser.median_ms} ms, worst ${browser.worst_ms} ms, cold cache ${browser.cold_ms} ms; snapshot read ${snapshot.ms} ms (${
          Math.round(snapshot.bytes / 1024)
        } kB); trends 1 h / 24 h / 7 d ${trends['1h']} / ${trends['24h']} / ${trends['7d']} ms`,
      goal: `< ${GOAL_MS} ms`,
      passed: browser.median_ms < GOAL_MS && browser.cold_ms < GOAL_MS,
      checks,
      snapshot_ms: snapshot.ms,
      snapshot_bytes: snapshot.bytes,
      trends_ms: trends,
      browser,
    }
  } finally {
    // The heal audit is append-only, so its services stay; the bench stack is thrown away anyway.
    await sql`update vigil.services set enabled = false where name like 'bench-dash-%'`
    await sql`update cron.job set active = true where jobname in ('vigil-health-check', 'vigil-watchdog')`
    await sql.end()
  }
}
