// The postgres probe against a real Postgres 15: real lock chains, idle transactions, deadlocks,
// slow statements and dead tuples, made by real sessions here and cleaned up after each test.
import assert from 'node:assert/strict'
import postgres from 'postgres'
import { METRIC_NAMES } from '../../shared/kinds.ts'
import type { PostgresConfig } from '../../shared/probe-configs.ts'
import { resolveThresholds } from '../../shared/thresholds.ts'
import type { ThresholdOverrides } from '../../shared/thresholds.ts'
import { postgresProbe } from '../../supabase/functions/_shared/probes/postgres.ts'
import type { ProbeContext, ProbeResult } from '../../supabase/functions/_shared/probes/types.ts'
import { eventually, testStack } from '../_env.ts'

function dbUrl(): string {
  const url = Deno.env.get('VIGIL_TEST_DB_URL')
  if (!url) {
    throw new Error(
      'VIGIL_TEST_DB_URL is not set: run the tests with `npm test`, which starts a private stack',
    )
  }
  return url
}

/** One session of its own (max 1 connection), named so the probe does not take it for Vigil's. */
function session(name: string, url = dbUrl()) {
  return postgres(url, { max: 1, onnotice: () => {}, connection: { application_name: name } })
}

/** Vigil's own connection (vigil_agent), as the health-check function hands it to the probe. */
function vigilDb() {
  return postgres(testStack().agentDbUrl, {
    max: 2,
    onnotice: () => {},
    connection: { application_name: 'vigil-health-check' },
  })
}

interface Options {
  config?: Partial<PostgresConfig>
  thresholds?: ThresholdOverrides
  previous?: Record<string, unknown>
  secrets?: Record<string, string>
  signal?: AbortSignal
}

async function probe(db: postgres.Sql, o: Options = {}): Promise<ProbeResult> {
  const ctx: ProbeContext = {
    service: { id: crypto.randomUUID(), name: 'test-db', kind: 'postgres', environment: 'dev' },
    thresholds: resolveThresholds(o.thresholds ?? {}),
    signal: o.signal ?? new AbortController().signal,
    secret: (name) => o.secrets?.[name],
    projectUrl: 'http://127.0.0.1:1',
    db,
    previous: o.previous,
    fetch,
  }
  const result = await postgresProbe.run(postgresProbe.config.parse(o.config ?? {}), ctx)
  assert.deepEqual(
    JSON.parse(JSON.stringify(result.measurements)),
    result.measurements,
    'measurements are plain JSON',
  )
  for (const m of result.metrics ?? []) {
    assert.ok((METRIC_NAMES as readonly string[]).includes(m.name), `${m.name} is a known metric`)
    assert.ok(Number.isFinite(m.value), `${m.name} is a finite number`)
  }
  if (result.status !== 'healthy') assert.ok(result.error, 'a status other than healthy says why')
  return result
}

function metric(result: ProbeResult, name: string): number | undefined {
  return result.metrics?.find((m) => m.name === name)?.value
}

// Measurements are open JSON by contract; the tests read them by path.
type Json = any

function unique(prefix: string): string {
  return `${prefix}_${crypto.randomUUID().replaceAll('-', '').slice(0, 10)}`
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms))
}

/** A promise with its resolver, to hold a transaction open until the test lets it go. */
function gate() {
  let open!: () => void
  const opened = new Promise<void>((r) => (open = r))
  return { open, opened }
}

Deno.test('on the quiet database the probe is healthy and measures every signal', async () => {
  // Quiet: the tests before this one wrote thousands of rows (statement snapshots, maintenance
  // runs) that autovacuum has not analyzed yet, which the probe rightly calls stale statistics.
  const admin = session('quiet-db-analyze')
  await admin`analyze`
  await admin.end()
  const db = vigilDb()
  try {
    const first = await probe(db)
    assert.notEqual(first.status, 'down', first.error)
    // A health check always has the previous check of its service: the steady state.
    const result = await probe(db, { previous: first.measurements })
    assert.equal(result.status, 'healthy', result.error)
    assert.equal(result.error, undefined)
    const m = result.measurements as Json
    assert.equal(m.database, new URL(dbUrl()).pathname.slice(1))
    assert.equal(m.target, 'project database')
    assert.ok(m.connections.used >= 1 && m.connections.max >= m.connections.used)
    assert.equal(m.blocking.blocked_sessions, 0)
    assert.equal(m.deadlocks_since_previous, 0)
    assert.ok(m.database_size_bytes > 1_000_000)
    assert.ok(m.xid_age > 0)
    assert.equal(m.replication_lag_seconds, null, 'no replicas here')
    assert.equal(m.statements.installed, true)
    assert.equal(m.statements.schema, 'extensions')
    assert.ok(
      m.statements.slowest.every((s: Json) => !s.query.includes('vigil:postgres-probe')),
      'the probe leaves itself out',
    )
    assert.ok(typeof m.statements.p95_method === 'string')
    assert.equal(m.cache.window, 'since_previous')
    for (
      const name of [
        'active_connections',
        'connection_usage_percent',
        'blocked_sessions',
        'longest_wait_seconds',
        'deadlock_count',
        'database_size_bytes',
        'dead_tuple_ratio',
        'xid_age',
        'query_duration_p95',
      ]
    ) {
      assert.notEqual(metric(result, name), undefined, `metric ${name}`)
    }
    assert.equal(metric(result, 'replication_lag_seconds'), undefined)
    assert.equal(metric(result, 'deadlock_count'), 0)
  } finally {
    await db.end()
  }
})

Deno.test('a blocking chain is reported waiter by waiter with its root blocker, degraded then down', async () => {
  const table = unique('vigil_probe_lock')
  const admin = session('probe-test-admin')
  const a = session('probe-test-a')
  const b = session('probe-test-b')
  const c = session('probe-test-c')
  const db = vigilDb()
  const held = gate()
  let aTx: Promise<unknown> | undefined
  let bUpdate: Promise<unknown> | undefined
  let cUpdate: Promise<unknown> | undefined
  try {
    await admin`create table ${admin(table)} (id int primary key, v int not null)`
    await admin`insert into ${admin(table)} values (1, 0)`
    const [{ pid: bPid }] = await b`select pg_backend_pid() as pid`
    const [{ pid: cPid }] = await c`select pg_backend_pid() as pid`
    const locked = gate()
    let aPid = 0
    aTx = a.begin(async (tx) => {
      ;[{ pid: aPid }] = await tx`select pg_backend_pid() as pid`
      await tx`update ${tx(table)} set v = 1 where id = 1`
      locked.open()
      await held.opened
    })
    await locked.opened
    bUpdate = b`update ${b(table)} set v = 2 where id = 1`.execute()
    await sleep(50)
    cUpdate = c`update ${c(table)} set v = 3 where id = 1`.execute()

    const config = { blocked_warning_seconds: 0, blocked_critical_seconds: 1.5 }
    const seen = await eventually(
      async () => {
        const r = await probe(db, { config })
        const pids = (r.measurements as Json).blocking.waiters.map((w: Json) => w.pid)
        return pids.includes(bPid) && pids.includes(cPid) ? r : undefined
      },
      10_000,
      'both waiters to show',
    )
    const m = seen.measurements as Json
    const waiterB = m.blocking.waiters.find((w: Json) => w.pid === bPid)
    const waiterC = m.blocking.waiters.find((w: Json) => w.pid === cPid)
    assert.deepEqual(waiterB.blocked_by, [aPid])
    assert.deepEqual(waiterB.root_blockers, [aPid])
    assert.deepEqual(waiterC.root_blockers, [aPid], 'C waits behind B, whose chain ends at A')
    // Its shape, not its literals: other sessions' values never reach a check row.
    assert.match(
      waiterB.query,
      new RegExp(`update "?${table}"? set v = \\$\\d+ where id = \\$\\d+`),
    )
    assert.ok(waiterB.wait_seconds >= 0 && waiterB.wait_seconds < 10)
    const root = m.blocking.root_blockers.find((r: Json) => r.pid === aPid)
    assert.ok(root, 'A is reported as a root blocker')
    assert.equal(root.state, 'idle in transaction')
    assert.equal(root.blocks, 2)
    const [{ started }] = await admin`
      select to_json(backend_start) #>> '{}' as started from pg_stat_activity where pid = ${aPid}`
    assert.equal(
      root.backend_start,
      started,
      'backend_start names the exact backend a heal would end',
    )
    assert.ok(
      !m.blocking.root_blockers.some((r: Json) => r.pid === bPid),
      'B waits, so it is no root',
    )
    assert.ok(metric(seen, 'blocked_sessions')! >= 2)
    const longest = metric(seen, 'longest_wait_seconds')!
    assert.equal(seen.status, longest > 1.5 ? 'down' : 'degraded')
    assert.match(seen.error!, /blocked on locks/)
    assert.match(seen.error!, new RegExp(`root blocker .*pid ${aPid}`))

    await sleep(Math.max(0, 1600 - waiterB.wait_seconds * 1000))
    const later = await probe(db, { config })
    assert.equal(later.status, 'down', 'a wait past blocked_critical_seconds is down')
    assert.equal(
      (later.measurements as Json).decisive_status,
      'down',
      'the wait itself proves it lasted: the status follows on this check',
    )
    const lock = later.findings?.find((f) => f.kind === 'lock_contention')
    assert.equal(lock?.status, 'down')
    assert.ok(lock && 'root_pids' in lock.evidence && lock.evidence.root_pids.includes(aPid))
    assert.ok(metric(later, 'longest_wait_seconds')! > 1.5)
  } finally {
    held.open()
    await Promise.allSettled([aTx, bUpdate, cUpdate])
    await admin`drop table if exists ${admin(table)}`
    await Promise.all([admin.end(), a.end(), b.end(), c.end(), db.end()])
  }
})

Deno.test("idle-in-transaction sessions and long statements past their thresholds degrade, Vigil's own excepted", async () => {
  const idler = session('probe-test-idler')
  // Vigil's by its role, whatever it calls itself; a 'vigil-' name alone is nobody's.
  const vigilIdler = session('agent-worker', testStack().agentDbUrl)
  const impostor = session('vigil-impostor')
  const sleeper = session('probe-test-sleeper')
  const db = vigilDb()
  const held = gate()
  const txs: Promise<unknown>[] = []
  try {
    const pids: number[] = []
    for (const s of [idler, vigilIdler, impostor]) {
      const begun = gate()
      txs.push(s.begin(async (tx) => {
        const [{ pid }] = await tx`select pg_backend_pid() as pid`
        pids.push(pid)
        begun.open()
        await held.opened
      }))
      await begun.opened
    }
    const [idlePid, vigilPid, impostorPid] = pids
    const [{ pid: sleeperPid }] = await sleeper`select pg_backend_pid() as pid`
    const sleeping = sleeper`select pg_sleep(4)`.execute()
    txs.push(sleeping)

    const config = { idle_in_transaction_seconds: 1, long_running_seconds: 1 }
    const result = await eventually(
      async () => {
        const r = await probe(db, { config })
        const m = r.measurements as Json
        const idle = [idlePid, impostorPid].every((pid) =>
          m.idle_in_transaction.sessions.some((s: Json) => s.pid === pid)
        )
        const long = m.long_running.sessions.some((s: Json) => s.pid === sleeperPid)
        return idle && long ? r : undefined
      },
      10_000,
      'the idle transaction and the long statement to pass 1 s',
    )
    const m = result.measurements as Json
    const idle = m.idle_in_transaction.sessions.find((s: Json) => s.pid === idlePid)
    assert.ok(idle.seconds >= 1)
    assert.equal(idle.application_name, 'probe-test-idler')
    assert.ok(
      !m.idle_in_transaction.sessions.some((s: Json) => s.pid === vigilPid),
      "Vigil's own sessions are left out",
    )
    assert.equal(
      m.idle_in_transaction.sessions.find((s: Json) => s.pid === impostorPid)?.application_name,
      'vigil-impostor',
      'a session calling itself vigil-… is seen',
    )
    const long = m.long_running.sessions.find((s: Json) => s.pid === sleeperPid)
    assert.match(long.query, /pg_sleep/)
    assert.ok(long.seconds >= 1)
    assert.ok(m.idle_in_transaction.count >= 1 && m.long_running.count >= 1)
    assert.notEqual(result.status, 'healthy')
    assert.match(result.error!, /idle in transaction longer than 1 s/)
    assert.match(result.error!, /running longer than 1 s/)
    assert.equal(m.decisive_status, 'degraded', 'idle and long past their thresholds: lasting')
    assert.deepEqual(
      (result.findings ?? []).map((f) => f.kind).filter((k) =>
        k === 'idle_in_transaction' || k === 'runaway_query'
      ).sort(),
      ['idle_in_transaction', 'runaway_query'],
    )
  } finally {
    held.open()
    await Promise.allSettled(txs)
    await Promise.all([idler.end(), vigilIdler.end(), impostor.end(), sleeper.end(), db.end()])
  }
})

Deno.test('connection usage past connections_warning_pct degrades', async () => {
  const db = vigilDb()
  try {
    const result = await probe(db, {
      config: { connections_warning_pct: 0.5, connections_critical_pct: 100 },
    })
    const m = result.measurements as Json
    assert.ok(m.connections.used >= 1)
    assert.equal(metric(result, 'active_connections'), m.connections.used)
    assert.equal(
      metric(result, 'connection_usage_percent'),
      Math.round(1000 * m.connections.used / m.connections.max) / 10,
    )
    assert.equal(result.status, 'degraded')
    assert.match(
      result.error!,
      new RegExp(
        `connections at [\\d.]+% of max_connections \\(${m.connections.used} of ${m.connections.max}\\)`,
        'i',
      ),
    )
    assert.equal(m.decisive_status, undefined, 'one snapshot proves nothing lasted')
    const second = await probe(db, {
      config: { connections_warning_pct: 0.5, connections_critical_pct: 100 },
      previous: result.measurements,
    })
    assert.equal(
      (second.measurements as Json).decisive_status,
      'degraded',
      'past the warning on two checks running: lasting',
    )
  } finally {
    await db.end()
  }
})

Deno.test('a real deadlock shows as a positive delta against the previous check', async () => {
  const table = unique('vigil_probe_deadlock')
  const admin = session('probe-test-admin')
  const x = session('probe-test-x')
  const y = session('probe-test-y')
  const db = vigilDb()
  try {
    await admin`create table ${admin(table)} (id int primary key, v int not null)`
    await admin`insert into ${admin(table)} values (1, 0), (2, 0)`
    const before = await probe(db)
    const xLocked = gate()
    const yLocked = gate()
    const outcomes = await Promise.allSettled([
      x.begin(async (tx) => {
        await tx`update ${tx(table)} set v = v + 1 where id = 1`
        xLocked.open()
        await yLocked.opened
        await tx`update ${tx(table)} set v = v + 1 where id = 2`
      }),
      y.begin(async (tx) => {
        await tx`update ${tx(table)} set v = v + 1 where id = 2`
        yLocked.open()
        await xLocked.opened
        await tx`update ${tx(table)} set v = v + 1 where id = 1`
      }),
    ])
    const failed = outcomes.filter((o) => o.status === 'rejected') as PromiseRejectedResult[]
    assert.equal(failed.length, 1, 'one of the two is chosen as the deadlock victim')
    assert.equal((failed[0].reason as { code?: string }).code, '40P01')
    // Statistics reach shared memory asynchronously; ask both backends to flush now.
    await Promise.all([x`select pg_stat_force_next_flush()`, y`select pg_stat_force_next_flush()`])

    const result = await eventually(
      async () => {
        const r = await probe(db, { previous: before.measurements })
        return ((r.measurements as Json).deadlocks_since_previous ?? 0) > 0 ? r : undefined
      },
      15_000,
      'the deadlock to reach pg_stat_database',
    )
    assert.ok(metric(result, 'deadlock_count')! >= 1)
    assert.ok(
      (result.measurements as Json).deadlocks_total > (before.measurements as Json).deadlocks_total,
    )
    assert.notEqual(result.status, 'healthy')
    assert.match(result.error!, /deadlocks? since the previous check/)
  } finally {
    await admin`drop table if exists ${admin(table)}`
    await Promise.all([admin.end(), x.end(), y.end(), db.end()])
  }
})

Deno.test('a slow statement is listed among the slowest with its mean above slow_query_ms', async () => {
  const table = unique('vigil_probe_slow')
  const admin = session('probe-test-slow')
  const db = vigilDb()
  try {
    // Its own table gives the statement its own pg_stat_statements entry.
    await admin`create table ${admin(table)} (id int)`
    await admin`insert into ${admin(table)} values (1)`
    await admin`select pg_sleep(0.3) from ${admin(table)}`
    const result = await probe(db, {
      config: { slow_statements: 50, slow_min_calls: 1 },
      thresholds: { slow_query_ms: 200 },
    })
    const st = (result.measurements as Json).statements
    const mine = st.slowest.find((s: Json) =>
      s.query.includes(table) && s.query.includes('pg_sleep')
    )
    assert.ok(mine, 'the sleeping statement is among the slowest')
    assert.ok(mine.mean_ms >= 290 && mine.max_ms >= 290, `mean ${mine.mean_ms} ms`)
    assert.equal(mine.calls, 1)
    assert.equal(mine.slow, true)
    assert.ok(st.slow.some((s: Json) => s.queryid === mine.queryid))
    assert.ok(st.slow_count >= 1)
    assert.equal(st.slow_query_ms, 200)
    assert.ok(st.slowest.length <= 50)
    const means = st.slowest.map((s: Json) => s.mean_ms)
    assert.deepEqual(means, [...means].sort((p: number, q: number) => q - p), 'slowest first')
    assert.equal(typeof metric(result, 'query_duration_p95'), 'number')
    assert.equal(st.p95_judged, st.calls >= 10_000, 'p95 is judged only over enough calls')

    // Called once, it is slow but not slow enough to matter with the default slow_min_calls (10);
    // and a statement on the ignore list never is.
    const once = await probe(db, {
      config: { slow_statements: 50 },
      thresholds: { slow_query_ms: 200 },
    })
    const onceSt = (once.measurements as Json).statements
    assert.ok(!onceSt.slow.some((s: Json) => s.queryid === mine.queryid), 'one call: not listed')
    const ignoring = await probe(db, {
      config: {
        slow_statements: 50,
        slow_min_calls: 1,
        slow_ignore: [`SELECT  pg_sleep($1) FROM ${'"' + table + '"'}`.toLowerCase(), mine.query],
      },
      thresholds: { slow_query_ms: 200 },
    })
    assert.ok(
      !(ignoring.measurements as Json).statements.slow.some((s: Json) =>
        s.queryid === mine.queryid
      ),
      'ignored on purpose',
    )
  } finally {
    await admin`drop table if exists ${admin(table)}`
    await Promise.all([admin.end(), db.end()])
  }
})

Deno.test('a table that is mostly dead tuples is listed worst first and degrades; small tables are ignored', async () => {
  const big = unique('vigil_probe_dead')
  const small = unique('vigil_probe_small')
  const admin = session('probe-test-dead')
  const db = vigilDb()
  try {
    // No autovacuum on these, or it might clean them before the probe looks.
    for (const t of [big, small]) {
      await admin`create table ${admin(t)} (id int primary key) with (autovacuum_enabled = false)`
    }
    await admin`insert into ${admin(big)} select generate_series(1, 2000)`
    await admin`insert into ${admin(small)} select generate_series(1, 10)`
    await admin`delete from ${admin(big)} where id > 100`
    await admin`delete from ${admin(small)} where id > 1`
    await admin`select pg_stat_force_next_flush()`
    await admin`analyze ${admin(big)}`
    await admin`analyze ${admin(small)}`

    // No grace: judged at once (the default waits for autovacuum; see below).
    const config = {
      dead_tuple_min_rows: 1000,
      dead_tuple_warning_ratio: 0.5,
      dead_tuple_grace_seconds: 0,
    }
    const result = await eventually(
      async () => {
        const r = await probe(db, { config })
        return (r.measurements as Json).dead_tuples.tables.some((t: Json) =>
            t.table === `public.${big}`
          )
          ? r
          : undefined
      },
      10_000,
      'the dead tuples to reach the statistics',
    )
    const tables = (result.measurements as Json).dead_tuples.tables
    const mine = tables.find((t: Json) => t.table === `public.${big}`)
    assert.equal(mine.dead, 1900)
    assert.equal(mine.live, 100)
    assert.equal(mine.ratio, 0.95)
    assert.ok(
      !tables.some((t: Json) => t.table === `public.${small}`),
      'a table under dead_tuple_min_rows is ignored',
    )
    const ratios = tables.map((t: Json) => t.ratio)
    assert.deepEqual(ratios, [...ratios].sort((p: number, q: number) => q - p), 'worst first')
    assert.ok(metric(result, 'dead_tuple_ratio')! >= 0.95)
    assert.equal(result.status, 'degraded', 'dead tuples warn, they never take a database down')
    assert.match(result.error!, /dead tuples that autovacuum has not dealt with/)

    // With a grace, a table newly over the ratio is autovacuum's to handle: no finding yet.
    const graceful = { ...config, dead_tuple_grace_seconds: 600 }
    const fresh = await probe(db, { config: graceful })
    const freshMine = (fresh.measurements as Json).dead_tuples.tables.find((t: Json) =>
      t.table === `public.${big}`
    )
    assert.equal(freshMine.lagging, false)
    assert.equal((fresh.measurements as Json).dead_tuples.lagging, 0)
    assert.doesNotMatch(fresh.error ?? '', /dead tuples/)
    // Over the ratio since 700 s ago (carried from the previous check), no vacuum since: lagging.
    const earlier = new Date(Date.now() - 700_000).toISOString()
    const previous = structuredClone(fresh.measurements) as Json
    previous.dead_tuples.tables.find((t: Json) => t.table === `public.${big}`).over_since = earlier
    const later = await probe(db, { config: graceful, previous })
    const laterMine = (later.measurements as Json).dead_tuples.tables.find((t: Json) =>
      t.table === `public.${big}`
    )
    assert.deepEqual([laterMine.over_since, laterMine.lagging], [earlier, true])
    assert.match(later.error!, /dead tuples that autovacuum has not dealt with for 600 s/)
    // A vacuum since it went over that removed dead tuples starts the clock again (fewer are
    // dead now, though more rows were deleted since).
    await admin`vacuum ${admin(big)}`
    await admin`insert into ${admin(big)} select generate_series(101, 1000)`
    await admin`delete from ${admin(big)} where id > 100`
    await admin`select pg_stat_force_next_flush()`
    const reset = await eventually(
      async () => {
        const r = await probe(db, { config: graceful, previous })
        const t = (r.measurements as Json).dead_tuples.tables.find((x: Json) =>
          x.table === `public.${big}`
        )
        return t && t.last_vacuum ? t : undefined
      },
      10_000,
      'the vacuum to reach the statistics',
    )
    assert.equal(reset.lagging, false, 'vacuumed since it went over: autovacuum is keeping up')
  } finally {
    await admin`drop table if exists ${admin(big)}, ${admin(small)}`
    await Promise.all([admin.end(), db.end()])
  }
})

Deno.test('connection_secret watches another database and always closes its connection', async () => {
  const name = unique('vigil_probe_test')
  const admin = session('probe-test-admin')
  const db = vigilDb()
  try {
    await admin`create database ${admin(name)}`
    const url = new URL(dbUrl())
    url.pathname = `/${name}`
    const result = await probe(db, {
      config: { connection_secret: 'OTHER_DB_URL' },
      secrets: { OTHER_DB_URL: url.toString() },
    })
    const m = result.measurements as Json
    assert.equal(m.database, name)
    assert.equal(m.target, 'database named by secret OTHER_DB_URL')
    assert.equal(m.statements.installed, false)
    assert.match(m.statements.note, /pg_stat_statements is not installed/)
    assert.notEqual(result.status, 'down', result.error)
    assert.equal(metric(result, 'query_duration_p95'), undefined)
    await eventually(
      async () => {
        const [{ n }] =
          await admin`select count(*)::int as n from pg_stat_activity where datname = ${name}`
        return n === 0 ? true : undefined
      },
      5_000,
      "the probe's connection to end",
    )
    await admin`drop database ${admin(name)}`
  } finally {
    await admin`drop database if exists ${admin(name)} with (force)`
    await Promise.all([admin.end(), db.end()])
  }
})

Deno.test('a missing secret, an unreachable database and a wrong password are down without leaking secrets', async () => {
  const db = vigilDb()
  try {
    const missing = await probe(db, { config: { connection_secret: 'NOT_SET_ANYWHERE' } })
    assert.equal(missing.status, 'down')
    assert.match(missing.error!, /secret NOT_SET_ANYWHERE is not set/)

    const password = 'Sup3r-s3cret-Pa55word'
    const unreachable = `postgresql://postgres:${password}@127.0.0.1:1/postgres`
    const t0 = performance.now()
    const down = await probe(db, {
      config: { connection_secret: 'FAR_DB_URL' },
      secrets: { FAR_DB_URL: unreachable },
    })
    assert.ok(performance.now() - t0 < 5_000, 'a refused connection fails fast')
    assert.equal(down.status, 'down')
    assert.match(down.error!, /cannot read the database named by secret FAR_DB_URL/)
    assert.match(down.error!, /ECONNREFUSED|refused/i)

    const wrong = new URL(dbUrl())
    wrong.password = password
    const denied = await probe(db, {
      config: { connection_secret: 'WRONG_DB_URL' },
      secrets: { WRONG_DB_URL: wrong.toString() },
    })
    assert.equal(denied.status, 'down')
    assert.match(denied.error!, /password authentication failed/)

    for (const r of [missing, down, denied]) {
      const text = JSON.stringify(r)
      assert.ok(!text.includes(password), 'no password in the result')
      assert.ok(
        !text.includes(unreachable) && !text.includes(wrong.toString()),
        'no connection string in the result',
      )
    }
  } finally {
    await db.end()
  }
})

Deno.test('an aborted signal makes the probe down at once, before or during its work', async () => {
  // A server that accepts and never answers: the connection hangs until the abort.
  const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const port = (listener.addr as Deno.NetAddr).port
  const accepted: Deno.Conn[] = []
  const serving = (async () => {
    for await (const conn of listener) accepted.push(conn)
  })()
  const silentUrl = `postgresql://postgres:Hidden-pa55@127.0.0.1:${port}/postgres`
  const db = vigilDb()
  const silentDb = postgres(silentUrl, { max: 1, onnotice: () => {}, connect_timeout: 30 })
  try {
    const before = new AbortController()
    before.abort()
    const early = await probe(db, { signal: before.signal })
    assert.equal(early.status, 'down')
    assert.match(early.error!, /cancelled/)

    for (
      const [what, o] of [
        ['its own connection', {
          config: { connection_secret: 'SILENT_DB_URL' },
          secrets: { SILENT_DB_URL: silentUrl },
        }],
        ['the project connection', {}],
      ] as const
    ) {
      const controller = new AbortController()
      const timer = setTimeout(() => controller.abort(), 150)
      const t0 = performance.now()
      const result = await probe(what === 'the project connection' ? silentDb : db, {
        ...o,
        signal: controller.signal,
      })
      clearTimeout(timer)
      const ms = performance.now() - t0
      assert.equal(result.status, 'down', what)
      assert.match(result.error!, /cancelled/, what)
      assert.ok(
        ms < 1_500,
        `${what}: down ${Math.round(ms)} ms after starting, soon after the abort at 150 ms`,
      )
      assert.ok(!JSON.stringify(result).includes('Hidden-pa55'))
    }
  } finally {
    await silentDb.end({ timeout: 0 })
    await db.end()
    listener.close()
    await serving.catch(() => {})
    for (const conn of accepted) {
      try {
        conn.close()
      } catch { /* closed by the client */ }
    }
  }
})

Deno.test("an abort cancels the probe's statement on the server, not only the wait for it", async () => {
  const name = unique('vigil_probe_test')
  const admin = session('probe-test-admin')
  const url = new URL(dbUrl())
  url.pathname = `/${name}`
  await admin`create database ${admin(name)}`
  const holder = session('probe-test-holder', url.toString())
  const db = postgres(url.toString(), {
    max: 1,
    onnotice: () => {},
    connection: { application_name: 'vigil-health-check' },
  })
  const held = gate()
  let holding: Promise<unknown> | undefined
  try {
    // The probe reads pg_extension; a lock on it (in this scratch database only) makes the probe wait.
    const locked = gate()
    holding = holder.begin(async (tx) => {
      await tx`lock table pg_extension in access exclusive mode`
      locked.open()
      await held.opened
    })
    await locked.opened
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), 300)
    const t0 = performance.now()
    const result = await probe(db, { signal: controller.signal })
    clearTimeout(timer)
    assert.equal(result.status, 'down')
    assert.match(result.error!, /cancelled after \d+ ms/)
    assert.ok(performance.now() - t0 < 1_500)
    await eventually(
      async () => {
        const [{ n }] = await admin`
        select count(*)::int as n from pg_stat_activity
        where datname = ${name} and application_name = 'vigil-health-check' and state = 'active'`
        return n === 0 ? true : undefined
      },
      5_000,
      'the cancelled statement to stop on the server',
    )
  } finally {
    held.open()
    await Promise.allSettled([holding])
    // Bounded: postgres.js can wait forever on a connection whose statement was cancelled mid-flight.
    await Promise.all([holder.end({ timeout: 2 }), db.end({ timeout: 2 })])
    await admin`drop database if exists ${admin(name)} with (force)`
    await admin.end()
  }
})

Deno.test('the cache hit ratio is judged over the window since the previous check, once enough blocks were read', async () => {
  const name = unique('vigil_probe_test')
  const admin = session('probe-test-admin')
  const url = new URL(dbUrl())
  url.pathname = `/${name}`
  await admin`create database ${admin(name)}`
  const reader = session('probe-test-reader', url.toString())
  const db = vigilDb()
  const o = {
    config: { connection_secret: 'CACHE_DB_URL', cache_hit_warning_ratio: 0.999 },
    secrets: { CACHE_DB_URL: url.toString() },
  }
  try {
    const fresh = await probe(db, o)
    const cache = (fresh.measurements as Json).cache
    assert.equal(cache.window, 'since_stats_reset')
    assert.ok(cache.blocks_read < 1000, `a fresh database has read ${cache.blocks_read} blocks`)
    assert.equal(cache.judged, false, 'too few reads to judge')
    assert.equal(fresh.status, 'healthy', fresh.error)

    // A table larger than a quarter of shared_buffers is scanned through a small ring: mostly reads.
    await reader`create table big as select g as id, repeat('x', 200) as pad from generate_series(1, 200000) g`
    const before = await probe(db, o)
    await reader`select count(*) from big`
    await reader`select pg_stat_force_next_flush()`
    const result = await eventually(
      async () => {
        const r = await probe(db, { ...o, previous: before.measurements })
        return (r.measurements as Json).cache.blocks_read >= 1000 ? r : undefined
      },
      10_000,
      'the reads to reach pg_stat_database',
    )
    const window = (result.measurements as Json).cache
    assert.equal(window.window, 'since_previous')
    assert.equal(window.judged, true)
    assert.ok(window.hit_ratio < 0.999)
    assert.equal(metric(result, 'cache_hit_ratio'), window.hit_ratio)
    assert.notEqual(result.status, 'healthy')
    assert.match(
      result.error!,
      /cache hit ratio [\d.]+ \(\d+ blocks read since the previous check\)/i,
    )
  } finally {
    await Promise.all([reader.end(), db.end()])
    await admin`drop database if exists ${admin(name)} with (force)`
    await admin.end()
  }
})

Deno.test('a recent reading of a large pg_stat_statements is carried forward; a small one is read again', async () => {
  const db = vigilDb()
  try {
    const first = await probe(db)
    const read = (first.measurements as Json).statements
    assert.equal(read.carried_forward, false)
    assert.equal(read.read_at, (first.measurements as Json).measured_at)

    // Pretend the previous reading found many statements: reading them again within the refresh
    // interval would cost the database milliseconds for numbers that barely move.
    const large = {
      ...first.measurements,
      statements: { ...read, statements: 5000, calls: 20_000 },
    }
    const carried = await probe(db, { previous: large })
    const st = (carried.measurements as Json).statements
    assert.equal(st.carried_forward, true)
    assert.equal(st.read_at, read.read_at)
    assert.equal(st.statements, 5000)
    assert.equal(
      st.p95_judged,
      read.query_duration_p95_ms !== null,
      'judged again from the carried numbers',
    )
    assert.equal(metric(carried, 'query_duration_p95'), read.query_duration_p95_ms ?? undefined)

    const small = { ...first.measurements, statements: { ...read, statements: 10 } }
    const again = await probe(db, { previous: small })
    assert.equal(
      (again.measurements as Json).statements.carried_forward,
      false,
      'few statements: read every time',
    )
    const changed = await probe(db, { previous: large, thresholds: { slow_query_ms: 250 } })
    assert.equal(
      (changed.measurements as Json).statements.carried_forward,
      false,
      'a new slow_query_ms reads again',
    )
    const stale = {
      ...large,
      statements: { ...large.statements, read_at: new Date(Date.now() - 600_000).toISOString() },
    }
    const old = await probe(db, { previous: stale })
    assert.equal(
      (old.measurements as Json).statements.carried_forward,
      false,
      'an old reading is read again',
    )
  } finally {
    await db.end()
  }
})

Deno.test('a table changed far more than its statistics know is reported as stale statistics', async () => {
  const table = unique('vigil_probe_stale')
  const admin = session('probe-test-stale')
  const db = vigilDb()
  try {
    await admin`create table ${
      admin(table)
    } (id int primary key, v int) with (autovacuum_enabled = false)`
    await admin`insert into ${admin(table)} select g, 0 from generate_series(1, 20000) g`
    await admin`analyze ${admin(table)}`
    await admin`update ${admin(table)} set v = 1`
    await admin`select pg_stat_force_next_flush()`
    const config = { stale_stats_seconds: 0 }
    const result = await eventually(
      async () => {
        const r = await probe(db, { config })
        return (r.measurements as Json).stale_statistics.tables.some((t: Json) =>
            t.table === `public.${table}`
          )
          ? r
          : undefined
      },
      10_000,
      'the changes to reach the statistics',
    )
    const stale = (result.measurements as Json).stale_statistics
    const mine = stale.tables.find((t: Json) => t.table === `public.${table}`)
    assert.ok(mine.changed >= 20000 && mine.last_analyze !== null)
    assert.equal(stale.older_than_seconds, 0)
    assert.match(result.error!, /stale statistics/)
    // By default only statistics older than an hour count: this one was analyzed just now.
    const fresh = await probe(db, {})
    assert.ok(
      !(fresh.measurements as Json).stale_statistics.tables.some((t: Json) =>
        t.table === `public.${table}`
      ),
      'analyzed within the hour: not stale yet',
    )
  } finally {
    await admin`drop table if exists ${admin(table)}`
    await Promise.all([admin.end(), db.end()])
  }
})
