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
