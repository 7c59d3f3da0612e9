-- Checks are counted per service and hour in vigil.check_rollups by a statement trigger; uptime
-- (vigil.uptime, vigil.service_uptime, public_status) reads the rollups, so raw checks can expire
-- after 30 days (vigil.apply_retention) while uptime over 90 days still answers. Rollups go after
-- 365 days.
begin;
set search_path = extensions, public;
select plan(33);

insert into vigil.services (id, name, kind, config) values
  ('00000000-0000-4000-8000-000000000531', 't053-api', 'http', '{"url":"https://t053.example.com"}'),
  ('00000000-0000-4000-8000-000000000532', 't053-other', 'http', '{"url":"https://t053.example.com"}'),
  ('00000000-0000-4000-8000-000000000533', 't053-quiet', 'http', '{"url":"https://t053.example.com"}');

-- The hour buckets used below, fixed for the transaction.
create temp table h as select date_trunc('hour', now()) as now_h;

-- Three single-row inserts into the bucket three hours ago.
insert into vigil.checks (service_id, checked_at, status, response_ms) select '00000000-0000-4000-8000-000000000531', now_h - interval '3 hours' + interval '5 minutes', 'healthy', 100 from h;
insert into vigil.checks (service_id, checked_at, status, error) select '00000000-0000-4000-8000-000000000531', now_h - interval '3 hours' + interval '10 minutes', 'down', 'refused' from h;
insert into vigil.checks (service_id, checked_at, status, response_ms) select '00000000-0000-4000-8000-000000000531', now_h - interval '3 hours' + interval '59 minutes 59 seconds', 'degraded', 300 from h;

select results_eq(
  $$select r.bucket, checks, healthy, degraded, down, response_ms_sum, response_ms_count, response_ms_max
      from vigil.check_rollups r where service_id = '00000000-0000-4000-8000-000000000531'$$,
  $$select now_h - interval '3 hours', 3, 1, 1, 1, 400::numeric, 2, 300::numeric from h$$,
  'three checks in one hour make one rollup row: counts by status, and sum, count and max of the response times'
);

-- One multi-row insert spanning two services, three buckets, and the bucket already counted.
insert into vigil.checks (service_id, checked_at, status, response_ms, error)
select s, t, st::vigil.check_status, ms, e from h, (values
  ('00000000-0000-4000-8000-000000000531'::uuid, interval '2 hours', 'healthy', 50::numeric, null),
  ('00000000-0000-4000-8000-000000000531', interval '2 hours' - interval '30 minutes', 'healthy', 150, null),
  ('00000000-0000-4000-8000-000000000531', interval '3 hours' - interval '20 minutes', 'healthy', 700, null),
  ('00000000-0000-4000-8000-000000000531', interval '5 hours', 'down', null, 'timeout'),
  ('00000000-0000-4000-8000-000000000532', interval '2 hours', 'healthy', 10, null)
) v(s, ago, st, ms, e), lateral (select now_h - ago as t) x;

select results_eq(
  $$select r.bucket, checks, healthy, degraded, down, response_ms_sum, response_ms_count, response_ms_max
      from vigil.check_rollups r, h where service_id = '00000000-0000-4000-8000-000000000531' order by bucket desc$$,
  $$select v.* from h, lateral (values
      (now_h - interval '2 hours', 2, 2, 0, 0, 200::numeric, 2, 150::numeric),
      (now_h - interval '3 hours', 4, 2, 1, 1, 1100::numeric, 3, 700::numeric),
      (now_h - interval '5 hours', 1, 0, 0, 1, 0::numeric, 0, null::numeric)) v(bucket, checks, healthy, degraded, down, s, c, m)
    $$,
  'a multi-row insert adds to an existing bucket and opens new ones; a bucket without response times has sum 0, count 0, max null'
);
select results_eq(
  $$select checks, healthy from vigil.check_rollups where service_id = '00000000-0000-4000-8000-000000000532'$$,
  $$values (1, 1)$$,
  'the same statement''s check for another service has its own rollup row'
);
select is((select sum(checks)::bigint from vigil.check_rollups where service_id = '00000000-0000-4000-8000-000000000531'),
          (select count(*) from vigil.checks where service_id = '00000000-0000-4000-8000-000000000531'),
          'the rollups count every check exactly once');

-- Older history: 2 days ago (1 down of 3), 20 days ago (2 down of 2), 60 days ago (1 healthy),
-- 100 days ago (1 down, outside every window), 400 days ago (1 down, past rollup retention).
insert into vigil.checks (service_id, checked_at, status, error)
select '00000000-0000-4000-8000-000000000531', now() - ago, st::vigil.check_status, e from (values
  (interval '2 days', 'healthy', null), (interval '2 days', 'healthy', null), (interval '2 days', 'down', 'x'),
  (interval '20 days', 'down', 'x'), (interval '20 days', 'down', 'x'),
  (interval '60 days', 'healthy', null),
  (interval '100 days', 'down', 'x'),
  (interval '400 days', 'down', 'x')) v(ago, st, e);

-- Last 24 h: 7 checks, 2 down.
select is(vigil.uptime('00000000-0000-4000-8000-000000000531', interval '24 hours'), 71.429::numeric,
          'uptime over 24 h: 5 of 7 checks not down = 71.429 %');
select is(vigil.uptime('00000000-0000-4000-8000-000000000531', interval '7 days'), 70.000::numeric,
          'uptime over 7 days adds the checks of 2 days ago: 7 of 10 = 70.000 %');
select is(vigil.uptime('00000000-0000-4000-8000-000000000531', interval '1 hour'), null::numeric,
          'uptime over a window without checks is null, not 100');
select is(vigil.uptime('00000000-0000-4000-8000-000000000533', interval '90 days'), null::numeric,
          'a service that was never checked has no uptime');
select is(vigil.uptime('00000000-0000-4000-8000-000000000532', interval '24 hours'), 100.000::numeric,
          'a service whose every check was healthy has 100 %');
select is(vigil.uptime('00000000-0000-4000-8000-000000000531', interval '2 hours'), 100.000::numeric,
          'uptime has hour resolution: the 2-hour window starts at the bucket two hours back (2 healthy checks)');

select results_eq(
  $$select name, uptime_24h, uptime_7d, uptime_30d, uptime_90d from vigil.service_uptime
     where service_id = '00000000-0000-4000-8000-000000000531'$$,
  $$values ('t053-api'::text, 71.429::numeric, 70.000::numeric, 58.333::numeric, 61.538::numeric)$$,
  'service_uptime: 24 h 5/7, 7 d 7/10, 30 d 7/12, 90 d 8/13 (100 and 400 days ago are outside)'
);
select results_eq(
  $$select uptime_24h, uptime_7d, uptime_30d, uptime_90d from vigil.service_uptime
     where service_id = '00000000-0000-4000-8000-000000000533'$$,
  $$values (null::numeric, null::numeric, null::numeric, null::numeric)$$,
  'service_uptime lists a never-checked service with null uptimes'
);
select set_eq($$select service_id from vigil.service_uptime$$, $$select id from vigil.services$$,
              'service_uptime has one row per service');
select is(
  (select array_agg(attname::text order by attnum) from pg_attribute where attrelid = 'vigil.service_uptime'::regclass and attnum > 0),
  array['service_id', 'name', 'uptime_24h', 'uptime_7d', 'uptime_30d', 'uptime_90d'],
  'service_uptime has the columns service_id, name, uptime_24h, uptime_7d, uptime_30d, uptime_90d'
);

set local role anon;
select results_eq(
  $$select name, uptime_24h from vigil.public_status where name in ('t053-api', 't053-quiet') order by name$$,
  $$values ('t053-api'::text, 71.429::numeric), ('t053-quiet'::text, null::numeric)$$,
  'anon reads public_status.uptime_24h from the rollups (null for a service never checked)'
);
reset role;

-- ─── Retention ──────────────────────────────────────────────────────────────────────────────
insert into vigil.metrics (service_id, name, value, recorded_at) values
  ('00000000-0000-4000-8000-000000000531', 'http_request_duration', 1, now() - interval '31 days'),
  ('00000000-0000-4000-8000-000000000531', 'http_request_duration', 2, now() - interval '29 days'),
  ('00000000-0000-4000-8000-000000000531', 'http_request_duration', 3, now() - interval '1 hour');
insert into vigil.cycles (id, started_at, finished_at, duration_ms, services, healthy, degraded, down) values
  ('00000000-0000-4000-8000-000000000534', now() - interval '31 days', now() - interval '31 days', 0, 0, 0, 0, 0),
  ('00000000-0000-4000-8000-000000000535', now() - interval '29 days', now() - interval '29 days', 0, 0, 0, 0, 0);
insert into vigil.status_transitions (service_id, from_status, to_status, reason, created_at) values
  ('00000000-0000-4000-8000-000000000531', 'healthy', 'down', 't053 ancient', now() - interval '400 days'),
  ('00000000-0000-4000-8000-000000000531', 'healthy', 'down', 't053 recent', now() - interval '20 days');

select is((select count(*) from vigil.check_rollups where service_id = '00000000-0000-4000-8000-000000000531'), 8::bigint,
          'precondition: eight rollup rows (three recent buckets, 2, 20, 60, 100 and 400 days ago)');

create temp table retention as select vigil.apply_retention() as result;
select is((select array_agg(k order by k) from retention, jsonb_object_keys(result) k), array['checks', 'cycle_runs', 'cycles', 'metrics', 'rollups'],
          'apply_retention reports how many checks, metrics, cycles, cycle runs and rollups it deleted');
select ok((select (result ->> 'checks')::int >= 3 and (result ->> 'metrics')::int >= 1 and (result ->> 'cycles')::int >= 1
                  and (result ->> 'rollups')::int >= 1 from retention),
          'apply_retention''s counts include at least this test''s old rows');
select is_empty($$select 1 from vigil.checks where service_id = '00000000-0000-4000-8000-000000000531' and checked_at < now() - interval '30 days'$$,
                'checks older than 30 days are deleted');
select is((select count(*) from vigil.checks where service_id = '00000000-0000-4000-8000-000000000531'), 12::bigint,
          'the 12 checks of the last 30 days are kept');
select is((select array_agg(value order by value) from vigil.metrics where service_id = '00000000-0000-4000-8000-000000000531'),
          array[2, 3]::double precision[], 'metrics older than 30 days are deleted, newer ones kept');
select results_eq(
  $$select id from vigil.cycles where id in ('00000000-0000-4000-8000-000000000534', '00000000-0000-4000-8000-000000000535')$$,
  $$values ('00000000-0000-4000-8000-000000000535'::uuid)$$,
  'cycles older than 30 days are deleted, newer ones kept'
);
select is((select count(*) from vigil.check_rollups where service_id = '00000000-0000-4000-8000-000000000531'), 7::bigint,
          'rollups are kept for a year: only the 400-day-old one is gone');
select is_empty($$select 1 from vigil.check_rollups where service_id = '00000000-0000-4000-8000-000000000531' and bucket < now() - interval '365 days'$$,
                'no rollup older than 365 days remains');
select results_eq(
  $$select uptime_24h, uptime_7d, uptime_30d, uptime_90d from vigil.service_uptime
     where service_id = '00000000-0000-4000-8000-000000000531'$$,
  $$values (71.429::numeric, 70.000::numeric, 58.333::numeric, 61.538::numeric)$$,
  'uptime over 90 days is unchanged after the raw checks behind it expired: it reads the rollups'
);
select is(vigil.uptime('00000000-0000-4000-8000-000000000531', interval '90 days'), 61.538::numeric,
          'vigil.uptime over 90 days still answers from the rollups');
select results_eq(
  $$select reason from vigil.status_transitions where service_id = '00000000-0000-4000-8000-000000000531' and reason like 't053 %'$$,
  $$values ('t053 recent'::text)$$,
  'status transitions are kept for a year like the rollups'
);

-- Shorter periods can be asked for.
create temp table retention_short as select vigil.apply_retention(interval '10 days', interval '50 days') as result;
select is((select count(*) from vigil.checks where service_id = '00000000-0000-4000-8000-000000000531'), 10::bigint,
          'apply_retention(10 days, 50 days) deletes the checks of 20 days ago');
select is((select count(*) from vigil.check_rollups where service_id = '00000000-0000-4000-8000-000000000531'), 5::bigint,
          'apply_retention(10 days, 50 days) deletes the rollups of 60 and 100 days ago');
select is(vigil.uptime('00000000-0000-4000-8000-000000000531', interval '30 days'), 58.333::numeric,
          'the 30-day uptime still counts the 20-day-old rollup whose raw checks are gone');
select is(vigil.uptime('00000000-0000-4000-8000-000000000531', interval '90 days'), 58.333::numeric,
          'with the 60-day rollup gone, 90-day uptime equals the 30-day one');

-- Deleting raw checks does not touch the rollups (they are history, not a cache).
delete from vigil.checks where service_id = '00000000-0000-4000-8000-000000000532';
select results_eq(
  $$select checks, healthy from vigil.check_rollups where service_id = '00000000-0000-4000-8000-000000000532'$$,
  $$values (1, 1)$$,
  'deleting a service''s checks leaves its rollups'
);
delete from vigil.services where id = '00000000-0000-4000-8000-000000000532';
select is_empty($$select 1 from vigil.check_rollups where service_id = '00000000-0000-4000-8000-000000000532'$$,
                'deleting the service deletes its rollups');

select * from finish();
rollback;
