-- An operator (authenticated, app_metadata.role = 'devops') reads every row of every table,
-- flips the kill switch and dry run, and acknowledges incidents and alerts. Who did it comes
-- from the JWT's sub, never from the request. Nothing else is writable.
begin;
set search_path = extensions, public;
select plan(51);

insert into vigil.services (id, name, kind) values ('00000000-0000-4000-8000-000000000121', 't012-api', 'http');
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
update vigil.settings set updated_by = '00000000-0000-4000-8000-0000000000ff' where environment = 'prod';

-- What postgres (no RLS) sees, for the operator to match.
create temp table seen_by_postgres as
select 'settings' as t, count(*) as n from vigil.settings
union all select 'services', count(*) from vigil.services
union all select 'checks', count(*) from vigil.checks
union all select 'incidents', count(*) from vigil.incidents
union all select 'heal_actions', count(*) from vigil.heal_actions
union all select 'alerts', count(*) from vigil.alerts
union all select 'invocations', count(*) from vigil.invocations;
grant select on seen_by_postgres to authenticated;
create temp table settings_before as select * from vigil.settings;
grant select on settings_before to authenticated;

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

select throws_ok($$delete from vigil.settings$$, '42501', 'permission denied for table settings', 'operator cannot delete settings');
select throws_ok($$delete from vigil.services$$, '42501', 'permission denied for table services', 'operator cannot delete services');
select throws_ok($$delete from vigil.checks$$, '42501', 'permission denied for table checks', 'operator cannot delete checks');
select throws_ok($$delete from vigil.incidents$$, '42501', 'permission denied for table incidents', 'operator cannot delete incidents');
select throws_ok($$delete from vigil.heal_actions$$, '42501', 'permission denied for table heal_actions', 'operator cannot delete heal_actions');
select throws_ok($$delete from vigil.alerts$$, '42501', 'permission denied for table alerts', 'operator cannot delete alerts');
select throws_ok($$delete from vigil.invocations$$, '42501', 'permission denied for table invocations', 'operator cannot delete invocations');

select throws_ok($$update vigil.heal_actions set detail = 'x'$$, '42501', 'permission denied for table heal_actions', 'operator cannot update heal_actions');
select throws_ok($$update vigil.services set enabled = false$$, '42501', 'permission denied for table services', 'operator cannot update services');

select throws_ok($$select vigil.invoke('status', '{}')$$, '42501', 'permission denied for function invoke',
                 'operator cannot execute vigil.invoke');
reset role;

select set_eq(
  $$select environment, kill_switch, dry_run from vigil.settings$$,
  $$select environment, case when environment = 'prod' then true else kill_switch end,
           case when environment = 'qa' then true else dry_run end from settings_before$$,
  'the only settings changes are the prod kill switch and the qa dry run'
);

select * from finish();
rollback;
