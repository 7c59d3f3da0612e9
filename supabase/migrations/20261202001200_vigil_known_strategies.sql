-- A heal policy names a strategy Vigil has, or it is refused at insert, naming the strategy and
-- the ones there are: a misspelled policy was silently ignored while the strategy kept running by
-- its defaults. The list mirrors supabase/functions/_shared/heal/registry.ts (a Deno test holds them
-- together); a new strategy adds its name here in its own migration.
create function vigil.known_strategies()
returns text[]
language sql
immutable
set search_path = ''
as $$
  select array['add_missing_index', 'analyze_tables', 'cancel_runaway_query', 'disable_service',
               'kill_idle_connections', 'purge_cdn', 'purge_own_data', 'refresh_auth', 'renew_certificate',
               'restart_service', 'retry_deploy', 'rollback_deploy', 'terminate_blocker', 'vacuum_analyze']
$$;
comment on function vigil.known_strategies() is 'The heal strategies Vigil has (as in heal/registry.ts): what a heal policy may name.';

create function vigil.validate_heal_policy() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if not new.strategy = any (vigil.known_strategies()) then
    raise exception 'heal_policies.strategy: unknown strategy "%" (known: %)',
      new.strategy, array_to_string(vigil.known_strategies(), ', ')
      using errcode = 'check_violation';
  end if;
  return new;
end
$$;
create trigger heal_policies_validate before insert or update of strategy on vigil.heal_policies
  for each row execute function vigil.validate_heal_policy();

revoke execute on function vigil.validate_heal_policy(), vigil.known_strategies() from public;
grant execute on function vigil.known_strategies() to service_role, authenticated;
select vigil.settle_privileges();
