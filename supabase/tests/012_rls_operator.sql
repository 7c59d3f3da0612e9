-- An operator (authenticated, app_metadata.role = 'devops') reads every row of every table,
-- flips the kill switch and dry run, acknowledges incidents and alerts, switches healing per
-- service, and decides heal approvals. Who did it comes
-- from the JWT's sub, never from the request. Nothing else is writable.
begin;
-- One snapshot for the whole file: the live cron job keeps writing checks, cycles and invocations,
-- and the operator's counts below must be compared with postgres' counts of the same moment.
set transaction isolation level repeatable read;
set search_path = extensions, public;
select plan(107);

insert into vigil.services (id, name, kind, config) values
  ('00000000-0000-4000-8000-000000000121', 't012-api', 'http', '{"url":"https://t012.example.com"}'),
  ('00000000-0000-4000-8000-000000000124', 't012-ping', 'heartbeat', '{"source":"ping","period_seconds":60}');
insert into vigil.checks (service_id, status, error) values
  ('00000000-0000-4000-8000-000000000121', 'healthy', null),
  ('00000000-0000-4000-8000-000000000121', 'down', 'timeout');
-- acknowledged_by is pre-set to someone else so the stamp is seen to overwrite it.
insert into vigil.incidents (service_id, kind, severity, title, acknowledged_by)
values ('00000000-0000-4000-8000-000000000121', 'latency', 'warning', 't012 slow', '00000000-0000-4000-8000-0000000000ff');
insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome)
select '00000000-0000-4000-8000-000000000122', 'intent', id, service_id, 'restart', 1, 't012', 'pending'
  from vigil.incidents where title = 't012 slow';
insert into vigil.alerts (incident_id, channel, recipient, severity, subject, body)
select id, 'email', 't012@example.com', 'warning', 't012', 't012' from vigil.incidents where title = 't012 slow';
insert into vigil.invocations (fn, transport) values ('t012-fn', 'notify');
insert into vigil.status_transitions (service_id, from_status, to_status, reason)
values ('00000000-0000-4000-8000-000000000121', 'unknown', 'degraded', 't012');
insert into vigil.metrics (service_id, name, value) values ('00000000-0000-4000-8000-000000000121', 'error_rate', 0.5);
insert into vigil.cycles (id, started_at, finished_at, duration_ms, services, healthy, degraded, down)
values ('00000000-0000-4000-8000-000000000125', now(), now(), 0, 1, 0, 0, 1);
update vigil.settings set updated_by = '00000000-0000-4000-8000-0000000000ff' where environment = 'prod';
insert into vigil.heal_policies (environment, strategy, mode) values ('prod', 'retry_deploy', 'approval');
insert into vigil.heal_approvals (action_id, incident_id, service_id, strategy, plan)
select '00000000-0000-4000-8000-000000000126', id, service_id, 'restart', '{"action":"restart"}'
  from vigil.incidents where title = 't012 slow';
insert into vigil.contacts (name, role, channel, address, environment) values ('t012 on call', 'on_call', 'sms', '+15550012', 'prod');
insert into vigil.incident_log (incident_id, level, message)
select id, 'info', 't012 log' from vigil.incidents where title = 't012 slow';

-- What postgres (no RLS) sees, for the operator to match.
create temp table seen_by_postgres as
select 'settings' as t, count(*) as n from vigil.settings
union all select 'services', count(*) from vigil.services
union all select 'checks', count(*) from vigil.checks
union all select 'incidents', count(*) from vigil.incidents
union all select 'heal_actions', count(*) from vigil.heal_actions
union all select 'alerts', count(*) from vigil.alerts
union all select 'invocations', count(*) from vigil.invocations
union all select 'probe_config_schemas', count(*) from vigil.probe_config_schemas
union all select 'status_transitions', count(*) from vigil.status_transitions
union all select 'metrics', count(*) from vigil.metrics
union all select 'check_rollups', count(*) from vigil.check_rollups
union all select 'cycles', count(*) from vigil.cycles
union all select 'heartbeat_tokens', count(*) from vigil.heartbeat_tokens
union all select 'service_uptime', count(*) from vigil.service_uptime
union all select 'heal_policies', count(*) from vigil.heal_policies
union all select 'heal_approvals', count(*) from vigil.heal_approvals
union all select 'contacts', count(*) from vigil.contacts
union all select 'incident_log', count(*) from vigil.incident_log;
grant select on seen_by_postgres to authenticated;
create temp table settings_before as select * from vigil.settings;
grant select on settings_before to authenticated;
create temp table audit_by_postgres as select * from vigil.verify_heal_audit();
grant select on audit_by_postgres to authenticated;

select is_empty($$select t from seen_by_postgres where n = 0$$, 'precondition: every vigil table has rows');

set local role authenticated;
set local request.jwt.claims = '{"sub":"00000000-0000-4000-8000-0000000002a1","role":"authenticated","app_metadata":{"role":"devops"}}';
select ok(vigil.is_operator(), 'app_metadata.role devops is an operator');

select is((select count(*) from vigil.settings), (select n from seen_by_postgres where t = 'settings'), 'operator reads every settings row');
select is((select count(*) from vigil.services), (select n from seen_by_postgres where t = 'services'), 'operator reads every services row');
select is((select count(*) from vigil.checks), (select n from seen_by_postgres where t = 'checks'), 'operator reads every checks row');
select is((select count(*) from vigil.incidents), (select n from seen_by_postgres where t = 'incidents'), 'operator reads every incidents row');
select is((select count(*) from vigil.heal_actions), (select n from seen_by_postgres where t = 'heal_actions'), 'operator reads every heal_actions row');
select is((select count(*) from vigil.alerts), (select n from seen_by_postgres where t = 'alerts'), 'operator reads every alerts row');
select is((select count(*) from vigil.invocations), (select n from seen_by_postgres where t = 'invocations'), 'operator reads every invocations row');
select is((select count(*) from vigil.probe_config_schemas), (select n from seen_by_postgres where t = 'probe_config_schemas'), 'operator reads every probe_config_schemas row');
select is((select count(*) from vigil.status_transitions), (select n from seen_by_postgres where t = 'status_transitions'), 'operator reads every status_transitions row');
select is((select count(*) from vigil.metrics), (select n from seen_by_postgres where t = 'metrics'), 'operator reads every metrics row');
select is((select count(*) from vigil.check_rollups), (select n from seen_by_postgres where t = 'check_rollups'), 'operator reads every check_rollups row');
select is((select count(*) from vigil.cycles), (select n from seen_by_postgres where t = 'cycles'), 'operator reads every cycles row');
select is((select count(*) from vigil.heartbeat_tokens), (select n from seen_by_postgres where t = 'heartbeat_tokens'), 'operator reads every heartbeat_tokens row');
select is((select count(*) from vigil.service_uptime), (select n from seen_by_postgres where t = 'service_uptime'), 'operator reads every service_uptime row');
select is((select count(*) from vigil.heal_policies), (select n from seen_by_postgres where t = 'heal_policies'), 'operator reads every heal_policies row');
select is((select count(*) from vigil.heal_approvals), (select n from seen_by_postgres where t = 'heal_approvals'), 'operator reads every heal_approvals row');
select is((select count(*) from vigil.contacts), (select n from seen_by_postgres where t = 'contacts'), 'operator reads every contacts row');
select is((select count(*) from vigil.incident_log), (select n from seen_by_postgres where t = 'incident_log'), 'operator reads every incident_log row');
-- The audit walk sees what the operator reads, every row: its verdict is the one postgres gets.
select results_eq($$select * from vigil.verify_heal_audit()$$, $$select * from audit_by_postgres$$,
                  'operator''s verify_heal_audit gives the verdict postgres gets over the whole audit');
-- The two checks seeded above are one healthy, one down: 50 % over any window that holds them.
select results_eq(
  $$select uptime_24h, uptime_7d, uptime_30d, uptime_90d from vigil.service_uptime
     where service_id = '00000000-0000-4000-8000-000000000121'$$,
  $$values (50.000::numeric, 50.000::numeric, 50.000::numeric, 50.000::numeric)$$,
  'operator reads a service''s uptime from service_uptime'
);
select is(vigil.uptime('00000000-0000-4000-8000-000000000121', interval '24 hours'), 50.000::numeric,
          'operator can execute vigil.uptime and it counts the rollups RLS lets them read');
select ok((select token ~ '^[0-9a-f]{64}$' from vigil.heartbeat_tokens where service_id = '00000000-0000-4000-8000-000000000124'),
          'operator reads a ping heartbeat''s token (to configure the job that pings)');
select throws_ok($$select vigil.json_schema_errors((select schema from vigil.probe_config_schemas where kind = 'http'), '{}', 'config')$$,
                 '42501', 'permission denied for function json_schema_errors',
                 'operator cannot execute vigil.json_schema_errors: the dashboard validates with the zod schemas in shared/');
select results_eq(
  $$select name, status::text from vigil.public_status where name = 't012-api'$$,
  $$values ('t012-api'::text, 'unknown'::text)$$,
  'operator can read public_status'
);

-- settings: kill switch and dry run, stamped with the operator's sub.
with u as (update vigil.settings set kill_switch = true where environment = 'prod' returning 1)
select is(count(*)::int, 1, 'operator can update settings.kill_switch') from u;
select results_eq(
  $$select kill_switch, updated_by from vigil.settings where environment = 'prod'$$,
  $$values (true, '00000000-0000-4000-8000-0000000002a1'::uuid)$$,
  'kill_switch is set and updated_by is stamped with the operator''s JWT sub, replacing the previous value'
);
with u as (update vigil.settings set dry_run = true where environment = 'qa' returning 1)
select is(count(*)::int, 1, 'operator can update settings.dry_run') from u;
select results_eq(
  $$select dry_run, updated_by from vigil.settings where environment = 'qa'$$,
  $$values (true, '00000000-0000-4000-8000-0000000002a1'::uuid)$$,
  'dry_run is set and updated_by is stamped with the operator''s JWT sub'
);
-- updated_by is not a granted column, so naming it fails the whole statement: it cannot be forged.
select throws_ok(
  $$update vigil.settings set kill_switch = false, updated_by = '00000000-0000-4000-8000-0000000000ee' where environment = 'prod'$$,
  '42501', 'permission denied for table settings', 'operator cannot set settings.updated_by');
select throws_ok($$update vigil.settings set api_p95_warning_ms = 150 where environment = 'prod'$$,
                 '42501', 'permission denied for table settings', 'operator cannot update settings.api_p95_warning_ms');
select throws_ok($$update vigil.settings set slow_query_ms = 5000 where environment = 'prod'$$,
                 '42501', 'permission denied for table settings', 'operator cannot update settings.slow_query_ms');
select throws_ok($$update vigil.settings set updated_at = now() - interval '1 day' where environment = 'prod'$$,
                 '42501', 'permission denied for table settings', 'operator cannot update settings.updated_at');
select throws_ok($$update vigil.settings set heal_max_per_hour = 1000 where environment = 'prod'$$,
                 '42501', 'permission denied for table settings', 'operator cannot update settings.heal_max_per_hour');
select throws_ok($$update vigil.settings set protected_roles = '{}' where environment = 'prod'$$,
                 '42501', 'permission denied for table settings', 'operator cannot update settings.protected_roles');
select results_eq(
  $$select kill_switch, updated_by, api_p95_warning_ms, slow_query_ms from vigil.settings where environment = 'prod'$$,
  $$select true, '00000000-0000-4000-8000-0000000002a1'::uuid, api_p95_warning_ms, slow_query_ms
      from settings_before where environment = 'prod'$$,
  'the rejected updates changed nothing'
);

-- incidents: acknowledge, stamped; clear, unstamped; nothing else.
with u as (update vigil.incidents set acknowledged_at = now() where title = 't012 slow' returning 1)
select is(count(*)::int, 1, 'operator can set incidents.acknowledged_at') from u;
select results_eq(
  $$select acknowledged_at, acknowledged_by from vigil.incidents where title = 't012 slow'$$,
  $$values (now(), '00000000-0000-4000-8000-0000000002a1'::uuid)$$,
  'incidents.acknowledged_by is stamped with the operator''s JWT sub'
);
select throws_ok(
  $$update vigil.incidents set acknowledged_at = now(), acknowledged_by = '00000000-0000-4000-8000-0000000000ee' where title = 't012 slow'$$,
  '42501', 'permission denied for table incidents', 'operator cannot set incidents.acknowledged_by');
select throws_ok($$update vigil.incidents set status = 'resolved' where title = 't012 slow'$$,
                 '42501', 'permission denied for table incidents', 'operator cannot update incidents.status');
select throws_ok($$update vigil.incidents set severity = 'info' where title = 't012 slow'$$,
                 '42501', 'permission denied for table incidents', 'operator cannot update incidents.severity');
select throws_ok($$update vigil.incidents set title = 'renamed' where title = 't012 slow'$$,
                 '42501', 'permission denied for table incidents', 'operator cannot update incidents.title');
select results_eq(
  $$select status::text, severity::text, acknowledged_by from vigil.incidents where title = 't012 slow'$$,
  $$values ('open'::text, 'warning'::text, '00000000-0000-4000-8000-0000000002a1'::uuid)$$,
  'the rejected incident updates changed nothing'
);
with u as (update vigil.incidents set acknowledged_at = null where title = 't012 slow' returning 1)
select is(count(*)::int, 1, 'operator can clear incidents.acknowledged_at') from u;
select results_eq(
  $$select acknowledged_at, acknowledged_by from vigil.incidents where title = 't012 slow'$$,
  $$values (null::timestamptz, null::uuid)$$,
  'clearing the acknowledgement clears acknowledged_by'
);

-- alerts: acknowledge, stamped; nothing else.
with u as (update vigil.alerts set acknowledged_at = now() where recipient = 't012@example.com' returning 1)
select is(count(*)::int, 1, 'operator can set alerts.acknowledged_at') from u;
select results_eq(
  $$select acknowledged_at, acknowledged_by from vigil.alerts where recipient = 't012@example.com'$$,
  $$values (now(), '00000000-0000-4000-8000-0000000002a1'::uuid)$$,
  'alerts.acknowledged_by is stamped with the operator''s JWT sub'
);
select throws_ok(
  $$update vigil.alerts set acknowledged_by = '00000000-0000-4000-8000-0000000000ee' where recipient = 't012@example.com'$$,
  '42501', 'permission denied for table alerts', 'operator cannot set alerts.acknowledged_by');
select throws_ok($$update vigil.alerts set status = 'suppressed' where recipient = 't012@example.com'$$,
                 '42501', 'permission denied for table alerts', 'operator cannot update alerts.status');

-- services: the per-service heal switch, and nothing else.
with u as (update vigil.services set heal_enabled = false where id = '00000000-0000-4000-8000-000000000121' returning 1)
select is(count(*)::int, 1, 'operator can update services.heal_enabled') from u;
select is((select heal_enabled from vigil.services where id = '00000000-0000-4000-8000-000000000121'), false,
          'healing is switched off for the service');
select throws_ok($$update vigil.services set actions = '{}' where id = '00000000-0000-4000-8000-000000000121'$$,
                 '42501', 'permission denied for table services', 'operator cannot update services.actions');

-- heal_approvals: the decision, and nothing else (063_approvals covers what a decision does).
with u as (update vigil.heal_approvals set decision = 'rejected' where action_id = '00000000-0000-4000-8000-000000000126' returning 1)
select is(count(*)::int, 1, 'operator can update heal_approvals.decision') from u;
select throws_ok($$update vigil.heal_approvals set expires_at = now() + interval '1 day' where action_id = '00000000-0000-4000-8000-000000000126'$$,
                 '42501', 'permission denied for table heal_approvals', 'operator cannot update heal_approvals.expires_at');
select throws_ok($$update vigil.heal_approvals set plan = '{}' where action_id = '00000000-0000-4000-8000-000000000126'$$,
                 '42501', 'permission denied for table heal_approvals', 'operator cannot update heal_approvals.plan');
select throws_ok($$update vigil.heal_policies set mode = 'auto'$$, '42501', 'permission denied for table heal_policies',
                 'operator cannot update heal_policies');
select throws_ok($$update vigil.contacts set enabled = false$$, '42501', 'permission denied for table contacts',
                 'operator cannot update contacts');
select throws_ok($$update vigil.incident_log set message = 'x'$$, '42501', 'permission denied for table incident_log',
                 'operator cannot update incident_log');

-- A second operator acknowledging is stamped with their own sub: the stamp is per JWT.
set local request.jwt.claims = '{"sub":"00000000-0000-4000-8000-0000000002b2","role":"authenticated","app_metadata":{"role":"devops"}}';
update vigil.incidents set acknowledged_at = now() where title = 't012 slow';
select is((select acknowledged_by from vigil.incidents where title = 't012 slow'), '00000000-0000-4000-8000-0000000002b2'::uuid,
          'a second operator''s acknowledgement is stamped with the second operator''s sub');

-- No inserts, no deletes.
select throws_ok($$insert into vigil.settings (environment) values ('dev')$$, '42501', 'permission denied for table settings', 'operator cannot insert settings');
select throws_ok($$insert into vigil.services (name, kind) values ('t012-op', 'http')$$, '42501', 'permission denied for table services', 'operator cannot insert services');
select throws_ok($$insert into vigil.checks (service_id, status) values ('00000000-0000-4000-8000-000000000121', 'healthy')$$, '42501', 'permission denied for table checks', 'operator cannot insert checks');
select throws_ok($$insert into vigil.incidents (service_id, kind, severity, title) values ('00000000-0000-4000-8000-000000000121', 'op', 'info', 'x')$$, '42501', 'permission denied for table incidents', 'operator cannot insert incidents');
select throws_ok($$insert into vigil.heal_actions (action_id, phase, strategy, attempt, reason, outcome) values (gen_random_uuid(), 'intent', 'restart', 1, 'op', 'pending')$$, '42501', 'permission denied for table heal_actions', 'operator cannot insert heal_actions');
select throws_ok($$insert into vigil.alerts (channel, recipient, severity, subject, body) values ('email', 'o@example.com', 'info', 's', 'b')$$, '42501', 'permission denied for table alerts', 'operator cannot insert alerts');
select throws_ok($$insert into vigil.invocations (fn, transport) values ('op', 'notify')$$, '42501', 'permission denied for table invocations', 'operator cannot insert invocations');
select throws_ok($$insert into vigil.probe_config_schemas (kind, schema) values ('http', '{}')$$, '42501', 'permission denied for table probe_config_schemas', 'operator cannot insert probe_config_schemas');
select throws_ok($$insert into vigil.status_transitions (service_id, from_status, to_status) values ('00000000-0000-4000-8000-000000000121', 'degraded', 'healthy')$$, '42501', 'permission denied for table status_transitions', 'operator cannot insert status_transitions');
select throws_ok($$insert into vigil.metrics (service_id, name, value) values ('00000000-0000-4000-8000-000000000121', 'error_rate', 1)$$, '42501', 'permission denied for table metrics', 'operator cannot insert metrics');
select throws_ok($$insert into vigil.check_rollups (service_id, bucket, checks, healthy, degraded, down) values ('00000000-0000-4000-8000-000000000121', '2020-01-01', 1, 1, 0, 0)$$, '42501', 'permission denied for table check_rollups', 'operator cannot insert check_rollups');
select throws_ok($$insert into vigil.cycles (id, started_at, finished_at, duration_ms, services, healthy, degraded, down) values (gen_random_uuid(), now(), now(), 0, 0, 0, 0, 0)$$, '42501', 'permission denied for table cycles', 'operator cannot insert cycles');
select throws_ok($$insert into vigil.heartbeat_tokens (service_id) values ('00000000-0000-4000-8000-000000000121')$$, '42501', 'permission denied for table heartbeat_tokens', 'operator cannot insert heartbeat_tokens');
select throws_ok($$insert into vigil.heal_policies (environment, strategy, mode) values ('prod', 'op', 'auto')$$, '42501', 'permission denied for table heal_policies', 'operator cannot insert heal_policies');
select throws_ok($$insert into vigil.heal_approvals (action_id, incident_id, service_id, strategy, plan) values (gen_random_uuid(), 1, '00000000-0000-4000-8000-000000000121', 'restart', '{}')$$, '42501', 'permission denied for table heal_approvals', 'operator cannot insert heal_approvals');
select throws_ok($$insert into vigil.contacts (name, role, channel, address) values ('op', 'senior', 'sms', '+15550000')$$, '42501', 'permission denied for table contacts', 'operator cannot insert contacts');
select throws_ok($$insert into vigil.incident_log (incident_id, level, message) values (1, 'info', 'op')$$, '42501', 'permission denied for table incident_log', 'operator cannot insert incident_log');

select throws_ok($$delete from vigil.settings$$, '42501', 'permission denied for table settings', 'operator cannot delete settings');
select throws_ok($$delete from vigil.services$$, '42501', 'permission denied for table services', 'operator cannot delete services');
select throws_ok($$delete from vigil.checks$$, '42501', 'permission denied for table checks', 'operator cannot delete checks');
select throws_ok($$delete from vigil.incidents$$, '42501', 'permission denied for table incidents', 'operator cannot delete incidents');
select throws_ok($$delete from vigil.heal_actions$$, '42501', 'permission denied for table heal_actions', 'operator cannot delete heal_actions');
select throws_ok($$delete from vigil.alerts$$, '42501', 'permission denied for table alerts', 'operator cannot delete alerts');
select throws_ok($$delete from vigil.invocations$$, '42501', 'permission denied for table invocations', 'operator cannot delete invocations');
select throws_ok($$delete from vigil.probe_config_schemas$$, '42501', 'permission denied for table probe_config_schemas', 'operator cannot delete probe_config_schemas');
select throws_ok($$delete from vigil.status_transitions$$, '42501', 'permission denied for table status_transitions', 'operator cannot delete status_transitions');
select throws_ok($$delete from vigil.metrics$$, '42501', 'permission denied for table metrics', 'operator cannot delete metrics');
select throws_ok($$delete from vigil.check_rollups$$, '42501', 'permission denied for table check_rollups', 'operator cannot delete check_rollups');
select throws_ok($$delete from vigil.cycles$$, '42501', 'permission denied for table cycles', 'operator cannot delete cycles');
select throws_ok($$delete from vigil.heartbeat_tokens$$, '42501', 'permission denied for table heartbeat_tokens', 'operator cannot delete heartbeat_tokens');
select throws_ok($$delete from vigil.heal_policies$$, '42501', 'permission denied for table heal_policies', 'operator cannot delete heal_policies');
select throws_ok($$delete from vigil.heal_approvals$$, '42501', 'permission denied for table heal_approvals', 'operator cannot delete heal_approvals');
select throws_ok($$delete from vigil.contacts$$, '42501', 'permission denied for table contacts', 'operator cannot delete contacts');
select throws_ok($$delete from vigil.incident_log$$, '42501', 'permission denied for table incident_log', 'operator cannot delete incident_log');

select throws_ok($$update vigil.heal_actions set detail = 'x'$$, '42501', 'permission denied for table heal_actions', 'operator cannot update heal_actions');
select throws_ok($$update vigil.services set enabled = false$$, '42501', 'permission denied for table services', 'operator cannot update services');
select throws_ok($$update vigil.services set failure_threshold = 100$$, '42501', 'permission denied for table services', 'operator cannot update a service''s thresholds');
select throws_ok($$update vigil.probe_config_schemas set schema = '{}'$$, '42501', 'permission denied for table probe_config_schemas', 'operator cannot update probe_config_schemas');
select throws_ok($$update vigil.status_transitions set reason = 'x'$$, '42501', 'permission denied for table status_transitions', 'operator cannot update status_transitions');
select throws_ok($$update vigil.metrics set value = 0$$, '42501', 'permission denied for table metrics', 'operator cannot update metrics');
select throws_ok($$update vigil.check_rollups set down = 0$$, '42501', 'permission denied for table check_rollups', 'operator cannot update check_rollups');
select throws_ok($$update vigil.cycles set finished_at = now()$$, '42501', 'permission denied for table cycles', 'operator cannot update cycles');
select throws_ok($$update vigil.heartbeat_tokens set token = 'x'$$, '42501', 'permission denied for table heartbeat_tokens', 'operator cannot update heartbeat_tokens');

select throws_ok($$select vigil.invoke('status', '{}')$$, '42501', 'permission denied for function invoke',
                 'operator cannot execute vigil.invoke');
select throws_ok($$select vigil.record_cycle('{}')$$, '42501', 'permission denied for function record_cycle',
                 'operator cannot execute vigil.record_cycle');
select throws_ok($$select vigil.record_heartbeat('0000')$$, '42501', 'permission denied for function record_heartbeat',
                 'operator cannot execute vigil.record_heartbeat');
reset role;

select set_eq(
  $$select environment, kill_switch, dry_run from vigil.settings$$,
  $$select environment, case when environment = 'prod' then true else kill_switch end,
           case when environment = 'qa' then true else dry_run end from settings_before$$,
  'the only settings changes are the prod kill switch and the qa dry run'
);

select * from finish();
rollback;
