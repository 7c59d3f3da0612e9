// `npm run bench`: runs each benchmark in bench/ against a private stack, writes its result to
// bench/results/<name>.json and the table between the bench markers in README.md.
//   npm run bench                       every benchmark
//   npm run bench -- health-cycle       only the named ones
import { join } from 'node:path'
import { ROOT } from './config.ts'
import { freePort, privateStateDir, type Stack, startStack } from './stack.ts'

export interface BenchResult {
  name: string
  /** One line for the README table: what was measured. */
  measures: string
  result: string
  goal: string
  passed: boolean
  [detail: string]: unknown
}

export interface BenchContext {
  stack: Stack
}

const BENCHMARKS = [
  'health-cycle',
  'health-cycle-sharded',
  'health-cycle-sharded-2s',
  'postgres-probe',
  'uptime',
  'heal-latency',
  'alert-latency',
  'outbox-throughput',
  'dashboard-first-screen',
  'anomaly',
] as const
const START = '<!-- bench:start -->'
const END = '<!-- bench:end -->'

function machine() {
  return {
    cores: navigator.hardwareConcurrency,
    memory_gib: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
    deno: Deno.version.deno,
  }
}

async function updateReadme(results: BenchResult[]) {
  const table = [
    '| benchmark | measures | result | goal | met |',
    '| --- | --- | --- | --- | --- |',
    ...results.map((r) =>
      `| ${r.name} | ${r.measures} | ${r.result} | ${r.goal} | ${r.passed ? 'yes' : 'no'} |`
    ),
  ].join('\n')
  await writeReadmeSection(START, END, table)
}

/** Replaces what README.md holds between two markers, laid out as deno fmt wants it. */
export async function writeReadmeSection(start: string, end: string, text: string) {
  const path = join(ROOT, 'README.md')
  const readme = await Deno.readTextFile(path)
  const a = readme.indexOf(start)
  const b = readme.indexOf(end)
  if (a < 0 || b < a) throw new Error(`README.md lacks the ${start} … ${end} markers`)
  await Deno.writeTextFile(
    path,
    `${readme.slice(0, a + start.length)}\n${text}\n${readme.slice(b)}`,
  )
  // As deno fmt lays it out, so `npm test`'s format check stays green after a run.
  const fmt = await new Deno.Command(Deno.execPath(), {
    args: ['fmt', '--config', join(ROOT, 'deno.json'), path],
    stdout: 'null',
    stderr: 'inherit',
  }).output()
  if (!fmt.success) throw new Error('deno fmt could not lay out README.md')
}

async function readAll(): Promise<BenchResult[]> {
  const results: BenchResult[] = []
  for (const name of BENCHMARKS) {
    try {
      results.push(
        JSON.parse(await Deno.readTextFile(join(ROOT, 'bench', 'results', `${name}.json`))),
      )
    } catch { /* not run yet */ }
  }
  return results
}

export async function runBenchmarks(args: string[]): Promise<void> {
  const names = args.length ? args : [...BENCHMARKS]
  const unknown = names.filter((n) => !(BENCHMARKS as readonly string[]).includes(n))
  if (unknown.length) {
    throw new Error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${BENCHMARKS.join(', ')}`)
  }
  const stateDir = await privateStateDir('vigil-bench-')
  const stack = await startStack({
    stateDir,
    dbPort: freePort(),
    apiPort: freePort(),
    ephemeral: true,
  })
  try {
    for (const name of names) {
      console.log(`── ${name}`)
      const mod = await import(join(ROOT, 'bench', `${name}.ts`))
      const result: BenchResult = {
        ...(await mod.run({ stack } satisfies BenchContext)),
        date: new Date().toISOString(),
        machine: machine(),
      }
      await Deno.writeTextFile(
        join(ROOT, 'bench', 'results', `${name}.json`),
        JSON.stringify(result, null, 2) + '\n',
      )
      console.log(
        `${name}: ${result.result} (goal ${result.goal}) ${result.passed ? 'met' : 'NOT met'}`,
      )
    }
  } finally {
    await stack.stop()
    await Deno.remove(stateDir, { recursive: true }).catch(() => {})
  }
  await updateReadme(await readAll())
}
