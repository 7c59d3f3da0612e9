-- Who hears a page, on what, and when. vigil.alert_priority() turns severity and environment into
-- P0 (critical in prod), P1 (critical elsewhere), P2 (warning) or P3 (info). vigil.alert_routes maps
-- each priority to channels: a person (the contacts sharing a name) gets the alert on every route
-- channel they have, or else on the first fallback channel they have, in the route's order.
-- Disabled rows and rows marked failing are skipped; a contact scoped to another environment is not
-- asked. Quiet hours hold back what the route says may wait (never P0 or P1); the grouping hold
-- (vigil.alert_hold_until) lets the first alert to a contact go at once and makes the next ones,
-- within alert_group_seconds of the last one sent, wait for the end of that window together.
-- vigil.escalate() pages at level 3 (on_call and team) and 4 (senior and team).
--
-- Pages go to every matching contact, so the contacts table is locked and emptied inside this
-- transaction (rolled back): only this file's contacts exist while it runs.
begin;
set search_path = extensions, public;
select plan(57);

lock table vigil.contacts in exclusive mode;
delete from vigil.contacts;

insert into vigil.services (id, name, kind, environment) values
  ('00000000-0000-4000-8000-000000000711', 't071-prod', 'postgres', 'prod'),
  ('00000000-0000-4000-8000-000000000712', 't071-qa', 'postgres', 'qa'),
  ('00000000-0000-4000-8000-000000000713', 't071-dev', 'postgres', 'dev');
insert into vigil.incidents (service_id, kind, severity, title) values
  ('00000000-0000-4000-8000-000000000711', 'connections', 'critical', 't071 prod saturated'),
  ('00000000-0000-4000-8000-000000000711', 'latency', 'warning', 't071 prod slow'),
  ('00000000-0000-4000-8000-000000000712', 'connections', 'critical', 't071 qa saturated'),
  ('00000000-0000-4000-8000-000000000713', 'connections', 'critical', 't071 dev saturated');
create temp table inc as
select (select id from vigil.incidents where title = 't071 prod saturated') as prod,
       (select id from vigil.incidents where title = 't071 prod slow') as slow,
       (select id from vigil.incidents where title = 't071 qa saturated') as qa,
       (select id from vigil.incidents where title = 't071 dev saturated') as dev;

-- Who is reached by an incident's alerts at a level: one row per alert, 'person channel'.
create function pg_temp.reached(p_incident bigint, p_level integer) returns setof text language sql as $$
  select c.name || ' ' || a.channel from vigil.alerts a join vigil.contacts c on c.id = a.contact_id
   where a.incident_id = p_incident and a.level = p_level
$$;

-- ─── Priorities ─────────────────────────────────────────────────────────────────────────────
select results_eq(
  $$select vigil.alert_priority('critical', 'prod'), vigil.alert_priority('critical', 'qa'), vigil.alert_priority('critical', 'dev'),
           vigil.alert_priority('warning', 'prod'), vigil.alert_priority('warning', 'dev'),
           vigil.alert_priority('info', 'prod'), vigil.alert_priority('info', 'qa')$$,
  $$values ('P0'::text, 'P1'::text, 'P1'::text, 'P2'::text, 'P2'::text, 'P3'::text, 'P3'::text)$$,
  'critical in prod is P0, critical in qa or dev P1, a warning P2 anywhere, info P3 anywhere'
);

-- ─── The routes ─────────────────────────────────────────────────────────────────────────────
select results_eq(
  $$select priority, channels::text[], fallback::text[], respect_quiet_hours from vigil.alert_routes
     where environment = 'prod' order by priority$$,
  $$values ('P0'::text, '{sms,pagerduty}'::text[], '{email,slack,discord,webhook}'::text[], false),
           ('P1', '{sms,pagerduty}', '{email,slack,discord,webhook}', false),
           ('P2', '{email}', '{slack,discord,webhook,pagerduty}', true),
           ('P3', '{email}', '{slack,discord,webhook}', true),
           ('info', '{slack,discord,webhook}', '{}', true)$$,
  'the default routes: P0/P1 wake (sms, PagerDuty), P2/P3 mail, notices chat; only P2, P3 and info wait for quiet hours'
);
select is((select count(*)::int from vigil.alert_routes), 15, 'every environment has a route for each of the five priorities');
select throws_ok($$update vigil.alert_routes set respect_quiet_hours = true where environment = 'prod' and priority = 'P0'$$, '23514',
  'invalid alert route prod P0: respect_quiet_hours: P0 and P1 wake people up: they cannot wait for quiet hours to end', 'a P0 route cannot wait for quiet hours');
select throws_ok($$update vigil.alert_routes set respect_quiet_hours = true where environment = 'dev' and priority = 'P1'$$, '23514',
  'invalid alert route dev P1: respect_quiet_hours: P0 and P1 wake people up: they cannot wait for quiet hours to end', 'nor can a P1 route');
select throws_ok($$update vigil.alert_routes set channels = '{}' where environment = 'qa' and priority = 'P2'$$, '23514',
  'invalid alert route qa P2: channels: must name 1 to 6 channels', 'a route needs at least one channel');
select throws_ok($$insert into vigil.alert_routes (environment, priority, channels, respect_quiet_hours) values ('prod', 'P4', '{email}', true)$$, '23514',
  'invalid alert route prod P4: priority: must be one of P0, P1, P2, P3, info', 'there is no P4');
update vigil.alert_routes set updated_at = now() - interval '1 day', respect_quiet_hours = false where environment = 'dev' and priority = 'P3';
update vigil.alert_routes set respect_quiet_hours = true where environment = 'dev' and priority = 'P3';
select is((select updated_at from vigil.alert_routes where environment = 'dev' and priority = 'P3'), now(),
          'editing a route stamps updated_at');

-- ─── Escalation, routed ─────────────────────────────────────────────────────────────────────
-- Ana (prod) has sms, PagerDuty and email; Ben (every environment) email and slack; Cy discord
-- (added first) and slack; Fay's sms is marked failing, she also has email; Eve is disabled;
-- Gus is qa's on-call. Ops is the team channel, Dee the senior.
insert into vigil.contacts (name, role, channel, address, secret_name, environment, enabled) values
  ('Ana', 'on_call', 'sms', '+15550711001', null, 'prod', true),
  ('Ana', 'on_call', 'pagerduty', 'Ana PD', 'T071_ANA_PD', 'prod', true),
  ('Ana', 'on_call', 'email', 'ana@example.org', null, 'prod', true),
  ('Ben', 'on_call', 'email', 'ben@example.org', null, null, true),
  ('Ben', 'on_call', 'slack', '#ben', 'T071_BEN_SLACK', null, true),
  ('Cy', 'on_call', 'discord', 'cy', 'T071_CY_DISCORD', null, true),
  ('Cy', 'on_call', 'slack', '#cy', 'T071_CY_SLACK', null, true),
  ('Eve', 'on_call', 'sms', '+15550711005', null, 'prod', false),
  ('Fay', 'on_call', 'sms', '+15550711006', null, null, true),
  ('Fay', 'on_call', 'email', 'fay@example.org', null, null, true),
  ('Gus', 'on_call', 'sms', '+15550711007', null, 'qa', true),
  ('Ops', 'team', 'slack', '#ops', 'T071_OPS_SLACK', null, true),
  ('Dee', 'senior', 'pagerduty', 'Dee PD', 'T071_DEE_PD', null, true);
update vigil.contacts set failing_since = now() - interval '1 hour', failing_reason = 'number disconnected'
 where name = 'Fay' and channel = 'sms';

select is(vigil.escalate((select prod from inc), 2, 'attempt 2 failed'), 0, 'level 2 pages nobody');
select is((select escalated_at from vigil.incidents where id = (select prod from inc)), null::timestamptz,
          'escalated_at stays empty below level 3');
select is(vigil.escalate((select prod from inc), 3, 'attempt 3 failed'), 6, 'level 3 of a P0 incident queues six alerts');
select set_eq($$select pg_temp.reached((select prod from inc), 3)$$,
  $$values ('Ana sms'), ('Ana pagerduty'), ('Ben email'), ('Cy slack'), ('Fay email'), ('Ops slack')$$,
  'P0: Ana on both sms and PagerDuty (not email), Ben and Fay (failing sms skipped) on their first fallback, email; Cy on slack, the fallback listed before discord; the team on slack');
select is_empty($$select 1 from vigil.alerts a join vigil.contacts c on c.id = a.contact_id
                   where a.incident_id = (select prod from inc) and c.name in ('Eve', 'Gus', 'Dee')$$,
  'level 3 reaches neither the disabled Eve, nor qa''s Gus, nor the senior');
select results_eq(
  $$select distinct event, priority, severity::text, level, status::text, subject, body, dedup_key, next_attempt_at, service_id
      from vigil.alerts where incident_id = (select prod from inc)$$,
  $$select 'page'::text, 'P0'::text, 'critical'::text, 3, 'pending'::text, '[P0][PROD] t071 prod saturated'::text,
           't071 prod saturated. attempt 3 failed'::text, 'vigil-incident-' || prod, now(), '00000000-0000-4000-8000-000000000711'::uuid
      from inc$$,
  'each page: event page, P0, critical, level 3, pending and due now, subject [P0][PROD] title, the summary, dedup key vigil-incident-<id>'
);
select set_eq(
  $$select c.name || ' ' || a.channel, a.recipient from vigil.alerts a join vigil.contacts c on c.id = a.contact_id
     where a.incident_id = (select prod from inc)$$,
  $$values ('Ana sms', '+15550711001'), ('Ana pagerduty', 'T071_ANA_PD'), ('Ben email', 'ben@example.org'),
           ('Cy slack', 'T071_CY_SLACK'), ('Fay email', 'fay@example.org'), ('Ops slack', 'T071_OPS_SLACK')$$,
  'recipient is the address for sms and email, the secret''s name for the others'
);
select is((select escalated_at from vigil.incidents where id = (select prod from inc)), now(), 'level 3 sets escalated_at: the acknowledgement timer starts');
select is_empty($$select 1 from vigil.incident_log where incident_id = (select prod from inc) and message like 'no enabled%'$$,
  'with on-call contacts paged, nothing says nobody was paged');

update vigil.incidents set escalated_at = now() - interval '5 minutes' where id = (select prod from inc);
select is(vigil.escalate((select prod from inc), 4, 'nobody acknowledged'), 2, 'level 4 queues two alerts');
select set_eq($$select pg_temp.reached((select prod from inc), 4)$$, $$values ('Dee pagerduty'), ('Ops slack')$$,
  'level 4 pages the senior and the team, not on-call again');
select is((select escalated_at from vigil.incidents where id = (select prod from inc)), now() - interval '5 minutes',
          'level 4 keeps escalated_at from level 3');

select is(vigil.escalate((select qa from inc), 3, 'qa attempt 3 failed'), 5, 'level 3 of a qa incident queues five alerts');
select set_eq($$select pg_temp.reached((select qa from inc), 3)$$,
  $$values ('Gus sms'), ('Ben email'), ('Cy slack'), ('Fay email'), ('Ops slack')$$,
  'qa pages qa''s Gus and the contacts of every environment, not Ana, who is prod''s');
select is((select distinct subject from vigil.alerts where incident_id = (select qa from inc)), '[P1][QA] t071 qa saturated',
          'a critical qa incident is P1');

select is(vigil.escalate((select slow from inc), 3, 'still slow'), 5, 'level 3 of a warning queues five alerts');
select set_eq($$select pg_temp.reached((select slow from inc), 3)$$,
  $$values ('Ana email'), ('Ben email'), ('Cy slack'), ('Fay email'), ('Ops slack')$$,
  'P2 goes by email to whoever has it, and to Cy and the team on slack, the first P2 fallback they have');
select is((select distinct subject from vigil.alerts where incident_id = (select slow from inc)), '[P2][PROD] t071 prod slow',
          'a warning in prod is P2');

-- Nobody on call: the team still hears it, and the log says no on-call contact was paged.
update vigil.contacts set enabled = false where role = 'on_call';
select is(vigil.escalate((select dev from inc), 3, 'dev attempt 3 failed'), 1, 'with every on-call contact disabled, level 3 reaches only the team');
select results_eq(
  $$select level, message from vigil.incident_log where incident_id = (select dev from inc) order by id$$,
  $$values ('error'::text, 'escalation level 3: dev attempt 3 failed'::text),
           ('error', 'no enabled on_call contact for dev: nobody was paged')$$,
  'the incident log says no on-call contact was there to page'
);

-- A route is data: a second channel in it reaches everyone who has it.
update vigil.alert_routes set channels = '{email,slack}' where environment = 'qa' and priority = 'P2';
update vigil.contacts set enabled = true where role = 'on_call';
select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000712', 'notice', 'P2', '{on_call}', 't071 route', 'b'), 4,
          'with qa''s P2 route set to email and slack, a P2 notice in qa queues four alerts');
select set_eq(
  $$select c.name || ' ' || a.channel from vigil.alerts a join vigil.contacts c on c.id = a.contact_id where a.subject = 't071 route'$$,
  $$values ('Ben email'), ('Ben slack'), ('Cy slack'), ('Fay email')$$,
  'Ben gets it on both email and slack, Cy on slack, Fay on email; Gus, with only sms, gets nothing (sms is in neither list)'
);

-- ─── P3 and notices never fall back to sms ──────────────────────────────────────────────────
delete from vigil.contacts;
insert into vigil.contacts (name, role, channel, address, secret_name) values
  ('Kai', 'team', 'sms', '+15550711011', null),
  ('Lin', 'team', 'pagerduty', 'Lin PD', 'T071_LIN_PD'),
  ('Lin', 'team', 'discord', 'lin', 'T071_LIN_DISCORD'),
  ('Mo', 'team', 'sms', '+15550711013', null),
  ('Mo', 'team', 'slack', '#mo', 'T071_MO_SLACK');
create function pg_temp.routed(p_priority text) returns setof text language sql as $$
  select c.name || ' ' || a.channel from vigil.alerts a join vigil.contacts c on c.id = a.contact_id
   where a.subject = 't071 ' || p_priority
$$;
select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000711', 'notice', 'P3', '{team}', 't071 P3', 'b'), 2, 'a P3 notice queues two alerts');
select set_eq($$select pg_temp.routed('P3')$$, $$values ('Lin discord'), ('Mo slack')$$,
  'P3: Kai, who has only sms, is not texted; Lin gets discord and Mo slack');
select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000711', 'notice', 'info', '{team}', 't071 info', 'b'), 2, 'an info notice queues two alerts');
select set_eq($$select pg_temp.routed('info')$$, $$values ('Lin discord'), ('Mo slack')$$,
  'info: chat channels only, never sms, never PagerDuty');
select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000711', 'notice', 'P2', '{team}', 't071 P2', 'b'), 2, 'a P2 notice queues two alerts');
select set_eq($$select pg_temp.routed('P2')$$, $$values ('Lin discord'), ('Mo slack')$$,
  'P2: Lin gets discord, listed in the fallback before pagerduty; Kai is not texted');
select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000711', 'notice', 'P0', '{team}', 't071 P0', 'b'), 3, 'a P0 notice queues three alerts');
select set_eq($$select pg_temp.routed('P0')$$, $$values ('Kai sms'), ('Lin pagerduty'), ('Mo sms')$$,
  'P0: sms and PagerDuty, whoever has them');
select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000711', 'notice', 'P3', '{on_call,senior}', 't071 nobody', 'b'), 0,
          'roles select the contacts: nobody on call or senior, nothing queued');
select set_eq(
  $$select distinct subject, incident_id, dedup_key, severity::text, level from vigil.alerts where subject like 't071 P_'$$,
  $$values ('t071 P0'::text, null::bigint, null::text, 'critical'::text, null::integer),
           ('t071 P2', null, null, 'warning', null), ('t071 P3', null, null, 'info', null)$$,
  'an alert about a service, not an incident, has no dedup key and takes its severity from its priority'
);

-- ─── Quiet hours ────────────────────────────────────────────────────────────────────────────
-- Quinn and Ivy are quiet from an hour ago until two hours from now (UTC); their alerts that may
-- wait are due at the end of it, to the minute.
delete from vigil.contacts;
insert into vigil.contacts (name, role, channel, address, secret_name, quiet_hours)
select n, 'team', ch::vigil.alert_channel, addr, sec,
       jsonb_build_object('start', to_char(now() at time zone 'UTC' - interval '1 hour', 'HH24:MI'),
                          'end', to_char(now() at time zone 'UTC' + interval '2 hours', 'HH24:MI'), 'timezone', 'UTC')
  from (values ('Quinn', 'sms', '+15550711021', null), ('Quinn', 'email', 'quinn@example.org', null),
               ('Ivy', 'slack', '#ivy', 'T071_IVY_SLACK')) v(n, ch, addr, sec);
create temp table quiet_end as select date_trunc('minute', now() + interval '2 hours') as t;

select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000711', 'notice', 'P2', '{team}', 't071 quiet P2', 'b'), 2, 'a P2 notice during quiet hours is queued');
select results_eq(
  $$select c.name || ' ' || a.channel, a.status::text, a.next_attempt_at from vigil.alerts a join vigil.contacts c on c.id = a.contact_id
     where a.subject = 't071 quiet P2' order by 1$$,
  $$select * from (values ('Ivy slack', 'pending', (select t from quiet_end)), ('Quinn email', 'pending', (select t from quiet_end))) v$$,
  'P2 during quiet hours waits, pending, until the quiet period ends'
);
select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000711', 'notice', 'P3', '{team}', 't071 quiet P3', 'b'), 2, 'so is a P3 notice');
select is((select array_agg(distinct next_attempt_at) from vigil.alerts where subject = 't071 quiet P3'), array[(select t from quiet_end)],
          'P3 during quiet hours waits too');
select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000711', 'stable', 'info', '{team}', 't071 quiet info', 'b'), 1, 'so is an info notice (Ivy''s slack)');
select is((select next_attempt_at from vigil.alerts where subject = 't071 quiet info'), (select t from quiet_end),
          'an info notice during quiet hours waits too');
-- Those were queued a minute ago, say: they now count for the grouping hold.
update vigil.alerts set created_at = now() - interval '1 minute' where subject like 't071 quiet %';
select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000711', 'page', 'P0', '{team}', 't071 quiet P0', 'b'), 2, 'a P0 page during quiet hours is queued');
select results_eq(
  $$select c.name || ' ' || a.channel, a.next_attempt_at from vigil.alerts a join vigil.contacts c on c.id = a.contact_id
     where a.subject = 't071 quiet P0' order by 1$$,
  $$values ('Ivy slack', now()), ('Quinn sms', now())$$,
  'P0 wakes people: due now, neither held by quiet hours nor behind the notices that wait for them'
);
select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000711', 'page', 'P1', '{team}', 't071 quiet P1', 'b'), 2, 'so does a P1 page');
select is((select array_agg(distinct next_attempt_at) from vigil.alerts where subject = 't071 quiet P1'), array[now()],
          'P1 is due now during quiet hours');

-- ─── Grouping ───────────────────────────────────────────────────────────────────────────────
-- Jo was sent an alert 10 s ago, Kim 40 s ago (outside the 30 s window), Lee never; Lee has a
-- failed alert waiting 10 minutes for its retry. Nobody else exists.
delete from vigil.contacts;
insert into vigil.contacts (id, name, role, channel, address) values
  ('00000000-0000-4000-8000-0000000007a1', 'Jo', 'team', 'email', 'jo@example.org'),
  ('00000000-0000-4000-8000-0000000007a2', 'Kim', 'team', 'email', 'kim@example.org'),
  ('00000000-0000-4000-8000-0000000007a3', 'Lee', 'team', 'email', 'lee@example.org');
insert into vigil.alerts (contact_id, service_id, channel, recipient, severity, priority, event, subject, body,
                          status, sent_at, created_at, next_attempt_at, attempts, last_error)
values ('00000000-0000-4000-8000-0000000007a1', '00000000-0000-4000-8000-000000000711', 'email', 'jo@example.org', 'info', 'P2', 'notice',
        't071 earlier', 'b', 'sent', now() - interval '10 seconds', now() - interval '11 seconds', now() - interval '11 seconds', 1, null),
       ('00000000-0000-4000-8000-0000000007a2', '00000000-0000-4000-8000-000000000711', 'email', 'kim@example.org', 'info', 'P2', 'notice',
        't071 earlier', 'b', 'sent', now() - interval '40 seconds', now() - interval '41 seconds', now() - interval '41 seconds', 1, null),
       ('00000000-0000-4000-8000-0000000007a3', '00000000-0000-4000-8000-000000000711', 'email', 'lee@example.org', 'info', 'P2', 'notice',
        't071 earlier', 'b', 'failed', null, now() - interval '1 minute', now() + interval '10 minutes', 1, 'timeout');
create function pg_temp.due(p_subject text) returns table (who text, wait interval) language sql as $$
  select c.name, a.next_attempt_at - now() from vigil.alerts a join vigil.contacts c on c.id = a.contact_id
   where a.subject = p_subject order by 1
$$;

select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000711', 'notice', 'P2', '{team}', 't071 group 1', 'b'), 3, 'three alerts queued');
select results_eq($$select * from pg_temp.due('t071 group 1')$$,
  $$values ('Jo'::text, interval '20 seconds'), ('Kim', interval '0'), ('Lee', interval '0')$$,
  'Jo, sent something 10 s ago, waits until 30 s after it; Kim (40 s ago) and Lee (a retry far off) are due now');
select is(vigil.alert_hold_until('00000000-0000-4000-8000-0000000007a1', 30), now() + interval '20 seconds',
          'alert_hold_until says the same for Jo');
-- Five seconds later, another one.
update vigil.alerts set created_at = now() - interval '5 seconds' where subject = 't071 group 1';
select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000711', 'notice', 'P2', '{team}', 't071 group 2', 'b'), 3, 'three more queued');
select results_eq($$select * from pg_temp.due('t071 group 2')$$,
  $$values ('Jo'::text, interval '20 seconds'), ('Kim', interval '25 seconds'), ('Lee', interval '25 seconds')$$,
  'Jo''s joins the one already waiting (same time, one message); Kim''s and Lee''s wait 30 s after the one about to go');
update vigil.settings set alert_group_seconds = 0 where environment = 'prod';
select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000711', 'notice', 'P2', '{team}', 't071 group 3', 'b'), 3, 'with alert_group_seconds 0, three more');
select results_eq($$select * from pg_temp.due('t071 group 3')$$,
  $$values ('Jo'::text, interval '0'), ('Kim', interval '0'), ('Lee', interval '0')$$,
  'alert_group_seconds = 0 never holds an alert back');

select * from finish();
rollback;
