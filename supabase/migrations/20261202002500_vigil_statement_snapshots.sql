-- Daily snapshot of pg_stat_statements (issue 11), so query performance can be compared day to
-- day: the top statements by total execution time, one row per statement per day (taking it again
-- the same day replaces that day's), kept for 90 days. The query text is pg_stat_statements'
-- normalized text, whose constants are placeholders ($1), but not always: before Postgres 16 a
-- utility statement is kept as written (ALTER ROLE … PASSWORD '…'), and a statement whose entry was
-- evicted comes back verbatim. So every quoted string left in the text is masked ('…') here.

create table vigil.statement_snapshots (
  taken_on date not null,
  dbid oid not null,
  userid oid not null,
  queryid bigint not null,
  query text not null,
  calls bigint not null,
  total_exec_ms float8 not null,
  mean_exec_ms float8 not null,
  rows bigint not null,
  shared_blks_hit bigint not null,
  shared_blks_read bigint not null,
  primary key (taken_on, dbid, userid, queryid)
);
comment on table vigil.statement_snapshots is
  'pg_stat_statements'' top statements by total time, once a day (cumulative counters as read that day), for 90 days.';

grant select on vigil.statement_snapshots to service_role, authenticated;
alter table vigil.statement_snapshots enable row level security;
create policy "Operators can read statement snapshots" on vigil.statement_snapshots
  for select to authenticated using ((select vigil.is_operator()));

/**
 * Takes today's (UTC) snapshot of the p_limit statements with the most total execution time, in
 * place of any taken earlier today, and drops snapshots older than 90 days. Returns
 * {taken_on, statements, previous_on, compared}: compared holds the 5 statements whose mean time
 * moved most since the latest earlier snapshot. Raises 55000 when pg_stat_statements cannot be read.
 */
create function vigil.snapshot_statements(p_limit integer default 500)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  ext_schema text;
  today date := (pg_catalog.now() at time zone 'utc')::date;
  taken integer;
  previous date;
  compared jsonb;
begin
  if p_limit is null or p_limit < 1 or p_limit > 10000 then
    raise exception 'snapshot_statements: the limit must be between 1 and 10000, got %', p_limit
      using errcode = '22023';
  end if;
  select n.nspname into ext_schema
    from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
   where e.extname = 'pg_stat_statements';
  if ext_schema is null then
    raise exception 'pg_stat_statements is not installed in this database' using errcode = '55000';
  end if;

  -- With pg_stat_statements.track = all a statement has a top-level row and a nested one: summed.
  execute pg_catalog.format($q$
    with top as (
      select s.dbid, s.userid, s.queryid, pg_catalog.min(s.query) as query,
             pg_catalog.sum(s.calls)::bigint as calls,
             pg_catalog.sum(s.total_exec_time)::float8 as total_exec_ms,
             pg_catalog.sum(s.rows)::bigint as rows,
             pg_catalog.sum(s.shared_blks_hit)::bigint as shared_blks_hit,
             pg_catalog.sum(s.shared_blks_read)::bigint as shared_blks_read
        from %I.pg_stat_statements s
       where s.queryid is not null and s.calls > 0
       group by s.dbid, s.userid, s.queryid
       order by 6 desc
       limit $2
    ), kept as (
      insert into vigil.statement_snapshots as o
        (taken_on, dbid, userid, queryid, query, calls, total_exec_ms, mean_exec_ms, rows,
         shared_blks_hit, shared_blks_read)
      select $1, t.dbid, t.userid, t.queryid,
             pg_catalog.regexp_replace(t.query, '''([^'']|'''')*''', '''…''', 'g'), t.calls, t.total_exec_ms,
             t.total_exec_ms / t.calls, t.rows, t.shared_blks_hit, t.shared_blks_read
        from top t
      on conflict (taken_on, dbid, userid, queryid) do update
         set query = excluded.query, calls = excluded.calls, total_exec_ms = excluded.total_exec_ms,
             mean_exec_ms = excluded.mean_exec_ms, rows = excluded.rows,
             shared_blks_hit = excluded.shared_blks_hit, shared_blks_read = excluded.shared_blks_read
      returning o.dbid, o.userid, o.queryid
    ), dropped as (
      -- Today's snapshot is the latest top: a statement that fell out of it since goes.
      delete from vigil.statement_snapshots d
       where d.taken_on = $1
         and not exists (select from kept k
                          where k.dbid = d.dbid and k.userid = d.userid and k.queryid = d.queryid)
    )
    select pg_catalog.count(*)::integer from kept$q$, ext_schema)
    into taken using today, p_limit;

  delete from vigil.statement_snapshots where taken_on < today - 90;

  select pg_catalog.max(s.taken_on) into previous from vigil.statement_snapshots s where s.taken_on < today;
  select coalesce(pg_catalog.jsonb_agg(c.item order by c.change desc), '[]') into compared
    from (select pg_catalog.jsonb_build_object(
                   'query', pg_catalog.left(t.query, 200),
                   'mean_ms', pg_catalog.round(t.mean_exec_ms::numeric, 3),
                   'previous_mean_ms', pg_catalog.round(p.mean_exec_ms::numeric, 3),
                   'calls_delta', t.calls - p.calls) as item,
                 abs(t.mean_exec_ms - p.mean_exec_ms) as change
            from vigil.statement_snapshots t
            join vigil.statement_snapshots p
              on p.taken_on = previous and p.dbid = t.dbid and p.userid = t.userid and p.queryid = t.queryid
           where t.taken_on = today
           order by abs(t.mean_exec_ms - p.mean_exec_ms) desc
           limit 5) c;

  return pg_catalog.jsonb_build_object('taken_on', today, 'statements', taken, 'previous_on', previous,
                                       'compared', compared);
end
$$;
comment on function vigil.snapshot_statements(integer) is
  'Today''s snapshot of the top statements by total time from pg_stat_statements, compared with the previous day''s.';

revoke execute on function vigil.snapshot_statements(integer) from public;
grant execute on function vigil.snapshot_statements(integer) to service_role;

select vigil.settle_privileges();
