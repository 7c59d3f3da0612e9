// index_review (weekly): the project database's indexes as they are — unused ones (no scan since
// the statistics were reset), duplicates (same definition, or a leading prefix of another),
// invalid ones (a failed CREATE INDEX CONCURRENTLY) — and the missing ones the index advisor
// recommended. Each finding carries the statement that fixes it; Vigil drops nothing itself.
import type postgres from 'postgres'
import { MANAGED_SCHEMAS } from '../../managed-schemas.ts'
import type { MaintenanceTask, TaskResult } from '../types.ts'

/** An index this small costs little to keep, and dropping it gains little. */
export const UNUSED_MIN_PAGES = 8
/** Statistics younger than this cannot tell an index used monthly from an unused one. */
const YOUNG_STATS_DAYS = 7

export interface IndexRow {
  oid: number
  schema: string
  table: string
  index: string
  /** schema.index, quoted where Postgres needs it (format('%I.%I')). */
  qualified: string
  method: string
  unique: boolean
  primary: boolean
  valid: boolean
  ready: boolean
  /** The constraint it enforces (primary key, unique, exclusion) or that leans on it (a FK). */
  constraint_name: string | null
  replica_identity: boolean
  partition: boolean
  building: boolean
  key_count: number
  /** Column numbers, keys then INCLUDE columns; 0 marks an expression. */
  columns: number[]
  opclasses: string[]
  collations: string[]
  options: string[]
  expressions: string | null
  predicate: string | null
  pages: number
  bytes: number
  scans: number
  definition: string
}

export type IndexFinding =
  | {
    kind: 'unused'
    index: string
    table: string
    size_bytes: number
    scans: 0
    definition: string
    fix: string
    note?: string
  }
  | {
    kind: 'duplicate'
    index: string
    table: string
    size_bytes: number
    covered_by: string
    how: 'same definition' | 'leading prefix'
    definition: string
    covered_by_definition: string
    fix: string
  }
  | {
    kind: 'invalid'
    index: string
    table: string
    size_bytes: number
    definition: string
    fix: string
    alternative: string
    note: string
  }
  | {
    kind: 'missing'
    service: string
    index: string
    table: string
    fix: string
    estimated_gain: string | null
    statements: string[]
    recommended_at: string
  }

/** The index's signature: two indexes with the same one serve the same scans. */
function signature(i: IndexRow): string {
  return JSON.stringify([
    i.method,
    i.key_count,
    i.columns,
    i.opclasses,
    i.collations,
    i.options,
    i.expressions,
    i.predicate,
  ])
}

/** Which of two equal indexes to keep: the one a constraint needs, a unique one, the used one. */
function keepFirst(a: IndexRow, b: IndexRow): number {
  const rank = (i: IndexRow) => [
    i.constraint_name ? 1 : 0,
    i.primary ? 1 : 0,
    i.unique ? 1 : 0,
    i.scans,
    -i.oid,
  ]
  const [ra, rb] = [rank(a), rank(b)]
  for (let k = 0; k < ra.length; k++) if (ra[k] !== rb[k]) return rb[k] - ra[k]
  return 0
}

/** Whether `short` serves nothing `long` does not: a plain btree on a leading prefix of its keys. */
function isLeadingPrefix(short: IndexRow, long: IndexRow): boolean {
  const k = short.key_count
  return short.method === 'btree' && long.method === 'btree' && !short.unique &&
    short.expressions === null && short.columns.length === k && k < long.key_count &&
    short.predicate === long.predicate &&
    short.columns.every((c, n) => c === long.columns[n]) &&
    short.opclasses.every((c, n) => c === long.opclasses[n]) &&
    short.collations.every((c, n) => c === long.collations[n]) &&
    short.options.every((c, n) => c === long.options[n])
}

/** A droppable index: no constraint, primary key, replica identity or partitioned parent needs it. */
function droppable(i: IndexRow): boolean {
  return !i.constraint_name && !i.primary && !i.replica_identity && !i.partition
}

/** The findings about existing indexes, from their catalog rows (pure, so it is tested alone). */
export function reviewIndexes(rows: IndexRow[], statsAgeDays: number | null): IndexFinding[] {
  const findings: IndexFinding[] = []
  for (const i of rows) {
    if (i.valid || i.building) continue
    // REINDEX CONCURRENTLY leaves its failed copy as …_ccnew: rebuilding that copy helps nothing.
    const leftover = /_cc(new|old)\d*$/.test(i.index)
    const drop = `drop index concurrently ${i.qualified};`
    findings.push({
      kind: 'invalid',
      index: i.qualified,
      table: `${i.schema}.${i.table}`,
      size_bytes: i.bytes,
      definition: i.definition,
      fix: leftover ? drop : `reindex index concurrently ${i.qualified};`,
      alternative: leftover ? `reindex index concurrently ${i.qualified};` : drop,
      note: (leftover
        ? 'left behind by a failed REINDEX CONCURRENTLY; the original index is still in place. '
        : '') +
        'An invalid index is never used for reads but still slows every write' +
        (i.unique
          ? '; a unique index that failed on duplicate values fails again until they are removed'
          : ''),
    })
  }

  const valid = rows.filter((i) => i.valid && i.ready)
  const redundant = new Set<number>()
  const byTable = groupBy(valid, (i) => `${i.schema}.${i.table}`)
  for (const [table, indexes] of byTable) {
    for (const group of groupBy(indexes, signature).values()) {
      if (group.length < 2) continue
      const [keep, ...others] = group.sort(keepFirst)
      for (const other of others.filter(droppable)) {
        redundant.add(other.oid)
        findings.push(duplicate(table, other, keep, 'same definition'))
      }
    }
    for (const short of indexes) {
      if (redundant.has(short.oid) || !droppable(short)) continue
      const long = indexes.find((l) =>
        l.oid !== short.oid && !redundant.has(l.oid) && isLeadingPrefix(short, l)
      )
      if (!long) continue
      redundant.add(short.oid)
      findings.push(duplicate(table, short, long, 'leading prefix'))
    }
  }

  const young = statsAgeDays !== null && statsAgeDays < YOUNG_STATS_DAYS
  for (const i of valid) {
    if (i.scans > 0 || i.unique || !droppable(i) || i.pages <= UNUSED_MIN_PAGES) continue
    findings.push({
      kind: 'unused',
      index: i.qualified,
      table: `${i.schema}.${i.table}`,
      size_bytes: i.bytes,
      scans: 0,
      definition: i.definition,
      fix: `drop index concurrently ${i.qualified};`,
      ...(young
        ? {
          note: `the statistics were reset ${
            Math.round(statsAgeDays! * 10) / 10
          } days ago: an index used monthly looks unused`,
        }
        : {}),
    })
  }
  return findings
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>()
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item])
  return groups
}

function duplicate(
  table: string,
  drop: IndexRow,
  keep: IndexRow,
  how: 'same definition' | 'leading prefix',
): IndexFinding {
  return {
    kind: 'duplicate',
    index: drop.qualified,
    table,
    size_bytes: drop.bytes,
    covered_by: keep.qualified,
    how,
    definition: drop.definition,
    covered_by_definition: keep.definition,
    fix: `drop index concurrently ${drop.qualified};`,
  }
}

interface Recommendation {
  service: string
  key: string
  title: string
  detail: {
    schema?: string
    table?: string
    statement?: string
    cost_before?: number
    cost_after?: number
    factor?: number
    mean_ms?: number
    calls?: number
  }
  created_at: string
}

export const indexReview: MaintenanceTask = {
  name: 'index_review',
  cadence: 'weekly',
  description:
    'Lists unused, duplicate and invalid indexes of the project database and the missing ones the index advisor recommends, each with the statement that fixes it; drops nothing.',
  async run({ sql }): Promise<TaskResult> {
    const rows = await indexRows(sql)
    // Scans counted since this moment; a replica's scans are not counted here at all.
    const [{ stats_reset, stats_age_days }] = await sql<
      { stats_reset: string | null; stats_age_days: number | null }[]
    >`
      select stats_reset::text, extract(epoch from now() - stats_reset)::float8 / 86400
               as stats_age_days
        from pg_stat_database where datname = current_database()`
    const findings = reviewIndexes(rows, stats_age_days)

    const recommendations = await sql<Recommendation[]>`
      select s.name as service, r.key, r.title, r.detail, r.created_at::text
        from vigil.recommendations r join vigil.services s on s.id = r.service_id
       where r.kind = 'index' and r.status = 'open' and s.enabled
       order by coalesce((r.detail ->> 'factor')::float8, 0) desc, r.id`
    for (const r of recommendations) {
      const d = r.detail
      findings.push({
        kind: 'missing',
        service: r.service,
        index: r.key,
        table: d.schema && d.table ? `${d.schema}.${d.table}` : '',
        fix: `${r.title.replace(/;\s*$/, '')};`,
        estimated_gain: typeof d.factor === 'number'
          ? `estimated cost ${d.cost_before} → ${d.cost_after} (${
            Math.round(d.factor * 10) / 10
          }× cheaper, hypopg) for a statement averaging ${d.mean_ms} ms over ${d.calls} calls`
          : null,
        statements: d.statement ? [d.statement] : [],
        recommended_at: r.created_at,
      })
    }

    const count = (kind: IndexFinding['kind']) => findings.filter((f) => f.kind === kind).length
    const parts = [
      `${count('unused')} unused`,
      `${count('duplicate')} duplicate`,
      `${count('invalid')} invalid`,
      `${count('missing')} missing`,
    ]
    const unusedBytes = findings.reduce(
      (sum, f) => sum + (f.kind === 'unused' || f.kind === 'duplicate' ? f.size_bytes : 0),
      0,
    )
    return {
      status: 'succeeded',
      summary: findings.length === 0
        ? `${rows.length} indexes reviewed: none unused, duplicate, invalid or missing`
        : `${rows.length} indexes reviewed: ${parts.join(', ')}` +
          (unusedBytes > 0
            ? `; dropping the unused and duplicate ones frees about ${mb(unusedBytes)}`
            : '') +
          (stats_reset ? ` (scans counted since ${stats_reset.slice(0, 10)})` : ''),
      findings,
    }
  },
}

function mb(bytes: number): string {
  return bytes >= 1024 ** 3
    ? `${Math.round(bytes / 1024 ** 3 * 10) / 10} GB`
    : `${Math.max(1, Math.round(bytes / 1024 ** 2))} MB`
}

/**
 * Every index outside the catalogs, Vigil's schema, Supabase's and extensions' own, from the
 * catalog alone: relpages (as of the last VACUUM, ANALYZE or build) takes no lock on the index,
 * where pg_relation_size would queue behind a lock held by a migration.
 */
async function indexRows(sql: postgres.Sql): Promise<IndexRow[]> {
  // The list as one text parameter: a fresh connection may not know the text[] type yet.
  const managed = JSON.stringify([...MANAGED_SCHEMAS])
  return await sql<IndexRow[]>`
    select c.oid::int8::float8 as oid, n.nspname::text as schema, t.relname::text as table,
           c.relname::text as index, format('%I.%I', n.nspname, c.relname) as qualified,
           am.amname::text as method, i.indisunique as unique, i.indisprimary as primary,
           i.indisvalid as valid, i.indisready as ready, i.indisreplident as replica_identity,
           (select k.conname::text from pg_constraint k where k.conindid = c.oid
             order by k.contype <> 'f', k.oid limit 1) as constraint_name,
           c.relispartition or t.relkind = 'p' as partition,
           exists (select from pg_stat_progress_create_index p where p.index_relid = c.oid)
             as building,
           i.indnkeyatts::int as key_count,
           string_to_array(i.indkey::text, ' ')::int[] as columns,
           string_to_array(i.indclass::text, ' ') as opclasses,
           string_to_array(i.indcollation::text, ' ') as collations,
           string_to_array(i.indoption::text, ' ') as options,
           pg_get_expr(i.indexprs, i.indrelid) as expressions,
           pg_get_expr(i.indpred, i.indrelid) as predicate,
           c.relpages::float8 as pages,
           c.relpages::float8 * current_setting('block_size')::int as bytes,
           coalesce(pg_stat_get_numscans(c.oid), 0)::float8 as scans,
           pg_get_indexdef(c.oid) as definition
      from pg_index i
      join pg_class c on c.oid = i.indexrelid
      join pg_class t on t.oid = i.indrelid
      join pg_namespace n on n.oid = t.relnamespace
      join pg_am am on am.oid = c.relam
     where n.nspname !~ '^pg_'
       and n.nspname not in (select jsonb_array_elements_text(${managed}::text::jsonb))
       and t.relpersistence <> 't'
       and not exists (select from pg_depend d where d.classid = 'pg_class'::regclass
                        and d.objid = t.oid and d.deptype = 'e')
     order by n.nspname, t.relname, c.relname`
}
