-- vigil.record_cycle(cycle) records one health-check cycle in one statement: the cycle row with
-- its counts, one check per result (whose triggers move statuses, transitions, incidents and
-- rollups), and the metrics. Unknown metric names and non-numeric values are dropped, and results
-- for services deleted meanwhile are skipped; neither fails the cycle.
begin;
set search_path = extensions, public;
select plan(27);

insert into vigil.services (id, name, kind, config, failure_threshold, success_threshold) values
  ('00000000-0000-4000-8000-000000000541', 't054-api', 'http', '{"url":"https://t054.example.com"}', 1, 1),
  ('00000000-0000-4000-8000-000000000542', 't054-db', 'postgres', '{}', 1, 1),
  ('00000000-0000-4000-8000-000000000543', 't054-gone', 'http', '{"url":"https://t054.example.com"}', 1, 1);
-- Deleted while the cycle ran.
delete from vigil.services where id = '00000000-0000-4000-8000-000000000543';

create temp table cycle_payload as
select jsonb_build_object(
  'id', '00000000-0000-4000-8000-000000000540',
  'started_at', now() - interval '5 seconds',
  'finished_at', now(),
  'duration_ms', 5000,
  'results', jsonb_build_array(
    jsonb_build_object(
      'service_id', '00000000-0000-4000-8000-000000000541', 'status', 'down', 'response_ms', 1500.5,
      'measurements', jsonb_build_object('http_status', 503), 'error', 'HTTP 503',
      'checked_at', now() - interval '4 seconds',
      'metrics', jsonb_build_array(
        jsonb_build_object('name', 'http_request_duration', 'value', 1500.5, 'labels', jsonb_build_object('path', '/')),
        jsonb_build_object('name', 'made_up_metric', 'value', 1),
        jsonb_build_object('name', 'error_rate', 'value', 'high'),
        jsonb_build_object('name', 'tls_days_left', 'value', null),
        jsonb_build_object('name', 'throughput'))),
    jsonb_build_object(
      'service_id', '00000000-0000-4000-8000-000000000542', 'status', 'healthy', 'response_ms', 12,
      'measurements', jsonb_build_object('active_connections', 5),
      'metrics', jsonb_build_array(
        jsonb_build_object('name', 'active_connections', 'value', 5),
        jsonb_build_object('name', 'cache_hit_ratio', 'value', 0.99))),
    jsonb_build_object(
      'service_id', '00000000-0000-4000-8000-000000000543', 'status', 'down', 'error', 'gone',
      'metrics', jsonb_build_array(jsonb_build_object('name', 'error_rate', 'value', 1))),
    jsonb_build_object('service_id', '00000000-0000-4000-8000-0000000005ff', 'status', 'healthy'))) as payload;

-- The edge function calls it as service_role.
create temp table recorded (result jsonb);
grant select on cycle_payload to service_role;
grant insert on recorded to service_role;
set local role service_role;
insert into recorded select vigil.record_cycle(payload) from cycle_payload;
reset role;

select is((select result from recorded), '{"cycle_id":"00000000-0000-4000-8000-000000000540","checks":2,"metrics":3}'::jsonb,
          'record_cycle returns the cycle id, 2 checks (the deleted and unknown services skipped) and 3 metrics (the bad ones dropped)');

-- The cycle row.
select results_eq(
  $$select started_at, finished_at, duration_ms, services, healthy, degraded, down, deadman
      from vigil.cycles where id = '00000000-0000-4000-8000-000000000540'$$,
  $$values (now() - interval '5 seconds', now(), 5000, 2, 1, 0, 1, null::text)$$,
  'the cycle row has its times and counts the recorded results: 2 services, 1 healthy, 1 down'
);

-- One check per recorded result.
select results_eq(
  $$select status::text, response_ms, measurements, error, checked_at
      from vigil.checks where cycle_id = '00000000-0000-4000-8000-000000000540' and service_id = '00000000-0000-4000-8000-000000000541'$$,
  $$values ('down'::text, 1500.500::numeric, '{"http_status":503}'::jsonb, 'HTTP 503'::text, now() - interval '4 seconds')$$,
  'the api''s check carries the result''s status, response time, measurements, error and checked_at'
);
select results_eq(
  $$select status::text, response_ms, measurements, error, checked_at
      from vigil.checks where cycle_id = '00000000-0000-4000-8000-000000000540' and service_id = '00000000-0000-4000-8000-000000000542'$$,
  $$values ('healthy'::text, 12.000::numeric, '{"active_connections":5}'::jsonb, null::text, now())$$,
  'a result without checked_at is checked now()'
);
select is((select count(*) from vigil.checks where cycle_id = '00000000-0000-4000-8000-000000000540'), 2::bigint,
          'exactly two checks carry the cycle id');
select is_empty($$select 1 from vigil.checks where service_id in ('00000000-0000-4000-8000-000000000543', '00000000-0000-4000-8000-0000000005ff')$$,
                'no check was written for the deleted or the unknown service');

-- Metrics, tied to their check and time.
select results_eq(
  $$select m.service_id, m.name::text, m.value, m.labels, m.check_id = c.id, m.recorded_at = c.checked_at
      from vigil.metrics m join vigil.checks c on c.service_id = m.service_id and c.cycle_id = '00000000-0000-4000-8000-000000000540'
     where m.service_id in ('00000000-0000-4000-8000-000000000541', '00000000-0000-4000-8000-000000000542')
     order by m.service_id, m.name::text$$,
  $$values ('00000000-0000-4000-8000-000000000541'::uuid, 'http_request_duration'::text, 1500.5::double precision, '{"path":"/"}'::jsonb, true, true),
           ('00000000-0000-4000-8000-000000000542', 'active_connections', 5, '{}', true, true),
           ('00000000-0000-4000-8000-000000000542', 'cache_hit_ratio', 0.99, '{}', true, true)$$,
  'each valid metric is stored with its service, value and labels (default {}), its check and the check''s time'
);
select is_empty(
  $$select name from vigil.metrics where service_id = '00000000-0000-4000-8000-000000000541' and name::text in ('error_rate', 'tls_days_left', 'throughput')$$,
  'metrics whose value is a string, null or missing are dropped'
);
select is_empty($$select 1 from vigil.metrics where service_id = '00000000-0000-4000-8000-000000000543'$$,
                'the deleted service''s metrics are dropped with its result');

-- The checks' triggers ran.
select results_eq(
  $$select name, status::text, failure_streak, success_streak from vigil.services
     where id in ('00000000-0000-4000-8000-000000000541', '00000000-0000-4000-8000-000000000542') order by name$$,
  $$values ('t054-api'::text, 'down'::text, 1, 0), ('t054-db', 'healthy', 0, 1)$$,
  'the recorded checks moved each service''s streaks and status (thresholds 1)'
);
select results_eq(
  $$select t.from_status::text, t.to_status::text, t.check_id = c.id
      from vigil.status_transitions t join vigil.checks c on c.service_id = t.service_id and c.cycle_id = '00000000-0000-4000-8000-000000000540'
     where t.service_id = '00000000-0000-4000-8000-000000000541'$$,
  $$values ('unknown'::text, 'down'::text, true)$$,
  'the api''s transition to down names the cycle''s check'
);
select results_eq(
  $$select severity::text, status::text, title from vigil.incidents
     where service_id = '00000000-0000-4000-8000-000000000541' and kind = 'service_unhealthy'$$,
  $$values ('critical'::text, 'open'::text, 't054-api is down'::text)$$,
  'the api''s transition opened a critical incident'
);
select results_eq(
  $$select service_id, checks, down, response_ms_sum from vigil.check_rollups
     where service_id in ('00000000-0000-4000-8000-000000000541', '00000000-0000-4000-8000-000000000542') order by service_id$$,
  $$values ('00000000-0000-4000-8000-000000000541'::uuid, 1, 1, 1500.5::numeric), ('00000000-0000-4000-8000-000000000542', 1, 0, 12)$$,
  'the checks were rolled up'
);

-- A second cycle: the api answers again, but slowly.
select is(
  vigil.record_cycle(jsonb_build_object(
    'id', '00000000-0000-4000-8000-000000000544', 'started_at', now(), 'finished_at', now(), 'duration_ms', 0,
    'results', jsonb_build_array(jsonb_build_object('service_id', '00000000-0000-4000-8000-000000000541', 'status', 'degraded',
                                                    'response_ms', 4000, 'measurements', null, 'metrics', null)))),
  '{"cycle_id":"00000000-0000-4000-8000-000000000544","checks":1,"metrics":0}'::jsonb,
  'a cycle with null measurements and metrics is recorded'
);
select results_eq(
  $$select services, healthy, degraded, down from vigil.cycles where id = '00000000-0000-4000-8000-000000000544'$$,
  $$values (1, 0, 1, 0)$$, 'the second cycle counts one degraded result');
select is((select measurements from vigil.checks where cycle_id = '00000000-0000-4000-8000-000000000544'), '{}'::jsonb,
          'null measurements are stored as {}');
select is((select status::text from vigil.services where id = '00000000-0000-4000-8000-000000000541'), 'degraded',
          'the second cycle eased the api to degraded');
select is((select severity::text from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000541' and status = 'open'),
          'warning', 'and turned its incident into a warning');

-- A cycle with no results (nothing enabled) still records that the watcher ran.
select is(
  vigil.record_cycle('{"id":"00000000-0000-4000-8000-000000000545","started_at":"2026-01-01T00:00:00Z","finished_at":"2026-01-01T00:00:00.2Z","duration_ms":200,"results":[]}'),
  '{"cycle_id":"00000000-0000-4000-8000-000000000545","checks":0,"metrics":0}'::jsonb,
  'a cycle without results is recorded'
);
select results_eq(
  $$select services, healthy, degraded, down from vigil.cycles where id = '00000000-0000-4000-8000-000000000545'$$,
  $$values (0, 0, 0, 0)$$, 'with all counts zero');

-- All or nothing: a cycle that cannot be recorded leaves no trace.
select throws_ok(
  $$select vigil.record_cycle(jsonb_build_object(
      'id', '00000000-0000-4000-8000-000000000546', 'started_at', now(), 'finished_at', now(), 'duration_ms', 0,
      'results', jsonb_build_array(
        jsonb_build_object('service_id', '00000000-0000-4000-8000-000000000542', 'status', 'healthy'),
        jsonb_build_object('service_id', '00000000-0000-4000-8000-000000000541', 'status', 'exploded'))))$$,
  '22P02', null, 'a result with an unknown status fails the cycle'
);
select is_empty($$select 1 from vigil.cycles where id = '00000000-0000-4000-8000-000000000546'$$,
                'the failed cycle wrote no cycle row');
select is((select count(*) from vigil.checks where service_id = '00000000-0000-4000-8000-000000000542'), 1::bigint,
          'the failed cycle wrote none of its checks, not even the valid one');
select throws_ok(
  $$select vigil.record_cycle(jsonb_build_object(
      'id', '00000000-0000-4000-8000-000000000546', 'started_at', now(), 'finished_at', now(), 'duration_ms', 0,
      'results', jsonb_build_array(jsonb_build_object('service_id', '00000000-0000-4000-8000-000000000542', 'status', 'down'))))$$,
  '23514', null, 'a down result without an error fails the cycle (checks require a reason)'
);
select throws_ok(
  $$select vigil.record_cycle(jsonb_build_object(
      'id', '00000000-0000-4000-8000-000000000540', 'started_at', now(), 'finished_at', now(), 'duration_ms', 0,
      'results', jsonb_build_array(jsonb_build_object('service_id', '00000000-0000-4000-8000-000000000542', 'status', 'healthy'))))$$,
  '23505', null, 'recording the same cycle id twice fails instead of counting it twice'
);
select is((select count(*) from vigil.checks where service_id = '00000000-0000-4000-8000-000000000542'), 1::bigint,
          'the repeated cycle wrote no check');
select throws_ok(
  $$select vigil.record_cycle('{"id":"00000000-0000-4000-8000-000000000547","started_at":"2026-01-01T00:00:01Z","finished_at":"2026-01-01T00:00:00Z","duration_ms":0,"results":[]}')$$,
  '23514', null, 'a cycle that finished before it started is refused'
);

select * from finish();
rollback;
