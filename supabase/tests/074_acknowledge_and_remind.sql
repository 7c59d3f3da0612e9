-- An incident's life after the page. acknowledge_incident(id, by) takes it in someone's name (the
-- ack link); an operator's UPDATE of acknowledged_at is named from their JWT's email. Acknowledging
-- tells the channels that track an incident (PagerDuty, Slack, Discord, webhooks) that someone has
-- it, and logs who. Resolving drops the pages and reminders not sent yet and tells everyone who was
-- sent something, sms included. Every minute sweep_alerts() pages the senior when a critical page
-- at level 3 went unacknowledged for alert_ack_escalate_minutes, reminds on-call of one still
-- unacknowledged every alert_reminder_minutes, and wakes notify when something is due.
--
-- Pages go to every matching contact, so the contacts table is locked and emptied inside this
-- transaction (rolled back): only this file's contacts exist while it runs.
begin;
set search_path = extensions, public;
select plan(48);

lock table vigil.contacts in exclusive mode;
delete from vigil.contacts;
insert into vigil.contacts (name, role, channel, address, secret_name) values
  ('Ana', 'on_call', 'sms', '+15550740001', null),
  ('Ana', 'on_call', 'pagerduty', 'Ana PD', 'T074_ANA_PD'),
  ('Ben', 'on_call', 'email', 'ben@example.org', null),
  ('Ops', 'team', 'slack', '#ops', 'T074_OPS_SLACK'),
  ('Hook', 'team', 'webhook', 'https://hooks.example.org/t074', 'T074_HOOK_KEY'),
  ('Dee', 'senior', 'pagerduty', 'Dee PD', 'T074_DEE_PD');
insert into vigil.services (id, name, kind, environment, config) values
  ('00000000-0000-4000-8000-000000000741', 't074-api', 'http', 'prod', '{"url": "https://api.t074.example.org"}');

create function pg_temp.open_incident(p_kind text, p_severity vigil.severity default 'critical') returns bigint language sql as $$
  insert into vigil.incidents (service_id, kind, severity, title)
  values ('00000000-0000-4000-8000-000000000741', p_kind, p_severity, 't074 ' || p_kind) returning id
$$;
create function pg_temp.inc(p_kind text) returns bigint language sql as $$
  select id from vigil.incidents where title = 't074 ' || p_kind
$$;
-- An incident's alerts of one event: 'person channel'.
create function pg_temp.reached(p_incident bigint, p_event text) returns setof text language sql as $$
  select c.name || ' ' || a.channel from vigil.alerts a join vigil.contacts c on c.id = a.contact_id
   where a.incident_id = p_incident and a.event = p_event
$$;
-- Pages that went out p_ago ago, at a level reached then.
create function pg_temp.paged(p_incident bigint, p_ago interval) returns void language sql as $$
  update vigil.alerts set status = 'sent', created_at = now() - p_ago, next_attempt_at = now() - p_ago,
                          sent_at = now() - p_ago + interval '5 seconds'
   where incident_id = p_incident;
  update vigil.incidents set escalated_at = now() - p_ago where id = p_incident;
$$;

-- ─── acknowledge_incident ───────────────────────────────────────────────────────────────────
select pg_temp.open_incident('ack');
select is(vigil.escalate(pg_temp.inc('ack'), 3, 'attempt 3 failed'), 5, 'the page goes to five contacts');
update vigil.alerts set status = 'sent', sent_at = now() where incident_id = pg_temp.inc('ack');

select is(vigil.acknowledge_incident(pg_temp.inc('ack'), 'Ana López'),
          jsonb_build_object('acknowledged', true, 'by', 'Ana López', 'at', now()),
          'acknowledge_incident takes an open incident in the name given and says so');
select results_eq($$select acknowledged_at, acknowledged_by_name, acknowledged_by from vigil.incidents where id = pg_temp.inc('ack')$$,
  $$values (now(), 'Ana López'::text, null::uuid)$$, 'the incident is acknowledged now by Ana López (the link names a person, not a user)');
select set_eq($$select pg_temp.reached(pg_temp.inc('ack'), 'acknowledged')$$,
  $$values ('Ana pagerduty'), ('Ops slack'), ('Hook webhook')$$,
  'an acknowledged notice goes to the PagerDuty, Slack and webhook contacts that were paged, not to sms or email');
select results_eq(
  $$select distinct priority, severity::text, status::text, subject, body, dedup_key, next_attempt_at
      from vigil.alerts where incident_id = pg_temp.inc('ack') and event = 'acknowledged'$$,
  $$values ('info'::text, 'critical'::text, 'pending'::text, '[ACK][PROD] t074 ack'::text, 't074 ack: acknowledged by Ana López'::text,
            'vigil-incident-' || pg_temp.inc('ack'), now())$$,
  'the notice is info, pending now, names who, and carries the incident''s dedup key (PagerDuty acknowledges its event)'
);
select results_eq($$select level, message from vigil.incident_log where incident_id = pg_temp.inc('ack') order by id desc limit 1$$,
  $$values ('info'::text, 'acknowledged by Ana López'::text)$$, 'the incident log says who acknowledged');

select is(vigil.acknowledge_incident(pg_temp.inc('ack'), 'Ben'),
          jsonb_build_object('acknowledged', false, 'status', 'open', 'by', 'Ana López', 'at', now(), 'resolved_at', null, 'exists', true),
          'a second acknowledgement is refused, saying who has it');
select is((select acknowledged_by_name from vigil.incidents where id = pg_temp.inc('ack')), 'Ana López', 'the first name stays');
select is((select count(*)::int from vigil.alerts where incident_id = pg_temp.inc('ack') and event = 'acknowledged'), 3,
          'and no second round of notices');
select throws_ok($$select vigil.acknowledge_incident(pg_temp.inc('ack'), '  ')$$, '22023',
                 'acknowledge_incident: who acknowledges must be named', 'a blank name is refused');
select throws_ok($$select vigil.acknowledge_incident(pg_temp.inc('ack'), null)$$, '22023',
                 'acknowledge_incident: who acknowledges must be named', 'so is none');
select is(vigil.acknowledge_incident(-1, 'Ana') ->> 'exists', 'false', 'an unknown incident is not acknowledged, and says it does not exist');

insert into vigil.incidents (service_id, kind, severity, title, status, resolved_at)
values ('00000000-0000-4000-8000-000000000741', 'gone', 'critical', 't074 gone', 'resolved', now() - interval '3 minutes');
select is(vigil.acknowledge_incident(pg_temp.inc('gone'), 'Ana'),
          jsonb_build_object('acknowledged', false, 'status', 'resolved', 'by', null, 'at', null,
                             'resolved_at', now() - interval '3 minutes', 'exists', true),
          'a resolved incident cannot be acknowledged: the answer says it was resolved, and when');
select is((select acknowledged_at from vigil.incidents where id = pg_temp.inc('gone')), null::timestamptz, 'it stays unacknowledged');

-- ─── An operator acknowledges from the dashboard ────────────────────────────────────────────
select pg_temp.open_incident('dashboard');
select vigil.escalate(pg_temp.inc('dashboard'), 3, 'attempt 3 failed');
update vigil.alerts set status = 'sent', sent_at = now() where incident_id = pg_temp.inc('dashboard');
select pg_temp.open_incident('anonymous');
select pg_temp.open_incident('plain_sql');
create temp table ids as select pg_temp.inc('dashboard') as dashboard, pg_temp.inc('anonymous') as anonymous, pg_temp.inc('plain_sql') as plain;
grant select on ids to authenticated;

set local role authenticated;
set local request.jwt.claims = '{"sub":"00000000-0000-4000-8000-0000000007e1","role":"authenticated","email":"ops.lead@example.org","app_metadata":{"role":"devops"}}';
select throws_ok($$update vigil.incidents set acknowledged_at = now(), acknowledged_by_name = 'someone else' where id = (select dashboard from ids)$$,
                 '42501', 'permission denied for table incidents', 'an operator cannot write acknowledged_by_name');
update vigil.incidents set acknowledged_at = now() where id = (select dashboard from ids);
select results_eq($$select acknowledged_at, acknowledged_by_name, acknowledged_by from vigil.incidents where id = (select dashboard from ids)$$,
  $$values (now(), 'ops.lead@example.org'::text, '00000000-0000-4000-8000-0000000007e1'::uuid)$$,
  'an operator''s acknowledgement is named by the email in their JWT (and acknowledged_by by its sub)');
set local request.jwt.claims = '{"sub":"00000000-0000-4000-8000-0000000007e2","role":"authenticated","app_metadata":{"role":"devops"}}';
update vigil.incidents set acknowledged_at = now() where id = (select anonymous from ids);
select is((select acknowledged_by_name from vigil.incidents where id = (select anonymous from ids)), '00000000-0000-4000-8000-0000000007e2',
          'an operator whose JWT has no email is named by their user id');
reset role;
set local request.jwt.claims = '';

select set_eq($$select pg_temp.reached((select dashboard from ids), 'acknowledged')$$,
  $$values ('Ana pagerduty'), ('Ops slack'), ('Hook webhook')$$, 'the operator''s acknowledgement sends the same notices');
select results_eq($$select message from vigil.incident_log where incident_id = (select dashboard from ids) order by id desc limit 1$$,
  $$values ('acknowledged by ops.lead@example.org'::text)$$, 'and logs the operator''s email');
update vigil.incidents set acknowledged_at = now() where id = (select plain from ids);
select is((select acknowledged_by_name from vigil.incidents where id = (select plain from ids)), session_user::text,
          'plain SQL without a JWT is named by the database user');
update vigil.incidents set acknowledged_at = null where id = (select plain from ids);
select results_eq($$select acknowledged_at, acknowledged_by_name from vigil.incidents where id = (select plain from ids)$$,
  $$values (null::timestamptz, null::text)$$, 'clearing the acknowledgement clears the name');

-- ─── Resolving ──────────────────────────────────────────────────────────────────────────────
-- Sent: Ana (sms, PagerDuty), Ben, Ops. Being sent: Hook's webhook. Not sent yet: three reminders,
-- one of them failed once.
select pg_temp.open_incident('resolve');
update vigil.incidents set opened_at = now() - interval '42 minutes' where id = pg_temp.inc('resolve');
select vigil.escalate(pg_temp.inc('resolve'), 3, 'attempt 3 failed');
update vigil.alerts set status = 'sent', sent_at = now() where incident_id = pg_temp.inc('resolve') and channel <> 'webhook';
update vigil.alerts set status = 'sending', claimed_by = 't074-worker', claimed_until = now() + interval '2 minutes', attempts = 1
 where incident_id = pg_temp.inc('resolve') and channel = 'webhook';
select is(vigil.queue_alert(pg_temp.inc('resolve'), null, 'reminder', 'P0', '{on_call}', 't074 reminder', 'b', 3), 3, 'three reminders are queued');
update vigil.alerts set status = 'failed', last_error = 'HTTP 502'
 where incident_id = pg_temp.inc('resolve') and event = 'reminder' and channel = 'email';

update vigil.incidents set status = 'resolved', resolved_at = now() where id = pg_temp.inc('resolve');
select is((select count(*)::int from vigil.alerts where incident_id = pg_temp.inc('resolve') and event = 'reminder' and status = 'suppressed'
                                                 and suppressed_reason = 'the incident was resolved before it was sent'), 3,
          'the reminders not sent yet, pending or failed, are suppressed: the incident was resolved before they were sent');
select set_eq($$select pg_temp.reached(pg_temp.inc('resolve'), 'resolved')$$,
  $$values ('Ana sms'), ('Ana pagerduty'), ('Ben email'), ('Ops slack'), ('Hook webhook')$$,
  'a resolved notice goes to each contact that was sent the page, sms and email included, or is being sent it (Hook)');
select results_eq(
  $$select distinct priority, severity::text, status::text, subject, body, dedup_key
      from vigil.alerts where incident_id = pg_temp.inc('resolve') and event = 'resolved'$$,
  $$values ('info'::text, 'critical'::text, 'pending'::text, '[RESOLVED][PROD] t074 resolve'::text,
            'Resolved after 42 min: t074 resolve'::text, 'vigil-incident-' || pg_temp.inc('resolve'))$$,
  'the notice is info, says how long it lasted, and carries the dedup key (PagerDuty resolves its event)'
);
select is((select status::text from vigil.alerts where incident_id = pg_temp.inc('resolve') and channel = 'webhook' and event = 'page'), 'sending',
          'the page a worker is sending right now is left to it');
-- That send fails and would be retried; by then the incident is over.
select vigil.record_alert_attempt('t074-worker',
  (select jsonb_agg(id) from vigil.alerts where incident_id = pg_temp.inc('resolve') and channel = 'webhook' and event = 'page'),
  '{"outcome": "retryable", "error": "HTTP 503"}');
update vigil.alerts set next_attempt_at = now() where incident_id = pg_temp.inc('resolve') and channel = 'webhook' and event = 'page';
create temp table claimed as select c from vigil.claim_alerts('t074-worker') c;
select is_empty($$select 1 from claimed where (c->>'incident_id')::bigint = pg_temp.inc('resolve') and c->>'event' = 'page'$$,
  'claim_alerts does not hand out the retry of a page whose incident has resolved since');
select results_eq(
  $$select status::text, suppressed_reason from vigil.alerts where incident_id = pg_temp.inc('resolve') and channel = 'webhook' and event = 'page'$$,
  $$values ('suppressed'::text, 'the incident was resolved before it was sent'::text)$$,
  'it records it as suppressed instead'
);
select is((select count(*)::int from claimed where (c->>'incident_id')::bigint = pg_temp.inc('resolve') and c->>'event' = 'resolved'), 5,
          'while the resolved notices go out');

-- ─── sweep_alerts: the senior, reminders ────────────────────────────────────────────────────
-- Everything so far is either acknowledged, resolved or handed to a worker: mark it all sent.
update vigil.alerts set status = 'sent', sent_at = now() - interval '1 minute', claimed_by = null, claimed_until = null
 where status in ('pending', 'failed', 'sending');
update vigil.settings set alert_ack_escalate_minutes = 45 where environment = 'prod';
-- unacked: paged 50 min ago, nobody acknowledged: the senior is next.
select pg_temp.open_incident('unacked');
select vigil.escalate(pg_temp.inc('unacked'), 3, 'attempt 3 failed');
select pg_temp.paged(pg_temp.inc('unacked'), interval '50 minutes');
-- remind: paged 31 min ago (past the 30-minute reminder, short of the 45-minute escalation).
select pg_temp.open_incident('remind');
select vigil.escalate(pg_temp.inc('remind'), 3, 'attempt 3 failed');
select pg_temp.paged(pg_temp.inc('remind'), interval '31 minutes');
-- senior: at level 4 since 31 min ago.
select pg_temp.open_incident('senior');
select vigil.escalate(pg_temp.inc('senior'), 3, 'attempt 3 failed'), vigil.escalate(pg_temp.inc('senior'), 4, 'nobody acknowledged');
select pg_temp.paged(pg_temp.inc('senior'), interval '31 minutes');
-- Neither: acknowledged, a warning, folded into another incident.
select pg_temp.open_incident('acked');
select vigil.escalate(pg_temp.inc('acked'), 3, 'attempt 3 failed');
select pg_temp.paged(pg_temp.inc('acked'), interval '50 minutes');
update vigil.incidents set acknowledged_at = now() - interval '40 minutes' where id = pg_temp.inc('acked');
select pg_temp.open_incident('warning', 'warning');
select vigil.escalate(pg_temp.inc('warning'), 3, 'attempt 3 failed');
select pg_temp.paged(pg_temp.inc('warning'), interval '50 minutes');
select pg_temp.open_incident('folded');
select vigil.escalate(pg_temp.inc('folded'), 3, 'attempt 3 failed');
select pg_temp.paged(pg_temp.inc('folded'), interval '50 minutes');
update vigil.incidents set folded_into = pg_temp.inc('unacked') where id = pg_temp.inc('folded');
update vigil.alerts set status = 'sent', sent_at = now() - interval '1 minute' where status = 'pending';
create temp table counts as select count(*) as crons from vigil.invocations where fn = 'notify' and body = '{"trigger": "cron"}';

create temp table sweep1 as select vigil.sweep_alerts() as r;
select results_eq($$select (r->>'escalated')::int, (r->>'reminders')::int, (r->>'settled')::int from sweep1$$,
  $$values (1, 2, 0)$$, 'the sweep escalates one incident and reminds of two');
select is((select escalation_level from vigil.incidents where id = pg_temp.inc('unacked')), 4,
          'a critical incident unacknowledged 50 min after its level 3 page (more than 45) goes to level 4');
select set_eq(
  $$select c.name || ' ' || a.channel from vigil.alerts a join vigil.contacts c on c.id = a.contact_id
     where a.incident_id = pg_temp.inc('unacked') and a.level = 4$$,
  $$values ('Dee pagerduty'), ('Ops slack'), ('Hook webhook')$$, 'the senior is paged (with the team)');
select results_eq($$select message from vigil.incident_log where incident_id = pg_temp.inc('unacked') and message like 'escalation level 4%'$$,
  $$values ('escalation level 4: not acknowledged within 45 min'::text)$$, 'the log says why');
select is((select escalated_at from vigil.incidents where id = pg_temp.inc('unacked')), now() - interval '50 minutes',
          'escalated_at keeps the time of the first page');
select set_eq($$select pg_temp.reached(pg_temp.inc('remind'), 'reminder')$$,
  $$values ('Ana sms'), ('Ana pagerduty'), ('Ben email')$$,
  'a level-3 incident paged 31 min ago (more than 30) reminds on-call, not the team');
select results_eq(
  $$select distinct priority, level, status::text, subject, body, dedup_key, next_attempt_at from vigil.alerts
     where incident_id = pg_temp.inc('remind') and event = 'reminder'$$,
  $$values ('P0'::text, 3, 'pending'::text, '[P0][PROD] still open: t074 remind'::text, 't074 remind. Still open and not acknowledged.'::text,
            'vigil-incident-' || pg_temp.inc('remind'), now())$$,
  'the reminder is P0, due now, says it is still open and not acknowledged'
);
select is(pg_temp.inc('remind') in (select incident_id from vigil.alerts where level = 4), false, 'it is not escalated');
select set_eq($$select pg_temp.reached(pg_temp.inc('senior'), 'reminder')$$,
  $$values ('Ana sms'), ('Ana pagerduty'), ('Ben email'), ('Dee pagerduty')$$,
  'at level 4 the reminder goes to on-call and the senior');
select is_empty(
  $$select 1 from vigil.alerts a where a.incident_id in (pg_temp.inc('acked'), pg_temp.inc('warning'), pg_temp.inc('folded'))
      and (a.event = 'reminder' or a.level = 4)$$,
  'an acknowledged, a warning and a folded incident get neither a reminder nor the senior');
select is((select escalation_level from vigil.incidents where id = pg_temp.inc('acked')), 3, 'the acknowledged one stays at level 3');
select is((select count(*) from vigil.invocations where fn = 'notify' and body = '{"trigger": "cron"}'), (select crons + 1 from counts),
          'with alerts due, the sweep wakes notify');

create temp table sweep2 as select vigil.sweep_alerts() as r;
select results_eq($$select (r->>'escalated')::int, (r->>'reminders')::int from sweep2$$, $$values (0, 0)$$,
  'a second sweep right after does neither again');
select is((select count(*)::int from vigil.alerts where event = 'reminder' and incident_id = pg_temp.inc('remind')), 3,
          'no second reminder while the last is recent');
-- Ana acknowledges before the reminders went out: they no longer say anything true.
select vigil.acknowledge_incident(pg_temp.inc('remind'), 'Ana López');
select is_empty($$select 1 from vigil.claim_alerts('t074-worker') c where (c->>'incident_id')::bigint = pg_temp.inc('remind') and c->>'event' = 'reminder'$$,
  'claim_alerts does not hand out reminders of an incident acknowledged since they were queued');
select is((select array_agg(distinct suppressed_reason) from vigil.alerts where incident_id = pg_temp.inc('remind') and event = 'reminder'),
          array['the incident was acknowledged before it was sent'], 'it records them as suppressed, saying why');
update vigil.alerts set status = 'sent', sent_at = now() where status in ('pending', 'failed');
create temp table crons as select count(*) as n from vigil.invocations where fn = 'notify' and body = '{"trigger": "cron"}';
select is((vigil.sweep_alerts() ->> 'due')::int, 0, 'with everything sent, nothing is due');
select is((select count(*) from vigil.invocations where fn = 'notify' and body = '{"trigger": "cron"}'), (select n from crons),
          'and the sweep leaves notify asleep');
update vigil.alerts set status = 'sending', sent_at = null, claimed_by = 't074-dead-worker', claimed_until = now() - interval '1 second'
 where id = (select max(id) from vigil.alerts);
select vigil.sweep_alerts();
select is((select count(*) from vigil.invocations where fn = 'notify' and body = '{"trigger": "cron"}'), (select n + 1 from crons),
          'a lease that ran out wakes notify too (claim_alerts puts the alert back)');

select * from finish();
rollback;
