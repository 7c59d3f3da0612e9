-- The dashboard watches these tables through Supabase Realtime's publication: approvals waiting on a
-- human and the incident timeline included.
begin;
set search_path = extensions, public;
select plan(4);

select isnt_empty($$select 1 from pg_publication where pubname = 'supabase_realtime'$$,
                  'publication supabase_realtime exists');
select set_has(
  $$select schemaname::text || '.' || tablename::text from pg_publication_tables where pubname = 'supabase_realtime'$$,
  $$select unnest(array['vigil.services', 'vigil.checks', 'vigil.incidents', 'vigil.heal_actions',
                        'vigil.alerts', 'vigil.settings', 'vigil.status_transitions', 'vigil.cycles',
                        'vigil.heal_approvals', 'vigil.incident_log', 'vigil.recommendations',
                        'vigil.control_changes', 'vigil.maintenance_runs', 'vigil.metric_series',
                        'vigil.deployments'])$$,
  'supabase_realtime publishes vigil.services, checks, incidents, heal_actions, alerts, settings, status_transitions, cycles, heal_approvals, incident_log, recommendations, control_changes, maintenance_runs, metric_series and deployments'
);
-- Heartbeat tokens are credentials: they stay off the wire.
select is_empty(
  $$select tablename from pg_publication_tables
     where pubname = 'supabase_realtime' and schemaname = 'vigil' and tablename = 'heartbeat_tokens'$$,
  'supabase_realtime does not publish vigil.heartbeat_tokens'
);
-- Contacts are phone numbers and addresses: they stay off the wire too.
select is_empty(
  $$select tablename from pg_publication_tables
     where pubname = 'supabase_realtime' and schemaname = 'vigil' and tablename = 'contacts'$$,
  'supabase_realtime does not publish vigil.contacts'
);

select * from finish();
rollback;
