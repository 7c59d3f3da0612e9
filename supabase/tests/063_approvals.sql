-- vigil.heal_approvals: a heal in approval mode waits for a human. An operator sets decision; the
-- trigger stamps decided_at and decided_by (from the JWT's sub, never from the request) and, on
-- approval, asks auto-heal to act through vigil.invoke. A decision is final, and an expired approval
-- cannot be decided. service_role (an alert link handled by a function) names the human itself.
begin;
set search_path = extensions, public;
select plan(27);

insert into vigil.services (id, name, kind) values ('00000000-0000-4000-8000-000000000631', 't063-db', 'postgres');
insert into vigil.incidents (service_id, kind, severity, title)
values ('00000000-0000-4000-8000-000000000631', 'connections', 'critical', 't063 saturated');
insert into vigil.heal_approvals (action_id, incident_id, service_id, strategy, plan)
select ('00000000-0000-4000-8000-0000000006a' || n)::uuid, i.id, i.service_id, 'terminate_idle', '{"action": "terminate 3 idle sessions"}'
  from vigil.incidents i, generate_series(1, 7) n
 where i.title = 't063 saturated';
create temp table inc as select id from vigil.incidents where title = 't063 saturated';
grant select on inc to authenticated, service_role;

-- The auto-heal invocations queued for one of this file's approvals.
create function pg_temp.asked(p_action uuid) returns setof jsonb language sql as $$
  select body from vigil.invocations where fn = 'auto-heal' and body ->> 'approval' = p_action::text
$$;

select results_eq(
  $$select count(*)::int, count(*) filter (where decision is null and decided_at is null and decided_by is null)::int,
           bool_and(requested_at = now() and expires_at = now() + interval '1 hour')
      from vigil.heal_approvals where incident_id = (select id from inc)$$,
  $$values (7, 7, true)$$,
  'seven approvals, undecided, requested now and (by default) expiring in an hour'
);
-- The third ran out a minute ago.
update vigil.heal_approvals set expires_at = now() - interval '1 minute' where action_id = '00000000-0000-4000-8000-0000000006a3';

-- ─── An operator approves ───────────────────────────────────────────────────────────────────
set local role authenticated;
set local request.jwt.claims = '{"sub":"00000000-0000-4000-8000-0000000006b1","role":"authenticated","app_metadata":{"role":"devops"}}';
with u as (update vigil.heal_approvals set decision = 'approved' where action_id = '00000000-0000-4000-8000-0000000006a1' returning 1)
select is(count(*)::int, 1, 'an operator can approve a pending heal') from u;
select results_eq(
  $$select decision, decided_at, decided_by from vigil.heal_approvals where action_id = '00000000-0000-4000-8000-0000000006a1'$$,
  $$values ('approved'::text, now(), '00000000-0000-4000-8000-0000000006b1'::uuid)$$,
  'the approval is stamped: decided_at now, decided_by the operator''s JWT sub'
);
-- decided_by is not the operator's to write: naming it fails the whole statement.
select throws_ok(
  $$update vigil.heal_approvals set decision = 'approved', decided_by = '00000000-0000-4000-8000-0000000006ee'
     where action_id = '00000000-0000-4000-8000-0000000006a4'$$,
  '42501', 'permission denied for table heal_approvals', 'an operator cannot name someone else as decided_by');
select throws_ok(
  $$update vigil.heal_approvals set decided_at = now() - interval '1 day' where action_id = '00000000-0000-4000-8000-0000000006a4'$$,
  '42501', 'permission denied for table heal_approvals', 'an operator cannot backdate decided_at');

-- ...and rejects.
with u as (update vigil.heal_approvals set decision = 'rejected' where action_id = '00000000-0000-4000-8000-0000000006a2' returning 1)
select is(count(*)::int, 1, 'an operator can reject a pending heal') from u;
select results_eq(
  $$select decision, decided_at, decided_by from vigil.heal_approvals where action_id = '00000000-0000-4000-8000-0000000006a2'$$,
  $$values ('rejected'::text, now(), '00000000-0000-4000-8000-0000000006b1'::uuid)$$,
  'the rejection is stamped the same way'
);

-- A decision is final.
select throws_ok($$update vigil.heal_approvals set decision = 'rejected' where action_id = '00000000-0000-4000-8000-0000000006a1'$$,
                 '23514', 'heal approval 00000000-0000-4000-8000-0000000006a1 was already approved',
                 'an approved heal cannot be rejected afterwards');
select throws_ok($$update vigil.heal_approvals set decision = 'approved' where action_id = '00000000-0000-4000-8000-0000000006a2'$$,
                 '23514', 'heal approval 00000000-0000-4000-8000-0000000006a2 was already rejected',
                 'a rejected heal cannot be approved afterwards');
select throws_ok($$update vigil.heal_approvals set decision = 'approved' where action_id = '00000000-0000-4000-8000-0000000006a1'$$,
                 '23514', 'heal approval 00000000-0000-4000-8000-0000000006a1 was already approved',
                 'approving twice is refused too (auto-heal is not asked twice)');
select throws_ok($$update vigil.heal_approvals set decision = null where action_id = '00000000-0000-4000-8000-0000000006a1'$$,
                 '23514', 'heal approval 00000000-0000-4000-8000-0000000006a1 was already approved',
                 'a decision cannot be taken back');

-- An expired approval cannot be decided.
select throws_like($$update vigil.heal_approvals set decision = 'approved' where action_id = '00000000-0000-4000-8000-0000000006a3'$$,
                   'heal approval 00000000-0000-4000-8000-0000000006a3 expired at %',
                   'an expired approval cannot be approved');
select throws_ok($$update vigil.heal_approvals set decision = 'approved' where action_id = '00000000-0000-4000-8000-0000000006a3'$$,
                 '23514', null, 'the expiry refusal is a check violation (23514)');

-- Clearing an undecided approval's decision changes nothing: no time, no name.
update vigil.heal_approvals set decision = null where action_id = '00000000-0000-4000-8000-0000000006a5';
select results_eq(
  $$select decision, decided_at, decided_by from vigil.heal_approvals where action_id = '00000000-0000-4000-8000-0000000006a5'$$,
  $$values (null::text, null::timestamptz, null::uuid)$$,
  'setting decision to null on a pending approval leaves it undecided: no decided_at, no decided_by'
);
select throws_ok($$update vigil.heal_approvals set decision = 'maybe' where action_id = '00000000-0000-4000-8000-0000000006a5'$$,
                 '23514', 'new row for relation "heal_approvals" violates check constraint "heal_approval_decision"',
                 'a decision is approved or rejected, nothing else');

-- ─── A non-operator decides nothing ─────────────────────────────────────────────────────────
set local request.jwt.claims = '{"sub":"00000000-0000-4000-8000-0000000006b2","role":"authenticated","app_metadata":{"role":"viewer"}}';
with u as (update vigil.heal_approvals set decision = 'approved' where action_id = '00000000-0000-4000-8000-0000000006a4' returning 1)
select is(count(*)::int, 0, 'a non-operator''s approval affects 0 rows') from u;
reset role;
select results_eq(
  $$select decision, decided_at, decided_by from vigil.heal_approvals where action_id = '00000000-0000-4000-8000-0000000006a4'$$,
  $$values (null::text, null::timestamptz, null::uuid)$$,
  'the approval a non-operator tried is still undecided'
);

-- Defence in depth: even with decided_by and decided_at granted (in this transaction only), the
-- trigger writes the operator's own sub and the time.
grant update (decided_by, decided_at) on vigil.heal_approvals to authenticated;
set local role authenticated;
set local request.jwt.claims = '{"sub":"00000000-0000-4000-8000-0000000006b3","role":"authenticated","app_metadata":{"role":"devops"}}';
update vigil.heal_approvals
   set decision = 'approved', decided_by = '00000000-0000-4000-8000-0000000006ee', decided_at = '2000-01-01'
 where action_id = '00000000-0000-4000-8000-0000000006a4';
reset role;
revoke update (decided_by, decided_at) on vigil.heal_approvals from authenticated;
select results_eq(
  $$select decision, decided_at, decided_by from vigil.heal_approvals where action_id = '00000000-0000-4000-8000-0000000006a4'$$,
  $$values ('approved'::text, now(), '00000000-0000-4000-8000-0000000006b3'::uuid)$$,
  'an operator who names someone else and another time is stamped with their own sub and now'
);

-- ─── service_role names the human ───────────────────────────────────────────────────────────
set local role service_role;
set local request.jwt.claims = '{"role":"service_role"}';
update vigil.heal_approvals set decision = 'approved', decided_by = '00000000-0000-4000-8000-0000000006c1'
 where action_id = '00000000-0000-4000-8000-0000000006a6';
select results_eq(
  $$select decision, decided_at, decided_by from vigil.heal_approvals where action_id = '00000000-0000-4000-8000-0000000006a6'$$,
  $$values ('approved'::text, now(), '00000000-0000-4000-8000-0000000006c1'::uuid)$$,
  'service_role''s approval keeps the decided_by it names, and is timed by the trigger'
);
select throws_ok($$update vigil.heal_approvals set decision = 'rejected' where action_id = '00000000-0000-4000-8000-0000000006a6'$$,
                 '23514', 'heal approval 00000000-0000-4000-8000-0000000006a6 was already approved',
                 'a decision is final for service_role too');
select throws_ok(
  $$insert into vigil.heal_approvals (action_id, incident_id, service_id, strategy, plan, decision)
    values (gen_random_uuid(), (select id from inc), '00000000-0000-4000-8000-000000000631', 'terminate_idle', '{}', 'approved')$$,
  '23514', 'new row for relation "heal_approvals" violates check constraint "heal_approval_decided_has_time"',
  'an approval cannot be inserted already decided without a time');
reset role;

-- ─── What was asked of auto-heal ────────────────────────────────────────────────────────────
select results_eq(
  $$select * from pg_temp.asked('00000000-0000-4000-8000-0000000006a1')$$,
  $$select jsonb_build_object('incident_id', id, 'approval', '00000000-0000-4000-8000-0000000006a1') from inc$$,
  'the operator''s approval queued exactly one auto-heal invocation, naming the incident and the approval'
);
select results_eq(
  $$select state, transport from vigil.invocations where fn = 'auto-heal' and body ->> 'approval' = '00000000-0000-4000-8000-0000000006a1'$$,
  $$values ('pending'::text, 'notify'::text)$$,
  'the invocation waits for the commit (pending, handed to the relay)'
);
select is_empty($$select * from pg_temp.asked('00000000-0000-4000-8000-0000000006a2')$$, 'a rejection asks auto-heal for nothing');
select is_empty(
  $$select * from pg_temp.asked('00000000-0000-4000-8000-0000000006a3') union all select * from pg_temp.asked('00000000-0000-4000-8000-0000000006a5')
    union all select * from pg_temp.asked('00000000-0000-4000-8000-0000000006a7')$$,
  'the expired, cleared and untouched approvals asked auto-heal for nothing');
select is((select count(*) from pg_temp.asked('00000000-0000-4000-8000-0000000006a4')), 1::bigint,
          'the approval made after a non-operator tried was asked once, for the operator');
select is((select count(*) from pg_temp.asked('00000000-0000-4000-8000-0000000006a6')), 1::bigint,
          'service_role''s approval asked auto-heal once');

select * from finish();
rollback;
