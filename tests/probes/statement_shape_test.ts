import assert from 'node:assert/strict'
import {
  type QualifiedName,
  statementShape,
  StatementShapeError,
} from '../../supabase/functions/_shared/probes/statement-shape.ts'

const q = (schema: string | null, name: string): QualifiedName => ({ schema, name })
const sorted = (names: QualifiedName[]) =>
  [...names].sort((a, b) =>
    `${a.schema ?? ''}.${a.name}`.localeCompare(`${b.schema ?? ''}.${b.name}`)
  )
const assertNames = (got: QualifiedName[], want: QualifiedName[], msg?: string) =>
  assert.deepEqual(sorted(got), sorted(want), msg)

Deno.test('a pg_stat_statements select with $n params is a plain select', async () => {
  const shape = await statementShape(
    'select * from public.orders where customer_id = $1 order by created_at desc limit $2',
  )
  assert.equal(shape.kind, 'select')
  assert.equal(shape.plainSelect, true)
  assertNames(shape.relations, [q('public', 'orders')])
  assertNames(shape.operators, [q(null, '=')])
  assert.deepEqual(shape.functions, [])
  assert.deepEqual(shape.types, [])
})

Deno.test('normalised text with IN lists, casts of params and comments parses', async () => {
  const shape = await statementShape(
    '/* app */ SELECT "Id", name FROM "MySchema"."Users" u WHERE u.id IN ($1, $2, $3) ' +
      'AND created_at > $4::timestamptz AND status = ANY($5) -- trailing',
  )
  assert.equal(shape.plainSelect, true)
  assertNames(shape.relations, [q('MySchema', 'Users')])
  assertNames(shape.operators, [q(null, '='), q(null, '>')])
  assertNames(shape.types, [q(null, 'timestamptz')])
})

Deno.test('functions are found in WHERE, FROM, CTEs, JOIN quals, ORDER BY and more', async () => {
  const cases: [string, QualifiedName[]][] = [
    ['select * from t where a = public.f($1) and b = f()', [q('public', 'f'), q(null, 'f')]],
    ['select * from f()', [q(null, 'f')]],
    ['select * from public.f($1) as x(a int)', [q('public', 'f')]],
    ['with c as (select g(a) from t) select * from c', [q(null, 'g')]],
    [
      'select * from t join u on u.id = t.id and u.k in (select h(k) from v)',
      [q(null, 'h')],
    ],
    ['select * from t order by s.score(t.a) desc', [q('s', 'score')]],
    ['select * from t, lateral (select l(t.a)) x', [q(null, 'l')]],
    ['select sum(a) over (partition by w(b)) from t', [q(null, 'sum'), q(null, 'w')]],
    ['select case when a then coalesce(c1(x), 0) end from t', [q(null, 'c1')]],
    ['select * from (values (v1($1)), (v2($2))) as t(x)', [q(null, 'v1'), q(null, 'v2')]],
    ['select count(*) filter (where fl(a)) from t', [q(null, 'count'), q(null, 'fl')]],
    ['select now(), count(*), lower(x) from t', [
      q(null, 'now'),
      q(null, 'count'),
      q(null, 'lower'),
    ]],
    ['select "Quoted"."Fn"(1)', [q('Quoted', 'Fn')]],
    ['select * from t tablesample system_rows(10)', [q(null, 'system_rows')]],
  ]
  for (const [sql, want] of cases) assertNames((await statementShape(sql)).functions, want, sql)
})

Deno.test('special-syntax functions parse as pg_catalog; COALESCE, CASE, now-values do not', async () => {
  const shape = await statementShape(
    "select extract(epoch from x), substring(s from 2), trim(s), overlay(s placing 'a' from 1), " +
      'coalesce(a, b), nullif(a, b), greatest(a, b), current_timestamp from t',
  )
  assertNames(shape.functions, [
    q('pg_catalog', 'extract'),
    q('pg_catalog', 'substring'),
    q('pg_catalog', 'btrim'),
    q('pg_catalog', 'overlay'),
  ])
})

Deno.test('a CTE name is not a relation, but the same name outside its scope is', async () => {
  let shape = await statementShape(
    'with recent as (select * from public.orders) select * from recent join customers c on true',
  )
  assertNames(shape.relations, [q('public', 'orders'), q(null, 'customers')])

  shape = await statementShape('select * from (with t as (select 1) select * from t) x, t')
  assertNames(shape.relations, [q(null, 't')], 'the outer t is a table')

  shape = await statementShape('with a as (select * from b), b as (select 1) select * from a')
  assertNames(shape.relations, [q(null, 'b')], 'a non-recursive CTE cannot see later ones')

  shape = await statementShape(
    'with recursive r as (select 1 n union all select n + 1 from r) select * from r',
  )
  assertNames(shape.relations, [], 'a recursive CTE sees itself')

  shape = await statementShape('with d as (select 1) select * from public.d')
  assertNames(shape.relations, [q('public', 'd')], 'a qualified name is never a CTE')
})

Deno.test('plainSelect: modifying CTEs, SELECT INTO and locking clauses are not plain', async () => {
  const notPlain = [
    'with d as (delete from t returning *) select * from d',
    'with x as (select 1), u as (update t set a = 1 returning a) select * from x',
    'select * from (with i as (insert into t values (1) returning *) select * from i) s',
    'select * from t where id = $1 for update',
    'select * from t join (select * from u for share skip locked) s on true',
    'select * into new_t from t',
    'select * into new_t from a union select * from b',
  ]
  for (const sql of notPlain) {
    const shape = await statementShape(sql)
    assert.equal(shape.kind, 'select', sql)
    assert.equal(shape.plainSelect, false, sql)
  }
  const d = await statementShape('with d as (delete from t returning *) select * from d')
  assertNames(d.relations, [q(null, 't')])
  const into = await statementShape('select * into new_t from t')
  assertNames(into.relations, [q(null, 'new_t'), q(null, 't')])

  for (const sql of ['select 1', 'values (1), (2)', 'table t', 'select 1 union select 2']) {
    const shape = await statementShape(sql)
    assert.equal(shape.plainSelect, true, sql)
  }
})

Deno.test('insert, update, delete, merge and utility kinds', async () => {
  const cases: [string, string, QualifiedName[]][] = [
    ['insert into public.t (a) values ($1) returning id', 'insert', [q('public', 't')]],
    ['update t set a = $1 from u where u.id = t.id', 'update', [q(null, 't'), q(null, 'u')]],
    ['delete from t using u where u.id = t.id', 'delete', [q(null, 't'), q(null, 'u')]],
    [
      'merge into t using s on t.id = s.id when matched then update set a = s.a ' +
      'when not matched then insert (id, a) values (s.id, s.a)',
      'merge',
      [q(null, 't'), q(null, 's')],
    ],
    ['with x as (select 1) insert into x select * from x', 'insert', [q(null, 'x')]],
    ['create index on t (a)', 'utility', [q(null, 't')]],
    ['explain select * from t', 'utility', [q(null, 't')]],
    ['vacuum t', 'utility', [q(null, 't')]],
  ]
  for (const [sql, kind, relations] of cases) {
    const shape = await statementShape(sql)
    assert.equal(shape.kind, kind, sql)
    assert.equal(shape.plainSelect, false, sql)
    assertNames(shape.relations, relations, sql)
  }
  const call = await statementShape('call public.p($1)')
  assert.equal(call.kind, 'utility')
  assertNames(call.functions, [q('public', 'p')])
})

Deno.test('operators: OPERATOR(schema.op), plain and implicit ones', async () => {
  let shape = await statementShape('select * from t where a OPERATOR(public.===) b and c @@ d')
  assertNames(shape.operators, [q('public', '==='), q(null, '@@')])

  shape = await statementShape(
    "select * from t where a between 1 and 2 and b like 'x%' and c is distinct from d " +
      'and e = any($1) and f not in (1, 2) order by g using >',
  )
  assertNames(shape.operators, [
    q(null, '>='),
    q(null, '<='),
    q(null, '~~'),
    q(null, '='),
    q(null, '<>'),
    q(null, '>'),
  ])

  shape = await statementShape(
    'select case k when 1 then 0 end from t join u using (id) where x in (select y from v)',
  )
  assertNames(shape.operators, [q(null, '=')], 'CASE x WHEN, USING and IN (subquery) use "="')
})

Deno.test('types named in casts and typed literals', async () => {
  const shape = await statementShape(
    "select x::public.mytype, $1::int, interval '1 day', cast(y as text[]) from t",
  )
  assertNames(shape.types, [
    q('public', 'mytype'),
    q('pg_catalog', 'int4'),
    q('pg_catalog', 'interval'),
    q(null, 'text'),
  ])
})

Deno.test('results are deduplicated', async () => {
  const shape = await statementShape(
    'select f(a), f(b), public.f(c) from t, t t2 where a = b and c = d',
  )
  assertNames(shape.functions, [q(null, 'f'), q('public', 'f')])
  assertNames(shape.relations, [q(null, 't')])
  assertNames(shape.operators, [q(null, '=')])
})

Deno.test('Postgres 17 syntax is accepted', async () => {
  const shape = await statementShape(
    "select * from json_table($1::jsonb, '$[*]' columns (a int path '$.a')) jt",
  )
  assert.equal(shape.plainSelect, true)
  assertNames(shape.types, [q(null, 'jsonb')])
})

Deno.test('several statements, none, or a syntax error throw StatementShapeError', async () => {
  await assert.rejects(statementShape('select 1; select 2'), (err: unknown) => {
    assert.ok(err instanceof StatementShapeError)
    assert.equal(err.name, 'StatementShapeError')
    assert.match(err.message, /exactly one SQL statement, found 2/)
    return true
  })
  for (const sql of ['', '  -- only a comment\n', ';']) {
    await assert.rejects(statementShape(sql), /exactly one SQL statement, found none/)
  }
  await assert.rejects(statementShape('selec * from t'), (err: unknown) => {
    assert.ok(err instanceof StatementShapeError)
    assert.match(err.message, /syntax error at or near "selec"/)
    assert.equal(err.position, 0)
    return true
  })
  await assert.rejects(statementShape("select 'unterminated"), StatementShapeError)
  // A trailing semicolon is still one statement.
  assert.equal((await statementShape('select 1;')).kind, 'select')
})

Deno.test('column references are listed by their last name: t.f may be a call f(t)', async () => {
  const shape = await statementShape('select t.f, g, "Mixed Case" from t where t.h = $1')
  assert.deepEqual([...shape.columns].sort(), ['Mixed Case', 'f', 'g', 'h'])
})
