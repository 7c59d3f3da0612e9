-- Who may see and change what.
--   service_role (the edge functions): reads and writes everything; the audit only grows.
--   operators (authenticated users whose app_metadata.role is 'devops'): read everything; change
--     only the kill switch, dry run and acknowledgements.
--   other authenticated users and anon: nothing but vigil.public_status.

create function vigil.is_operator()
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(auth.jwt() -> 'app_metadata' ->> 'role', '') = 'devops'
$$;
comment on function vigil.is_operator() is 'True when the caller''s JWT says app_metadata.role = devops.';

grant usage on schema vigil to anon, authenticated, service_role;

-- Tables: no default access, then exactly what each role needs.
revoke all on all tables in schema vigil from anon, authenticated, service_role;
grant select, insert, update, delete on vigil.services, vigil.checks, vigil.incidents, vigil.alerts,
  vigil.settings, vigil.invocations to service_role;
grant select, insert on vigil.heal_actions to service_role;
grant select on vigil.services, vigil.checks, vigil.incidents, vigil.heal_actions, vigil.alerts,
  vigil.settings, vigil.invocations to authenticated;
grant update (kill_switch, dry_run) on vigil.settings to authenticated;
grant update (acknowledged_at) on vigil.incidents, vigil.alerts to authenticated;
grant usage on all sequences in schema vigil to service_role;

alter table vigil.settings enable row level security;
alter table vigil.services enable row level security;
alter table vigil.checks enable row level security;
alter table vigil.incidents enable row level security;
alter table vigil.heal_actions enable row level security;
alter table vigil.alerts enable row level security;
alter table vigil.invocations enable row level security;

create policy "Operators can read settings" on vigil.settings
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can switch the kill switch and dry run" on vigil.settings
  for update to authenticated using ((select vigil.is_operator())) with check ((select vigil.is_operator()));
create policy "Operators can read services" on vigil.services
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can read checks" on vigil.checks
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can read incidents" on vigil.incidents
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can acknowledge incidents" on vigil.incidents
  for update to authenticated using ((select vigil.is_operator())) with check ((select vigil.is_operator()));
create policy "Operators can read the heal audit" on vigil.heal_actions
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can read alerts" on vigil.alerts
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can acknowledge alerts" on vigil.alerts
  for update to authenticated using ((select vigil.is_operator())) with check ((select vigil.is_operator()));
create policy "Operators can read invocations" on vigil.invocations
  for select to authenticated using ((select vigil.is_operator()));

-- Who changed a setting or acknowledged something comes from the JWT, never from the request:
-- an operator cannot act in another's name. service_role (acting on an alert link, say) names the
-- human itself.
create function vigil.stamp_operator() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user <> 'authenticated' then
    return new;
  end if;
  if tg_table_name = 'settings' then
    new.updated_by := auth.uid();
  elsif new.acknowledged_at is distinct from old.acknowledged_at then
    new.acknowledged_by := case when new.acknowledged_at is null then null else auth.uid() end;
  end if;
  return new;
end
$$;

create trigger settings_stamp_operator before update on vigil.settings
  for each row execute function vigil.stamp_operator();
create trigger incidents_stamp_operator before update of acknowledged_at on vigil.incidents
  for each row execute function vigil.stamp_operator();
create trigger alerts_stamp_operator before update of acknowledged_at on vigil.alerts
  for each row execute function vigil.stamp_operator();

-- The public status page: service name, status and 24-hour uptime, nothing else. A view runs with
-- its owner's rights, so anon reads it without reading the tables beneath.
create view vigil.public_status as
select s.name,
       s.status::text as status,
       u.uptime_24h
  from vigil.services s
  left join lateral (
    select round(100.0 * count(*) filter (where c.status <> 'down') / nullif(count(*), 0), 3) as uptime_24h
      from vigil.checks c
     where c.service_id = s.id and c.checked_at > now() - interval '24 hours'
  ) u on true
 where s.enabled;
comment on view vigil.public_status is 'Public status: each enabled service''s name, status and 24 h uptime (percent of checks not down).';
grant select on vigil.public_status to anon, authenticated, service_role;

-- Functions: nothing is callable unless granted here.
revoke execute on all functions in schema vigil from public;
grant execute on function vigil.is_operator() to anon, authenticated, service_role;
grant execute on function vigil.invoke(text, jsonb) to service_role;
grant execute on function vigil.sweep_invocations(interval, interval) to service_role;

-- Realtime: the dashboard watches these tables. Adding a table twice is an error, hence the guard;
-- later migrations publish their tables through the same function.
create function vigil.publish_for_realtime(tables text[])
returns void
language plpgsql
set search_path = ''
as $$
declare
  t text;
begin
  if not exists (select from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    raise notice 'publication supabase_realtime is missing; the dashboard will not update live';
    return;
  end if;
  foreach t in array tables loop
    if not exists (
      select from pg_catalog.pg_publication_tables
       where pubname = 'supabase_realtime' and schemaname = 'vigil' and tablename = t
    ) then
      execute format('alter publication supabase_realtime add table vigil.%I', t);
    end if;
  end loop;
end
$$;
revoke execute on function vigil.publish_for_realtime(text[]) from public;

select vigil.publish_for_realtime(array['services', 'checks', 'incidents', 'heal_actions', 'alerts', 'settings']);
