-- vigil.dashboard_snapshot() and vigil.performance_trends(): the dashboard's reads, with the caller's
-- rights — an operator sees the system, another signed-in user an empty screen, anon nothing.
begin;
set search_path = extensions, public;
select plan(17);

insert into vigil.services (id, name, kind, config, depends_on) values
  ('00000000-0000-4000-8000-000000000911', 't091-db', 'http', '{"url":"https://t091-db.example.com"}', null),
  ('00000000-0000-4000-8000-000000000912', 't091-api', 'http', '{"url":"https://t091.example.com"}',
   array['t091-db']);
-- Three checks in one minute two minutes ago: 100, 200 and 900 ms, one of them down.
insert into vigil.checks (service_id, checked_at, status, response_ms, error) values
  ('00000000-0000-4000-8000-000000000912', date_bin('1 minute', now(), '2000-01-01') - interval '2 minutes' + interval '1 second', 'healthy', 100, null),
  ('00000000-0000-4000-8000-000000000912', date_bin('1 minute', now(), '2000-01-01') - interval '2 minutes' + interval '2 seconds', 'healthy', 200, null),
  ('00000000-0000-4000-8000-000000000912', date_bin('1 minute', now(), '2000-01-01') - interval '2 minutes' + interval '3 seconds', 'down', 900, 'connection refused');
insert into vigil.metrics (service_id, name, value, recorded_at) values
  ('00000000-0000-4000-8000-000000000911', 'active_connections', 12, date_bin('1 minute', now(), '2000-01-01') - interval '2 minutes' + interval '5 seconds');
insert into vigil.incidents (id, service_id, kind, severity, title, opened_at) overriding system value values
  (910001, '00000000-0000-4000-8000-000000000911', 'service_unhealthy', 'critical', 't091-db is down', now() - interval '5 minutes'),
  (910002, '00000000-0000-4000-8000-000000000912', 'service_unhealthy', 'critical', 't091-api is down', now() - interval '4 minutes'),
  (910003, '00000000-0000-4000-8000-000000000912', 'slow_response', 'warning', 't091-api was slow', now() - interval '2 days');
update vigil.incidents set folded_into = 910001 where id = 910002;
update vigil.incidents set status = 'resolved', resolved_at = now() - interval '1 day' where id = 910003;
insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome, detail)
values ('00000000-0000-4000-8000-0000000009c1', 'intent', 910001, '00000000-0000-4000-8000-000000000911',
        'terminate_blocker', 1, 't091 blocker', 'pending', null),
       ('00000000-0000-4000-8000-0000000009c1', 'result', 910001, '00000000-0000-4000-8000-000000000911',
        'terminate_blocker', 1, 't091 blocker', 'succeeded', 'terminated pid 4242');

-- As an operator.
set local role authenticated;
set local request.jwt.claims = '{"sub": "00000000-0000-4000-8000-0000000009d1", "role": "authenticated", "email": "op@t091.example", "app_metadata": {"role": "devops"}}';
create temporary table snap on commit drop as select vigil.dashboard_snapshot() as s;
select is((select s ->> 'operator' from snap), 'true', 'the snapshot says the caller is an operator');
select is(
  (select x ->> 'folded_under' from snap, jsonb_array_elements(s -> 'services') x where x ->> 'name' = 't091-api'),
  't091-db', 'a service whose incident is folded shows the dependency it is folded under');
select is(
  (select x -> 'depends_on' from snap, jsonb_array_elements(s -> 'services') x where x ->> 'name' = 't091-api'),
  '["t091-db"]'::jsonb, 'each service lists what it depends on');
select is(
  (select (x ->> 'latency_ms')::numeric from snap, jsonb_array_elements(s -> 'services') x where x ->> 'name' = 't091-api'),
  900::numeric, 'current latency is the latest check''s');
select is(
  (select x -> 'depends_on' from snap, jsonb_array_elements(s -> 'services') x where x ->> 'name' = 't091-db'),
  '[]'::jsonb, 'no dependencies is an empty list, not null');
select ok(
  (select bool_and(x ->> 'status' = 'open') from (
     select x from snap, jsonb_array_elements(s -> 'incidents') with ordinality e(x, n)
      where n <= (select count(*) from snap, jsonb_array_elements(s -> 'incidents') y where y ->> 'status' = 'open')) o),
  'open incidents come first');
select ok(
  (select count(*) from snap, jsonb_array_elements(s -> 'incidents') x where (x ->> 'id')::bigint = 910003) = 1,
  'recently resolved incidents follow');
select is(
  (select jsonb_build_object('outcome', x ->> 'outcome', 'attempt', x ->> 'attempt', 'max', x ->> 'max_attempts',
                             'detail', x ->> 'detail', 'service', x ->> 'service')
     from snap, jsonb_array_elements(s -> 'heal_log') x where (x ->> 'incident_id')::bigint = 910001),
  '{"outcome": "succeeded", "attempt": "1", "max": "3", "detail": "terminated pid 4242", "service": "t091-db"}'::jsonb,
  'the heal log holds each result once, with attempt n of the ladder''s maximum');
select is((select jsonb_array_length(s -> 'settings') from snap), 3, 'the controls of every environment');
select is((select s -> 'settings' -> 0 ->> 'environment' from snap), 'prod', 'production''s controls first');

select is(
  (select jsonb_build_object('p50', p ->> 'p50', 'p95', p ->> 'p95', 'p99', p ->> 'p99', 'error_rate', p ->> 'error_rate')
     from jsonb_array_elements(vigil.performance_trends('1h') -> 'points') p
    where (p ->> 't')::timestamptz = date_bin('1 minute', now(), '2000-01-01') - interval '2 minutes'),
  (select jsonb_build_object('p50', round(percentile_cont(0.5) within group (order by response_ms)::numeric, 1)::text,
                             'p95', round(percentile_cont(0.95) within group (order by response_ms)::numeric, 1)::text,
                             'p99', round(percentile_cont(0.99) within group (order by response_ms)::numeric, 1)::text,
                             'error_rate', round(100.0 * count(*) filter (where status <> 'healthy') / count(*), 2)::text)
     from vigil.checks
    where checked_at >= date_bin('1 minute', now(), '2000-01-01') - interval '2 minutes'
      and checked_at < date_bin('1 minute', now(), '2000-01-01') - interval '1 minute'),
  'each minute of the last hour has the checks'' p50, p95, p99 and failed share');
select is(
  (select (p ->> 'connections')::numeric from jsonb_array_elements(vigil.performance_trends('1h') -> 'points') p
    where (p ->> 't')::timestamptz = date_bin('1 minute', now(), '2000-01-01') - interval '2 minutes'),
  (select sum(value)::numeric from vigil.metrics where name = 'active_connections'
      and recorded_at >= date_bin('1 minute', now(), '2000-01-01') - interval '2 minutes'
      and recorded_at < date_bin('1 minute', now(), '2000-01-01') - interval '1 minute'),
  'active connections per bucket');
select is((vigil.performance_trends('7d') ->> 'bucket_seconds')::int, 7200, 'a week in two-hour buckets');
select throws_ok($$select vigil.performance_trends('2w')$$, '22023', null, 'an unknown window is refused, naming it');

-- Another signed-in user: an empty screen, never the rows.
set local request.jwt.claims = '{"sub": "00000000-0000-4000-8000-0000000009d2", "role": "authenticated", "app_metadata": {}}';
select is(
  (select jsonb_build_object('operator', s -> 'operator', 'services', s -> 'services', 'incidents', s -> 'incidents',
                             'heal_log', s -> 'heal_log', 'settings', s -> 'settings')
     from (select vigil.dashboard_snapshot() as s) x),
  '{"operator": false, "services": [], "incidents": [], "heal_log": [], "settings": []}'::jsonb,
  'a user who is not an operator reads nothing');
select is(vigil.performance_trends('1h') -> 'points', '[]'::jsonb, 'nor any trend');
reset role;

set local role anon;
select throws_ok($$select vigil.dashboard_snapshot()$$, '42501', null, 'anon may not call it');
reset role;

select * from finish();
rollback;
