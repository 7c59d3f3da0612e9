-- The system health score the dashboard leads with, 0–100 %: the mean, over enabled services whose
-- status is known, of half its status now (healthy 100, degraded 50, down 0) and half its uptime
-- over the last 24 hours (100 when it has no checks yet). Green above 95, yellow from 90 to 95,
-- red below 90. In SQL, so the dashboard, the daily report and anyone in SQL read one number.
create function vigil.health_score()
returns jsonb
language sql
stable
set search_path = ''
as $$
  with each as (
    select s.name, s.status::text as status,
           case s.status when 'healthy' then 100 when 'degraded' then 50 else 0 end as now_score,
           coalesce(u.uptime_24h, 100) as uptime_24h
      from vigil.services s
      left join vigil.service_uptime u on u.service_id = s.id
     where s.enabled and s.status <> 'unknown'
  ), scored as (
    select round(avg(0.5 * now_score + 0.5 * uptime_24h), 1) as score, count(*) as services from each
  )
  select jsonb_build_object(
    'score', score,
    'band', case when score is null then null when score > 95 then 'green' when score >= 90 then 'yellow' else 'red' end,
    'services', services)
  from scored
$$;
comment on function vigil.health_score() is
  'System health 0-100: mean over enabled, known services of half the status now (100/50/0) and half the 24 h uptime; green > 95, yellow 90-95, red < 90.';
revoke execute on function vigil.health_score() from public;
grant execute on function vigil.health_score() to service_role, authenticated;
select vigil.settle_privileges();
