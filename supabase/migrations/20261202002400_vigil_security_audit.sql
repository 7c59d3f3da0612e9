-- The security audit (issue 11): the project's exposed schemas checked the way Supabase's database
-- linter (splinter) checks them, with splinter's lint names, and each finding tracked as an incident
-- per lint and a recommendation per object, until it is fixed.
--
-- vigil.security_lints reads the catalogs only (nothing version-specific from Postgres 14 to 17) and
-- runs as its caller. Never reported: the catalogs, the schemas Supabase manages, Vigil's own schema
-- (tested on its own) and whatever an extension owns. vigil.apply_security_lints keeps the findings.

/**
 * One row per violating object in the exposed schemas p_schemas (a schema that does not exist is
 * ignored), ordered by severity (worst first), lint and object. Each row has a remediation that can
 * be run as it is, or nearly so.
 */
create function vigil.security_lints(p_schemas text[] default array['public'])
returns table (lint text, severity vigil.severity, object text, title text, detail jsonb, remediation text)
language sql
stable
security invoker
set search_path = ''
as $$
  with exposed as (
    select n.oid, n.nspname
      from pg_catalog.pg_namespace n
     where n.nspname = any (coalesce(p_schemas, '{}'))
       and n.nspname !~ '^pg_'
       and n.nspname <> all (array[
         'information_schema', 'vigil', 'extensions', 'auth', 'storage', 'realtime', '_realtime',
         'supabase_functions', 'supabase_migrations', 'graphql', 'graphql_public', 'pgsodium',
         'pgsodium_masks', 'vault', 'net', 'cron', 'pgbouncer', '_analytics', 'pgtle', 'pgmq', 'repack',
         'topology', 'tiger'])
  ),
  extension_members as (
    select d.classid, d.objid from pg_catalog.pg_depend d where d.deptype = 'e'
  ),
  tables as (
    select c.oid, c.oid::regclass::text as name, x.nspname as schema_name, c.relname, c.relkind,
           c.relrowsecurity as rls
      from pg_catalog.pg_class c
      join exposed x on x.oid = c.relnamespace
     where c.relkind in ('r', 'p')
       and not exists (select from extension_members e
                        where e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass and e.objid = c.oid)
  ),
  -- Policy expressions as text: with search_path '' they print fully qualified (auth.uid()).
  policies as (
    select t.name as table_name, t.schema_name, t.rls, p.polname, p.polcmd, p.polpermissive,
           pg_catalog.format('%I on %s', p.polname, t.name) as name,
           (select pg_catalog.array_agg(r.name order by r.name)
              from pg_catalog.unnest(p.polroles) u(oid)
              cross join lateral (select case u.oid when 0 then 'public'
                                         else pg_catalog.pg_get_userbyid(u.oid)::text end as name) r) as roles,
           pg_catalog.pg_get_expr(p.polqual, p.polrelid) as qual,
           pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) as with_check
      from pg_catalog.pg_policy p
      join tables t on t.oid = p.polrelid
  ),
  policy_verdicts as (
    select p.*,
           case p.polcmd when 'r' then 'SELECT' when 'a' then 'INSERT' when 'w' then 'UPDATE'
                         when 'd' then 'DELETE' else 'ALL' end as command,
           pg_catalog.regexp_replace(pg_catalog.lower(coalesce(p.qual, '')), '[\s()]', '', 'g')
             in ('true', '1=1') as qual_true,
           -- Postgres checks new rows against USING when there is no WITH CHECK, and a policy with
           -- neither expression lets nothing through.
           pg_catalog.regexp_replace(pg_catalog.lower(coalesce(p.with_check, p.qual, '')), '[\s()]', '', 'g')
             in ('true', '1=1') as check_true,
           -- A call not already the whole of a scalar subquery, (select auth.uid()), runs per row.
           '(?<!select )(auth\.(uid|jwt|role|email)\(\)|(pg_catalog\.)?current_setting\([^()]*\))' as per_row
      from policies p
  ),
  findings as (
    -- rls_disabled_in_public: the Data API reads and writes every row of the table.
    select 'rls_disabled_in_public' as lint, 'critical'::vigil.severity as severity, t.name as object,
           pg_catalog.format('Table %s has row level security disabled', t.name) as title,
           pg_catalog.jsonb_build_object('schema', t.schema_name, 'name', t.relname, 'type', 'table') as detail,
           pg_catalog.format('alter table %s enable row level security;', t.name) as remediation
      from tables t
     where not t.rls

    union all
    -- policy_exists_rls_disabled: someone wrote policies, and they are not enforced.
    select 'policy_exists_rls_disabled', 'critical', t.name,
           pg_catalog.format('Table %s has policies but row level security disabled', t.name),
           pg_catalog.jsonb_build_object('schema', t.schema_name, 'name', t.relname, 'type', 'table',
             'policies', (select pg_catalog.jsonb_agg(p.polname order by p.polname)
                            from pg_catalog.pg_policy p where p.polrelid = t.oid)),
           pg_catalog.format('alter table %s enable row level security;', t.name)
      from tables t
     where not t.rls and exists (select from pg_catalog.pg_policy p where p.polrelid = t.oid)

    union all
    -- anon_write_policy: a permissive write policy for anon (or everyone) that admits any row.
    select 'anon_write_policy', 'critical', v.name,
           pg_catalog.format('Policy %s lets anyone %s any row', v.name, pg_catalog.lower(v.command)),
           pg_catalog.jsonb_build_object('schema', v.schema_name, 'table', v.table_name, 'policy', v.polname,
             'type', 'policy', 'command', v.command, 'roles', pg_catalog.to_jsonb(v.roles), 'using', v.qual,
             'with_check', v.with_check, 'rls_enabled', v.rls),
           pg_catalog.format('drop policy %I on %s; -- then create it again for authenticated, limited to the '
                             'row''s owner, e.g. using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id)',
                             v.polname, v.table_name)
      from policy_verdicts v
     where v.polpermissive
       and ('public' = any (v.roles) or 'anon' = any (v.roles))
       and ((v.polcmd = 'a' and v.check_true)
            or (v.polcmd in ('w', '*') and (v.qual_true or v.check_true))
            or (v.polcmd = 'd' and v.qual_true))

    union all
    -- auth_rls_initplan: auth.uid() and friends evaluated once per row instead of once per query.
    select 'auth_rls_initplan', 'warning', v.name,
           pg_catalog.format('Policy %s calls auth functions or current_setting() for every row', v.name),
           pg_catalog.jsonb_build_object('schema', v.schema_name, 'table', v.table_name, 'policy', v.polname,
             'type', 'policy', 'using', v.qual, 'with_check', v.with_check),
           pg_catalog.format('alter policy %I on %s%s%s;', v.polname, v.table_name,
             case when v.qual is not null
                  then ' using (' || pg_catalog.regexp_replace(v.qual, v.per_row, '(select \1)', 'gi') || ')' end,
             case when v.with_check is not null
                  then ' with check (' || pg_catalog.regexp_replace(v.with_check, v.per_row, '(select \1)', 'gi') || ')' end)
      from policy_verdicts v
     where v.qual ~* v.per_row or v.with_check ~* v.per_row

    union all
    -- function_search_path_mutable: every function, as splinter; SECURITY DEFINER ones run with
    -- their owner's rights under the caller's search_path, so they are the warnings.
    select 'function_search_path_mutable',
           case when p.prosecdef then 'warning' else 'info' end::vigil.severity,
           p.oid::pg_catalog.regprocedure::text,
           pg_catalog.format('%s %s has a mutable search_path',
                             case when p.prosecdef then 'Security definer function' else 'Function' end,
                             p.oid::pg_catalog.regprocedure),
           pg_catalog.jsonb_build_object('schema', x.nspname, 'name', p.proname, 'type',
             case p.prokind when 'p' then 'procedure' else 'function' end, 'security_definer', p.prosecdef),
           pg_catalog.format('alter %s %s set search_path = '''';',
                             case p.prokind when 'p' then 'procedure' else 'function' end,
                             p.oid::pg_catalog.regprocedure)
      from pg_catalog.pg_proc p
      join exposed x on x.oid = p.pronamespace
      join pg_catalog.pg_language l on l.oid = p.prolang
     where p.prokind in ('f', 'p')
       and l.lanname not in ('c', 'internal')
       and not exists (select from pg_catalog.unnest(p.proconfig) c where c like 'search\_path=%')
       and not exists (select from extension_members e
                        where e.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass and e.objid = p.oid)

    union all
    -- extension_in_public: its functions and operators land in an API-exposed schema (public is).
    select 'extension_in_public', 'warning', pg_catalog.quote_ident(e.extname),
           pg_catalog.format('Extension %s is installed in schema %s', e.extname, n.nspname),
           pg_catalog.jsonb_build_object('schema', n.nspname, 'name', e.extname, 'type', 'extension',
                                         'relocatable', e.extrelocatable),
           case when e.extrelocatable
                then pg_catalog.format('create schema if not exists extensions; alter extension %I set schema extensions;', e.extname)
                else pg_catalog.format('drop extension %I; create extension %I schema extensions; -- not relocatable: '
                                       'what depends on it must be recreated', e.extname, e.extname) end
      from pg_catalog.pg_extension e
      join pg_catalog.pg_namespace n on n.oid = e.extnamespace
     where e.extname <> 'plpgsql'
       and (n.nspname = 'public' or n.oid in (select oid from exposed))

    union all
    -- unindexed_foreign_keys: no index leads with the key's columns (in any order), so deleting or
    -- updating a referenced row scans the referencing table.
    select 'unindexed_foreign_keys', 'info', pg_catalog.format('%I on %s', k.conname, t.name),
           pg_catalog.format('Foreign key %s on %s has no covering index', k.conname, t.name),
           pg_catalog.jsonb_build_object('schema', t.schema_name, 'table', t.relname, 'constraint', k.conname,
             'type', 'foreign_key', 'columns', cols.names),
           pg_catalog.format('create index concurrently on %s (%s);', t.name, cols.list)
      from pg_catalog.pg_constraint k
      join tables t on t.oid = k.conrelid
      cross join lateral (
        select pg_catalog.jsonb_agg(a.attname order by u.n) as names,
               pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' order by u.n) as list
          from pg_catalog.unnest(k.conkey) with ordinality u(attnum, n)
          join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.attnum
      ) cols
     where k.contype = 'f'
       and not exists (
         select from pg_catalog.pg_index i
          where i.indrelid = k.conrelid and i.indisvalid and i.indpred is null
            and (select pg_catalog.array_agg(c order by c)
                   from pg_catalog.unnest((pg_catalog.string_to_array(i.indkey::text, ' ')::int2[])
                                          [1:pg_catalog.cardinality(k.conkey)]) c)
              = (select pg_catalog.array_agg(c order by c) from pg_catalog.unnest(k.conkey) c))

    union all
    -- no_primary_key: updates and deletes through the API, and logical replication, want one.
    select 'no_primary_key', 'info', t.name,
           pg_catalog.format('Table %s has no primary key', t.name),
           pg_catalog.jsonb_build_object('schema', t.schema_name, 'name', t.relname, 'type', 'table'),
           case when candidate.cols is not null
                then pg_catalog.format('alter table %s add primary key (%s);', t.name, candidate.cols)
                else pg_catalog.format('alter table %s add column %I bigint generated always as identity primary key;',
                       t.name, case when exists (select from pg_catalog.pg_attribute a
                                                  where a.attrelid = t.oid and a.attname = 'id' and not a.attisdropped)
                                    then 'row_id' else 'id' end) end
      from tables t
      -- A unique index on NOT NULL plain columns can become the key as it is.
      left join lateral (
        select (select pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' order by u.n)
                  from pg_catalog.unnest(pg_catalog.string_to_array(i.indkey::text, ' ')::int2[]) with ordinality u(attnum, n)
                  join pg_catalog.pg_attribute a on a.attrelid = t.oid and a.attnum = u.attnum) as cols
          from pg_catalog.pg_index i
         where i.indrelid = t.oid and i.indisunique and i.indisvalid and i.indpred is null and i.indexprs is null
           and not exists (select from pg_catalog.unnest(pg_catalog.string_to_array(i.indkey::text, ' ')::int2[]) u(attnum)
                            join pg_catalog.pg_attribute a on a.attrelid = t.oid and a.attnum = u.attnum
                           where not a.attnotnull)
         order by i.indnatts, i.indexrelid
         limit 1
      ) candidate on true
     where not exists (select from pg_catalog.pg_constraint k where k.conrelid = t.oid and k.contype = 'p')

    union all
    -- auth_users_exposed: a view (or materialized view) in an exposed schema reading auth.users that
    -- anon or authenticated may read. auth.users is looked up in the catalog, not with to_regclass
    -- (which needs USAGE on auth): quiet where there is none, and where those roles do not exist
    -- there is no Data API to expose it.
    select 'auth_users_exposed', 'critical', v.oid::pg_catalog.regclass::text,
           pg_catalog.format('%s %s exposes auth.users',
                             case v.relkind when 'm' then 'Materialized view' else 'View' end, v.oid::pg_catalog.regclass),
           pg_catalog.jsonb_build_object('schema', x.nspname, 'name', v.relname,
             'type', case v.relkind when 'm' then 'materialized_view' else 'view' end,
             'exposed_to', pg_catalog.to_jsonb(array(
               select r.rolname::text from pg_catalog.pg_roles r
                where r.rolname in ('anon', 'authenticated')
                  and pg_catalog.has_table_privilege(r.oid, v.oid, 'SELECT')
                order by 1))),
           pg_catalog.format('revoke all on %s from anon, authenticated; -- or move it out of the exposed schemas',
                             v.oid::pg_catalog.regclass)
      from pg_catalog.pg_class v
      join exposed x on x.oid = v.relnamespace
     where v.relkind in ('v', 'm')
       and exists (select from pg_catalog.pg_rewrite w
                     join pg_catalog.pg_depend d
                       on d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass and d.objid = w.oid
                    where w.ev_class = v.oid
                      and d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                      and d.refobjid = (select u.oid from pg_catalog.pg_class u
                                          join pg_catalog.pg_namespace un on un.oid = u.relnamespace
                                         where un.nspname = 'auth' and u.relname = 'users' and u.relkind in ('r', 'p')))
       and exists (select from pg_catalog.pg_roles r
                    where r.rolname in ('anon', 'authenticated')
                      and pg_catalog.has_table_privilege(r.oid, v.oid, 'SELECT'))
       and not exists (select from extension_members e
                        where e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass and e.objid = v.oid)
  )
  select f.lint, f.severity, f.object, f.title, f.detail, f.remediation
    from findings f
   order by f.severity desc, f.lint collate "C", f.object collate "C"
$$;
comment on function vigil.security_lints(text[]) is
  'The security audit, splinter''s lints in SQL: one row per violating object in the exposed schemas, with a remediation.';

/**
 * Keeps the audit's findings (the rows of vigil.security_lints as a JSON array) for a service: one
 * incident per lint (kind lint_<lint>, the worst severity of its rows) opened, updated when its set
 * of objects changes, resolved when it has none; one security_lint recommendation per object, and
 * those no longer found resolved. Returns {found, opened, updated, resolved}.
 */
create function vigil.apply_security_lints(p_service_id uuid, p_findings jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  svc vigil.services;
  bad record;
  g record;
  inc vigil.incidents;
  new_detail jsonb;
  new_title text;
  keys text[];
  findings jsonb;
  opened integer := 0;
  updated integer := 0;
  resolved integer := 0;
begin
  if jsonb_typeof(p_findings) is distinct from 'array' then
    raise exception 'apply_security_lints: findings must be a JSON array' using errcode = '22023';
  end if;
  select n, e, case
           when jsonb_typeof(e) <> 'object' then 'an object'
           when jsonb_typeof(e -> 'lint') is distinct from 'string' or e ->> 'lint' !~ '^[a-z][a-z0-9_]{0,57}$'
             then 'lint'
           when jsonb_typeof(e -> 'severity') is distinct from 'string'
                or e ->> 'severity' <> all (enum_range(null::vigil.severity)::text[]) then 'severity'
           when jsonb_typeof(e -> 'object') is distinct from 'string' or length(e ->> 'object') not between 1 and 500
             then 'object'
         end as field
    into bad
    from jsonb_array_elements(p_findings) with ordinality as f(e, n)
   where jsonb_typeof(e) <> 'object'
      or jsonb_typeof(e -> 'lint') is distinct from 'string' or e ->> 'lint' !~ '^[a-z][a-z0-9_]{0,57}$'
      or jsonb_typeof(e -> 'severity') is distinct from 'string'
      or e ->> 'severity' <> all (enum_range(null::vigil.severity)::text[])
      or jsonb_typeof(e -> 'object') is distinct from 'string' or length(e ->> 'object') not between 1 and 500
   order by n
   limit 1;
  if bad.field = 'an object' then
    raise exception 'apply_security_lints: finding % must be an object with lint, severity and object', bad.n
      using errcode = '22023';
  elsif bad.field is not null then
    raise exception 'apply_security_lints: finding % has no valid %', bad.n, bad.field
      using errcode = '22023',
            hint = case bad.field
                     when 'lint' then 'lint: a name of a-z, 0-9 and _ starting with a letter, at most 58 characters'
                     when 'severity' then 'severity: info, warning or critical'
                     else 'object: a name of 1 to 500 characters' end;
  end if;

  select * into svc from vigil.services where id = p_service_id;
  if svc.id is null then
    raise exception 'apply_security_lints: service % does not exist', p_service_id using errcode = '23503';
  end if;
  -- Two audits of one service at once would both try to open the same incidents.
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('vigil.apply_security_lints:' || svc.id::text, 0));

  -- One row per lint and object (the worst severity when given twice). Kept in a variable, not a
  -- temporary table: a caller's own pg_temp table of that name (and its triggers) must never be used
  -- with this function's rights.
  findings := (
    select coalesce(jsonb_agg(to_jsonb(d) order by d.lint, d.object), '[]')
      from (select distinct on (e ->> 'lint', e ->> 'object')
                   e ->> 'lint' as lint, e ->> 'severity' as severity, e ->> 'object' as object,
                   left(coalesce(nullif(e ->> 'title', ''), format('%s: %s', e ->> 'lint', e ->> 'object')), 1000) as title,
                   nullif(e ->> 'remediation', '') as remediation, e -> 'detail' ->> 'schema' as schema_name
              from jsonb_array_elements(p_findings) e
             order by e ->> 'lint', e ->> 'object', (e ->> 'severity')::vigil.severity desc) d);

  for g in
    select f.lint, max(f.severity) as severity, count(*)::int as n,
           jsonb_agg(f.object order by f.object collate "C") as objects,
           jsonb_agg(f.remediation order by f.object collate "C") filter (where f.remediation is not null) as remediation,
           string_agg(distinct f.schema_name, ', ') as schemas
      from jsonb_to_recordset(findings) as f(lint text, severity vigil.severity, object text, title text,
                                             remediation text, schema_name text)
     group by f.lint
     order by f.lint
  loop
    new_title := format('%s: %s', svc.name, vigil.security_lint_title(g.lint, g.n, g.schemas));
    new_detail := jsonb_build_object('lint', g.lint, 'objects', g.objects,
                                     'remediation', coalesce(g.remediation, '[]'));
    select * into inc from vigil.incidents
     where service_id = svc.id and kind = 'lint_' || g.lint and status = 'open' for update;
    if inc.id is null then
      insert into vigil.incidents (service_id, kind, severity, title, detail)
      values (svc.id, 'lint_' || g.lint, g.severity, new_title, new_detail)
      returning * into inc;
      opened := opened + 1;
    elsif inc.severity is distinct from g.severity or inc.title is distinct from new_title
          or inc.detail -> 'objects' is distinct from new_detail -> 'objects'
          or inc.detail -> 'remediation' is distinct from new_detail -> 'remediation' then
      -- Only a change is written: an audit that finds the same again leaves the incident alone.
      update vigil.incidents
         set severity = g.severity, title = new_title, detail = detail || new_detail
       where id = inc.id;
      updated := updated + 1;
    end if;
    perform vigil.recommend(svc.id, inc.id, (
      select jsonb_agg(jsonb_build_object(
               'kind', 'security_lint', 'key', vigil.security_lint_key(f.lint, f.object), 'title', f.title,
               'detail', jsonb_build_object('lint', f.lint, 'object', f.object, 'remediation', f.remediation,
                                            'severity', f.severity)))
        from jsonb_to_recordset(findings) as f(lint text, severity vigil.severity, object text, title text,
                                               remediation text)
       where f.lint = g.lint));
  end loop;

  with gone as (
    update vigil.incidents i
       set status = 'resolved', resolved_at = now()
     where i.service_id = svc.id and i.status = 'open' and i.kind ~ '^lint_'
       and substr(i.kind, 6) not in (select e ->> 'lint' from jsonb_array_elements(findings) e)
    returning 1
  )
  select count(*) into resolved from gone;

  keys := array(select vigil.security_lint_key(e ->> 'lint', e ->> 'object') from jsonb_array_elements(findings) e);
  update vigil.recommendations r
     set status = 'resolved', resolved_at = now(), updated_at = now()
   where r.service_id = svc.id and r.kind = 'security_lint' and r.status = 'open'
     and r.key <> all (keys);

  return jsonb_build_object('found', jsonb_array_length(findings),
                            'opened', opened, 'updated', updated, 'resolved', resolved);
end
$$;
comment on function vigil.apply_security_lints(uuid, jsonb) is
  'Tracks the security audit''s findings for a service: an incident per lint (lint_<lint>), a recommendation per object, resolved when fixed.';

/** The recommendation key of a finding: <lint>:<object>, shortened with a hash past 200 characters. */
create function vigil.security_lint_key(p_lint text, p_object text)
returns text
language sql
immutable
set search_path = ''
as $$
  select case when length(p_lint || ':' || p_object) <= 200 then p_lint || ':' || p_object
              else left(p_lint || ':' || p_object, 167) || ':' || md5(p_lint || ':' || p_object) end
$$;

/** An incident's title for n findings of a lint, in words: "3 tables in public have row level security disabled". */
create function vigil.security_lint_title(p_lint text, p_count integer, p_schemas text)
returns text
language sql
immutable
set search_path = ''
as $$
  select format('%s %s%s %s', p_count,
                case when p_count = 1 then w[1] else w[2] end,
                case when p_schemas is not null and p_lint <> 'extension_in_public' then ' in ' || p_schemas else '' end,
                case when p_count = 1 then w[3] else w[4] end)
    from (select case p_lint
      when 'rls_disabled_in_public' then
        array['table', 'tables', 'has row level security disabled', 'have row level security disabled']
      when 'policy_exists_rls_disabled' then
        array['table', 'tables', 'has policies but row level security disabled', 'have policies but row level security disabled']
      when 'anon_write_policy' then
        array['policy', 'policies', 'lets anyone write any row', 'let anyone write any row']
      when 'auth_rls_initplan' then
        array['policy', 'policies', 'calls auth functions for every row', 'call auth functions for every row']
      when 'function_search_path_mutable' then
        array['function', 'functions', 'has a mutable search_path', 'have a mutable search_path']
      when 'extension_in_public' then
        array['extension', 'extensions', 'is installed in ' || coalesce(p_schemas, 'public'),
              'are installed in ' || coalesce(p_schemas, 'public')]
      when 'unindexed_foreign_keys' then
        array['foreign key', 'foreign keys', 'has no covering index', 'have no covering index']
      when 'no_primary_key' then
        array['table', 'tables', 'has no primary key', 'have no primary key']
      when 'auth_users_exposed' then
        array['view', 'views', 'exposes auth.users', 'expose auth.users']
      else
        array['object', 'objects', 'fails lint ' || p_lint, 'fail lint ' || p_lint]
      end as w) words
$$;

revoke execute on function vigil.security_lints(text[]), vigil.apply_security_lints(uuid, jsonb),
  vigil.security_lint_key(text, text), vigil.security_lint_title(text, integer, text) from public;
grant execute on function vigil.security_lints(text[]), vigil.apply_security_lints(uuid, jsonb) to service_role;

select vigil.settle_privileges();
