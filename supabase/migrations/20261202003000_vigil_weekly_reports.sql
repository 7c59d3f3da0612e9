-- The weekly and monthly analyses (issue 11) that the maintenance tasks error_patterns,
-- performance_report and statement_benchmark run: the heavy grouping here, next to the data.
--   vigil.error_pattern       an error text with its variable parts as placeholders, so that
--                             "timeout after 5012 ms" and "timeout after 5230 ms" are one pattern
--   vigil.error_trends        check errors by pattern and service, incidents by kind, recurring
--                             incidents, heal and alert outcomes: a period against the one before
--   vigil.statement_periods   the project database's statements per period, from the cumulative
--                             counters of the daily snapshots (resets and gaps handled)
--   vigil.sync_recommendations one kind of recommendation made to match a list: new ones opened,
--                             changed ones refreshed, the rest resolved
-- All run with the caller's rights (the agent reads and writes these tables already); only
-- service_role, and so the agent, may call them.

-- ─── Error patterns ─────────────────────────────────────────────────────────────────────────

/**
 * The pattern of an error text: quoted values, UUIDs, times, IP addresses, long ids, durations
 * and other numbers become <value>, <uuid>, <time>, <ip>, <id>, <duration> and <n>; an HTTP status
 * or error code after "HTTP", "status", "error", "code", "errno" or "sqlstate" stays, since it tells
 * two failures apart. Whitespace is folded; at most 300 characters; null for null or blank.
 */
create function vigil.error_pattern(p_error text)
returns text
language sql
immutable
strict
parallel safe
set search_path = ''
as $$
  select nullif(pg_catalog.left(pg_catalog.btrim(
    pg_catalog.regexp_replace(pg_catalog.regexp_replace(pg_catalog.regexp_replace(
    pg_catalog.regexp_replace(pg_catalog.regexp_replace(pg_catalog.regexp_replace(
    pg_catalog.regexp_replace(pg_catalog.regexp_replace(
      pg_catalog.left(p_error, 2000),
      $r$'[^']*'|"[^"]*"|`[^`]*`$r$, '<value>', 'g'),
      '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'gi'),
      '\m\d{4}-\d{2}-\d{2}([t ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(z|[+-]\d{2}(:?\d{2})?)?)?|\m\d{1,2}:\d{2}:\d{2}(\.\d+)?\M',
      '<time>', 'gi'),
      '\m\d{1,3}(\.\d{1,3}){3}(:\d{1,5})?\M|\[[0-9a-f:.]*:[0-9a-f:.]*\](:\d{1,5})?|\m[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,7}\M|::[0-9a-f]{1,4}\M',
      '<ip>', 'gi'),
      '\m(0x)?(?=[a-z_-]*\d)(?=\d*[a-z])[0-9a-z_-]{16,}\M|\m(0x)?(?=[a-f]*\d)[0-9a-f]{8,}\M', '<id>', 'gi'),
      '\m(\d+(\.\d+)?\s?(ns|us|µs|ms|s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?))+\M', '<duration>', 'gi'),
      '(?<!(http|status|error|code|errno|sqlstate) )\m\d+(\.\d+)?\M', '<n>', 'gi'),
      '\s+', ' ', 'g')), 300), '')
$$;
comment on function vigil.error_pattern(text) is
  'An error text with quoted values, UUIDs, times, IPs, ids, durations and numbers as placeholders: one pattern for errors that differ only there.';

-- Failed checks are few among many: the analyses read them through this index, not the table.
-- (Built in place: inserts into vigil.checks wait while it builds, seconds for millions of rows.)
create index checks_failed_time on vigil.checks (checked_at) where status <> 'healthy';

/**
 * Errors and incidents of the p_days before p_to against the p_days before those:
 * {period, history_since, checks, incidents, patterns, gone, incident_kinds, services, recurring, heals,
 * alerts}.
 * patterns: the p_top (pattern, service) pairs with most failed checks in the period, with the
 * count of the period before and when first and last seen in both; gone: those seen only before.
 * At most p_max_checks failed checks of each period are read, the latest first (checks.sampled
 * says when there were more). recurring: a service's incidents of one kind opened p_recurring_min
 * times or more in the period (folded ones left out). Read with the caller's rights.
 */
create function vigil.error_trends(
  p_to timestamptz,
  p_days integer default 7,
  p_top integer default 10,
  p_recurring_min integer default 3,
  p_max_checks integer default 100000
)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  span interval;
  p_from timestamptz;
  p_before timestamptz;
  result jsonb;
begin
  if p_to is null then
    raise exception 'error_trends: p_to is required' using errcode = '22023';
  elsif p_days is null or p_days not between 1 and 45 then
    raise exception 'error_trends: p_days must be from 1 to 45, got %', p_days using errcode = '22023';
  elsif p_top is null or p_top not between 1 and 100 then
    raise exception 'error_trends: p_top must be from 1 to 100, got %', p_top using errcode = '22023';
  elsif p_recurring_min is null or p_recurring_min not between 2 and 1000 then
    raise exception 'error_trends: p_recurring_min must be from 2 to 1000, got %', p_recurring_min using errcode = '22023';
  elsif p_max_checks is null or p_max_checks not between 1 and 10000000 then
    raise exception 'error_trends: p_max_checks must be from 1 to 10000000, got %', p_max_checks using errcode = '22023';
  end if;
  span := make_interval(days => p_days);
  p_from := p_to - span;
  p_before := p_from - span;

  with failed as (
    select 0 as period, c.service_id, c.checked_at, c.error
      from (select f.service_id, f.checked_at, f.error from vigil.checks f
             where f.checked_at >= p_from and f.checked_at < p_to and f.status <> 'healthy' and f.error is not null
             order by f.checked_at desc limit p_max_checks) c
    union all
    select 1, c.service_id, c.checked_at, c.error
      from (select f.service_id, f.checked_at, f.error from vigil.checks f
             where f.checked_at >= p_before and f.checked_at < p_from and f.status <> 'healthy' and f.error is not null
             order by f.checked_at desc limit p_max_checks) c
  ), by_error as (
    -- The same text repeats: each distinct one is folded into its pattern once.
    select f.service_id, f.error,
           count(*) filter (where f.period = 0) as n, count(*) filter (where f.period = 1) as n_before,
           min(f.checked_at) as first_seen, max(f.checked_at) as last_seen
      from failed f
     group by 1, 2
  ), by_pattern as (
    select b.service_id, vigil.error_pattern(b.error) as pattern, sum(b.n)::bigint as n,
           sum(b.n_before)::bigint as n_before, min(b.first_seen) as first_seen, max(b.last_seen) as last_seen
      from by_error b
     group by 1, 2
  ), named as (
    select s.name as service, b.* from by_pattern b join vigil.services s on s.id = b.service_id
     where b.pattern is not null
  ), opened as (
    select i.*, case when i.opened_at >= p_from then 0 else 1 end as period
      from vigil.incidents i
     where i.opened_at >= p_before and i.opened_at < p_to and i.folded_into is null
  ), rollups as (
    select case when r.bucket >= p_from then 0 else 1 end as period, r.service_id,
           sum(r.checks) as checks, sum(r.degraded + r.down) as failed
      from vigil.check_rollups r
     where r.bucket >= date_trunc('hour', p_before) and r.bucket < p_to
     group by 1, 2
  ), per_service as (
    select s.name as service,
           coalesce((select sum(r.failed) from rollups r where r.service_id = s.id and r.period = 0), 0) as failed_checks,
           coalesce((select sum(r.failed) from rollups r where r.service_id = s.id and r.period = 1), 0) as failed_checks_before,
           (select count(*) from opened o where o.service_id = s.id and o.period = 0) as incidents,
           (select count(*) from opened o where o.service_id = s.id and o.period = 1) as incidents_before
      from vigil.services s
  ), recurring as (
    select o.service_id, s.name as service, o.kind, count(*) as n,
           min(o.opened_at) as first_opened, max(o.opened_at) as last_opened,
           bool_or(o.status = 'open') as open_now,
           count(*) filter (where exists (select from vigil.heal_actions h
                                           where h.incident_id = o.id and h.phase = 'result'
                                             and h.outcome = 'succeeded')) as healed,
           round(avg(extract(epoch from coalesce(o.resolved_at, p_to) - o.opened_at)) / 60, 1) as mean_minutes,
           (array_agg(o.id order by o.opened_at desc))[1] as latest_incident_id
      from opened o join vigil.services s on s.id = o.service_id
     where o.period = 0
     group by o.service_id, s.name, o.kind
    having count(*) >= p_recurring_min
  )
  select jsonb_build_object(
    'period', jsonb_build_object('from', p_from, 'to', p_to, 'before_from', p_before, 'days', p_days),
    'history_since', (select min(c.checked_at) from vigil.checks c),
    'checks', jsonb_build_object(
      'total', coalesce((select sum(r.checks) from rollups r where r.period = 0), 0),
      'total_before', coalesce((select sum(r.checks) from rollups r where r.period = 1), 0),
      'failed', coalesce((select sum(r.failed) from rollups r where r.period = 0), 0),
      'failed_before', coalesce((select sum(r.failed) from rollups r where r.period = 1), 0),
      'with_error', (select count(*) from failed where period = 0),
      'with_error_before', (select count(*) from failed where period = 1),
      'sampled', (select count(*) from failed where period = 0) >= p_max_checks
                 or (select count(*) from failed where period = 1) >= p_max_checks),
    'incidents', jsonb_build_object('opened', (select count(*) from opened where period = 0),
                                    'opened_before', (select count(*) from opened where period = 1)),
    'patterns', coalesce((
      select jsonb_agg(jsonb_build_object('pattern', t.pattern, 'service', t.service, 'count', t.n,
                                          'count_before', t.n_before, 'first_seen', t.first_seen,
                                          'last_seen', t.last_seen)
                       order by t.n desc, t.n_before desc, t.service collate "C", t.pattern collate "C")
        from (select * from named where n > 0
               order by n desc, n_before desc, service collate "C", pattern collate "C" limit p_top) t), '[]'),
    'gone', coalesce((
      select jsonb_agg(jsonb_build_object('pattern', t.pattern, 'service', t.service, 'count', 0,
                                          'count_before', t.n_before, 'first_seen', t.first_seen,
                                          'last_seen', t.last_seen)
                       order by t.n_before desc, t.service collate "C", t.pattern collate "C")
        from (select * from named where n = 0
               order by n_before desc, service collate "C", pattern collate "C" limit p_top) t), '[]'),
    'incident_kinds', coalesce((
      select jsonb_agg(jsonb_build_object('kind', k.kind, 'count', k.n, 'count_before', k.n_before,
                                          'services', k.services)
                       order by k.n desc, k.n_before desc, k.kind collate "C")
        from (select o.kind, count(*) filter (where o.period = 0) as n, count(*) filter (where o.period = 1) as n_before,
                     coalesce(jsonb_agg(distinct s.name) filter (where o.period = 0), '[]') as services
                from opened o join vigil.services s on s.id = o.service_id
               group by o.kind
               order by 2 desc, 3 desc, o.kind collate "C" limit p_top) k), '[]'),
    'services', coalesce((
      select jsonb_agg(to_jsonb(t) order by t.incidents desc, t.failed_checks desc, t.service collate "C")
        from (select * from per_service
               where incidents + failed_checks + incidents_before + failed_checks_before > 0
               order by incidents desc, failed_checks desc, service collate "C" limit p_top) t), '[]'),
    'recurring', coalesce((
      select jsonb_agg(jsonb_build_object('service', r.service, 'service_id', r.service_id, 'kind', r.kind,
                                          'count', r.n, 'first_opened', r.first_opened,
                                          'last_opened', r.last_opened, 'open_now', r.open_now,
                                          'healed', r.healed, 'mean_minutes_open', r.mean_minutes,
                                          'latest_incident_id', r.latest_incident_id,
                                          'top_pattern', (select n.pattern from named n
                                                           where n.service_id = r.service_id and n.n > 0
                                                           order by n.n desc, n.pattern collate "C" limit 1))
                       order by r.n desc, r.service collate "C", r.kind collate "C")
        from recurring r), '[]'),
    'heals', jsonb_build_object(
      'this', coalesce((select jsonb_object_agg(x.outcome, x.n) from (
                          select h.outcome::text as outcome, count(*) as n from vigil.heal_actions h
                           where h.phase = 'result' and h.created_at >= p_from and h.created_at < p_to
                           group by 1) x), '{}'),
      'before', coalesce((select jsonb_object_agg(x.outcome, x.n) from (
                            select h.outcome::text as outcome, count(*) as n from vigil.heal_actions h
                             where h.phase = 'result' and h.created_at >= p_before and h.created_at < p_from
                             group by 1) x), '{}')),
    'alerts', jsonb_build_object(
      'this', coalesce((select jsonb_object_agg(x.status, x.n) from (
                          select a.status::text as status, count(*) as n from vigil.alerts a
                           where a.created_at >= p_from and a.created_at < p_to group by 1) x), '{}'),
      'before', coalesce((select jsonb_object_agg(x.status, x.n) from (
                            select a.status::text as status, count(*) as n from vigil.alerts a
                             where a.created_at >= p_before and a.created_at < p_from group by 1) x), '{}')))
  into result;
  return result;
end
$$;
comment on function vigil.error_trends(timestamptz, integer, integer, integer, integer) is
  'Check errors by pattern and service, incidents by kind, the services failing most, recurring incidents, heal and alert outcomes: a period against the one before. Read with the caller''s rights.';

-- ─── Statement history ──────────────────────────────────────────────────────────────────────

/**
 * The project database's statements (this database's rows of vigil.statement_snapshots, summed
 * over roles) in p_periods periods of p_days days ending on p_end: period 0 is (p_end - p_days,
 * p_end], period 1 the p_days before it, and so on. Each statement's counters between two of its
 * snapshots are the difference of the cumulative counters, or, when any of them went down (the
 * statistics were reset or the entry evicted), the later counters alone: never negative. A
 * difference spanning days the statement was out of the top is spread evenly over those days,
 * and over the periods they fall in. The first snapshot of a statement has no difference.
 */
create function vigil.statement_periods(p_end date, p_days integer, p_periods integer default 2)
returns table (
  period integer,
  queryid bigint,
  query text,
  calls float8,
  total_exec_ms float8,
  rows float8,
  shared_blks_hit float8,
  shared_blks_read float8,
  resets integer
)
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  if p_end is null then
    raise exception 'statement_periods: p_end is required' using errcode = '22023';
  elsif p_days is null or p_days not between 1 and 45 then
    raise exception 'statement_periods: p_days must be from 1 to 45, got %', p_days using errcode = '22023';
  elsif p_periods is null or p_periods not between 1 and 3 then
    raise exception 'statement_periods: p_periods must be from 1 to 3, got %', p_periods using errcode = '22023';
  end if;
  return query
  with snaps as (
    select s.userid, s.queryid, s.taken_on, s.calls, s.total_exec_ms, s.rows, s.shared_blks_hit, s.shared_blks_read,
           lag(s.taken_on) over w as prev_on, lag(s.calls) over w as prev_calls,
           lag(s.total_exec_ms) over w as prev_total, lag(s.rows) over w as prev_rows,
           lag(s.shared_blks_hit) over w as prev_hit, lag(s.shared_blks_read) over w as prev_read
      from vigil.statement_snapshots s
     where s.dbid = (select d.oid from pg_catalog.pg_database d where d.datname = pg_catalog.current_database())
       and s.taken_on <= p_end
    window w as (partition by s.userid, s.queryid order by s.taken_on)
  ), deltas as (
    select d.*,
           (d.calls < d.prev_calls or d.total_exec_ms < d.prev_total or d.rows < d.prev_rows
            or d.shared_blks_hit < d.prev_hit or d.shared_blks_read < d.prev_read) as reset
      from snaps d
     where d.prev_on is not null
  ), bounds as (
    select k - 1 as period, p_end - k * p_days as lo, p_end - (k - 1) * p_days as hi
      from generate_series(1, p_periods) k
  ), spread as (
    select b.period, d.queryid, d.reset,
           (least(d.taken_on, b.hi) - greatest(d.prev_on, b.lo))::float8 / (d.taken_on - d.prev_on) as share,
           case when d.reset then d.calls else d.calls - d.prev_calls end as d_calls,
           case when d.reset then d.total_exec_ms else d.total_exec_ms - d.prev_total end as d_total,
           case when d.reset then d.rows else d.rows - d.prev_rows end as d_rows,
           case when d.reset then d.shared_blks_hit else d.shared_blks_hit - d.prev_hit end as d_hit,
           case when d.reset then d.shared_blks_read else d.shared_blks_read - d.prev_read end as d_read
      from deltas d join bounds b on d.taken_on > b.lo and d.prev_on < b.hi
  ), latest as (
    select distinct on (s.queryid) s.queryid, s.query
      from vigil.statement_snapshots s
     where s.dbid = (select d.oid from pg_catalog.pg_database d where d.datname = pg_catalog.current_database())
       and s.taken_on <= p_end
     order by s.queryid, s.taken_on desc, s.calls desc
  )
  select x.period, x.queryid, pg_catalog.left(l.query, 500), x.calls, x.total_exec_ms, x.rows, x.hit, x.read, x.resets
    from (select s.period, s.queryid,
                 sum(s.d_calls * s.share)::float8 as calls, sum(s.d_total * s.share)::float8 as total_exec_ms,
                 sum(s.d_rows * s.share)::float8 as rows, sum(s.d_hit * s.share)::float8 as hit,
                 sum(s.d_read * s.share)::float8 as read, (count(*) filter (where s.reset))::integer as resets
            from spread s
           group by s.period, s.queryid) x
    join latest l on l.queryid = x.queryid
   where x.calls > 0
   order by x.period, x.total_exec_ms desc, x.queryid;
end
$$;
comment on function vigil.statement_periods(date, integer, integer) is
  'The project database''s statements per period of days, from the differences of the daily snapshots'' cumulative counters (a reset never makes one negative). Read with the caller''s rights.';

-- ─── Recommendations kept in step with an analysis ──────────────────────────────────────────

/**
 * Makes the open recommendations of p_kind match p_items, an array of {service_id, key, title,
 * detail, incident_id?}: an item not open yet is opened, one whose title or detail changed is
 * refreshed, an unchanged one is left alone, and an open one of p_kind not in the list is resolved.
 * Returns {opened: [{service_id, service, key, title}], updated, unchanged, resolved: [same]}.
 */
create function vigil.sync_recommendations(p_kind text, p_items jsonb)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  bad record;
  opened jsonb;
  touched integer;
  resolved jsonb;
begin
  if p_kind is null or p_kind !~ '^[a-z][a-z0-9_]{0,62}$' then
    raise exception 'sync_recommendations: kind must be a name of a-z, 0-9 and _, got %', coalesce(p_kind, 'null')
      using errcode = '22023';
  elsif jsonb_typeof(p_items) is distinct from 'array' then
    raise exception 'sync_recommendations: items must be a JSON array' using errcode = '22023';
  end if;
  select n, case
           when jsonb_typeof(e) <> 'object' then 'an object'
           when jsonb_typeof(e -> 'service_id') is distinct from 'string'
                or e ->> 'service_id' !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then 'service_id'
           when jsonb_typeof(e -> 'key') is distinct from 'string' or length(e ->> 'key') not between 1 and 200 then 'key'
           when jsonb_typeof(e -> 'title') is distinct from 'string' or length(e ->> 'title') not between 1 and 1000 then 'title'
           when e ? 'detail' and jsonb_typeof(e -> 'detail') <> 'object' then 'detail'
           when e ? 'incident_id' and jsonb_typeof(e -> 'incident_id') not in ('number', 'null') then 'incident_id'
         end as field
    into bad
    from jsonb_array_elements(p_items) with ordinality as f(e, n)
   where jsonb_typeof(e) <> 'object'
      or jsonb_typeof(e -> 'service_id') is distinct from 'string'
      or e ->> 'service_id' !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
      or jsonb_typeof(e -> 'key') is distinct from 'string' or length(e ->> 'key') not between 1 and 200
      or jsonb_typeof(e -> 'title') is distinct from 'string' or length(e ->> 'title') not between 1 and 1000
      or (e ? 'detail' and jsonb_typeof(e -> 'detail') <> 'object')
      or (e ? 'incident_id' and jsonb_typeof(e -> 'incident_id') not in ('number', 'null'))
   order by n
   limit 1;
  if bad.field = 'an object' then
    raise exception 'sync_recommendations: item % must be an object with service_id, key and title', bad.n
      using errcode = '22023';
  elsif bad.field is not null then
    raise exception 'sync_recommendations: item % has no valid %', bad.n, bad.field using errcode = '22023';
  end if;
  if (select count(*) <> count(distinct (e ->> 'service_id', e ->> 'key')) from jsonb_array_elements(p_items) e) then
    raise exception 'sync_recommendations: an item is listed twice (same service_id and key)' using errcode = '22023';
  end if;
  -- Two runs at once would race on the same open rows.
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('vigil.sync_recommendations:' || p_kind, 0));

  with items as (
    select (e ->> 'service_id')::uuid as service_id, e ->> 'key' as key, e ->> 'title' as title,
           coalesce(e -> 'detail', '{}') as detail, (e ->> 'incident_id')::bigint as incident_id
      from jsonb_array_elements(p_items) e
  ), written as (
    insert into vigil.recommendations as r (service_id, incident_id, kind, key, title, detail)
    select i.service_id, i.incident_id, p_kind, i.key, i.title, i.detail from items i
    on conflict (service_id, kind, key) where status = 'open'
    do update set title = excluded.title, detail = excluded.detail,
                  incident_id = coalesce(excluded.incident_id, r.incident_id), updated_at = now()
       where r.title is distinct from excluded.title or r.detail is distinct from excluded.detail
    returning r.service_id, r.key, r.title, (r.xmax = 0) as inserted
  )
  select coalesce(jsonb_agg(jsonb_build_object('service_id', w.service_id, 'service', s.name, 'key', w.key,
                                               'title', w.title)
                            order by s.name, w.key) filter (where w.inserted), '[]'),
         count(*)
    into opened, touched
    from written w join vigil.services s on s.id = w.service_id;

  with gone as (
    update vigil.recommendations r
       set status = 'resolved', resolved_at = now(), updated_at = now()
     where r.kind = p_kind and r.status = 'open'
       and not exists (select from jsonb_array_elements(p_items) e
                        where (e ->> 'service_id')::uuid = r.service_id and e ->> 'key' = r.key)
    returning r.service_id, r.key, r.title
  )
  select coalesce(jsonb_agg(jsonb_build_object('service_id', g.service_id, 'service', s.name, 'key', g.key,
                                               'title', g.title)
                            order by s.name, g.key), '[]')
    into resolved
    from gone g join vigil.services s on s.id = g.service_id;

  return jsonb_build_object('opened', opened, 'updated', touched - jsonb_array_length(opened),
                            'unchanged', jsonb_array_length(p_items) - touched, 'resolved', resolved);
end
$$;
comment on function vigil.sync_recommendations(text, jsonb) is
  'Makes the open recommendations of one kind match a list: opened, refreshed when changed, the others resolved. With the caller''s rights.';

revoke execute on function vigil.error_pattern(text), vigil.error_trends(timestamptz, integer, integer, integer, integer),
  vigil.statement_periods(date, integer, integer), vigil.sync_recommendations(text, jsonb) from public;
-- The maintenance function's (service_role's, and so the agent's): the weekly report reads what the
-- runs found in vigil.maintenance_runs, not these.
grant execute on function vigil.error_pattern(text), vigil.error_trends(timestamptz, integer, integer, integer, integer),
  vigil.statement_periods(date, integer, integer), vigil.sync_recommendations(text, jsonb) to service_role;

select vigil.settle_privileges();
