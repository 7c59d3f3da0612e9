import { testStack } from '../_env.ts'

/** The CLI as a person runs it (`npx vigil …`), a process of its own, against the test stack. */
export async function vigil(...args: string[]) {
  const { apiUrl, serviceRoleKey } = testStack()
  const out = await new Deno.Command('node', {
    args: [new URL('../../cli/bin.mjs', import.meta.url).pathname, ...args],
    env: { VIGIL_URL: apiUrl, VIGIL_SERVICE_ROLE_KEY: serviceRoleKey, NO_COLOR: '1' },
    stdout: 'piped',
    stderr: 'piped',
  }).output()
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  }
}
