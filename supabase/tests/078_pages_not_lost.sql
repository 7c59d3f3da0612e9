-- Pages that must not be lost, nor repeated for nothing. An incident that swings between degraded
-- and down pages at P0 once, not at every swing, and its acknowledgement timer is not reset by the
-- swings. One acknowledged at P2 that turns P0 is taken back and paged. A dependent folded into a
-- root that eases below it is unfolded by the sweep and paged. Flapping is as urgent as the worst
-- status within its window, even with no incident open. The end of flapping reaches PagerDuty under
-- a silence, and a flapping alert not out yet when the service settles is dropped.
begin;
set search_path = extensions, public;
select plan(15);

lock table vigil.contacts in exclusive mode;
delete from vigil.contacts;
insert into vigil.contacts (name, role, channel, address, secret_name) values
  ('Ana', 'on_call', 'sms', '+15550780001', null),
  ('Ana', 'on_call', 'email', 'ana-t078@example.org', null),
  ('Sam', 'senior', 'sms', '+15550780002', null),
  ('Ops', 'team', 'pagerduty', 'Ops PD', 'T078_PD_KEY');
insert into vigil.services (id, name, kind, environment, config, status) values
  ('00000000-0000-4000-8000-000000000781', 't078-api', 'http', 'prod', '{"url": "https://api.t078.example.org"}', 'degraded'),
  ('00000000-0000-4000-8000-000000000782', 't078-db', 'postgres', 'prod', '{}', 'down'),
  ('00000000-0000-4000-8000-000000000783', 't078-auth', 'supabase_auth', 'prod', '{}', 'down'),
  ('00000000-0000-4000-8000-000000000784', 't078-flap', 'http', 'prod', '{"url": "https://flap.t078.example.org"}', 'healthy');
update vigil.services set depends_on = array['t078-db'] where id = '00000000-0000-4000-8000-000000000783';

create function pg_temp.open_incident(p_service uuid, p_title text, p_severity vigil.severity) returns bigint language sql as $$
  insert into vigil.incidents (service_id, kind, severity, title) values (p_service, 'service_unhealthy', p_severity, p_title) returning id
$$;
create function pg_temp.inc(p_title text) returns bigint language sql as $$
  select id from vigil.incidents where title = p_title
$$;
create function pg_temp.p0_pages(p_incident bigint) returns integer language sql as $$
  select count(*)::int from vigil.alerts where incident_id = p_incident and event = 'page' and priority = 'P0'
$$;

-- ─── Swinging between degraded and down ─────────────────────────────────────────────────────
select pg_temp.open_incident('00000000-0000-4000-8000-000000000781', 't078 swing', 'warning');
select vigil.escalate(pg_temp.inc('t078 swing'), 3, 'attempt 3 failed');
update vigil.incidents set severity = 'critical' where id = pg_temp.inc('t078 swing');
select is(pg_temp.p0_pages(pg_temp.inc('t078 swing')), 2, 'down after the P2 page: Ana and the team are paged at P0');
update vigil.incidents set escalated_at = now() - interval '14 minutes' where id = pg_temp.inc('t078 swing');
update vigil.incidents set severity = 'warning' where id = pg_temp.inc('t078 swing');
update vigil.incidents set severity = 'critical' where id = pg_temp.inc('t078 swing');
update vigil.incidents set severity = 'warning' where id = pg_temp.inc('t078 swing');
update vigil.incidents set severity = 'critical' where id = pg_temp.inc('t078 swing');
select is(pg_temp.p0_pages(pg_temp.inc('t078 swing')), 2, 'swinging back and forth pages nobody again: P0 was already paged');
select is((select escalated_at from vigil.incidents where id = pg_temp.inc('t078 swing')), now() - interval '14 minutes',
          'and the acknowledgement timer keeps running');
update vigil.incidents set escalated_at = now() - interval '16 minutes' where id = pg_temp.inc('t078 swing');
select vigil.sweep_alerts();
select is((select escalation_level from vigil.incidents where id = pg_temp.inc('t078 swing')), 4,
          'so the senior is paged when nobody acknowledged in time');
update vigil.incidents set status = 'resolved', resolved_at = now() where id = pg_temp.inc('t078 swing');

-- ─── Acknowledged at P2, then P0 ────────────────────────────────────────────────────────────
select pg_temp.open_incident('00000000-0000-4000-8000-000000000781', 't078 acked', 'warning');
select vigil.escalate(pg_temp.inc('t078 acked'), 3, 'attempt 3 failed');
select vigil.acknowledge_incident(pg_temp.inc('t078 acked'), 'Ana');
update vigil.incidents set severity = 'critical' where id = pg_temp.inc('t078 acked');
select is((select acknowledged_at from vigil.incidents where id = pg_temp.inc('t078 acked')), null::timestamptz,
          'acknowledged at P2, it turns P0: the acknowledgement is taken back');
select is(pg_temp.p0_pages(pg_temp.inc('t078 acked')), 2, 'and Ana and the team are paged at P0');
select ok(exists (select from vigil.incident_log where incident_id = pg_temp.inc('t078 acked')
                    and message = 'acknowledged at P2 by Ana, now P0: paging again'), 'the timeline says why');
update vigil.incidents set status = 'resolved', resolved_at = now() where id = pg_temp.inc('t078 acked');

-- ─── A root that eases below its dependent ──────────────────────────────────────────────────
select pg_temp.open_incident('00000000-0000-4000-8000-000000000782', 't078 db', 'critical');
select pg_temp.open_incident('00000000-0000-4000-8000-000000000783', 't078 auth', 'critical');
select is(vigil.escalate(pg_temp.inc('t078 auth'), 3, 'attempt 3 failed'), 0, 'auth folds into the database''s P0 incident');
update vigil.incidents set severity = 'warning' where id = pg_temp.inc('t078 db');
update vigil.services set status = 'degraded' where id = '00000000-0000-4000-8000-000000000782';
select vigil.sweep_alerts();
select is((select folded_into from vigil.incidents where id = pg_temp.inc('t078 auth')), null::bigint,
          'the database eased to a warning: the sweep unfolds auth');
select is(pg_temp.p0_pages(pg_temp.inc('t078 auth')) - (select count(*)::int from vigil.alerts
            where incident_id = pg_temp.inc('t078 auth') and status = 'suppressed'), 2,
          'and pages Ana and the team at P0 for it');
update vigil.incidents set status = 'resolved', resolved_at = now() where id in (pg_temp.inc('t078 db'), pg_temp.inc('t078 auth'));

-- ─── Flapping with no incident open ─────────────────────────────────────────────────────────
insert into vigil.status_transitions (service_id, from_status, to_status, reason)
select '00000000-0000-4000-8000-000000000784', case when g % 2 = 1 then 'healthy' else 'down' end::vigil.service_status,
       case when g % 2 = 1 then 'down' else 'healthy' end::vigil.service_status, 't078'
  from generate_series(1, 6) g;
select results_eq($$select distinct priority from vigil.alerts where service_id = '00000000-0000-4000-8000-000000000784' and event = 'flapping'$$,
                  $$values ('P0'::text)$$, 'a prod service that went down within the window flaps at P0, with no incident open');

-- ─── Settling under a silence; a flapping alert not out yet ─────────────────────────────────
update vigil.alerts set status = 'sent', sent_at = now()
 where service_id = '00000000-0000-4000-8000-000000000784' and event = 'flapping' and channel = 'pagerduty';
update vigil.alerts set status = 'failed', last_error = 'HTTP 503', next_attempt_at = now() + interval '5 minutes'
 where service_id = '00000000-0000-4000-8000-000000000784' and event = 'flapping' and channel = 'sms';
insert into vigil.silences (service_id, ends_at, reason) values ('00000000-0000-4000-8000-000000000784', now() + interval '1 hour', 't078 quiet');
update vigil.status_transitions set created_at = now() - interval '31 minutes' where service_id = '00000000-0000-4000-8000-000000000784';
update vigil.services set flapping_since = now() - interval '40 minutes' where id = '00000000-0000-4000-8000-000000000784';
update vigil.alerts set created_at = now() - interval '35 minutes' where service_id = '00000000-0000-4000-8000-000000000784' and event = 'flapping';
select is((vigil.sweep_alerts() ->> 'settled')::int, 1, 'the service settles');
select results_eq($$select status::text, suppressed_reason from vigil.alerts
                     where service_id = '00000000-0000-4000-8000-000000000784' and event = 'flapping' and channel = 'sms'$$,
                  $$values ('suppressed'::text, 'the service settled before it was sent'::text)$$,
                  'the flapping sms still waiting for its provider is dropped: it would open what nothing closes');
select results_eq($$select status::text from vigil.alerts
                     where service_id = '00000000-0000-4000-8000-000000000784' and event = 'stable' and channel = 'pagerduty'$$,
                  $$values ('pending'::text)$$, 'PagerDuty hears it settled though a silence started: its event is resolved');
create temp table claimed as select c from vigil.claim_alerts('t078-w') c;
select ok(exists (select from claimed where c->>'event' = 'stable' and c->>'channel' = 'pagerduty'),
          'and notify sends it: the silence does not hold back the end of what was told');

select * from finish();
rollback;
