-- The weekly and monthly analyses' SQL: vigil.error_pattern folds errors that differ only in their
-- variable parts; vigil.error_trends counts planted history in two weeks of 2020 (nothing else lives
-- there) by pattern, service, incident kind and recurrence; vigil.statement_periods never makes a
-- counter reset a negative difference and spreads a gap over the days it spans; and
-- vigil.sync_recommendations opens, keeps, refreshes and resolves. Only service_role may call them.
begin;
set search_path = extensions, public;
select plan(34);
set local timezone = 'UTC';

-- ─── error_pattern ──────────────────────────────────────────────────────────────────────────
select is(vigil.error_pattern('timeout after 5012 ms'), vigil.error_pattern('timeout after 5230 ms'),
          'two timeouts that differ only in their duration are one pattern');
select is(vigil.error_pattern('timeout after 5012 ms'), 'timeout after <duration>', 'the duration is a placeholder');
select is(vigil.error_pattern('connect ECONNREFUSED 10.0.0.12:5432'), 'connect ECONNREFUSED <ip>',
          'an IP address and its port are a placeholder');
select is(vigil.error_pattern('request 3fa85f64-5717-4562-b3fc-2c963f66afa6 for "Alice O''Neil" failed'),
          'request <uuid> for <value> failed', 'ids and quoted values are placeholders');
select is(vigil.error_pattern('HTTP 503 from /items/12345 after 2 retries; os error 111'),
          'HTTP 503 from /items/<n> after <n> retries; os error 111',
          'numbers are placeholders, but an HTTP status and an error code stay: they tell failures apart');
select is(vigil.error_pattern('at 2020-01-10T12:00:00Z: blob deadbeef0042 missing'),
          'at <time>: blob <id> missing', 'times and long hex ids are placeholders');
select is(vigil.error_pattern(e'  lots\n of   space  '), 'lots of space', 'whitespace is folded');
select ok(vigil.error_pattern('   ') is null and vigil.error_pattern(null) is null, 'blank and null have no pattern');
select is(length(vigil.error_pattern(repeat('x ', 5000))), 300, 'a pattern is at most 300 characters');

-- ─── error_trends ───────────────────────────────────────────────────────────────────────────
insert into vigil.services (id, name, kind, config) values
  ('00000000-0000-4000-8000-000000000971', 't097-api', 'http', '{"url":"https://t097-api.example.com"}'),
  ('00000000-0000-4000-8000-000000000972', 't097-web', 'http', '{"url":"https://t097-web.example.com"}');
alter table vigil.checks disable trigger checks_apply;
-- api: 5 timeouts this week (2020-01-08 … 01-14), 2 the week before; 3 refusals only the week before.
insert into vigil.checks (service_id, checked_at, status, error)
select '00000000-0000-4000-8000-000000000971', timestamptz '2020-01-10 00:00Z' + n * interval '1 hour', 'down',
       format('timeout after %s ms', 5000 + n)
  from generate_series(1, 5) n;
insert into vigil.checks (service_id, checked_at, status, error)
select '00000000-0000-4000-8000-000000000971', timestamptz '2020-01-03 00:00Z' + n * interval '1 hour', 'down',
       format('timeout after %s ms', 6000 + n)
  from generate_series(1, 2) n;
insert into vigil.checks (service_id, checked_at, status, error)
select '00000000-0000-4000-8000-000000000971', timestamptz '2020-01-02 00:00Z' + n * interval '1 hour', 'down',
       format('connect ECONNREFUSED 10.0.0.%s:80', n)
  from generate_series(1, 3) n;
-- web: healthy checks only, and one failed check without an error text (not a pattern).
insert into vigil.checks (service_id, checked_at, status, error) values
  ('00000000-0000-4000-8000-000000000972', '2020-01-10 00:00Z', 'healthy', null),
  ('00000000-0000-4000-8000-000000000972', '2020-01-10 00:01Z', 'degraded', null);
alter table vigil.checks enable trigger checks_apply;

-- api's t097_down opened 3 times this week, web's once; a dependent's incident folded into api's.
alter table vigil.incidents disable trigger incidents_request_heal;
insert into vigil.incidents (id, service_id, kind, severity, title, opened_at, status, resolved_at) overriding system value values
  (970001, '00000000-0000-4000-8000-000000000971', 't097_down', 'critical', 'api down', '2020-01-09 00:00Z', 'resolved', '2020-01-09 00:10Z'),
  (970002, '00000000-0000-4000-8000-000000000971', 't097_down', 'critical', 'api down', '2020-01-11 00:00Z', 'resolved', '2020-01-11 00:20Z'),
  (970003, '00000000-0000-4000-8000-000000000971', 't097_down', 'critical', 'api down', '2020-01-13 00:00Z', 'resolved', '2020-01-13 00:30Z'),
  (970004, '00000000-0000-4000-8000-000000000972', 't097_down', 'critical', 'web down', '2020-01-12 00:00Z', 'resolved', '2020-01-12 00:05Z'),
  (970005, '00000000-0000-4000-8000-000000000972', 't097_down', 'critical', 'web down', '2020-01-12 06:00Z', 'resolved', '2020-01-12 06:05Z');
update vigil.incidents set folded_into = 970001 where id = 970005;
alter table vigil.incidents enable trigger incidents_request_heal;

create temporary table t097 on commit drop as
  select vigil.error_trends('2020-01-15 00:00Z', 7, 10, 3, 1000) as t;

select is((select t -> 'patterns' from t097),
          '[{"pattern": "timeout after <duration>", "service": "t097-api", "count": 5, "count_before": 2,
             "first_seen": "2020-01-03T01:00:00+00:00", "last_seen": "2020-01-10T05:00:00+00:00"}]'::jsonb,
          'this week''s pattern, counted in both weeks, first and last seen');
select is((select t -> 'gone' -> 0 ->> 'pattern' from t097), 'connect ECONNREFUSED <ip>',
          'a pattern seen only the week before is gone');
select is((select t -> 'incident_kinds' from t097),
          '[{"kind": "t097_down", "count": 4, "count_before": 0, "services": ["t097-api", "t097-web"]}]'::jsonb,
          'incidents by kind, the folded one left out');
select is((select (t -> 'recurring' -> 0) - 'first_opened' - 'last_opened' from t097),
          '{"service": "t097-api", "service_id": "00000000-0000-4000-8000-000000000971", "kind": "t097_down",
            "count": 3, "open_now": false, "healed": 0, "mean_minutes_open": 20.0, "latest_incident_id": 970003,
            "top_pattern": "timeout after <duration>"}'::jsonb,
          'api''s three openings of one kind are recurring; web''s one (and a folded one) is not');
select is((select jsonb_array_length(t -> 'recurring') from t097), 1, 'and nothing else recurs');
select is((select t -> 'incidents' from t097), '{"opened": 4, "opened_before": 0}'::jsonb, 'incidents opened per week');
select is((select (t #>> '{checks,with_error}')::int from t097), 5, 'failed checks with an error text are read');
select is((select vigil.error_trends('2020-01-15 00:00Z', 7, 10, 3, 2) #> '{checks,sampled}'), 'true'::jsonb,
          'a limit below the failed checks reads the latest only, and says so');
select throws_ok($$select vigil.error_trends('2020-01-15 00:00Z', 7, 0)$$, '22023', null, 'a top of 0 is refused');
select throws_ok($$select vigil.error_trends(null)$$, '22023', null, 'a period needs its end');

-- ─── statement_periods ──────────────────────────────────────────────────────────────────────
delete from vigil.statement_snapshots;
-- Statement 1: +100 calls a day at 2 ms; the statistics reset before 2020-01-12 (30 calls since).
-- Statement 2: seen on 01-01 and again on 01-11 only: 1,000 calls over 10 days, 3 of them in the
-- later week. Another database's statement is not the project's.
insert into vigil.statement_snapshots
  (taken_on, dbid, userid, queryid, query, calls, total_exec_ms, mean_exec_ms, rows, shared_blks_hit, shared_blks_read)
select date '2020-01-01' + d, (select oid from pg_database where datname = current_database()), 10, 9701, 'select 1',
       c, 2 * c, 2, c, c, 0
  from generate_series(0, 14) d,
       lateral (select case when d < 11 then 100 * (d + 1) else 30 + 100 * (d - 11) end as c) x;
insert into vigil.statement_snapshots
  (taken_on, dbid, userid, queryid, query, calls, total_exec_ms, mean_exec_ms, rows, shared_blks_hit, shared_blks_read)
values ('2020-01-01', (select oid from pg_database where datname = current_database()), 10, 9702, 'select 2', 500, 500, 1, 0, 0, 0),
       ('2020-01-11', (select oid from pg_database where datname = current_database()), 10, 9702, 'select 2', 1500, 1500, 1, 0, 0, 0),
       ('2020-01-15', 1, 10, 9703, 'select 3', 10, 10, 1, 0, 0, 0),
       ('2020-01-14', 1, 10, 9703, 'select 3', 5, 5, 1, 0, 0, 0);

select results_eq(
  $$select period, queryid, calls, total_exec_ms, resets from vigil.statement_periods('2020-01-15', 7, 2)
     order by period, queryid$$,
  $$values (0, 9701::bigint, 630::float8, 1260::float8, 1), (0, 9702, 300, 300, 0),
           (1, 9701, 700, 1400, 0), (1, 9702, 700, 700, 0)$$,
  'a reset counts the later counters alone; a gap is spread over its days and periods; another database is left out');
select ok(not exists (select from vigil.statement_periods('2020-01-15', 7, 3) where calls < 0 or total_exec_ms < 0),
          'no period has a negative count');
select throws_ok($$select * from vigil.statement_periods('2020-01-15', 0)$$, '22023', null, 'a period of 0 days is refused');

-- ─── sync_recommendations ───────────────────────────────────────────────────────────────────
select is(vigil.sync_recommendations('t097_kind', '[
  {"service_id": "00000000-0000-4000-8000-000000000971", "key": "a", "title": "A", "detail": {"n": 1}},
  {"service_id": "00000000-0000-4000-8000-000000000972", "key": "b", "title": "B"}]') - 'opened',
  '{"updated": 0, "unchanged": 0, "resolved": []}'::jsonb, 'two new items are opened');
select is((select count(*)::int from vigil.recommendations where kind = 't097_kind' and status = 'open'), 2, 'both open');
select is(vigil.sync_recommendations('t097_kind', '[
  {"service_id": "00000000-0000-4000-8000-000000000971", "key": "a", "title": "A", "detail": {"n": 2}}]'),
  '{"opened": [], "updated": 1, "unchanged": 0,
    "resolved": [{"service_id": "00000000-0000-4000-8000-000000000972", "service": "t097-web", "key": "b", "title": "B"}]}'::jsonb,
  'a changed item is refreshed in place, one no longer listed is resolved');
select is(vigil.sync_recommendations('t097_kind', '[
  {"service_id": "00000000-0000-4000-8000-000000000971", "key": "a", "title": "A", "detail": {"n": 2}}]') ->> 'unchanged',
  '1', 'an unchanged item is left alone');
select is((select count(*)::int from vigil.recommendations where kind = 't097_kind' and key = 'a'), 1,
          'never duplicated');
select throws_ok($$select vigil.sync_recommendations('t097_kind', '[{"service_id": "x", "key": "a", "title": "A"}]')$$,
                 '22023', 'sync_recommendations: item 1 has no valid service_id', 'an item without a valid service is refused');
select throws_ok($$select vigil.sync_recommendations('Bad Kind', '[]')$$, '22023', null, 'a bad kind is refused');

-- ─── Who may call them ──────────────────────────────────────────────────────────────────────
select ok(not has_function_privilege(r, f, 'execute'), format('%s may not call %s', r, f))
  from unnest(array['anon', 'authenticated']) r,
       unnest(array['vigil.error_trends(timestamptz,integer,integer,integer,integer)',
                    'vigil.sync_recommendations(text,jsonb)']) f;
select ok(has_function_privilege('vigil_agent', 'vigil.sync_recommendations(text,jsonb)', 'execute')
          and has_function_privilege('vigil_agent', 'vigil.statement_periods(date,integer,integer)', 'execute'),
          'the agent may');

select * from finish();
rollback;
