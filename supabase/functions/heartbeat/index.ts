// heartbeat: the dead man's switch for jobs. A job pings /functions/v1/heartbeat/<token> (GET,
// HEAD or POST) after each run; vigil.heartbeat_verdict() turns a missed ping into a down check.
// Public (verify_jwt = false): the 64-hex-digit token is the credential.
import { sql } from '../_shared/db.ts'
import { json, preflight } from '../_shared/http.ts'

const TOKEN = /^[a-f0-9]{64}$/

Deno.serve(async (req) => {
  if (req.method === 'OPTIONS') return preflight()
  if (!['GET', 'HEAD', 'POST'].includes(req.method)) {
    return json({ error: 'method not allowed' }, 405, { allow: 'GET, HEAD, POST, OPTIONS' })
  }
  await req.body?.cancel()
  const token = new URL(req.url).pathname.split('/').filter(Boolean)[1] ?? ''
  // An unknown and a malformed token look the same, so tokens cannot be probed for shape.
  if (!TOKEN.test(token)) return json({ error: 'unknown heartbeat' }, 404)
  try {
    const [{ service }] = await sql()<
      { service: string | null }[]
    >`select vigil.record_heartbeat(${token}) as service`
    if (!service) return json({ error: 'unknown heartbeat' }, 404)
    return json({ ok: true, service })
  } catch (error) {
    console.error(
      `heartbeat: recording failed (${(error as { code?: string })?.code ?? 'unknown'})`,
    )
    return json({ error: 'database unavailable' }, 503)
  }
})
