// The postgres heal strategies against a real Postgres 15: real lock chains, idle sessions,
// runaway statements and dead tuples. Each test works in a scratch database of its own, created
// from template0 (so without Vigil's schema, like any target), with scratch login roles: the
// strategies only ever consider sessions of their target database, so nothing here can touch
// another test's sessions. Everything is dropped after each test.
import assert from 'node:assert/strict'
import postgres from 'postgres'
import { liveSessions, signalSession } from '../../supabase/functions/_shared/heal/sessions.ts'
import {
  CancelRunawayQueryConfig,
  cancelRunawayQueryStrategy,
} from '../../supabase/functions/_shared/heal/strategies/cancel-runaway-query.ts'
import {
  KillIdleConnectionsConfig,
  killIdleConnectionsStrategy,
} from '../../supabase/functions/_shared/heal/strategies/kill-idle-connections.ts'
import {
  TerminateBlockerConfig,
  terminateBlockerStrategy,
} from '../../supabase/functions/_shared/heal/strategies/terminate-blocker.ts'
import {
  VacuumAnalyzeConfig,
  vacuumAnalyzeStrategy,
} from '../../supabase/functions/_shared/heal/strategies/vacuum-analyze.ts'
import {
  AnalyzeTablesConfig,
  analyzeTablesStrategy,
} from '../../supabase/functions/_shared/heal/strategies/analyze-tables.ts'
import { HealError, NotYet } from '../../supabase/functions/_shared/heal/types.ts'
import type { HealContext, Plan, Problem } from '../../supabase/functions/_shared/heal/types.ts'
import type { ProblemKind } from '../../shared/kinds.ts'
import { eventually, testStack } from '../_env.ts'
import { baseHealContext, dbUrl, uniqueId } from './_fixtures.ts'

/** What the engine hands every strategy (vigil.settings.protected_roles' defaults and more). */
const PROTECTED_ROLES = [
  'supabase_admin',
  'supabase_auth_admin',
  'supabase_storage_admin',
  'supabase_realtime_admin',
  'supabase_replication_admin',
  'supabase_read_only_user',
  'authenticator',
  'pgbouncer',
]

// Plans are open JSON by contract; the tests read them by path.
type Json = any
type Sql = postgres.Sql<any>
/** agent: vigil_agent, Vigil's own role, whatever its sessions call themselves. */
type Role = 'app' | 'sys' | 'postgres' | 'agent'

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms))
}

/** A promise with its resolver, to hold a transaction open until the test lets it go. */
function gate() {
  let open!: () => void
  const opened = new Promise<void>((r) => (open = r))
  return { open, opened }
}

/**
 * The statements a test leaves running while a strategy acts. Each may reject at any moment (its
 * session is ended), so each is handled from the start; the test still awaits the ones it checks.
 */
function tracked() {
  const all: Promise<unknown>[] = []
  return {
    push(...ps: Promise<unknown>[]) {
      for (const p of ps) {
        p.catch(() => {})
        all.push(p)
      }
    },
    settle: () => Promise.allSettled(all),
  }
}

interface Scratch {
  database: string
  /** An ordinary login role, as an application connects. */
  app: string
  /** Another ordinary login role, which some tests put in protectedRoles. */
  sys: string
  /** Superuser in the scratch database: sets up and observes. */
  admin: Sql
  /** Vigil's own database (ctx.db). */
  vigil: Sql
  /** The target as the engine connects it: two connections, prepare: false, 'vigil-heal'. */
  target: Sql
  /** A client of one connection on the scratch database, ended by close(). */
  session(application: string, role?: Role, max?: number): Sql
  close(): Promise<void>
}

async function scratch(): Promise<Scratch> {
  const id = uniqueId()
  const database = `heal_test_${id}`
  const app = `heal_test_app_${id}`
  const sys = `heal_test_sys_${id}`
  const password = uniqueId()
  const root = postgres(dbUrl(), { max: 1, onnotice: () => {} })
  await root.unsafe(`create database ${database} template template0`)
  await root.unsafe(`create role ${app} login password '${password}'`)
  await root.unsafe(`create role ${sys} login password '${password}'`)
  const url = (role: Role = 'postgres') => {
    const u = new URL(dbUrl())
    u.pathname = `/${database}`
    if (role === 'agent') {
      const agent = new URL(testStack().agentDbUrl)
      u.username = agent.username
      u.password = agent.password
    } else if (role !== 'postgres') {
      u.username = role === 'app' ? app : sys
      u.password = password
    }
    return u.toString()
  }
  const clients: Sql[] = []
  const client = (role: Role, options: postgres.Options<Record<string, never>>) => {
    const c = postgres(url(role), { onnotice: () => {}, ...options }) as Sql
    clients.push(c)
    return c
  }
  const admin = client('postgres', { max: 2, connection: { application_name: 'heal-test-admin' } })
  await admin.unsafe(
    `alter default privileges in schema public grant all on tables to ${app}, ${sys}, vigil_agent`,
  )
  const vigil = postgres(dbUrl(), {
    max: 1,
    onnotice: () => {},
    connection: { application_name: 'vigil-auto-heal' },
  }) as Sql
  clients.push(vigil)
  const target = client('postgres', {
    max: 2,
    prepare: false,
    connect_timeout: 5,
    connection: { application_name: 'vigil-heal' },
  })
  return {
    database,
    app,
    sys,
    admin,
    vigil,
    target,
    session: (application, role = 'app', max = 1) =>
      client(role, { max, connection: { application_name: application } }),
    /** Ends every client (statements still waiting are cut off), then drops it all. */
    async close() {
      await Promise.allSettled(clients.map((c) => c.end({ timeout: 1 })))
      // force: ends whatever session a failed test left behind in it.
      await root.unsafe(`drop database if exists ${database} with (force)`)
      await root.unsafe(`drop role if exists ${app}`)
      await root.unsafe(`drop role if exists ${sys}`)
      await root.end()
    },
  }
}

interface ContextOptions {
  dryRun?: boolean
  signal?: AbortSignal
  target?: Sql
  protectedRoles?: string[]
  protectedApplications?: string[]
}

function healContext(s: Scratch, o: ContextOptions = {}): HealContext {
  return baseHealContext({
    service: {
      id: crypto.randomUUID(),
      name: s.database,
      kind: 'postgres',
      environment: 'dev',
      config: {},
    },
    db: s.vigil,
    target: o.target ?? s.target,
    dryRun: o.dryRun ?? false,
    signal: o.signal ?? new AbortController().signal,
    reprobe: () => Promise.resolve({ status: 'healthy', measurements: {} }),
    protectedRoles: o.protectedRoles ?? PROTECTED_ROLES,
    protectedApplications: o.protectedApplications ?? [],
  })
}

function problem(kind: ProblemKind): Problem {
  return { kind, reason: 'from the test', evidence: {} }
}

async function pidOf(sql: Sql): Promise<number> {
  const [{ pid }] = await sql`select pg_backend_pid() as pid`
  return pid
}

/** The exact name of a backend, as the strategies record it. */
async function backendOf(s: Scratch, pid: number): Promise<{ pid: number; backend_start: string }> {
  const [row] = await s.admin`
    select pid, to_json(backend_start) #>> '{}' as backend_start from pg_stat_activity where pid = ${pid}`
  assert.ok(row, `pid ${pid} is alive`)
  return { pid: row.pid, backend_start: row.backend_start }
}

/** Waits until every pid waits on a lock. */
async function blocked(s: Scratch, pids: number[]): Promise<void> {
  await eventually(
    async () => {
      const rows = await s.admin`
        select pid from pg_stat_activity where wait_event_type = 'Lock' and pid in ${s.admin(pids)}`
      return rows.length === pids.length ? true : undefined
    },
    10_000,
    `pids ${pids.join(', ')} to wait on a lock`,
  )
}

/** A table with one row to fight over, writable by the scratch roles. */
async function contested(s: Scratch, name = 'contested'): Promise<string> {
  await s.admin`create table ${s.admin(name)} (id int primary key, v int not null)`
  await s.admin`insert into ${s.admin(name)} values (1, 0)`
  return name
}

async function planOf(
  strategy: { plan(p: Problem, ctx: HealContext, config: any): Promise<Plan | null> },
  kind: ProblemKind,
  ctx: HealContext,
  config: unknown,
  what: string,
): Promise<Plan> {
  return await eventually(
    async () => {
      try {
        return (await strategy.plan(problem(kind), ctx, config)) ?? undefined
      } catch (error) {
        // Not yet (no statement past max_seconds, no session idle long enough): ask again.
        if (error instanceof NotYet) return undefined
        throw error
      }
    },
    10_000,
    what,
  )
}

function sorted(xs: number[]): number[] {
  return [...xs].sort((a, b) => a - b)
}

function code(err: unknown): string | undefined {
  return (err as { code?: string } | undefined)?.code
}

Deno.test('terminate_blocker terminates an idle-in-transaction root at once, and its waiters proceed', async () => {
  const s = await scratch()
  const pending = tracked()
  try {
    const table = await contested(s)
    // A raw transaction on a client of one connection, left idle holding its row lock.
    const a = s.session('heal-test-a')
    const b = s.session('heal-test-b')
    const c = s.session('heal-test-c')
    const aPid = await pidOf(a)
    await a`begin`
    await a`update ${a(table)} set v = 1 where id = 1`
    const [bPid, cPid] = [await pidOf(b), await pidOf(c)]
    const bUpdate = b`update ${b(table)} set v = 2 where id = 1 returning v`.execute()
    pending.push(bUpdate)
    await blocked(s, [bPid])
    const cUpdate = c`update ${c(table)} set v = 3 where id = 1 returning v`.execute()
    pending.push(cUpdate)
    await blocked(s, [bPid, cPid])
    const aBackend = await backendOf(s, aPid)

    const ctx = healContext(s)
    const config = TerminateBlockerConfig.parse({ min_wait_seconds: 0.3 })
    const plan = await planOf(terminateBlockerStrategy, 'lock_contention', ctx, config, 'a plan')
    const t = plan.target as Json
    assert.equal(plan.action, 'terminate_backend')
    assert.equal(t.database, s.database)
    assert.equal(t.roots.length, 1, 'one root: B waits behind A, C behind both')
    const [root] = t.roots
    assert.deepEqual({ pid: root.pid, backend_start: root.backend_start }, aBackend)
    assert.equal(root.state, 'idle in transaction')
    assert.equal(root.application_name, 'heal-test-a')
    assert.equal(root.usename, s.app)
    assert.match(root.query, /update .* set v = 1/)
    assert.deepEqual(sorted(root.waiters.map((w: Json) => w.pid)), sorted([bPid, cPid]))
    assert.ok(root.longest_wait_seconds >= 0.3)
    assert.equal((plan.before as Json).blocked_sessions, 2)
    assert.match(plan.reason, new RegExp(`pid ${aPid} \\(idle in transaction`))

    const acted = await terminateBlockerStrategy.act(plan, ctx, config)
    assert.match(acted.detail, new RegExp(`^Terminated pid ${aPid}`))
    assert.doesNotMatch(acted.detail, /cancel/, 'an idle-in-transaction root has nothing to cancel')
    assert.equal(acted.undo, undefined)
    assert.deepEqual(await liveSessions(s.admin, [aBackend]), [], 'A is gone')

    const [[bRow], [cRow]] = await Promise.all([bUpdate, cUpdate])
    assert.equal(bRow.v, 2, "B's update completed")
    assert.equal(cRow.v, 3, "C's update completed")
    const verified = await terminateBlockerStrategy.verify(plan, acted, ctx, config)
    assert.equal(verified.improved, true, verified.detail)
    assert.equal(verified.worse, false)
    assert.equal((verified.after as Json).blocked_sessions, 0)
    assert.deepEqual((verified.after as Json).waiters_still_blocked, [])
    assert.equal(terminateBlockerStrategy.undo, undefined, 'a terminated session cannot be revived')

    const [{ v }] = await s.admin`select v from ${s.admin(table)} where id = 1`
    assert.equal(v, 3, "A's update was rolled back; B's then C's were applied")
  } finally {
    await s.close()
    await pending.settle()
  }
})

Deno.test('terminate_blocker cancels an active root first: its transaction aborts, its locks go, it lives on', async () => {
  const s = await scratch()
  const pending = tracked()
  try {
    const table = await contested(s)
    const a = s.session('heal-test-a')
    const b = s.session('heal-test-b')
    const locked = gate()
    let aPid = 0
    const aTx = a.begin(async (tx) => {
      aPid = await pidOf(tx as unknown as Sql)
      await tx`update ${tx(table)} set v = 1 where id = 1`
      locked.open()
      await tx`select pg_sleep(30)`
    })
    pending.push(aTx)
    await locked.opened
    const bPid = await pidOf(b)
    const bUpdate = b`update ${b(table)} set v = 2 where id = 1 returning v`.execute()
    pending.push(bUpdate)
    await blocked(s, [bPid])
    const aBackend = await backendOf(s, aPid)

    const ctx = healContext(s)
    const config = TerminateBlockerConfig.parse({ min_wait_seconds: 0.3, cancel_grace_ms: 3000 })
    const plan = await planOf(terminateBlockerStrategy, 'lock_contention', ctx, config, 'a plan')
    const [root] = (plan.target as Json).roots
    assert.equal(root.pid, aPid)
    assert.equal(root.state, 'active')
    assert.match(root.query, /pg_sleep/)

    const acted = await terminateBlockerStrategy.act(plan, ctx, config)
    assert.match(
      acted.detail,
      new RegExp(`^Cancelled the statement of pid ${aPid} .*, which then released its locks\\.$`),
    )
    await assert.rejects(aTx, (err) => code(err) === '57014', "A's statement was cancelled")
    assert.deepEqual(await liveSessions(s.admin, [aBackend]), [aBackend], 'A was not terminated')
    const [bRow] = await bUpdate
    assert.equal(bRow.v, 2)
    const verified = await terminateBlockerStrategy.verify(plan, acted, ctx, config)
    assert.equal(verified.improved, true, verified.detail)
    assert.equal(verified.worse, false)
  } finally {
    await s.close()
    await pending.settle()
  }
})

Deno.test('terminate_blocker terminates an active root that keeps its locks after the cancel', async () => {
  const s = await scratch()
  const pending = tracked()
  try {
    const table = await contested(s)
    // The slow statement runs inside a savepoint (as ORMs nest transactions): its cancel aborts
    // the savepoint only, and the row lock taken before it stays held.
    const a = s.session('heal-test-a')
    const b = s.session('heal-test-b')
    const aPid = await pidOf(a)
    await a`begin`
    await a`update ${a(table)} set v = 1 where id = 1`
    await a`savepoint slow`
    const aSleep = a`select pg_sleep(30)`.execute()
    pending.push(aSleep)
    const bPid = await pidOf(b)
    const bUpdate = b`update ${b(table)} set v = 2 where id = 1 returning v`.execute()
    pending.push(bUpdate)
    await blocked(s, [bPid])
    const aBackend = await backendOf(s, aPid)

    const ctx = healContext(s)
    const config = TerminateBlockerConfig.parse({ min_wait_seconds: 0.3, cancel_grace_ms: 300 })
    const plan = await planOf(terminateBlockerStrategy, 'lock_contention', ctx, config, 'a plan')
    assert.equal((plan.target as Json).roots[0].state, 'active')

    const started = Date.now()
    const acted = await terminateBlockerStrategy.act(plan, ctx, config)
    assert.match(
      acted.detail,
      new RegExp(`^Cancelled the statement of pid ${aPid} .*, then terminated it as its waiters`),
    )
    assert.ok(Date.now() - started >= 300, 'the cancel was given cancel_grace_ms')
    await assert.rejects(aSleep, (err) => code(err) === '57014', 'the cancel came first')
    assert.deepEqual(await liveSessions(s.admin, [aBackend]), [])
    const [bRow] = await bUpdate
    assert.equal(bRow.v, 2)
    const verified = await terminateBlockerStrategy.verify(plan, acted, ctx, config)
    assert.equal(verified.improved, true, verified.detail)
  } finally {
    await s.close()
    await pending.settle()
  }
})

Deno.test('terminate_blocker never chooses a protected root, even when it is the only one', async () => {
  const s = await scratch()
  const pending = tracked()
  try {
    // Four roots, each holding a row of its own table, each with one waiter.
    const roots: { name: string; role: Role; application: string; reason: RegExp }[] = [
      {
        name: 'by_vigil',
        role: 'agent',
        application: 'agent-worker',
        reason: /a Vigil session \(role vigil_agent\)/,
      },
      {
        name: 'by_sys',
        role: 'sys',
        application: 'heal-test-sys',
        reason: /a protected role \(heal_test_sys_/,
      },
      {
        name: 'by_super',
        role: 'postgres',
        application: 'heal-test-super',
        reason: /a superuser session \(postgres\)/,
      },
      {
        name: 'by_batch',
        role: 'app',
        application: 'heal-test-batch',
        reason: /a protected application \(heal-test-batch\)/,
      },
    ]
    const rootPids: number[] = []
    const waiterPids: number[] = []
    for (const r of roots) {
      const table = await contested(s, r.name)
      const holder = s.session(r.application, r.role)
      rootPids.push(await pidOf(holder))
      await holder`begin`
      await holder`update ${holder(table)} set v = 1 where id = 1`
      const waiter = s.session(`heal-test-waiter-${r.name}`)
      waiterPids.push(await pidOf(waiter))
      pending.push(waiter`update ${waiter(table)} set v = 2 where id = 1`.execute())
    }
    await blocked(s, waiterPids)
    await sleep(400)

    const config = TerminateBlockerConfig.parse({ min_wait_seconds: 0.3 })
    const ctx = healContext(s, {
      protectedRoles: [...PROTECTED_ROLES, s.sys],
      protectedApplications: ['heal-test-batch'],
    })
    const refused = await terminateBlockerStrategy.plan(problem('lock_contention'), ctx, config)
      .then(() => undefined, (err) => err)
    assert.ok(refused instanceof HealError, `plan refuses: ${refused}`)
    assert.match(
      refused.message,
      /4 sessions wait on locks .* behind root blockers that may not be touched/,
    )
    for (const [i, r] of roots.entries()) {
      assert.match(refused.message, new RegExp(`pid ${rootPids[i]}: ${r.reason.source}`))
    }

    // A plan made elsewhere (or forged) naming them gets nowhere: signalling re-checks protection.
    const backends = await Promise.all(rootPids.map((pid) => backendOf(s, pid)))
    const forged: Plan = {
      action: 'terminate_backend',
      target: {
        database: s.database,
        roots: backends.map((b, i) => ({
          ...b,
          usename: null,
          application_name: roots[i].application,
          state: 'idle in transaction',
          query: null,
          waiters: [],
          longest_wait_seconds: 1,
        })),
      },
      reason: 'forged',
      before: { blocked_sessions: 4 },
    }
    const notActed = await terminateBlockerStrategy.act(forged, ctx, config)
      .then(() => undefined, (err) => err)
    assert.ok(notActed instanceof HealError, `act refuses: ${notActed}`)
    assert.match(notActed.message, /^Nothing to act on after all: /)
    for (const r of roots) assert.match(notActed.message, r.reason)
    assert.equal((await liveSessions(s.admin, backends)).length, 4, 'every root is still there')
    await blocked(s, waiterPids)

    // The same chains without those protect lists: the ordinary roles' roots are fair game.
    const plain = await terminateBlockerStrategy.plan(
      problem('lock_contention'),
      healContext(s),
      config,
    )
    assert.ok(plain)
    assert.deepEqual(
      sorted((plain.target as Json).roots.map((r: Json) => r.pid)),
      sorted([rootPids[1], rootPids[3]]),
      'only the sys and batch roots; Vigil and the superuser stay protected by themselves',
    )
  } finally {
    await s.close()
    await pending.settle()
  }
})

Deno.test('signalSession signals only the exact backend, statement or idle spell it was given', async () => {
  const s = await scratch()
  const pending = tracked()
  try {
    const ctx = healContext(s)
    const x = s.session('heal-test-x')
    const xBackend = await backendOf(s, await pidOf(x))

    // A reused pid: same number, another backend_start.
    const reused = { pid: xBackend.pid, backend_start: '2000-01-01T00:00:00+00:00' }
    assert.deepEqual(await signalSession(s.target, reused, 'terminate', ctx), {
      outcome: 'replaced',
    })
    assert.deepEqual(await liveSessions(s.admin, [xBackend]), [xBackend], 'x was not touched')
    const gone = { pid: 2_147_483_000, backend_start: xBackend.backend_start }
    assert.deepEqual(await signalSession(s.target, gone, 'terminate', ctx), { outcome: 'gone' })

    // An idle spell that has ended since.
    const [{ since }] = await s.admin`
      select to_json(state_change) #>> '{}' as since from pg_stat_activity where pid = ${xBackend.pid}`
    await x`select 2`
    const stale = { ...xBackend, idle_since: since }
    assert.deepEqual(await signalSession(s.target, stale, 'terminate', ctx), {
      outcome: 'moved_on',
    })
    assert.deepEqual(await liveSessions(s.admin, [xBackend]), [xBackend])

    // A statement other than the one planned is not cancelled; the planned one is.
    const sleeping = x`select pg_sleep(30)`.execute()
    pending.push(sleeping)
    const [{ started }] = await eventually(
      async () => {
        const rows = await s.admin`
          select to_json(query_start) #>> '{}' as started from pg_stat_activity
          where pid = ${xBackend.pid} and state = 'active' and query like '%pg_sleep(30)%'
            -- Running for a while: not the describe round-trip postgres.js makes before it.
            and clock_timestamp() - query_start > interval '200 milliseconds'`
        return rows.length ? rows : undefined
      },
      5000,
      'x to run its statement',
    )
    const earlier = { ...xBackend, query_start: '2000-01-01T00:00:00+00:00' }
    assert.deepEqual(await signalSession(s.target, earlier, 'cancel', ctx), { outcome: 'moved_on' })
    await sleep(100)
    const [{ state }] = await s
      .admin`select state from pg_stat_activity where pid = ${xBackend.pid}`
    assert.equal(state, 'active', 'the statement still runs')
    const planned = { ...xBackend, query_start: started }
    assert.deepEqual(await signalSession(s.target, planned, 'cancel', ctx), {
      outcome: 'signalled',
    })
    await assert.rejects(sleeping, (err) => code(err) === '57014')

    // Its own session: never, whoever it is.
    const own = s.session('heal-test-own', 'postgres')
    const ownBackend = await backendOf(s, await pidOf(own))
    const self = await signalSession(own, ownBackend, 'terminate', ctx)
    assert.equal(self.outcome, 'protected')
    assert.match(self.reason!, /the heal's own session/)

    // A role that cannot see another role's sessions in full cannot name them: left alone.
    const y = s.session('heal-test-y', 'sys')
    const yBackend = await backendOf(s, await pidOf(y))
    const weak = s.session('heal-test-weak', 'app')
    const unseen = await signalSession(weak, yBackend, 'terminate', ctx)
    assert.equal(unseen.outcome, 'protected')
    assert.match(unseen.reason!, /not visible to this role/)
    // One that sees them but may not signal them gets a HealError, not a raw error.
    await s.admin.unsafe(`grant pg_read_all_stats to ${s.app}`)
    await assert.rejects(
      signalSession(weak, yBackend, 'terminate', ctx),
      (err) =>
        err instanceof HealError && /^permission denied to terminate pid \d+/.test(err.message),
    )
    assert.deepEqual(await liveSessions(s.admin, [yBackend]), [yBackend])
  } finally {
    await s.close()
    await pending.settle()
  }
})

Deno.test('kill_idle_connections ends the longest-idle sessions first, just enough, never protected ones', async () => {
  const s = await scratch()
  try {
    // Oldest of all, but protected: Vigil's, a protected role's, a superuser's.
    const protectedPids: number[] = []
    for (
      const [app, role] of [['agent-pool', 'agent'], ['heal-test-sys', 'sys'], [
        'heal-test-super',
        'postgres',
      ]] as const
    ) {
      protectedPids.push(await pidOf(s.session(app, role)))
    }
    // Six ordinary sessions going idle one after the other; the second idles in a transaction.
    // The first calls itself 'vigil-…': a name gains no immunity, only Vigil's role does.
    const mine: { pid: number; backend_start: string }[] = []
    for (let i = 1; i <= 6; i++) {
      const c = s.session(i === 1 ? 'vigil-impostor' : `heal-test-idle-${i}`)
      mine.push(await backendOf(s, await pidOf(c)))
      if (i === 2) await c`begin`
      await sleep(20)
    }
    await sleep(1100)
    const young = await pidOf(s.session('heal-test-young'))

    // Set the trigger and target around the server's current usage so that three must go
    // (the heal's own connection counts: it is opened first).
    await s.target`select 1`
    const [u] = await s.admin`
      select current_setting('max_connections')::int
               - current_setting('superuser_reserved_connections')::int as available,
             (select count(*) from pg_stat_activity where backend_type = 'client backend')::int as used`
    const config = KillIdleConnectionsConfig.parse({
      trigger_pct: (100 * (u.used - 1)) / u.available,
      target_pct: (100 * (u.used - 2.5)) / u.available,
      idle_minutes: 1 / 60,
    })
    const ctx = healContext(s, { protectedRoles: [...PROTECTED_ROLES, s.sys] })
    const plan = await killIdleConnectionsStrategy.plan(
      problem('connection_exhaustion'),
      ctx,
      config,
    )
    assert.ok(plan, 'usage is past the trigger')
    const before = plan.before as Json
    const chosen = (plan.target as Json).sessions as Json[]
    // Other databases' sessions count too and may come and go: judge against the plan's own count.
    const allowed = Math.ceil((config.target_pct * before.available) / 100) - 1
    assert.equal(before.needed, before.used - allowed)
    assert.equal(chosen.length, Math.min(before.needed, mine.length))
    if (before.used === u.used) assert.equal(chosen.length, 3, 'just enough: three')
    assert.deepEqual(
      chosen.map((c) => ({ pid: c.pid, backend_start: c.backend_start })),
      mine.slice(0, chosen.length),
      'the longest idle first',
    )
    assert.equal(chosen[1].state, 'idle in transaction')
    for (const pid of [...protectedPids, young]) {
      assert.ok(!chosen.some((c) => c.pid === pid), `pid ${pid} is not chosen`)
    }
    assert.match(plan.reason, /end the \d+ sessions idle longest/)

    const acted = await killIdleConnectionsStrategy.act(plan, ctx, config)
    assert.match(acted.detail, new RegExp(`^Terminated ${chosen.length} idle sessions`))
    assert.deepEqual(await liveSessions(s.admin, chosen), [])
    const rest = mine.slice(chosen.length)
    assert.deepEqual(await liveSessions(s.admin, rest), rest, 'the others live on')
    const verified = await killIdleConnectionsStrategy.verify(plan, acted, ctx, config)
    assert.equal(verified.improved, true, verified.detail)
    assert.deepEqual((verified.after as Json).sessions_still_alive, [])
    assert.ok((verified.after as Json).used <= before.used - chosen.length + 2)
  } finally {
    await s.close()
  }
})

Deno.test('cancel_runaway_query cancels a statement past max_seconds (57014), not a protected one', async () => {
  const s = await scratch()
  const pending = tracked()
  try {
    const r = s.session('heal-test-runaway')
    const v = s.session('agent-worker', 'agent')
    const rPid = await pidOf(r)
    const vPid = await pidOf(v)
    const runaway = r`select pg_sleep(60)`.execute()
    const vigils = v`select pg_sleep(60)`.execute()
    pending.push(runaway, vigils)

    const ctx = healContext(s)
    const config = CancelRunawayQueryConfig.parse({ max_seconds: 1 })
    const plan = await planOf(cancelRunawayQueryStrategy, 'runaway_query', ctx, config, 'a runaway')
    assert.equal(plan.action, 'cancel_backend')
    const statements = (plan.target as Json).statements
    assert.deepEqual(statements.map((x: Json) => x.pid), [rPid])
    assert.ok(statements[0].seconds >= 1)
    assert.match(statements[0].query, /pg_sleep\(60\)/)
    assert.ok(statements[0].query_start)
    assert.deepEqual((plan.before as Json).spared, [
      `pid ${vPid}: a Vigil session (role vigil_agent)`,
    ])

    const acted = await cancelRunawayQueryStrategy.act(plan, ctx, config)
    assert.match(acted.detail, new RegExp(`^Cancelled 1 statement \\(pid ${rPid} after`))
    await assert.rejects(runaway, (err) => code(err) === '57014', 'the client gets 57014')
    const verified = await cancelRunawayQueryStrategy.verify(plan, acted, ctx, config)
    assert.equal(verified.improved, true, verified.detail)
    assert.deepEqual((verified.after as Json).still_running, [])
    const [{ state }] = await s.admin`select state from pg_stat_activity where pid = ${vPid}`
    assert.equal(state, 'active', "Vigil's statement still runs")
  } finally {
    await s.admin`select pg_cancel_backend(pid) from pg_stat_activity
                  where datname = ${s.database} and query like 'select pg_sleep(60)%'`
      .catch(() => {})
    await s.close()
    await pending.settle()
  }
})

Deno.test('cancel_runaway_query leaves alone a statement that ended after the plan, and its successor', async () => {
  const s = await scratch()
  const pending = tracked()
  try {
    const r = s.session('heal-test-runaway')
    const rPid = await pidOf(r)
    const first = r`select pg_sleep(60)`.execute()
    pending.push(first)
    const ctx = healContext(s)
    const config = CancelRunawayQueryConfig.parse({ max_seconds: 0.5 })
    const plan = await planOf(cancelRunawayQueryStrategy, 'runaway_query', ctx, config, 'a runaway')
    await s.admin`select pg_cancel_backend(${rPid}::int)`
    await assert.rejects(first)
    const successor = r`select pg_sleep(60)`.execute()
    pending.push(successor)
    await eventually(async () => {
      const rows = await s
        .admin`select 1 from pg_stat_activity where pid = ${rPid} and state = 'active'`
      return rows.length ? true : undefined
    })
    await assert.rejects(
      cancelRunawayQueryStrategy.act(plan, ctx, config),
      (err) => err instanceof HealError && /finished that statement/.test(err.message),
    )
    await sleep(100)
    const [{ state }] = await s.admin`select state from pg_stat_activity where pid = ${rPid}`
    assert.equal(state, 'active', 'the successor still runs')
  } finally {
    await s.admin`select pg_cancel_backend(pid) from pg_stat_activity
                  where datname = ${s.database} and query like 'select pg_sleep(60)%'`
      .catch(() => {})
    await s.close()
    await pending.settle()
  }
})

Deno.test('vacuum_analyze vacuums the worst table, its name quoted safely, and dead tuples fall', async () => {
  const s = await scratch()
  try {
    const bloated = 'Bloat.Table "x"'
    const writer = s.session('heal-test-writer', 'postgres')
    const make = async (name: string, rows: number, keep: number) => {
      // Quoted by hand: postgres.js would split this identifier on its dot.
      const quoted = `"${name.replaceAll('"', '""')}"`
      await writer.unsafe(
        `create table ${quoted} (id int primary key, pad text) with (autovacuum_enabled = false)`,
      )
      await writer.unsafe(
        `insert into ${quoted} select g, repeat('x', 50) from generate_series(1, ${rows}) g`,
      )
      await writer.unsafe(`delete from ${quoted} where id > ${keep}`)
    }
    await make(bloated, 5000, 1000) // 80 % dead: planned
    await make('few_rows', 500, 0) // 100 % dead but under min_rows
    await make('mostly_live', 5000, 4500) // 10 % dead
    await writer`select pg_stat_force_next_flush()`

    const ctx = healContext(s)
    const config = VacuumAnalyzeConfig.parse({})
    const plan = await planOf(
      vacuumAnalyzeStrategy,
      'dead_tuples',
      ctx,
      config,
      'the dead tuples to show',
    )
    const tables = (plan.target as Json).tables
    assert.equal(plan.action, 'vacuum_analyze')
    assert.deepEqual(tables.map((t: Json) => [t.schema, t.table]), [['public', bloated]])
    assert.equal(tables[0].dead, 4000)
    assert.equal(tables[0].ratio, 0.8)
    assert.equal((plan.before as Json).dead_total, 4000)

    // As the engine connects (prepare: false, a pool of two), VACUUM runs outside a transaction.
    const acted = await vacuumAnalyzeStrategy.act(plan, ctx, config)
    assert.match(
      acted.detail,
      /^VACUUM \(ANALYZE\) ran on public\.Bloat\.Table "x" \(\d+\.\d s\)\.$/,
    )
    const verified = await vacuumAnalyzeStrategy.verify(plan, acted, ctx, config)
    assert.equal(verified.improved, true, verified.detail)
    const [after] = (verified.after as Json).tables
    assert.equal(after.dead, 0)
    assert.equal(after.live, 1000, 'ANALYZE counted the live rows')
    assert.match(verified.detail, /^Dead tuples fell from 4000 to 0 over 1 table\.$/)
    const [{ vacuumed }] = await s.admin`
      select last_vacuum is not null and last_analyze is not null as vacuumed
      from pg_stat_user_tables where relname = ${bloated}`
    assert.equal(vacuumed, true)
    const [{ untouched }] = await s.admin`
      select count(*)::int as untouched from pg_stat_user_tables
      where relname in ('few_rows', 'mostly_live') and last_vacuum is null`
    assert.equal(untouched, 2, 'the other tables were left alone')

    // A role that owns none of the bloated tables cannot vacuum them: it says so at the plan.
    await make('still_bloated', 5000, 100)
    await writer`select pg_stat_force_next_flush()`
    const weak = s.session('heal-test-weak', 'app', 2)
    await eventually(async () => {
      const rows = await s
        .admin`select 1 from pg_stat_user_tables where relname = 'still_bloated' and n_dead_tup > 0`
      return rows.length ? true : undefined
    })
    await assert.rejects(
      vacuumAnalyzeStrategy.plan(problem('dead_tuples'), healContext(s, { target: weak }), config),
      (err) =>
        err instanceof HealError &&
        /may vacuum none of them: public\.still_bloated \(owner postgres\)/.test(err.message),
    )
  } finally {
    await s.close()
  }
})

Deno.test('vacuum_analyze as the agent, which owns nothing: pg_cron vacuums the table through vigil.request_vacuum', async () => {
  // On Vigil's own database (vigil.request_vacuum lives there), a table postgres owns.
  const admin = postgres(dbUrl(), { max: 1, onnotice: () => {} })
  const agent = postgres(testStack().agentDbUrl, { max: 2, prepare: false, onnotice: () => {} })
  const table = `vac_req_${uniqueId()}`
  try {
    await admin.unsafe(`
      create table public.${table} (id int primary key, pad text) with (autovacuum_enabled = false);
      insert into public.${table} select g, repeat('x', 50) from generate_series(1, 5000) g;
      delete from public.${table} where id > 100;
      select pg_stat_force_next_flush();`)
    // pg_cron 1.4 runs the job at the next minute: the heal's deadline leaves room for it.
    const deadline = AbortSignal.timeout(90_000)
    const ctx = baseHealContext({
      service: {
        id: crypto.randomUUID(),
        name: table,
        kind: 'postgres',
        environment: 'dev',
        config: {},
      },
      db: admin,
      target: agent,
      signal: deadline,
      reprobe: () => Promise.resolve({ status: 'healthy', measurements: {} }),
      protectedRoles: PROTECTED_ROLES,
      protectedApplications: [],
    })
    const config = VacuumAnalyzeConfig.parse({ verify_wait_ms: 10_000 })
    const planned = await eventually(
      async () => {
        const p = await vacuumAnalyzeStrategy.plan(problem('dead_tuples'), ctx, config).catch(() =>
          null
        )
        return (p?.target as Json | undefined)?.tables?.some((t: Json) => t.table === table)
          ? p!
          : undefined
      },
      10_000,
      'the dead tuples to show',
    )
    // Only this test's table: the shared database may hold other bloated tables.
    const mine = (planned.target as Json).tables.filter((t: Json) => t.table === table)
    assert.deepEqual(
      mine.map((t: Json) => t.via),
      ['pg_cron'],
      'the agent may not vacuum it itself',
    )
    const plan = { ...planned, target: { tables: mine } }

    const acted = await vacuumAnalyzeStrategy.act(plan, ctx, config)
    assert.match(
      acted.detail,
      new RegExp(
        `^VACUUM \\(ANALYZE\\) ran on public\\.${table} \\(by pg_cron, request \\d+, [\\d.]+ s\\)\\.$`,
      ),
    )
    const [request] = await admin`
      select outcome, requested_by from vigil.vacuum_requests where table_name = ${table}`
    assert.deepEqual([request.outcome, request.requested_by], ['succeeded', 'vigil_agent'])
    const [job] =
      await admin`select count(*)::int as n from cron.job where command like ${`%${table}%`}`
    assert.equal(job.n, 0, 'the one-off job is gone')
    const verified = await vacuumAnalyzeStrategy.verify(plan, acted, ctx, config)
    assert.equal(verified.improved, true, verified.detail)
    assert.equal((verified.after as Json).tables[0].dead, 0)
  } finally {
    await admin.unsafe(`drop table if exists public.${table}`)
    await admin`select cron.unschedule(jobid) from cron.job where command like ${`%${table}%`}`
    await Promise.all([admin.end(), agent.end()])
  }
})

Deno.test('act() refuses in dry run, and plan() still runs', async () => {
  const s = await scratch()
  const pending = tracked()
  try {
    const r = s.session('heal-test-runaway')
    const rPid = await pidOf(r)
    const runaway = r`select pg_sleep(60)`.execute()
    pending.push(runaway)
    const dry = healContext(s, { dryRun: true })
    const config = CancelRunawayQueryConfig.parse({ max_seconds: 0.5 })
    const plan = await planOf(cancelRunawayQueryStrategy, 'runaway_query', dry, config, 'a runaway')
    assert.deepEqual((plan.target as Json).statements.map((x: Json) => x.pid), [rPid])
    await assert.rejects(
      cancelRunawayQueryStrategy.act(plan, dry, config),
      (err) => err instanceof HealError && /dry run/.test(err.message),
    )
    await sleep(100)
    const [{ state }] = await s.admin`select state from pg_stat_activity where pid = ${rPid}`
    assert.equal(state, 'active', 'nothing was cancelled')

    const backend = await backendOf(s, rPid)
    const forged = (target: Record<string, unknown>): Plan => ({
      action: 'x',
      target,
      reason: 'forged',
      before: {},
    })
    const cases = [
      () =>
        terminateBlockerStrategy.act(
          forged({
            database: s.database,
            roots: [{
              ...backend,
              usename: null,
              application_name: null,
              state: null,
              query: null,
              waiters: [],
              longest_wait_seconds: 1,
            }],
          }),
          dry,
          TerminateBlockerConfig.parse({}),
        ),
      () =>
        killIdleConnectionsStrategy.act(
          forged({
            sessions: [{
              ...backend,
              idle_since: backend.backend_start,
              usename: null,
              application_name: null,
              state: 'idle',
              idle_seconds: 1,
              query: null,
            }],
          }),
          dry,
          KillIdleConnectionsConfig.parse({}),
        ),
      () =>
        vacuumAnalyzeStrategy.act(
          forged({
            tables: [{
              oid: '1259',
              schema: 'pg_catalog',
              table: 'pg_class',
              live: 1,
              dead: 1,
              ratio: 0.5,
              last_vacuum: null,
              last_autovacuum: null,
            }],
          }),
          dry,
          VacuumAnalyzeConfig.parse({}),
        ),
    ]
    for (const act of cases) {
      await assert.rejects(act(), (err) => err instanceof HealError && /dry run/.test(err.message))
    }
    assert.deepEqual(await liveSessions(s.admin, [backend]), [backend])

    // The heal's deadline: an aborted signal stops act() before it signals anything.
    const controller = new AbortController()
    controller.abort()
    await assert.rejects(
      cancelRunawayQueryStrategy.act(plan, healContext(s, { signal: controller.signal }), config),
      (err) => err instanceof HealError && /deadline/.test(err.message),
    )
    const [{ still }] = await s
      .admin`select state as still from pg_stat_activity where pid = ${rPid}`
    assert.equal(still, 'active')
  } finally {
    await s.admin`select pg_cancel_backend(pid) from pg_stat_activity
                  where datname = ${s.database} and query like 'select pg_sleep(60)%'`
      .catch(() => {})
    await s.close()
    await pending.settle()
  }
})

Deno.test('on a quiet database every plan is null', async () => {
  const s = await scratch()
  try {
    const ctx = healContext(s)
    assert.equal(
      await terminateBlockerStrategy.plan(
        problem('lock_contention'),
        ctx,
        TerminateBlockerConfig.parse({ min_wait_seconds: 0 }),
      ),
      null,
    )
    assert.equal(
      await cancelRunawayQueryStrategy.plan(
        problem('runaway_query'),
        ctx,
        CancelRunawayQueryConfig.parse({}),
      ),
      null,
    )
    assert.equal(
      await vacuumAnalyzeStrategy.plan(problem('dead_tuples'), ctx, VacuumAnalyzeConfig.parse({})),
      null,
    )
    assert.equal(
      await killIdleConnectionsStrategy.plan(
        problem('connection_exhaustion'),
        ctx,
        KillIdleConnectionsConfig.parse({}),
      ),
      null,
      'the shared test server is far from 90 % of its connections',
    )
  } finally {
    await s.close()
  }
})

Deno.test('strategy configs have their defaults, refuse unknown keys and nonsense', () => {
  assert.deepEqual(TerminateBlockerConfig.parse({}), {
    min_wait_seconds: 10,
    cancel_grace_ms: 1000,
    exit_wait_ms: 5000,
    max_roots: 3,
    verify_wait_ms: 3000,
  })
  const idle = KillIdleConnectionsConfig.parse({})
  assert.equal(idle.trigger_pct, 90)
  assert.equal(idle.target_pct, 70)
  assert.equal(idle.idle_minutes, 5)
  assert.equal(CancelRunawayQueryConfig.parse({}).max_seconds, 300)
  const vacuum = VacuumAnalyzeConfig.parse({})
  assert.deepEqual([vacuum.min_ratio, vacuum.min_rows, vacuum.max_tables], [0.2, 1000, 5])
  assert.equal(
    KillIdleConnectionsConfig.safeParse({ target_pct: 95 }).success,
    false,
    'target under trigger',
  )
  assert.equal(
    TerminateBlockerConfig.safeParse({ min_wait: 5 }).success,
    false,
    'a typo is refused',
  )
  assert.equal(VacuumAnalyzeConfig.safeParse({ min_ratio: 0 }).success, false)
  assert.equal(CancelRunawayQueryConfig.safeParse({ max_seconds: -1 }).success, false)
  for (
    const s of [
      terminateBlockerStrategy,
      killIdleConnectionsStrategy,
      cancelRunawayQueryStrategy,
      vacuumAnalyzeStrategy,
    ]
  ) {
    assert.match(s.name, /^[a-z_]+$/)
  }
  assert.deepEqual(
    [
      terminateBlockerStrategy,
      killIdleConnectionsStrategy,
      cancelRunawayQueryStrategy,
      vacuumAnalyzeStrategy,
    ]
      .map((s) => [s.name, s.problem]),
    [
      ['terminate_blocker', 'lock_contention'],
      ['kill_idle_connections', 'connection_exhaustion'],
      ['cancel_runaway_query', 'runaway_query'],
      ['vacuum_analyze', 'dead_tuples'],
    ],
  )
})

Deno.test('analyze_tables as the agent: stale statistics found, brought up to date through vigil.analyze_table', async () => {
  const admin = postgres(dbUrl(), { max: 1, onnotice: () => {} })
  const agent = postgres(testStack().agentDbUrl, { max: 2, prepare: false, onnotice: () => {} })
  const table = `stale_stats_${uniqueId()}`
  try {
    await admin.unsafe(`
      create table public.${table} (id int primary key, v int) with (autovacuum_enabled = false);
      insert into public.${table} select g, 0 from generate_series(1, 20000) g;
      analyze public.${table};
      update public.${table} set v = 1;
      select pg_stat_force_next_flush();`)
    const ctx = baseHealContext({
      service: {
        id: crypto.randomUUID(),
        name: table,
        kind: 'postgres',
        environment: 'dev',
        config: {},
      },
      db: admin,
      target: agent,
      signal: new AbortController().signal,
      reprobe: () => Promise.resolve({ status: 'healthy', measurements: {} }),
      protectedRoles: PROTECTED_ROLES,
      protectedApplications: [],
    })
    const config = AnalyzeTablesConfig.parse({ older_than_seconds: 0 })
    const planned = await eventually(
      async () => {
        const p = await analyzeTablesStrategy.plan(problem('stale_statistics'), ctx, config)
          .catch(() => null)
        return (p?.target as Json | undefined)?.tables?.some((t: Json) => t.table === table)
          ? p!
          : undefined
      },
      10_000,
      'the changes to reach the statistics',
    )
    const mine = (planned.target as Json).tables.filter((t: Json) => t.table === table)
    assert.deepEqual(mine.map((t: Json) => t.via), ['definer'], 'the agent owns none of it')
    assert.ok(mine[0].changed >= 20000, `every row changed since its ANALYZE: ${mine[0].changed}`)
    const plan = { ...planned, target: { tables: mine } }
    const acted = await analyzeTablesStrategy.act(plan, ctx, config)
    assert.match(acted.detail, new RegExp(`^ANALYZE ran on public\\.${table} \\(`))
    const verified = await eventually(
      async () => {
        const v = await analyzeTablesStrategy.verify(plan, acted, ctx, config)
        return v.improved ? v : undefined
      },
      10_000,
      'the fresh statistics to show',
    )
    assert.equal((verified.after as Json).tables[0].changed, 0)
  } finally {
    await admin.unsafe(`drop table if exists public.${table}`)
    await Promise.all([admin.end(), agent.end()])
  }
})
