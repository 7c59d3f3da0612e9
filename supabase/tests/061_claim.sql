-- vigil.claim_incident / vigil.release_incident: one heal worker at a time per incident. The claim
-- is a conditional update (open, and unclaimed, expired or already ours), so of two invocations for
-- the same incident only one gets the row; the lease runs out on its own if a worker dies.
begin;
set search_path = extensions, public;
select plan(24);

insert into vigil.services (id, name, kind) values ('00000000-0000-4000-8000-000000000611', 't061-db', 'postgres');
insert into vigil.incidents (service_id, kind, severity, title) values
  ('00000000-0000-4000-8000-000000000611', 'connections', 'critical', 't061 open');
insert into vigil.incidents (service_id, kind, severity, title, status, resolved_at) values
  ('00000000-0000-4000-8000-000000000611', 'latency', 'warning', 't061 resolved', 'resolved', now());
create temp table inc as
select (select id from vigil.incidents where title = 't061 open') as open_id,
       (select id from vigil.incidents where title = 't061 resolved') as resolved_id;
create temp table heal_requests_before as
select count(*) as n from vigil.invocations where fn = 'auto-heal' and body ->> 'incident_id' = (select open_id::text from inc);

select results_eq(
  $$select heal_claimed_until, heal_claimed_by, last_heal_at from vigil.incidents where id = (select open_id from inc)$$,
  $$values (null::timestamptz, null::text, null::timestamptz)$$,
  'a new incident is unclaimed and was never healed'
);

-- The first claim gets the row, with a three-minute lease by default.
create temp table claimed as select * from vigil.claim_incident((select open_id from inc), 'worker-a');
select results_eq($$select id, status::text, heal_claimed_by, heal_claimed_until from claimed$$,
                  $$select open_id, 'open'::text, 'worker-a'::text, now() + interval '3 minutes' from inc$$,
                  'the first claim returns the incident once, held by worker-a for three minutes');
select results_eq($$select heal_claimed_by, heal_claimed_until from vigil.incidents where id = (select open_id from inc)$$,
                  $$values ('worker-a'::text, now() + interval '3 minutes')$$,
                  'the claim is written to the incident');

-- Another worker gets nothing while the lease holds, and changes nothing.
select is_empty($$select * from vigil.claim_incident((select open_id from inc), 'worker-b')$$,
                'a second worker''s claim returns nothing while worker-a''s lease holds');
select is_empty($$select * from vigil.claim_incident((select open_id from inc), 'worker-b', interval '1 hour')$$,
                'asking for a longer lease does not help');
select results_eq($$select heal_claimed_by, heal_claimed_until from vigil.incidents where id = (select open_id from inc)$$,
                  $$values ('worker-a'::text, now() + interval '3 minutes')$$,
                  'worker-b''s attempts left worker-a''s claim as it was');

-- The holder may claim again, extending its lease.
select is((select count(*) from vigil.claim_incident((select open_id from inc), 'worker-a', interval '10 minutes')), 1::bigint,
          'worker-a can claim its own incident again');
select is((select heal_claimed_until from vigil.incidents where id = (select open_id from inc)), now() + interval '10 minutes',
          'the re-claim sets the lease it asked for (ten minutes)');

-- A lease that ran out is free for anyone.
update vigil.incidents set heal_claimed_until = now() - interval '1 second' where id = (select open_id from inc);
select is((select count(*) from vigil.claim_incident((select open_id from inc), 'worker-b')), 1::bigint,
          'once worker-a''s lease has run out, worker-b can claim');
select results_eq($$select heal_claimed_by, heal_claimed_until from vigil.incidents where id = (select open_id from inc)$$,
                  $$values ('worker-b'::text, now() + interval '3 minutes')$$,
                  'the incident is now held by worker-b');
select is_empty($$select * from vigil.claim_incident((select open_id from inc), 'worker-a')$$,
                'and worker-a, whose lease ran out, cannot take it back');

-- Release: only the holder's counts.
select lives_ok($$select vigil.release_incident((select open_id from inc), 'worker-a')$$, 'a release by a non-holder does not fail');
select results_eq($$select heal_claimed_by, heal_claimed_until, last_heal_at from vigil.incidents where id = (select open_id from inc)$$,
                  $$values ('worker-b'::text, now() + interval '3 minutes', null::timestamptz)$$,
                  'a release by a non-holder does nothing: worker-b still holds it, and no heal time is recorded');
select vigil.release_incident((select open_id from inc), 'worker-b');
select results_eq($$select heal_claimed_by, heal_claimed_until, last_heal_at from vigil.incidents where id = (select open_id from inc)$$,
                  $$values (null::text, null::timestamptz, now())$$,
                  'the holder''s release clears the claim and records last_heal_at');
select is((select count(*) from vigil.claim_incident((select open_id from inc), 'worker-c')), 1::bigint,
          'after the release, a new worker can claim at once');

-- A released incident keeps its last_heal_at through the next claim; releasing twice is harmless.
select is((select last_heal_at from vigil.incidents where id = (select open_id from inc)), now(),
          'a new claim keeps last_heal_at');
select vigil.release_incident((select open_id from inc), 'worker-c');
select lives_ok($$select vigil.release_incident((select open_id from inc), 'worker-c')$$, 'releasing twice does not fail');

-- Only open incidents can be claimed.
select is_empty($$select * from vigil.claim_incident((select resolved_id from inc), 'worker-a')$$,
                'a resolved incident cannot be claimed');
select results_eq($$select heal_claimed_by, heal_claimed_until from vigil.incidents where id = (select resolved_id from inc)$$,
                  $$values (null::text, null::timestamptz)$$, 'the resolved incident stays unclaimed');
update vigil.incidents set heal_claimed_until = now() + interval '1 minute', heal_claimed_by = 'worker-a'
 where id = (select open_id from inc);
update vigil.incidents set status = 'resolved', resolved_at = now() where id = (select open_id from inc);
select is_empty($$select * from vigil.claim_incident((select open_id from inc), 'worker-a')$$,
                'an incident resolved while claimed cannot be claimed again, not even by its holder');
select is_empty($$select * from vigil.claim_incident(-1, 'worker-a')$$, 'an unknown incident cannot be claimed');

-- Claims and releases touch neither the heal count nor the severity, and ask auto-heal for nothing.
select results_eq($$select severity::text, heal_attempts from vigil.incidents where id = (select open_id from inc)$$,
                  $$values ('critical'::text, 0)$$, 'claiming and releasing left severity and heal_attempts alone');
select is((select count(*) from vigil.invocations where fn = 'auto-heal' and body ->> 'incident_id' = (select open_id::text from inc)),
          (select n from heal_requests_before), 'claiming and releasing queued no auto-heal invocation');

-- A conditional update, not a read then a write: the function is one UPDATE ... RETURNING.
select ok((select prosrc ~* '^\s*update\s+vigil\.incidents' and prosrc ~* 'returning' and provolatile = 'v'
             from pg_proc where oid = 'vigil.claim_incident(bigint,text,interval)'::regprocedure),
          'claim_incident is a single volatile UPDATE ... RETURNING (no window between reading and writing the claim)');

select * from finish();
rollback;
