-- A signed-in user who is not an operator (no app_metadata.role, 'viewer', or 'devops' only in
-- the user-editable user_metadata) sees no row of any table and changes nothing. Reads are
-- filtered by RLS (zero rows, no error); inserts and deletes are not granted at all; the
-- granted column updates (kill switch, dry run, acknowledgements) match no row.
begin;
set search_path = extensions, public;
select plan(51);

insert into vigil.services (id, name, kind) values ('00000000-0000-4000-8000-000000000111', 't011-api', 'http');
insert into vigil.checks (service_id, status) values ('00000000-0000-4000-8000-000000000111', 'healthy');
insert into vigil.incidents (service_id, kind, severity, title)
values ('00000000-0000-4000-8000-000000000111', 'latency', 'warning', 't011 slow');
insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome)
select '00000000-0000-4000-8000-000000000112', 'intent', id, service_id, 'restart', 1, 't011', 'pending'
  from vigil.incidents where title = 't011 slow';
insert into vigil.alerts (incident_id, channel, recipient, severity, subject, body)
select id, 'email', 't011@example.com', 'warning', 't011', 't011' from vigil.incidents where title = 't011 slow';
insert into vigil.invocations (fn, transport) values ('t011-fn', 'notify');

create temp table settings_before as select * from vigil.settings;

select is_empty(
  $$select t from (values
      ('settings', (select count(*) from vigil.settings)), ('services', (select count(*) from vigil.services)),
      ('checks', (select count(*) from vigil.checks)), ('incidents', (select count(*) from vigil.incidents)),
      ('heal_actions', (select count(*) from vigil.heal_actions)), ('alerts', (select count(*) from vigil.alerts)),
      ('invocations', (select count(*) from vigil.invocations))) v(t, n)
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

select results_eq(
  $$select name, status from vigil.public_status where name = 't011-api'$$,
  $$values ('t011-api'::text, 'unknown'::text)$$,
  'viewer can read public_status'
);
select throws_ok($$select vigil.invoke('status', '{}')$$, '42501', 'permission denied for function invoke',
                 'viewer cannot execute vigil.invoke');

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
with u as (update vigil.settings set kill_switch = true returning 1)
select is(count(*)::int, 0, 'user_metadata devops: updating kill_switch affects 0 rows') from u;
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
  $$values (1::bigint, 1::bigint, 1::bigint)$$,
  'the seeded rows are all still there'
);

select * from finish();
rollback;
