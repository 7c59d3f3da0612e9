-- Analysis: every metric series Vigil records (a service, a metric name, its labels) gets a row
-- that keeps its streaming anomaly detector's state between runs (shared/anomaly), its last score
-- and the baseline it was compared with, and its latest forecast toward a limit (shared/forecast).
-- The analyze function (pg_cron, every minute) feeds each series the points recorded since its
-- last run and hands the result to vigil.record_analysis, which keeps the rows and opens, updates
-- or resolves two kinds of incident per service:
--   anomaly   (info: the dashboard, the report and chat, never a page) — a series far from what
--             its history says it should be now, with the baseline it was compared with;
--   forecast  (warning: routed like any warning) — a series whose trend crosses its limit within
--             the horizon ("memory 100 % in ~4 h"), raised before the threshold is crossed.
-- Neither is healed: auto-heal records that there is nothing to do, and retry_heals leaves them.

create table vigil.metric_series (
  service_id uuid not null references vigil.services (id) on delete cascade,
  metric vigil.metric_name not null,
  labels jsonb not null default '{}',
  -- The detector's state (shared/anomaly), null until it has seen a point.
  detector jsonb,
  -- The newest point fed to the detector: the next run starts after it.
  consumed_until timestamptz,
  points bigint not null default 0,
  value double precision,
  score double precision,
  -- {expected, low, high, ratio, hour_ago} of the last scored point.
  baseline jsonb,
  -- Since when the series is past the anomaly threshold (null: it is not).
  anomalous_since timestamptz,
  -- The last time it was: an anomaly incident resolves after a calm spell.
  last_anomalous_at timestamptz,
  -- The latest forecast (shared/forecast) and when it was made.
  forecast jsonb,
  forecast_at timestamptz,
  updated_at timestamptz not null default now(),
  primary key (service_id, metric, labels),
  constraint metric_series_labels_is_object check (jsonb_typeof(labels) = 'object'),
  constraint metric_series_detector_is_object check (detector is null or jsonb_typeof(detector) = 'object'),
  constraint metric_series_detector_size check (detector is null or pg_column_size(detector) <= 16384),
  constraint metric_series_score check (score is null or score between 0 and 1),
  constraint metric_series_baseline_is_object check (baseline is null or jsonb_typeof(baseline) = 'object'),
  constraint metric_series_forecast_is_object check (forecast is null or jsonb_typeof(forecast) = 'object')
);
comment on table vigil.metric_series is
  'One row per recorded metric series: its anomaly detector state, last score and baseline, and latest forecast (the analyze function keeps it).';

/**
 * Keeps one run of the analysis and settles its incidents. p_run:
 *   {series: [{service_id, metric, labels, detector, consumed_until, points, value, score,
 *              baseline, anomalous_since, last_anomalous_at, forecast, forecast_at}],
 *    services: [{service_id, anomaly?: {title, detail} | null, forecast?: {title, detail} | null}]}
 * Each series row is written as given (the function decides; this keeps it). A service with anomaly
 * (forecast) null has its open anomaly (forecast) incident resolved; without the key, that incident
 * is left as it is. Returns {series, opened, updated, resolved}.
 */
create function vigil.record_analysis(p_run jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  s jsonb;
  svc jsonb;
  incident_kind text;
  want jsonb;
  open_incident vigil.incidents;
  n_series integer := 0;
  opened integer := 0;
  updated integer := 0;
  resolved integer := 0;
begin
  if jsonb_typeof(p_run -> 'series') is distinct from 'array'
     or jsonb_typeof(p_run -> 'services') is distinct from 'array' then
    raise exception 'record_analysis: series and services must be JSON arrays' using errcode = '22023';
  end if;
  for s in select * from jsonb_array_elements(p_run -> 'series') loop
    insert into vigil.metric_series as m (service_id, metric, labels, detector, consumed_until, points,
                                          value, score, baseline, anomalous_since, last_anomalous_at,
                                          forecast, forecast_at, updated_at)
    values ((s ->> 'service_id')::uuid, (s ->> 'metric')::vigil.metric_name, coalesce(s -> 'labels', '{}'),
            s -> 'detector', (s ->> 'consumed_until')::timestamptz, coalesce((s ->> 'points')::bigint, 0),
            (s ->> 'value')::float8, (s ->> 'score')::float8, nullif(s -> 'baseline', 'null'),
            (s ->> 'anomalous_since')::timestamptz, (s ->> 'last_anomalous_at')::timestamptz,
            nullif(s -> 'forecast', 'null'), (s ->> 'forecast_at')::timestamptz, now())
    on conflict (service_id, metric, labels) do update
       set detector = excluded.detector,
           consumed_until = excluded.consumed_until,
           points = excluded.points,
           value = excluded.value,
           score = excluded.score,
           baseline = excluded.baseline,
           anomalous_since = excluded.anomalous_since,
           last_anomalous_at = excluded.last_anomalous_at,
           forecast = excluded.forecast,
           forecast_at = excluded.forecast_at,
           updated_at = now();
    n_series := n_series + 1;
  end loop;

  for svc in select * from jsonb_array_elements(p_run -> 'services') loop
    foreach incident_kind in array array['anomaly', 'forecast'] loop
      continue when not svc ? incident_kind;
      want := nullif(svc -> incident_kind, 'null');
      select * into open_incident from vigil.incidents
       where service_id = (svc ->> 'service_id')::uuid and kind = incident_kind
         and status = 'open' for update;
      if want is not null and open_incident.id is null then
        insert into vigil.incidents (service_id, kind, severity, title, detail)
        values ((svc ->> 'service_id')::uuid, incident_kind,
                case incident_kind when 'anomaly' then 'info' else 'warning' end::vigil.severity,
                left(want ->> 'title', 500), coalesce(want -> 'detail', '{}'))
        -- Two runs at once (pg_cron's and a person's): the first one's incident stands.
        on conflict (service_id, kind) where status = 'open' do nothing;
        if found then
          opened := opened + 1;
        end if;
      elsif want is not null then
        -- The title says the current numbers; only a change is written.
        if open_incident.title is distinct from left(want ->> 'title', 500) then
          update vigil.incidents
             set title = left(want ->> 'title', 500), detail = detail || coalesce(want -> 'detail', '{}')
           where id = open_incident.id;
          updated := updated + 1;
        end if;
      elsif open_incident.id is not null then
        update vigil.incidents
           set status = 'resolved', resolved_at = now(),
               detail = detail || jsonb_build_object('resolved_by', 'analysis')
         where id = open_incident.id;
        resolved := resolved + 1;
      end if;
    end loop;
  end loop;
  return jsonb_build_object('series', n_series, 'opened', opened, 'updated', updated, 'resolved', resolved);
end
$$;
revoke execute on function vigil.record_analysis(jsonb) from public;
grant execute on function vigil.record_analysis(jsonb) to service_role;

-- As in 20261202003100, and analysis incidents are never retried: there is nothing to heal.
create or replace function vigil.retry_heals(p_after interval default interval '2 minutes')
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  inc record;
  asked integer := 0;
  max_attempts integer := (vigil.heal_ladder() ->> 'max_attempts')::int;
begin
  for inc in
    select i.id from vigil.incidents i
     where i.status = 'open' and i.heal_attempts < max_attempts and i.last_heal_at is not null
       and i.escalation_level < (vigil.heal_ladder() ->> 'senior_at')::int
       and i.kind not in ('slow_queries', 'anomaly', 'forecast')
       and (i.heal_claimed_until is null or i.heal_claimed_until < now())
       and (
         i.heal_not_before <= now()
         or (i.last_heal_at < now() - p_after
             and (i.heal_attempts > 0 or (i.acknowledged_at is null and i.last_heal_at < now() - p_after * 5))))
       and not exists (select from vigil.heal_approvals a
                        where a.incident_id = i.id and a.decision is null and a.expires_at > now())
  loop
    update vigil.incidents set heal_not_before = null where id = inc.id;
    perform vigil.invoke('auto-heal', jsonb_build_object('incident_id', inc.id, 'reason', 'retry'));
    asked := asked + 1;
  end loop;
  return asked;
end
$$;

grant select, insert, update, delete on vigil.metric_series to service_role;
grant select on vigil.metric_series to authenticated;
alter table vigil.metric_series enable row level security;
create policy "Operators can read metric series" on vigil.metric_series
  for select to authenticated using ((select vigil.is_operator()));

-- The analysis runs every minute (pg_cron 1.4 has no shorter schedule; it is cheap).
select cron.schedule('vigil-analyze', '* * * * *',
                     $job$select vigil.invoke('analyze', '{"trigger": "cron"}'::jsonb)$job$);

select vigil.publish_for_realtime(array['metric_series']);
select vigil.settle_privileges();
