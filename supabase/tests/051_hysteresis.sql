-- Status with hysteresis, applied by vigil.apply_check() on every check: a service turns down only
-- after failure_threshold consecutive down checks, degraded after that many failures of either
-- kind, and healthy again after success_threshold consecutive healthy ones. Each change (and only
-- a change) writes a vigil.status_transitions row naming the check that caused it.
begin;
set search_path = extensions, public;
select plan(52);

insert into vigil.services (id, name, kind, config) values
  ('00000000-0000-4000-8000-000000000511', 't051-default', 'http', '{"url":"https://t051.example.com"}'),
  ('00000000-0000-4000-8000-000000000512', 't051-mixed', 'http', '{"url":"https://t051.example.com"}'),
  ('00000000-0000-4000-8000-000000000515', 't051-batch', 'http', '{"url":"https://t051.example.com"}');
insert into vigil.services (id, name, kind, config, failure_threshold, success_threshold) values
  ('00000000-0000-4000-8000-000000000513', 't051-twitchy', 'http', '{"url":"https://t051.example.com"}', 1, 1),
  ('00000000-0000-4000-8000-000000000514', 't051-patient', 'http', '{"url":"https://t051.example.com"}', 5, 3);

-- Inserts one check (a down one with an error) and returns the service's status after it;
-- a label keeps the check's id for the transition assertions.
create temp table fed (label text primary key, check_id bigint not null);
create function pg_temp.feed(p_service uuid, p_status vigil.check_status, p_label text default null)
returns vigil.service_status
language plpgsql as $$
declare
  new_id bigint;
  result vigil.service_status;
begin
  insert into vigil.checks (service_id, status, error)
  values (p_service, p_status, case when p_status = 'down' then 'connection refused' end)
  returning id into new_id;
  if p_label is not null then
    insert into fed values (p_label, new_id);
  end if;
  select status into result from vigil.services where id = p_service;
  return result;
end
$$;
create function pg_temp.streaks(p_service uuid) returns text
language sql as $$
  select format('failure %s, down %s, success %s', failure_streak, down_streak, success_streak)
    from vigil.services where id = p_service
$$;

select results_eq(
  $$select failure_threshold, success_threshold, status::text, failure_streak, down_streak, success_streak, status_changed_at
      from vigil.services where id = '00000000-0000-4000-8000-000000000511'$$,
  $$values (3, 2, 'unknown'::text, 0, 0, 0, null::timestamptz)$$,
  'a new service has thresholds 3 and 2, status unknown and empty streaks'
);

-- ─── Defaults: 3 failures, 2 successes ──────────────────────────────────────────────────────
select is(pg_temp.feed('00000000-0000-4000-8000-000000000511', 'healthy'), 'unknown', 'one healthy check is not yet enough to be healthy');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000511', 'healthy', 'a-healthy'), 'healthy', 'the second consecutive healthy check makes it healthy');
select ok((select status_changed_at is not null from vigil.services where id = '00000000-0000-4000-8000-000000000511'),
          'status_changed_at is set when the status changes');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000511', 'down'), 'healthy', 'one down check leaves it healthy');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000511', 'down'), 'healthy', 'two down checks leave it healthy');
select is(pg_temp.streaks('00000000-0000-4000-8000-000000000511'), 'failure 2, down 2, success 0', 'two downs: failure and down streaks are 2');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000511', 'healthy'), 'healthy', 'a healthy check after two downs keeps it healthy');
select is(pg_temp.streaks('00000000-0000-4000-8000-000000000511'), 'failure 0, down 0, success 1', 'the healthy check reset both failure streaks');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000511', 'down'), 'healthy', 'after the reset, one down is not enough');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000511', 'down'), 'healthy', 'after the reset, two downs are not enough');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000511', 'down', 'a-down'), 'down', 'the third consecutive down check makes it down');
select is(pg_temp.streaks('00000000-0000-4000-8000-000000000511'), 'failure 3, down 3, success 0', 'three downs: failure and down streaks are 3');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000511', 'down'), 'down', 'a fourth down keeps it down');
-- Easing: a degraded answer after down means it answers again, if badly.
select is(pg_temp.feed('00000000-0000-4000-8000-000000000511', 'degraded', 'a-eased'), 'degraded', 'a degraded check eases down to degraded');
select is(pg_temp.streaks('00000000-0000-4000-8000-000000000511'), 'failure 5, down 0, success 0',
          'easing: the failure streak goes on, the down streak restarts');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000511', 'down'), 'degraded', 'one down after easing does not make it down again');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000511', 'healthy'), 'degraded', 'one healthy check does not make it healthy');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000511', 'healthy', 'a-recovered'), 'healthy', 'the second healthy check makes it healthy');
select is(pg_temp.streaks('00000000-0000-4000-8000-000000000511'), 'failure 0, down 0, success 2', 'recovered: success streak 2, failure streaks 0');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000511', 'healthy'), 'healthy', 'further healthy checks keep it healthy');

-- Exactly one transition per change, none for the checks that changed nothing, each naming its check.
select results_eq(
  $$select t.from_status::text, t.to_status::text, f.label, t.reason
      from vigil.status_transitions t left join fed f on f.check_id = t.check_id
     where t.service_id = '00000000-0000-4000-8000-000000000511' order by t.id$$,
  $$values ('unknown'::text, 'healthy'::text, 'a-healthy'::text, '2 consecutive healthy checks'::text),
           ('healthy', 'down', 'a-down', '3 consecutive failed checks (3 down): connection refused'),
           ('down', 'degraded', 'a-eased', '5 consecutive failed checks (0 down): degraded'),
           ('degraded', 'healthy', 'a-recovered', '2 consecutive healthy checks')$$,
  'the default service has exactly four transitions, each with from, to, the causing check and a reason'
);
select is((select count(*) from vigil.checks where service_id = '00000000-0000-4000-8000-000000000511'), 14::bigint,
          'fourteen checks were applied to produce those four transitions');
select is((select last_checked_at from vigil.services where id = '00000000-0000-4000-8000-000000000511'),
          (select max(checked_at) from vigil.checks where service_id = '00000000-0000-4000-8000-000000000511'),
          'last_checked_at is the time of the latest check');

-- ─── Failures of both kinds count towards degraded ──────────────────────────────────────────
select is(pg_temp.feed('00000000-0000-4000-8000-000000000512', 'healthy'), 'unknown', 'mixed: first healthy');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000512', 'healthy'), 'healthy', 'mixed: healthy after two');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000512', 'down'), 'healthy', 'mixed: down 1 of 3');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000512', 'degraded'), 'healthy', 'mixed: degraded 2 of 3');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000512', 'down', 'b-degraded'), 'degraded',
          'three consecutive failures mixing down and degraded make it degraded, not down');
select is(pg_temp.streaks('00000000-0000-4000-8000-000000000512'), 'failure 3, down 1, success 0',
          'mixed: failure streak 3, down streak 1 (the degraded check broke it)');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000512', 'down'), 'degraded', 'mixed: two downs in a row stay degraded');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000512', 'down', 'b-down'), 'down', 'mixed: three downs in a row make it down');
select results_eq(
  $$select t.from_status::text, t.to_status::text, f.label, t.reason
      from vigil.status_transitions t left join fed f on f.check_id = t.check_id
     where t.service_id = '00000000-0000-4000-8000-000000000512' and t.from_status <> 'unknown' order by t.id$$,
  $$values ('healthy'::text, 'degraded'::text, 'b-degraded'::text, '3 consecutive failed checks (1 down): connection refused'::text),
           ('degraded', 'down', 'b-down', '5 consecutive failed checks (3 down): connection refused')$$,
  'mixed: healthy → degraded → down, each at its causing check'
);

-- ─── Per-service thresholds ─────────────────────────────────────────────────────────────────
select is(pg_temp.feed('00000000-0000-4000-8000-000000000513', 'down'), 'down', 'thresholds 1/1: a single down check makes it down');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000513', 'healthy'), 'healthy', 'thresholds 1/1: a single healthy check makes it healthy');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000513', 'degraded'), 'degraded', 'thresholds 1/1: a single degraded check makes it degraded');
select is((select count(*) from vigil.status_transitions where service_id = '00000000-0000-4000-8000-000000000513'), 3::bigint,
          'thresholds 1/1: three checks, three transitions');

select is(pg_temp.feed('00000000-0000-4000-8000-000000000514', 'healthy'), 'unknown', 'thresholds 5/3: healthy 1 of 3');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000514', 'healthy'), 'unknown', 'thresholds 5/3: healthy 2 of 3 is still not enough');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000514', 'healthy'), 'healthy', 'thresholds 5/3: the third healthy check makes it healthy');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000514', 'down'), 'healthy', 'thresholds 5/3: down 1 of 5');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000514', 'down'), 'healthy', 'thresholds 5/3: down 2 of 5');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000514', 'down'), 'healthy', 'thresholds 5/3: down 3 of 5 (the default would be down now)');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000514', 'down'), 'healthy', 'thresholds 5/3: down 4 of 5');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000514', 'down'), 'down', 'thresholds 5/3: the fifth down makes it down');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000514', 'healthy'), 'down', 'thresholds 5/3: healthy 1 of 3 after down');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000514', 'healthy'), 'down', 'thresholds 5/3: healthy 2 of 3 after down (the default would be healthy now)');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000514', 'healthy'), 'healthy', 'thresholds 5/3: the third healthy check recovers it');
select results_eq(
  $$select from_status::text, to_status::text, reason from vigil.status_transitions
     where service_id = '00000000-0000-4000-8000-000000000514' order by id$$,
  $$values ('unknown'::text, 'healthy'::text, '3 consecutive healthy checks'::text),
           ('healthy', 'down', '5 consecutive failed checks (5 down): connection refused'),
           ('down', 'healthy', '3 consecutive healthy checks')$$,
  'thresholds 5/3: exactly three transitions, with the streak lengths in the reasons'
);

-- ─── Several checks in one statement are applied in order ───────────────────────────────────
insert into vigil.checks (service_id, status, error) values
  ('00000000-0000-4000-8000-000000000515', 'down', 'batch 1'),
  ('00000000-0000-4000-8000-000000000515', 'down', 'batch 2'),
  ('00000000-0000-4000-8000-000000000515', 'down', 'batch 3'),
  ('00000000-0000-4000-8000-000000000515', 'down', 'batch 4');
select results_eq(
  $$select s.status::text, s.down_streak, count(t.*)
      from vigil.services s left join vigil.status_transitions t on t.service_id = s.id
     where s.id = '00000000-0000-4000-8000-000000000515' group by s.status, s.down_streak$$,
  $$values ('down'::text, 4, 1::bigint)$$,
  'four downs in one INSERT: down, down streak 4, one transition'
);
select is((select t.check_id from vigil.status_transitions t where t.service_id = '00000000-0000-4000-8000-000000000515'),
          (select c.id from vigil.checks c where c.service_id = '00000000-0000-4000-8000-000000000515' and c.error = 'batch 3'),
          'the transition names the third check of the batch, the one that crossed the threshold');

select throws_ok($$update vigil.services set failure_threshold = 0 where id = '00000000-0000-4000-8000-000000000511'$$, '23514',
  'new row for relation "services" violates check constraint "service_failure_threshold"', 'a failure threshold of 0 is refused');

select * from finish();
rollback;
