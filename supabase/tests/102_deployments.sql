-- Deployments: a deploy probe's serving deployment changing records a deploy; once its window has
-- passed, summarize_deployments compares before and after on the services that depend on it, gives
-- a verdict and its words, and a worse one opens a rollback recommendation.
begin;
set search_path = extensions, public;
select plan(11);

alter table vigil.incidents disable trigger incidents_request_heal;
insert into vigil.services (id, name, kind, config, heal_enabled) values
  ('00000000-0000-4000-8000-000000001021', 't102-deploys', 'vercel', '{"project_id": "prj_t102"}', false);
insert into vigil.services (id, name, kind, config, heal_enabled, depends_on) values
  ('00000000-0000-4000-8000-000000001022', 't102-api', 'http', '{"url": "https://t102.example.com"}', false,
   array['t102-deploys']);

create function pg_temp.deploy_check(p_serving text, p_at timestamptz) returns void language sql as $$
  insert into vigil.checks (service_id, status, checked_at, measurements)
  values ('00000000-0000-4000-8000-000000001021', 'healthy', p_at,
          jsonb_build_object('serving', jsonb_build_object('id', p_serving, 'version', 'sha-' || p_serving,
                                                           'created', '2026-12-03T09:00:00.000Z', 'build_seconds', 42)))
$$;

select pg_temp.deploy_check('dpl_1', now() - interval '50 minutes');
select is((select count(*) from vigil.deployments d join vigil.services s on s.id = d.service_id
            where s.name = 't102-deploys')::int, 0, 'the first check only learns what serves');
select pg_temp.deploy_check('dpl_1', now() - interval '40 minutes');
select is((select count(*) from vigil.deployments where service_id = '00000000-0000-4000-8000-000000001021')::int, 0,
          'the same deployment serving is no deploy');
select pg_temp.deploy_check('dpl_2', now() - interval '30 minutes');
select results_eq(
  $$select deployment_id, previous_deployment_id, version, build_seconds::int from vigil.deployments
     where service_id = '00000000-0000-4000-8000-000000001021'$$,
  $$values ('dpl_2', 'dpl_1', 'sha-dpl_2', 42)$$,
  'a new deployment serving is a deploy, with what served before'
);

-- The API that depends on it: fast and clean before, slow and failing half the time after.
insert into vigil.checks (service_id, status, checked_at, response_ms, error)
select '00000000-0000-4000-8000-000000001022', 'healthy', now() - interval '44 minutes' + g * interval '1 minute', 100, null
  from generate_series(0, 9) g;
insert into vigil.checks (service_id, status, checked_at, response_ms, error)
select '00000000-0000-4000-8000-000000001022', case when g % 2 = 0 then 'down' else 'healthy' end::vigil.check_status,
       now() - interval '29 minutes' + g * interval '1 minute', 900, case when g % 2 = 0 then 'got status 500' end
  from generate_series(0, 9) g;

select is(vigil.summarize_deployments(), 1, 'the deploy whose window has passed is summarised');
select is((select verdict from vigil.deployments where deployment_id = 'dpl_2'), 'worse', 'slower and failing: worse');
select matches(
  (select summary_text from vigil.deployments where deployment_id = 'dpl_2'),
  '^Deployment dpl_2 \(sha-dpl_2\) of t102-deploys: created 2026-12-03 09:00 UTC, finished .* UTC, built in 42 s\. Impact over 15 minutes each side: API p95 100(\.0)? → 900(\.0)? ms, error rate 0(\.0)? → 50(\.0)? %\. Verdict: worse \(slower, more errors\): consider rolling back to dpl_1\.$',
  'the summary in words: timeline, impact, verdict'
);
select is((select summary -> 'before' ->> 'services' from vigil.deployments where deployment_id = 'dpl_2'), '1',
          'measured on the service that depends on the deploy');
select is(
  (select title from vigil.recommendations where kind = 'rollback' and key = 'dpl_2' and status = 'open'),
  'Roll back t102-deploys: deployment dpl_2 made things worse (slower, more errors)',
  'a worse deploy is a rollback recommendation'
);
select is(vigil.summarize_deployments(), 0, 'summarised once');

-- A deploy whose window has not passed waits; one with nothing measured either side is said so.
select pg_temp.deploy_check('dpl_3', now() - interval '5 minutes');
select is(vigil.summarize_deployments(), 0, 'a deploy of 5 minutes ago waits for its window');

set local role authenticated;
select is((select count(*) from vigil.deployments), 0::bigint, 'a user who is not an operator sees no deployments');
reset role;

select * from finish();
rollback;
