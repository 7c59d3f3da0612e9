// Loopback HTTP targets for the sharded cycle benchmark, in a process of their own so that serving
// 5,000 requests is counted neither against the functions nor against the exporter measured.
// GET /t/<i>: target i answers {"status":"ok"} after its latency, or never (VIGIL_BENCH_HANG_EVERY).
// Listens on VIGIL_BENCH_PORTS ports, as many targets are many hosts: one listener's accept queue
// (a few hundred connections) would otherwise drop the connections of 5,000 targets probed at once.
// Prints the ports, comma-separated, then serves until killed.
const hangEvery = Number(Deno.env.get('VIGIL_BENCH_HANG_EVERY') ?? '50')
const maxLatencyMs = Number(Deno.env.get('VIGIL_BENCH_MAX_LATENCY_MS') ?? '500')
const ports = Number(Deno.env.get('VIGIL_BENCH_PORTS') ?? '20')

/** Deterministic per target: every hangEvery-th (from the 7th) hangs, the rest answer in time. */
export function latencyOf(i: number, every = hangEvery, max = maxLatencyMs): number | 'hang' {
  return i % every === 7 ? 'hang' : (i * 7919) % max
}

function serve(req: Request): Promise<Response> {
  const i = Number(new URL(req.url).pathname.split('/')[2])
  const latency = Number.isInteger(i) ? latencyOf(i) : 0
  // A hanging target holds the request until the client gives up and closes it.
  if (latency === 'hang') return new Promise<Response>(() => {})
  return new Promise<Response>((resolve) =>
    setTimeout(
      () =>
        resolve(
          new Response('{"status":"ok"}', { headers: { 'content-type': 'application/json' } }),
        ),
      latency,
    )
  )
}

if (import.meta.main) {
  const servers = Array.from(
    { length: ports },
    () => Deno.serve({ hostname: '127.0.0.1', port: 0, onListen() {} }, serve),
  )
  console.log(servers.map((s) => s.addr.port).join(','))
}
