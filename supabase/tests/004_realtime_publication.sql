-- The dashboard watches these tables through Supabase Realtime's publication.
begin;
set search_path = extensions, public;
select plan(2);

select isnt_empty($$select 1 from pg_publication where pubname = 'supabase_realtime'$$,
                  'publication supabase_realtime exists');
select set_has(
  $$select schemaname::text || '.' || tablename::text from pg_publication_tables where pubname = 'supabase_realtime'$$,
  $$select unnest(array['vigil.services', 'vigil.checks', 'vigil.incidents', 'vigil.heal_actions',
                        'vigil.alerts', 'vigil.settings'])$$,
  'supabase_realtime publishes vigil.services, checks, incidents, heal_actions, alerts and settings'
);

select * from finish();
rollback;
