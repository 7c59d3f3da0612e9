-- service_role (the edge functions) bypasses RLS and reads and writes every table, except that
-- the heal audit only grows: insert and select, never update or delete. It may call
-- vigil.invoke, vigil.sweep_invocations and the heal functions. Its writes are not stamped: it names
-- the human itself.
begin;
set search_path = extensions, public;
select plan(113);

insert into vigil.services (id, name, kind, config) values
  ('00000000-0000-4000-8000-000000000131', 't013-base', 'http', '{"url":"https://t013.example.com"}');
insert into vigil.incidents (service_id, kind, severity, title)
values ('00000000-0000-4000-8000-000000000131', 'base', 'warning', 't013 base');

set local role service_role;
set local request.jwt.claims = '{"role":"service_role"}';

-- services
select lives_ok($$insert into vigil.services (id, name, kind, config) values ('00000000-0000-4000-8000-000000000132', 't013-crud', 'postgres', '{"connection_secret":"T013_DB_URL"}')$$,
                'service_role can insert services');
select results_eq($$select name, kind::text from vigil.services where id = '00000000-0000-4000-8000-000000000132'$$,
                  $$values ('t013-crud'::text, 'postgres'::text)$$, 'service_role can select services');
select lives_ok($$update vigil.services set status = 'healthy', enabled = false where id = '00000000-0000-4000-8000-000000000132'$$,
                'service_role can update services');
select results_eq($$select status::text, enabled from vigil.services where id = '00000000-0000-4000-8000-000000000132'$$,
                  $$values ('healthy'::text, false)$$, 'the services update took effect');
select lives_ok($$delete from vigil.services where id = '00000000-0000-4000-8000-000000000132'$$, 'service_role can delete services');
select is_empty($$select 1 from vigil.services where id = '00000000-0000-4000-8000-000000000132'$$, 'the services row is gone');

-- checks
select lives_ok($$insert into vigil.checks (service_id, status, response_ms, error) values ('00000000-0000-4000-8000-000000000131', 'down', 12.5, 't013 refused')$$,
                'service_role can insert checks');
select results_eq($$select status::text, response_ms from vigil.checks where error = 't013 refused'$$,
                  $$values ('down'::text, 12.500::numeric)$$, 'service_role can select checks');
select lives_ok($$update vigil.checks set response_ms = 99 where error = 't013 refused'$$, 'service_role can update checks');
select results_eq($$select response_ms from vigil.checks where error = 't013 refused'$$, $$values (99.000::numeric)$$,
                  'the checks update took effect');
select lives_ok($$delete from vigil.checks where error = 't013 refused'$$, 'service_role can delete checks');
select is_empty($$select 1 from vigil.checks where error = 't013 refused'$$, 'the checks row is gone');

-- incidents
select lives_ok($$insert into vigil.incidents (service_id, kind, severity, title) values ('00000000-0000-4000-8000-000000000131', 'crud', 'critical', 't013 crud')$$,
                'service_role can insert incidents');
select results_eq($$select status::text, severity::text from vigil.incidents where title = 't013 crud'$$,
                  $$values ('open'::text, 'critical'::text)$$, 'service_role can select incidents');
select lives_ok($$update vigil.incidents set status = 'resolved', resolved_at = now() where title = 't013 crud'$$,
                'service_role can update incidents');
select results_eq($$select status::text, resolved_at from vigil.incidents where title = 't013 crud'$$,
                  $$values ('resolved'::text, now())$$, 'the incidents update took effect');
select lives_ok($$delete from vigil.incidents where title = 't013 crud'$$, 'service_role can delete incidents');
select is_empty($$select 1 from vigil.incidents where title = 't013 crud'$$, 'the incidents row is gone');

-- alerts
select lives_ok($$insert into vigil.alerts (incident_id, channel, recipient, severity, subject, body) select id, 'sms', '+15550100', 'critical', 't013', 'b' from vigil.incidents where title = 't013 base'$$,
                'service_role can insert alerts');
select results_eq($$select channel::text, status::text from vigil.alerts where recipient = '+15550100'$$,
                  $$values ('sms'::text, 'pending'::text)$$, 'service_role can select alerts');
select lives_ok($$update vigil.alerts set status = 'sent', sent_at = now(), attempts = 1 where recipient = '+15550100'$$,
                'service_role can update alerts');
select results_eq($$select status::text, attempts from vigil.alerts where recipient = '+15550100'$$,
                  $$values ('sent'::text, 1)$$, 'the alerts update took effect');
select lives_ok($$delete from vigil.alerts where recipient = '+15550100'$$, 'service_role can delete alerts');
select is_empty($$select 1 from vigil.alerts where recipient = '+15550100'$$, 'the alerts row is gone');

-- settings: there is one row per environment, so delete first, then insert it back.
select lives_ok($$delete from vigil.settings where environment = 'qa'$$, 'service_role can delete settings');
select is_empty($$select 1 from vigil.settings where environment = 'qa'$$, 'the qa settings row is gone');
select lives_ok($$insert into vigil.settings (environment, kill_switch) values ('qa', true)$$, 'service_role can insert settings');
select results_eq($$select kill_switch, api_p95_warning_ms from vigil.settings where environment = 'qa'$$,
                  $$values (true, 200)$$, 'service_role can select settings (the new row has the defaults)');
select lives_ok($$update vigil.settings set api_p95_warning_ms = 250, api_p95_critical_ms = 600 where environment = 'qa'$$,
                'service_role can update any settings column');
select results_eq($$select api_p95_warning_ms, api_p95_critical_ms, updated_by from vigil.settings where environment = 'qa'$$,
                  $$values (250, 600, null::uuid)$$, 'the settings update took effect and nothing stamped updated_by');

-- invocations
select lives_ok($$insert into vigil.invocations (fn, transport) values ('t013-fn', 'notify')$$, 'service_role can insert invocations');
select results_eq($$select state from vigil.invocations where fn = 't013-fn'$$, $$values ('pending'::text)$$,
                  'service_role can select invocations');
select lives_ok($$update vigil.invocations set state = 'succeeded', status_code = 200, completed_at = now() where fn = 't013-fn'$$,
                'service_role can update invocations');
select results_eq($$select state, status_code from vigil.invocations where fn = 't013-fn'$$, $$values ('succeeded'::text, 200)$$,
                  'the invocations update took effect');
select lives_ok($$delete from vigil.invocations where fn = 't013-fn'$$, 'service_role can delete invocations');
select is_empty($$select 1 from vigil.invocations where fn = 't013-fn'$$, 'the invocations row is gone');

-- heal_actions: append only.
select lives_ok(
  $$insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome)
    select '00000000-0000-4000-8000-000000000133', 'intent', id, service_id, 'restart', 1, 't013', 'pending'
      from vigil.incidents where title = 't013 base'$$,
  'service_role can insert heal_actions');
select results_eq($$select phase::text, outcome::text from vigil.heal_actions where action_id = '00000000-0000-4000-8000-000000000133'$$,
                  $$values ('intent'::text, 'pending'::text)$$, 'service_role can select heal_actions');
select throws_ok($$update vigil.heal_actions set outcome = 'succeeded' where action_id = '00000000-0000-4000-8000-000000000133'$$,
                 '42501', 'permission denied for table heal_actions', 'service_role cannot update heal_actions');
select throws_ok($$delete from vigil.heal_actions where action_id = '00000000-0000-4000-8000-000000000133'$$,
                 '42501', 'permission denied for table heal_actions', 'service_role cannot delete heal_actions');
select throws_ok($$truncate vigil.heal_actions$$, '42501', 'permission denied for table heal_actions',
                 'service_role cannot truncate heal_actions');
-- The chain trigger runs with service_role's rights: its row is linked and hashed all the same.
select ok(
  (select seq is not null and row_hash = vigil.heal_action_hash(a) from vigil.heal_actions a
    where action_id = '00000000-0000-4000-8000-000000000133'),
  'service_role''s heal action got its place in the chain and its hash');

-- heal_policies
select lives_ok($$insert into vigil.heal_policies (environment, strategy, mode, config) values ('qa', 'purge_own_data', 'approval', '{"max": 1}')$$,
                'service_role can insert heal_policies');
select lives_ok($$update vigil.heal_policies set mode = 'suggest' where strategy = 'purge_own_data'$$, 'service_role can update heal_policies');
select results_eq($$select mode::text, config from vigil.heal_policies where strategy = 'purge_own_data'$$,
                  $$values ('suggest'::text, '{"max": 1}'::jsonb)$$, 'service_role can select heal_policies (the update took effect)');
select lives_ok($$delete from vigil.heal_policies where strategy = 'purge_own_data'$$, 'service_role can delete heal_policies');
select is_empty($$select 1 from vigil.heal_policies where strategy = 'purge_own_data'$$, 'the heal_policies row is gone');

-- heal_approvals
select lives_ok(
  $$insert into vigil.heal_approvals (action_id, incident_id, service_id, strategy, plan)
    select '00000000-0000-4000-8000-000000000138', id, service_id, 'restart', '{"action":"restart"}' from vigil.incidents where title = 't013 base'$$,
  'service_role can insert heal_approvals');
select lives_ok($$update vigil.heal_approvals set expires_at = now() + interval '2 hours' where action_id = '00000000-0000-4000-8000-000000000138'$$,
                'service_role can update heal_approvals');
select results_eq($$select strategy, expires_at, decision from vigil.heal_approvals where action_id = '00000000-0000-4000-8000-000000000138'$$,
                  $$values ('restart'::text, now() + interval '2 hours', null::text)$$, 'service_role can select heal_approvals (the update took effect)');
select lives_ok($$delete from vigil.heal_approvals where action_id = '00000000-0000-4000-8000-000000000138'$$, 'service_role can delete heal_approvals');
select is_empty($$select 1 from vigil.heal_approvals where action_id = '00000000-0000-4000-8000-000000000138'$$, 'the heal_approvals row is gone');

-- contacts
select lives_ok($$insert into vigil.contacts (name, role, channel, address, environment) values ('t013 senior', 'senior', 'email', 't013@example.com', 'qa')$$,
                'service_role can insert contacts');
select lives_ok($$update vigil.contacts set enabled = false where address = 't013@example.com'$$, 'service_role can update contacts');
select results_eq($$select role::text, channel::text, enabled from vigil.contacts where address = 't013@example.com'$$,
                  $$values ('senior'::text, 'email'::text, false)$$, 'service_role can select contacts (the update took effect)');
select lives_ok($$delete from vigil.contacts where address = 't013@example.com'$$, 'service_role can delete contacts');
select is_empty($$select 1 from vigil.contacts where address = 't013@example.com'$$, 'the contacts row is gone');

-- incident_log (its id is an identity column: no sequence grant is needed)
select lives_ok($$insert into vigil.incident_log (incident_id, level, message) select id, 'warning', 't013 log' from vigil.incidents where title = 't013 base'$$,
                'service_role can insert incident_log');
select lives_ok($$update vigil.incident_log set level = 'error' where message = 't013 log'$$, 'service_role can update incident_log');
select results_eq($$select level from vigil.incident_log where message = 't013 log'$$, $$values ('error'::text)$$,
                  'service_role can select incident_log (the update took effect)');
select lives_ok($$delete from vigil.incident_log where message = 't013 log'$$, 'service_role can delete incident_log');
select is_empty($$select 1 from vigil.incident_log where message = 't013 log'$$, 'the incident_log row is gone');

-- services: the heal columns
select lives_ok($$update vigil.services set heal_enabled = false, actions = '{"restart": {"kind": "webhook"}}' where id = '00000000-0000-4000-8000-000000000131'$$,
                'service_role can update services.heal_enabled and services.actions');
select results_eq($$select heal_enabled, actions from vigil.services where id = '00000000-0000-4000-8000-000000000131'$$,
                  $$values (false, '{"restart": {"kind": "webhook"}}'::jsonb)$$, 'the heal columns update took effect');

-- Acknowledging as service_role keeps the acknowledged_by it names (stamping is for operators).
select lives_ok(
  $$update vigil.incidents set acknowledged_at = now(), acknowledged_by = '00000000-0000-4000-8000-0000000003c3' where title = 't013 base'$$,
  'service_role can acknowledge an incident on a human''s behalf');
select is((select acknowledged_by from vigil.incidents where title = 't013 base'), '00000000-0000-4000-8000-0000000003c3'::uuid,
          'service_role''s acknowledged_by is kept, not replaced');

-- status_transitions
select lives_ok($$insert into vigil.status_transitions (service_id, from_status, to_status, reason) values ('00000000-0000-4000-8000-000000000131', 'unknown', 'degraded', 't013 transition')$$,
                'service_role can insert status_transitions');
select results_eq($$select from_status::text, to_status::text from vigil.status_transitions where reason = 't013 transition'$$,
                  $$values ('unknown'::text, 'degraded'::text)$$, 'service_role can select status_transitions');
select lives_ok($$update vigil.status_transitions set check_id = 1 where reason = 't013 transition'$$, 'service_role can update status_transitions');
select lives_ok($$delete from vigil.status_transitions where reason = 't013 transition'$$, 'service_role can delete status_transitions');
select is_empty($$select 1 from vigil.status_transitions where reason = 't013 transition'$$, 'the status_transitions row is gone');

-- metrics
select lives_ok($$insert into vigil.metrics (service_id, name, value, labels) values ('00000000-0000-4000-8000-000000000131', 'tls_days_left', 30, '{"t":"013"}')$$,
                'service_role can insert metrics');
select lives_ok($$update vigil.metrics set value = 29 where labels = '{"t":"013"}'$$, 'service_role can update metrics');
select results_eq($$select name::text, value from vigil.metrics where labels = '{"t":"013"}'$$,
                  $$values ('tls_days_left'::text, 29::double precision)$$, 'service_role can select metrics (the update took effect)');
select lives_ok($$delete from vigil.metrics where labels = '{"t":"013"}'$$, 'service_role can delete metrics');
select is_empty($$select 1 from vigil.metrics where labels = '{"t":"013"}'$$, 'the metrics row is gone');

-- check_rollups
select lives_ok($$insert into vigil.check_rollups (service_id, bucket, checks, healthy, degraded, down) values ('00000000-0000-4000-8000-000000000131', '2020-01-01 00:00+00', 4, 3, 0, 1)$$,
                'service_role can insert check_rollups');
select lives_ok($$update vigil.check_rollups set down = 2, healthy = 2 where service_id = '00000000-0000-4000-8000-000000000131' and bucket = '2020-01-01 00:00+00'$$,
                'service_role can update check_rollups');
select results_eq($$select checks, healthy, down from vigil.check_rollups where service_id = '00000000-0000-4000-8000-000000000131' and bucket = '2020-01-01 00:00+00'$$,
                  $$values (4, 2, 2)$$, 'service_role can select check_rollups (the update took effect)');
select lives_ok($$delete from vigil.check_rollups where service_id = '00000000-0000-4000-8000-000000000131' and bucket = '2020-01-01 00:00+00'$$,
                'service_role can delete check_rollups');
select is_empty($$select 1 from vigil.check_rollups where service_id = '00000000-0000-4000-8000-000000000131' and bucket = '2020-01-01 00:00+00'$$,
                'the check_rollups row is gone');

-- cycles
select lives_ok($$insert into vigil.cycles (id, started_at, finished_at, duration_ms, services, healthy, degraded, down) values ('00000000-0000-4000-8000-000000000134', now(), now(), 5, 1, 1, 0, 0)$$,
                'service_role can insert cycles');
select lives_ok($$update vigil.cycles set deadman = 'ok 200' where id = '00000000-0000-4000-8000-000000000134'$$,
                'service_role can update cycles (health-check records the dead man''s switch answer)');
select results_eq($$select duration_ms, deadman from vigil.cycles where id = '00000000-0000-4000-8000-000000000134'$$,
                  $$values (5, 'ok 200'::text)$$, 'service_role can select cycles (the update took effect)');
select lives_ok($$delete from vigil.cycles where id = '00000000-0000-4000-8000-000000000134'$$, 'service_role can delete cycles');
select is_empty($$select 1 from vigil.cycles where id = '00000000-0000-4000-8000-000000000134'$$, 'the cycles row is gone');

-- heartbeat_tokens: a ping heartbeat created by service_role gets its token from the trigger.
select lives_ok($$insert into vigil.services (id, name, kind, config) values ('00000000-0000-4000-8000-000000000135', 't013-ping', 'heartbeat', '{"source":"ping","period_seconds":60}')$$,
                'service_role can create a ping heartbeat service');
select ok((select token ~ '^[0-9a-f]{64}$' from vigil.heartbeat_tokens where service_id = '00000000-0000-4000-8000-000000000135'),
          'service_role can select heartbeat_tokens (its new service has a token)');
select lives_ok($$update vigil.heartbeat_tokens set token = repeat('b', 64) where service_id = '00000000-0000-4000-8000-000000000135'$$,
                'service_role can update heartbeat_tokens (rotate a token)');
select lives_ok($$delete from vigil.heartbeat_tokens where service_id = '00000000-0000-4000-8000-000000000135'$$,
                'service_role can delete heartbeat_tokens');
select lives_ok($$insert into vigil.heartbeat_tokens (service_id) values ('00000000-0000-4000-8000-000000000135')$$,
                'service_role can insert heartbeat_tokens');

-- probe_config_schemas: read only, even for service_role; only a migration changes validation.
select is((select count(*) from vigil.probe_config_schemas), 15::bigint, 'service_role can select probe_config_schemas');
select throws_ok($$update vigil.probe_config_schemas set schema = '{}'$$, '42501', 'permission denied for table probe_config_schemas',
                 'service_role cannot update probe_config_schemas (and so cannot switch validation off)');
select throws_ok($$delete from vigil.probe_config_schemas where kind = 'http'$$, '42501', 'permission denied for table probe_config_schemas',
                 'service_role cannot delete probe_config_schemas');
select throws_ok($$insert into vigil.probe_config_schemas (kind, schema) values ('http', '{}')$$, '42501', 'permission denied for table probe_config_schemas',
                 'service_role cannot insert probe_config_schemas');

-- service_uptime
select isnt_empty($$select 1 from vigil.service_uptime where service_id = '00000000-0000-4000-8000-000000000131'$$,
                  'service_role can select service_uptime');

-- service_role's own check inserts run the hysteresis trigger in full: a transition to down opens
-- an incident (sync_service_incident runs as service_role here).
select lives_ok(
  $$insert into vigil.services (id, name, kind, config, failure_threshold) values ('00000000-0000-4000-8000-000000000136', 't013-fragile', 'http', '{"url":"https://t013.example.com"}', 1);
    insert into vigil.checks (service_id, status, error) values ('00000000-0000-4000-8000-000000000136', 'down', 't013 fragile refused')$$,
  'service_role can insert a check that moves a service''s status');
select results_eq(
  $$select s.status::text, i.severity::text, i.status::text
      from vigil.services s left join vigil.incidents i on i.service_id = s.id and i.kind = 'service_unhealthy'
     where s.id = '00000000-0000-4000-8000-000000000136'$$,
  $$values ('down'::text, 'critical'::text, 'open'::text)$$,
  'service_role''s down check turned the service down and opened a critical incident'
);

-- Functions.
select isnt(vigil.invoke('t013-fn', '{"from":"service_role"}'), null, 'service_role can execute vigil.invoke and gets an id');
select results_eq($$select transport, state, body from vigil.invocations where fn = 't013-fn'$$,
                  $$values ('notify'::text, 'pending'::text, '{"from":"service_role"}'::jsonb)$$,
                  'service_role''s invoke recorded a pending invocation');
select is(jsonb_typeof(vigil.sweep_invocations()), 'object', 'service_role can execute vigil.sweep_invocations');
select is(vigil.record_cycle('{"id":"00000000-0000-4000-8000-000000000137","started_at":"2026-01-01T00:00:00Z","finished_at":"2026-01-01T00:00:01Z","duration_ms":1000,"results":[]}'),
          '{"cycle_id":"00000000-0000-4000-8000-000000000137","checks":0,"metrics":0}'::jsonb,
          'service_role can execute vigil.record_cycle');
select is(vigil.record_heartbeat(repeat('c', 64)), null, 'service_role can execute vigil.record_heartbeat');
select is((select status::text from vigil.heartbeat_verdict('00000000-0000-4000-8000-000000000131')), 'down',
          'service_role can execute vigil.heartbeat_verdict');
select is(vigil.uptime('00000000-0000-4000-8000-000000000131', interval '1 day'), 0.000::numeric,
          'service_role can execute vigil.uptime (one down check: 0 %)');
select is(vigil.json_schema_errors('{"type":"string"}', '"ok"'), '{}'::text[], 'service_role can execute vigil.json_schema_errors');
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000131', 'restart'),
          '{"allowed": false, "reason": "healing is switched off for t013-base"}'::jsonb,
          'service_role can execute vigil.heal_guard (healing is switched off for t013-base above)');
select is((select count(*) from vigil.claim_incident((select id from vigil.incidents where title = 't013 base'), 't013-worker')), 1::bigint,
          'service_role can execute vigil.claim_incident');
select lives_ok($$select vigil.release_incident((select id from vigil.incidents where title = 't013 base'), 't013-worker')$$,
                'service_role can execute vigil.release_incident');
select is(vigil.escalate((select id from vigil.incidents where title = 't013 base'), 1, 't013'), 0,
          'service_role can execute vigil.escalate (level 1 queues no alert)');
select lives_ok($$select vigil.retry_heals()$$, 'service_role can execute vigil.retry_heals');
select is((select count(*) from vigil.verify_heal_audit()), 1::bigint, 'service_role can execute vigil.verify_heal_audit');
reset role;

select results_eq($$select count(*) from vigil.heal_actions where action_id = '00000000-0000-4000-8000-000000000133'$$,
                  $$values (1::bigint)$$, 'the heal action service_role wrote is still there, once');

select * from finish();
rollback;
