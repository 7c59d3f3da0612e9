// The cycle runner on the real database, with probes standing in for real ones where a test
// needs one that throws, hangs or leaks a secret. Real probes are tested in tests/probes/.
import assert from 'node:assert/strict'
import { databaseSecrets, runCycle } from '../../supabase/functions/_shared/health/cycle.ts'
import { type ProbeRegistry, PROBES } from '../../supabase/functions/_shared/probes/registry.ts'
import type { Probe } from '../../supabase/functions/_shared/probes/types.ts'
import type { HttpConfig } from '../../shared/probe-configs.ts'
import { testSql, withCronPaused } from '../_env.ts'

type Behaviour = (
  config: HttpConfig,
  signal: AbortSignal,
  secret: (n: string) => string | undefined,
) => Promise<unknown>

/** An http-kind probe whose behaviour is chosen by the target URL's path. */
function scriptedHttp(behaviours: Record<string, Behaviour>): ProbeRegistry {
  const probe: Probe<HttpConfig> = {
    ...PROBES.http,
    async run(config, ctx) {
      const behaviour = behaviours[new URL(config.url).pathname]
      return await behaviour(config, ctx.signal, ctx.secret) as never
    },
  }
  return { ...PROBES, http: probe }
}

async function withServices<T>(
  rows: { name: string; path: string; timeout_ms?: number }[],
  fn: (sql: ReturnType<typeof testSql>) => Promise<T>,
): Promise<T> {
  const sql = testSql(4)
  // These tests are about the cycle: the incidents they open must not set the real auto-heal going
  // on services that are deleted at the end (its audit rows would hold them, or deadlock with it).
  await sql`alter table vigil.incidents disable trigger incidents_request_heal`
  try {
    for (const r of rows) {
      await sql`insert into vigil.services (name, kind, config, timeout_ms)
                values (${r.name}, 'http', ${sql.json({ url: `http://127.0.0.1:9${r.path}` })}, ${
        r.timeout_ms ?? 10000
      })`
    }
    // The minutely cron cycle would probe these services too, at the same time as the test.
    return await withCronPaused(sql, ['vigil-health-check'], () => fn(sql))
  } finally {
    await sql`alter table vigil.incidents enable trigger incidents_request_heal`
    await sql`delete from vigil.services where name in ${sql(rows.map((r) => r.name))}`
    await sql.end()
  }
}

function options(
  sql: ReturnType<typeof testSql>,
  probes: ProbeRegistry,
  only: string[],
  extra = {},
) {
  return {
    sql,
    probes,
    only,
    projectUrl: 'http://127.0.0.1:1',
    secret: (n: string) => Deno.env.get(n),
    ...extra,
  }
}

Deno.test('a throwing, a hanging and a healthy probe: one cycle, three rows, the hang bounded by its own timeout', async () => {
  const names = ['cycle-ok', 'cycle-throws', 'cycle-hangs', 'cycle-garbage']
  const probes = scriptedHttp({
    '/ok': () =>
      Promise.resolve({
        status: 'healthy',
        responseMs: 3,
        measurements: { status_code: 200 },
        metrics: [{ name: 'http_request_duration', value: 3 }],
      }),
    '/throws': () => Promise.reject(new TypeError('kaboom in the probe')),
    // Ignores its signal on purpose: the runner must not wait for it.
    '/hangs': () => new Promise(() => {}),
    '/garbage': () =>
      Promise.resolve({
        status: 'sideways',
        measurements: 'not an object',
        metrics: [{ name: 'nope', value: 1 }, { name: 'error_rate', value: Number.NaN }],
      }),
  })
  await withServices([
    { name: names[0], path: '/ok' },
    { name: names[1], path: '/throws' },
    { name: names[2], path: '/hangs', timeout_ms: 300 },
    { name: names[3], path: '/garbage' },
  ], async (sql) => {
    const report = await runCycle(options(sql, probes, names))
    assert.equal(report.services, 4)
    assert.deepEqual([report.healthy, report.degraded, report.down], [1, 0, 3])
    assert.ok(
      report.duration_ms < 10_000,
      'the hanging probe did not hold the cycle to the default timeout',
    )
    const rows = await sql<
      {
        name: string
        status: string
        error: string | null
        measurements: Record<string, unknown>
      }[]
    >`
      select s.name, c.status, c.error, c.measurements
        from vigil.checks c join vigil.services s on s.id = c.service_id
       where c.cycle_id = ${report.cycle_id} order by s.name`
    const byName = Object.fromEntries(rows.map((r) => [r.name, r]))
    assert.equal(byName['cycle-ok'].status, 'healthy')
    assert.equal(byName['cycle-throws'].status, 'down')
    assert.match(byName['cycle-throws'].error!, /probe failed: kaboom in the probe/)
    assert.equal(byName['cycle-hangs'].status, 'down')
    assert.match(byName['cycle-hangs'].error!, /no result within 300 ms/)
    assert.equal(byName['cycle-garbage'].status, 'down')
    assert.match(byName['cycle-garbage'].error!, /no valid status/)
    assert.deepEqual(byName['cycle-garbage'].measurements, {})
    const metrics =
      await sql`select name::text from vigil.metrics m join vigil.checks c on c.id = m.check_id where c.cycle_id = ${report.cycle_id}`
    assert.deepEqual(
      metrics.map((m) => m.name),
      ['http_request_duration'],
      'invalid metrics are dropped',
    )
    const [cycle] =
      await sql`select services, healthy, down from vigil.cycles where id = ${report.cycle_id}`
    assert.deepEqual({ ...cycle }, { services: 4, healthy: 1, down: 3 })
  })
})

Deno.test('a config the probe schema refuses is a down row naming the field, not a failed cycle', async () => {
  const strict: ProbeRegistry = {
    ...PROBES,
    http: {
      ...PROBES.http,
      config: PROBES.http.config.refine((c) => c.url.endsWith('/never'), {
        path: ['url'],
        message: 'must end in /never',
      }),
    },
  }
  await withServices([{ name: 'cycle-badconfig', path: '/x' }], async (sql) => {
    const report = await runCycle(options(sql, strict, ['cycle-badconfig']))
    const [row] =
      await sql`select status, error from vigil.checks where cycle_id = ${report.cycle_id}`
    assert.equal(row.status, 'down')
    assert.match(row.error, /invalid config: url: must end in \/never/)
  })
})

Deno.test('secret values a probe read never reach the stored row', async () => {
  const secretName = 'VIGIL_TEST_CYCLE_SECRET'
  const secretValue = 'sk-live-4f9d2c1b0e8a7f6d5c4b3a29'
  const probes = scriptedHttp({
    '/leaky': (_c, _s, secret) => {
      const value = secret(secretName)
      return Promise.resolve({
        status: 'down',
        measurements: { echoed: `token=${value}` },
        error: `server said: bad token ${value}`,
      })
    },
  })
  await withServices([{ name: 'cycle-leaky', path: '/leaky' }], async (sql) => {
    const report = await runCycle({
      ...options(sql, probes, ['cycle-leaky']),
      secret: (n: string) => (n === secretName ? secretValue : undefined),
    })
    const [row] =
      await sql`select error, measurements::text as m from vigil.checks where cycle_id = ${report.cycle_id}`
    assert.doesNotMatch(row.error + row.m, /sk-live/)
    assert.match(row.error, /bad token \[redacted\]/)
  })
})

Deno.test("each cycle pings the dead man's switch after recording, and the outcome is kept", async () => {
  const received: { method: string; path: string; body: string }[] = []
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen() {} }, async (req) => {
    received.push({ method: req.method, path: new URL(req.url).pathname, body: await req.text() })
    return new Response('OK')
  })
  const probes = scriptedHttp({
    '/ok': () => Promise.resolve({ status: 'healthy', measurements: {} }),
  })
  try {
    await withServices([{ name: 'cycle-deadman', path: '/ok' }], async (sql) => {
      const deadmanUrl = `http://127.0.0.1:${server.addr.port}/ping/5f3c`
      const report = await runCycle(options(sql, probes, ['cycle-deadman'], { deadmanUrl }))
      assert.equal(report.deadman, 'ok 200')
      assert.deepEqual(received.map((r) => [r.method, r.path]), [['POST', '/ping/5f3c']])
      assert.match(received[0].body, /1 services, 0 down/)
      const [cycle] = await sql`select deadman from vigil.cycles where id = ${report.cycle_id}`
      assert.equal(cycle.deadman, 'ok 200')
    })
  } finally {
    await server.shutdown()
  }
})

Deno.test("the project's secret keys go to the project's own URL only, never to another host", async () => {
  const KEY = 'service-role-key-that-must-stay-home'
  const seen: Record<string, string | undefined> = {}
  const probes = scriptedHttp({
    '/own': (_c, _s, secret) => {
      seen.own = secret('SUPABASE_SERVICE_ROLE_KEY')
      return Promise.resolve({ status: 'healthy', measurements: {} })
    },
    '/elsewhere': (_c, _s, secret) => {
      seen.elsewhere = secret('SUPABASE_SERVICE_ROLE_KEY')
      return Promise.resolve({ status: 'healthy', measurements: {} })
    },
  })
  const sql = testSql(4)
  const names = ['cycle-key-own', 'cycle-key-elsewhere', 'cycle-key-unnamed']
  try {
    const named = { 'x-api-key': 'SUPABASE_SERVICE_ROLE_KEY' }
    await sql`insert into vigil.services (name, kind, config) values
      (${names[0]}, 'http', ${sql.json({ url: 'http://127.0.0.1:1/own', header_secrets: named })}),
      (${names[1]}, 'http', ${
      sql.json({ url: 'http://127.0.0.1:9/elsewhere', header_secrets: named })
    }),
      (${names[2]}, 'http', ${sql.json({ url: 'http://127.0.0.1:9/elsewhere' })})`
    const report = await runCycle({
      ...options(sql, probes, names),
      secret: (n: string) => (n === 'SUPABASE_SERVICE_ROLE_KEY' ? KEY : undefined),
    })
    const rows = await sql`
      select s.name, c.status::text, c.error from vigil.checks c join vigil.services s on s.id = c.service_id
      where c.cycle_id = ${report.cycle_id} order by s.name`
    const by = Object.fromEntries(rows.map((r) => [r.name, r]))
    assert.equal(by['cycle-key-own'].status, 'healthy')
    assert.equal(seen.own, KEY, 'the project itself gets its key')
    assert.equal(by['cycle-key-elsewhere'].status, 'down')
    assert.match(
      by['cycle-key-elsewhere'].error,
      /^refused: secret SUPABASE_SERVICE_ROLE_KEY is sent only to the project's own URL/,
    )
    // A probe of another host that does not name the key cannot read it either.
    assert.equal(by['cycle-key-unnamed'].status, 'healthy')
    assert.equal(seen.elsewhere, undefined)
  } finally {
    await sql`delete from vigil.services where name in ${sql(names)}`
    await sql.end()
  }
})

Deno.test("a cycle's probes share one read budget: a body past it fails that probe, not the cycle", async () => {
  const body = 'x'.repeat(300_000)
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname
    // /streamed has no content-length: its bytes are counted as they arrive.
    return path.startsWith('/streamed')
      ? new Response(new Blob([body]).stream())
      : new Response(body)
  })
  const base = `http://127.0.0.1:${server.addr.port}`
  const sql = testSql(4)
  const names = [
    'cycle-budget-a',
    'cycle-budget-b',
    'cycle-budget-streamed-a',
    'cycle-budget-streamed-b',
  ]
  try {
    for (const name of names) {
      const path = name.includes('streamed') ? `/streamed/${name}` : `/${name}`
      await sql`insert into vigil.services (name, kind, config) values (${name}, 'http', ${
        sql.json({ url: `${base}${path}` })
      })`
    }
    const run = async (only: string[]) => {
      const report = await runCycle({ ...options(sql, PROBES, only), readBudgetBytes: 400_000 })
      return await sql<{ status: string; error: string | null }[]>`
        select status::text, error from vigil.checks where cycle_id = ${report.cycle_id}`
    }
    for (const pair of [names.slice(0, 2), names.slice(2)]) {
      const rows = await run(pair)
      assert.equal(rows.length, 2, 'the cycle recorded both')
      const spent = rows.filter((r) =>
        /the cycle's read budget of 0\.4 MiB is spent/.test(r.error ?? '')
      )
      assert.equal(
        spent.length,
        1,
        `one of two 300 kB bodies fits a 400 kB budget: ${JSON.stringify(rows)}`,
      )
      assert.equal(spent[0].status, 'down')
      assert.equal(rows.filter((r) => r.status === 'healthy').length, 1)
    }
  } finally {
    await sql`delete from vigil.services where name in ${sql(names)}`
    await sql.end()
    await server.shutdown()
  }
})

Deno.test('a database password that is its own user or database name is not struck from measurements', () => {
  const local = 'postgresql://postgres:postgres@127.0.0.1:54322/postgres'
  assert.deepEqual(databaseSecrets(local), [local])
  const real = 'postgresql://vigil_agent:Zq9%40long-agent-secret@db.example.co:5432/postgres'
  const secrets = databaseSecrets(real)
  assert.ok(secrets.includes(real))
  assert.ok(secrets.includes('Zq9@long-agent-secret'), 'the decoded password is struck')
  assert.ok(!secrets.includes('postgres'))
  assert.deepEqual(databaseSecrets(undefined), [])
})

Deno.test('a first failure is probed again in a confirmation round: real ones reach the failure threshold a cycle sooner, blips do not', async () => {
  const names = ['confirm-down', 'confirm-blip', 'confirm-already', 'confirm-three']
  const failing = new Set(['/down', '/blip', '/already', '/three'])
  const calls: Record<string, number> = {}
  const answer = (path: string) => () => {
    calls[path] = (calls[path] ?? 0) + 1
    const down = failing.has(path) && !(path === '/blip' && calls[path] > 1)
    return Promise.resolve(
      down
        ? { status: 'down', measurements: { status_code: 503 }, error: 'got status 503' }
        : { status: 'healthy', measurements: { status_code: 200 } },
    )
  }
  const probes = scriptedHttp(Object.fromEntries(
    ['/down', '/blip', '/already', '/three'].map((p) => [p, answer(p)]),
  ))
  await withServices([
    { name: names[0], path: '/down' },
    { name: names[1], path: '/blip' },
    { name: names[2], path: '/already' },
    { name: names[3], path: '/three' },
  ], async (sql) => {
    await sql`update vigil.services set failure_threshold = 2 where name = any(${
      names.slice(0, 3)
    })`
    await sql`update vigil.services set failure_threshold = 3 where name = ${names[3]}`
    // Each was healthy at its latest check, but confirm-already has failed since.
    for (const name of names) {
      await sql`insert into vigil.checks (service_id, status, checked_at)
                select id, 'healthy', now() - interval '2 minutes' from vigil.services where name = ${name}`
    }
    await sql`insert into vigil.checks (service_id, status, error, checked_at)
              select id, 'down', 'got status 503', now() - interval '1 minute' from vigil.services
               where name = ${names[2]}`

    const report = await runCycle(options(sql, probes, names, { confirmAfterMs: 50 }))
    assert.equal(report.services, 4)
    assert.equal(report.down, 4)
    assert.ok(report.confirmation, 'a confirmation round ran')
    assert.equal(
      report.confirmation.services,
      3,
      'down, blip and three: not the one already failing',
    )
    assert.equal(report.confirmation.still_failing, 2)
    assert.deepEqual(calls, { '/down': 2, '/blip': 2, '/already': 1, '/three': 2 })

    const incidents = await sql<{ name: string }[]>`
      select s.name from vigil.incidents i join vigil.services s on s.id = i.service_id
       where s.name = any(${names}) and i.status = 'open' order by s.name`
    assert.deepEqual(
      incidents.map((r) => r.name),
      ['confirm-already', 'confirm-down'],
      'confirmed with a threshold of 2, or failing twice across cycles: open; a blip or a threshold of 3: not yet',
    )
    const rows = await sql<{ name: string; status: string; cycle: string }[]>`
      select s.name, c.status, c.cycle_id::text as cycle from vigil.checks c
        join vigil.services s on s.id = c.service_id
       where c.cycle_id = ${report.confirmation.cycle_id} order by s.name`
    assert.deepEqual(rows.map((r) => `${r.name} ${r.status}`), [
      'confirm-blip healthy',
      'confirm-down down',
      'confirm-three down',
    ])

    // confirm-three (threshold 3) opens at its next cycle, with no confirmation round of its own.
    const next = await runCycle(options(sql, probes, [names[3]], { confirmAfterMs: 50 }))
    assert.equal(next.confirmation, null)
    const [three] = await sql`
      select count(*)::int as n from vigil.incidents i join vigil.services s on s.id = i.service_id
       where s.name = ${names[3]} and i.status = 'open'`
    assert.equal(three.n, 1)
  })
})

Deno.test('no confirmation round when the caller turns it off, or for a service never checked before', async () => {
  const names = ['confirm-off', 'confirm-new']
  const probes = scriptedHttp({
    '/off': () => Promise.resolve({ status: 'down', measurements: {}, error: 'refused' }),
    '/new': () => Promise.resolve({ status: 'down', measurements: {}, error: 'refused' }),
  })
  await withServices(
    [{ name: names[0], path: '/off' }, { name: names[1], path: '/new' }],
    async (sql) => {
      await sql`insert into vigil.checks (service_id, status, checked_at)
              select id, 'healthy', now() - interval '2 minutes' from vigil.services where name = ${
        names[0]
      }`
      const off = await runCycle(options(sql, probes, [names[0]], { confirmAfterMs: null }))
      assert.equal(off.confirmation, null)
      const fresh = await runCycle(options(sql, probes, [names[1]], { confirmAfterMs: 50 }))
      assert.equal(fresh.confirmation, null)
    },
  )
})
