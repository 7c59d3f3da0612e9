-- vigil.contacts, checked by the contacts_validate trigger through vigil.contact_errors(): one row per
-- way to reach someone. Each channel has its own address rule; slack, discord, pagerduty and webhook
-- name the secret holding their credential (never the credential itself), sms and email use the
-- project's own secrets and must name none; quiet hours are {start, end, timezone}. Every problem is
-- reported at once, each naming its field, in the same words as shared/contacts.ts. A row that was
-- marked failing gets another chance when what reaches the person changes. vigil.quiet_until()
-- answers when a quiet period ends.
--
-- (The migration's one-off UPDATE that moved old slack/discord/pagerduty secret names from address
-- to secret_name ran before any of this file's rows existed and cannot be replayed here.)
begin;
set search_path = extensions, public;
select plan(75);

-- A row's errors, as the trigger would report them, without inserting it.
create function pg_temp.errs(p_channel text, p_address text, p_secret text default null, p_quiet jsonb default null,
                             p_name text default 't070') returns text[]
language sql as $$
  select vigil.contact_errors(p_channel::vigil.alert_channel, p_address, p_secret, p_quiet, p_name)
$$;
-- Inserts one contact; the trigger raises on any problem.
create function pg_temp.add(p_channel text, p_address text, p_secret text default null, p_quiet jsonb default null,
                            p_name text default 't070') returns void
language sql as $$
  insert into vigil.contacts (name, role, channel, address, secret_name, quiet_hours)
  values (p_name, 'on_call', p_channel::vigil.alert_channel, p_address, p_secret, p_quiet)
$$;

-- ─── Addresses, per channel ─────────────────────────────────────────────────────────────────
select throws_ok($$select pg_temp.add('sms', '555-1234')$$, '23514',
  'invalid contact "t070": address: must be a phone number in E.164 form, like +15551234567',
  'an sms address without + and country code is refused, naming address');
select throws_ok($$select pg_temp.add('sms', '+0123456789')$$, '23514',
  'invalid contact "t070": address: must be a phone number in E.164 form, like +15551234567',
  'an sms address whose country code starts with 0 is refused');
select throws_ok($$select pg_temp.add('sms', '+1234567890123456')$$, '23514',
  'invalid contact "t070": address: must be a phone number in E.164 form, like +15551234567',
  'an sms address of 16 digits (E.164 allows 15) is refused');
select is(pg_temp.errs('sms', '+123456789012345'), '{}'::text[], 'an sms address of 15 digits is a phone number');
select is(pg_temp.errs('sms', '+1234567'), '{}'::text[], 'an sms address of 7 digits is a phone number');

select throws_ok($$select pg_temp.add('email', 'Ana <ana@example.org>')$$, '23514',
  'invalid contact "t070": address: must be an email address, like oncall@example.org',
  'an email address with a display name is refused, naming address');
select throws_ok($$select pg_temp.add('email', 'ana@localhost')$$, '23514',
  'invalid contact "t070": address: must be an email address, like oncall@example.org',
  'an email address without a top-level domain is refused');
select is(pg_temp.errs('email', repeat('a', 243) || '@example.org'), array['address: must be an email address, like oncall@example.org'],
  'an email address longer than 254 characters is refused');

select throws_ok($$select pg_temp.add('webhook', 'ftp://example.org/hook', 'T070_HOOK_KEY')$$, '23514',
  'invalid contact "t070": address: must be an http(s) URL', 'a webhook address that is not http(s) is refused, naming address');
select throws_ok($$select pg_temp.add('webhook', 'https://example.org/a hook', 'T070_HOOK_KEY')$$, '23514',
  'invalid contact "t070": address: must be an http(s) URL', 'a webhook URL with a space is refused');
select is(pg_temp.errs('webhook', 'http://127.0.0.1:8080/x?y=1', 'T070_HOOK_KEY'), '{}'::text[],
  'a webhook URL may be plain http, with a port, path and query');

select throws_ok($$select pg_temp.add('slack', '', 'T070_SLACK_URL')$$, '23514',
  'invalid contact "t070": address: must be a label of 1 to 320 characters (the secret holds the credential)',
  'a slack contact with an empty label is refused, naming address');
select throws_ok($$select pg_temp.add('pagerduty', repeat('x', 321), 'T070_PD_KEY')$$, '23514',
  'invalid contact "t070": address: must be a label of 1 to 320 characters (the secret holds the credential)',
  'a pagerduty label of 321 characters is refused');
select throws_ok($$select pg_temp.add('discord', '', 'T070_DISCORD_URL')$$, '23514',
  'invalid contact "t070": address: must be a label of 1 to 320 characters (the secret holds the credential)',
  'a discord contact with an empty label is refused');
-- The label rule is 1 to 320 characters, for the table as well as for contact_errors().
select lives_ok($$select pg_temp.add('slack', '#', 'T070_SLACK_SHORT', null, 't070 short label')$$,
  'a one-character slack label is stored (the rule says 1 to 320)');
select lives_ok($$select pg_temp.add('webhook', 'https://hooks.example.org/' || repeat('p', 1000), 'T070_LONG_HOOK', null, 't070 long url')$$,
  'a webhook URL of about 1,000 characters is stored (the rule says up to 2,048)');

-- ─── secret_name ────────────────────────────────────────────────────────────────────────────
select throws_ok($$select pg_temp.add('slack', '#ops')$$, '23514',
  'invalid contact "t070": secret_name: required for slack (the secret holding the incoming webhook URL)',
  'slack needs secret_name: the secret holding the incoming webhook URL');
select throws_ok($$select pg_temp.add('discord', '#ops')$$, '23514',
  'invalid contact "t070": secret_name: required for discord (the secret holding the incoming webhook URL)',
  'discord needs secret_name: the secret holding the incoming webhook URL');
select throws_ok($$select pg_temp.add('pagerduty', 'Ops service')$$, '23514',
  'invalid contact "t070": secret_name: required for pagerduty (the secret holding the routing key)',
  'pagerduty needs secret_name: the secret holding the routing key');
select throws_ok($$select pg_temp.add('webhook', 'https://hooks.example.org/vigil')$$, '23514',
  'invalid contact "t070": secret_name: required for webhook (the secret holding the signing key)',
  'webhook needs secret_name: the secret holding the signing key');
select throws_ok($$select pg_temp.add('sms', '+15551234567', 'TWILIO_X')$$, '23514',
  'invalid contact "t070": secret_name: must be empty for sms (it uses the project''s VIGIL_TWILIO_* secrets)',
  'sms must not name a secret (the project''s Twilio secrets are used)');
select throws_ok($$select pg_temp.add('email', 'ana@example.org', 'SENDGRID')$$, '23514',
  'invalid contact "t070": secret_name: must be empty for email (it uses the project''s VIGIL_SENDGRID_* secrets)',
  'email must not name a secret (the project''s SendGrid secrets are used)');
select throws_ok($$select pg_temp.add('slack', '#ops', 'lower_case')$$, '23514',
  'invalid contact "t070": secret_name: must name an environment variable (A-Z, 0-9, _)',
  'a lower-case secret name is refused');
select throws_ok($$select pg_temp.add('pagerduty', 'Ops', '1ST_KEY')$$, '23514',
  'invalid contact "t070": secret_name: must name an environment variable (A-Z, 0-9, _)',
  'a secret name starting with a digit is refused');
select throws_ok($$select pg_temp.add('discord', 'ops', 'MY-KEY')$$, '23514',
  'invalid contact "t070": secret_name: must name an environment variable (A-Z, 0-9, _)',
  'a secret name with a hyphen is refused');
select is(pg_temp.errs('slack', '#ops', 'A' || repeat('B', 128)), array['secret_name: must name an environment variable (A-Z, 0-9, _)'],
  'a secret name of 129 characters is refused');
select throws_ok($$select pg_temp.add('discord', 'ops', 'SUPABASE_SERVICE_ROLE_KEY')$$, '23514',
  'invalid contact "t070": secret_name: must not be one of the project''s SUPABASE_ keys',
  'a contact cannot name the project''s SUPABASE_SERVICE_ROLE_KEY');
select is(pg_temp.errs('webhook', 'https://example.org/', 'SUPABASE_DB_URL'),
  array['secret_name: must not be one of the project''s SUPABASE_ keys'], 'nor any other SUPABASE_ secret');
select is(pg_temp.errs('slack', '#ops', 'SUPABASEMENT_HOOK'), '{}'::text[],
  'a name that merely starts with SUPABASE (no underscore) is allowed');

-- ─── quiet_hours ────────────────────────────────────────────────────────────────────────────
select throws_ok($$select pg_temp.add('email', 'a@example.org', null, '{"start": "24:00", "end": "07:00", "timezone": "UTC"}')$$, '23514',
  'invalid contact "t070": quiet_hours.start: must be a time of day, HH:MM', 'quiet_hours.start of 24:00 is refused, naming the field');
select throws_ok($$select pg_temp.add('email', 'a@example.org', null, '{"start": "22:00", "end": "7:00", "timezone": "UTC"}')$$, '23514',
  'invalid contact "t070": quiet_hours.end: must be a time of day, HH:MM', 'quiet_hours.end without a leading zero is refused');
select is(pg_temp.errs('email', 'a@example.org', null, '{"end": "07:00", "timezone": "UTC"}'),
  array['quiet_hours.start: must be a time of day, HH:MM'], 'a missing quiet_hours.start is refused');
select is(pg_temp.errs('email', 'a@example.org', null, '{"start": 2200, "end": "07:00", "timezone": "UTC"}'),
  array['quiet_hours.start: must be a time of day, HH:MM'], 'a quiet_hours.start that is a number is refused');
select throws_ok($$select pg_temp.add('email', 'a@example.org', null, '{"start": "08:00", "end": "08:00", "timezone": "UTC"}')$$, '23514',
  'invalid contact "t070": quiet_hours.end: must differ from start', 'quiet hours that end when they start are refused');
select throws_ok($$select pg_temp.add('email', 'a@example.org', null, '{"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}')$$, '23514',
  'invalid contact "t070": quiet_hours.timezone: must be an IANA time zone, like Europe/Madrid', 'an unknown time zone is refused');
select is(pg_temp.errs('email', 'a@example.org', null, '{"start": "22:00", "end": "07:00"}'),
  array['quiet_hours.timezone: must be an IANA time zone, like Europe/Madrid'], 'a missing time zone is refused');
select throws_ok($$select pg_temp.add('email', 'a@example.org', null, '{"start": "22:00", "end": "07:00", "timezone": "UTC", "mood": 1}')$$, '23514',
  'invalid contact "t070": quiet_hours.mood: unknown field (allowed: end, start, timezone)', 'an unknown quiet_hours field is refused, by name');
select throws_ok($$select pg_temp.add('email', 'a@example.org', null, '"nights"')$$, '23514',
  'invalid contact "t070": quiet_hours: must be an object with start, end and timezone', 'quiet_hours that is a string is refused');
select is(pg_temp.errs('email', 'a@example.org', null, '[]'),
  array['quiet_hours: must be an object with start, end and timezone'], 'quiet_hours that is an array is refused');
select is(pg_temp.errs('email', 'a@example.org', null, '{"start": "22:00", "end": "07:00", "timezone": "America/Chicago"}'),
  '{}'::text[], 'quiet hours that wrap midnight in an IANA zone are fine');

-- ─── Names, and every problem at once ───────────────────────────────────────────────────────
select throws_ok($$select pg_temp.add('sms', '+15551234567', null, null, '   ')$$, '23514',
  'invalid contact "   ": name: must be 1 to 100 characters', 'a blank name is refused');
select is(pg_temp.errs('sms', '+15551234567', null, null, repeat('n', 101)), array['name: must be 1 to 100 characters'],
  'a name of 101 characters is refused');
select throws_ok($$select pg_temp.add('sms', '12345', 'X')$$, '23514',
  'invalid contact "t070": address: must be a phone number in E.164 form, like +15551234567; secret_name: must be empty for sms (it uses the project''s VIGIL_TWILIO_* secrets)',
  'an sms contact with a bad number and a secret gets both problems in one error');
select is(
  pg_temp.errs('slack', '', 'lower', '{"start": "25:00", "end": "x", "timezone": "Nowhere", "days": []}', ''),
  array['name: must be 1 to 100 characters',
        'address: must be a label of 1 to 320 characters (the secret holds the credential)',
        'secret_name: must name an environment variable (A-Z, 0-9, _)',
        'quiet_hours.start: must be a time of day, HH:MM',
        'quiet_hours.end: must be a time of day, HH:MM',
        'quiet_hours.timezone: must be an IANA time zone, like Europe/Madrid',
        'quiet_hours.days: unknown field (allowed: end, start, timezone)'],
  'contact_errors lists every problem, in field order: name, address, secret_name, quiet_hours'
);
select throws_ok(
  $$select pg_temp.add('webhook', 'gopher://x', null, '{"start": "22:00", "end": "22:00", "timezone": "UTC"}', 't070 many')$$, '23514',
  'invalid contact "t070 many": address: must be an http(s) URL; secret_name: required for webhook (the secret holding the signing key); quiet_hours.end: must differ from start',
  'the trigger reports several problems together, joined by semicolons');
select is_empty($$select 1 from vigil.contacts where name in ('t070', 't070 many', '   ')$$, 'no refused contact was stored');

-- ─── A valid contact of every channel ───────────────────────────────────────────────────────
select lives_ok($$
  insert into vigil.contacts (name, role, channel, address, secret_name, quiet_hours, environment) values
    ('t070 Ana', 'on_call', 'sms', '+15551234567', null, '{"start": "22:00", "end": "07:00", "timezone": "Europe/Madrid"}', 'prod'),
    ('t070 Ana', 'on_call', 'email', 'ana.lopez+oncall@mail.example.org', null, null, null),
    ('t070 Ops', 'team', 'slack', '#ops-alerts', 'T070_SLACK_OPS_URL', null, null),
    ('t070 Ops', 'team', 'discord', 'ops', 'T070_DISCORD_OPS_URL', null, 'qa'),
    ('t070 Sam', 'senior', 'pagerduty', 'Ops escalation', 'T070_PD_ROUTING_KEY', null, null),
    ('t070 Bridge', 'team', 'webhook', 'https://hooks.example.org/vigil/t070', 'T070_HOOK_SIGNING_KEY', '{"start": "00:00", "end": "23:59", "timezone": "UTC"}', null)
$$, 'a valid sms, email, slack, discord, pagerduty and webhook contact are all accepted');
select set_eq(
  $$select channel::text, address, secret_name from vigil.contacts where name in ('t070 Ana', 't070 Ops', 't070 Sam', 't070 Bridge')$$,
  $$values ('sms', '+15551234567', null::text), ('email', 'ana.lopez+oncall@mail.example.org', null),
           ('slack', '#ops-alerts', 'T070_SLACK_OPS_URL'), ('discord', 'ops', 'T070_DISCORD_OPS_URL'),
           ('pagerduty', 'Ops escalation', 'T070_PD_ROUTING_KEY'),
           ('webhook', 'https://hooks.example.org/vigil/t070', 'T070_HOOK_SIGNING_KEY')$$,
  'the six contacts are stored as given: a label in address, the secret''s name in secret_name'
);
select results_eq(
  $$select failing_since, failing_reason, updated_at from vigil.contacts where name = 't070 Sam'$$,
  $$values (null::timestamptz, null::text, now())$$,
  'a new contact is not failing'
);
select throws_ok($$update vigil.contacts set address = 'not a number' where name = 't070 Ana' and channel = 'sms'$$, '23514',
  'invalid contact "t070 Ana": address: must be a phone number in E.164 form, like +15551234567',
  'an update is checked as strictly as an insert');

-- ─── A contact that was fixed gets another chance ───────────────────────────────────────────
create function pg_temp.mark_failing() returns void language sql as $$
  update vigil.contacts set failing_since = now() - interval '1 hour', failing_reason = 'provider refused it'
   where name in ('t070 Ana', 't070 Ops', 't070 Sam', 't070 Bridge');
$$;
select pg_temp.mark_failing();
select is((select count(*)::int from vigil.contacts where name like 't070 %' and failing_since = now() - interval '1 hour'
                                                     and failing_reason = 'provider refused it'), 6,
          'marking a contact failing sticks (setting failing_since is not a fix)');
update vigil.contacts set quiet_hours = null, role = 'senior', environment = null where name = 't070 Ana' and channel = 'sms';
select isnt((select failing_since from vigil.contacts where name = 't070 Ana' and channel = 'sms'), null,
            'changing quiet hours, role or environment does not clear failing_since (the same endpoint still fails)');
update vigil.contacts set address = '+15557654321' where name = 't070 Ana' and channel = 'sms';
select results_eq($$select failing_since, failing_reason from vigil.contacts where name = 't070 Ana' and channel = 'sms'$$,
  $$values (null::timestamptz, null::text)$$, 'a new address clears failing_since and failing_reason');
update vigil.contacts set secret_name = 'T070_SLACK_OPS_URL_V2' where name = 't070 Ops' and channel = 'slack';
select results_eq($$select failing_since, failing_reason from vigil.contacts where name = 't070 Ops' and channel = 'slack'$$,
  $$values (null::timestamptz, null::text)$$, 'a new secret_name clears failing_since and failing_reason');
update vigil.contacts set channel = 'slack' where name = 't070 Ops' and channel = 'discord';
select results_eq($$select failing_since, failing_reason from vigil.contacts where name = 't070 Ops' and secret_name = 'T070_DISCORD_OPS_URL'$$,
  $$values (null::timestamptz, null::text)$$, 'a new channel clears failing_since and failing_reason');
update vigil.contacts set enabled = false where name = 't070 Sam';
select results_eq($$select failing_since, failing_reason from vigil.contacts where name = 't070 Sam'$$,
  $$values (null::timestamptz, null::text)$$, 'disabling (or re-enabling) a contact clears failing_since and failing_reason');
select isnt((select failing_since from vigil.contacts where name = 't070 Bridge'), null, 'an untouched failing contact stays failing');
select isnt((select failing_since from vigil.contacts where name = 't070 Ana' and channel = 'email'), null,
            'fixing one of a person''s rows leaves their other failing rows alone');

-- A row stored before these rules (here: with the trigger off) that does not meet them can still
-- be marked failing by record_alert_attempt, or disabled; changing what the rules cover checks it.
alter table vigil.contacts disable trigger contacts_validate;
insert into vigil.contacts (name, role, channel, address) values ('t070 Legacy', 'on_call', 'sms', '555 0100');
alter table vigil.contacts enable trigger contacts_validate;
select lives_ok($$update vigil.contacts set failing_since = now(), failing_reason = '21211: invalid To number' where name = 't070 Legacy'$$,
  'an old row that breaks the rules can still be marked failing (what record_alert_attempt does)');
select lives_ok($$update vigil.contacts set enabled = false where name = 't070 Legacy'$$, 'and disabled');
select throws_ok($$update vigil.contacts set address = '555-0100' where name = 't070 Legacy'$$, '23514',
  'invalid contact "t070 Legacy": address: must be a phone number in E.164 form, like +15551234567',
  'a new address for it must meet the rules');
select lives_ok($$update vigil.contacts set address = '+15550100' where name = 't070 Legacy'$$, 'a fixed address is accepted');

-- ─── quiet_until(): the end of the quiet period a moment is in, or null ─────────────────────
select is(vigil.quiet_until(null, '2026-12-02 03:00+00'), null::timestamptz, 'no quiet hours: never quiet');
select is(vigil.quiet_until('{"start": "09:00", "end": "17:00", "timezone": "UTC"}', '2026-12-02 12:00+00'),
          '2026-12-02 17:00+00'::timestamptz, 'inside a daytime window: quiet until its end that day');
select is(vigil.quiet_until('{"start": "09:00", "end": "17:00", "timezone": "UTC"}', '2026-12-02 09:00+00'),
          '2026-12-02 17:00+00'::timestamptz, 'the start minute is inside the window');
select is(vigil.quiet_until('{"start": "09:00", "end": "17:00", "timezone": "UTC"}', '2026-12-02 17:00+00'),
          null::timestamptz, 'the end minute is outside it');
select is(vigil.quiet_until('{"start": "09:00", "end": "17:00", "timezone": "UTC"}', '2026-12-02 08:59+00'),
          null::timestamptz, 'before a daytime window: not quiet');
select is(vigil.quiet_until('{"start": "22:00", "end": "07:00", "timezone": "UTC"}', '2026-12-02 23:30+00'),
          '2026-12-03 07:00+00'::timestamptz, 'a window that wraps midnight, before midnight: quiet until 07:00 the next day');
select is(vigil.quiet_until('{"start": "22:00", "end": "07:00", "timezone": "UTC"}', '2026-12-03 03:00+00'),
          '2026-12-03 07:00+00'::timestamptz, 'a window that wraps midnight, after midnight: quiet until 07:00 that day');
select is(vigil.quiet_until('{"start": "22:00", "end": "07:00", "timezone": "UTC"}', '2026-12-02 12:00+00'),
          null::timestamptz, 'midday is outside a night window');
-- Tokyo is UTC+9 all year: 14:30 UTC is 23:30 there.
select is(vigil.quiet_until('{"start": "22:00", "end": "07:00", "timezone": "Asia/Tokyo"}', '2026-12-02 14:30+00'),
          '2026-12-02 22:00+00'::timestamptz, 'in Asia/Tokyo, 23:30 local is quiet until 07:00 local (22:00 UTC)');
select is(vigil.quiet_until('{"start": "22:00", "end": "07:00", "timezone": "Asia/Tokyo"}', '2026-12-02 12:00+00'),
          null::timestamptz, 'in Asia/Tokyo, 21:00 local is before the window: not quiet');
select is(vigil.quiet_until('{"start": "22:00", "end": "07:00", "timezone": "Asia/Tokyo"}', '2026-12-02 23:00+00'),
          null::timestamptz, 'in Asia/Tokyo, 08:00 local is not quiet, though 23:00 UTC is inside the window in UTC terms');
-- Madrid is UTC+1 in winter and UTC+2 in summer.
select is(vigil.quiet_until('{"start": "22:00", "end": "07:00", "timezone": "Europe/Madrid"}', '2026-12-02 22:30+00'),
          '2026-12-03 06:00+00'::timestamptz, 'in Europe/Madrid in winter the quiet night ends at 06:00 UTC');
select is(vigil.quiet_until('{"start": "22:00", "end": "07:00", "timezone": "Europe/Madrid"}', '2026-07-01 22:30+00'),
          '2026-07-02 05:00+00'::timestamptz, 'in Europe/Madrid in summer it ends at 05:00 UTC');

select * from finish();
rollback;
