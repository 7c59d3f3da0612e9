// Runs health-check cycles in a process of its own, so their CPU time and peak memory can be read
// from /proc without the target server's. Prints one JSON line.
import postgres from 'postgres'
import { runCycle } from '../supabase/functions/_shared/health/cycle.ts'

const TICKS_PER_SECOND = 100

async function cpuMs(): Promise<number> {
  const fields = (await Deno.readTextFile('/proc/self/stat')).split(') ')[1].split(' ')
  return ((Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND) * 1000
}

async function peakRssMb(): Promise<number> {
  const status = await Deno.readTextFile('/proc/self/status')
  return Math.round(Number(status.match(/VmHWM:\s+(\d+) kB/)![1]) / 1024)
}

const sql = postgres(Deno.env.get('VIGIL_BENCH_DB_URL')!, {
  max: 2,
  prepare: false,
  onnotice: () => {},
})
const only = Deno.env.get('VIGIL_BENCH_SERVICES')!.split(',')

async function measure() {
  const cpu0 = await cpuMs()
  const t0 = performance.now()
  const report = await runCycle({
    sql,
    only,
    projectUrl: 'http://127.0.0.1:1',
    secret: () => undefined,
  })
  return {
    wall_ms: Math.round(performance.now() - t0),
    cpu_ms: Math.round((await cpuMs()) - cpu0),
    healthy: report.healthy,
    degraded: report.degraded,
    down: report.down,
  }
}

const rss = async (label: string) => {
  if (Deno.env.get('VIGIL_BENCH_DEBUG')) {
    console.error(
      label,
      (await Deno.readTextFile('/proc/self/status')).match(/VmRSS:\s+(\d+ kB)/)![1],
    )
  }
}
await rss('imported')
// The first cycle pays for module loading and connection set-up, as a cold worker would.
const cold = await measure()
await rss('after cold')
const warm = await measure()
await rss('after warm')
await sql.end()
console.log(JSON.stringify({ cold, warm, peak_rss_mb: await peakRssMb() }))
