#!/usr/bin/env node
// Entry of `npm start`, `npm test`, `npm run reset` and `npm run bench`.
// Node without dependencies on purpose: it runs before anything is installed. It installs what
// is missing (npm dependencies; Debian packages when root), then hands over to the Deno CLI.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const command = process.argv[2]
const commands = ['start', 'test', 'reset', 'bench', 'build', 'chaos-suite']
if (!commands.includes(command)) {
  console.error(`usage: node devstack/preflight.mjs <${commands.join('|')}> [args…]`)
  process.exit(2)
}

/** Debian packages, each with a file whose presence proves it is installed. */
const packages = JSON.parse(readFileSync(join(root, 'devstack', 'debian-packages.json'), 'utf8'))

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts })
  if (r.error) throw r.error
  return r.status ?? 1
}

function ensureDebianPackages() {
  const wanted = command === 'test'
    ? [
      ...packages.stack,
      ...(existsSync(join(root, 'dashboard', 'package.json')) ? packages.browser : []),
      // Prometheus scrapes the metrics function in its test, and promtool checks its format.
      ...packages.tests,
    ]
    // The sharded cycle's benchmark runs Prometheus' blackbox_exporter beside Vigil as its anchor.
    : command === 'bench'
    ? [...packages.stack, ...(packages.bench ?? [])]
    : packages.stack
  const missing = wanted.filter(([, file]) => !existsSync(file)).map(([name]) => name)
  if (missing.length === 0) return
  const line = `apt-get update && apt-get install -y --no-install-recommends ${missing.join(' ')}`
  if (process.getuid?.() !== 0) {
    console.error(`vigil: missing Debian packages: ${missing.join(', ')}`)
    console.error(`vigil: install them as root, then run again:\n  sudo sh -c '${line}'`)
    process.exit(1)
  }
  console.log(`vigil: installing Debian packages: ${missing.join(', ')}`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  if (run('sh', ['-c', line], { env }) !== 0) {
    console.error(`vigil: could not install ${missing.join(', ')}; the command was:\n  ${line}`)
    process.exit(1)
  }
}

function needsNpmInstall(dir, bins) {
  const marker = join(dir, 'node_modules', '.package-lock.json')
  if (!existsSync(marker)) return true
  for (const bin of bins) {
    if (!existsSync(join(dir, 'node_modules', '.bin', bin))) return true
  }
  const installed = statSync(marker).mtimeMs
  return ['package.json', 'package-lock.json'].some((f) => {
    const p = join(dir, f)
    return existsSync(p) && statSync(p).mtimeMs > installed
  })
}

function ensureNpmDependencies(dir, bins, what) {
  if (!needsNpmInstall(dir, bins)) return
  // `npm install` rather than `npm ci`: npm 11 writes lock files without the other platforms'
  // optional packages (deno, supabase ship one per platform) and `npm ci` then refuses them.
  console.log(`vigil: installing npm dependencies${what}`)
  if (run('npm', ['install', '--no-audit', '--no-fund'], { cwd: dir }) !== 0) {
    console.error('vigil: npm could not install the dependencies (see above)')
    process.exit(1)
  }
}

/** The newest modification time under a path (a file, or a folder walked recursively). */
function newest(path) {
  if (!existsSync(path)) return 0
  const st = statSync(path)
  if (!st.isDirectory()) return st.mtimeMs
  return readdirSync(path).reduce((m, name) => Math.max(m, newest(join(path, name))), st.mtimeMs)
}

/** The dashboard's static build (dashboard/dist), made again when a source is newer than it. */
function ensureDashboardBuild(force = false) {
  const dir = join(root, 'dashboard')
  const built = join(dir, 'dist', 'index.html')
  const sources = ['src', 'public', 'index.html', 'status.html', 'vite.config.ts', 'package.json']
    .map((f) => newest(join(dir, f)))
  if (!force && existsSync(built) && statSync(built).mtimeMs >= Math.max(...sources)) return
  console.log('vigil: building the dashboard')
  if (run('npm', ['run', 'build', '--silent'], { cwd: dir }) !== 0) {
    console.error('vigil: the dashboard did not build (see above)')
    process.exit(1)
  }
}

if (command === 'build') {
  // Static files for any host: dashboard/dist, configured at run time by the host's /config.js.
  ensureNpmDependencies(join(root, 'dashboard'), ['vite', 'vitest'], ' (dashboard)')
  ensureDashboardBuild(true)
  console.log(
    'vigil: the dashboard is built in dashboard/dist (serve it with a /config.js; see README)',
  )
  process.exit(0)
}

ensureDebianPackages()
ensureNpmDependencies(root, ['deno', 'supabase'], '')
if (existsSync(join(root, 'dashboard', 'package.json'))) {
  ensureNpmDependencies(join(root, 'dashboard'), ['vite', 'vitest'], ' (dashboard)')
  if (
    command === 'start' || command === 'test' || command === 'bench' || command === 'chaos-suite'
  ) {
    ensureDashboardBuild()
  }
}

// Hand over to Deno. Ctrl-C reaches the whole foreground process group; this process only waits
// for the Deno CLI to finish its orderly shutdown and exits with its status.
const deno = join(root, 'node_modules', '.bin', 'deno')
const child = spawn(deno, [
  'run',
  '-A',
  join(root, 'devstack', 'main.ts'),
  ...process.argv.slice(2),
], {
  stdio: 'inherit',
  cwd: root,
})
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    // A SIGTERM sent to this process alone (not the group) must still stop the stack.
    if (signal !== 'SIGINT') child.kill(signal)
  })
}
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 15 : 1)))
