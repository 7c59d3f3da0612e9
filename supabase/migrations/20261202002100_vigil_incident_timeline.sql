-- An incident's timeline in one ordered list, as the dashboard and the daily report show it: what
-- the checks did to the service's status, each heal (intent and result, attempt n), each alert and
-- its delivery, the log, the acknowledgement and the resolution. SECURITY INVOKER: it reads through
-- the caller's rights and row security, so an operator sees it and nobody else does.
create function vigil.incident_timeline(p_incident_id bigint)
returns table (at timestamptz, source text, what text, detail jsonb)
language sql
stable
security invoker
set search_path = ''
as $$
  with inc as (select * from vigil.incidents where id = p_incident_id)
  select inc.opened_at, 'incident', 'opened: ' || inc.title,
         jsonb_build_object('kind', inc.kind, 'severity', inc.severity)
    from inc
  union all
  select t.created_at, 'status', t.from_status || ' → ' || t.to_status, jsonb_build_object('reason', t.reason)
    from vigil.status_transitions t, inc
   where t.service_id = inc.service_id and t.created_at >= inc.opened_at - interval '1 hour'
     and t.created_at <= coalesce(inc.resolved_at, now())
  union all
  select h.created_at, 'heal',
         h.strategy || ' ' || h.phase::text || ': ' || h.outcome::text || ' (attempt ' || h.attempt || ')',
         jsonb_build_object('detail', h.detail, 'actor', h.actor, 'action_id', h.action_id)
    from vigil.heal_actions h where h.incident_id = p_incident_id
  union all
  select a.created_at, 'alert', a.event || ' via ' || a.channel::text || ': ' || a.status::text,
         jsonb_build_object('subject', a.subject, 'sent_at', a.sent_at)
    from vigil.alerts a where a.incident_id = p_incident_id
  union all
  select l.created_at, 'log', l.level || ': ' || l.message, '{}'::jsonb
    from vigil.incident_log l where l.incident_id = p_incident_id
  union all
  select inc.acknowledged_at, 'acknowledged', 'acknowledged', jsonb_build_object('by', inc.acknowledged_by)
    from inc where inc.acknowledged_at is not null
  union all
  select inc.resolved_at, 'resolved', 'resolved', '{}'::jsonb
    from inc where inc.resolved_at is not null
  order by 1, 2
$$;
comment on function vigil.incident_timeline(bigint) is
  'An incident''s timeline, oldest first: status changes, heals, alerts, log, acknowledgement, resolution. Read with the caller''s rights.';
revoke execute on function vigil.incident_timeline(bigint) from public;
grant execute on function vigil.incident_timeline(bigint) to service_role, authenticated;
select vigil.settle_privileges();
