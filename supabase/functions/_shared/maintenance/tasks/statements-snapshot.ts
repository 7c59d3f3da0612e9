// statements_snapshot (daily): today's snapshot of pg_stat_statements' top statements by total
// time, kept in vigil.statement_snapshots for 90 days, and the statements whose mean time moved
// most since the previous snapshot. vigil.snapshot_statements does the work in one statement.
import type { MaintenanceTask, TaskResult } from '../types.ts'
import { settingsFrom, wholeNumber } from '../settings.ts'

const LIMIT_ENV = 'VIGIL_MAINTENANCE_STATEMENTS_LIMIT'
const DEFAULT_LIMIT = 500

interface Compared {
  query: string
  mean_ms: number
  previous_mean_ms: number
  calls_delta: number
}

interface Snapshot {
  taken_on: string
  statements: number
  previous_on: string | null
  compared: Compared[]
}

export const statementsSnapshot: MaintenanceTask = {
  name: 'statements_snapshot',
  cadence: 'daily',
  description:
    'Keeps a daily snapshot of the top 500 statements by total time (pg_stat_statements, 90 days) and names those slower than the previous day.',
  async run({ sql, env }): Promise<TaskResult> {
    const limit = settingsFrom(env, { [LIMIT_ENV]: [wholeNumber(1, 10_000), DEFAULT_LIMIT] })[
      LIMIT_ENV
    ]
    let snap: Snapshot
    try {
      ;[{ snap }] = await sql<{ snap: Snapshot }[]>`
        select vigil.snapshot_statements(${limit}::int) as snap`
    } catch (error) {
      // Not installed, or not in shared_preload_libraries: nothing to snapshot here.
      if ((error as { code?: string }).code === '55000') {
        return { status: 'not_applicable', summary: (error as Error).message }
      }
      throw error
    }
    return { status: 'succeeded', summary: summarise(snap), findings: snap.compared }
  },
}

function summarise(snap: Snapshot): string {
  const head = `${snap.statements} statements`
  if (snap.previous_on === null) return `${head}; no earlier snapshot to compare with`
  const yesterday = new Date(Date.parse(snap.taken_on) - 86_400_000).toISOString().slice(0, 10)
  const when = snap.previous_on === yesterday ? 'yesterday' : snap.previous_on
  const slower = snap.compared.filter((c) => c.mean_ms > c.previous_mean_ms)
  if (slower.length === 0) return `${head}; none slower than ${when}`
  return `${head}; slower than ${when}: ${
    slower.slice(0, 3).map((c) =>
      `${shorten(c.query)} (${ms(c.mean_ms)} ms, was ${ms(c.previous_mean_ms)} ms)`
    ).join('; ')
  }`
}

function shorten(query: string): string {
  const one = query.replace(/\s+/g, ' ').trim()
  return one.length > 60 ? `${one.slice(0, 59)}…` : one
}

function ms(n: number): string {
  return n >= 100 ? n.toFixed(0) : n.toFixed(1)
}
