-- Every change to the controls people use — the kill switch, dry run, a service's healing switch
-- and enabled flag — is kept with who made it, instead of only the last updated_by. Written by
-- triggers, so no path (dashboard, SQL, an alert link) can change a control unrecorded; append-only
-- like the heal audit. The dashboard shows it live.

create table vigil.control_changes (
  id bigint generated always as identity primary key,
  changed_at timestamptz not null default now(),
  /** settings:<environment> or service:<name>. */
  target text not null,
  field text not null,
  old_value jsonb,
  new_value jsonb,
  /** The operator's user id (auth.uid()), when a person signed in made it. */
  actor uuid,
  /** In words: the operator's email, or the database role for the machinery and SQL. */
  actor_name text not null,
  constraint control_change_field check (field ~ '^[a-z_]{1,63}$')
);
create index control_changes_time on vigil.control_changes (changed_at desc);
comment on table vigil.control_changes is
  'Every change of a control (kill switch, dry run, a service''s healing and enabled switches): who, what, when. Append-only.';

create trigger control_changes_append_only before update or delete on vigil.control_changes
  for each row execute function vigil.reject_audit_change();
create trigger control_changes_no_truncate before truncate on vigil.control_changes
  for each statement execute function vigil.reject_audit_change();

create function vigil.record_control_change() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  fields text[] := case tg_table_name
    when 'settings' then array['kill_switch', 'dry_run', 'slow_query_ms']
    else array['heal_enabled', 'enabled'] end;
  field text;
  old_json jsonb := to_jsonb(old);
  new_json jsonb := to_jsonb(new);
  claims jsonb := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
begin
  foreach field in array fields loop
    if old_json -> field is distinct from new_json -> field then
      insert into vigil.control_changes (target, field, old_value, new_value, actor, actor_name)
      values (case tg_table_name when 'settings' then 'settings:' || (new_json ->> 'environment')
                                 else 'service:' || (new_json ->> 'name') end,
              field, old_json -> field, new_json -> field,
              nullif(claims ->> 'sub', '')::uuid,
              coalesce(nullif(claims ->> 'email', ''), session_user::text));
    end if;
  end loop;
  return null;
end
$$;
revoke execute on function vigil.record_control_change() from public;

create trigger settings_record_control_change after update on vigil.settings
  for each row execute function vigil.record_control_change();
create trigger services_record_control_change after update of heal_enabled, enabled on vigil.services
  for each row execute function vigil.record_control_change();

grant select on vigil.control_changes to service_role, authenticated;
alter table vigil.control_changes enable row level security;
create policy "Operators can read control changes" on vigil.control_changes
  for select to authenticated using ((select vigil.is_operator()));
alter table vigil.control_changes enable always trigger control_changes_append_only;
alter table vigil.control_changes enable always trigger control_changes_no_truncate;

select vigil.publish_for_realtime(array['control_changes']);
select vigil.settle_privileges();
