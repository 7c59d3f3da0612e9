-- Noise control: what is recorded but not sent (status suppressed, with the reason).
--   Silences and maintenance windows, by service, by environment or for everything, while they run;
--   claim_alerts applies one that started after an alert was queued. Notices that something is
--   resolved still reach everyone who was told of it.
--   Dependency folding: a page about a service whose dependency (its depends_on, or by default the
--   project database for auth, storage, realtime and functions) has an open incident and is down or
--   degraded goes into that incident; when the root resolves, dependents still open page on their own.
--   Flapping: more than flap_threshold status changes within flap_window_minutes send one alert and
--   hold back the service's pages until sweep_alerts() sees it stable again.
--
-- Pages go to every matching contact, so the contacts table is locked and emptied inside this
-- transaction (rolled back): only this file's contacts exist while it runs.
begin;
set search_path = extensions, public;
select plan(68);

lock table vigil.contacts in exclusive mode;
delete from vigil.contacts;
-- Ana: sms (pages) and email (P2); Ops: the team's slack (everything).
insert into vigil.contacts (name, role, channel, address, secret_name) values
  ('Ana', 'on_call', 'sms', '+15550720001', null),
  ('Ana', 'on_call', 'email', 'ana@example.org', null),
  ('Ops', 'team', 'slack', '#ops', 'T072_OPS_SLACK');

insert into vigil.services (id, name, kind, environment, config, status) values
  ('00000000-0000-4000-8000-000000000721', 't072-api', 'http', 'prod', '{"url": "https://api.t072.example.org"}', 'down'),
  ('00000000-0000-4000-8000-000000000722', 't072-web', 'http', 'prod', '{"url": "https://www.t072.example.org"}', 'down'),
  ('00000000-0000-4000-8000-000000000723', 't072-qa-api', 'http', 'qa', '{"url": "https://qa.t072.example.org"}', 'down'),
  ('00000000-0000-4000-8000-000000000724', 't072-db', 'postgres', 'prod', '{}', 'down'),
  ('00000000-0000-4000-8000-000000000725', 't072-auth', 'supabase_auth', 'prod', '{}', 'down'),
  ('00000000-0000-4000-8000-000000000726', 't072-storage', 'supabase_storage', 'prod', '{}', 'degraded'),
  ('00000000-0000-4000-8000-000000000727', 't072-cache', 'http', 'prod', '{"url": "https://cache.t072.example.org"}', 'down'),
  ('00000000-0000-4000-8000-000000000729', 't072-flap', 'http', 'prod', '{"url": "https://flap.t072.example.org"}', 'healthy');
insert into vigil.services (id, name, kind, environment, config, status, depends_on) values
  ('00000000-0000-4000-8000-000000000728', 't072-app', 'http', 'prod', '{"url": "https://app.t072.example.org"}', 'down', '{t072-cache}');

-- One open critical incident per service and kind; its id by title.
create function pg_temp.open_incident(p_service uuid, p_kind text, p_title text, p_severity vigil.severity default 'critical')
returns bigint language sql as $$
  insert into vigil.incidents (service_id, kind, severity, title) values (p_service, p_kind, p_severity, p_title) returning id
$$;
create function pg_temp.inc(p_title text) returns bigint language sql as $$
  select id from vigil.incidents where title = p_title
$$;
-- An incident's alerts: 'person channel status reason'.
create function pg_temp.alerts_of(p_incident bigint, p_event text default 'page') returns setof text language sql as $$
  select c.name || ' ' || a.channel || ' ' || a.status || coalesce(': ' || a.suppressed_reason, '')
    from vigil.alerts a join vigil.contacts c on c.id = a.contact_id
   where a.incident_id = p_incident and a.event = p_event
$$;
-- How a silence is named in suppressed_reason.
create function pg_temp.silence_reason(p_id bigint) returns text language sql as $$
  select format('%s %s until %s: %s', case kind when 'maintenance' then 'maintenance window' else 'silence' end,
                id, to_char(ends_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'), reason)
    from vigil.silences where id = p_id
$$;

-- ─── Silences ───────────────────────────────────────────────────────────────────────────────
insert into vigil.silences (service_id, starts_at, ends_at, reason) values
  ('00000000-0000-4000-8000-000000000721', now() - interval '10 minutes', now() + interval '1 hour', 'deploying t072-api'),
  ('00000000-0000-4000-8000-000000000722', now() + interval '1 hour', now() + interval '2 hours', 'later'),
  ('00000000-0000-4000-8000-000000000722', now() - interval '2 hours', now() - interval '1 minute', 'over');
insert into vigil.silences (environment, ends_at, reason) values ('qa', now() + interval '30 minutes', 'qa is being rebuilt');
create temp table sil as
select (select id from vigil.silences where reason = 'deploying t072-api') as api,
       (select id from vigil.silences where reason = 'qa is being rebuilt') as qa;

select pg_temp.open_incident('00000000-0000-4000-8000-000000000721', 'down', 't072 api down');
select is(vigil.escalate(pg_temp.inc('t072 api down'), 3, 'attempt 3 failed'), 0,
          'a page of a silenced service queues nothing to send');
select set_eq($$select pg_temp.alerts_of(pg_temp.inc('t072 api down'))$$,
  $$select 'Ana sms suppressed: ' || pg_temp.silence_reason(api) from sil union all
    select 'Ops slack suppressed: ' || pg_temp.silence_reason(api) from sil$$,
  'the service''s silence suppresses each page, recorded with a reason naming the silence, its end and why');
select is_empty($$select 1 from vigil.incident_log where incident_id = pg_temp.inc('t072 api down') and message like 'no enabled%'$$,
  'a silenced page is not "nobody was paged": the alerts exist, held back on purpose');
select is_empty($$select 1 from vigil.invocations where fn = 'notify' and body = '{"trigger": "alert"}'$$,
  'and notify is not woken for alerts that will not be sent');

select pg_temp.open_incident('00000000-0000-4000-8000-000000000723', 'down', 't072 qa api down');
select is(vigil.escalate(pg_temp.inc('t072 qa api down'), 3, 'attempt 3 failed'), 0, 'an environment''s silence holds back its pages');
select set_eq($$select pg_temp.alerts_of(pg_temp.inc('t072 qa api down'))$$,
  $$select 'Ana sms suppressed: ' || pg_temp.silence_reason(qa) from sil union all
    select 'Ops slack suppressed: ' || pg_temp.silence_reason(qa) from sil$$,
  'every qa page is suppressed by qa''s silence');

select pg_temp.open_incident('00000000-0000-4000-8000-000000000722', 'errors', 't072 web errors');
select is(vigil.escalate(pg_temp.inc('t072 web errors'), 3, 'attempt 3 failed'), 2,
          'a silence that has not started and one that has ended do not apply: both pages are queued');
select set_eq($$select pg_temp.alerts_of(pg_temp.inc('t072 web errors'))$$, $$values ('Ana sms pending'), ('Ops slack pending')$$,
  'the web pages are pending');
select pg_temp.open_incident('00000000-0000-4000-8000-000000000722', 'latency', 't072 web slow');
select is(vigil.escalate(pg_temp.inc('t072 web slow'), 3, 'attempt 3 failed'), 2, 'another web incident pages too');
update vigil.alerts set status = 'sent', sent_at = now() - interval '2 minutes' where incident_id = pg_temp.inc('t072 web slow');

-- A silence on web starts now, after the pages were queued.
insert into vigil.silences (service_id, ends_at, reason) values ('00000000-0000-4000-8000-000000000722', now() + interval '20 minutes', 'rolling back web');
select is((select count(*)::int from vigil.claim_alerts('t072-worker')), 0,
          'claim_alerts hands out none of the pages queued before the silence started');
select set_eq($$select pg_temp.alerts_of(pg_temp.inc('t072 web errors'))$$,
  $$select 'Ana sms suppressed: ' || pg_temp.silence_reason(id) from vigil.silences where reason = 'rolling back web' union all
    select 'Ops slack suppressed: ' || pg_temp.silence_reason(id) from vigil.silences where reason = 'rolling back web'$$,
  'claim_alerts recorded them as suppressed by the silence that now covers them');

-- Whoever was paged hears that it is resolved, silence or not.
update vigil.incidents set status = 'resolved', resolved_at = now() where id = pg_temp.inc('t072 web slow');
select set_eq($$select pg_temp.alerts_of(pg_temp.inc('t072 web slow'), 'resolved')$$, $$values ('Ana sms pending'), ('Ops slack pending')$$,
  'resolving queues a resolved notice to each contact that was sent the page, although the service is silenced');
select set_eq(
  $$select c->>'event' as event, c->'contact'->>'name' as who from vigil.claim_alerts('t072-worker') c$$,
  $$values ('resolved', 'Ana'), ('resolved', 'Ops')$$,
  'claim_alerts hands them out: a silence never holds back a resolved notice');

delete from vigil.silences where reason = 'rolling back web';
insert into vigil.silences (kind, service_id, ends_at, reason)
values ('maintenance', '00000000-0000-4000-8000-000000000722', now() + interval '45 minutes', 'database upgrade');
select pg_temp.open_incident('00000000-0000-4000-8000-000000000722', 'tls', 't072 web tls');
select is(vigil.escalate(pg_temp.inc('t072 web tls'), 3, 'attempt 3 failed'), 0, 'a maintenance window holds back pages');
select is((select distinct suppressed_reason from vigil.alerts where incident_id = pg_temp.inc('t072 web tls')),
          (select pg_temp.silence_reason(id) from vigil.silences where reason = 'database upgrade'),
          'the reason says maintenance window, with its id, end and reason');
select matches((select pg_temp.silence_reason(id) from vigil.silences where reason = 'database upgrade'),
               '^maintenance window \d+ until \d{4}-\d\d-\d\d \d\d:\d\d UTC: database upgrade$',
               'a maintenance window reads "maintenance window <id> until <UTC time>: <reason>"');

-- Everything: a silence with neither service nor environment.
delete from vigil.silences;
insert into vigil.silences (ends_at, reason) values (now() + interval '1 hour', 'incident review, all hands');
select pg_temp.open_incident('00000000-0000-4000-8000-000000000721', 'errors', 't072 api errors');
select pg_temp.open_incident('00000000-0000-4000-8000-000000000723', 'errors', 't072 qa api errors');
select is(vigil.escalate(pg_temp.inc('t072 api errors'), 3, 'x') + vigil.escalate(pg_temp.inc('t072 qa api errors'), 3, 'x'), 0,
          'a global silence holds back pages of every service in every environment');
select is((select count(*)::int from vigil.alerts where incident_id in (pg_temp.inc('t072 api errors'), pg_temp.inc('t072 qa api errors'))
                                                 and suppressed_reason like 'silence % until %: incident review, all hands'), 4,
          'all four pages name the global silence');
select results_eq(
  $$select id, reason from vigil.active_silence('00000000-0000-4000-8000-000000000721', 'prod')$$,
  $$select id, reason from vigil.silences$$,
  'active_silence returns the silence covering a service now'
);
delete from vigil.silences;
select is((vigil.active_silence('00000000-0000-4000-8000-000000000721', 'prod')).id, null::bigint, 'with no silence, there is none');

-- ─── Dependency folding ─────────────────────────────────────────────────────────────────────
-- t072-db (the project database: postgres without a connection_secret) is down; auth, which needs
-- it by default (depends_on null), is down too.
select pg_temp.open_incident('00000000-0000-4000-8000-000000000724', 'down', 't072 db down');
update vigil.incidents set opened_at = now() - interval '10 minutes' where id = pg_temp.inc('t072 db down');
select pg_temp.open_incident('00000000-0000-4000-8000-000000000725', 'down', 't072 auth down');
select pg_temp.open_incident('00000000-0000-4000-8000-000000000726', 'slow', 't072 storage slow', 'warning');
create temp table dep as
select pg_temp.inc('t072 db down') as db, pg_temp.inc('t072 auth down') as auth, pg_temp.inc('t072 storage slow') as storage;

select results_eq($$select service_id, depth from vigil.dependencies('00000000-0000-4000-8000-000000000725')$$,
  $$values ('00000000-0000-4000-8000-000000000724'::uuid, 1)$$, 'auth depends (by default) on the project database');
select is(vigil.escalate((select db from dep), 3, 'db attempt 3 failed'), 2, 'the database''s own page goes out');
select is(vigil.escalate((select auth from dep), 3, 'auth attempt 3 failed'), 0, 'auth''s page is held back');
select set_eq($$select pg_temp.alerts_of((select auth from dep))$$,
  $$select 'Ana sms suppressed: ' || format('folded into incident %s (t072-db is down)', db) from dep union all
    select 'Ops slack suppressed: ' || format('folded into incident %s (t072-db is down)', db) from dep$$,
  'each auth page is suppressed as folded into the database''s incident, naming it and its status');
select results_eq(
  $$select (select folded_into from vigil.incidents where id = auth), (select affected from vigil.incidents where id = db) from dep$$,
  $$select db, '["t072-auth"]'::jsonb from dep$$,
  'auth''s incident is folded into the database''s, whose affected list names t072-auth'
);
select results_eq(
  $$select incident_id, message from vigil.incident_log
     where incident_id in (select auth from dep union all select db from dep) and message not like 'escalation level%' order by id$$,
  $$select auth, format('folded into incident %s: t072-db, which t072-auth depends on, is down', db) from dep union all
    select db, format('t072-auth is affected too (incident %s)', auth) from dep$$,
  'the timeline of both incidents says so'
);
select is(vigil.escalate((select auth from dep), 4, 'still down'), 0, 'auth''s level 4 page is held back too');
select set_eq($$select distinct suppressed_reason from vigil.alerts where incident_id = (select auth from dep) and level = 4$$,
  $$select format('folded into incident %s (t072-db is down)', db) from dep$$,
  'while the root is open, a folded incident''s pages name it');
select is((select count(*)::int from vigil.incident_log where incident_id = (select auth from dep) and message like 'folded into%'), 1,
          'folding is decided and logged once');
-- A page below level 3 (queued directly) folds the same way.
select is(vigil.queue_alert((select storage from dep), null, 'page', 'P2', '{on_call}', 't072 storage', 'b', 1), 0,
          'a storage page folds into the database''s incident too');
select is((select affected from vigil.incidents where id = (select db from dep)), '["t072-auth", "t072-storage"]'::jsonb,
          'the root lists both affected services');

-- functions reached level 3 twenty minutes ago, folded: nobody has been paged about it yet.
insert into vigil.services (id, name, kind, environment, config, status) values
  ('00000000-0000-4000-8000-00000000072b', 't072-functions', 'supabase_functions', 'prod', '{"function": "hello"}', 'down');
select pg_temp.open_incident('00000000-0000-4000-8000-00000000072b', 'down', 't072 functions down');
select is(vigil.escalate(pg_temp.inc('t072 functions down'), 3, 'x'), 0, 'functions'' level 3 page is folded too');
update vigil.incidents set escalated_at = now() - interval '20 minutes' where id = pg_temp.inc('t072 functions down');

-- Folding decided when claimed: realtime paged while the database looked healthy (its pages
-- are due), then the database went down. claim_alerts folds them instead of sending them.
insert into vigil.services (id, name, kind, environment, config, status) values
  ('00000000-0000-4000-8000-00000000072a', 't072-realtime', 'supabase_realtime', 'prod', '{}', 'down');
select pg_temp.open_incident('00000000-0000-4000-8000-00000000072a', 'down', 't072 realtime down');
update vigil.services set status = 'healthy' where name = 't072-db';
select is(vigil.escalate(pg_temp.inc('t072 realtime down'), 3, 'x'), 2, 'with the database healthy, realtime pages');
update vigil.services set status = 'down' where name = 't072-db';
select is((select count(*)::int from vigil.claim_alerts('t072-worker') c where (c->>'incident_id')::bigint = pg_temp.inc('t072 realtime down')), 0,
          'once the database is down, claim_alerts does not hand out realtime''s pages');
select is((select array_agg(distinct suppressed_reason) from vigil.alerts where incident_id = pg_temp.inc('t072 realtime down')),
          array[(select format('folded into incident %s (t072-db is down)', db) from dep)], 'it records both as folded');
select results_eq(
  $$select (select count(*)::int from vigil.incident_log where incident_id = pg_temp.inc('t072 realtime down') and message like 'folded into%'),
           (select count(*)::int from vigil.incident_log where incident_id = (select db from dep) and message like 't072-realtime is affected%')$$,
  $$values (1, 1)$$, 'and logs the folding once on each side, not once per alert');
update vigil.incidents set status = 'resolved', resolved_at = now() where id = pg_temp.inc('t072 realtime down');
-- That claim handed out the database's own pages; they are delivered.
select is(vigil.record_alert_attempt('t072-worker', (select jsonb_agg(id) from vigil.alerts where incident_id = (select db from dep)),
                                     '{"outcome": "delivered"}') ->> 'recorded', '2', 'the database''s own pages were claimed and delivered');

-- Explicit depends_on: t072-app needs t072-cache, which is down.
select pg_temp.open_incident('00000000-0000-4000-8000-000000000727', 'down', 't072 cache down');
select pg_temp.open_incident('00000000-0000-4000-8000-000000000728', 'down', 't072 app down');
select is(vigil.escalate(pg_temp.inc('t072 app down'), 3, 'x'), 0, 'a page of a service whose named dependency is down is held back');
select is((select distinct suppressed_reason from vigil.alerts where incident_id = pg_temp.inc('t072 app down')),
          format('folded into incident %s (t072-cache is down)', pg_temp.inc('t072 cache down')),
          'it folds into the dependency''s incident');

-- The database recovers: auth, functions and storage are still open and page on their own
-- (storage only if it had reached the paging levels, which it had not).
update vigil.incidents set status = 'resolved', resolved_at = now() where id = (select db from dep);
select results_eq(
  $$select (select folded_into from vigil.incidents where id = auth), (select folded_into from vigil.incidents where id = storage) from dep$$,
  $$values (null::bigint, null::bigint)$$, 'the root''s resolution unfolds its still-open dependents');
select set_eq(
  $$select incident_id, level, message from vigil.incident_log
     where incident_id in (select auth from dep union all select storage from dep) and level = 'warning'$$,
  $$select auth, 'warning'::text, format('no longer folded into incident %s: it is over, its service recovered, or it is less urgent than this one', db) from dep union all
    select storage, 'warning', format('no longer folded into incident %s: it is over, its service recovered, or it is less urgent than this one', db) from dep$$,
  'each dependent''s timeline says the root resolved and it is still open'
);
select set_eq(
  $$select c.name || ' ' || a.channel, a.status::text, a.level, a.subject, a.body
      from vigil.alerts a join vigil.contacts c on c.id = a.contact_id
     where a.incident_id = (select auth from dep) and a.status <> 'suppressed'$$,
  $$values ('Ana sms', 'pending', 4, '[P0][PROD] t072 auth down', 't072 auth down. still open after t072-db, which it depends on, recovered.'),
           ('Ops slack', 'pending', 4, '[P0][PROD] t072 auth down', 't072 auth down. still open after t072-db, which it depends on, recovered.')$$,
  'auth, at level 4, pages on-call and the team now, saying what recovered'
);
select is_empty($$select 1 from vigil.alerts where incident_id = (select storage from dep) and status <> 'suppressed'$$,
  'storage, below level 3, is unfolded but not paged');
select results_eq(
  $$select (select count(*)::int from vigil.alerts a where a.incident_id = i.id and a.status = 'pending'), i.escalated_at
      from vigil.incidents i where i.title = 't072 functions down'$$,
  $$values (2, now())$$,
  'functions, at level 3, is paged now, and its acknowledgement timer (escalated_at) starts with that page'
);
select vigil.sweep_alerts();
select is((select escalation_level from vigil.incidents where title = 't072 functions down'), 3,
          'so the next sweep does not page the senior at once for a page nobody has had time to acknowledge');
select set_eq($$select pg_temp.alerts_of((select db from dep), 'resolved')$$, $$values ('Ana sms pending'), ('Ops slack pending')$$,
  'the database''s resolution is told to those its pages reached');

-- ─── depends_on validation and dependencies() ───────────────────────────────────────────────
select throws_ok($$insert into vigil.services (name, kind, config, depends_on) values ('t072-x', 'http', '{"url": "https://x.example.org"}', '{t072-phantom,t072-ghost}')$$,
  '23514', 'invalid depends_on for service "t072-x": no service named t072-ghost, t072-phantom', 'depends_on must name existing services, all missing ones named');
select throws_ok($$update vigil.services set depends_on = '{t072-app}' where name = 't072-app'$$,
  '23514', 'invalid depends_on for service "t072-app": a service cannot depend on itself', 'a service cannot depend on itself');
insert into vigil.services (name, kind, config, depends_on) values ('t072-c', 'http', '{"url": "https://c.example.org"}', '{}');
insert into vigil.services (name, kind, config, depends_on) values ('t072-b', 'http', '{"url": "https://b.example.org"}', '{t072-c}');
insert into vigil.services (name, kind, config, depends_on) values ('t072-a', 'http', '{"url": "https://a.example.org"}', '{t072-b}');
select throws_ok($$update vigil.services set depends_on = '{t072-a}' where name = 't072-c'$$,
  '23514', 'invalid depends_on for service "t072-c": it would make a dependency cycle', 'a → b → c → a is refused as a cycle');
select throws_ok($$update vigil.services set depends_on = '{t072-auth}' where name = 't072-db'$$,
  '23514', 'invalid depends_on for service "t072-db": it would make a dependency cycle',
  'so is the database depending on auth, which depends on it by default');
select set_eq($$select s.name, d.depth from vigil.dependencies((select id from vigil.services where name = 't072-a')) d join vigil.services s on s.id = d.service_id$$,
  $$values ('t072-b'::text, 1), ('t072-c', 2)$$, 'dependencies() is transitive, with the distance');
update vigil.services set depends_on = '{t072-b,t072-c}' where name = 't072-a';
select set_eq($$select s.name, d.depth from vigil.dependencies((select id from vigil.services where name = 't072-a')) d join vigil.services s on s.id = d.service_id$$,
  $$values ('t072-b'::text, 1), ('t072-c', 1)$$, 'a service reached both directly and through another is at the shorter distance, once');
select is_empty($$select 1 from vigil.dependencies((select id from vigil.services where name = 't072-c'))$$, 'an empty depends_on means no dependencies');
update vigil.services set depends_on = '{}' where name = 't072-auth';
select is_empty($$select 1 from vigil.dependencies('00000000-0000-4000-8000-000000000725')$$,
  'auth with an empty depends_on does not depend on the database');
update vigil.services set depends_on = null where name = 't072-auth';
update vigil.services set config = '{"connection_secret": "T072_OTHER_DB_URL"}' where name = 't072-db';
select is_empty($$select 1 from vigil.dependencies('00000000-0000-4000-8000-000000000725')$$,
  'nor, by default, on a postgres service that is some other database (it names a connection_secret)');

-- ─── Flapping ───────────────────────────────────────────────────────────────────────────────
create function pg_temp.transition(p_to vigil.service_status) returns void language sql as $$
  insert into vigil.status_transitions (service_id, from_status, to_status, reason)
  values ('00000000-0000-4000-8000-000000000729', case p_to when 'healthy' then 'degraded'::vigil.service_status else 'healthy' end, p_to, 't072')
$$;
select pg_temp.transition('degraded'), pg_temp.transition('healthy'), pg_temp.transition('degraded'),
       pg_temp.transition('healthy'), pg_temp.transition('degraded');
select is((select flapping_since from vigil.services where name = 't072-flap'), null::timestamptz,
          'five changes within 30 minutes (the threshold) is not flapping');
select pg_temp.transition('healthy');
select is((select flapping_since from vigil.services where name = 't072-flap'), now(), 'the sixth change marks the service flapping');
select pg_temp.transition('degraded');
select pg_temp.transition('healthy');
select set_eq(
  $$select c.name || ' ' || a.channel, a.priority, a.status::text, a.incident_id, a.subject, a.body
      from vigil.alerts a join vigil.contacts c on c.id = a.contact_id
     where a.service_id = '00000000-0000-4000-8000-000000000729' and a.event = 'flapping'$$,
  $$values ('Ana email', 'P2', 'pending', null::bigint, '[P2][PROD] t072-flap is flapping',
            't072-flap changed status 6 times in 30 min (now healthy). Its alerts, but P0 and P1 pages, are held back until it is stable for 30 min.'),
           ('Ops slack', 'P2', 'pending', null::bigint, '[P2][PROD] t072-flap is flapping',
            't072-flap changed status 6 times in 30 min (now healthy). Its alerts, but P0 and P1 pages, are held back until it is stable for 30 min.')$$,
  'exactly one flapping alert per contact (P2: Ana by email, the team on slack), however many changes follow'
);
select pg_temp.open_incident('00000000-0000-4000-8000-000000000729', 'degraded', 't072 flap degraded', 'warning');
select is(vigil.escalate(pg_temp.inc('t072 flap degraded'), 3, 'x'), 0, 'a P2 page of a flapping service is held back');
select is((select distinct suppressed_reason from vigil.alerts where incident_id = pg_temp.inc('t072 flap degraded')),
          format('t072-flap is flapping since %s', to_char(now() at time zone 'UTC', 'HH24:MI "UTC"')),
          'its reason says since when the service is flapping');
update vigil.incidents set status = 'resolved', resolved_at = now() where id = pg_temp.inc('t072 flap degraded');
select pg_temp.open_incident('00000000-0000-4000-8000-000000000729', 'down', 't072 flap down');
select is(vigil.escalate(pg_temp.inc('t072 flap down'), 3, 'x'), 2,
          'a P0 page of a flapping service still goes out (Ana''s sms, the team''s Slack): flapping collapses noise, it does not hide an outage');

select is((vigil.sweep_alerts() ->> 'settled')::int, 0, 'sweep_alerts leaves a service that changed status recently flapping');
select isnt((select flapping_since from vigil.services where name = 't072-flap'), null, 'it is still flapping');
update vigil.status_transitions set created_at = created_at - interval '31 minutes' where service_id = '00000000-0000-4000-8000-000000000729';
select is((vigil.sweep_alerts() ->> 'settled')::int, 1, 'with no change in the last 30 minutes, sweep_alerts settles it');
select is((select flapping_since from vigil.services where name = 't072-flap'), null::timestamptz, 'flapping_since is cleared');
select results_eq(
  $$select c.name || ' ' || a.channel, a.priority, a.status::text, a.subject, a.body
      from vigil.alerts a join vigil.contacts c on c.id = a.contact_id
     where a.service_id = '00000000-0000-4000-8000-000000000729' and a.event = 'stable'$$,
  $$values ('Ops slack', 'info', 'pending', '[PROD] t072-flap is stable again', 't072-flap has not changed status for 30 min; it is healthy.')$$,
  'one stable notice (info: chat only, so the team''s slack)'
);
select is((vigil.sweep_alerts() ->> 'settled')::int, 0, 'a second sweep settles nothing');
select is((select count(*)::int from vigil.alerts where service_id = '00000000-0000-4000-8000-000000000729' and event = 'stable'), 1,
          'and queues no second stable notice');

select * from finish();
rollback;
