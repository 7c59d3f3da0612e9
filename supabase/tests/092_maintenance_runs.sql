-- vigil.maintenance_runs through vigil.begin_maintenance / end_maintenance: one running row per
-- task, a dead worker's run noticed when its lease passes, only the worker ends its own run; the
-- schedules exist; operators read the runs, other users do not.
begin;
set search_path = extensions, public;
select plan(18);

select isnt(vigil.begin_maintenance('t092_vacuum', 'daily', 'worker-a'), null, 'a run begins');
select is(vigil.begin_maintenance('t092_vacuum', 'daily', 'worker-b'), null,
          'the same task does not begin twice at once');
select isnt(vigil.begin_maintenance('t092_audit', 'monthly', 'worker-b'), null, 'another task runs alongside');

select ok(not vigil.end_maintenance(
  (select id from vigil.maintenance_runs where task = 't092_vacuum'), 'worker-b', 'succeeded', 'not mine'),
  'only the worker that began a run ends it');
select ok(vigil.end_maintenance(
  (select id from vigil.maintenance_runs where task = 't092_vacuum'), 'worker-a', 'succeeded', 'vacuumed 2 tables',
  '[{"table": "public.a"}]', '[{"vacuum": "public.a"}]'), 'its worker ends it');
select results_eq(
  $$select status, summary, findings, actions, finished_at is not null from vigil.maintenance_runs where task = 't092_vacuum'$$,
  $$values ('succeeded', 'vacuumed 2 tables', '[{"table": "public.a"}]'::jsonb, '[{"vacuum": "public.a"}]'::jsonb, true)$$,
  'the run keeps what it found and did');
select isnt(vigil.begin_maintenance('t092_vacuum', 'daily', 'worker-b'), null, 'once ended, the task may run again');

-- A worker that died: its lease passes, the next begin ends its run as failed and starts anew.
update vigil.maintenance_runs set lease_until = now() - interval '1 second' where task = 't092_audit';
select isnt(vigil.begin_maintenance('t092_audit', 'monthly', 'worker-c', 2), null, 'a run whose lease passed does not block');
select results_eq(
  $$select status, error like 'abandoned:%' from vigil.maintenance_runs where task = 't092_audit' and worker = 'worker-b'$$,
  $$values ('failed', true)$$,
  'the abandoned run is recorded as failed, saying why');

select throws_ok($$select vigil.end_maintenance(1, 'x', 'done', 'x')$$, '22023', null, 'an unknown status is refused');
select throws_ok($$select vigil.begin_maintenance('T092 bad name', 'daily', 'w')$$, '23514', null,
                 'a task name must be a plain identifier');
select throws_ok($$select vigil.begin_maintenance('t092_x', 'hourly', 'w')$$, '23514', null,
                 'the cadence is daily, weekly, monthly or manual');

select set_eq(
  $$select jobname || ' ' || schedule from cron.job where jobname like 'vigil-maintenance-%'$$,
  array['vigil-maintenance-daily 23 3 * * *', 'vigil-maintenance-weekly 43 3 * * 0',
        'vigil-maintenance-monthly 53 3 1 * *'],
  'daily, weekly and monthly maintenance are scheduled');

-- Data rotation runs in SQL, recorded like every task; the alert retention job is folded into it.
insert into vigil.checks (service_id, checked_at, status, response_ms)
select id, now() - interval '31 days', 'healthy', 5 from vigil.services where name = 'vigil-health-check';
select is(vigil.rotate_own_data() ->> 'status', 'succeeded', 'data rotation runs');
select ok(
  (select status = 'succeeded' and summary ~ '^removed [1-9][0-9]* checks' and cadence = 'daily' and worker = 'pg_cron'
     from vigil.maintenance_runs where task = 'data_rotation' order by id desc limit 1),
  'its run is recorded with what it removed');
select is_empty($$select 1 from cron.job where jobname = 'vigil-alert-retention'$$,
                'alert retention is part of data rotation, not a job of its own');

set local role authenticated;
set local request.jwt.claims = '{"sub": "00000000-0000-4000-8000-000000000921", "role": "authenticated", "app_metadata": {"role": "devops"}}';
select ok((select count(*) from vigil.maintenance_runs where task like 't092_%') >= 3, 'operators read the runs');
set local request.jwt.claims = '{"sub": "00000000-0000-4000-8000-000000000922", "role": "authenticated", "app_metadata": {}}';
select is((select count(*) from vigil.maintenance_runs)::int, 0, 'other users read none');
reset role;

select * from finish();
rollback;
