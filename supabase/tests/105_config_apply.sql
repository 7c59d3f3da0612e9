-- Config as code in SQL: config_state shows the configured tables' managed columns and the latest
-- apply; apply_config carries out a plan all or nothing, refuses what it does not manage, a plan
-- made before another apply or before a row changed, a database newer than the CLI, and Vigil's
-- own agent; only service_role may call either.
begin;
set search_path = extensions, public;
select plan(17);

create temp table base as select coalesce(max(id), 0) as id from vigil.config_applies;
create function pg_temp.plan(ops jsonb, base_id bigint, schema text default '29990101000000') returns jsonb
language sql as $$
  select jsonb_build_object('cli_schema', schema, 'base_apply_id', base_id, 'applied_by', 't105',
                            'source', 't105.yml sha256:00', 'managed', '{"services": {}}'::jsonb, 'ops', ops)
$$;

select ok(
  (select (s ? 'db_schema') and (s ? 'last_apply')
          and (select array_agg(k order by k) from jsonb_object_keys(s -> 'current') k)
              = array['alert_routes', 'contacts', 'heal_policies', 'log_patterns', 'services', 'settings']
     from vigil.config_state() s),
  'config_state: the schema version, the latest apply and the six configured tables');
select is(
  (select vigil.schema_version()), (select max(version) from supabase_migrations.schema_migrations where name like 'vigil\_%'),
  'schema_version is the newest of Vigil''s migrations applied');
insert into supabase_migrations.schema_migrations (version, name) values ('29990101000001', 'the_projects_own_table');
select isnt(vigil.schema_version(), '29990101000001', 'a migration of the project''s own is not Vigil''s schema');
select is_empty(
  $$select k from jsonb_array_elements(vigil.config_state() -> 'current' -> 'settings') r, jsonb_object_keys(r) k
     where k in ('kill_switch', 'dry_run', 'updated_at', 'updated_by')$$,
  'the kill switch and dry run are people''s controls: not in the managed columns');

-- An insert and an update in one plan.
update vigil.settings set slow_query_ms = 1000 where environment = 'qa';
select lives_ok(
  $$select vigil.apply_config(pg_temp.plan('[
      {"table": "services", "op": "insert", "key": {"name": "t105-api"},
       "set": {"kind": "http", "environment": "qa", "config": {"url": "https://t105.example.org"}, "enabled": false,
               "depends_on": null, "timeout_ms": 5000}},
      {"table": "settings", "op": "update", "key": {"environment": "qa"},
       "before": {"slow_query_ms": 1000},
       "set": {"slow_query_ms": 1234}}]'::jsonb, (select nullif(id, 0) from base)))$$,
  'a plan of an insert and an update is applied');
select results_eq(
  $$select kind::text, environment::text, timeout_ms, enabled,
           (select slow_query_ms from vigil.settings where environment = 'qa')
      from vigil.services where name = 't105-api'$$,
  $$values ('http', 'qa', 5000, false, 1234)$$,
  'the rows hold what the plan said');
select results_eq(
  $$select applied_by, cli_schema, jsonb_array_length(changes) from vigil.config_applies order by id desc limit 1$$,
  $$values ('t105', '29990101000000', 2)$$,
  'the apply is recorded with who, the CLI''s schema and its changes');

-- A plan made before that apply is refused.
select throws_ok(
  $$select vigil.apply_config(pg_temp.plan('[]'::jsonb, (select nullif(id, 0) from base)))$$,
  '40001', null, 'a plan made before another apply landed is refused');
-- A row changed since the plan saw it: refused, and nothing of the plan is written.
select throws_like(
  format($$select vigil.apply_config(pg_temp.plan('[
      {"table": "settings", "op": "update", "key": {"environment": "qa"}, "before": {"slow_query_ms": 1234}, "set": {"slow_query_ms": 1500}},
      {"table": "services", "op": "update", "key": {"name": "t105-api"}, "before": {"timeout_ms": 9999}, "set": {"timeout_ms": 6000}}]'::jsonb,
      %s))$$, (select max(id) from vigil.config_applies)),
  '%timeout_ms of {"name": "t105-api"} changed since the plan was made: run apply again%',
  'a row no longer as the plan saw it is refused, naming the field');
select is((select slow_query_ms from vigil.settings where environment = 'qa'), 1234,
          'all or nothing: the first op of the refused plan was not kept');

-- What apply does not manage.
select throws_ok(
  format($$select vigil.apply_config(pg_temp.plan('[{"table": "settings", "op": "update", "key": {"environment": "qa"}, "set": {"kill_switch": true}}]'::jsonb, %s))$$,
         (select max(id) from vigil.config_applies)),
  '22023', 'plan: apply does not manage settings.kill_switch', 'the kill switch is not apply''s to change');
select throws_ok(
  format($$select vigil.apply_config(pg_temp.plan('[{"table": "incidents", "op": "delete", "key": {"id": 1}}]'::jsonb, %s))$$,
         (select max(id) from vigil.config_applies)),
  '22023', 'plan: no configured table incidents', 'only the configured tables');
select throws_ok(
  format($$select vigil.apply_config(pg_temp.plan('[{"table": "settings", "op": "delete", "key": {"environment": "qa"}}]'::jsonb, %s))$$,
         (select max(id) from vigil.config_applies)),
  '22023', 'plan: settings cannot be deleted by apply', 'a settings row is only ever updated');

-- A database newer than the CLI.
select throws_like(
  format($$select vigil.apply_config(pg_temp.plan('[]'::jsonb, %s, '20200101000000'))$$,
         (select max(id) from vigil.config_applies)),
  '%is newer than this CLI knows (20200101000000): update the CLI before applying',
  'a CLI older than the database is refused');

-- Vigil's agent never changes its own configuration.
create temp table agent_plan as select pg_temp.plan('[]'::jsonb, (select max(id) from vigil.config_applies)) as p;
grant select on agent_plan to vigil_agent;
set session authorization vigil_agent;
select throws_ok($$select vigil.apply_config((select p from agent_plan))$$, '42501',
                 'Vigil''s agent does not change its own configuration', 'the agent may not apply a configuration');
reset session authorization;

-- Only service_role.
select ok(not has_function_privilege('authenticated', 'vigil.apply_config(jsonb)', 'execute')
          and not has_function_privilege('authenticated', 'vigil.config_state()', 'execute')
          and not has_function_privilege('anon', 'vigil.apply_config(jsonb)', 'execute'),
          'neither operators nor anon may call apply_config or config_state');
select ok(has_function_privilege('service_role', 'vigil.apply_config(jsonb)', 'execute')
          and has_function_privilege('service_role', 'vigil.config_state()', 'execute'),
          'service_role (the CLI) may');

select * from finish();
rollback;
