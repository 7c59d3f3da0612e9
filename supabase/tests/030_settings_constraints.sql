-- vigil.settings: one row per environment with the spec's thresholds, and CHECK constraints
-- that keep every warning threshold positive and below its critical one, percentages <= 100.
begin;
set search_path = extensions, public;
select plan(40);

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
