// Response helpers shared by the edge functions.

/** What browsers need to call a function from another origin (supabase-js sends these headers). */
export const corsHeaders: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'authorization, x-client-info, apikey, content-type',
  'access-control-allow-methods': 'GET, HEAD, POST, OPTIONS',
}

export function json(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  const merged = new Headers(corsHeaders)
  merged.set('content-type', 'application/json; charset=utf-8')
  for (const [name, value] of new Headers(headers)) merged.set(name, value)
  return new Response(JSON.stringify(body), { status, headers: merged })
}

/** The answer to a CORS preflight. */
export function preflight(): Response {
  return new Response(null, { status: 204, headers: corsHeaders })
}

/** An environment parse that failed, as the 500 a function answers (names only, never values). */
export function envInvalid(error: { issues: { path: PropertyKey[] }[] }): Response {
  return json({
    error: `function environment invalid: ${error.issues.map((i) => i.path.join('.')).join(', ')}`,
  }, 500)
}

/** A function's request body is small JSON; anything larger is refused before it is read whole. */
export const MAX_BODY_BYTES = 65_536

/** The body as text, at most `limit` bytes; null when it is larger (or says it is). */
export async function readBodyText(req: Request, limit = MAX_BODY_BYTES): Promise<string | null> {
  const declared = Number(req.headers.get('content-length') ?? '0')
  if (declared > limit) {
    await req.body?.cancel()
    return null
  }
  if (!req.body) return ''
  const reader = req.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel()
      return null
    }
    chunks.push(value)
  }
  const bytes = new Uint8Array(size)
  let at = 0
  for (const c of chunks) {
    bytes.set(c, at)
    at += c.byteLength
  }
  return new TextDecoder().decode(bytes)
}

/**
 * The request's JSON body checked against `schema`: the value, or the 4xx to answer, naming every
 * bad field (413 past MAX_BODY_BYTES). An empty body is `{}`.
 */
export async function readJsonBody<T>(
  req: Request,
  schema: {
    safeParse(
      v: unknown,
    ):
      | { success: true; data: T }
      | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } }
  },
): Promise<{ ok: true; data: T } | { ok: false; response: Response }> {
  const text = await readBodyText(req)
  if (text === null) {
    return {
      ok: false,
      response: json({ error: `body must be at most ${MAX_BODY_BYTES} bytes` }, 413),
    }
  }
  let raw: unknown
  try {
    raw = JSON.parse(text.trim() || '{}')
  } catch {
    return { ok: false, response: json({ error: 'body must be JSON' }, 400) }
  }
  const parsed = schema.safeParse(raw)
  if (parsed.success) return { ok: true, data: parsed.data }
  const error = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join(
    '; ',
  )
  return { ok: false, response: json({ error }, 400) }
}
