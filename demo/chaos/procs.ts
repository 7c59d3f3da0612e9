// The processes a fault leaves running: real clients of the database (psql, pgbench) that hold
// locks, connections or load the way an application's sessions do. Each runs in a process group of
// its own (detached), named in the database by its application_name (`vigil-chaos:<fault>`) and
// recorded in <stateDir>/chaos/<fault>.json, so `clear` finds what a crashed run left behind by
// either trace.
import { join } from 'node:path'

export interface Recorded {
  fault: string
  injected_at: string
  /** Process group ids (the leader's pid: each process was started detached). */
  groups: number[]
  /** Anything the fault needs to undo itself (a table setting it changed, say). */
  undo?: Record<string, unknown>
}

export const APP_NAME_PREFIX = 'vigil-chaos:'

export function recordPath(stateDir: string, fault: string): string {
  return join(stateDir, 'chaos', `${fault}.json`)
}

export async function readRecord(stateDir: string, fault: string): Promise<Recorded | null> {
  try {
    return JSON.parse(await Deno.readTextFile(recordPath(stateDir, fault))) as Recorded
  } catch {
    return null
  }
}

export async function writeRecord(stateDir: string, record: Recorded): Promise<void> {
  await Deno.mkdir(join(stateDir, 'chaos'), { recursive: true })
  await Deno.writeTextFile(recordPath(stateDir, record.fault), JSON.stringify(record, null, 2))
}

export async function dropRecord(stateDir: string, fault: string): Promise<void> {
  await Deno.remove(recordPath(stateDir, fault)).catch(() => {})
}

/** Every fault with a record (active, or left by a run that crashed). */
export async function recordedFaults(stateDir: string): Promise<string[]> {
  const out: string[] = []
  try {
    for await (const e of Deno.readDir(join(stateDir, 'chaos'))) {
      if (e.isFile && e.name.endsWith('.json')) out.push(e.name.slice(0, -5))
    }
  } catch { /* no folder: nothing recorded */ }
  return out.sort()
}

export interface Spawned {
  pid: number
}

/**
 * Starts a client detached (its own process group, outliving this CLI), with the database's
 * password in its environment (never on its command line) and its output in a log file.
 */
export function spawnDetached(
  argv: string[],
  env: Record<string, string>,
  logFile: string,
): Spawned {
  // Through sh only to send the output straight to the log: the client must not depend on this
  // process's pipes, which close when the CLI exits.
  const quoted = argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ')
  const child = new Deno.Command('/bin/sh', {
    args: ['-c', `exec ${quoted} >> '${logFile.replaceAll("'", "'\\''")}' 2>&1`],
    env,
    stdin: 'null',
    stdout: 'null',
    stderr: 'null',
    detached: true,
  }).spawn()
  child.unref()
  return { pid: child.pid }
}

/** Ends each process group (TERM, then KILL); a group already gone is fine. */
export async function killGroups(groups: number[]): Promise<number> {
  let ended = 0
  for (const pgid of groups) {
    try {
      Deno.kill(-pgid, 'SIGTERM')
      ended++
    } catch { /* gone */ }
  }
  if (ended === 0) return 0
  await new Promise((r) => setTimeout(r, 300))
  for (const pgid of groups) {
    try {
      Deno.kill(-pgid, 'SIGKILL')
    } catch { /* gone */ }
  }
  return ended
}
