-- vigil.heal_actions is the audit of every heal action: rows are only ever added. Grants keep
-- the API roles out; the trigger stops everyone else, the owner and superuser included, and
-- stays in force even if a grant is widened by mistake.
begin;
set search_path = extensions, public;
select plan(21);

insert into vigil.services (id, name, kind) values ('00000000-0000-4000-8000-000000000201', 't020-db', 'postgres');
insert into vigil.incidents (service_id, kind, severity, title)
values ('00000000-0000-4000-8000-000000000201', 'connections', 'critical', 't020 saturated');
insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome, target)
select '00000000-0000-4000-8000-000000000202', 'intent', id, service_id, 'terminate_idle', 1, 't020', 'pending', '{"pid":42}'
  from vigil.incidents where title = 't020 saturated';
create temp table audit_before as select * from vigil.heal_actions where action_id = '00000000-0000-4000-8000-000000000202';

-- As postgres (owner and superuser): the trigger refuses.
select throws_ok($$update vigil.heal_actions set outcome = 'succeeded' where action_id = '00000000-0000-4000-8000-000000000202'$$,
                 '42501', null, 'postgres cannot update heal_actions (42501)');
select throws_like($$update vigil.heal_actions set detail = 'rewritten' where action_id = '00000000-0000-4000-8000-000000000202'$$,
                   '%append-only%', 'postgres''s update is refused as append-only');
select throws_ok($$delete from vigil.heal_actions where action_id = '00000000-0000-4000-8000-000000000202'$$,
                 '42501', null, 'postgres cannot delete heal_actions (42501)');
select throws_like($$delete from vigil.heal_actions where action_id = '00000000-0000-4000-8000-000000000202'$$,
                   '%append-only%', 'postgres''s delete is refused as append-only');
select throws_ok($$truncate vigil.heal_actions$$, '42501', null, 'postgres cannot truncate heal_actions (42501)');
select throws_like($$truncate vigil.heal_actions$$, '%append-only%', 'postgres''s truncate is refused as append-only');
select throws_ok($$truncate vigil.heal_actions cascade$$, '42501', null, 'truncate ... cascade is refused too');

-- The audit cannot lose rows through its references either.
select throws_ok($$delete from vigil.incidents where title = 't020 saturated'$$, '23503', null,
                 'an incident with heal actions cannot be deleted (the audit keeps it)');
select throws_ok($$delete from vigil.services where id = '00000000-0000-4000-8000-000000000201'$$, '23503', null,
                 'a service with heal actions cannot be deleted');

-- The API roles are stopped by grants first.
set local role service_role;
select throws_ok($$update vigil.heal_actions set outcome = 'succeeded'$$, '42501', 'permission denied for table heal_actions',
                 'service_role cannot update heal_actions');
select throws_ok($$delete from vigil.heal_actions$$, '42501', 'permission denied for table heal_actions',
                 'service_role cannot delete heal_actions');
reset role;
set local role authenticated;
set local request.jwt.claims = '{"sub":"00000000-0000-4000-8000-0000000002f1","role":"authenticated","app_metadata":{"role":"devops"}}';
select throws_ok($$update vigil.heal_actions set outcome = 'succeeded'$$, '42501', 'permission denied for table heal_actions',
                 'an operator cannot update heal_actions');
select throws_ok($$delete from vigil.heal_actions$$, '42501', 'permission denied for table heal_actions',
                 'an operator cannot delete heal_actions');
reset role;
set local role anon;
select throws_ok($$delete from vigil.heal_actions$$, '42501', 'permission denied for table heal_actions',
                 'anon cannot delete heal_actions');
reset role;

-- Defence in depth: even with UPDATE, DELETE and TRUNCATE granted (in this transaction only),
-- service_role still hits the trigger.
grant update, delete, truncate on vigil.heal_actions to service_role;
set local role service_role;
select throws_like($$update vigil.heal_actions set outcome = 'succeeded' where action_id = '00000000-0000-4000-8000-000000000202'$$,
                   '%append-only%', 'with UPDATE granted, service_role''s update still hits the append-only trigger');
select throws_like($$delete from vigil.heal_actions where action_id = '00000000-0000-4000-8000-000000000202'$$,
                   '%append-only%', 'with DELETE granted, service_role''s delete still hits the append-only trigger');
select throws_like($$truncate vigil.heal_actions$$, '%append-only%',
                   'with TRUNCATE granted, service_role''s truncate still hits the append-only trigger');
reset role;
revoke update, delete, truncate on vigil.heal_actions from service_role;

-- Appending still works, and the result row pairs with its intent.
select lives_ok(
  $$insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome)
    select '00000000-0000-4000-8000-000000000202', 'result', id, service_id, 'terminate_idle', 1, 't020', 'succeeded'
      from vigil.incidents where title = 't020 saturated'$$,
  'a result row can be appended');
select throws_ok(
  $$insert into vigil.heal_actions (action_id, phase, strategy, attempt, reason, outcome)
    values ('00000000-0000-4000-8000-000000000202', 'result', 'terminate_idle', 1, 't020', 'failed')$$,
  '23505', null, 'a second result row for the same action is rejected');
select throws_ok(
  $$insert into vigil.heal_actions (action_id, phase, strategy, attempt, reason, outcome)
    values (gen_random_uuid(), 'intent', 'terminate_idle', 1, 't020', 'succeeded')$$,
  '23514', null, 'an intent row must be pending or awaiting approval');

select set_eq(
  $$select * from vigil.heal_actions where action_id = '00000000-0000-4000-8000-000000000202' and phase = 'intent'$$,
  $$select * from audit_before$$,
  'after every attempt the intent row is exactly as written'
);

select * from finish();
rollback;
