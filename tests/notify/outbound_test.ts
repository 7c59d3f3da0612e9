// The outbound guard: which addresses Vigil may call, decided after resolving the host, and the
// fetch that refuses before anything is sent. No network: hosts resolve through a stand-in.
import assert from 'node:assert/strict'
import {
  classify,
  guardedFetch,
  type OutboundPolicy,
  policyFromEnv,
  refusal,
  TargetRefused,
} from '../../supabase/functions/_shared/outbound.ts'

const HOSTS: Record<string, string[]> = {
  'hooks.example.org': ['93.184.216.34'],
  'sneaky.example.org': ['93.184.216.34', '10.0.0.7'],
  'metadata.example.org': ['169.254.169.254'],
  'v6.example.org': ['2606:2800:220:1:248:1893:25c8:1946'],
  'mapped.example.org': ['::ffff:127.0.0.1'],
  'db.ref.supabase.co': ['203.0.113.9'],
  'also-db.example.org': ['203.0.113.9'],
  kong: ['172.18.0.4'],
}
const strict: OutboundPolicy = {
  allowPrivate: false,
  denyHosts: ['db.ref.supabase.co'],
  resolve: (h) => Promise.resolve(HOSTS[h] ?? []),
}

Deno.test('addresses are classified, IPv4 and IPv6, mapped and bracketed', () => {
  const cases: [string, string][] = [
    ['93.184.216.34', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'link-local'],
    ['fd00::1', 'private'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['2606:2800:220:1:248:1893:25c8:1946', 'public'],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['64:ff9b::5db8:d822', 'public'],
    ['2002:0a00:0001::1', 'private'],
    ['fec0::1', 'private'],
    ['not-an-ip', 'reserved'],
  ]
  for (const [ip, kind] of cases) assert.equal(classify(ip), kind, ip)
})

Deno.test('a target is refused for what its host resolves to, or by name', async () => {
  assert.equal(await refusal('https://hooks.example.org/vigil', strict), null)
  assert.equal(await refusal('https://v6.example.org/', strict), null)
  assert.match((await refusal('http://127.0.0.1:8080/', strict))!, /loopback/)
  assert.match((await refusal('http://[::1]/', strict))!, /loopback/)
  assert.match((await refusal('http://localhost:54324/', strict))!, /this machine/)
  assert.match(
    (await refusal('http://metadata.example.org/latest/meta-data/', strict))!,
    /link-local address \(169\.254\.169\.254\)/,
  )
  assert.match(
    (await refusal('https://sneaky.example.org/', strict))!,
    /private address \(10\.0\.0\.7\)/,
    'one bad address is enough',
  )
  assert.match((await refusal('https://mapped.example.org/', strict))!, /loopback/)
  assert.match((await refusal('https://db.ref.supabase.co/', strict))!, /database's host/)
  assert.match((await refusal('https://also-db.example.org/', strict))!, /database's address/)
  assert.match((await refusal('https://nowhere.example.org/', strict))!, /does not resolve/)
  assert.match((await refusal('file:///etc/passwd', strict))!, /not http/)
  assert.match((await refusal('gopher://hooks.example.org/', strict))!, /not http/)
  // The local stack allows private targets: every stand-in listens on loopback.
  assert.equal(await refusal('http://127.0.0.1:8080/', { ...strict, allowPrivate: true }), null)
  assert.match((await refusal('ftp://127.0.0.1/', { ...strict, allowPrivate: true }))!, /not http/)
})

Deno.test('the guarded fetch refuses before anything is sent', async () => {
  let sent = 0
  const base = (() => {
    sent++
    return Promise.resolve(new Response('ok'))
  }) as typeof fetch
  const f = guardedFetch(strict, base)
  await assert.rejects(f('http://169.254.169.254/latest/meta-data/iam'), (e: Error) => {
    assert.ok(e instanceof TargetRefused)
    assert.match(e.message, /refused to call http:\/\/169\.254\.169\.254: .*link-local/)
    assert.doesNotMatch(e.message, /iam/, 'the path (a token, perhaps) is not repeated')
    return true
  })
  assert.equal(sent, 0)
  assert.equal(await (await f('https://hooks.example.org/x')).text(), 'ok')
  assert.equal(sent, 1)
})

Deno.test('the policy comes from the environment: the database hosts, and the switch for private targets', () => {
  const env: Record<string, string> = {
    SUPABASE_DB_URL: 'postgresql://postgres:pw@db.ref.supabase.co:5432/postgres',
    VIGIL_ALLOW_PRIVATE_TARGETS: 'false',
  }
  assert.deepEqual(policyFromEnv((n) => env[n]), {
    allowPrivate: false,
    denyHosts: ['db.ref.supabase.co'],
  })
  env.VIGIL_ALLOW_PRIVATE_TARGETS = 'true'
  assert.equal(policyFromEnv((n) => env[n]).allowPrivate, true)
})

Deno.test('a realtime probe asks the guard before opening its websocket: the key goes nowhere private', async () => {
  const { supabaseRealtimeProbe } = await import(
    '../../supabase/functions/_shared/probes/supabase-realtime.ts'
  )
  const { resolveThresholds } = await import('../../shared/thresholds.ts')
  let connections = 0
  const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const port = (listener.addr as Deno.NetAddr).port
  const accepting = (async () => {
    for await (const conn of listener) {
      connections++
      conn.close()
    }
  })()
  try {
    const config = supabaseRealtimeProbe.config.parse({ url: `http://127.0.0.1:${port}` })
    const result = await supabaseRealtimeProbe.run(config, {
      service: { id: 'x', name: 'rt', kind: 'supabase_realtime', environment: 'prod' },
      thresholds: resolveThresholds(),
      signal: AbortSignal.timeout(2_000),
      secret: () => 'the-service-role-key-value',
      projectUrl: 'https://ref.supabase.co',
      db: undefined as never,
      fetch: guardedFetch({ allowPrivate: false }),
    })
    assert.equal(result.status, 'down')
    assert.match(result.error ?? '', /refused to connect to ws:\/\/127\.0\.0\.1:\d+: .*loopback/)
    await new Promise((r) => setTimeout(r, 100))
    assert.equal(connections, 0, 'no connection was made')
  } finally {
    listener.close()
    await accepting.catch(() => {})
  }
})

Deno.test('an origin the deployment allows passes whatever its address; nothing else on it does', async () => {
  const policy = { ...strict, allowOrigins: ['http://kong:8000'] }
  // The project's own gateway (self-hosted: a private name), as health-check sends its shards.
  assert.equal(await refusal('http://kong:8000/functions/v1/health-check', policy), null)
  // Same host, another port or scheme: judged as usual.
  assert.match((await refusal('http://kong:9000/', policy))!, /private address/)
  assert.match((await refusal('https://kong:8000/', policy))!, /private address/)
  assert.match((await refusal('http://127.0.0.1:8000/', policy))!, /loopback/)
})
