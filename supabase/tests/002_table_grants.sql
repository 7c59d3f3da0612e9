-- Table and column grants per API role, read from the catalog. The behaviour files (010-013)
-- prove what each role can do; this one pins down that nothing more was granted. The column
-- and relation queries enumerate pg_class and pg_attribute, so a new table, view or column
-- granted too widely fails here.
begin;
set search_path = extensions, public;
select plan(67);

-- anon: no table at all, and no view but public_status.
select table_privs_are('vigil', t, 'anon', array[]::text[], format('anon has no privileges on vigil.%s', t))
  from unnest(array['settings', 'services', 'checks', 'incidents', 'heal_actions', 'alerts', 'invocations',
                    'probe_config_schemas', 'status_transitions', 'metrics', 'check_rollups', 'cycles',
                    'heartbeat_tokens', 'service_uptime', 'heal_policies', 'heal_approvals', 'contacts', 'incident_log']) t;
select is_empty(
  $$select c.relname from pg_class c
     where c.relnamespace = 'vigil'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'S')
       and c.relname not in ('public_status', 'public_incidents')
       and (has_table_privilege('anon', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
            or (c.relkind = 'S' and has_sequence_privilege('anon', c.oid, 'USAGE, SELECT, UPDATE')))$$,
  'anon has no privilege on any relation in schema vigil but public_status and public_incidents'
);

-- authenticated: read only at table level (what RLS then filters); updates are column grants.
select table_privs_are('vigil', t, 'authenticated', array['SELECT'],
                       format('authenticated may only SELECT vigil.%s at table level', t))
  from unnest(array['settings', 'services', 'checks', 'incidents', 'heal_actions', 'alerts', 'invocations',
                    'probe_config_schemas', 'status_transitions', 'metrics', 'check_rollups', 'cycles',
                    'heartbeat_tokens', 'service_uptime', 'heal_policies', 'heal_approvals', 'contacts', 'incident_log']) t;

-- service_role: full DML, except the audit, which only grows, and the config schemas, which only a
-- migration writes (else a write could switch validation off).
select table_privs_are('vigil', t, 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
                       format('service_role may SELECT, INSERT, UPDATE and DELETE vigil.%s', t))
  from unnest(array['settings', 'services', 'checks', 'incidents', 'alerts', 'invocations',
                    'status_transitions', 'metrics', 'check_rollups', 'cycles', 'heartbeat_tokens',
                    'heal_policies', 'heal_approvals', 'contacts', 'incident_log']) t;
select table_privs_are('vigil', 'heal_actions', 'service_role', array['SELECT', 'INSERT'],
                       'service_role may only SELECT and INSERT vigil.heal_actions');
select table_privs_are('vigil', 'probe_config_schemas', 'service_role', array['SELECT'],
                       'service_role may only SELECT vigil.probe_config_schemas');
select table_privs_are('vigil', 'service_uptime', 'service_role', array['SELECT'],
                       'service_role may only SELECT vigil.service_uptime');

select table_privs_are('vigil', 'public_status', r, array['SELECT'], format('%s may only SELECT vigil.public_status', r))
  from unnest(array['anon', 'authenticated', 'service_role']) r;

-- Nobody but the owner may TRUNCATE, or write a view.
select is_empty(
  $$select c.relname, r from pg_class c, unnest(array['anon', 'authenticated', 'service_role']) r
     where c.relnamespace = 'vigil'::regnamespace and c.relkind in ('r', 'p', 'v')
       and (has_table_privilege(r, c.oid, 'TRUNCATE, REFERENCES, TRIGGER')
            or (c.relkind = 'v' and has_table_privilege(r, c.oid, 'INSERT, UPDATE, DELETE')))$$,
  'no API role may TRUNCATE, REFERENCE or TRIGGER a vigil relation, or write a vigil view'
);

select set_eq(
  $$select c.relname::text || '.' || a.attname::text
      from pg_attribute a join pg_class c on c.oid = a.attrelid
     where c.relnamespace = 'vigil'::regnamespace and c.relkind in ('r', 'p', 'v')
       and a.attnum > 0 and not a.attisdropped
       and has_column_privilege('authenticated', a.attrelid, a.attnum, 'UPDATE')$$,
  array['settings.kill_switch', 'settings.dry_run', 'incidents.acknowledged_at', 'alerts.acknowledged_at',
        'services.heal_enabled', 'heal_approvals.decision', 'silences.ends_at',
        'report_settings.time_zone', 'report_settings.send_hour', 'report_settings.weekly_day',
        'report_settings.daily', 'report_settings.weekly', 'report_settings.sla_pct',
        'report_settings.minutes_per_manual_fix', 'report_settings.engineer_cost_per_hour',
        'report_settings.currency', 'report_settings.channels', 'report_settings.roles'],
  'authenticated may UPDATE exactly settings.kill_switch, settings.dry_run, the two acknowledged_at columns, services.heal_enabled, heal_approvals.decision, silences.ends_at and the report settings people choose'
);
select set_eq(
  $$select a.attname::text
      from pg_attribute a join pg_class c on c.oid = a.attrelid
     where c.relnamespace = 'vigil'::regnamespace and c.relname = 'silences'
       and a.attnum > 0 and not a.attisdropped
       and has_column_privilege('authenticated', a.attrelid, a.attnum, 'INSERT')$$,
  array['kind', 'service_id', 'environment', 'starts_at', 'ends_at', 'reason'],
  'authenticated may INSERT a silence''s kind, scope, window and reason, never its id or who made it'
);
select is_empty(
  $$select c.relname, a.attname
      from pg_attribute a join pg_class c on c.oid = a.attrelid
     where c.relnamespace = 'vigil'::regnamespace and c.relkind in ('r', 'p', 'v')
       and a.attnum > 0 and not a.attisdropped
       and ((has_column_privilege('authenticated', a.attrelid, a.attnum, 'INSERT') and c.relname <> 'silences')
            or has_column_privilege('anon', a.attrelid, a.attnum, 'INSERT')
            or has_column_privilege('anon', a.attrelid, a.attnum, 'UPDATE'))$$,
  'neither anon nor authenticated may INSERT any column (but for an operator''s silence), and anon may UPDATE none'
);
select set_eq(
  $$select c.relname::text || '.' || a.attname::text
      from pg_attribute a join pg_class c on c.oid = a.attrelid
     where c.relnamespace = 'vigil'::regnamespace and c.relkind in ('r', 'p', 'v')
       and a.attnum > 0 and not a.attisdropped
       and has_column_privilege('anon', a.attrelid, a.attnum, 'SELECT')$$,
  array['public_status.name', 'public_status.status', 'public_status.uptime_24h',
        'public_incidents.service', 'public_incidents.title', 'public_incidents.opened_at'],
  'the only columns anon may read are those of public_status and public_incidents'
);
select is_empty(
  $$select c.relname, a.attname
      from pg_attribute a join pg_class c on c.oid = a.attrelid
     where c.relnamespace = 'vigil'::regnamespace and c.relkind in ('r', 'p')
       and c.relname not in ('probe_config_schemas', 'heal_actions', 'audit_anchors', 'built_indexes', 'audit_chain', 'vacuum_requests', 'control_changes', 'maintenance_runs', 'statement_snapshots',
                             'statement_samples', 'report_settings', 'config_applies')
       and a.attnum > 0 and not a.attisdropped
       and not (has_column_privilege('service_role', a.attrelid, a.attnum, 'SELECT')
                and has_column_privilege('service_role', a.attrelid, a.attnum, 'INSERT')
                and has_column_privilege('service_role', a.attrelid, a.attnum, 'UPDATE'))$$,
  'service_role may read, insert and update every column of every table but the audit, its anchors and lock, the config schemas, the built indexes, the vacuum requests, the control changes, the maintenance runs, the statement snapshots and samples and the config applies (written through their functions), and the report settings (one row, changed column by column)'
);

-- PUBLIC gets nothing in vigil: not the schema, not a table.
select is_empty(
  $$select 1 from pg_namespace n, aclexplode(n.nspacl) a where n.nspname = 'vigil' and a.grantee = 0$$,
  'PUBLIC has no privilege on schema vigil'
);
select is_empty(
  $$select c.relname from pg_class c, aclexplode(c.relacl) a
     where c.relnamespace = 'vigil'::regnamespace and a.grantee = 0$$,
  'PUBLIC has no privilege on any relation in schema vigil'
);

select is_empty(
  $$select a.attname from pg_attribute a where a.attrelid = 'vigil.audit_anchors'::regclass and a.attnum > 0
      and (has_column_privilege('service_role', a.attrelid, a.attnum, 'UPDATE')
           or not has_column_privilege('service_role', a.attrelid, a.attnum, 'INSERT'))$$,
  'service_role may only append audit anchors, never change one');
select * from finish();
rollback;
