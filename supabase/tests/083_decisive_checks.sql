-- Detection that matches the evidence: a check carrying measurements.decisive_status (its findings
-- already prove they lasted) moves the service at once, despite a failure threshold of 3; a check
-- without it keeps the hysteresis, and a decisive status never lifts a service out of down.
begin;
set search_path = extensions, public;
select plan(9);

insert into vigil.services (id, name, kind, config) values
  ('00000000-0000-4000-8000-000000000831', 't083-locks', 'http', '{"url":"https://t083.example.com"}'),
  ('00000000-0000-4000-8000-000000000832', 't083-idle', 'http', '{"url":"https://t083.example.com"}'),
  ('00000000-0000-4000-8000-000000000833', 't083-flappy', 'http', '{"url":"https://t083.example.com"}');

create function pg_temp.feed(p_service uuid, p_status vigil.check_status, p_measurements jsonb)
returns text language plpgsql as $$
begin
  insert into vigil.checks (service_id, status, error, measurements)
  values (p_service, p_status, 'a finding', p_measurements);
  return (select status::text from vigil.services where id = p_service);
end $$;

select is(pg_temp.feed('00000000-0000-4000-8000-000000000831', 'down', '{"decisive_status": "down"}'), 'down',
          'a lock chain whose wait is past critical: down on the first check');
select isnt_empty($$select 1 from vigil.incidents where service_id = '00000000-0000-4000-8000-000000000831' and status = 'open'$$,
                  'and its incident is open at once');
select matches((select reason from vigil.status_transitions where service_id = '00000000-0000-4000-8000-000000000831'),
            '^the evidence proves it lasted \(down\): ', 'the transition says why it did not wait');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000832', 'degraded', '{"decisive_status": "degraded"}'), 'degraded',
          'a session idle in a transaction past its threshold: degraded on the first check');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000832', 'down', '{"decisive_status": "degraded"}'), 'degraded',
          'down but only degraded proven: degraded until the threshold says down');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000833', 'degraded', '{}'), 'unknown',
          'a flappy signal without lasting evidence keeps the hysteresis (its status is not judged yet)');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000833', 'down', '{"decisive_status": null}'), 'unknown',
          'a null decisive status is no evidence');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000831', 'degraded', '{"decisive_status": "degraded"}'), 'down',
          'a decisive degraded never lifts a service out of down');
select is(pg_temp.feed('00000000-0000-4000-8000-000000000833', 'healthy', '{"decisive_status": "down"}'), 'unknown',
          'a healthy check ignores a decisive status (one healthy check is not enough to judge either)');

select * from finish();
rollback;
