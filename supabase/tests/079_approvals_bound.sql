-- An approval covers one plan, once. vigil.consume_approval(action, incident, strategy, digest)
-- uses it only when it was approved, is not used yet, has not expired, and the fresh plan's digest
-- is the one approved; otherwise it says why. Who decided is named: an operator by their JWT's
-- email, whatever they wrote.
begin;
set search_path = extensions, public;
select plan(10);

insert into vigil.services (id, name, kind, environment, config) values
  ('00000000-0000-4000-8000-000000000791', 't079-api', 'http', 'prod', '{"url": "https://api.t079.example.org"}');
alter table vigil.incidents disable trigger incidents_request_heal;
insert into vigil.incidents (id, service_id, kind, severity, title) overriding system value values
  (790001, '00000000-0000-4000-8000-000000000791', 'service_unhealthy', 'critical', 't079 down');
alter table vigil.incidents enable trigger incidents_request_heal;
insert into vigil.heal_approvals (action_id, incident_id, service_id, strategy, plan, plan_digest, decision, decided_at, expires_at) values
  ('00000000-0000-4000-8000-0000000007a1', 790001, '00000000-0000-4000-8000-000000000791', 'restart_service', '{}', repeat('a', 64), 'approved', now(), now() + interval '1 hour'),
  ('00000000-0000-4000-8000-0000000007a2', 790001, '00000000-0000-4000-8000-000000000791', 'restart_service', '{}', repeat('b', 64), null, null, now() + interval '1 hour'),
  ('00000000-0000-4000-8000-0000000007a3', 790001, '00000000-0000-4000-8000-000000000791', 'restart_service', '{}', repeat('c', 64), 'approved', now() - interval '2 hours', now() - interval '1 hour');

select is(vigil.consume_approval('00000000-0000-4000-8000-0000000007a1', 790001, 'restart_service', repeat('f', 64)),
          'the situation changed since it was approved: the plan is not the one approved', 'another plan is not covered');
select is(vigil.consume_approval('00000000-0000-4000-8000-0000000007a1', 790001, 'purge_cdn', repeat('a', 64)),
          'no such approval for this incident and strategy', 'nor another strategy');
select is(vigil.consume_approval('00000000-0000-4000-8000-0000000007a1', 790001, 'restart_service', repeat('a', 64)), null,
          'the approved plan is covered');
select isnt((select consumed_at from vigil.heal_approvals where action_id = '00000000-0000-4000-8000-0000000007a1'), null,
            'and the approval is used now');
select matches(vigil.consume_approval('00000000-0000-4000-8000-0000000007a1', 790001, 'restart_service', repeat('a', 64)),
               '^it was already used at ', 'once');
select is(vigil.consume_approval('00000000-0000-4000-8000-0000000007a2', 790001, 'restart_service', repeat('b', 64)),
          'it was not approved', 'an undecided approval covers nothing');
select matches(vigil.consume_approval('00000000-0000-4000-8000-0000000007a3', 790001, 'restart_service', repeat('c', 64)),
               '^it expired at ', 'an expired one neither');

set local role authenticated;
select set_config('request.jwt.claims',
  '{"sub": "00000000-0000-4000-8000-0000000007b9", "email": "ops@example.org", "role": "authenticated", "app_metadata": {"role": "devops"}}', true);
update vigil.heal_approvals set decision = 'rejected' where action_id = '00000000-0000-4000-8000-0000000007a2';
select throws_ok($$select vigil.consume_approval('00000000-0000-4000-8000-0000000007a1', 790001, 'restart_service', repeat('a', 64))$$,
  '42501', null, 'consuming an approval is the agent''s, not an operator''s');
select throws_ok($$update vigil.heal_approvals set decided_by_name = 'somebody else'$$,
  '42501', null, 'nor may an operator write who decided');
reset role;
select results_eq($$select decision, decided_by, decided_by_name from vigil.heal_approvals where action_id = '00000000-0000-4000-8000-0000000007a2'$$,
  $$values ('rejected'::text, '00000000-0000-4000-8000-0000000007b9'::uuid, 'ops@example.org'::text)$$,
  'an operator''s decision is named from their JWT');

select * from finish();
rollback;
