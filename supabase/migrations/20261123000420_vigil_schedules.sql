-- Vigil watches itself, and the jobs that drive the watching.

-- Vigil watches itself: this service is down when health-check cycles stop arriving.
insert into vigil.services (name, kind, config, description)
values ('vigil-health-check', 'heartbeat', '{"source": "cycles", "period_seconds": 60, "grace_seconds": 60}',
        'Vigil''s own health-check cycles. Judged in SQL by the vigil-watchdog job, so it works when the functions do not.');

-- ─── Schedules ──────────────────────────────────────────────────────────────────────────────
-- pg_cron 1.5+ (Supabase) runs jobs every 30 seconds; Debian's 1.4 knows only minutes.
do $$
declare
  version integer[] := (
    select array[(regexp_match(extversion, '^(\d+)\.(\d+)'))[1]::integer, (regexp_match(extversion, '^(\d+)\.(\d+)'))[2]::integer]
      from pg_extension where extname = 'pg_cron');
begin
  perform cron.schedule('vigil-health-check',
    case when version >= array[1, 5] then '30 seconds' else '* * * * *' end,
    $job$select vigil.invoke('health-check', '{"trigger": "cron"}')$job$);
end
$$;
select cron.schedule('vigil-watchdog', '* * * * *', 'select vigil.watch_cycles()');
select cron.schedule('vigil-retention', '17 3 * * *', 'select vigil.apply_retention()');

