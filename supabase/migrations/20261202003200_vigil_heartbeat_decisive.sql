-- A heartbeat that has been silent for its period plus its grace is down on that check: the grace
-- is its hysteresis already (decisive_status, as 20261202001100 lets a probe say). With the failure
-- threshold on top (3 checks), an outage of the database itself was never reported: Vigil runs in
-- it, so nothing is recorded while it is down, and when it is back the first cycle finds the gap in
-- vigil-health-check's cycles (one down check) and the next is healthy again. Found by the chaos
-- suite's database_down. As 20261123000400, plus decisive_status on the silence verdict.

create or replace function vigil.heartbeat_verdict(p_service_id uuid)
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
      -- Decisive: period + grace of silence is already the evidence that it lasted.
      jsonb_build_object('last_seen_at', last_seen, 'decisive_status', 'down');
    return;
  end if;
  return query select 'healthy'::vigil.check_status, null::text,
    jsonb_build_object('last_seen_at', last_seen,
                       'seconds_since', round(extract(epoch from now() - coalesce(last_seen, svc.created_at))::numeric, 1));
end
$$;

select vigil.settle_privileges();
