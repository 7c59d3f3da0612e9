-- Each status transition keeps one 'service_unhealthy' incident per service in step:
-- degraded opens it as a warning, down makes it critical, easing back to degraded makes it a
-- warning again (the same incident throughout), healthy resolves it, and a later failure opens a
-- new one. Other incident kinds on the service are left alone.
begin;
set search_path = extensions, public;
select plan(25);

insert into vigil.services (id, name, kind, config, failure_threshold, success_threshold) values
  ('00000000-0000-4000-8000-000000000521', 't052-api', 'http', '{"url":"https://t052.example.com"}', 1, 1);
insert into vigil.services (id, name, kind, config) values
  ('00000000-0000-4000-8000-000000000522', 't052-default', 'http', '{"url":"https://t052.example.com"}');
-- An incident of another kind, which the service's recovery must not touch.
insert into vigil.incidents (service_id, kind, severity, title)
values ('00000000-0000-4000-8000-000000000521', 'latency', 'warning', 't052 slow queries');

create temp table fed (label text primary key, check_id bigint not null);
create procedure pg_temp.feed(p_service uuid, p_status vigil.check_status, p_error text, p_label text, p_ms numeric default null)
language plpgsql as $$
declare
  new_id bigint;
begin
  insert into vigil.checks (service_id, status, error, response_ms) values (p_service, p_status, p_error, p_ms)
  returning id into new_id;
  insert into fed values (p_label, new_id);
end
$$;
create function pg_temp.check_id(p_label text) returns bigint language sql as $$ select check_id from fed where label = p_label $$;

-- Degraded: a warning opens.
call pg_temp.feed('00000000-0000-4000-8000-000000000521', 'degraded', 'p95 812 ms', 'slow', 812);
select results_eq(
  $$select severity::text, status::text, title, resolved_at from vigil.incidents
     where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'service_unhealthy'$$,
  $$values ('warning'::text, 'open'::text, 't052-api is degraded'::text, null::timestamptz)$$,
  'a transition to degraded opens one open warning incident titled "<service> is degraded"'
);
select is(
  (select detail from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'service_unhealthy'),
  jsonb_build_object('check_id', pg_temp.check_id('slow'), 'status', 'degraded', 'previous_status', 'unknown',
                     'error', 'p95 812 ms', 'response_ms', 812.000),
  'the incident detail names the check, the new and previous status, the error and the response time'
);
create temp table first_incident as
select id from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'service_unhealthy';

-- Down: the same incident turns critical.
call pg_temp.feed('00000000-0000-4000-8000-000000000521', 'down', 'HTTP 503', 'outage');
select is((select count(*) from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'service_unhealthy'),
          1::bigint, 'worsening to down opens no second incident');
select results_eq(
  $$select id, severity::text, status::text, title from vigil.incidents
     where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'service_unhealthy'$$,
  $$select id, 'critical'::text, 'open'::text, 't052-api is down'::text from first_incident$$,
  'worsening to down makes the same incident critical and retitles it "<service> is down"'
);
select results_eq(
  $$select (detail ->> 'check_id')::bigint, detail ->> 'status', detail ->> 'previous_status', detail ->> 'error'
      from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'service_unhealthy'$$,
  $$values (pg_temp.check_id('outage'), 'down'::text, 'degraded'::text, 'HTTP 503'::text)$$,
  'the detail now names the check that worsened it'
);

-- Easing back to degraded: a warning again, still the same incident.
call pg_temp.feed('00000000-0000-4000-8000-000000000521', 'degraded', null, 'easing', 2400);
select results_eq(
  $$select id, severity::text, status::text, title from vigil.incidents
     where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'service_unhealthy'$$,
  $$select id, 'warning'::text, 'open'::text, 't052-api is degraded'::text from first_incident$$,
  'easing to degraded turns the same incident back into a warning'
);
select results_eq(
  $$select (detail ->> 'check_id')::bigint, detail ->> 'previous_status', detail -> 'error', (detail ->> 'response_ms')::numeric
      from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'service_unhealthy'$$,
  $$values (pg_temp.check_id('easing'), 'down'::text, 'null'::jsonb, 2400::numeric)$$,
  'the detail follows the easing check (no error on a degraded check is recorded as null)'
);

-- Healthy: resolved.
call pg_temp.feed('00000000-0000-4000-8000-000000000521', 'healthy', null, 'recovery');
select results_eq(
  $$select id, status::text, resolved_at from vigil.incidents
     where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'service_unhealthy'$$,
  $$select id, 'resolved'::text, now() from first_incident$$,
  'recovery resolves the incident with resolved_at'
);
select results_eq(
  $$select (detail ->> 'resolved_by_check')::bigint, severity::text, detail ->> 'status'
      from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'service_unhealthy'$$,
  $$values (pg_temp.check_id('recovery'), 'warning'::text, 'degraded'::text)$$,
  'the resolved incident names the check that resolved it and keeps its last severity and detail'
);
select is_empty(
  $$select 1 from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'service_unhealthy' and status = 'open'$$,
  'no service_unhealthy incident is open after recovery'
);
select results_eq(
  $$select status::text, resolved_at from vigil.incidents where title = 't052 slow queries'$$,
  $$values ('open'::text, null::timestamptz)$$,
  'recovery leaves an incident of another kind open'
);

-- Another healthy check: nothing more to resolve, nothing changes.
call pg_temp.feed('00000000-0000-4000-8000-000000000521', 'healthy', null, 'still-fine');
select is((select detail ->> 'resolved_by_check' from vigil.incidents where id = (select id from first_incident)),
          pg_temp.check_id('recovery')::text, 'a healthy check without a transition does not touch the resolved incident');

-- A later failure opens a new incident.
call pg_temp.feed('00000000-0000-4000-8000-000000000521', 'down', 'connection refused', 'relapse');
select is((select count(*) from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'service_unhealthy'),
          2::bigint, 'a failure after recovery opens a second incident');
select results_eq(
  $$select severity::text, status::text, title, (detail ->> 'check_id')::bigint, detail ->> 'previous_status'
      from vigil.incidents
     where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'service_unhealthy' and status = 'open'$$,
  $$values ('critical'::text, 'open'::text, 't052-api is down'::text, pg_temp.check_id('relapse'), 'healthy'::text)$$,
  'the new incident is open, critical straight away (healthy → down), and names its check'
);
select isnt((select id from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'service_unhealthy' and status = 'open'),
            (select id from first_incident), 'the new incident is not the resolved one reopened');
select results_eq(
  $$select status::text from vigil.incidents where id = (select id from first_incident)$$,
  $$values ('resolved'::text)$$,
  'the first incident stays resolved'
);

-- With the default thresholds, no incident before the status changes.
call pg_temp.feed('00000000-0000-4000-8000-000000000522', 'down', 'timeout', 'd1');
call pg_temp.feed('00000000-0000-4000-8000-000000000522', 'down', 'timeout', 'd2');
select is_empty($$select 1 from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000522'$$,
                'two down checks (below the threshold of 3) open no incident');
call pg_temp.feed('00000000-0000-4000-8000-000000000522', 'down', 'timeout', 'd3');
select results_eq(
  $$select kind, severity::text, title, (detail ->> 'check_id')::bigint from vigil.incidents
     where service_id = '00000000-0000-4000-8000-000000000522'$$,
  $$values ('service_unhealthy'::text, 'critical'::text, 't052-default is down'::text, pg_temp.check_id('d3'))$$,
  'the third down check opens a critical incident naming that check'
);
call pg_temp.feed('00000000-0000-4000-8000-000000000522', 'healthy', null, 'h1');
select results_eq(
  $$select status::text from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000522'$$,
  $$values ('open'::text)$$,
  'one healthy check (below the threshold of 2) does not resolve it'
);
call pg_temp.feed('00000000-0000-4000-8000-000000000522', 'healthy', null, 'h2');
select results_eq(
  $$select status::text, (detail ->> 'resolved_by_check')::bigint from vigil.incidents
     where service_id = '00000000-0000-4000-8000-000000000522'$$,
  $$values ('resolved'::text, pg_temp.check_id('h2'))$$,
  'the second healthy check resolves it'
);

-- Incident changes happen in step with transitions, one per transition.
select is((select count(*) from vigil.status_transitions where service_id = '00000000-0000-4000-8000-000000000521'), 5::bigint,
          'five transitions for t052-api (degraded, down, degraded, healthy, down)');

-- An acknowledged incident keeps its acknowledgement when a transition updates it.
update vigil.incidents set acknowledged_at = now() - interval '1 minute'
 where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'service_unhealthy' and status = 'open';
call pg_temp.feed('00000000-0000-4000-8000-000000000521', 'degraded', null, 'ease-again');
select results_eq(
  $$select severity::text, acknowledged_at from vigil.incidents
     where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'service_unhealthy' and status = 'open'$$,
  $$values ('warning'::text, now() - interval '1 minute')$$,
  'updating the open incident keeps its acknowledgement'
);
select is((select count(*) from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'service_unhealthy' and status = 'open'),
          1::bigint, 'still exactly one open service_unhealthy incident');
select is((select count(*) from vigil.incidents where kind = 'service_unhealthy'
            and service_id in ('00000000-0000-4000-8000-000000000521', '00000000-0000-4000-8000-000000000522')), 3::bigint,
          'three service_unhealthy incidents in all across both services');
select is((select count(*) from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000521' and kind = 'latency'),
          1::bigint, 'the other-kind incident is still the only one of its kind');

select * from finish();
rollback;
