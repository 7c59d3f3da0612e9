// `vigil apply`: makes the configured tables hold what a vigil.yml says, idempotently. It compares
// three states: what the file asks for, what the tables hold now, and what the previous apply left
// (vigil.config_applies). A row that SQL changed since the previous apply is drift: reported, and
// never overwritten unless --force says so. The plan is carried out by vigil.apply_config() in one
// transaction, which checks every row is still as the plan saw it.
import {
  CONFIG_TABLES,
  type ConfigTable,
  type Entry,
  FIELD_DEFAULTS,
  keyOf,
  type Managed,
  settingsRowErrors,
} from './config-file.ts'

export type Row = Record<string, unknown>

/** What vigil.config_state() returns. */
export interface ConfigState {
  db_schema: string | null
  last_apply: {
    id: number
    applied_at: string
    applied_by: string
    source: string
    managed: Managed
  } | null
  current: Record<ConfigTable, Row[]>
}

export interface Op {
  table: ConfigTable
  op: 'insert' | 'update' | 'delete'
  key: Row
  /** The fields as the plan saw them (update, delete): apply_config refuses if they changed. */
  before?: Row
  set?: Row
  /** Why, in words, for a removal: what the file no longer says. */
  note?: string
}

export interface DriftedField {
  field: string
  applied: unknown
  now: unknown
  /** What the file says now (undefined: the file no longer manages the row). */
  file?: unknown
}

export interface Drift {
  table: ConfigTable
  key: string
  /** Null: the row was deleted in SQL since the previous apply. */
  fields: DriftedField[] | null
  /** The plan would overwrite what SQL changed. */
  conflict: boolean
}

export interface Plan {
  ops: Op[]
  drift: Drift[]
  /** Rows the file no longer manages and that stay as they are (settings, routes, built-ins). */
  released: { table: ConfigTable; key: string }[]
  /** Rows nobody manages in the file, left as they are: how many per table. */
  unmanaged: Partial<Record<ConfigTable, number>>
  /** Rows the plan cannot make: held twice (contacts have no unique key), or not there to update. */
  problems: { table: ConfigTable; key: string; message: string }[]
  /** What the reader should know that is not a change (a service kept rather than pruned). */
  notes: string[]
  /** The state to record for the next apply: the file's rows, and the ones it retired. */
  record: Recorded
  /** Whether that state differs from the one the previous apply recorded. */
  managedChanged: boolean
}

/**
 * What an apply records: the rows the file asked for, and the services and contacts a file
 * dropped, which stay disabled (`--prune` later deletes them).
 */
export type Recorded = Managed & { retired?: Partial<Record<ConfigTable, Record<string, Entry>>> }

/** Equal as JSON values: objects by their keys in any order, numbers by value, types kept apart. */
export function same(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (a === null || b === null || a === undefined || b === undefined) {
    return (a ?? null) === (b ?? null)
  }
  if (typeof a !== typeof b) return false
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length &&
      a.every((v, i) => same(v, b[i]))
  }
  if (typeof a === 'object') {
    const ka = Object.keys(a as object).filter((k) => (a as Row)[k] !== undefined)
    const kb = Object.keys(b as object).filter((k) => (b as Row)[k] !== undefined)
    return ka.length === kb.length && ka.every((k) => same((a as Row)[k], (b as Row)[k]))
  }
  return false
}

const pick = (row: Row, fields: string[]) =>
  Object.fromEntries(fields.map((f) => [f, row[f] ?? null]))

/** Tables whose rows apply only updates: one row per environment (and priority) always exists. */
const FIXED: ReadonlySet<ConfigTable> = new Set(['settings', 'alert_routes'])

/**
 * The changes that make the tables hold `desired`, and what SQL changed since the previous apply.
 * `prune` deletes services and contacts the file dropped instead of disabling them.
 */
export function makePlan(desired: Managed, state: ConfigState, options: { prune: boolean }): Plan {
  const last = state.last_apply?.managed as Recorded | undefined
  const retired: NonNullable<Recorded['retired']> = {}
  const plan: Plan = {
    ops: [],
    drift: [],
    released: [],
    unmanaged: {},
    problems: [],
    notes: [],
    record: desired,
    managedChanged: false,
  }
  for (const table of CONFIG_TABLES) {
    const current = new Map<string, Row[]>()
    for (const row of state.current[table] ?? []) {
      const k = keyOf(table, row)
      current.set(k, [...(current.get(k) ?? []), row])
    }
    const want = desired[table] ?? {}
    const had: Record<string, Entry> = last?.[table] ?? {}
    const wasRetired: Record<string, Entry> = last?.retired?.[table] ?? {}
    const keys = [
      ...new Set([...Object.keys(want), ...Object.keys(had), ...Object.keys(wasRetired)]),
    ]
      .sort()
    for (const key of keys) {
      const rows = current.get(key) ?? []
      if (rows.length > 1) {
        plan.problems.push({
          table,
          key,
          message:
            `the table holds ${rows.length} such rows, so apply cannot tell which the file means: delete all but one`,
        })
        continue
      }
      const row = rows[0]
      const d = want[key]
      const l = had[key]
      // Drift: the row no longer holds what the previous apply left in it.
      let drifted: DriftedField[] | null | undefined
      if (l) {
        if (!row) drifted = null
        else {
          const changed = Object.keys(l.fields).filter((f) => !same(row[f], l.fields[f]))
          if (changed.length) {
            drifted = changed.map((f) => ({
              field: f,
              applied: l.fields[f],
              now: row[f] ?? null,
              file: d ? d.fields[f] : undefined,
            }))
          }
        }
      }
      let conflict = false
      if (d) {
        if (!row) {
          if (FIXED.has(table)) {
            plan.problems.push({
              table,
              key,
              message: 'no such row to update (is the schema current?)',
            })
            continue
          }
          // ignore.log_patterns only turns a pattern off; there is nothing to create.
          if (table === 'log_patterns' && !('pattern' in d.fields)) {
            plan.problems.push({
              table,
              key,
              message: 'ignore.log_patterns names no built-in pattern and none in the file',
            })
            continue
          }
          plan.ops.push({ table, op: 'insert', key: d.key, set: d.fields })
          conflict = drifted === null
        } else {
          const changed = Object.keys(d.fields).filter((f) => !same(row[f], d.fields[f]))
          if (changed.length) {
            plan.ops.push({
              table,
              op: 'update',
              key: d.key,
              before: pick(row, changed),
              set: pick(d.fields, changed),
            })
          }
          conflict = !!drifted && drifted.some((f) => changed.includes(f.field))
          if (table === 'settings' || table === 'alert_routes') {
            for (const message of rowErrors(table, { ...row, ...d.fields })) {
              plan.problems.push({ table, key, message })
            }
          }
        }
      } else if (row && (l || wasRetired[key])) {
        conflict = dropped(table, key, row, l ?? wasRetired[key], !!drifted, !l)
      }
      if (drifted !== undefined) plan.drift.push({ table, key, fields: drifted, conflict })
    }
    const unmanaged = [...current.keys()].filter((k) =>
      !want[k] && !had[k] && !wasRetired[k]
    ).length
    if (unmanaged > 0 && !FIXED.has(table)) plan.unmanaged[table] = unmanaged
  }
  plan.ops = inDependencyOrder(plan.ops, desired)
  if (Object.keys(retired).length > 0) plan.record = { ...desired, retired }
  plan.managedChanged = !last || !same(stripped(last), stripped(plan.record))
  return plan

  /** A row the file no longer names: what becomes of it, and whether that overwrites drift. */
  function dropped(
    table: ConfigTable,
    key: string,
    row: Row,
    was: Entry,
    drifted: boolean,
    alreadyRetired: boolean,
  ): boolean {
    if (table === 'services' || table === 'contacts') {
      // The heal audit is append-only and names its service: such a service is kept, disabled.
      const keep = table === 'services' && row.healed === true
      if (options.prune && !keep) {
        plan.ops.push({
          table,
          op: 'delete',
          key: was.key,
          before: pick(row, Object.keys(was.fields)),
          note: 'no longer in the file (--prune)',
        })
        return drifted
      }
      if (options.prune) {
        plan.notes.push(
          `${table} ${key} is kept (disabled), not deleted: the heal audit names it, and the audit is append-only`,
        )
      }
      if (!alreadyRetired && row.enabled !== false) {
        plan.ops.push({
          table,
          op: 'update',
          key: was.key,
          before: { enabled: row.enabled },
          set: { enabled: false },
          note: 'no longer in the file: disabled, kept with its history (--prune deletes it)',
        })
      }
      ;(retired[table] ??= {})[key] = { key: was.key, fields: { enabled: false } }
      return false
    }
    if (table === 'log_patterns' && row.builtin === true) {
      // A built-in pattern is never deleted; one the file only turned off is turned on again.
      const onlyIgnored = Object.keys(was.fields).length === 1 && was.fields.enabled === false
      if (onlyIgnored && row.enabled === false) {
        plan.ops.push({
          table,
          op: 'update',
          key: was.key,
          before: { enabled: false },
          set: { enabled: true },
          note: 'no longer ignored: on again',
        })
      } else plan.released.push({ table, key })
      return false
    }
    if (table === 'heal_policies' || table === 'log_patterns') {
      plan.ops.push({
        table,
        op: 'delete',
        key: was.key,
        before: pick(row, Object.keys(was.fields)),
        note: table === 'heal_policies'
          ? 'no longer in the file: the strategy is back to its default mode'
          : 'no longer in the file',
      })
      return drifted
    }
    plan.released.push({ table, key })
    return false
  }
}

/** What the CHECK constraints would refuse in a row as the plan leaves it. */
function rowErrors(table: ConfigTable, row: Row): string[] {
  if (table === 'settings') {
    return settingsRowErrors(row).map((e) =>
      `${e.column}: ${e.message} (with what the row holds now for the rest)`
    )
  }
  if (table === 'alert_routes' && ['P0', 'P1'].includes(String(row.priority))) {
    return row.respect_quiet_hours === true
      ? ['respect_quiet_hours: P0 and P1 wake people up: they cannot wait for quiet hours to end']
      : []
  }
  return []
}

/**
 * Services are checked against their depends_on when written, so services are written in the
 * file's dependency order (what one needs first), inserts and updates alike, then the removals.
 */
function inDependencyOrder(ops: Op[], desired: Managed): Op[] {
  const services = ops.filter((o) => o.table === 'services')
  const writes = new Map(
    services.filter((o) => o.op !== 'delete' && desired.services[String(o.key.name)])
      .map((o) => [String(o.key.name), o]),
  )
  const ordered: Op[] = []
  const placed = new Set<string>()
  const place = (name: string, trail: Set<string>) => {
    if (placed.has(name) || trail.has(name) || !desired.services[name]) return
    trail.add(name)
    for (const d of (desired.services[name].fields.depends_on as string[] | null) ?? []) {
      place(d, trail)
    }
    placed.add(name)
    const op = writes.get(name)
    if (op) ordered.push(op)
  }
  for (const name of Object.keys(desired.services).sort()) place(name, new Set())
  const rest = services.filter((o) => !ordered.includes(o))
  const rank = { insert: 0, update: 1, delete: 2 }
  return [
    ...ops.filter((o) => o.table !== 'services'),
    ...ordered,
    ...rest.sort((a, b) => rank[a.op] - rank[b.op]),
  ]
}

/** The recorded state without empty tables, so {} and a table of nothing compare equal. */
function stripped(m: Recorded): Record<string, unknown> {
  const { retired, ...tables } = m
  const full = (o: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(o).filter(([, rows]) => Object.keys(rows ?? {}).length > 0))
  return { ...full(tables), retired: full(retired ?? {}) }
}

const json = (v: unknown) => JSON.stringify(v)

/** A field as the plan prints it: literal header values (a probe's bearer token, say) masked. */
function shown(field: string, v: unknown): string {
  if (field === 'config' && v && typeof v === 'object' && 'headers' in v) {
    const headers = (v as { headers: unknown }).headers
    if (headers && typeof headers === 'object') {
      return json({ ...v, headers: Object.fromEntries(Object.keys(headers).map((h) => [h, '…'])) })
    }
  }
  return json(v)
}
const SIGN = { insert: '+', update: '~', delete: '-' } as const

/** The plan as a person reads it: one line a row, one indented line a field. */
export function describePlan(plan: Plan, state: ConfigState): string {
  const out: string[] = []
  for (const op of plan.ops) {
    const key = keyOf(op.table, op.key)
    const disabling = op.op === 'update' && op.set?.enabled === false && !!op.note
    out.push(`${disabling ? '-' : SIGN[op.op]} ${op.table} ${key}${op.note ? `: ${op.note}` : ''}`)
    if (op.op === 'insert') {
      const defaults = FIELD_DEFAULTS[op.table] ?? {}
      for (const [f, v] of Object.entries(op.set ?? {})) {
        if (!(f in defaults && same(defaults[f], v))) out.push(`    ${f}: ${shown(f, v)}`)
      }
    } else if (op.op === 'update' && !disabling) {
      for (const [f, v] of Object.entries(op.set ?? {})) {
        out.push(`    ${f}: ${shown(f, op.before?.[f])} → ${shown(f, v)}`)
      }
    }
  }
  if (plan.drift.length > 0) {
    const since = state.last_apply
      ? `apply ${state.last_apply.id} (${
        state.last_apply.applied_at.slice(0, 16).replace('T', ' ')
      } UTC, ${state.last_apply.applied_by})`
      : 'the previous apply'
    out.push('', `Changed in SQL since ${since}:`)
    for (const d of plan.drift) {
      const mark = d.conflict ? '!' : ' '
      if (d.fields === null) {
        out.push(
          `${mark} ${d.table} ${d.key}: deleted${
            d.conflict ? '; the file would create it again' : ''
          }`,
        )
        continue
      }
      for (const f of d.fields) {
        const file = f.file === undefined
          ? 'the file no longer manages it'
          : same(f.file, f.now)
          ? 'the file agrees'
          : `the file says ${shown(f.field, f.file)}`
        out.push(
          `${mark} ${d.table} ${d.key}: ${f.field} was ${shown(f.field, f.applied)}, is ${
            shown(f.field, f.now)
          }; ${file}`,
        )
      }
    }
  }
  for (const r of plan.released) {
    out.push(`  ${r.table} ${r.key}: no longer in the file; left as it is`)
  }
  const counts = { insert: 0, update: 0, delete: 0 }
  for (const op of plan.ops) {
    counts[op.op === 'update' && op.set?.enabled === false && op.note ? 'delete' : op.op]++
  }
  const unmanaged = Object.entries(plan.unmanaged).map(([t, n]) => `${n} ${t}`).join(', ')
  out.push(
    '',
    plan.ops.length === 0
      ? 'No changes: the database holds what the file says.'
      : `${counts.insert} to add, ${counts.update} to change, ${counts.delete} to remove.`,
  )
  if (unmanaged) out.push(`Not in the file, left as they are: ${unmanaged}.`)
  return out.join('\n').replace(/^\n+/, '')
}
