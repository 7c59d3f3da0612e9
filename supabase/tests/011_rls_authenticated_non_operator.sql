-- A signed-in user who is not an operator (no app_metadata.role, 'viewer', or 'devops' only in
-- the user-editable user_metadata) sees no row of any table and changes nothing. Reads are
-- filtered by RLS (zero rows, no error); inserts and deletes are not granted at all; the
-- granted column updates (kill switch, dry run, acknowledgements, a service's heal switch, a heal
-- approval's decision) match no row, so a non-operator's approval asks auto-heal for nothing.
begin;
set search_path = extensions, public;
select plan(129);

insert into vigil.services (id, name, kind, config) values
  ('00000000-0000-4000-8000-000000000111', 't011-api', 'http', '{"url":"https://t011.example.com"}'),
  ('00000000-0000-4000-8000-000000000114', 't011-ping', 'heartbeat', '{"source":"ping","period_seconds":60}');
insert into vigil.checks (service_id, status) values ('00000000-0000-4000-8000-000000000111', 'healthy');
insert into vigil.incidents (service_id, kind, severity, title)
values ('00000000-0000-4000-8000-000000000111', 'latency', 'warning', 't011 slow');
insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome)
select '00000000-0000-4000-8000-000000000112', 'intent', id, service_id, 'restart', 1, 't011', 'pending'
  from vigil.incidents where title = 't011 slow';
insert into vigil.alerts (incident_id, channel, recipient, severity, subject, body)
select id, 'email', 't011@example.com', 'warning', 't011', 't011' from vigil.incidents where title = 't011 slow';
insert into vigil.invocations (fn, transport) values ('t011-fn', 'notify');
insert into vigil.status_transitions (service_id, from_status, to_status, reason)
values ('00000000-0000-4000-8000-000000000111', 'unknown', 'healthy', 't011');
insert into vigil.metrics (service_id, name, value) values ('00000000-0000-4000-8000-000000000111', 'error_rate', 0.5);
insert into vigil.cycles (id, started_at, finished_at, duration_ms, services, healthy, degraded, down)
values ('00000000-0000-4000-8000-000000000115', now(), now(), 0, 1, 1, 0, 0);
insert into vigil.heal_policies (environment, strategy, mode) values ('prod', 'renew_certificate', 'approval');
insert into vigil.heal_approvals (action_id, incident_id, service_id, strategy, plan)
select '00000000-0000-4000-8000-000000000116', id, service_id, 'restart', '{"action":"restart"}'
  from vigil.incidents where title = 't011 slow';
insert into vigil.contacts (name, role, channel, address, environment) values ('t011 on call', 'on_call', 'sms', '+15550011', 'prod');
insert into vigil.incident_log (incident_id, level, message)
select id, 'info', 't011 log' from vigil.incidents where title = 't011 slow';
-- The invocations queued so far (the incident's heal request); a non-operator's approval must add none.
create temp table invocations_before as
select id from vigil.invocations where fn = 'auto-heal' and body ->> 'incident_id' = (select id::text from vigil.incidents where title = 't011 slow');

create temp table settings_before as select * from vigil.settings;

select is_empty(
  $$select t from (values
      ('settings', (select count(*) from vigil.settings)), ('services', (select count(*) from vigil.services)),
      ('checks', (select count(*) from vigil.checks)), ('incidents', (select count(*) from vigil.incidents)),
      ('heal_actions', (select count(*) from vigil.heal_actions)), ('alerts', (select count(*) from vigil.alerts)),
      ('invocations', (select count(*) from vigil.invocations)),
      ('probe_config_schemas', (select count(*) from vigil.probe_config_schemas)),
      ('status_transitions', (select count(*) from vigil.status_transitions)), ('metrics', (select count(*) from vigil.metrics)),
      ('check_rollups', (select count(*) from vigil.check_rollups)), ('cycles', (select count(*) from vigil.cycles)),
      ('heartbeat_tokens', (select count(*) from vigil.heartbeat_tokens)),
      ('service_uptime', (select count(*) from vigil.service_uptime)),
      ('heal_policies', (select count(*) from vigil.heal_policies)), ('heal_approvals', (select count(*) from vigil.heal_approvals)),
      ('contacts', (select count(*) from vigil.contacts)), ('incident_log', (select count(*) from vigil.incident_log)),
      ('heal_actions', (select count(*) from vigil.heal_actions))) v(t, n)
     where n = 0$$,
  'precondition: every vigil table has rows (so zero rows below is RLS, not an empty table)'
);

-- Persona 1: authenticated, no app_metadata.role.
set local role authenticated;
set local request.jwt.claims = '{"sub":"00000000-0000-4000-8000-0000000001a1","role":"authenticated","app_metadata":{"provider":"email"}}';
select ok(not vigil.is_operator(), 'a user without app_metadata.role is not an operator');
select is((select count(*) from vigil.settings), 0::bigint, 'user without a role sees no settings');
select is((select count(*) from vigil.services), 0::bigint, 'user without a role sees no services');
select is((select count(*) from vigil.checks), 0::bigint, 'user without a role sees no checks');
select is((select count(*) from vigil.incidents), 0::bigint, 'user without a role sees no incidents');
select is((select count(*) from vigil.heal_actions), 0::bigint, 'user without a role sees no heal_actions');
select is((select count(*) from vigil.alerts), 0::bigint, 'user without a role sees no alerts');
select is((select count(*) from vigil.invocations), 0::bigint, 'user without a role sees no invocations');
select is((select count(*) from vigil.probe_config_schemas), 0::bigint, 'user without a role sees no probe_config_schemas');
select is((select count(*) from vigil.status_transitions), 0::bigint, 'user without a role sees no status_transitions');
select is((select count(*) from vigil.metrics), 0::bigint, 'user without a role sees no metrics');
select is((select count(*) from vigil.check_rollups), 0::bigint, 'user without a role sees no check_rollups');
select is((select count(*) from vigil.cycles), 0::bigint, 'user without a role sees no cycles');
select is((select count(*) from vigil.heartbeat_tokens), 0::bigint, 'user without a role sees no heartbeat_tokens');
select is((select count(*) from vigil.service_uptime), 0::bigint, 'user without a role sees no service_uptime');
select is((select count(*) from vigil.heal_policies), 0::bigint, 'user without a role sees no heal_policies');
select is((select count(*) from vigil.heal_approvals), 0::bigint, 'user without a role sees no heal_approvals');
select is((select count(*) from vigil.contacts), 0::bigint, 'user without a role sees no contacts');
select is((select count(*) from vigil.incident_log), 0::bigint, 'user without a role sees no incident_log');
-- verify_heal_audit runs as the caller: it walks the rows RLS shows, so it tells a non-operator
-- neither how many heal actions there were nor which one is broken.
select results_eq($$select intact, rows_checked, first_broken_id from vigil.verify_heal_audit()$$,
                  $$values (true, 0::bigint, null::bigint)$$, 'user without a role learns nothing from verify_heal_audit');
with u as (update vigil.settings set kill_switch = true returning 1)
select is(count(*)::int, 0, 'user without a role: updating kill_switch affects 0 rows') from u;

-- Persona 2: app_metadata.role = 'viewer'.
set local request.jwt.claims = '{"sub":"00000000-0000-4000-8000-0000000001b1","role":"authenticated","app_metadata":{"role":"viewer"}}';
select ok(not vigil.is_operator(), 'a viewer is not an operator');
select is((select count(*) from vigil.settings), 0::bigint, 'viewer sees no settings');
select is((select count(*) from vigil.services), 0::bigint, 'viewer sees no services');
select is((select count(*) from vigil.checks), 0::bigint, 'viewer sees no checks');
select is((select count(*) from vigil.incidents), 0::bigint, 'viewer sees no incidents');
select is((select count(*) from vigil.heal_actions), 0::bigint, 'viewer sees no heal_actions');
select is((select count(*) from vigil.alerts), 0::bigint, 'viewer sees no alerts');
select is((select count(*) from vigil.invocations), 0::bigint, 'viewer sees no invocations');
select is((select count(*) from vigil.probe_config_schemas), 0::bigint, 'viewer sees no probe_config_schemas');
select is((select count(*) from vigil.status_transitions), 0::bigint, 'viewer sees no status_transitions');
select is((select count(*) from vigil.metrics), 0::bigint, 'viewer sees no metrics');
select is((select count(*) from vigil.check_rollups), 0::bigint, 'viewer sees no check_rollups');
select is((select count(*) from vigil.cycles), 0::bigint, 'viewer sees no cycles');
select is((select count(*) from vigil.heartbeat_tokens), 0::bigint, 'viewer sees no heartbeat_tokens');
select is((select count(*) from vigil.service_uptime), 0::bigint, 'viewer sees no service_uptime');
select is((select count(*) from vigil.heal_policies), 0::bigint, 'viewer sees no heal_policies');
select is((select count(*) from vigil.heal_approvals), 0::bigint, 'viewer sees no heal_approvals');
select is((select count(*) from vigil.contacts), 0::bigint, 'viewer sees no contacts');
select is((select count(*) from vigil.incident_log), 0::bigint, 'viewer sees no incident_log');
-- verify_heal_audit runs as the caller: it walks the rows RLS shows, so it tells a non-operator
-- neither how many heal actions there were nor which one is broken.
select results_eq($$select intact, rows_checked, first_broken_id from vigil.verify_heal_audit()$$,
                  $$values (true, 0::bigint, null::bigint)$$, 'viewer learns nothing from verify_heal_audit');

with u as (update vigil.settings set kill_switch = true returning 1)
select is(count(*)::int, 0, 'viewer: updating kill_switch affects 0 rows') from u;
with u as (update vigil.settings set dry_run = true returning 1)
select is(count(*)::int, 0, 'viewer: updating dry_run affects 0 rows') from u;
with u as (update vigil.incidents set acknowledged_at = now() returning 1)
select is(count(*)::int, 0, 'viewer: acknowledging incidents affects 0 rows') from u;
with u as (update vigil.alerts set acknowledged_at = now() returning 1)
select is(count(*)::int, 0, 'viewer: acknowledging alerts affects 0 rows') from u;
select throws_ok($$update vigil.settings set api_p95_warning_ms = 1$$, '42501', 'permission denied for table settings',
                 'viewer cannot update a threshold column');
with u as (update vigil.heal_approvals set decision = 'approved' returning 1)
select is(count(*)::int, 0, 'viewer: approving a heal affects 0 rows') from u;
with u as (update vigil.services set heal_enabled = false returning 1)
select is(count(*)::int, 0, 'viewer: switching healing off for services affects 0 rows') from u;
select throws_ok($$update vigil.heal_policies set mode = 'auto'$$, '42501', 'permission denied for table heal_policies',
                 'viewer cannot update heal_policies');
select throws_ok($$update vigil.contacts set enabled = false$$, '42501', 'permission denied for table contacts',
                 'viewer cannot update contacts');
select throws_ok($$update vigil.incident_log set message = 'x'$$, '42501', 'permission denied for table incident_log',
                 'viewer cannot update incident_log');
select throws_ok($$update vigil.heal_approvals set decided_by = '00000000-0000-4000-8000-0000000001b1'$$, '42501',
                 'permission denied for table heal_approvals', 'viewer cannot update heal_approvals.decided_by');
select throws_ok($$insert into vigil.heal_policies (environment, strategy, mode) values ('prod', 'viewer', 'auto')$$, '42501', 'permission denied for table heal_policies', 'viewer cannot insert heal_policies');
select throws_ok($$insert into vigil.heal_approvals (action_id, incident_id, service_id, strategy, plan) values (gen_random_uuid(), 1, '00000000-0000-4000-8000-000000000111', 'restart', '{}')$$, '42501', 'permission denied for table heal_approvals', 'viewer cannot insert heal_approvals');
select throws_ok($$insert into vigil.contacts (name, role, channel, address) values ('viewer', 'senior', 'sms', '+15550000')$$, '42501', 'permission denied for table contacts', 'viewer cannot insert contacts (cannot page themselves in)');
select throws_ok($$insert into vigil.incident_log (incident_id, level, message) values (1, 'info', 'viewer')$$, '42501', 'permission denied for table incident_log', 'viewer cannot insert incident_log');
select throws_ok($$delete from vigil.heal_policies$$, '42501', 'permission denied for table heal_policies', 'viewer cannot delete heal_policies');
select throws_ok($$delete from vigil.heal_approvals$$, '42501', 'permission denied for table heal_approvals', 'viewer cannot delete heal_approvals');
select throws_ok($$delete from vigil.contacts$$, '42501', 'permission denied for table contacts', 'viewer cannot delete contacts');
select throws_ok($$delete from vigil.incident_log$$, '42501', 'permission denied for table incident_log', 'viewer cannot delete incident_log');
select throws_ok($$select vigil.heal_guard('00000000-0000-4000-8000-000000000111', 'restart')$$, '42501',
                 'permission denied for function heal_guard', 'viewer cannot execute vigil.heal_guard');
select throws_ok($$select * from vigil.claim_incident(1, 'viewer')$$, '42501',
                 'permission denied for function claim_incident', 'viewer cannot execute vigil.claim_incident');
select throws_ok($$select vigil.release_incident(1, 'viewer')$$, '42501',
                 'permission denied for function release_incident', 'viewer cannot execute vigil.release_incident');
select throws_ok($$select vigil.escalate(1, 4, 'viewer')$$, '42501',
                 'permission denied for function escalate', 'viewer cannot execute vigil.escalate');
select throws_ok($$select vigil.retry_heals()$$, '42501',
                 'permission denied for function retry_heals', 'viewer cannot execute vigil.retry_heals');

select throws_ok($$insert into vigil.settings (environment) values ('dev')$$, '42501', 'permission denied for table settings', 'viewer cannot insert settings');
select throws_ok($$insert into vigil.services (name, kind) values ('t011-viewer', 'http')$$, '42501', 'permission denied for table services', 'viewer cannot insert services');
select throws_ok($$insert into vigil.checks (service_id, status) values ('00000000-0000-4000-8000-000000000111', 'healthy')$$, '42501', 'permission denied for table checks', 'viewer cannot insert checks');
select throws_ok($$insert into vigil.incidents (service_id, kind, severity, title) values ('00000000-0000-4000-8000-000000000111', 'viewer', 'info', 'x')$$, '42501', 'permission denied for table incidents', 'viewer cannot insert incidents');
select throws_ok($$insert into vigil.heal_actions (action_id, phase, strategy, attempt, reason, outcome) values (gen_random_uuid(), 'intent', 'restart', 1, 'viewer', 'pending')$$, '42501', 'permission denied for table heal_actions', 'viewer cannot insert heal_actions');
select throws_ok($$insert into vigil.alerts (channel, recipient, severity, subject, body) values ('email', 'v@example.com', 'info', 's', 'b')$$, '42501', 'permission denied for table alerts', 'viewer cannot insert alerts');
select throws_ok($$insert into vigil.invocations (fn, transport) values ('viewer', 'notify')$$, '42501', 'permission denied for table invocations', 'viewer cannot insert invocations');

select throws_ok($$delete from vigil.settings$$, '42501', 'permission denied for table settings', 'viewer cannot delete settings');
select throws_ok($$delete from vigil.services$$, '42501', 'permission denied for table services', 'viewer cannot delete services');
select throws_ok($$delete from vigil.checks$$, '42501', 'permission denied for table checks', 'viewer cannot delete checks');
select throws_ok($$delete from vigil.incidents$$, '42501', 'permission denied for table incidents', 'viewer cannot delete incidents');
select throws_ok($$delete from vigil.heal_actions$$, '42501', 'permission denied for table heal_actions', 'viewer cannot delete heal_actions');
select throws_ok($$delete from vigil.alerts$$, '42501', 'permission denied for table alerts', 'viewer cannot delete alerts');
select throws_ok($$delete from vigil.invocations$$, '42501', 'permission denied for table invocations', 'viewer cannot delete invocations');
select throws_ok($$insert into vigil.status_transitions (service_id, from_status, to_status) values ('00000000-0000-4000-8000-000000000111', 'healthy', 'down')$$, '42501', 'permission denied for table status_transitions', 'viewer cannot insert status_transitions');
select throws_ok($$insert into vigil.metrics (service_id, name, value) values ('00000000-0000-4000-8000-000000000111', 'error_rate', 1)$$, '42501', 'permission denied for table metrics', 'viewer cannot insert metrics');
select throws_ok($$insert into vigil.check_rollups (service_id, bucket, checks, healthy, degraded, down) values ('00000000-0000-4000-8000-000000000111', '2020-01-01', 1, 1, 0, 0)$$, '42501', 'permission denied for table check_rollups', 'viewer cannot insert check_rollups');
select throws_ok($$insert into vigil.cycles (id, started_at, finished_at, duration_ms, services, healthy, degraded, down) values (gen_random_uuid(), now(), now(), 0, 0, 0, 0, 0)$$, '42501', 'permission denied for table cycles', 'viewer cannot insert cycles');
select throws_ok($$insert into vigil.heartbeat_tokens (service_id) values ('00000000-0000-4000-8000-000000000111')$$, '42501', 'permission denied for table heartbeat_tokens', 'viewer cannot insert heartbeat_tokens');
select throws_ok($$insert into vigil.probe_config_schemas (kind, schema) values ('http', '{}')$$, '42501', 'permission denied for table probe_config_schemas', 'viewer cannot insert probe_config_schemas');
select throws_ok($$update vigil.probe_config_schemas set schema = '{}'$$, '42501', 'permission denied for table probe_config_schemas', 'viewer cannot update probe_config_schemas');
select throws_ok($$update vigil.check_rollups set down = 0$$, '42501', 'permission denied for table check_rollups', 'viewer cannot update check_rollups');
select throws_ok($$update vigil.heartbeat_tokens set last_ping_at = now()$$, '42501', 'permission denied for table heartbeat_tokens', 'viewer cannot update heartbeat_tokens');
select throws_ok($$delete from vigil.status_transitions$$, '42501', 'permission denied for table status_transitions', 'viewer cannot delete status_transitions');
select throws_ok($$delete from vigil.metrics$$, '42501', 'permission denied for table metrics', 'viewer cannot delete metrics');
select throws_ok($$delete from vigil.check_rollups$$, '42501', 'permission denied for table check_rollups', 'viewer cannot delete check_rollups');
select throws_ok($$delete from vigil.cycles$$, '42501', 'permission denied for table cycles', 'viewer cannot delete cycles');
select throws_ok($$delete from vigil.heartbeat_tokens$$, '42501', 'permission denied for table heartbeat_tokens', 'viewer cannot delete heartbeat_tokens');
select throws_ok($$delete from vigil.probe_config_schemas$$, '42501', 'permission denied for table probe_config_schemas', 'viewer cannot delete probe_config_schemas');

select results_eq(
  $$select name, status from vigil.public_status where name = 't011-api'$$,
  $$values ('t011-api'::text, 'unknown'::text)$$,
  'viewer can read public_status'
);
select throws_ok($$select vigil.invoke('status', '{}')$$, '42501', 'permission denied for function invoke',
                 'viewer cannot execute vigil.invoke');
-- uptime runs as the caller: for a non-operator RLS hides the rollups, so there is nothing to count.
select is(vigil.uptime('00000000-0000-4000-8000-000000000111', interval '1 day'), null::numeric,
          'viewer gets no uptime from vigil.uptime (RLS hides the rollups)');
select throws_ok($$select vigil.record_cycle('{}')$$, '42501', 'permission denied for function record_cycle',
                 'viewer cannot execute vigil.record_cycle');
select throws_ok($$select vigil.record_heartbeat('0000')$$, '42501', 'permission denied for function record_heartbeat',
                 'viewer cannot execute vigil.record_heartbeat');
select throws_ok($$select * from vigil.heartbeat_verdict('00000000-0000-4000-8000-000000000114')$$, '42501',
                 'permission denied for function heartbeat_verdict', 'viewer cannot execute vigil.heartbeat_verdict');

-- Persona 3: 'devops' only in user_metadata, which the user can edit themselves.
set local request.jwt.claims = '{"sub":"00000000-0000-4000-8000-0000000001c1","role":"authenticated","app_metadata":{"provider":"email"},"user_metadata":{"role":"devops"}}';
select ok(not vigil.is_operator(), 'devops in user_metadata does not make an operator');
select is((select count(*) from vigil.settings), 0::bigint, 'user_metadata devops sees no settings');
select is((select count(*) from vigil.services), 0::bigint, 'user_metadata devops sees no services');
select is((select count(*) from vigil.checks), 0::bigint, 'user_metadata devops sees no checks');
select is((select count(*) from vigil.incidents), 0::bigint, 'user_metadata devops sees no incidents');
select is((select count(*) from vigil.heal_actions), 0::bigint, 'user_metadata devops sees no heal_actions');
select is((select count(*) from vigil.alerts), 0::bigint, 'user_metadata devops sees no alerts');
select is((select count(*) from vigil.invocations), 0::bigint, 'user_metadata devops sees no invocations');
select is((select count(*) from vigil.probe_config_schemas), 0::bigint, 'user_metadata devops sees no probe_config_schemas');
select is((select count(*) from vigil.status_transitions), 0::bigint, 'user_metadata devops sees no status_transitions');
select is((select count(*) from vigil.metrics), 0::bigint, 'user_metadata devops sees no metrics');
select is((select count(*) from vigil.check_rollups), 0::bigint, 'user_metadata devops sees no check_rollups');
select is((select count(*) from vigil.cycles), 0::bigint, 'user_metadata devops sees no cycles');
select is((select count(*) from vigil.heartbeat_tokens), 0::bigint, 'user_metadata devops sees no heartbeat_tokens');
select is((select count(*) from vigil.service_uptime), 0::bigint, 'user_metadata devops sees no service_uptime');
select is((select count(*) from vigil.heal_policies), 0::bigint, 'user_metadata devops sees no heal_policies');
select is((select count(*) from vigil.heal_approvals), 0::bigint, 'user_metadata devops sees no heal_approvals');
select is((select count(*) from vigil.contacts), 0::bigint, 'user_metadata devops sees no contacts');
select is((select count(*) from vigil.incident_log), 0::bigint, 'user_metadata devops sees no incident_log');
-- verify_heal_audit runs as the caller: it walks the rows RLS shows, so it tells a non-operator
-- neither how many heal actions there were nor which one is broken.
select results_eq($$select intact, rows_checked, first_broken_id from vigil.verify_heal_audit()$$,
                  $$values (true, 0::bigint, null::bigint)$$, 'user_metadata devops learns nothing from verify_heal_audit');
with u as (update vigil.settings set kill_switch = true returning 1)
select is(count(*)::int, 0, 'user_metadata devops: updating kill_switch affects 0 rows') from u;
with u as (update vigil.heal_approvals set decision = 'approved' returning 1)
select is(count(*)::int, 0, 'user_metadata devops: approving a heal affects 0 rows') from u;
reset role;

-- Nothing changed.
select set_eq(
  $$select environment, kill_switch, dry_run, updated_at, updated_by from vigil.settings$$,
  $$select environment, kill_switch, dry_run, updated_at, updated_by from settings_before$$,
  'settings (kill_switch, dry_run, updated_at, updated_by) are unchanged after non-operators tried'
);
select results_eq(
  $$select i.acknowledged_at, i.acknowledged_by, a.acknowledged_at, a.acknowledged_by
      from vigil.incidents i join vigil.alerts a on a.incident_id = i.id where i.title = 't011 slow'$$,
  $$values (null::timestamptz, null::uuid, null::timestamptz, null::uuid)$$,
  'the seeded incident and alert are still unacknowledged'
);
select results_eq(
  $$select (select count(*) from vigil.services where name like 't011-%'), (select count(*) from vigil.invocations where fn = 't011-fn'),
           (select count(*) from vigil.heal_actions where action_id = '00000000-0000-4000-8000-000000000112')$$,
  $$values (2::bigint, 1::bigint, 1::bigint)$$,
  'the seeded rows are all still there'
);
select results_eq(
  $$select (select count(*) from vigil.status_transitions where service_id = '00000000-0000-4000-8000-000000000111'),
           (select count(*) from vigil.metrics where service_id = '00000000-0000-4000-8000-000000000111'),
           (select sum(checks) from vigil.check_rollups where service_id = '00000000-0000-4000-8000-000000000111'),
           (select count(*) from vigil.cycles where id = '00000000-0000-4000-8000-000000000115'),
           (select count(*) from vigil.heartbeat_tokens where service_id = '00000000-0000-4000-8000-000000000114'),
           (select count(*) from vigil.probe_config_schemas)$$,
  $$values (1::bigint, 1::bigint, 1::bigint, 1::bigint, 1::bigint, 15::bigint)$$,
  'the seeded rows of the new tables are all still there'
);
select results_eq(
  $$select (select mode::text from vigil.heal_policies where environment = 'prod' and strategy = 'renew_certificate'),
           (select decision from vigil.heal_approvals where action_id = '00000000-0000-4000-8000-000000000116'),
           (select decided_by from vigil.heal_approvals where action_id = '00000000-0000-4000-8000-000000000116'),
           (select enabled from vigil.contacts where address = '+15550011'),
           (select count(*) from vigil.incident_log l join vigil.incidents i on i.id = l.incident_id where i.title = 't011 slow'),
           (select bool_and(heal_enabled) from vigil.services where name like 't011-%')$$,
  $$values ('approval'::text, null::text, null::uuid, true, 1::bigint, true)$$,
  'the heal tables are as seeded: policy, undecided approval, contact, log, healing on'
);
select is_empty(
  $$select id from vigil.invocations
     where fn = 'auto-heal' and body ->> 'incident_id' = (select id::text from vigil.incidents where title = 't011 slow')
    except select id from invocations_before$$,
  'no non-operator''s attempt queued an auto-heal invocation'
);

select * from finish();
rollback;
