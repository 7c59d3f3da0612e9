-- The reports in SQL: settings refused naming the field; when a report is due in a time zone
-- (09:00 local, half-hour zones, catch-up window, the install day, made already, attempts);
-- claiming exactly once; storing and queueing to the report contacts only; the outbox handing the
-- report to notify; the facts; the dashboard's card; who may read them; the schedule.
begin;
set search_path = extensions, public;
select plan(44);

-- ─── Settings ───────────────────────────────────────────────────────────────────────────────
select is((select time_zone || ' ' || send_hour || ' ' || weekly_day || ' ' || channels::text from vigil.report_settings),
          'UTC 9 1 {email,slack}', 'by default: 09:00 UTC, weekly on Monday, by email and Slack');
select throws_like($$update vigil.report_settings set time_zone = 'Mars/Olympus'$$,
                   '%time_zone: no time zone is named ''Mars/Olympus''%', 'a time zone that does not exist is refused, named');
select throws_like($$update vigil.report_settings set channels = '{email,sms}'$$,
                   '%channels: must be some of email, slack, discord, webhook%', 'reports never go by sms');
select throws_like($$update vigil.report_settings set send_hour = 24, currency = 'dollars'$$,
                   '%send_hour: must be an hour from 0 to 23, got 24; currency: must be a three-letter code%',
                   'every bad field is named at once');
select throws_ok($$insert into vigil.report_settings (id) values (false)$$, '23514', null, 'there is one settings row');

-- ─── When a report is due ───────────────────────────────────────────────────────────────────
update vigil.report_settings set time_zone = 'America/Chicago', reporting_since = '2026-01-01', weekly_day = 1;
-- Chicago in February is UTC-6: 09:00 local is 15:00Z. Monday 9 February 2026.
select is((select array_agg((d ->> 'kind') || ' ' || (d ->> 'period_start') order by 1) from vigil.due_reports('2026-02-09 15:00Z') d),
          '{"daily 2026-02-08","weekly 2026-02-02"}', 'at 09:00 local on a Monday: the day before and the week before are due');
select is((select (d ->> 'from')::timestamptz from vigil.due_reports('2026-02-09 15:00Z') d where d ->> 'kind' = 'daily'),
          '2026-02-08 06:00Z'::timestamptz, 'the local day starts at local midnight');
update vigil.report_settings set weekly = false;
select is((select array_agg(d ->> 'kind') from vigil.due_reports('2026-02-10 14:59Z') d), null,
          'at 08:59 local no daily report is due (yesterday''s waits for 09:00, the last one''s catch-up is over)');
select is((select array_agg((d ->> 'kind') || ' ' || (d ->> 'period_start')) from vigil.due_reports('2026-02-10 15:00Z') d),
          '{"daily 2026-02-09"}', 'at 09:00 on a Tuesday only the daily report is due');
select is((select array_agg(d ->> 'kind') from vigil.due_reports('2026-02-10 02:59Z') d), '{daily}',
          'a missed report is caught up within 12 hours (20:59 local)');
select is((select array_agg(d ->> 'kind') from vigil.due_reports('2026-02-10 03:00Z') d), null,
          '...and not sent later than that');
update vigil.report_settings set time_zone = 'Asia/Kolkata';
select is((select array_agg(d ->> 'period_start') from vigil.due_reports('2026-02-10 03:29Z') d), null,
          'Kolkata (UTC+5:30): nothing at 08:59 local');
select is((select array_agg(d ->> 'period_start') from vigil.due_reports('2026-02-10 03:30Z') d), '{2026-02-09}',
          'Kolkata: due at 09:00 local, 03:30Z, which the half-hourly job reaches');
update vigil.report_settings set time_zone = 'America/Chicago', reporting_since = '2026-02-10 12:00Z';
select is((select array_agg(d ->> 'kind') from vigil.due_reports('2026-02-10 15:00Z') d), null,
          'no report of a day that ended before Vigil was installed');
select is((select array_agg(d ->> 'period_start') from vigil.due_reports('2026-02-11 15:00Z') d), '{2026-02-10}',
          'the install day is reported the next morning');
update vigil.report_settings set reporting_since = '2026-01-01', daily = false, weekly = true;
select is((select array_agg(d ->> 'kind') from vigil.due_reports('2026-02-09 15:00Z') d), '{weekly}',
          'a report turned off is never due');
select is((select array_agg(d ->> 'period_start') from vigil.due_reports('2026-02-10 14:59Z') d), '{2026-02-02}',
          'a missed weekly report is caught up within 24 hours');
select is((select array_agg(d ->> 'period_start') from vigil.due_reports('2026-02-10 15:00Z') d), null,
          '...and not sent later than that');
update vigil.report_settings set daily = true;

-- ─── Claiming once ──────────────────────────────────────────────────────────────────────────
create temporary table t098 (k text primary key, v bigint);
insert into t098 select 'first', vigil.claim_report('daily', '2026-02-08', '2026-02-09', 'America/Chicago', 't098-a');
select isnt((select v from t098 where k = 'first'), null, 'a due period is claimed');
select is(vigil.claim_report('daily', '2026-02-08', '2026-02-09', 'America/Chicago', 't098-b'), null,
          'a second worker gets nothing while the first holds it');
select is((select array_agg(d ->> 'kind') from vigil.due_reports('2026-02-09 15:00Z') d), '{weekly}',
          'a period being made is not due');
select vigil.fail_report((select v from t098 where k = 'first'), 't098-a', 'the renderer broke');
select is((select status || ': ' || error from vigil.reports where id = (select v from t098 where k = 'first')),
          'failed: the renderer broke', 'a failure is recorded with its reason');
select is(vigil.claim_report('daily', '2026-02-08', '2026-02-09', 'America/Chicago', 't098-b'), (select v from t098 where k = 'first'),
          'a failed report is claimed again');
update vigil.reports set status = 'failed', error = 'again', attempts = 3 where id = (select v from t098 where k = 'first');
select is((select array_agg(d ->> 'kind') from vigil.due_reports('2026-02-09 15:00Z') d), '{weekly}',
          'after 3 attempts it is no longer due');
select throws_ok($$select vigil.claim_report('monthly', '2026-02-08', '2026-02-09', 'UTC', 'w')$$, '22023', null,
                 'an unknown kind is refused');

-- ─── Storing and queueing ───────────────────────────────────────────────────────────────────
insert into vigil.contacts (id, name, role, channel, address, secret_name, enabled) values
  ('00000000-0000-4000-8000-000000000981', 't098 mail', 'team', 'email', 't098@example.org', null, true),
  ('00000000-0000-4000-8000-000000000982', 't098 chat', 'on_call', 'slack', '#t098', 'VIGIL_T098_SLACK_URL', true),
  ('00000000-0000-4000-8000-000000000983', 't098 phone', 'on_call', 'sms', '+15005550006', null, true),
  ('00000000-0000-4000-8000-000000000984', 't098 off', 'team', 'email', 't098-off@example.org', null, false);
update vigil.reports set status = 'failed', attempts = 1 where id = (select v from t098 where k = 'first');
insert into t098 select 'second', vigil.claim_report('daily', '2026-02-08', '2026-02-09', 'America/Chicago', 't098-c');
select throws_ok($$select vigil.finish_report((select v from t098 where k = 'second'), 't098-other', '{"kind":"daily"}', 's', 't', 'h')$$,
                 '55000', null, 'only the worker holding the claim may store it');
insert into t098 select 'queued', vigil.finish_report((select v from t098 where k = 'second'), 't098-c', '{"kind": "daily"}',
                                                      'Sun 8 Feb 2026: all well.', 'the text', '<p>the html</p>');
select ok((select v from t098 where k = 'queued') >= 2, 'the report is queued');
select results_eq(
  $$select k.name, a.channel::text, a.event, a.priority, a.subject from vigil.alerts a join vigil.contacts k on k.id = a.contact_id
     where a.report_id = (select v from t098 where k = 'second') and k.name like 't098%' order by k.name$$,
  $$values ('t098 chat', 'slack', 'report', 'info', 'Vigil daily report, Sunday 8 Feb 2026'),
           ('t098 mail', 'email', 'report', 'info', 'Vigil daily report, Sunday 8 Feb 2026')$$,
  'one alert per enabled contact with a report role on a report channel; not by sms, not to a disabled contact');
select is((select status || ' ' || recipients from vigil.reports where id = (select v from t098 where k = 'second')),
          'ready ' || (select v from t098 where k = 'queued'), 'stored ready, with how many it was queued for');
select is(vigil.claim_report('daily', '2026-02-08', '2026-02-09', 'America/Chicago', 't098-d'), null, 'a ready report is not made twice');
select is(vigil.claim_report('daily', '2026-02-08', '2026-02-09', 'America/Chicago', 't098-d', true),
          (select v from t098 where k = 'second'), '...unless asked again');
select is(vigil.finish_report((select v from t098 where k = 'second'), 't098-d', '{"kind": "daily"}', 'again', 'text', '<p>x</p>'),
          0, 'made again, it reaches nobody twice');
select throws_ok($$insert into vigil.alerts (channel, recipient, severity, subject, body, event, priority)
                   values ('email', 'x@example.org', 'info', 's', 'b', 'report', 'info')$$, '23514', null,
                 'a report alert carries its report');

-- notify is handed the report with its alert.
update vigil.alerts set next_attempt_at = now() - interval '1 second'
 where report_id = (select v from t098 where k = 'second');
select is((select count(*)::int from vigil.claim_alerts('t098-notify', 10000) c
            where (c ->> 'event') = 'report' and (c -> 'report' ->> 'html') = '<p>x</p>'
              and (c -> 'contact' ->> 'name') like 't098%'), 2, 'claim_alerts hands notify the stored report');

-- ─── The facts ──────────────────────────────────────────────────────────────────────────────
insert into vigil.services (id, name, kind, config) values
  ('00000000-0000-4000-8000-000000000985', 't098-api', 'http', '{"url":"https://t098.example.com"}');
insert into vigil.incidents (id, service_id, kind, severity, title, opened_at, resolved_at, status) overriding system value values
  (980001, '00000000-0000-4000-8000-000000000985', 'slow_response', 'warning', 't098 slow', '2021-03-04 01:00Z', '2021-03-04 01:30Z', 'resolved'),
  (980002, '00000000-0000-4000-8000-000000000985', 'service_unhealthy', 'critical', 't098 down', '2021-03-04 02:00Z', '2021-03-04 02:05Z', 'resolved');
insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome, created_at) values
  (gen_random_uuid(), 'result', 980002, '00000000-0000-4000-8000-000000000985', 'restart_service', 1, 'down', 'succeeded', '2021-03-04 02:03Z');
insert into vigil.maintenance_runs (task, cadence, status, started_at, finished_at, lease_until, worker, actions) values
  ('t098_vacuum', 'daily', 'succeeded', '2021-03-04 03:00Z', '2021-03-04 03:01Z', '2021-03-04 03:10Z', 't098', '[{"vacuumed": "a"}, {"vacuumed": "b"}]');
create temporary table t098f as select vigil.report_facts('daily', '2021-03-04 00:00Z', '2021-03-05 00:00Z') as f;
select is((select jsonb_path_query_array(f, '$.incidents[*].title') from t098f), '["t098 down", "t098 slow"]'::jsonb,
          'incidents: the critical one first');
select is((select f -> 'incidents' -> 0 -> 'healed' from t098f), 'true'::jsonb, 'a healed incident says so');
select is((select f -> 'heals' from t098f), '[{"strategy": "restart_service", "succeeded": 1, "failed": 0, "undone": 0, "other": 0}]'::jsonb,
          'heals per strategy');
select is((select f -> 'maintenance_actions' from t098f), '[{"task": "t098_vacuum", "runs": 1, "actions": 2}]'::jsonb,
          'what maintenance changed');
select is((select f -> 'kpis' -> 'incidents' ->> 'detected' from t098f), '2', 'the KPIs of report_kpis are in it');
select throws_ok($$select vigil.report_facts('hourly', now() - interval '1 hour', now())$$, '22023', null, 'an unknown kind is refused');

-- ─── Who reads them; the dashboard; the schedule ────────────────────────────────────────────
insert into vigil.reports (kind, period_start, period_end, time_zone, from_at, to_at, status, facts, summary, body_text,
                           body_html, generated_at)
values ('daily', '2098-01-01', '2098-01-02', 'UTC', '2098-01-01Z', '2098-01-02Z', 'ready', '{}', 't098 latest', 'text', '<p>h</p>', now());
set local role authenticated;
set local request.jwt.claims = '{"sub": "00000000-0000-4000-8000-000000000981", "role": "authenticated", "app_metadata": {"role": "devops"}}';
select is((select vigil.dashboard_snapshot() -> 'daily_report' ->> 'summary'), 't098 latest',
          'the dashboard shows the latest daily report');
set local request.jwt.claims = '{"sub": "00000000-0000-4000-8000-000000000982", "role": "authenticated", "app_metadata": {}}';
select is((select count(*)::int from vigil.reports), 0, 'a user who is not an operator reads no report');
update vigil.report_settings set send_hour = 7;
reset role;
select is((select send_hour from vigil.report_settings), 9, '...and cannot change when they go out');
select is((select schedule from cron.job where jobname = 'vigil-report'), '0,30 * * * *', 'the report job runs twice an hour');

select * from finish();
rollback;
