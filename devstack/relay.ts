// The local stand-in for pg_net: LISTENs on 'vigil_invoke', posts each invocation to the functions
// gateway with the service_role key, and records the outcome in vigil.invocations.
// Dev tooling only: on Supabase, vigil.invoke uses pg_net and never notifies.
import postgres from 'postgres'

export interface InvokeRelayOptions {
  dbUrl: string
  gatewayUrl: string
  serviceRoleKey: string
  /** Wall-clock limit of one call, as the edge runtime's (150 s on the free tier). */
  timeoutMs?: number
  /** How far back a restarted relay picks up invocations it missed while down. */
  catchUpWindowMs?: number
  log?: (line: string) => void
}

export interface InvokeRelay {
  /** Gives calls in flight graceMs to finish, records the rest as failed, then disconnects. */
  stop(graceMs?: number): Promise<void>
}

interface Claimed {
  id: string
  fn: string
  body: unknown
}

const ERROR_EXCERPT = 1000

export async function startInvokeRelay(opts: InvokeRelayOptions): Promise<InvokeRelay> {
  const timeoutMs = opts.timeoutMs ?? 150_000
  const catchUpMs = opts.catchUpWindowMs ?? 5 * 60_000
  const log = opts.log ?? (() => {})
  const sql = postgres(opts.dbUrl, {
    max: 4,
    onnotice: () => {},
    connection: { application_name: 'vigil-relay' },
  })
  const inFlight = new Set<Promise<void>>()
  const shutdown = new AbortController()
  let stopped = false

  // Claiming is a conditional update, so a notification and the catch-up sweep never both post.
  async function claim(id: string): Promise<Claimed | null> {
    const rows = await sql<Claimed[]>`
      update vigil.invocations
         set state = 'sent', claimed_at = now()
       where id = ${id} and state = 'pending' and transport = 'notify'
      returning id::text, fn, body`
    return rows[0] ?? null
  }

  async function record(id: string, result: { status?: number; error?: string }, started: number) {
    const ok = result.status !== undefined && result.status >= 200 && result.status <= 299
    await sql`
      update vigil.invocations
         set state = ${ok ? 'succeeded' : 'failed'},
             status_code = ${result.status ?? null},
             error = ${result.error ?? null},
             completed_at = now(),
             duration_ms = ${Math.round(performance.now() - started)}
       where id = ${id}`
  }

  async function post(inv: Claimed) {
    const started = performance.now()
    let result: { status?: number; error?: string }
    try {
      const res = await fetch(`${opts.gatewayUrl}/functions/v1/${inv.fn}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${opts.serviceRoleKey}`,
        },
        body: JSON.stringify(inv.body),
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), shutdown.signal]),
      })
      const text = await res.text()
      result = res.ok
        ? { status: res.status }
        : { status: res.status, error: text.slice(0, ERROR_EXCERPT) || res.statusText }
    } catch (err) {
      const reason = err instanceof DOMException && err.name === 'TimeoutError'
        ? `no answer within ${timeoutMs} ms`
        : shutdown.signal.aborted
        ? 'the local stack stopped before the function answered'
        : `request failed: ${(err as Error).message}`
      result = { error: reason }
    }
    await record(inv.id, result, started)
    log(`invoke #${inv.id} ${inv.fn} → ${result.status ?? result.error}`)
  }

  function handle(id: string) {
    if (stopped) return
    const task = (async () => {
      try {
        const inv = await claim(id)
        if (inv) await post(inv)
      } catch (err) {
        if (!stopped) log(`invoke #${id} could not be relayed: ${(err as Error).message}`)
      }
    })()
    inFlight.add(task)
    task.finally(() => inFlight.delete(task))
  }

  async function catchUp() {
    const missed = await sql<{ id: string }[]>`
      select id::text from vigil.invocations
       where state = 'pending' and transport = 'notify'
         and requested_at > now() - ${catchUpMs / 1000} * interval '1 second'
       order by id`
    for (const { id } of missed) handle(id)
  }

  const listener = await sql.listen('vigil_invoke', (payload) => {
    if (/^\d+$/.test(payload)) handle(payload)
    else log(`ignored malformed vigil_invoke payload ${JSON.stringify(payload.slice(0, 40))}`)
  }, catchUp)
  // A notification lost in a reconnect is still picked up within a few seconds.
  const timer = setInterval(() => catchUp().catch(() => {}), 5_000)

  return {
    async stop(graceMs = 5_000) {
      stopped = true
      clearInterval(timer)
      await listener.unlisten().catch(() => {})
      const grace = setTimeout(() => shutdown.abort(), graceMs)
      await Promise.allSettled([...inFlight])
      clearTimeout(grace)
      await sql.end({ timeout: 5 })
    },
  }
}
