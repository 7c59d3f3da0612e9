-- VACUUM of a table the agent does not own. VACUUM cannot run inside a function (Postgres refuses
-- it in any transaction block), and before Postgres 17 only the owner may vacuum a table. So the
-- agent asks vigil.request_vacuum, which checks the table in the catalog and hands a one-off
-- `VACUUM (ANALYZE) schema.table`, composed here from those names, to pg_cron, whose job runs it as
-- this function's owner at the next tick (within 5 s on pg_cron 1.5+, the next minute on 1.4).
-- vigil.vacuum_request_status reads how the run went and removes the job once that run has ended
-- (removing it earlier would cancel the VACUUM; pg_cron never starts a job again while it runs); a
-- sweep (every 30 s on pg_cron 1.5+) does the same for requests nobody asks after, and gives up on
-- those that did not finish within an hour.

create table vigil.vacuum_requests (
  id bigint generated always as identity primary key,
  schema_name text not null,
  table_name text not null,
  job_name text not null,
  -- pg_cron's job id: its runs are found by it after the job itself is gone.
  job_id bigint not null,
  requested_by text not null default session_user,
  requested_at timestamptz not null default now(),
  finished_at timestamptz,
  outcome text,
  detail text,
  constraint vacuum_request_outcome check (outcome in ('succeeded', 'failed', 'abandoned')),
  constraint vacuum_request_finished check ((outcome is null) = (finished_at is null))
);
create unique index vacuum_requests_pending on vigil.vacuum_requests (schema_name, table_name) where finished_at is null;
comment on table vigil.vacuum_requests is
  'VACUUMs the agent asked pg_cron to run on tables it does not own, and how each went.';
grant select on vigil.vacuum_requests to service_role, authenticated;
alter table vigil.vacuum_requests enable row level security;
create policy "Operators can read vacuum requests" on vigil.vacuum_requests
  for select to authenticated using ((select vigil.is_operator()));

create function vigil.request_vacuum(p_schema text, p_table text)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  rel record;
  pending bigint;
  job text;
  job_id bigint;
begin
  if to_regclass('cron.job') is null then
    raise exception 'request_vacuum: pg_cron is not installed' using errcode = '55000';
  end if;
  if p_schema is null or p_table is null then
    raise exception 'request_vacuum: schema and table are required' using errcode = '22004';
  end if;
  -- Vigil's own tables are vacuumed like any other; the catalogs and pg_cron's are not.
  if p_schema ~ '^pg_' or p_schema in ('information_schema', 'cron') then
    raise exception 'request_vacuum: schema % is not vacuumed by Vigil', p_schema using errcode = '42501';
  end if;
  select c.oid, c.relkind, c.relpersistence, c.relowner, c.relisshared into rel
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where n.nspname = p_schema and c.relname = p_table;
  if rel.oid is null then
    raise exception 'request_vacuum: table %.% does not exist', p_schema, p_table using errcode = '42P01';
  end if;
  if rel.relkind not in ('r', 'm') or rel.relpersistence = 't' then
    raise exception 'request_vacuum: %.% is not a permanent table', p_schema, p_table using errcode = '42809';
  end if;
  -- pg_cron runs the job as this function's owner: a table it may not vacuum would only be
  -- skipped with a warning, which pg_cron reports as success.
  if not (coalesce((select r.rolsuper from pg_catalog.pg_roles r where r.rolname = current_user), false)
          or pg_catalog.pg_has_role(current_user, rel.relowner, 'USAGE')
          or (not rel.relisshared and pg_catalog.pg_has_role(current_user,
                (select d.datdba from pg_catalog.pg_database d where d.datname = current_database()), 'USAGE'))
          or (current_setting('server_version_num')::int >= 170000
              and pg_catalog.has_table_privilege(rel.oid, 'MAINTAIN'))) then
    raise exception 'request_vacuum: %.% belongs to %, which % may not vacuum either',
      p_schema, p_table, pg_catalog.pg_get_userbyid(rel.relowner), current_user using errcode = '42501';
  end if;
  -- One pending request per table: asking again returns it.
  select r.id into pending from vigil.vacuum_requests r
   where r.schema_name = p_schema and r.table_name = p_table and r.finished_at is null;
  if pending is not null then
    return pending;
  end if;
  job := 'vigil-vacuum-' || rel.oid;
  -- Every 5 s where pg_cron has second schedules (1.5+, as vigil.every_30_seconds() decides): the
  -- job is removed as soon as its run is seen ended, by the heal that waits for it or the sweep.
  job_id := cron.schedule(job,
                        case when vigil.every_30_seconds() = '30 seconds' then '5 seconds' else '* * * * *' end,
                        format('vacuum (analyze) %I.%I', p_schema, p_table));
  insert into vigil.vacuum_requests (schema_name, table_name, job_name, job_id) values (p_schema, p_table, job, job_id)
  returning id into pending;
  return pending;
end
$$;
comment on function vigil.request_vacuum(text, text) is
  'Asks pg_cron to VACUUM (ANALYZE) one table, found in the catalog, once; returns the request''s id.';

-- How a request went: 'queued' or 'running' until pg_cron has a finished run of its job, then that
-- run's outcome; the job is removed at once so it runs only once.
create function vigil.vacuum_request_status(p_id bigint)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  r vigil.vacuum_requests;
  run record;
begin
  select * into r from vigil.vacuum_requests where id = p_id for update;
  if not found then
    raise exception 'vacuum request % does not exist', p_id using errcode = 'no_data_found';
  end if;
  if r.finished_at is null then
    select d.status, d.return_message, d.start_time into run
      from cron.job_run_details d
     where d.jobid = r.job_id
     order by d.start_time limit 1;
    if run.status in ('succeeded', 'failed') or r.requested_at < now() - interval '1 hour' then
      perform cron.unschedule(j.jobid) from cron.job j where j.jobid = r.job_id;
      update vigil.vacuum_requests
         set finished_at = now(),
             outcome = case when run.status in ('succeeded', 'failed') then run.status else 'abandoned' end,
             detail = left(coalesce(run.return_message,
                                    case when run.status is null then 'pg_cron did not run it within an hour'
                                         else format('still %s after an hour', run.status) end), 500)
       where id = p_id
      returning * into r;
    else
      return jsonb_build_object('id', r.id, 'state', case when run.status is null then 'queued' else 'running' end);
    end if;
  end if;
  return jsonb_build_object('id', r.id, 'state', r.outcome, 'detail', r.detail, 'finished_at', r.finished_at);
end
$$;
comment on function vigil.vacuum_request_status(bigint) is
  'queued, running, or how the VACUUM went (succeeded, failed, abandoned); removes the pg_cron job once it ran.';

create function vigil.sweep_vacuum_requests()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  n integer := 0;
  r record;
begin
  for r in select id from vigil.vacuum_requests where finished_at is null loop
    -- One request that cannot be read must not keep the others pending.
    begin
      if (vigil.vacuum_request_status(r.id) ->> 'state') not in ('queued', 'running') then
        n := n + 1;
      end if;
    exception when others then
      raise warning 'vigil.sweep_vacuum_requests: request %: %', r.id, sqlerrm;
    end;
  end loop;
  return n;
end
$$;

revoke execute on function vigil.request_vacuum(text, text), vigil.vacuum_request_status(bigint),
  vigil.sweep_vacuum_requests() from public;
grant execute on function vigil.request_vacuum(text, text), vigil.vacuum_request_status(bigint) to service_role;

select cron.schedule('vigil-vacuum-sweep', vigil.every_30_seconds(), 'select vigil.sweep_vacuum_requests()');

select vigil.settle_privileges();
