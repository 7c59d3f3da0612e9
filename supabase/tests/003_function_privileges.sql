-- Nothing in vigil is callable by PUBLIC; each function is granted to exactly the roles that
-- need it. invoke and sweep_invocations are service_role only; is_operator is called inside
-- the authenticated policies; the trigger functions need no EXECUTE grant to fire.
begin;
set search_path = extensions, public;
select plan(25);

-- A NULL proacl means the built-in default, which lets PUBLIC execute.
select is_empty(
  $$select p.oid::regprocedure from pg_proc p
     where p.pronamespace = 'vigil'::regnamespace
       and (p.proacl is null or exists (select from aclexplode(p.proacl) a where a.grantee = 0))$$,
  'no function in schema vigil is executable by PUBLIC'
);

select ok(not has_function_privilege('anon', 'vigil.invoke(text,jsonb)', 'execute'), 'anon cannot execute vigil.invoke');
select ok(not has_function_privilege('authenticated', 'vigil.invoke(text,jsonb)', 'execute'),
          'authenticated cannot execute vigil.invoke');
select ok(has_function_privilege('service_role', 'vigil.invoke(text,jsonb)', 'execute'),
          'service_role can execute vigil.invoke');

select ok(not has_function_privilege('anon', 'vigil.sweep_invocations(interval,interval)', 'execute'),
          'anon cannot execute vigil.sweep_invocations');
select ok(not has_function_privilege('authenticated', 'vigil.sweep_invocations(interval,interval)', 'execute'),
          'authenticated cannot execute vigil.sweep_invocations');
select ok(has_function_privilege('service_role', 'vigil.sweep_invocations(interval,interval)', 'execute'),
          'service_role can execute vigil.sweep_invocations');

select function_privs_are('vigil', 'is_operator', array[]::name[], r, array['EXECUTE'],
                          format('%s can execute vigil.is_operator (used by the policies)', r))
  from unnest(array['anon', 'authenticated', 'service_role']) r;

select function_privs_are('vigil', f, array[]::name[], r, array[]::text[],
                          format('%s cannot execute trigger function vigil.%s', r, f))
  from unnest(array['touch_updated_at', 'reject_audit_change', 'stamp_operator']) f,
       unnest(array['anon', 'authenticated', 'service_role']) r;

-- New functions get EXECUTE for PUBLIC by Postgres' global default, which a per-schema default
-- privilege cannot take back (and changing the global default would change the user's whole
-- project). So each migration revokes on what it creates, and the PUBLIC check above, run over
-- every function in vigil, fails the day one forgets.

select is_definer('vigil', 'invoke', array['text', 'jsonb'], 'vigil.invoke is security definer');
select is_definer('vigil', 'sweep_invocations', array['interval', 'interval'],
                  'vigil.sweep_invocations is security definer');
select is_definer('vigil', 'is_operator', array[]::name[], 'vigil.is_operator is security definer');
-- stamp_operator tests current_user = 'authenticated'; as a definer it would see the owner
-- and silently stop stamping.
select isnt_definer('vigil', 'stamp_operator', array[]::name[], 'vigil.stamp_operator runs as the caller');

-- Acting as each role, the denial is what the caller actually gets.
set local role anon;
select throws_ok($$select vigil.invoke('status', '{}')$$, '42501', 'permission denied for function invoke',
                 'anon gets permission denied calling vigil.invoke');
reset role;
set local role authenticated;
set local request.jwt.claims = '{"sub":"00000000-0000-4000-8000-0000000003a1","role":"authenticated","app_metadata":{"role":"devops"}}';
select throws_ok($$select vigil.sweep_invocations()$$, '42501', 'permission denied for function sweep_invocations',
                 'an operator gets permission denied calling vigil.sweep_invocations');
reset role;

select * from finish();
rollback;
