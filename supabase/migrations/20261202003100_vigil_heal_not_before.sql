-- A strategy that will act once its own rules allow (no session idle long enough yet, no statement
-- past max_seconds yet) says so instead of handing the incident to a person: the engine records
-- when to ask again, and the vigil-heal-retry job (every minute) asks then. Found by the chaos
-- suite: a pool exhausted by sessions idle 28 s paged on-call when kill_idle_connections would
-- have ended them two seconds later.

alter table vigil.incidents add column heal_not_before timestamptz;
comment on column vigil.incidents.heal_not_before is
  'A strategy will act from this moment (it said not yet): vigil.retry_heals asks auto-heal again then.';

-- As in 20261202001600, plus incidents whose heal_not_before has come (and only once for it).
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
       and i.kind <> 'slow_queries'
       and (i.heal_claimed_until is null or i.heal_claimed_until < now())
       and (
         -- A strategy said when it may act.
         i.heal_not_before <= now()
         or (i.last_heal_at < now() - p_after
             -- Refused (no attempt used): every five waits, and only while no human has taken it on.
             and (i.heal_attempts > 0 or (i.acknowledged_at is null and i.last_heal_at < now() - p_after * 5))))
       -- A heal waiting for a human is not retried behind their back.
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

select vigil.settle_privileges();
