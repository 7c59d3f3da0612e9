-- disable_service joins the known strategies: a service whose memory climbs again soon after a
-- restart that worked is taken out of service through its disable action, and humans are told.
create or replace function vigil.known_strategies()
returns text[]
language sql
immutable
set search_path = ''
as $$
  select array['add_missing_index', 'analyze_tables', 'cancel_runaway_query', 'disable_service',
               'kill_idle_connections', 'purge_cdn', 'purge_own_data', 'refresh_auth', 'renew_certificate',
               'restart_service', 'retry_deploy', 'rollback_deploy', 'terminate_blocker', 'vacuum_analyze']
$$;
