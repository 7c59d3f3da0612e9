// npm run chaos -- <fault> | list | clear [fault] | status
// Injects real faults into the running local stack's demo (`npm start`), lists them, or removes
// them all — including what a crashed run left behind, found by its application_name in the
// database and its record in .vigil/chaos/.
import { faultNamed, FAULTS } from './registry.ts'
import { loadTarget } from './target.ts'
import { recordedFaults } from './procs.ts'
import type { FaultPolicy } from './types.ts'

const USAGE = 'usage: npm run chaos -- <fault> | list | clear [fault] | status'

function list(): string {
  const width = Math.max(...FAULTS.map((f) => f.name.length))
  return FAULTS.map((f) => `  ${f.name.padEnd(width)}  ${f.summary}`).join('\n')
}

async function main(args: string[]): Promise<number> {
  const [command, arg] = args
  if (!command || command === 'help' || command === '--help') {
    console.log(`${USAGE}\n\nfaults:\n${list()}`)
    return command ? 0 : 2
  }
  if (command === 'list') {
    console.log(list())
    return 0
  }
  if (command !== 'status' && command !== 'clear' && !faultNamed(command)) return unknown(command)
  if (command === 'clear' && arg && !faultNamed(arg)) return unknown(arg)
  const target = await loadTarget()
  if (command === 'status') {
    for (const f of FAULTS) {
      // With the database down (database_down), the faults that ask it cannot tell.
      const state = await f.active(target).then(
        (on) => (on ? 'ACTIVE' : 'off'),
        (e) => `unknown (${(e as Error).message})`,
      )
      console.log(`  ${f.name}: ${state}`)
    }
    return 0
  }
  if (command === 'clear') {
    const which = arg ? [faultNamed(arg)!] : FAULTS
    // Also faults recorded by a run that crashed before it could say so.
    const recorded = new Set(await recordedFaults(target.stateDir))
    let cleared = 0
    for (const f of which) {
      const had = await f.clear(target).catch((e) => {
        console.error(`  ${f.name}: could not be cleared: ${(e as Error).message}`)
        return false
      })
      if (had || recorded.has(f.name)) {
        console.log(`  ${f.name}: cleared`)
        cleared++
      }
    }
    if (cleared === 0) console.log('no fault was active')
    return 0
  }
  const fault = faultNamed(command)!
  console.log(await fault.inject(target))
  console.log(
    `Vigil should open a ${fault.expects.incident} incident (${fault.expects.finding})${
      fault.expects.heal ? ` and heal it with ${fault.expects.heal}` : ' and page a person'
    }. \`npm run chaos -- clear\` removes it.`,
  )
  const policy = fault.expects.policy
  if (policy) console.log(policyHint(policy))
  return 0
}

/** What the fault's heal needs beyond the defaults, and the SQL that sets it (the suite does). */
export function policyHint(p: FaultPolicy): string {
  const config = JSON.stringify(p.config).replaceAll("'", "''")
  return `Within minutes only under the policy ${p.strategy} ${
    JSON.stringify(p.config)
  }: ${p.why}. ` +
    'The chaos suite sets it for its run; to set it here:\n' +
    `  insert into vigil.heal_policies (environment, strategy, mode, config) values ('prod', ` +
    `'${p.strategy}', '${p.mode}', '${config}')\n` +
    '    on conflict (environment, strategy) do update set mode = excluded.mode, config = excluded.config;'
}

function unknown(name: string): number {
  console.error(`unknown fault "${name}"; the faults are:\n${list()}`)
  return 2
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args))
  } catch (error) {
    console.error(`chaos: ${(error as Error).message}`)
    Deno.exit(1)
  }
}
