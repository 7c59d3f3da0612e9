#!/usr/bin/env node
// `npx vigil …`: runs the CLI (cli/vigil.ts) with the Deno this package depends on.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const local = join(root, 'node_modules', '.bin', 'deno')
const deno = existsSync(local) ? local : 'deno'
const r = spawnSync(
  deno,
  [
    'run',
    '-A',
    '--config',
    join(root, 'deno.json'),
    join(root, 'cli', 'vigil.ts'),
    ...process.argv.slice(2),
  ],
  { stdio: 'inherit' },
)
if (r.error) {
  console.error(`vigil: could not run Deno (${r.error.message}); npm install first`)
  process.exit(1)
}
process.exit(r.status ?? 1)
