// One health-check cycle over 1,000 HTTP targets on loopback with mixed latencies, 5 % of them
// hanging past the timeout. Measures the cycle's wall time against the ideal (the slowest target,
// capped by the timeout), and the CPU time and peak memory of the process running it.
import { join } from 'node:path'
import postgres from 'postgres'
import type { BenchContext, BenchResult } from '../devstack/bench.ts'
import { ROOT } from '../devstack/config.ts'

const TARGETS = 1000
const TIMEOUT_MS = 2000
const MAX_LATENCY_MS = 800

/** Deterministic per-target behaviour: every 20th hangs, the rest answer within MAX_LATENCY_MS. */
function latencyOf(i: number): number | 'hang' {
  return i % 20 === 7 ? 'hang' : (i * 7919) % MAX_LATENCY_MS
}

export async function run({ stack }: BenchContext): Promise<BenchResult> {
  const hanging: ((r: Response) => void)[] = []
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen() {} }, (req) => {
    const i = Number(new URL(req.url).pathname.split('/')[2])
    const latency = latencyOf(i)
    return new Promise<Response>((resolve) => {
      if (latency === 'hang') hanging.push(resolve)
      else {setTimeout(() =>
          resolve(
            new Response('{"status":"ok"}', { headers: { 'content-type': 'application/json' } }),
          ), latency)}
    })
  })
  const sql = postgres(stack.dbUrl, { max: 2, onnotice: () => {} })
  const names = Array.from(
    { length: TARGETS },
    (_, i) => `bench-target-${String(i).padStart(4, '0')}`,
  )
  try {
    await sql`update cron.job set active = false where jobname = 'vigil-health-check'`
    await sql`insert into vigil.services ${
      sql(names.map((name, i) => ({
        name,
        kind: 'http',
        timeout_ms: TIMEOUT_MS,
        config: sql.json({
          url: `http://127.0.0.1:${server.addr.port}/t/${i}`,
          latency_warning_ms: 900,
          latency_critical_ms: 1900,
        }),
      })))
    }`
    const worker = new Deno.Command(Deno.execPath(), {
      args: [
        'run',
        '-A',
        '--config',
        join(ROOT, 'deno.json'),
        join(ROOT, 'bench', 'health-cycle-worker.ts'),
      ],
      env: { VIGIL_BENCH_DB_URL: stack.dbUrl, VIGIL_BENCH_SERVICES: names.join(',') },
      stdout: 'piped',
      stderr: 'inherit',
    })
    const out = await worker.output()
    if (out.code !== 0) throw new Error(`the cycle worker failed (exit ${out.code})`)
    const measured = JSON.parse(new TextDecoder().decode(out.stdout).trim().split('\n').at(-1)!)
    const ideal = Math.max(...names.map((_, i) => {
      const l = latencyOf(i)
      return l === 'hang' ? TIMEOUT_MS : Math.min(l, TIMEOUT_MS)
    }))
    const ratio = measured.warm.wall_ms / ideal
    const cpuS = measured.warm.cpu_ms / 1000
    const peakMb = measured.peak_rss_mb
    return {
      name: 'health-cycle',
      measures: `one cycle, ${TARGETS} HTTP targets on loopback, ${
        TARGETS / 20
      } hanging past a ${TIMEOUT_MS} ms timeout`,
      result: `${ratio.toFixed(2)} × ideal (${measured.warm.wall_ms} ms vs ${ideal} ms), ${
        cpuS.toFixed(2)
      } s CPU, ${peakMb} MB peak`,
      goal: '≤ 1.2 × ideal, < 1.4 s CPU, < 200 MB',
      passed: ratio <= 1.2 && cpuS < 1.4 && peakMb < 200,
      ideal_ms: ideal,
      ...measured,
    }
  } finally {
    for (const resolve of hanging) resolve(new Response('late'))
    await sql`delete from vigil.services where name like 'bench-target-%'`
    await sql`update cron.job set active = true where jobname = 'vigil-health-check'`
    await sql.end()
    await server.shutdown()
  }
}
