-- vigil.sweep_invocations(answer_within, keep_for): times out invocations nobody answered,
-- forgets finished ones after keep_for, and reports the counts. (Collecting pg_net responses
-- needs pg_net, which the local stack does not have.)
begin;
set search_path = extensions, public;
select plan(13);

-- A known table: the rows of this transaction only (rolled back at the end).
delete from vigil.invocations;
insert into vigil.invocations (fn, transport, state, requested_at, claimed_at, completed_at, status_code, error) values
  ('t041-stale-notify', 'notify', 'pending',   now() - interval '11 minutes', null, null, null, null),
  ('t041-stale-pgnet',  'pg_net', 'sent',      now() - interval '11 minutes', now() - interval '11 minutes', null, null, null),
  ('t041-recent',       'notify', 'pending',   now() - interval '1 minute', null, null, null, null),
  ('t041-old-done',     'notify', 'succeeded', now() - interval '8 days', null, now() - interval '8 days', 200, null),
  ('t041-old-failed',   'pg_net', 'failed',    now() - interval '9 days', null, now() - interval '9 days', 500, 'boom'),
  ('t041-week-done',    'notify', 'succeeded', now() - interval '6 days', null, now() - interval '6 days', 204, null);

select is(vigil.sweep_invocations(), '{"collected": 0, "timed_out": 2, "forgotten": 2}'::jsonb,
          'the sweep reports 2 timed out and 2 forgotten as jsonb');

select results_eq(
  $$select state, completed_at from vigil.invocations where fn = 't041-stale-notify'$$,
  $$values ('timed_out'::text, now())$$,
  'a pending invocation older than the answer window is timed_out with completed_at set'
);
select matches((select error from vigil.invocations where fn = 't041-stale-notify'), 'relay',
               'the timed-out notify invocation''s error mentions the relay');
select is((select error from vigil.invocations where fn = 't041-stale-notify'),
          'no relay answered within 00:10:00 (is the local stack running?)',
          'the error names the answer window');
select results_eq(
  $$select state, error from vigil.invocations where fn = 't041-stale-pgnet'$$,
  $$values ('timed_out'::text, 'no response within 00:10:00'::text)$$,
  'a sent pg_net invocation older than the answer window is timed out too'
);
select results_eq($$select state, completed_at from vigil.invocations where fn = 't041-recent'$$,
                  $$values ('pending'::text, null::timestamptz)$$, 'a pending invocation inside the answer window is left alone');
select is_empty($$select fn from vigil.invocations where fn in ('t041-old-done', 't041-old-failed')$$,
                'finished invocations older than keep_for (7 days) are deleted');
select isnt_empty($$select 1 from vigil.invocations where fn = 't041-week-done'$$,
                  'a finished invocation younger than keep_for is kept');

select is(vigil.sweep_invocations(), '{"collected": 0, "timed_out": 0, "forgotten": 0}'::jsonb,
          'a second sweep finds nothing to do');

-- The windows are parameters.
select is(vigil.sweep_invocations(interval '30 seconds', interval '5 days'),
          '{"collected": 0, "timed_out": 1, "forgotten": 1}'::jsonb,
          'with a 30 s answer window and 5 days kept, the recent one times out and the 6-day-old one goes');
select is((select error from vigil.invocations where fn = 't041-recent'),
          'no relay answered within 00:00:30 (is the local stack running?)',
          'the error names the window that was used');
select is_empty($$select 1 from vigil.invocations where fn = 't041-week-done'$$,
                'the 6-day-old invocation is gone with keep_for = 5 days');
-- Timed-out rows were completed now, so they stay until keep_for has passed from now.
select set_eq($$select fn from vigil.invocations$$,
              array['t041-stale-notify', 't041-stale-pgnet', 't041-recent'],
              'only the three timed-out invocations remain');

select * from finish();
rollback;
