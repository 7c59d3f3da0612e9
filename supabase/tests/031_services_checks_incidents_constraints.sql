-- Shape invariants on what is watched and what was seen: service names and config, a 'down'
-- check carries its reason, and incidents are one open per (service, kind) and resolved with a time.
begin;
set search_path = extensions, public;
select plan(26);

insert into vigil.services (id, name, kind, config) values ('00000000-0000-4000-8000-000000000311', 't031-api', 'http', '{"url":"https://t031.example.com"}');

-- services
select throws_ok($$insert into vigil.services (name, kind, config) values ('Bad Name!', 'http', '{"url":"https://t031.example.com"}')$$, '23514',
  'new row for relation "services" violates check constraint "service_name_format"', 'a service name with capitals, space and ! is rejected');
select throws_ok($$insert into vigil.services (name, kind, config) values ('-leading-dash', 'http', '{"url":"https://t031.example.com"}')$$, '23514',
  'new row for relation "services" violates check constraint "service_name_format"', 'a service name must start with a letter or digit');
select throws_ok($$insert into vigil.services (name, kind, config) values (repeat('a', 64), 'http', '{"url":"https://t031.example.com"}')$$, '23514',
  'new row for relation "services" violates check constraint "service_name_format"', 'a 64-character service name is rejected');
select lives_ok($$insert into vigil.services (name, kind, config) values ('t031-api.v2_' || repeat('a', 51), 'http', '{"url":"https://t031.example.com"}')$$,
                'a 63-character name of lowercase letters, digits, dot, dash and underscore is accepted');
-- The kind's config schema (050_config_validation) refuses a non-object before the constraint sees it.
select throws_ok($$insert into vigil.services (name, kind, config) values ('t031-list', 'http', '[]')$$, '23514',
  'invalid config for http service "t031-list": config: must be object, got array', 'a service config that is an array is rejected');
select throws_ok($$insert into vigil.services (name, kind, config) values ('t031-scalar', 'http', '"https://x"')$$, '23514',
  'invalid config for http service "t031-scalar": config: must be object, got string', 'a service config that is a string is rejected');
select throws_ok($$insert into vigil.services (name, kind, config) values ('t031-hb-list', 'heartbeat', '[]')$$, '23514',
  'invalid config for heartbeat service "t031-hb-list": config: must be object, got array',
  'a heartbeat config (a union of objects) that is an array is rejected');
select throws_ok($$insert into vigil.services (name, kind, config) values ('t031-api', 'http', '{"url":"https://t031.example.com"}')$$, '23505', null,
                 'service names are unique');
select throws_ok($$insert into vigil.services (name, kind) values ('t031-ftp', 'ftp')$$, '22P02',
  'invalid input value for enum vigil.service_kind: "ftp"', 'an unknown service kind is rejected');
select throws_ok($$update vigil.services set actions = '["restart"]' where name = 't031-api'$$, '23514',
  'new row for relation "services" violates check constraint "service_actions_is_object"', 'a service''s actions must be an object, not an array');
select lives_ok($$update vigil.services set actions = '{"restart": {"kind": "webhook"}}' where name = 't031-api'$$,
                'a service''s actions may be an object');

-- checks
select throws_ok($$insert into vigil.checks (service_id, status) values ('00000000-0000-4000-8000-000000000311', 'down')$$, '23514',
  'new row for relation "checks" violates check constraint "check_down_has_reason"', 'a down check without an error is rejected');
select lives_ok($$insert into vigil.checks (service_id, status, error) values ('00000000-0000-4000-8000-000000000311', 'down', 'HTTP 503')$$,
                'a down check with an error is accepted');
select lives_ok($$insert into vigil.checks (service_id, status) values ('00000000-0000-4000-8000-000000000311', 'degraded')$$,
                'a degraded check needs no error');
select throws_ok($$insert into vigil.checks (service_id, status, response_ms) values ('00000000-0000-4000-8000-000000000311', 'healthy', -1)$$, '23514',
  'new row for relation "checks" violates check constraint "check_response_ms_nonnegative"', 'a negative response time is rejected');

-- incidents
select lives_ok($$insert into vigil.incidents (service_id, kind, severity, title) values ('00000000-0000-4000-8000-000000000311', 'latency', 'warning', 't031 first')$$,
                'an open incident is accepted');
select throws_ok($$insert into vigil.incidents (service_id, kind, severity, title) values ('00000000-0000-4000-8000-000000000311', 'latency', 'critical', 't031 second')$$, '23505',
  'duplicate key value violates unique constraint "incidents_one_open_per_kind"', 'a second open incident of the same kind on the same service is rejected');
select lives_ok($$insert into vigil.incidents (service_id, kind, severity, title) values ('00000000-0000-4000-8000-000000000311', 'errors', 'critical', 't031 other kind')$$,
                'an open incident of another kind on the same service is accepted');
select throws_ok($$update vigil.incidents set status = 'resolved' where title = 't031 first'$$, '23514',
  'new row for relation "incidents" violates check constraint "incident_resolution"', 'a resolved incident without resolved_at is rejected');
select throws_ok($$update vigil.incidents set resolved_at = now() where title = 't031 first'$$, '23514',
  'new row for relation "incidents" violates check constraint "incident_resolution"', 'an open incident with resolved_at is rejected');
select lives_ok($$update vigil.incidents set status = 'resolved', resolved_at = now() where title = 't031 first'$$,
                'resolving with resolved_at is accepted');
select lives_ok($$insert into vigil.incidents (service_id, kind, severity, title) values ('00000000-0000-4000-8000-000000000311', 'latency', 'warning', 't031 again')$$,
                'once the first is resolved, a new open incident of that kind is accepted');
select throws_ok($$insert into vigil.incidents (service_id, kind, severity, title) values ('00000000-0000-4000-8000-000000000311', 'Bad Kind', 'warning', 'x')$$, '23514',
  'new row for relation "incidents" violates check constraint "incident_kind_format"', 'an incident kind must be snake_case');
-- The escalation ladder has four rungs above none.
select throws_ok($$update vigil.incidents set escalation_level = 5 where title = 't031 again'$$, '23514',
  'new row for relation "incidents" violates check constraint "incident_escalation_level"', 'an escalation level above 4 is rejected');
select throws_ok($$update vigil.incidents set escalation_level = -1 where title = 't031 again'$$, '23514',
  'new row for relation "incidents" violates check constraint "incident_escalation_level"', 'a negative escalation level is rejected');
select lives_ok($$update vigil.incidents set escalation_level = 4 where title = 't031 again'$$, 'escalation level 4 is accepted');

select * from finish();
rollback;
