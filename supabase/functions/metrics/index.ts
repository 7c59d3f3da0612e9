// metrics: Vigil's state for Prometheus (text exposition format 0.0.4), scraped as any exporter is:
// services up and their status, uptime, probe latency histograms, open incidents, heals by strategy
// and outcome, alerts by channel and status, the latest cycle. GET or HEAD, with the token in the
// VIGIL_METRICS_TOKEN secret as a bearer token or as basic auth's password (any user name), so
// Prometheus' `authorization` and `basic_auth` scrape settings both work. Without the secret the
// endpoint is off (503), never open. verify_jwt = false: the token is the credential.
import { sql } from '../_shared/db.ts'
import { json } from '../_shared/http.ts'
import { authorized } from '../_shared/metrics/auth.ts'
import { exposition, Snapshot } from '../_shared/metrics/exposition.ts'

const TOKEN_SECRET = 'VIGIL_METRICS_TOKEN'
/** A shorter token is refused: it would be guessable. */
const MIN_TOKEN_CHARS = 16

Deno.serve(async (req) => {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return json({ error: 'method not allowed' }, 405, { allow: 'GET, HEAD' })
  }
  const token = Deno.env.get(TOKEN_SECRET) ?? ''
  if (token.length < MIN_TOKEN_CHARS) {
    return json({
      error:
        `metrics are off: set the ${TOKEN_SECRET} secret (at least ${MIN_TOKEN_CHARS} characters)`,
    }, 503)
  }
  if (!authorized(req.headers.get('authorization'), token)) {
    return json({ error: 'a bearer token or basic auth with the metrics token is required' }, 401, {
      'www-authenticate': 'Basic realm="vigil-metrics", Bearer',
    })
  }
  const started = performance.now()
  let snapshot: Snapshot
  try {
    const [row] = await sql()<
      { snapshot: unknown }[]
    >`select vigil.prometheus_snapshot() as snapshot`
    snapshot = Snapshot.parse(row.snapshot)
  } catch (error) {
    console.error(
      `metrics: the snapshot could not be read (${
        (error as { code?: string })?.code ?? (error as Error)?.name
      })`,
    )
    return json({ error: 'database unavailable' }, 503)
  }
  const body = exposition(snapshot, performance.now() - started)
  return new Response(req.method === 'HEAD' ? null : body, {
    headers: {
      'content-type': 'text/plain; version=0.0.4; charset=utf-8',
      'cache-control': 'no-store',
    },
  })
})
