-- The heal audit is a hash chain: a before-insert trigger (ALWAYS, under the row lock of vigil.audit_chain) gives each
-- row the next seq, the previous row's hash as prev_hash, and row_hash = vigil.heal_action_hash(row).
-- vigil.verify_heal_audit() walks the chain in seq order and names the first row that does not hold:
-- content edited, a row removed, a link rewritten, rows reordered.
--
-- The table is locked for the whole file so the chain cannot grow under the test. verify walks the
-- whole table, and the shared stack may hold rows (and tampering) from other runs, so after
-- checking that a new row links onto whatever is there, the file empties the table inside this
-- transaction (the append-only trigger is switched off for that as postgres, and back on; all of
-- it is rolled back) and builds a chain of its own.
begin;
set search_path = extensions, public;
select plan(29);

lock table vigil.heal_actions in exclusive mode;

insert into vigil.services (id, name, kind) values ('00000000-0000-4000-8000-000000000621', 't062-db', 'postgres');
insert into vigil.incidents (service_id, kind, severity, title)
values ('00000000-0000-4000-8000-000000000621', 'connections', 'critical', 't062 saturated');

-- A new row continues the chain that is there, whatever it holds.
create temp table tail as
select (select max(seq) from vigil.heal_actions) as seq,
       (select row_hash from vigil.heal_actions order by seq desc nulls last limit 1) as row_hash;
insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome)
select '00000000-0000-4000-8000-000000000620', 'intent', id, service_id, 'terminate_idle', 1, 't062 tail', 'pending'
  from vigil.incidents where title = 't062 saturated';
select results_eq(
  $$select seq, prev_hash from vigil.heal_actions where action_id = '00000000-0000-4000-8000-000000000620'$$,
  $$select coalesce(seq, 0) + 1, row_hash from tail$$,
  'a new row takes the next seq after the existing tail and links to the tail''s hash'
);

-- From here on the chain is this file's own.
alter table vigil.heal_actions disable trigger heal_actions_append_only;
delete from vigil.heal_actions;
alter table vigil.heal_actions enable always trigger heal_actions_append_only;
select is_empty($$select 1 from vigil.heal_actions$$, 'precondition: the audit is empty inside this transaction');

-- Two single inserts and a multi-row insert: each row is chained, the multi-row ones in turn. The
-- writer's own seq, prev_hash and row_hash are overwritten, so they cannot be forged.
insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome, target, measurements_before)
select '00000000-0000-4000-8000-000000000622', 'intent', id, service_id, 'terminate_idle', 1, 't062 first', 'pending',
       '{"pid": 4242}', '{"connections": 97.5}'
  from vigil.incidents where title = 't062 saturated';
insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome, detail, seq, prev_hash, row_hash)
select '00000000-0000-4000-8000-000000000622', 'result', id, service_id, 'terminate_idle', 1, 't062 second', 'failed',
       'permission denied', 999, 'forged', 'forged'
  from vigil.incidents where title = 't062 saturated';
insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome, measurements_after)
select a, p::vigil.heal_phase, i.id, i.service_id, 'terminate_idle', 2, r, o::vigil.heal_outcome, m::jsonb
  from vigil.incidents i,
       (values ('00000000-0000-4000-8000-000000000623'::uuid, 'intent', 't062 third', 'pending', null, 1),
               ('00000000-0000-4000-8000-000000000623'::uuid, 'result', 't062 fourth', 'succeeded', '{"connections": 40}', 2),
               ('00000000-0000-4000-8000-000000000624'::uuid, 'intent', 't062 fifth', 'pending', null, 3)) v(a, p, r, o, m, n)
 where i.title = 't062 saturated'
 order by v.n;
create temp table chain as select seq, id, reason from vigil.heal_actions;

select results_eq($$select seq, reason from vigil.heal_actions order by seq$$,
                  $$values (1::bigint, 't062 first'::text), (2, 't062 second'), (3, 't062 third'), (4, 't062 fourth'), (5, 't062 fifth')$$,
                  'the rows got seq 1 to 5 in the order they were written (a multi-row insert in its row order)');
select is((select prev_hash from vigil.heal_actions where seq = 1), null, 'the first row links to nothing (genesis)');
select is_empty(
  $$select seq from (select seq, prev_hash, lag(row_hash) over (order by seq) as previous from vigil.heal_actions) c
     where seq > 1 and prev_hash is distinct from previous$$,
  'every later row''s prev_hash is the previous row''s row_hash'
);
select is_empty($$select seq from vigil.heal_actions a where row_hash is distinct from vigil.heal_action_hash(a)$$,
                'every row''s row_hash is vigil.heal_action_hash of the row');
select is_empty($$select seq from vigil.heal_actions where row_hash !~ '^[0-9a-f]{64}$'$$, 'every row_hash is a SHA-256 in hex');
select results_eq($$select seq, prev_hash = 'forged', row_hash = 'forged' from vigil.heal_actions where reason = 't062 second'$$,
                  $$values (2::bigint, false, false)$$, 'the seq, prev_hash and row_hash a writer supplies are replaced');
select isnt((select row_hash from vigil.heal_actions where seq = 3), (select row_hash from vigil.heal_actions where seq = 5),
            'two intent rows of the same shape hash differently (id, seq and link are in the hash)');

select results_eq($$select * from vigil.verify_heal_audit()$$, $$values (true, 5::bigint, null::bigint, null::text)$$,
                  'verify_heal_audit: intact, 5 rows checked');

-- The hash must not depend on the session: a walk from another time zone, and a row written from
-- one, verify the same. (In a savepoint, so a failure here does not spill into the cases below.)
savepoint tz;
set local timezone = 'America/New_York';
select results_eq($$select * from vigil.verify_heal_audit()$$, $$values (true, 5::bigint, null::bigint, null::text)$$,
                  'verify_heal_audit in another session time zone: still intact');
set local timezone = 'Asia/Kolkata';
insert into vigil.heal_actions (action_id, phase, service_id, strategy, attempt, reason, outcome)
values ('00000000-0000-4000-8000-000000000624', 'result', '00000000-0000-4000-8000-000000000621', 'terminate_idle', 3, 't062 sixth', 'failed');
set local timezone = 'UTC';
select results_eq($$select * from vigil.verify_heal_audit()$$, $$values (true, 6::bigint, null::bigint, null::text)$$,
                  'a row written from another time zone verifies in UTC');
rollback to savepoint tz;
release savepoint tz;
reset timezone;

-- ─── Tampering, each case on its own (rolled back to the savepoint) ─────────────────────────
savepoint tamper;
alter table vigil.heal_actions disable trigger heal_actions_append_only;
update vigil.heal_actions set detail = 'it worked, honestly' where seq = 2;
alter table vigil.heal_actions enable always trigger heal_actions_append_only;
select results_eq($$select * from vigil.verify_heal_audit()$$,
                  $$select false, 2::bigint, id, 'its content changed after it was written'::text from chain where seq = 2$$,
                  'an edited row is found: the walk stops at it, content changed');
rollback to savepoint tamper;

alter table vigil.heal_actions disable trigger heal_actions_append_only;
update vigil.heal_actions set reason = 't062 fifth, reworded' where seq = 5;
alter table vigil.heal_actions enable always trigger heal_actions_append_only;
select results_eq($$select * from vigil.verify_heal_audit()$$,
                  $$select false, 5::bigint, id, 'its content changed after it was written'::text from chain where seq = 5$$,
                  'an edited newest row is found too');
rollback to savepoint tamper;

alter table vigil.heal_actions disable trigger heal_actions_append_only;
delete from vigil.heal_actions where seq = 3;
alter table vigil.heal_actions enable always trigger heal_actions_append_only;
select results_eq($$select * from vigil.verify_heal_audit()$$,
                  $$select false, 3::bigint, id, 'row seq 4 follows 2: a row before it is missing'::text from chain where seq = 4$$,
                  'a deleted middle row is found: the row after the gap is named, the missing seq said');
rollback to savepoint tamper;

alter table vigil.heal_actions disable trigger heal_actions_append_only;
update vigil.heal_actions set prev_hash = (select row_hash from vigil.heal_actions where seq = 2) where seq = 4;
alter table vigil.heal_actions enable always trigger heal_actions_append_only;
select results_eq($$select * from vigil.verify_heal_audit()$$,
                  $$select false, 4::bigint, id,
                           'its link to the previous row does not match: a row was removed, added or changed before it'::text
                      from chain where seq = 4$$,
                  'a rewritten prev_hash is found: that row''s link does not match');
rollback to savepoint tamper;

-- Covering a deletion: renumber the rows after the gap and relink the first of them. The row's
-- own hash covered its old seq and link, so it still gives itself away.
alter table vigil.heal_actions disable trigger heal_actions_append_only;
delete from vigil.heal_actions where seq = 3;
update vigil.heal_actions set seq = seq - 1 where seq > 3;
update vigil.heal_actions set prev_hash = (select row_hash from vigil.heal_actions where seq = 2) where seq = 3;
alter table vigil.heal_actions enable always trigger heal_actions_append_only;
select results_eq($$select * from vigil.verify_heal_audit()$$,
                  $$select false, 3::bigint, id, 'its content changed after it was written'::text from chain where seq = 4$$,
                  'a deletion covered by renumbering and relinking is found at the relinked row');
rollback to savepoint tamper;

-- Reordering: rows 2 and 3 swap places.
alter table vigil.heal_actions disable trigger heal_actions_append_only;
update vigil.heal_actions set seq = -2 where seq = 2;
update vigil.heal_actions set seq = 2 where seq = 3;
update vigil.heal_actions set seq = 3 where seq = -2;
alter table vigil.heal_actions enable always trigger heal_actions_append_only;
select results_eq($$select * from vigil.verify_heal_audit()$$,
                  $$select false, 2::bigint, id,
                           'its link to the previous row does not match: a row was removed, added or changed before it'::text
                      from chain where seq = 3$$,
                  'swapped rows are found: the row moved forward does not link to the one before it');
rollback to savepoint tamper;
release savepoint tamper;

select results_eq($$select * from vigil.verify_heal_audit()$$, $$values (true, 5::bigint, null::bigint, null::text)$$,
                  'with every tampering rolled back, the chain is intact again');

-- ─── The guards are back on ─────────────────────────────────────────────────────────────────
select results_eq(
  $$select tgname::text collate "default", tgenabled::text from pg_trigger
     where tgrelid = 'vigil.heal_actions'::regclass and not tgisinternal order by tgname$$,
  $$values ('heal_actions_append_only'::text, 'A'::text), ('heal_actions_chain', 'A'), ('heal_actions_no_truncate', 'A')$$,
  'the append-only, no-truncate and chain triggers are all enabled ALWAYS'
);
select throws_ok($$update vigil.heal_actions set detail = 'edited' where seq = 2$$, '42501', null,
                 'with the trigger on, postgres still cannot update a chained row');
select throws_ok($$delete from vigil.heal_actions where seq = 3$$, '42501', null,
                 'with the trigger on, postgres still cannot delete a chained row');

-- session_replication_role = replica skips ordinary triggers, not ALWAYS ones.
set local session_replication_role = replica;
insert into vigil.heal_actions (action_id, phase, service_id, strategy, attempt, reason, outcome, seq, prev_hash, row_hash)
values ('00000000-0000-4000-8000-000000000625', 'intent', '00000000-0000-4000-8000-000000000621', 'terminate_idle', 1,
        't062 replica', 'pending', 1000, null, 'forged');
select throws_ok($$update vigil.heal_actions set detail = 'edited' where seq = 2$$, '42501', null,
                 'as a replica, the update is still refused');
set local session_replication_role = origin;
select results_eq(
  $$select seq, prev_hash = (select row_hash from vigil.heal_actions where seq = 5), row_hash = vigil.heal_action_hash(a)
      from vigil.heal_actions a where reason = 't062 replica'$$,
  $$values (6::bigint, true, true)$$,
  'a row inserted with session_replication_role = replica is chained all the same (seq 6, linked, hashed)'
);
select results_eq($$select * from vigil.verify_heal_audit()$$, $$values (true, 6::bigint, null::bigint, null::text)$$,
                  'the whole chain verifies: intact, 6 rows');

-- ─── The pieces ─────────────────────────────────────────────────────────────────────────────
-- The hash covers the content: any field changed changes it.
select is(
  (select count(distinct h) from vigil.heal_actions a,
          lateral (values (vigil.heal_action_hash(a)),
                          (vigil.heal_action_hash(jsonb_populate_record(a, '{"detail": "x"}'))),
                          (vigil.heal_action_hash(jsonb_populate_record(a, '{"outcome": "succeeded"}'))),
                          (vigil.heal_action_hash(jsonb_populate_record(a, '{"target": {"pid": 1}}'))),
                          (vigil.heal_action_hash(jsonb_populate_record(a, '{"measurements_after": {"connections": 1}}'))),
                          (vigil.heal_action_hash(jsonb_populate_record(a, '{"actor": "someone"}'))),
                          (vigil.heal_action_hash(jsonb_populate_record(a, '{"created_at": "2000-01-01T00:00:00Z"}'))),
                          (vigil.heal_action_hash(jsonb_populate_record(a, '{"seq": 99}'))),
                          (vigil.heal_action_hash(jsonb_populate_record(a, '{"prev_hash": "0"}')))) h(h)
    where a.seq = 2),
  9::bigint,
  'the hash changes with detail, outcome, target, measurements, actor, created_at, seq and prev_hash'
);
select is(
  (select vigil.heal_action_hash(jsonb_populate_record(a, '{"row_hash": "anything"}')) = vigil.heal_action_hash(a)
     from vigil.heal_actions a where seq = 2),
  true, 'the hash leaves out row_hash itself');
-- Writers queue on one lock, so two never take the same seq.
select ok((select prosrc ~ 'from vigil\.audit_chain for update' and prosrc ~ 'lock_not_available'
             from pg_proc where oid = 'vigil.chain_heal_action()'::regprocedure),
          'the chain trigger locks vigil.audit_chain''s row before reading the tail, waiting a bounded time');
select is((select provolatile::text from pg_proc where oid = 'vigil.verify_heal_audit()'::regprocedure), 's',
          'verify_heal_audit only reads');

select * from finish();
rollback;
