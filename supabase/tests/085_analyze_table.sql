-- vigil.analyze_table: ANALYZE of a table the agent does not own, found in the catalog.
begin;
set search_path = extensions, public;
select plan(8);

create table public."T085 Stats" (id int);
insert into public."T085 Stats" select generate_series(1, 100);

set local role vigil_agent;
select throws_ok($$select vigil.analyze_table('public', 'no_such_table')$$, '42P01',
                 'analyze_table: table public.no_such_table does not exist', 'an unknown table: refused');
select throws_ok($$select vigil.analyze_table('public', 'T085 Stats; drop table x')$$, '42P01', null,
                 'a table name that is SQL: no such table');
select lives_ok($$select vigil.analyze_table('vigil', 'checks')$$, 'Vigil''s own tables are analyzed like any other');
select throws_ok($$select vigil.analyze_table('cron', 'job_run_details')$$, '42501', null, 'pg_cron''s: refused');
select throws_ok($$select vigil.analyze_table('pg_catalog', 'pg_class')$$, '42501', null, 'the catalogs: refused');
select lives_ok($$select vigil.analyze_table('public', 'T085 Stats')$$, 'a table the catalog knows: analyzed');
reset role;
select is((select reltuples from pg_class where oid = 'public."T085 Stats"'::regclass), 100::real,
          'its statistics are fresh: the planner now knows its 100 rows');
set local role authenticated;
select throws_ok($$select vigil.analyze_table('public', 'T085 Stats')$$, '42501', null, 'an ordinary user may not');
reset role;

select * from finish();
rollback;
