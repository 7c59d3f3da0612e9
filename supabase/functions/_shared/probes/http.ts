// The http probe: one request to one endpoint per run, judged on status, latency, body, served
// version, redirects and (for https) the certificate's days to expiry; a 5xx is asked a few more
// times to tell a blip from an error spike. Expected failures never
// throw: they come back as a ProbeResult whose error names the cause and never a secret value.
import tls from 'node:tls'
import { AsnConvert } from '@peculiar/asn1-schema'
import { Certificate } from '@peculiar/asn1-x509'
import type { Finding } from '../../../../shared/findings.ts'
import type { CheckStatus } from '../../../../shared/kinds.ts'
import { HttpConfig } from '../../../../shared/probe-configs.ts'
import { clip, decodeChunks, latencyBand, parseJson, round } from './support.ts'
import type { ReadBudget } from '../health/read-budget.ts'
import {
  againstBand,
  againstFloor,
  type Metric,
  type Probe,
  type ProbeContext,
  type ProbeResult,
  rank,
  redact,
  redactDeep,
  worst,
} from './types.ts'

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])
const DAY_MS = 86_400_000

interface Issue {
  status: CheckStatus
  message: string
}

interface Hop {
  url: string
  status: number
  location: string
}

/**
 * A 5xx is asked again ERROR_SAMPLES times, ERROR_SAMPLE_GAP_MS apart, to tell a blip from an
 * error spike: at SPIKE_SHARE of the requests failing or more, the check is decisive (the service
 * is down on this check, without waiting for its failure threshold). Only safe methods are asked
 * again: a POST is never repeated.
 */
export const ERROR_SAMPLES = 4
const ERROR_SAMPLE_GAP_MS = 200
export const SPIKE_SHARE = 0.6
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** Checks one HTTP endpoint. */
async function run(config: HttpConfig, ctx: ProbeContext): Promise<ProbeResult> {
  const secrets: string[] = []
  const headers = new Headers()
  for (const [name, value] of Object.entries(config.headers)) headers.set(name, value)
  if (!headers.has('user-agent')) headers.set('user-agent', 'Vigil http probe')
  for (const [name, secretName] of Object.entries(config.header_secrets)) {
    const value = ctx.secret(secretName)
    if (value === undefined) {
      return down(`secret ${secretName} (for header ${name}) is not set`, { url: config.url })
    }
    secrets.push(value)
    try {
      headers.set(name, value)
    } catch {
      return down(`secret ${secretName} is not a valid value for header ${name}`, {
        url: config.url,
      }, secrets)
    }
  }
  if (config.body !== undefined && (config.method === 'GET' || config.method === 'HEAD')) {
    return down(`a ${config.method} request cannot carry a body: remove body or change method`, {
      url: config.url,
    })
  }

  const url = new URL(config.url)
  const outcome = await request(config, ctx, headers)
  // The certificate is read by a connection of its own, which the outbound guard does not see:
  // only once the guarded request has reached the host.
  if (url.protocol === 'https:') {
    const reached = outcome.responseMs !== undefined
    judgeCertificate(
      reached
        ? await readCertificateExpiry(url, ctx.signal)
        : { error: 'the host was not reached' },
      config,
      outcome,
    )
  }

  const status = worst(...outcome.issues.map((i) => i.status))
  const ordered = [...outcome.issues].sort((a, b) => rank(b.status)! - rank(a.status)!)
  return {
    status,
    ...(outcome.responseMs !== undefined && { responseMs: outcome.responseMs }),
    measurements: redactDeep(outcome.measurements, secrets) as Record<string, unknown>,
    metrics: outcome.metrics,
    findings: redactDeep(outcome.findings, secrets) as Finding[],
    ...(status !== 'healthy' &&
      { error: redact(ordered.map((i) => i.message).join('; '), secrets) }),
  }
}

export const httpProbe: Probe<HttpConfig> = { kind: 'http', config: HttpConfig, run }

interface Outcome {
  issues: Issue[]
  /** What diagnosis reads: typed (shared/findings.ts). */
  findings: Finding[]
  measurements: Record<string, unknown>
  metrics: Metric[]
  responseMs?: number
}

/** The request itself, its redirects, and every judgement on the response. */
async function request(
  config: HttpConfig,
  ctx: ProbeContext,
  headers: Headers,
): Promise<Outcome> {
  const issues: Issue[] = []
  const metrics: Metric[] = []
  const hops: Hop[] = []
  const measurements: Record<string, unknown> = {
    url: config.url,
    method: config.method,
    redirects: hops,
  }
  const outcome: Outcome = { issues, measurements, metrics, findings: [] }
  const fail = (message: string) => {
    issues.push({ status: 'down', message })
    return outcome
  }

  let url = new URL(config.url)
  let method: string = config.method
  let body = config.body
  const seen = new Set([url.href])
  const started = performance.now()
  let response: Response
  try {
    for (;;) {
      response = await ctx.fetch(url, {
        method,
        headers,
        body,
        redirect: 'manual',
        signal: ctx.signal,
      })
      const location = response.headers.get('location')
      if (
        !config.follow_redirects || !REDIRECT_STATUSES.has(response.status) || location === null
      ) break
      await response.body?.cancel()
      hops.push({ url: url.href, status: response.status, location })
      const next = URL.parse(location, url)
      if (!next) return fail(`redirect with an invalid Location ${quote(location, 200)}`)
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        return fail(
          `redirect to an unsupported URL scheme ${next.protocol} (${clip(next.href, 200)})`,
        )
      }
      if (seen.has(next.href)) {
        const chain = [...hops.map((h) => h.url), next.href].map((u) => clip(u, 120))
        return fail(`redirect loop: ${chain.join(' → ')}`)
      }
      if (hops.length > config.max_redirects) {
        return fail(
          `too many redirects: more than ${config.max_redirects} (last to ${clip(next.href, 200)})`,
        )
      }
      seen.add(next.href)
      // As browsers do: 303 (and 301/302 after a POST) turn into a GET without a body.
      if (
        (response.status === 303 && method !== 'HEAD') ||
        ([301, 302].includes(response.status) && method === 'POST')
      ) {
        method = 'GET'
        body = undefined
      }
      // Credentials go to the configured origin only, never to wherever a redirect points.
      if (next.origin !== url.origin) {
        headers.delete('authorization')
        for (const name of Object.keys(config.header_secrets)) headers.delete(name)
      }
      url = next
    }
  } catch (error) {
    const elapsed = Math.round(performance.now() - started)
    return fail(
      ctx.signal.aborted
        ? `no response within the timeout (gave up after ${elapsed} ms)`
        : describeFetchError(error, url),
    )
  }

  const responseMs = round(performance.now() - started, 1)
  outcome.responseMs = responseMs
  metrics.push({ name: 'http_request_duration', value: responseMs })
  Object.assign(measurements, {
    final_url: url.href,
    status_code: response.status,
    response_ms: responseMs,
    content_type: response.headers.get('content-type'),
  })

  const band = latencyBand(config, ctx.thresholds)
  const warningMs = band.warning
  const criticalMs = Math.max(band.critical, warningMs)
  measurements.latency_warning_ms = warningMs
  measurements.latency_critical_ms = criticalMs
  const latency = againstBand(responseMs, warningMs, criticalMs)
  if (latency === 'down') {
    issues.push({
      status: 'down',
      message: `slow: responded in ${responseMs} ms (critical above ${criticalMs} ms)`,
    })
  }
  if (latency === 'degraded') {
    issues.push({
      status: 'degraded',
      message: `slow: responded in ${responseMs} ms (warning from ${warningMs} ms)`,
    })
  }

  const read = await readBody(response, config.max_body_bytes, ctx.signal, ctx.readBudget)
  measurements.body_bytes = read.bytes
  if (read.error) return fail(read.error)
  const text = read.text

  if (!config.expected_status.includes(response.status)) {
    measurements.body_excerpt = clip(text, 200)
    const got = `got status ${response.status}, expected ${config.expected_status.join(' or ')}`
    const rate = response.status >= 500 && SAFE_METHODS.has(method)
      ? await errorRate(config, ctx, headers, url, method)
      : null
    if (!rate) return fail(got)
    measurements.error_samples = rate
    // Most requests failing is an error spike, not a blip: proven on this check (apply_check).
    if (rate.failed / rate.requests >= SPIKE_SHARE) measurements.decisive_status = 'down'
    return fail(
      `${got}; ${rate.failed} of ${rate.requests} requests failed (${rate.error_rate_pct} % errors)`,
    )
  }

  let parsed: { ok: true; value: unknown } | { ok: false } | undefined
  const json = () => {
    if (!parsed) {
      const value = parseJson(text)
      parsed = value === undefined ? { ok: false } : { ok: true, value }
    }
    return parsed
  }
  const notJson = (purpose: string) =>
    `body is not valid JSON (content-type ${
      response.headers.get('content-type') ?? 'none'
    }), so ${purpose} cannot be read; body starts ${quote(text, 80)}`

  if (config.body_contains !== undefined && !text.includes(config.body_contains)) {
    measurements.body_excerpt = clip(text, 200)
    issues.push({
      status: 'down',
      message: `body does not contain ${quote(config.body_contains, 100)}`,
    })
  }

  if (config.json_path !== undefined) {
    const doc = json()
    if (!doc.ok) {
      issues.push({ status: 'down', message: notJson(config.json_path) })
    } else {
      const found = lookup(doc.value, config.json_path)
      if (!found.ok) {
        issues.push({ status: 'down', message: found.error })
      } else {
        measurements.json_value = summarise(found.value)
        if (config.json_equals !== undefined && found.value !== config.json_equals) {
          issues.push({
            status: 'down',
            message: `${config.json_path} is ${show(found.value)}, expected ${
              show(config.json_equals)
            }`,
          })
        }
      }
    }
  }

  const version = config.expected_version
  if (version) {
    let served: string | null = null
    let missing: string | undefined
    let readable = true
    if (version.header !== undefined) {
      served = response.headers.get(version.header)?.trim() ?? null
      missing = `no ${version.header} header`
    } else if (version.json_path !== undefined) {
      const doc = json()
      if (!doc.ok) {
        readable = false
        issues.push({ status: 'down', message: notJson(`the version at ${version.json_path}`) })
      } else {
        const found = lookup(doc.value, version.json_path)
        if (found.ok && found.value !== null && typeof found.value !== 'object') {
          served = String(found.value)
        }
        missing = found.ok ? `${version.json_path} is ${show(found.value)}` : found.error
      }
    } else {
      served = text.includes(version.value) ? version.value : null
      missing = `body does not mention ${quote(version.value, 100)}`
    }
    measurements.served_version = served
    if (readable && served !== version.value) {
      outcome.findings.push({
        kind: 'stale_version',
        status: 'degraded',
        evidence: { served, expected: version.value },
      })
      issues.push({
        status: 'degraded',
        message: served === null
          ? `serving an unknown version (${missing}), expected ${clip(version.value, 100)}`
          : `serving version ${clip(served, 100)}, expected ${clip(version.value, 100)}`,
      })
    }
  }
  return outcome
}

/** Streams at most `max` bytes of the body, stopping at once when the cap or the timeout is hit. */
async function readBody(
  response: Response,
  max: number,
  signal: AbortSignal,
  budget?: ReadBudget,
): Promise<{ bytes: number; text: string; error?: string }> {
  if (!response.body) return { bytes: 0, text: '' }
  const declared = Number(response.headers.get('content-length'))
  if (declared > max) {
    await response.body.cancel().catch(() => {})
    return {
      bytes: 0,
      text: '',
      error: `body larger than ${max} bytes (content-length ${declared})`,
    }
  }
  // A compressed body is larger than its declared length: it is counted as it is read.
  if (
    Number.isInteger(declared) && response.headers.has('content-length') &&
    !response.headers.has('content-encoding')
  ) {
    // A declared length within the cap is read by the runtime in one go: streaming it through a
    // JS reader costs about 70 KB of buffers per response, 70 MB for a 1,000-target cycle.
    try {
      budget?.take(declared)
    } catch (error) {
      await response.body.cancel().catch(() => {})
      return { bytes: 0, text: '', error: errorText(error) }
    }
    try {
      const all = new Uint8Array(await response.arrayBuffer())
      return { bytes: all.byteLength, text: new TextDecoder().decode(all) }
    } catch (error) {
      if (signal.aborted) {
        return { bytes: 0, text: '', error: 'body not complete within the timeout' }
      }
      return { bytes: 0, text: '', error: `reading the body failed: ${errorText(error)}` }
    }
  }
  const reader = response.body.getReader()
  const stop = () => reader.cancel().catch(() => {})
  signal.addEventListener('abort', stop, { once: true })
  const chunks: Uint8Array[] = []
  let bytes = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      bytes += value.byteLength
      if (bytes > max) {
        await stop()
        return { bytes, text: '', error: `body larger than ${max} bytes` }
      }
      try {
        budget?.take(value.byteLength)
      } catch (error) {
        await stop()
        return { bytes, text: '', error: errorText(error) }
      }
      chunks.push(value)
    }
  } catch (error) {
    if (!signal.aborted) {
      return { bytes, text: '', error: `reading the body failed: ${errorText(error)}` }
    }
  } finally {
    signal.removeEventListener('abort', stop)
    reader.releaseLock()
  }
  if (signal.aborted) {
    return { bytes, text: '', error: `body not complete within the timeout (${bytes} bytes read)` }
  }
  return { bytes, text: decodeChunks(chunks, bytes) }
}

/** Evaluates a JsonPath (`$.a.b[0].c`) or says where it stops matching. */
function lookup(
  doc: unknown,
  path: string,
): { ok: true; value: unknown } | { ok: false; error: string } {
  let value = doc
  let at = '$'
  for (const [, key, index] of path.matchAll(/\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]/g)) {
    if (key !== undefined) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        return {
          ok: false,
          error: `JSON path ${path} not found: ${at} is ${kind(value)}, not an object`,
        }
      }
      if (!Object.hasOwn(value, key)) {
        return { ok: false, error: `JSON path ${path} not found: ${at} has no key "${key}"` }
      }
      value = (value as Record<string, unknown>)[key]
      at += `.${key}`
    } else {
      const i = Number(index)
      if (!Array.isArray(value)) {
        return {
          ok: false,
          error: `JSON path ${path} not found: ${at} is ${kind(value)}, not an array`,
        }
      }
      if (i >= value.length) {
        return { ok: false, error: `JSON path ${path} not found: ${at} has ${value.length} items` }
      }
      value = value[i]
      at += `[${i}]`
    }
  }
  return { ok: true, value }
}

/** Adds the certificate's days to expiry to the outcome and judges them. */
function judgeCertificate(
  expiry: CertificateExpiry | { error: string },
  config: HttpConfig,
  outcome: Outcome,
) {
  const m = outcome.measurements
  if ('error' in expiry) {
    m.tls_days_left = null
    m.tls_note = `certificate expiry not checked: ${expiry.error}`
    return
  }
  const days = Math.floor((expiry.expiresAt.getTime() - Date.now()) / DAY_MS)
  Object.assign(m, {
    tls_days_left: days,
    tls_expires_at: expiry.expiresAt.toISOString(),
    tls_source: expiry.via,
  })
  outcome.metrics.push({ name: 'tls_days_left', value: days })
  const status = againstFloor(days, config.tls_warning_days, config.tls_critical_days)
  if (status === 'healthy') return
  const when = days < 0 ? `expired ${-days} days ago` : `expires in ${days} days`
  outcome.findings.push({ kind: 'certificate_expiring', status, evidence: { days_left: days } })
  outcome.issues.push({
    status,
    message: `TLS certificate ${when} (${expiry.expiresAt.toISOString()})`,
  })
}

// ---- certificate expiry -----------------------------------------------------------------------
// fetch exposes no certificate. node:tls getPeerCertificate() does from Deno 2.5 on; older
// runtimes (Supabase's edge runtime has been on Deno 2.1) return a stub without dates. So when
// node:tls gives none, read the leaf certificate from a TLS 1.2 handshake, where it travels in
// the clear. Neither connection judges trust: the request itself already did.

export interface CertificateExpiry {
  expiresAt: Date
  via: 'node:tls' | 'tls1.2-handshake'
}

/** The peer certificate's notAfter for an https URL, or why it could not be read. Never throws. */
export async function readCertificateExpiry(
  url: URL,
  signal: AbortSignal,
  only?: CertificateExpiry['via'],
): Promise<CertificateExpiry | { error: string }> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  const port = Number(url.port || 443)
  const servername = /^[\d.]+$|:/.test(host) ? undefined : host
  const reasons: string[] = []
  if (only !== 'tls1.2-handshake') {
    try {
      return { expiresAt: await expiryViaNodeTls(host, port, servername, signal), via: 'node:tls' }
    } catch (error) {
      reasons.push(`node:tls: ${errorText(error)}`)
    }
  }
  if (only !== 'node:tls' && !signal.aborted) {
    try {
      return {
        expiresAt: await expiryViaTls12Handshake(host, port, servername, signal),
        via: 'tls1.2-handshake',
      }
    } catch (error) {
      reasons.push(`TLS 1.2 handshake: ${errorText(error)}`)
    }
  }
  return { error: signal.aborted ? 'timed out' : reasons.join('; ') }
}

function expiryViaNodeTls(
  host: string,
  port: number,
  servername: string | undefined,
  signal: AbortSignal,
): Promise<Date> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('aborted'))
    const socket = tls.connect({
      host,
      port,
      servername,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    })
    let settled = false
    const settle = (error: Error | undefined, date?: Date) => {
      if (settled) return
      settled = true
      signal.removeEventListener('abort', onAbort)
      socket.destroy()
      if (error) reject(error)
      else resolve(date!)
    }
    const onAbort = () => settle(new Error('aborted'))
    signal.addEventListener('abort', onAbort, { once: true })
    socket.once('error', (error: Error) => settle(error))
    socket.once('secureConnect', () => {
      try {
        const cert = typeof socket.getPeerCertificate === 'function'
          ? socket.getPeerCertificate()
          : undefined
        const raw = cert?.raw as unknown
        const date = raw instanceof Uint8Array && raw.byteLength > 0
          ? notAfter(raw)
          : new Date(cert?.valid_to ?? Number.NaN)
        if (Number.isNaN(date.getTime())) {
          throw new Error('this runtime reports no certificate dates')
        }
        settle(undefined, date)
      } catch (error) {
        settle(error instanceof Error ? error : new Error(String(error)))
      }
    })
  })
}

async function expiryViaTls12Handshake(
  host: string,
  port: number,
  servername: string | undefined,
  signal: AbortSignal,
): Promise<Date> {
  const conn = await Deno.connect({ hostname: host, port, signal })
  let closed = false
  const close = () => {
    if (!closed) conn.close()
    closed = true
  }
  signal.addEventListener('abort', close, { once: true })
  try {
    await conn.write(clientHello(servername))
    const chunk = new Uint8Array(16_384)
    let records: Uint8Array = new Uint8Array(0)
    let handshake: Uint8Array = new Uint8Array(0)
    let total = 0
    while (total < 65_536) {
      const n = await conn.read(chunk)
      if (n === null) throw new Error('connection closed during the handshake')
      total += n
      records = concat(records, chunk.subarray(0, n))
      while (records.length >= 5) {
        const length = (records[3] << 8) | records[4]
        if (records.length < 5 + length) break
        const type = records[0]
        const fragment = records.subarray(5, 5 + length)
        records = records.subarray(5 + length)
        if (type === 21) {
          throw new Error(`server sent TLS alert ${fragment[1]} (no TLS 1.2 offered?)`)
        }
        if (type !== 22) throw new Error(`unexpected TLS record type ${type}`)
        handshake = concat(handshake, fragment)
        while (handshake.length >= 4) {
          const size = (handshake[1] << 16) | (handshake[2] << 8) | handshake[3]
          if (handshake.length < 4 + size) break
          const message = handshake.subarray(4, 4 + size)
          const messageType = handshake[0]
          handshake = handshake.subarray(4 + size)
          if (messageType === 11) {
            const first = (message[3] << 16) | (message[4] << 8) | message[5]
            return notAfter(message.subarray(6, 6 + first))
          }
          if (messageType !== 2) throw new Error('server sent no certificate')
        }
      }
    }
    throw new Error('no certificate in the first 64 KiB of the handshake')
  } finally {
    signal.removeEventListener('abort', close)
    close()
  }
}

/** A TLS 1.2 ClientHello offering the common ECDHE/RSA suites, with SNI when a name is given. */
function clientHello(servername: string | undefined): Uint8Array {
  const u16 = (n: number) => [(n >> 8) & 255, n & 255]
  const u24 = (n: number) => [(n >> 16) & 255, (n >> 8) & 255, n & 255]
  const suites = [
    0xc02b,
    0xc02f,
    0xc02c,
    0xc030,
    0xcca9,
    0xcca8,
    0xc009,
    0xc013,
    0xc00a,
    0xc014,
    0x009c,
    0x009d,
    0x002f,
    0x0035,
  ]
  const signatures = [
    0x0403,
    0x0503,
    0x0603,
    0x0804,
    0x0805,
    0x0806,
    0x0401,
    0x0501,
    0x0601,
    0x0807,
    0x0201,
  ]
  const extensions: number[] = []
  const extension = (type: number, data: number[]) =>
    extensions.push(...u16(type), ...u16(data.length), ...data)
  if (servername) {
    const name = [...new TextEncoder().encode(servername)]
    extension(0x0000, [...u16(name.length + 3), 0, ...u16(name.length), ...name])
  }
  extension(0x000a, [...u16(6), ...u16(0x001d), ...u16(0x0017), ...u16(0x0018)]) // x25519, P-256, P-384
  extension(0x000b, [1, 0]) // uncompressed points
  extension(0x000d, [...u16(signatures.length * 2), ...signatures.flatMap(u16)])
  extension(0x0017, []) // extended master secret
  extension(0xff01, [0]) // secure renegotiation
  const random = [...crypto.getRandomValues(new Uint8Array(32))]
  const hello = [
    3,
    3,
    ...random,
    0,
    ...u16(suites.length * 2),
    ...suites.flatMap(u16),
    1,
    0,
    ...u16(extensions.length),
    ...extensions,
  ]
  const message = [1, ...u24(hello.length), ...hello]
  return new Uint8Array([22, 3, 1, ...u16(message.length), ...message])
}

/** notAfter of a DER X.509 certificate, read by a maintained ASN.1/X.509 library. */
export function notAfter(der: Uint8Array): Date {
  let certificate: Certificate
  try {
    certificate = AsnConvert.parse(der, Certificate)
  } catch (error) {
    throw new Error(`unreadable certificate: ${errorText(error)}`)
  }
  return certificate.tbsCertificate.validity.notAfter.getTime()
}

// ---- small helpers ---------------------------------------------------------------------------

/** A fetch failure as an SRE would say it: DNS, refused, reset, TLS, or the runtime's words. */
/**
 * The share of ERROR_SAMPLES more requests (plus the first) answered outside expected_status or
 * not at all, within the probe's own timeout; null when the timeout left no room to ask.
 */
async function errorRate(
  config: HttpConfig,
  ctx: ProbeContext,
  headers: Headers,
  url: URL,
  method: string,
): Promise<{ requests: number; failed: number; error_rate_pct: number } | null> {
  let requests = 1
  let failed = 1
  for (let i = 0; i < ERROR_SAMPLES && !ctx.signal.aborted; i++) {
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, ERROR_SAMPLE_GAP_MS)
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(timer)
          reject(ctx.signal.reason)
        }, { once: true })
      })
      const res = await ctx.fetch(url, { method, headers, redirect: 'manual', signal: ctx.signal })
      await res.body?.cancel()
      requests++
      if (!config.expected_status.includes(res.status)) failed++
    } catch {
      if (ctx.signal.aborted) break
      requests++
      failed++
    }
  }
  if (requests === 1) return null
  return { requests, failed, error_rate_pct: Math.round((failed / requests) * 100) }
}

function describeFetchError(error: unknown, url: URL): string {
  const text = errorText(error)
  const host = url.hostname
  const where = `${host}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`
  if (
    /dns error|failed to lookup address|name or service not known|nodename nor servname|no address associated|getaddrinfo/i
      .test(text)
  ) {
    return `DNS lookup failed for host ${host}`
  }
  if (/connection refused/i.test(text)) return `connection refused by ${where}`
  if (/connection reset|reset by peer/i.test(text)) return `connection reset by ${where}`
  const certificate = /invalid peer certificate: (.*)/i.exec(text)
  if (certificate) return `TLS error: ${certificateProblem(certificate[1], host)}`
  if (/tls|handshake|certificate|ssl/i.test(text)) {
    return `TLS error with ${where}: ${clip(text, 200)}`
  }
  if (/timed out|timeout/i.test(text)) return `no response within the timeout from ${where}`
  if (/connection closed|incomplete ?message|unexpected eof/i.test(text)) {
    return `connection closed by ${where} before a response`
  }
  return `request to ${where} failed: ${clip(text, 200)}`
}

function certificateProblem(reason: string, host: string): string {
  if (/UnknownIssuer/i.test(reason)) {
    return `certificate of ${host} is self-signed or from an untrusted issuer`
  }
  if (/CaUsedAsEndEntity/i.test(reason)) {
    return `certificate of ${host} is a self-signed CA certificate`
  }
  if (/expired/i.test(reason)) return `certificate of ${host} has expired`
  if (/NotValidYet/i.test(reason)) return `certificate of ${host} is not valid yet`
  if (/NotValidForName/i.test(reason)) return `certificate is not valid for host ${host}`
  if (/revoked/i.test(reason)) return `certificate of ${host} is revoked`
  return `certificate of ${host} rejected (${clip(reason, 120)})`
}

/** The message of an error and of its causes (fetch wraps the useful part in `cause`). */
function errorText(error: unknown): string {
  const parts: string[] = []
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    const message = e instanceof Error ? e.message : String(e)
    if (message && !parts.includes(message)) parts.push(message)
    e = e instanceof Error ? e.cause : undefined
  }
  return parts.join(': ') || 'unknown error'
}

function down(
  message: string,
  measurements: Record<string, unknown>,
  secrets: string[] = [],
): ProbeResult {
  return {
    status: 'down',
    measurements: redactDeep(measurements, secrets) as Record<string, unknown>,
    error: redact(message, secrets),
  }
}

function quote(text: string, max: number): string {
  return JSON.stringify(clip(text, max))
}

/** A JSON value for an error message, truncated. */
function show(value: unknown): string {
  return clip(JSON.stringify(value) ?? 'undefined', 100)
}

/** A JSON value for measurements: scalars as they are, containers as a short text. */
function summarise(value: unknown): unknown {
  if (value === null || typeof value !== 'object') {
    return typeof value === 'string' ? clip(value, 200) : value
  }
  return clip(JSON.stringify(value), 200)
}

function kind(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length)
  out.set(a)
  out.set(b, a.length)
  return out
}
