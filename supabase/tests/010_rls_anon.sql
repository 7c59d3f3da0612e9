-- anon (the public key, no login) touches no table: every read and write is denied outright.
-- All it may read is vigil.public_status: enabled services' name, status and 24 h uptime.
begin;
set search_path = extensions, public;
select plan(36);

-- Seed as postgres: one enabled service with four checks in the last day (one down) and one
-- older down check that must not count, one disabled service, and a row in every other table.
insert into vigil.services (id, name, kind, status, enabled) values
  ('00000000-0000-4000-8000-000000000101', 't010-enabled', 'http', 'degraded', true),
  ('00000000-0000-4000-8000-000000000102', 't010-disabled', 'http', 'down', false);
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
select ok(not vigil.is_operator(), 'anon is not an operator');
reset role;

-- Nothing anon tried changed anything.
select results_eq(
  $$select (select count(*) from vigil.services where name like 't010-%'),
           (select count(*) from vigil.checks where service_id = '00000000-0000-4000-8000-000000000101'),
           (select count(*) from vigil.invocations where fn = 't010-fn')$$,
  $$values (2::bigint, 5::bigint, 1::bigint)$$,
  'anon''s attempts left the seeded rows as they were'
);

select * from finish();
rollback;
