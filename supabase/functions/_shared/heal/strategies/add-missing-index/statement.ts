// Statement text and index names: one statement at a time, identifiers always quoted, and index
// names that are plain when they can be, hashed and at most 63 bytes otherwise.

/** Marks this strategy's own statements, so pg_stat_statements readers can leave them out. */
export const INDEX_MARKER = 'vigil:add-missing-index'

/** Leading blanks and comments, stripped before a statement's first keyword is read. */
export const LEADING_RE = String.raw`^(\s|/\*([^*]|\*+[^*/])*\*+/|--[^\n]*(\n|$))*`
const INDEX_NAME_MAX = 63

/**
 * The statement without leading comments, blanks and a trailing semicolon, or null when its text
 * holds more than one statement (a semicolon outside quotes and comments).
 */
export function singleStatement(query: string): string | null {
  const text = query.replace(new RegExp(LEADING_RE), '').replace(/[\s;]+$/, '')
  let i = 0
  while (i < text.length) {
    const ch = text[i]
    if (ch === "'" || ch === '"') {
      const end = text.indexOf(ch, i + 1)
      if (end < 0) return null
      i = end + 1
    } else if (text.startsWith('--', i)) {
      const end = text.indexOf('\n', i)
      i = end < 0 ? text.length : end + 1
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2)
      if (end < 0) return null
      i = end + 2
    } else if (ch === ';') return null
    else i++
  }
  return text.length ? text : null
}

/** Always quoted, so capitals, spaces and keywords are safe. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

export function qualified(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`
}

export function createIndexSql(
  schema: string,
  table: string,
  columns: string[],
  name: string,
): string {
  return `CREATE INDEX CONCURRENTLY IF NOT EXISTS ${quoteIdent(name)} ON ` +
    `${qualified(schema, table)} (${columns.map(quoteIdent).join(', ')})`
}

/**
 * vigil_idx_<table>_<cols>, lower-case ASCII, at most 63 bytes. A name that had to be cleaned
 * (capitals, spaces, other characters) or shortened ends in a hash of the exact table and
 * columns, so two tables whose names clean alike do not collide.
 */
export function indexName(table: string, columns: string[], forceHash = false): string {
  const raw = ['vigil_idx', table, ...columns].join('_')
  const clean = raw.toLowerCase().replace(/[^a-z0-9_]+/g, '_')
  if (!forceHash && clean === raw && clean.length <= INDEX_NAME_MAX) return clean
  const hash = fnv1a(JSON.stringify([table, columns])).toString(16).padStart(8, '0')
  return `${clean.slice(0, INDEX_NAME_MAX - hash.length - 1).replace(/_+$/, '')}_${hash}`
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5
  for (const byte of new TextEncoder().encode(s)) {
    h ^= byte
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}
