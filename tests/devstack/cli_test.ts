// The real `npm start` / `npm run reset` CLI (devstack/main.ts), each run in its own state folder
// and on free ports so it never touches a stack the developer is running.
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import postgres from 'postgres'
import { ROOT } from '../../devstack/config.ts'
import { freePort, privateStateDir } from '../../devstack/stack.ts'
import { freeDemoPorts } from '../../demo/main.ts'
import { eventually } from '../_env.ts'

interface Cli {
  child: Deno.ChildProcess
  output: () => string
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<string>
  exit: Promise<number>
}

interface Setup {
  stateDir: string
  dbPort: number
  apiPort: number
  providersPort: number
  dashboardPort: number
  demoPorts: { app: number; edge: number; supervisor: number; vercel: number; tls: number }
}

async function setup(): Promise<Setup> {
  const stateDir = await privateStateDir('vigil-cli-test-')
  return {
    stateDir,
    dbPort: freePort(),
    apiPort: freePort(),
    providersPort: freePort(),
    dashboardPort: freePort(),
    demoPorts: freeDemoPorts(),
  }
}

/** `extra`: the command's own options (`--no-demo`). */
function cli(s: Setup, command: string, extra: string[] = []): Cli {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      'run',
      '-A',
      '--config',
      join(ROOT, 'deno.json'),
      join(ROOT, 'devstack', 'main.ts'),
      command,
      ...extra,
    ],
    env: {
      VIGIL_STATE_DIR: s.stateDir,
      VIGIL_DB_PORT: String(s.dbPort),
      VIGIL_API_PORT: String(s.apiPort),
      VIGIL_PROVIDERS_PORT: String(s.providersPort),
      VIGIL_DASHBOARD_PORT: String(s.dashboardPort),
      VIGIL_DEMO_APP_PORT: String(s.demoPorts.app),
      VIGIL_DEMO_EDGE_PORT: String(s.demoPorts.edge),
      VIGIL_DEMO_SUPERVISOR_PORT: String(s.demoPorts.supervisor),
      VIGIL_DEMO_VERCEL_PORT: String(s.demoPorts.vercel),
      VIGIL_DEMO_TLS_PORT: String(s.demoPorts.tls),
      NO_COLOR: '1',
    },
    stdin: 'null',
    stdout: 'piped',
    stderr: 'piped',
  }).spawn()
  let text = ''
  const pump = (stream: ReadableStream<Uint8Array>) =>
    stream.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (c) => void (text += c) }),
    )
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)])
  const exit = child.status.then(async (st) => {
    await pumped
    return st.code
  })
  return {
    child,
    output: () => text,
    exit,
    waitFor: (pattern, timeoutMs = 60_000) =>
      eventually(
        () => (pattern.test(text) ? text : undefined),
        timeoutMs,
        `${pattern} in:\n${text}`,
      ),
  }
}

/** Pids of live processes whose environment holds `entry` (function workers carry SUPABASE_URL). */
async function processesWithEnv(entry: string): Promise<number[]> {
  const pids: number[] = []
  for await (const e of Deno.readDir('/proc')) {
    if (!/^\d+$/.test(e.name)) continue
    const environ = await Deno.readTextFile(`/proc/${e.name}/environ`).catch(() => '')
    if (environ.split('\0').includes(entry)) pids.push(Number(e.name))
  }
  return pids
}

async function stopAndClean(s: Setup, running: Cli[]) {
  for (const c of running) {
    try {
      c.child.kill('SIGINT')
    } catch { /* already exited */ }
    await c.exit
  }
  await Deno.remove(s.stateDir, { recursive: true }).catch(() => {})
}

Deno.test({
  name:
    'npm start: prints keys, serves functions, refuses a second start, and Ctrl-C stops everything',
  sanitizeResources: false,
  async fn() {
    const s = await setup()
    const first = cli(s, 'start')
    try {
      const banner = await first.waitFor(/service_role key: (\S+)/)
      const serviceKey = banner.match(/service_role key: (\S+)/)![1]
      assert.match(banner, new RegExp(`API URL: http://127.0.0.1:${s.apiPort}`))
      assert.match(banner, /anon key: eyJ/)
      // The dashboard (npm test builds it first) and its config, naming this stack's API.
      const dashboardUrl = `http://127.0.0.1:${s.dashboardPort}`
      assert.match(banner, new RegExp(`Dashboard: ${dashboardUrl}`))
      const config = await fetch(`${dashboardUrl}/config.js`)
      assert.match(await config.text(), new RegExp(`"supabaseUrl":"http://127.0.0.1:${s.apiPort}"`))
      const status = await fetch(`${dashboardUrl}/status`)
      assert.equal(status.status, 200)
      assert.match(await status.text(), /<html/i)

      const res = await fetch(`http://127.0.0.1:${s.apiPort}/functions/v1/status`, {
        headers: { authorization: `Bearer ${serviceKey}` },
      })
      assert.equal(res.status, 200, await res.clone().text())
      assert.equal((await res.json()).status, 'ok')
      const workerEnv = `SUPABASE_URL=http://127.0.0.1:${s.apiPort}`
      assert.ok(
        (await processesWithEnv(workerEnv)).length > 0,
        'the status function runs in a worker',
      )
      // The demo target, on by default: its app answers, its services are registered.
      const demoApp = `http://127.0.0.1:${s.demoPorts.app}`
      assert.match(banner, new RegExp(`Demo app: ${demoApp}`))
      const health = await fetch(`${demoApp}/health`)
      assert.equal(health.status, 200, await health.clone().text())
      assert.equal((await health.json()).status, 'ok')
      const appEnv = `DEMO_APP_PORT=${s.demoPorts.app}`
      assert.equal((await processesWithEnv(appEnv)).length, 1, 'the demo app is its own process')
      assert.ok(existsSync(join(s.stateDir, 'demo.json')), 'the chaos tools find the demo')
      const sql = postgres(`postgresql://postgres:postgres@127.0.0.1:${s.dbPort}/postgres`, {
        max: 1,
        onnotice: () => {},
      })
      const demoServices = await sql`
        select name from vigil.services where name like 'demo-%' order by name`
      await sql.end()
      assert.deepEqual(demoServices.map((r) => r.name), [
        'demo-api',
        'demo-app-host',
        'demo-checkout',
        'demo-db',
        'demo-deploys',
        'demo-https',
        'demo-web',
      ])

      const second = cli(s, 'start')
      assert.equal(await second.exit, 1)
      assert.match(second.output(), /already running \(pid \d+/)
      // The first is unharmed by the attempt.
      const again = await fetch(`http://127.0.0.1:${s.apiPort}/health`)
      assert.equal(again.status, 200)
      await again.body?.cancel()

      first.child.kill('SIGINT')
      assert.equal(await first.exit, 0, first.output())
      assert.match(first.output(), /vigil: stopped/)
      assert.ok(!existsSync(join(s.stateDir, 'stack.json')), 'the lock is released')
      assert.ok(!existsSync(join(s.stateDir, 'db', 'postmaster.pid')), 'postgres shut down cleanly')
      assert.deepEqual(
        await processesWithEnv(workerEnv),
        [],
        'no function worker outlives the stack',
      )
      assert.deepEqual(await processesWithEnv(appEnv), [], 'no demo app outlives the stack')
      assert.ok(!existsSync(join(s.stateDir, 'demo.json')))
    } finally {
      await stopAndClean(s, [first])
    }
  },
})

Deno.test({
  name: 'npm start: a stale lock and an orphaned postgres from a killed stack are cleaned up',
  sanitizeResources: false,
  async fn() {
    const s = await setup()
    const runs: Cli[] = []
    try {
      const first = cli(s, 'start', ['--no-demo'])
      runs.push(first)
      await first.waitFor(/Ctrl-C stops it/)
      assert.match(first.output(), /Demo target: left out \(--no-demo\)/)
      const demoApp = await fetch(`http://127.0.0.1:${s.demoPorts.app}/health`).catch(() => null)
      assert.equal(demoApp, null, 'no demo app with --no-demo')
      const url = `postgresql://postgres:postgres@127.0.0.1:${s.dbPort}/postgres`
      const sql = postgres(url, { max: 1, onnotice: () => {} })
      await sql`insert into vigil.services (name, kind, config) values ('survives-restart', 'http', '{"url": "http://127.0.0.1:9/"}')`
      await sql.end()
      first.child.kill('SIGKILL') // no shutdown: the lock and postgres stay behind
      await first.exit
      assert.ok(existsSync(join(s.stateDir, 'stack.json')))

      const second = cli(s, 'start', ['--no-demo'])
      runs.push(second)
      await second.waitFor(/Ctrl-C stops it/)
      assert.match(second.output(), /removing the stale lock/)
      assert.match(second.output(), /stopping postgres \(pid \d+\) left running/)
      const check = postgres(url, { max: 1, onnotice: () => {} })
      const rows = await check`select name from vigil.services where name = 'survives-restart'`
      await check.end()
      assert.equal(rows.length, 1, 'data survives the restart')
    } finally {
      await stopAndClean(s, runs)
    }
  },
})

Deno.test({
  name: 'npm start: a port in use is named in a clear error, and nothing is created',
  sanitizeResources: false,
  async fn() {
    const s = await setup()
    const squatter = Deno.listen({ hostname: '127.0.0.1', port: s.dbPort })
    try {
      const run = cli(s, 'start')
      assert.equal(await run.exit, 1)
      assert.match(run.output(), new RegExp(`port ${s.dbPort} \\(Postgres\\) is already in use`))
      assert.ok(!existsSync(join(s.stateDir, 'db')), 'no data folder was made')
      assert.ok(!existsSync(join(s.stateDir, 'stack.json')), 'the lock is released')
    } finally {
      squatter.close()
      await stopAndClean(s, [])
    }
  },
})

Deno.test({
  name: 'npm start: a demo port in use, or an unknown option, stops it before anything is created',
  sanitizeResources: false,
  async fn() {
    const s = await setup()
    const squatter = Deno.listen({ hostname: '127.0.0.1', port: s.demoPorts.app })
    try {
      const run = cli(s, 'start')
      assert.equal(await run.exit, 1)
      assert.match(
        run.output(),
        new RegExp(`port ${s.demoPorts.app} \\(demo app\\) is already in use`),
      )
      assert.ok(!existsSync(join(s.stateDir, 'db')), 'no data folder was made')
      const bad = cli(s, 'start', ['--no-dmeo'])
      assert.equal(await bad.exit, 1)
      assert.match(bad.output(), /unknown option --no-dmeo for start; it takes --no-demo/)
    } finally {
      squatter.close()
      await stopAndClean(s, [])
    }
  },
})

Deno.test({
  name: 'npm run reset: wipes the local database and recreates it from the migrations',
  sanitizeResources: false,
  async fn() {
    const s = await setup()
    const runs: Cli[] = []
    try {
      const first = cli(s, 'start', ['--no-demo'])
      runs.push(first)
      await first.waitFor(/Ctrl-C stops it/)
      const url = `postgresql://postgres:postgres@127.0.0.1:${s.dbPort}/postgres`
      let sql = postgres(url, { max: 1, onnotice: () => {} })
      await sql`insert into vigil.services (name, kind, config) values ('wiped-by-reset', 'http', '{"url": "http://127.0.0.1:9/"}')`
      await sql.end()

      const refused = cli(s, 'reset')
      assert.equal(await refused.exit, 1, 'reset refuses while the stack runs')
      assert.match(refused.output(), /already running/)

      first.child.kill('SIGINT')
      assert.equal(await first.exit, 0)
      const reset = cli(s, 'reset')
      assert.equal(await reset.exit, 0, reset.output())
      assert.match(reset.output(), /the local database is fresh/)

      const again = cli(s, 'start', ['--no-demo'])
      runs.push(again)
      await again.waitFor(/Ctrl-C stops it/)
      sql = postgres(url, { max: 1, onnotice: () => {} })
      const [{ services, settings }] = await sql`
        select (select count(*)::int from vigil.services) as services,
               (select count(*)::int from vigil.settings) as settings`
      await sql.end()
      assert.deepEqual(
        { services, settings },
        { services: 1, settings: 3 },
        "only Vigil's own heartbeat service",
      )
    } finally {
      await stopAndClean(s, runs)
    }
  },
})
