// Building and dropping the advisor's indexes: CONCURRENTLY when this role owns the table,
// otherwise in place through vigil.build_index (the agent owns nothing); each build under an
// advisory lock on its name, checked valid, and an INVALID leftover dropped.
import type postgres from 'postgres'
import { INDEX_MARKER, qualified } from './statement.ts'
import type { CreatedIndex, Suggestion } from './types.ts'
import { relation, startsWith } from './catalog.ts'

type Sql = postgres.Sql<any>
type Session = postgres.ReservedSql<any>

const NAME = 'add_missing_index'
/** The longest an in-place build (vigil.build_index, writes to the table waiting) may take. */
const IN_PLACE_BUILD_TIMEOUT = '60s'
/** How long dropping a failed build's INVALID index may wait for the table's transactions. */
const CLEANUP_TIMEOUT = '10s'

export interface CreateOutcome {
  line: string
  created?: CreatedIndex
  failed?: boolean
}

/**
 * One index, as dexter builds it: under an advisory lock on its name, only if still missing,
 * concurrently (outside a transaction), then checked valid; a failed build's INVALID leftover
 * is dropped.
 */
export async function createIndex(
  c: Session,
  s: Suggestion,
  signal: AbortSignal,
): Promise<CreateOutcome> {
  const what = `${s.index_name} on ${qualified(s.schema, s.table)} (${s.columns.join(', ')})`
  const key = indexLockKey(s.schema, s.index_name)
  const [{ locked }] = await c`/* vigil:add-missing-index */
    select pg_try_advisory_lock(hashtextextended(${key}, 0)) as locked`
  if (!locked) return { line: `skipped ${what}: another session holds its advisory lock` }
  try {
    const state = await indexState(c, s)
    if (!state.table_exists) return { line: `skipped ${what}: the table is gone` }
    if (state.equivalent) {
      return { line: `skipped ${what}: index ${state.equivalent} already serves it` }
    }
    if (state.named) {
      if (!(state.named.same && !state.named.valid)) {
        return { line: `skipped ${what}: the name is taken by another relation`, failed: true }
      }
      // An INVALID leftover of an earlier build (a crash, a deadline): dropped, then rebuilt.
      const cleanup = await dropInvalid(c, s)
      if (cleanup !== 'dropped') {
        return { line: `failed to create ${what}: ${cleanup}`, failed: true }
      }
    }
    const rights = await buildRights(c, s.schema, s.table)
    if (rights === null) {
      return {
        line: `skipped ${what}: this role does not own the table, and the database has no ` +
          'vigil.build_index it may call',
        failed: true,
      }
    }
    const started = performance.now()
    try {
      // Concurrently when this role owns the table; otherwise in place through vigil.build_index,
      // which checks every name against the catalog (and is transactional: a cancel leaves nothing).
      if (rights === 'owner') {
        await cancellable(c.unsafe(`/* ${INDEX_MARKER} */ ${s.index_sql}`), signal)
      } else {
        // In place, writes waiting: bounded by this session's statement_timeout, set for it.
        await c`/* vigil:add-missing-index */
          select set_config('statement_timeout', ${IN_PLACE_BUILD_TIMEOUT}, false)`
        try {
          await cancellable(
            c`/* vigil:add-missing-index */ select vigil.build_index(${s.schema}, ${s.table},
                ${JSON.stringify(s.columns)}::text::jsonb, ${s.index_name})`,
            signal,
          )
        } finally {
          await c.unsafe(`/* ${INDEX_MARKER} */ reset statement_timeout`).catch(() => {})
        }
      }
    } catch (err) {
      const why = signal.aborted ? "cancelled at the heal's deadline" : messageOf(err)
      const cleanup = await dropInvalid(c, s)
      const left = cleanup === 'dropped'
        ? '; its INVALID index was dropped'
        : cleanup === 'none'
        ? ''
        : `; ${cleanup}`
      return { line: `failed to create ${what}: ${why}${left}`, failed: true }
    }
    const ms = Math.round(performance.now() - started)
    const after = await indexState(c, s)
    if (!after.named?.same) {
      return { line: `failed to create ${what}: it is not there after the build`, failed: true }
    }
    if (!after.named.valid) {
      const cleanup = await dropInvalid(c, s)
      const left = cleanup === 'dropped' ? 'so it was dropped' : cleanup
      return {
        line: `failed to create ${what}: the concurrent build left it INVALID, ${left}`,
        failed: true,
      }
    }
    return {
      line: `created ${what} in ${ms} ms${
        rights === 'owner' ? '' : ' (in place, by vigil.build_index)'
      }`,
      created: { schema: s.schema, table: s.table, columns: s.columns, name: s.index_name },
    }
  } finally {
    await c`/* vigil:add-missing-index */ select pg_advisory_unlock(hashtextextended(${key}, 0))`
      .catch(() => {})
  }
}

/** The advisory lock a build holds: pg_try_advisory_lock(hashtextextended(key, 0)). */
export function indexLockKey(schema: string, indexName: string): string {
  return `${NAME}:${schema}.${indexName}`
}

interface IndexState {
  table_exists: boolean
  /** A valid btree index whose leading key columns are these. */
  equivalent: string | null
  /** The relation holding the index's name, if any: the same index, and whether it is valid. */
  named: { same: boolean; valid: boolean } | null
}

export async function indexState(
  c: Sql,
  s: { schema: string; table: string; columns: string[]; index_name: string },
): Promise<IndexState> {
  const rel = await relation(c, s.schema, s.table)
  const [row] = await c`/* vigil:add-missing-index */
    select ic.relkind::text as kind, i.indisvalid as valid, t.relname::text as table,
           to_json(array(select a.attname::text
                         from unnest(i.indkey::int2[]) with ordinality u(attnum, n)
                         left join pg_attribute a on a.attrelid = i.indrelid and a.attnum = u.attnum
                         where u.n <= i.indnkeyatts order by u.n)) as cols
    from pg_class ic
    join pg_namespace n on n.oid = ic.relnamespace
    left join pg_index i on i.indexrelid = ic.oid
    left join pg_class t on t.oid = i.indrelid
    where n.nspname = ${s.schema} and ic.relname = ${s.index_name}`
  const equivalent = rel?.indexes.find((ix) => startsWith(ix.columns, s.columns))?.name ?? null
  const same = !!row && row.kind === 'i' && row.table === s.table &&
    JSON.stringify(row.cols) === JSON.stringify(s.columns)
  return {
    table_exists: !!rel,
    equivalent,
    named: row ? { same, valid: row.valid === true } : null,
  }
}

/**
 * Drops this index if it is there and INVALID, within CLEANUP_TIMEOUT (it may run after the
 * deadline, and DROP INDEX CONCURRENTLY waits for the transactions using the table). Says what
 * remains when it cannot.
 */
async function dropInvalid(c: Session, s: Suggestion): Promise<'dropped' | 'none' | string> {
  const remains = `an INVALID index ${qualified(s.schema, s.index_name)} remains: ` +
    'drop it with DROP INDEX CONCURRENTLY'
  try {
    const state = await indexState(c, s)
    if (!state.named?.same || state.named.valid) return 'none'
    await c`/* vigil:add-missing-index */ select set_config('statement_timeout', ${CLEANUP_TIMEOUT}, false)`
    try {
      await dropIndex(c, s.schema, s.index_name)
    } finally {
      await c.unsafe(`/* ${INDEX_MARKER} */ reset statement_timeout`)
    }
    return 'dropped'
  } catch (err) {
    return `${remains} (${messageOf(err)})`
  }
}

/**
 * Drops one of Vigil's indexes: concurrently when this role owns its table, otherwise through
 * vigil.drop_built_index, which drops only what vigil.build_index built (or an INVALID leftover).
 */
export async function dropIndex(c: Sql, schema: string, name: string, signal?: AbortSignal) {
  const [row] = await c<{ owner: boolean }[]>`/* vigil:add-missing-index */
    select coalesce(pg_has_role(t.relowner, 'USAGE'), true) as owner
    from pg_class ic
    join pg_namespace n on n.oid = ic.relnamespace
    left join pg_index i on i.indexrelid = ic.oid
    left join pg_class t on t.oid = i.indrelid
    where n.nspname = ${schema} and ic.relname = ${name}`
  if (!row) return
  const q = row.owner
    ? c.unsafe(`/* ${INDEX_MARKER} */ drop index concurrently if exists ${qualified(schema, name)}`)
    : c`/* vigil:add-missing-index */ select vigil.drop_built_index(${schema}, ${name})`
  await (signal ? cancellable(q, signal) : q)
}

/**
 * How this role may build an index on a table: 'owner' (itself, concurrently), 'vigil' (through
 * vigil.build_index, in place), or null (not at all).
 */
export async function buildRights(
  c: Sql,
  schema: string,
  table: string,
): Promise<'owner' | 'vigil' | null> {
  const [row] = await c<{ owner: boolean; vigil: boolean }[]>`/* vigil:add-missing-index */
    select coalesce((select pg_has_role(c.relowner, 'USAGE')
                     from pg_class c join pg_namespace n on n.oid = c.relnamespace
                     where n.nspname = ${schema} and c.relname = ${table}), false) as owner,
           coalesce(has_function_privilege(
             to_regprocedure('vigil.build_index(text, text, jsonb, text)'), 'EXECUTE'), false) as vigil`
  return row.owner ? 'owner' : row.vigil ? 'vigil' : null
}

/** Awaits a query, cancelling it on the server when the heal's deadline passes. */
export async function cancellable<T>(
  q: postgres.PendingQuery<any>,
  signal: AbortSignal,
): Promise<T> {
  const onAbort = () => q.cancel()
  if (signal.aborted) onAbort()
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    return (await q) as T
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
