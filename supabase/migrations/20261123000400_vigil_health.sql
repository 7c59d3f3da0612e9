-- The watching half: config validation per probe kind, status with hysteresis, transitions and
-- incidents, metrics, hourly rollups for uptime, cycles, heartbeats, and the schedules.

-- Metric names, mirrored by METRIC_NAMES in shared/kinds.ts.
create type vigil.metric_name as enum (
  'active_connections', 'query_duration_p95', 'deadlock_count', 'cache_hit_ratio',
  'http_request_duration', 'error_rate', 'cpu_usage_percent', 'memory_usage_percent',
  'disk_usage_percent', 'throughput', 'connection_usage_percent', 'blocked_sessions',
  'longest_wait_seconds', 'database_size_bytes', 'dead_tuple_ratio', 'xid_age',
  'replication_lag_seconds', 'tls_days_left', 'login_success_rate',
  'network_receive_bytes_per_second', 'network_transmit_bytes_per_second'
);

-- ─── Config validation ──────────────────────────────────────────────────────────────────────
-- Each kind's config schema as JSON Schema, generated from the zod schemas in
-- shared/probe-configs.ts (tests/schema/probe_configs_test.ts proves they agree).
create table vigil.probe_config_schemas (
  kind vigil.service_kind primary key,
  schema jsonb not null,
  constraint probe_config_schema_is_object check (jsonb_typeof(schema) = 'object')
);
comment on table vigil.probe_config_schemas is
  'JSON Schema of each probe kind''s config, generated from shared/probe-configs.ts; enforced on vigil.services.';

/**
 * The ways value breaks schema, each as '<path>: <what is wrong>'. Covers the JSON Schema subset
 * zod emits: type, const, enum, string length/pattern/format, numeric bounds, array items and
 * length, object properties/required/additionalProperties/propertyNames, anyOf/oneOf.
 */
create function vigil.json_schema_errors(schema jsonb, value jsonb, path text default '$')
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
declare
  errors text[] := '{}';
  vtype text := jsonb_typeof(value);
  types text[];
  type_ok boolean := false;
  t text;
  k text;
  v jsonb;
  i integer;
  branch jsonb;
  branch_errors text[];
  best_errors text[];
  disc text;
  allowed text;
begin
  if schema ? 'const' and value is distinct from schema -> 'const' then
    return array[format('%s: must be %s', path, schema -> 'const')];
  end if;
  if schema ? 'enum' and not (schema -> 'enum') @> jsonb_build_array(value) then
    return array[format('%s: must be one of %s', path,
      (select string_agg(e::text, ', ') from jsonb_array_elements(schema -> 'enum') e))];
  end if;

  if schema ? 'anyOf' or schema ? 'oneOf' then
    branch := coalesce(schema -> 'oneOf', schema -> 'anyOf');
    -- A discriminated union: pick the branch whose const property the value names.
    select d.key into disc
      from jsonb_each(branch -> 0 -> 'properties') d
     where d.value ? 'const'
     limit 1;
    if disc is not null and vtype = 'object' then
      if not value ? disc then
        return array[format('%s.%s: required', path, disc)];
      end if;
      for i in 0 .. jsonb_array_length(branch) - 1 loop
        if branch -> i -> 'properties' -> disc -> 'const' = value -> disc then
          return vigil.json_schema_errors(branch -> i, value, path);
        end if;
      end loop;
      select string_agg((b -> 'properties' -> disc -> 'const')::text, ', ') into allowed from jsonb_array_elements(branch) b;
      return array[format('%s.%s: must be one of %s', path, disc, allowed)];
    end if;
    for i in 0 .. jsonb_array_length(branch) - 1 loop
      branch_errors := vigil.json_schema_errors(branch -> i, value, path);
      if cardinality(branch_errors) = 0 then
        return '{}';
      end if;
      if best_errors is null or cardinality(branch_errors) < cardinality(best_errors) then
        best_errors := branch_errors;
      end if;
    end loop;
    return best_errors;
  end if;

  if schema ? 'type' then
    types := case jsonb_typeof(schema -> 'type')
               when 'array' then array(select jsonb_array_elements_text(schema -> 'type'))
               else array[schema ->> 'type']
             end;
    foreach t in array types loop
      type_ok := type_ok or t = vtype
        or (t = 'integer' and vtype = 'number' and (value #>> '{}')::numeric = trunc((value #>> '{}')::numeric));
    end loop;
    if not type_ok then
      return array[format('%s: must be %s, got %s', path,
        case when 'integer' = any(types) then 'a whole number' else array_to_string(types, ' or ') end, vtype)];
    end if;
  end if;

  if vtype = 'string' then
    if (schema ->> 'minLength')::integer > char_length(value #>> '{}') then
      errors := errors || format('%s: must be at least %s characters', path, schema ->> 'minLength');
    end if;
    if (schema ->> 'maxLength')::integer < char_length(value #>> '{}') then
      errors := errors || format('%s: must be at most %s characters', path, schema ->> 'maxLength');
    end if;
    if schema ? 'pattern' and (value #>> '{}') !~ (schema ->> 'pattern') then
      errors := errors || format('%s: does not match %s', path, schema ->> 'pattern');
    end if;
    if schema ->> 'format' = 'uri' and (value #>> '{}') !~ '^[A-Za-z][A-Za-z0-9+.-]*://[^[:space:]/]+' then
      errors := errors || format('%s: must be a URL', path);
    elsif schema ->> 'format' = 'email' and (value #>> '{}') !~ '^[^[:space:]@]+@[^[:space:]@]+\.[^[:space:]@]+$' then
      errors := errors || format('%s: must be an email address', path);
    end if;
  elsif vtype = 'number' then
    if (value #>> '{}')::numeric < (schema ->> 'minimum')::numeric then
      errors := errors || format('%s: must be at least %s', path, schema ->> 'minimum');
    end if;
    if (value #>> '{}')::numeric > (schema ->> 'maximum')::numeric then
      errors := errors || format('%s: must be at most %s', path, schema ->> 'maximum');
    end if;
    if (value #>> '{}')::numeric <= (schema ->> 'exclusiveMinimum')::numeric then
      errors := errors || format('%s: must be more than %s', path, schema ->> 'exclusiveMinimum');
    end if;
    if (value #>> '{}')::numeric >= (schema ->> 'exclusiveMaximum')::numeric then
      errors := errors || format('%s: must be less than %s', path, schema ->> 'exclusiveMaximum');
    end if;
  elsif vtype = 'array' then
    if (schema ->> 'minItems')::integer > jsonb_array_length(value) then
      errors := errors || format('%s: must have at least %s items', path, schema ->> 'minItems');
    end if;
    if (schema ->> 'maxItems')::integer < jsonb_array_length(value) then
      errors := errors || format('%s: must have at most %s items', path, schema ->> 'maxItems');
    end if;
    if schema ? 'items' then
      for i in 0 .. jsonb_array_length(value) - 1 loop
        errors := errors || vigil.json_schema_errors(schema -> 'items', value -> i, format('%s[%s]', path, i));
      end loop;
    end if;
  elsif vtype = 'object' then
    if schema ? 'required' then
      for k in select jsonb_array_elements_text(schema -> 'required') loop
        if not value ? k then
          errors := errors || format('%s.%s: required', path, k);
        end if;
      end loop;
    end if;
    for k, v in select e.key, e.value from jsonb_each(value) e loop
      if schema -> 'properties' ? k then
        errors := errors || vigil.json_schema_errors(schema -> 'properties' -> k, v, path || '.' || k);
      elsif schema -> 'additionalProperties' = 'false'::jsonb then
        select string_agg(p, ', ' order by p) into allowed from jsonb_object_keys(schema -> 'properties') p;
        errors := errors || format('%s.%s: unknown field (allowed: %s)', path, k, coalesce(allowed, 'none'));
      elsif jsonb_typeof(schema -> 'additionalProperties') = 'object' then
        errors := errors || vigil.json_schema_errors(schema -> 'additionalProperties', v, path || '.' || k);
      end if;
      if schema ? 'propertyNames' then
        errors := errors || vigil.json_schema_errors(schema -> 'propertyNames', to_jsonb(k), format('%s (field name %s)', path, k));
      end if;
    end loop;
  end if;
  return errors;
end
$$;

create function vigil.validate_service_config() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  config_schema jsonb;
  problems text[];
begin
  select s.schema into config_schema from vigil.probe_config_schemas s where s.kind = new.kind;
  if config_schema is null then
    raise exception 'no config schema for service kind %', new.kind using errcode = 'check_violation';
  end if;
  problems := vigil.json_schema_errors(config_schema, new.config, 'config');
  if cardinality(problems) > 0 then
    raise exception 'invalid config for % service "%": %', new.kind, new.name, array_to_string(problems, '; ')
      using errcode = 'check_violation',
            hint = 'Each kind''s fields are in shared/probe-configs.ts and in vigil.probe_config_schemas.';
  end if;
  return new;
end
$$;

create trigger services_validate_config before insert or update of kind, config on vigil.services
  for each row execute function vigil.validate_service_config();

-- ─── Status with hysteresis ─────────────────────────────────────────────────────────────────
alter table vigil.services
  add column failure_threshold integer not null default 3,
  add column success_threshold integer not null default 2,
  add column timeout_ms integer not null default 10000,
  add column failure_streak integer not null default 0,
  add column down_streak integer not null default 0,
  add column success_streak integer not null default 0,
  add column last_checked_at timestamptz,
  add constraint service_failure_threshold check (failure_threshold between 1 and 100),
  add constraint service_success_threshold check (success_threshold between 1 and 100),
  add constraint service_timeout check (timeout_ms between 100 and 120000);

comment on column vigil.services.failure_threshold is 'Consecutive failed checks before the status turns degraded or down (default 3).';
comment on column vigil.services.success_threshold is 'Consecutive healthy checks before the status turns healthy again (default 2).';

create table vigil.status_transitions (
  id bigint generated always as identity primary key,
  service_id uuid not null references vigil.services (id) on delete cascade,
  from_status vigil.service_status not null,
  to_status vigil.service_status not null,
  check_id bigint,
  reason text,
  created_at timestamptz not null default now(),
  constraint transition_changes_status check (from_status <> to_status)
);
create index status_transitions_service_time on vigil.status_transitions (service_id, created_at desc);
comment on table vigil.status_transitions is 'Every change of a service''s status, with the check that caused it.';

/**
 * Opens, worsens, eases or resolves the service's 'service_unhealthy' incident for a transition.
 * One open incident per service and kind (a unique index holds it).
 */
create function vigil.sync_service_incident(
  p_service vigil.services, p_from vigil.service_status, p_to vigil.service_status, p_check vigil.checks
) returns void
language plpgsql
set search_path = ''
as $$
declare
  sev vigil.severity := case p_to when 'down' then 'critical'::vigil.severity else 'warning'::vigil.severity end;
  incident_detail jsonb := jsonb_build_object(
    'check_id', p_check.id, 'status', p_to, 'previous_status', p_from, 'error', p_check.error,
    'response_ms', p_check.response_ms);
begin
  if p_to = 'healthy' then
    update vigil.incidents
       set status = 'resolved', resolved_at = now(),
           detail = detail || jsonb_build_object('resolved_by_check', p_check.id)
     where service_id = p_service.id and kind = 'service_unhealthy' and status = 'open';
  elsif p_to in ('degraded', 'down') then
    insert into vigil.incidents (service_id, kind, severity, title, detail)
    values (p_service.id, 'service_unhealthy', sev, format('%s is %s', p_service.name, p_to), incident_detail)
    on conflict (service_id, kind) where status = 'open'
    do update set severity = excluded.severity, title = excluded.title,
                  detail = vigil.incidents.detail || excluded.detail;
  end if;
end
$$;

/** Applies one check to its service: streaks, status by hysteresis, transition row, incident. */
create function vigil.apply_check() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  svc vigil.services;
  target vigil.service_status;
begin
  select * into svc from vigil.services where id = new.service_id for update;
  if new.status = 'healthy' then
    svc.success_streak := svc.success_streak + 1;
    svc.failure_streak := 0;
    svc.down_streak := 0;
  else
    svc.success_streak := 0;
    svc.failure_streak := svc.failure_streak + 1;
    svc.down_streak := case when new.status = 'down' then svc.down_streak + 1 else 0 end;
  end if;

  target := svc.status;
  if svc.down_streak >= svc.failure_threshold then
    target := 'down';
  elsif svc.failure_streak >= svc.failure_threshold then
    target := 'degraded';
  elsif svc.success_streak >= svc.success_threshold then
    target := 'healthy';
  end if;

  update vigil.services
     set success_streak = svc.success_streak,
         failure_streak = svc.failure_streak,
         down_streak = svc.down_streak,
         last_checked_at = greatest(last_checked_at, new.checked_at),
         status = target,
         status_changed_at = case when target <> svc.status then now() else status_changed_at end
   where id = svc.id;

  if target <> svc.status then
    insert into vigil.status_transitions (service_id, from_status, to_status, check_id, reason)
    values (svc.id, svc.status, target, new.id,
            case when target = 'healthy'
                 then format('%s consecutive healthy checks', svc.success_streak)
                 else format('%s consecutive failed checks (%s down): %s',
                             svc.failure_streak, svc.down_streak, coalesce(new.error, new.status::text))
            end);
    perform vigil.sync_service_incident(svc, svc.status, target, new);
  end if;
  return null;
end
$$;

create trigger checks_apply after insert on vigil.checks
  for each row execute function vigil.apply_check();

-- ─── Metrics and rollups ────────────────────────────────────────────────────────────────────
create table vigil.metrics (
  id bigint generated always as identity primary key,
  service_id uuid not null references vigil.services (id) on delete cascade,
  check_id bigint,
  name vigil.metric_name not null,
  value double precision not null,
  labels jsonb not null default '{}',
  recorded_at timestamptz not null default now(),
  constraint metric_labels_is_object check (jsonb_typeof(labels) = 'object')
);
create index metrics_service_name_time on vigil.metrics (service_id, name, recorded_at desc);
create index metrics_time on vigil.metrics (recorded_at);
comment on table vigil.metrics is 'Measured values over time (active_connections, http_request_duration, cpu_usage_percent, …).';

-- One row per service and hour: uptime over 90 days reads at most 2,160 rows a service.
create table vigil.check_rollups (
  service_id uuid not null references vigil.services (id) on delete cascade,
  bucket timestamptz not null,
  checks integer not null,
  healthy integer not null,
  degraded integer not null,
  down integer not null,
  response_ms_sum numeric not null default 0,
  response_ms_count integer not null default 0,
  response_ms_max numeric,
  primary key (service_id, bucket)
);
create index check_rollups_bucket on vigil.check_rollups (bucket);
comment on table vigil.check_rollups is 'Checks counted per service and hour; uptime reads these, so raw checks can expire after 30 days.';

create function vigil.rollup_checks() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  insert into vigil.check_rollups as r
    (service_id, bucket, checks, healthy, degraded, down, response_ms_sum, response_ms_count, response_ms_max)
  select service_id, date_trunc('hour', checked_at), count(*),
         count(*) filter (where status = 'healthy'),
         count(*) filter (where status = 'degraded'),
         count(*) filter (where status = 'down'),
         coalesce(sum(response_ms), 0), count(response_ms), max(response_ms)
    from new_checks
   group by 1, 2
  on conflict (service_id, bucket) do update
    set checks = r.checks + excluded.checks,
        healthy = r.healthy + excluded.healthy,
        degraded = r.degraded + excluded.degraded,
        down = r.down + excluded.down,
        response_ms_sum = r.response_ms_sum + excluded.response_ms_sum,
        response_ms_count = r.response_ms_count + excluded.response_ms_count,
        response_ms_max = greatest(r.response_ms_max, excluded.response_ms_max);
  return null;
end
$$;

create trigger checks_rollup after insert on vigil.checks
  referencing new table as new_checks
  for each statement execute function vigil.rollup_checks();

/** Percent of checks not down for a service over a window, at hour resolution; null without checks. */
create function vigil.uptime(p_service_id uuid, p_window interval)
returns numeric
language sql
stable
set search_path = ''
as $$
  select round(100.0 * sum(checks - down) / nullif(sum(checks), 0), 3)
    from vigil.check_rollups
   where service_id = p_service_id and bucket >= date_trunc('hour', now() - p_window)
$$;

create view vigil.service_uptime as
select s.id as service_id,
       s.name,
       round(100.0 * sum(r.checks - r.down) filter (where r.bucket >= date_trunc('hour', now() - interval '24 hours'))
             / nullif(sum(r.checks) filter (where r.bucket >= date_trunc('hour', now() - interval '24 hours')), 0), 3) as uptime_24h,
       round(100.0 * sum(r.checks - r.down) filter (where r.bucket >= date_trunc('hour', now() - interval '7 days'))
             / nullif(sum(r.checks) filter (where r.bucket >= date_trunc('hour', now() - interval '7 days')), 0), 3) as uptime_7d,
       round(100.0 * sum(r.checks - r.down) filter (where r.bucket >= date_trunc('hour', now() - interval '30 days'))
             / nullif(sum(r.checks) filter (where r.bucket >= date_trunc('hour', now() - interval '30 days')), 0), 3) as uptime_30d,
       round(100.0 * sum(r.checks - r.down) / nullif(sum(r.checks), 0), 3) as uptime_90d
  from vigil.services s
  left join vigil.check_rollups r
    on r.service_id = s.id and r.bucket >= date_trunc('hour', now() - interval '90 days')
 group by s.id, s.name;
comment on view vigil.service_uptime is 'Uptime (percent of checks not down) per service over 24 h, 7, 30 and 90 days, from hourly rollups.';

-- Same columns as before, now from the rollups. Inlined rather than calling vigil.uptime(): a view's
-- functions run with the caller's rights, and anon may not read the rollups.
create or replace view vigil.public_status as
select s.name,
       s.status::text as status,
       u.uptime_24h
  from vigil.services s
  left join lateral (
    select round(100.0 * sum(r.checks - r.down) / nullif(sum(r.checks), 0), 3) as uptime_24h
      from vigil.check_rollups r
     where r.service_id = s.id and r.bucket >= date_trunc('hour', now() - interval '24 hours')
  ) u on true
 where s.enabled;

-- ─── Cycles ─────────────────────────────────────────────────────────────────────────────────
create table vigil.cycles (
  id uuid primary key,
  started_at timestamptz not null,
  finished_at timestamptz not null,
  duration_ms integer not null,
  services integer not null,
  healthy integer not null,
  degraded integer not null,
  down integer not null,
  deadman text,
  constraint cycle_times check (finished_at >= started_at and duration_ms >= 0)
);
create index cycles_finished on vigil.cycles (finished_at desc);
comment on table vigil.cycles is 'One row per health-check cycle; the watchdog opens an incident when they stop.';

/**
 * Records one health-check cycle in one transaction: the cycle row, a check per result (whose
 * triggers move statuses and incidents), and the metrics. Results of services deleted meanwhile
 * are dropped, not failed.
 */
create function vigil.record_cycle(cycle jsonb)
returns jsonb
language sql
security definer
set search_path = ''
as $$
  with results as materialized (
    select r.service_id, r.status, r.response_ms, coalesce(r.measurements, '{}') as measurements, r.error,
           coalesce(r.checked_at, now()) as checked_at, coalesce(r.metrics, '[]') as metrics
      from jsonb_to_recordset(cycle -> 'results') as r(
        service_id uuid, status vigil.check_status, response_ms numeric, measurements jsonb,
        error text, checked_at timestamptz, metrics jsonb)
     where exists (select from vigil.services s where s.id = r.service_id)
  ), cycle_row as (
    insert into vigil.cycles (id, started_at, finished_at, duration_ms, services, healthy, degraded, down)
    select (cycle ->> 'id')::uuid, (cycle ->> 'started_at')::timestamptz, (cycle ->> 'finished_at')::timestamptz,
           (cycle ->> 'duration_ms')::integer, count(*),
           count(*) filter (where status = 'healthy'), count(*) filter (where status = 'degraded'),
           count(*) filter (where status = 'down')
      from results
    returning id
  ), inserted as (
    insert into vigil.checks (service_id, cycle_id, checked_at, status, response_ms, measurements, error)
    select service_id, (cycle ->> 'id')::uuid, checked_at, status, response_ms, measurements, error
      from results
    returning id, service_id, checked_at
  ), metric_rows as (
    insert into vigil.metrics (service_id, check_id, name, value, labels, recorded_at)
    select i.service_id, i.id, (m ->> 'name')::vigil.metric_name, (m ->> 'value')::double precision,
           coalesce(m -> 'labels', '{}'), i.checked_at
      from inserted i
      join results r on r.service_id = i.service_id
      cross join lateral jsonb_array_elements(r.metrics) m
     where jsonb_typeof(m -> 'value') = 'number'
       and m ->> 'name' = any (enum_range(null::vigil.metric_name)::text[])
    returning 1
  )
  select jsonb_build_object('cycle_id', (select id from cycle_row),
                            'checks', (select count(*) from inserted),
                            'metrics', (select count(*) from metric_rows))
$$;

-- ─── Heartbeats ─────────────────────────────────────────────────────────────────────────────
create table vigil.heartbeat_tokens (
  service_id uuid primary key references vigil.services (id) on delete cascade,
  token text not null unique
    default replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''),
  last_ping_at timestamptz,
  pings bigint not null default 0
);
comment on table vigil.heartbeat_tokens is
  'The token a job pings at /functions/v1/heartbeat/<token>, and when it last did, per heartbeat service.';

create function vigil.ensure_heartbeat_token() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.kind = 'heartbeat' and new.config ->> 'source' = 'ping' then
    insert into vigil.heartbeat_tokens (service_id) values (new.id) on conflict do nothing;
  end if;
  return null;
end
$$;

create trigger services_heartbeat_token after insert or update of kind, config on vigil.services
  for each row execute function vigil.ensure_heartbeat_token();

/** Records a ping; returns the service's name, or null for an unknown token. */
create function vigil.record_heartbeat(p_token text)
returns text
language sql
security definer
set search_path = ''
as $$
  update vigil.heartbeat_tokens t
     set last_ping_at = now(), pings = pings + 1
    from vigil.services s
   where t.token = p_token and s.id = t.service_id
  returning s.name
$$;

/**
 * How a heartbeat service is doing now: pings for 'ping', pg_cron's run history (and the answer
 * of the function it invoked) for 'cron', Vigil's own cycles for 'cycles'.
 */
create function vigil.heartbeat_verdict(p_service_id uuid)
returns table (status vigil.check_status, error text, measurements jsonb)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  svc vigil.services;
  allowed interval;
  last_seen timestamptz;
  run record;
  inv record;
begin
  select * into svc from vigil.services where id = p_service_id;
  if not found or svc.kind <> 'heartbeat' then
    return query select 'down'::vigil.check_status, 'not a heartbeat service', '{}'::jsonb;
    return;
  end if;
  allowed := make_interval(secs => (svc.config ->> 'period_seconds')::numeric
                                   + coalesce((svc.config ->> 'grace_seconds')::numeric, 60));

  if svc.config ->> 'source' = 'cycles' then
    select max(finished_at) into last_seen from vigil.cycles;
  elsif svc.config ->> 'source' = 'ping' then
    select last_ping_at into last_seen from vigil.heartbeat_tokens where service_id = svc.id;
  else
    select d.status, d.return_message, d.start_time, d.end_time into run
      from cron.job j join cron.job_run_details d on d.jobid = j.jobid
     where j.jobname = svc.config ->> 'job'
     order by d.start_time desc nulls last
     limit 1;
    if not exists (select from cron.job where jobname = svc.config ->> 'job') then
      return query select 'down'::vigil.check_status,
        format('pg_cron job %s does not exist', svc.config ->> 'job'), '{}'::jsonb;
      return;
    end if;
    if run.status = 'failed' then
      return query select 'down'::vigil.check_status,
        format('pg_cron job %s failed: %s', svc.config ->> 'job', left(run.return_message, 500)),
        jsonb_build_object('last_run_at', run.start_time, 'last_run_status', run.status);
      return;
    end if;
    last_seen := run.start_time;
    if svc.config ? 'function' and run.start_time is not null then
      select i.state, i.status_code, i.error into inv
        from vigil.invocations i
       where i.fn = svc.config ->> 'function' and i.requested_at >= run.start_time - interval '5 seconds'
       order by i.id desc limit 1;
      if inv.state in ('failed', 'timed_out') then
        return query select 'down'::vigil.check_status,
          format('pg_cron job %s ran, but function %s answered %s', svc.config ->> 'job', svc.config ->> 'function',
                 coalesce(inv.status_code::text, inv.state) || coalesce(': ' || left(inv.error, 300), '')),
          jsonb_build_object('last_run_at', run.start_time, 'function_state', inv.state, 'status_code', inv.status_code);
        return;
      end if;
    end if;
  end if;

  if coalesce(last_seen, svc.created_at) < now() - allowed then
    return query select 'down'::vigil.check_status,
      case when last_seen is null
           then format('never seen in %s (expected every %s s)', date_trunc('second', now() - svc.created_at), svc.config ->> 'period_seconds')
           else format('last seen %s ago (expected every %s s)', date_trunc('second', now() - last_seen), svc.config ->> 'period_seconds')
      end,
      jsonb_build_object('last_seen_at', last_seen);
    return;
  end if;
  return query select 'healthy'::vigil.check_status, null::text,
    jsonb_build_object('last_seen_at', last_seen,
                       'seconds_since', round(extract(epoch from now() - coalesce(last_seen, svc.created_at))::numeric, 1));
end
$$;

/**
 * The watchdog, run by pg_cron without any edge function: writes a down check for every
 * 'cycles' heartbeat that has gone quiet. While cycles run, health-check probes it as usual.
 */
create function vigil.watch_cycles()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  svc record;
  written integer := 0;
begin
  for svc in
    select s.id, v.status, v.error, v.measurements
      from vigil.services s
      cross join lateral vigil.heartbeat_verdict(s.id) v
     where s.enabled and s.kind = 'heartbeat' and s.config ->> 'source' = 'cycles' and v.status = 'down'
  loop
    insert into vigil.checks (service_id, status, error, measurements)
    values (svc.id, 'down', svc.error, svc.measurements || '{"checked_by": "vigil-watchdog"}');
    written := written + 1;
  end loop;
  return written;
end
$$;

-- ─── Retention ──────────────────────────────────────────────────────────────────────────────
create function vigil.apply_retention(
  raw_for interval default interval '30 days',
  rollups_for interval default interval '365 days'
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  checks_deleted integer;
  metrics_deleted integer;
  rollups_deleted integer;
  cycles_deleted integer;
begin
  delete from vigil.checks where checked_at < now() - raw_for;
  get diagnostics checks_deleted = row_count;
  delete from vigil.metrics where recorded_at < now() - raw_for;
  get diagnostics metrics_deleted = row_count;
  delete from vigil.cycles where finished_at < now() - raw_for;
  get diagnostics cycles_deleted = row_count;
  delete from vigil.check_rollups where bucket < now() - rollups_for;
  get diagnostics rollups_deleted = row_count;
  delete from vigil.status_transitions where created_at < now() - rollups_for;
  return jsonb_build_object('checks', checks_deleted, 'metrics', metrics_deleted,
                            'cycles', cycles_deleted, 'rollups', rollups_deleted);
end
$$;

-- ─── Access ─────────────────────────────────────────────────────────────────────────────────
grant select, insert, update, delete on vigil.status_transitions, vigil.metrics, vigil.check_rollups,
  vigil.cycles, vigil.heartbeat_tokens to service_role;
grant select on vigil.probe_config_schemas to service_role, authenticated;
grant select on vigil.status_transitions, vigil.metrics, vigil.check_rollups, vigil.cycles,
  vigil.heartbeat_tokens to authenticated;
grant select on vigil.service_uptime to service_role, authenticated;

alter table vigil.probe_config_schemas enable row level security;
alter table vigil.status_transitions enable row level security;
alter table vigil.metrics enable row level security;
alter table vigil.check_rollups enable row level security;
alter table vigil.cycles enable row level security;
alter table vigil.heartbeat_tokens enable row level security;

create policy "Operators can read probe config schemas" on vigil.probe_config_schemas
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can read status transitions" on vigil.status_transitions
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can read metrics" on vigil.metrics
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can read check rollups" on vigil.check_rollups
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can read cycles" on vigil.cycles
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can read heartbeat tokens" on vigil.heartbeat_tokens
  for select to authenticated using ((select vigil.is_operator()));

-- security_invoker: an operator reading uptime sees what RLS lets them see, no more.
alter view vigil.service_uptime set (security_invoker = true);

-- Takes PUBLIC's default EXECUTE off this migration's functions; explicit grants stay as they were.
revoke execute on all functions in schema vigil from public;
grant execute on function vigil.record_cycle(jsonb) to service_role;
-- Called by the checks trigger, which runs with the rights of whoever inserts the check.
grant execute on function vigil.sync_service_incident(vigil.services, vigil.service_status, vigil.service_status, vigil.checks) to service_role;
grant execute on function vigil.record_heartbeat(text) to service_role;
grant execute on function vigil.heartbeat_verdict(uuid) to service_role;
grant execute on function vigil.uptime(uuid, interval) to service_role, authenticated;
grant execute on function vigil.json_schema_errors(jsonb, jsonb, text) to service_role, authenticated;

select vigil.publish_for_realtime(array['status_transitions', 'cycles']);
