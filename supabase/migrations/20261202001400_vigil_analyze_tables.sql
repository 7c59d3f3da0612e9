-- Stale statistics are healed with ANALYZE (strategy analyze_tables). The agent owns nothing, so a
-- table it may not analyze itself goes through vigil.analyze_table, which finds it in the catalog
-- (ANALYZE, unlike VACUUM, may run inside a function).

create function vigil.analyze_table(p_schema text, p_table text)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  rel oid;
  kind char;
begin
  if p_schema is null or p_table is null then
    raise exception 'analyze_table: schema and table are required' using errcode = '22004';
  end if;
  -- Vigil's own tables are analyzed like any other; the catalogs and pg_cron's are not.
  if p_schema ~ '^pg_' or p_schema in ('information_schema', 'cron') then
    raise exception 'analyze_table: schema % is not analyzed by Vigil', p_schema using errcode = '42501';
  end if;
  select c.oid, c.relkind into rel, kind
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where n.nspname = p_schema and c.relname = p_table and c.relpersistence <> 't';
  if rel is null then
    raise exception 'analyze_table: table %.% does not exist', p_schema, p_table using errcode = '42P01';
  end if;
  if kind not in ('r', 'm', 'p') then
    raise exception 'analyze_table: %.% is not a table', p_schema, p_table using errcode = '42809';
  end if;
  perform pg_catalog.set_config('lock_timeout', '5s', true);
  execute format('analyze %s', rel::regclass);
end
$$;
comment on function vigil.analyze_table(text, text) is
  'ANALYZE of one table found in the catalog, for the agent, which owns none.';
revoke execute on function vigil.analyze_table(text, text) from public;
grant execute on function vigil.analyze_table(text, text) to service_role;

select vigil.settle_privileges();
