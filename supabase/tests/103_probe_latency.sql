-- The Prometheus export: each batch of checks adds to its services' cumulative latency histogram
-- (what /functions/v1/metrics serves as vigil_probe_duration_seconds), a check without a response
-- time counts nowhere, the counters only grow, and prometheus_snapshot reads it all in one call.
begin;
set search_path = extensions, public;
select plan(7);

alter table vigil.incidents disable trigger incidents_request_heal;
insert into vigil.services (id, name, kind, config, heal_enabled) values
  ('00000000-0000-4000-8000-000000001031', 't103-api', 'http', '{"url": "https://t103.example.com"}', false);

-- One batch, as a cycle records it: 10, 40, 300, 3000 and 20000 ms, and a check that timed out.
insert into vigil.checks (service_id, status, response_ms, error) values
  ('00000000-0000-4000-8000-000000001031', 'healthy', 10, null),
  ('00000000-0000-4000-8000-000000001031', 'healthy', 40, null),
  ('00000000-0000-4000-8000-000000001031', 'healthy', 300, null),
  ('00000000-0000-4000-8000-000000001031', 'degraded', 3000, null),
  ('00000000-0000-4000-8000-000000001031', 'down', 20000, 'slow'),
  ('00000000-0000-4000-8000-000000001031', 'down', null, 'timed out');
select results_eq(
  $$select le_25, le_50, le_100, le_250, le_500, le_1000, le_2500, le_5000, le_10000, count, sum_ms
      from vigil.probe_latency where service_id = '00000000-0000-4000-8000-000000001031'$$,
  $$values (1::bigint, 2::bigint, 2::bigint, 2::bigint, 3::bigint, 3::bigint, 3::bigint, 4::bigint, 4::bigint,
            5::bigint, 23350::double precision)$$,
  'one batch: cumulative buckets, the count of timed checks and their sum'
);

-- A second batch adds to it.
insert into vigil.checks (service_id, status, response_ms) values
  ('00000000-0000-4000-8000-000000001031', 'healthy', 20);
select results_eq(
  $$select le_25, count, sum_ms from vigil.probe_latency where service_id = '00000000-0000-4000-8000-000000001031'$$,
  $$values (2::bigint, 6::bigint, 23370::double precision)$$,
  'the counters only grow'
);
select throws_ok(
  $$update vigil.probe_latency set le_50 = 0 where service_id = '00000000-0000-4000-8000-000000001031'$$,
  '23514', null, 'buckets that are not cumulative are refused'
);

select is(
  (select s -> 'latency' from jsonb_array_elements(vigil.prometheus_snapshot() -> 'services') s
    where s ->> 'name' = 't103-api'),
  '{"buckets": [2, 3, 3, 3, 4, 4, 4, 5, 5], "count": 6, "sum_ms": 23370}'::jsonb,
  'the snapshot carries the histogram'
);
select is(
  (select s ->> 'status' from jsonb_array_elements(vigil.prometheus_snapshot() -> 'services') s
    where s ->> 'name' = 't103-api'),
  (select status::text from vigil.services where id = '00000000-0000-4000-8000-000000001031'),
  'and the service''s status'
);

set local role authenticated;
select is((select count(*) from vigil.probe_latency), 0::bigint, 'a user who is not an operator sees no latency');
reset role;
set local role anon;
select throws_ok($$select * from vigil.probe_latency$$, '42501', null, 'anon cannot read it');
reset role;

select * from finish();
rollback;
