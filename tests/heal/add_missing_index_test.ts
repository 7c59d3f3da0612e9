// add_missing_index against a real Postgres 15 with hypopg and pg_stat_statements: real slow
// statements on scratch tables of 200,000 rows, planned, suggested, built concurrently, verified
// and dropped. Each test resets only its own statements' statistics and drops its own tables.
import assert from 'node:assert/strict'
import postgres from 'postgres'
import {
  AddMissingIndexConfig,
  addMissingIndexStrategy as strategy,
  candidateColumns,
  indexLockKey,
  indexName,
  type PlanNode,
  scanColumns,
  singleStatement,
} from '../../supabase/functions/_shared/heal/strategies/add-missing-index/index.ts'
import { HealError } from '../../supabase/functions/_shared/heal/types.ts'
import type { HealContext, Plan, Problem } from '../../supabase/functions/_shared/heal/types.ts'
import { eventually, testStack } from '../_env.ts'
import { baseHealContext, createLoginRole, dbUrl, uniqueId } from './_fixtures.ts'

function client(name: string, max = 2) {
  return postgres(dbUrl(), {
    max,
    prepare: false,
    onnotice: () => {},
    connection: { application_name: name },
  })
}

function unique(prefix: string): string {
  return `${prefix}_${uniqueId()}`
}

function context(target: postgres.Sql, over: Partial<HealContext> = {}): HealContext {
  return baseHealContext({ db: target, target, ...over })
}

function config(over: Record<string, unknown> = {}): AddMissingIndexConfig {
  return AddMissingIndexConfig.parse({ min_mean_ms: 1, min_calls: 5, ...over })
}

/** The slow-query problem as diagnose() builds it from the probe's statements measurement. */
function problem(queryids: string[]): Problem {
  return {
    kind: 'slow_query',
    reason: `${queryids.length} statements slower than the slow-query threshold`,
    evidence: { statements: { slow: queryids.map((queryid) => ({ queryid })) } },
  }
}

const q = (name: string) => `"${name.replaceAll('"', '""')}"`

/** A scratch table of 200,000 rows: b has 1,000 values of 200 rows each; no index at all. */
async function scratch(sql: postgres.Sql, table: string, bColumn = 'b') {
  await sql.unsafe(`create table ${q(table)} (id int, ${q(bColumn)} int, c text, flag bool)`)
  await sql.unsafe(
    `insert into ${
      q(table)
    } select g, g % 1000, md5(g::text), g % 2 = 0 from generate_series(1, 200000) g`,
  )
  await sql.unsafe(`analyze ${q(table)}`)
}

/** Runs a statement n times with parameters, as an application would; returns its queryid. */
async function runStatement(
  admin: postgres.Sql,
  app: postgres.Sql,
  text: string,
  params: (i: number) => postgres.ParameterOrJSON<never>[],
  n = 8,
): Promise<string> {
  for (let i = 0; i < n; i++) await app.unsafe(text, params(i))
  const [row] = await admin`
    select queryid::text as queryid from extensions.pg_stat_statements
    where query = ${text} and toplevel
      and dbid = (select oid from pg_database where datname = current_database())`
  assert.ok(row, `pg_stat_statements recorded ${text}`)
  return row.queryid as string
}

async function indexesOf(sql: postgres.Sql, table: string) {
  return [
    ...await sql<{ name: string; valid: boolean; def: string }[]>`
    select ic.relname::text as name, i.indisvalid as valid, pg_get_indexdef(ic.oid) as def
    from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_class t on t.oid = i.indrelid
    join pg_namespace n on n.oid = t.relnamespace
    where n.nspname = 'public' and t.relname = ${table}`,
  ]
}

async function callsOf(sql: postgres.Sql, queryid: string): Promise<number> {
  const [row] = await sql`
    select calls::int as calls from extensions.pg_stat_statements
    where queryid::text = ${queryid} and toplevel
      and dbid = (select oid from pg_database where datname = current_database())`
  return row.calls as number
}

/**
 * One test's world: its clients, its tables, its statements, all cleaned up after. The application
 * is a login role of its own (as a real app connects), granted every scratch table. The strategy
 * runs as postgres, which owns the tables (builds concurrently), or with `asAgent` as vigil_agent,
 * which owns nothing (builds through vigil.build_index) and may take the application's role.
 */
async function withWorld(
  fn: (
    w: {
      admin: postgres.Sql
      app: postgres.Sql
      /** The application's role. */
      appRole: string
      target: postgres.Sql
      queryids: string[]
      tables: string[]
      /** A new scratch table (see scratch()) of this test's, named `amix_…`. */
      newTable: () => Promise<string>
      /** Runs `select * from <table> where b = $1` as the application; its queryid is this test's. */
      selectByB: (table: string) => Promise<void>
    },
  ) => Promise<void>,
  targetMax = 2,
  asAgent = false,
) {
  const admin = client('amix-test-admin')
  const appRole = unique('amix_app')
  const appUrl = await createLoginRole(admin, appRole, 'amix-app-password')
  if (asAgent) await admin.unsafe(`grant ${appRole} to vigil_agent`)
  const app = postgres(appUrl, { max: 1, prepare: false, onnotice: () => {} })
  const target = postgres(asAgent ? testStack().agentDbUrl : dbUrl(), {
    max: targetMax,
    prepare: false,
    onnotice: () => {},
    connection: { application_name: 'vigil-heal' },
  })
  const queryids: string[] = []
  const tables: string[] = []
  const newTable = async () => {
    const table = unique('amix')
    tables.push(table)
    await scratch(admin, table)
    await admin.unsafe(`grant select, insert, update, delete on ${q(table)} to ${appRole}`)
    return table
  }
  const selectByB = async (table: string) => {
    queryids.push(
      await runStatement(admin, app, `select * from ${q(table)} where b = $1`, (i) => [i]),
    )
  }
  try {
    await fn({ admin, app, appRole, target, queryids, tables, newTable, selectByB })
  } finally {
    await Promise.all([app.end(), target.end()])
    for (const t of tables) await admin.unsafe(`drop table if exists ${q(t)}`).catch(() => {})
    await admin.unsafe(`drop owned by ${appRole}; drop role ${appRole}`).catch(() => {})
    // Only this test's statements leave pg_stat_statements: those it ran, those naming its
    // tables (setup, the strategy's builds and drops), and the strategy's own marked ones.
    const patterns = [...tables.map((t) => `%${t}%`), '%vigil:add-missing-index%']
    await admin`
      select extensions.pg_stat_statements_reset(0, s.dbid, s.queryid)
      from extensions.pg_stat_statements s
      where s.dbid = (select oid from pg_database where datname = current_database())
        and (s.queryid::text = any(string_to_array(${queryids.join(',')}, ','))
             or s.query like any(string_to_array(${patterns.join('\n')}, E'\n')))`
      .catch(() => {})
    await admin.end()
  }
}

interface Target {
  mode: string
  indexes: {
    schema: string
    table: string
    columns: string[]
    index_name: string
    index_sql: string
    queryid: string
    statement: string
    mean_ms: number
    calls: number
    cost_before: number
    cost_after: number
    factor: number
  }[]
}

const targetOf = (plan: Plan) => plan.target as unknown as Target

Deno.test('config: suggest by default, with the documented defaults, and nothing unknown', () => {
  const c = AddMissingIndexConfig.parse({})
  assert.deepEqual(c, {
    mode: 'suggest',
    min_mean_ms: 100,
    max_statements: 5,
    min_cost_factor: 2,
    min_calls: 10,
    verify_runs: 3,
    max_slowdown_factor: 1.5,
  })
  assert.equal(AddMissingIndexConfig.safeParse({ mode: 'drop' }).success, false)
  assert.equal(AddMissingIndexConfig.safeParse({ min_cost_factor: 0.5 }).success, false)
  assert.equal(AddMissingIndexConfig.safeParse({ typo: 1 }).success, false)
  assert.equal(strategy.name, 'add_missing_index')
  assert.equal(strategy.problem, 'slow_query')
  assert.equal(strategy.defaultMode, 'suggest', 'without a policy row, the engine only records')
})

Deno.test('plan: a slow sequential scan gets a suggested index on its filter column, and nothing changes', async () => {
  // One connection for the strategy, so the test can look at the very session it used.
  await withWorld(async ({ admin, app, target, queryids, newTable }) => {
    const table = await newTable()
    const text = `select * from ${q(table)} where b = $1`
    queryids.push(await runStatement(admin, app, text, (i) => [i]))

    const plan = await strategy.plan(problem(queryids), context(target), config())
    assert.ok(plan, 'a plan')
    assert.equal(plan.action, 'suggest_index')
    const t = targetOf(plan)
    assert.equal(t.mode, 'suggest')
    assert.equal(t.indexes.length, 1)
    const [s] = t.indexes
    assert.equal(s.schema, 'public')
    assert.equal(s.table, table)
    assert.deepEqual(s.columns, ['b'])
    assert.equal(s.queryid, queryids[0])
    assert.equal(s.statement, text)
    assert.equal(s.calls, 8)
    assert.ok(s.mean_ms > 0)
    assert.ok(s.factor >= 2, `cost factor ${s.factor} is at least 2`)
    assert.ok(s.cost_after < s.cost_before)
    assert.equal(s.index_name, `vigil_idx_${table}_b`)
    assert.equal(
      s.index_sql,
      `CREATE INDEX CONCURRENTLY IF NOT EXISTS "vigil_idx_${table}_b" ON "public"."${table}" ("b")`,
    )
    const before = plan.before as {
      statements: { queryid: string; mean_ms: number; estimated_cost: number }[]
    }
    assert.equal(before.statements[0].queryid, queryids[0])
    assert.equal(before.statements[0].estimated_cost, s.cost_before)
    assert.match(plan.reason, /1 index would make 1 slow statement at least 2× cheaper/)
    assert.deepEqual(JSON.parse(JSON.stringify(plan)), plan, 'the plan is plain JSON')

    // Nothing changed: no index, and the session holds no hypothetical index, prepared
    // statement, transaction or advisory lock.
    assert.deepEqual(await indexesOf(admin, table), [])
    const [session] = await target`
      select (select count(*)::int from extensions.hypopg()) as hypothetical,
             (select count(*)::int from pg_prepared_statements) as prepared,
             (select count(*)::int from pg_locks where pid = pg_backend_pid() and locktype = 'advisory') as advisory,
             current_setting('transaction_read_only') as read_only,
             current_setting('plan_cache_mode') as plan_cache_mode`
    assert.deepEqual(session, {
      hypothetical: 0,
      prepared: 0,
      advisory: 0,
      read_only: 'off',
      plan_cache_mode: 'auto',
    })
  }, 1)
})

Deno.test('suggest mode: act records the index and creates nothing; verify says so', async () => {
  await withWorld(async ({ admin, target, queryids, newTable, selectByB }) => {
    const table = await newTable()
    await selectByB(table)

    const ctx = context(target)
    const cfg = config()
    const plan = await strategy.plan(problem(queryids), ctx, cfg)
    assert.ok(plan)
    const result = await strategy.act(plan, ctx, cfg)
    assert.match(result.detail, /^Suggested 1 index, created nothing \(mode suggest\)/)
    assert.ok(result.detail.includes(targetOf(plan).indexes[0].index_sql))
    assert.equal(result.undo, undefined)
    assert.deepEqual(await indexesOf(admin, table), [])

    const v = await strategy.verify(plan, result, ctx, cfg)
    assert.equal(v.improved, false)
    assert.equal(v.worse, false)
    assert.equal(v.detail, 'suggested, not created')
  })
})

Deno.test('create mode: a valid index is built concurrently, the planner uses it, undo drops it', async () => {
  await withWorld(async ({ admin, app, target, queryids, newTable, selectByB }) => {
    const table = await newTable()
    await selectByB(table)

    const ctx = context(target)
    const cfg = config({ mode: 'create' })
    const plan = await strategy.plan(problem(queryids), ctx, cfg)
    assert.ok(plan)
    assert.equal(plan.action, 'create_index')
    const name = `vigil_idx_${table}_b`

    const result = await strategy.act(plan, ctx, cfg)
    assert.match(
      result.detail,
      new RegExp(`^Created ${name} on "public"\\."${table}" \\(b\\) in \\d+ ms$`),
    )
    const undoInfo = result.undo as { indexes: { name: string; schema: string }[] }
    assert.deepEqual(undoInfo.indexes.map((i) => i.name), [name])
    const built = await indexesOf(admin, table)
    assert.equal(built.length, 1)
    assert.equal(built[0].name, name)
    assert.equal(built[0].valid, true)
    assert.match(built[0].def, /USING btree \(b\)$/)

    // The application keeps calling it: verify also reads how those calls went.
    for (let i = 0; i < 5; i++) await app.unsafe(`select * from ${q(table)} where b = $1`, [i])
    const v = await strategy.verify(plan, result, ctx, cfg)
    assert.equal(v.worse, false, v.detail)
    assert.equal(v.improved, true, v.detail)
    const [check] = (v.after as { indexes: Record<string, unknown>[] }).indexes
    assert.equal(check.planner_uses_index, true)
    assert.ok((check.factor as number) >= 2)
    assert.equal((check.timed_runs_ms as number[]).length, 3)
    const since = check.mean_ms_since_create as number
    assert.ok(
      since < targetOf(plan).indexes[0].mean_ms,
      `calls since the build average ${since} ms`,
    )
    assert.match(v.detail, new RegExp(`^${name}: the planner uses it, estimated cost`))

    // A second act finds the index there and builds nothing.
    const again = await strategy.act(plan, ctx, cfg)
    assert.match(again.detail, new RegExp(`already serves it`))
    assert.equal(again.undo, undefined)

    const undone = await strategy.undo!(plan, result, ctx, cfg)
    assert.equal(undone, `dropped 1 index: "public"."${name}"`)
    assert.deepEqual(await indexesOf(admin, table), [])
  })
})

Deno.test('verify calls it worse when the statement now runs slower than it did, and undo follows', async () => {
  await withWorld(async ({ admin, target, queryids, newTable, selectByB }) => {
    const table = await newTable()
    await selectByB(table)
    const ctx = context(target)
    const cfg = config({ mode: 'create' })
    const plan = await strategy.plan(problem(queryids), ctx, cfg)
    assert.ok(plan)
    const result = await strategy.act(plan, ctx, cfg)
    // As if the statement had averaged a nanosecond before: any real run is slower than that.
    const t = targetOf(plan)
    const fast: Plan = {
      ...plan,
      target: { ...t, indexes: [{ ...t.indexes[0], mean_ms: 0.000001 }] },
    }
    const v = await strategy.verify(fast, result, ctx, cfg)
    assert.equal(v.worse, true, v.detail)
    assert.equal(v.improved, false)
    assert.match(
      v.detail,
      /median of 3 generic-plan runs [\d.]+ ms against a mean of 0\.000001 ms before/,
    )
    await strategy.undo!(plan, result, ctx, cfg)
    assert.deepEqual(await indexesOf(admin, table), [])
  })
})

Deno.test('a statement an index already serves gets no suggestion', async () => {
  await withWorld(async ({ admin, app, target, queryids, newTable, selectByB }) => {
    const table = await newTable()
    await admin.unsafe(`create index on ${q(table)} (b)`)
    await selectByB(table)
    // Half the rows match: a sequential scan is right, and no index would make it cheaper.
    queryids.push(
      await runStatement(
        admin,
        app,
        `select count(*) from ${q(table)} where flag = $1`,
        (i) => [i % 2 === 0],
      ),
    )

    const plan = await strategy.plan(problem(queryids), context(target), config({ min_mean_ms: 0 }))
    assert.equal(plan, null)
  })
})

Deno.test('a table and column needing quotes: a hashed safe name, built and dropped', async () => {
  await withWorld(async ({ admin, app, appRole, target, queryids, tables }) => {
    const table = unique('Amix Orders')
    tables.push(table)
    await scratch(admin, table, 'Customer Id')
    await admin.unsafe(`grant select on ${q(table)} to ${appRole}`)
    queryids.push(
      await runStatement(
        admin,
        app,
        `select id, c from ${q(table)} where "Customer Id" = $1`,
        (i) => [i],
      ),
    )

    const ctx = context(target)
    const cfg = config({ mode: 'create' })
    const plan = await strategy.plan(problem(queryids), ctx, cfg)
    assert.ok(plan)
    const [s] = targetOf(plan).indexes
    assert.deepEqual(s.columns, ['Customer Id'])
    assert.match(s.index_name, /^vigil_idx_amix_orders_[0-9a-f]{10}_customer_id_[0-9a-f]{8}$/)
    assert.ok(new TextEncoder().encode(s.index_name).length <= 63)
    assert.equal(s.index_name, indexName(table, ['Customer Id']), 'deterministic')
    assert.ok(s.index_sql.endsWith(`ON "public"."${table}" ("Customer Id")`))

    const result = await strategy.act(plan, ctx, cfg)
    const built = await indexesOf(admin, table)
    assert.deepEqual(built.map((b) => [b.name, b.valid]), [[s.index_name, true]])
    const v = await strategy.verify(plan, result, ctx, cfg)
    assert.equal(v.improved, true, v.detail)
    await strategy.undo!(plan, result, ctx, cfg)
    assert.deepEqual(await indexesOf(admin, table), [])
  })
})

Deno.test('as vigil_agent, which owns nothing: built in place by vigil.build_index, dropped by vigil.drop_built_index', async () => {
  await withWorld(
    async ({ admin, target, queryids, newTable, selectByB }) => {
      const table = await newTable()
      await selectByB(table)
      const ctx = context(target)
      const cfg = config({ mode: 'create' })
      const plan = await strategy.plan(problem(queryids), ctx, cfg)
      assert.ok(plan, 'the agent plans the statement (as the application, whose role it may take)')
      const [s] = targetOf(plan).indexes
      const result = await strategy.act(plan, ctx, cfg)
      assert.match(result.detail, /in place, by vigil\.build_index/)
      assert.deepEqual((await indexesOf(admin, table)).map((b) => [b.name, b.valid]), [[
        s.index_name,
        true,
      ]])
      const [built] = await admin`
      select built_by, columns from vigil.built_indexes where index_name = ${s.index_name} and dropped_at is null`
      assert.deepEqual([built.built_by, built.columns], ['vigil_agent', ['b']])
      const v = await strategy.verify(plan, result, ctx, cfg)
      assert.equal(v.improved, true, v.detail)
      assert.equal(
        await strategy.undo!(plan, result, ctx, cfg),
        `dropped 1 index: "public"."${s.index_name}"`,
      )
      assert.deepEqual(await indexesOf(admin, table), [])
      const [gone] = await admin`
      select dropped_at is not null as dropped from vigil.built_indexes where index_name = ${s.index_name}`
      assert.equal(gone.dropped, true)
    },
    2,
    true,
  )
})

Deno.test("as vigil_agent, on the app's own schema it has no USAGE on and a role it may not take: planned and costed as pg_read_all_data, built by vigil.build_index", async () => {
  // The demo's shape (schema demo, role demo_app): hypopg looks the table up by name, which the
  // agent itself may not; the hypothetical indexes are made as the role that plans the statement.
  await withWorld(async ({ admin, app, appRole, queryids, tables }) => {
    const schema = unique('amix_schema')
    const table = unique('amix')
    const qualifiedName = `${q(schema)}.${q(table)}`
    // Its name only: the pattern that clears this test's statements (the schema goes below).
    tables.push(table)
    const target = postgres(testStack().agentDbUrl, {
      max: 2,
      prepare: false,
      onnotice: () => {},
      connection: { application_name: 'vigil-heal' },
    })
    try {
      await admin.unsafe(`create schema ${q(schema)}`)
      await admin.unsafe(`grant usage on schema ${q(schema)} to ${appRole}`)
      await admin.unsafe(`create table ${qualifiedName} (id int, b int, c text)`)
      await admin.unsafe(
        `insert into ${qualifiedName} select g, g % 1000, md5(g::text) from generate_series(1, 200000) g`,
      )
      await admin.unsafe(`analyze ${qualifiedName}`)
      await admin.unsafe(`grant select on ${qualifiedName} to ${appRole}`)
      const [who] = await admin`
        select has_schema_privilege('vigil_agent', ${schema}, 'USAGE') as usage,
               pg_has_role('vigil_agent', ${appRole}, 'MEMBER') as member`
      assert.deepEqual(who, { usage: false, member: false }, 'the agent can reach neither')
      const text = `select * from ${qualifiedName} where b = $1`
      queryids.push(await runStatement(admin, app, text, (i) => [i]))

      const ctx = context(target)
      const cfg = config({ mode: 'create' })
      const plan = await strategy.plan(problem(queryids), ctx, cfg)
      assert.ok(plan, 'an index is suggested: the hypothetical one was costed')
      const [s] = targetOf(plan).indexes
      assert.deepEqual([s.schema, s.table, s.columns], [schema, table, ['b']])
      assert.ok(s.factor >= 2, `cost factor ${s.factor}`)
      const result = await strategy.act(plan, ctx, cfg)
      assert.match(result.detail, /in place, by vigil\.build_index/)
      const v = await strategy.verify(plan, result, ctx, cfg)
      assert.equal(v.improved, true, v.detail)
      assert.match(await strategy.undo!(plan, result, ctx, cfg), /^dropped 1 index/)
    } finally {
      await target.end()
      await admin.unsafe(`drop schema if exists ${q(schema)} cascade`)
    }
  })
})

Deno.test('a statement whose planning would run code outside pg_catalog is never planned, so never run as the agent', async () => {
  await withWorld(
    async ({ admin, app, appRole, target, queryids, newTable, selectByB }) => {
      const guarded = await newTable()
      const guard = unique('amix_guard')
      const view = unique('amix_view')
      // Immutable and argument-free: a planner folds it, running it as whoever plans.
      await admin.unsafe(`
      create function ${guard}() returns boolean language plpgsql immutable as $f$
      begin
        if current_user <> '${appRole}' then raise exception 'the guard ran as %', current_user; end if;
        return true;
      end $f$;
      alter function ${guard}() owner to ${appRole};
      create view ${view} as select * from ${q(guarded)} where ${guard}();
      alter view ${view} owner to ${appRole}`)
      const direct = await runStatement(
        admin,
        app,
        `select * from ${q(guarded)} where b = $1 and ${guard}()`,
        (i) => [i],
      )
      const viaView = await runStatement(
        admin,
        app,
        `select * from ${view} where b = $1`,
        (i) => [i],
      )
      queryids.push(direct, viaView)
      const plain = await newTable()
      await selectByB(plain)
      try {
        const plan = await strategy.plan(problem(queryids), context(target), config())
        assert.ok(plan, 'the plain statement is still planned')
        assert.deepEqual(targetOf(plan).indexes.map((s) => s.table), [plain])
        const notes = (plan.before as { notes: string[] }).notes.join('\n')
        assert.match(
          notes,
          new RegExp(
            `statement ${direct}: not planned: planning it could run code outside pg_catalog: function ${guard}\\(\\)`,
          ),
        )
        assert.match(
          notes,
          new RegExp(
            `statement ${viaView}: not planned: .*view ${view} \\(calls (public\\.)?${guard}\\(\\)\\)`,
          ),
        )
        assert.doesNotMatch(notes, /the guard ran as/)
      } finally {
        await admin.unsafe(`drop view if exists ${view}; drop function if exists ${guard}()`)
      }
    },
    2,
    true,
  )
})

Deno.test('code the statement never names is found too: an index expression, a view over a view, a function written as a column', async () => {
  await withWorld(
    async ({ admin, app, appRole, target, queryids, newTable, selectByB }) => {
      const indexed = await newTable()
      const viewed = await newTable()
      const guard = unique('amix_guardi')
      const [inner, outer] = [unique('amix_inner'), unique('amix_outer')]
      const score = unique('amix_score')
      // Immutable: the planner folds guard(1) in an index expression it reads, as whoever plans.
      // (postgres builds the index, running it once here.)
      await admin.unsafe(`
      create function ${guard}(n int) returns int language plpgsql immutable as $f$
      begin
        if current_user not in ('${appRole}', 'postgres') then
          raise exception 'the guard ran as %', current_user;
        end if;
        return n;
      end $f$;
      alter function ${guard}(int) owner to ${appRole};
      create index on ${q(indexed)} ((b + ${guard}(1)));
      create view ${inner} as select * from ${q(viewed)} where b >= ${guard}(0);
      create view ${outer} as select * from ${inner};
      grant select on ${inner}, ${outer} to ${appRole};
      create function ${score}(t ${q(indexed)}) returns int language sql immutable as 'select 1';`)
      const byIndex = await runStatement(
        admin,
        app,
        `select * from ${q(indexed)} where b = $1`,
        (i) => [i],
      )
      const byViews = await runStatement(
        admin,
        app,
        `select * from ${outer} where b = $1`,
        (i) => [i],
      )
      const byColumn = await runStatement(
        admin,
        app,
        `select t.${score} from ${q(indexed)} t where t.b = $1`,
        (i) => [i],
      )
      queryids.push(byIndex, byViews, byColumn)
      const plain = await newTable()
      await selectByB(plain)
      try {
        const plan = await strategy.plan(problem(queryids), context(target), config())
        assert.ok(plan, 'the plain statement is still planned')
        assert.deepEqual(targetOf(plan).indexes.map((s) => s.table), [plain])
        const notes = (plan.before as { notes: string[] }).notes.join('\n')
        const refused = (queryid: string, what: string) =>
          assert.match(
            notes,
            new RegExp(
              `statement ${queryid}: not planned: planning it could run code outside pg_catalog: .*${what}`,
            ),
          )
        refused(
          byIndex,
          `an index of (public\\.)?${indexed} \\(calls (public\\.)?${guard}\\(integer\\)\\)`,
        )
        refused(byViews, `view (public\\.)?${inner} \\(calls (public\\.)?${guard}\\(integer\\)\\)`)
        refused(byColumn, `function (public\\.)?${score}\\(.*\\) \\(written as a column\\)`)
        assert.doesNotMatch(notes, /the guard ran as/)
      } finally {
        await admin.unsafe(
          `drop view if exists ${outer}; drop view if exists ${inner};
           drop function if exists ${score}(${q(indexed)})`,
        )
      }
    },
    2,
    true,
  )
})

Deno.test('a SELECT calling a volatile function is planned but never executed to time it', async () => {
  await withWorld(async ({ admin, app, target, queryids, newTable }) => {
    const table = await newTable()
    queryids.push(
      await runStatement(
        admin,
        app,
        `select * from ${q(table)} where b = $1 and random() >= $2`,
        (i) => [i, 0],
      ),
    )
    const ctx = context(target)
    const cfg = config({ mode: 'create' })
    const plan = await strategy.plan(problem(queryids), ctx, cfg)
    assert.ok(plan)
    const result = await strategy.act(plan, ctx, cfg)
    const calls = await callsOf(admin, queryids[0])
    const v = await strategy.verify(plan, result, ctx, cfg)
    const [check] = (v.after as { indexes: Record<string, unknown>[] }).indexes
    assert.deepEqual(check.timed_runs_ms, [])
    assert.equal(check.timing_note, 'it calls volatile functions: not run')
    assert.equal(await callsOf(admin, queryids[0]), calls, 'Vigil never ran it')
    await strategy.undo!(plan, result, ctx, cfg)
  })
})

Deno.test('an UPDATE is analysed from its plan alone: never executed, never timed', async () => {
  await withWorld(async ({ admin, app, target, queryids, newTable }) => {
    const table = await newTable()
    const text = `update ${q(table)} set c = $1 where id = $2`
    queryids.push(await runStatement(admin, app, text, (i) => [`x${i}`, (i + 1) * 7]))

    const ctx = context(target)
    const cfg = config({ mode: 'create' })
    const plan = await strategy.plan(problem(queryids), ctx, cfg)
    assert.ok(plan)
    assert.deepEqual(targetOf(plan).indexes.map((s) => s.columns), [['id']])
    const result = await strategy.act(plan, ctx, cfg)
    const calls = await callsOf(admin, queryids[0])
    const v = await strategy.verify(plan, result, ctx, cfg)
    assert.equal(v.improved, true, v.detail)
    const [check] = (v.after as { indexes: Record<string, unknown>[] }).indexes
    assert.deepEqual(check.timed_runs_ms, [])
    assert.equal(check.timing_note, 'not a plain SELECT: not run')
    assert.equal(await callsOf(admin, queryids[0]), calls, 'the UPDATE was not run by Vigil')
    const [{ changed }] = await admin.unsafe(
      `select count(*)::int as changed from ${q(table)} where c like 'x%'`,
    )
    assert.equal(changed, 8, 'only the application changed rows')
    await strategy.undo!(plan, result, ctx, cfg)
  })
})

Deno.test('act refuses in dry run, and creates nothing', async () => {
  await withWorld(async ({ admin, target, queryids, newTable, selectByB }) => {
    const table = await newTable()
    await selectByB(table)
    const cfg = config({ mode: 'create' })
    const plan = await strategy.plan(problem(queryids), context(target, { dryRun: true }), cfg)
    assert.ok(plan, 'planning is allowed in dry run')
    await assert.rejects(
      strategy.act(plan, context(target, { dryRun: true }), cfg),
      (err: unknown) => err instanceof HealError && /dry run/.test(err.message),
    )
    assert.deepEqual(await indexesOf(admin, table), [])
  })
})

Deno.test("the heal's deadline during a build cancels it, and its INVALID index is dropped", async () => {
  await withWorld(async ({ admin, target, queryids, newTable, selectByB }) => {
    const table = await newTable()
    await selectByB(table)
    const cfg = config({ mode: 'create' })
    const plan = await strategy.plan(problem(queryids), context(target), cfg)
    assert.ok(plan)
    const name = targetOf(plan).indexes[0].index_name

    // A transaction that has written the table holds the build in its second phase, after the
    // INVALID index is already in the catalog.
    const blocker = client('amix-test-blocker', 1)
    let release = () => {}
    let written = () => {}
    const held = new Promise<void>((r) => (release = r))
    const ready = new Promise<void>((r) => (written = r))
    const tx = blocker.begin(async (t) => {
      await t.unsafe(`insert into ${q(table)} (id) values (-1)`)
      written()
      await held
    })
    try {
      await ready
      const controller = new AbortController()
      const acting = strategy.act(plan, context(target, { signal: controller.signal }), cfg)
      await eventually(
        async () => {
          const rows = await admin`
          select 1 from pg_stat_activity
          where application_name = 'vigil-heal' and wait_event_type = 'Lock'
            and query like '%CREATE INDEX CONCURRENTLY%'`
          return rows.length > 0 ? true : undefined
        },
        10_000,
        'the build to wait for the writing transaction',
      )
      assert.deepEqual((await indexesOf(admin, table)).map((i) => [i.name, i.valid]), [[
        name,
        false,
      ]])
      controller.abort()
      // The cleanup's DROP INDEX CONCURRENTLY waits for the writer too: let it finish soon.
      const releasing = new Promise<void>((r) => setTimeout(() => r(release()), 300))
      await assert.rejects(acting, (err: unknown) => {
        assert.ok(err instanceof HealError)
        assert.match(
          err.message,
          /cancelled at the heal's deadline; its INVALID index was dropped$/,
        )
        return true
      })
      await releasing
    } finally {
      release()
      await tx.catch(() => {})
      await blocker.end()
    }
    assert.deepEqual(await indexesOf(admin, table), [])
  })
})

Deno.test('an INVALID leftover of an earlier build is dropped and built again', async () => {
  await withWorld(async ({ admin, target, queryids, newTable, selectByB }) => {
    const table = await newTable()
    await selectByB(table)
    const ctx = context(target)
    const cfg = config({ mode: 'create' })
    const plan = await strategy.plan(problem(queryids), ctx, cfg)
    assert.ok(plan)
    const name = targetOf(plan).indexes[0].index_name
    // What a crashed build leaves behind (marked invalid by hand: this is a scratch table).
    await admin.unsafe(`create index ${q(name)} on ${q(table)} (b)`)
    await admin`update pg_index set indisvalid = false where indexrelid = ${`public.${
      q(name)
    }`}::regclass`

    const result = await strategy.act(plan, ctx, cfg)
    assert.match(result.detail, new RegExp(`^Created ${name} `))
    assert.deepEqual((await indexesOf(admin, table)).map((i) => [i.name, i.valid]), [[name, true]])
    await strategy.undo!(plan, result, ctx, cfg)
    assert.deepEqual(await indexesOf(admin, table), [])
  })
})

Deno.test('another session holding the build lock: skipped, nothing created, not a failure', async () => {
  await withWorld(async ({ admin, target, queryids, newTable, selectByB }) => {
    const table = await newTable()
    await selectByB(table)
    const ctx = context(target)
    const cfg = config({ mode: 'create' })
    const plan = await strategy.plan(problem(queryids), ctx, cfg)
    assert.ok(plan)
    const name = targetOf(plan).indexes[0].index_name
    const other = client('amix-test-other-heal', 1)
    try {
      await other`select pg_advisory_lock(hashtextextended(${indexLockKey('public', name)}, 0))`
      const result = await strategy.act(plan, ctx, cfg)
      assert.match(
        result.detail,
        /^No index was created: skipped .*: another session holds its advisory lock$/,
      )
      assert.equal(result.undo, undefined)
      const v = await strategy.verify(plan, result, ctx, cfg)
      assert.deepEqual([v.improved, v.worse, v.detail], [false, false, 'no index was created'])
    } finally {
      await other.end()
    }
    assert.deepEqual(await indexesOf(admin, table), [])
  })
})

Deno.test('tables above max_table_rows are left alone', async () => {
  await withWorld(async ({ target, queryids, newTable, selectByB }) => {
    const table = await newTable()
    await selectByB(table)
    const plan = await strategy.plan(
      problem(queryids),
      context(target),
      config({ max_table_rows: 100_000 }),
    )
    assert.equal(plan, null)
  })
})

Deno.test('without named statements, the slowest of the whole database are analysed', async () => {
  await withWorld(async ({ admin, target, queryids, newTable, selectByB }) => {
    const table = await newTable()
    await selectByB(table)
    const [{ mean }] = await admin`
      select mean_exec_time as mean from extensions.pg_stat_statements
      where queryid::text = ${queryids[0]} and toplevel`
    // Other suites share this database: their statements may be analysed too (read-only).
    const plan = await strategy.plan(
      { kind: 'slow_query', reason: 'slow', evidence: {} },
      context(target),
      config({ min_mean_ms: (mean as number) * 0.99, max_statements: 50 }),
    )
    assert.ok(plan)
    const mine = targetOf(plan).indexes.find((s) => s.table === table)
    assert.deepEqual(mine?.columns, ['b'])
  })
})

Deno.test('candidate columns: filters, joins and sorts read from a verbose plan', async () => {
  const plan: PlanNode = {
    'Node Type': 'Limit',
    'Total Cost': 100,
    Plans: [{
      'Node Type': 'Sort',
      'Total Cost': 100,
      'Sort Key': ['o."Created At" DESC'],
      Plans: [{
        'Node Type': 'Hash Join',
        'Total Cost': 90,
        'Hash Cond': '(o.customer_id = "C x".id)',
        Plans: [
          {
            'Node Type': 'Seq Scan',
            'Total Cost': 50,
            'Relation Name': 'Orders',
            Schema: 'public',
            Alias: 'o',
            Filter:
              "((o.status = 'paid'::text) AND (o.total >= $2) AND ((o.region)::text = ANY ($3)) AND (o.a = o.b) AND ((o.x = 1) OR (o.y = 2)))",
          },
          {
            'Node Type': 'Hash',
            'Total Cost': 30,
            Plans: [{
              'Node Type': 'Seq Scan',
              'Total Cost': 30,
              'Relation Name': 'customers',
              Schema: 'app',
              Alias: 'C x',
              Filter: '(lower("C x".email) = $1)',
            }],
          },
        ],
      }],
    }],
  }
  const scans = await scanColumns(plan)
  assert.deepEqual(scans, [
    {
      alias: 'o',
      schema: 'public',
      table: 'Orders',
      equality: ['status', 'region'],
      range: ['total'],
      join: ['customer_id'],
      sort: [],
    },
    {
      alias: 'C x',
      schema: 'app',
      table: 'customers',
      equality: [],
      range: [],
      join: ['id'],
      sort: [],
    },
  ])
  assert.deepEqual(candidateColumns(scans[0]), [
    ['status'],
    ['region'],
    ['total'],
    ['customer_id'],
    ['status', 'region'],
    ['status', 'region', 'total'],
    ['status', 'region', 'customer_id'],
  ])

  const sorted: PlanNode = {
    'Node Type': 'Limit',
    'Total Cost': 10,
    Plans: [{
      'Node Type': 'Sort',
      'Total Cost': 10,
      'Sort Key': ['t.d DESC', 't.id DESC'],
      Plans: [{
        'Node Type': 'Gather',
        'Total Cost': 9,
        Plans: [{
          'Node Type': 'Seq Scan',
          'Total Cost': 8,
          'Relation Name': 't',
          Schema: 'public',
          Alias: 't',
          Filter: '(t.b = $1)',
        }],
      }],
    }],
  }
  const [t] = await scanColumns(sorted)
  assert.deepEqual(t.sort, ['d', 'id'])
  assert.deepEqual(candidateColumns(t), [['b'], ['d', 'id'], ['b', 'd', 'id']])
})

Deno.test('statements: one at a time', () => {
  assert.equal(singleStatement('/* app */ select 1;  '), 'select 1')
  assert.equal(singleStatement('select 1; drop table t'), null)
  assert.equal(
    singleStatement(`select ';' as "a;b" -- ;\nfrom t`),
    `select ';' as "a;b" -- ;\nfrom t`,
  )
})

Deno.test('index names: plain when the names are, hashed and at most 63 bytes otherwise', () => {
  assert.equal(indexName('orders', ['customer_id']), 'vigil_idx_orders_customer_id')
  const long = indexName('a'.repeat(60), ['b'.repeat(60), 'c'])
  assert.equal(long.length, 63)
  assert.match(long, /^vigil_idx_a+_[0-9a-f]{8}$/)
  assert.notEqual(indexName('Orders', ['x']), indexName('orders', ['x']))
  assert.notEqual(indexName('a b', ['c']), indexName('a_b', ['c']))
  assert.match(indexName('ünïcode', ['ß']), /^vigil_idx_[a-z0-9_]+_[0-9a-f]{8}$/)
})

Deno.test('conditions are read by the real parser: quoted names with dots, casts, and what EXPLAIN prints that is not SQL', async () => {
  const plan: PlanNode = {
    'Node Type': 'Seq Scan',
    'Total Cost': 10,
    'Relation Name': 'events',
    Schema: 'public',
    Alias: 'e',
    Filter:
      `((e."kind.v2" = 'x'::text) AND ((e.at)::date <= $1) AND (hashed SubPlan 1) AND (e.n <> $2))`,
  }
  const [scan] = await scanColumns(plan)
  assert.deepEqual([scan.equality, scan.range], [['kind.v2'], ['at']])
  const partly: PlanNode = { ...plan, Filter: '((e.n = ) AND ((e.kind)::text = $1))' }
  const [readable] = await scanColumns(partly)
  assert.deepEqual(readable.equality, ['kind'], 'the part that is SQL is read')
  const unparsable: PlanNode = { ...plan, Filter: '(e.n = )' }
  assert.deepEqual(await scanColumns(unparsable), [], 'not SQL: left out, never guessed')
})

Deno.test('a condition partly not SQL (Postgres 17 subplan output) still yields its other parts', async () => {
  const plan: PlanNode = {
    'Node Type': 'Seq Scan',
    'Total Cost': 10,
    'Relation Name': 'orders',
    Schema: 'public',
    Alias: 'o',
    Filter: "((o.status = 'paid'::text) AND (ANY (o.customer_id = (hashed SubPlan 1).col1)))",
  }
  const [scan] = await scanColumns(plan)
  assert.deepEqual(scan.equality, ['status'])
})
