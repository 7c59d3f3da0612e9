-- vigil.health_score(): mean over enabled, known services of half the status now and half the 24 h
-- uptime; green above 95, yellow 90-95, red below 90. Computed on this file's own services only
-- (the others are disabled inside the transaction).
begin;
set search_path = extensions, public;
select plan(5);

update vigil.services set enabled = false;
insert into vigil.services (id, name, kind, config, status) values
  ('00000000-0000-4000-8000-000000000881', 't088-a', 'http', '{"url":"https://t088.example.com"}', 'healthy'),
  ('00000000-0000-4000-8000-000000000882', 't088-b', 'http', '{"url":"https://t088.example.com"}', 'healthy'),
  ('00000000-0000-4000-8000-000000000883', 't088-c', 'http', '{"url":"https://t088.example.com"}', 'unknown');

select is(vigil.health_score(), '{"score": 100.0, "band": "green", "services": 2}'::jsonb,
          'all known services healthy, no checks yet: 100, green; unknown ones are not counted');

update vigil.services set status = 'degraded' where id = '00000000-0000-4000-8000-000000000882';
select is(vigil.health_score() ->> 'score', '87.5', 'one of two degraded: (100 + (25 + 50)) / 2 = 87.5');
select is(vigil.health_score() ->> 'band', 'red', 'below 90 is red');

-- Down for a quarter of the last day's checks, healthy now.
update vigil.services set status = 'healthy' where id = '00000000-0000-4000-8000-000000000882';
insert into vigil.check_rollups (service_id, bucket, checks, down, healthy, degraded)
values ('00000000-0000-4000-8000-000000000882', date_trunc('hour', now()), 100, 15, 85, 0);
select is(vigil.health_score() ->> 'score', '96.3', 'uptime counts for half: (100 + (50 + 42.5)) / 2 = 96.25');

update vigil.services set enabled = false where name like 't088-%';
select is(vigil.health_score(), '{"score": null, "band": null, "services": 0}'::jsonb, 'nothing watched: no score');

select * from finish();
rollback;
