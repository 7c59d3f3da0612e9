-- N+1 detection needs the calls of each statement over short periods, not once a day: the analysis
-- takes a sample of pg_stat_statements' cumulative counters each run (every minute), kept six
-- hours. Statements whose calls rise in lockstep with another statement's, many per call and each
-- cheap, are the N+1 pattern (supabase/functions/_shared/analysis/nplusone.ts).

create table vigil.statement_samples (
  taken_at timestamptz not null,
  dbid oid not null,
  userid oid not null,
  queryid bigint not null,
  query text not null,
  calls bigint not null,
  total_exec_ms float8 not null,
  rows bigint not null,
  primary key (taken_at, dbid, userid, queryid)
);
create index statement_samples_statement on vigil.statement_samples (queryid, taken_at);
comment on table vigil.statement_samples is
  'pg_stat_statements'' most-called statements every analysis run (cumulative counters as read), for six hours: N+1 detection.';

/**
 * Takes a sample of the p_limit most-called top-level statements of this database (literals left
 * out of the text), and drops samples older than six hours. Returns how many statements were kept;
 * raises 55000 when pg_stat_statements cannot be read.
 */
create function vigil.sample_statements(p_limit integer default 300)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  ext_schema text;
  taken integer;
begin
  if p_limit is null or p_limit < 1 or p_limit > 5000 then
    raise exception 'sample_statements: the limit must be between 1 and 5000, got %', p_limit
      using errcode = '22023';
  end if;
  select n.nspname into ext_schema
    from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
   where e.extname = 'pg_stat_statements';
  if ext_schema is null then
    raise exception 'pg_stat_statements is not installed in this database' using errcode = '55000';
  end if;
  execute pg_catalog.format($q$
    insert into vigil.statement_samples (taken_at, dbid, userid, queryid, query, calls, total_exec_ms, rows)
    select pg_catalog.now(), s.dbid, s.userid, s.queryid,
           pg_catalog.left(pg_catalog.regexp_replace(pg_catalog.min(s.query), '''([^'']|'''')*''', '''…''', 'g'), 1000),
           pg_catalog.sum(s.calls)::bigint, pg_catalog.sum(s.total_exec_time)::float8, pg_catalog.sum(s.rows)::bigint
      from %I.pg_stat_statements s
     where s.queryid is not null and s.calls > 0 and s.toplevel
       and s.dbid = (select d.oid from pg_catalog.pg_database d where d.datname = pg_catalog.current_database())
       -- Vigil's own statements are not the application's to fix.
       and s.userid not in (select r.oid from pg_catalog.pg_roles r where r.rolname like 'vigil\_%%')
     group by s.dbid, s.userid, s.queryid
     order by 6 desc
     limit $1
    on conflict do nothing$q$, ext_schema)
    using p_limit;
  get diagnostics taken = row_count;
  delete from vigil.statement_samples where taken_at < pg_catalog.now() - interval '6 hours';
  return taken;
end
$$;
revoke execute on function vigil.sample_statements(integer) from public;
grant execute on function vigil.sample_statements(integer) to service_role;

grant select on vigil.statement_samples to service_role, authenticated;
alter table vigil.statement_samples enable row level security;
create policy "Operators can read statement samples" on vigil.statement_samples
  for select to authenticated using ((select vigil.is_operator()));

select vigil.settle_privileges();
