// Supabase Realtime: a real channel join over the Phoenix websocket protocol, as realtime-js does.
// Socket /realtime/v1/websocket?apikey=<key>&vsn=1.0.0 (supabase/realtime lib/realtime_web/endpoint.ex
// accepts serializer 1.0.0 and 2.0.0). vsn 1.0.0 frames are JSON objects {topic, event, payload, ref,
// join_ref}; the server's replies carry {topic, event: 'phx_reply', payload: {status, response}, ref}
// (Phoenix.Socket.V1.JSONSerializer). A refused join answers {status: 'error', response: {reason}}.
import { targetRefusal } from '../outbound.ts'
import { z } from 'zod'
import type { CheckStatus } from '../../../../shared/kinds.ts'
import { SupabaseRealtimeConfig } from '../../../../shared/probe-configs.ts'
import { errorMessage, latencyBand, missingSecret, parseJson } from './support.ts'
import { againstBand, type Probe, type ProbeResult, redact } from './types.ts'

const JOIN_REF = '1'
const LEAVE_REF = '2'
/** How long to wait for the leave reply and the close handshake: tidiness, not health. */
const GOODBYE_MS = 1_000

const Frame = z.object({
  topic: z.string(),
  event: z.string(),
  payload: z.unknown(),
  ref: z.string().nullish(),
})
const Reply = z.object({ status: z.string(), response: z.unknown().optional() })

type Outcome =
  | { ok: true; connectMs: number; joinMs: number; leftCleanly: boolean }
  | { ok: false; reason: string; connectMs?: number }

export const supabaseRealtimeProbe: Probe<SupabaseRealtimeConfig> = {
  kind: 'supabase_realtime',
  config: SupabaseRealtimeConfig,
  async run(config, ctx) {
    const key = ctx.secret(config.apikey_secret)
    if (!key) return missingSecret(config.apikey_secret)
    const socketUrl = realtimeSocketUrl(config.url ?? ctx.projectUrl, key)
    const topic = `realtime:${config.topic}`
    const measurements: Record<string, unknown> = {
      endpoint: `${socketUrl.origin}${socketUrl.pathname}`,
      topic,
    }

    // A websocket is not a fetch: the outbound guard is asked first, or the key would go to any host.
    const refused = await targetRefusal(ctx.fetch, socketUrl.href)
    if (refused) {
      return {
        status: 'down',
        error: `refused to connect to ${socketUrl.origin}: ${refused}`,
        measurements,
      }
    }
    const outcome = await joinOnce(socketUrl.href, topic, ctx.signal)
    if (outcome.connectMs !== undefined) measurements.connect_ms = outcome.connectMs
    if (!outcome.ok) {
      return {
        status: 'down',
        error: redact(outcome.reason, [key]),
        measurements,
      } satisfies ProbeResult
    }

    const { warning, critical } = latencyBand(config, ctx.thresholds)
    const status: CheckStatus = againstBand(outcome.joinMs, warning, critical)
    Object.assign(measurements, {
      join_ms: outcome.joinMs,
      latency_ms: outcome.joinMs,
      latency_warning_ms: warning,
      latency_critical_ms: critical,
      left_cleanly: outcome.leftCleanly,
    })
    const error = status === 'down'
      ? `join took ${outcome.joinMs} ms, above critical ${critical} ms`
      : status === 'degraded'
      ? `join took ${outcome.joinMs} ms, at or above warning ${warning} ms`
      : undefined
    return {
      status,
      responseMs: outcome.joinMs,
      measurements,
      metrics: [{
        name: 'http_request_duration',
        value: outcome.joinMs,
        labels: { endpoint: 'realtime_join' },
      }],
      ...(error ? { error } : {}),
    }
  },
}

/** ws(s)://host/realtime/v1/websocket?apikey=…&vsn=1.0.0 from a project (http/https) or socket URL. */
export function realtimeSocketUrl(base: string, apikey: string): URL {
  const url = new URL(base)
  if (url.protocol === 'http:') url.protocol = 'ws:'
  if (url.protocol === 'https:') url.protocol = 'wss:'
  const path = url.pathname.replace(/\/+$/, '')
  url.pathname = path.endsWith('/websocket')
    ? path
    : path.endsWith('/realtime/v1')
    ? `${path}/websocket`
    : `${path}/realtime/v1/websocket`
  url.searchParams.set('apikey', apikey)
  url.searchParams.set('vsn', '1.0.0')
  return url
}

/** Connect, join, leave, close. Resolves once the socket is closed; never rejects. */
function joinOnce(url: string, topic: string, signal: AbortSignal): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = performance.now()
    const elapsed = () => Math.round(performance.now() - started)
    let connectMs: number | undefined
    let outcome: Outcome | undefined
    let socketError: string | undefined
    let goodbye: ReturnType<typeof setTimeout> | undefined
    let ws: WebSocket

    if (signal.aborted) return resolve({ ok: false, reason: 'timed out before connecting' })
    try {
      ws = new WebSocket(url)
    } catch (e) {
      return resolve({ ok: false, reason: `could not open the websocket: ${errorMessage(e)}` })
    }

    const send = (frame: Record<string, unknown>) => ws.send(JSON.stringify(frame))
    const done = () => {
      clearTimeout(goodbye)
      signal.removeEventListener('abort', onAbort)
      resolve(outcome ?? { ok: false, reason: 'socket closed without a join reply', connectMs })
    }
    /** Records the first outcome and closes; `done` runs on the close event (or after GOODBYE_MS). */
    const settle = (o: Outcome) => {
      outcome ??= o
      clearTimeout(goodbye)
      if (ws.readyState === WebSocket.CLOSED) return done()
      goodbye = setTimeout(done, GOODBYE_MS)
      if (ws.readyState !== WebSocket.CLOSING) ws.close(1000)
    }
    const fail = (reason: string) => settle({ ok: false, reason, connectMs })
    function onAbort() {
      if (outcome) return settle(outcome)
      fail(
        connectMs === undefined
          ? `timed out after ${elapsed()} ms opening the websocket`
          : `timed out after ${elapsed()} ms waiting for the join reply`,
      )
    }
    signal.addEventListener('abort', onAbort)

    ws.onopen = () => {
      connectMs = elapsed()
      send({
        topic,
        event: 'phx_join',
        payload: {
          config: { broadcast: { self: false }, presence: { key: '' }, postgres_changes: [] },
        },
        ref: JOIN_REF,
        join_ref: JOIN_REF,
      })
    }
    ws.onerror = (e) => {
      socketError = e instanceof ErrorEvent && e.message ? e.message : 'websocket error'
    }
    ws.onclose = (e) => {
      if (!outcome) {
        const why = `code ${e.code}${e.reason ? `: ${e.reason}` : ''}`
        outcome = connectMs === undefined
          ? { ok: false, reason: `could not open the websocket (${socketError ?? why})` }
          : { ok: false, reason: `socket closed before the join reply (${why})`, connectMs }
      }
      done()
    }
    ws.onmessage = (e) => {
      if (typeof e.data !== 'string') return // binary frames carry broadcasts only
      const frame = Frame.safeParse(parseJson(e.data))
      if (!frame.success) {
        if (!outcome) fail(`unexpected frame from Realtime: ${e.data.slice(0, 200)}`)
        return
      }
      const { event, payload, ref } = frame.data
      if (frame.data.topic !== topic) return // heartbeats, other channels
      if (event === 'phx_reply' && ref === JOIN_REF && !outcome) {
        const reply = Reply.safeParse(payload)
        if (!reply.success) return fail(`unexpected join reply: ${e.data.slice(0, 200)}`)
        if (reply.data.status !== 'ok') {
          return fail(
            `join refused: ${
              describeResponse(reply.data.response) ?? `status ${reply.data.status}`
            }`,
          )
        }
        outcome = {
          ok: true,
          connectMs: connectMs ?? elapsed(),
          joinMs: elapsed(),
          leftCleanly: false,
        }
        goodbye = setTimeout(() => settle(outcome!), GOODBYE_MS)
        send({ topic, event: 'phx_leave', payload: {}, ref: LEAVE_REF, join_ref: JOIN_REF })
        return
      }
      if (event === 'phx_reply' && ref === LEAVE_REF && outcome?.ok) {
        outcome.leftCleanly = Reply.safeParse(payload).data?.status === 'ok'
        return settle(outcome)
      }
      if (!outcome && (event === 'phx_error' || event === 'phx_close')) {
        return fail(
          event === 'phx_error'
            ? 'the channel crashed during the join'
            : 'the server closed the channel before the join reply',
        )
      }
    }
  })
}

function describeResponse(response: unknown): string | undefined {
  if (!response || typeof response !== 'object') return undefined
  const r = response as Record<string, unknown>
  const text = [r.reason, r.message].find((v) => typeof v === 'string' && v)
  return typeof text === 'string' ? text : JSON.stringify(response).slice(0, 200)
}
