-- vigil.settings: one row per environment with the spec's thresholds, and CHECK constraints
-- that keep every warning threshold positive and below its critical one, percentages <= 100,
-- and the heal failsafes (rate limit, circuit breaker, protected roles) within sane bounds.
begin;
set search_path = extensions, public;
select plan(55);

select results_eq($$select environment::text as env from vigil.settings order by environment$$,
                  $$values ('dev'), ('qa'), ('prod')$$, 'settings has exactly the rows dev, qa and prod');
select enum_has_labels('vigil', 'environment', array['dev', 'qa', 'prod']);

-- The spec's defaults in each seeded row (the column defaults are checked further down).
select results_eq(
  $$select environment::text as env, kill_switch, dry_run,
           api_p95_warning_ms, api_p95_critical_ms, db_query_warning_ms, db_query_critical_ms,
           error_rate_warning_pct, error_rate_critical_pct, memory_warning_pct, memory_critical_pct,
           cpu_warning_pct, cpu_critical_pct, deploy_warning_minutes, deploy_critical_minutes, slow_query_ms
      from vigil.settings order by environment$$,
  $$select e, false, false, 200, 500, 100, 500, 0.1::numeric, 1::numeric, 60::numeric, 85::numeric,
           70::numeric, 90::numeric, 5, 15, 1000
      from unnest(array['dev', 'qa', 'prod']) with ordinality as u(e, o) order by o$$,
  'dev, qa and prod carry the spec defaults: p95 200/500 ms, query 100/500 ms, errors 0.1/1 %, memory 60/85 %, cpu 70/90 %, deploy 5/15 min, slow query 1000 ms, switches off'
);

-- The heal failsafes' defaults in each seeded row: 10 heals per service an hour, a breaker over the
-- last 6 results that judges from 3 heals on, opens above half failed and cools down for 30 minutes,
-- Supabase's own roles protected.
select results_eq(
  $$select environment::text as env, heal_max_per_hour, breaker_window, breaker_min_heals, breaker_failure_ratio,
           breaker_cooldown_minutes, protected_roles, protected_applications
      from vigil.settings order by environment$$,
  $$select e, 10, 6, 3, 0.50::numeric, 30,
           array['supabase_admin', 'supabase_auth_admin', 'supabase_storage_admin', 'supabase_realtime_admin',
                 'supabase_replication_admin', 'supabase_read_only_user', 'authenticator', 'pgbouncer'],
           '{}'::text[]
      from unnest(array['dev', 'qa', 'prod']) with ordinality as u(e, o) order by o$$,
  'dev, qa and prod carry the heal failsafe defaults: 10 an hour, breaker 6 / from 3 / 0.5 / 30 min, Supabase roles protected'
);

-- api_p95_thresholds
select throws_ok($$update vigil.settings set api_p95_warning_ms = 500 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "api_p95_thresholds"', 'api p95: warning = critical is rejected');
select throws_ok($$update vigil.settings set api_p95_warning_ms = 600 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "api_p95_thresholds"', 'api p95: warning > critical is rejected');
select throws_ok($$update vigil.settings set api_p95_warning_ms = 0 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "api_p95_thresholds"', 'api p95: a zero warning is rejected');
select throws_ok($$update vigil.settings set api_p95_warning_ms = -1, api_p95_critical_ms = -2 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "api_p95_thresholds"', 'api p95: negative values are rejected');
-- db_query_thresholds
select throws_ok($$update vigil.settings set db_query_critical_ms = 100 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "db_query_thresholds"', 'db query: warning = critical is rejected');
select throws_ok($$update vigil.settings set db_query_warning_ms = 501 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "db_query_thresholds"', 'db query: warning > critical is rejected');
select throws_ok($$update vigil.settings set db_query_warning_ms = 0 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "db_query_thresholds"', 'db query: a zero warning is rejected');
-- error_rate_thresholds
select throws_ok($$update vigil.settings set error_rate_warning_pct = 1 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "error_rate_thresholds"', 'error rate: warning = critical is rejected');
select throws_ok($$update vigil.settings set error_rate_warning_pct = 2 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "error_rate_thresholds"', 'error rate: warning > critical is rejected');
select throws_ok($$update vigil.settings set error_rate_warning_pct = 0 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "error_rate_thresholds"', 'error rate: a zero warning is rejected');
select throws_ok($$update vigil.settings set error_rate_critical_pct = 100.5 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "error_rate_thresholds"', 'error rate: a critical over 100 % is rejected');
-- memory_thresholds
select throws_ok($$update vigil.settings set memory_warning_pct = 85 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "memory_thresholds"', 'memory: warning = critical is rejected');
select throws_ok($$update vigil.settings set memory_warning_pct = 90 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "memory_thresholds"', 'memory: warning > critical is rejected');
select throws_ok($$update vigil.settings set memory_warning_pct = 0 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "memory_thresholds"', 'memory: a zero warning is rejected');
select throws_ok($$update vigil.settings set memory_critical_pct = 100.01 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "memory_thresholds"', 'memory: a critical over 100 % is rejected');
-- cpu_thresholds
select throws_ok($$update vigil.settings set cpu_warning_pct = 90 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "cpu_thresholds"', 'cpu: warning = critical is rejected');
select throws_ok($$update vigil.settings set cpu_warning_pct = 95 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "cpu_thresholds"', 'cpu: warning > critical is rejected');
select throws_ok($$update vigil.settings set cpu_warning_pct = -5 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "cpu_thresholds"', 'cpu: a negative warning is rejected');
select throws_ok($$update vigil.settings set cpu_critical_pct = 101 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "cpu_thresholds"', 'cpu: a critical over 100 % is rejected');
-- deploy_thresholds
select throws_ok($$update vigil.settings set deploy_warning_minutes = 15 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "deploy_thresholds"', 'deploy: warning = critical is rejected');
select throws_ok($$update vigil.settings set deploy_warning_minutes = 20 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "deploy_thresholds"', 'deploy: warning > critical is rejected');
select throws_ok($$update vigil.settings set deploy_warning_minutes = 0 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "deploy_thresholds"', 'deploy: a zero warning is rejected');
-- slow_query_threshold
select throws_ok($$update vigil.settings set slow_query_ms = 0 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "slow_query_threshold"', 'slow query: zero is rejected');
select throws_ok($$update vigil.settings set slow_query_ms = -1 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "slow_query_threshold"', 'slow query: a negative value is rejected');

-- The heal failsafes: a rate limit of 1 to 1000, a breaker window of 2 to 100 judged from 1 to
-- window heals on, a ratio strictly between 0 and 1, a cool-down of 1 minute to a day.
select throws_ok($$update vigil.settings set heal_max_per_hour = 0 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "heal_rate_limit"', 'heal rate: zero per hour is rejected');
select throws_ok($$update vigil.settings set heal_max_per_hour = 1001 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "heal_rate_limit"', 'heal rate: 1001 per hour is rejected');
select throws_ok($$update vigil.settings set breaker_window = 1, breaker_min_heals = 1 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "breaker_window_size"', 'breaker window: 1 is rejected');
select throws_ok($$update vigil.settings set breaker_window = 101 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "breaker_window_size"', 'breaker window: 101 is rejected');
select throws_ok($$update vigil.settings set breaker_min_heals = 0 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "breaker_min_size"', 'breaker minimum: 0 heals is rejected');
select throws_ok($$update vigil.settings set breaker_min_heals = 7 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "breaker_min_size"', 'breaker minimum: more heals than the window holds (7 of 6) is rejected');
select throws_ok($$update vigil.settings set breaker_window = 2 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "breaker_min_size"', 'breaker window: shrinking it below the minimum (2 < 3) is rejected');
select throws_ok($$update vigil.settings set breaker_failure_ratio = 0 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "breaker_ratio"', 'breaker ratio: 0 is rejected');
select throws_ok($$update vigil.settings set breaker_failure_ratio = 1 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "breaker_ratio"', 'breaker ratio: 1 is rejected');
select throws_ok($$update vigil.settings set breaker_cooldown_minutes = 0 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "breaker_cooldown"', 'breaker cool-down: 0 minutes is rejected');
select throws_ok($$update vigil.settings set breaker_cooldown_minutes = 1441 where environment = 'dev'$$, '23514',
  'new row for relation "settings" violates check constraint "breaker_cooldown"', 'breaker cool-down: more than a day is rejected');
select lives_ok($$update vigil.settings set heal_max_per_hour = 1, breaker_window = 2, breaker_min_heals = 1, breaker_failure_ratio = 0.01,
                                            breaker_cooldown_minutes = 1 where environment = 'dev'$$,
                'heal failsafes: the lower bounds (1 an hour, window 2, from 1 heal, ratio 0.01, 1 minute) are accepted');
select lives_ok($$update vigil.settings set heal_max_per_hour = 1000, breaker_window = 100, breaker_min_heals = 100,
                                            breaker_failure_ratio = 0.99, breaker_cooldown_minutes = 1440 where environment = 'dev'$$,
                'heal failsafes: the upper bounds (1000 an hour, window 100, from 100 heals, ratio 0.99, a day) are accepted');

-- The constraints are not stricter than the spec: tightened and boundary values are accepted.
select lives_ok($$update vigil.settings set api_p95_warning_ms = 1, api_p95_critical_ms = 2 where environment = 'dev'$$,
                'api p95: 1 ms / 2 ms is accepted');
select lives_ok($$update vigil.settings set db_query_warning_ms = 499 where environment = 'dev'$$,
                'db query: a warning just below critical is accepted');
select lives_ok($$update vigil.settings set error_rate_warning_pct = 0.001, error_rate_critical_pct = 100 where environment = 'dev'$$,
                'error rate: 0.001 % / 100 % is accepted');
select lives_ok($$update vigil.settings set memory_warning_pct = 99.99, memory_critical_pct = 100 where environment = 'dev'$$,
                'memory: 99.99 % / 100 % is accepted');
select lives_ok($$update vigil.settings set cpu_warning_pct = 0.01, cpu_critical_pct = 100 where environment = 'dev'$$,
                'cpu: 0.01 % / 100 % is accepted');
select lives_ok($$update vigil.settings set deploy_warning_minutes = 1, deploy_critical_minutes = 2 where environment = 'dev'$$,
                'deploy: 1 / 2 minutes is accepted');
select lives_ok($$update vigil.settings set slow_query_ms = 1 where environment = 'dev'$$, 'slow query: 1 ms is accepted');

-- Inserting a row with inconsistent thresholds is rejected the same way as updating one.
delete from vigil.settings where environment = 'qa';
select throws_ok($$insert into vigil.settings (environment, cpu_warning_pct) values ('qa', 95)$$, '23514',
  'new row for relation "settings" violates check constraint "cpu_thresholds"', 'an inserted row is checked too');
select lives_ok($$insert into vigil.settings (environment) values ('qa')$$, 'a row with the defaults satisfies every constraint');
select results_eq(
  $$select kill_switch, dry_run, api_p95_warning_ms, api_p95_critical_ms, db_query_warning_ms, db_query_critical_ms,
           error_rate_warning_pct, error_rate_critical_pct, memory_warning_pct, memory_critical_pct,
           cpu_warning_pct, cpu_critical_pct, deploy_warning_minutes, deploy_critical_minutes, slow_query_ms, updated_by
      from vigil.settings where environment = 'qa'$$,
  $$values (false, false, 200, 500, 100, 500, 0.1::numeric, 1::numeric, 60::numeric, 85::numeric,
            70::numeric, 90::numeric, 5, 15, 1000, null::uuid)$$,
  'a row inserted with only its environment gets the spec defaults from the column defaults'
);
select results_eq(
  $$select heal_max_per_hour, breaker_window, breaker_min_heals, breaker_failure_ratio, breaker_cooldown_minutes,
           'supabase_admin' = any(protected_roles), cardinality(protected_applications)
      from vigil.settings where environment = 'qa'$$,
  $$values (10, 6, 3, 0.50::numeric, 30, true, 0)$$,
  'a row inserted with only its environment gets the heal failsafe defaults too'
);

-- Environments are a closed list, one row each.
select throws_ok($$insert into vigil.settings (environment) values ('staging')$$, '22P02',
  'invalid input value for enum vigil.environment: "staging"', 'an unknown environment is rejected');
select throws_ok($$insert into vigil.settings (environment) values ('prod')$$, '23505', null,
  'a second row for an environment is rejected');

-- The touch trigger keeps updated_at current.
update vigil.settings set updated_at = '2000-01-01' where environment = 'prod';
update vigil.settings set kill_switch = true where environment = 'prod';
select is((select updated_at from vigil.settings where environment = 'prod'), now(), 'an update sets updated_at to now()');

select * from finish();
rollback;
