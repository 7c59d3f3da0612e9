-- vigil_agent, the role the functions log in as: least privilege, owner of nothing. Its rights are
-- enumerated from the catalog against service_role's, so a later migration that forgets
-- vigil.settle_privileges() fails here. Then, as the agent: what it cannot do to the audit and the
-- tables people configure, and vigil.build_index / vigil.drop_built_index refusing bad names.
begin;
set search_path = extensions, public;
select plan(53);

-- ─── the roles ───────────────────────────────────────────────────────────────────────────────
select results_eq(
  $$select rolname::text collate "default", rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication
      from pg_roles where rolname in ('vigil_owner', 'vigil_agent', 'vigil_explainer') order by rolname$$,
  $$values ('vigil_agent', false, false, false, false, false),
           ('vigil_explainer', false, false, false, false, false),
           ('vigil_owner', false, false, false, false, false)$$,
  'vigil_owner, vigil_agent and vigil_explainer: no superuser, createrole, createdb, bypassrls or replication'
);
select is((select rolcanlogin from pg_roles where rolname = 'vigil_owner'), false, 'nobody logs in as vigil_owner');
select is((select rolcanlogin from pg_roles where rolname = 'vigil_explainer'), false, 'nobody logs in as vigil_explainer');
select ok(pg_has_role('vigil_agent', 'pg_monitor', 'MEMBER'), 'the agent sees every session and statement (pg_monitor)');
select ok(pg_has_role('vigil_agent', 'pg_signal_backend', 'MEMBER'), 'the agent may cancel and terminate non-superuser sessions');
select ok(pg_has_role('vigil_explainer', 'pg_read_all_data', 'MEMBER'), 'the explainer leads to pg_read_all_data');
select is((select rolinherit from pg_roles where rolname = 'vigil_explainer'), false,
          'and passes nothing on: it is NOINHERIT');
select ok(not pg_has_role('vigil_explainer', 'pg_write_all_data', 'MEMBER'), 'the explainer writes nothing');
select is_empty(
  $$select r.rolname from pg_roles r
     where pg_has_role('vigil_agent', r.oid, 'MEMBER') and r.rolname <> 'vigil_agent'
       and r.rolname not in ('pg_monitor', 'pg_read_all_settings', 'pg_read_all_stats', 'pg_stat_scan_tables',
                             'pg_signal_backend', 'pg_maintain', 'vigil_explainer', 'pg_read_all_data')$$,
  'the agent is a member of nothing else: not vigil_owner, not postgres, not service_role'
);

-- ─── owner of nothing ────────────────────────────────────────────────────────────────────────
select is_empty(
  $$select 'class', relname::text from pg_class where relowner = 'vigil_agent'::regrole
    union all select 'function', proname::text from pg_proc where proowner = 'vigil_agent'::regrole
    union all select 'schema', nspname::text from pg_namespace where nspowner = 'vigil_agent'::regrole
    union all select 'type', typname::text from pg_type where typowner = 'vigil_agent'::regrole$$,
  'the agent owns no table, function, schema or type'
);
select is_empty(
  $$select relname, pg_get_userbyid(relowner) from pg_class
     where relnamespace = 'vigil'::regnamespace and relkind in ('r', 'p', 'v', 'm', 'S')
       and pg_get_userbyid(relowner) <> 'vigil_owner'$$,
  'every vigil table, view and sequence is owned by vigil_owner'
);

-- ─── what it may do: service_role's rights, less TRUNCATE and the configured tables ──────────
select is_empty(
  $$select c.relname, p from pg_class c, unnest(array['TRUNCATE', 'REFERENCES', 'TRIGGER']) p
     where c.relnamespace = 'vigil'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
       and has_table_privilege('vigil_agent', c.oid, p)$$,
  'the agent may not truncate, reference or trigger any vigil table'
);
select set_eq(
  $$select c.relname::text, p from pg_class c, unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p
     where c.relnamespace = 'vigil'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
       and has_table_privilege('vigil_agent', c.oid, p)$$,
  $$select c.relname::text, p from pg_class c, unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p
     where c.relnamespace = 'vigil'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
       and has_table_privilege('service_role', c.oid, p)
       and (p = 'SELECT' or c.relname not in ('settings', 'contacts', 'alert_routes', 'heal_policies', 'silences',
                                               'probe_config_schemas', 'services'))$$,
  'the agent has service_role''s rights on every vigil table and view, but only reads the configured ones'
);
select set_eq(
  $$select p.oid::regprocedure::text from pg_proc p
     where p.pronamespace = 'vigil'::regnamespace and has_function_privilege('vigil_agent', p.oid, 'EXECUTE')$$,
  $$select p.oid::regprocedure::text from pg_proc p
     where p.pronamespace = 'vigil'::regnamespace and has_function_privilege('service_role', p.oid, 'EXECUTE')$$,
  'the agent may call exactly the vigil functions service_role may'
);
select ok(not has_function_privilege('vigil_agent', 'vigil.settle_privileges()', 'EXECUTE'),
          'the agent cannot re-settle its own privileges');

-- ─── as the agent ────────────────────────────────────────────────────────────────────────────
insert into vigil.services (id, name, kind) values ('00000000-0000-4000-8000-000000000801', 't080-db', 'postgres');
create table public.t080_orders (id int primary key, customer int, "Note Text" text);
create table public.t080_other (id int);
create index t080_not_vigils on public.t080_other (id);
insert into public.t080_orders select g, g % 50, 'n' || g from generate_series(1, 500) g;

set local role vigil_agent;

select throws_ok($$alter table vigil.heal_actions disable trigger heal_actions_append_only$$, '42501', null,
                 'the agent cannot disable the audit''s append-only trigger (not the owner)');
select throws_ok($$alter table vigil.heal_actions disable row level security$$, '42501', null,
                 'nor turn off row security');
select throws_ok($$truncate vigil.heal_actions$$, '42501', null, 'nor truncate the audit');
select throws_ok($$truncate vigil.audit_anchors$$, '42501', null, 'nor its anchors');
select throws_ok($$update vigil.heal_actions set detail = 'rewritten'$$, '42501', null, 'nor rewrite an audit row');
select throws_ok($$delete from vigil.audit_anchors$$, '42501', null, 'nor remove an anchor');
select throws_ok($$drop table vigil.checks$$, '42501', null, 'nor drop a table');
select throws_ok($$drop policy "Operators can read checks" on vigil.checks$$, '42501', null, 'nor drop a policy');
select throws_ok($$update vigil.settings set kill_switch = false$$, '42501', null,
                 'nor switch the kill switch off: people configure it');
select throws_ok($$insert into vigil.contacts (name, role, channel, address) values ('x', 'on_call', 'sms', '+15555550100')$$,
                 '42501', null, 'nor add a contact');
select throws_ok($$update vigil.heal_policies set mode = 'auto'$$, '42501', null, 'nor loosen a heal policy');
select throws_ok($$update vigil.services set heal_enabled = true$$, '42501', null, 'nor re-enable healing of a service');
select throws_ok($$select vigil.settle_privileges()$$, '42501', null, 'nor call the privilege settler');
select lives_ok($$select count(*) from vigil.services$$, 'it reads the services');
select throws_ok($$select count(*) from public.t080_orders$$, '42501', null,
                 'but not the application''s tables: it inherits no read access');
select lives_ok($$set local role pg_read_all_data; select count(*) from public.t080_orders$$,
                'which it reaches only under SET ROLE, as the index advisor plans');
reset role;
set local role vigil_agent;
select lives_ok($$insert into vigil.incident_log (incident_id, level, message) select id, 'info', 't080' from vigil.incidents limit 0$$,
                'and writes its own records');

-- ─── vigil.build_index: names checked against the catalog, nothing else ──────────────────────
select throws_ok($$select vigil.build_index('public', 't080_orders', '[]', 'vigil_idx_t080')$$,
                 '22023', 'build_index: columns must be a list of 1 to 3 column names', 'no columns: refused');
select throws_ok($$select vigil.build_index('public', 't080_orders', '["id", "customer", "id"]', 'vigil_idx_t080')$$,
                 '22023', 'build_index: a column is named twice', 'a column twice: refused');
select throws_ok($$select vigil.build_index('public', 't080_orders', '["customer"]', 't080_customer')$$,
                 '42602', null, 'a name not vigil_idx_…: refused');
select throws_ok($$select vigil.build_index('public', 't080_orders', '["customer"]', 'vigil_idx_x"; drop table t080_other; --')$$,
                 '42602', null, 'a name with anything but a-z, 0-9 and _: refused');
select throws_ok($$select vigil.build_index('vigil', 'checks', '["id"]', 'vigil_idx_checks_x')$$,
                 '42501', 'build_index: schema vigil is not indexed by Vigil', 'Vigil''s own schema: refused');
select throws_ok($$select vigil.build_index('auth', 'users', '["email"]', 'vigil_idx_users_email')$$,
                 '42501', 'build_index: schema auth is not indexed by Vigil', 'a schema Supabase manages: refused');
select throws_ok($$select vigil.build_index('public', 't080_orders; drop table t080_other', '["id"]', 'vigil_idx_t080_x')$$,
                 '42P01', null, 'a table name that is SQL: no such table');
select throws_ok($$select vigil.build_index('public', 't080_orders', '["customer) where (true"]', 'vigil_idx_t080_x')$$,
                 '42703', null, 'a column name that is SQL: no such column');
select throws_ok($$select vigil.build_index('public', 't080_orders_id_seq', '["last_value"]', 'vigil_idx_t080_x')$$,
                 '42P01', null, 'not a table: refused');
select is(
  (select vigil.build_index('public', 't080_orders', '["customer", "Note Text"]', 'vigil_idx_t080_orders_customer') ->> 'index_name'),
  'vigil_idx_t080_orders_customer',
  'a table and columns the catalog knows: built (a column needing quotes included)'
);
select is(
  (select pg_get_indexdef('public.vigil_idx_t080_orders_customer'::regclass)),
  'CREATE INDEX vigil_idx_t080_orders_customer ON public.t080_orders USING btree (customer, "Note Text")',
  'exactly that index, quoted by Postgres'
);
select results_eq(
  $$select schema_name, table_name, columns, built_by, dropped_at is null from vigil.built_indexes
     where index_name = 'vigil_idx_t080_orders_customer'$$,
  $$values ('public', 't080_orders', '["customer", "Note Text"]'::jsonb, 'postgres', true)$$,
  'and recorded, with who built it (the login role)'
);
select throws_ok($$select vigil.build_index('public', 't080_orders', '["id"]', 'vigil_idx_t080_orders_customer')$$,
                 '42P07', null, 'a name already taken: refused');
select throws_ok($$select vigil.drop_built_index('public', 't080_not_vigils')$$,
                 '42501', 'drop_built_index: public.t080_not_vigils was not built by Vigil',
                 'an index Vigil did not build is never dropped');
select throws_ok($$select vigil.drop_built_index('public', 't080_orders_pkey')$$,
                 '42501', null, 'nor a primary key');
select is(vigil.drop_built_index('public', 'vigil_idx_t080_orders_customer'), true, 'its own index: dropped');
select is(to_regclass('public.vigil_idx_t080_orders_customer'), null, 'and gone');
select is(vigil.drop_built_index('public', 'vigil_idx_t080_orders_customer'), false, 'dropped twice: false, no error');
select is((select count(*)::int from vigil.built_indexes where index_name = 'vigil_idx_t080_orders_customer' and dropped_at is not null),
          1, 'the record says when it was dropped');

reset role;
select throws_ok($$set local role vigil_agent; create index t080_direct on public.t080_orders (customer)$$,
                 '42501', null, 'the agent cannot index a table it does not own by itself');
reset role;
select ok(to_regclass('public.t080_direct') is null, 'nothing was built');

select * from finish();
rollback;
