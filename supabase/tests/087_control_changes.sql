-- Every change of a control is kept, with who made it: an operator through their JWT, the
-- machinery or SQL by its database role. Append-only.
begin;
set search_path = extensions, public;
select plan(7);

insert into vigil.services (id, name, kind, config) values
  ('00000000-0000-4000-8000-000000000871', 't087-web', 'http', '{"url":"https://t087.example.com"}');

-- An operator switches the kill switch on for qa, then off again.
set local role authenticated;
set local request.jwt.claims = '{"sub": "00000000-0000-4000-8000-0000000008a1", "email": "ana@example.org", "role": "authenticated", "app_metadata": {"role": "devops"}}';
update vigil.settings set kill_switch = true where environment = 'qa';
update vigil.settings set kill_switch = false where environment = 'qa';
update vigil.services set heal_enabled = false where id = '00000000-0000-4000-8000-000000000871';
reset role;
reset request.jwt.claims;

select results_eq(
  $$select target, field, old_value, new_value, actor, actor_name from vigil.control_changes
     where target in ('settings:qa', 'service:t087-web') order by id desc limit 3$$,
  $$values ('service:t087-web', 'heal_enabled', 'true'::jsonb, 'false'::jsonb, '00000000-0000-4000-8000-0000000008a1'::uuid, 'ana@example.org'),
           ('settings:qa', 'kill_switch', 'true'::jsonb, 'false'::jsonb, '00000000-0000-4000-8000-0000000008a1'::uuid, 'ana@example.org'),
           ('settings:qa', 'kill_switch', 'false'::jsonb, 'true'::jsonb, '00000000-0000-4000-8000-0000000008a1'::uuid, 'ana@example.org')$$,
  'each switch an operator flips is kept, old and new, with their id and email'
);

update vigil.settings set dry_run = not dry_run where environment = 'qa';
select results_eq(
  $$select field, actor, actor_name from vigil.control_changes where target = 'settings:qa' order by id desc limit 1$$,
  $$values ('dry_run', null::uuid, 'postgres')$$,
  'a change made in SQL is kept under its database role'
);
update vigil.settings set dry_run = not dry_run where environment = 'qa';

select is((select count(*)::int from vigil.control_changes where target = 'settings:qa' and field = 'slow_query_ms'), 0,
          'precondition: no threshold change yet');
update vigil.settings set updated_at = now() where environment = 'qa';
select is((select count(*)::int from vigil.control_changes where target = 'settings:qa' and field not in ('kill_switch', 'dry_run')), 0,
          'a write that changes no control records nothing');

select throws_ok($$update vigil.control_changes set actor_name = 'someone else'$$, '42501', null, 'the record is append-only');
select throws_ok($$delete from vigil.control_changes$$, '42501', null, 'and cannot be deleted');

set local role anon;
select throws_ok($$select * from vigil.control_changes$$, '42501', null, 'anon reads none of it');
reset role;

select * from finish();
rollback;
