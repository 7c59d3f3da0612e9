-- The security audit (issue 11): each of splinter's lints, planted in a scratch schema, is found with
-- its severity and a remediation that, run, makes it go away; Vigil's own schema, extension members
-- and schemas that do not exist are left alone. apply_security_lints keeps the findings as one
-- incident per lint and one recommendation per object, until they are fixed.
begin;
set search_path = extensions, public;
select plan(50);

-- ─── The violations ──────────────────────────────────────────────────────────────────────────
create schema t093;
create table t093.open_table (id int primary key);                      -- rls_disabled_in_public
create table t093.loose (id int primary key);                           -- policy_exists_rls_disabled
create policy "Everyone reads loose" on t093.loose for select using (true);
create table t093.notes (id int primary key, owner uuid, other_id int);
alter table t093.notes enable row level security;
create policy "Anyone can write notes" on t093.notes for insert to anon with check (true);   -- anon_write_policy
create policy "Anon deletes nothing" on t093.notes for delete to anon;  -- no USING: Postgres lets nothing through
create policy "Anon inserts unowned notes" on t093.notes for insert to anon with check (owner is null);
create policy "Owners read their notes" on t093.notes for select to authenticated
  using (auth.uid() = owner);                                           -- auth_rls_initplan
create policy "Owners update their notes" on t093.notes for update to authenticated
  using ((select auth.uid()) = owner);
create table t093.child (id int primary key, note_id int references t093.notes, other_id int references t093.notes);
create index child_other on t093.child (other_id, id);                  -- covers other_id only
alter table t093.child enable row level security;
create table t093.nokey (a int);                                        -- no_primary_key
alter table t093.nokey enable row level security;
create function t093.definer(int) returns int language sql security definer as 'select 1';  -- search_path (warning)
create function t093.invoker() returns int language sql as 'select 1';                      -- search_path (info)
create function t093.pinned() returns int language sql security definer set search_path = '' as 'select 1';
create view t093.user_emails as select id, email from auth.users;       -- auth_users_exposed
grant usage on schema t093 to anon;
grant select on t093.user_emails to anon;
create extension if not exists pg_trgm schema public;                   -- extension_in_public
create table vigil.t093_scratch (a int);                                -- Vigil's own: never reported

create temporary table t093_lints on commit drop as
  select * from vigil.security_lints(array['t093', 'no_such_schema_t093'])
   where lint <> 'extension_in_public' or object = 'pg_trgm';
grant select on t093_lints to service_role, vigil_agent;

select results_eq(
  $$select lint, severity::text, object from t093_lints order by lint, object$$,
  $$values ('anon_write_policy', 'critical', '"Anyone can write notes" on t093.notes'),
           ('auth_rls_initplan', 'warning', '"Owners read their notes" on t093.notes'),
           ('auth_users_exposed', 'critical', 't093.user_emails'),
           ('extension_in_public', 'warning', 'pg_trgm'),
           ('function_search_path_mutable', 'warning', 't093.definer(integer)'),
           ('function_search_path_mutable', 'info', 't093.invoker()'),
           ('no_primary_key', 'info', 't093.nokey'),
           ('policy_exists_rls_disabled', 'critical', 't093.loose'),
           ('rls_disabled_in_public', 'critical', 't093.loose'),
           ('rls_disabled_in_public', 'critical', 't093.open_table'),
           ('unindexed_foreign_keys', 'info', 'child_note_id_fkey on t093.child')$$,
  'each lint finds exactly its planted objects, with their severity (a schema that does not exist is ignored)'
);
select is_empty($$select 1 from t093_lints where remediation is null or title is null or jsonb_typeof(detail) <> 'object'$$,
                'every finding has a title, a detail and a remediation');
select results_eq(
  $$select lint, remediation from t093_lints
     where lint in ('rls_disabled_in_public', 'function_search_path_mutable', 'unindexed_foreign_keys', 'auth_rls_initplan')
     order by lint, object$$,
  $$values ('auth_rls_initplan', 'alter policy "Owners read their notes" on t093.notes using (((select auth.uid()) = owner));'),
           ('function_search_path_mutable', 'alter function t093.definer(integer) set search_path = '''';'),
           ('function_search_path_mutable', 'alter function t093.invoker() set search_path = '''';'),
           ('rls_disabled_in_public', 'alter table t093.loose enable row level security;'),
           ('rls_disabled_in_public', 'alter table t093.open_table enable row level security;'),
           ('unindexed_foreign_keys', 'create index concurrently on t093.child (note_id);')$$,
  'the remediations are the statements that fix them'
);
select results_eq(
  $$select lint, object from vigil.security_lints(array['t093']) order by severity desc, lint collate "C", object collate "C"$$,
  $$select lint, object from vigil.security_lints(array['t093'])$$,
  'rows come worst first, then by lint and object'
);
select is((select detail -> 'exposed_to' from t093_lints where lint = 'auth_users_exposed'), '["anon"]',
          'the exposing view says who can read it');

select is_empty($$select 1 from vigil.security_lints(array['vigil', 't093']) where object ~ '(^|on )vigil\.'$$,
                'nothing in Vigil''s own schema is reported, though a table there has no RLS and no key');
select is_empty($$select 1 from vigil.security_lints(array['vigil']) where lint <> 'extension_in_public'$$,
                'asked about vigil alone: nothing (extensions in public are reported whatever the schemas)');
select is_empty($$select 1 from vigil.security_lints(array['public']) where lint = 'function_search_path_mutable'
                   and object ~ '^public\.(similarity|show_trgm|word_similarity)\('$$,
                'functions an extension owns are not reported (pg_trgm''s, in public)');
select lives_ok($$select * from vigil.security_lints(array['no_such_schema_t093'])$$, 'a schema that does not exist: no error');
select lives_ok($$select * from vigil.security_lints(null)$$, 'no schemas: no error');
select is_empty($$select 1 from vigil.security_lints(array['no_such_schema_t093']) where lint <> 'extension_in_public'$$,
                'and nothing found in it');

-- ─── Privileges ─────────────────────────────────────────────────────────────────────────────
select ok(not has_function_privilege(r, 'vigil.security_lints(text[])', 'execute'),
          format('%s cannot execute vigil.security_lints', r))
  from unnest(array['anon', 'authenticated']) r;
select ok(not has_function_privilege(r, 'vigil.apply_security_lints(uuid,jsonb)', 'execute'),
          format('%s cannot execute vigil.apply_security_lints', r))
  from unnest(array['anon', 'authenticated']) r;
select ok(has_function_privilege(r, 'vigil.security_lints(text[])', 'execute')
          and has_function_privilege(r, 'vigil.apply_security_lints(uuid,jsonb)', 'execute'),
          format('%s can execute both', r))
  from unnest(array['service_role', 'vigil_agent']) r;
select throws_ok($$set local role anon; select * from vigil.security_lints(array['t093'])$$, '42501', null,
                 'anon is refused');
reset role;

set local role service_role;
select is((select count(*)::int from vigil.security_lints(array['t093']) where lint <> 'extension_in_public'),
          (select count(*)::int from t093_lints where lint <> 'extension_in_public'),
          'service_role sees the same findings (the audit reads only the catalogs)');
reset role;
set local role vigil_agent;  -- no USAGE on schema auth: auth.users is found all the same
select is((select count(*)::int from vigil.security_lints(array['t093']) where lint <> 'extension_in_public'),
          (select count(*)::int from t093_lints where lint <> 'extension_in_public'),
          'vigil_agent sees the same findings');
reset role;

-- ─── Keeping the findings ───────────────────────────────────────────────────────────────────
insert into vigil.services (id, name, kind) values ('00000000-0000-4000-8000-000000000931', 't093-db', 'postgres');
create temporary table t093_all on commit drop as
  select jsonb_agg(to_jsonb(l) order by l.lint, l.object) as findings from t093_lints l;
grant select on t093_all to vigil_agent;

select is(vigil.apply_security_lints('00000000-0000-4000-8000-000000000931', (select findings from t093_all)),
          '{"found": 11, "opened": 9, "updated": 0, "resolved": 0}', 'the first audit opens one incident per lint');
select results_eq(
  $$select kind, severity::text, status::text from vigil.incidents
     where service_id = '00000000-0000-4000-8000-000000000931' order by kind$$,
  $$values ('lint_anon_write_policy', 'critical', 'open'), ('lint_auth_rls_initplan', 'warning', 'open'),
           ('lint_auth_users_exposed', 'critical', 'open'), ('lint_extension_in_public', 'warning', 'open'),
           ('lint_function_search_path_mutable', 'warning', 'open'), ('lint_no_primary_key', 'info', 'open'),
           ('lint_policy_exists_rls_disabled', 'critical', 'open'), ('lint_rls_disabled_in_public', 'critical', 'open'),
           ('lint_unindexed_foreign_keys', 'info', 'open')$$,
  'each at the worst severity of its findings'
);
select results_eq(
  $$select title, detail from vigil.incidents
     where service_id = '00000000-0000-4000-8000-000000000931' and kind = 'lint_rls_disabled_in_public'$$,
  $$values ('t093-db: 2 tables in t093 have row level security disabled',
            '{"lint": "rls_disabled_in_public", "objects": ["t093.loose", "t093.open_table"],
              "remediation": ["alter table t093.loose enable row level security;",
                              "alter table t093.open_table enable row level security;"]}'::jsonb)$$,
  'the incident says how many, where, which, and how to fix them'
);
select is((select title from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000931'
            and kind = 'lint_extension_in_public'),
          't093-db: 1 extension is installed in public', 'one finding: in the singular');
select results_eq(
  $$select count(*)::int, bool_and(status = 'open'), bool_and(incident_id is not null) from vigil.recommendations
     where service_id = '00000000-0000-4000-8000-000000000931' and kind = 'security_lint'$$,
  $$values (11, true, true)$$,
  'one open recommendation per object, tied to its incident'
);
select results_eq(
  $$select title, detail from vigil.recommendations
     where service_id = '00000000-0000-4000-8000-000000000931' and key = 'no_primary_key:t093.nokey'$$,
  $$values ('Table t093.nokey has no primary key',
            '{"lint": "no_primary_key", "object": "t093.nokey", "severity": "info",
              "remediation": "alter table t093.nokey add column id bigint generated always as identity primary key;"}'::jsonb)$$,
  'a recommendation is keyed <lint>:<object> and carries the remediation and severity'
);
select isnt_empty($$select 1 from vigil.invocations where fn = 'auto-heal'
                     and body ->> 'incident_id' in (select id::text from vigil.incidents
                                                     where service_id = '00000000-0000-4000-8000-000000000931')$$,
                  'a new lint incident is an incident like any other: auto-heal is asked');

set local role vigil_agent;
select is(vigil.apply_security_lints('00000000-0000-4000-8000-000000000931', (select findings from t093_all)),
          '{"found": 11, "opened": 0, "updated": 0, "resolved": 0}',
          'the same findings again (as vigil_agent): nothing opened, nothing changed');
reset role;
select is((select count(*)::int from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000931'), 9,
          'no duplicate incident');

-- The initplan is fixed, and one of the two tables without RLS.
select is(vigil.apply_security_lints('00000000-0000-4000-8000-000000000931',
            (select jsonb_agg(f) from t093_all, jsonb_array_elements(findings) f
              where f ->> 'lint' <> 'auth_rls_initplan'
                and not (f ->> 'lint' = 'rls_disabled_in_public' and f ->> 'object' = 't093.open_table'))),
          '{"found": 9, "opened": 0, "updated": 1, "resolved": 1}', 'a lint gone resolves, a smaller set updates');
select results_eq(
  $$select status::text, resolved_at is not null from vigil.incidents
     where service_id = '00000000-0000-4000-8000-000000000931' and kind = 'lint_auth_rls_initplan'$$,
  $$values ('resolved', true)$$, 'the initplan incident is resolved'
);
select results_eq(
  $$select title, detail -> 'objects' from vigil.incidents
     where service_id = '00000000-0000-4000-8000-000000000931' and kind = 'lint_rls_disabled_in_public'$$,
  $$values ('t093-db: 1 table in t093 has row level security disabled', '["t093.loose"]'::jsonb)$$,
  'the RLS incident now names the one table left'
);
select results_eq(
  $$select key, status, resolved_at is not null from vigil.recommendations
     where service_id = '00000000-0000-4000-8000-000000000931' and status = 'resolved' order by key$$,
  $$values ('auth_rls_initplan:"Owners read their notes" on t093.notes', 'resolved', true),
           ('rls_disabled_in_public:t093.open_table', 'resolved', true)$$,
  'and the recommendations no longer found are resolved'
);

-- ─── Bad findings ────────────────────────────────────────────────────────────────────────────
select throws_ok($$select vigil.apply_security_lints('00000000-0000-4000-8000-000000000931', '{"lint": "x"}')$$,
                 '22023', 'apply_security_lints: findings must be a JSON array', 'findings must be a list');
select throws_ok($$select vigil.apply_security_lints('00000000-0000-4000-8000-000000000931', '[1]')$$,
                 '22023', 'apply_security_lints: finding 1 must be an object with lint, severity and object',
                 'each finding is an object');
select throws_ok($$select vigil.apply_security_lints('00000000-0000-4000-8000-000000000931',
                     '[{"lint": "no_primary_key", "severity": "info", "object": "a"}, {"lint": "Bad Lint", "severity": "info", "object": "a"}]')$$,
                 '22023', 'apply_security_lints: finding 2 has no valid lint', 'the lint is named');
select throws_ok($$select vigil.apply_security_lints('00000000-0000-4000-8000-000000000931',
                     '[{"lint": "no_primary_key", "severity": "error", "object": "a"}]')$$,
                 '22023', 'apply_security_lints: finding 1 has no valid severity', 'the severity is one of Vigil''s');
select throws_ok($$select vigil.apply_security_lints('00000000-0000-4000-8000-000000000931',
                     '[{"lint": "no_primary_key", "severity": "info"}]')$$,
                 '22023', 'apply_security_lints: finding 1 has no valid object', 'the object is required');

-- ─── The remediations fix them ──────────────────────────────────────────────────────────────
set local client_min_messages = warning;  -- create schema if not exists extensions: it does
select lives_ok((select string_agg(remediation, ' ' order by object) from t093_lints where lint = l),
                format('the remediation of %s runs', l))
  from unnest(array['rls_disabled_in_public', 'anon_write_policy', 'auth_rls_initplan', 'function_search_path_mutable',
                    'extension_in_public', 'no_primary_key', 'auth_users_exposed']) l;
-- CREATE INDEX CONCURRENTLY cannot run in the test's transaction.
select lives_ok((select replace(remediation, ' concurrently', '') from t093_lints where lint = 'unindexed_foreign_keys'),
                'the remediation of unindexed_foreign_keys runs (built in place here)');
select is_empty($$select lint, object from vigil.security_lints(array['t093', 'public'])
                   where lint <> 'extension_in_public' or object = 'pg_trgm'$$,
                'all fixed: nothing found');
select is(vigil.apply_security_lints('00000000-0000-4000-8000-000000000931',
            (select coalesce(jsonb_agg(to_jsonb(l)), '[]') from vigil.security_lints(array['t093']) l
              where lint <> 'extension_in_public' or object = 'pg_trgm')),
          '{"found": 0, "opened": 0, "updated": 0, "resolved": 8}', 'and the next audit resolves every incident');
select is_empty($$select 1 from vigil.recommendations where service_id = '00000000-0000-4000-8000-000000000931'
                   and kind = 'security_lint' and status = 'open'$$,
                'and every recommendation');

-- A project without auth.users (a plain Postgres) is audited all the same.
alter table auth.users rename to users_t093;
select lives_ok($$select * from vigil.security_lints(array['t093'])$$, 'without auth.users: no error');
select * from finish();
rollback;
