// The probe tests' harness: a local HTTP peer that records what it receives, and one run of a
// probe with a real context (its own abort signal, secrets by name, the environment's thresholds).
import assert from 'node:assert/strict'
import postgres from 'postgres'
import type { ServiceKind } from '../../shared/kinds.ts'
import { resolveThresholds, type Thresholds } from '../../shared/thresholds.ts'
import type {
  Probe,
  ProbeContext,
  ProbeResult,
} from '../../supabase/functions/_shared/probes/types.ts'

export interface Seen {
  method: string
  path: string
  headers: Headers
  body: string
}

export type Handler = (req: Seen, raw: Request) => Response | Promise<Response>

/** A local HTTP peer on a free port that records every request; `gate` opens at teardown. */
export async function withPeer(
  handler: (gate: Promise<void>) => Handler,
  fn: (url: string, seen: Seen[]) => Promise<void>,
): Promise<void> {
  const seen: Seen[] = []
  let open!: () => void
  const gate = new Promise<void>((resolve) => (open = resolve))
  const handle = handler(gate)
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen: () => {} }, async (raw) => {
    const url = new URL(raw.url)
    const req = {
      method: raw.method,
      path: url.pathname + url.search,
      headers: raw.headers,
      body: raw.method === 'GET' ? '' : await raw.text(),
    }
    seen.push(req)
    return await handle(req, raw)
  })
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, seen)
  } finally {
    open()
    await server.shutdown()
  }
}

export interface RunOptions {
  secrets?: Record<string, string>
  projectUrl?: string
  thresholds?: Thresholds
  timeoutMs?: number
  fetch?: typeof fetch
  /** The service's measurements at its previous check. */
  previous?: Record<string, unknown>
  /** Vigil's database, for a probe that asks it (the logs probe matches in SQL); none: unused. */
  db?: postgres.Sql
  /** The service probed, over the default one (its environment, say). */
  service?: Partial<ProbeContext['service']>
}

/** Parses the raw config with the kind's schema (defaults applied), runs the probe once. */
export async function runProbe<C>(
  probe: Probe<C>,
  rawConfig: unknown,
  opts: RunOptions = {},
): Promise<ProbeResult> {
  const db = opts.db ?? postgres('postgres://unused@127.0.0.1:1/x', { max: 1 })
  const controller = new AbortController()
  const timer = opts.timeoutMs === undefined
    ? undefined
    : setTimeout(() => controller.abort(), opts.timeoutMs)
  const ctx: ProbeContext = {
    service: {
      id: '00000000-0000-4000-8000-000000000001',
      name: 'under-test',
      kind: probe.kind as ServiceKind,
      environment: 'dev',
      ...opts.service,
    },
    thresholds: opts.thresholds ?? resolveThresholds(),
    signal: controller.signal,
    secret: (name) => opts.secrets?.[name],
    projectUrl: opts.projectUrl ?? 'http://127.0.0.1:1',
    db,
    fetch: opts.fetch ?? fetch,
    previous: opts.previous,
  }
  try {
    return await probe.run(probe.config.parse(rawConfig), ctx)
  } finally {
    clearTimeout(timer)
    if (!opts.db) await db.end()
  }
}

export function assertNoSecrets(result: ProbeResult, secrets: string[]) {
  const text = JSON.stringify(result)
  for (const s of secrets) assert.ok(!text.includes(s), `a secret leaked into ${text}`)
}

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json' },
  })
}
