-- The shape of schema vigil: its tables, views, functions, policies and triggers, and that
-- every table has row level security on. The RLS check enumerates pg_class, so a table added
-- later without RLS fails here even if nobody remembers to list it.
begin;
set search_path = extensions, public;
select plan(79);

select has_schema('vigil');

select tables_are(
  'vigil',
  array['settings', 'services', 'checks', 'incidents', 'heal_actions', 'alerts', 'invocations',
        'probe_config_schemas', 'status_transitions', 'metrics', 'check_rollups', 'cycles', 'heartbeat_tokens',
        'heal_policies', 'heal_approvals', 'contacts', 'incident_log', 'alert_routes', 'silences', 'alert_attempts', 'audit_anchors',
        'built_indexes', 'audit_chain', 'vacuum_requests', 'recommendations', 'control_changes',
        'maintenance_runs', 'statement_snapshots', 'report_settings', 'reports', 'metric_series',
        'statement_samples', 'log_patterns', 'deployments', 'probe_latency', 'cycle_runs', 'cycle_shards', 'config_applies'],
  'schema vigil has exactly the thirty-eight known tables (a new one needs its RLS and grants tested)'
);
select views_are('vigil', array['public_status', 'service_uptime', 'public_incidents'],
                 'schema vigil has exactly three views, public_status, service_uptime and public_incidents');
select functions_are(
  'vigil',
  array['touch_updated_at', 'reject_audit_change', 'is_operator', 'stamp_operator', 'invoke', 'sweep_invocations',
        'json_schema_errors', 'validate_service_config', 'sync_service_incident', 'apply_check', 'rollup_checks',
        'uptime', 'record_cycle', 'ensure_heartbeat_token', 'record_heartbeat', 'heartbeat_verdict',
        'watch_cycles', 'apply_retention', 'heal_guard', 'claim_incident', 'release_incident', 'heal_action_hash',
        'chain_heal_action', 'verify_heal_audit', 'decide_heal_approval', 'escalate', 'request_heal', 'retry_heals',
        'publish_for_realtime',
        -- alert delivery
        'alert_priority', 'contact_errors', 'validate_contact', 'quiet_until', 'direct_dependencies', 'dependencies',
        'validate_depends_on', 'name_acknowledger', 'active_silence', 'stamp_silence', 'alert_hold_until',
        'alert_suppression', 'queue_alert', 'queue_followup', 'alert_on_incident_change', 'acknowledge_incident',
        'detect_flapping', 'claim_alerts', 'alert_fallback', 'record_alert_attempt', 'wake_notify', 'sweep_alerts',
        'rename_dependency', 'purge_alerts', 'release_alerts', 'every_30_seconds', 'tell',
        'validate_alert_route', 'validate_alert_settings', 'check_fold', 'repage',
        -- hardening
        'consume_approval',
        -- the agent role
        'settle_privileges', 'unindexable_schema', 'build_index', 'drop_built_index',
        'request_vacuum', 'vacuum_request_status', 'sweep_vacuum_requests',
        -- healing, round 2
        'known_strategies', 'validate_heal_policy', 'analyze_table', 'track_slow_queries', 'recommend',
        'resolve_recommendations', 'heal_ladder', 'record_control_change', 'health_score',
        'incident_timeline',
        -- maintenance
        'begin_maintenance', 'end_maintenance', 'rotate_own_data', 'snapshot_statements',
        'security_lints', 'apply_security_lints', 'report_kpis',
        'security_lint_key', 'security_lint_title',
        -- the reports
        'validate_report_settings', 'due_reports', 'claim_report', 'report_facts', 'schedules',
        'finish_report', 'fail_report', 'report_card',
        -- the weekly analyses
        'error_pattern', 'error_trends', 'statement_periods', 'sync_recommendations',
        -- the dashboard
        'dashboard_snapshot', 'performance_trends',
        -- the analysis
        'record_analysis', 'sample_statements', 'check_log_pattern', 'match_log_lines',
        'track_deployments', 'deployment_window', 'summarize_deployments',
        -- the Prometheus export
        'prometheus_snapshot',
        -- config as code
        'schema_version', 'config_columns', 'config_row', 'config_state', 'apply_config',
        -- sharded cycles
        'start_cycle_run', 'begin_shard_attempt', 'record_shard_failure', 'finish_cycle_run'],
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
  array['Operators can read settings', 'Operators can switch the kill switch and dry run', 'Vigil''s agent']);
select policies_are('vigil', 'services', array['Operators can read services', 'Operators can switch healing per service', 'Vigil''s agent']);
select policies_are('vigil', 'checks', array['Operators can read checks', 'Vigil''s agent']);
select policies_are('vigil', 'incidents',
  array['Operators can read incidents', 'Operators can acknowledge incidents', 'Vigil''s agent']);
select policies_are('vigil', 'heal_actions', array['Operators can read the heal audit', 'Vigil''s agent']);
select policies_are('vigil', 'alerts', array['Operators can read alerts', 'Operators can acknowledge alerts', 'Vigil''s agent']);
select policies_are('vigil', 'invocations', array['Operators can read invocations', 'Vigil''s agent']);
select policies_are('vigil', 'probe_config_schemas', array['Operators can read probe config schemas', 'Vigil''s agent']);
select policies_are('vigil', 'status_transitions', array['Operators can read status transitions', 'Vigil''s agent']);
select policies_are('vigil', 'metrics', array['Operators can read metrics', 'Vigil''s agent']);
select policies_are('vigil', 'check_rollups', array['Operators can read check rollups', 'Vigil''s agent']);
select policies_are('vigil', 'cycles', array['Operators can read cycles', 'Vigil''s agent']);
select policies_are('vigil', 'heartbeat_tokens', array['Operators can read heartbeat tokens', 'Vigil''s agent']);
select policies_are('vigil', 'heal_policies', array['Operators can read heal policies', 'Vigil''s agent']);
select policies_are('vigil', 'heal_approvals',
  array['Operators can read heal approvals', 'Operators can decide heal approvals', 'Vigil''s agent']);
select policies_are('vigil', 'contacts', array['Operators can read contacts', 'Vigil''s agent']);
select policies_are('vigil', 'incident_log', array['Operators can read the incident log', 'Vigil''s agent']);
select policies_are('vigil', 'alert_routes', array['Operators can read alert routes', 'Vigil''s agent']);
select policies_are('vigil', 'silences',
  array['Operators can read silences', 'Operators can add silences', 'Operators can end silences', 'Operators can remove silences', 'Vigil''s agent']);
select policies_are('vigil', 'alert_attempts', array['Operators can read alert attempts', 'Vigil''s agent']);
select policies_are('vigil', 'audit_anchors', array['Operators can read audit anchors', 'Vigil''s agent']);
select policies_are('vigil', 'built_indexes', array['Operators can read built indexes', 'Vigil''s agent']);
select policies_are('vigil', 'audit_chain', array['Vigil''s agent']);
select policies_are('vigil', 'vacuum_requests', array['Operators can read vacuum requests', 'Vigil''s agent']);
select policies_are('vigil', 'recommendations', array['Operators can read recommendations', 'Vigil''s agent']);
select policies_are('vigil', 'control_changes', array['Operators can read control changes', 'Vigil''s agent']);
select policies_are('vigil', 'maintenance_runs', array['Operators can read maintenance runs', 'Vigil''s agent']);
select policies_are('vigil', 'statement_snapshots', array['Operators can read statement snapshots', 'Vigil''s agent']);
select policies_are('vigil', 'metric_series', array['Operators can read metric series', 'Vigil''s agent']);
select policies_are('vigil', 'statement_samples', array['Operators can read statement samples', 'Vigil''s agent']);
select policies_are('vigil', 'log_patterns', array['Operators can read log patterns', 'Vigil''s agent']);
select policies_are('vigil', 'deployments', array['Operators can read deployments', 'Vigil''s agent']);
select policies_are('vigil', 'probe_latency', array['Operators can read probe latency', 'Vigil''s agent']);
select policies_are('vigil', 'config_applies', array['Operators can read config applies', 'Vigil''s agent']);
select policies_are('vigil', 'report_settings',
                    array['Operators can read report settings', 'Operators can change report settings', 'Vigil''s agent']);
select policies_are('vigil', 'reports', array['Operators can read reports', 'Vigil''s agent']);

-- Every policy but the agent's is for authenticated only, and only SELECT or UPDATE, but for the
-- silences operators add and remove: other writes belong to service_role, which bypasses RLS.
select is_empty(
  $$select tablename, policyname, cmd, roles from pg_policies
     where schemaname = 'vigil' and policyname <> 'Vigil''s agent' and (roles <> array['authenticated']::name[]
       or (cmd not in ('SELECT', 'UPDATE') and not (tablename = 'silences' and cmd in ('INSERT', 'DELETE'))))$$,
  'every vigil policy applies to authenticated only and is a SELECT or UPDATE policy (or a silence added or removed)'
);
-- The agent's policy: on every table, for vigil_agent alone, all rows (its grants decide the rest).
select set_eq(
  $$select tablename::text from pg_policies
     where schemaname = 'vigil' and policyname = 'Vigil''s agent' and roles = array['vigil_agent']::name[]
       and cmd = 'ALL' and qual = 'true' and with_check = 'true'$$,
  $$select relname::text from pg_class where relnamespace = 'vigil'::regnamespace and relkind in ('r', 'p')$$,
  'every vigil table has the agent''s policy: for vigil_agent only, all rows'
);
select set_eq(
  $$select tablename::text from pg_policies where schemaname = 'vigil' and cmd = 'UPDATE'$$,
  array['settings', 'incidents', 'alerts', 'services', 'heal_approvals', 'silences', 'report_settings'],
  'only settings, incidents, alerts, services, heal_approvals, silences and report_settings have an UPDATE policy'
);
-- Every SELECT policy is the operator test, nothing looser.
select is_empty(
  $$select tablename, policyname from pg_policies
     where schemaname = 'vigil' and cmd = 'SELECT' and qual <> '( SELECT vigil.is_operator() AS is_operator)'$$,
  'every vigil SELECT policy reads (select vigil.is_operator())'
);

select triggers_are('vigil', 'settings', array['settings_touch', 'settings_stamp_operator', 'settings_validate_alerting',
                                               'settings_record_control_change']);
select triggers_are('vigil', 'services', array['services_touch', 'services_validate_config', 'services_heartbeat_token',
                                               'services_validate_depends_on', 'services_rename_dependency',
                                               'services_record_control_change']);
select triggers_are('vigil', 'checks', array['checks_apply', 'checks_rollup', 'checks_slow_queries', 'checks_track_deployments']);
select triggers_are('vigil', 'incidents', array['incidents_touch', 'incidents_stamp_operator', 'incidents_request_heal',
                                                'incidents_alert_lifecycle', 'incidents_name_acknowledger',
                                                'incidents_resolve_recommendations']);
select triggers_are('vigil', 'alerts', array['alerts_stamp_operator', 'alerts_wake_notify']);
select triggers_are('vigil', 'heal_actions', array['heal_actions_append_only', 'heal_actions_no_truncate', 'heal_actions_chain']);
select triggers_are('vigil', 'heal_policies', array['heal_policies_touch', 'heal_policies_validate']);
select triggers_are('vigil', 'heal_approvals', array['heal_approvals_decide']);
select triggers_are('vigil', 'contacts', array['contacts_touch', 'contacts_validate']);
select triggers_are('vigil', 'incident_log', array[]::name[]);
select trigger_is('vigil', 'heal_actions', 'heal_actions_chain', 'vigil', 'chain_heal_action');
select trigger_is('vigil', 'heal_approvals', 'heal_approvals_decide', 'vigil', 'decide_heal_approval');
select trigger_is('vigil', 'incidents', 'incidents_request_heal', 'vigil', 'request_heal');
-- When each fires: the chain before each inserted row, and ALWAYS (A), so session_replication_role =
-- replica cannot skip it; the decision before an update naming decision; the heal request after an
-- insert or an update naming severity. tgtype bits: 1 row, 2 before, 4 insert, 16 update.
select results_eq(
  $$select t.tgname::text collate "default", t.tgenabled::text, (t.tgtype & 1)::int, (t.tgtype & 2)::int,
           (t.tgtype & 4)::int, (t.tgtype & 8)::int, (t.tgtype & 16)::int,
           coalesce((select array_agg(a.attname::text collate "default" order by a.attname) from unnest(t.tgattr) k join pg_attribute a
                      on a.attrelid = t.tgrelid and a.attnum = k), '{}')
      from pg_trigger t
     where t.tgname in ('heal_actions_chain', 'heal_approvals_decide', 'incidents_request_heal') and not t.tgisinternal
     order by t.tgname$$,
  $$values ('heal_actions_chain'::text, 'A'::text, 1, 2, 4, 0, 0, '{}'::text[]),
           ('heal_approvals_decide'::text, 'O'::text, 1, 2, 0, 0, 16, array['decision']),
           ('incidents_request_heal'::text, 'O'::text, 1, 0, 4, 0, 16, array['severity'])$$,
  'heal_actions_chain is ALWAYS before insert per row; heal_approvals_decide is before update of decision; incidents_request_heal is after insert or update of severity'
);
select trigger_is('vigil', 'services', 'services_validate_config', 'vigil', 'validate_service_config');
select trigger_is('vigil', 'checks', 'checks_apply', 'vigil', 'apply_check');
select trigger_is('vigil', 'checks', 'checks_rollup', 'vigil', 'rollup_checks');
-- The rollup counts a whole statement's rows at once (a transition table); apply_check needs each row.
select results_eq(
  $$select tgname::text collate "default", (tgtype & 1)::int, tgnewtable is not null
      from pg_trigger where tgrelid = 'vigil.checks'::regclass and not tgisinternal order by tgname$$,
  $$values ('checks_apply'::text, 1, false), ('checks_rollup'::text, 0, true), ('checks_slow_queries'::text, 1, false),
          ('checks_track_deployments'::text, 1, false)$$,
  'checks_apply, checks_slow_queries and checks_track_deployments fire per row; checks_rollup fires per statement with a transition table'
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

-- The heal failsafes are data with defaults too; the per-service switch is on unless turned off.
select col_default_is('vigil', 'services', 'heal_enabled', 'true', 'services.heal_enabled defaults to true');
select results_eq(
  $$select (table_name::text || '.' || column_name::text) collate "default", is_nullable::text collate "default"
      from information_schema.columns
     where table_schema = 'vigil'
       and (table_name, column_name) in (('services', 'heal_enabled'), ('services', 'actions'),
                                         ('incidents', 'escalation_level'), ('heal_actions', 'seq'))
     order by 1$$,
  $$values ('heal_actions.seq'::text, 'YES'::text), ('incidents.escalation_level', 'NO'),
           ('services.actions', 'NO'), ('services.heal_enabled', 'NO')$$,
  'services.heal_enabled, services.actions and incidents.escalation_level are NOT NULL (heal_actions.seq is set by the chain trigger)'
);
select col_is_unique('vigil', 'heal_actions', 'seq', 'heal_actions.seq is unique: two rows cannot hold one place in the chain');
select enum_has_labels('vigil', 'heal_mode', array['auto', 'approval', 'suggest', 'off']);
select enum_has_labels('vigil', 'contact_role', array['on_call', 'senior', 'team']);
select has_index('vigil', 'incident_log', 'incident_log_incident', array['incident_id', 'created_at']);

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
