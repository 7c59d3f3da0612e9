-- The shape of schema vigil: its tables, view, functions, policies and triggers, and that
-- every table has row level security on. The RLS check enumerates pg_class, so a table added
-- later without RLS fails here even if nobody remembers to list it.
begin;
set search_path = extensions, public;
select plan(22);

select has_schema('vigil');

select tables_are(
  'vigil',
  array['settings', 'services', 'checks', 'incidents', 'heal_actions', 'alerts', 'invocations'],
  'schema vigil has exactly the seven known tables (a new one needs its RLS and grants tested)'
);
select views_are('vigil', array['public_status'], 'schema vigil has exactly one view, public_status');
select functions_are(
  'vigil',
  array['touch_updated_at', 'reject_audit_change', 'is_operator', 'stamp_operator', 'invoke', 'sweep_invocations'],
  'schema vigil has exactly the known functions'
);

select isnt_empty(
  $$select 1 from pg_class where relnamespace = 'vigil'::regnamespace and relkind in ('r', 'p')$$,
  'the RLS enumeration below finds tables in schema vigil'
);
select is_empty(
  $$select relname from pg_class
     where relnamespace = 'vigil'::regnamespace and relkind in ('r', 'p') and not relrowsecurity$$,
  'row level security is enabled on every table in schema vigil'
);

select policies_are('vigil', 'settings',
  array['Operators can read settings', 'Operators can switch the kill switch and dry run']);
select policies_are('vigil', 'services', array['Operators can read services']);
select policies_are('vigil', 'checks', array['Operators can read checks']);
select policies_are('vigil', 'incidents',
  array['Operators can read incidents', 'Operators can acknowledge incidents']);
select policies_are('vigil', 'heal_actions', array['Operators can read the heal audit']);
select policies_are('vigil', 'alerts', array['Operators can read alerts', 'Operators can acknowledge alerts']);
select policies_are('vigil', 'invocations', array['Operators can read invocations']);

-- Every policy is for authenticated only, and only SELECT or UPDATE: writes other than those
-- updates belong to service_role, which bypasses RLS.
select is_empty(
  $$select tablename, policyname, cmd, roles from pg_policies
     where schemaname = 'vigil' and (roles <> array['authenticated']::name[] or cmd not in ('SELECT', 'UPDATE'))$$,
  'every vigil policy applies to authenticated only and is a SELECT or UPDATE policy'
);
select set_eq(
  $$select tablename::text from pg_policies where schemaname = 'vigil' and cmd = 'UPDATE'$$,
  array['settings', 'incidents', 'alerts'],
  'only settings, incidents and alerts have an UPDATE policy'
);

select triggers_are('vigil', 'settings', array['settings_touch', 'settings_stamp_operator']);
select triggers_are('vigil', 'services', array['services_touch']);
select triggers_are('vigil', 'incidents', array['incidents_touch', 'incidents_stamp_operator']);
select triggers_are('vigil', 'alerts', array['alerts_stamp_operator']);
select triggers_are('vigil', 'heal_actions', array['heal_actions_append_only', 'heal_actions_no_truncate']);

-- A function without a fixed search_path can be hijacked through objects the caller creates.
select is_empty(
  $$select proname from pg_proc
     where pronamespace = 'vigil'::regnamespace
       and not coalesce('search_path=""' = any(proconfig), false)$$,
  'every function in schema vigil pins search_path to empty'
);

select has_index('vigil', 'incidents', 'incidents_one_open_per_kind', array['service_id', 'kind']);

select * from finish();
rollback;
