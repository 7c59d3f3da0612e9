// The data layer the views use: three reads (one rpc each) and the operator actions (PostgREST
// updates; RLS and column grants decide). Every failure becomes an ApiError or an ActionResult with
// a sentence for people — never a thrown PostgREST object.
import type { Environment, Snapshot, TimelineEntry, TrendWindow, Trends } from '../types'
import type { VigilClient } from './client'

export type ApiErrorKind = 'auth' | 'network' | 'server'

export class ApiError extends Error {
  readonly kind: ApiErrorKind
  constructor(kind: ApiErrorKind, message: string) {
    super(message)
    this.name = 'ApiError'
    this.kind = kind
  }
}

export type ActionResult = { ok: true } | { ok: false; error: string }

export interface VigilApi {
  snapshot(): Promise<Snapshot>
  trends(window: TrendWindow): Promise<Trends>
  timeline(incidentId: number): Promise<TimelineEntry[]>
  acknowledge(incidentId: number): Promise<ActionResult>
  setKillSwitch(environment: Environment, on: boolean): Promise<ActionResult>
  setDryRun(environment: Environment, on: boolean): Promise<ActionResult>
  setServiceHealing(serviceId: string, enabled: boolean): Promise<ActionResult>
  decideApproval(actionId: string, decision: 'approved' | 'rejected'): Promise<ActionResult>
}

export interface PostgrestLikeError {
  message?: string
  code?: string
  details?: string | null
  hint?: string | null
}

export const NOT_OPERATOR = 'Not allowed: your account is not an operator'
export const NETWORK_DOWN = 'Could not reach the server. Check the connection and try again.'

/** What kind of failure a PostgREST answer is: session, network or server. */
export function classifyError(error: PostgrestLikeError | null | undefined, status?: number): ApiErrorKind {
  const code = error?.code ?? ''
  const msg = `${error?.message ?? ''} ${error?.details ?? ''}`
  if (status === 401 || code === 'PGRST301' || code === 'PGRST302' || code === 'PGRST303' || /jwt/i.test(msg))
    return 'auth'
  if (!status || /fetch|network|failed to fetch|load failed/i.test(msg)) return 'network'
  return 'server'
}

/** A sentence for a failed write. */
export function explainWriteError(error: PostgrestLikeError | null | undefined, status?: number): string {
  const kind = classifyError(error, status)
  if (kind === 'auth') return 'Your session has expired. Sign in again.'
  if (kind === 'network') return NETWORK_DOWN
  if (status === 403 || error?.code === '42501') return NOT_OPERATOR
  return `The server refused the change: ${error?.message || `HTTP ${status}`}`
}

function readError(error: PostgrestLikeError | null, status: number, what: string): ApiError {
  const kind = classifyError(error, status)
  if (kind === 'auth') return new ApiError('auth', 'Your session has expired or is invalid. Sign in again.')
  if (kind === 'network') return new ApiError('network', NETWORK_DOWN)
  return new ApiError('server', `Could not load ${what}: ${error?.message || `HTTP ${status}`}`)
}

interface WriteResponse {
  data: unknown[] | null
  error: PostgrestLikeError | null
  status: number
}

/** A write that must change exactly the rows it names; zero rows back means nothing changed. */
export async function confirmWrite(
  run: () => PromiseLike<WriteResponse>,
  noRowsMessage: string,
): Promise<ActionResult> {
  let res: WriteResponse
  try {
    res = await run()
  } catch {
    return { ok: false, error: NETWORK_DOWN }
  }
  if (res.error) return { ok: false, error: explainWriteError(res.error, res.status) }
  if (!res.data || res.data.length === 0) return { ok: false, error: noRowsMessage }
  return { ok: true }
}

/** Timeline rows as the spec names them; older servers say source/what for kind/summary. */
export function normaliseTimeline(data: unknown): TimelineEntry[] {
  if (!Array.isArray(data)) return []
  return data.map((r: Record<string, unknown>) => ({
    at: String(r.at ?? ''),
    kind: String(r.kind ?? r.source ?? 'event'),
    summary: String(r.summary ?? r.what ?? ''),
    detail: (r.detail as Record<string, unknown> | null | undefined) ?? null,
  }))
}

export function createVigilApi(client: VigilClient): VigilApi {
  async function rpc<T>(fn: string, args: Record<string, unknown> | undefined, what: string): Promise<T> {
    let res
    try {
      res = await client.rpc(fn, args)
    } catch {
      throw new ApiError('network', NETWORK_DOWN)
    }
    if (res.error) throw readError(res.error, res.status, what)
    return res.data as T
  }

  return {
    async snapshot() {
      const data = await rpc<Snapshot | null>('dashboard_snapshot', undefined, 'the dashboard')
      if (!data || typeof data !== 'object') throw new ApiError('server', 'The dashboard answered with no data.')
      return data
    },
    trends: (window) => rpc<Trends>('performance_trends', { p_window: window }, 'the trends'),
    async timeline(incidentId) {
      return normaliseTimeline(
        await rpc<unknown>('incident_timeline', { p_incident_id: incidentId }, 'the timeline'),
      )
    },
    acknowledge: (id) =>
      confirmWrite(
        () =>
          client
            .from('incidents')
            .update({ acknowledged_at: new Date().toISOString() })
            .eq('id', id)
            .is('acknowledged_at', null)
            .select('id'),
        'Already acknowledged',
      ),
    setKillSwitch: (environment, on) =>
      confirmWrite(
        () => client.from('settings').update({ kill_switch: on }).eq('environment', environment).select('environment'),
        NOT_OPERATOR,
      ),
    setDryRun: (environment, on) =>
      confirmWrite(
        () => client.from('settings').update({ dry_run: on }).eq('environment', environment).select('environment'),
        NOT_OPERATOR,
      ),
    setServiceHealing: (serviceId, enabled) =>
      confirmWrite(
        () => client.from('services').update({ heal_enabled: enabled }).eq('id', serviceId).select('id'),
        NOT_OPERATOR,
      ),
    decideApproval: (actionId, decision) =>
      confirmWrite(
        () =>
          client
            .from('heal_approvals')
            .update({ decision })
            .eq('action_id', actionId)
            .is('decision', null)
            .select('action_id'),
        'Already decided',
      ),
  }
}
