-- The analysis' SQL side: vigil.record_analysis keeps each series row as the analyze function
-- decided it, and opens, updates (only on a change) and resolves one anomaly (info) and one
-- forecast (warning) incident per service; a service without the key is left alone; bad runs are
-- refused; analysis incidents are never retried by retry_heals.
begin;
set search_path = extensions, public;
select plan(26);

insert into vigil.services (id, name, kind, config, heal_enabled) values
  ('00000000-0000-4000-8000-000000000991', 't099-api', 'http', '{"url":"https://t099.example.com"}', false);
-- auto-heal is not asked here: only what record_analysis writes is under test.
alter table vigil.incidents disable trigger incidents_request_heal;

create function pg_temp.run(p jsonb) returns jsonb language sql as $$ select vigil.record_analysis(p) $$;

select is(
  pg_temp.run('{"series": [{"service_id": "00000000-0000-4000-8000-000000000991", "metric": "throughput",
                "labels": {}, "detector": {"format": "t"}, "consumed_until": "2026-12-02T10:00:00Z", "points": 60,
                "value": 5, "score": 0.8, "baseline": {"expected": 50, "ratio": 0.1},
                "anomalous_since": "2026-12-02T10:00:00Z", "last_anomalous_at": "2026-12-02T10:00:00Z",
                "forecast": null, "forecast_at": null}],
               "services": [{"service_id": "00000000-0000-4000-8000-000000000991",
                             "anomaly": {"title": "t099-api: throughput 5 req/s", "detail": {"comparison_to_baseline": 0.1}},
                             "forecast": null}]}'),
  '{"series": 1, "opened": 1, "updated": 0, "resolved": 0}'::jsonb,
  'a run with an anomalous series opens one incident');
select results_eq(
  $$select points::int, score, consumed_until, anomalous_since is not null from vigil.metric_series
     where service_id = '00000000-0000-4000-8000-000000000991'$$,
  $$values (60, 0.8::float8, '2026-12-02T10:00:00Z'::timestamptz, true)$$,
  'the series row is kept as given');
select results_eq(
  $$select severity::text, title, (detail ->> 'comparison_to_baseline')::float8 from vigil.incidents
     where service_id = '00000000-0000-4000-8000-000000000991' and kind = 'anomaly' and status = 'open'$$,
  $$values ('info', 't099-api: throughput 5 req/s', 0.1::float8)$$,
  'an anomaly is an info incident with its baseline comparison');

select is(
  pg_temp.run('{"series": [], "services": [{"service_id": "00000000-0000-4000-8000-000000000991",
                "anomaly": {"title": "t099-api: throughput 5 req/s", "detail": {}}}]}') ->> 'updated',
  '0', 'the same title again writes nothing');
select is(
  pg_temp.run('{"series": [], "services": [{"service_id": "00000000-0000-4000-8000-000000000991",
                "anomaly": {"title": "t099-api: throughput 3 req/s", "detail": {"comparison_to_baseline": 0.06}}}]}') ->> 'updated',
  '1', 'new numbers update the title');
select is(
  (select (detail ->> 'comparison_to_baseline')::float8 from vigil.incidents
    where service_id = '00000000-0000-4000-8000-000000000991' and kind = 'anomaly' and status = 'open'),
  0.06::float8, 'and the detail');
select is(
  (select count(*)::int from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000991' and kind = 'anomaly'),
  1, 'still one anomaly incident');

select is(
  pg_temp.run('{"series": [], "services": [{"service_id": "00000000-0000-4000-8000-000000000991"}]}'),
  '{"series": 0, "opened": 0, "updated": 0, "resolved": 0}'::jsonb,
  'a service without the keys is left as it is');
select is(
  (select status::text from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000991' and kind = 'anomaly'),
  'open', 'the anomaly stays open');

select is(
  pg_temp.run('{"series": [], "services": [{"service_id": "00000000-0000-4000-8000-000000000991", "anomaly": null,
                "forecast": {"title": "t099-api: memory 100 % in ~6 h", "detail": {"forecasts": []}}}]}'),
  '{"series": 0, "opened": 1, "updated": 0, "resolved": 1}'::jsonb,
  'anomaly null resolves it; a forecast opens');
select results_eq(
  $$select kind, status::text, detail ->> 'resolved_by' from vigil.incidents
     where service_id = '00000000-0000-4000-8000-000000000991' order by id$$,
  $$values ('anomaly', 'resolved', 'analysis'), ('forecast', 'open', null)$$,
  'resolved by the analysis, and the forecast open');
select is(
  (select severity::text from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000991' and kind = 'forecast'),
  'warning', 'a forecast is a warning');

-- Two runs at once: the second insert finds the first one's incident and stands down.
select lives_ok(
  $$select vigil.record_analysis('{"series": [], "services": [{"service_id": "00000000-0000-4000-8000-000000000991",
      "forecast": {"title": "t099-api: memory 100 % in ~5 h", "detail": {}}}]}')$$,
  'a forecast already open is updated, not duplicated');
select is(
  (select count(*)::int from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000991' and kind = 'forecast'),
  1, 'one forecast incident');

-- The series row follows the run: a calm series has no anomalous_since.
select lives_ok(
  $$select vigil.record_analysis('{"series": [{"service_id": "00000000-0000-4000-8000-000000000991", "metric": "throughput",
      "labels": {}, "detector": {"format": "t"}, "consumed_until": "2026-12-02T10:05:00Z", "points": 65, "value": 50,
      "score": 0.01, "anomalous_since": null, "last_anomalous_at": "2026-12-02T10:00:00Z"}], "services": []}')$$,
  'a calm run is kept');
select results_eq(
  $$select points::int, anomalous_since, last_anomalous_at from vigil.metric_series
     where service_id = '00000000-0000-4000-8000-000000000991'$$,
  $$values (65, null::timestamptz, '2026-12-02T10:00:00Z'::timestamptz)$$,
  'anomalous_since cleared, last_anomalous_at kept');

-- Bad runs.
select throws_ok($$select vigil.record_analysis('{"series": {}}')$$, '22023', null, 'series must be an array');
select throws_ok(
  $$select vigil.record_analysis('{"series": [{"service_id": "00000000-0000-4000-8000-000000000991", "metric": "no_such_metric"}], "services": []}')$$,
  '22P02', null, 'an unknown metric name is refused');
select throws_ok(
  $$select vigil.record_analysis('{"series": [{"service_id": "00000000-0000-4000-8000-000000000991", "metric": "error_rate", "score": 1.5}], "services": []}')$$,
  '23514', null, 'a score outside [0, 1] is refused');

-- Nothing to retry: analysis incidents are not handed back to auto-heal.
update vigil.incidents set last_heal_at = now() - interval '1 hour', heal_not_before = now() - interval '1 minute'
 where service_id = '00000000-0000-4000-8000-000000000991';
create temp table t099_invoked as select count(*) as n from vigil.invocations where fn = 'auto-heal';
select vigil.retry_heals();
select is(
  (select count(*) from vigil.invocations i where i.fn = 'auto-heal'
     and (i.body ->> 'incident_id')::bigint in (select id from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000991')),
  0::bigint, 'retry_heals leaves analysis incidents alone');

-- Who may call it and read the rows.
select ok(not has_function_privilege('anon', 'vigil.record_analysis(jsonb)', 'EXECUTE'), 'anon may not record an analysis');
select ok(has_function_privilege('vigil_agent', 'vigil.record_analysis(jsonb)', 'EXECUTE'), 'the agent may');

select results_eq($$select schedule, command from cron.job where jobname = 'vigil-analyze'$$,
                  $$values ('* * * * *'::text, 'select vigil.invoke(''analyze'', ''{"trigger": "cron"}''::jsonb)'::text)$$,
                  'vigil-analyze invokes the analyze function every minute');

-- Statement samples for N+1 detection.
select throws_ok($$select vigil.sample_statements(0)$$, '22023', null, 'a sample of no statements is refused');
select cmp_ok(vigil.sample_statements(), '>', 0, 'a sample keeps the most-called statements');
select is_empty(
  $$select 1 from vigil.statement_samples s join pg_roles r on r.oid = s.userid where r.rolname like 'vigil\_%'$$,
  'never Vigil''s own statements');

select * from finish();
rollback;
