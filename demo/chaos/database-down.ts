// The database down: the stack's Postgres cluster stopped (pg_ctl stop -m fast), kept down for a
// while, then started again, as a crash and restart of the project's database. Vigil lives in that
// database (as on Supabase), so while it is down Vigil can record nothing, heal nothing and run no
// pg_cron job: the outside dead man's switch (VIGIL_DEADMAN_URL) stops hearing from the cycles, and
// once the cluster is back the first cycle finds its own heartbeat (vigil-health-check) gone quiet
// for longer than it allows. Starting the cluster again is part of the fault, not Vigil's heal.
//
// The record (<stateDir>/chaos/database_down.json) is written before the cluster stops and removed
// once it runs again: the local stack reads it as a planned outage and waits instead of stopping,
// and `clear` starts the cluster from it after a run that crashed.
import { join } from 'node:path'
import { asServerUser, runningPostmaster } from '../../devstack/db.ts'
import {
  dropRecord,
  killGroups,
  readRecord,
  recordPath,
  spawnDetached,
  writeRecord,
} from './procs.ts'
import type { ChaosTarget, Fault } from './types.ts'

const NAME = 'database_down'

/**
 * Longer than the two minutes Vigil's own heartbeat allows a quiet spell (vigil-health-check:
 * period 60 s + grace 60 s): a shorter outage is within what Vigil accepts as normal, and only the
 * dead man's switch sees it.
 */
export const DEFAULT_OUTAGE_S = 150

const SERVER_ENV = { LANG: 'C.UTF-8', PATH: '/usr/bin:/bin' }

const dataDir = (t: ChaosTarget) => join(t.stateDir, 'db')

async function run(argv: string[]): Promise<{ code: number; text: string }> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: SERVER_ENV,
    clearEnv: true,
    stdin: 'null',
    stdout: 'piped',
    stderr: 'piped',
  }).output()
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr)
  return { code: out.code, text: text.trim() }
}

/**
 * pg_ctl start with the settings the stack started the postmaster with (postmaster.opts, which
 * outlives the server): the same port, socket, preloaded pg_cron and logging.
 */
async function startCommand(t: ChaosTarget): Promise<string[]> {
  const dir = dataDir(t)
  const opts = (await Deno.readTextFile(join(dir, 'postmaster.opts'))).trim()
  const first = opts.indexOf(' "')
  if (first < 0) throw new Error(`${dir}/postmaster.opts names no options: start the stack again`)
  return asServerUser([
    join(t.pgBin, 'pg_ctl'),
    'start',
    '-D',
    dir,
    '-w',
    '-t',
    '60',
    // In the data folder: the postgres OS user writes it. The server's own log is in log/ as ever.
    '-l',
    join(dir, 'log', 'pg_ctl-chaos.log'),
    '-o',
    opts.slice(first + 1),
  ])
}

async function startCluster(t: ChaosTarget): Promise<void> {
  const { code, text } = await run(await startCommand(t))
  if (code !== 0 && await runningPostmaster(dataDir(t)) === null) {
    throw new Error(`the cluster did not start again: ${text}`)
  }
}

const shellQuote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`

export const databaseDown: Fault = {
  name: NAME,
  summary:
    'the database cluster stopped (fast shutdown), down a few minutes, then started again; ' +
    'Vigil lives in it and must tell a person',
  // Nothing in the database can heal it or record anything while it is down. Once it is back the
  // first cycle finds Vigil's own heartbeat quiet past its allowance: vigil-health-check goes down
  // and a person is paged (with the SQL change the report names; see tests/demo/database_down_test.ts).
  expects: {
    incident: 'service_unhealthy',
    finding: 'cycles_missed',
    heal: null,
    service: 'vigil-health-check',
  },
  async inject(t) {
    if (await databaseDown.active(t)) return `${NAME} is already active`
    const dir = dataDir(t)
    if (await runningPostmaster(dir) === null) {
      throw new Error(`no postgres runs on ${dir}: is the local stack running?`)
    }
    // A record a crashed run left, with the cluster running: its restarter must not fire later.
    const stale = await readRecord(t.stateDir, NAME)
    if (stale) await killGroups(stale.groups)
    const start = await startCommand(t)
    const seconds = t.outageSeconds ?? DEFAULT_OUTAGE_S
    const injectedAt = new Date()
    const restartAt = new Date(injectedAt.getTime() + seconds * 1000)
    // First: the stack reads it as a planned outage when its postmaster exits.
    await writeRecord(t.stateDir, {
      fault: NAME,
      injected_at: injectedAt.toISOString(),
      groups: [],
      undo: { restart_at: restartAt.toISOString() },
    })
    const stop = await run(
      asServerUser([join(t.pgBin, 'pg_ctl'), 'stop', '-D', dir, '-m', 'fast', '-w', '-t', '60']),
    )
    if (stop.code !== 0 && await runningPostmaster(dir) !== null) {
      await dropRecord(t.stateDir, NAME)
      throw new Error(`pg_ctl stop failed: ${stop.text}`)
    }
    // The restart, detached so it outlives the CLI: after the outage, start the cluster, then drop
    // the record (only once it runs, so a failed start leaves it for `clear`).
    const restarter = spawnDetached(
      [
        '/bin/sh',
        '-c',
        `sleep ${seconds} && ${start.map(shellQuote).join(' ')} && rm -f ${
          shellQuote(recordPath(t.stateDir, NAME))
        }`,
      ],
      SERVER_ENV,
      join(t.stateDir, 'chaos', `${NAME}.log`),
    ).pid
    await writeRecord(t.stateDir, {
      fault: NAME,
      injected_at: injectedAt.toISOString(),
      groups: [restarter],
      undo: { restart_at: restartAt.toISOString() },
    })
    return `the database cluster (${dir}) is stopped; it starts again at ${
      restartAt.toISOString().slice(11, 19)
    } UTC, in ${seconds} s (or on clear)`
  },
  async clear(t) {
    const record = await readRecord(t.stateDir, NAME)
    if (record === null) return false
    await killGroups(record.groups)
    if (await runningPostmaster(dataDir(t)) === null) await startCluster(t)
    // Only now: without the record, a stack would take a stopped cluster for the end of it.
    await dropRecord(t.stateDir, NAME)
    return true
  },
  async active(t) {
    return await readRecord(t.stateDir, NAME) !== null &&
      await runningPostmaster(dataDir(t)) === null
  },
}
