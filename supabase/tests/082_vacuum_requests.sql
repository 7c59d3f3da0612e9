-- vigil.request_vacuum: the agent asks pg_cron to VACUUM a table it does not own. The table is
-- found in the catalog, the command composed from its quoted names, one pending request per table;
-- vigil.vacuum_request_status reports the run and removes the job once it ran. (The real run by
-- pg_cron is in tests/heal/postgres_strategies_test.ts.)
begin;
set search_path = extensions, public;
select plan(20);

create table public."T082 Orders" (id int);
create temp table t082_temp (id int);

set local role vigil_agent;
select throws_ok($$vacuum public."T082 Orders"$$, '25001', null,
                 'precondition: nobody runs VACUUM in a transaction (and so not in a function)');
select throws_ok($$select vigil.request_vacuum('public', 'no_such_table')$$, '42P01',
                 'request_vacuum: table public.no_such_table does not exist', 'an unknown table: refused');
select throws_ok($$select vigil.request_vacuum('public', 'T082 Orders; drop table t')$$, '42P01', null,
                 'a table name that is SQL: no such table');
select throws_ok($$select vigil.request_vacuum('pg_catalog', 'pg_class')$$, '42501', null, 'the catalogs: refused');
select throws_ok($$select vigil.request_vacuum('cron', 'job_run_details')$$, '42501', null, 'pg_cron''s tables: refused');
select throws_ok($$select vigil.request_vacuum('public', 'vigil_agent')$$, '42P01', null, 'not a table: refused');

create temp table req as select vigil.request_vacuum('public', 'T082 Orders') as id;
select isnt((select id from req), null, 'a table the catalog knows: a request');
select is(vigil.request_vacuum('public', 'T082 Orders'), (select id from req), 'asked again while pending: the same request');
reset role;

select results_eq(
  $$select j.command, j.username::text from cron.job j join vigil.vacuum_requests r on r.job_name = j.jobname
     where r.id = (select id from req)$$,
  $$values ('vacuum (analyze) public."T082 Orders"', 'postgres')$$,
  'one pg_cron job, the command composed from the quoted names, run as the function''s owner'
);
select results_eq(
  $$select requested_by, finished_at is null from vigil.vacuum_requests where id = (select id from req)$$,
  $$values ('postgres', true)$$,
  'recorded, pending, with who asked'
);

set local role vigil_agent;
select is(vigil.vacuum_request_status((select id from req)) ->> 'state', 'queued', 'before pg_cron runs it: queued');
reset role;
-- pg_cron's record of a run, as it writes one.
insert into cron.job_run_details (jobid, runid, job_pid, database, username, command, status, return_message, start_time, end_time)
select j.jobid, 999082, 0, 'postgres', 'postgres', j.command, 'running', null, now(), null
  from cron.job j join vigil.vacuum_requests r on r.job_name = j.jobname where r.id = (select id from req);
set local role vigil_agent;
select is(vigil.vacuum_request_status((select id from req)) ->> 'state', 'running', 'while it runs: running');
reset role;
select isnt_empty($$select 1 from cron.job j join vigil.vacuum_requests r on r.job_id = j.jobid where r.id = (select id from req)$$,
                  'while it runs the job stays: removing it would cancel the VACUUM');
update cron.job_run_details set status = 'succeeded', return_message = 'VACUUM', end_time = now() where runid = 999082;
set local role vigil_agent;
select is(vigil.vacuum_request_status((select id from req)) ->> 'state', 'succeeded', 'once it ran: its outcome');
reset role;
select is_empty($$select 1 from cron.job j join vigil.vacuum_requests r on r.job_name = j.jobname where r.id = (select id from req)$$,
                'and the job is gone: it runs once');
select results_eq($$select outcome, detail from vigil.vacuum_requests where id = (select id from req)$$,
                  $$values ('succeeded', 'VACUUM')$$, 'the outcome is kept');
-- A request pg_cron never ran within the hour is given up, its job removed.
create table public.t082_never (id int);
set local role vigil_agent;
create temp table never as select vigil.request_vacuum('public', 't082_never') as id;
reset role;
update vigil.vacuum_requests set requested_at = now() - interval '2 hours' where id = (select id from never);
set local role vigil_agent;
select is(vigil.vacuum_request_status((select id from never)) ->> 'state', 'abandoned', 'not run within an hour: abandoned');
reset role;
select results_eq($$select outcome, detail, (select count(*)::int from cron.job j where j.jobid = r.job_id)
                      from vigil.vacuum_requests r where id = (select id from never)$$,
                  $$values ('abandoned', 'pg_cron did not run it within an hour', 0)$$,
                  'with the reason, and no job left behind');

set local role authenticated;
select throws_ok($$select vigil.request_vacuum('public', 'T082 Orders')$$, '42501', null,
                 'an ordinary user cannot ask for a VACUUM');
reset role;
select ok(not has_function_privilege('vigil_agent', 'vigil.sweep_vacuum_requests()', 'EXECUTE'),
          'the sweep is pg_cron''s');

select * from finish();
rollback;
