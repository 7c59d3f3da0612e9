// The Prometheus probe: its text-format parser on tricky input, and the probe against a local
// peer standing in for node_exporter / Supabase's metrics endpoint (same names and labels), which
// checks the credentials and the Accept header it receives.
import assert from 'node:assert/strict'
import { resolveThresholds, type Thresholds } from '../../shared/thresholds.ts'
import {
  nodeTotals,
  parsePrometheusText,
  prometheusProbe,
} from '../../supabase/functions/_shared/probes/prometheus.ts'
import type { ProbeResult } from '../../supabase/functions/_shared/probes/types.ts'
import { assertNoSecrets, runProbe } from './_harness.ts'

const SERVICE_KEY = 'eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.metrics-service-key-4242'
const BEARER = 'prom-bearer-token-7f3e2d1c'
const basicAuth = { username: 'service_role', password_secret: 'VIGIL_METRICS_KEY' }
const secrets: Record<string, string> = { VIGIL_METRICS_KEY: SERVICE_KEY, VIGIL_PROM_TOKEN: BEARER }

// ---- the parser ----

Deno.test('the parser reads comments, HELP/TYPE, escapes, NaN/±Inf and timestamps, and reports bad lines', () => {
  const text = [
    '# A plain comment, and an OpenMetrics-style end marker later',
    String
      .raw`# HELP http_requests_total The total number of HTTP requests.\nA backslash: \\ here.`,
    '# TYPE http_requests_total counter',
    'http_requests_total{method="post",code="200"} 1027 1395066363000',
    'http_requests_total{method="post",code="400"}    3 1395066363000',
    String
      .raw`msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9`,
    'metric_without_timestamp_and_labels 12.47',
    'something_weird{problem="division by zero"} +Inf -3982045',
    'not_a_number{kind="nan"} NaN',
    'negative_inf -Inf',
    'trailing_comma{a="1",} 1',
    'empty_braces{} 2',
    '  spaced { a = "x" , b="y,}z" } 3',
    'tabbed\t4',
    'crlf_line 5\r',
    '',
    '# TYPE broken_type countr', // line 17
    'missing_value{a="b"}',
    'bad_label{1a="b"} 1',
    'unterminated{a="b} 1', // line 20
    String.raw`bad_escape{a="\t"} 1`,
    'bad_value{a="b"} one',
    'bad_ts 1 12.5',
    'extra 1 2 3',
    'http_requests_total{code="200",method="post"} 9', // line 25: the same series again
    'dup_labels{a="1",a="2"} 1',
    'name-with-dash 1',
    '# HELP',
    '# TYPE http_requests_total gauge',
    '# EOF',
  ].join('\n')

  const parsed = parsePrometheusText(text)
  assert.deepEqual(parsed.samples, [
    {
      name: 'http_requests_total',
      labels: { method: 'post', code: '200' },
      value: 1027,
      timestampMs: 1395066363000,
    },
    {
      name: 'http_requests_total',
      labels: { method: 'post', code: '400' },
      value: 3,
      timestampMs: 1395066363000,
    },
    {
      name: 'msdos_file_access_time_seconds',
      labels: { path: 'C:\\DIR\\FILE.TXT', error: 'Cannot find file:\n"FILE.TXT"' },
      value: 1458255915,
    },
    { name: 'metric_without_timestamp_and_labels', labels: {}, value: 12.47 },
    {
      name: 'something_weird',
      labels: { problem: 'division by zero' },
      value: Infinity,
      timestampMs: -3982045,
    },
    { name: 'not_a_number', labels: { kind: 'nan' }, value: NaN },
    { name: 'negative_inf', labels: {}, value: -Infinity },
    { name: 'trailing_comma', labels: { a: '1' }, value: 1 },
    { name: 'empty_braces', labels: {}, value: 2 },
    { name: 'spaced', labels: { a: 'x', b: 'y,}z' }, value: 3 },
    { name: 'tabbed', labels: {}, value: 4 },
    { name: 'crlf_line', labels: {}, value: 5 },
  ])
  assert.equal(parsed.types.get('http_requests_total'), 'counter')
  assert.equal(
    parsed.help.get('http_requests_total'),
    'The total number of HTTP requests.\nA backslash: \\ here.',
  )
  assert.deepEqual(parsed.malformed.map((m) => [m.line, m.reason]), [
    [17, 'unknown metric type "countr" for broken_type'],
    [18, 'missing value for missing_value'],
    [19, 'invalid label name'],
    [20, 'unterminated value of label a'],
    [21, 'invalid escape in the value of label a'],
    [22, 'invalid value "one" for bad_value'],
    [23, 'invalid timestamp "12.5" for bad_ts'],
    [24, 'unexpected text after the timestamp of extra'],
    [25, 'duplicate series http_requests_total'],
    [26, 'duplicate label a'],
    [27, 'invalid character in metric name'],
    [28, 'HELP without a valid metric name'],
    [29, 'second TYPE line for http_requests_total'],
  ])
})

Deno.test('nodeTotals skips loopback, idle CPU, failed filesystems and NaN', () => {
  const { samples } = parsePrometheusText([
    'node_cpu_seconds_total{cpu="0",mode="idle"} 70',
    'node_cpu_seconds_total{cpu="0",mode="user"} 20',
    'node_cpu_seconds_total{cpu="0",mode="steal"} NaN',
    'node_cpu_seconds_total{cpu="0",mode="system"} 10',
    'node_cpu_guest_seconds_total{cpu="0",mode="user"} 99',
    'node_filesystem_avail_bytes{device="/dev/a",mountpoint="/"} 10',
    'node_filesystem_size_bytes{device="/dev/a",mountpoint="/"} 100',
    'node_filesystem_avail_bytes{device="/dev/b",mountpoint="/"} 50',
    'node_filesystem_size_bytes{device="/dev/b",mountpoint="/"} 100',
    'node_filesystem_avail_bytes{device="/dev/c",mountpoint="/"} 0',
    'node_filesystem_size_bytes{device="/dev/c",mountpoint="/"} 100',
    'node_filesystem_device_error{device="/dev/c",mountpoint="/"} 1',
    'node_network_receive_bytes_total{device="lo"} 1000000',
    'node_network_receive_bytes_total{device="eth0"} 300',
    'node_network_receive_bytes_total{device="eth1"} 200',
  ].join('\n'))
  const totals = nodeTotals(samples, '/')
  assert.deepEqual(totals.cpu, { busy: 30, total: 100 })
  assert.deepEqual(
    totals.disk,
    { avail: 10, size: 100, usedPercent: 90 },
    'the fullest healthy filesystem at /',
  )
  assert.deepEqual(totals.network, { receive: 500, transmit: 0 })
  assert.equal(totals.memory, undefined)
})

// ---- the probe against a node_exporter-shaped peer ----

interface Host {
  cpuIdle: number
  cpuBusy: number
  memTotal?: number
  memAvailable?: number
  rootAvail?: number
  dataAvail?: number
  rx?: number
  tx?: number
}

/** What Supabase's metrics endpoint serves: node_exporter names with its project labels. */
function exposition(h: Host): string {
  const base = 'supabase_project_ref="abcdefghijklmnopqrst",service_type="db"'
  const cpu = (n: number, mode: string, v: number) =>
    `node_cpu_seconds_total{${base},cpu="${n}",mode="${mode}"} ${v}`
  const fs = (metric: string, device: string, mount: string, v: number) =>
    `node_filesystem_${metric}_bytes{${base},device="${device}",fstype="ext4",mountpoint="${mount}"} ${v}`
  return [
    '# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.',
    '# TYPE node_cpu_seconds_total counter',
    cpu(0, 'idle', h.cpuIdle / 2),
    cpu(0, 'user', h.cpuBusy * 0.3),
    cpu(0, 'system', h.cpuBusy * 0.2),
    cpu(1, 'idle', h.cpuIdle / 2),
    cpu(1, 'user', h.cpuBusy * 0.3),
    cpu(1, 'iowait', h.cpuBusy * 0.2),
    '# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.',
    '# TYPE node_memory_MemTotal_bytes gauge',
    `node_memory_MemTotal_bytes{${base}} ${h.memTotal ?? 1e9}`,
    '# TYPE node_memory_MemAvailable_bytes gauge',
    `node_memory_MemAvailable_bytes{${base}} ${h.memAvailable ?? 5e8}`,
    '# TYPE node_filesystem_avail_bytes gauge',
    fs('avail', '/dev/nvme0n1p2', '/', h.rootAvail ?? 8e9),
    fs('avail', '/dev/nvme1n1', '/data', h.dataAvail ?? 1.5e9),
    '# TYPE node_filesystem_size_bytes gauge',
    fs('size', '/dev/nvme0n1p2', '/', 1e10),
    fs('size', '/dev/nvme1n1', '/data', 8e9),
    `node_filesystem_device_error{${base},device="/dev/nvme0n1p2",fstype="ext4",mountpoint="/"} 0`,
    '# TYPE node_network_receive_bytes_total counter',
    `node_network_receive_bytes_total{${base},device="ens5"} ${h.rx ?? 1e6}`,
    `node_network_receive_bytes_total{${base},device="lo"} ${(h.rx ?? 1e6) * 1000}`,
    '# TYPE node_network_transmit_bytes_total counter',
    `node_network_transmit_bytes_total{${base},device="ens5"} ${h.tx ?? 2e6}`,
    `node_network_transmit_bytes_total{${base},device="lo"} ${(h.tx ?? 2e6) * 1000}`,
    '# TYPE pg_up gauge',
    `pg_up{${base},server="localhost:5432"} 1`,
    '',
  ].join('\n')
}

interface Scrape {
  headers: Headers
}

/** A metrics endpoint that answers with `body()` when the credentials are right. */
async function withExporter(
  auth: string,
  body: () => string | Response | Promise<string | Response>,
  fn: (url: string, scrapes: Scrape[]) => Promise<void>,
): Promise<void> {
  const scrapes: Scrape[] = []
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen: () => {} }, async (req) => {
    scrapes.push({ headers: req.headers })
    if (new URL(req.url).pathname !== '/customer/v1/privileged/metrics') {
      return new Response('not found', { status: 404 })
    }
    if (req.headers.get('authorization') !== auth) {
      return new Response('Unauthorized', {
        status: 401,
        headers: { 'www-authenticate': 'Basic realm="metrics"' },
      })
    }
    const answer = await body()
    return answer instanceof Response ? answer : new Response(answer, {
      headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' },
    })
  })
  try {
    await fn(`http://127.0.0.1:${server.addr.port}/customer/v1/privileged/metrics`, scrapes)
  } finally {
    await server.shutdown()
  }
}

const BASIC = `Basic ${btoa(`service_role:${SERVICE_KEY}`)}`

function scrape(
  rawConfig: Record<string, unknown>,
  opts: {
    previous?: Record<string, unknown>
    thresholds?: Thresholds
    secrets?: Record<string, string>
    timeoutMs?: number
  } = {},
): Promise<ProbeResult> {
  return runProbe(prometheusProbe, rawConfig, { ...opts, secrets: opts.secrets ?? secrets })
}

const metric = (r: ProbeResult, name: string) => r.metrics?.find((m) => m.name === name)

Deno.test('first scrape: memory and disk now, CPU and network rates null until the next one', async () => {
  await withExporter(
    BASIC,
    () => exposition({ cpuIdle: 2000, cpuBusy: 500 }),
    async (url, scrapes) => {
      const result = await scrape({ url, basic_auth: basicAuth })
      assert.equal(result.status, 'healthy', result.error)
      assert.match(scrapes[0].headers.get('accept') ?? '', /^text\/plain;version=0\.0\.4/)
      const m = result.measurements
      assert.equal(m.cpu_usage_percent, null)
      assert.equal(m.network_receive_bytes_per_second, null)
      assert.equal(m.memory_usage_percent, 50)
      assert.equal(m.disk_usage_percent, 20)
      assert.equal(m.disk_mountpoint, '/')
      assert.deepEqual(m.notes, ['first scrape: rates need a previous one'])
      assert.equal(m.malformed_lines, 0)
      const counters = m.counters as Record<string, number>
      assert.equal(counters.cpu_busy_seconds, 500)
      assert.equal(counters.cpu_total_seconds, 2500)
      assert.equal(counters.network_receive_bytes, 1e6, 'loopback excluded')
      assert.deepEqual(result.metrics?.map((x) => x.name).sort(), [
        'disk_usage_percent',
        'memory_usage_percent',
      ])
      assert.deepEqual(metric(result, 'disk_usage_percent')?.labels, { mountpoint: '/' })
      assertNoSecrets(result, [SERVICE_KEY, btoa(`service_role:${SERVICE_KEY}`)])
    },
  )
})

Deno.test("two scrapes: CPU is the non-idle share of the counters' increase", async () => {
  let host: Host = { cpuIdle: 2000, cpuBusy: 500 }
  await withExporter(BASIC, () => exposition(host), async (url) => {
    const first = await scrape({ url, basic_auth: basicAuth })
    host = { cpuIdle: 2030, cpuBusy: 510, rx: 1e6 + 4096, tx: 2e6 }
    const second = await scrape({ url, basic_auth: basicAuth }, { previous: first.measurements })
    assert.equal(second.status, 'healthy', second.error)
    assert.equal(second.measurements.cpu_usage_percent, 25, '10 busy seconds of 40')
    assert.deepEqual(metric(second, 'cpu_usage_percent'), { name: 'cpu_usage_percent', value: 25 })
    assert.ok((second.measurements.network_receive_bytes_per_second as number) > 0)
    assert.equal(second.measurements.network_transmit_bytes_per_second, 0)
    assert.equal(second.measurements.notes, undefined)
  })
})

Deno.test('network rates are bytes per second since the previous scrape, loopback excluded', async () => {
  await withExporter(
    BASIC,
    () => exposition({ cpuIdle: 2000, cpuBusy: 500, rx: 1_050_000, tx: 2_100_000 }),
    async (url) => {
      const previous = {
        counters: {
          at_ms: Date.now() - 10_000,
          cpu_busy_seconds: 500,
          cpu_total_seconds: 2500,
          network_receive_bytes: 1_000_000,
          network_transmit_bytes: 2_000_000,
        },
      }
      const result = await scrape({ url, basic_auth: basicAuth }, { previous })
      const rx = result.measurements.network_receive_bytes_per_second as number
      const tx = result.measurements.network_transmit_bytes_per_second as number
      assert.ok(rx > 4_900 && rx <= 5_000, `rx ${rx}`)
      assert.ok(tx > 9_800 && tx <= 10_000, `tx ${tx}`)
      assert.equal(result.measurements.cpu_usage_percent, null, 'no CPU time passed: no rate')
      assert.ok(metric(result, 'network_receive_bytes_per_second'))
    },
  )
})

Deno.test('counters that went back, or a stale previous scrape, give no rate rather than a wrong one', async () => {
  await withExporter(
    BASIC,
    () => exposition({ cpuIdle: 100, cpuBusy: 20, rx: 10 }),
    async (url) => {
      const reset = await scrape({ url, basic_auth: basicAuth }, {
        previous: {
          counters: {
            at_ms: Date.now() - 30_000,
            cpu_busy_seconds: 900,
            cpu_total_seconds: 5000,
            network_receive_bytes: 1e9,
          },
        },
      })
      assert.equal(reset.status, 'healthy', reset.error)
      assert.equal(reset.measurements.cpu_usage_percent, null)
      assert.equal(reset.measurements.network_receive_bytes_per_second, null)
      assert.deepEqual(reset.measurements.notes, [
        'cpu counters went back (a restart?): rate starts again',
        'network receive counters went back (a restart?): rate starts again',
      ])
      const stale = await scrape({ url, basic_auth: basicAuth }, {
        previous: {
          counters: { at_ms: Date.now() - 3_600_000, cpu_busy_seconds: 1, cpu_total_seconds: 2 },
        },
      })
      assert.equal(stale.measurements.cpu_usage_percent, null)
      assert.deepEqual(stale.measurements.notes, [
        'previous scrape too old or from the future: rates start again',
      ])
      const junk = await scrape({ url, basic_auth: basicAuth }, {
        previous: { counters: 'nonsense' },
      })
      assert.deepEqual(junk.measurements.notes, ['first scrape: rates need a previous one'])
    },
  )
})

Deno.test('cpu and memory are judged by config overrides, else the environment; disk by its own band', async () => {
  await withExporter(BASIC, () => exposition({ cpuIdle: 2030, cpuBusy: 510 }), async (url) => {
    const previous = {
      counters: { at_ms: Date.now() - 30_000, cpu_busy_seconds: 500, cpu_total_seconds: 2500 },
    }

    const cpuWarn = await scrape({
      url,
      basic_auth: basicAuth,
      cpu_warning_pct: 20,
      cpu_critical_pct: 50,
    }, { previous })
    assert.equal(cpuWarn.status, 'degraded')
    assert.equal(cpuWarn.error, 'cpu 25 % at or above warning 20 %')

    const memDown = await scrape({ url, basic_auth: basicAuth }, {
      previous,
      thresholds: resolveThresholds({ memory_warning_pct: 30, memory_critical_pct: 45 }),
    })
    assert.equal(memDown.status, 'down')
    assert.equal(memDown.error, 'memory 50 % above critical 45 %')

    const memOverride = await scrape({
      url,
      basic_auth: basicAuth,
      memory_warning_pct: 90,
      memory_critical_pct: 95,
    }, {
      thresholds: resolveThresholds({ memory_warning_pct: 30, memory_critical_pct: 45 }),
    })
    assert.equal(memOverride.status, 'healthy', 'the config override wins over the environment')

    const data = await scrape({ url, basic_auth: basicAuth, disk_mountpoint: '/data' })
    assert.equal(data.status, 'degraded')
    assert.equal(data.error, 'disk /data 81.25 % at or above warning 80 %')
    assert.equal(data.measurements.disk_size_bytes, 8e9)
    const dataDown = await scrape({
      url,
      basic_auth: basicAuth,
      disk_mountpoint: '/data',
      disk_warning_pct: 70,
      disk_critical_pct: 81,
    })
    assert.equal(dataDown.status, 'down')
  })
})

Deno.test('a bearer token is sent as such; rejected credentials are down without the secret', async () => {
  await withExporter(
    `Bearer ${BEARER}`,
    () => exposition({ cpuIdle: 1, cpuBusy: 1 }),
    async (url, scrapes) => {
      const ok = await scrape({ url, bearer_secret: 'VIGIL_PROM_TOKEN' })
      assert.equal(ok.status, 'healthy', ok.error)
      assert.equal(scrapes[0].headers.get('authorization'), `Bearer ${BEARER}`)
      const rejected = await scrape({ url, basic_auth: basicAuth })
      assert.deepEqual([rejected.status, rejected.error], [
        'down',
        'credentials rejected (HTTP 401)',
      ])
      assertNoSecrets(rejected, [SERVICE_KEY, BEARER])
    },
  )
})

Deno.test('missing secrets are down, naming them', async () => {
  const basic = await scrape({ url: 'http://127.0.0.1:1/metrics', basic_auth: basicAuth }, {
    secrets: {},
  })
  assert.deepEqual([basic.status, basic.error], ['down', 'secret VIGIL_METRICS_KEY is not set'])
  const bearer = await scrape({
    url: 'http://127.0.0.1:1/metrics',
    bearer_secret: 'VIGIL_PROM_TOKEN',
  }, { secrets: {} })
  assert.deepEqual([bearer.status, bearer.error], ['down', 'secret VIGIL_PROM_TOKEN is not set'])
})

Deno.test('a page that is not the exposition format, or an error status, is down', async () => {
  await withExporter(
    BASIC,
    () => '<!doctype html>\n<html><body>Sign in</body></html>\n',
    async (url) => {
      const result = await scrape({ url, basic_auth: basicAuth })
      assert.equal(result.status, 'down')
      assert.match(result.error ?? '', /^no samples in the response/)
      assert.equal(result.measurements.malformed_lines, 2)
    },
  )
  await withExporter(
    BASIC,
    () => new Response(`internal error, key=${SERVICE_KEY}`, { status: 500 }),
    async (url) => {
      const result = await scrape({ url, basic_auth: basicAuth })
      assert.equal(result.status, 'down')
      assert.equal(
        result.error,
        'metrics endpoint answered HTTP 500: internal error, key=[redacted]',
      )
    },
  )
})

Deno.test('malformed lines are reported, not fatal', async () => {
  const body = () =>
    `${exposition({ cpuIdle: 10, cpuBusy: 10 })}node_load1{} lots\nbroken{a="1" 2\n`
  await withExporter(BASIC, body, async (url) => {
    const result = await scrape({ url, basic_auth: basicAuth })
    assert.equal(result.status, 'healthy', result.error)
    assert.equal(result.measurements.malformed_lines, 2)
    assert.deepEqual(result.measurements.malformed, [
      'line 29: invalid value "lots" for node_load1',
      "line 30: expected ',' or '}' after label a",
    ])
    assert.equal(result.measurements.memory_usage_percent, 50)
  })
})

Deno.test('an endpoint without node_exporter series is degraded, saying what is missing', async () => {
  const body = () => '# TYPE go_goroutines gauge\ngo_goroutines 12\n'
  await withExporter(BASIC, body, async (url) => {
    const result = await scrape({ url, basic_auth: basicAuth })
    assert.equal(result.status, 'degraded')
    assert.match(
      result.error ?? '',
      /missing from the scrape: node_cpu_seconds_total; .*a filesystem mounted at \/ \(mounted: none\)/,
    )
  })
  await withExporter(BASIC, () => exposition({ cpuIdle: 1, cpuBusy: 1 }), async (url) => {
    const result = await scrape({
      url,
      basic_auth: basicAuth,
      disk_mountpoint: '/var/lib/postgresql',
    })
    assert.equal(result.status, 'degraded')
    assert.match(
      result.error ?? '',
      /a filesystem mounted at \/var\/lib\/postgresql \(mounted: \/, \/data\)/,
    )
  })
})

Deno.test('a scrape that outlives the deadline is down', async () => {
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  await withExporter(BASIC, async () => {
    await gate
    return 'up 1\n'
  }, async (url) => {
    try {
      const result = await scrape({ url, basic_auth: basicAuth }, { timeoutMs: 100 })
      assert.equal(result.status, 'down')
      assert.match(result.error ?? '', /^scrape failed: timed out after \d+ ms/)
    } finally {
      release()
    }
  })
})
