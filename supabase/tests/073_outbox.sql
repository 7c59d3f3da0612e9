-- The outbox, from the notify function's side. claim_alerts(worker, limit, lease) takes due pending
-- or failed alerts (FOR UPDATE SKIP LOCKED), marks them sending for a lease and returns what a
-- message needs; a lease that runs out puts the alert back. record_alert_attempt(worker, ids,
-- result) writes one alert_attempts row per alert of a provider request, then: delivered → sent;
-- retryable → failed, retried after exponential backoff with jitter (never before the provider's
-- Retry-After), until alert_give_up_hours; permanent → dead, the contact marked failing. A dead
-- alert is tried on the person's next channel (route, then fallback order), and the incident log
-- says so, or that none is left. An INSERT that queues something due now wakes notify, once.
--
-- Pages go to every matching contact, so the contacts table is locked and emptied inside this
-- transaction (rolled back): only this file's contacts exist while it runs.
begin;
set search_path = extensions, public;
select plan(63);

lock table vigil.contacts in exclusive mode;
delete from vigil.contacts;
-- Ana, on call, has every channel but discord and webhook; Ben, of the team, has email.
insert into vigil.contacts (id, name, role, channel, address, secret_name) values
  ('00000000-0000-4000-8000-0000000007b1', 'Ana', 'on_call', 'sms', '+15550730001', null),
  ('00000000-0000-4000-8000-0000000007b2', 'Ana', 'on_call', 'pagerduty', 'Ana PD', 'T073_ANA_PD'),
  ('00000000-0000-4000-8000-0000000007b3', 'Ana', 'on_call', 'email', 'ana@example.org', null),
  ('00000000-0000-4000-8000-0000000007b4', 'Ana', 'on_call', 'slack', '#ana', 'T073_ANA_SLACK'),
  ('00000000-0000-4000-8000-0000000007b5', 'Ben', 'team', 'email', 'ben@example.org', null);

insert into vigil.services (id, name, kind, environment, config) values
  ('00000000-0000-4000-8000-000000000731', 't073-api', 'http', 'prod', '{"url": "https://api.t073.example.org"}');
insert into vigil.incidents (service_id, kind, severity, title, detail, opened_at)
values ('00000000-0000-4000-8000-000000000731', 'down', 'critical', 't073 api down', '{"error": "connect ECONNREFUSED"}',
        now() - interval '12 minutes');
create temp table inc as select id from vigil.incidents where title = 't073 api down';
insert into vigil.heal_actions (action_id, phase, incident_id, service_id, strategy, attempt, reason, outcome, detail)
select '00000000-0000-4000-8000-0000000007c1', p::vigil.heal_phase, (select id from inc), '00000000-0000-4000-8000-000000000731',
       'restart', 1, 't073', o::vigil.heal_outcome, d
  from (values ('intent', 'pending', null), ('result', 'failed', 'still refusing connections')) v(p, o, d);
insert into vigil.heal_approvals (action_id, incident_id, service_id, strategy, plan)
values ('00000000-0000-4000-8000-0000000007c2', (select id from inc), '00000000-0000-4000-8000-000000000731', 'failover',
        '{"action": "promote the replica"}');

-- notify wake-ups this transaction queued.
create function pg_temp.wakes() returns integer language sql as $$
  select count(*)::int from vigil.invocations where fn = 'notify' and body = '{"trigger": "alert"}'
$$;
create function pg_temp.alert(p_who text, p_channel text, p_event text default 'page') returns vigil.alerts language sql as $$
  select a.* from vigil.alerts a join vigil.contacts c on c.id = a.contact_id
   where c.name = p_who and a.channel = p_channel::vigil.alert_channel and a.event = p_event order by a.id desc limit 1
$$;

select is(pg_temp.wakes(), 0, 'precondition: nothing has woken notify yet');
select is(vigil.escalate((select id from inc), 3, 'attempt 3 failed'), 3, 'the page goes to Ana''s sms and PagerDuty and Ben''s email');
select is(pg_temp.wakes(), 1, 'the INSERT that queued three due alerts woke notify once');

-- Rows claim_alerts must leave alone, and one failed row due a minute ago (first in line).
insert into vigil.alerts (contact_id, service_id, channel, recipient, severity, priority, event, subject, body,
                          status, sent_at, next_attempt_at, attempts, last_error, suppressed_reason)
select '00000000-0000-4000-8000-0000000007b5', '00000000-0000-4000-8000-000000000731', 'email', 'ben@example.org', 'info',
       -- The retry is as urgent as the pages (claims go by priority first, then by when due).
       case when s = 't073 retry' then 'P0' else 'P2' end, 'notice',
       s, 'b', st::vigil.alert_status, case when st = 'sent' then now() end, now() + due, att, err, why
  from (values ('t073 sent', 'sent', interval '0', 1, null, null),
               ('t073 later', 'pending', interval '1 minute', 0, null, null),
               ('t073 dead', 'dead', interval '-1 hour', 3, 'gone', null),
               ('t073 suppressed', 'suppressed', interval '-1 hour', 0, null, 'a silence'),
               ('t073 retry', 'failed', interval '-1 minute', 2, 'HTTP 502', null)) v(s, st, due, att, err, why);
select is(pg_temp.wakes(), 1, 'inserting rows none of which is pending and due now does not wake notify');

-- ─── claim_alerts ───────────────────────────────────────────────────────────────────────────
select throws_ok($$select vigil.claim_alerts('', 10)$$, '22023', 'claim_alerts: a worker name and a limit of 1 to 10000 are required',
                 'a worker must name itself');
select throws_ok($$select vigil.claim_alerts('w1', 0)$$, '22023', 'claim_alerts: a worker name and a limit of 1 to 10000 are required',
                 'the limit is at least 1');
select throws_ok($$select vigil.claim_alerts('w1', 10001)$$, '22023', 'claim_alerts: a worker name and a limit of 1 to 10000 are required',
                 'and at most 10000');

create temp table claim1 as select c from vigil.claim_alerts('w1', 2) c;
select set_eq($$select c->>'subject' from claim1$$, $$values ('t073 retry'), ('[P0][PROD] t073 api down')$$,
  'w1 (limit 2) gets the two first due: the failed retry due a minute ago, then the first page');
select is((select c->>'channel' from claim1 where c->>'event' = 'page'), 'sms', 'the first page queued was Ana''s sms');
select results_eq(
  $$select status::text, claimed_by, claimed_until, attempts from vigil.alerts where id in (select (c->>'id')::bigint from claim1) order by id$$,
  $$values ('sending'::text, 'w1'::text, now() + interval '2 minutes', 1), ('sending', 'w1', now() + interval '2 minutes', 3)$$,
  'both are sending, claimed by w1 for the default two-minute lease, each attempt counted'
);
select is(
  (select c from claim1 where c->>'channel' = 'sms'),
  (select jsonb_build_object(
     'id', a.id, 'incident_id', a.incident_id, 'event', 'page', 'priority', 'P0', 'severity', 'critical',
     'subject', '[P0][PROD] t073 api down', 'body', 't073 api down. attempt 3 failed', 'dedup_key', 'vigil-incident-' || a.incident_id,
     'attempt', 1, 'created_at', now(), 'channel', 'sms', 'reason', 'attempt 3 failed',
     'contact', jsonb_build_object('id', '00000000-0000-4000-8000-0000000007b1', 'name', 'Ana', 'role', 'on_call', 'channel', 'sms',
                                   'address', '+15550730001', 'secret_name', null),
     'service', 't073-api', 'environment', 'prod',
     'incident', jsonb_build_object('title', 't073 api down', 'opened_at', now() - interval '12 minutes', 'resolved_at', null,
                                    'status', 'open', 'error', 'connect ECONNREFUSED', 'affected', '[]'::jsonb, 'acknowledged_by', null),
     'tried', '[{"strategy": "restart", "attempt": 1, "outcome": "failed", "detail": "still refusing connections"}]'::jsonb,
     'pending_approval', jsonb_build_object('action_id', '00000000-0000-4000-8000-0000000007c2', 'strategy', 'failover',
                                            'action', 'promote the replica', 'expires_at', now() + interval '1 hour'),
     'ack_link_hours', 24)
     from pg_temp.alert('Ana', 'sms') a),
  'a claimed page carries why it was sent, the contact, the incident, the service, the heal results tried and the approval waiting'
);
select is((select c -> 'incident' from claim1 where c->>'subject' = 't073 retry'), 'null'::jsonb,
          'an alert about no incident has a null incident');

create temp table claim2 as select c from vigil.claim_alerts('w2', 100, interval '30 seconds') c;
select set_eq($$select c->'contact'->>'name' as who, c->>'channel' as channel from claim2$$, $$values ('Ana', 'pagerduty'), ('Ben', 'email')$$,
  'a second worker gets only the rest of what is due: not w1''s alerts, not the held, sent, dead or suppressed ones');
select is((select array_agg(distinct claimed_until) from vigil.alerts where claimed_by = 'w2'), array[now() + interval '30 seconds'],
          'the lease is as long as the worker asked');
select is((select count(*)::int from vigil.claim_alerts('w3')), 0, 'a third worker finds nothing due');

-- ─── record_alert_attempt: delivered ────────────────────────────────────────────────────────
select is(
  vigil.record_alert_attempt('w2', (select jsonb_agg((c->>'id')::bigint) from claim2),
    '{"outcome": "delivered", "provider_id": "PD-7731", "status_code": 202, "duration_ms": 340,
      "request_id": "00000000-0000-4000-8000-0000000007d1", "started_at": "2026-01-01T00:00:00Z"}'),
  '{"recorded": 2, "fallbacks": 0}'::jsonb, 'w2 records one request that carried both its alerts as delivered');
select results_eq(
  $$select status::text, sent_at, provider_id, claimed_by, claimed_until, last_error from vigil.alerts
     where id in (select (c->>'id')::bigint from claim2)$$,
  $$values ('sent'::text, now(), 'PD-7731'::text, null::text, null::timestamptz, null::text),
           ('sent', now(), 'PD-7731', null, null, null)$$,
  'both are sent now, with the provider''s id, no longer claimed'
);
select set_eq(
  $$select t.alert_id, t.request_id, t.channel::text, t.contact_id, t.attempt, t.started_at, t.duration_ms, t.outcome, t.status_code, t.error, t.worker
      from vigil.alert_attempts t where t.alert_id in (select (c->>'id')::bigint from claim2)$$,
  $$select a.id, '00000000-0000-4000-8000-0000000007d1'::uuid as request_id, a.channel::text, a.contact_id, 1 as attempt,
           '2026-01-01T00:00:00Z'::timestamptz as started_at, 340 as duration_ms, 'delivered'::text as outcome, 202 as status_code,
           null::text as error, 'w2'::text as worker
      from vigil.alerts a where a.id in (select (c->>'id')::bigint from claim2)$$,
  'one attempt row per alert, sharing the request id, with channel, contact, status code, duration and worker'
);

-- ─── Only what the worker holds ─────────────────────────────────────────────────────────────
create temp table before_stranger as select id, status, claimed_by, attempts from vigil.alerts;
select is(vigil.record_alert_attempt('w9', (select jsonb_agg((c->>'id')::bigint) from claim1), '{"outcome": "permanent", "error": "x"}'),
          '{"recorded": 0, "fallbacks": 0}'::jsonb, 'a worker cannot record alerts another worker claimed');
select is(vigil.record_alert_attempt('w2', (select jsonb_agg((c->>'id')::bigint) from claim2), '{"outcome": "retryable", "error": "x"}'),
          '{"recorded": 0, "fallbacks": 0}'::jsonb, 'nor alerts it already recorded');
select set_eq($$select id, status, claimed_by, attempts from vigil.alerts$$, $$select * from before_stranger$$,
  'neither changed any alert');
select is((select count(*)::int from vigil.alert_attempts where worker = 'w9' or (worker = 'w2' and outcome <> 'delivered')), 0,
          'nor wrote an attempt');
select throws_ok($$select vigil.record_alert_attempt('w1', '[]', '{"outcome": "bounced"}')$$, '22023',
                 'record_alert_attempt: outcome must be delivered, retryable or permanent', 'an unknown outcome is refused');
select throws_ok($$select vigil.record_alert_attempt('w1', '[]', '{}')$$, '22023',
                 'record_alert_attempt: outcome must be delivered, retryable or permanent', 'so is a missing one');

-- ─── Permanent: dead, the contact failing, the person's next channel ───────────────────────
create temp table sms as select id from pg_temp.alert('Ana', 'sms');
select is(
  vigil.record_alert_attempt('w1', jsonb_build_array((select id from sms)),
    '{"outcome": "permanent", "error": "21211: invalid To number", "status_code": 400, "scope": "contact"}'),
  '{"recorded": 1, "fallbacks": 1}'::jsonb, 'a permanent failure is recorded, with one fallback queued');
select results_eq($$select status::text, last_error, claimed_by from vigil.alerts where id = (select id from sms)$$,
  $$values ('dead'::text, '21211: invalid To number'::text, null::text)$$, 'the sms alert is dead, with the provider''s error');
select results_eq($$select failing_since, failing_reason from vigil.contacts where id = '00000000-0000-4000-8000-0000000007b1'$$,
  $$values (now(), '21211: invalid To number'::text)$$, 'Ana''s sms contact is marked failing, with the reason');
select results_eq(
  $$select a.channel::text, a.contact_id, a.status::text, a.next_attempt_at, a.fallback_of, a.event, a.priority, a.level, a.subject, a.dedup_key
      from vigil.alerts a where a.fallback_of = (select id from sms)$$,
  $$select 'email'::text, '00000000-0000-4000-8000-0000000007b3'::uuid, 'pending'::text, now(), (select id from sms), 'page'::text, 'P0'::text, 3,
           '[P0][PROD] t073 api down'::text, 'vigil-incident-' || (select id from inc)$$,
  'the page goes to Ana''s email, the first fallback: PagerDuty, the other route channel, already has it'
);
select results_eq(
  $$select level, message from vigil.incident_log where incident_id = (select id from inc) order by id desc limit 1$$,
  $$select 'warning'::text, format('alert %s to Ana could not go by sms (21211: invalid To number); trying email', id) from sms$$,
  'the incident log says which channel failed and which is tried next'
);
select is(pg_temp.wakes(), 2, 'the fallback, due now, woke notify');

-- ─── A lease that ran out ───────────────────────────────────────────────────────────────────
create temp table retry as select id from vigil.alerts where subject = 't073 retry';
update vigil.alerts set claimed_until = now() - interval '1 second', last_error = null where id = (select id from retry);
create temp table claim4 as select c from vigil.claim_alerts('w4') c;
select set_eq($$select (c->>'id')::bigint as id, (c->>'attempt')::int as attempt from claim4$$,
  $$select id, 4 from retry union all select id, 1 from pg_temp.alert('Ana', 'email')$$,
  'after w1''s lease ran out its alert is due again and w4 claims it (4th attempt), with the new fallback');
select results_eq($$select status::text, claimed_by, last_error from vigil.alerts where id = (select id from retry)$$,
  $$values ('sending'::text, 'w4'::text, 'a notify worker stopped before recording the outcome (its lease ran out)'::text)$$,
  'the alert says the last worker stopped before recording the outcome');
select results_eq($$select outcome, worker, error from vigil.alert_attempts where alert_id = (select id from retry) order by id desc limit 1$$,
  $$values ('retryable'::text, 'w1'::text, 'a notify worker stopped before recording the outcome (its lease ran out); it may have arrived'::text)$$,
  'the lost try is an attempt row too, in the name of the worker that lost it');
select is(vigil.record_alert_attempt('w1', jsonb_build_array((select id from retry)), '{"outcome": "delivered"}'),
          '{"recorded": 0, "fallbacks": 0}'::jsonb, 'the worker whose lease ran out can no longer record it');

-- A lease that ran out on an alert's last allowed attempt: it is dead, and claiming goes on.
insert into vigil.alerts (contact_id, service_id, channel, recipient, severity, priority, event, subject, body,
                          status, attempts, max_attempts, claimed_by, claimed_until)
values ('00000000-0000-4000-8000-0000000007b5', '00000000-0000-4000-8000-000000000731', 'email', 'ben@example.org', 'info', 'P2', 'notice',
        't073 last try', 'b', 'sending', 5, 5, 'w0', now() - interval '1 second');
select lives_ok($$select vigil.claim_alerts('w0')$$, 'claim_alerts runs with a lapsed lease on an alert at its last attempt');
select results_eq($$select status::text, attempts, claimed_by from vigil.alerts where subject = 't073 last try'$$,
  $$values ('dead'::text, 5, null::text)$$, 'that alert is dead, not claimed a sixth time');

-- ─── Retryable: backoff with jitter ─────────────────────────────────────────────────────────
-- base 5 s, doubled per attempt: after attempt n the wait is in [5·2^(n-1)/2, 5·2^(n-1)].
select is(vigil.record_alert_attempt('w4', jsonb_build_array((select id from retry)), '{"outcome": "retryable", "error": "HTTP 503", "status_code": 503}'),
          '{"recorded": 1, "fallbacks": 0}'::jsonb, 'a retryable failure queues no fallback');
select results_eq($$select status::text, last_error, claimed_by, claimed_until from vigil.alerts where id = (select id from retry)$$,
  $$values ('failed'::text, 'HTTP 503'::text, null::text, null::timestamptz)$$, 'the alert is failed, with the error, unclaimed');
select ok((select next_attempt_at between now() + interval '20 seconds' and now() + interval '40 seconds' from vigil.alerts where id = (select id from retry)),
          'after the 4th attempt it waits between 20 and 40 s (5·2³ = 40, half of it jittered)');
select is(vigil.record_alert_attempt('w4', jsonb_build_array((select id from pg_temp.alert('Ana', 'email'))),
                                     '{"outcome": "retryable", "error": "HTTP 429", "retry_after_ms": 90000}'),
          '{"recorded": 1, "fallbacks": 0}'::jsonb, 'a rate-limited attempt is recorded');
select is((select next_attempt_at from pg_temp.alert('Ana', 'email')), now() + interval '90 seconds',
          'a provider''s Retry-After longer than the backoff wins: 90 s, not 2.5 to 5');

-- Many attempts: the backoff stops at alert_retry_max_seconds (600). A huge Retry-After stops at an hour.
update vigil.alerts set attempts = 19, next_attempt_at = now() - interval '1 second' where id = (select id from retry);
select is((select count(*)::int from vigil.claim_alerts('w5') c where (c->>'id')::bigint = (select id from retry)), 1, 'w5 claims it for the 20th time');
select vigil.record_alert_attempt('w5', jsonb_build_array((select id from retry)), '{"outcome": "retryable"}');
select ok((select next_attempt_at between now() + interval '300 seconds' and now() + interval '600 seconds' from vigil.alerts where id = (select id from retry)),
          'after the 20th attempt it waits between 300 and 600 s: the backoff is capped at alert_retry_max_seconds');
select is((select last_error from vigil.alerts where id = (select id from retry)), 'failed without a reason',
          'a failure reported without an error is recorded as failed without a reason');
update vigil.alerts set next_attempt_at = now() - interval '1 second' where id = (select id from retry);
select vigil.claim_alerts('w5');
select vigil.record_alert_attempt('w5', jsonb_build_array((select id from retry)), '{"outcome": "retryable", "error": "slow down", "retry_after_ms": 86400000}');
select is((select next_attempt_at from vigil.alerts where id = (select id from retry)), now() + interval '1 hour',
          'a Retry-After of a day is cut to an hour');
-- The first retry of a fresh alert: between 2.5 and 5 s.
select vigil.queue_alert(null, '00000000-0000-4000-8000-000000000731', 'notice', 'P2', '{team}', 't073 first', 'b');
create temp table first as select id from vigil.alerts where subject = 't073 first';
select vigil.claim_alerts('w6');
select vigil.record_alert_attempt('w6', jsonb_build_array((select id from first)), '{"outcome": "retryable", "error": "ETIMEDOUT"}');
select ok((select next_attempt_at between now() + interval '2.5 seconds' and now() + interval '5 seconds' from vigil.alerts where id = (select id from first)),
          'after the first attempt it waits between 2.5 and 5 s');
select is((select array_agg(attempt order by id) from vigil.alert_attempts where alert_id = (select id from retry)), array[3, 4, 20, 21],
          'each attempt of the alert has its row, numbered: the one lost with w1''s lease (3) too');

-- ─── Giving up after alert_give_up_hours ────────────────────────────────────────────────────
create temp table mail as select id from pg_temp.alert('Ana', 'email');
update vigil.alerts set created_at = now() - interval '25 hours', next_attempt_at = now() - interval '1 second' where id = (select id from mail);
select vigil.claim_alerts('w7');
select is(vigil.record_alert_attempt('w7', jsonb_build_array((select id from mail)), '{"outcome": "retryable", "error": "HTTP 500"}'),
          '{"recorded": 1, "fallbacks": 1}'::jsonb, 'a retryable failure of an alert older than alert_give_up_hours (24) gives up');
select results_eq($$select status::text, last_error from vigil.alerts where id = (select id from mail)$$,
  $$values ('dead'::text, 'gave up after 2 attempts: HTTP 500'::text)$$, 'the alert is dead: gave up after its attempts');
select is((select failing_since from vigil.contacts where id = '00000000-0000-4000-8000-0000000007b3'), null::timestamptz,
          'giving up does not mark the contact failing (the provider never said no)');
select results_eq($$select channel::text, fallback_of, status::text from vigil.alerts where fallback_of = (select id from mail)$$,
  $$select 'slack'::text, id, 'pending'::text from mail$$,
  'the next channel of Ana''s is tried: slack, after sms (failing), PagerDuty (has it) and email (gave up)');
select results_eq(
  $$select message from vigil.incident_log where incident_id = (select id from inc) order by id desc limit 1$$,
  $$select format('alert %s to Ana could not go by email (HTTP 500); trying slack', id) from mail$$,
  'the incident log says so'
);

-- ─── Permanent with nobody left ─────────────────────────────────────────────────────────────
create temp table chat as select id from pg_temp.alert('Ana', 'slack');
select vigil.claim_alerts('w8');
select is(vigil.record_alert_attempt('w8', jsonb_build_array((select id from chat)), '{"outcome": "permanent", "error": "channel_not_found", "scope": "contact"}'),
          '{"recorded": 1, "fallbacks": 0}'::jsonb, 'a permanent failure on the last channel queues no fallback');
select is_empty($$select 1 from vigil.alerts where fallback_of = (select id from chat)$$, 'no alert follows it');
select results_eq(
  $$select level, message from vigil.incident_log where incident_id = (select id from inc) order by id desc limit 1$$,
  $$select 'error'::text, format('alert %s could not reach Ana on slack (channel_not_found) and no other channel is left', id) from sms$$,
  'the incident log says nobody is left, naming the original alert'
);
select is((select count(*)::int from vigil.contacts where name = 'Ana' and failing_since is not null), 2,
          'Ana''s sms and slack are failing; her PagerDuty and email are not');

-- ─── Waking notify ──────────────────────────────────────────────────────────────────────────
create temp table wakes_before as select pg_temp.wakes() as n;
select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000731', 'notice', 'P0', '{on_call,team}', 't073 wake', 'b'), 2,
          'a P0 notice queues two alerts (Ana''s PagerDuty, Ben''s email)');
select is(pg_temp.wakes(), (select n + 1 from wakes_before), 'one INSERT of two due alerts wakes notify once');
insert into vigil.silences (service_id, ends_at, reason) values ('00000000-0000-4000-8000-000000000731', now() + interval '1 hour', 't073 quiet');
select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000731', 'notice', 'P0', '{on_call,team}', 't073 silenced', 'b'), 0,
          'under a silence nothing is queued to send');
select is(pg_temp.wakes(), (select n + 1 from wakes_before), 'an INSERT of only suppressed alerts does not wake notify');
delete from vigil.silences where reason = 't073 quiet';
-- Ben's last alert went out five seconds ago: the next waits for the grouping window.
update vigil.alerts set status = 'sent', sent_at = now() - interval '5 seconds', created_at = now() - interval '6 seconds'
 where subject = 't073 wake' and channel = 'email';
select is(vigil.queue_alert(null, '00000000-0000-4000-8000-000000000731', 'notice', 'P2', '{team}', 't073 held', 'b'), 1,
          'a notice for Ben is queued');
select is((select next_attempt_at from vigil.alerts where subject = 't073 held'), now() + interval '25 seconds', 'it is held 25 s');
select is(pg_temp.wakes(), (select n + 1 from wakes_before), 'an INSERT of only held alerts does not wake notify (sweep_alerts will)');

select * from finish();
rollback;
