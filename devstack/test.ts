// `npm test`: starts a private stack (own data folder, free ports, never the one `npm start` runs),
// runs every suite against it, stops it, and prints one closing line 'N passed, N failed'.
//   npm test                 all suites
//   npm test -- pgtap deno   only the named suites
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { DEV_OPERATOR, DEV_VIEWER, ROOT } from './config.ts'
import { freePort, privateStateDir, type Stack, startStack } from './stack.ts'

interface SuiteResult {
  name: string
  passed: number
  failed: number
  code: number
}

type Suite = (stack: Stack) => Promise<SuiteResult>

async function run(
  name: string,
  argv: string[],
  env: Record<string, string>,
): Promise<{ code: number; out: string }> {
  console.log(`\n── ${name}: ${argv.map((a) => a.replace(ROOT + '/', '')).join(' ')}`)
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: ROOT,
    env,
    stdout: 'piped',
    stderr: 'inherit',
  }).spawn()
  let out = ''
  const decoder = new TextDecoder()
  for await (const chunk of child.stdout) {
    const text = decoder.decode(chunk, { stream: true })
    out += text
    await Deno.stdout.write(chunk)
  }
  const { code } = await child.status
  return { code, out }
}

function testEnv(stack: Stack): Record<string, string> {
  return {
    VIGIL_TEST_DB_URL: stack.dbUrl,
    VIGIL_TEST_AGENT_DB_URL: stack.agentDbUrl,
    VIGIL_TEST_API_URL: stack.apiUrl,
    VIGIL_TEST_ANON_KEY: stack.keys.anon,
    VIGIL_TEST_SERVICE_ROLE_KEY: stack.keys.service_role,
    VIGIL_TEST_PROVIDERS_URL: stack.providers.url,
    ...(stack.dashboard ? { VIGIL_TEST_DASHBOARD_URL: stack.dashboard.url } : {}),
    VIGIL_TEST_OPERATOR_EMAIL: DEV_OPERATOR.email,
    VIGIL_TEST_OPERATOR_PASSWORD: DEV_OPERATOR.password,
    VIGIL_TEST_VIEWER_EMAIL: DEV_VIEWER.email,
    VIGIL_TEST_VIEWER_PASSWORD: DEV_VIEWER.password,
    NO_COLOR: '1',
  }
}

async function sqlFiles(dir: string): Promise<string[]> {
  const files: string[] = []
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith('.sql')) files.push(join(dir, e.name))
  }
  return files.sort()
}

const pgtap: Suite = async (stack) => {
  const url = new URL(stack.dbUrl)
  const files = await sqlFiles(join(ROOT, 'supabase', 'tests'))
  const { code, out } = await run('pgTAP', [
    'pg_prove',
    '--ext',
    '.sql',
    '-h',
    url.hostname,
    '-p',
    url.port,
    '-U',
    'postgres',
    '-d',
    'postgres',
    ...files,
  ], { PGPASSWORD: decodeURIComponent(url.password) })
  const total = Number(out.match(/Tests=(\d+)/)?.[1] ?? 0)
  const failed = [...out.matchAll(/Failed (\d+)\/\d+ subtests/g)].reduce(
    (n, m) => n + Number(m[1]),
    0,
  )
  // A file that died before its plan ran shows no subtest counts: count it as one failure.
  const broken = code !== 0 && failed === 0 ? 1 : 0
  return { name: 'pgTAP', passed: total - failed, failed: failed + broken, code }
}

const deno: Suite = async (stack) => {
  const { code, out } = await run('Deno', [
    Deno.execPath(),
    'test',
    '-A',
    '--config',
    join(ROOT, 'deno.json'),
    'tests/',
    'supabase/functions/',
  ], testEnv(stack))
  const m = [...out.matchAll(/(\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed/g)].at(-1)
  const passed = Number(m?.[1] ?? 0)
  const failed = Number(m?.[3] ?? 0) + (code !== 0 && !m ? 1 : 0)
  return { name: 'Deno', passed, failed, code }
}

const dashboard: Suite = async (stack) => {
  // Its end-to-end tests need the served build; without it they would be skipped, silently.
  if (!stack.dashboard) {
    console.log(
      '\n── dashboard: not built, so its end-to-end tests cannot run (npm test builds it)',
    )
    return { name: 'dashboard', passed: 0, failed: 1, code: 1 }
  }
  const { code, out } = await run(
    'dashboard',
    ['npm', 'test', '--prefix', join(ROOT, 'dashboard')],
    testEnv(stack),
  )
  // Vitest's summary: "Tests  95 passed (95)" or "Tests  2 failed | 95 passed (97)".
  const summary = out.match(/Tests\s+([^\n]*)\(\d+\)/)?.[1] ?? ''
  const failedTests = Number(summary.match(/(\d+) failed/)?.[1] ?? 0)
  const passed = Number(summary.match(/(\d+) passed/)?.[1] ?? 0)
  const failed = failedTests + (code !== 0 && failedTests === 0 ? 1 : 0)
  return { name: 'dashboard', passed, failed, code }
}

/** Format, lint and type checks over the whole project, as CI would run them by hand. */
const staticChecks: Suite = async () => {
  let passed = 0
  let failed = 0
  let worst = 0
  const denoJson = join(ROOT, 'deno.json')
  for (
    const [what, args] of [
      ['deno fmt --check', ['fmt', '--check', '--config', denoJson]],
      ['deno lint', ['lint', '--config', denoJson]],
      [
        'deno check',
        [
          'check',
          '--config',
          denoJson,
          'supabase/functions/',
          'devstack/',
          'shared/',
          'bench/',
          'demo/',
          'cli/',
        ],
      ],
    ] as const
  ) {
    const { code } = await run(what, [Deno.execPath(), ...args], { NO_COLOR: '1' })
    if (code === 0) passed++
    else {
      failed++
      worst = code
    }
  }
  return { name: 'static', passed, failed, code: worst }
}

const suites: Record<string, Suite> = { static: staticChecks, pgtap, deno, dashboard }

function wanted(args: string[]): string[] {
  const names = args.length > 0 ? args : Object.keys(suites)
  const unknown = names.filter((n) => !(n in suites))
  if (unknown.length) {
    throw new Error(
      `unknown test suite(s): ${unknown.join(', ')}; known: ${Object.keys(suites).join(', ')}`,
    )
  }
  const dashboardHasTests = existsSync(join(ROOT, 'dashboard', 'package.json'))
  return names.filter((n) => n !== 'dashboard' || dashboardHasTests)
}

export async function runTests(args: string[]): Promise<void> {
  const names = wanted(args)
  const stateDir = await privateStateDir('vigil-test-')
  const serverLog: string[] = []
  let stack: Stack | null = null
  const results: SuiteResult[] = []
  // Interrupted (Ctrl-C, a CI timeout): still stop the stack, whose postgres runs in its own session.
  const interrupted = () => {
    console.error('\nvigil: tests interrupted; stopping the test stack…')
    Promise.resolve(stack?.stop()).finally(() =>
      Deno.remove(stateDir, { recursive: true }).catch(() => {})
    )
      .finally(() => Deno.exit(130))
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) Deno.addSignalListener(sig, interrupted)
  try {
    stack = await startStack({
      stateDir,
      dbPort: freePort(),
      apiPort: freePort(),
      ephemeral: true,
      log: (source, line) => serverLog.push(`[${source}] ${line}`),
    })
    console.log(
      `test stack: ${stack.apiUrl}, postgres on port ${stack.postgres.port}, data in ${stateDir}`,
    )
    for (const name of names) results.push(await suites[name](stack))
  } finally {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) Deno.removeSignalListener(sig, interrupted)
    await stack?.stop()
    await Deno.remove(stateDir, { recursive: true }).catch(() => {})
  }
  if (results.some((r) => r.code !== 0) && serverLog.length) {
    console.log('\n── stack log (last 40 lines)\n' + serverLog.slice(-40).join('\n'))
  }
  console.log('\n── summary')
  for (const r of results) {
    console.log(
      `${r.name.padEnd(10)} ${r.passed} passed, ${r.failed} failed${
        r.code ? ` (exit ${r.code})` : ''
      }`,
    )
  }
  const passed = results.reduce((n, r) => n + r.passed, 0)
  const failed = results.reduce((n, r) => n + r.failed, 0)
  console.log(`${passed} passed, ${failed} failed`)
  if (failed > 0 || results.some((r) => r.code !== 0) || results.length !== names.length) {
    Deno.exitCode = 1
  }
}
