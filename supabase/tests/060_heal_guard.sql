-- vigil.heal_guard(service, strategy): whether a heal may go ahead now, and why not. In order: the
-- kill switch of the service's environment, the service's own heal switch, the strategy's policy
-- (mode off), the hourly rate limit (result rows that did something: succeeded, failed, undone),
-- and the circuit breaker per service and strategy (judged once it has breaker_min_heals results; open
-- when more than breaker_failure_ratio of the last breaker_window results failed or were undone and
-- the latest failure is within the cool-down; half-open after it; closed once the latest succeeded).
--
-- Every service here is new and every strategy name is this file's own, so rows the live engine
-- writes for other services cannot move the counts.
begin;
set search_path = extensions, public;
select plan(42);

-- The failsafe settings this file reasons about, set explicitly: another run may have left the
-- shared stack's qa or prod switched (the values are the defaults, which 030 checks).
update vigil.settings
   set kill_switch = false, dry_run = false, heal_max_per_hour = 10, breaker_window = 6, breaker_min_heals = 3,
       breaker_failure_ratio = 0.5, breaker_cooldown_minutes = 30, protected_applications = array['t060-batch']
 where environment in ('qa', 'prod');

insert into vigil.services (id, name, kind, environment) values
  ('00000000-0000-4000-8000-000000000601', 't060-plain', 'postgres', 'prod'),
  ('00000000-0000-4000-8000-000000000602', 't060-qa', 'postgres', 'qa'),
  ('00000000-0000-4000-8000-000000000603', 't060-rate', 'postgres', 'prod'),
  ('00000000-0000-4000-8000-000000000604', 't060-old', 'postgres', 'prod'),
  ('00000000-0000-4000-8000-000000000605', 't060-noop', 'postgres', 'prod'),
  ('00000000-0000-4000-8000-000000000606', 't060-open', 'postgres', 'prod'),
  ('00000000-0000-4000-8000-000000000607', 't060-half', 'postgres', 'prod'),
  ('00000000-0000-4000-8000-000000000608', 't060-closed', 'postgres', 'prod'),
  ('00000000-0000-4000-8000-000000000609', 't060-even', 'postgres', 'prod'),
  ('00000000-0000-4000-8000-00000000060a', 't060-window', 'postgres', 'prod'),
  ('00000000-0000-4000-8000-00000000060b', 't060-few', 'postgres', 'prod');

-- Result rows for a service and strategy, oldest first, so their order in the chain (seq) is their
-- order in time.
create function pg_temp.results(p_service uuid, p_strategy text, p_outcomes text[], p_ages interval[])
returns void
language sql
as $$
  insert into vigil.heal_actions (action_id, phase, service_id, strategy, attempt, reason, outcome, created_at)
  select gen_random_uuid(), 'result', p_service, p_strategy, 1, 't060', u.outcome::vigil.heal_outcome, now() - u.age
    from unnest(p_outcomes, p_ages) with ordinality as u(outcome, age, n)
   order by u.n
$$;

-- ─── Allowed, and what the engine needs to know ─────────────────────────────────────────────
select is(vigil.heal_guard(gen_random_uuid(), 'restart_service'), '{"allowed": false, "reason": "unknown service"}'::jsonb,
          'an unknown service is refused');
select is(
  vigil.heal_guard('00000000-0000-4000-8000-000000000601', 'restart_service'),
  jsonb_build_object('allowed', true, 'breaker', 'closed', 'attempts_last_hour', 0, 'mode', 'default', 'dry_run', false,
                     'protected_roles', (select to_jsonb(protected_roles) from vigil.settings where environment = 'prod'),
                     'protected_applications', '["t060-batch"]'::jsonb),
  'with nothing against it a heal is allowed: breaker closed, no attempts, default mode, not a dry run, the protected lists of its environment'
);
select ok(vigil.heal_guard('00000000-0000-4000-8000-000000000601', 'restart_service') -> 'protected_roles' ? 'supabase_admin',
          'the protected roles reach the engine (supabase_admin among them)');

update vigil.settings set dry_run = true where environment = 'prod';
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000601', 'restart_service') -> 'dry_run', 'true'::jsonb,
          'a dry run is allowed and says dry_run: true (the engine records, acts on nothing)');
update vigil.settings set dry_run = false where environment = 'prod';

insert into vigil.heal_policies (environment, strategy, mode) values ('prod', 'restart_service', 'approval');
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000601', 'restart_service') - array['protected_roles', 'protected_applications'],
          '{"allowed": true, "breaker": "closed", "attempts_last_hour": 0, "mode": "approval", "dry_run": false}'::jsonb,
          'a strategy in approval mode is allowed and carries mode approval');
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000602', 'restart_service') ->> 'mode', 'default',
          'the prod policy does not apply to the same strategy in qa');

-- ─── Switches ───────────────────────────────────────────────────────────────────────────────
update vigil.heal_policies set mode = 'off' where environment = 'prod' and strategy = 'restart_service';
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000601', 'restart_service'),
          '{"allowed": false, "reason": "strategy restart_service is off in prod"}'::jsonb,
          'a strategy whose policy is off is refused, naming the strategy and environment');
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000601', 't060_other') ->> 'allowed', 'true',
          'another strategy on the same service is still allowed');
delete from vigil.heal_policies where environment = 'prod' and strategy = 'restart_service';

update vigil.settings set kill_switch = true where environment = 'prod';
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000601', 'restart_service'),
          '{"allowed": false, "reason": "the kill switch is on for prod"}'::jsonb,
          'the prod kill switch refuses a prod heal');
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000601', 't060_other'),
          '{"allowed": false, "reason": "the kill switch is on for prod"}'::jsonb,
          'the kill switch refuses every strategy');
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000602', 'restart_service') ->> 'allowed', 'true',
          'the prod kill switch does not stop a qa heal (one switch per environment)');
update vigil.settings set kill_switch = false where environment = 'prod';
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000601', 'restart_service') ->> 'allowed', 'true',
          'with the kill switch off again the heal is allowed');

update vigil.services set heal_enabled = false where id = '00000000-0000-4000-8000-000000000601';
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000601', 'restart_service'),
          '{"allowed": false, "reason": "healing is switched off for t060-plain"}'::jsonb,
          'a service whose heal_enabled is false is refused, naming it');
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000603', 'restart_service') ->> 'allowed', 'true',
          'another service in the same environment is still allowed');
update vigil.services set heal_enabled = true where id = '00000000-0000-4000-8000-000000000601';

-- ─── Rate limit: per service, across strategies, results that did something, last hour ──────
select pg_temp.results('00000000-0000-4000-8000-000000000603', 'restart_service',
  array['succeeded', 'failed', 'succeeded', 'undone', 'succeeded', 'succeeded'],
  array[interval '55 minutes', '50 minutes', '40 minutes', '30 minutes', '20 minutes', '10 minutes']);
select pg_temp.results('00000000-0000-4000-8000-000000000603', 't060_other',
  array['succeeded', 'succeeded', 'succeeded'], array[interval '9 minutes', '8 minutes', '7 minutes']);
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000603', 't060_third') - array['protected_roles', 'protected_applications'],
          '{"allowed": true, "breaker": "closed", "attempts_last_hour": 9, "mode": "default", "dry_run": false}'::jsonb,
          'nine heals in the last hour (two strategies): allowed, attempts_last_hour 9');
select pg_temp.results('00000000-0000-4000-8000-000000000603', 't060_other', array['failed'], array[interval '1 minute']);
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000603', 't060_third'),
          '{"allowed": false, "attempts_last_hour": 10, "reason": "rate limit: 10 heals of t060-rate in the last hour (at most 10)"}'::jsonb,
          'the tenth heal in the hour reaches the limit: refused, naming the count, the service and the limit');
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000603', 'restart_service') ->> 'reason',
          'rate limit: 10 heals of t060-rate in the last hour (at most 10)',
          'the limit is per service: every strategy on it is refused');
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000601', 'restart_service') ->> 'allowed', 'true',
          'another service is not limited by this one''s heals');
update vigil.settings set heal_max_per_hour = 11 where environment = 'prod';
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000603', 't060_third') ->> 'attempts_last_hour', '10',
          'the limit is data: at 11 an hour the same ten heals are allowed');
update vigil.settings set heal_max_per_hour = 10 where environment = 'prod';

select pg_temp.results('00000000-0000-4000-8000-000000000604', 'restart_service',
  array['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded'],
  array[interval '3 hours', '2 hours', '90 minutes', '80 minutes', '70 minutes', '65 minutes', '64 minutes', '63 minutes', '62 minutes', '61 minutes']);
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000604', 'restart_service') ->> 'attempts_last_hour', '0',
          'ten heals more than an hour ago do not count: allowed, attempts_last_hour 0');

select pg_temp.results('00000000-0000-4000-8000-000000000605', 'restart_service',
  array['dry_run', 'dry_run', 'dry_run', 'dry_run', 'dry_run', 'skipped', 'skipped', 'skipped', 'skipped', 'skipped', 'skipped'],
  array[interval '30 minutes', '29 minutes', '28 minutes', '27 minutes', '26 minutes', '25 minutes', '24 minutes', '23 minutes',
        '22 minutes', '21 minutes', '20 minutes']);
insert into vigil.heal_actions (action_id, phase, service_id, strategy, attempt, reason, outcome)
select gen_random_uuid(), 'intent', '00000000-0000-4000-8000-000000000605', 'restart_service', 1, 't060', o::vigil.heal_outcome
  from unnest(array['pending', 'pending', 'pending', 'pending', 'pending', 'awaiting_approval', 'awaiting_approval',
                    'awaiting_approval', 'awaiting_approval', 'awaiting_approval']) o;
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000605', 'restart_service') ->> 'attempts_last_hour', '0',
          'dry_run and skipped results, and intent rows, do not count toward the limit');

-- ─── Circuit breaker, per service and strategy ──────────────────────────────────────────────
select pg_temp.results('00000000-0000-4000-8000-000000000606', 'restart_service',
  array['succeeded', 'failed', 'succeeded', 'undone', 'failed', 'failed'],
  array[interval '55 minutes', '45 minutes', '35 minutes', '25 minutes', '15 minutes', '5 minutes']);
select is(
  vigil.heal_guard('00000000-0000-4000-8000-000000000606', 'restart_service'),
  jsonb_build_object('allowed', false, 'breaker', 'open',
    'reason', format('circuit open: 4 of the last 6 heals of t060-open by restart_service failed; half-open at %s',
                     to_char(now() - interval '5 minutes' + interval '30 minutes', 'YYYY-MM-DD HH24:MI:SS TZ'))),
  '4 of the last 6 failed or undone, the latest 5 minutes ago: the breaker is open, and says when it half-opens'
);
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000606', 't060_other') - array['protected_roles', 'protected_applications'],
          '{"allowed": true, "breaker": "closed", "attempts_last_hour": 6, "mode": "default", "dry_run": false}'::jsonb,
          'another strategy on the same service is unaffected by that breaker (the six heals still count toward the rate)');
select pg_temp.results('00000000-0000-4000-8000-000000000606', 't060_other', array['failed'], array[interval '4 minutes']);
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000606', 't060_other') ->> 'breaker', 'closed',
          'its own single failure does not open the other strategy''s breaker: the first strategy''s failures are not counted for it');
-- What the engine writes while the breaker holds it back must not close it.
select pg_temp.results('00000000-0000-4000-8000-000000000606', 'restart_service', array['skipped', 'dry_run'],
                       array[interval '2 minutes', '1 minute']);
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000606', 'restart_service') ->> 'breaker', 'open',
          'skipped and dry_run results after the failures leave the breaker open');
update vigil.settings set breaker_cooldown_minutes = 3 where environment = 'prod';
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000606', 'restart_service') ->> 'breaker', 'half_open',
          'the cool-down is data: at 3 minutes the same breaker is half-open');
update vigil.settings set breaker_cooldown_minutes = 30, breaker_failure_ratio = 0.7 where environment = 'prod';
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000606', 'restart_service') ->> 'breaker', 'closed',
          'the ratio is data: at 0.7, 4 of 6 failed keeps the breaker closed');
update vigil.settings set breaker_failure_ratio = 0.5 where environment = 'prod';

select pg_temp.results('00000000-0000-4000-8000-000000000607', 'restart_service',
  array['failed', 'succeeded', 'failed', 'succeeded', 'failed', 'failed'],
  array[interval '80 minutes', '70 minutes', '60 minutes', '50 minutes', '40 minutes', '31 minutes']);
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000607', 'restart_service') - array['protected_roles', 'protected_applications'],
          '{"allowed": true, "breaker": "half_open", "attempts_last_hour": 3, "mode": "default", "dry_run": false}'::jsonb,
          '4 of 6 failed but the latest failure was 31 minutes ago: past the cool-down, allowed with the breaker half-open');
-- Half-open lets one try through: if it fails, the breaker opens again at once.
select pg_temp.results('00000000-0000-4000-8000-000000000607', 'restart_service', array['failed'], array[interval '0 minutes']);
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000607', 'restart_service') ->> 'breaker', 'open',
          'a failed half-open try opens the breaker again');

select pg_temp.results('00000000-0000-4000-8000-000000000608', 'restart_service',
  array['failed', 'failed', 'undone', 'failed', 'failed', 'succeeded'],
  array[interval '30 minutes', '25 minutes', '20 minutes', '15 minutes', '10 minutes', '2 minutes']);
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000608', 'restart_service') - array['protected_roles', 'protected_applications'],
          '{"allowed": true, "breaker": "closed", "attempts_last_hour": 6, "mode": "default", "dry_run": false}'::jsonb,
          '5 of 6 failed but the latest succeeded: the breaker is closed');

select pg_temp.results('00000000-0000-4000-8000-000000000609', 'restart_service',
  array['succeeded', 'failed', 'succeeded', 'failed', 'succeeded', 'failed'],
  array[interval '30 minutes', '25 minutes', '20 minutes', '15 minutes', '10 minutes', '1 minute']);
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000609', 'restart_service') ->> 'breaker', 'closed',
          'exactly half failed (3 of 6), the latest a minute ago: not more than the ratio, the breaker stays closed');

-- Only the last breaker_window results count: four old failures fall out of the window.
select pg_temp.results('00000000-0000-4000-8000-00000000060a', 'restart_service',
  array['failed', 'failed', 'failed', 'failed', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'failed', 'failed'],
  array[interval '5 hours', '4 hours', '3 hours', '2 hours', '100 minutes', '90 minutes', '80 minutes', '70 minutes',
        '10 minutes', '1 minute']);
select is(vigil.heal_guard('00000000-0000-4000-8000-00000000060a', 'restart_service') ->> 'breaker', 'closed',
          '6 of 10 failed overall, but only 2 of the last 6: the breaker is closed');
update vigil.settings set breaker_window = 10 where environment = 'prod';
select is(vigil.heal_guard('00000000-0000-4000-8000-00000000060a', 'restart_service') ->> 'breaker', 'open',
          'the window is data: over the last 10, 6 failed and the breaker opens');
update vigil.settings set breaker_window = 6 where environment = 'prod';

-- The breaker judges a strategy only from breaker_min_heals results on, so the ladder's first
-- attempts are not cut short.
select pg_temp.results('00000000-0000-4000-8000-00000000060b', 'restart_service', array['failed', 'failed'],
                       array[interval '3 minutes', '1 minute']);
select is(vigil.heal_guard('00000000-0000-4000-8000-00000000060b', 'restart_service') ->> 'breaker', 'closed',
          'two heals, both failed a minute ago: fewer than 3, the breaker does not judge yet (closed)');
update vigil.settings set breaker_min_heals = 2 where environment = 'prod';
select is(vigil.heal_guard('00000000-0000-4000-8000-00000000060b', 'restart_service') ->> 'breaker', 'open',
          'the minimum is data: from 2 heals on, the same two failures open the breaker');
update vigil.settings set breaker_min_heals = 3 where environment = 'prod';
select pg_temp.results('00000000-0000-4000-8000-00000000060b', 'restart_service', array['failed'], array[interval '0 minutes']);
select is(vigil.heal_guard('00000000-0000-4000-8000-00000000060b', 'restart_service') ->> 'breaker', 'open',
          'the third failure opens it at the default minimum of 3');

-- The switches come before the breaker and the limit: a refused heal says the switch, not the circuit.
update vigil.settings set kill_switch = true where environment = 'prod';
select is(vigil.heal_guard('00000000-0000-4000-8000-000000000606', 'restart_service') ->> 'reason', 'the kill switch is on for prod',
          'with the kill switch on, an open breaker''s service is refused for the kill switch');
update vigil.settings set kill_switch = false where environment = 'prod';

-- heal_guard only reads.
select is(provolatile::text, 's', 'vigil.heal_guard is stable') from pg_proc where oid = 'vigil.heal_guard(uuid,text)'::regprocedure;

-- ─── Policies ───────────────────────────────────────────────────────────────────────────────
select throws_like($$insert into vigil.heal_policies (environment, strategy, mode) values ('prod', 'Restart Now', 'auto')$$,
  '%unknown strategy "Restart Now"%', 'a policy''s strategy must be one Vigil has');
select throws_ok($$insert into vigil.heal_policies (environment, strategy, mode, config) values ('prod', 'purge_cdn', 'auto', '[]')$$, '23514',
  'new row for relation "heal_policies" violates check constraint "heal_policy_config_is_object"', 'a policy''s config must be an object');
select throws_ok($$insert into vigil.heal_policies (environment, strategy, mode) values ('prod', 't060_mode', 'sometimes')$$, '22P02',
  'invalid input value for enum vigil.heal_mode: "sometimes"', 'a policy''s mode is auto, approval, suggest or off');
insert into vigil.heal_policies (environment, strategy, mode, updated_at) values ('qa', 'rollback_deploy', 'auto', '2000-01-01');
update vigil.heal_policies set mode = 'suggest' where environment = 'qa' and strategy = 'rollback_deploy';
select is((select updated_at from vigil.heal_policies where environment = 'qa' and strategy = 'rollback_deploy'), now(),
          'updating a policy sets its updated_at');

select * from finish();
rollback;
