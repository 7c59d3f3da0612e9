// devstack/preflight.mjs, the first thing `npm start` and `npm test` run on a fresh machine.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { ROOT } from '../../devstack/config.ts'

/** A copy of preflight in a scratch project whose package list names one package that is not installed. */
async function scratchProject(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: 'vigil-preflight-test-' })
  await Deno.mkdir(join(dir, 'devstack'))
  await Deno.copyFile(
    join(ROOT, 'devstack', 'preflight.mjs'),
    join(dir, 'devstack', 'preflight.mjs'),
  )
  const list = JSON.parse(await Deno.readTextFile(join(ROOT, 'devstack', 'debian-packages.json')))
  list.stack.push(['vigil-test-absent-package', '/nonexistent/vigil-test-absent-package'])
  await Deno.writeTextFile(join(dir, 'devstack', 'debian-packages.json'), JSON.stringify(list))
  for (const path of [dir, join(dir, 'devstack')]) await Deno.chmod(path, 0o755)
  return dir
}

Deno.test('as a non-root user, a missing Debian package stops preflight with the exact apt-get line', async () => {
  const dir = await scratchProject()
  try {
    const node = ['node', join(dir, 'devstack', 'preflight.mjs'), 'start']
    // Root would install the package; run as the unprivileged postgres user to see the refusal.
    const argv = Deno.uid() === 0
      ? ['/usr/bin/setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '--', ...node]
      : node
    const out = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdout: 'piped',
      stderr: 'piped',
    }).output()
    const stderr = new TextDecoder().decode(out.stderr)
    assert.equal(out.code, 1, stderr)
    assert.match(stderr, /missing Debian packages: vigil-test-absent-package\n/)
    assert.match(
      stderr,
      /sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends vigil-test-absent-package'/,
    )
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('preflight refuses an unknown command with its usage', async () => {
  const out = await new Deno.Command('node', {
    args: [join(ROOT, 'devstack', 'preflight.mjs'), 'deploy'],
    stdout: 'piped',
    stderr: 'piped',
  }).output()
  assert.equal(out.code, 2)
  assert.match(
    new TextDecoder().decode(out.stderr),
    /usage: node devstack\/preflight\.mjs <start\|test\|reset\|bench\|build\|chaos-suite>/,
  )
})
