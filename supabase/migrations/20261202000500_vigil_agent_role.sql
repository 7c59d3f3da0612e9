-- Vigil's functions connect as vigil_agent, a least-privilege role, never as the tables' owner.
--
--   vigil_owner  NOLOGIN. Owns every table, view and sequence of the schema vigil, so nobody who
--                logs in as the agent can disable the audit's append-only triggers, truncate it,
--                drop a table or change a policy. The migrations' role (postgres) is a member.
--   vigil_agent  what the functions log in as (VIGIL_DB_URL). pg_monitor (every session, every
--                statement's statistics), pg_signal_backend (cancel and terminate non-superuser
--                sessions), pg_maintain on Postgres 17 (VACUUM, ANALYZE, REINDEX, CLUSTER, REFRESH
--                and LOCK of any table), the same
--                rights in vigil as service_role has — except writing the tables people configure
--                — and row-security policies of its own. Owner of nothing. Created NOLOGIN here:
--                who deploys gives it a password (README, "Security model"), no password lives in
--                a migration.
--   vigil_explainer  NOLOGIN NOINHERIT, a member of pg_read_all_data: the agent's way to SET ROLE
--                pg_read_all_data, the read-only role the index advisor plans other people's
--                SELECTs as, without inheriting its read access (a NOINHERIT role passes nothing on).
--
-- What needs more than that goes through a narrow SECURITY DEFINER function that checks its
-- arguments against the catalog: vigil.build_index and vigil.drop_built_index below.

do $$
declare
  r text;
begin
  foreach r in array array['vigil_owner', 'vigil_agent', 'vigil_explainer'] loop
    if not exists (select from pg_catalog.pg_roles where rolname = r) then
      execute format('create role %I nologin', r);
    end if;
  end loop;
  alter role vigil_explainer noinherit;
  -- The migrations' role must be able to hand objects to vigil_owner and keep managing them: from
  -- Postgres 16 a non-superuser creating a role holds only ADMIN on it, so SET and INHERIT are
  -- granted explicitly.
  if current_setting('server_version_num')::int >= 160000 then
    if not pg_catalog.pg_has_role(current_user, 'vigil_owner', 'SET')
       or not pg_catalog.pg_has_role(current_user, 'vigil_owner', 'USAGE') then
      execute format('grant vigil_owner to %I with inherit true, set true', current_user);
    end if;
    execute 'grant vigil_explainer to vigil_agent with inherit false, set true';
  else
    if not pg_catalog.pg_has_role(current_user, 'vigil_owner', 'USAGE') then
      execute format('grant vigil_owner to %I', current_user);
    end if;
    grant vigil_explainer to vigil_agent;
  end if;
end
$$;

comment on role vigil_owner is 'Owns Vigil''s tables; nobody logs in as it.';
comment on role vigil_agent is 'Vigil''s edge functions log in as this role (VIGIL_DB_URL): least privilege, owner of nothing.';
comment on role vigil_explainer is 'The agent''s way to SET ROLE pg_read_all_data (planning other people''s SELECTs) without inheriting it.';

-- Predefined roles. Supabase's postgres may grant them (it holds them with admin option); where
-- it may not, the migration still succeeds and the health check says what is missing.
do $$
declare
  grants text[][] := array[['pg_monitor', 'vigil_agent'], ['pg_signal_backend', 'vigil_agent'],
                           ['pg_maintain', 'vigil_agent'], ['pg_read_all_data', 'vigil_explainer']];
  g text[];
begin
  foreach g slice 1 in array grants loop
    continue when not exists (select from pg_catalog.pg_roles where rolname = g[1]);  -- pg_maintain: 17+
    continue when pg_catalog.pg_has_role(g[2], g[1], 'MEMBER');
    begin
      execute format('grant %I to %I', g[1], g[2]);
    exception when insufficient_privilege or invalid_grant_operation then
      raise warning 'could not grant % to %: %', g[1], g[2], sqlerrm
        using hint = 'Run the grant as a role that holds it with admin option.';
    end;
  end loop;
end
$$;

-- vigil_owner needs the schema: foreign-key checks run as the table's owner, and ALTER … OWNER
-- by a non-superuser (Supabase's postgres) needs the new owner to hold CREATE on it.
grant usage, create on schema vigil to vigil_owner;
grant usage on schema vigil to vigil_agent;
grant usage on schema extensions to vigil_agent, vigil_explainer;

-- ─── Ownership and the agent's rights, settled after every migration ──────────────────────────
-- A later migration creates its tables as postgres and then calls vigil.settle_privileges(): the
-- new tables go to vigil_owner, the agent gets what service_role has, and a policy of its own.
-- pgTAP (003, 013) fails when one is forgotten.

create function vigil.settle_privileges()
returns void
language plpgsql
set search_path = ''
as $$
declare
  r record;
  -- Tables people configure: the agent reads them and never writes them (the kill switch, dry
  -- run, contacts, routes, policies, silences); machinery that must change one is SECURITY DEFINER.
  configured constant text[] := array['settings', 'contacts', 'alert_routes', 'heal_policies', 'silences',
                                      'probe_config_schemas', 'services'];
begin
  for r in
    select c.oid::regclass as rel, c.relkind
      from pg_catalog.pg_class c
     where c.relnamespace = 'vigil'::regnamespace
       and c.relkind in ('r', 'p', 'v', 'm')
       and pg_catalog.pg_get_userbyid(c.relowner) <> 'vigil_owner'
  loop
    -- Owned sequences (identity columns) follow their table.
    execute format('alter %s %s owner to vigil_owner',
                   case r.relkind when 'v' then 'view' when 'm' then 'materialized view' else 'table' end,
                   r.rel);
  end loop;
  for r in
    select c.oid::regclass as rel
      from pg_catalog.pg_class c
     where c.relnamespace = 'vigil'::regnamespace and c.relkind = 'S'
       and pg_catalog.pg_get_userbyid(c.relowner) <> 'vigil_owner'
       and not exists (select from pg_catalog.pg_depend d
                        where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype in ('a', 'i'))
  loop
    execute format('alter sequence %s owner to vigil_owner', r.rel);
  end loop;

  -- Tables and views: service_role's rights, less TRUNCATE, REFERENCES and TRIGGER, less writes
  -- to the configured tables.
  for r in
    select c.oid::regclass as rel, c.relname,
           array(select p from unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p
                  where pg_catalog.has_table_privilege('service_role', c.oid, p)
                    and (p = 'SELECT' or c.relname <> all (configured))) as privileges
      from pg_catalog.pg_class c
     where c.relnamespace = 'vigil'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
  loop
    execute format('revoke all on %s from vigil_agent', r.rel);
    if cardinality(r.privileges) > 0 then
      execute format('grant %s on %s to vigil_agent', array_to_string(r.privileges, ', '), r.rel);
    end if;
  end loop;
  grant usage on all sequences in schema vigil to vigil_agent;

  -- Functions: exactly those service_role may call.
  for r in
    select p.oid::regprocedure as fn,
           pg_catalog.has_function_privilege('service_role', p.oid, 'EXECUTE') as allowed
      from pg_catalog.pg_proc p
     where p.pronamespace = 'vigil'::regnamespace
  loop
    if r.allowed then
      execute format('grant execute on function %s to vigil_agent', r.fn);
    else
      execute format('revoke execute on function %s from vigil_agent', r.fn);
    end if;
  end loop;

  -- Row security: the agent sees and writes every row its grants allow (Supabase cannot give a
  -- role BYPASSRLS; the grants above decide what it may do).
  for r in
    select c.oid::regclass as rel, c.relname
      from pg_catalog.pg_class c
     where c.relnamespace = 'vigil'::regnamespace and c.relkind in ('r', 'p') and c.relrowsecurity
       and not exists (select from pg_catalog.pg_policy pol
                        where pol.polrelid = c.oid and pol.polname = 'Vigil''s agent')
  loop
    execute format('create policy "Vigil''s agent" on %s for all to vigil_agent using (true) with check (true)', r.rel);
  end loop;
end
$$;
revoke execute on function vigil.settle_privileges() from public;
comment on function vigil.settle_privileges() is
  'Hands every vigil table to vigil_owner and gives vigil_agent what it needs; every migration that adds a table calls it last.';

-- ─── Indexes the agent may build and drop ───────────────────────────────────────────────────
-- CREATE INDEX needs the table's owner, and CONCURRENTLY cannot run inside a function. So the
-- agent either builds concurrently itself (when it may: a target it owns) or asks this function,
-- which builds in place: writes to the table wait for the build, so only tables up to 128 MB and a
-- lock wait of 2 s at most (the caller bounds the build with its statement_timeout). Nothing comes
-- from stored SQL text: the statement is composed here from names checked against the catalog.

create table vigil.built_indexes (
  id bigint generated always as identity primary key,
  index_oid oid not null,
  schema_name text not null,
  table_name text not null,
  index_name text not null,
  columns jsonb not null,
  built_by text not null default session_user,
  built_at timestamptz not null default now(),
  build_ms integer not null,
  dropped_at timestamptz,
  constraint built_index_name check (index_name ~ '^vigil_idx_' and octet_length(index_name) <= 63)
);
create unique index built_indexes_live on vigil.built_indexes (schema_name, index_name) where dropped_at is null;
comment on table vigil.built_indexes is
  'Every index vigil.build_index built, and when vigil.drop_built_index dropped it: the only indexes the agent may drop.';
grant select on vigil.built_indexes to service_role, authenticated;
alter table vigil.built_indexes enable row level security;
create policy "Operators can read built indexes" on vigil.built_indexes
  for select to authenticated using ((select vigil.is_operator()));

/** Schemas Vigil never indexes: the catalogs, its own, and those Supabase manages. */
create function vigil.unindexable_schema(p_schema text)
returns boolean
language sql
immutable
set search_path = ''
as $$
  select p_schema ~ '^pg_' or p_schema = any (array[
    'information_schema', 'vigil', 'extensions', 'auth', 'storage', 'realtime', '_realtime',
    'supabase_functions', 'supabase_migrations', 'graphql', 'graphql_public', 'pgsodium',
    'pgsodium_masks', 'vault', 'net', 'cron', 'pgbouncer', '_analytics', 'pgtle'])
$$;

create function vigil.build_index(p_schema text, p_table text, p_columns jsonb, p_index_name text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  max_bytes constant bigint := 128 * 1024 * 1024;
  rel oid;
  kind char;
  size bigint;
  cols text[];
  col text;
  started timestamptz;
  ms integer;
begin
  if p_schema is null or p_table is null or p_index_name is null then
    raise exception 'build_index: schema, table and index name are required' using errcode = '22004';
  end if;
  if jsonb_typeof(p_columns) is distinct from 'array' or jsonb_array_length(p_columns) not between 1 and 3
     or exists (select from jsonb_array_elements(p_columns) e where jsonb_typeof(e) <> 'string') then
    raise exception 'build_index: columns must be a list of 1 to 3 column names' using errcode = '22023';
  end if;
  select array_agg(e order by n) into cols from jsonb_array_elements_text(p_columns) with ordinality as t(e, n);
  if (select count(distinct c) from unnest(cols) c) <> cardinality(cols) then
    raise exception 'build_index: a column is named twice' using errcode = '22023';
  end if;
  if p_index_name !~ '^vigil_idx_[a-z0-9_]+$' or octet_length(p_index_name) > 63 then
    raise exception 'build_index: index name % must be vigil_idx_ followed by a-z, 0-9 and _, at most 63 bytes', p_index_name
      using errcode = '42602';
  end if;
  if vigil.unindexable_schema(p_schema) then
    raise exception 'build_index: schema % is not indexed by Vigil', p_schema using errcode = '42501';
  end if;

  select c.oid, c.relkind into rel, kind
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where n.nspname = p_schema and c.relname = p_table;
  if rel is null then
    raise exception 'build_index: table %.% does not exist', p_schema, p_table using errcode = '42P01';
  end if;
  if kind not in ('r', 'm') then
    raise exception 'build_index: %.% is not a table', p_schema, p_table using errcode = '42809';
  end if;
  foreach col in array cols loop
    if not exists (select from pg_catalog.pg_attribute a
                    where a.attrelid = rel and a.attname = col and a.attnum > 0 and not a.attisdropped) then
      raise exception 'build_index: column % of %.% does not exist', col, p_schema, p_table using errcode = '42703';
    end if;
  end loop;
  if exists (select from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
              where n.nspname = p_schema and c.relname = p_index_name) then
    raise exception 'build_index: %.% already exists', p_schema, p_index_name using errcode = '42P07';
  end if;
  size := pg_catalog.pg_total_relation_size(rel);
  if size > max_bytes then
    raise exception 'build_index: %.% is % (over 128 MB): built in place, writes would wait too long',
      p_schema, p_table, pg_catalog.pg_size_pretty(size)
      using errcode = '54000',
            hint = 'Build it concurrently yourself: CREATE INDEX CONCURRENTLY.';
  end if;

  -- A lock wait of 2 s at most; the build's own limit is the caller's statement_timeout, since a
  -- function cannot re-arm the timer of the statement that called it.
  perform pg_catalog.set_config('lock_timeout', '2s', true);
  started := pg_catalog.clock_timestamp();
  -- The table by the oid checked above (regclass prints it schema-qualified and quoted).
  execute format('create index %I on %s using btree (%s)', p_index_name, rel::regclass,
                 (select string_agg(format('%I', c), ', ' order by n) from unnest(cols) with ordinality as u(c, n)));
  ms := round(extract(epoch from pg_catalog.clock_timestamp() - started) * 1000)::int;
  -- A record whose index someone dropped by hand is closed, not left to block this name.
  update vigil.built_indexes b set dropped_at = now()
   where b.schema_name = p_schema and b.index_name = p_index_name and b.dropped_at is null;
  insert into vigil.built_indexes (index_oid, schema_name, table_name, index_name, columns, build_ms)
  values (to_regclass(format('%I.%I', p_schema, p_index_name))::oid, p_schema, p_table, p_index_name,
          to_jsonb(cols), ms);
  return jsonb_build_object('schema', p_schema, 'table', p_table, 'index_name', p_index_name,
                            'columns', to_jsonb(cols), 'build_ms', ms);
end
$$;
comment on function vigil.build_index(text, text, jsonb, text) is
  'Builds a btree index named vigil_idx_… on columns of a table (up to 128 MB) in place, from catalog-checked names; recorded in vigil.built_indexes.';

create function vigil.drop_built_index(p_schema text, p_index_name text)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  ix record;
begin
  select c.oid, i.indisvalid as valid into ix
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    join pg_catalog.pg_index i on i.indexrelid = c.oid
   where n.nspname = p_schema and c.relname = p_index_name and c.relkind = 'i';
  if ix.oid is null then
    update vigil.built_indexes set dropped_at = now()
     where schema_name = p_schema and index_name = p_index_name and dropped_at is null;
    return false;
  end if;
  -- Only the very index build_index built (by oid, not a namesake made since), or an INVALID
  -- leftover of an earlier concurrent build of Vigil's.
  if not exists (select from vigil.built_indexes b
                  where b.index_oid = ix.oid and b.schema_name = p_schema and b.index_name = p_index_name
                    and b.dropped_at is null)
     and not (not ix.valid and p_index_name ~ '^vigil_idx_') then
    raise exception 'drop_built_index: %.% was not built by Vigil', p_schema, p_index_name using errcode = '42501';
  end if;
  perform pg_catalog.set_config('lock_timeout', '2s', true);
  execute format('drop index %s', ix.oid::regclass);
  update vigil.built_indexes set dropped_at = now()
   where schema_name = p_schema and index_name = p_index_name and dropped_at is null;
  return true;
end
$$;
comment on function vigil.drop_built_index(text, text) is
  'Drops an index vigil.build_index built (or an INVALID vigil_idx_ leftover); false when it is already gone.';

revoke execute on function vigil.unindexable_schema(text), vigil.build_index(text, text, jsonb, text),
  vigil.drop_built_index(text, text) from public;
grant execute on function vigil.build_index(text, text, jsonb, text), vigil.drop_built_index(text, text)
  to service_role;

select vigil.settle_privileges();
