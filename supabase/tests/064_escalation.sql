-- vigil.escalate(incident, level, summary): the ladder, which only goes up. 1 is logged (info), 2 is a
-- warning, 3 pages the enabled on-call contacts of the incident's environment or of every
-- environment, 4 the senior ones; each page is a critical alert with the incident's dedup key. When
-- nobody is there to page, the incident log says so. Returns how many alerts were queued.
--
-- escalate pages every matching contact, so the contacts table is locked and emptied inside this
-- transaction (rolled back): only this file's contacts exist while it runs.
begin;
set search_path = extensions, public;
select plan(31);

lock table vigil.contacts in exclusive mode;
delete from vigil.contacts;

insert into vigil.services (id, name, kind, environment) values
  ('00000000-0000-4000-8000-000000000641', 't064-prod', 'postgres', 'prod'),
  ('00000000-0000-4000-8000-000000000642', 't064-qa', 'postgres', 'qa'),
  ('00000000-0000-4000-8000-000000000643', 't064-dev', 'postgres', 'dev');
insert into vigil.incidents (service_id, kind, severity, title) values
  ('00000000-0000-4000-8000-000000000641', 'connections', 'critical', 't064 prod saturated'),
  ('00000000-0000-4000-8000-000000000642', 'connections', 'critical', 't064 qa saturated'),
  ('00000000-0000-4000-8000-000000000643', 'connections', 'critical', 't064 dev saturated');
create temp table inc as
select (select id from vigil.incidents where title = 't064 prod saturated') as prod,
       (select id from vigil.incidents where title = 't064 qa saturated') as qa,
       (select id from vigil.incidents where title = 't064 dev saturated') as dev;

insert into vigil.contacts (name, role, channel, address, secret_name, environment, enabled) values
  ('t064 prod on call phone', 'on_call', 'sms', '+15550641', null, 'prod', true),
  ('t064 prod on call mail', 'on_call', 'email', 't064-oncall@example.com', null, 'prod', true),
  ('t064 senior', 'senior', 'pagerduty', 'Ops senior', 'T064_PAGERDUTY_KEY', null, true),
  ('t064 away', 'on_call', 'sms', '+15550649', null, 'prod', false),
  ('t064 qa on call', 'on_call', 'email', 't064-qa@example.com', null, 'qa', true);

select is((select escalation_level from vigil.incidents where id = (select prod from inc)), 0, 'a new incident is at level 0');

-- ─── Levels 1 and 2: logged, nobody paged ───────────────────────────────────────────────────
select is(vigil.escalate((select prod from inc), 1, 'attempt 1 failed'), 0, 'level 1 queues no alert');
select is(vigil.escalate((select prod from inc), 2, 'attempt 2 failed'), 0, 'level 2 queues no alert');
select results_eq(
  $$select level, message from vigil.incident_log where incident_id = (select prod from inc) order by id$$,
  $$values ('info'::text, 'escalation level 1: attempt 1 failed'::text), ('warning', 'escalation level 2: attempt 2 failed')$$,
  'level 1 is logged as info, level 2 as a warning'
);
select is((select escalation_level from vigil.incidents where id = (select prod from inc)), 2, 'the incident is at level 2');
select is_empty($$select 1 from vigil.alerts where incident_id = (select prod from inc)$$, 'nobody was paged at levels 1 and 2');

-- ─── Level 3: the on-call contacts of prod (and of every environment) ───────────────────────
select is(vigil.escalate((select prod from inc), 3, 'attempt 3 failed'), 2, 'level 3 queues two alerts');
select set_eq(
  $$select channel::text, recipient, severity::text, dedup_key, status::text from vigil.alerts where incident_id = (select prod from inc)$$,
  $$select c, r, 'critical' as severity, 'vigil-incident-' || (select prod from inc) as dedup_key, 'pending' as status
      from (values ('sms', '+15550641'), ('email', 't064-oncall@example.com')) v(c, r)$$,
  'level 3 pages the enabled prod on-call contacts (sms and email), critical, pending, with the incident''s dedup key'
);
select results_eq(
  $$select distinct subject, body from vigil.alerts where incident_id = (select prod from inc)$$,
  $$values ('[P0][PROD] t064 prod saturated'::text, 't064 prod saturated. attempt 3 failed'::text)$$,
  'the page names the priority (P0: critical in prod), the environment and the incident, and carries the summary'
);
select is_empty(
  $$select recipient from vigil.alerts
     where incident_id = (select prod from inc) and recipient in ('+15550649', 't064-qa@example.com', 'T064_PAGERDUTY_KEY')$$,
  'level 3 pages neither the disabled contact, nor qa''s on-call, nor the senior'
);
select results_eq(
  $$select level, message from vigil.incident_log where incident_id = (select prod from inc) order by id desc limit 1$$,
  $$values ('error'::text, 'escalation level 3: attempt 3 failed'::text)$$,
  'level 3 is logged as an error'
);

-- ─── Level 4: the senior contact, for every environment ─────────────────────────────────────
select is(vigil.escalate((select prod from inc), 4, '3 heal attempts did not fix it'), 1, 'level 4 queues one alert');
select results_eq(
  $$select channel::text, recipient, severity::text, dedup_key, body from vigil.alerts
     where incident_id = (select prod from inc) and recipient = 'T064_PAGERDUTY_KEY'$$,
  $$select 'pagerduty'::text, 'T064_PAGERDUTY_KEY'::text, 'critical'::text, 'vigil-incident-' || prod,
           't064 prod saturated. 3 heal attempts did not fix it'::text from inc$$,
  'level 4 pages the senior contact (every environment) on PagerDuty, critical'
);
select is((select escalation_level from vigil.incidents where id = (select prod from inc)), 4, 'the incident is at level 4');

-- ─── Never down, never twice ────────────────────────────────────────────────────────────────
create temp table prod_before as
select (select count(*) from vigil.alerts where incident_id = (select prod from inc)) as alerts,
       (select count(*) from vigil.incident_log where incident_id = (select prod from inc)) as logs;
select is(vigil.escalate((select prod from inc), 3, 'again'), 0, 'going back to level 3 returns 0');
select is(vigil.escalate((select prod from inc), 1, 'again'), 0, 'going back to level 1 returns 0');
select is(vigil.escalate((select prod from inc), 4, 'again'), 0, 'escalating to the level it is at returns 0 (no second page)');
select is(vigil.escalate((select prod from inc), 0, 'again'), 0, 'level 0 returns 0');
select results_eq(
  $$select (select escalation_level from vigil.incidents where id = (select prod from inc)),
           (select count(*) from vigil.alerts where incident_id = (select prod from inc)),
           (select count(*) from vigil.incident_log where incident_id = (select prod from inc))$$,
  $$select 4, alerts, logs from prod_before$$,
  'none of that moved the level, paged anyone or logged anything'
);
select throws_ok($$select vigil.escalate((select prod from inc), 5, 'beyond')$$, '23514', null,
                 'there is no level 5');
select is(vigil.escalate(-1, 3, 'nobody'), 0, 'an unknown incident returns 0');

-- ─── Another environment's contacts ─────────────────────────────────────────────────────────
select is(vigil.escalate((select qa from inc), 3, 'qa attempt 3 failed'), 1, 'a qa incident at level 3 pages one contact');
select results_eq($$select recipient from vigil.alerts where incident_id = (select qa from inc)$$,
                  $$values ('t064-qa@example.com'::text)$$, 'it pages qa''s on-call, not prod''s');

-- ─── Nobody to page ─────────────────────────────────────────────────────────────────────────
select is(vigil.escalate((select dev from inc), 3, 'dev attempt 3 failed'), 0, 'a dev incident at level 3 pages nobody (no dev on-call)');
select results_eq(
  $$select level, message from vigil.incident_log where incident_id = (select dev from inc) order by id$$,
  $$values ('error'::text, 'escalation level 3: dev attempt 3 failed'::text),
           ('error', 'no enabled on_call contact for dev: nobody was paged')$$,
  'the incident log says nobody was paged'
);
select is((select escalation_level from vigil.incidents where id = (select dev from inc)), 3,
          'the ladder still moves to 3 (the next rung is the senior)');
update vigil.contacts set enabled = false where secret_name = 'T064_PAGERDUTY_KEY';
select is(vigil.escalate((select dev from inc), 4, 'dev still broken'), 0, 'with the senior disabled, level 4 pages nobody');
select results_eq(
  $$select level, message from vigil.incident_log where incident_id = (select dev from inc) order by id desc limit 1$$,
  $$values ('error'::text, 'no enabled senior contact for dev: nobody was paged')$$,
  'the incident log says no senior was paged'
);
select is_empty($$select 1 from vigil.alerts where incident_id = (select dev from inc)$$, 'no alert exists for the dev incident');

-- ─── Shapes ─────────────────────────────────────────────────────────────────────────────────
select throws_ok($$insert into vigil.contacts (name, role, channel, address) values ('t064 short', 'senior', 'sms', '12')$$, '23514',
  'invalid contact "t064 short": address: must be a phone number in E.164 form, like +15551234567',
  'an sms contact needs a phone number (the field is named)');
select throws_ok($$insert into vigil.incident_log (incident_id, level, message) values ((select prod from inc), 'debug', 'x')$$, '23514',
  'new row for relation "incident_log" violates check constraint "incident_log_level"', 'an incident log level is info, warning or error');

select * from finish();
rollback;
