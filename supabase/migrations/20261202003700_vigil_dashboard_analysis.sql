-- The dashboard's Analysis panel: vigil.dashboard_snapshot() as in 20261202002800, plus 'analysis',
-- the metric series the analysis flags now (anomalous, or forecast to cross their limit), with only
-- the columns the panel shows. The detector's state (vigil.metric_series.detector, kilobytes a
-- series) and the forecast's fit stay in the table. Read with the caller's rights: operators only,
-- by metric_series' policy.

create or replace function vigil.dashboard_snapshot()
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
    'daily_report', (select vigil.report_card(r) from vigil.reports r
                      where r.kind = 'daily' and r.status = 'ready' order by r.period_start desc limit 1),
    'weekly_report', (select vigil.report_card(r) from vigil.reports r
                       where r.kind = 'weekly' and r.status = 'ready' order by r.period_start desc limit 1),
    -- What the analysis flags now (enabled services only): series anomalous now, the most anomalous
    -- first, then series whose forecast crosses their limit within the horizon. Never the
    -- detector's state, and of the forecast only its sentence and eta: what the panel shows.
    'analysis', coalesce((
      select jsonb_agg(to_jsonb(a) order by a.anomalous_since is null, a.score desc nulls last)
        from (select m.service_id, s.name as service, m.metric, m.labels, m.value, m.score,
                     m.baseline, m.anomalous_since,
                     case when m.forecast ->> 'status' = 'crosses' then
                       jsonb_build_object('text', m.forecast -> 'text', 'eta_seconds', m.forecast -> 'etaSeconds')
                     end as forecast,
                     m.forecast_at
                from vigil.metric_series m join vigil.services s on s.id = m.service_id
               where s.enabled and (m.anomalous_since is not null or m.forecast ->> 'status' = 'crosses')
               order by m.anomalous_since is null, m.score desc nulls last
               limit 100) a), '[]'::jsonb))
$$;
comment on function vigil.dashboard_snapshot() is
  'The dashboard''s first screen in one call: settings, health score, services with latency and uptime, incidents (open first), pending approvals, heal log, recommendations, control changes, last cycle, maintenance runs, the latest daily and weekly reports, and the metric series the analysis flags (anomalous, or forecast to cross a limit). Read with the caller''s rights.';
