// A host's resources from a Prometheus text-format endpoint with node_exporter's metric names:
// node_cpu_seconds_total{cpu,mode}, node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes,
// node_filesystem_avail_bytes / node_filesystem_size_bytes{mountpoint}, node_network_*_bytes_total
// {device}. Supabase's project endpoint (https://<ref>.supabase.co/customer/v1/privileged/metrics,
// basic auth service_role:<service key>) serves these names with extra labels
// supabase_project_ref and service_type="db"; its database lives on the filesystem mounted at /data.
import { z } from 'zod'
import type { Finding } from '../../../../shared/findings.ts'
import type { CheckStatus } from '../../../../shared/kinds.ts'
import { PrometheusConfig } from '../../../../shared/probe-configs.ts'
import { decodeChunks, down, excerpt, exchange, missingSecret, round } from './support.ts'
import { againstBand, type Metric, type Probe, type ProbeResult, redact, worst } from './types.ts'
import type { ReadBudget } from '../health/read-budget.ts'

const MAX_BODY_BYTES = 10_485_760
/** Rates over a longer gap than this say little about now: the previous scrape is ignored. */
const RATE_MAX_AGE_MS = 15 * 60_000
const MALFORMED_REPORTED = 5

// ---- the exposition format ----

export interface PromSample {
  name: string
  labels: Record<string, string>
  value: number
  timestampMs?: number
}

export interface PromMalformed {
  line: number
  reason: string
  text: string
}

export interface PromParse {
  samples: PromSample[]
  /** TYPE per metric family. */
  types: Map<string, string>
  help: Map<string, string>
  /** Lines that could not be read; the rest of the text is still parsed. */
  malformed: PromMalformed[]
}

const METRIC_NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/y
const LABEL_NAME = /[a-zA-Z_][a-zA-Z0-9_]*/y
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])

/** Parses text format 0.0.4 (what node_exporter and Prometheus client libraries serve). */
export function parsePrometheusText(text: string): PromParse {
  const out: PromParse = { samples: [], types: new Map(), help: new Map(), malformed: [] }
  const seen = new Set<string>()
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i]
    const trimmed = line.trim()
    if (!trimmed) continue
    const bad = (reason: string) =>
      out.malformed.push({ line: i + 1, reason, text: line.slice(0, 120) })
    if (trimmed.startsWith('#')) {
      const problem = readComment(trimmed, out)
      if (problem) bad(problem)
      continue
    }
    const sample = readSample(line)
    if (typeof sample === 'string') {
      bad(sample)
      continue
    }
    const key = seriesKey(sample.name, sample.labels)
    if (seen.has(key)) {
      bad(`duplicate series ${sample.name}`)
      continue
    }
    seen.add(key)
    out.samples.push(sample)
  }
  return out
}

/** A HELP or TYPE line is recorded; other comments are ignored. Returns a problem, if any. */
function readComment(line: string, out: PromParse): string | undefined {
  const m = /^#[ \t]*(HELP|TYPE)(?:[ \t]+(.*))?$/.exec(line)
  if (!m) return undefined // a plain comment
  const [, keyword, rest = ''] = m
  const [, name, tail = ''] = /^(\S*)(?:[ \t]+(.*))?$/.exec(rest) ?? []
  if (!name || !fullMatch(METRIC_NAME, name)) return `${keyword} without a valid metric name`
  if (keyword === 'TYPE') {
    const type = tail.trim()
    if (!TYPES.has(type)) return `unknown metric type "${type}" for ${name}`
    if (out.types.has(name)) return `second TYPE line for ${name}`
    out.types.set(name, type)
    return undefined
  }
  if (out.help.has(name)) return `second HELP line for ${name}`
  const help = unescape(tail, false)
  if (help === undefined) return `invalid escape in HELP for ${name}`
  out.help.set(name, help)
  return undefined
}

/** name{label="value",…} value [timestamp] → a sample, or what is wrong with the line. */
function readSample(line: string): PromSample | string {
  let i = skipBlank(line, 0)
  METRIC_NAME.lastIndex = i
  const name = METRIC_NAME.exec(line)?.[0]
  if (!name) return 'invalid metric name'
  i += name.length
  const pairs: [string, string][] = []
  if (line[skipBlank(line, i)] === '{') {
    i = skipBlank(line, i) + 1
    for (;;) {
      i = skipBlank(line, i)
      if (line[i] === '}') break
      LABEL_NAME.lastIndex = i
      const label = LABEL_NAME.exec(line)?.[0]
      if (!label) return 'invalid label name'
      i = skipBlank(line, i + label.length)
      if (line[i] !== '=') return `expected '=' after label ${label}`
      i = skipBlank(line, i + 1)
      if (line[i] !== '"') return `expected '"' to open the value of label ${label}`
      const end = closingQuote(line, i + 1)
      if (end < 0) return `unterminated value of label ${label}`
      const value = unescape(line.slice(i + 1, end), true)
      if (value === undefined) return `invalid escape in the value of label ${label}`
      if (pairs.some(([n]) => n === label)) return `duplicate label ${label}`
      pairs.push([label, value])
      i = skipBlank(line, end + 1)
      if (line[i] === ',') {
        i++
        continue
      }
      if (line[i] !== '}') return `expected ',' or '}' after label ${label}`
    }
    i++ // past '}'
  } else if (i < line.length && line[i] !== ' ' && line[i] !== '\t') {
    return 'invalid character in metric name'
  }
  const fields = line.slice(i).trim().split(/[ \t]+/).filter(Boolean)
  if (fields.length === 0) return `missing value for ${name}`
  if (fields.length > 2) return `unexpected text after the timestamp of ${name}`
  const value = parseValue(fields[0])
  if (value === undefined) return `invalid value "${fields[0].slice(0, 40)}" for ${name}`
  const sample: PromSample = { name, labels: Object.fromEntries(pairs), value }
  if (fields.length === 2) {
    if (!/^-?\d+$/.test(fields[1])) {
      return `invalid timestamp "${fields[1].slice(0, 40)}" for ${name}`
    }
    sample.timestampMs = Number(fields[1])
  }
  return sample
}

/** Go's ParseFloat spellings the format allows: decimals, NaN, ±Inf (any case). */
function parseValue(s: string): number | undefined {
  const lower = s.toLowerCase()
  if (lower === 'nan') return NaN
  if (/^[+-]?inf(inity)?$/.test(lower)) return lower.startsWith('-') ? -Infinity : Infinity
  return DECIMAL.test(s) ? Number(s) : undefined
}

/** Label values escape \\, \" and \n; HELP text escapes \\ and \n. Other escapes are errors. */
function unescape(s: string, quotes: boolean): string | undefined {
  let out = ''
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== '\\') {
      out += s[i]
      continue
    }
    const next = s[++i]
    if (next === '\\') out += '\\'
    else if (next === 'n') out += '\n'
    else if (next === '"' && quotes) out += '"'
    else return undefined
  }
  return out
}

function closingQuote(line: string, from: number): number {
  for (let i = from; i < line.length; i++) {
    if (line[i] === '\\') i++
    else if (line[i] === '"') return i
  }
  return -1
}

function skipBlank(line: string, i: number): number {
  while (line[i] === ' ' || line[i] === '\t') i++
  return i
}

function fullMatch(re: RegExp, s: string): boolean {
  re.lastIndex = 0
  return re.exec(s)?.[0] === s
}

function seriesKey(name: string, labels: Record<string, string>): string {
  return JSON.stringify([
    name,
    Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  ])
}

// ---- node_exporter's view of a host ----

export interface NodeTotals {
  /** Seconds summed over every CPU: all modes, and all but idle. */
  cpu?: { busy: number; total: number }
  memory?: { available: number; total: number }
  /** The fullest filesystem mounted at the mountpoint. */
  disk?: { avail: number; size: number; usedPercent: number }
  /** Every mountpoint seen, to say what there is when the configured one is absent. */
  mountpoints: string[]
  /** Bytes summed over every interface but loopback. */
  network?: { receive: number; transmit: number }
}

export function nodeTotals(samples: PromSample[], mountpoint: string): NodeTotals {
  const by = (name: string) => samples.filter((s) => s.name === name && Number.isFinite(s.value))
  const sum = (list: PromSample[]) => list.reduce((a, s) => a + s.value, 0)
  const totals: NodeTotals = { mountpoints: [] }

  const cpu = by('node_cpu_seconds_total').filter((s) => s.labels.mode !== undefined)
  if (cpu.length) {
    totals.cpu = { busy: sum(cpu.filter((s) => s.labels.mode !== 'idle')), total: sum(cpu) }
  }

  const memTotal = by('node_memory_MemTotal_bytes')
  const memAvailable = by('node_memory_MemAvailable_bytes')
  if (memTotal.length && memAvailable.length && sum(memTotal) > 0) {
    totals.memory = { available: sum(memAvailable), total: sum(memTotal) }
  }

  const labelsKey = (s: PromSample) => seriesKey('', s.labels)
  const sizes = new Map(by('node_filesystem_size_bytes').map((s) => [labelsKey(s), s.value]))
  const failed = new Set(
    by('node_filesystem_device_error').filter((s) => s.value === 1).map(labelsKey),
  )
  const mounts = new Set<string>()
  for (const avail of by('node_filesystem_avail_bytes')) {
    if (avail.labels.mountpoint !== undefined) mounts.add(avail.labels.mountpoint)
    const size = sizes.get(labelsKey(avail))
    if (
      avail.labels.mountpoint !== mountpoint || failed.has(labelsKey(avail)) || !size || size <= 0
    ) continue
    const usedPercent = (1 - avail.value / size) * 100
    if (!totals.disk || usedPercent > totals.disk.usedPercent) {
      totals.disk = { avail: avail.value, size, usedPercent }
    }
  }
  totals.mountpoints = [...mounts].sort()

  const notLoopback = (s: PromSample) => s.labels.device !== 'lo'
  const rx = by('node_network_receive_bytes_total').filter(notLoopback)
  const tx = by('node_network_transmit_bytes_total').filter(notLoopback)
  if (rx.length || tx.length) totals.network = { receive: sum(rx), transmit: sum(tx) }
  return totals
}

/** What one scrape keeps for the next one's rates (in measurements.counters). */
const Counters = z.object({
  at_ms: z.number(),
  cpu_busy_seconds: z.number().optional(),
  cpu_total_seconds: z.number().optional(),
  network_receive_bytes: z.number().optional(),
  network_transmit_bytes: z.number().optional(),
})
type Counters = z.infer<typeof Counters>

// ---- the probe ----

export const prometheusProbe: Probe<PrometheusConfig> = {
  kind: 'prometheus',
  config: PrometheusConfig,
  async run(config, ctx) {
    const headers: Record<string, string> = { accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1' }
    const secrets: string[] = []
    if (config.basic_auth) {
      const password = ctx.secret(config.basic_auth.password_secret)
      if (!password) return missingSecret(config.basic_auth.password_secret)
      const credentials = base64(`${config.basic_auth.username}:${password}`)
      headers.authorization = `Basic ${credentials}`
      secrets.push(password, credentials)
    } else if (config.bearer_secret) {
      const token = ctx.secret(config.bearer_secret)
      if (!token) return missingSecret(config.bearer_secret)
      headers.authorization = `Bearer ${token}`
      secrets.push(token)
    }

    const scrape = await exchange(
      ctx,
      config.url,
      { headers },
      (res) => readWithin(res, MAX_BODY_BYTES, ctx.readBudget),
    )
    if ('failure' in scrape) {
      return down(`scrape failed: ${redact(scrape.failure, secrets)}`, {}, scrape.ms)
    }
    const { status, text, ms: responseMs } = scrape
    if (text === undefined) {
      return down(`metrics response larger than ${MAX_BODY_BYTES} bytes`, { status_code: status })
    }
    const scrapedAt = Date.now()
    const measurements: Record<string, unknown> = { status_code: status, scrape_ms: responseMs }
    if (status === 401 || status === 403) {
      return down(`credentials rejected (HTTP ${status})`, measurements, responseMs)
    }
    if (status !== 200) {
      return down(
        `metrics endpoint answered HTTP ${status}: ${excerpt(text, secrets, 200)}`,
        measurements,
        responseMs,
      )
    }

    const parsed = parsePrometheusText(text)
    measurements.samples = parsed.samples.length
    measurements.malformed_lines = parsed.malformed.length
    if (parsed.malformed.length) {
      measurements.malformed = parsed.malformed.slice(0, MALFORMED_REPORTED).map((m) =>
        redact(`line ${m.line}: ${m.reason}`, secrets)
      )
    }
    if (parsed.samples.length === 0) {
      return down(
        `no samples in the response: ${excerpt(text, secrets, 200)}`,
        measurements,
        responseMs,
      )
    }

    const totals = nodeTotals(parsed.samples, config.disk_mountpoint)
    const counters: Counters = {
      at_ms: scrapedAt,
      ...(totals.cpu
        ? { cpu_busy_seconds: totals.cpu.busy, cpu_total_seconds: totals.cpu.total }
        : {}),
      ...(totals.network
        ? {
          network_receive_bytes: totals.network.receive,
          network_transmit_bytes: totals.network.transmit,
        }
        : {}),
    }
    const previous = Counters.safeParse(
      (ctx.previous as { counters?: unknown } | undefined)?.counters,
    )
    const notes: string[] = []
    const prev = previous.success ? previous.data : undefined
    const usable = prev && scrapedAt - prev.at_ms > 0 && scrapedAt - prev.at_ms <= RATE_MAX_AGE_MS
      ? prev
      : undefined
    if (!prev) notes.push('first scrape: rates need a previous one')
    else if (!usable) notes.push('previous scrape too old or from the future: rates start again')

    const cpu = totals.cpu && usable ? cpuPercent(usable, totals.cpu, notes) : null
    const memory = totals.memory ? (1 - totals.memory.available / totals.memory.total) * 100 : null
    const disk = totals.disk ? totals.disk.usedPercent : null
    const seconds = usable ? (scrapedAt - usable.at_ms) / 1000 : 0
    const receive = totals.network && usable
      ? perSecond(usable.network_receive_bytes, totals.network.receive, seconds, notes, 'receive')
      : null
    const transmit = totals.network && usable
      ? perSecond(
        usable.network_transmit_bytes,
        totals.network.transmit,
        seconds,
        notes,
        'transmit',
      )
      : null

    Object.assign(measurements, {
      cpu_usage_percent: rounded(cpu),
      memory_usage_percent: rounded(memory),
      disk_usage_percent: rounded(disk),
      disk_mountpoint: config.disk_mountpoint,
      network_receive_bytes_per_second: rounded(receive),
      network_transmit_bytes_per_second: rounded(transmit),
      ...(totals.memory
        ? {
          memory_total_bytes: totals.memory.total,
          memory_available_bytes: totals.memory.available,
        }
        : {}),
      ...(totals.disk
        ? { disk_size_bytes: totals.disk.size, disk_avail_bytes: totals.disk.avail }
        : {}),
      counters,
    })

    const missing: string[] = []
    if (!totals.cpu) missing.push('node_cpu_seconds_total')
    if (!totals.memory) missing.push('node_memory_MemTotal_bytes/MemAvailable_bytes')
    if (!totals.disk) {
      missing.push(
        `a filesystem mounted at ${config.disk_mountpoint} (mounted: ${
          totals.mountpoints.join(', ') || 'none'
        })`,
      )
    }
    if (missing.length) measurements.missing = missing
    if (notes.length) measurements.notes = notes

    const problems: string[] = []
    const statuses: CheckStatus[] = []
    const findings: Finding[] = []
    const judge = (what: string, value: number | null, warning: number, critical: number) => {
      if (value === null) return
      const s = againstBand(value, warning, critical)
      statuses.push(s)
      if (s === 'down') problems.push(`${what} ${rounded(value)} % above critical ${critical} %`)
      if (s === 'degraded') {
        problems.push(`${what} ${rounded(value)} % at or above warning ${warning} %`)
      }
    }
    const t = ctx.thresholds
    judge(
      'cpu',
      cpu,
      config.cpu_warning_pct ?? t.cpu_warning_pct,
      config.cpu_critical_pct ?? t.cpu_critical_pct,
    )
    judge(
      'memory',
      memory,
      config.memory_warning_pct ?? t.memory_warning_pct,
      config.memory_critical_pct ?? t.memory_critical_pct,
    )
    judge(`disk ${config.disk_mountpoint}`, disk, config.disk_warning_pct, config.disk_critical_pct)
    if (memory !== null) {
      const s = againstBand(
        memory,
        config.memory_warning_pct ?? t.memory_warning_pct,
        config.memory_critical_pct ?? t.memory_critical_pct,
      )
      if (s !== 'healthy') {
        findings.push({ kind: 'memory_high', status: s, evidence: { usage_pct: rounded(memory)! } })
      }
    }
    if (disk !== null) {
      const s = againstBand(disk, config.disk_warning_pct, config.disk_critical_pct)
      if (s !== 'healthy') {
        findings.push({
          kind: 'disk_low',
          status: s,
          evidence: { usage_pct: rounded(disk)!, mountpoint: config.disk_mountpoint ?? null },
        })
      }
    }
    if (missing.length) {
      statuses.push('degraded')
      problems.push(`missing from the scrape: ${missing.join('; ')}`)
    }

    const metrics: Metric[] = []
    const emit = (name: Metric['name'], value: number | null, labels?: Record<string, string>) => {
      if (value !== null) {
        metrics.push({ name, value: rounded(value)!, ...(labels ? { labels } : {}) })
      }
    }
    emit('cpu_usage_percent', cpu)
    emit('memory_usage_percent', memory)
    emit('disk_usage_percent', disk, { mountpoint: config.disk_mountpoint })
    emit('network_receive_bytes_per_second', receive)
    emit('network_transmit_bytes_per_second', transmit)

    const overall = worst(...statuses)
    return {
      status: overall,
      responseMs,
      measurements,
      metrics,
      findings,
      ...(overall === 'healthy' ? {} : { error: redact(problems.join('; '), secrets) }),
    } satisfies ProbeResult
  },
}

function cpuPercent(
  prev: Counters,
  now: { busy: number; total: number },
  notes: string[],
): number | null {
  if (prev.cpu_busy_seconds === undefined || prev.cpu_total_seconds === undefined) return null
  const busy = now.busy - prev.cpu_busy_seconds
  const total = now.total - prev.cpu_total_seconds
  if (busy < 0 || total <= 0) {
    notes.push('cpu counters went back (a restart?): rate starts again')
    return null
  }
  return Math.min(100, (busy / total) * 100)
}

function perSecond(
  prev: number | undefined,
  now: number,
  seconds: number,
  notes: string[],
  what: string,
): number | null {
  if (prev === undefined || seconds <= 0) return null
  if (now < prev) {
    notes.push(`network ${what} counters went back (a restart?): rate starts again`)
    return null
  }
  return (now - prev) / seconds
}

/** Percentages and rates to two decimals; null (not measured) stays null. */
function rounded(value: number | null): number | null {
  return value === null ? null : round(value, 2)
}

function base64(text: string): string {
  let binary = ''
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte)
  return btoa(binary)
}

/**
 * The body as text, or undefined when it is larger than `limit` bytes: unlike an API answer, a
 * scrape cut short would still parse, as a host with fewer series.
 */
async function readWithin(
  res: Response,
  limit: number,
  budget?: ReadBudget,
): Promise<string | undefined> {
  if (!res.body) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel()
      return undefined
    }
    try {
      budget?.take(value.byteLength)
    } catch (err) {
      await reader.cancel().catch(() => {})
      throw err
    }
    chunks.push(value)
  }
  return decodeChunks(chunks, size)
}
