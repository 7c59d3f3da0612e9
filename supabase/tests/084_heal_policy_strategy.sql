-- A heal policy names a strategy Vigil has: anything else is refused at insert or update, naming it
-- and the known ones.
begin;
set search_path = extensions, public;
select plan(5);

select throws_ok($$insert into vigil.heal_policies (environment, strategy, mode) values ('qa', 'termiante_blocker', 'off')$$,
  '23514', null, 'a misspelled strategy is refused');
select throws_like($$insert into vigil.heal_policies (environment, strategy, mode) values ('qa', 'termiante_blocker', 'off')$$,
  '%unknown strategy "termiante_blocker" (known: add_missing_index, %terminate_blocker%',
  'naming it and the strategies there are');
select lives_ok($$insert into vigil.heal_policies (environment, strategy, mode) values ('qa', 'terminate_blocker', 'off')
                  on conflict (environment, strategy) do update set mode = 'off'$$, 'a known one is accepted');
select throws_ok($$update vigil.heal_policies set strategy = 'nope' where environment = 'qa' and strategy = 'terminate_blocker'$$,
  '23514', null, 'and renaming a policy to an unknown strategy is refused too');

select is(vigil.heal_ladder(), '{"max_attempts": 3, "senior_at": 4}'::jsonb,
          'the ladder''s limits, in the one place SQL and the auto-heal function read them');

select * from finish();
rollback;
