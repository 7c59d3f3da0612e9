// A table as the advisor sees it in the catalog: its columns, its valid btree indexes by key
// columns, its size and kind.
import type postgres from 'postgres'

type Sql = postgres.Sql<any>

export interface Relation {
  schema: string
  table: string
  rows: number
  kind: string
  partition: boolean
  persistence: string
  columns: string[]
  /** The valid, non-partial btree indexes by key columns (null where a key is an expression). */
  indexes: { name: string; columns: (string | null)[] }[]
}

export async function relation(c: Sql, schema: string, table: string): Promise<Relation | null> {
  const [row]: Relation[] = await c`
    /* vigil:add-missing-index */
    select n.nspname::text as schema, c.relname::text as table,
           (case when c.reltuples >= 0 then c.reltuples
                 else pg_relation_size(c.oid) / 100.0 end)::float8 as rows,
           c.relkind::text as kind, c.relispartition as partition,
           c.relpersistence::text as persistence,
           to_json(array(select a.attname::text from pg_attribute a
                          where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped)) as columns,
           coalesce((select json_agg(k) from (
             select ic.relname::text as name, array(select a.attname::text
                          from unnest(i.indkey::int2[]) with ordinality u(attnum, n)
                          left join pg_attribute a on a.attrelid = i.indrelid and a.attnum = u.attnum
                          where u.n <= i.indnkeyatts order by u.n) as columns
             from pg_index i
             join pg_class ic on ic.oid = i.indexrelid
             join pg_am am on am.oid = ic.relam
             where i.indrelid = c.oid and i.indisvalid and i.indpred is null and am.amname = 'btree'
           ) k), '[]'::json) as indexes
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and c.relname = ${table}`
  return row ?? null
}

/** Whether `list` begins with `prefix`: an index on (a, b) serves (a). */
export function startsWith(list: (string | null)[], prefix: string[]): boolean {
  return prefix.length <= list.length && prefix.every((col, i) => list[i] === col)
}
