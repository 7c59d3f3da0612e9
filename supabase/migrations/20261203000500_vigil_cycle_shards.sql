-- Sharded health-check cycles. An edge function has 256 MB and 2 s of CPU per request; one
-- invocation over 1,000 targets reached 315 MB. A cycle over more services than the shard size
-- (VIGIL_SHARD_SIZE, default 200) becomes a run: the invocation pg_cron called coordinates, and each
-- shard of at most shard-size services is probed by its own health-check invocation, which records
-- its own vigil.cycles row. Shards record independently; a shard records once whatever retries or
-- late answers follow (vigil.record_cycle claims its row); a shard that never reports is marked
-- missing by the watchdog after the run's deadline, even when the coordinator itself died, and
-- vigil-health-check gets a degraded check naming the run and the shards lost.
-- Restates vigil.record_cycle, vigil.watch_cycles and vigil.apply_retention (20261123000400).

create table vigil.cycle_runs (
  id uuid primary key,
  trigger text not null,
  started_at timestamptz not null default now(),
  -- After this, a shard that has not reported is missing (the watchdog closes the run).
  deadline_at timestamptz not null,
  finished_at timestamptz,
  shard_size integer not null,
  shards integer not null,
  services integer not null,
  status text not null default 'running',
  closed_by text,
  -- Totals of the shards' first-round cycles, written when the run closes.
  summary jsonb,
  constraint cycle_run_trigger check (trigger in ('cron', 'manual')),
  constraint cycle_run_shard_size check (shard_size between 1 and 1000),
  constraint cycle_run_shards check (shards >= 1),
  constraint cycle_run_services check (services >= 1),
  constraint cycle_run_status check (status in ('running', 'ok', 'partial', 'failed')),
  constraint cycle_run_closed check ((status = 'running') = (finished_at is null)),
  constraint cycle_run_deadline check (deadline_at > started_at),
  constraint cycle_run_summary_is_object check (summary is null or jsonb_typeof(summary) = 'object')
);
create index cycle_runs_open on vigil.cycle_runs (deadline_at) where status = 'running';
create index cycle_runs_started on vigil.cycle_runs (started_at desc);
comment on table vigil.cycle_runs is
  'A health-check cycle fanned out over several health-check invocations (shards); ok, partial (some shards lost) or failed.';

create table vigil.cycle_shards (
  run_id uuid not null references vigil.cycle_runs (id) on delete cascade,
  shard integer not null,
  service_ids jsonb not null,
  services integer generated always as (jsonb_array_length(service_ids)) stored,
  status text not null default 'pending',
  attempts integer not null default 0,
  -- How long one attempt may take: the longest probe timeout in it, the confirmation round, a margin.
  deadline_ms integer not null,
  cycle_id uuid,
  error text,
  started_at timestamptz,
  finished_at timestamptz,
  duration_ms integer,
  primary key (run_id, shard),
  constraint cycle_shard_index check (shard >= 0),
  constraint cycle_shard_services check (jsonb_typeof(service_ids) = 'array'
                                         and jsonb_array_length(service_ids) between 1 and 1000),
  constraint cycle_shard_status check (status in ('pending', 'running', 'ok', 'failed', 'timed_out', 'missing')),
  constraint cycle_shard_attempts check (attempts between 0 and 10),
  constraint cycle_shard_deadline check (deadline_ms between 1000 and 400000),
  constraint cycle_shard_recorded check ((status = 'ok') = (cycle_id is not null)),
  constraint cycle_shard_error_length check (length(error) <= 2000)
);
comment on table vigil.cycle_shards is
  'One shard of a cycle run: its services, attempts and outcome (the vigil.cycles row it recorded, or why it did not).';

alter table vigil.cycles
  add column run_id uuid references vigil.cycle_runs (id) on delete set null,
  add column shard integer;
create index cycles_run on vigil.cycles (run_id) where run_id is not null;
comment on column vigil.cycles.run_id is
  'The cycle run this cycle belongs to (null: a cycle of its own): one shard''s cycle, or with shard null the whole run''s totals, written when it closes, so that what reads the latest cycle (the dashboard, the reports, the Prometheus export) sees all of a sharded cycle.';

/**
 * Plans a run: the run row and one pending row per shard. p_run is
 * {id, trigger, shard_size, deadline_ms, shards: [{service_ids: [uuid…], deadline_ms}]}; shard i is
 * the i-th entry. Every shard holds 1..shard_size services and no service is in two shards.
 */
create function vigil.start_cycle_run(p_run jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  size integer;
  run_deadline integer;
  shard_count integer;
  bad text;
begin
  if jsonb_typeof(p_run) is distinct from 'object' or jsonb_typeof(p_run -> 'shards') is distinct from 'array' then
    raise exception 'a cycle run is an object with shards' using errcode = 'invalid_parameter_value';
  end if;
  size := case when jsonb_typeof(p_run -> 'shard_size') = 'number' then (p_run ->> 'shard_size')::numeric::integer end;
  if size is null or size not between 1 and 1000 then
    raise exception 'shard_size must be a whole number from 1 to 1000' using errcode = 'invalid_parameter_value';
  end if;
  run_deadline := case when jsonb_typeof(p_run -> 'deadline_ms') = 'number' then (p_run ->> 'deadline_ms')::numeric::integer end;
  if run_deadline is null or run_deadline not between 1000 and 3600000 then
    raise exception 'deadline_ms must be from 1000 to 3600000' using errcode = 'invalid_parameter_value';
  end if;
  shard_count := jsonb_array_length(p_run -> 'shards');
  if shard_count = 0 then
    raise exception 'a cycle run has at least one shard' using errcode = 'invalid_parameter_value';
  end if;
  select format('shards[%s].service_ids: must hold 1 to %s services', s.i - 1, size) into bad
    from jsonb_array_elements(p_run -> 'shards') with ordinality s(v, i)
   where jsonb_typeof(s.v -> 'service_ids') is distinct from 'array'
      or jsonb_array_length(s.v -> 'service_ids') not between 1 and size
   limit 1;
  if bad is not null then
    raise exception '%', bad using errcode = 'invalid_parameter_value';
  end if;
  if exists (select id from jsonb_array_elements(p_run -> 'shards') s, jsonb_array_elements_text(s -> 'service_ids') id
              group by id having count(*) > 1) then
    raise exception 'a service is in two shards' using errcode = 'invalid_parameter_value';
  end if;

  insert into vigil.cycle_runs (id, trigger, deadline_at, shard_size, shards, services)
  values ((p_run ->> 'id')::uuid, coalesce(p_run ->> 'trigger', 'manual'),
          now() + make_interval(secs => run_deadline / 1000.0), size, shard_count,
          (select sum(jsonb_array_length(s -> 'service_ids')) from jsonb_array_elements(p_run -> 'shards') s));
  insert into vigil.cycle_shards (run_id, shard, service_ids, deadline_ms)
  select (p_run ->> 'id')::uuid, s.i - 1,
         (select jsonb_agg(id::uuid) from jsonb_array_elements_text(s.v -> 'service_ids') id),
         (s.v ->> 'deadline_ms')::numeric::integer
    from jsonb_array_elements(p_run -> 'shards') with ordinality s(v, i);
  return jsonb_build_object('run_id', p_run ->> 'id', 'shards', shard_count);
end
$$;

/**
 * The coordinator sends a shard (again): one more attempt; returns its number (0: no such shard,
 * or its run is closed).
 */
create function vigil.begin_shard_attempt(p_run_id uuid, p_shard integer)
returns integer
language sql
security definer
set search_path = ''
as $$
  with attempt as (
    update vigil.cycle_shards
       set attempts = least(attempts + 1, 10),
           status = case when cycle_id is null then 'running' else status end,
           started_at = coalesce(started_at, now())
     where run_id = p_run_id and shard = p_shard
       and exists (select from vigil.cycle_runs r where r.id = p_run_id and r.status = 'running')
    returning attempts
  )
  select coalesce((select attempts from attempt), 0)
$$;

/**
 * A shard attempt that did not record: failed (an error answer) or timed_out (no answer by its
 * deadline). A shard that recorded meanwhile (a late answer) stays ok. Returns the shard's status.
 */
create function vigil.record_shard_failure(p_run_id uuid, p_shard integer, p_status text, p_error text)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  now_status text;
begin
  if p_status not in ('failed', 'timed_out') then
    raise exception 'a shard failure is failed or timed_out, not %', p_status using errcode = 'invalid_parameter_value';
  end if;
  update vigil.cycle_shards
     set status = p_status, error = left(p_error, 2000), finished_at = now()
   where run_id = p_run_id and shard = p_shard and cycle_id is null and status <> 'missing'
     and exists (select from vigil.cycle_runs r where r.id = p_run_id and r.status = 'running')
  returning status into now_status;
  if now_status is null then
    select status into now_status from vigil.cycle_shards where run_id = p_run_id and shard = p_shard;
  end if;
  return now_status;
end
$$;

/**
 * Closes a run once: shards that never reported are missing; the run is ok, partial (some shards
 * lost) or failed (all lost); when any is lost, vigil-health-check gets a degraded check naming the
 * run and its lost shards (decisive: it opens a warning incident at once; the next cycles resolve
 * it). The coordinator calls it when its shards are done, the watchdog after the run's deadline.
 */
create function vigil.finish_cycle_run(p_run_id uuid, p_closed_by text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  run vigil.cycle_runs;
  lost jsonb;
  totals jsonb;
begin
  select * into run from vigil.cycle_runs where id = p_run_id for update;
  if not found then
    raise exception 'no cycle run %', p_run_id using errcode = 'no_data_found';
  end if;
  if run.status <> 'running' then
    return jsonb_build_object('run_id', run.id, 'status', run.status, 'closed_by', run.closed_by, 'already_closed', true)
           || coalesce(run.summary, '{}');
  end if;
  update vigil.cycle_shards
     set status = 'missing', finished_at = now(),
         error = left(coalesce(error || '; ', '') || format('never reported (run closed by %s)', p_closed_by), 2000)
   where run_id = p_run_id and status in ('pending', 'running');
  select coalesce(jsonb_agg(jsonb_build_object('shard', sh.shard, 'status', sh.status, 'services', sh.services,
                                               'attempts', sh.attempts, 'error', left(sh.error, 300))
                            order by sh.shard) filter (where sh.status <> 'ok'), '[]'),
         jsonb_build_object('shards_ok', count(*) filter (where sh.status = 'ok'),
                            'services', coalesce(sum(c.services), 0), 'healthy', coalesce(sum(c.healthy), 0),
                            'degraded', coalesce(sum(c.degraded), 0), 'down', coalesce(sum(c.down), 0))
    into lost, totals
    from vigil.cycle_shards sh
    left join vigil.cycles c on c.id = sh.cycle_id
   where sh.run_id = p_run_id;
  update vigil.cycle_runs
     set finished_at = now(), closed_by = left(p_closed_by, 100),
         status = case when jsonb_array_length(lost) = 0 then 'ok'
                       when (totals ->> 'shards_ok')::integer > 0 then 'partial' else 'failed' end,
         summary = totals || jsonb_build_object('lost_shards', lost)
   where id = p_run_id
  returning * into run;
  -- The whole run as one cycle, for what reads the latest cycle; never for a run that recorded
  -- nothing, which must not look to the 'cycles' heartbeat like a cycle that arrived.
  if run.status <> 'failed' then
    insert into vigil.cycles (id, started_at, finished_at, duration_ms, services, healthy, degraded, down, run_id, shard)
    values (run.id, run.started_at, run.finished_at,
            greatest(0, round(extract(epoch from run.finished_at - run.started_at) * 1000))::integer,
            (totals ->> 'services')::integer, (totals ->> 'healthy')::integer,
            (totals ->> 'degraded')::integer, (totals ->> 'down')::integer, run.id, null);
  end if;
  if jsonb_array_length(lost) > 0 then
    insert into vigil.checks (service_id, status, error, measurements)
    select s.id, 'degraded',
           format('cycle run %s lost %s of %s shards (%s): their %s services were not checked', run.id,
                  jsonb_array_length(lost), run.shards,
                  (select string_agg(format('shard %s %s', l ->> 'shard', l ->> 'status'), ', ')
                     from jsonb_array_elements(lost) l),
                  (select sum((l ->> 'services')::integer) from jsonb_array_elements(lost) l)),
           jsonb_build_object('run_id', run.id, 'lost_shards', lost, 'decisive_status', 'degraded',
                              'checked_by', p_closed_by)
      from vigil.services s
     where s.name = 'vigil-health-check' and s.kind = 'heartbeat' and s.enabled;
  end if;
  return jsonb_build_object('run_id', run.id, 'status', run.status, 'closed_by', run.closed_by) || run.summary;
end
$$;

/**
 * Records one health-check cycle in one transaction: the cycle row, a check per result (whose
 * triggers move statuses and incidents), and the metrics. Results of services deleted meanwhile
 * are dropped, not failed. A shard's first round (run_id and shard, not confirmation) claims its
 * shard row first: only the first recording of a shard counts, a retry or late answer after it
 * records nothing and is told so (duplicate), and a shard records only its own services.
 * As 20261123000400, plus the shard claim and the run_id/shard columns.
 */
create or replace function vigil.record_cycle(cycle jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_run uuid := (cycle ->> 'run_id')::uuid;
  v_shard integer := (cycle ->> 'shard')::integer;
  own jsonb;
  recorded jsonb;
begin
  if (v_run is null) <> (v_shard is null) then
    raise exception 'a shard''s cycle names both run_id and shard' using errcode = 'invalid_parameter_value';
  end if;
  if v_run is not null then
    select service_ids into own from vigil.cycle_shards where run_id = v_run and shard = v_shard;
    if own is null then
      raise exception 'no shard % in cycle run %', v_shard, v_run using errcode = 'no_data_found';
    end if;
    -- Only into a run still running, held open until this commits: finish_cycle_run (for update)
    -- waits for a shard recording now, and one arriving after the run closed records nothing.
    perform from vigil.cycle_runs where id = v_run and status = 'running' for share;
    if not found then
      return jsonb_build_object('cycle_id', null, 'checks', 0, 'metrics', 0, 'duplicate', true, 'run_closed', true);
    end if;
    if not coalesce((cycle ->> 'confirmation')::boolean, false) then
      -- The claim: the row lock makes a concurrent second recording wait, then find it taken.
      update vigil.cycle_shards
         set status = 'ok', cycle_id = (cycle ->> 'id')::uuid, finished_at = now(), error = null,
             duration_ms = (cycle ->> 'duration_ms')::integer
       where run_id = v_run and shard = v_shard and cycle_id is null and status <> 'missing';
      if not found then
        return jsonb_build_object('cycle_id', null, 'checks', 0, 'metrics', 0, 'duplicate', true);
      end if;
    end if;
  end if;

  with results as materialized (
    select r.service_id, r.status, r.response_ms, coalesce(r.measurements, '{}') as measurements, r.error,
           coalesce(r.checked_at, now()) as checked_at, coalesce(r.metrics, '[]') as metrics
      from jsonb_to_recordset(cycle -> 'results') as r(
        service_id uuid, status vigil.check_status, response_ms numeric, measurements jsonb,
        error text, checked_at timestamptz, metrics jsonb)
     where exists (select from vigil.services s where s.id = r.service_id)
       and (own is null or own @> jsonb_build_array(r.service_id))
  ), cycle_row as (
    insert into vigil.cycles (id, started_at, finished_at, duration_ms, services, healthy, degraded, down, run_id, shard)
    select (cycle ->> 'id')::uuid, (cycle ->> 'started_at')::timestamptz, (cycle ->> 'finished_at')::timestamptz,
           (cycle ->> 'duration_ms')::integer, count(*),
           count(*) filter (where status = 'healthy'), count(*) filter (where status = 'degraded'),
           count(*) filter (where status = 'down'), v_run, v_shard
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
    into recorded;
  return recorded;
end
$$;

/**
 * The watchdog, run by pg_cron without any edge function: writes a down check for every
 * 'cycles' heartbeat that has gone quiet, and closes every cycle run past its deadline (its
 * shards that never reported are missing, and vigil-health-check is told). While cycles run,
 * health-check probes it as usual. Returns the checks written.
 * As 20261123000400, plus the runs.
 */
create or replace function vigil.watch_cycles()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  svc record;
  run_id uuid;
  closed jsonb;
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
  for run_id in
    select r.id from vigil.cycle_runs r where r.status = 'running' and r.deadline_at < now() order by r.started_at
  loop
    -- Each run on its own: a deadlock with a shard recording into it (the next minute closes it)
    -- must not undo the heartbeat checks above or the other runs.
    begin
      closed := vigil.finish_cycle_run(run_id, 'vigil-watchdog');
      if closed ->> 'status' <> 'ok' then
        written := written + 1;
      end if;
    exception when deadlock_detected or lock_not_available then
      null;
    end;
  end loop;
  return written;
end
$$;

-- As 20261123000400, plus the cycle runs (their shards go with them).
create or replace function vigil.apply_retention(
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
  runs_deleted integer;
begin
  delete from vigil.checks where checked_at < now() - raw_for;
  get diagnostics checks_deleted = row_count;
  delete from vigil.metrics where recorded_at < now() - raw_for;
  get diagnostics metrics_deleted = row_count;
  delete from vigil.cycles where finished_at < now() - raw_for;
  get diagnostics cycles_deleted = row_count;
  delete from vigil.cycle_runs where started_at < now() - raw_for and status <> 'running';
  get diagnostics runs_deleted = row_count;
  delete from vigil.check_rollups where bucket < now() - rollups_for;
  get diagnostics rollups_deleted = row_count;
  delete from vigil.status_transitions where created_at < now() - rollups_for;
  return jsonb_build_object('checks', checks_deleted, 'metrics', metrics_deleted,
                            'cycles', cycles_deleted, 'cycle_runs', runs_deleted, 'rollups', rollups_deleted);
end
$$;

-- ─── Access ─────────────────────────────────────────────────────────────────────────────────
grant select, insert, update, delete on vigil.cycle_runs, vigil.cycle_shards to service_role;
grant select on vigil.cycle_runs, vigil.cycle_shards to authenticated;
alter table vigil.cycle_runs enable row level security;
alter table vigil.cycle_shards enable row level security;
create policy "Operators can read cycle runs" on vigil.cycle_runs
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can read cycle shards" on vigil.cycle_shards
  for select to authenticated using ((select vigil.is_operator()));

revoke execute on function vigil.start_cycle_run(jsonb) from public;
revoke execute on function vigil.begin_shard_attempt(uuid, integer) from public;
revoke execute on function vigil.record_shard_failure(uuid, integer, text, text) from public;
revoke execute on function vigil.finish_cycle_run(uuid, text) from public;
grant execute on function vigil.start_cycle_run(jsonb) to service_role;
grant execute on function vigil.begin_shard_attempt(uuid, integer) to service_role;
grant execute on function vigil.record_shard_failure(uuid, integer, text, text) to service_role;
grant execute on function vigil.finish_cycle_run(uuid, text) to service_role;


-- What reads the latest cycle reads whole ones: a run's shard rows (shard set) would show one
-- shard's services while the run is going; its summary row (shard null) is the whole run.
-- As 20261202003700, but for the latest cycle's filter.
create or replace function vigil.dashboard_snapshot()
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
    'generated_at', now(),
    'operator', vigil.is_operator(),
    'settings', coalesce((
      select jsonb_agg(jsonb_build_object(
               'environment', st.environment, 'kill_switch', st.kill_switch, 'dry_run', st.dry_run,
               'slow_query_ms', st.slow_query_ms, 'updated_at', st.updated_at)
             order by array_position(array['prod', 'qa', 'dev'], st.environment::text))
        from vigil.settings st), '[]'::jsonb),
    'score', vigil.health_score(),
    'services', coalesce((
      select jsonb_agg(jsonb_build_object(
               'id', s.id, 'name', s.name, 'kind', s.kind, 'environment', s.environment,
               'description', s.description, 'status', s.status,
               'status_changed_at', s.status_changed_at, 'enabled', s.enabled,
               'heal_enabled', s.heal_enabled, 'depends_on', coalesce(to_jsonb(s.depends_on), '[]'::jsonb),
               'folded_under', fold.name, 'latency_ms', last.response_ms,
               'last_checked_at', s.last_checked_at, 'uptime_24h', u.uptime_24h,
               'uptime_7d', u.uptime_7d, 'uptime_30d', u.uptime_30d)
             order by s.name)
        from vigil.services s
        left join vigil.service_uptime u on u.service_id = s.id
        left join lateral (
          select c.response_ms from vigil.checks c
           where c.service_id = s.id order by c.checked_at desc limit 1) last on true
        left join lateral (
          select fs.name from vigil.incidents i
            join vigil.incidents f on f.id = i.folded_into
            join vigil.services fs on fs.id = f.service_id
           where i.service_id = s.id and i.status = 'open'
           order by i.opened_at desc limit 1) fold on true), '[]'::jsonb),
    'incidents', coalesce((
      select jsonb_agg(to_jsonb(x) order by x.status = 'open' desc, x.opened_at desc)
        from (
          (select i.id, i.service_id, s.name as service, i.kind, i.severity, i.status, i.title,
                  i.opened_at, i.resolved_at, i.acknowledged_at, i.acknowledged_by_name,
                  i.heal_attempts, i.escalation_level, i.folded_into
             from vigil.incidents i join vigil.services s on s.id = i.service_id
            where i.status = 'open')
          union all
          (select i.id, i.service_id, s.name, i.kind, i.severity, i.status, i.title,
                  i.opened_at, i.resolved_at, i.acknowledged_at, i.acknowledged_by_name,
                  i.heal_attempts, i.escalation_level, i.folded_into
             from vigil.incidents i join vigil.services s on s.id = i.service_id
            where i.status = 'resolved'
            order by i.resolved_at desc limit 50)) x), '[]'::jsonb),
    'approvals', coalesce((
      select jsonb_agg(jsonb_build_object(
               'action_id', a.action_id, 'incident_id', a.incident_id, 'service', s.name,
               'strategy', a.strategy, 'plan', a.plan, 'requested_at', a.requested_at,
               'expires_at', a.expires_at)
             order by a.requested_at)
        from vigil.heal_approvals a join vigil.services s on s.id = a.service_id
       where a.decision is null and a.expires_at > now()), '[]'::jsonb),
    'heal_log', coalesce((
      select jsonb_agg(to_jsonb(h) order by h.id desc)
        from (select h.id, h.created_at as at, h.incident_id, s.name as service, h.strategy,
                     h.outcome, h.attempt,
                     (vigil.heal_ladder() ->> 'max_attempts')::int as max_attempts,
                     h.detail, h.reason, h.dry_run
                from vigil.heal_actions h join vigil.services s on s.id = h.service_id
               where h.phase = 'result'
               order by h.id desc limit 100) h), '[]'::jsonb),
    'recommendations', coalesce((
      select jsonb_agg(jsonb_build_object(
               'id', r.id, 'service', s.name, 'kind', r.kind, 'title', r.title,
               'detail', r.detail, 'status', r.status, 'created_at', r.created_at)
             order by r.created_at desc)
        from (select * from vigil.recommendations where status = 'open'
               order by created_at desc limit 50) r
        left join vigil.services s on s.id = r.service_id), '[]'::jsonb),
    'control_changes', coalesce((
      select jsonb_agg(to_jsonb(c) order by c.id desc)
        from (select id, changed_at, target, field, old_value, new_value, actor_name
                from vigil.control_changes order by id desc limit 50) c), '[]'::jsonb),
    'cycle', (
      select jsonb_build_object('finished_at', c.finished_at, 'duration_ms', c.duration_ms,
                                'services', c.services, 'healthy', c.healthy,
                                'degraded', c.degraded, 'down', c.down)
        from vigil.cycles c where c.shard is null order by c.finished_at desc limit 1),
    'maintenance_runs', coalesce((
      select jsonb_agg(to_jsonb(m) order by m.started_at desc)
        from (select id, task, cadence, attempt, status, started_at, finished_at, summary, error
                from vigil.maintenance_runs order by started_at desc limit 20) m), '[]'::jsonb),
    'daily_report', (select vigil.report_card(r) from vigil.reports r
                      where r.kind = 'daily' and r.status = 'ready' order by r.period_start desc limit 1),
    'weekly_report', (select vigil.report_card(r) from vigil.reports r
                       where r.kind = 'weekly' and r.status = 'ready' order by r.period_start desc limit 1),
    -- What the analysis flags now (enabled services only): series anomalous now, the most anomalous
    -- first, then series whose forecast crosses their limit within the horizon. Never the
    -- detector's state, and of the forecast only its sentence and eta: what the panel shows.
    'analysis', coalesce((
      select jsonb_agg(to_jsonb(a) order by a.anomalous_since is null, a.score desc nulls last)
        from (select m.service_id, s.name as service, m.metric, m.labels, m.value, m.score,
                     m.baseline, m.anomalous_since,
                     case when m.forecast ->> 'status' = 'crosses' then
                       jsonb_build_object('text', m.forecast -> 'text', 'eta_seconds', m.forecast -> 'etaSeconds')
                     end as forecast,
                     m.forecast_at
                from vigil.metric_series m join vigil.services s on s.id = m.service_id
               where s.enabled and (m.anomalous_since is not null or m.forecast ->> 'status' = 'crosses')
               order by m.anomalous_since is null, m.score desc nulls last
               limit 100) a), '[]'::jsonb))
$$;

-- As 20261203000300, but for the latest cycle's filter.
create or replace function vigil.prometheus_snapshot() returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'services', coalesce((
      select jsonb_agg(jsonb_build_object(
               'name', s.name, 'kind', s.kind, 'environment', s.environment, 'status', s.status,
               'enabled', s.enabled,
               'uptime_24h', (select round(100.0 * sum(r.checks - r.down) / nullif(sum(r.checks), 0), 3)
                                from vigil.check_rollups r
                               where r.service_id = s.id and r.bucket >= date_trunc('hour', now() - interval '24 hours')),
               'last_response_ms', (select c.response_ms from vigil.checks c
                                     where c.service_id = s.id order by c.checked_at desc limit 1),
               'latency', case when p.service_id is null then null
                               else jsonb_build_object(
                                 'buckets', jsonb_build_array(p.le_25, p.le_50, p.le_100, p.le_250, p.le_500,
                                                              p.le_1000, p.le_2500, p.le_5000, p.le_10000),
                                 'count', p.count, 'sum_ms', p.sum_ms) end)
             order by s.name)
        from vigil.services s left join vigil.probe_latency p on p.service_id = s.id), '[]'),
    'incidents_open', coalesce((
      select jsonb_object_agg(severity, n)
        from (select severity::text, count(*) as n from vigil.incidents where status = 'open' group by 1) i), '{}'),
    'heals', coalesce((
      select jsonb_agg(jsonb_build_object('strategy', strategy, 'outcome', outcome, 'n', n) order by strategy, outcome)
        from (select strategy, outcome::text as outcome, count(*) as n from vigil.heal_actions
               where phase = 'result' group by 1, 2) h), '[]'),
    'alerts', coalesce((
      select jsonb_agg(jsonb_build_object('channel', channel, 'status', status, 'n', n) order by channel, status)
        from (select channel::text as channel, status::text as status, count(*) as n from vigil.alerts group by 1, 2) a), '[]'),
    'cycle', (select jsonb_build_object('finished_at', extract(epoch from c.finished_at), 'duration_ms', c.duration_ms,
                                        'services', c.services)
                from vigil.cycles c where c.shard is null order by c.finished_at desc limit 1));
$$;

select vigil.settle_privileges();
