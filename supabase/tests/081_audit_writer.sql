-- The audit's writer chooses neither when nor who: for anyone but a superuser the trigger sets
-- created_at and actor ('vigil', or 'vigil (approved by <name>)' when this incident's approval was
-- really used). The chain's lock is a row of vigil.audit_chain that only the audit's writers can lock.
begin;
set search_path = extensions, public;
select plan(9);

insert into vigil.services (id, name, kind) values ('00000000-0000-4000-8000-000000000811', 't081-db', 'postgres');
insert into vigil.incidents (id, service_id, kind, severity, title) overriding system value
values (810001, '00000000-0000-4000-8000-000000000811', 'connections', 'critical', 't081 a'),
       (810002, '00000000-0000-4000-8000-000000000811', 'memory', 'critical', 't081 b');
-- Incident a has a used approval, decided by Ana; b has none.
insert into vigil.heal_approvals (action_id, incident_id, service_id, strategy, plan, plan_digest, decision, decided_at,
                                  decided_by_name, consumed_at, expires_at)
values ('00000000-0000-4000-8000-0000000008a1', 810001, '00000000-0000-4000-8000-000000000811', 'restart_service', '{}',
        repeat('a', 64), 'approved', now(), 'Ana Lima', now(), now() + interval '1 hour');

set local role vigil_agent;
insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome, actor, created_at)
values ('00000000-0000-4000-8000-000000000812', 'intent', 810002, '00000000-0000-4000-8000-000000000811', 'restart_service', 1,
        't081 forged', 'pending', 'alice@example.org', '2020-01-01'),
       ('00000000-0000-4000-8000-000000000813', 'intent', 810002, '00000000-0000-4000-8000-000000000811', 'restart_service', 1,
        't081 unapproved', 'pending', 'vigil (approved by a human)', now()),
       ('00000000-0000-4000-8000-000000000814', 'intent', 810001, '00000000-0000-4000-8000-000000000811', 'restart_service', 1,
        't081 approved', 'pending', 'vigil (approved by a human)', now()),
       ('00000000-0000-4000-8000-000000000815', 'intent', 810001, '00000000-0000-4000-8000-000000000811', 'restart_service', 1,
        't081 plain', 'pending', 'vigil (approved by Mallory)', now());
reset role;

select is((select actor from vigil.heal_actions where reason = 't081 forged'), 'vigil',
          'a writer naming somebody else is recorded as vigil');
select ok((select created_at > now() - interval '1 minute' from vigil.heal_actions where reason = 't081 forged'),
          'and at the database''s time, not the one it wrote');
select is((select actor from vigil.heal_actions where reason = 't081 unapproved'), 'vigil',
          'approved by a human, with no used approval for the incident: vigil');
select is((select actor from vigil.heal_actions where reason = 't081 approved'), 'vigil (approved by Ana Lima)',
          'with one: named after the approval''s decider, not the writer''s words');
select is((select actor from vigil.heal_actions where reason = 't081 plain'), 'vigil (approved by Ana Lima)',
          'a made-up approver is replaced by the real one');
select is((select count(*)::int from vigil.heal_actions where reason like 't081 %' and row_hash = vigil.heal_action_hash(heal_actions)),
          4, 'and each row''s hash covers what the database set');

select is((select count(*)::int from vigil.audit_chain), 1, 'the chain''s lock is one row');
set local role authenticated;
select throws_ok($$select from vigil.audit_chain for update$$, '42501', null,
                 'an ordinary user cannot take the chain''s lock');
reset role;
set local role anon;
select throws_ok($$select from vigil.audit_chain for update nowait$$, '42501', null, 'nor anon');
reset role;

select * from finish();
rollback;
