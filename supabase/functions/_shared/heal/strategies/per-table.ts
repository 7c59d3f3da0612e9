// The act loop that ANALYZE and VACUUM heals share: one reserved connection with lock_timeout set
// for these statements only, each planned table named by Postgres from its oid (a table renamed or
// dropped since the plan is skipped), one statement at a time, cancelled at the heal's deadline.
import type postgres from 'postgres'
import type { HealContext } from '../types.ts'
import { checkDeadline, targetOf } from '../sessions.ts'

export interface PlannedTable {
  oid: string
  schema: string
  table: string
}

/** What to do with one table: a statement to run and time, or an outcome already known. */
export type TableStep =
  | { run: postgres.PendingQuery<postgres.Row[]> }
  | { outcome: { ok: boolean; line: string } }

export async function actPerTable<T extends PlannedTable>(
  ctx: HealContext,
  strategy: string,
  opts: { lockTimeoutMs: number; doing: string },
  tables: T[],
  step: (
    conn: postgres.ReservedSql<any>,
    table: T,
    quoted: string,
  ) => TableStep | Promise<TableStep>,
): Promise<{ done: string[]; skipped: string[] }> {
  const conn = await targetOf(ctx, strategy).reserve()
  const done: string[] = []
  const skipped: string[] = []
  try {
    await conn`select set_config('lock_timeout', ${`${opts.lockTimeoutMs}ms`}, false)`
    for (const t of tables) {
      checkDeadline(ctx.signal, opts.doing)
      const label = `${t.schema}.${t.table}`
      const [found] = await conn<{ name: string }[]>`
        select format('%I.%I', n.nspname, c.relname) as name
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.oid = ${t.oid}::text::oid and n.nspname = ${t.schema} and c.relname = ${t.table}`
      if (!found) {
        skipped.push(`${label} (dropped or renamed since the plan)`)
        continue
      }
      const started = performance.now()
      const next = await step(conn, t, found.name)
      if ('outcome' in next) {
        ;(next.outcome.ok ? done : skipped).push(`${label} (${next.outcome.line})`)
        continue
      }
      const onAbort = () => void next.run.cancel()
      ctx.signal.addEventListener('abort', onAbort, { once: true })
      try {
        await next.run
        done.push(`${label} (${((performance.now() - started) / 1000).toFixed(1)} s)`)
      } catch (err) {
        checkDeadline(ctx.signal, `${opts.doing} ${label}`)
        const code = (err as { code?: string }).code
        if (code === '55P03') skipped.push(`${label} (its lock was not free within lock_timeout)`)
        else if (code === '42501') skipped.push(`${label} (permission denied)`)
        else throw err
      } finally {
        ctx.signal.removeEventListener('abort', onAbort)
      }
    }
  } finally {
    await conn`reset lock_timeout`.catch(() => {})
    conn.release()
  }
  return { done, skipped }
}
