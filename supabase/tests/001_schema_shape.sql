-- The shape of schema vigil: its tables, views, functions, policies and triggers, and that
-- every table has row level security on. The RLS check enumerates pg_class, so a table added
-- later without RLS fails here even if nobody remembers to list it.
begin;
set search_path = extensions, public;
select plan(41);

select has_schema('vigil');

select tables_are(
  'vigil',
  array['settings', 'services', 'checks', 'incidents', 'heal_actions', 'alerts', 'invocations',
        'probe_config_schemas', 'status_transitions', 'metrics', 'check_rollups', 'cycles', 'heartbeat_tokens'],
  'schema vigil has exactly the thirteen known tables (a new one needs its RLS and grants tested)'
);
select views_are('vigil', array['public_status', 'service_uptime'],
                 'schema vigil has exactly two views, public_status and service_uptime');
select functions_are(
  'vigil',
  array['touch_updated_at', 'reject_audit_change', 'is_operator', 'stamp_operator', 'invoke', 'sweep_invocations',
        'json_schema_errors', 'validate_service_config', 'sync_service_incident', 'apply_check', 'rollup_checks',
        'uptime', 'record_cycle', 'ensure_heartbeat_token', 'record_heartbeat', 'heartbeat_verdict',
        'watch_cycles', 'apply_retention'],
  'schema vigil has exactly the known functions'
);

select isnt_empty(
  $$select 1 from pg_class where relnamespace = 'vigil'::regnamespace and relkind in ('r', 'p')$$,
  'the RLS enumeration below finds tables in schema vigil'
);
select is_empty(
  $$select relname from pg_class
     where relnamespace = 'vigil'::regnamespace and relkind in ('r', 'p') and not relrowsecurity$$,
  'row level security is enabled on every table in schema vigil'
);

select policies_are('vigil', 'settings',
  array['Operators can read settings', 'Operators can switch the kill switch and dry run']);
select policies_are('vigil', 'services', array['Operators can read services']);
select policies_are('vigil', 'checks', array['Operators can read checks']);
select policies_are('vigil', 'incidents',
  array['Operators can read incidents', 'Operators can acknowledge incidents']);
select policies_are('vigil', 'heal_actions', array['Operators can read the heal audit']);
select policies_are('vigil', 'alerts', array['Operators can read alerts', 'Operators can acknowledge alerts']);
select policies_are('vigil', 'invocations', array['Operators can read invocations']);
select policies_are('vigil', 'probe_config_schemas', array['Operators can read probe config schemas']);
select policies_are('vigil', 'status_transitions', array['Operators can read status transitions']);
select policies_are('vigil', 'metrics', array['Operators can read metrics']);
select policies_are('vigil', 'check_rollups', array['Operators can read check rollups']);
select policies_are('vigil', 'cycles', array['Operators can read cycles']);
select policies_are('vigil', 'heartbeat_tokens', array['Operators can read heartbeat tokens']);

-- Every policy is for authenticated only, and only SELECT or UPDATE: writes other than those
-- updates belong to service_role, which bypasses RLS.
select is_empty(
  $$select tablename, policyname, cmd, roles from pg_policies
     where schemaname = 'vigil' and (roles <> array['authenticated']::name[] or cmd not in ('SELECT', 'UPDATE'))$$,
  'every vigil policy applies to authenticated only and is a SELECT or UPDATE policy'
);
select set_eq(
  $$select tablename::text from pg_policies where schemaname = 'vigil' and cmd = 'UPDATE'$$,
  array['settings', 'incidents', 'alerts'],
  'only settings, incidents and alerts have an UPDATE policy'
);
-- Every SELECT policy is the operator test, nothing looser.
select is_empty(
  $$select tablename, policyname from pg_policies
     where schemaname = 'vigil' and cmd = 'SELECT' and qual <> '( SELECT vigil.is_operator() AS is_operator)'$$,
  'every vigil SELECT policy reads (select vigil.is_operator())'
);

select triggers_are('vigil', 'settings', array['settings_touch', 'settings_stamp_operator']);
select triggers_are('vigil', 'services', array['services_touch', 'services_validate_config', 'services_heartbeat_token']);
select triggers_are('vigil', 'checks', array['checks_apply', 'checks_rollup']);
select triggers_are('vigil', 'incidents', array['incidents_touch', 'incidents_stamp_operator']);
select triggers_are('vigil', 'alerts', array['alerts_stamp_operator']);
select triggers_are('vigil', 'heal_actions', array['heal_actions_append_only', 'heal_actions_no_truncate']);
select trigger_is('vigil', 'services', 'services_validate_config', 'vigil', 'validate_service_config');
select trigger_is('vigil', 'checks', 'checks_apply', 'vigil', 'apply_check');
select trigger_is('vigil', 'checks', 'checks_rollup', 'vigil', 'rollup_checks');
-- The rollup counts a whole statement's rows at once (a transition table); apply_check needs each row.
select results_eq(
  $$select tgname::text collate "default", (tgtype & 1)::int, tgnewtable is not null
      from pg_trigger where tgrelid = 'vigil.checks'::regclass and not tgisinternal order by tgname$$,
  $$values ('checks_apply'::text, 1, false), ('checks_rollup'::text, 0, true)$$,
  'checks_apply fires per row; checks_rollup fires per statement with a transition table'
);

-- A function without a fixed search_path can be hijacked through objects the caller creates.
select is_empty(
  $$select proname from pg_proc
     where pronamespace = 'vigil'::regnamespace
       and not coalesce('search_path=""' = any(proconfig), false)$$,
  'every function in schema vigil pins search_path to empty'
);

select has_index('vigil', 'incidents', 'incidents_one_open_per_kind', array['service_id', 'kind']);

-- Hysteresis is data with defaults, not constants in code.
select col_default_is('vigil', 'services', 'failure_threshold', '3', 'services.failure_threshold defaults to 3');
select col_default_is('vigil', 'services', 'success_threshold', '2', 'services.success_threshold defaults to 2');
select results_eq(
  $$select count(*)::int from information_schema.columns
     where table_schema = 'vigil' and table_name = 'services' and is_nullable = 'NO'
       and column_name in ('failure_threshold', 'success_threshold', 'failure_streak', 'down_streak', 'success_streak')$$,
  $$values (5)$$,
  'the thresholds and the three streak columns of vigil.services are NOT NULL'
);

-- One kind list: every service kind has a config schema, and nothing else does.
select set_eq(
  $$select kind::text from vigil.probe_config_schemas$$,
  $$select unnest(enum_range(null::vigil.service_kind))::text$$,
  'vigil.probe_config_schemas holds exactly one schema per vigil.service_kind'
);
select enum_has_labels('vigil', 'metric_name', array[
  'active_connections', 'query_duration_p95', 'deadlock_count', 'cache_hit_ratio',
  'http_request_duration', 'error_rate', 'cpu_usage_percent', 'memory_usage_percent',
  'disk_usage_percent', 'throughput', 'connection_usage_percent', 'blocked_sessions',
  'longest_wait_seconds', 'database_size_bytes', 'dead_tuple_ratio', 'xid_age',
  'replication_lag_seconds', 'tls_days_left', 'login_success_rate',
  'network_receive_bytes_per_second', 'network_transmit_bytes_per_second'
], 'vigil.metric_name lists exactly the metric names of shared/kinds.ts, in order');

-- service_uptime runs as the caller, so it shows an operator what RLS shows them; public_status runs
-- as its owner, which is how anon reads it without reading the tables beneath.
select ok(
  (select coalesce('security_invoker=true' = any(reloptions), false) from pg_class where oid = 'vigil.service_uptime'::regclass),
  'vigil.service_uptime is a security_invoker view'
);
select ok(
  (select not coalesce('security_invoker=true' = any(reloptions), false) from pg_class where oid = 'vigil.public_status'::regclass),
  'vigil.public_status is not security_invoker (anon reads it through its owner)'
);

select * from finish();
rollback;
