-- vigil.dashboard_snapshot() -> 'analysis': the metric series the analysis flags now, for the
-- dashboard's Analysis panel — anomalous ones first, then those forecast to cross their limit —
-- with only what the panel shows: never the detector's state, never the forecast's fit. Operators
-- only; a disabled service's series and calm series are left out.
begin;
set search_path = extensions, public;
select plan(11);

insert into vigil.services (id, name, kind, config, enabled) values
  ('00000000-0000-4000-8000-000000001001', 't100-host', 'http', '{"url":"https://t100-host.example.com"}', true),
  ('00000000-0000-4000-8000-000000001002', 't100-off', 'http', '{"url":"https://t100-off.example.com"}', false);
insert into vigil.metric_series (service_id, metric, labels, detector, points, value, score, baseline,
                                 anomalous_since, last_anomalous_at, forecast, forecast_at) values
  -- Anomalous now.
  ('00000000-0000-4000-8000-000000001001', 'cpu_usage_percent', '{}', '{"format": "t100", "secret": "state"}', 500,
   93, 0.82, '{"value": 93, "expected": 40, "low": 30, "high": 50, "ratio": 2.325, "hourAgo": 41}',
   '2026-12-02T11:40:00Z', '2026-12-02T11:59:00Z', '{"status": "flat", "text": "CPU: flat"}', '2026-12-02T11:55:00Z'),
  -- Forecast to cross its limit.
  ('00000000-0000-4000-8000-000000001001', 'disk_usage_percent', '{"mount": "/data"}', '{"format": "t100"}', 500,
   71, 0.1, '{"value": 71, "expected": 70, "ratio": 1.01, "hourAgo": null}', null, null,
   '{"status": "crosses", "text": "disk 71 % rising 4.2 %/h: 100 % in ~7 h (between ~5 h and ~11 h)",
     "etaSeconds": 25200, "etaLowSeconds": 18000, "etaHighSeconds": 39600, "limit": 100, "current": 71,
     "fit": {"method": "theil-sen", "points": 120}}', '2026-12-02T11:55:00Z'),
  -- Calm.
  ('00000000-0000-4000-8000-000000001001', 'throughput', '{}', '{"format": "t100"}', 500,
   12, 0.05, '{"value": 12, "expected": 12, "ratio": 1}', null, '2026-12-01T08:00:00Z', null, null),
  -- Anomalous, on a service no longer watched.
  ('00000000-0000-4000-8000-000000001002', 'cpu_usage_percent', '{}', '{"format": "t100"}', 500,
   99, 0.9, '{"value": 99, "expected": 10, "ratio": 9.9}', '2026-12-02T11:00:00Z', '2026-12-02T11:59:00Z', null, null);

-- As an operator.
set local role authenticated;
set local request.jwt.claims = '{"sub": "00000000-0000-4000-8000-0000000010d1", "role": "authenticated", "email": "op@t100.example", "app_metadata": {"role": "devops"}}';
create temporary table snap on commit drop as select vigil.dashboard_snapshot() as s;
create temporary view mine as
  select x, n from snap, jsonb_array_elements(s -> 'analysis') with ordinality e(x, n)
   where x ->> 'service_id' like '00000000-0000-4000-8000-00000000100_';

select is(jsonb_typeof((select s -> 'analysis' from snap)), 'array', 'the snapshot has the analysis, a list');
select is(
  (select jsonb_agg(x ->> 'metric' order by n) from mine),
  '["cpu_usage_percent", "disk_usage_percent"]'::jsonb,
  'the anomalous series and the one forecast to cross its limit: not the calm one, not the disabled service''s');
select is(
  (select x from mine where x ->> 'metric' = 'cpu_usage_percent'),
  '{"service_id": "00000000-0000-4000-8000-000000001001", "service": "t100-host", "metric": "cpu_usage_percent",
    "labels": {}, "value": 93, "score": 0.82,
    "baseline": {"value": 93, "expected": 40, "low": 30, "high": 50, "ratio": 2.325, "hourAgo": 41},
    "anomalous_since": "2026-12-02T11:40:00+00:00", "forecast": null, "forecast_at": "2026-12-02T11:55:00+00:00"}'::jsonb,
  'an anomaly: service, metric, value, score, the baseline it was compared with and since when; a forecast that does not cross is null');
select is(
  (select x -> 'forecast' from mine where x ->> 'metric' = 'disk_usage_percent'),
  '{"text": "disk 71 % rising 4.2 %/h: 100 % in ~7 h (between ~5 h and ~11 h)", "eta_seconds": 25200}'::jsonb,
  'a forecast that crosses: its sentence and eta, nothing of its fit');
select is(
  (select x -> 'labels' from mine where x ->> 'metric' = 'disk_usage_percent'),
  '{"mount": "/data"}'::jsonb, 'with the series'' labels');
select is(
  (select count(*)::int from snap, jsonb_array_elements(s -> 'analysis') x
    where x ?| array['detector', 'state', 'consumed_until', 'points', 'last_anomalous_at']),
  0, 'no series carries the detector''s state or the analysis'' bookkeeping');
select is(
  (select count(*)::int from snap, jsonb_array_elements(s -> 'analysis') x
    where x -> 'forecast' is not null and jsonb_typeof(x -> 'forecast') = 'object'
      and exists (select from jsonb_object_keys(x -> 'forecast') k where k not in ('text', 'eta_seconds'))),
  0, 'no forecast carries more than its sentence and eta');
select ok(
  (select coalesce(max(n) filter (where x ->> 'anomalous_since' is not null), 0)
          < coalesce(min(n) filter (where x ->> 'anomalous_since' is null), 2147483647)
     from snap, jsonb_array_elements(s -> 'analysis') with ordinality e(x, n)),
  'anomalies come before forecasts');
select ok(
  (select s ?& array['settings', 'score', 'services', 'incidents', 'approvals', 'heal_log', 'recommendations',
                     'control_changes', 'cycle', 'maintenance_runs', 'daily_report', 'weekly_report'] from snap),
  'every key the snapshot had is still there');

-- Another signed-in user: nothing.
set local request.jwt.claims = '{"sub": "00000000-0000-4000-8000-0000000010d2", "role": "authenticated", "app_metadata": {}}';
select is((select vigil.dashboard_snapshot() -> 'analysis'), '[]'::jsonb, 'a user who is not an operator reads no series');
reset role;

-- A calm spell: the series is no longer flagged.
update vigil.metric_series set anomalous_since = null
 where service_id = '00000000-0000-4000-8000-000000001001' and metric = 'cpu_usage_percent';
set local role authenticated;
set local request.jwt.claims = '{"sub": "00000000-0000-4000-8000-0000000010d1", "role": "authenticated", "email": "op@t100.example", "app_metadata": {"role": "devops"}}';
select is(
  (select jsonb_agg(x ->> 'metric') from jsonb_array_elements(vigil.dashboard_snapshot() -> 'analysis') x
    where x ->> 'service' = 't100-host'),
  '["disk_usage_percent"]'::jsonb, 'a series back to normal leaves the list');
reset role;

select * from finish();
rollback;
