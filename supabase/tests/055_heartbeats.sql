-- Heartbeats: a ping service gets a 64-hex token that vigil.record_heartbeat() counts;
-- vigil.heartbeat_verdict() judges pings, pg_cron runs (and the function a run invoked) and
-- Vigil's own cycles against period + grace; vigil.watch_cycles() writes a down check for a quiet
-- 'cycles' service without any edge function.
begin;
set search_path = extensions, public;
-- The live health-check records cycles every minute; hold them off so "the latest cycle" is ours.
lock table vigil.cycles in exclusive mode;
select plan(47);

insert into vigil.services (id, name, kind, config, created_at) values
  ('00000000-0000-4000-8000-000000000551', 't055-ping-old', 'heartbeat', '{"source":"ping","period_seconds":60}', now() - interval '10 minutes'),
  ('00000000-0000-4000-8000-000000000552', 't055-ping-new', 'heartbeat', '{"source":"ping","period_seconds":60,"grace_seconds":0}', now()),
  ('00000000-0000-4000-8000-000000000553', 't055-cron-missing', 'heartbeat', '{"source":"cron","period_seconds":60,"job":"t055-no-such-job"}', now()),
  ('00000000-0000-4000-8000-000000000554', 't055-cron-failing', 'heartbeat', '{"source":"cron","period_seconds":3600,"job":"t055-failing"}', now()),
  ('00000000-0000-4000-8000-000000000555', 't055-cron-invoker', 'heartbeat', '{"source":"cron","period_seconds":3600,"job":"t055-invoker","function":"t055-fn"}', now()),
  ('00000000-0000-4000-8000-000000000556', 't055-cron-ok', 'heartbeat', '{"source":"cron","period_seconds":3600,"job":"t055-ok","function":"t055-ok-fn"}', now()),
  ('00000000-0000-4000-8000-000000000557', 't055-cron-stale', 'heartbeat', '{"source":"cron","period_seconds":600,"job":"t055-stale"}', now() - interval '1 day'),
  ('00000000-0000-4000-8000-000000000558', 't055-cron-unrun', 'heartbeat', '{"source":"cron","period_seconds":60,"job":"t055-unrun"}', now() - interval '1 hour'),
  ('00000000-0000-4000-8000-000000000559', 't055-cycles', 'heartbeat', '{"source":"cycles","period_seconds":60,"grace_seconds":60}', now() - interval '1 day'),
  ('00000000-0000-4000-8000-00000000055a', 't055-cycles-off', 'heartbeat', '{"source":"cycles","period_seconds":60}', now() - interval '1 day'),
  ('00000000-0000-4000-8000-00000000055b', 't055-api', 'http', '{"url":"https://t055.example.com"}', now());
update vigil.services set enabled = false where id = '00000000-0000-4000-8000-00000000055a';

create function pg_temp.verdict(p_service uuid) returns text
language sql as $$
  select status || ' / ' || coalesce(error, '-') from vigil.heartbeat_verdict(p_service)
$$;

-- ─── Tokens and pings ───────────────────────────────────────────────────────────────────────
select ok((select token ~ '^[0-9a-f]{64}$' from vigil.heartbeat_tokens where service_id = '00000000-0000-4000-8000-000000000551'),
          'a ping heartbeat gets a token of 64 hex digits');
select isnt((select token from vigil.heartbeat_tokens where service_id = '00000000-0000-4000-8000-000000000551'),
            (select token from vigil.heartbeat_tokens where service_id = '00000000-0000-4000-8000-000000000552'),
            'each ping heartbeat has its own token');
select results_eq(
  $$select pings, last_ping_at from vigil.heartbeat_tokens where service_id = '00000000-0000-4000-8000-000000000551'$$,
  $$values (0::bigint, null::timestamptz)$$, 'a new token has no pings');
select is_empty(
  $$select 1 from vigil.heartbeat_tokens where service_id in ('00000000-0000-4000-8000-000000000553', '00000000-0000-4000-8000-000000000559', '00000000-0000-4000-8000-00000000055b')$$,
  'cron, cycles and non-heartbeat services get no token');

select is(pg_temp.verdict('00000000-0000-4000-8000-000000000551'), 'down / never seen in 00:10:00 (expected every 60 s)',
          'ping: never pinged, created 10 minutes ago, period 60 s + default grace 60 s: down, never seen');
select is((select measurements from vigil.heartbeat_verdict('00000000-0000-4000-8000-000000000551')),
          '{"last_seen_at": null, "decisive_status": "down"}'::jsonb,
          'the never-seen verdict measures last_seen_at as null, and is decisive: period + grace of silence is the evidence');
select is(pg_temp.verdict('00000000-0000-4000-8000-000000000552'), 'healthy / -',
          'ping: never pinged but created just now: still within its first period');

select is(vigil.record_heartbeat((select token from vigil.heartbeat_tokens where service_id = '00000000-0000-4000-8000-000000000551')),
          't055-ping-old', 'record_heartbeat returns the service''s name');
select results_eq(
  $$select pings, last_ping_at from vigil.heartbeat_tokens where service_id = '00000000-0000-4000-8000-000000000551'$$,
  $$values (1::bigint, now())$$, 'the ping is counted and its time recorded');
select is(vigil.record_heartbeat((select token from vigil.heartbeat_tokens where service_id = '00000000-0000-4000-8000-000000000551')),
          't055-ping-old', 'a second ping is accepted too');
select is((select pings from vigil.heartbeat_tokens where service_id = '00000000-0000-4000-8000-000000000551'), 2::bigint,
          'pings counts every ping');
select is((select pings from vigil.heartbeat_tokens where service_id = '00000000-0000-4000-8000-000000000552'), 0::bigint,
          'another service''s token is untouched');
select is(vigil.record_heartbeat(repeat('0', 64)), null, 'an unknown token returns null');
select is(vigil.record_heartbeat(null), null, 'a null token returns null');
select is(vigil.record_heartbeat(''), null, 'an empty token returns null');

select is(pg_temp.verdict('00000000-0000-4000-8000-000000000551'), 'healthy / -', 'ping: just pinged: healthy');
select results_eq(
  $$select measurements ->> 'last_seen_at', measurements ->> 'seconds_since' from vigil.heartbeat_verdict('00000000-0000-4000-8000-000000000551')$$,
  $$values (to_jsonb(now()) #>> '{}', '0.0'::text)$$,
  'the healthy verdict measures when it was last seen and how long ago'
);
update vigil.heartbeat_tokens set last_ping_at = now() - interval '119 seconds' where service_id = '00000000-0000-4000-8000-000000000551';
select is(pg_temp.verdict('00000000-0000-4000-8000-000000000551'), 'healthy / -', 'ping: last seen 119 s ago is within period + grace (120 s)');
update vigil.heartbeat_tokens set last_ping_at = now() - interval '3 minutes' where service_id = '00000000-0000-4000-8000-000000000551';
select is(pg_temp.verdict('00000000-0000-4000-8000-000000000551'), 'down / last seen 00:03:00 ago (expected every 60 s)',
          'ping: last seen 3 minutes ago: down, saying when');

-- Switching a service to ping gives it a token.
update vigil.services set config = '{"source":"ping","period_seconds":300}' where id = '00000000-0000-4000-8000-000000000558';
select ok((select token ~ '^[0-9a-f]{64}$' from vigil.heartbeat_tokens where service_id = '00000000-0000-4000-8000-000000000558'),
          'a heartbeat switched to source ping gets a token');
update vigil.services set config = '{"source":"cron","period_seconds":60,"job":"t055-unrun"}' where id = '00000000-0000-4000-8000-000000000558';

-- service_role (the heartbeat function) records pings.
set local role service_role;
select is(vigil.record_heartbeat((select token from vigil.heartbeat_tokens where service_id = '00000000-0000-4000-8000-000000000552')),
          't055-ping-new', 'service_role records a ping');
reset role;

select is(pg_temp.verdict('00000000-0000-4000-8000-00000000055b'), 'down / not a heartbeat service', 'a non-heartbeat service gets a down verdict');
select is(pg_temp.verdict('00000000-0000-4000-8000-0000000005ff'), 'down / not a heartbeat service', 'an unknown service gets a down verdict');

-- ─── pg_cron jobs ───────────────────────────────────────────────────────────────────────────
-- Schedules that never fire (1 January, midnight); the runs are written by hand.
do $$
begin
  perform cron.schedule('t055-failing', '0 0 1 1 *', 'select 1');
  perform cron.schedule('t055-invoker', '0 0 1 1 *', $q$select vigil.invoke('t055-fn')$q$);
  perform cron.schedule('t055-ok', '0 0 1 1 *', $q$select vigil.invoke('t055-ok-fn')$q$);
  perform cron.schedule('t055-stale', '0 0 1 1 *', 'select 1');
  perform cron.schedule('t055-unrun', '0 0 1 1 *', 'select 1');
end
$$;
insert into cron.job_run_details (jobid, job_pid, database, username, command, status, return_message, start_time, end_time)
select j.jobid, 1, 'postgres', 'postgres', j.command, r.status, r.message, now() - r.ago, now() - r.ago + interval '1 second'
  from cron.job j join (values
    ('t055-failing', 'succeeded', '1 row', interval '20 minutes'),
    ('t055-failing', 'failed', 'ERROR:  relation "t055_missing" does not exist', interval '10 minutes'),
    ('t055-invoker', 'succeeded', '1 row', interval '10 seconds'),
    ('t055-ok', 'succeeded', '1 row', interval '10 seconds'),
    ('t055-stale', 'succeeded', '1 row', interval '2 hours')) r(job, status, message, ago) on r.job = j.jobname;
insert into vigil.invocations (fn, transport, state, requested_at, completed_at, status_code, error) values
  ('t055-fn', 'notify', 'succeeded', now() - interval '1 hour', now() - interval '1 hour', 200, null),
  ('t055-fn', 'notify', 'failed', now() - interval '9 seconds', now() - interval '8 seconds', 500, 'boom: no such table'),
  ('t055-ok-fn', 'notify', 'succeeded', now() - interval '9 seconds', now() - interval '8 seconds', 200, null);

select is(pg_temp.verdict('00000000-0000-4000-8000-000000000553'), 'down / pg_cron job t055-no-such-job does not exist',
          'cron: a job that does not exist is down, named');
select is(pg_temp.verdict('00000000-0000-4000-8000-000000000554'),
          'down / pg_cron job t055-failing failed: ERROR:  relation "t055_missing" does not exist',
          'cron: a job whose latest run failed is down with the run''s message');
select results_eq(
  $$select measurements ->> 'last_run_status', (measurements ->> 'last_run_at')::timestamptz from vigil.heartbeat_verdict('00000000-0000-4000-8000-000000000554')$$,
  $$values ('failed'::text, now() - interval '10 minutes')$$,
  'the failed-run verdict measures the run''s status and time'
);
select is(pg_temp.verdict('00000000-0000-4000-8000-000000000555'),
          'down / pg_cron job t055-invoker ran, but function t055-fn answered 500: boom: no such table',
          'cron: a run whose invoked function failed is down, naming the function and its status');
select results_eq(
  $$select measurements ->> 'function_state', (measurements ->> 'status_code')::int from vigil.heartbeat_verdict('00000000-0000-4000-8000-000000000555')$$,
  $$values ('failed'::text, 500)$$,
  'the function verdict measures the invocation''s state and status code'
);
update vigil.invocations set state = 'timed_out', status_code = null, error = 'no relay answered within 00:10:00'
 where fn = 't055-fn' and state = 'failed';
select is(pg_temp.verdict('00000000-0000-4000-8000-000000000555'),
          'down / pg_cron job t055-invoker ran, but function t055-fn answered timed_out: no relay answered within 00:10:00',
          'cron: a timed-out invocation is down too, named by its state');
select is(pg_temp.verdict('00000000-0000-4000-8000-000000000556'), 'healthy / -',
          'cron: a recent successful run whose function succeeded is healthy');
select is((select (measurements ->> 'last_seen_at')::timestamptz from vigil.heartbeat_verdict('00000000-0000-4000-8000-000000000556')),
          now() - interval '10 seconds', 'the healthy cron verdict is last seen at the run''s start');
select is(pg_temp.verdict('00000000-0000-4000-8000-000000000557'), 'down / last seen 02:00:00 ago (expected every 600 s)',
          'cron: a job whose last run is older than period + grace is down');
select is(pg_temp.verdict('00000000-0000-4000-8000-000000000558'), 'down / never seen in 01:00:00 (expected every 60 s)',
          'cron: a job that exists but never ran, for longer than period + grace, is down');

-- ─── Vigil's own cycles ─────────────────────────────────────────────────────────────────────
delete from vigil.cycles;
select is(pg_temp.verdict('00000000-0000-4000-8000-000000000559'), 'down / never seen in 1 day (expected every 60 s)',
          'cycles: no cycle at all: down');
insert into vigil.cycles (id, started_at, finished_at, duration_ms, services, healthy, degraded, down)
values ('00000000-0000-4000-8000-00000000055c', now() - interval '5 minutes', now() - interval '5 minutes', 0, 0, 0, 0, 0);
select is(pg_temp.verdict('00000000-0000-4000-8000-000000000559'), 'down / last seen 00:05:00 ago (expected every 60 s)',
          'cycles: the latest cycle 5 minutes ago is stale: down');

-- The watchdog: one down check per enabled, quiet 'cycles' service, the self-service among them.
update vigil.services set created_at = now() - interval '1 day'
 where kind = 'heartbeat' and config ->> 'source' = 'cycles';
create temp table quiet as
select id from vigil.services where enabled and kind = 'heartbeat' and config ->> 'source' = 'cycles';
-- The live watchdog may have written checks already: count only those written from here on.
create temp table mark as select coalesce(max(id), 0) as id from vigil.checks;

select ok((select count(*) >= 2 from quiet), 'precondition: at least two enabled cycles services (vigil-health-check and t055-cycles)');
select is(vigil.watch_cycles(), (select count(*)::int from quiet), 'watch_cycles returns how many quiet services it wrote a check for');
select results_eq(
  $$select c.status::text, c.error, c.measurements from vigil.checks c join vigil.services s on s.id = c.service_id
     where s.name = 'vigil-health-check' and c.id > (select id from mark)$$,
  $$values ('down'::text, 'last seen 00:05:00 ago (expected every 60 s)'::text,
            jsonb_build_object('last_seen_at', now() - interval '5 minutes', 'checked_by', 'vigil-watchdog',
                               'decisive_status', 'down'))$$,
  'the self-service vigil-health-check got one down check saying when cycles were last seen, checked_by vigil-watchdog'
);
-- One such check is enough (the failure threshold's hysteresis is the grace already): when the
-- database itself was down, the first cycle after it finds the gap and the next is healthy again.
select is((select status::text from vigil.services where name = 'vigil-health-check'), 'down',
          'the one decisive down check turns vigil-health-check down');
select is((select count(*)::int from vigil.incidents i join vigil.services s on s.id = i.service_id
            where s.name = 'vigil-health-check' and i.status = 'open' and i.kind = 'service_unhealthy'), 1,
          'and opens its service_unhealthy incident, which asks auto-heal (and so pages: nothing heals it)');
select set_eq(
  $$select service_id from vigil.checks where id > (select id from mark)$$,
  $$select id from quiet$$,
  'the watchdog wrote checks for exactly the quiet cycles services'
);
select is((select count(*) from vigil.checks where id > (select id from mark)), (select count(*) from quiet),
          'one check each');
select is_empty($$select 1 from vigil.checks where id > (select id from mark) and (status <> 'down' or measurements ->> 'checked_by' is distinct from 'vigil-watchdog')$$,
                'every watchdog check is down and marked checked_by vigil-watchdog');
select is_empty($$select 1 from vigil.checks where service_id = '00000000-0000-4000-8000-00000000055a'$$,
                'a disabled cycles service gets no check');

insert into vigil.cycles (id, started_at, finished_at, duration_ms, services, healthy, degraded, down)
values ('00000000-0000-4000-8000-00000000055d', now() - interval '1 second', now(), 1000, 0, 0, 0, 0);
select is(pg_temp.verdict('00000000-0000-4000-8000-000000000559'), 'healthy / -', 'cycles: a fresh cycle: healthy');
update mark set id = (select max(id) from vigil.checks);
select is(vigil.watch_cycles(), 0, 'with a fresh cycle, watch_cycles writes nothing and returns 0');
select is_empty($$select 1 from vigil.checks where id > (select id from mark)$$, 'no check was added while cycles are fresh');

select * from finish();
rollback;
