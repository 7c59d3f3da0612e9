// Faults in the demo app and what stands around it, made through their fault-control APIs: errors
// and slowness in the API, memory that leaks in the app's process, a CDN that serves the version
// before the last deploy, and a deploy whose build fails.
import postgres from 'postgres'
import type { ChaosTarget, Fault } from './types.ts'
import { dropRecord, readRecord, writeRecord } from './procs.ts'

const TIMEOUT_MS = 10_000

async function control(
  url: string,
  token: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  })
  const text = await res.text()
  if (!res.ok) {
    throw new Error(`${new URL(url).pathname} answered ${res.status}: ${text.slice(0, 200)}`)
  }
  return text ? JSON.parse(text) : {}
}

async function read(url: string, token: string): Promise<Record<string, unknown>> {
  const res = await fetch(url, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(TIMEOUT_MS),
  })
  if (!res.ok) throw new Error(`${new URL(url).pathname} answered ${res.status}`)
  return await res.json()
}

const appFaults = (t: ChaosTarget) => read(`${t.app.url}/_chaos`, t.app.token)
const setApp = (t: ChaosTarget, body: Record<string, unknown>) =>
  control(`${t.app.url}/_chaos`, t.app.token, body)

/** A fault that is one setting of the app's fault control, off again by setting it back. */
function appSetting(
  base: Pick<Fault, 'name' | 'summary' | 'expects'> & {
    field: 'errors' | 'latency_ms' | 'leak_mb_per_s'
    on: number
    said: string
  },
): Fault {
  return {
    name: base.name,
    summary: base.summary,
    expects: base.expects,
    async inject(t) {
      await setApp(t, { [base.field]: base.on })
      await writeRecord(t.stateDir, {
        fault: base.name,
        injected_at: new Date().toISOString(),
        groups: [],
      })
      return base.said
    },
    async clear(t) {
      const was = await this.active(t).catch(() => false)
      // The app may be restarting (a heal, an out-of-memory exit): then there is nothing to undo.
      await setApp(t, { [base.field]: 0 }).catch(() => {})
      const record = await readRecord(t.stateDir, base.name)
      await dropRecord(t.stateDir, base.name)
      return was || record !== null
    },
    async active(t) {
      const now = await appFaults(t)
      return Number(now[base.field] ?? 0) > 0
    },
  }
}

export const errorSpike = appSetting({
  name: 'error_spike',
  summary: 'the API answers 500 to 70 % of requests (its /health included)',
  expects: { incident: 'service_unhealthy', finding: 'http_status', heal: 'restart_service' },
  field: 'errors',
  on: 0.7,
  said: 'the demo API answers 500 to 70 % of requests',
})

export const latencySpike = appSetting({
  name: 'latency_spike',
  summary: 'every API request takes 1.5 s longer',
  expects: { incident: 'service_unhealthy', finding: 'latency', heal: 'restart_service' },
  field: 'latency_ms',
  on: 1500,
  said: 'every request to the demo API waits 1.5 s',
})

/** The demo app's memory use as its /metrics says (the limit less what is available), in %. */
async function memoryUsedPct(t: ChaosTarget): Promise<number | null> {
  const res = await fetch(`${t.app.url}/metrics`, { signal: AbortSignal.timeout(TIMEOUT_MS) })
  if (!res.ok) return null
  const text = await res.text()
  const value = (name: string) => {
    const m = text.match(new RegExp(`^${name} ([0-9.eE+-]+)$`, 'm'))
    return m ? Number(m[1]) : null
  }
  const total = value('node_memory_MemTotal_bytes')
  const available = value('node_memory_MemAvailable_bytes')
  return total && available !== null ? (1 - available / total) * 100 : null
}

/** The memory warning line for demo-app-host: its own config, else its environment's. */
async function memoryWarningPct(t: ChaosTarget): Promise<number> {
  const sql = postgres(t.dbUrl, { max: 1, onnotice: () => {} })
  try {
    const [row] = await sql<{ pct: number }[]>`
      select coalesce((s.config ->> 'memory_warning_pct')::float8, e.memory_warning_pct::float8) as pct
        from vigil.services s join vigil.settings e on e.environment = s.environment
       where s.name = 'demo-app-host'`
    return row.pct
  } finally {
    await sql.end()
  }
}

const leak = appSetting({
  name: 'memory_leak',
  summary: "the app's process leaks half a MB a second toward its 256 MiB limit",
  expects: { incident: 'service_unhealthy', finding: 'memory_high', heal: 'restart_service' },
  field: 'leak_mb_per_s',
  // From 80 % of the limit to the out-of-memory kill takes 100 s: time for two checks a minute apart.
  on: 0.5,
  said: 'the demo app leaks half a MB a second (it is killed at 256 MiB, as a container would be)',
})

export const memoryLeak: Fault = {
  ...leak,
  // Minutes of leaking before it is a problem: measured from the check that can first see it.
  async onset(t) {
    const [used, line] = await Promise.all([memoryUsedPct(t), memoryWarningPct(t)])
    return used !== null && used >= line
  },
}

/** The version the web check expects, in vigil.services (what a deploy pipeline tells Vigil). */
async function expectVersion(t: ChaosTarget, version: string): Promise<void> {
  const sql = postgres(t.dbUrl, { max: 1, onnotice: () => {} })
  try {
    await sql`
      update vigil.services
         set config = jsonb_set(config, '{expected_version,value}', to_jsonb(${version}::text))
       where name = 'demo-web'`
  } finally {
    await sql.end()
  }
}

/**
 * A deploy the CDN did not see: the origin serves the next version and Vigil is told to expect
 * it, while the edge keeps the page it cached. The cure is a purge.
 */
export const staleVersion: Fault = {
  name: 'stale_version',
  summary: 'the app serves a new version, the CDN keeps serving the old one from its cache',
  expects: { incident: 'service_unhealthy', finding: 'stale_version', heal: 'purge_cdn' },
  async inject(t) {
    const before = await appFaults(t)
    const deployed = String(before.deployed_version ?? 'v1')
    const next = `${deployed}-hotfix`
    // The edge holds the deployed page before the origin changes.
    await fetch(`${t.edge.url}/version`, { signal: AbortSignal.timeout(TIMEOUT_MS) })
      .then((r) => r.body?.cancel())
    await setApp(t, { version: next })
    await expectVersion(t, next)
    await writeRecord(t.stateDir, {
      fault: 'stale_version',
      injected_at: new Date().toISOString(),
      groups: [],
      undo: { deployed },
    })
    return `the app now serves ${next} and Vigil expects it; the CDN still serves ${deployed}`
  },
  async clear(t) {
    const record = await readRecord(t.stateDir, 'stale_version')
    const now = await appFaults(t).catch(() => ({} as Record<string, unknown>))
    const was = now.version !== null && now.version !== undefined
    await setApp(t, { version: null }).catch(() => {})
    const deployed = String(record?.undo?.deployed ?? now.deployed_version ?? 'v1')
    await expectVersion(t, deployed)
    await control(
      `${t.edge.url}/client/v4/zones/${t.edge.zoneId}/purge_cache`,
      t.edge.token,
      { purge_everything: true },
    ).catch(() => {})
    await dropRecord(t.stateDir, 'stale_version')
    return was || record !== null
  },
  async active(t) {
    const now = await appFaults(t)
    return now.version !== null && now.version !== undefined
  },
}

/** A push whose build fails: the deploy hook makes a deployment that ends in ERROR. */
export const failingDeploy: Fault = {
  name: 'failing_deploy',
  summary: 'a deploy is triggered and its build fails (the deployment ends in ERROR)',
  expects: { incident: 'service_unhealthy', finding: 'deploy_failed', heal: 'retry_deploy' },
  async inject(t) {
    await control(`${t.vercel.url}/_chaos`, t.vercel.controlToken, { fail_deploys: 1 })
    const res = await fetch(t.vercel.deployHookUrl, {
      method: 'POST',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    })
    const body = await res.text()
    if (!res.ok) throw new Error(`the deploy hook answered ${res.status}: ${body.slice(0, 200)}`)
    await writeRecord(t.stateDir, {
      fault: 'failing_deploy',
      injected_at: new Date().toISOString(),
      groups: [],
    })
    return 'a deploy was triggered; its build fails'
  },
  async clear(t) {
    const record = await readRecord(t.stateDir, 'failing_deploy')
    await control(`${t.vercel.url}/_chaos`, t.vercel.controlToken, { clear: true }).catch(() => {})
    await dropRecord(t.stateDir, 'failing_deploy')
    return record !== null
  },
  async active(t) {
    return (await readRecord(t.stateDir, 'failing_deploy')) !== null
  },
}

export const APP_FAULTS: Fault[] = [
  errorSpike,
  latencySpike,
  memoryLeak,
  staleVersion,
  failingDeploy,
]
