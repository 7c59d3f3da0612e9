-- Detection that matches the evidence. A check whose measurements carry decisive_status (the
-- probe's findings already prove they lasted: a waiter blocked past its threshold, a session idle in
-- a transaction past its own, connections high on two checks running) moves the service to that
-- status on this check; everything else keeps the failure threshold's hysteresis.
create or replace function vigil.apply_check() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  svc vigil.services;
  target vigil.service_status;
  decisive text := case when new.status <> 'healthy' then new.measurements ->> 'decisive_status' end;
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
  if svc.down_streak >= svc.failure_threshold or (decisive = 'down' and new.status = 'down') then
    target := 'down';
  elsif svc.failure_streak >= svc.failure_threshold
        or (decisive in ('degraded', 'down') and svc.status not in ('degraded', 'down')) then
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
                 when decisive is not null and svc.failure_streak < svc.failure_threshold
                 then format('the evidence proves it lasted (%s): %s', decisive, coalesce(new.error, new.status::text))
                 else format('%s consecutive failed checks (%s down): %s',
                             svc.failure_streak, svc.down_streak, coalesce(new.error, new.status::text))
            end);
    perform vigil.sync_service_incident(svc, svc.status, target, new);
  end if;
  return null;
end
$$;
