-- anon (the public key, no login) touches no table: every read and write is denied outright.
-- All it may read is vigil.public_status: enabled services' name, status and 24 h uptime.
begin;
set search_path = extensions, public;
select plan(92);

-- Seed as postgres: one enabled service with four checks in the last day (one down) and one
-- older down check that must not count, one disabled service, and a row in every other table.
insert into vigil.services (id, name, kind, config, status, enabled) values
  ('00000000-0000-4000-8000-000000000101', 't010-enabled', 'http', '{"url":"https://t010.example.com"}', 'degraded', true),
  ('00000000-0000-4000-8000-000000000102', 't010-disabled', 'http', '{"url":"https://t010.example.com"}', 'down', false),
  ('00000000-0000-4000-8000-000000000104', 't010-ping', 'heartbeat', '{"source":"ping","period_seconds":60}', 'unknown', true);
insert into vigil.checks (service_id, status, checked_at, error) values
  ('00000000-0000-4000-8000-000000000101', 'healthy', now() - interval '1 hour', null),
  ('00000000-0000-4000-8000-000000000101', 'degraded', now() - interval '2 hours', null),
  ('00000000-0000-4000-8000-000000000101', 'healthy', now() - interval '3 hours', null),
  ('00000000-0000-4000-8000-000000000101', 'down', now() - interval '4 hours', 'connection refused'),
  ('00000000-0000-4000-8000-000000000101', 'down', now() - interval '25 hours', 'connection refused'),
  ('00000000-0000-4000-8000-000000000102', 'down', now() - interval '1 hour', 'connection refused');
insert into vigil.incidents (service_id, kind, severity, title)
values ('00000000-0000-4000-8000-000000000101', 'latency', 'warning', 't010 slow');
insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome)
select '00000000-0000-4000-8000-000000000103', 'intent', id, service_id, 'restart', 1, 't010', 'pending'
  from vigil.incidents where title = 't010 slow';
insert into vigil.alerts (incident_id, channel, recipient, severity, subject, body)
select id, 'email', 't010@example.com', 'warning', 't010', 't010' from vigil.incidents where title = 't010 slow';
insert into vigil.invocations (fn, transport) values ('t010-fn', 'notify');
insert into vigil.status_transitions (service_id, from_status, to_status, reason)
values ('00000000-0000-4000-8000-000000000101', 'healthy', 'degraded', 't010');
insert into vigil.metrics (service_id, name, value)
values ('00000000-0000-4000-8000-000000000101', 'http_request_duration', 42);
insert into vigil.cycles (id, started_at, finished_at, duration_ms, services, healthy, degraded, down)
values ('00000000-0000-4000-8000-000000000105', now(), now(), 0, 0, 0, 0, 0);
insert into vigil.heal_policies (environment, strategy, mode) values ('prod', 'purge_cdn', 'approval');
insert into vigil.heal_approvals (action_id, incident_id, service_id, strategy, plan)
select '00000000-0000-4000-8000-000000000106', id, service_id, 'restart', '{"action":"restart"}'
  from vigil.incidents where title = 't010 slow';
insert into vigil.contacts (name, role, channel, address, environment) values ('t010 on call', 'on_call', 'sms', '+15550010', 'prod');
insert into vigil.incident_log (incident_id, level, message)
select id, 'info', 't010 log' from vigil.incidents where title = 't010 slow';

set local role anon;
set local request.jwt.claims = '{"role":"anon"}';

-- settings
select throws_ok($$select * from vigil.settings$$, '42501', 'permission denied for table settings', 'anon cannot select settings');
select throws_ok($$insert into vigil.settings (environment) values ('dev')$$, '42501', 'permission denied for table settings', 'anon cannot insert settings');
select throws_ok($$update vigil.settings set kill_switch = true$$, '42501', 'permission denied for table settings', 'anon cannot update settings');
select throws_ok($$delete from vigil.settings$$, '42501', 'permission denied for table settings', 'anon cannot delete settings');
-- services
select throws_ok($$select * from vigil.services$$, '42501', 'permission denied for table services', 'anon cannot select services');
select throws_ok($$insert into vigil.services (name, kind) values ('t010-anon', 'http')$$, '42501', 'permission denied for table services', 'anon cannot insert services');
select throws_ok($$update vigil.services set enabled = false$$, '42501', 'permission denied for table services', 'anon cannot update services');
select throws_ok($$delete from vigil.services$$, '42501', 'permission denied for table services', 'anon cannot delete services');
-- checks
select throws_ok($$select * from vigil.checks$$, '42501', 'permission denied for table checks', 'anon cannot select checks');
select throws_ok($$insert into vigil.checks (service_id, status) values ('00000000-0000-4000-8000-000000000101', 'healthy')$$, '42501', 'permission denied for table checks', 'anon cannot insert checks');
select throws_ok($$update vigil.checks set error = 'x'$$, '42501', 'permission denied for table checks', 'anon cannot update checks');
select throws_ok($$delete from vigil.checks$$, '42501', 'permission denied for table checks', 'anon cannot delete checks');
-- incidents
select throws_ok($$select * from vigil.incidents$$, '42501', 'permission denied for table incidents', 'anon cannot select incidents');
select throws_ok($$insert into vigil.incidents (service_id, kind, severity, title) values ('00000000-0000-4000-8000-000000000101', 'anon', 'info', 'x')$$, '42501', 'permission denied for table incidents', 'anon cannot insert incidents');
select throws_ok($$update vigil.incidents set acknowledged_at = now()$$, '42501', 'permission denied for table incidents', 'anon cannot update incidents (not even acknowledge)');
select throws_ok($$delete from vigil.incidents$$, '42501', 'permission denied for table incidents', 'anon cannot delete incidents');
-- heal_actions
select throws_ok($$select * from vigil.heal_actions$$, '42501', 'permission denied for table heal_actions', 'anon cannot select heal_actions');
select throws_ok($$insert into vigil.heal_actions (action_id, phase, strategy, attempt, reason, outcome) values (gen_random_uuid(), 'intent', 'restart', 1, 'anon', 'pending')$$, '42501', 'permission denied for table heal_actions', 'anon cannot insert heal_actions');
select throws_ok($$update vigil.heal_actions set detail = 'x'$$, '42501', 'permission denied for table heal_actions', 'anon cannot update heal_actions');
select throws_ok($$delete from vigil.heal_actions$$, '42501', 'permission denied for table heal_actions', 'anon cannot delete heal_actions');
-- alerts
select throws_ok($$select * from vigil.alerts$$, '42501', 'permission denied for table alerts', 'anon cannot select alerts');
select throws_ok($$insert into vigil.alerts (channel, recipient, severity, subject, body) values ('email', 'a@example.com', 'info', 's', 'b')$$, '42501', 'permission denied for table alerts', 'anon cannot insert alerts');
select throws_ok($$update vigil.alerts set acknowledged_at = now()$$, '42501', 'permission denied for table alerts', 'anon cannot update alerts (not even acknowledge)');
select throws_ok($$delete from vigil.alerts$$, '42501', 'permission denied for table alerts', 'anon cannot delete alerts');
-- invocations
select throws_ok($$select * from vigil.invocations$$, '42501', 'permission denied for table invocations', 'anon cannot select invocations');
select throws_ok($$insert into vigil.invocations (fn, transport) values ('anon', 'notify')$$, '42501', 'permission denied for table invocations', 'anon cannot insert invocations');
select throws_ok($$update vigil.invocations set error = 'x'$$, '42501', 'permission denied for table invocations', 'anon cannot update invocations');
select throws_ok($$delete from vigil.invocations$$, '42501', 'permission denied for table invocations', 'anon cannot delete invocations');
-- probe_config_schemas
select throws_ok($$select * from vigil.probe_config_schemas$$, '42501', 'permission denied for table probe_config_schemas', 'anon cannot select probe_config_schemas');
select throws_ok($$insert into vigil.probe_config_schemas (kind, schema) values ('http', '{}')$$, '42501', 'permission denied for table probe_config_schemas', 'anon cannot insert probe_config_schemas');
select throws_ok($$update vigil.probe_config_schemas set schema = '{}'$$, '42501', 'permission denied for table probe_config_schemas', 'anon cannot update probe_config_schemas');
select throws_ok($$delete from vigil.probe_config_schemas$$, '42501', 'permission denied for table probe_config_schemas', 'anon cannot delete probe_config_schemas');
-- status_transitions
select throws_ok($$select * from vigil.status_transitions$$, '42501', 'permission denied for table status_transitions', 'anon cannot select status_transitions');
select throws_ok($$insert into vigil.status_transitions (service_id, from_status, to_status) values ('00000000-0000-4000-8000-000000000101', 'degraded', 'healthy')$$, '42501', 'permission denied for table status_transitions', 'anon cannot insert status_transitions');
select throws_ok($$update vigil.status_transitions set reason = 'x'$$, '42501', 'permission denied for table status_transitions', 'anon cannot update status_transitions');
select throws_ok($$delete from vigil.status_transitions$$, '42501', 'permission denied for table status_transitions', 'anon cannot delete status_transitions');
-- metrics
select throws_ok($$select * from vigil.metrics$$, '42501', 'permission denied for table metrics', 'anon cannot select metrics');
select throws_ok($$insert into vigil.metrics (service_id, name, value) values ('00000000-0000-4000-8000-000000000101', 'error_rate', 1)$$, '42501', 'permission denied for table metrics', 'anon cannot insert metrics');
select throws_ok($$update vigil.metrics set value = 0$$, '42501', 'permission denied for table metrics', 'anon cannot update metrics');
select throws_ok($$delete from vigil.metrics$$, '42501', 'permission denied for table metrics', 'anon cannot delete metrics');
-- check_rollups
select throws_ok($$select * from vigil.check_rollups$$, '42501', 'permission denied for table check_rollups', 'anon cannot select check_rollups');
select throws_ok($$insert into vigil.check_rollups (service_id, bucket, checks, healthy, degraded, down) values ('00000000-0000-4000-8000-000000000101', '2020-01-01', 1, 1, 0, 0)$$, '42501', 'permission denied for table check_rollups', 'anon cannot insert check_rollups');
select throws_ok($$update vigil.check_rollups set down = 0$$, '42501', 'permission denied for table check_rollups', 'anon cannot update check_rollups (cannot polish the uptime)');
select throws_ok($$delete from vigil.check_rollups$$, '42501', 'permission denied for table check_rollups', 'anon cannot delete check_rollups');
-- cycles
select throws_ok($$select * from vigil.cycles$$, '42501', 'permission denied for table cycles', 'anon cannot select cycles');
select throws_ok($$insert into vigil.cycles (id, started_at, finished_at, duration_ms, services, healthy, degraded, down) values (gen_random_uuid(), now(), now(), 0, 0, 0, 0, 0)$$, '42501', 'permission denied for table cycles', 'anon cannot insert cycles (cannot fake a live watcher)');
select throws_ok($$update vigil.cycles set finished_at = now()$$, '42501', 'permission denied for table cycles', 'anon cannot update cycles');
select throws_ok($$delete from vigil.cycles$$, '42501', 'permission denied for table cycles', 'anon cannot delete cycles');
-- heartbeat_tokens
select throws_ok($$select * from vigil.heartbeat_tokens$$, '42501', 'permission denied for table heartbeat_tokens', 'anon cannot select heartbeat_tokens');
select throws_ok($$insert into vigil.heartbeat_tokens (service_id) values ('00000000-0000-4000-8000-000000000101')$$, '42501', 'permission denied for table heartbeat_tokens', 'anon cannot insert heartbeat_tokens');
select throws_ok($$update vigil.heartbeat_tokens set last_ping_at = now()$$, '42501', 'permission denied for table heartbeat_tokens', 'anon cannot update heartbeat_tokens');
select throws_ok($$delete from vigil.heartbeat_tokens$$, '42501', 'permission denied for table heartbeat_tokens', 'anon cannot delete heartbeat_tokens');
-- service_uptime
select throws_ok($$select * from vigil.service_uptime$$, '42501', 'permission denied for view service_uptime', 'anon cannot select service_uptime');
-- heal_policies
select throws_ok($$select * from vigil.heal_policies$$, '42501', 'permission denied for table heal_policies', 'anon cannot select heal_policies');
select throws_ok($$insert into vigil.heal_policies (environment, strategy, mode) values ('prod', 'anon', 'auto')$$, '42501', 'permission denied for table heal_policies', 'anon cannot insert heal_policies');
select throws_ok($$update vigil.heal_policies set mode = 'auto'$$, '42501', 'permission denied for table heal_policies', 'anon cannot update heal_policies');
select throws_ok($$delete from vigil.heal_policies$$, '42501', 'permission denied for table heal_policies', 'anon cannot delete heal_policies');
-- heal_approvals
select throws_ok($$select * from vigil.heal_approvals$$, '42501', 'permission denied for table heal_approvals', 'anon cannot select heal_approvals');
select throws_ok($$insert into vigil.heal_approvals (action_id, incident_id, service_id, strategy, plan) values (gen_random_uuid(), 1, '00000000-0000-4000-8000-000000000101', 'restart', '{}')$$, '42501', 'permission denied for table heal_approvals', 'anon cannot insert heal_approvals');
select throws_ok($$update vigil.heal_approvals set decision = 'approved'$$, '42501', 'permission denied for table heal_approvals', 'anon cannot update heal_approvals (cannot approve a heal)');
select throws_ok($$delete from vigil.heal_approvals$$, '42501', 'permission denied for table heal_approvals', 'anon cannot delete heal_approvals');
-- contacts
select throws_ok($$select * from vigil.contacts$$, '42501', 'permission denied for table contacts', 'anon cannot select contacts');
select throws_ok($$insert into vigil.contacts (name, role, channel, address) values ('anon', 'senior', 'sms', '+15550000')$$, '42501', 'permission denied for table contacts', 'anon cannot insert contacts');
select throws_ok($$update vigil.contacts set enabled = false$$, '42501', 'permission denied for table contacts', 'anon cannot update contacts');
select throws_ok($$delete from vigil.contacts$$, '42501', 'permission denied for table contacts', 'anon cannot delete contacts');
-- incident_log
select throws_ok($$select * from vigil.incident_log$$, '42501', 'permission denied for table incident_log', 'anon cannot select incident_log');
select throws_ok($$insert into vigil.incident_log (incident_id, level, message) values (1, 'info', 'anon')$$, '42501', 'permission denied for table incident_log', 'anon cannot insert incident_log');
select throws_ok($$update vigil.incident_log set message = 'x'$$, '42501', 'permission denied for table incident_log', 'anon cannot update incident_log');
select throws_ok($$delete from vigil.incident_log$$, '42501', 'permission denied for table incident_log', 'anon cannot delete incident_log');
-- services.heal_enabled is an operator's switch, not anon's.
select throws_ok($$update vigil.services set heal_enabled = false$$, '42501', 'permission denied for table services', 'anon cannot switch healing off for a service');

-- public_status: exactly name, status, uptime_24h, read as anon.
select is(
  (select array_agg(k order by k) from vigil.public_status p, jsonb_object_keys(to_jsonb(p)) k where p.name = 't010-enabled'),
  array['name', 'status', 'uptime_24h'],
  'anon reads public_status with exactly the columns name, status, uptime_24h'
);
-- 3 of the 4 checks in the last 24 h are not down; the 25-hour-old one is outside the window.
select results_eq(
  $$select name, status, uptime_24h from vigil.public_status where name = 't010-enabled'$$,
  $$values ('t010-enabled'::text, 'degraded'::text, 75.000::numeric)$$,
  'anon reads an enabled service''s name, status and 24 h uptime'
);
select is_empty($$select 1 from vigil.public_status where name = 't010-disabled'$$,
                'public_status does not show a disabled service');
reset role;
-- Cross-check as postgres: the view lists every enabled service and nothing else.
select set_eq($$select name from vigil.public_status$$, $$select name from vigil.services where enabled$$,
              'public_status lists exactly the enabled services');
set local role anon;

select throws_ok($$select vigil.invoke('status', '{}')$$, '42501', 'permission denied for function invoke',
                 'anon cannot execute vigil.invoke');
select throws_ok($$select vigil.sweep_invocations()$$, '42501', 'permission denied for function sweep_invocations',
                 'anon cannot execute vigil.sweep_invocations');
select throws_ok($$select vigil.record_cycle('{}')$$, '42501', 'permission denied for function record_cycle',
                 'anon cannot execute vigil.record_cycle');
select throws_ok($$select vigil.record_heartbeat((select token from vigil.heartbeat_tokens limit 1))$$, '42501',
                 'permission denied for table heartbeat_tokens', 'anon cannot read a heartbeat token to replay it');
select throws_ok($$select vigil.record_heartbeat('0000')$$, '42501', 'permission denied for function record_heartbeat',
                 'anon cannot execute vigil.record_heartbeat (pings go through the heartbeat function)');
select throws_ok($$select * from vigil.heartbeat_verdict('00000000-0000-4000-8000-000000000104')$$, '42501',
                 'permission denied for function heartbeat_verdict', 'anon cannot execute vigil.heartbeat_verdict');
select throws_ok($$select vigil.uptime('00000000-0000-4000-8000-000000000101', interval '1 day')$$, '42501',
                 'permission denied for function uptime', 'anon cannot execute vigil.uptime');
select throws_ok($$select vigil.json_schema_errors('{}', '{}')$$, '42501',
                 'permission denied for function json_schema_errors', 'anon cannot execute vigil.json_schema_errors');
select throws_ok($$select vigil.heal_guard('00000000-0000-4000-8000-000000000101', 'restart')$$, '42501',
                 'permission denied for function heal_guard', 'anon cannot execute vigil.heal_guard');
select throws_ok($$select * from vigil.claim_incident(1, 'anon')$$, '42501',
                 'permission denied for function claim_incident', 'anon cannot execute vigil.claim_incident');
select throws_ok($$select vigil.release_incident(1, 'anon')$$, '42501',
                 'permission denied for function release_incident', 'anon cannot execute vigil.release_incident');
select throws_ok($$select vigil.escalate(1, 4, 'anon')$$, '42501',
                 'permission denied for function escalate', 'anon cannot execute vigil.escalate (cannot page anyone)');
select throws_ok($$select vigil.retry_heals()$$, '42501',
                 'permission denied for function retry_heals', 'anon cannot execute vigil.retry_heals');
select throws_ok($$select * from vigil.verify_heal_audit()$$, '42501',
                 'permission denied for function verify_heal_audit', 'anon cannot execute vigil.verify_heal_audit');
select ok(not vigil.is_operator(), 'anon is not an operator');
reset role;

-- Nothing anon tried changed anything.
select results_eq(
  $$select (select count(*) from vigil.services where name like 't010-%'),
           (select count(*) from vigil.checks where service_id = '00000000-0000-4000-8000-000000000101'),
           (select count(*) from vigil.invocations where fn = 't010-fn')$$,
  $$values (3::bigint, 5::bigint, 1::bigint)$$,
  'anon''s attempts left the seeded rows as they were'
);
select results_eq(
  $$select (select count(*) from vigil.status_transitions where service_id = '00000000-0000-4000-8000-000000000101'),
           (select count(*) from vigil.metrics where service_id = '00000000-0000-4000-8000-000000000101'),
           (select sum(checks) from vigil.check_rollups where service_id = '00000000-0000-4000-8000-000000000101'),
           (select count(*) from vigil.cycles where id = '00000000-0000-4000-8000-000000000105'),
           (select pings from vigil.heartbeat_tokens where service_id = '00000000-0000-4000-8000-000000000104')$$,
  $$values (1::bigint, 1::bigint, 5::bigint, 1::bigint, 0::bigint)$$,
  'anon''s attempts left the new tables as they were'
);
select results_eq(
  $$select (select mode::text from vigil.heal_policies where environment = 'prod' and strategy = 'purge_cdn'),
           (select decision from vigil.heal_approvals where action_id = '00000000-0000-4000-8000-000000000106'),
           (select enabled from vigil.contacts where address = '+15550010'),
           (select count(*) from vigil.incident_log l join vigil.incidents i on i.id = l.incident_id where i.title = 't010 slow'),
           (select bool_and(heal_enabled) from vigil.services where name like 't010-%')$$,
  $$values ('approval'::text, null::text, true, 1::bigint, true)$$,
  'anon''s attempts left the heal tables as they were: policy, undecided approval, contact, log, healing on'
);

select * from finish();
rollback;
