-- Proactive maintenance (issue 11): every run of a task is a row, begun and ended through two
-- functions so that a task never runs twice at once (one running row per task, by a unique
-- index), a run whose worker died is noticed when its lease ends, and a failed run is retried
-- once. The `maintenance` edge function does the work; pg_cron asks for it daily, weekly and
-- monthly. Operators read the runs (the dashboard shows them live).

create table vigil.maintenance_runs (
  id bigint generated always as identity primary key,
  task text not null,
  cadence text not null,
  attempt integer not null default 1,
  status text not null default 'running',
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  /** A running row whose lease has passed belongs to a worker that died: it is ended as failed. */
  lease_until timestamptz not null,
  worker text not null,
  /** One line for people: what was found and done. */
  summary text,
  findings jsonb not null default '[]',
  actions jsonb not null default '[]',
  error text,
  constraint maintenance_task_format check (task ~ '^[a-z][a-z0-9_]{0,62}$'),
  constraint maintenance_cadence check (cadence in ('daily', 'weekly', 'monthly', 'manual')),
  constraint maintenance_attempt check (attempt between 1 and 2),
  constraint maintenance_status check (status in ('running', 'succeeded', 'failed', 'not_applicable')),
  constraint maintenance_finished check ((status = 'running') = (finished_at is null)),
  constraint maintenance_findings_array check (jsonb_typeof(findings) = 'array'),
  constraint maintenance_actions_array check (jsonb_typeof(actions) = 'array'),
  constraint maintenance_failed_has_error check (status <> 'failed' or error is not null)
);
create unique index maintenance_one_running on vigil.maintenance_runs (task) where status = 'running';
create index maintenance_runs_time on vigil.maintenance_runs (started_at desc);
create index maintenance_runs_task on vigil.maintenance_runs (task, started_at desc);
comment on table vigil.maintenance_runs is
  'Every run of a maintenance task: when, how it ended, what it found and did. One running row per task at most.';

/**
 * Begins a run of p_task for p_worker and returns its id, or null when the task is running
 * already. A running row whose lease has passed is first ended as failed (its worker died).
 */
create function vigil.begin_maintenance(
  p_task text,
  p_cadence text,
  p_worker text,
  p_attempt integer default 1,
  p_lease interval default interval '30 minutes'
)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  run_id bigint;
begin
  update vigil.maintenance_runs
     set status = 'failed', finished_at = now(),
         error = 'abandoned: its worker stopped answering before the lease ended at ' || lease_until
   where task = p_task and status = 'running' and lease_until < now();
  insert into vigil.maintenance_runs (task, cadence, attempt, worker, lease_until)
  values (p_task, p_cadence, p_attempt, p_worker, now() + p_lease)
  on conflict (task) where status = 'running' do nothing
  returning id into run_id;
  return run_id;
end
$$;

/** Ends a run its worker still holds; false when it does not (the lease passed and it was ended). */
create function vigil.end_maintenance(
  p_run_id bigint,
  p_worker text,
  p_status text,
  p_summary text,
  p_findings jsonb default '[]',
  p_actions jsonb default '[]',
  p_error text default null
)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_status not in ('succeeded', 'failed', 'not_applicable') then
    raise exception 'end_maintenance: status must be succeeded, failed or not_applicable, got %', p_status
      using errcode = '22023';
  end if;
  update vigil.maintenance_runs
     set status = p_status, finished_at = now(), summary = left(p_summary, 2000),
         findings = coalesce(p_findings, '[]'), actions = coalesce(p_actions, '[]'),
         error = left(p_error, 2000)
   where id = p_run_id and worker = p_worker and status = 'running';
  return found;
end
$$;

revoke execute on function vigil.begin_maintenance(text, text, text, integer, interval),
  vigil.end_maintenance(bigint, text, text, text, jsonb, jsonb, text) from public;
grant execute on function vigil.begin_maintenance(text, text, text, integer, interval),
  vigil.end_maintenance(bigint, text, text, text, jsonb, jsonb, text) to service_role;

grant select on vigil.maintenance_runs to service_role, authenticated;
alter table vigil.maintenance_runs enable row level security;
create policy "Operators can read maintenance runs" on vigil.maintenance_runs
  for select to authenticated using ((select vigil.is_operator()));

select vigil.publish_for_realtime(array['maintenance_runs']);

-- ─── Data rotation ──────────────────────────────────────────────────────────────────────────
-- Vigil's own data past its keeping time: raw checks, metrics and cycles after 30 days (the hourly
-- rollups keep uptime for a year), delivered alerts and old silences after 90. It stays in SQL,
-- run by pg_cron, so it goes on when the functions do not; its runs are recorded like every task's.
create function vigil.rotate_own_data()
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  run_id bigint := vigil.begin_maintenance('data_rotation', 'daily', 'pg_cron');
  kept jsonb;
  alerts jsonb;
begin
  if run_id is null then
    return jsonb_build_object('status', 'skipped', 'reason', 'already running');
  end if;
  begin
    kept := vigil.apply_retention();
    alerts := vigil.purge_alerts();
    perform vigil.end_maintenance(run_id, 'pg_cron', 'succeeded',
      format('removed %s checks, %s metrics and %s cycles past 30 days, %s hourly rollups past a year, %s alerts and %s silences past 90 days',
             kept ->> 'checks', kept ->> 'metrics', kept ->> 'cycles', kept ->> 'rollups',
             alerts ->> 'alerts', alerts ->> 'silences'),
      '[]', jsonb_build_array(kept || alerts));
    return jsonb_build_object('status', 'succeeded') || kept || alerts;
  exception when others then
    perform vigil.end_maintenance(run_id, 'pg_cron', 'failed', 'data_rotation failed: ' || sqlerrm,
                                  '[]', '[]', sqlstate || ': ' || sqlerrm);
    return jsonb_build_object('status', 'failed', 'error', sqlerrm);
  end;
end
$$;
comment on function vigil.rotate_own_data() is
  'Daily: Vigil''s own raw data past 30 days and delivered alerts past 90 removed (vigil.apply_retention, vigil.purge_alerts), recorded in vigil.maintenance_runs.';
revoke execute on function vigil.rotate_own_data() from public;

-- ─── Schedules (UTC) ────────────────────────────────────────────────────────────────────────
-- Rotation replaces the two retention jobs (same times of day), now with its record.
select cron.schedule('vigil-retention', '17 3 * * *', 'select vigil.rotate_own_data()');
select cron.unschedule('vigil-alert-retention');
select cron.schedule('vigil-maintenance-daily', '23 3 * * *',
  $job$select vigil.invoke('maintenance', '{"cadence": "daily", "trigger": "cron"}')$job$);
select cron.schedule('vigil-maintenance-weekly', '43 3 * * 0',
  $job$select vigil.invoke('maintenance', '{"cadence": "weekly", "trigger": "cron"}')$job$);
select cron.schedule('vigil-maintenance-monthly', '53 3 1 * *',
  $job$select vigil.invoke('maintenance', '{"cadence": "monthly", "trigger": "cron"}')$job$);

select vigil.settle_privileges();
