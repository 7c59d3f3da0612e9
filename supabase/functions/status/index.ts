// The public status endpoint: each enabled service's status and 24 h uptime, and the overall
// status. Public by design (verify_jwt = false): it reads only the vigil.public_status view.
// POST answers like GET, because vigil.invoke (pg_net, or the local relay) always posts.
import { sql } from '../_shared/db.ts'
import { json, preflight } from '../_shared/http.ts'

type OverallStatus = 'ok' | 'degraded' | 'down'

interface PublicStatusRow {
  name: string
  status: string
  /** numeric arrives as a string; null when the service has no check in the last 24 h. */
  uptime_24h: string | null
}

interface ServiceStatus {
  name: string
  status: string
  uptime_24h: number | null
}

Deno.serve(async (req) => {
  if (req.method === 'OPTIONS') return preflight()
  if (!['GET', 'HEAD', 'POST'].includes(req.method)) {
    return json({ error: 'method not allowed' }, 405, { allow: 'GET, HEAD, POST, OPTIONS' })
  }
  let services: ServiceStatus[]
  try {
    services = await readServices()
  } catch (error) {
    // The error text can carry the host or user of the connection: it stays in the logs.
    console.error(`status: reading vigil.public_status failed: ${errorCode(error)}`)
    return json({ error: 'database unavailable' }, 503)
  }
  return json(
    { status: overallStatus(services), services, generated_at: new Date().toISOString() },
    200,
    { 'cache-control': 'public, max-age=10' },
  )
})

async function readServices(): Promise<ServiceStatus[]> {
  const rows = await sql()<PublicStatusRow[]>`
    select name, status, uptime_24h from vigil.public_status order by name`
  return rows.map((row) => ({
    name: row.name,
    status: row.status,
    uptime_24h: row.uptime_24h === null ? null : Number(row.uptime_24h),
  }))
}

function overallStatus(services: ServiceStatus[]): OverallStatus {
  if (services.some((service) => service.status === 'down')) return 'down'
  if (services.some((service) => service.status === 'degraded')) return 'degraded'
  return 'ok'
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown })?.code
  return typeof code === 'string' ? code : error instanceof Error ? error.name : 'unknown error'
}
