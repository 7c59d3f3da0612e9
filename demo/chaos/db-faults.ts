// Faults in the database, made by real clients of the demo app's own role (demo_app, an ordinary
// login role, as an application connects): a lock held by an idle transaction with sessions queued
// behind it, the connection slots used up by idle sessions, a slow statement on a large table with
// no index, a query that never ends, and dead tuples left for a vacuum that autovacuum will not do.
import postgres from 'postgres'
import { join } from 'node:path'
import type { ChaosTarget, Fault } from './types.ts'
import {
  APP_NAME_PREFIX,
  dropRecord,
  killGroups,
  readRecord,
  spawnDetached,
  writeRecord,
} from './procs.ts'

function admin(t: ChaosTarget) {
  return postgres(t.dbUrl, {
    max: 1,
    onnotice: () => {},
    connection: { application_name: 'vigil-chaos' },
  })
}

/**
 * A psql session of the app running `commands` in order (one -c each: SQL, or one meta-command such
 * as `\\! sleep 3600`, which keeps the session open and idle), named `vigil-chaos:<fault>:<role>`.
 * The password travels in its environment, never on its command line.
 */
function client(t: ChaosTarget, fault: string, role: string, commands: string[]): number {
  const url = new URL(t.appDbUrl)
  const env = {
    PGHOST: url.hostname,
    PGPORT: url.port || '5432',
    PGUSER: decodeURIComponent(url.username),
    PGPASSWORD: decodeURIComponent(url.password),
    PGDATABASE: url.pathname.slice(1) || 'postgres',
    PGAPPNAME: `${APP_NAME_PREFIX}${fault}:${role}`,
    PATH: '/usr/bin:/bin',
  }
  const args = [join(t.pgBin, 'psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1']
  for (const command of commands) args.push('-c', command)
  return spawnDetached(args, env, join(t.stateDir, 'chaos', `${fault}.log`)).pid
}

/** The fault's sessions now, by application_name. */
async function sessions(sql: postgres.Sql, fault: string) {
  return await sql<{ pid: number; state: string | null; wait_event_type: string | null }[]>`
    select pid, state, wait_event_type from pg_stat_activity
     where application_name like ${`${APP_NAME_PREFIX}${fault}:%`}`
}

async function until<T>(probe: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const v = await probe()
    if (v !== undefined) return v
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${what} did not happen within ${ms / 1000} s`)
}

/** Ends the fault's sessions and processes; true when anything was still there. */
async function endClients(t: ChaosTarget, fault: string): Promise<boolean> {
  const record = await readRecord(t.stateDir, fault)
  const sql = admin(t)
  try {
    const [{ n }] = await sql<{ n: number }[]>`
      select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
       where application_name like ${`${APP_NAME_PREFIX}${fault}:%`}`
    const killed = await killGroups(record?.groups ?? [])
    return n > 0 || killed > 0
  } finally {
    await sql.end()
  }
}

async function active(t: ChaosTarget, fault: string): Promise<boolean> {
  const sql = admin(t)
  try {
    return (await sessions(sql, fault)).length > 0
  } finally {
    await sql.end()
  }
}

/** A fault made of clients: `make` starts them and returns their process groups. */
function clientFault(
  base: Omit<Fault, 'inject' | 'clear' | 'active'> & {
    make(t: ChaosTarget, sql: postgres.Sql): Promise<{ groups: number[]; said: string }>
    undo?(t: ChaosTarget, sql: postgres.Sql): Promise<void>
  },
): Fault {
  return {
    name: base.name,
    summary: base.summary,
    expects: base.expects,
    async inject(t) {
      if (await active(t, base.name)) return `${base.name} is already active`
      await Deno.mkdir(join(t.stateDir, 'chaos'), { recursive: true })
      const sql = admin(t)
      try {
        const made = await base.make(t, sql)
        await writeRecord(t.stateDir, {
          fault: base.name,
          injected_at: new Date().toISOString(),
          groups: made.groups,
        })
        return made.said
      } finally {
        await sql.end()
      }
    },
    async clear(t) {
      const record = await readRecord(t.stateDir, base.name)
      const had = await endClients(t, base.name)
      if (base.undo) {
        const sql = admin(t)
        try {
          await base.undo(t, sql)
        } finally {
          await sql.end()
        }
      }
      await dropRecord(t.stateDir, base.name)
      return had || record !== null
    },
    active: (t) => active(t, base.name),
  }
}

const ROW_LOCK = 'update demo.customers set name = name where id = 1'

export const lockContention = clientFault({
  name: 'lock_contention',
  summary: 'an idle transaction of the app holds a row lock; three of its sessions queue behind it',
  expects: { incident: 'service_unhealthy', finding: 'lock_contention', heal: 'terminate_blocker' },
  async make(t, sql) {
    // One statement, then idle in the transaction, as an app that forgot to commit.
    const blocker = client(t, 'lock_contention', 'blocker', ['begin', ROW_LOCK, '\\! sleep 3600'])
    await until(
      async () => {
        const s = await sessions(sql, 'lock_contention')
        return s.some((x) => x.state === 'idle in transaction') ? true : undefined
      },
      10_000,
      'the blocking transaction',
    )
    const waiters = [1, 2, 3].map(() => client(t, 'lock_contention', 'waiter', [ROW_LOCK]))
    await until(
      async () => {
        const s = await sessions(sql, 'lock_contention')
        return s.filter((x) => x.wait_event_type === 'Lock').length === 3 ? true : undefined
      },
      10_000,
      'three sessions waiting on the lock',
    )
    return {
      groups: [blocker, ...waiters],
      said: 'a transaction of the app holds row 1 of demo.customers; three sessions wait for it',
    }
  },
})

/** The share of client slots the idle sessions fill: past kill_idle_connections' trigger (90 %). */
const EXHAUSTION_TARGET = 0.93

export const connectionExhaustion = clientFault({
  name: 'connection_exhaustion',
  summary: `idle sessions of the app fill ${EXHAUSTION_TARGET * 100} % of the connection slots`,
  expects: {
    incident: 'service_unhealthy',
    finding: 'connections_exhausted',
    heal: 'kill_idle_connections',
    policy: {
      strategy: 'kill_idle_connections',
      mode: 'auto',
      config: { idle_minutes: 0.25 },
      why: 'a session counts as idle after 15 s, not the default 5 min',
    },
  },
  async make(t, sql) {
    const [slots] = await sql<{ slots: number; used: number }[]>`
      select current_setting('max_connections')::int
               - current_setting('superuser_reserved_connections')::int as slots,
             (select count(*)::int from pg_stat_activity where backend_type = 'client backend') as used`
    const wanted = Math.floor(slots.slots * (t.connectionShare ?? EXHAUSTION_TARGET)) - slots.used
    if (wanted <= 0) return { groups: [], said: 'the connection slots are already this full' }
    const groups = Array.from(
      { length: wanted },
      () => client(t, 'connection_exhaustion', 'idle', ['select 1', '\\! sleep 3600']),
    )
    await until(
      async () => {
        const n = (await sessions(sql, 'connection_exhaustion')).filter((x) => x.state === 'idle')
          .length
        return n >= wanted ? true : undefined
      },
      30_000,
      `${wanted} idle sessions`,
    )
    return {
      groups,
      said: `${wanted} idle sessions of the app hold ${
        Math.round(((slots.used + wanted) / slots.slots) * 100)
      } % of ${slots.slots} client slots`,
    }
  },
})

/**
 * Orders per customer for a range of 300 customers: a correlated count that scans demo.orders once
 * a customer, because demo.orders has no index on customer_id. About two seconds a call.
 */
export const SLOW_STATEMENT =
  'select c.id, (select count(*) from demo.orders o where o.customer_id = c.id) as orders ' +
  'from demo.customers c where c.id between :cid and :last'

export const slowQuery = clientFault({
  name: 'slow_query',
  summary: 'the app keeps running a statement that scans a large table with no index',
  expects: {
    incident: 'slow_queries',
    finding: 'slow_statements',
    heal: 'add_missing_index',
    policy: {
      strategy: 'add_missing_index',
      mode: 'auto',
      config: { mode: 'create' },
      why: 'the index advisor builds the index; by default it only suggests it (Recommendations)',
    },
  },
  async make(t) {
    const script = join(t.stateDir, 'chaos', 'slow_query.pgbench')
    await Deno.writeTextFile(
      script,
      `\\set cid random(1, 1700)\n\\set last :cid + 299\n${SLOW_STATEMENT};\n`,
    )
    const url = new URL(t.appDbUrl)
    const group = spawnDetached(
      [
        join(t.pgBin, 'pgbench'),
        '-n',
        // Two of the app's request handlers at once, as a busy page would: enough calls for the
        // probe's slow_min_calls (10) within an interval or two of a statement near a second.
        '-c',
        '2',
        '-T',
        '3600',
        '-f',
        script,
        '-h',
        url.hostname,
        '-p',
        url.port || '5432',
        '-U',
        decodeURIComponent(url.username),
        url.pathname.slice(1) || 'postgres',
      ],
      {
        PGPASSWORD: decodeURIComponent(url.password),
        PGAPPNAME: `${APP_NAME_PREFIX}slow_query:load`,
        PATH: '/usr/bin:/bin',
      },
      join(t.stateDir, 'chaos', 'slow_query.log'),
    ).pid
    return {
      groups: [group],
      said: 'the app runs a count per customer over demo.orders, unindexed',
    }
  },
  async undo(_t, sql) {
    // What Vigil built for it goes, so the fault can be made again; so do its statistics.
    const indexes = await sql<{ name: string }[]>`
      select format('%I.%I', n.nspname, c.relname) as name
        from pg_index i join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace
       where i.indrelid = 'demo.orders'::regclass and not i.indisprimary
         and (select array_agg(a.attname::text) from pg_attribute a
               where a.attrelid = i.indrelid and a.attnum = any (i.indkey)) = array['customer_id']`
    for (const { name } of indexes) await sql.unsafe(`drop index if exists ${name}`)
    await sql`
      select extensions.pg_stat_statements_reset(0, s.dbid, s.queryid)
        from extensions.pg_stat_statements s
       where s.query like '%from demo.orders o where o.customer_id = c.id%'`
  },
})

/** A setting of demo-db's config in seconds (the probe's own default when it sets none). */
async function demoDbSeconds(t: ChaosTarget, key: string, fallback: number): Promise<number> {
  const sql = postgres(t.dbUrl, { max: 1, onnotice: () => {} })
  try {
    const [row] = await sql<{ s: number | null }[]>`
      select (config ->> ${key})::float8 as s from vigil.services where name = 'demo-db'`
    return row?.s ?? fallback
  } finally {
    await sql.end()
  }
}

const runaway = clientFault({
  name: 'runaway_query',
  summary: 'the app runs a query that never ends (a cross join of a large table with itself)',
  expects: {
    incident: 'service_unhealthy',
    finding: 'runaway_query',
    heal: 'cancel_runaway_query',
    policy: {
      strategy: 'cancel_runaway_query',
      mode: 'auto',
      config: { max_seconds: 30 },
      why: "a query is cancelled after 30 s (the demo database's long_running_seconds), " +
        'not the default 5 min',
    },
  },
  make(t) {
    const group = client(t, 'runaway_query', 'query', [
      'select count(*) from demo.orders a cross join demo.orders b',
    ])
    return Promise.resolve({
      groups: [group],
      said: 'a cross join of demo.orders with itself runs',
    })
  },
})

export const runawayQuery: Fault = {
  ...runaway,
  // A query is runaway once it has run long_running_seconds.
  async onset(t, injectedAt) {
    const after = await demoDbSeconds(t, 'long_running_seconds', 300)
    return Date.now() - injectedAt.getTime() >= after * 1000
  },
}

/** Dead tuples in demo.orders with autovacuum off for it: only a VACUUM from outside helps. */
export const deadTupleBloat: Fault = {
  name: 'dead_tuple_bloat',
  summary: 'every row of a large table updated, with autovacuum off for it: dead tuples pile up',
  expects: { incident: 'service_unhealthy', finding: 'dead_tuples', heal: 'vacuum_analyze' },
  // Vigil gives autovacuum dead_tuple_grace_seconds before it calls dead tuples a problem.
  async onset(t, injectedAt) {
    const grace = await demoDbSeconds(t, 'dead_tuple_grace_seconds', 600)
    return Date.now() - injectedAt.getTime() >= grace * 1000
  },
  async inject(t) {
    if (await deadTupleBloat.active(t)) return 'dead_tuple_bloat is already active'
    // As the app, the table's owner.
    const app = postgres(t.appDbUrl, {
      max: 1,
      onnotice: () => {},
      connection: { application_name: `${APP_NAME_PREFIX}dead_tuple_bloat:update` },
    })
    try {
      await app`alter table demo.orders set (autovacuum_enabled = false)`
      const [{ n }] = await app<{ n: number }[]>`
        with u as (update demo.orders set customer_id = customer_id returning 1)
        select count(*)::int as n from u`
      await writeRecord(t.stateDir, {
        fault: 'dead_tuple_bloat',
        injected_at: new Date().toISOString(),
        groups: [],
      })
      return `${n} rows of demo.orders updated with autovacuum off for it: ${n} dead tuples`
    } finally {
      await app.end()
    }
  },
  async clear(t) {
    const was = await deadTupleBloat.active(t)
    const record = await readRecord(t.stateDir, 'dead_tuple_bloat')
    const sql = admin(t)
    try {
      await sql`alter table demo.orders reset (autovacuum_enabled)`
      await sql`vacuum demo.orders`
    } finally {
      await sql.end()
    }
    await dropRecord(t.stateDir, 'dead_tuple_bloat')
    return was || record !== null
  },
  async active(t) {
    const sql = admin(t)
    try {
      const [r] = await sql<{ off: boolean }[]>`
        select coalesce('autovacuum_enabled=false' = any (reloptions), false) as off
          from pg_class where oid = to_regclass('demo.orders')`
      return r?.off ?? false
    } finally {
      await sql.end()
    }
  },
}

export const DB_FAULTS: Fault[] = [
  lockContention,
  connectionExhaustion,
  slowQuery,
  runawayQuery,
  deadTupleBloat,
]
