// The chaos faults against a demo of their own (free ports, the test stack's database, no services
// seeded): each is made for real and seen where it lives (sessions in pg_stat_activity, a table's
// settings, the app's fault state, the CDN's cache, the Vercel stand-in), is harmless to make twice,
// and is removed by clear — also when a crashed run left no record of it. And the CLI's words.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import postgres from 'postgres'
import { startDemo } from '../../demo/main.ts'
import { faultNamed, FAULTS } from '../../demo/chaos/registry.ts'
import { targetOf } from '../../demo/chaos/target.ts'
import { readRecord } from '../../demo/chaos/procs.ts'
import type { ChaosTarget, Fault } from '../../demo/chaos/types.ts'
import { eventually, testSql, testStack } from '../_env.ts'

const fault = (name: string): Fault => faultNamed(name)!

async function sessions(sql: postgres.Sql, name: string) {
  return await sql<{ state: string | null; wait: string | null; role: string; query: string }[]>`
    select state, wait_event_type as wait, usename as role, query from pg_stat_activity
     where application_name like ${`vigil-chaos:${name}:%`} and backend_type = 'client backend'`
}

async function cli(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ['run', '-A', '--config', 'deno.json', 'demo/chaos/cli.ts', ...args],
    env: { NO_COLOR: '1', ...env },
    stdout: 'piped',
    stderr: 'piped',
  }).output()
  const d = new TextDecoder()
  return { code: out.code, out: d.decode(out.stdout), err: d.decode(out.stderr) }
}

Deno.test('chaos: the CLI lists the faults, names the valid ones for a wrong name, and says what is missing', async () => {
  const listed = await cli(['list'])
  assert.equal(listed.code, 0)
  for (const f of FAULTS) {
    const line = listed.out.split('\n').find((l) => l.trimStart().startsWith(`${f.name} `))
    assert.equal(line?.trim().replace(/ {2,}/, '  '), `${f.name}  ${f.summary}`)
  }
  assert.equal(new Set(FAULTS.map((f) => f.name)).size, FAULTS.length, 'each fault once')
  for (const name of ['certificate_expiry', 'failing_edge_function']) {
    assert.ok(faultNamed(name), `${name} is listed`)
  }
  const wrong = await cli(['lock_contnetion'])
  assert.equal(wrong.code, 2)
  assert.match(wrong.err, /unknown fault "lock_contnetion"; the faults are:/)
  assert.match(wrong.err, /lock_contention/)
  const empty = await Deno.makeTempDir()
  const noStack = await cli(['lock_contention'], { VIGIL_STATE_DIR: empty })
  assert.equal(noStack.code, 1)
  assert.match(noStack.err, /demo\.json is missing: start the local stack with its demo first/)
  await Deno.remove(empty, { recursive: true })
})

Deno.test('chaos: every fault is made for real, harmless twice, and cleared', async (t) => {
  const dbUrl = testStack().dbUrl
  const demo = await startDemo({ dbUrl, seed: false })
  const stateDir = await Deno.makeTempDir({ prefix: 'vigil-chaos-' })
  const target: ChaosTarget = { ...targetOf(dbUrl, demo, stateDir), connectionShare: 0.5 }
  const sql = testSql()
  try {
    await t.step(
      'lock_contention: an idle transaction of demo_app, three sessions waiting',
      async () => {
        const f = fault('lock_contention')
        await f.inject(target)
        const s = await sessions(sql, 'lock_contention')
        assert.equal(s.filter((x) => x.state === 'idle in transaction').length, 1)
        assert.equal(s.filter((x) => x.wait === 'Lock').length, 3)
        assert.ok(s.every((x) => x.role === 'demo_app'), 'as the app connects, never as postgres')
        assert.equal(await f.inject(target), 'lock_contention is already active')
        assert.equal((await sessions(sql, 'lock_contention')).length, 4, 'made once')
        assert.equal(await f.clear(target), true)
        assert.equal((await sessions(sql, 'lock_contention')).length, 0)
        assert.equal(await readRecord(stateDir, 'lock_contention'), null)
        assert.equal(await f.clear(target), false, 'clearing again finds nothing')
      },
    )

    await t.step(
      'a fault a crashed run left without a record is still found and cleared',
      async () => {
        const f = fault('lock_contention')
        await f.inject(target)
        await Deno.remove(join(stateDir, 'chaos', 'lock_contention.json'))
        assert.equal(await f.active(target), true)
        assert.equal(await f.clear(target), true)
        await eventually(
          async () => (await sessions(sql, 'lock_contention')).length === 0 ? true : undefined,
          5_000,
          'the sessions gone',
        )
      },
    )

    await t.step(
      'connection_exhaustion: idle sessions fill the share of client slots',
      async () => {
        const f = fault('connection_exhaustion')
        const said = await f.inject(target)
        assert.match(said, /^\d+ idle sessions of the app hold (4\d|50) % of \d+ client slots$/)
        const idle = (await sessions(sql, 'connection_exhaustion')).filter((x) =>
          x.state === 'idle'
        )
        assert.ok(idle.length >= 10, `${idle.length} idle sessions`)
        assert.equal(await f.clear(target), true)
        assert.equal((await sessions(sql, 'connection_exhaustion')).length, 0)
      },
    )

    await t.step('runaway_query: a cross join that never ends, cancelled by clear', async () => {
      const f = fault('runaway_query')
      await f.inject(target)
      const running = await eventually(
        async () => {
          const s = (await sessions(sql, 'runaway_query')).filter((x) => x.state === 'active')
          return s.length ? s : undefined
        },
        5_000,
        'the runaway query',
      )
      assert.match(running[0].query, /cross join demo\.orders b/)
      assert.equal(await f.clear(target), true)
      assert.equal((await sessions(sql, 'runaway_query')).length, 0)
    })

    await t.step(
      'slow_query: pgbench runs the unindexed statement; clear drops the index a heal built',
      async () => {
        const f = fault('slow_query')
        await f.inject(target)
        await eventually(
          async () => (await sessions(sql, 'slow_query')).length > 0 ? true : undefined,
          10_000,
          'the load',
        )
        // What add_missing_index would build; clear takes it away so the fault can be made again.
        await sql`create index if not exists t_chaos_orders_customer on demo.orders (customer_id)`
        assert.equal(await f.clear(target), true)
        assert.equal((await sessions(sql, 'slow_query')).length, 0)
        const [{ n }] = await sql`
        select count(*)::int as n from pg_indexes where schemaname = 'demo' and indexname = 't_chaos_orders_customer'`
        assert.equal(n, 0)
      },
    )

    await t.step(
      'dead_tuple_bloat: autovacuum off for demo.orders and every row dead once; clear vacuums',
      async () => {
        const f = fault('dead_tuple_bloat')
        const said = await f.inject(target)
        assert.match(said, /^\d+ rows of demo\.orders updated with autovacuum off for it/)
        assert.equal(await f.active(target), true)
        const [{ off }] = await sql`
        select 'autovacuum_enabled=false' = any (reloptions) as off from pg_class where oid = 'demo.orders'::regclass`
        assert.equal(off, true)
        assert.equal(await f.clear(target), true)
        assert.equal(await f.active(target), false)
      },
    )

    const appState = async () =>
      await (await fetch(`${demo.urls.app}/_chaos`, {
        headers: { authorization: `Bearer ${demo.credentials.controlToken}` },
      })).json()

    await t.step('error_spike, latency_spike and memory_leak switch the app and back', async () => {
      for (
        const [name, field, on] of [
          ['error_spike', 'errors', 0.7],
          ['latency_spike', 'latency_ms', 1500],
          ['memory_leak', 'leak_mb_per_s', 0.5],
        ] as const
      ) {
        const f = fault(name)
        await f.inject(target)
        assert.equal((await appState())[field], on, name)
        assert.equal(await f.active(target), true)
        assert.equal(await f.clear(target), true)
        assert.equal((await appState())[field], 0, name)
      }
      const health = await fetch(`${demo.urls.app}/health`)
      assert.equal(health.status, 200)
      await health.body?.cancel()
    })

    await t.step(
      'stale_version: the origin moves on, the CDN keeps the old page until cleared',
      async () => {
        const f = fault('stale_version')
        const said = await f.inject(target)
        assert.equal(
          said,
          'the app now serves v1-hotfix and Vigil expects it; the CDN still serves v1',
        )
        const origin = await (await fetch(`${demo.urls.app}/version`)).json()
        assert.equal(origin.version, 'v1-hotfix')
        const cdn = await fetch(`${demo.urls.edge}/version`)
        assert.equal(cdn.headers.get('x-demo-version'), 'v1')
        assert.equal(cdn.headers.get('cf-cache-status'), 'HIT')
        await cdn.body?.cancel()
        assert.equal(await f.clear(target), true)
        const after = await fetch(`${demo.urls.edge}/version`)
        assert.equal(after.headers.get('x-demo-version'), 'v1')
        assert.equal(after.headers.get('cf-cache-status'), 'MISS', 'clear purged the edge')
        await after.body?.cancel()
      },
    )

    await t.step(
      'failing_deploy: the deploy hook builds a deployment that ends in ERROR',
      async () => {
        const f = fault('failing_deploy')
        await f.inject(target)
        const built = demo.vercel.deployments().at(-1)!
        assert.equal(built.state, 'ERROR', 'the build failed')
        assert.equal(demo.vercel.production().meta.version, 'v1', 'production is unchanged')
        assert.equal(await f.clear(target), true)
        assert.equal(await f.active(target), false)
      },
    )
  } finally {
    for (const f of FAULTS) await f.clear(target).catch(() => {})
    await sql.end()
    await demo.stop()
    await Deno.remove(stateDir, { recursive: true }).catch(() => {})
  }
})
