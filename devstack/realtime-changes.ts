// The local stack's change feed, for its Realtime stand-in (issue 10): what Supabase Realtime reads
// from the write-ahead log, read here the same way — logical decoding with wal2json (format 2) on a
// temporary slot of a connection of its own. A development tool, never deployed.
import type postgres from 'postgres'

export interface Column {
  name: string
  type: string
  value: unknown
}

/** One row change, as postgres_changes delivers it (before the client converts the values). */
export interface RowChange {
  schema: string
  table: string
  type: 'INSERT' | 'UPDATE' | 'DELETE'
  /** The commit's time (ISO 8601). */
  commit_timestamp: string
  columns: { name: string; type: string }[]
  /** The new row (INSERT, UPDATE): every column, values as text or JSON as wal2json gives them. */
  record: Record<string, unknown>
  /** The old row's replica identity (UPDATE, DELETE): its primary key unless REPLICA IDENTITY FULL. */
  old_record: Record<string, unknown>
  /** The primary key's columns. */
  pk: string[]
}

interface Wal2JsonRow {
  action: string
  schema?: string
  table?: string
  timestamp?: string
  columns?: Column[]
  identity?: Column[]
  pk?: { name: string; type: string }[]
}

/**
 * A logical decoding feed of the tables matching `tables` (wal2json's add-tables syntax, e.g.
 * 'vigil.*'). The slot is temporary: it goes with the reserved connection, so a crashed stack
 * leaves nothing behind.
 */
export class ChangeFeed {
  #conn: postgres.ReservedSql | null = null
  readonly #slot = `vigil_realtime_${crypto.randomUUID().replaceAll('-', '').slice(0, 12)}`

  constructor(private readonly sql: postgres.Sql, private readonly tables: string) {}

  async start(): Promise<void> {
    this.#conn = await this.sql.reserve()
    await this.#conn`select pg_create_logical_replication_slot(${this.#slot}, 'wal2json', true)`
  }

  /**
   * The changes committed since the last call, in commit order. Only WAL already flushed is read:
   * a commit made with synchronous_commit off shows a moment later.
   */
  async poll(): Promise<RowChange[]> {
    if (!this.#conn) throw new Error('the change feed is not started')
    const rows = await this.#conn<{ data: string }[]>`
      select data from pg_logical_slot_get_changes(${this.#slot}, null, null,
        'format-version', '2', 'include-timestamp', '1', 'include-types', '1', 'include-pk', '1',
        'add-tables', ${this.tables})`
    const out: RowChange[] = []
    for (const { data } of rows) {
      const c = JSON.parse(data) as Wal2JsonRow
      const type = c.action === 'I'
        ? 'INSERT'
        : c.action === 'U'
        ? 'UPDATE'
        : c.action === 'D'
        ? 'DELETE'
        : null
      if (!type || !c.schema || !c.table) continue
      const record = Object.fromEntries((c.columns ?? []).map((x) => [x.name, x.value]))
      const old = Object.fromEntries((c.identity ?? []).map((x) => [x.name, x.value]))
      out.push({
        schema: c.schema,
        table: c.table,
        type,
        commit_timestamp: toIso(c.timestamp),
        columns: (c.columns ?? c.identity ?? []).map(({ name, type }) => ({ name, type })),
        record: type === 'DELETE' ? {} : record,
        old_record: type === 'INSERT' ? {} : old,
        pk: (c.pk ?? []).map((k) => k.name),
      })
    }
    return out
  }

  async stop(): Promise<void> {
    const conn = this.#conn
    this.#conn = null
    if (!conn) return
    await conn`select pg_drop_replication_slot(${this.#slot})`.catch(() => {})
    conn.release()
  }
}

/** wal2json's timestamp ("2026-12-02 08:00:00.123456+00") as ISO 8601. */
function toIso(ts: string | undefined): string {
  if (!ts) return new Date().toISOString()
  const d = new Date(ts.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00'))
  return Number.isNaN(d.getTime()) ? new Date().toISOString() : d.toISOString()
}
