-- vigil.incident_timeline(): one ordered list of what happened to an incident, read with the
-- caller's rights (an operator sees it, another user sees nothing).
begin;
set search_path = extensions, public;
select plan(3);

insert into vigil.services (id, name, kind, config) values
  ('00000000-0000-4000-8000-000000000901', 't090-api', 'http', '{"url":"https://t090.example.com"}');
insert into vigil.incidents (id, service_id, kind, severity, title, opened_at) overriding system value
values (900001, '00000000-0000-4000-8000-000000000901', 'service_unhealthy', 'critical', 't090-api is down',
        now() - interval '10 minutes');
insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome, created_at)
values ('00000000-0000-4000-8000-0000000009a1', 'intent', 900001, '00000000-0000-4000-8000-000000000901',
        'restart_service', 1, 't090 restart', 'pending', now() - interval '9 minutes'),
       ('00000000-0000-4000-8000-0000000009a1', 'result', 900001, '00000000-0000-4000-8000-000000000901',
        'restart_service', 1, 't090 restart', 'succeeded', now() - interval '8 minutes');
insert into vigil.incident_log (incident_id, level, message, created_at)
values (900001, 'info', 't090 healed', now() - interval '8 minutes');
update vigil.incidents set status = 'resolved', resolved_at = now() - interval '7 minutes' where id = 900001;

select results_eq(
  $$select source, what from vigil.incident_timeline(900001) where source <> 'status' and source <> 'alert'$$,
  $$values ('incident', 'opened: t090-api is down'),
           ('heal', 'restart_service intent: pending (attempt 1)'),
           ('heal', 'restart_service result: succeeded (attempt 1)'),
           ('log', 'info: t090 healed'),
           ('resolved', 'resolved')$$,
  'opened, each heal with its attempt, the log and the resolution, oldest first'
);

set local role authenticated;
set local request.jwt.claims = '{"sub": "00000000-0000-4000-8000-0000000009b1", "role": "authenticated", "app_metadata": {"role": "devops"}}';
select isnt_empty($$select 1 from vigil.incident_timeline(900001)$$, 'an operator reads it');
set local request.jwt.claims = '{"sub": "00000000-0000-4000-8000-0000000009b2", "role": "authenticated", "app_metadata": {}}';
select is_empty($$select 1 from vigil.incident_timeline(900001)$$, 'another user reads nothing of it');
reset role;

select * from finish();
rollback;
