// One cycle reads at most so many bytes of response bodies across all its probes. Each probe caps
// its own body (64 KiB for an API, 10 MiB for a metrics page), but a thousand services each near
// their cap would still hold more than an edge function's 256 MB: the cycle's budget is shared,
// and a probe whose body would overrun it fails ("the cycle's read budget is spent"), not the cycle.

/** The default budget of one cycle: well under the edge runtime's 256 MB. */
export const CYCLE_READ_BUDGET_BYTES = 48 * 1024 * 1024

export class ReadBudgetSpent extends Error {
  constructor(limit: number) {
    super(
      `the cycle's read budget of ${+(limit / 1048576).toFixed(1)} MiB is spent across its probes`,
    )
    this.name = 'ReadBudgetSpent'
  }
}

/** A fetch whose response bodies draw on one shared budget of `limit` bytes. */
export function budgetedFetch(inner: typeof fetch, limit: number): typeof fetch {
  let left = limit
  const take = (n: number) => {
    if (n > left) {
      left = 0
      return false
    }
    left -= n
    return true
  }
  const wrapped = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const res = await inner(input, init)
    if (!res.body) return res
    const declared = Number(res.headers.get('content-length'))
    if (res.headers.has('content-length') && Number.isInteger(declared) && declared >= 0) {
      // Charged up front, and the body left untouched: the runtime reads it in one go.
      if (take(declared)) return res
      await res.body.cancel().catch(() => {})
      throw new ReadBudgetSpent(limit)
    }
    const counted = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          if (take(chunk.byteLength)) controller.enqueue(chunk)
          else controller.error(new ReadBudgetSpent(limit))
        },
      }),
    )
    return new Response(counted, {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
    })
  }
  // Keep what the outbound guard hangs on its fetch (checkTarget), for probes that ask it.
  return Object.assign(wrapped, inner) as typeof fetch
}
