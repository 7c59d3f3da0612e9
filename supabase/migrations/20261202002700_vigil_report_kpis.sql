-- The numbers of the daily and weekly reports (issue 11), in SQL so the report, the dashboard and
-- anyone in SQL read the same ones: uptime against the SLA, incidents detected and fixed, heals,
-- the KPIs the spec names (auto-heal success, false positives, MTTD, MTTR, manual interventions,
-- maintenance, engineer time saved, cost per incident) with their assumptions, and performance
-- compared with the period before. Read with the caller's rights (operators).

create function vigil.report_kpis(
  p_from timestamptz,
  p_to timestamptz,
  p_sla_pct numeric default 99.9,
  /** What a person would spend on an incident Vigil healed: paged, logged in, diagnosed, fixed. */
  p_minutes_per_manual_fix integer default 30,
  /** An engineer's cost per hour, for the cost per incident. */
  p_engineer_cost_per_hour numeric default 100
)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  span interval := p_to - p_from;
  result jsonb;
begin
  if p_from is null or p_to is null or p_to <= p_from then
    raise exception 'report_kpis: p_to must be after p_from' using errcode = '22023';
  end if;
  if p_sla_pct is null or p_sla_pct <= 0 or p_sla_pct > 100 then
    raise exception 'report_kpis: p_sla_pct must be in (0, 100], got %', p_sla_pct using errcode = '22023';
  end if;

  with uptime as (
    select s.name,
           round(100.0 * sum(r.checks - r.down) / nullif(sum(r.checks), 0), 3) as pct
      from vigil.services s
      join vigil.check_rollups r on r.service_id = s.id and r.bucket >= date_trunc('hour', p_from) and r.bucket < p_to
     where s.enabled
     group by s.name
  ), opened as (
    select i.* from vigil.incidents i where i.opened_at >= p_from and i.opened_at < p_to and i.folded_into is null
  ), resolved as (
    select i.* from vigil.incidents i where i.resolved_at >= p_from and i.resolved_at < p_to
  ), heals as (
    select h.outcome::text as outcome, count(*) as n
      from vigil.heal_actions h
     where h.phase = 'result' and h.created_at >= p_from and h.created_at < p_to
     group by 1
  ), healed as (
    select distinct h.incident_id from vigil.heal_actions h
     where h.phase = 'result' and h.outcome = 'succeeded'
  ), detection as (
    -- From the first failing check of the streak to the incident: how long the problem went unseen.
    select extract(epoch from o.opened_at - first_bad.at) as seconds
      from opened o
      join lateral (
        select min(c.checked_at) as at from vigil.checks c
         where c.service_id = o.service_id and c.status <> 'healthy' and c.checked_at <= o.opened_at
           and c.checked_at > coalesce((select max(h.checked_at) from vigil.checks h
                                         where h.service_id = o.service_id and h.status = 'healthy'
                                           and h.checked_at <= o.opened_at), '-infinity')
      ) first_bad on first_bad.at is not null
  ), counts as (
    select
      (select count(*) from opened) as detected,
      (select count(*) from resolved) as resolved,
      (select count(*) from resolved r where r.id in (select incident_id from healed)) as fixed_by_vigil,
      -- A person was needed: the on-call rung was reached, or someone acknowledged it.
      (select count(*) from opened o where o.escalation_level >= 3 or o.acknowledged_at is not null) as manual,
      -- Assumption: an incident that ended within 2 minutes on its own (no heal, nobody acknowledged,
      -- never escalated to a person) was a false positive.
      (select count(*) from opened o
        where o.resolved_at is not null and o.resolved_at - o.opened_at < interval '2 minutes'
          and o.acknowledged_at is null and o.escalation_level < 3
          and not exists (select from vigil.heal_actions h where h.incident_id = o.id)) as false_positives,
      (select avg(extract(epoch from r.resolved_at - r.opened_at)) from resolved r) as mttr_seconds,
      (select avg(seconds) from detection) as mttd_seconds,
      coalesce((select n from heals where outcome = 'succeeded'), 0) as heals_succeeded,
      coalesce((select sum(n) from heals where outcome in ('succeeded', 'failed', 'undone')), 0) as heals_tried
  ), perf as (
    select p.label,
           (select percentile_cont(0.95) within group (order by c.response_ms)
              from vigil.checks c join vigil.services s on s.id = c.service_id
             where s.kind = 'http' and c.checked_at >= p.f and c.checked_at < p.t) as api_p95_ms,
           (select avg(m.value) from vigil.metrics m
             where m.name = 'query_duration_p95' and m.recorded_at >= p.f and m.recorded_at < p.t) as db_query_p95_ms,
           (select 100.0 * count(*) filter (where c.status <> 'healthy') / nullif(count(*), 0)
              from vigil.checks c where c.checked_at >= p.f and c.checked_at < p.t) as error_rate_pct
      from (values ('this', p_from, p_to), ('before', p_from - span, p_from)) p(label, f, t)
  ), maintenance as (
    select m.task, m.status, m.summary from vigil.maintenance_runs m
     where m.started_at >= p_from and m.started_at < p_to
  )
  select jsonb_build_object(
    'period', jsonb_build_object('from', p_from, 'to', p_to),
    'sla_pct', p_sla_pct,
    'uptime', jsonb_build_object(
      'services', coalesce((select jsonb_agg(jsonb_build_object('service', u.name, 'pct', u.pct, 'met', u.pct >= p_sla_pct)
                                              order by u.pct, u.name) from uptime u), '[]'),
      'lowest_pct', (select min(u.pct) from uptime u),
      'services_below_sla', (select count(*) from uptime u where u.pct < p_sla_pct)),
    'incidents', jsonb_build_object(
      'detected', c.detected, 'resolved', c.resolved, 'fixed_by_vigil', c.fixed_by_vigil,
      'by_kind', coalesce((select jsonb_object_agg(kind, n) from (select kind, count(*) as n from opened group by kind) k), '{}'),
      'open_now', (select count(*) from vigil.incidents where status = 'open')),
    'heals', coalesce((select jsonb_object_agg(outcome, n) from heals), '{}'),
    'kpis', jsonb_build_object(
      'auto_heal_success_pct', round(100.0 * c.heals_succeeded / nullif(c.heals_tried, 0), 1),
      'false_positive_pct', round(100.0 * c.false_positives / nullif(c.detected, 0), 1),
      'mttd_seconds', round(c.mttd_seconds::numeric, 1),
      'mttr_seconds', round(c.mttr_seconds::numeric, 1),
      'manual_intervention_pct', round(100.0 * c.manual / nullif(c.detected, 0), 1),
      'maintenance_actions', (select count(*) from maintenance m where m.status = 'succeeded'),
      'engineer_minutes_saved', c.fixed_by_vigil * p_minutes_per_manual_fix,
      'cost_per_incident', round(c.manual * p_minutes_per_manual_fix / 60.0 * p_engineer_cost_per_hour
                                 / nullif(c.detected, 0), 2)),
    'assumptions', jsonb_build_object(
      'false_positive', 'an incident that ended within 2 minutes with no heal, no acknowledgement and no page to a person',
      'manual_intervention', 'an incident that reached the on-call rung or that someone acknowledged',
      'mttd', 'from the first failing check of the streak to the incident opening',
      'engineer_minutes_saved', p_minutes_per_manual_fix || ' minutes for each incident Vigil healed',
      'cost_per_incident', p_minutes_per_manual_fix || ' minutes of an engineer at ' || p_engineer_cost_per_hour
                           || ' an hour for each incident a person handled, spread over all incidents'),
    'performance', jsonb_build_object(
      'api_p95_ms', (select round(api_p95_ms::numeric, 1) from perf where label = 'this'),
      'api_p95_ms_before', (select round(api_p95_ms::numeric, 1) from perf where label = 'before'),
      'db_query_p95_ms', (select round(db_query_p95_ms::numeric, 1) from perf where label = 'this'),
      'db_query_p95_ms_before', (select round(db_query_p95_ms::numeric, 1) from perf where label = 'before'),
      'error_rate_pct', (select round(error_rate_pct, 2) from perf where label = 'this'),
      'error_rate_pct_before', (select round(error_rate_pct, 2) from perf where label = 'before')),
    'recommendations_open', (select count(*) from vigil.recommendations where status = 'open'),
    'maintenance', jsonb_build_object(
      'runs', (select count(*) from maintenance),
      'failed', coalesce((select jsonb_agg(jsonb_build_object('task', task, 'summary', summary))
                            from maintenance where status = 'failed'), '[]')),
    'action_items', coalesce((
      select jsonb_agg(item) from (
        select 'Open critical incident: ' || i.title as item from vigil.incidents i
         where i.status = 'open' and i.severity = 'critical'
        union all
        select 'Below the ' || p_sla_pct || ' % SLA: ' || u.name || ' at ' || u.pct || ' %' from uptime u where u.pct < p_sla_pct
        union all
        select 'Maintenance failed: ' || m.task from maintenance m where m.status = 'failed'
      ) a), '[]'))
  into result
  from counts c;
  return result;
end
$$;
comment on function vigil.report_kpis(timestamptz, timestamptz, numeric, integer, numeric) is
  'The report''s numbers for a period: uptime against the SLA, incidents, heals, KPIs with their assumptions, performance against the period before, maintenance, action items. Read with the caller''s rights.';
revoke execute on function vigil.report_kpis(timestamptz, timestamptz, numeric, integer, numeric) from public;
grant execute on function vigil.report_kpis(timestamptz, timestamptz, numeric, integer, numeric)
  to service_role, authenticated;
select vigil.settle_privileges();
