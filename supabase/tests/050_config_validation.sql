-- A service's config must match its kind's JSON Schema (vigil.probe_config_schemas, generated
-- from shared/probe-configs.ts). A bad config is refused with check_violation (23514) and a message
-- naming every bad field at once, by path; updates are validated like inserts. Defaults may be
-- left out, and SQL stores the config as given.
begin;
set search_path = extensions, public;
select plan(60);

-- ─── Accepted ───────────────────────────────────────────────────────────────────────────────
select lives_ok(
  $$insert into vigil.services (name, kind, config) values ('t050-http-min', 'http', '{"url":"https://api.example.com/health"}')$$,
  'http: a url alone is enough (every other field has a default or is optional)');
select lives_ok(
  $$insert into vigil.services (name, kind, config) values ('t050-http-full', 'http', '{
      "url": "https://api.example.com/health", "method": "POST", "headers": {"X-Trace": "1"},
      "header_secrets": {"Authorization": "API_TOKEN"}, "body": "{}", "expected_status": [200, 204],
      "latency_warning_ms": 200, "latency_critical_ms": 500, "body_contains": "ok", "json_path": "$.data.items[0].status",
      "json_equals": null, "expected_version": {"value": "1.4.2", "header": "X-Version", "json_path": "$.version"},
      "tls_warning_days": 14, "tls_critical_days": 0, "follow_redirects": false, "max_redirects": 0, "max_body_bytes": 1024}')$$,
  'http: every field set to a valid value is accepted (boundaries included)');
select is((select config from vigil.services where name = 't050-http-min'), '{"url":"https://api.example.com/health"}'::jsonb,
          'the config is stored as given: SQL does not fill in the defaults');
select lives_ok($$insert into vigil.services (name, kind, config) values ('t050-pg-min', 'postgres', '{}')$$,
                'postgres: an empty config is accepted (the project''s own database, default thresholds)');
select lives_ok(
  $$insert into vigil.services (name, kind, config) values ('t050-pg-full', 'postgres',
      '{"connection_secret":"REPLICA_DB_URL","connections_warning_pct":70,"connections_critical_pct":100,"cache_hit_warning_ratio":1,
        "blocked_warning_seconds":0,"dead_tuple_min_rows":0,"xid_age_critical":2147483647,"slow_statements":50.0}')$$,
  'postgres: valid values at their bounds are accepted, and 50.0 counts as an integer');
select lives_ok($$insert into vigil.services (name, kind, config) values ('t050-hb-ping', 'heartbeat', '{"source":"ping","period_seconds":60}')$$,
                'heartbeat ping: source and period alone are accepted (grace defaults)');
select lives_ok(
  $$insert into vigil.services (name, kind, config) values ('t050-hb-cron', 'heartbeat',
      '{"source":"cron","period_seconds":3600,"grace_seconds":0,"job":"nightly-report","function":"report_mailer"}')$$,
  'heartbeat cron: job and the function it calls are accepted');
select lives_ok($$insert into vigil.services (name, kind, config) values ('t050-hb-cycles', 'heartbeat', '{"source":"cycles","period_seconds":10}')$$,
                'heartbeat cycles: accepted with the smallest period');
select lives_ok($$insert into vigil.services (name, kind, config) values ('t050-mgmt', 'supabase_management', '{"project_ref":"abcdefghij0123456789"}')$$,
                'supabase_management: a 20-character lowercase ref alone is accepted');
select lives_ok(
  $$insert into vigil.services (name, kind, config) values ('t050-prom', 'prometheus',
      '{"url":"https://metrics.example.com","basic_auth":{"username":"service_role","password_secret":"SUPABASE_SERVICE_ROLE_KEY"},"disk_warning_pct":0.5,"cpu_critical_pct":100}')$$,
  'prometheus: url with basic auth and thresholds is accepted');
select lives_ok(
  $$insert into vigil.services (name, kind, config) values
      ('t050-auth', 'supabase_auth', '{"synthetic_login":{"email":"probe@example.com","password_secret":"PROBE_PASSWORD"}}'),
      ('t050-storage', 'supabase_storage', '{}'),
      ('t050-realtime', 'supabase_realtime', '{"topic":"vigil:probe"}'),
      ('t050-functions', 'supabase_functions', '{"function":"hello-world","path":"/health","method":"GET"}')$$,
  'supabase_auth, storage, realtime and functions accept valid configs');

-- ─── Refused, with every bad field named ────────────────────────────────────────────────────
select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-x', 'http', '{}')$$, '23514',
  'invalid config for http service "t050-x": config.url: required', 'http: a missing url is refused as required');
select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-x', 'http', '{"url":"https://a.example.com","timeout_ms":5000}')$$, '23514',
  'invalid config for http service "t050-x": config.timeout_ms: unknown field (allowed: body, body_contains, expected_status, '
  'expected_version, follow_redirects, header_secrets, headers, json_equals, json_path, latency_critical_ms, latency_warning_ms, '
  'max_body_bytes, max_redirects, method, tls_critical_days, tls_warning_days, url)',
  'http: an unknown field is refused, naming it and the allowed fields');
select throws_ok(
  $$insert into vigil.services (name, kind, config) values ('t050-x', 'http', '{
      "url": "not a url", "method": "FETCH", "body": 42, "headers": {"X-Ok": 1, "Bad Header": "x"}, "json_path": "data.status",
      "max_redirects": 21, "expected_status": [200, 99, "204"], "expected_version": {"header": "X Version"},
      "follow_redirects": "yes", "latency_warning_ms": 0}')$$,
  '23514',
  $m$invalid config for http service "t050-x": config.url: must be a URL; config.body: must be string, got number; config.method: must be one of "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"; config.headers.X-Ok: must be string, got number; config.headers (field name Bad Header): does not match ^[A-Za-z0-9!#$%&'*+.^_`|~-]+$; config.json_path: does not match ^\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\])*$; config.max_redirects: must be at most 20; config.expected_status[1]: must be at least 100; config.expected_status[2]: must be a whole number, got string; config.expected_version.value: required; config.expected_version.header: does not match ^[A-Za-z0-9!#$%&'*+.^_`|~-]+$; config.follow_redirects: must be boolean, got string; config.latency_warning_ms: must be at least 1$m$,
  'http: format, type, enum, header names, pattern, maximum, array items by index, nested required and minimum are all reported at once');

select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-x', 'postgres',
                   '{"slow_statements":2.5,"xid_age_warning":2147483648,"connection_secret":"db_url","connections_warning_pct":0,"blocked_warning_seconds":-1}')$$,
  '23514',
  'invalid config for postgres service "t050-x": config.slow_statements: must be a whole number, got number; '
  'config.xid_age_warning: must be at most 2147483647; config.connection_secret: does not match ^(?!(SUPABASE_(?!(ANON_KEY|PUBLISHABLE_KEYS|SERVICE_ROLE_KEY|SECRET_KEYS)$)|VIGIL_(TWILIO|SENDGRID)_|(VIGIL_DB_URL|VIGIL_APPROVAL_SECRET|VIGIL_AUDIT_SECRET|VIGIL_DEADMAN_URL)$))[A-Z][A-Z0-9_]{0,127}$; '
  'config.blocked_warning_seconds: must be at least 0; config.connections_warning_pct: must be more than 0',
  'postgres: integer, maximum, secret-name pattern, minimum and exclusive minimum are all reported');

select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-x', 'heartbeat', '{"source":"smoke","period_seconds":60}')$$, '23514',
  'invalid config for heartbeat service "t050-x": config.source: must be one of "ping", "cron", "cycles"',
  'heartbeat: an unknown source is refused, naming the sources');
select throws_like($$insert into vigil.services (name, kind, config) values ('t050-x', 'heartbeat', '{"period_seconds":60}')$$,
  'invalid config for heartbeat service "t050-x": config.source: %', 'heartbeat: a missing source is refused, naming config.source');
select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-x', 'heartbeat', '{"source":"cron","period_seconds":60}')$$, '23514',
  'invalid config for heartbeat service "t050-x": config.job: required', 'heartbeat cron: a missing job is refused as required');
select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-x', 'heartbeat', '{"source":"cron","period_seconds":5.5,"job":"nightly","function":"bad name","grace_seconds":-1}')$$, '23514',
  'invalid config for heartbeat service "t050-x": config.function: does not match ^[A-Za-z0-9_-]{1,64}$; '
  'config.grace_seconds: must be at least 0; config.period_seconds: must be a whole number, got number',
  'heartbeat cron: the branch''s own field rules all apply');
select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-x', 'heartbeat', '{"source":"ping","period_seconds":60,"job":"nightly"}')$$, '23514',
  'invalid config for heartbeat service "t050-x": config.job: unknown field (allowed: grace_seconds, period_seconds, source)',
  'heartbeat ping: a field of another source (job) is unknown here');
select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-x', 'heartbeat', '{"source":"cycles","period_seconds":604801}')$$, '23514',
  'invalid config for heartbeat service "t050-x": config.period_seconds: must be at most 604800', 'heartbeat: a period over a week is refused');

select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-x', 'supabase_management', '{"project_ref":"ABCDEFGHIJ0123456789"}')$$, '23514',
  'invalid config for supabase_management service "t050-x": config.project_ref: does not match ^[a-z0-9]{20}$',
  'supabase_management: an uppercase ref fails the pattern');
select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-x', 'supabase_management', '{"project_ref":"abcdefghij012345678"}')$$, '23514',
  'invalid config for supabase_management service "t050-x": config.project_ref: does not match ^[a-z0-9]{20}$',
  'supabase_management: a 19-character ref fails the pattern');
select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-x', 'supabase_management', '{"services":["db","mail"],"api_url":"api.supabase.com"}')$$, '23514',
  'invalid config for supabase_management service "t050-x": config.project_ref: required; config.api_url: must be a URL; '
  'config.services[1]: must be one of "auth", "db", "pooler", "realtime", "rest", "storage"',
  'supabase_management: required ref, URL format and the enum of an array item are all reported');
select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-x', 'supabase_management', '{"project_ref":"abcdefghij0123456789","services":[]}')$$, '23514',
  'invalid config for supabase_management service "t050-x": config.services: must have at least 1 items',
  'supabase_management: an empty services list is refused');

select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-x', 'prometheus',
                   '{"basic_auth":{"username":""},"bearer_secret":"token","cpu_critical_pct":100.5,"disk_warning_pct":0}')$$, '23514',
  'invalid config for prometheus service "t050-x": config.url: required; config.basic_auth.password_secret: required; '
  'config.basic_auth.username: must be at least 1 characters; config.bearer_secret: does not match ^(?!(SUPABASE_(?!(ANON_KEY|PUBLISHABLE_KEYS|SERVICE_ROLE_KEY|SECRET_KEYS)$)|VIGIL_(TWILIO|SENDGRID)_|(VIGIL_DB_URL|VIGIL_APPROVAL_SECRET|VIGIL_AUDIT_SECRET|VIGIL_DEADMAN_URL)$))[A-Z][A-Z0-9_]{0,127}$; '
  'config.cpu_critical_pct: must be at most 100; config.disk_warning_pct: must be more than 0',
  'prometheus: required url, nested required and minLength, secret pattern, maximum and exclusive minimum are all reported');
select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-x', 'supabase_auth', '{"synthetic_login":{"email":"probe","password_secret":"P"}}')$$, '23514',
  null, 'supabase_auth: a synthetic login email that is not an address is refused');
select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-x', 'supabase_functions', '{"path":"health"}')$$, '23514',
  'invalid config for supabase_functions service "t050-x": config.function: required; config.path: does not match ^(\/[^\s]*)?$',
  'supabase_functions: required function and the path pattern are reported');

select is((select count(*) from vigil.services where name = 't050-x'), 0::bigint, 'no refused config left a row behind');

-- The error points at where the fields are described.
create function pg_temp.insert_failure(p_kind vigil.service_kind, p_config jsonb) returns text
language plpgsql as $$
declare
  state text;
  hint text;
begin
  insert into vigil.services (name, kind, config) values ('t050-probe', p_kind, p_config);
  raise sqlstate 'P0099';
exception
  when sqlstate 'P0099' then return 'accepted';
  when others then
    get stacked diagnostics state = returned_sqlstate, hint = pg_exception_hint;
    return state || ' / ' || hint;
end
$$;
select is(pg_temp.insert_failure('http', '{}'),
          '23514 / Each kind''s fields are in shared/probe-configs.ts and in vigil.probe_config_schemas.',
          'a refused config carries a hint naming where each kind''s fields are described');
select is(pg_temp.insert_failure('http', '{"url":"https://a.example.com"}'), 'accepted', 'the failure helper sees an accepted config as accepted');

-- ─── Updates are validated too ──────────────────────────────────────────────────────────────
select throws_ok($$update vigil.services set config = config || '{"method":"TRACE"}' where name = 't050-http-min'$$, '23514',
  'invalid config for http service "t050-http-min": config.method: must be one of "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"',
  'an update to an invalid config is refused');
select throws_like($$update vigil.services set kind = 'postgres' where name = 't050-http-min'$$,
  'invalid config for postgres service "t050-http-min": config.url: unknown field (allowed: blocked_critical_seconds, %',
  'changing the kind validates the kept config against the new kind''s schema');
select throws_ok($$update vigil.services set config = '{"source":"cron","period_seconds":60}' where name = 't050-hb-ping'$$, '23514',
  'invalid config for heartbeat service "t050-hb-ping": config.job: required', 'switching a heartbeat to cron without a job is refused');
select lives_ok($$update vigil.services set config = '{"url":"https://b.example.com","method":"HEAD"}' where name = 't050-http-min'$$,
                'an update to a valid config is accepted');
select results_eq($$select kind::text, config from vigil.services where name = 't050-http-min'$$,
                  $$values ('http'::text, '{"url":"https://b.example.com","method":"HEAD"}'::jsonb)$$,
                  'only the valid update took effect');

-- ─── json_schema_errors on its own ──────────────────────────────────────────────────────────
select is(vigil.json_schema_errors('{"type":"integer"}', '3'), '{}'::text[], 'integer accepts 3');
select is(vigil.json_schema_errors('{"type":"integer"}', '3.0'), '{}'::text[], 'integer accepts 3.0 (a whole number)');
select is(vigil.json_schema_errors('{"type":"integer"}', '3.5'), array['$: must be a whole number, got number'], 'integer refuses 3.5');
select is(vigil.json_schema_errors('{"type":"integer"}', '"3"'), array['$: must be a whole number, got string'], 'integer refuses the string "3"');
select is(vigil.json_schema_errors('{"type":"number"}', '3.5'), '{}'::text[], 'number accepts 3.5');
select is(vigil.json_schema_errors('{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1}', '0'),
          array['$: must be more than 0'], 'exclusiveMinimum refuses the bound itself');
select is(vigil.json_schema_errors('{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1}', '0.0001'), '{}'::text[],
          'exclusiveMinimum accepts just above the bound');
select is(vigil.json_schema_errors('{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1}', '1'),
          array['$: must be less than 1'], 'exclusiveMaximum refuses the bound itself');
select is(vigil.json_schema_errors('{"type":"number","minimum":0,"maximum":1}', '0'), '{}'::text[], 'minimum is inclusive');
select is(vigil.json_schema_errors('{"type":"object","propertyNames":{"pattern":"^[a-z]+$"}}', '{"ok":1,"Bad":2}'),
          array['$ (field name Bad): does not match ^[a-z]+$'], 'propertyNames checks each key and names the bad one');
select is(vigil.json_schema_errors('{"type":"object","additionalProperties":{"type":"string"}}', '{"a":"x","b":2}'),
          array['$.b: must be string, got number'], 'a schema in additionalProperties checks each extra value by path');
select is(vigil.json_schema_errors('{"type":["string","null"]}', 'null'), '{}'::text[], 'a type list accepts any of its types');
select is(vigil.json_schema_errors('{"type":["string","null"]}', '1'), array['$: must be string or null, got number'],
          'a type list refuses another type and names them all');
select is(vigil.json_schema_errors('{"type":"array","items":{"type":"integer"},"maxItems":2}', '[1,"x",3]', 'config.codes'),
          array['config.codes: must have at most 2 items', 'config.codes[1]: must be a whole number, got string'],
          'array length and each item are checked, items by index under the given path');
select is(vigil.json_schema_errors('{"anyOf":[{"type":"object","required":["a","b","c"]},{"type":"object","required":["a","b"]}]}', '{"a":1}'),
          array['$.b: required'], 'a plain anyOf reports the errors of the closest branch');
select is(vigil.json_schema_errors('{"anyOf":[{"type":"string"},{"type":"number"}]}', '2'), '{}'::text[],
          'a plain anyOf accepts a value any branch accepts');
select is(vigil.json_schema_errors('{}', '{"anything":[1,2,{"x":null}]}'), '{}'::text[], 'an empty schema accepts anything');

-- A row may name only secrets meant for outbound use: never the database's URL nor Vigil's own.
select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-leak', 'http',
                   '{"url": "https://api.example.org", "header_secrets": {"x-api-key": "SUPABASE_DB_URL"}}')$$,
  '23514', null, 'an http probe may not send the database URL as a header');
select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-leak2', 'prometheus',
                   '{"url": "https://m.example.org/metrics", "bearer_secret": "VIGIL_APPROVAL_SECRET"}')$$,
  '23514', null, 'nor a prometheus probe the approval secret');
select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-leak3', 'http',
                   '{"url": "https://api.example.org", "header_secrets": {"authorization": "SUPABASE_JWT_SECRET"}}')$$,
  '23514', null, 'nor any platform SUPABASE_ variable but the project''s API keys');
select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-leak4', 'supabase_storage',
                   '{"apikey_secret": "VIGIL_DB_URL"}')$$,
  '23514', null, 'nor Vigil''s own connection string');
select throws_ok($$insert into vigil.services (name, kind, config) values ('t050-leak5', 'http',
                   '{"url": "https://api.example.org", "header_secrets": {"authorization": "VIGIL_TWILIO_AUTH_TOKEN"}}')$$,
  '23514', null, 'nor Vigil''s SMS credentials');
select lives_ok($$insert into vigil.services (name, kind, config) values ('t050-own', 'supabase_storage',
                   '{"apikey_secret": "SUPABASE_SERVICE_ROLE_KEY"}')$$,
  'the project''s own key, for the project''s own storage (the probe sends it nowhere else)');
select lives_ok($$insert into vigil.services (name, kind, config) values ('t050-mine', 'http',
                   '{"url": "https://api.example.org", "header_secrets": {"x-api-key": "PARTNER_API_KEY"}}')$$,
  'a secret the deployer set, under any name of theirs');
select * from finish();
rollback;
