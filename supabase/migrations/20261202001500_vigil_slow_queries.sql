-- Slow queries are incidents of their own, and what the index advisor would build is kept as a
-- recommendation people (reports, the dashboard) can read, until the statement is fast again.
--
-- A postgres check whose measurements list slow statements (statements.slow: mean past the
-- environment's slow_query_ms, enough calls, not on the service's ignore list — the probe decides)
-- opens or updates the service's 'slow_queries' incident (a warning); a check listing none resolves
-- it. The incident asks auto-heal like any other; add_missing_index (suggest by default) records its
-- suggestions here.

create function vigil.track_slow_queries() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  slow jsonb := new.measurements -> 'statements' -> 'slow';
  svc vigil.services;
  queryids jsonb;
  open_incident vigil.incidents;
begin
  if jsonb_typeof(slow) is distinct from 'array' then
    return null;  -- not a postgres check, or pg_stat_statements not read this time
  end if;
  select * into svc from vigil.services where id = new.service_id;
  if svc.kind <> 'postgres' then
    return null;
  end if;
  if jsonb_array_length(slow) > 0 then
    queryids := (select jsonb_agg(s ->> 'queryid' order by s ->> 'queryid') from jsonb_array_elements(slow) s);
    select * into open_incident from vigil.incidents
     where service_id = svc.id and kind = 'slow_queries' and status = 'open' for update;
    if open_incident.id is null then
      insert into vigil.incidents (service_id, kind, severity, title, detail)
      values (svc.id, 'slow_queries', 'warning',
              format('%s: %s slower than %s ms on average', svc.name,
                     case jsonb_array_length(slow) when 1 then '1 statement' else jsonb_array_length(slow) || ' statements' end,
                     new.measurements -> 'statements' ->> 'slow_query_ms'),
              jsonb_build_object('check_id', new.id, 'queryids', queryids));
    elsif open_incident.detail -> 'queryids' is distinct from queryids then
      -- Only a change is written (every check would otherwise touch the row); a statement not seen
      -- before is advised on: auto-heal is asked again.
      update vigil.incidents
         set title = format('%s: %s slower than %s ms on average', svc.name,
                            case jsonb_array_length(slow) when 1 then '1 statement' else jsonb_array_length(slow) || ' statements' end,
                            new.measurements -> 'statements' ->> 'slow_query_ms'),
             detail = detail || jsonb_build_object('check_id', new.id, 'queryids', queryids),
             updated_at = now()
       where id = open_incident.id;
      if exists (select from jsonb_array_elements_text(queryids) q
                  where not coalesce(open_incident.detail -> 'queryids', '[]') ? q) then
        perform vigil.invoke('auto-heal', jsonb_build_object('incident_id', open_incident.id, 'reason', 'worsened'));
      end if;
    end if;
  else
    update vigil.incidents
       set status = 'resolved', resolved_at = now(),
           detail = detail || jsonb_build_object('resolved_by_check', new.id)
     where service_id = svc.id and kind = 'slow_queries' and status = 'open';
  end if;
  return null;
end
$$;
revoke execute on function vigil.track_slow_queries() from public;

create trigger checks_slow_queries after insert on vigil.checks
  for each row execute function vigil.track_slow_queries();

-- ─── Recommendations ────────────────────────────────────────────────────────────────────────
create table vigil.recommendations (
  id bigint generated always as identity primary key,
  service_id uuid not null references vigil.services (id) on delete cascade,
  incident_id bigint references vigil.incidents (id) on delete set null,
  kind text not null,
  key text not null,
  title text not null,
  detail jsonb not null default '{}',
  status text not null default 'open',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  resolved_at timestamptz,
  constraint recommendation_kind_format check (kind ~ '^[a-z][a-z0-9_]{0,62}$'),
  constraint recommendation_key check (length(key) between 1 and 200),
  constraint recommendation_title check (length(title) between 1 and 1000),
  constraint recommendation_detail_is_object check (jsonb_typeof(detail) = 'object'),
  constraint recommendation_status check (status in ('open', 'resolved')),
  constraint recommendation_resolution check ((status = 'resolved') = (resolved_at is not null))
);
create unique index recommendations_one_open on vigil.recommendations (service_id, kind, key) where status = 'open';
create index recommendations_service on vigil.recommendations (service_id, created_at desc);
comment on table vigil.recommendations is
  'What Vigil would do but leaves to people (an index for a slow statement, with its CREATE INDEX CONCURRENTLY and estimated gain); open until the problem is gone.';

/**
 * Keeps what a heal recommends: each item {kind, key, title, detail} is opened or, when already
 * open for the service, refreshed. Returns how many there were.
 */
create function vigil.recommend(p_service_id uuid, p_incident_id bigint, p_items jsonb)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  item jsonb;
  n integer := 0;
begin
  if jsonb_typeof(p_items) is distinct from 'array' then
    raise exception 'recommend: items must be a JSON array' using errcode = '22023';
  end if;
  for item in select * from jsonb_array_elements(p_items) loop
    insert into vigil.recommendations (service_id, incident_id, kind, key, title, detail)
    values (p_service_id, p_incident_id, item ->> 'kind', item ->> 'key', item ->> 'title',
            coalesce(item -> 'detail', '{}'))
    on conflict (service_id, kind, key) where status = 'open'
    do update set title = excluded.title, detail = excluded.detail, incident_id = excluded.incident_id,
                  updated_at = now();
    n := n + 1;
  end loop;
  return n;
end
$$;
revoke execute on function vigil.recommend(uuid, bigint, jsonb) from public;
grant execute on function vigil.recommend(uuid, bigint, jsonb) to service_role;

-- A resolved slow_queries incident: the statements are fast again, its index advice is done with.
create function vigil.resolve_recommendations() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update vigil.recommendations
     set status = 'resolved', resolved_at = now(), updated_at = now()
   where service_id = new.service_id and status = 'open'
     and kind = case new.kind when 'slow_queries' then 'index' else new.kind end;
  return null;
end
$$;
revoke execute on function vigil.resolve_recommendations() from public;
create trigger incidents_resolve_recommendations after update of status on vigil.incidents
  for each row when (new.status = 'resolved' and old.status is distinct from 'resolved')
  execute function vigil.resolve_recommendations();

grant select, insert, update, delete on vigil.recommendations to service_role;
grant select on vigil.recommendations to authenticated;
alter table vigil.recommendations enable row level security;
create policy "Operators can read recommendations" on vigil.recommendations
  for select to authenticated using ((select vigil.is_operator()));

select vigil.publish_for_realtime(array['recommendations']);
select vigil.settle_privileges();
