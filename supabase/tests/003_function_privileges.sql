-- Nothing in vigil is callable by PUBLIC; each function is granted to exactly the roles that
-- need it. invoke, sweep_invocations, record_cycle, record_heartbeat and heartbeat_verdict are
-- service_role only; is_operator is called inside the authenticated policies; uptime and
-- json_schema_errors is the service role's (operators read tables, they do not run the machinery); watch_cycles and apply_retention run from pg_cron as
-- the owner; the trigger functions need no EXECUTE grant to fire. The heal half: heal_guard,
-- claim_incident, release_incident, escalate and retry_heals are service_role only; the audit walk
-- verify_heal_audit serves the dashboard too, and runs as the caller (like uptime), so what it
-- walks is what RLS lets the caller read; heal_action_hash is called by the chain trigger and by
-- that walk, with the rights of whoever runs them.
begin;
set search_path = extensions, public;
select plan(121);

-- A NULL proacl means the built-in default, which lets PUBLIC execute.
select is_empty(
  $$select p.oid::regprocedure from pg_proc p
     where p.pronamespace = 'vigil'::regnamespace
       and (p.proacl is null or exists (select from aclexplode(p.proacl) a where a.grantee = 0))$$,
  'no function in schema vigil is executable by PUBLIC'
);

select ok(not has_function_privilege('anon', 'vigil.invoke(text,jsonb)', 'execute'), 'anon cannot execute vigil.invoke');
select ok(not has_function_privilege('authenticated', 'vigil.invoke(text,jsonb)', 'execute'),
          'authenticated cannot execute vigil.invoke');
select ok(has_function_privilege('service_role', 'vigil.invoke(text,jsonb)', 'execute'),
          'service_role can execute vigil.invoke');

select ok(not has_function_privilege('anon', 'vigil.sweep_invocations(interval,interval)', 'execute'),
          'anon cannot execute vigil.sweep_invocations');
select ok(not has_function_privilege('authenticated', 'vigil.sweep_invocations(interval,interval)', 'execute'),
          'authenticated cannot execute vigil.sweep_invocations');
select ok(has_function_privilege('service_role', 'vigil.sweep_invocations(interval,interval)', 'execute'),
          'service_role can execute vigil.sweep_invocations');

select function_privs_are('vigil', 'is_operator', array[]::name[], r, array['EXECUTE'],
                          format('%s can execute vigil.is_operator (used by the policies)', r))
  from unnest(array['anon', 'authenticated', 'service_role']) r;

select function_privs_are('vigil', f, array[]::name[], r, array[]::text[],
                          format('%s cannot execute trigger function vigil.%s', r, f))
  from unnest(array['touch_updated_at', 'reject_audit_change', 'stamp_operator', 'validate_service_config',
                    'apply_check', 'rollup_checks', 'ensure_heartbeat_token', 'chain_heal_action',
                    'decide_heal_approval', 'request_heal']) f,
       unnest(array['anon', 'authenticated', 'service_role']) r;

-- The edge functions' entry points: service_role only.
select function_privs_are('vigil', f, a, r, case when r = 'service_role' then array['EXECUTE'] else array[]::text[] end,
                          format('%s %s execute vigil.%s', r, case when r = 'service_role' then 'can' else 'cannot' end, f))
  from (values ('record_cycle', array['jsonb']::name[]), ('record_heartbeat', array['text']::name[]),
               ('heartbeat_verdict', array['uuid']::name[]), ('heal_guard', array['uuid', 'text']::name[]),
               ('claim_incident', array['bigint', 'text', 'interval']::name[]),
               ('release_incident', array['bigint', 'text']::name[]),
               ('escalate', array['bigint', 'integer', 'text']::name[]),
               ('retry_heals', array['interval']::name[])) f(f, a),
       unnest(array['anon', 'authenticated', 'service_role']) r;

-- Read helpers the dashboard calls as the operator: authenticated and service_role, never anon.
select function_privs_are('vigil', f, a, r, case when r = 'anon' then array[]::text[] else array['EXECUTE'] end,
                          format('%s %s execute vigil.%s', r, case when r = 'anon' then 'cannot' else 'can' end, f))
  from (values ('uptime', array['uuid', 'interval']::name[]),
               ('verify_heal_audit', array[]::name[]), ('heal_action_hash', array['vigil.heal_actions']::name[])) f(f, a),
       unnest(array['anon', 'authenticated', 'service_role']) r;
-- The schema validator is the machinery's: service_role only (the config trigger runs as the writer).
select function_privs_are('vigil', 'json_schema_errors', array['jsonb', 'jsonb', 'text']::name[], r,
                          case when r = 'service_role' then array['EXECUTE'] else array[]::text[] end,
                          format('%s %s execute vigil.json_schema_errors', r, case when r = 'service_role' then 'can' else 'cannot' end))
  from unnest(array['anon', 'authenticated', 'service_role']) r;

-- pg_cron runs these as their owner; no API role calls them.
select function_privs_are('vigil', f, a, r, array[]::text[], format('%s cannot execute vigil.%s', r, f))
  from (values ('watch_cycles', array[]::name[]), ('apply_retention', array['interval', 'interval']::name[])) f(f, a),
       unnest(array['anon', 'authenticated', 'service_role']) r;

-- The incident helper is internal: no caller outside the check trigger.
select function_privs_are('vigil', 'sync_service_incident',
                          array['vigil.services', 'vigil.service_status', 'vigil.service_status', 'vigil.checks']::name[],
                          r, array[]::text[], format('%s cannot execute vigil.sync_service_incident', r))
  from unnest(array['anon', 'authenticated']) r;

-- Enumerated from the catalog, so a new function granted too widely fails here.
select set_eq(
  $$select p.proname::text from pg_proc p
     where p.pronamespace = 'vigil'::regnamespace and has_function_privilege('anon', p.oid, 'execute')$$,
  array['is_operator'],
  'anon can execute exactly vigil.is_operator'
);
select set_eq(
  $$select p.proname::text from pg_proc p
     where p.pronamespace = 'vigil'::regnamespace and has_function_privilege('authenticated', p.oid, 'execute')$$,
  array['is_operator', 'uptime', 'verify_heal_audit', 'heal_action_hash', 'known_strategies', 'heal_ladder',
        'health_score', 'incident_timeline', 'dashboard_snapshot', 'performance_trends', 'report_kpis',
        'report_facts', 'report_card', 'schedules'],
  'authenticated can execute exactly the read helpers (is_operator, uptime, verify_heal_audit, heal_action_hash, known_strategies, heal_ladder, health_score, incident_timeline, dashboard_snapshot, performance_trends, report_kpis, report_facts, report_card, schedules): no helper of the machinery'
);
-- (sync_service_incident is left out: service_role needs it, or a definer apply_check, for its
-- check inserts to move a status; see 013_rls_service_role.)
select set_eq(
  $$select p.proname::text from pg_proc p
     where p.pronamespace = 'vigil'::regnamespace and has_function_privilege('service_role', p.oid, 'execute')
       and p.proname <> 'sync_service_incident'$$,
  array['is_operator', 'invoke', 'sweep_invocations', 'record_cycle', 'record_heartbeat', 'heartbeat_verdict',
        'uptime', 'json_schema_errors', 'heal_guard', 'claim_incident', 'release_incident', 'escalate', 'retry_heals',
        'verify_heal_audit', 'heal_action_hash',
        'alert_priority', 'dependencies', 'direct_dependencies', 'contact_errors', 'queue_alert', 'claim_alerts',
        'record_alert_attempt', 'acknowledge_incident', 'sweep_alerts', 'purge_alerts', 'release_alerts', 'tell', 'repage', 'consume_approval',
        'build_index', 'drop_built_index', 'request_vacuum', 'vacuum_request_status', 'known_strategies',
        'analyze_table', 'recommend', 'heal_ladder', 'health_score', 'incident_timeline',
        'dashboard_snapshot', 'performance_trends', 'begin_maintenance', 'end_maintenance',
        'security_lints', 'apply_security_lints', 'snapshot_statements', 'report_kpis',
        'due_reports', 'claim_report', 'report_facts', 'schedules', 'finish_report', 'fail_report', 'report_card',
        'error_pattern', 'error_trends', 'statement_periods', 'sync_recommendations', 'record_analysis',
        'sample_statements', 'match_log_lines', 'summarize_deployments', 'prometheus_snapshot',
        'schema_version', 'config_state', 'apply_config',
        'start_cycle_run', 'begin_shard_attempt', 'record_shard_failure', 'finish_cycle_run'],
  'service_role can execute exactly invoke, sweep_invocations, record_cycle, record_heartbeat, heartbeat_verdict, uptime, json_schema_errors, is_operator, the heal functions and the alerting entry points'
);

-- New functions get EXECUTE for PUBLIC by Postgres' global default, which a per-schema default
-- privilege cannot take back (and changing the global default would change the user's whole
-- project). So each migration revokes on what it creates, and the PUBLIC check above, run over
-- every function in vigil, fails the day one forgets.

select is_definer('vigil', 'invoke', array['text', 'jsonb'], 'vigil.invoke is security definer');
select is_definer('vigil', 'sweep_invocations', array['interval', 'interval'],
                  'vigil.sweep_invocations is security definer');
select is_definer('vigil', 'is_operator', array[]::name[], 'vigil.is_operator is security definer');
-- stamp_operator tests current_user = 'authenticated'; as a definer it would see the owner
-- and silently stop stamping.
select isnt_definer('vigil', 'stamp_operator', array[]::name[], 'vigil.stamp_operator runs as the caller');
select is_definer('vigil', f, a, format('vigil.%s is security definer', f))
  from (values ('record_cycle', array['jsonb']::name[]), ('record_heartbeat', array['text']::name[]),
               ('heartbeat_verdict', array['uuid']::name[]), ('watch_cycles', array[]::name[]),
               ('apply_retention', array['interval', 'interval']::name[])) f(f, a);
-- uptime runs as the caller, so what it counts is what RLS lets the caller read: nothing for a
-- non-operator.
select isnt_definer('vigil', 'uptime', array['uuid', 'interval'], 'vigil.uptime runs as the caller');
-- The heal entry points read and write past RLS for the edge functions; the approval trigger is a
-- definer so an operator's decision can ask auto-heal to act through vigil.invoke.
select is_definer('vigil', f, a, format('vigil.%s is security definer', f))
  from (values ('heal_guard', array['uuid', 'text']::name[]), ('claim_incident', array['bigint', 'text', 'interval']::name[]),
               ('release_incident', array['bigint', 'text']::name[]), ('escalate', array['bigint', 'integer', 'text']::name[]),
               ('retry_heals', array['interval']::name[]), ('decide_heal_approval', array[]::name[])) f(f, a);
-- The audit walk runs as the caller, like uptime: a non-operator walks the rows RLS shows them, none.
select isnt_definer('vigil', 'verify_heal_audit', array[]::name[], 'vigil.verify_heal_audit runs as the caller');

-- Acting as each role, the denial is what the caller actually gets.
set local role anon;
select throws_ok($$select vigil.invoke('status', '{}')$$, '42501', 'permission denied for function invoke',
                 'anon gets permission denied calling vigil.invoke');
reset role;
set local role authenticated;
set local request.jwt.claims = '{"sub":"00000000-0000-4000-8000-0000000003a1","role":"authenticated","app_metadata":{"role":"devops"}}';
select throws_ok($$select vigil.sweep_invocations()$$, '42501', 'permission denied for function sweep_invocations',
                 'an operator gets permission denied calling vigil.sweep_invocations');
select throws_ok($$select vigil.record_cycle('{}')$$, '42501', 'permission denied for function record_cycle',
                 'an operator gets permission denied calling vigil.record_cycle');
select throws_ok($$select vigil.record_heartbeat('x')$$, '42501', 'permission denied for function record_heartbeat',
                 'an operator gets permission denied calling vigil.record_heartbeat');
select throws_ok($$select * from vigil.heartbeat_verdict(gen_random_uuid())$$, '42501',
                 'permission denied for function heartbeat_verdict',
                 'an operator gets permission denied calling vigil.heartbeat_verdict');
select throws_ok($$select vigil.watch_cycles()$$, '42501', 'permission denied for function watch_cycles',
                 'an operator gets permission denied calling vigil.watch_cycles');
select throws_ok($$select vigil.apply_retention()$$, '42501', 'permission denied for function apply_retention',
                 'an operator gets permission denied calling vigil.apply_retention');
select throws_ok($$select vigil.json_schema_errors('{"type":"integer"}', '"x"')$$, '42501',
                 'permission denied for function json_schema_errors',
                 'an operator gets permission denied calling vigil.json_schema_errors');
select throws_ok($$select vigil.heal_guard(gen_random_uuid(), 'restart')$$, '42501', 'permission denied for function heal_guard',
                 'an operator gets permission denied calling vigil.heal_guard');
select throws_ok($$select * from vigil.claim_incident(1, 'operator')$$, '42501', 'permission denied for function claim_incident',
                 'an operator gets permission denied calling vigil.claim_incident');
select throws_ok($$select vigil.release_incident(1, 'operator')$$, '42501', 'permission denied for function release_incident',
                 'an operator gets permission denied calling vigil.release_incident');
select throws_ok($$select vigil.escalate(1, 4, 'operator')$$, '42501', 'permission denied for function escalate',
                 'an operator gets permission denied calling vigil.escalate');
select throws_ok($$select vigil.retry_heals()$$, '42501', 'permission denied for function retry_heals',
                 'an operator gets permission denied calling vigil.retry_heals');
select is((select count(*) from vigil.verify_heal_audit()), 1::bigint, 'an operator can call vigil.verify_heal_audit (one summary row)');
reset role;
set local role anon;
select throws_ok($$select vigil.uptime(gen_random_uuid(), interval '1 day')$$, '42501', 'permission denied for function uptime',
                 'anon gets permission denied calling vigil.uptime');
select throws_ok($$select vigil.json_schema_errors('{}', '{}')$$, '42501', 'permission denied for function json_schema_errors',
                 'anon gets permission denied calling vigil.json_schema_errors');
select throws_ok($$select * from vigil.verify_heal_audit()$$, '42501', 'permission denied for function verify_heal_audit',
                 'anon gets permission denied calling vigil.verify_heal_audit');
reset role;

select * from finish();
rollback;
