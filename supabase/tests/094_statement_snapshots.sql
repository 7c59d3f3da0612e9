-- vigil.snapshot_statements: today's snapshot of pg_stat_statements, taken twice the same day,
-- is one row per statement (the second replaces the first); it is compared with the previous
-- snapshot day; snapshots older than 90 days go; a quoted string pg_stat_statements kept as written
-- is masked; operators read them, other users do not; only service_role (and the agent) may take one.
begin;
set search_path = extensions, public;
select plan(18);

-- Only this test's rows: whatever the dev database kept is out of the way until the rollback.
delete from vigil.statement_snapshots;
create temporary table t094 as select (now() at time zone 'utc')::date as today;

select is((vigil.snapshot_statements() ->> 'taken_on')::date, (select today from t094),
          'the snapshot is taken for today (UTC)');
select ok((select count(*) from vigil.statement_snapshots) > 0, 'it keeps statements');
-- A planted oddity that the next snapshot of the same day must replace.
update vigil.statement_snapshots set calls = -1;

select lives_ok($$select vigil.snapshot_statements()$$, 'a second snapshot the same day is taken');
select is((select count(*) from vigil.statement_snapshots where calls = -1)::int, 0,
          'it replaced the first rather than adding to it');
select is(
  (select count(*) from vigil.statement_snapshots)::int,
  (select count(distinct (taken_on, dbid, userid, queryid)) from vigil.statement_snapshots)::int,
  'one row per statement per day');
select is((select count(distinct taken_on) from vigil.statement_snapshots)::int, 1, 'and only today''s');

select is((vigil.snapshot_statements(3) ->> 'statements')::int, 3, 'the limit bounds the statements kept');
select is((select count(*) from vigil.statement_snapshots)::int, 3,
          'today''s snapshot is the latest top: statements that fell out of it go');

-- The previous day, planted: the busiest statement took 1000 ms more on average then.
insert into vigil.statement_snapshots
  (taken_on, dbid, userid, queryid, query, calls, total_exec_ms, mean_exec_ms, rows, shared_blks_hit, shared_blks_read)
select taken_on - 1, dbid, userid, queryid, query, calls - 7, 0, mean_exec_ms + 1000, rows, 0, 0
  from vigil.statement_snapshots order by total_exec_ms desc limit 1;
-- And one from long ago, past the 90 days kept.
insert into vigil.statement_snapshots
  (taken_on, dbid, userid, queryid, query, calls, total_exec_ms, mean_exec_ms, rows, shared_blks_hit, shared_blks_read)
values ((select today from t094) - 91, 1, 1, 42, 'select $1', 1, 1, 1, 1, 0, 0);

create temporary table t094_snap as select vigil.snapshot_statements(3) as s;
select is((select (s ->> 'previous_on')::date from t094_snap), (select today - 1 from t094),
          'the previous snapshot day is found');
select is((select jsonb_array_length(s -> 'compared') from t094_snap), 1,
          'statements in both snapshots are compared');
select ok((select (c ->> 'previous_mean_ms')::float8 - (c ->> 'mean_ms')::float8 between 999 and 1001
                  and (c ->> 'calls_delta')::int >= 7
                  and length(c ->> 'query') <= 200
             from t094_snap, jsonb_array_elements(s -> 'compared') c),
          'with the means of both days, the calls since, and at most 200 characters of the query');
select is((select count(*) from vigil.statement_snapshots where taken_on < (select today - 90 from t094))::int, 0,
          'snapshots older than 90 days are dropped');

select throws_ok($$select vigil.snapshot_statements(0)$$, '22023', null, 'a limit below 1 is refused');

select ok(not has_function_privilege(r, 'vigil.snapshot_statements(integer)', 'execute'),
          format('%s may not take a snapshot', r))
  from unnest(array['anon', 'authenticated']) r;

set local role authenticated;
set local request.jwt.claims = '{"sub": "00000000-0000-4000-8000-000000000941", "role": "authenticated", "app_metadata": {"role": "devops"}}';
create temporary table t094_seen as select count(*)::int as n from vigil.statement_snapshots;
set local request.jwt.claims = '{"sub": "00000000-0000-4000-8000-000000000942", "role": "authenticated", "app_metadata": {}}';
insert into t094_seen select count(*)::int from vigil.statement_snapshots;
reset role;
select results_eq($$select n from t094_seen order by n desc$$, $$values (4), (0)$$,
                  'operators read the snapshots, other users read none');

-- Before Postgres 16, pg_stat_statements keeps a utility statement as written, password and all.
create role t094_probe;
alter role t094_probe password 't094-not-a-real-secret';
select vigil.snapshot_statements(10000);
select is_empty($$select query from vigil.statement_snapshots where query like '%t094-not-a-real-secret%'$$,
                'no quoted string is kept as written');
select isnt_empty($$select query from vigil.statement_snapshots where query = 'alter role t094_probe password ''…'''$$,
                  'the statement is kept, its password masked');

select * from finish();
rollback;
