// Applying one realtime row change to the snapshot, for the changes simple enough to show at once
// (service status, latency, settings, incident rows, approvals, flagged metric series). Derived
// numbers (score, uptime, heal log) come from the debounced snapshot re-fetch instead. Pure: returns
// a new snapshot, or the same object when nothing applies.
import { ENVIRONMENT_ORDER } from '../types'
import type { Approval, FlaggedSeries, Incident, SeriesBaseline, Service, Settings, Snapshot } from '../types'
import { orderIncidents } from '../format'

export type ChangeEvent = 'INSERT' | 'UPDATE' | 'DELETE'

export interface RowChange {
  table: string
  eventType: ChangeEvent
  new?: Record<string, unknown> | null
  old?: Record<string, unknown> | null
}

type Row = Record<string, unknown>

const SERVICE_FIELDS = [
  'name',
  'kind',
  'environment',
  'description',
  'status',
  'status_changed_at',
  'enabled',
  'heal_enabled',
  'depends_on',
  'last_checked_at',
] as const satisfies readonly (keyof Service)[]

const INCIDENT_FIELDS = [
  'service_id',
  'kind',
  'severity',
  'status',
  'title',
  'opened_at',
  'resolved_at',
  'acknowledged_at',
  'acknowledged_by_name',
  'heal_attempts',
  'escalation_level',
  'folded_into',
] as const satisfies readonly (keyof Incident)[]

const SETTINGS_FIELDS = ['kill_switch', 'dry_run', 'slow_query_ms', 'updated_at'] as const

function pick<T extends object>(row: Row, fields: readonly string[]): Partial<T> {
  const out: Row = {}
  for (const f of fields) if (f in row) out[f] = row[f]
  return out as Partial<T>
}

const isEmpty = (r: Row | null | undefined): r is null | undefined => !r || Object.keys(r).length === 0

function mergeService(s: Snapshot, c: RowChange): Snapshot {
  const id = (c.new?.id ?? c.old?.id) as string | undefined
  if (!id) return s
  if (c.eventType === 'DELETE') {
    if (!s.services.some((x) => x.id === id)) return s
    return { ...s, services: s.services.filter((x) => x.id !== id) }
  }
  if (isEmpty(c.new)) return s
  const patch = pick<Service>(c.new, SERVICE_FIELDS)
  const existing = s.services.find((x) => x.id === id)
  if (existing) {
    return { ...s, services: s.services.map((x) => (x.id === id ? { ...x, ...patch } : x)) }
  }
  const added: Service = {
    id,
    name: String(patch.name ?? id),
    kind: String(patch.kind ?? ''),
    environment: (patch.environment ?? 'prod') as Service['environment'],
    description: patch.description ?? null,
    status: patch.status ?? 'unknown',
    status_changed_at: patch.status_changed_at ?? null,
    enabled: patch.enabled ?? true,
    heal_enabled: patch.heal_enabled ?? true,
    depends_on: Array.isArray(patch.depends_on) ? patch.depends_on : [],
    folded_under: null,
    latency_ms: null,
    last_checked_at: patch.last_checked_at ?? null,
    uptime_24h: null,
    uptime_7d: null,
    uptime_30d: null,
  }
  const services = [...s.services, added].sort((a, b) => a.name.localeCompare(b.name))
  return { ...s, services }
}

function mergeCheck(s: Snapshot, c: RowChange): Snapshot {
  if (c.eventType !== 'INSERT' || !c.new) return s
  const id = c.new.service_id as string | undefined
  const svc = s.services.find((x) => x.id === id)
  if (!svc) return s
  const at = (c.new.checked_at as string | undefined) ?? null
  if (svc.last_checked_at && at && new Date(at) < new Date(svc.last_checked_at)) return s
  const ms = c.new.response_ms
  const latency_ms = typeof ms === 'number' ? ms : ms == null ? null : Number(ms)
  return {
    ...s,
    services: s.services.map((x) =>
      x.id === id ? { ...x, latency_ms, last_checked_at: at ?? x.last_checked_at } : x,
    ),
  }
}

function mergeSettings(s: Snapshot, c: RowChange): Snapshot {
  const env = (c.new?.environment ?? c.old?.environment) as Settings['environment'] | undefined
  if (!env) return s
  if (c.eventType === 'DELETE') {
    if (!s.settings.some((x) => x.environment === env)) return s
    return { ...s, settings: s.settings.filter((x) => x.environment !== env) }
  }
  if (isEmpty(c.new)) return s
  const patch = pick<Settings>(c.new, SETTINGS_FIELDS)
  const existing = s.settings.find((x) => x.environment === env)
  const row: Settings = existing
    ? { ...existing, ...patch }
    : {
        environment: env,
        kill_switch: patch.kill_switch ?? false,
        dry_run: patch.dry_run ?? false,
        slow_query_ms: patch.slow_query_ms ?? 0,
        updated_at: patch.updated_at ?? new Date().toISOString(),
      }
  const settings = [...s.settings.filter((x) => x.environment !== env), row].sort(
    (a, b) => ENVIRONMENT_ORDER.indexOf(a.environment) - ENVIRONMENT_ORDER.indexOf(b.environment),
  )
  return { ...s, settings }
}

function mergeIncident(s: Snapshot, c: RowChange): Snapshot {
  const id = Number(c.new?.id ?? c.old?.id)
  if (!Number.isFinite(id)) return s
  if (c.eventType === 'DELETE') {
    if (!s.incidents.some((x) => x.id === id)) return s
    return { ...s, incidents: s.incidents.filter((x) => x.id !== id) }
  }
  if (isEmpty(c.new)) return s
  const patch = pick<Incident>(c.new, INCIDENT_FIELDS)
  const existing = s.incidents.find((x) => x.id === id)
  const serviceId = (patch.service_id ?? existing?.service_id) as string | undefined
  const serviceName =
    s.services.find((x) => x.id === serviceId)?.name ?? existing?.service ?? serviceId ?? '—'
  let row: Incident
  if (existing) {
    row = { ...existing, ...patch, service: serviceName }
    // The row carries who acknowledged only by id; keep the name the snapshot resolved.
    if (!('acknowledged_by_name' in c.new)) row.acknowledged_by_name = existing.acknowledged_by_name
  } else {
    row = {
      id,
      service_id: serviceId ?? '',
      service: serviceName,
      kind: String(patch.kind ?? ''),
      severity: patch.severity ?? 'warning',
      status: patch.status ?? 'open',
      title: String(patch.title ?? ''),
      opened_at: patch.opened_at ?? new Date().toISOString(),
      resolved_at: patch.resolved_at ?? null,
      acknowledged_at: patch.acknowledged_at ?? null,
      acknowledged_by_name: patch.acknowledged_by_name ?? null,
      heal_attempts: patch.heal_attempts ?? 0,
      escalation_level: patch.escalation_level ?? 0,
      folded_into: patch.folded_into ?? null,
    }
  }
  return { ...s, incidents: orderIncidents([...s.incidents.filter((x) => x.id !== id), row]) }
}

function mergeApproval(s: Snapshot, c: RowChange): Snapshot {
  const actionId = (c.new?.action_id ?? c.old?.action_id) as string | undefined
  if (!actionId) return s
  const without = s.approvals.filter((x) => x.action_id !== actionId)
  const decided = c.eventType === 'DELETE' || (c.new?.decision ?? null) !== null
  if (decided) return without.length === s.approvals.length ? s : { ...s, approvals: without }
  if (isEmpty(c.new)) return s
  const existing = s.approvals.find((x) => x.action_id === actionId)
  const n = c.new
  const serviceName =
    s.services.find((x) => x.id === n.service_id)?.name ?? existing?.service ?? '—'
  const row: Approval = {
    action_id: actionId,
    incident_id: Number(n.incident_id ?? existing?.incident_id),
    service: serviceName,
    strategy: String(n.strategy ?? existing?.strategy ?? ''),
    plan: (n.plan as Approval['plan']) ?? existing?.plan ?? {},
    requested_at: String(n.requested_at ?? existing?.requested_at ?? new Date().toISOString()),
    expires_at: String(n.expires_at ?? existing?.expires_at ?? ''),
  }
  return { ...s, approvals: [...without, row].sort((a, b) => a.requested_at.localeCompare(b.requested_at)) }
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null)

/** A series is one row per service, metric and labels; jsonb's key order is not relied on. */
function seriesKey(r: { service_id?: unknown; metric?: unknown; labels?: unknown }): string {
  const labels = r.labels && typeof r.labels === 'object' ? Object.entries(r.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : []
  return JSON.stringify([r.service_id, r.metric, labels])
}

function baselineOf(v: unknown): SeriesBaseline | null {
  if (!v || typeof v !== 'object') return null
  const b = v as Row
  const out: SeriesBaseline = {}
  for (const k of ['value', 'expected', 'low', 'high', 'ratio', 'hourAgo'] as const) {
    const n = num(b[k])
    if (n !== null) out[k] = n
  }
  return out
}

/** The stored forecast (shared/forecast, with its whole fit) as the panel needs it: a crossing's sentence and eta. */
function crossingOf(v: unknown): FlaggedSeries['forecast'] {
  const f = v && typeof v === 'object' ? (v as Row) : null
  if (f?.status !== 'crosses' || typeof f.text !== 'string') return null
  return { text: f.text, eta_seconds: num(f.etaSeconds) }
}

/**
 * A metric_series row (the whole row, detector state included) kept only by the columns the panel
 * shows, and only while the series is flagged: anomalous, or forecast to cross its limit.
 */
function mergeSeries(s: Snapshot, c: RowChange): Snapshot {
  const row = c.eventType === 'DELETE' ? c.old : c.new
  if (isEmpty(row) || typeof row.service_id !== 'string' || typeof row.metric !== 'string') return s
  const list = s.analysis ?? []
  const key = seriesKey(row)
  const existing = list.find((x) => seriesKey(x) === key)
  const without = existing ? list.filter((x) => x !== existing) : list
  const service = s.services.find((x) => x.id === row.service_id)
  // Deleted, or its service disabled or unknown here: the analysis has nothing to say of it now.
  if (c.eventType === 'DELETE' || !service?.enabled) return existing ? { ...s, analysis: without } : s
  // A column the change does not carry (Realtime leaves out an unchanged TOASTed value) keeps its value.
  const has = (k: string) => k in row
  const next: FlaggedSeries = {
    service_id: row.service_id,
    service: service.name,
    metric: row.metric,
    labels: has('labels') && row.labels && typeof row.labels === 'object' ? (row.labels as Record<string, string>) : (existing?.labels ?? {}),
    value: has('value') ? num(row.value) : (existing?.value ?? null),
    score: has('score') ? num(row.score) : (existing?.score ?? null),
    baseline: has('baseline') ? baselineOf(row.baseline) : (existing?.baseline ?? null),
    anomalous_since: has('anomalous_since') ? str(row.anomalous_since) : (existing?.anomalous_since ?? null),
    forecast: has('forecast') ? crossingOf(row.forecast) : (existing?.forecast ?? null),
    forecast_at: has('forecast_at') ? str(row.forecast_at) : (existing?.forecast_at ?? null),
  }
  if (next.anomalous_since === null && next.forecast === null) return existing ? { ...s, analysis: without } : s
  return { ...s, analysis: [...without, next] }
}

/** Tables whose rows change the view only through derived numbers: re-fetch, no direct merge. */
export const LIVE_TABLES = [
  'services',
  'incidents',
  'heal_actions',
  'heal_approvals',
  'settings',
  'control_changes',
  'checks',
  'cycles',
  'recommendations',
  'alerts',
  'incident_log',
  'maintenance_runs',
  'reports',
  'metric_series',
] as const
export type LiveTable = (typeof LIVE_TABLES)[number]

/** Which change events each table is subscribed for (checks and cycles only ever grow). */
export const LIVE_EVENTS: Record<LiveTable, '*' | 'INSERT'> = {
  services: '*',
  incidents: '*',
  heal_actions: '*',
  heal_approvals: '*',
  settings: '*',
  control_changes: '*',
  checks: 'INSERT',
  maintenance_runs: '*',
  reports: '*',
  cycles: 'INSERT',
  recommendations: '*',
  alerts: '*',
  incident_log: '*',
  metric_series: '*',
}

export function applyChange(s: Snapshot, c: RowChange): Snapshot {
  switch (c.table) {
    case 'services':
      return mergeService(s, c)
    case 'checks':
      return mergeCheck(s, c)
    case 'settings':
      return mergeSettings(s, c)
    case 'incidents':
      return mergeIncident(s, c)
    case 'heal_approvals':
      return mergeApproval(s, c)
    case 'metric_series':
      return mergeSeries(s, c)
    default:
      return s
  }
}
