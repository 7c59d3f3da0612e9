-- A heal that was refused (a protected blocker, nothing it may touch) used no attempt, and a human
-- was paged at once. The situation may still change (the protected session ends, an ordinary one
-- takes its place): such incidents are asked again like any other, every two minutes, until the
-- ladder's end.
create or replace function vigil.retry_heals(p_after interval default interval '2 minutes')
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  inc record;
  asked integer := 0;
begin
  for inc in
    select i.id from vigil.incidents i
     where i.status = 'open' and i.heal_attempts <= 2 and i.last_heal_at is not null and i.escalation_level < 4
       and (i.heal_claimed_until is null or i.heal_claimed_until < now())
       and i.last_heal_at < now() - p_after
       -- A heal waiting for a human is not retried behind their back.
       and not exists (select from vigil.heal_approvals a
                        where a.incident_id = i.id and a.decision is null and a.expires_at > now())
  loop
    perform vigil.invoke('auto-heal', jsonb_build_object('incident_id', inc.id, 'reason', 'retry'));
    asked := asked + 1;
  end loop;
  return asked;
end
$$;
