// Small HTTP helpers the demo's parts share: JSON answers, the bearer token of a request compared in
// constant time, zod issues as "field: problem", and free ports. Dev tooling only: never deployed.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { z } from 'zod'

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  })
}

/** The token of `Authorization: Bearer <token>`, or null. */
export function bearer(request: Request): string | null {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(request.headers.get('authorization') ?? '')
  return m ? m[1] : null
}

/**
 * Whether `given` is `expected`, in time that does not depend on where they differ: both are hashed
 * first, so their lengths leak nothing either.
 */
export function sameToken(given: string | null, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest()
  const ok = timingSafeEqual(digest(given ?? ''), digest(expected))
  return ok && given !== null
}

/** A JSON request body as a plain object, or the problem with it ("body: …"). */
export async function readObject(
  request: Request,
): Promise<{ ok: true; value: Record<string, unknown> } | { ok: false; error: string }> {
  let value: unknown
  try {
    value = JSON.parse(await request.text())
  } catch {
    return { ok: false, error: 'body: must be JSON' }
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, error: 'body: must be a JSON object' }
  }
  return { ok: true, value: value as Record<string, unknown> }
}

/** Every issue as "field: problem" (the root is "body"). */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => `${k}: unknown field`).join('; ')
    }
    return `${issue.path.map(String).join('.') || 'body'}: ${issue.message}`
  }).join('; ')
}

/** A port the OS says is free now. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const { port } = listener.addr as Deno.NetAddr
  listener.close()
  return port
}

/** Lower-case hex of `bytes` random bytes. */
export function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))]
    .map((b) => b.toString(16).padStart(2, '0')).join('')
}
