-- service_role (the edge functions) bypasses RLS and reads and writes every table, except that
-- the heal audit only grows: insert and select, never update or delete. It may call
-- vigil.invoke and vigil.sweep_invocations. Its writes are not stamped: it names the human itself.
begin;
set search_path = extensions, public;
select plan(84);

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
select is((select count(*) from vigil.probe_config_schemas), 9::bigint, 'service_role can select probe_config_schemas');
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
reset role;

select results_eq($$select count(*) from vigil.heal_actions where action_id = '00000000-0000-4000-8000-000000000133'$$,
                  $$values (1::bigint)$$, 'the heal action service_role wrote is still there, once');

select * from finish();
rollback;
