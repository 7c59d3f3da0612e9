-- What the dashboard reads: its whole first screen in one call, and the performance trends. Both
-- SECURITY INVOKER: they read through the caller's grants and row security, so an operator sees
-- everything and any other signed-in user an empty screen — the same rules PostgREST applies, on
-- Supabase and on the local stack alike. One round trip keeps the first screen fast on a phone.

create function vigil.dashboard_snapshot()
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
    'generated_at', now(),
    'operator', vigil.is_operator(),
    'settings', coalesce((
      select jsonb_agg(jsonb_build_object(
               'environment', st.environment, 'kill_switch', st.kill_switch, 'dry_run', st.dry_run,
               'slow_query_ms', st.slow_query_ms, 'updated_at', st.updated_at)
             order by array_position(array['prod', 'qa', 'dev'], st.environment::text))
        from vigil.settings st), '[]'::jsonb),
    'score', vigil.health_score(),
    'services', coalesce((
      select jsonb_agg(jsonb_build_object(
               'id', s.id, 'name', s.name, 'kind', s.kind, 'environment', s.environment,
               'description', s.description, 'status', s.status,
               'status_changed_at', s.status_changed_at, 'enabled', s.enabled,
               'heal_enabled', s.heal_enabled, 'depends_on', coalesce(to_jsonb(s.depends_on), '[]'::jsonb),
               'folded_under', fold.name, 'latency_ms', last.response_ms,
               'last_checked_at', s.last_checked_at, 'uptime_24h', u.uptime_24h,
               'uptime_7d', u.uptime_7d, 'uptime_30d', u.uptime_30d)
             order by s.name)
        from vigil.services s
        left join vigil.service_uptime u on u.service_id = s.id
        left join lateral (
          select c.response_ms from vigil.checks c
           where c.service_id = s.id order by c.checked_at desc limit 1) last on true
        left join lateral (
          select fs.name from vigil.incidents i
            join vigil.incidents f on f.id = i.folded_into
            join vigil.services fs on fs.id = f.service_id
           where i.service_id = s.id and i.status = 'open'
           order by i.opened_at desc limit 1) fold on true), '[]'::jsonb),
    'incidents', coalesce((
      select jsonb_agg(to_jsonb(x) order by x.status = 'open' desc, x.opened_at desc)
        from (
          (select i.id, i.service_id, s.name as service, i.kind, i.severity, i.status, i.title,
                  i.opened_at, i.resolved_at, i.acknowledged_at, i.acknowledged_by_name,
                  i.heal_attempts, i.escalation_level, i.folded_into
             from vigil.incidents i join vigil.services s on s.id = i.service_id
            where i.status = 'open')
          union all
          (select i.id, i.service_id, s.name, i.kind, i.severity, i.status, i.title,
                  i.opened_at, i.resolved_at, i.acknowledged_at, i.acknowledged_by_name,
                  i.heal_attempts, i.escalation_level, i.folded_into
             from vigil.incidents i join vigil.services s on s.id = i.service_id
            where i.status = 'resolved'
            order by i.resolved_at desc limit 50)) x), '[]'::jsonb),
    'approvals', coalesce((
      select jsonb_agg(jsonb_build_object(
               'action_id', a.action_id, 'incident_id', a.incident_id, 'service', s.name,
               'strategy', a.strategy, 'plan', a.plan, 'requested_at', a.requested_at,
               'expires_at', a.expires_at)
             order by a.requested_at)
        from vigil.heal_approvals a join vigil.services s on s.id = a.service_id
       where a.decision is null and a.expires_at > now()), '[]'::jsonb),
    'heal_log', coalesce((
      select jsonb_agg(to_jsonb(h) order by h.id desc)
        from (select h.id, h.created_at as at, h.incident_id, s.name as service, h.strategy,
                     h.outcome, h.attempt,
                     (vigil.heal_ladder() ->> 'max_attempts')::int as max_attempts,
                     h.detail, h.reason, h.dry_run
                from vigil.heal_actions h join vigil.services s on s.id = h.service_id
               where h.phase = 'result'
               order by h.id desc limit 100) h), '[]'::jsonb),
    'recommendations', coalesce((
      select jsonb_agg(jsonb_build_object(
               'id', r.id, 'service', s.name, 'kind', r.kind, 'title', r.title,
               'detail', r.detail, 'status', r.status, 'created_at', r.created_at)
             order by r.created_at desc)
        from (select * from vigil.recommendations where status = 'open'
               order by created_at desc limit 50) r
        left join vigil.services s on s.id = r.service_id), '[]'::jsonb),
    'control_changes', coalesce((
      select jsonb_agg(to_jsonb(c) order by c.id desc)
        from (select id, changed_at, target, field, old_value, new_value, actor_name
                from vigil.control_changes order by id desc limit 50) c), '[]'::jsonb),
    'cycle', (
      select jsonb_build_object('finished_at', c.finished_at, 'duration_ms', c.duration_ms,
                                'services', c.services, 'healthy', c.healthy,
                                'degraded', c.degraded, 'down', c.down)
        from vigil.cycles c order by c.finished_at desc limit 1),
    'maintenance_runs', coalesce((
      select jsonb_agg(to_jsonb(m) order by m.started_at desc)
        from (select id, task, cadence, attempt, status, started_at, finished_at, summary, error
                from vigil.maintenance_runs order by started_at desc limit 20) m), '[]'::jsonb),
    -- The daily report arrives with the reports (issue 11); until then the dashboard says so.
    'daily_report', null)
$$;
comment on function vigil.dashboard_snapshot() is
  'The dashboard''s first screen in one call: settings, health score, services with latency and uptime, incidents (open first), pending approvals, heal log, recommendations, control changes, last cycle. Read with the caller''s rights.';

-- Response time percentiles, failed-check share, connections and throughput per time bucket over
-- the last hour (1-minute buckets), 24 hours (15 minutes) or 7 days (2 hours).
create function vigil.performance_trends(p_window text default '1h')
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  span interval;
  bucket interval;
  since timestamptz;
  points jsonb;
begin
  case p_window
    when '1h' then span := interval '1 hour'; bucket := interval '1 minute';
    when '24h' then span := interval '24 hours'; bucket := interval '15 minutes';
    when '7d' then span := interval '7 days'; bucket := interval '2 hours';
    else raise exception 'p_window must be 1h, 24h or 7d, got %', coalesce(quote_literal(p_window), 'null')
           using errcode = 'invalid_parameter_value';
  end case;
  since := date_bin(bucket, now() - span, timestamptz '2000-01-01');
  with checks as (
    select date_bin(bucket, c.checked_at, timestamptz '2000-01-01') as t,
           percentile_cont(0.5) within group (order by c.response_ms) as p50,
           percentile_cont(0.95) within group (order by c.response_ms) as p95,
           percentile_cont(0.99) within group (order by c.response_ms) as p99,
           100.0 * count(*) filter (where c.status <> 'healthy') / count(*) as error_rate
      from vigil.checks c
     where c.checked_at >= since
     group by 1
  ), per_service as (
    select date_bin(bucket, m.recorded_at, timestamptz '2000-01-01') as t, m.name, m.service_id,
           avg(m.value) as value
      from vigil.metrics m
     where m.recorded_at >= since and m.name in ('active_connections', 'throughput')
     group by 1, 2, 3
  ), metrics as (
    select t, sum(value) filter (where name = 'active_connections') as connections,
           sum(value) filter (where name = 'throughput') as throughput
      from per_service group by t
  )
  select coalesce(jsonb_agg(jsonb_build_object(
           't', coalesce(c.t, m.t),
           'p50', round(c.p50::numeric, 1), 'p95', round(c.p95::numeric, 1),
           'p99', round(c.p99::numeric, 1), 'error_rate', round(c.error_rate, 2),
           'connections', round(m.connections::numeric, 1),
           'throughput', round(m.throughput::numeric, 2))
         order by coalesce(c.t, m.t)), '[]'::jsonb)
    into points
    from checks c full join metrics m on m.t = c.t;
  return jsonb_build_object('window', p_window, 'bucket_seconds', extract(epoch from bucket)::int,
                            'points', points);
end
$$;
comment on function vigil.performance_trends(text) is
  'p50/p95/p99 check response time, share of checks not healthy, active connections and throughput per bucket over 1h, 24h or 7d. Read with the caller''s rights.';

revoke execute on function vigil.dashboard_snapshot(), vigil.performance_trends(text) from public;
grant execute on function vigil.dashboard_snapshot(), vigil.performance_trends(text)
  to service_role, authenticated;
select vigil.settle_privileges();
