// Faults at the demo's edges: the HTTPS certificate of its CDN edge swapped for one days from
// expiry (renewed by Vigil through the edge's renewal endpoint), and its edge function demo-checkout
// broken by a feature flag that turns on buggy code (nothing to heal: a person is paged).
import { HttpConfig } from '../../shared/probe-configs.ts'
import type { ChaosTarget, Fault } from './types.ts'
import { dropRecord, readRecord, writeRecord } from './procs.ts'

const TIMEOUT_MS = 10_000
/** What the injected certificate lasts: inside Vigil's warning window, outside its critical one. */
const NEAR_EXPIRY_DAYS = 5
/** Vigil's default warning window for an http service (tls_warning_days). */
const WARNING_DAYS = HttpConfig.parse({ url: 'https://example.org' }).tls_warning_days

interface CertificateState {
  not_after: string
  days_left: number
}

function tlsOf(t: ChaosTarget): NonNullable<ChaosTarget['tls']> {
  if (!t.tls) throw new Error('the running demo serves no HTTPS: restart the stack')
  return t.tls
}

async function tlsControl(t: ChaosTarget, body?: unknown): Promise<CertificateState> {
  tlsOf(t)
  const res = await fetch(`${t.edge.url}${body === undefined ? '/_tls' : '/_tls/chaos'}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${t.app.token}`,
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`the edge's /_tls answered ${res.status}: ${text.slice(0, 200)}`)
  return JSON.parse(text) as CertificateState
}

const nearExpiry = (s: CertificateState) => s.days_left < WARNING_DAYS

/** A certificate renewal that did not happen: the edge serves one that expires within days. */
export const certificateExpiry: Fault = {
  name: 'certificate_expiry',
  summary:
    `the edge's HTTPS certificate is swapped for one that expires in ${NEAR_EXPIRY_DAYS} days`,
  expects: {
    incident: 'service_unhealthy',
    finding: 'certificate_expiring',
    heal: 'renew_certificate',
  },
  async inject(t) {
    if (nearExpiry(await tlsControl(t))) return 'certificate_expiry is already active'
    const now = await tlsControl(t, { expires_in_days: NEAR_EXPIRY_DAYS })
    await writeRecord(t.stateDir, {
      fault: 'certificate_expiry',
      injected_at: new Date().toISOString(),
      groups: [],
    })
    return `${
      tlsOf(t).url
    } now serves a certificate that expires in ${now.days_left} days (${now.not_after})`
  },
  async clear(t) {
    const record = await readRecord(t.stateDir, 'certificate_expiry')
    const now = t.tls ? await tlsControl(t).catch(() => null) : null
    const was = now !== null && nearExpiry(now)
    if (was) await tlsControl(t, { clear: true })
    await dropRecord(t.stateDir, 'certificate_expiry')
    return was || record !== null
  },
  async active(t) {
    return t.tls ? nearExpiry(await tlsControl(t)) : false
  },
}

interface Flags {
  tax_v2?: boolean
  [flag: string]: unknown
}

function flagsFileOf(t: ChaosTarget): string {
  if (!t.functions) throw new Error('the running demo has no edge function: restart the stack')
  return t.functions.flagsFile
}

async function readFlags(file: string): Promise<Flags> {
  try {
    return JSON.parse(await Deno.readTextFile(file)) as Flags
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return {}
    throw error
  }
}

/** Written whole (a new file renamed over the old): the function never reads half of it. */
async function writeFlags(file: string, flags: Flags): Promise<void> {
  const next = `${file}.${Deno.pid}.new`
  await Deno.writeTextFile(next, JSON.stringify(flags, null, 2) + '\n', { mode: 0o600 })
  await Deno.rename(next, file)
}

/** A flag flipped in production turns on code with a bug: the function throws on every cart. */
export const failingEdgeFunction: Fault = {
  name: 'failing_edge_function',
  summary: 'the edge function demo-checkout throws on every request (a flag turns on buggy code)',
  expects: { incident: 'service_unhealthy', finding: 'http_status', heal: null },
  async inject(t) {
    const file = flagsFileOf(t)
    const flags = await readFlags(file)
    if (flags.tax_v2 === true) return 'failing_edge_function is already active'
    await writeFlags(file, { ...flags, tax_v2: true })
    await writeRecord(t.stateDir, {
      fault: 'failing_edge_function',
      injected_at: new Date().toISOString(),
      groups: [],
    })
    return 'the flag tax_v2 is on: demo-checkout throws on every cart (HTTP 500)'
  },
  async clear(t) {
    const record = await readRecord(t.stateDir, 'failing_edge_function')
    let was = false
    if (t.functions) {
      const { tax_v2, ...rest } = await readFlags(t.functions.flagsFile)
      was = tax_v2 === true
      if (tax_v2 !== undefined) await writeFlags(t.functions.flagsFile, rest)
    }
    await dropRecord(t.stateDir, 'failing_edge_function')
    return was || record !== null
  },
  async active(t) {
    return t.functions ? (await readFlags(t.functions.flagsFile)).tax_v2 === true : false
  },
}

export const EDGE_FAULTS: Fault[] = [certificateExpiry, failingEdgeFunction]
