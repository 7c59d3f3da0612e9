// VACUUM of a table Vigil's agent does not own: handed to pg_cron through vigil.request_vacuum
// (VACUUM cannot run inside a function, and before Postgres 17 only the owner may vacuum), then
// asked after with vigil.vacuum_request_status until its run ended. The vacuum_analyze heal and the
// daily maintenance task both go through here.
import type postgres from 'postgres'
import { sleep } from './heal/external.ts'

/** pg_cron 1.4 starts a one-off job at the next minute, 1.5+ within 5 s: asking twice a second is plenty. */
const POLL_MS = 500

export type VacuumState = 'queued' | 'running' | 'succeeded' | 'failed' | 'abandoned'

export interface VacuumWait {
  id: number
  /** queued or running: the signal aborted first (pg_cron still runs it, and the sweep ends it). */
  state: VacuumState
  /** pg_cron's return message, when the run ended. */
  detail: string | null
  seconds: number
}

/** Asks pg_cron to VACUUM (ANALYZE) schema.table once; the database's error when it refuses. */
export async function requestVacuum(
  sql: postgres.Sql<any>,
  schema: string,
  table: string,
): Promise<number> {
  const [row] = await sql<{ id: number }[]>`
    select vigil.request_vacuum(${schema}, ${table})::int as id`
  return row.id
}

/** Asks after request `id` until its run ended or `signal` aborted, and says how it went. */
export async function awaitVacuum(
  sql: postgres.Sql<any>,
  id: number,
  signal: AbortSignal,
): Promise<VacuumWait> {
  const started = performance.now()
  let state: VacuumState = 'queued'
  let detail: string | null = null
  while (!signal.aborted) {
    const [row] = await sql<{ status: { state: VacuumState; detail?: string } }[]>`
      select vigil.vacuum_request_status(${id}) as status`
    state = row.status.state
    detail = row.status.detail ?? null
    if (state !== 'queued' && state !== 'running') break
    await sleep(POLL_MS, signal)
  }
  return { id, state, detail, seconds: (performance.now() - started) / 1000 }
}
