-- The escalation ladder's limit lives in one place, which SQL (the retry job) and the auto-heal
-- function both read: a heal is tried at most max_attempts times per incident; attempt n steps the
-- ladder to level n (1 silent, 2 a warning, 3 pages on-call), and a failure on the last one pages
-- the senior contact (senior_at). A refusal, which uses no attempt, is asked again every ten minutes
-- while nobody has acknowledged the incident (a human owns it then). A slow_queries incident is
-- asked again only when a statement not seen before turns slow (its trigger does that): its advice
-- is kept as recommendations, and re-planning it would only repeat them in the audit.
create function vigil.heal_ladder()
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select jsonb_build_object('max_attempts', 3, 'senior_at', 4)
$$;
comment on function vigil.heal_ladder() is
  'The escalation ladder''s limits: max_attempts heals per incident; the level at which the senior is paged.';
revoke execute on function vigil.heal_ladder() from public;
grant execute on function vigil.heal_ladder() to service_role, authenticated;

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
       and i.last_heal_at < now() - p_after
       -- Refused (no attempt used): every five waits, and only while no human has taken it on.
       and (i.heal_attempts > 0 or (i.acknowledged_at is null and i.last_heal_at < now() - p_after * 5))
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

select vigil.settle_privileges();
