-- Config as code: `vigil apply` turns a vigil.yml into rows of the configured tables (settings,
-- alert routes, services, contacts, heal policies, log patterns) in one transaction, and keeps what
-- it applied, so the next apply can tell what SQL changed since (drift) instead of overwriting it.
-- The CLI validates the file and computes the plan; these functions read the state it compares
-- against and carry the plan out, checking every row is still as the CLI saw it.

create table vigil.config_applies (
  id bigint generated always as identity primary key,
  applied_at timestamptz not null default now(),
  /** Who ran it: the CLI's user and host, in words (the service-role key names nobody). */
  applied_by text not null,
  /** The file applied: its name and SHA-256. */
  source text not null,
  /** The newest migration the CLI knew, and the database's own. */
  cli_schema text not null,
  db_schema text,
  /** Drifted rows were overwritten on purpose (--force). */
  forced boolean not null default false,
  /** The state the file asked for, as applied: what the next apply compares the tables against. */
  managed jsonb not null,
  /** What this apply changed: one entry a row (table, key, op, the fields before and after). */
  changes jsonb not null,
  /** What had changed in SQL since the previous apply, as found before this one. */
  drift jsonb not null default '[]',
  constraint config_apply_by check (length(applied_by) between 1 and 200),
  constraint config_apply_source check (length(source) between 1 and 500),
  constraint config_apply_managed check (jsonb_typeof(managed) = 'object'),
  constraint config_apply_changes check (jsonb_typeof(changes) = 'array'),
  constraint config_apply_drift check (jsonb_typeof(drift) = 'array')
);
comment on table vigil.config_applies is
  'Each `vigil apply` of a vigil.yml: who, which file, what it changed, and the state it left, against which the next apply finds what SQL changed since.';

/**
 * The newest of Vigil's migrations (named vigil_…) this database has applied, from the Supabase
 * CLI's record (supabase_migrations); null where unrecorded. The project's own migrations, in the
 * same record, do not count.
 */
create function vigil.schema_version() returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  version text;
begin
  if to_regclass('supabase_migrations.schema_migrations') is null then
    return null;
  end if;
  execute $q$select max(version) from supabase_migrations.schema_migrations where name like 'vigil\_%'$q$ into version;
  return version;
end
$$;

/**
 * The columns `vigil apply` may write in each configured table (keys first). Nothing else is ever
 * touched: not the kill switch or dry run (people's controls), not statuses or streaks.
 */
create function vigil.config_columns(tbl text, keys_only boolean default false) returns text[]
language sql
immutable
set search_path = ''
as $$
  select case when keys_only then
    case tbl
      when 'settings' then array['environment']
      when 'alert_routes' then array['environment', 'priority']
      when 'services' then array['name']
      when 'contacts' then array['name', 'channel', 'environment']
      when 'heal_policies' then array['environment', 'strategy']
      when 'log_patterns' then array['name']
    end
  else
    case tbl
      when 'settings' then array['environment',
        'api_p95_warning_ms', 'api_p95_critical_ms', 'db_query_warning_ms', 'db_query_critical_ms',
        'error_rate_warning_pct', 'error_rate_critical_pct', 'memory_warning_pct', 'memory_critical_pct',
        'cpu_warning_pct', 'cpu_critical_pct', 'deploy_warning_minutes', 'deploy_critical_minutes',
        'slow_query_ms', 'heal_max_per_hour', 'breaker_window', 'breaker_min_heals',
        'breaker_failure_ratio', 'breaker_cooldown_minutes', 'protected_applications',
        'alert_group_seconds', 'alert_reminder_minutes', 'alert_ack_escalate_minutes', 'flap_threshold',
        'flap_window_minutes', 'alert_retry_base_seconds', 'alert_retry_max_seconds', 'alert_give_up_hours',
        'ack_link_hours', 'alert_urgent_fallback_minutes']
      when 'alert_routes' then array['environment', 'priority', 'channels', 'fallback', 'respect_quiet_hours']
      when 'services' then array['name', 'kind', 'environment', 'config', 'enabled', 'description',
        'timeout_ms', 'failure_threshold', 'success_threshold', 'heal_enabled', 'actions', 'depends_on']
      when 'contacts' then array['name', 'channel', 'environment', 'role', 'address', 'secret_name',
        'quiet_hours', 'enabled']
      when 'heal_policies' then array['environment', 'strategy', 'mode', 'config']
      when 'log_patterns' then array['name', 'pattern', 'severity', 'action', 'sources', 'min_count',
        'priority', 'description', 'enabled']
    end
  end
$$;

/** One row as `vigil apply` sees it: only the columns it manages, as JSON. */
create function vigil.config_row(tbl text, doc jsonb) returns jsonb
language sql
immutable
set search_path = ''
as $$
  select coalesce(jsonb_object_agg(key, value), '{}') from jsonb_each(doc)
   where key = any (vigil.config_columns(tbl))
$$;

/**
 * What `vigil apply` compares a vigil.yml against: the database's schema version, the latest apply
 * (with the state it left) and the configured tables' rows, their managed columns only.
 */
create function vigil.config_state() returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'db_schema', vigil.schema_version(),
    'last_apply', (select jsonb_build_object('id', a.id, 'applied_at', a.applied_at,
                                             'applied_by', a.applied_by, 'source', a.source,
                                             'managed', a.managed)
                     from vigil.config_applies a order by a.id desc limit 1),
    'current', jsonb_build_object(
      'settings', (select coalesce(jsonb_agg(vigil.config_row('settings', to_jsonb(t)) order by t.environment), '[]') from vigil.settings t),
      'alert_routes', (select coalesce(jsonb_agg(vigil.config_row('alert_routes', to_jsonb(t)) order by t.environment, t.priority), '[]') from vigil.alert_routes t),
      -- healed: the heal audit (append-only) names the service, so it can never be deleted.
      'services', (select coalesce(jsonb_agg(vigil.config_row('services', to_jsonb(t))
                                             || jsonb_build_object('healed', exists (select from vigil.heal_actions h where h.service_id = t.id))
                                             order by t.name), '[]') from vigil.services t),
      'contacts', (select coalesce(jsonb_agg(vigil.config_row('contacts', to_jsonb(t)) order by t.name, t.channel), '[]') from vigil.contacts t),
      'heal_policies', (select coalesce(jsonb_agg(vigil.config_row('heal_policies', to_jsonb(t)) order by t.environment, t.strategy), '[]') from vigil.heal_policies t),
      'log_patterns', (select coalesce(jsonb_agg(vigil.config_row('log_patterns', to_jsonb(t)) || jsonb_build_object('builtin', t.builtin) order by t.name), '[]') from vigil.log_patterns t)))
$$;

/**
 * Carries out a plan `vigil apply` computed, all of it or nothing:
 *   {cli_schema, base_apply_id, applied_by, source, forced, managed, drift,
 *    ops: [{table, op: insert|update|delete, key: {…}, before: {…}, set: {…}}]}
 * Refused when the database's schema is newer than the CLI's, when another apply landed since the
 * CLI read the state, or when a row is no longer as the CLI saw it (`before`): run it again.
 */
create function vigil.apply_config(plan jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  db_schema text := vigil.schema_version();
  latest bigint;
  op jsonb;
  tbl text;
  kind text;
  keys text[];
  cols text[];
  bad text;
  key_match text;
  found_row jsonb;
  found_count integer;
  field text;
  applied_id bigint;
  done integer := 0;
begin
  if session_user = 'vigil_agent' then
    raise exception 'Vigil''s agent does not change its own configuration' using errcode = '42501';
  end if;
  if jsonb_typeof(plan) is distinct from 'object' or jsonb_typeof(plan -> 'ops') is distinct from 'array'
     or jsonb_typeof(plan -> 'managed') is distinct from 'object'
     or coalesce(plan ->> 'cli_schema', '') !~ '^[0-9]{14}$' then
    raise exception 'plan: must be an object with cli_schema (a migration version), ops and managed' using errcode = '22023';
  end if;
  if db_schema is not null and db_schema > plan ->> 'cli_schema' then
    raise exception 'the database''s Vigil schema (migration %) is newer than this CLI knows (%): update the CLI before applying',
      db_schema, plan ->> 'cli_schema' using errcode = '55000';
  end if;
  -- One apply at a time; the plan was computed against the latest apply, which must still be it.
  perform pg_advisory_xact_lock(hashtext('vigil.apply_config'));
  select max(id) into latest from vigil.config_applies;
  if latest is distinct from (plan ->> 'base_apply_id')::bigint then
    raise exception 'another apply (%) landed after this plan was made: run apply again', latest using errcode = '40001';
  end if;

  for op in select value from jsonb_array_elements(plan -> 'ops') loop
    tbl := op ->> 'table';
    kind := op ->> 'op';
    keys := vigil.config_columns(tbl, true);
    cols := vigil.config_columns(tbl);
    if keys is null then
      raise exception 'plan: no configured table %', coalesce(tbl, '(none)') using errcode = '22023';
    end if;
    if kind is null or kind not in ('insert', 'update', 'delete')
       or (kind <> 'update' and tbl in ('settings', 'alert_routes')) then
      raise exception 'plan: % cannot be %d by apply', tbl, coalesce(kind, '(no op)') using errcode = '22023';
    end if;
    select k into bad
      from jsonb_object_keys(coalesce(op -> 'set', '{}') || coalesce(op -> 'before', '{}') || coalesce(op -> 'key', '{}')) k
     where k <> all (cols) limit 1;
    if bad is not null then
      raise exception 'plan: apply does not manage %.%', tbl, bad using errcode = '22023';
    end if;
    if exists (select from unnest(keys) k where not (op -> 'key') ? k) then
      raise exception 'plan: a % row needs its key (%)', tbl, array_to_string(keys, ', ') using errcode = '22023';
    end if;

    select string_agg(format('t.%I is not distinct from k.%I', k, k), ' and ') into key_match from unnest(keys) k;
    execute format('select count(*), (array_agg(to_jsonb(t)))[1] from vigil.%I t, jsonb_populate_record(null::vigil.%I, $1) k where %s',
                   tbl, tbl, key_match)
      into found_count, found_row using op -> 'key';
    if kind = 'insert' and found_count > 0 then
      raise exception '% % was created since the plan was made: run apply again', tbl, op -> 'key' using errcode = '40001';
    end if;
    if kind <> 'insert' then
      if found_count <> 1 then
        raise exception '% % is % since the plan was made: run apply again', tbl, op -> 'key',
          case when found_count = 0 then 'gone' else 'ambiguous' end using errcode = '40001';
      end if;
      for field in select jsonb_object_keys(coalesce(op -> 'before', '{}')) loop
        if (found_row -> field) is distinct from (op -> 'before' -> field) then
          raise exception '%.% of % changed since the plan was made: run apply again', tbl, field, op -> 'key' using errcode = '40001';
        end if;
      end loop;
    end if;

    if kind = 'insert' then
      execute format('insert into vigil.%I (%s) select %s from jsonb_populate_record(null::vigil.%I, $1) r',
                     tbl,
                     (select string_agg(format('%I', k), ', ') from jsonb_object_keys((op -> 'key') || coalesce(op -> 'set', '{}')) k),
                     (select string_agg(format('r.%I', k), ', ') from jsonb_object_keys((op -> 'key') || coalesce(op -> 'set', '{}')) k),
                     tbl)
        using (op -> 'key') || coalesce(op -> 'set', '{}');
    elsif kind = 'update' then
      if coalesce(op -> 'set', '{}') <> '{}' then
        execute format('update vigil.%I t set %s from jsonb_populate_record(null::vigil.%I, $1) r, jsonb_populate_record(null::vigil.%I, $2) k where %s',
                       tbl,
                       (select string_agg(format('%I = r.%I', k, k), ', ') from jsonb_object_keys(op -> 'set') k),
                       tbl, tbl, key_match)
          using op -> 'set', op -> 'key';
      end if;
    else
      execute format('delete from vigil.%I t using jsonb_populate_record(null::vigil.%I, $1) k where %s', tbl, tbl, key_match)
        using op -> 'key';
    end if;
    done := done + 1;
  end loop;

  insert into vigil.config_applies (applied_by, source, cli_schema, db_schema, forced, managed, changes, drift)
  values (coalesce(nullif(plan ->> 'applied_by', ''), session_user), coalesce(nullif(plan ->> 'source', ''), 'vigil.yml'),
          plan ->> 'cli_schema', db_schema, coalesce((plan ->> 'forced')::boolean, false), plan -> 'managed',
          plan -> 'ops', coalesce(plan -> 'drift', '[]'))
  returning id into applied_id;
  return jsonb_build_object('id', applied_id, 'changed', done, 'db_schema', db_schema);
end
$$;

revoke execute on function vigil.schema_version(), vigil.config_state(), vigil.apply_config(jsonb),
  vigil.config_columns(text, boolean), vigil.config_row(text, jsonb) from public;
grant execute on function vigil.schema_version(), vigil.config_state(), vigil.apply_config(jsonb) to service_role;

-- Written only through apply_config (SECURITY DEFINER); operators read the history.
grant select on vigil.config_applies to service_role, authenticated;
alter table vigil.config_applies enable row level security;
create policy "Operators can read config applies" on vigil.config_applies
  for select to authenticated using ((select vigil.is_operator()));

select vigil.settle_privileges();
