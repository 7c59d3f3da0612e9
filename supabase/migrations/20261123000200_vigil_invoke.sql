-- vigil.invoke(fn, body): the one way SQL calls an edge function, and a record of what came of it.
--
-- On Supabase pg_net posts to <project>/functions/v1/<fn> with the URL and service key read from
-- Vault (secrets 'vigil_project_url' and 'vigil_service_role_key'); vigil.sweep_invocations()
-- copies each response from net._http_response. Where pg_net is absent (the local stack) the
-- call sends NOTIFY vigil_invoke with the invocation id and the local relay posts it and records
-- the outcome. Both paths are transactional: nothing is sent if the caller rolls back.

-- pg_net ships with Supabase; the local stack cannot install it and uses the relay instead.
do $$
begin
  if exists (select from pg_available_extensions where name = 'pg_net') then
    create extension if not exists pg_net;
  end if;
end
$$;

create table vigil.invocations (
  id bigint generated always as identity primary key,
  fn text not null,
  body jsonb not null default '{}',
  transport text not null,
  state text not null default 'pending',
  request_id bigint,
  requested_at timestamptz not null default now(),
  claimed_at timestamptz,
  completed_at timestamptz,
  status_code integer,
  duration_ms integer,
  error text,
  constraint invocation_fn_format check (fn ~ '^[A-Za-z0-9_-]{1,64}$'),
  constraint invocation_transport check (transport in ('pg_net', 'notify')),
  constraint invocation_state check (state in ('pending', 'sent', 'succeeded', 'failed', 'timed_out')),
  constraint invocation_finished_has_time check (
    (state in ('succeeded', 'failed', 'timed_out')) = (completed_at is not null)
  ),
  constraint invocation_succeeded_is_2xx check (state <> 'succeeded' or status_code between 200 and 299)
);
create index invocations_open on vigil.invocations (requested_at) where state in ('pending', 'sent');
create index invocations_fn_time on vigil.invocations (fn, requested_at desc);
comment on table vigil.invocations is
  'Every vigil.invoke call and its outcome (HTTP status or error). A failing invocation is visible here.';

create function vigil.invoke(fn text, body jsonb default '{}')
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  invocation_id bigint;
  project_url text;
  service_key text;
  request_id bigint;
begin
  if fn is null or fn !~ '^[A-Za-z0-9_-]{1,64}$' then
    raise exception 'vigil.invoke: invalid function name %', coalesce(quote_literal(fn), 'NULL')
      using errcode = 'invalid_parameter_value',
            hint = 'A function name is 1 to 64 letters, digits, hyphens or underscores.';
  end if;
  if body is null or jsonb_typeof(body) <> 'object' then
    raise exception 'vigil.invoke: body must be a JSON object, got %', coalesce(jsonb_typeof(body), 'NULL')
      using errcode = 'invalid_parameter_value';
  end if;

  -- Decided by the capability used rather than the extension's name, so tests can stand in for it.
  if pg_catalog.to_regprocedure('net.http_post(text,jsonb,jsonb,jsonb,integer)') is null then
    insert into vigil.invocations (fn, body, transport)
    values (fn, body, 'notify')
    returning id into invocation_id;
    perform pg_catalog.pg_notify('vigil_invoke', invocation_id::text);
    return invocation_id;
  end if;

  -- Vault and pg_net exist only on Supabase: dynamic SQL keeps this function valid elsewhere.
  execute $q$select max(decrypted_secret) filter (where name = 'vigil_project_url'),
                    max(decrypted_secret) filter (where name = 'vigil_service_role_key')
               from vault.decrypted_secrets
              where name in ('vigil_project_url', 'vigil_service_role_key')$q$
    into project_url, service_key;
  if project_url is null or service_key is null then
    insert into vigil.invocations (fn, body, transport, state, completed_at, error)
    values (fn, body, 'pg_net', 'failed', now(),
            'Vault secrets vigil_project_url and vigil_service_role_key must both be set (see README)')
    returning id into invocation_id;
    return invocation_id;
  end if;

  execute $q$select net.http_post(url := $1, body := $2, headers := $3, timeout_milliseconds := $4)$q$
    into request_id
    using rtrim(project_url, '/') || '/functions/v1/' || fn,
          body,
          jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || service_key),
          150000;
  insert into vigil.invocations (fn, body, transport, state, request_id, claimed_at)
  values (fn, body, 'pg_net', 'sent', request_id, now())
  returning id into invocation_id;
  return invocation_id;
end
$$;
comment on function vigil.invoke(text, jsonb) is
  'Calls edge function fn with body (async, on commit). Returns the vigil.invocations id that records the outcome.';

-- Records pg_net responses, times out invocations nobody answered, and forgets old ones.
create function vigil.sweep_invocations(
  answer_within interval default interval '10 minutes',
  keep_for interval default interval '7 days'
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  collected integer := 0;
  timed_out integer := 0;
  forgotten integer := 0;
begin
  if pg_catalog.to_regclass('net._http_response') is not null then
    execute $q$
      update vigil.invocations i
         set status_code = r.status_code,
             error = case
                       when r.error_msg is not null then r.error_msg
                       when r.status_code not between 200 and 299 then left(r.content, 1000)
                     end,
             state = case when r.status_code between 200 and 299 then 'succeeded' else 'failed' end,
             completed_at = r.created,
             duration_ms = greatest(0, (extract(epoch from (r.created - i.requested_at)) * 1000)::integer)
        from net._http_response r
       where i.transport = 'pg_net' and i.state = 'sent' and r.id = i.request_id$q$;
    get diagnostics collected = row_count;
  end if;

  update vigil.invocations
     set state = 'timed_out',
         completed_at = now(),
         error = case transport
                   when 'notify' then 'no relay answered within ' || answer_within || ' (is the local stack running?)'
                   else 'no response within ' || answer_within
                 end
   where state in ('pending', 'sent') and requested_at < now() - answer_within;
  get diagnostics timed_out = row_count;

  delete from vigil.invocations where completed_at < now() - keep_for;
  get diagnostics forgotten = row_count;

  return jsonb_build_object('collected', collected, 'timed_out', timed_out, 'forgotten', forgotten);
end
$$;

select cron.schedule('vigil-sweep-invocations', '* * * * *', 'select vigil.sweep_invocations()');
