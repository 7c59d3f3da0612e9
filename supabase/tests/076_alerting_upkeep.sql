-- The outbox's upkeep and the edges around it: the jobs that drive it are scheduled, finished
-- alerts are forgotten after 90 days (pending ones never), a renamed service stays what others
-- depend on, a second operator who acknowledges is the one named, a priority without a route is
-- said out loud rather than dropped, and an alert that belongs to no incident takes its severity
-- from its priority.
begin;
set search_path = extensions, public;
select plan(19);

lock table vigil.contacts in exclusive mode;
delete from vigil.contacts;
insert into vigil.contacts (name, role, channel, address) values ('t076 Ana', 'on_call', 'email', 'ana-t076@example.org');
insert into vigil.services (id, name, kind, environment, config) values
  ('00000000-0000-4000-8000-000000000761', 't076-db', 'postgres', 'qa', '{}'),
  ('00000000-0000-4000-8000-000000000762', 't076-api', 'http', 'qa', '{"url": "https://api.t076.example.org"}');

-- ─── Schedules ──────────────────────────────────────────────────────────────────────────────
select results_eq($$select schedule, command from cron.job where jobname = 'vigil-notify-sweep'$$,
                  $$values ('* * * * *'::text, 'select vigil.sweep_alerts()'::text)$$,
                  'vigil-notify-sweep runs vigil.sweep_alerts() every minute');
select ok(position('vigil.purge_alerts()' in pg_get_functiondef('vigil.rotate_own_data()'::regprocedure)) > 0
          and exists (select from cron.job where jobname = 'vigil-retention' and command = 'select vigil.rotate_own_data()'),
          'alert retention (vigil.purge_alerts) runs daily inside data rotation, under pg_cron');

-- ─── Retention ──────────────────────────────────────────────────────────────────────────────
insert into vigil.alerts (service_id, channel, recipient, severity, subject, body, status, sent_at, suppressed_reason, created_at)
values ('00000000-0000-4000-8000-000000000761', 'email', 'old-sent', 'info', 's', 'b', 'sent', now() - interval '100 days', null, now() - interval '100 days'),
       ('00000000-0000-4000-8000-000000000761', 'email', 'old-dead', 'info', 's', 'b', 'dead', null, null, now() - interval '100 days'),
       ('00000000-0000-4000-8000-000000000761', 'email', 'old-quiet', 'info', 's', 'b', 'suppressed', null, 'silenced', now() - interval '100 days'),
       ('00000000-0000-4000-8000-000000000761', 'email', 'old-pending', 'info', 's', 'b', 'pending', null, null, now() - interval '100 days'),
       ('00000000-0000-4000-8000-000000000761', 'email', 'new-sent', 'info', 's', 'b', 'sent', now(), null, now() - interval '10 days');
insert into vigil.alert_attempts (alert_id, request_id, channel, attempt, started_at, duration_ms, outcome, worker)
select id, gen_random_uuid(), 'email', 1, created_at, 5, 'delivered', 't076' from vigil.alerts where recipient = 'old-sent';
insert into vigil.silences (environment, starts_at, ends_at, reason)
values ('dev', now() - interval '101 days', now() - interval '100 days', 't076 old'), ('dev', now(), now() + interval '1 hour', 't076 now');

select is(vigil.purge_alerts(), '{"alerts": 3, "silences": 1}'::jsonb, 'purge_alerts forgets three finished old alerts and one old silence');
select set_eq($$select recipient from vigil.alerts where recipient in ('old-sent', 'old-dead', 'old-quiet', 'old-pending', 'new-sent')$$,
              array['old-pending', 'new-sent'], 'a pending alert is never forgotten, nor a recent one');
select is_empty($$select 1 from vigil.alert_attempts where worker = 't076'$$, 'the attempts of a forgotten alert go with it');
select is((select count(*) from vigil.silences where reason like 't076%')::int, 1, 'the silence that is on stays');
select throws_ok($$select vigil.purge_alerts(interval '1 hour')$$, '22023', null, 'keeping less than a day is refused');

-- ─── A renamed service is still depended on ─────────────────────────────────────────────────
update vigil.services set depends_on = array['t076-db'] where id = '00000000-0000-4000-8000-000000000762';
update vigil.services set name = 't076-database' where id = '00000000-0000-4000-8000-000000000761';
select is((select depends_on from vigil.services where id = '00000000-0000-4000-8000-000000000762'), array['t076-database'],
          'renaming t076-db renames it in depends_on');
select results_eq($$select service_id from vigil.dependencies('00000000-0000-4000-8000-000000000762')$$,
                  $$values ('00000000-0000-4000-8000-000000000761'::uuid)$$, 'and the dependency still resolves');

-- ─── Acknowledged again by another operator ─────────────────────────────────────────────────
insert into vigil.incidents (service_id, kind, severity, title)
values ('00000000-0000-4000-8000-000000000762', 'service_unhealthy', 'critical', 't076 api down');
set local role authenticated;
select set_config('request.jwt.claims',
  '{"sub": "00000000-0000-4000-8000-0000000007a1", "email": "first@example.org", "role": "authenticated", "app_metadata": {"role": "devops"}}', true);
update vigil.incidents set acknowledged_at = now() - interval '1 minute' where title = 't076 api down';
select set_config('request.jwt.claims',
  '{"sub": "00000000-0000-4000-8000-0000000007a2", "email": "second@example.org", "role": "authenticated", "app_metadata": {"role": "devops"}}', true);
update vigil.incidents set acknowledged_at = now() where title = 't076 api down';
reset role;
select results_eq($$select acknowledged_by, acknowledged_by_name from vigil.incidents where title = 't076 api down'$$,
                  $$values ('00000000-0000-4000-8000-0000000007a2'::uuid, 'second@example.org'::text)$$,
                  'the operator who acknowledged last is both the id and the name');
select is((select count(*) from vigil.incident_log where incident_id = (select id from vigil.incidents where title = 't076 api down')
            and message like 'acknowledged by%')::int, 1, 'only the first acknowledgement is news (logged and told)');

-- ─── A priority with no route ───────────────────────────────────────────────────────────────
delete from vigil.alert_routes where environment = 'qa' and priority = 'P1';
select is(vigil.escalate((select id from vigil.incidents where title = 't076 api down'), 3, 'attempt 3 failed'), 0,
          'with no qa P1 route, nobody is paged');
select results_eq($$select message from vigil.incident_log
                    where incident_id = (select id from vigil.incidents where title = 't076 api down') and message like 'no alert route%'$$,
                  $$values ('no alert route for qa P1 in vigil.alert_routes: nobody was told'::text)$$,
                  'and the incident log says why');

-- ─── Severity of an alert without an incident ───────────────────────────────────────────────
select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000762', 'flapping', 'P2',
                            array['on_call']::vigil.contact_role[], 's', 'b'), 1, 'a flapping alert is queued');
select is((select severity::text from vigil.alerts where service_id = '00000000-0000-4000-8000-000000000762' and event = 'flapping'),
          'warning', 'a P2 alert without an incident is a warning');
select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000762', 'stable', 'P3',
                            array['on_call']::vigil.contact_role[], 's', 'b'), 1, 'a P3 notice is queued');
select is((select severity::text from vigil.alerts where service_id = '00000000-0000-4000-8000-000000000762' and event = 'stable'),
          'info', 'and is informational');

-- ─── A resolved incident climbs no more ─────────────────────────────────────────────────────
insert into vigil.incidents (service_id, kind, severity, title, status, resolved_at)
values ('00000000-0000-4000-8000-000000000762', 'cert_expiring', 'critical', 't076 over', 'resolved', now());
select is(vigil.escalate((select id from vigil.incidents where title = 't076 over'), 3, 'late'), 0,
          'escalating a resolved incident pages nobody (a sweep that read it open before it resolved)');
select is((select escalation_level from vigil.incidents where title = 't076 over'), 0, 'and leaves its ladder alone');
select * from finish();
rollback;
