-- Log patterns: what in a log line means trouble, each with a severity and an action, matched by
-- the logs probe against the database's and the edge functions' logs (the cluster's log file
-- locally, the Management API's logs endpoint on Supabase). The spec's critical patterns are
-- built in; a team adds its own. A pattern is a Postgres regular expression (case-insensitive,
-- `~*`), checked when it is written: one that does not compile is refused with its name, never
-- stored to fail later. Matching happens here too (vigil.match_log_lines), so what is checked is
-- what runs.
--
-- Actions: 'page' sends the incident straight to humans (the only way Vigil tells people of
-- suspected corruption: it never acts on it), 'alert' opens an incident routed by its severity,
-- 'record' only keeps the match on the check.

create table vigil.log_patterns (
  name text primary key,
  pattern text not null,
  severity vigil.severity not null,
  action text not null default 'alert',
  sources text[] not null default array['postgres', 'functions'],
  -- Matches in one check below this are noise (one mistyped password is not an attack).
  min_count integer not null default 1,
  -- Among patterns of the same severity and action, the higher names the incident first.
  priority integer not null default 0,
  description text not null default '',
  builtin boolean not null default false,
  enabled boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint log_pattern_name check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  constraint log_pattern_length check (length(pattern) between 1 and 1000),
  constraint log_pattern_action check (action in ('page', 'alert', 'record')),
  constraint log_pattern_sources check (cardinality(sources) > 0 and sources <@ array['postgres', 'functions']),
  constraint log_pattern_min_count check (min_count between 1 and 100000),
  constraint log_pattern_priority check (priority between -1000 and 1000),
  constraint log_pattern_description check (length(description) <= 500)
);
comment on table vigil.log_patterns is
  'What in a log line means trouble: a case-insensitive Postgres regular expression, its severity, its action (page, alert, record) and the logs it applies to.';

create function vigil.check_log_pattern() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  begin
    perform '' ~* new.pattern;
  exception when invalid_regular_expression then
    raise exception 'log pattern %: % is not a valid regular expression: %',
      new.name, pg_catalog.quote_literal(pg_catalog.left(new.pattern, 200)), sqlerrm
      using errcode = '2201B';
  end;
  new.updated_at := pg_catalog.now();
  return new;
end
$$;
revoke execute on function vigil.check_log_pattern() from public;
create trigger log_patterns_valid before insert or update on vigil.log_patterns
  for each row execute function vigil.check_log_pattern();

insert into vigil.log_patterns (name, pattern, severity, action, sources, min_count, priority, description, builtin) values
  ('suspected_corruption',
   '(PANIC|FATAL|ERROR):.*(corrupt|invalid page in block|could not read block|checksum verification failed|page verification failed|unexpected zero page|invalid memory alloc request size)',
   'critical', 'page', array['postgres'], 1, 100,
   'Suspected data corruption: a person must look now. Vigil never acts on it (no restart, no vacuum).', true),
  ('server_panic', '\mPANIC:', 'critical', 'page', array['postgres'], 1, 0,
   'The database server panicked: every session was cut and it restarted.', true),
  ('out_of_memory',
   '(out of memory|oom-killer|Out of memory: Killed process|was terminated by signal 9)',
   'critical', 'page', array['postgres', 'functions'], 1, 50,
   'Memory ran out: the kernel killed a process, or Postgres could not allocate.', true),
  ('database_fatal', 'FATAL:.*database', 'warning', 'alert', array['postgres'], 1, 0,
   'A FATAL error about a database: it is starting, shutting down, in recovery, or gone.', true),
  ('authentication_failures',
   '(password authentication failed|authentication failed for user|no pg_hba\.conf entry)',
   'warning', 'alert', array['postgres'], 5, 0,
   'Repeated failed logins: a wrong secret after a rotation, or someone guessing.', true),
  ('function_resource_limit',
   '(memory limit exceeded|wall ?clock time limit|cpu time (soft )?limit reached|worker (was )?terminated)',
   'warning', 'alert', array['functions'], 1, 0,
   'An edge function hit its memory, CPU or wall-clock limit.', true);

/**
 * The enabled patterns of log p_log ('postgres' or 'functions') that p_lines match at least
 * min_count times. p_lines is a JSON array of {at, line}; each match says how many lines, and the
 * first line with its time.
 */
create function vigil.match_log_lines(p_log text, p_lines jsonb)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'pattern', p.name, 'severity', p.severity, 'action', p.action, 'count', m.n,
           'line', m.first_line, 'at', m.first_at, 'description', p.description, 'priority', p.priority)
         order by p.severity desc, p.priority desc, p.name), '[]')
    from vigil.log_patterns p
    cross join lateral (
      select count(*)::int as n,
             (array_agg(t.l ->> 'line' order by t.o))[1] as first_line,
             (array_agg(t.l ->> 'at' order by t.o))[1] as first_at
        from jsonb_array_elements(case when jsonb_typeof(p_lines) = 'array' then p_lines else '[]' end)
             with ordinality as t(l, o)
       where (t.l ->> 'line') ~* p.pattern) m
   where p.enabled and p_log = any (p.sources) and m.n >= p.min_count
$$;
revoke execute on function vigil.match_log_lines(text, jsonb) from public;
grant execute on function vigil.match_log_lines(text, jsonb) to service_role;

grant select, insert, update, delete on vigil.log_patterns to service_role;
grant select on vigil.log_patterns to authenticated;
alter table vigil.log_patterns enable row level security;
create policy "Operators can read log patterns" on vigil.log_patterns
  for select to authenticated using ((select vigil.is_operator()));

select vigil.settle_privileges();

-- The logs kind's config schema; the other kinds' are unchanged. The schemas, regenerated:
-- Generated by devstack/probe-schemas-sql.ts from shared/probe-configs.ts. Do not edit by hand.
insert into vigil.probe_config_schemas (kind, schema) values
  ('postgres', '{"type":"object","properties":{"connection_secret":{"type":"string","pattern":"^(?!(SUPABASE_(?!(ANON_KEY|PUBLISHABLE_KEYS|SERVICE_ROLE_KEY|SECRET_KEYS)$)|VIGIL_(TWILIO|SENDGRID)_|(VIGIL_DB_URL|VIGIL_APPROVAL_SECRET|VIGIL_AUDIT_SECRET|VIGIL_DEADMAN_URL)$))[A-Z][A-Z0-9_]{0,127}$"},"connections_warning_pct":{"default":80,"type":"number","exclusiveMinimum":0,"maximum":100},"connections_critical_pct":{"default":95,"type":"number","exclusiveMinimum":0,"maximum":100},"blocked_warning_seconds":{"default":10,"type":"number","minimum":0,"maximum":86400},"blocked_critical_seconds":{"default":60,"type":"number","minimum":0,"maximum":86400},"long_running_seconds":{"default":300,"type":"number","minimum":1,"maximum":86400},"idle_in_transaction_seconds":{"default":300,"type":"number","minimum":1,"maximum":86400},"cache_hit_warning_ratio":{"default":0.99,"type":"number","exclusiveMinimum":0,"maximum":1},"cache_hit_critical_ratio":{"default":0.95,"type":"number","exclusiveMinimum":0,"maximum":1},"dead_tuple_warning_ratio":{"default":0.2,"type":"number","exclusiveMinimum":0,"maximum":1},"dead_tuple_min_rows":{"default":1000,"type":"integer","minimum":0,"maximum":9007199254740991},"dead_tuple_grace_seconds":{"default":600,"type":"integer","minimum":0,"maximum":604800},"stale_stats_min_changes":{"default":10000,"type":"integer","minimum":1,"maximum":9007199254740991},"stale_stats_ratio":{"default":0.2,"type":"number","exclusiveMinimum":0,"maximum":1},"stale_stats_seconds":{"default":3600,"type":"integer","minimum":0,"maximum":2592000},"xid_age_warning":{"default":500000000,"type":"integer","minimum":1,"maximum":2147483647},"xid_age_critical":{"default":1200000000,"type":"integer","minimum":1,"maximum":2147483647},"replication_lag_warning_seconds":{"default":60,"type":"number","minimum":0},"replication_lag_critical_seconds":{"default":300,"type":"number","minimum":0},"slow_statements":{"default":5,"type":"integer","minimum":0,"maximum":50},"slow_min_calls":{"default":10,"type":"integer","minimum":1,"maximum":9007199254740991},"slow_ignore":{"default":["select $1","select now()","select pg_sleep($1)"],"maxItems":100,"type":"array","items":{"type":"string","minLength":1,"maxLength":500}}},"additionalProperties":false}'),
  ('http', '{"type":"object","properties":{"url":{"type":"string","format":"uri"},"method":{"default":"GET","type":"string","enum":["GET","HEAD","POST","PUT","PATCH","DELETE","OPTIONS"]},"headers":{"default":{},"type":"object","propertyNames":{"type":"string","pattern":"^[A-Za-z0-9!#$%&''*+.^_`|~-]+$"},"additionalProperties":{"type":"string","maxLength":8192}},"header_secrets":{"default":{},"type":"object","propertyNames":{"type":"string","pattern":"^[A-Za-z0-9!#$%&''*+.^_`|~-]+$"},"additionalProperties":{"type":"string","pattern":"^(?!(SUPABASE_(?!(ANON_KEY|PUBLISHABLE_KEYS|SERVICE_ROLE_KEY|SECRET_KEYS)$)|VIGIL_(TWILIO|SENDGRID)_|(VIGIL_DB_URL|VIGIL_APPROVAL_SECRET|VIGIL_AUDIT_SECRET|VIGIL_DEADMAN_URL)$))[A-Z][A-Z0-9_]{0,127}$"}},"body":{"type":"string","maxLength":65536},"expected_status":{"default":[200],"minItems":1,"maxItems":50,"type":"array","items":{"type":"integer","minimum":100,"maximum":599}},"latency_warning_ms":{"type":"integer","minimum":1,"maximum":600000},"latency_critical_ms":{"type":"integer","minimum":1,"maximum":600000},"body_contains":{"type":"string","minLength":1,"maxLength":1024},"json_path":{"type":"string","pattern":"^\\$(\\.[A-Za-z_][A-Za-z0-9_-]*|\\[\\d+\\])*$"},"json_equals":{"type":["string","number","boolean","null"]},"expected_version":{"type":"object","properties":{"value":{"type":"string","minLength":1,"maxLength":256},"header":{"type":"string","pattern":"^[A-Za-z0-9!#$%&''*+.^_`|~-]+$"},"json_path":{"type":"string","pattern":"^\\$(\\.[A-Za-z_][A-Za-z0-9_-]*|\\[\\d+\\])*$"}},"required":["value"],"additionalProperties":false},"tls_warning_days":{"default":14,"type":"integer","minimum":1,"maximum":365},"tls_critical_days":{"default":3,"type":"integer","minimum":0,"maximum":365},"follow_redirects":{"default":true,"type":"boolean"},"max_redirects":{"default":5,"type":"integer","minimum":0,"maximum":20},"max_body_bytes":{"default":1048576,"type":"integer","minimum":1024,"maximum":10485760}},"required":["url"],"additionalProperties":false}'),
  ('supabase_auth', '{"type":"object","properties":{"url":{"type":"string","format":"uri"},"apikey_secret":{"default":"SUPABASE_ANON_KEY","type":"string","pattern":"^(?!(SUPABASE_(?!(ANON_KEY|PUBLISHABLE_KEYS|SERVICE_ROLE_KEY|SECRET_KEYS)$)|VIGIL_(TWILIO|SENDGRID)_|(VIGIL_DB_URL|VIGIL_APPROVAL_SECRET|VIGIL_AUDIT_SECRET|VIGIL_DEADMAN_URL)$))[A-Z][A-Z0-9_]{0,127}$"},"latency_warning_ms":{"type":"integer","minimum":1,"maximum":600000},"latency_critical_ms":{"type":"integer","minimum":1,"maximum":600000},"synthetic_login":{"type":"object","properties":{"email":{"type":"string","format":"email","pattern":"^(?:[A-Za-z0-9_''+\\-]+\\.)*[A-Za-z0-9_''+\\-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9\\-]*\\.)+[A-Za-z]{2,}$"},"password_secret":{"type":"string","pattern":"^(?!(SUPABASE_(?!(ANON_KEY|PUBLISHABLE_KEYS|SERVICE_ROLE_KEY|SECRET_KEYS)$)|VIGIL_(TWILIO|SENDGRID)_|(VIGIL_DB_URL|VIGIL_APPROVAL_SECRET|VIGIL_AUDIT_SECRET|VIGIL_DEADMAN_URL)$))[A-Z][A-Z0-9_]{0,127}$"}},"required":["email","password_secret"],"additionalProperties":false}},"additionalProperties":false}'),
  ('supabase_storage', '{"type":"object","properties":{"url":{"type":"string","format":"uri"},"apikey_secret":{"default":"SUPABASE_SERVICE_ROLE_KEY","type":"string","pattern":"^(?!(SUPABASE_(?!(ANON_KEY|PUBLISHABLE_KEYS|SERVICE_ROLE_KEY|SECRET_KEYS)$)|VIGIL_(TWILIO|SENDGRID)_|(VIGIL_DB_URL|VIGIL_APPROVAL_SECRET|VIGIL_AUDIT_SECRET|VIGIL_DEADMAN_URL)$))[A-Z][A-Z0-9_]{0,127}$"},"latency_warning_ms":{"type":"integer","minimum":1,"maximum":600000},"latency_critical_ms":{"type":"integer","minimum":1,"maximum":600000},"bucket":{"type":"string","minLength":1,"maxLength":100}},"additionalProperties":false}'),
  ('supabase_realtime', '{"type":"object","properties":{"url":{"type":"string","format":"uri"},"apikey_secret":{"default":"SUPABASE_ANON_KEY","type":"string","pattern":"^(?!(SUPABASE_(?!(ANON_KEY|PUBLISHABLE_KEYS|SERVICE_ROLE_KEY|SECRET_KEYS)$)|VIGIL_(TWILIO|SENDGRID)_|(VIGIL_DB_URL|VIGIL_APPROVAL_SECRET|VIGIL_AUDIT_SECRET|VIGIL_DEADMAN_URL)$))[A-Z][A-Z0-9_]{0,127}$"},"topic":{"default":"vigil-probe","type":"string","pattern":"^[A-Za-z0-9:_-]{1,100}$"},"latency_warning_ms":{"type":"integer","minimum":1,"maximum":600000},"latency_critical_ms":{"type":"integer","minimum":1,"maximum":600000}},"additionalProperties":false}'),
  ('supabase_functions', '{"type":"object","properties":{"url":{"type":"string","format":"uri"},"apikey_secret":{"default":"SUPABASE_SERVICE_ROLE_KEY","type":"string","pattern":"^(?!(SUPABASE_(?!(ANON_KEY|PUBLISHABLE_KEYS|SERVICE_ROLE_KEY|SECRET_KEYS)$)|VIGIL_(TWILIO|SENDGRID)_|(VIGIL_DB_URL|VIGIL_APPROVAL_SECRET|VIGIL_AUDIT_SECRET|VIGIL_DEADMAN_URL)$))[A-Z][A-Z0-9_]{0,127}$"},"latency_warning_ms":{"type":"integer","minimum":1,"maximum":600000},"latency_critical_ms":{"type":"integer","minimum":1,"maximum":600000},"function":{"type":"string","pattern":"^[A-Za-z0-9_-]{1,64}$"},"path":{"default":"","type":"string","maxLength":1024,"pattern":"^(\\/[^\\s]*)?$"},"method":{"default":"POST","type":"string","enum":["GET","POST"]},"body":{"type":"string","maxLength":65536},"expected_status":{"default":[200],"minItems":1,"maxItems":50,"type":"array","items":{"type":"integer","minimum":100,"maximum":599}}},"required":["function"],"additionalProperties":false}'),
  ('supabase_management', '{"type":"object","properties":{"api_url":{"default":"https://api.supabase.com","type":"string","format":"uri"},"project_ref":{"type":"string","pattern":"^[a-z0-9]{20}$"},"access_token_secret":{"default":"VIGIL_SUPABASE_ACCESS_TOKEN","type":"string","pattern":"^(?!(SUPABASE_(?!(ANON_KEY|PUBLISHABLE_KEYS|SERVICE_ROLE_KEY|SECRET_KEYS)$)|VIGIL_(TWILIO|SENDGRID)_|(VIGIL_DB_URL|VIGIL_APPROVAL_SECRET|VIGIL_AUDIT_SECRET|VIGIL_DEADMAN_URL)$))[A-Z][A-Z0-9_]{0,127}$"},"services":{"default":["auth","db","pooler","realtime","rest","storage"],"minItems":1,"type":"array","items":{"type":"string","enum":["auth","db","pooler","realtime","rest","storage"]}}},"required":["project_ref"],"additionalProperties":false}'),
  ('prometheus', '{"type":"object","properties":{"url":{"type":"string","format":"uri"},"basic_auth":{"type":"object","properties":{"username":{"type":"string","minLength":1,"maxLength":256},"password_secret":{"type":"string","pattern":"^(?!(SUPABASE_(?!(ANON_KEY|PUBLISHABLE_KEYS|SERVICE_ROLE_KEY|SECRET_KEYS)$)|VIGIL_(TWILIO|SENDGRID)_|(VIGIL_DB_URL|VIGIL_APPROVAL_SECRET|VIGIL_AUDIT_SECRET|VIGIL_DEADMAN_URL)$))[A-Z][A-Z0-9_]{0,127}$"}},"required":["username","password_secret"],"additionalProperties":false},"bearer_secret":{"type":"string","pattern":"^(?!(SUPABASE_(?!(ANON_KEY|PUBLISHABLE_KEYS|SERVICE_ROLE_KEY|SECRET_KEYS)$)|VIGIL_(TWILIO|SENDGRID)_|(VIGIL_DB_URL|VIGIL_APPROVAL_SECRET|VIGIL_AUDIT_SECRET|VIGIL_DEADMAN_URL)$))[A-Z][A-Z0-9_]{0,127}$"},"cpu_warning_pct":{"type":"number","exclusiveMinimum":0,"maximum":100},"cpu_critical_pct":{"type":"number","exclusiveMinimum":0,"maximum":100},"memory_warning_pct":{"type":"number","exclusiveMinimum":0,"maximum":100},"memory_critical_pct":{"type":"number","exclusiveMinimum":0,"maximum":100},"disk_warning_pct":{"default":80,"type":"number","exclusiveMinimum":0,"maximum":100},"disk_critical_pct":{"default":90,"type":"number","exclusiveMinimum":0,"maximum":100},"disk_mountpoint":{"default":"/","type":"string","minLength":1,"maxLength":256}},"required":["url"],"additionalProperties":false}'),
  ('heartbeat', '{"oneOf":[{"type":"object","properties":{"source":{"type":"string","const":"ping"},"period_seconds":{"type":"integer","minimum":10,"maximum":604800},"grace_seconds":{"default":60,"type":"integer","minimum":0,"maximum":604800}},"required":["source","period_seconds"],"additionalProperties":false},{"type":"object","properties":{"source":{"type":"string","const":"cron"},"period_seconds":{"type":"integer","minimum":10,"maximum":604800},"grace_seconds":{"default":60,"type":"integer","minimum":0,"maximum":604800},"job":{"type":"string","minLength":1,"maxLength":200},"function":{"type":"string","pattern":"^[A-Za-z0-9_-]{1,64}$"}},"required":["source","period_seconds","job"],"additionalProperties":false},{"type":"object","properties":{"source":{"type":"string","const":"cycles"},"period_seconds":{"type":"integer","minimum":10,"maximum":604800},"grace_seconds":{"default":60,"type":"integer","minimum":0,"maximum":604800}},"required":["source","period_seconds"],"additionalProperties":false}]}'),
  ('vercel', '{"type":"object","properties":{"api_url":{"default":"https://api.vercel.com","type":"string","format":"uri"},"project_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]{1,100}$"},"token_secret":{"default":"VIGIL_VERCEL_TOKEN","type":"string","pattern":"^(?!(SUPABASE_(?!(ANON_KEY|PUBLISHABLE_KEYS|SERVICE_ROLE_KEY|SECRET_KEYS)$)|VIGIL_(TWILIO|SENDGRID)_|(VIGIL_DB_URL|VIGIL_APPROVAL_SECRET|VIGIL_AUDIT_SECRET|VIGIL_DEADMAN_URL)$))[A-Z][A-Z0-9_]{0,127}$"},"team_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]{1,100}$"},"target":{"default":"production","type":"string","enum":["production","preview"]},"build_warning_minutes":{"default":5,"type":"number","minimum":1,"maximum":1440},"build_critical_minutes":{"default":15,"type":"number","minimum":1,"maximum":1440}},"required":["project_id"],"additionalProperties":false}'),
  ('logs', '{"oneOf":[{"type":"object","properties":{"source":{"type":"string","const":"file"},"path":{"type":"string","minLength":2,"maxLength":1024,"pattern":"^\\/[^\\0]*$"},"log":{"default":"postgres","type":"string","enum":["postgres","functions"]},"max_bytes":{"default":1048576,"type":"integer","minimum":1024,"maximum":16777216},"hold_minutes":{"default":60,"type":"integer","minimum":1,"maximum":10080}},"required":["source","path"],"additionalProperties":false},{"type":"object","properties":{"source":{"type":"string","const":"logs_api"},"api_url":{"default":"https://api.supabase.com","type":"string","format":"uri"},"project_ref":{"type":"string","pattern":"^[a-z0-9]{20}$"},"access_token_secret":{"default":"VIGIL_SUPABASE_ACCESS_TOKEN","type":"string","pattern":"^(?!(SUPABASE_(?!(ANON_KEY|PUBLISHABLE_KEYS|SERVICE_ROLE_KEY|SECRET_KEYS)$)|VIGIL_(TWILIO|SENDGRID)_|(VIGIL_DB_URL|VIGIL_APPROVAL_SECRET|VIGIL_AUDIT_SECRET|VIGIL_DEADMAN_URL)$))[A-Z][A-Z0-9_]{0,127}$"},"log":{"default":"postgres","type":"string","enum":["postgres","functions"]},"max_rows":{"default":1000,"type":"integer","minimum":1,"maximum":10000},"hold_minutes":{"default":60,"type":"integer","minimum":1,"maximum":10080}},"required":["source","project_ref"],"additionalProperties":false}]}')
on conflict (kind) do update set schema = excluded.schema;
