-- The public status page's incidents: service, a public title by severity, since when; nothing of
-- the internal title or detail, and read by anon without access to the incidents table.
begin;
set search_path = extensions, public;
select plan(4);

insert into vigil.services (id, name, kind, config) values
  ('00000000-0000-4000-8000-000000000891', 't089-api', 'http', '{"url":"https://t089.example.com"}');
insert into vigil.incidents (service_id, kind, severity, title, detail) values
  ('00000000-0000-4000-8000-000000000891', 'service_unhealthy', 'critical',
   't089-api is down: connect ECONNREFUSED 10.0.3.7:5432', '{"error": "internal"}'),
  ('00000000-0000-4000-8000-000000000891', 'slow_queries', 'warning', 't089-api: 2 statements slower', '{}');

set local role anon;
select results_eq(
  $$select service, title from vigil.public_incidents where service = 't089-api'$$,
  $$values ('t089-api', 'Outage')$$,
  'anon sees the open outage under a public title, and not the internal slow-query incident'
);
select is((select array_agg(k order by k) from vigil.public_incidents p, jsonb_object_keys(to_jsonb(p)) k where p.service = 't089-api'),
          array['opened_at', 'service', 'title'], 'with exactly service, title and opened_at');
select throws_ok($$select * from vigil.incidents$$, '42501', null, 'but not the incidents themselves');
reset role;
update vigil.incidents set status = 'resolved', resolved_at = now() where service_id = '00000000-0000-4000-8000-000000000891';
set local role anon;
select is_empty($$select 1 from vigil.public_incidents where service = 't089-api'$$, 'a resolved incident leaves the page');
reset role;

select * from finish();
rollback;
