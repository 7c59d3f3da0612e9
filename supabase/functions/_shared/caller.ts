// Who is calling: functions that act accept only the service role, whatever the gateway let
// through (verify_jwt can be switched off, and the anon key ships in every frontend). The key is
// compared whole, in constant time, against the project's service-role key and its secret keys.

function keys(): string[] {
  const out: string[] = []
  const legacy = Deno.env.get('SUPABASE_SERVICE_ROLE_KEY')
  if (legacy) out.push(legacy)
  // Newer projects: SUPABASE_SECRET_KEYS is a JSON object of named sb_secret_… keys.
  const secretKeys = Deno.env.get('SUPABASE_SECRET_KEYS')
  if (secretKeys) {
    try {
      for (const v of Object.values(JSON.parse(secretKeys) as Record<string, unknown>)) {
        if (typeof v === 'string' && v.length >= 20) out.push(v)
      }
    } catch {
      // Not JSON: ignore rather than accept anything.
    }
  }
  return out
}

function sameText(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a)
  const y = new TextEncoder().encode(b)
  let diff = x.length ^ y.length
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0)
  return diff === 0
}

/** The key the request presents: `Authorization: Bearer …`, else `apikey` (sb_secret_ keys). */
function presented(req: Request): string | null {
  const auth = req.headers.get('authorization')
  const bearer = auth?.match(/^Bearer\s+(\S+)$/i)?.[1]
  return bearer ?? req.headers.get('apikey')
}

/** null when the caller is the service role; otherwise the 401 or 403 to answer. */
export function refuseUnlessServiceRole(req: Request): Response | null {
  const key = presented(req)
  const body = (status: number, error: string) =>
    new Response(JSON.stringify({ error }), {
      status,
      headers: { 'content-type': 'application/json; charset=utf-8', 'www-authenticate': 'Bearer' },
    })
  if (!key) return body(401, 'this function needs the service role key')
  const known = keys()
  if (known.length === 0) return body(500, 'the function has no service role key to compare with')
  let match = false
  for (const k of known) match = sameText(key, k) || match
  return match ? null : body(403, 'only the service role may call this function')
}
