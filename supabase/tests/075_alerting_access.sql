-- Who may see and change the alerting tables, and call its functions. anon reads none of
-- alert_routes, silences and alert_attempts; a signed-in user who is not an operator sees no row of
-- them. An operator reads all three and manages silences: adds one (created_by is their JWT's sub,
-- never what they send), ends it early (ends_at), removes it, but cannot rewrite its reason. The
-- routes and the attempt log are not theirs to write. The entry points notify, ack and cron use
-- (claim_alerts, record_alert_attempt, queue_alert, acknowledge_incident, sweep_alerts) are
-- service_role's alone.
begin;
set search_path = extensions, public;
select plan(52);

-- queue_alert and acknowledge_incident below page every matching contact: only this file's exist.
lock table vigil.contacts in exclusive mode;
delete from vigil.contacts;
insert into vigil.contacts (name, role, channel, address) values ('t075 on call', 'on_call', 'sms', '+15550750001');

insert into vigil.services (id, name, kind, config) values
  ('00000000-0000-4000-8000-000000000751', 't075-api', 'http', '{"url": "https://api.t075.example.org"}');
insert into vigil.incidents (id, service_id, kind, severity, title)
overriding system value values (750751, '00000000-0000-4000-8000-000000000751', 'down', 'critical', 't075 api down');
insert into vigil.alerts (incident_id, service_id, channel, recipient, severity, priority, subject, body, status, sent_at)
values (750751, '00000000-0000-4000-8000-000000000751', 'email', 't075@example.org', 'critical', 'P0', 't075', 't075', 'sent', now());
insert into vigil.alert_attempts (alert_id, request_id, channel, attempt, started_at, duration_ms, outcome, worker)
select id, gen_random_uuid(), 'email', 1, now(), 12, 'delivered', 't075' from vigil.alerts where subject = 't075';
insert into vigil.silences (service_id, starts_at, ends_at, reason)
values ('00000000-0000-4000-8000-000000000751', now() - interval '1 hour', now() + interval '1 hour', 't075 set by postgres');

create temp table seen_by_postgres as
select (select count(*) from vigil.alert_routes) as routes, (select count(*) from vigil.silences) as silences,
       (select count(*) from vigil.alert_attempts) as attempts;
grant select on seen_by_postgres to authenticated;
select ok((select routes > 0 and silences > 0 and attempts > 0 from seen_by_postgres), 'precondition: each table has rows');

-- The entry points, each called the way its caller would.
create temp table entry_points (f text, call text);
insert into entry_points values
  ('claim_alerts', $$select vigil.claim_alerts('t075-worker')$$),
  ('record_alert_attempt', $$select vigil.record_alert_attempt('t075-worker', '[]', '{"outcome": "delivered"}')$$),
  ('queue_alert', $$select vigil.queue_alert(750751, null, 'page', 'P0', '{on_call}', 's', 'b')$$),
  ('acknowledge_incident', $$select vigil.acknowledge_incident(750751, 'Mallory')$$),
  ('sweep_alerts', $$select vigil.sweep_alerts()$$);
grant select on entry_points to anon, authenticated, service_role;

-- ─── anon ───────────────────────────────────────────────────────────────────────────────────
set local role anon;
select throws_ok($$select * from vigil.alert_routes$$, '42501', 'permission denied for table alert_routes', 'anon cannot read alert_routes');
select throws_ok($$select * from vigil.silences$$, '42501', 'permission denied for table silences', 'anon cannot read silences');
select throws_ok($$select * from vigil.alert_attempts$$, '42501', 'permission denied for table alert_attempts', 'anon cannot read alert_attempts');
select throws_ok($$insert into vigil.silences (ends_at, reason) values (now() + interval '1 hour', 'anon')$$,
                 '42501', 'permission denied for table silences', 'anon cannot add a silence');
select throws_ok(call, '42501', format('permission denied for function %s', f), format('anon cannot execute vigil.%s', f))
  from entry_points;
reset role;

-- ─── A signed-in user who is not an operator ────────────────────────────────────────────────
set local role authenticated;
set local request.jwt.claims = '{"sub":"00000000-0000-4000-8000-0000000007f1","role":"authenticated","app_metadata":{"role":"viewer"}}';
select is((select count(*)::int from vigil.alert_routes), 0, 'a non-operator sees no alert route');
select is((select count(*)::int from vigil.silences), 0, 'a non-operator sees no silence');
select is((select count(*)::int from vigil.alert_attempts), 0, 'a non-operator sees no alert attempt');
select throws_ok($$insert into vigil.silences (ends_at, reason) values (now() + interval '1 hour', 'viewer')$$,
                 '42501', 'new row violates row-level security policy for table "silences"', 'a non-operator cannot add a silence');
with u as (update vigil.silences set ends_at = now() returning 1)
select is(count(*)::int, 0, 'a non-operator''s attempt to end a silence matches no row') from u;
with d as (delete from vigil.silences returning 1)
select is(count(*)::int, 0, 'a non-operator''s attempt to remove silences matches no row') from d;
select throws_ok(call, '42501', format('permission denied for function %s', f), format('a non-operator cannot execute vigil.%s', f))
  from entry_points;
reset role;
select results_eq($$select ends_at, reason from vigil.silences$$, $$values (now() + interval '1 hour', 't075 set by postgres'::text)$$,
                  'the silence is as postgres left it');

-- ─── An operator ────────────────────────────────────────────────────────────────────────────
set local role authenticated;
set local request.jwt.claims = '{"sub":"00000000-0000-4000-8000-0000000007f2","role":"authenticated","app_metadata":{"role":"devops"}}';
select is((select count(*) from vigil.alert_routes), (select routes from seen_by_postgres), 'an operator reads every alert route');
select is((select count(*) from vigil.silences), (select silences from seen_by_postgres), 'an operator reads every silence');
select is((select count(*) from vigil.alert_attempts), (select attempts from seen_by_postgres), 'an operator reads every alert attempt');

with i as (insert into vigil.silences (kind, service_id, starts_at, ends_at, reason)
           values ('maintenance', '00000000-0000-4000-8000-000000000751', now() - interval '5 minutes', now() + interval '2 hours', 't075 upgrade')
           returning 1)
select is(count(*)::int, 1, 'an operator can add a maintenance window') from i;
select is((select created_by from vigil.silences where reason = 't075 upgrade'), '00000000-0000-4000-8000-0000000007f2'::uuid,
          'created_by is the operator''s JWT sub');
select throws_ok($$insert into vigil.silences (ends_at, reason, created_by) values (now() + interval '1 hour', 't075 forged', '00000000-0000-4000-8000-0000000007ee')$$,
                 '42501', 'permission denied for table silences', 'an operator cannot name someone else as created_by');
select throws_ok($$insert into vigil.silences (ends_at, reason) values (now() + interval '1 hour', '   ')$$,
                 '23514', 'new row for relation "silences" violates check constraint "silence_reason"', 'a silence needs a reason');
select throws_ok($$insert into vigil.silences (starts_at, ends_at, reason) values (now(), now() - interval '1 minute', 't075 backwards')$$,
                 '23514', 'new row for relation "silences" violates check constraint "silence_window"', 'a silence ends after it starts');
with u as (update vigil.silences set ends_at = now() where reason = 't075 upgrade' returning 1)
select is(count(*)::int, 1, 'an operator can end a silence early') from u;
select is((select ends_at from vigil.silences where reason = 't075 upgrade'), now(), 'it ends now');
select throws_ok($$update vigil.silences set reason = 'nothing happened' where reason = 't075 upgrade'$$,
                 '42501', 'permission denied for table silences', 'an operator cannot rewrite a silence''s reason');
select throws_ok($$update vigil.silences set starts_at = now() - interval '1 day' where reason = 't075 upgrade'$$,
                 '42501', 'permission denied for table silences', 'nor move its start');
select throws_ok($$update vigil.silences set created_by = '00000000-0000-4000-8000-0000000007ee' where reason = 't075 upgrade'$$,
                 '42501', 'permission denied for table silences', 'nor change who created it');
with d as (delete from vigil.silences where reason = 't075 upgrade' returning 1)
select is(count(*)::int, 1, 'an operator can remove a silence') from d;

select throws_ok($$update vigil.alert_routes set channels = '{email}'$$, '42501', 'permission denied for table alert_routes',
                 'an operator cannot change the routes');
select throws_ok($$insert into vigil.alert_routes (environment, priority, channels, respect_quiet_hours) values ('dev', 'P0', '{sms}', false)$$,
                 '42501', 'permission denied for table alert_routes', 'nor add one');
select throws_ok($$delete from vigil.alert_routes$$, '42501', 'permission denied for table alert_routes', 'nor remove one');
select throws_ok($$insert into vigil.alert_attempts (alert_id, request_id, channel, attempt, started_at, duration_ms, outcome, worker)
                   values (1, gen_random_uuid(), 'email', 1, now(), 1, 'delivered', 'op')$$,
                 '42501', 'permission denied for table alert_attempts', 'an operator cannot write an alert attempt');
select throws_ok($$update vigil.alert_attempts set outcome = 'delivered'$$, '42501', 'permission denied for table alert_attempts',
                 'nor rewrite one');
select throws_ok(call, '42501', format('permission denied for function %s', f), format('an operator cannot execute vigil.%s', f))
  from entry_points;
reset role;

-- ─── service_role ───────────────────────────────────────────────────────────────────────────
set local role service_role;
select lives_ok(call, format('service_role can execute vigil.%s', f)) from entry_points;
reset role;
select is((select acknowledged_by_name from vigil.incidents where id = 750751), 'Mallory',
          'service_role acknowledged in the name it passed (the ack link''s job)');

select * from finish();
rollback;
