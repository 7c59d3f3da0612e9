-- vigil.invoke(fn, body): validates the function name and body, records an invocation and
-- (without pg_net, as here) hands it to the local relay with NOTIFY vigil_invoke. The NOTIFY
-- itself is observed from the Deno tests; pgTAP cannot see it.
begin;
set search_path = extensions, public;
select plan(20);

select ok(
  not exists (select from pg_extension where extname = 'pg_net')
    and to_regprocedure('net.http_post(text,jsonb,jsonb,jsonb,integer)') is null,
  'precondition: neither pg_net nor a net.http_post stand-in exists, so invoke takes the notify path'
);

create temp table before_count as select count(*) as n from vigil.invocations;
create temp table invoked as select vigil.invoke('status', '{}') as id;

select isnt((select id from invoked), null, 'vigil.invoke(''status'', ''{}'') returns an id');
select results_eq(
  $$select fn, body, transport, state, completed_at, status_code, error from vigil.invocations where id = (select min(id) from invoked)$$,
  $$values ('status'::text, '{}'::jsonb, 'notify'::text, 'pending'::text, null::timestamptz, null::integer, null::text)$$,
  'the invocation is recorded as a pending notify-transport row for fn status'
);
select is((select requested_at from vigil.invocations where id = (select min(id) from invoked)), now(),
          'requested_at is the calling transaction''s time');

insert into invoked select vigil.invoke('heal', '{"incident_id": 7, "dry_run": true}');
insert into invoked select vigil.invoke('probe-all_2');
select results_eq(
  $$select body from vigil.invocations where fn = 'heal' and id in (select id from invoked)$$,
  $$values ('{"incident_id": 7, "dry_run": true}'::jsonb)$$,
  'the body is stored as given'
);
select results_eq(
  $$select fn, body from vigil.invocations where fn = 'probe-all_2' and id in (select id from invoked)$$,
  $$values ('probe-all_2'::text, '{}'::jsonb)$$,
  'body defaults to {} and hyphens, underscores and digits are valid in a name'
);
select lives_ok($$select vigil.invoke(repeat('f', 64))$$, 'a 64-character function name is accepted');
select cmp_ok((select max(id) from invoked), '<', vigil.invoke('status'), 'each call records a new invocation with a larger id');

select throws_ok($$select vigil.invoke(null, '{}')$$, '22023', 'vigil.invoke: invalid function name NULL',
                 'a NULL function name is rejected, and the message says NULL');
select throws_ok($$select vigil.invoke('', '{}')$$, '22023', 'vigil.invoke: invalid function name ''''',
                 'an empty function name is rejected, and the message quotes it');
select throws_ok($$select vigil.invoke('a/b', '{}')$$, '22023', 'vigil.invoke: invalid function name ''a/b''',
                 'a function name with a slash is rejected, and the message names it');
select throws_ok($$select vigil.invoke('../x', '{}')$$, '22023', 'vigil.invoke: invalid function name ''../x''',
                 'a path-traversal function name is rejected, and the message names it');
select throws_ok(format('select vigil.invoke(%L, %L)', repeat('f', 65), '{}'), '22023',
                 format('vigil.invoke: invalid function name %L', repeat('f', 65)),
                 'a 65-character function name is rejected, and the message names it');
select throws_ok($$select vigil.invoke('status?x=1', '{}')$$, '22023', 'vigil.invoke: invalid function name ''status?x=1''',
                 'a function name with a query string is rejected');
select throws_ok($$select vigil.invoke(E'status\n', '{}')$$, '22023', null,
                 'a function name with a trailing newline is rejected');

select throws_ok($$select vigil.invoke('status', '[]')$$, '22023', 'vigil.invoke: body must be a JSON object, got array',
                 'an array body is rejected');
select throws_ok($$select vigil.invoke('status', '"x"')$$, '22023', 'vigil.invoke: body must be a JSON object, got string',
                 'a string body is rejected');
select throws_ok($$select vigil.invoke('status', null)$$, '22023', 'vigil.invoke: body must be a JSON object, got NULL',
                 'a NULL body is rejected');

-- Only the five valid calls above left rows; the rejected ones left none.
select is((select count(*) from vigil.invocations) - (select n from before_count), 5::bigint,
          'exactly the five valid calls recorded invocations');
select is_empty($$select fn from vigil.invocations where fn !~ '^[A-Za-z0-9_-]{1,64}$'$$,
                'no invocation with an invalid name was recorded');

select * from finish();
rollback;
