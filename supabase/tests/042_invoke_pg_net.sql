-- vigil.invoke and vigil.sweep_invocations on Supabase, where pg_net and Vault exist. Here a
-- stand-in with pg_net's exact signatures (net.http_post, net._http_response) and Vault's view
-- (vault.decrypted_secrets) is created inside the transaction, so the pg_net branch runs for real.
begin;
set search_path = extensions, public;
select plan(14);

create schema net;
create table net.sent (id bigserial primary key, url text, body jsonb, headers jsonb, timeout_ms integer);
create function net.http_post(
  url text, body jsonb default '{}', params jsonb default '{}',
  headers jsonb default '{"Content-Type": "application/json"}', timeout_milliseconds integer default 5000
) returns bigint language sql as $$
  insert into net.sent (url, body, headers, timeout_ms) values (url, body, headers, timeout_milliseconds) returning id
$$;
create table net._http_response (
  id bigint, status_code integer, content_type text, headers jsonb, content text,
  timed_out boolean, error_msg text, created timestamptz not null default now()
);
create schema vault;
create table vault.secrets_store (name text primary key, secret text);
create view vault.decrypted_secrets as select name, secret as decrypted_secret from vault.secrets_store;

-- Without the Vault secrets the call is recorded as failed, naming what is missing, and nothing is sent.
select vigil.invoke('status', '{}') as no_secrets_id \gset
select results_eq(
  format($$select transport, state, status_code, error ~ 'vigil_project_url' and error ~ 'vigil_service_role_key'
             from vigil.invocations where id = %s$$, :no_secrets_id),
  $$values ('pg_net'::text, 'failed'::text, null::int, true)$$,
  'without Vault secrets the invocation is failed with a message naming both secrets');
select is((select count(*)::int from net.sent), 0, 'nothing was posted without secrets');

insert into vault.secrets_store values
  ('vigil_project_url', 'https://abcdefghijklmnop.supabase.co/'),
  ('vigil_service_role_key', 'sb-secret-key-for-test-0123456789');

select vigil.invoke('health-check', '{"cycle":1}') as ok_id \gset
select vigil.invoke('notify', '{"alert":2}') as fail_id \gset
select vigil.invoke('report', '{}') as error_id \gset
select vigil.invoke('maintenance', '{}') as silent_id \gset

select results_eq(
  $$select url, body, headers ->> 'Authorization', timeout_ms from net.sent order by id limit 1$$,
  $$values ('https://abcdefghijklmnop.supabase.co/functions/v1/health-check'::text, '{"cycle":1}'::jsonb,
            'Bearer sb-secret-key-for-test-0123456789'::text, 150000)$$,
  'pg_net posts to <project>/functions/v1/<fn> with the body and the service key from Vault');
select results_eq(
  format($$select transport, state, request_id is not null, claimed_at is not null from vigil.invocations where id = %s$$, :ok_id),
  $$values ('pg_net'::text, 'sent'::text, true, true)$$,
  'the invocation is sent and carries pg_net''s request id');
select is(
  (select count(*)::int from vigil.invocations where (body::text || coalesce(error, '')) ~ 'sb-secret-key'),
  0, 'the service key is stored in no invocation row');

-- pg_net's answers arrive in net._http_response; the sweep copies them.
insert into net._http_response (id, status_code, content, error_msg, created)
select request_id, 200, '{"ok":true}', null, requested_at + interval '80 milliseconds'
  from vigil.invocations where id = :ok_id;
insert into net._http_response (id, status_code, content, error_msg)
select request_id, 500, '{"error":"boom in notify"}', null from vigil.invocations where id = :fail_id;
insert into net._http_response (id, status_code, content, error_msg)
select request_id, null, null, 'Timeout of 150000 ms reached' from vigil.invocations where id = :error_id;

select is((vigil.sweep_invocations() ->> 'collected')::int, 3, 'the sweep collects the three responses');
select results_eq(
  format($$select state, status_code, error, duration_ms from vigil.invocations where id = %s$$, :ok_id),
  $$values ('succeeded'::text, 200, null::text, 80)$$,
  'a 2xx answer makes the invocation succeeded, with its duration');
select results_eq(
  format($$select state, status_code, error from vigil.invocations where id = %s$$, :fail_id),
  $$values ('failed'::text, 500, '{"error":"boom in notify"}'::text)$$,
  'a 500 makes it failed with the start of the body as the reason');
select results_eq(
  format($$select state, status_code, error from vigil.invocations where id = %s$$, :error_id),
  $$values ('failed'::text, null::int, 'Timeout of 150000 ms reached'::text)$$,
  'a transport error makes it failed with pg_net''s message');
select is(
  (select state from vigil.invocations where id = :silent_id), 'sent',
  'an invocation without a response yet stays sent');
select is((vigil.sweep_invocations() ->> 'collected')::int, 0, 'a second sweep collects nothing twice');

update vigil.invocations set requested_at = now() - interval '11 minutes' where id = :silent_id;
select is((vigil.sweep_invocations() ->> 'timed_out')::int, 1, 'an unanswered call times out after the window');
select results_eq(
  format($$select state, error from vigil.invocations where id = %s$$, :silent_id),
  $$values ('timed_out'::text, 'no response within 00:10:00'::text)$$,
  'its reason says no response came');

select lives_ok($$select vigil.invoke('status')$$, 'the body defaults to an empty object');

select * from finish();
rollback;
