-- Asking auto-heal to act. The incidents trigger asks once when an open incident appears and once
-- each time its severity rises ({incident_id, reason: opened | worsened}); nothing else asks.
-- vigil.retry_heals(), run every minute by the vigil-heal-retry job, asks again for open incidents
-- that had one or two attempts, whose last heal ended long enough ago, that nobody holds, and whose
-- ladder has not reached the senior.
--
-- vigil.invocations is locked against other writers for the whole file, so every invocation that
-- appears while it runs is one this transaction made.
begin;
set search_path = extensions, public;
select plan(24);

lock table vigil.invocations in exclusive mode;
create temp table mark as select coalesce(max(id), 0) as id from vigil.invocations;
-- The invocations made since the last mark, and a new mark.
create function pg_temp.since_mark() returns setof vigil.invocations language sql as $$
  select * from vigil.invocations where id > (select id from mark) order by id
$$;
create function pg_temp.remark() returns void language sql as $$
  update mark set id = (select coalesce(max(id), 0) from vigil.invocations)
$$;

insert into vigil.services (id, name, kind, failure_threshold) values
  ('00000000-0000-4000-8000-000000000651', 't065-db', 'postgres', 3),
  ('00000000-0000-4000-8000-000000000652', 't065-api', 'postgres', 1);

-- ─── Opened ─────────────────────────────────────────────────────────────────────────────────
insert into vigil.incidents (service_id, kind, severity, title)
values ('00000000-0000-4000-8000-000000000651', 'connections', 'warning', 't065 connections');
select results_eq(
  $$select fn, body, state, transport from pg_temp.since_mark()$$,
  $$select 'auto-heal'::text, jsonb_build_object('incident_id', id, 'reason', 'opened'), 'pending'::text, 'notify'::text
      from vigil.incidents where title = 't065 connections'$$,
  'an open incident queues exactly one auto-heal invocation: {incident_id, reason: opened}, sent on commit'
);
select pg_temp.remark();

insert into vigil.incidents (service_id, kind, severity, title, status, resolved_at)
values ('00000000-0000-4000-8000-000000000651', 'old_news', 'critical', 't065 resolved', 'resolved', now());
select is_empty($$select * from pg_temp.since_mark()$$, 'an incident inserted already resolved asks for nothing');

-- ─── Worsened ───────────────────────────────────────────────────────────────────────────────
update vigil.incidents set severity = 'critical' where title = 't065 connections';
select results_eq(
  $$select fn, body from pg_temp.since_mark()$$,
  $$select 'auto-heal'::text, jsonb_build_object('incident_id', id, 'reason', 'worsened') from vigil.incidents where title = 't065 connections'$$,
  'raising severity from warning to critical queues one invocation: {incident_id, reason: worsened}'
);
select pg_temp.remark();

update vigil.incidents set severity = 'critical' where title = 't065 connections';
select is_empty($$select * from pg_temp.since_mark()$$, 'setting the same severity again asks for nothing');
update vigil.incidents set severity = 'warning' where title = 't065 connections';
select is_empty($$select * from pg_temp.since_mark()$$, 'lowering severity asks for nothing');
update vigil.incidents
   set title = 't065 connections (renamed)', detail = '{"note": 1}', heal_attempts = 1, acknowledged_at = now(),
       escalation_level = 2, last_heal_at = now()
 where title = 't065 connections';
select is_empty($$select * from pg_temp.since_mark()$$, 'updating other columns (title, detail, attempts, acknowledgement, ladder) asks for nothing');
update vigil.incidents set severity = 'info' where title = 't065 connections (renamed)';
update vigil.incidents set severity = 'warning' where title = 't065 connections (renamed)';
select is((select count(*) from pg_temp.since_mark() where body ->> 'reason' = 'worsened'), 1::bigint,
          'info to warning is a rise too: one worsened');
select pg_temp.remark();
update vigil.incidents set severity = 'info' where title = 't065 resolved';
update vigil.incidents set severity = 'critical' where title = 't065 resolved';
select is_empty($$select * from pg_temp.since_mark()$$, 'a resolved incident''s rising severity asks for nothing');

-- ─── Through the checks, as the health check writes them ────────────────────────────────────
set local role service_role;
set local request.jwt.claims = '{"role":"service_role"}';
insert into vigil.checks (service_id, status) values ('00000000-0000-4000-8000-000000000652', 'degraded');
reset role;
select results_eq(
  $$select body ->> 'reason' from pg_temp.since_mark()
     where body ->> 'incident_id' = (select id::text from vigil.incidents
                                     where service_id = '00000000-0000-4000-8000-000000000652' and status = 'open')$$,
  $$values ('opened'::text)$$,
  'service_role''s degraded check opens an incident, which asks auto-heal once (opened)'
);
select pg_temp.remark();
set local role service_role;
insert into vigil.checks (service_id, status, error) values ('00000000-0000-4000-8000-000000000652', 'down', 'connection refused');
reset role;
select results_eq(
  $$select body ->> 'reason' from pg_temp.since_mark()$$,
  $$values ('worsened'::text)$$,
  'the down check worsens that incident to critical, which asks once more (worsened)'
);
select pg_temp.remark();
set local role service_role;
insert into vigil.checks (service_id, status, error) values ('00000000-0000-4000-8000-000000000652', 'down', 'connection refused');
reset role;
select is_empty($$select * from pg_temp.since_mark()$$, 'another down check of the same incident asks for nothing');
update vigil.incidents set status = 'resolved', resolved_at = now() where service_id = '00000000-0000-4000-8000-000000000652';

-- ─── Retries ────────────────────────────────────────────────────────────────────────────────
insert into vigil.incidents (service_id, kind, severity, title, heal_attempts, last_heal_at, escalation_level,
                             heal_claimed_until, heal_claimed_by, status, resolved_at)
values
  ('00000000-0000-4000-8000-000000000651', 'r_one', 'critical', 't065 retry one attempt', 1, now() - interval '5 minutes', 1, null, null, 'open', null),
  ('00000000-0000-4000-8000-000000000651', 'r_two', 'critical', 't065 retry two attempts, lease ran out', 2, now() - interval '5 minutes', 2,
   now() - interval '1 second', 'worker-dead', 'open', null),
  ('00000000-0000-4000-8000-000000000651', 'n_zero', 'critical', 't065 no attempt yet', 0, null, 0, null, null, 'open', null),
  -- Refused (a protected blocker): no attempt used, on-call paged, asked again in case it changed.
  ('00000000-0000-4000-8000-000000000651', 'r_refused', 'critical', 't065 refused', 0, now() - interval '15 minutes', 3, null, null, 'open', null),
  -- Refused too recently (every five waits), and refused but acknowledged (a human owns it).
  ('00000000-0000-4000-8000-000000000651', 'n_refused_recent', 'critical', 't065 refused 5 minutes ago', 0, now() - interval '5 minutes', 3, null, null, 'open', null),
  ('00000000-0000-4000-8000-000000000651', 'n_three', 'critical', 't065 three attempts', 3, now() - interval '5 minutes', 3, null, null, 'open', null),
  ('00000000-0000-4000-8000-000000000651', 'n_senior', 'critical', 't065 senior paged', 2, now() - interval '5 minutes', 4, null, null, 'open', null),
  ('00000000-0000-4000-8000-000000000651', 'n_recent', 'critical', 't065 healed 30 s ago', 1, now() - interval '30 seconds', 1, null, null, 'open', null),
  ('00000000-0000-4000-8000-000000000651', 'n_claimed', 'critical', 't065 being healed', 1, now() - interval '5 minutes', 1,
   now() + interval '1 minute', 'worker-live', 'open', null),
  ('00000000-0000-4000-8000-000000000651', 'n_resolved', 'critical', 't065 resolved since', 1, now() - interval '5 minutes', 1, null, null,
   'resolved', now());
select pg_temp.remark();
create temp table retry_titles as
select i.id, i.title from vigil.incidents i where i.title like 't065 %' and i.kind in ('r_one', 'r_two', 'r_refused', 'n_refused_recent', 'n_zero', 'n_three', 'n_senior', 'n_recent', 'n_claimed', 'n_resolved');
select is((select count(*) from retry_titles), 10::bigint, 'precondition: the ten retry cases exist');

-- Each call's asks, by title.
create function pg_temp.asked() returns setof text language sql as $$
  select t.title from pg_temp.since_mark() v join retry_titles t on t.id::text = v.body ->> 'incident_id'
   where v.fn = 'auto-heal' and v.body ->> 'reason' = 'retry'
$$;

create temp table returned as select vigil.retry_heals() as n;
select set_eq($$select * from pg_temp.asked()$$,
              array['t065 retry one attempt', 't065 retry two attempts, lease ran out', 't065 refused'],
              'retry_heals asks for the incident with 1 attempt, the one with 2 whose lease ran out and the refused one, and for none of the others');
select is((select count(*) from pg_temp.asked()), 3::bigint, 'each is asked once');
select results_eq(
  $$select v.body from pg_temp.since_mark() v join retry_titles t on t.id::text = v.body ->> 'incident_id'
     where t.title = 't065 retry one attempt'$$,
  $$select jsonb_build_object('incident_id', id, 'reason', 'retry') from retry_titles where title = 't065 retry one attempt'$$,
  'the retry asks with {incident_id, reason: retry}'
);
select is((select n from returned)::bigint, (select count(*) from pg_temp.since_mark() where fn = 'auto-heal' and body ->> 'reason' = 'retry'),
          'retry_heals returns how many invocations it queued');
select cmp_ok((select n from returned), '>=', 3, 'and that is at least this file''s three');
select is_empty(
  $$select * from pg_temp.asked() a(title) where title in ('t065 no attempt yet', 't065 three attempts', 't065 senior paged')$$,
  'not asked: never healed yet (the trigger asks for those), three attempts made, the senior already paged'
);

select pg_temp.remark();
do $$ begin perform vigil.retry_heals(interval '10 minutes'); end $$;
select is_empty($$select * from pg_temp.asked()$$, 'with a 10-minute wait, heals that ended 5 minutes ago are not retried yet');
select pg_temp.remark();
do $$ begin perform vigil.retry_heals(interval '10 seconds'); end $$;
select set_eq($$select * from pg_temp.asked()$$,
              array['t065 retry one attempt', 't065 retry two attempts, lease ran out', 't065 refused',
                    't065 refused 5 minutes ago', 't065 healed 30 s ago'],
              'with a 10-second wait, the heal that ended 30 seconds ago is retried too; the claimed and resolved ones still are not');

-- ─── The job ────────────────────────────────────────────────────────────────────────────────
select results_eq(
  $$select count(*)::int, min(schedule) collate "default", min(command) collate "default", bool_and(active),
           min(username) collate "default", min(database) collate "default"
      from cron.job where jobname = 'vigil-heal-retry'$$,
  $$values (1, '* * * * *'::text, 'select vigil.retry_heals()'::text, true, 'postgres'::text, current_database()::text collate "default")$$,
  'vigil-heal-retry runs vigil.retry_heals() every minute, once, active, as postgres in this database'
);

-- ─── The trigger ────────────────────────────────────────────────────────────────────────────
-- As whoever writes the incident (service_role or postgres, both may call vigil.invoke); it never
-- changes the row it fires for.
select isnt_definer('vigil', 'request_heal', array[]::name[], 'vigil.request_heal runs as the writer of the incident');
select ok(has_function_privilege('service_role', 'vigil.invoke(text,jsonb)', 'execute'),
          'service_role, which writes incidents, may call vigil.invoke');
set local role service_role;
insert into vigil.incidents (service_id, kind, severity, title)
values ('00000000-0000-4000-8000-000000000651', 'by_service_role', 'warning', 't065 by service_role');
reset role;
select results_eq(
  $$select body ->> 'reason' from vigil.invocations where fn = 'auto-heal'
      and body ->> 'incident_id' = (select id::text from vigil.incidents where title = 't065 by service_role')$$,
  $$values ('opened'::text)$$,
  'an incident service_role opens asks auto-heal once'
);

select * from finish();
rollback;
