-- The pg_cron jobs that drive the watching, and the self-service that watches them. pg_cron 1.5+
-- (Supabase) runs the health check every 30 seconds; older releases (Debian's 1.4) know only
-- minutes, so there it runs every minute.
begin;
set search_path = extensions, public;
select plan(13);

select is_empty(
  $$select 1 from unnest(array['vigil-health-check', 'vigil-watchdog', 'vigil-retention', 'vigil-sweep-invocations']) n
     where (select count(*) from cron.job where jobname = n) <> 1$$,
  'each of vigil-health-check, vigil-watchdog, vigil-retention and vigil-sweep-invocations is scheduled exactly once'
);

select is(
  (select schedule from cron.job where jobname = 'vigil-health-check'),
  (select case when array[(regexp_match(extversion, '^(\d+)\.(\d+)'))[1]::int, (regexp_match(extversion, '^(\d+)\.(\d+)'))[2]::int] >= array[1, 5]
               then '30 seconds' else '* * * * *' end
     from pg_extension where extname = 'pg_cron'),
  'vigil-health-check runs every 30 seconds on pg_cron 1.5+, every minute before'
);
select is((select command from cron.job where jobname = 'vigil-health-check'),
          $$select vigil.invoke('health-check', '{"trigger": "cron"}')$$,
          'vigil-health-check invokes the health-check function, saying it was cron');
select results_eq($$select schedule, command from cron.job where jobname = 'vigil-watchdog'$$,
                  $$values ('* * * * *'::text, 'select vigil.watch_cycles()'::text)$$,
                  'vigil-watchdog runs vigil.watch_cycles() every minute, in SQL only');
select results_eq($$select schedule, command from cron.job where jobname = 'vigil-retention'$$,
                  $$values ('17 3 * * *'::text, 'select vigil.rotate_own_data()'::text)$$,
                  'vigil-retention runs vigil.rotate_own_data() daily at 03:17, recorded as the data_rotation task');
select results_eq($$select schedule, command from cron.job where jobname = 'vigil-sweep-invocations'$$,
                  $$values ('* * * * *'::text, 'select vigil.sweep_invocations()'::text)$$,
                  'vigil-sweep-invocations runs vigil.sweep_invocations() every minute');
select is_empty(
  $$select jobname from cron.job
     where jobname in ('vigil-health-check', 'vigil-watchdog', 'vigil-retention', 'vigil-sweep-invocations')
       and (not active or username <> 'postgres' or database <> current_database())$$,
  'the vigil jobs are active and run as postgres in this database'
);
-- Each job's command parses and names a function that exists.
select is_empty(
  $$select jobname from cron.job
     where jobname in ('vigil-health-check', 'vigil-watchdog', 'vigil-retention', 'vigil-sweep-invocations')
       and to_regprocedure(case jobname
             when 'vigil-health-check' then 'vigil.invoke(text,jsonb)'
             when 'vigil-watchdog' then 'vigil.watch_cycles()'
             when 'vigil-retention' then 'vigil.apply_retention(interval,interval)'
             else 'vigil.sweep_invocations(interval,interval)' end) is null$$,
  'every job''s function exists'
);

-- The self-service: Vigil's own cycles, judged as a heartbeat.
select results_eq(
  $$select kind::text, config, enabled from vigil.services where name = 'vigil-health-check'$$,
  $$values ('heartbeat'::text, '{"source":"cycles","period_seconds":60,"grace_seconds":60}'::jsonb, true)$$,
  'vigil-health-check is an enabled heartbeat service on source cycles, period 60 s and grace 60 s'
);
select is_empty(
  $$select 1 from vigil.heartbeat_tokens t join vigil.services s on s.id = t.service_id where s.name = 'vigil-health-check'$$,
  'the self-service has no ping token (nothing pings it; the cycles are its heartbeat)'
);
select results_eq(
  $$select failure_threshold, success_threshold from vigil.services where name = 'vigil-health-check'$$,
  $$values (3, 2)$$,
  'the self-service uses the default thresholds'
);

-- The watchdog's period matches the self-service: a minute's cron cannot notice a gap shorter than
-- period + grace.
select cmp_ok(
  (select (config ->> 'period_seconds')::int + (config ->> 'grace_seconds')::int from vigil.services where name = 'vigil-health-check'),
  '>=', 60, 'the self-service tolerates at least one watchdog interval (60 s)'
);

-- The self-service is judged by the verdict the watchdog uses.
lock table vigil.cycles in exclusive mode;
insert into vigil.cycles (id, started_at, finished_at, duration_ms, services, healthy, degraded, down)
values ('00000000-0000-4000-8000-000000000561', now(), now(), 0, 0, 0, 0, 0);
select is((select status::text from vigil.heartbeat_verdict((select id from vigil.services where name = 'vigil-health-check'))),
          'healthy', 'with a cycle just recorded, the self-service''s verdict is healthy');

select * from finish();
rollback;
