// vigil.yml: Vigil's configuration as code. Thresholds (with per-environment overrides), alerting
// knobs, routes and contacts, heal settings and policies, deployments, services with their
// dependencies, log patterns and what to ignore, in one reviewed file. This module parses and
// validates it (every error at once, each with its path and line) and expands it into the rows of
// the configured tables it stands for: the state `vigil apply` makes the database hold.
import { LineCounter, type Pair, type ParsedNode, parseDocument, YAMLMap, YAMLSeq } from 'yaml'
import { z } from 'zod'
import { ALERT_CHANNELS, CONTACT_ROLES, ENVIRONMENTS, SERVICE_KINDS } from '../shared/kinds.ts'
import { PROBE_CONFIGS } from '../shared/probe-configs.ts'
import { BANDS, type ThresholdName } from '../shared/thresholds.ts'
import { DEFAULT_ALERT_SETTINGS, PRIORITIES } from '../shared/alerting.ts'
import { contactErrors, ContactInput } from '../shared/contacts.ts'
import { ServiceActions } from '../shared/service-actions.ts'
import { STRATEGIES } from '../supabase/functions/_shared/heal/registry.ts'

export const CONFIG_VERSION = 1
type Environment = (typeof ENVIRONMENTS)[number]

const int = (min: number, max: number) => z.number().int().min(min).max(max)
/** The largest integer column value (int4). */
const INT_MAX = 2_147_483_647
/** A number with no more decimals than its numeric(p, s) column keeps, so it is stored as written. */
const scaled = (n: z.ZodNumber, decimals: number) =>
  n.refine((v) => Math.abs(v * 10 ** decimals - Math.round(v * 10 ** decimals)) < 1e-6, {
    message: `must have at most ${decimals} decimals (the column keeps ${decimals})`,
  })
const ms = z.number().int().positive().max(INT_MAX)
const pct3 = scaled(z.number().positive().max(100), 3)
const pct2 = scaled(z.number().positive().max(100), 2)
const minutes = z.number().int().positive().max(INT_MAX)

/** `api_p95_ms: {warning: 200, critical: 500}` for the api_p95_warning_ms / _critical_ms columns. */
const band = (n: z.ZodType<number>) => z.strictObject({ warning: n, critical: n }).partial()
const BAND_UNITS = {
  api_p95: ['ms', ms],
  db_query: ['ms', ms],
  error_rate: ['pct', pct3],
  memory: ['pct', pct2],
  cpu: ['pct', pct2],
  deploy: ['minutes', minutes],
} as const satisfies Record<keyof typeof BANDS, readonly [string, z.ZodType<number>]>
const Thresholds = z.strictObject(
  Object.fromEntries(
    Object.entries(BAND_UNITS).map(([name, [unit, n]]) => [`${name}_${unit}`, band(n)]),
  ) as Record<string, ReturnType<typeof band>>,
).partial()

/** The alerting knobs of vigil.settings, without their `alert_` prefix. */
const ALERT_KNOBS = {
  group_seconds: ['alert_group_seconds', int(0, 3600)],
  reminder_minutes: ['alert_reminder_minutes', int(1, 1440)],
  ack_escalate_minutes: ['alert_ack_escalate_minutes', int(1, 1440)],
  flap_threshold: ['flap_threshold', int(2, 100)],
  flap_window_minutes: ['flap_window_minutes', int(1, 1440)],
  retry_base_seconds: ['alert_retry_base_seconds', int(1, 3600)],
  retry_max_seconds: ['alert_retry_max_seconds', int(1, 86_400)],
  give_up_hours: ['alert_give_up_hours', int(1, 168)],
  ack_link_hours: ['ack_link_hours', int(1, 720)],
  urgent_fallback_minutes: ['alert_urgent_fallback_minutes', int(1, 1440)],
} as const satisfies Record<string, readonly [keyof typeof DEFAULT_ALERT_SETTINGS, z.ZodType]>

const Channel = z.enum(ALERT_CHANNELS)
/** A route's fields; what a file leaves out stays as the row has it (each route row always exists). */
const Route = z.strictObject({
  channels: z.array(Channel).min(1).max(6),
  fallback: z.array(Channel).max(6),
  respect_quiet_hours: z.boolean(),
}).partial()
const Policy = z.strictObject({
  mode: z.enum(['auto', 'approval', 'suggest', 'off']),
  config: z.record(z.string(), z.unknown()),
}).partial()

const AlertsScoped = z.strictObject({
  ...Object.fromEntries(Object.entries(ALERT_KNOBS).map(([k, [, schema]]) => [k, schema])),
  routes: z.partialRecord(z.enum(PRIORITIES), Route),
}).partial()

/** What may differ per environment: the top-level blocks, and `environments.<env>` overriding them. */
const Scoped = z.strictObject({
  monitoring: z.strictObject({ thresholds: Thresholds }).partial(),
  database: z.strictObject({ slow_query_threshold_ms: ms }).partial(),
  deployments: z.strictObject({
    /** Roll back an error spike right after a deploy without asking (the rollback_deploy policy). */
    auto_rollback_on_spike: z.boolean(),
    /** Every traffic service's rollback_threshold and window, unless it sets its own. */
    rollback_threshold: z.number().min(1).max(1000),
    rollback_window_minutes: int(1, 1440),
  }).partial(),
  alerts: AlertsScoped,
  healing: z.strictObject({
    max_per_hour: int(1, 1000),
    breaker: z.strictObject({
      window: int(2, 100),
      min_heals: int(1, 100),
      failure_ratio: scaled(z.number().gt(0).lt(1), 2),
      cooldown_minutes: int(1, 1440),
    }).partial(),
    protected_applications: z.array(z.string().min(1).max(200)).max(100),
    policies: z.record(z.string(), Policy),
  }).partial(),
}).partial()
type Scoped = z.infer<typeof Scoped>

const ServiceName = z.string().regex(
  /^[a-z0-9][a-z0-9_.-]{0,62}$/,
  'must be 1 to 63 lower-case letters, digits, _ . or -, starting with a letter or digit',
)
const Service = z.strictObject({
  name: ServiceName,
  kind: z.enum(SERVICE_KINDS),
  environment: z.enum(ENVIRONMENTS).default('prod'),
  config: z.record(z.string(), z.unknown()).default({}),
  enabled: z.boolean().default(true),
  description: z.string().max(500).nullable().default(null),
  timeout_ms: int(100, 120_000).default(10_000),
  failure_threshold: int(1, 100).default(3),
  success_threshold: int(1, 100).default(2),
  /**
   * The service's healing switch is a control people flip (the dashboard, SQL): managed only where
   * the file sets it, never turned back on behind an operator's back.
   */
  heal_enabled: z.boolean().optional(),
  actions: z.record(z.string(), z.unknown()).default({}),
  /** The services this one needs (their names); absent: Supabase's own topology. */
  depends_on: z.array(ServiceName).max(50).nullable().default(null),
})

const Contact = z.strictObject({
  name: z.string(),
  role: z.enum(CONTACT_ROLES),
  channel: Channel,
  address: z.string(),
  secret_name: z.string().nullable().default(null),
  environment: z.enum(ENVIRONMENTS).nullable().default(null),
  quiet_hours: z.unknown().nullable().default(null),
  enabled: z.boolean().default(true),
})

const LogPattern = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be a lower-case identifier'),
  pattern: z.string().min(1).max(1000),
  severity: z.enum(['info', 'warning', 'critical']),
  action: z.enum(['page', 'alert', 'record']).default('alert'),
  sources: z.array(z.enum(['postgres', 'functions'])).min(1).max(2).default([
    'postgres',
    'functions',
  ]),
  min_count: int(1, 100_000).default(1),
  priority: int(-1000, 1000).default(0),
  description: z.string().max(500).default(''),
  enabled: z.boolean().default(true),
})

export const VigilFile = Scoped.extend({
  version: z.literal(CONFIG_VERSION, {
    error: `must be ${CONFIG_VERSION} (the format of this file: version: ${CONFIG_VERSION})`,
  }),
  environments: z.partialRecord(z.enum(ENVIRONMENTS), Scoped).optional(),
  alerts: AlertsScoped.extend({ contacts: z.array(Contact) }).partial().optional(),
  services: z.array(Service).optional(),
  log_patterns: z.array(LogPattern).optional(),
  ignore: z.strictObject({
    /** Statements never called slow, added to every postgres service's slow_ignore. */
    slow_queries: z.array(z.string().min(1).max(500)).max(100),
    /** Log patterns (built in or not) turned off. */
    log_patterns: z.array(z.string().min(1).max(63)).max(100),
  }).partial().optional(),
})
export type VigilFile = z.infer<typeof VigilFile>

/** A row's fields a file may leave out, as the schemas above fill them in (the columns' defaults). */
function defaultsOf(schema: z.ZodType, required: Record<string, unknown>): Record<string, unknown> {
  const filled = schema.parse(required) as Record<string, unknown>
  return Object.fromEntries(Object.entries(filled).filter(([k]) => !(k in required)))
}

/** What a new row holds unless the file says otherwise, per table (the plan leaves it unsaid). */
export const FIELD_DEFAULTS: Partial<Record<ConfigTable, Record<string, unknown>>> = {
  services: defaultsOf(Service, { name: 'x', kind: 'http' }),
  contacts: defaultsOf(Contact, { name: 'x', role: 'team', channel: 'email', address: 'x' }),
  log_patterns: defaultsOf(LogPattern, { name: 'x', pattern: 'x', severity: 'info' }),
  heal_policies: { config: {} },
}

export const CONFIG_TABLES = [
  'settings',
  'alert_routes',
  'services',
  'contacts',
  'heal_policies',
  'log_patterns',
] as const
export type ConfigTable = (typeof CONFIG_TABLES)[number]

/** One row the file asks for: its key columns and the columns it sets. */
export interface Entry {
  key: Record<string, unknown>
  fields: Record<string, unknown>
}
/** The rows a file stands for, per table, by key (keyOf). */
export type Managed = Record<ConfigTable, Record<string, Entry>>

/** A row's key as one string: `prod/P0`, `Ana/sms/*`. */
export function keyOf(table: ConfigTable, row: Record<string, unknown>): string {
  switch (table) {
    case 'settings':
      return String(row.environment)
    case 'alert_routes':
      return `${row.environment}/${row.priority}`
    case 'services':
    case 'log_patterns':
      return String(row.name)
    case 'contacts':
      return `${row.name}/${row.channel}/${row.environment ?? '*'}`
    case 'heal_policies':
      return `${row.environment}/${row.strategy}`
  }
}

/** A problem with the file: where, and what. */
export interface ConfigError {
  path: string
  message: string
  line?: number
  column?: number
}

export class ConfigInvalid extends Error {
  override name = 'ConfigInvalid'
  constructor(readonly file: string, readonly errors: ConfigError[]) {
    super(
      `${file} is not valid (${errors.length} ${errors.length === 1 ? 'error' : 'errors'}):\n` +
        errors.map((e) => `  ${describeError(file, e)}`).join('\n'),
    )
  }
}

export function describeError(file: string, e: ConfigError): string {
  const where = e.line ? `${file}:${e.line}:${e.column} ` : ''
  return `${where}${e.path || '(file)'}: ${e.message}`
}

function pathText(path: readonly PropertyKey[]): string {
  return path.map((p, i) => typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)
    .join('')
}

/**
 * Parses and validates a vigil.yml, and expands it into the rows it stands for. Throws ConfigInvalid
 * with every problem found (syntax, unknown keys, wrong types, duplicates, dependency cycles,
 * each probe's config and each heal policy's settings), each with its path and line.
 */
export function parseConfig(
  text: string,
  file = 'vigil.yml',
): { config: VigilFile; managed: Managed } {
  const lines = new LineCounter()
  const doc = parseDocument(text, {
    lineCounter: lines,
    uniqueKeys: true,
    prettyErrors: true,
    merge: true,
  })
  if (doc.errors.length > 0) {
    throw new ConfigInvalid(
      file,
      doc.errors.map((e) => ({
        path: '',
        message: e.message.split('\n')[0],
        line: e.linePos?.[0].line,
        column: e.linePos?.[0].col,
      })),
    )
  }
  const errors: ConfigError[] = []
  const add = (path: readonly PropertyKey[], message: string) => {
    const at = locate(doc.contents, path, lines)
    errors.push({ path: pathText(path), message, ...at })
  }
  let raw: unknown
  try {
    raw = doc.toJS({ maxAliasCount: 100 })
  } catch (error) {
    // Too many aliases (a "billion laughs" file), say.
    throw new ConfigInvalid(file, [{ path: '', message: (error as Error).message }])
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigInvalid(file, [{ path: '', message: 'must be a mapping (version: 1, …)' }])
  }
  const parsed = VigilFile.safeParse(raw)
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) add([...issue.path, key], 'unknown key')
      } else add(issue.path, issue.message)
    }
    // What is wrong in meaning too, read from what is well formed, so one run lists it all; never
    // twice for one place.
    const shapeErrors = errors.map((e) => e.path)
    try {
      checkMeaning(lenient(raw as Record<string, unknown>), (path, message) => {
        const at = pathText(path)
        if (
          !shapeErrors.some((p) => at === p || at.startsWith(`${p}.`) || at.startsWith(`${p}[`))
        ) {
          add(path, message)
        }
      })
    } catch {
      // What is malformed beyond reading: its shape errors say it.
    }
    throw new ConfigInvalid(file, errors)
  }
  const config = parsed.data
  checkMeaning(config, add)
  if (errors.length > 0) throw new ConfigInvalid(file, errors)
  const managed = expand(config) // What ignore and deployments added to a service's config must still be a config of its kind.
  ;(config.services ?? []).forEach((s, i) => {
    const checked = PROBE_CONFIGS[s.kind].safeParse(managed.services[s.name].fields.config)
    if (!checked.success) {
      for (const issue of checked.error.issues) {
        add(
          ['services', i, 'config', ...issue.path],
          `${issue.message} (with what ignore and deployments add to it)`,
        )
      }
    }
  })
  if (errors.length > 0) throw new ConfigInvalid(file, errors)
  return { config, managed }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v)

/**
 * A file of the wrong shape, reduced to what the meaning checks can read: services with a name
 * (others kept as gaps, so indexes still match the file), contacts and patterns that are objects.
 */
function lenient(raw: Record<string, unknown>): VigilFile {
  const services = (Array.isArray(raw.services) ? raw.services : []).map((s) =>
    isObject(s) && typeof s.name === 'string'
      ? {
        ...s,
        kind: (SERVICE_KINDS as readonly unknown[]).includes(s.kind) ? s.kind : undefined,
        config: isObject(s.config) ? s.config : {},
        actions: isObject(s.actions) ? s.actions : {},
        depends_on: Array.isArray(s.depends_on)
          ? s.depends_on.filter((d) => typeof d === 'string')
          : null,
      }
      : undefined
  )
  const alerts = isObject(raw.alerts) ? raw.alerts : {}
  const list = (v: unknown) => (Array.isArray(v) ? v.map((x) => (isObject(x) ? x : undefined)) : [])
  const block = (v: unknown) => (isObject(v) ? v : undefined)
  return {
    version: CONFIG_VERSION,
    services,
    alerts: { ...alerts, contacts: list(alerts.contacts) },
    log_patterns: list(raw.log_patterns),
    monitoring: block(raw.monitoring),
    database: block(raw.database),
    healing: block(raw.healing),
    deployments: block(raw.deployments),
    environments: block(raw.environments),
  } as unknown as VigilFile
}

/** What zod's shapes cannot say: duplicates, dependencies, each kind's config, each strategy's. */
function checkMeaning(
  config: VigilFile,
  add: (path: readonly PropertyKey[], message: string) => void,
): void {
  // Gaps (undefined) are entries too malformed to read; their shape errors say so.
  const services = (config.services ?? []).filter(Boolean)
  const seen = new Map<string, number>()
  ;(config.services ?? []).forEach((s, i) => {
    if (!s) return
    if (seen.has(s.name)) {
      add(
        ['services', i, 'name'],
        `duplicate service name "${s.name}" (also services[${seen.get(s.name)}])`,
      )
    } else seen.set(s.name, i)
    const probe = s.kind ? PROBE_CONFIGS[s.kind].safeParse(s.config) : { success: true as const }
    if (!probe.success) {
      for (const issue of probe.error.issues) {
        if (issue.code === 'unrecognized_keys') {
          for (const key of issue.keys) {
            add(['services', i, 'config', ...issue.path, key], 'unknown key')
          }
        } else add(['services', i, 'config', ...issue.path], issue.message)
      }
    }
    const actions = ServiceActions.safeParse(s.actions)
    if (!actions.success) {
      for (const issue of actions.error.issues) {
        add(['services', i, 'actions', ...issue.path], issue.message)
      }
    }
    s.depends_on?.forEach((d, j) => {
      if (!services.some((o) => o.name === d)) {
        add(['services', i, 'depends_on', j], `no service named "${d}" in this file`)
      } else if (d === s.name) {
        add(['services', i, 'depends_on', j], 'a service cannot depend on itself')
      }
    })
  })
  for (const cycle of dependencyCycles(services)) {
    const i = (config.services ?? []).findIndex((s) => s?.name === cycle[0])
    add(['services', i, 'depends_on'], `dependency cycle: ${[...cycle, cycle[0]].join(' → ')}`)
  }

  const contactKeys = new Map<string, number>()
  ;(config.alerts?.contacts ?? []).forEach((c, i) => {
    if (!c) return
    const parsed = ContactInput.safeParse(c)
    if (parsed.success) {
      for (const message of contactErrors(parsed.data)) {
        const [field, ...rest] = message.split(': ')
        add(['alerts', 'contacts', i, ...field.split('.')], rest.join(': '))
      }
    }
    const key = keyOf('contacts', c)
    if (contactKeys.has(key)) {
      add(
        ['alerts', 'contacts', i],
        `${c.name} has two ${c.channel} contacts for ${
          c.environment ?? 'every environment'
        } (also alerts.contacts[${
          contactKeys.get(key)
        }]): one row per person, channel and environment`,
      )
    } else contactKeys.set(key, i)
  })

  const patterns = new Map<string, number>()
  ;(config.log_patterns ?? []).forEach((p, i) => {
    if (typeof p?.name !== 'string') return
    if (patterns.has(p.name)) {
      add(
        ['log_patterns', i, 'name'],
        `duplicate log pattern "${p.name}" (also log_patterns[${patterns.get(p.name)}])`,
      )
    } else patterns.set(p.name, i)
  })

  const scopes: [readonly PropertyKey[], Scoped | undefined][] = [
    [[], config],
    ...ENVIRONMENTS.map((e) =>
      [['environments', e], config.environments?.[e]] as [PropertyKey[], Scoped | undefined]
    ),
  ]
  for (const [at, scope] of scopes) {
    for (
      const [strategy, policy] of Object.entries(
        isObject(scope?.healing?.policies) ? scope.healing.policies : {},
      )
    ) {
      const known = STRATEGIES.get(strategy)
      if (!known) {
        add(
          [...at, 'healing', 'policies', strategy],
          `no heal strategy "${strategy}" (there are ${[...STRATEGIES.keys()].sort().join(', ')})`,
        )
        continue
      }
      const checked = known.config.safeParse(isObject(policy) ? policy.config ?? {} : {})
      if (!checked.success) {
        for (const issue of checked.error.issues) {
          if (issue.code === 'unrecognized_keys') {
            for (const key of issue.keys) {
              add(
                [...at, 'healing', 'policies', strategy, 'config', ...issue.path, key],
                'unknown key',
              )
            }
          } else {add(
              [...at, 'healing', 'policies', strategy, 'config', ...issue.path],
              issue.message,
            )}
        }
      }
    }
  }
  // What the settings' CHECK constraints refuse, in each environment, said once where it is set.
  const said = new Set<string>()
  for (const environment of ENVIRONMENTS) {
    const own = settingsOf(
      { version: CONFIG_VERSION, ...config.environments?.[environment] },
      environment,
    )
    for (const { column, message } of settingsRowErrors(settingsOf(config, environment))) {
      const path = [
        ...(column in own ? ['environments', environment] : []),
        ...COLUMN_PATHS[column],
      ]
      const text = `${pathText(path)}: ${message}`
      if (!said.has(text)) add(path, message)
      said.add(text)
    }
  }
  for (const [at, scope] of scopes) {
    for (const priority of ['P0', 'P1'] as const) {
      if (scope?.alerts?.routes?.[priority]?.respect_quiet_hours === true) {
        add(
          [...at, 'alerts', 'routes', priority, 'respect_quiet_hours'],
          'P0 and P1 wake people up: they cannot wait for quiet hours to end',
        )
      }
    }
  }
}

/** Where each vigil.settings column is set in a vigil.yml. */
const COLUMN_PATHS: Record<string, string[]> = {
  ...Object.fromEntries(
    Object.entries(BANDS).flatMap(([name, [warning, critical]]) => {
      const band = `${name}_${BAND_UNITS[name as keyof typeof BANDS][0]}`
      return [
        [warning, ['monitoring', 'thresholds', band, 'warning']],
        [critical, ['monitoring', 'thresholds', band, 'critical']],
      ]
    }),
  ),
  ...Object.fromEntries(
    Object.entries(ALERT_KNOBS).map(([knob, [column]]) => [column, ['alerts', knob]]),
  ),
  slow_query_ms: ['database', 'slow_query_threshold_ms'],
  heal_max_per_hour: ['healing', 'max_per_hour'],
  protected_applications: ['healing', 'protected_applications'],
  breaker_window: ['healing', 'breaker', 'window'],
  breaker_min_heals: ['healing', 'breaker', 'min_heals'],
  breaker_failure_ratio: ['healing', 'breaker', 'failure_ratio'],
  breaker_cooldown_minutes: ['healing', 'breaker', 'cooldown_minutes'],
}

/**
 * What vigil.settings' CHECK constraints refuse in a row, or in the columns of it at hand: a
 * warning level at or above its critical one, a breaker needing more heals than its window holds,
 * a retry ceiling under its base. Each with the column to blame.
 */
export function settingsRowErrors(
  row: Record<string, unknown>,
): { column: string; message: string }[] {
  const n = (
    column: string,
  ) => (typeof row[column] === 'number' ? row[column] as number : undefined)
  const errors: { column: string; message: string }[] = []
  for (const [warning, critical] of Object.values(BANDS)) {
    const w = n(warning)
    const c = n(critical)
    if (w !== undefined && c !== undefined && !(w < c)) {
      errors.push({ column: critical, message: `critical (${c}) must be above warning (${w})` })
    }
  }
  const window = n('breaker_window')
  const minHeals = n('breaker_min_heals')
  if (window !== undefined && minHeals !== undefined && minHeals > window) {
    errors.push({
      column: 'breaker_min_heals',
      message: `must be at most the breaker's window (${window})`,
    })
  }
  const base = n('alert_retry_base_seconds')
  const max = n('alert_retry_max_seconds')
  if (base !== undefined && max !== undefined && max < base) {
    errors.push({
      column: 'alert_retry_max_seconds',
      message: `must be at least retry_base_seconds (${base})`,
    })
  }
  return errors
}

const SUPABASE_SERVICES = new Set([
  'supabase_auth',
  'supabase_storage',
  'supabase_realtime',
  'supabase_functions',
])

/** Each dependency cycle once, as the names around it (Supabase's implicit topology included). */
export function dependencyCycles(
  services: {
    name: string
    depends_on: string[] | null
    kind?: string
    environment?: string
    config?: Record<string, unknown>
    enabled?: boolean
  }[],
): string[][] {
  // The first of two services of one name is the one meant (the second is an error of its own).
  const needs = new Map<string, string[]>()
  for (const s of services) if (!needs.has(s.name)) needs.set(s.name, s.depends_on ?? implicit(s))
  // Left null, Supabase's topology applies, as vigil.direct_dependencies() says: Auth, Storage,
  // Realtime and Functions need the project's database (each postgres service of their environment
  // watching it, not another database).
  function implicit(s: (typeof services)[number]): string[] {
    if (!SUPABASE_SERVICES.has(s.kind ?? '')) return []
    return services.filter((d) =>
      d.kind === 'postgres' && d.environment === s.environment && d.enabled !== false &&
      !(d.config && 'connection_secret' in d.config)
    ).map((d) => d.name)
  }
  const state = new Map<string, 'visiting' | 'done'>()
  const cycles: string[][] = []
  const visit = (name: string, trail: string[]) => {
    if (state.get(name) === 'done') return
    if (state.get(name) === 'visiting') {
      cycles.push(trail.slice(trail.indexOf(name)))
      return
    }
    state.set(name, 'visiting')
    for (const next of needs.get(name) ?? []) if (needs.has(next)) visit(next, [...trail, name])
    state.set(name, 'done')
  }
  for (const s of services) visit(s.name, [])
  return cycles
}

/** An environment's view: the top-level block, then its override, key by key. */
function scoped<T>(
  config: VigilFile,
  environment: Environment,
  pick: (s: Scoped) => T | undefined,
): T[] {
  return [pick(config), pick(config.environments?.[environment] ?? {})].filter((v): v is T =>
    v !== undefined
  )
}

/** The vigil.settings columns the file sets for one environment. */
function settingsOf(config: VigilFile, environment: Environment): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const t of scoped(config, environment, (s) => s.monitoring?.thresholds)) {
    for (const [name, [unit]] of Object.entries(BAND_UNITS)) {
      const b = t[`${name}_${unit}`]
      const [warning, critical] = BANDS[name as keyof typeof BANDS] as readonly [
        ThresholdName,
        ThresholdName,
      ]
      if (b?.warning !== undefined) out[warning] = b.warning
      if (b?.critical !== undefined) out[critical] = b.critical
    }
  }
  for (const d of scoped(config, environment, (s) => s.database)) {
    if (d.slow_query_threshold_ms !== undefined) out.slow_query_ms = d.slow_query_threshold_ms
  }
  for (const a of scoped(config, environment, (s) => s.alerts)) {
    for (const [knob, [column]] of Object.entries(ALERT_KNOBS)) {
      const v = (a as Record<string, unknown>)[knob]
      if (v !== undefined) out[column] = v
    }
  }
  for (const h of scoped(config, environment, (s) => s.healing)) {
    if (h.max_per_hour !== undefined) out.heal_max_per_hour = h.max_per_hour
    if (h.protected_applications !== undefined) {
      out.protected_applications = h.protected_applications
    }
    const b = h.breaker ?? {}
    if (b.window !== undefined) out.breaker_window = b.window
    if (b.min_heals !== undefined) out.breaker_min_heals = b.min_heals
    if (b.failure_ratio !== undefined) out.breaker_failure_ratio = b.failure_ratio
    if (b.cooldown_minutes !== undefined) out.breaker_cooldown_minutes = b.cooldown_minutes
  }
  return out
}

type Route = z.infer<typeof Route>
type Policy = z.infer<typeof Policy>

/** An environment's routes: the top-level ones, then its own, field by field. */
function routesOf(config: VigilFile, environment: Environment): Record<string, Route> {
  const out: Record<string, Route> = {}
  for (const routes of scoped(config, environment, (s) => s.alerts?.routes)) {
    for (const [priority, route] of Object.entries(routes) as [string, Route][]) {
      out[priority] = { ...out[priority], ...route }
    }
  }
  return out
}

/**
 * An environment's heal policies: the top-level ones, then its own, the mode and each setting one
 * by one (an override of one setting keeps the mode it does not name); deployments'
 * auto_rollback_on_spike is rollback_deploy's setting.
 */
function policiesOf(config: VigilFile, environment: Environment): Record<string, Policy> {
  const out: Record<string, Policy> = {}
  for (const policies of scoped(config, environment, (s) => s.healing?.policies)) {
    for (const [strategy, p] of Object.entries(policies)) {
      out[strategy] = {
        mode: p.mode ?? out[strategy]?.mode,
        config: { ...out[strategy]?.config, ...p.config },
      }
    }
  }
  const spike = scoped(config, environment, (s) => s.deployments?.auto_rollback_on_spike).at(-1)
  if (spike !== undefined) {
    out.rollback_deploy = {
      ...out.rollback_deploy,
      config: { ...out.rollback_deploy?.config, auto_rollback_on_spike: spike },
    }
  }
  return out
}

/** The rows a valid file stands for. */
export function expand(config: VigilFile): Managed {
  const managed = Object.fromEntries(CONFIG_TABLES.map((t) => [t, {}])) as Managed
  const put = (
    table: ConfigTable,
    key: Record<string, unknown>,
    fields: Record<string, unknown>,
  ) => {
    // A field the file leaves out (undefined) is not managed.
    managed[table][keyOf(table, key)] = {
      key,
      fields: Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)),
    }
  }
  for (const environment of ENVIRONMENTS) {
    const settings = settingsOf(config, environment)
    if (Object.keys(settings).length > 0) put('settings', { environment }, settings)

    for (const [priority, route] of Object.entries(routesOf(config, environment))) {
      put('alert_routes', { environment, priority }, route)
    }
    for (const [strategy, policy] of Object.entries(policiesOf(config, environment))) {
      const mode = policy.mode ?? STRATEGIES.get(strategy)?.defaultMode ?? 'auto'
      put('heal_policies', { environment, strategy }, { mode, config: policy.config ?? {} })
    }
  }

  const ignoredStatements = config.ignore?.slow_queries
  for (const s of config.services ?? []) {
    const { name, ...fields } = s
    const service = { ...fields, config: { ...s.config } }
    if (s.kind === 'traffic') {
      const d = Object.assign({}, ...scoped(config, s.environment, (x) => x.deployments))
      if (d.rollback_threshold !== undefined) {
        service.config.rollback_threshold ??= d.rollback_threshold
      }
      if (d.rollback_window_minutes !== undefined) {
        service.config.rollback_window_minutes ??= d.rollback_window_minutes
      }
    }
    if (s.kind === 'postgres' && ignoredStatements?.length) {
      const own = (s.config.slow_ignore as string[] | undefined) ??
        PROBE_CONFIGS.postgres.parse({}).slow_ignore
      service.config.slow_ignore = [...new Set([...own, ...ignoredStatements])]
    }
    put('services', { name }, service)
  }
  for (const c of config.alerts?.contacts ?? []) {
    const { name, channel, environment, ...fields } = c
    put('contacts', { name, channel, environment }, fields)
  }
  for (const p of config.log_patterns ?? []) {
    const { name, ...fields } = p
    put('log_patterns', { name }, {
      ...fields,
      enabled: fields.enabled && !config.ignore?.log_patterns?.includes(name),
    })
  }
  // Patterns the file does not define (the built-in ones) are only turned off.
  for (const name of config.ignore?.log_patterns ?? []) {
    if (!managed.log_patterns[name]) put('log_patterns', { name }, { enabled: false })
  }
  return managed
}

/** The offset of what `path` points at in the document, as a line and column. */
function locate(
  root: ParsedNode | null,
  path: readonly PropertyKey[],
  lines: LineCounter,
): { line?: number; column?: number } {
  let node: unknown = root
  let at: [number, number, number] | undefined = root?.range
  for (const segment of path) {
    if (node instanceof YAMLMap) {
      const pair = (node.items as Pair<ParsedNode, ParsedNode | null>[]).find((p) =>
        String((p.key as { value?: unknown })?.value) === String(segment)
      )
      if (!pair) break
      // A key's error points at the key; what is inside its value, at that.
      at = (pair.key as ParsedNode | null)?.range ?? at
      node = pair.value
    } else if (node instanceof YAMLSeq && typeof segment === 'number') {
      const item = node.items[segment] as ParsedNode | undefined
      if (!item) break
      node = item
      at = item.range ?? at
    } else break
  }
  if (!at) return {}
  const { line, col } = lines.linePos(at[0])
  return { line, column: col }
}
