// Who is calling. Functions that act (health-check, auto-heal, notify) accept only the service
// role, whatever the gateway let through: verify_jwt can be switched off, and the anon key ships in
// every frontend. The service role is recognised by its key, compared whole and in constant time
// with the project's service-role key and secret keys; nothing in a token's claims can stand in for
// it. Other callers are told apart (with jose, never by hand) only to answer 401 or 403.
import { decodeJwt } from 'jose'
import { sameText } from './hmac.ts'
import { json, readJsonBody } from './http.ts'

export type Caller =
  | { kind: 'service_role' }
  | { kind: 'none' }
  /** A token that is not a JWT, or not one of the project's keys. */
  | { kind: 'unknown' }
  | { kind: 'anon' }
  | { kind: 'user'; operator: boolean }

function serviceKeys(): string[] {
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

/**
 * A service-role key of the project's to call its own functions with, through a gateway that
 * verifies JWTs: the legacy service-role JWT. Undefined when the project has only sb_secret_ keys
 * (not JWTs, so a verify_jwt gateway would refuse them as bearer tokens).
 */
export function ownServiceKey(): string | undefined {
  return serviceKeys().find((key) => key.split('.').length === 3)
}

/** The key the request presents: `Authorization: Bearer …`, else `apikey` (sb_secret_ keys). */
function presented(req: Request): string | null {
  const auth = req.headers.get('authorization')
  const bearer = auth?.match(/^Bearer\s+(\S+)$/i)?.[1]
  return bearer ?? req.headers.get('apikey')
}

export function identify(req: Request): Caller {
  const key = presented(req)
  if (!key) return { kind: 'none' }
  let match = false
  for (const k of serviceKeys()) match = sameText(key, k) || match
  if (match) return { kind: 'service_role' }
  try {
    // Unverified on purpose: it only picks the answer. Acceptance is the key comparison above.
    const claims = decodeJwt(key) as { role?: unknown; app_metadata?: { role?: unknown } }
    if (claims.role === 'anon') return { kind: 'anon' }
    if (claims.role === 'authenticated') {
      return { kind: 'user', operator: claims.app_metadata?.role === 'devops' }
    }
  } catch {
    // Not a JWT.
  }
  return { kind: 'unknown' }
}

/** null when the caller is the service role; otherwise the 401 or 403 to answer, having read nothing. */
export function refuseUnlessServiceRole(req: Request): Response | null {
  if (serviceKeys().length === 0) {
    return answer(500, 'the function has no service role key to compare with')
  }
  const caller = identify(req)
  switch (caller.kind) {
    case 'service_role':
      return null
    case 'none':
      return answer(401, 'this function needs the service role key')
    case 'unknown':
      return answer(401, "this key is not one of the project's keys")
    case 'anon':
      return answer(403, 'only the service role may call this function, not the anon key')
    case 'user':
      return answer(
        403,
        `only the service role may call this function, not a signed-in ${
          caller.operator ? 'operator' : 'user'
        }`,
      )
  }
}

function answer(status: number, error: string): Response {
  return new Response(JSON.stringify({ error }), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'www-authenticate': 'Bearer' },
  })
}

/**
 * What a service-role function checks first, in this order: a POST, from the service role, with a
 * JSON body `schema` accepts. The body's value, or the response to answer.
 */
export async function servicePost<T>(
  req: Request,
  schema: Parameters<typeof readJsonBody<T>>[1],
): Promise<{ ok: true; data: T } | { ok: false; response: Response }> {
  if (req.method !== 'POST') {
    return { ok: false, response: json({ error: 'method not allowed' }, 405, { allow: 'POST' }) }
  }
  const refused = refuseUnlessServiceRole(req)
  if (refused) return { ok: false, response: refused }
  return await readJsonBody(req, schema)
}
