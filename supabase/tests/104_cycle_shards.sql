-- Sharded cycles: a run is planned with its shards (bounds checked), a shard records once whatever
-- retries or late answers follow and only its own services, a failure never overwrites a recorded
-- shard, the coordinator or the watchdog closes the run (missing shards named on vigil-health-check),
-- retention takes old runs; and who may read or call what.
begin;
set search_path = extensions, public;
select plan(68);

alter table vigil.incidents disable trigger incidents_request_heal;
insert into vigil.services (id, name, kind, config) values
  ('00000000-0000-4000-8000-000000001041', 't104-a', 'http', '{"url": "https://t104.example.com/a"}'),
  ('00000000-0000-4000-8000-000000001042', 't104-b', 'http', '{"url": "https://t104.example.com/b"}'),
  ('00000000-0000-4000-8000-000000001043', 't104-c', 'http', '{"url": "https://t104.example.com/c"}');
-- Vigil's own service, healthy, so that a lost shard visibly moves it.
update vigil.services set status = 'healthy', failure_streak = 0, down_streak = 0, success_streak = 5, enabled = true
 where name = 'vigil-health-check';

create function pg_temp.plan(p_id text, p_size int, p_shards jsonb, p_deadline_ms int default 60000) returns jsonb
language sql as $$
  select vigil.start_cycle_run(jsonb_build_object('id', p_id, 'trigger', 'cron', 'shard_size', p_size,
                                                 'deadline_ms', p_deadline_ms, 'shards', p_shards))
$$;
create function pg_temp.shard_cycle(p_id text, p_run text, p_shard int, p_services text[], p_extra jsonb default '{}')
returns jsonb language sql as $$
  select vigil.record_cycle(jsonb_build_object(
    'id', p_id, 'run_id', p_run, 'shard', p_shard, 'started_at', now(), 'finished_at', now(), 'duration_ms', 12,
    'results', (select jsonb_agg(jsonb_build_object('service_id', s, 'status', 'healthy', 'response_ms', 5))
                  from unnest(p_services) s)) || p_extra)
$$;

-- ─── Shape and access ───────────────────────────────────────────────────────────────────────
select policies_are('vigil', 'cycle_runs', array['Operators can read cycle runs', 'Vigil''s agent']);
select policies_are('vigil', 'cycle_shards', array['Operators can read cycle shards', 'Vigil''s agent']);
select table_privs_are('vigil', t, 'anon', array[]::text[], format('anon has no privileges on vigil.%s', t))
  from unnest(array['cycle_runs', 'cycle_shards']) t;
select table_privs_are('vigil', t, 'authenticated', array['SELECT'], format('authenticated may only SELECT vigil.%s', t))
  from unnest(array['cycle_runs', 'cycle_shards']) t;
select table_privs_are('vigil', t, 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
                       format('service_role may SELECT, INSERT, UPDATE and DELETE vigil.%s', t))
  from unnest(array['cycle_runs', 'cycle_shards']) t;
select function_privs_are('vigil', f, a, r, case when r = 'service_role' then array['EXECUTE'] else array[]::text[] end,
                          format('%s %s execute vigil.%s', r, case when r = 'service_role' then 'can' else 'cannot' end, f))
  from (values ('start_cycle_run', array['jsonb']::name[]), ('finish_cycle_run', array['uuid', 'text']::name[])) f(f, a),
       unnest(array['anon', 'authenticated', 'service_role']) r;
select is_definer('vigil', 'record_cycle', array['jsonb'], 'vigil.record_cycle is still security definer');

-- ─── Planning ───────────────────────────────────────────────────────────────────────────────
select throws_ok($$select pg_temp.plan('00000000-0000-4000-8000-0000000010a0', 0, '[{"service_ids": ["00000000-0000-4000-8000-000000001041"], "deadline_ms": 10000}]')$$,
                 '22023', 'shard_size must be a whole number from 1 to 1000', 'a shard size of 0 is refused by name');
select throws_ok($$select pg_temp.plan('00000000-0000-4000-8000-0000000010a0', 1001, '[{"service_ids": ["00000000-0000-4000-8000-000000001041"], "deadline_ms": 10000}]')$$,
                 '22023', 'shard_size must be a whole number from 1 to 1000', 'a shard size past 1000 is refused by name');
select throws_ok($$select pg_temp.plan('00000000-0000-4000-8000-0000000010a0', 1, '[{"service_ids": ["00000000-0000-4000-8000-000000001041", "00000000-0000-4000-8000-000000001042"], "deadline_ms": 10000}]')$$,
                 '22023', 'shards[0].service_ids: must hold 1 to 1 services', 'a shard bigger than the shard size is refused, naming it');
select throws_ok($$select pg_temp.plan('00000000-0000-4000-8000-0000000010a0', 2, '[{"service_ids": [], "deadline_ms": 10000}]')$$,
                 '22023', 'shards[0].service_ids: must hold 1 to 2 services', 'an empty shard is refused');
select throws_ok($$select pg_temp.plan('00000000-0000-4000-8000-0000000010a0', 2, '[]')$$,
                 '22023', 'a cycle run has at least one shard', 'a run without shards is refused');
select throws_ok($$select pg_temp.plan('00000000-0000-4000-8000-0000000010a0', 2, '[{"service_ids": ["00000000-0000-4000-8000-000000001041"], "deadline_ms": 10000}, {"service_ids": ["00000000-0000-4000-8000-000000001041"], "deadline_ms": 10000}]')$$,
                 '22023', 'a service is in two shards', 'a service in two shards is refused');

select lives_ok($$select pg_temp.plan('00000000-0000-4000-8000-0000000010a1', 2, '[{"service_ids": ["00000000-0000-4000-8000-000000001041", "00000000-0000-4000-8000-000000001042"], "deadline_ms": 10000}, {"service_ids": ["00000000-0000-4000-8000-000000001043"], "deadline_ms": 10000}]')$$,
                'a run of two shards is planned');
select results_eq($$select status, shards, services, shard_size, finished_at is null from vigil.cycle_runs where id = '00000000-0000-4000-8000-0000000010a1'$$,
                  $$values ('running'::text, 2, 3, 2, true)$$, 'the run is running, with its shards and services counted');
select results_eq($$select shard, services, status, attempts from vigil.cycle_shards where run_id = '00000000-0000-4000-8000-0000000010a1' order by shard$$,
                  $$values (0, 2, 'pending'::text, 0), (1, 1, 'pending'::text, 0)$$, 'each shard is pending, with its services');

select is(vigil.begin_shard_attempt('00000000-0000-4000-8000-0000000010a1', 0), 1, 'the first attempt is number 1');
select is((select status from vigil.cycle_shards where run_id = '00000000-0000-4000-8000-0000000010a1' and shard = 0), 'running', 'a shard sent is running');
select is(vigil.begin_shard_attempt('00000000-0000-4000-8000-0000000010a1', 7), 0, 'an attempt at an unknown shard is 0');

-- ─── Recording: once per shard, only its own services ──────────────────────────────────────
select is(pg_temp.shard_cycle('00000000-0000-4000-8000-0000000010c1', '00000000-0000-4000-8000-0000000010a1', 0,
                              array['00000000-0000-4000-8000-000000001041', '00000000-0000-4000-8000-000000001042', '00000000-0000-4000-8000-000000001043']) -> 'checks',
          '2'::jsonb, 'a shard records its own two services, not the third one it was handed');
select results_eq($$select status, cycle_id, attempts from vigil.cycle_shards where run_id = '00000000-0000-4000-8000-0000000010a1' and shard = 0$$,
                  $$values ('ok'::text, '00000000-0000-4000-8000-0000000010c1'::uuid, 1)$$, 'the shard is ok, with its cycle');
select results_eq($$select run_id, shard, services from vigil.cycles where id = '00000000-0000-4000-8000-0000000010c1'$$,
                  $$values ('00000000-0000-4000-8000-0000000010a1'::uuid, 0, 2)$$, 'the cycle row names its run and shard');
select is(pg_temp.shard_cycle('00000000-0000-4000-8000-0000000010c2', '00000000-0000-4000-8000-0000000010a1', 0,
                              array['00000000-0000-4000-8000-000000001041', '00000000-0000-4000-8000-000000001042']),
          '{"cycle_id": null, "checks": 0, "metrics": 0, "duplicate": true}'::jsonb,
          'a second recording of the shard (a retry, a late answer) is told it is a duplicate');
select is((select count(*)::int from vigil.checks where service_id = '00000000-0000-4000-8000-000000001041'), 1,
          'and stores nothing: one check per service');
select is_empty($$select 1 from vigil.cycles where id = '00000000-0000-4000-8000-0000000010c2'$$, 'nor a cycle row');
select is(pg_temp.shard_cycle('00000000-0000-4000-8000-0000000010c3', '00000000-0000-4000-8000-0000000010a1', 0,
                              array['00000000-0000-4000-8000-000000001041'], '{"confirmation": true}') -> 'checks',
          '1'::jsonb, 'the shard''s confirmation round records beside its first round');
select throws_ok($$select pg_temp.shard_cycle('00000000-0000-4000-8000-0000000010c4', '00000000-0000-4000-8000-0000000010a1', 9,
                                             array['00000000-0000-4000-8000-000000001041'])$$,
                 'P0002', 'no shard 9 in cycle run 00000000-0000-4000-8000-0000000010a1', 'a cycle for an unknown shard is refused');
select throws_ok($$select vigil.record_cycle('{"id": "00000000-0000-4000-8000-0000000010c5", "run_id": "00000000-0000-4000-8000-0000000010a1", "results": []}')$$,
                 '22023', 'a shard''s cycle names both run_id and shard', 'a run without a shard is refused');
select is(vigil.record_cycle(jsonb_build_object('id', '00000000-0000-4000-8000-0000000010c6', 'started_at', now(), 'finished_at', now(),
                                                'duration_ms', 3, 'results', jsonb_build_array(jsonb_build_object(
                                                  'service_id', '00000000-0000-4000-8000-000000001043', 'status', 'healthy'))))
          -> 'checks', '1'::jsonb, 'a cycle of its own records as before');

-- A failure never overwrites a recorded shard.
select is(vigil.record_shard_failure('00000000-0000-4000-8000-0000000010a1', 0, 'timed_out', 'attempt 1: no answer'), 'ok',
          'a time-out written after the shard recorded leaves it ok');
select is(vigil.record_shard_failure('00000000-0000-4000-8000-0000000010a1', 1, 'failed', 'attempt 1: HTTP 500'), 'failed',
          'a shard that did not record is failed');
select throws_ok($$select vigil.record_shard_failure('00000000-0000-4000-8000-0000000010a1', 1, 'ok', '')$$, '22023', null,
                 'a failure is failed or timed_out, nothing else');

-- ─── Closing ────────────────────────────────────────────────────────────────────────────────
select is(vigil.finish_cycle_run('00000000-0000-4000-8000-0000000010a1', 'health-check') ->> 'status', 'partial',
          'a run with a failed shard closes partial');
select results_eq($$select c.status::text, c.measurements ->> 'run_id', c.measurements -> 'lost_shards' -> 0 ->> 'shard'
                      from vigil.checks c join vigil.services s on s.id = c.service_id
                     where s.name = 'vigil-health-check' and c.measurements ->> 'run_id' = '00000000-0000-4000-8000-0000000010a1'$$,
                  $$values ('degraded'::text, '00000000-0000-4000-8000-0000000010a1'::text, '1'::text)$$,
                  'vigil-health-check gets a degraded check naming the run and the lost shard');
select matches((select c.error from vigil.checks c join vigil.services s on s.id = c.service_id
                 where s.name = 'vigil-health-check' and c.measurements ->> 'run_id' = '00000000-0000-4000-8000-0000000010a1'),
               '^cycle run 00000000-0000-4000-8000-0000000010a1 lost 1 of 2 shards \(shard 1 failed\): their 1 services were not checked$',
               'its error says which run lost which shard');
select is((select status::text from vigil.services where name = 'vigil-health-check'), 'degraded',
          'the check is decisive: vigil-health-check turns degraded at once');
select is((select severity::text from vigil.incidents i join vigil.services s on s.id = i.service_id
            where s.name = 'vigil-health-check' and i.status = 'open' and i.kind = 'service_unhealthy'), 'warning',
          'and a warning incident opens on it');
select is(vigil.finish_cycle_run('00000000-0000-4000-8000-0000000010a1', 'vigil-watchdog') -> 'already_closed', 'true'::jsonb,
          'a run closes once');

-- The watchdog: a run past its deadline whose coordinator died; one shard reported, one never did.
select pg_temp.plan('00000000-0000-4000-8000-0000000010a2', 1, '[{"service_ids": ["00000000-0000-4000-8000-000000001041"], "deadline_ms": 10000}, {"service_ids": ["00000000-0000-4000-8000-000000001042"], "deadline_ms": 10000}]');
select pg_temp.plan('00000000-0000-4000-8000-0000000010a3', 1, '[{"service_ids": ["00000000-0000-4000-8000-000000001043"], "deadline_ms": 10000}]');
select vigil.begin_shard_attempt('00000000-0000-4000-8000-0000000010a2', 1);
select pg_temp.shard_cycle('00000000-0000-4000-8000-0000000010c7', '00000000-0000-4000-8000-0000000010a2', 0,
                           array['00000000-0000-4000-8000-000000001041']);
update vigil.cycle_runs set started_at = now() - interval '5 minutes', deadline_at = now() - interval '1 minute'
 where id = '00000000-0000-4000-8000-0000000010a2';
select cmp_ok(vigil.watch_cycles(), '>=', 1, 'the watchdog writes a check for the run it closes');
select results_eq($$select shard, status from vigil.cycle_shards where run_id = '00000000-0000-4000-8000-0000000010a2' order by shard$$,
                  $$values (0, 'ok'::text), (1, 'missing'::text)$$, 'the shard that never reported is missing; the other is kept');
select results_eq($$select status, closed_by from vigil.cycle_runs where id = '00000000-0000-4000-8000-0000000010a2'$$,
                  $$values ('partial'::text, 'vigil-watchdog'::text)$$, 'the run is closed partial by the watchdog');
select matches((select c.error from vigil.checks c join vigil.services s on s.id = c.service_id
                 where s.name = 'vigil-health-check' and c.measurements ->> 'run_id' = '00000000-0000-4000-8000-0000000010a2'),
               'lost 1 of 2 shards \(shard 1 missing\)', 'vigil-health-check is told which shard went missing');
select is((select status from vigil.cycle_runs where id = '00000000-0000-4000-8000-0000000010a3'), 'running',
          'a run within its deadline is left alone');

-- After the run closed, nothing of it moves: a late shard records nothing, a retry does not start,
-- a failure does not overwrite missing; closing again tells the totals.
select is(pg_temp.shard_cycle('00000000-0000-4000-8000-0000000010c9', '00000000-0000-4000-8000-0000000010a2', 1,
                              array['00000000-0000-4000-8000-000000001042']) -> 'run_closed', 'true'::jsonb,
          'a shard answering after its run closed is told so');
select results_eq($$select status, cycle_id from vigil.cycle_shards where run_id = '00000000-0000-4000-8000-0000000010a2' and shard = 1$$,
                  $$values ('missing'::text, null::uuid)$$, 'and records nothing: the shard stays missing, as the run said');
select is(vigil.begin_shard_attempt('00000000-0000-4000-8000-0000000010a2', 1), 0, 'no attempt starts in a closed run');
select is(vigil.record_shard_failure('00000000-0000-4000-8000-0000000010a2', 1, 'timed_out', 'attempt 2: late'), 'missing',
          'a failure written after the close leaves the shard missing');
select is((vigil.finish_cycle_run('00000000-0000-4000-8000-0000000010a2', 'health-check') ->> 'services')::int, 1,
          'closing a closed run again answers with its totals (the coordinator after the watchdog)');

-- All shards recorded: ok, and nothing on vigil-health-check.
select pg_temp.shard_cycle('00000000-0000-4000-8000-0000000010c8', '00000000-0000-4000-8000-0000000010a3', 0,
                           array['00000000-0000-4000-8000-000000001043']);
select results_eq($$select vigil.finish_cycle_run('00000000-0000-4000-8000-0000000010a3', 'health-check') - 'run_id'$$,
                  $$values ('{"status": "ok", "closed_by": "health-check", "shards_ok": 1, "services": 1, "healthy": 1, "degraded": 0, "down": 0, "lost_shards": []}'::jsonb)$$,
                  'a run whose shards all recorded closes ok, with its totals');
select is_empty($$select 1 from vigil.checks c join vigil.services s on s.id = c.service_id
                   where s.name = 'vigil-health-check' and c.measurements ->> 'run_id' = '00000000-0000-4000-8000-0000000010a3'$$,
                'and tells vigil-health-check nothing');
select results_eq($$select run_id, shard, services, healthy, down from vigil.cycles where id = '00000000-0000-4000-8000-0000000010a3'$$,
                  $$values ('00000000-0000-4000-8000-0000000010a3'::uuid, null::integer, 1, 1, 0)$$,
                  'the closed run is one cycle of its totals, the latest: the dashboard, reports and metrics see all of it');
-- A shard's row finishing after the latest whole cycle (a run still going) is not "the latest cycle".
insert into vigil.cycles (id, started_at, finished_at, duration_ms, services, healthy, degraded, down, run_id, shard)
values ('00000000-0000-4000-8000-0000000010cb', now(), now() + interval '1 minute', 1, 7, 7, 0, 0,
        '00000000-0000-4000-8000-0000000010a3', 0);
select is((vigil.prometheus_snapshot() -> 'cycle' ->> 'services')::int,
          (select services from vigil.cycles where shard is null order by finished_at desc limit 1),
          'the Prometheus export''s latest cycle is a whole one, not a shard of a run going on');
-- A run that recorded nothing is no cycle: the 'cycles' heartbeat must not hear one arrive.
select pg_temp.plan('00000000-0000-4000-8000-0000000010a4', 1, '[{"service_ids": ["00000000-0000-4000-8000-000000001043"], "deadline_ms": 10000}]');
select vigil.begin_shard_attempt('00000000-0000-4000-8000-0000000010a4', 0);
select vigil.record_shard_failure('00000000-0000-4000-8000-0000000010a4', 0, 'failed', 'attempt 1: HTTP 500');
select is(vigil.finish_cycle_run('00000000-0000-4000-8000-0000000010a4', 'health-check') ->> 'status', 'failed',
          'a run none of whose shards recorded closes failed');
select is_empty($$select 1 from vigil.cycles where id = '00000000-0000-4000-8000-0000000010a4'$$,
                'and writes no cycle row');

-- ─── Who reads ──────────────────────────────────────────────────────────────────────────────
set local role authenticated;
set local request.jwt.claims = '{"sub":"00000000-0000-4000-8000-0000000010f1","role":"authenticated","app_metadata":{"role":"devops"}}';
select is((select count(*)::int from vigil.cycle_shards where run_id = '00000000-0000-4000-8000-0000000010a2'), 2, 'an operator reads the shards');
select throws_ok($$update vigil.cycle_runs set status = 'ok'$$, '42501', null, 'an operator cannot change a run');
set local request.jwt.claims = '{"sub":"00000000-0000-4000-8000-0000000010f2","role":"authenticated","app_metadata":{"provider":"email"}}';
select is((select count(*)::int from vigil.cycle_runs), 0, 'a user who is no operator sees no runs');
select is((select count(*)::int from vigil.cycle_shards), 0, 'nor shards');
reset role;

-- ─── Retention ──────────────────────────────────────────────────────────────────────────────
update vigil.cycle_runs set started_at = now() - interval '40 days', deadline_at = now() - interval '39 days'
 where id = '00000000-0000-4000-8000-0000000010a2';
select cmp_ok((vigil.apply_retention() ->> 'cycle_runs')::int, '>=', 1, 'retention deletes closed runs past the raw window');
select is_empty($$select 1 from vigil.cycle_shards where run_id = '00000000-0000-4000-8000-0000000010a2'$$, 'with their shards');

select * from finish();
rollback;
