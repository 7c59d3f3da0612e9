-- vigil.report_kpis(): the report's numbers from seeded history in a day of 2020 (nothing else
-- lives there), each checked by hand: uptime against the SLA, incidents, heals, the KPIs and the
-- performance against the day before.
begin;
set search_path = extensions, public;
select plan(14);

insert into vigil.services (id, name, kind, config) values
  ('00000000-0000-4000-8000-000000000961', 't096-api', 'http', '{"url":"https://t096-api.example.com"}'),
  ('00000000-0000-4000-8000-000000000962', 't096-web', 'http', '{"url":"https://t096-web.example.com"}'),
  ('00000000-0000-4000-8000-000000000963', 't096-probe', 'http', '{"url":"https://t096-probe.example.com"}');

-- Uptime: 24 hours of 120 checks; api had 1 down check (99.965 %), web 10 (99.653 %).
insert into vigil.check_rollups (service_id, bucket, checks, healthy, degraded, down)
select s.id, timestamptz '2020-01-10 00:00Z' + h * interval '1 hour', 120,
       120 - case when h = 5 then d else 0 end, 0, case when h = 5 then d else 0 end
  from generate_series(0, 23) h,
       (values ('00000000-0000-4000-8000-000000000961'::uuid, 1), ('00000000-0000-4000-8000-000000000962'::uuid, 10)) s(id, d);

-- Performance: probe's checks take 101..200 ms on the day, 51..100 ms the day before.
alter table vigil.checks disable trigger checks_apply;
insert into vigil.checks (service_id, checked_at, status, response_ms)
select '00000000-0000-4000-8000-000000000963', timestamptz '2020-01-10 12:00Z' + n * interval '1 second', 'healthy', 100 + n
  from generate_series(1, 100) n;
insert into vigil.checks (service_id, checked_at, status, response_ms)
select '00000000-0000-4000-8000-000000000963', timestamptz '2020-01-09 12:00Z' + n * interval '1 second', 'healthy', 50 + n / 2.0
  from generate_series(1, 100) n;
-- Detection: healthy at 00:58, failing from 00:59 (no response), the incident at 01:00.
insert into vigil.checks (service_id, checked_at, status, response_ms, error) values
  ('00000000-0000-4000-8000-000000000963', '2020-01-10 00:58Z', 'healthy', null, null),
  ('00000000-0000-4000-8000-000000000963', '2020-01-10 00:59Z', 'down', null, 'refused'),
  ('00000000-0000-4000-8000-000000000963', '2020-01-10 00:59:30Z', 'down', null, 'refused');
alter table vigil.checks enable trigger checks_apply;

-- Three incidents: healed by Vigil in 10 minutes; gone by itself in a minute; handled by a person in 2 hours.
insert into vigil.incidents (id, service_id, kind, severity, title, opened_at) overriding system value values
  (960001, '00000000-0000-4000-8000-000000000963', 'service_unhealthy', 'critical', 't096-probe is down', '2020-01-10 01:00Z'),
  (960002, '00000000-0000-4000-8000-000000000962', 'service_unhealthy', 'warning', 't096-web blipped', '2020-01-10 02:00Z'),
  (960003, '00000000-0000-4000-8000-000000000962', 'slow_response', 'critical', 't096-web is slow', '2020-01-10 03:00Z');
insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome, created_at) values
  ('00000000-0000-4000-8000-0000000009e1', 'result', 960001, '00000000-0000-4000-8000-000000000963', 'restart_service', 1, 't096', 'succeeded', '2020-01-10 01:05Z'),
  ('00000000-0000-4000-8000-0000000009e2', 'result', 960003, '00000000-0000-4000-8000-000000000962', 'restart_service', 1, 't096', 'failed', '2020-01-10 03:05Z');
update vigil.incidents set escalation_level = 3, acknowledged_at = '2020-01-10 03:30Z' where id = 960003;
update vigil.incidents set status = 'resolved', resolved_at = opened_at + case id when 960001 then interval '10 minutes'
                                                                                  when 960002 then interval '1 minute'
                                                                                  else interval '2 hours' end
 where id in (960001, 960002, 960003);

create temporary table k on commit drop as
  select vigil.report_kpis('2020-01-10 00:00Z', '2020-01-11 00:00Z') as r;

select is((select r #> '{uptime,services}' from k) @> '[{"service": "t096-api", "pct": 99.965, "met": true}]', true,
          'api met the 99.9 % SLA at 99.965 %');
select is((select r #> '{uptime,services}' from k) @> '[{"service": "t096-web", "pct": 99.653, "met": false}]', true,
          'web missed it at 99.653 %');
select is((select r #>> '{incidents,detected}' from k), '3', 'three incidents detected');
select is((select r #>> '{incidents,fixed_by_vigil}' from k), '1', 'one fixed by Vigil');
select is((select r #>> '{kpis,auto_heal_success_pct}' from k)::numeric, 50.0, 'one heal of two succeeded');
select is((select r #>> '{kpis,false_positive_pct}' from k)::numeric, 33.3, 'one in three ended on its own within 2 minutes');
select is((select r #>> '{kpis,manual_intervention_pct}' from k)::numeric, 33.3, 'one in three needed a person');
select is((select r #>> '{kpis,mttr_seconds}' from k)::numeric, 2620.0, 'mean time to resolve (600 + 60 + 7200) / 3 s');
select is((select r #>> '{kpis,mttd_seconds}' from k)::numeric, 60.0, 'from the first failing check to the incident: 60 s');
select is((select r #>> '{kpis,engineer_minutes_saved}' from k)::int, 30, '30 minutes saved for the incident Vigil healed');
select is((select r #>> '{kpis,cost_per_incident}' from k)::numeric, 16.67, 'half an hour at 100 an hour, over three incidents');
select is(
  (select jsonb_build_object('now', r #> '{performance,api_p95_ms}', 'before', r #> '{performance,api_p95_ms_before}') from k),
  (select jsonb_build_object(
     'now', (select round(percentile_cont(0.95) within group (order by 100 + n)::numeric, 1) from generate_series(1, 100) n),
     'before', (select round(percentile_cont(0.95) within group (order by 50 + n / 2.0)::numeric, 1) from generate_series(1, 100) n))),
  'API p95 on the day and the day before');
select ok((select r -> 'action_items' from k) @> '["Below the 99.9 % SLA: t096-web at 99.653 %"]', 'the missed SLA is an action item');
select throws_ok($$select vigil.report_kpis(now(), now() - interval '1 day')$$, '22023', null, 'a period that ends before it starts is refused');

select * from finish();
rollback;
