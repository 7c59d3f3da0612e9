// purge_own_data: when the project's disk runs low, the first thing to give back is Vigil's own
// history. Runs Vigil's retention now (vigil.apply_retention: checks, metrics, cycles past their
// retention; vigil.sweep_invocations: finished invocations past theirs), then VACUUM (ANALYZE) of
// vigil.checks and vigil.metrics so the space is reusable. Only Vigil's own tables, on Vigil's own
// connection (ctx.db): never a user table, never the watched database's sessions.
import type postgres from 'postgres'
import { z } from 'zod'
import { type HealContext, HealError, type Strategy } from '../types.ts'

export const PurgeOwnDataConfig = z.strictObject({
  /** VACUUM (ANALYZE) the tables afterwards, so the freed pages are reused at once. */
  vacuum: z.boolean().default(true),
})
export type PurgeOwnDataConfig = z.infer<typeof PurgeOwnDataConfig>

/** Vigil's tables that grow with every cycle; fixed here, never taken from input. */
const VACUUMED = ['vigil.checks', 'vigil.metrics'] as const

async function databaseSize(db: postgres.Sql, signal: AbortSignal): Promise<number> {
  const [row] = await cancellable(
    db<{ bytes: number }[]>`select pg_database_size(current_database())::float8 as bytes`,
    signal,
  )
  return row.bytes
}

/** Runs a query, cancelling it in the server when the heal's deadline passes. */
async function cancellable<T extends readonly postgres.MaybeRow[]>(
  query: postgres.PendingQuery<T>,
  signal: AbortSignal,
): Promise<postgres.RowList<T>> {
  if (signal.aborted) throw new HealError("the heal's deadline passed before the statement ran")
  const cancel = () => query.cancel()
  signal.addEventListener('abort', cancel, { once: true })
  try {
    return await query
  } catch (error) {
    if (signal.aborted) {
      throw new HealError("the heal's deadline passed: the statement was cancelled")
    }
    throw error
  } finally {
    signal.removeEventListener('abort', cancel)
  }
}

/** A postgres service whose connection_secret points elsewhere watches another database: purging here frees nothing there. */
function watchesAnotherDatabase(ctx: HealContext): boolean {
  return ctx.service.kind === 'postgres' && typeof ctx.service.config.connection_secret === 'string'
}

export const purgeOwnDataStrategy: Strategy<PurgeOwnDataConfig> = {
  name: 'purge_own_data',
  irreversible: "Vigil's expired history is deleted for good, as its retention would have",
  problem: 'disk_low',
  config: PurgeOwnDataConfig,

  async plan(problem, ctx, config) {
    if (watchesAnotherDatabase(ctx)) return null
    const bytes = await databaseSize(ctx.db, ctx.signal)
    return {
      action: 'purge_own_data',
      target: {
        functions: ['vigil.apply_retention()', 'vigil.sweep_invocations()'],
        vacuum: config.vacuum ? [...VACUUMED] : [],
      },
      reason:
        `disk low on ${ctx.service.name} (${problem.reason}): delete Vigil's own expired history first`,
      before: { database_size_bytes: bytes },
    }
  },

  async act(_plan, ctx, config) {
    if (ctx.dryRun) throw new HealError("dry run: refusing to delete Vigil's expired rows")
    const [{ retention }] = await cancellable(
      ctx.db<{ retention: Record<string, number> }[]>`select vigil.apply_retention() as retention`,
      ctx.signal,
    )
    const [{ sweep }] = await cancellable(
      ctx.db<{ sweep: Record<string, number> }[]>`select vigil.sweep_invocations() as sweep`,
      ctx.signal,
    )
    // VACUUM cannot run in a transaction block: each statement goes on its own, outside sql.begin().
    if (config.vacuum) {
      for (const table of VACUUMED) {
        await cancellable(ctx.db.unsafe(`vacuum (analyze) ${table}`), ctx.signal)
      }
    }
    const deleted = Object.entries(retention)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([what, n]) => `${n} ${what}`)
      .join(', ')
    return {
      detail:
        `deleted expired rows (${deleted}); forgot ${sweep.forgotten ?? 0} finished invocations` +
        (config.vacuum ? `; vacuumed ${VACUUMED.join(' and ')}` : ''),
    }
  },

  async verify(plan, _result, ctx) {
    const before = Number(plan.before.database_size_bytes)
    const after = await databaseSize(ctx.db, ctx.signal)
    return {
      improved: after <= before,
      worse: false,
      after: { database_size_bytes: after, freed_bytes: Math.max(0, before - after) },
      detail: after < before
        ? `the database shrank by ${before - after} bytes`
        : after === before
        ? 'the database did not grow; the freed space is reusable'
        : `the database grew by ${after - before} bytes meanwhile`,
    }
  },
}
