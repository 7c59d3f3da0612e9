-- Slow queries are incidents of their own: a postgres check listing slow statements opens (or
-- updates) the service's slow_queries incident, one listing none resolves it, and its index advice
-- (vigil.recommend) stays open until then.
begin;
set search_path = extensions, public;
select plan(10);

insert into vigil.services (id, name, kind) values
  ('00000000-0000-4000-8000-000000000861', 't086-db', 'postgres');
insert into vigil.services (id, name, kind, config) values
  ('00000000-0000-4000-8000-000000000862', 't086-web', 'http', '{"url":"https://t086.example.com"}');

insert into vigil.checks (service_id, status, measurements) values
  ('00000000-0000-4000-8000-000000000861', 'healthy',
   '{"statements": {"slow_query_ms": 100, "slow": [{"queryid": "42", "mean_ms": 812.5, "calls": 50}]}}');
select results_eq(
  $$select kind, severity::text, status::text, title, detail -> 'queryids' from vigil.incidents
     where service_id = '00000000-0000-4000-8000-000000000861'$$,
  $$values ('slow_queries', 'warning', 'open', 't086-db: 1 statement slower than 100 ms on average', '["42"]'::jsonb)$$,
  'a slow statement opens the service''s slow_queries incident, though the check is healthy'
);
select is((select status::text from vigil.services where id = '00000000-0000-4000-8000-000000000861'), 'unknown',
          'the service''s status is not touched by it');
select isnt_empty($$select 1 from vigil.invocations where fn = 'auto-heal'
                     and body ->> 'incident_id' = (select id::text from vigil.incidents
                                                    where service_id = '00000000-0000-4000-8000-000000000861')$$,
                  'and auto-heal is asked, as for any incident');

insert into vigil.checks (service_id, status, measurements) values
  ('00000000-0000-4000-8000-000000000861', 'healthy',
   '{"statements": {"slow_query_ms": 100, "slow": [{"queryid": "42"}, {"queryid": "43"}]}}');
select results_eq(
  $$select count(*)::int, min(title), max(detail ->> 'check_id') is not null from vigil.incidents
     where service_id = '00000000-0000-4000-8000-000000000861'$$,
  $$values (1, 't086-db: 2 statements slower than 100 ms on average', true)$$,
  'another slow check updates the same incident'
);

select is(vigil.recommend('00000000-0000-4000-8000-000000000861',
                          (select id from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000861'),
                          '[{"kind": "index", "key": "public.vigil_idx_orders_customer", "title": "CREATE INDEX CONCURRENTLY …",
                             "detail": {"factor": 40}}]'),
          1, 'a recommendation is kept');
select is(vigil.recommend('00000000-0000-4000-8000-000000000861', null,
                          '[{"kind": "index", "key": "public.vigil_idx_orders_customer", "title": "CREATE INDEX CONCURRENTLY …",
                             "detail": {"factor": 41}}]'),
          1, 'and asked again, refreshed');
select results_eq(
  $$select count(*)::int, max((detail ->> 'factor')::int), bool_and(status = 'open') from vigil.recommendations
     where service_id = '00000000-0000-4000-8000-000000000861'$$,
  $$values (1, 41, true)$$,
  'one open recommendation per service and key'
);
select throws_ok($$select vigil.recommend('00000000-0000-4000-8000-000000000861', null, '{"kind": "index"}')$$,
                 '22023', 'recommend: items must be a JSON array', 'items must be a list');

insert into vigil.checks (service_id, status, measurements) values
  ('00000000-0000-4000-8000-000000000861', 'healthy', '{"statements": {"slow_query_ms": 100, "slow": []}}');
select results_eq(
  $$select (select status::text from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000861'),
           (select status from vigil.recommendations where service_id = '00000000-0000-4000-8000-000000000861')$$,
  $$values ('resolved', 'resolved')$$,
  'no slow statement any more: the incident resolves, and its index advice with it'
);

insert into vigil.checks (service_id, status, measurements) values
  ('00000000-0000-4000-8000-000000000862', 'healthy', '{"statements": {"slow": [{"queryid": "1"}]}}');
select is_empty($$select 1 from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000862'$$,
                'only postgres services have slow statements');

select * from finish();
rollback;
