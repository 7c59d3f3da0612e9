-- Alert delivery: who hears what, when, and through which channel; the outbox the notify function
-- drains; and the noise control around it (grouping, reminders, silences, dependency folding,
-- flapping, quiet hours). Every rule is here, in SQL, so that an alert row is written in the same
-- transaction as the event that causes it; notify only formats, sends and reports back.
--
-- Priorities: P0 a critical incident in prod, P1 a critical one elsewhere, P2 a warning, P3 an
-- informational incident, and `info` for notices that page nobody. vigil.alert_routes maps each
-- priority to channels per environment.

-- ─── Settings: the knobs of noise control, per environment ──────────────────────────────────
alter table vigil.settings
  add column alert_group_seconds integer not null default 30,
  add column alert_reminder_minutes integer not null default 30,
  add column alert_ack_escalate_minutes integer not null default 15,
  add column flap_threshold integer not null default 5,
  add column flap_window_minutes integer not null default 30,
  add column alert_retry_base_seconds integer not null default 5,
  add column alert_retry_max_seconds integer not null default 600,
  add column alert_give_up_hours integer not null default 24,
  add column ack_link_hours integer not null default 24,
  add column alert_urgent_fallback_minutes integer not null default 5,
  add constraint alert_group_window check (alert_group_seconds between 0 and 3600),
  add constraint alert_reminder_interval check (alert_reminder_minutes between 1 and 1440),
  add constraint alert_ack_escalation check (alert_ack_escalate_minutes between 1 and 1440),
  add constraint flap_detection check (flap_threshold between 2 and 100 and flap_window_minutes between 1 and 1440),
  add constraint alert_retry_backoff check (
    alert_retry_base_seconds between 1 and 3600 and alert_retry_max_seconds between alert_retry_base_seconds and 86400),
  add constraint alert_give_up check (alert_give_up_hours between 1 and 168),
  add constraint ack_link_lifetime check (ack_link_hours between 1 and 720),
  add constraint alert_urgent_fallback check (alert_urgent_fallback_minutes between 1 and 1440);

comment on column vigil.settings.alert_group_seconds is
  'Alerts for one contact within this many seconds of the last one sent go out together as one message (0: never grouped).';
comment on column vigil.settings.alert_reminder_minutes is 'Unacknowledged P0/P1 incidents are paged again this often.';
comment on column vigil.settings.alert_ack_escalate_minutes is
  'An unacknowledged P0/P1 page reaches the senior contact after this many minutes.';
comment on column vigil.settings.flap_threshold is
  'A service that changes status more than this many times within flap_window_minutes is flapping: one alert, then quiet.';
comment on column vigil.settings.alert_urgent_fallback_minutes is
  'A P0/P1 page still failing after this many minutes also goes to the person''s next channel (the first keeps being retried).';
comment on column vigil.settings.alert_give_up_hours is
  'A provider that keeps failing is retried (exponential backoff with jitter) this long; then the next channel is tried.';

-- ─── Routes: priority → channels, per environment ───────────────────────────────────────────
create table vigil.alert_routes (
  environment vigil.environment not null,
  priority text not null,
  -- A person gets the alert on each of these channels they have...
  channels vigil.alert_channel[] not null,
  -- ...or, having none that works, on the first of these they have.
  fallback vigil.alert_channel[] not null default '{}',
  -- Held back during a contact's quiet hours (never for P0 and P1).
  respect_quiet_hours boolean not null,
  updated_at timestamptz not null default now(),
  primary key (environment, priority),
  constraint alert_route_priority check (priority in ('P0', 'P1', 'P2', 'P3', 'info')),
  constraint alert_route_has_channels check (cardinality(channels) between 1 and 6),
  constraint alert_route_fallback_size check (cardinality(fallback) <= 6),
  constraint alert_route_urgent_wakes check (priority not in ('P0', 'P1') or not respect_quiet_hours)
);
comment on table vigil.alert_routes is
  'Which channels each priority uses per environment: every listed channel a person has, else the first fallback they have.';

insert into vigil.alert_routes (environment, priority, channels, fallback, respect_quiet_hours)
select e, r.priority, r.channels::vigil.alert_channel[], r.fallback::vigil.alert_channel[], r.quiet
  from unnest(enum_range(null::vigil.environment)) e,
       (values ('P0', '{sms,pagerduty}', '{email,slack,discord,webhook}', false),
               ('P1', '{sms,pagerduty}', '{email,slack,discord,webhook}', false),
               ('P2', '{email}', '{slack,discord,webhook,pagerduty}', true),
               ('P3', '{email}', '{slack,discord,webhook}', true),
               ('info', '{slack,discord,webhook}', '{}', true)) r(priority, channels, fallback, quiet);

create trigger alert_routes_touch before update on vigil.alert_routes
  for each row execute function vigil.touch_updated_at();

/**
 * A bad route or alerting knob is refused naming its field, before the CHECK constraints (which
 * stay, as the last word) would name only themselves. The same rules are shared/alerting.ts.
 */
create function vigil.validate_alert_route() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  errors text[] := '{}';
begin
  if new.priority is null or new.priority not in ('P0', 'P1', 'P2', 'P3', 'info') then
    errors := errors || 'priority: must be one of P0, P1, P2, P3, info'::text;
  end if;
  if new.channels is null or cardinality(new.channels) not between 1 and 6 then
    errors := errors || 'channels: must name 1 to 6 channels'::text;
  end if;
  if new.fallback is null or cardinality(new.fallback) > 6 then
    errors := errors || 'fallback: must name at most 6 channels'::text;
  end if;
  if new.respect_quiet_hours and new.priority in ('P0', 'P1') then
    errors := errors || 'respect_quiet_hours: P0 and P1 wake people up: they cannot wait for quiet hours to end'::text;
  end if;
  if cardinality(errors) > 0 then
    raise exception 'invalid alert route % %: %', new.environment, coalesce(new.priority, '?'), array_to_string(errors, '; ')
      using errcode = 'check_violation';
  end if;
  return new;
end
$$;

create trigger alert_routes_validate before insert or update on vigil.alert_routes
  for each row execute function vigil.validate_alert_route();

create function vigil.validate_alert_settings() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  errors text[] := '{}';
  f record;
begin
  for f in select * from (values
      ('alert_group_seconds', new.alert_group_seconds, 0, 3600),
      ('alert_reminder_minutes', new.alert_reminder_minutes, 1, 1440),
      ('alert_ack_escalate_minutes', new.alert_ack_escalate_minutes, 1, 1440),
      ('flap_threshold', new.flap_threshold, 2, 100),
      ('flap_window_minutes', new.flap_window_minutes, 1, 1440),
      ('alert_retry_base_seconds', new.alert_retry_base_seconds, 1, 3600),
      ('alert_retry_max_seconds', new.alert_retry_max_seconds, 1, 86400),
      ('alert_give_up_hours', new.alert_give_up_hours, 1, 168),
      ('ack_link_hours', new.ack_link_hours, 1, 720),
      ('alert_urgent_fallback_minutes', new.alert_urgent_fallback_minutes, 1, 1440)) v(name, value, lo, hi)
  loop
    if f.value is not null and f.value not between f.lo and f.hi then
      errors := errors || format('%s: must be from %s to %s, got %s', f.name, f.lo, f.hi, f.value);
    end if;
  end loop;
  if new.alert_retry_max_seconds < new.alert_retry_base_seconds then
    errors := errors || format('alert_retry_max_seconds: must be at least alert_retry_base_seconds (%s)', new.alert_retry_base_seconds);
  end if;
  if cardinality(errors) > 0 then
    raise exception 'invalid alerting settings for %: %', new.environment, array_to_string(errors, '; ')
      using errcode = 'check_violation';
  end if;
  return new;
end
$$;

create trigger settings_validate_alerting before insert or update on vigil.settings
  for each row execute function vigil.validate_alert_settings();

/** P0 critical in prod, P1 critical elsewhere, P2 warning, P3 info. */
create function vigil.alert_priority(p_severity vigil.severity, p_environment vigil.environment)
returns text
language sql
immutable
set search_path = ''
as $$
  select case
           when p_severity = 'critical' and p_environment = 'prod' then 'P0'
           when p_severity = 'critical' then 'P1'
           when p_severity = 'warning' then 'P2'
           else 'P3'
         end
$$;

-- ─── Contacts: one row per way to reach someone; rows with the same name are one person ────
alter table vigil.contacts
  add column secret_name text,
  add column quiet_hours jsonb,
  add column failing_since timestamptz,
  add column failing_reason text,
  add column updated_at timestamptz not null default now();
comment on column vigil.contacts.address is
  'sms: an E.164 phone number; email: an address; webhook: the http(s) URL; slack, discord, pagerduty: a label (#ops).';
comment on column vigil.contacts.secret_name is
  'The edge-function secret holding the credential: the webhook URL (slack, discord), routing key (pagerduty), signing key (webhook).';
comment on column vigil.contacts.quiet_hours is
  '{"start": "22:00", "end": "07:00", "timezone": "Europe/Madrid"}: P2, P3 and notices wait until the end; P0 and P1 do not.';
comment on column vigil.contacts.failing_since is
  'Set when the provider refused this contact for good (bad number, revoked webhook): routing skips it until the row is fixed.';

-- Before this migration slack, discord and pagerduty rows kept the secret's name in address.
update vigil.contacts set secret_name = address
 where channel in ('slack', 'discord', 'pagerduty') and address ~ '^[A-Z][A-Z0-9_]{0,127}$';

-- Each channel's address rule is in contact_errors() below: the old 3-to-320 check would refuse a
-- short label ('#a') and any webhook URL longer than 320 characters that the rules allow.
alter table vigil.contacts drop constraint contact_address_present;

create trigger contacts_touch before update on vigil.contacts
  for each row execute function vigil.touch_updated_at();

/**
 * Every problem with a contact, each naming its field. The same rules are the zod schema in
 * shared/contacts.ts; tests/schema/contacts_test.ts proves both sides accept and refuse alike.
 */
create function vigil.contact_errors(
  p_channel vigil.alert_channel, p_address text, p_secret_name text, p_quiet_hours jsonb, p_name text
) returns text[]
language plpgsql
stable
set search_path = ''
as $$
declare
  errors text[] := '{}';
  k text;
begin
  if p_name is null or length(btrim(p_name)) = 0 or length(p_name) > 100 then
    errors := errors || 'name: must be 1 to 100 characters'::text;
  end if;
  if p_channel = 'sms' and (p_address is null or p_address !~ '^\+[1-9][0-9]{6,14}$') then
    errors := errors || 'address: must be a phone number in E.164 form, like +15551234567'::text;
  elsif p_channel = 'email' and (p_address is null or length(p_address) > 254
        or p_address !~ '^[^@\s<>(),;:"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$') then
    errors := errors || 'address: must be an email address, like oncall@example.org'::text;
  elsif p_channel = 'webhook' and (p_address is null or length(p_address) > 2048
        or p_address !~ '^https?://[A-Za-z0-9.\-\[\]:]+(:[0-9]{1,5})?(/[^\s]*)?$') then
    errors := errors || 'address: must be an http(s) URL'::text;
  elsif p_channel = 'webhook' and p_address ~* '[?&][^=&#]*(token|key|secret|sig|password|auth|code)[^=&#]*=' then
    errors := errors || 'address: must not carry a credential in its query (the signing key is the secret_name)'::text;
  elsif p_channel in ('slack', 'discord', 'pagerduty') and (p_address is null or length(p_address) not between 1 and 320) then
    errors := errors || 'address: must be a label of 1 to 320 characters (the secret holds the credential)'::text;
  end if;

  if p_channel in ('slack', 'discord', 'pagerduty', 'webhook') then
    if p_secret_name is null then
      errors := errors || format('secret_name: required for %s (the secret holding %s)', p_channel,
        case p_channel when 'pagerduty' then 'the routing key' when 'webhook' then 'the signing key'
                       else 'the incoming webhook URL' end);
    end if;
  elsif p_secret_name is not null then
    errors := errors || format('secret_name: must be empty for %s (it uses the project''s VIGIL_%s_* secrets)',
                               p_channel, case p_channel when 'sms' then 'TWILIO' else 'SENDGRID' end);
  end if;
  if p_secret_name is not null then
    if p_secret_name !~ '^[A-Z][A-Z0-9_]{0,127}$' then
      errors := errors || 'secret_name: must name an environment variable (A-Z, 0-9, _)'::text;
    elsif p_secret_name like 'SUPABASE\_%' then
      errors := errors || 'secret_name: must not be one of the project''s SUPABASE_ keys'::text;
    elsif p_secret_name ~ '^VIGIL_(APPROVAL_SECRET|AUDIT_SECRET|DB_URL|TWILIO_|SENDGRID_|PAGERDUTY_API_URL|PUBLIC_URL|DASHBOARD_URL|ACK_PAGE_URL|DEADMAN_URL|ALLOW_PRIVATE_TARGETS)' then
      errors := errors || 'secret_name: must not be one of Vigil''s own secrets (signing keys, provider credentials)'::text;
    end if;
  end if;

  if p_quiet_hours is not null then
    if jsonb_typeof(p_quiet_hours) <> 'object' then
      errors := errors || 'quiet_hours: must be an object with start, end and timezone'::text;
    else
      foreach k in array array['start', 'end'] loop
        if coalesce(p_quiet_hours ->> k, '') !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$' then
          errors := errors || format('quiet_hours.%s: must be a time of day, HH:MM', k);
        end if;
      end loop;
      if p_quiet_hours ->> 'start' = p_quiet_hours ->> 'end' then
        errors := errors || 'quiet_hours.end: must differ from start'::text;
      end if;
      if not exists (select from pg_catalog.pg_timezone_names where name = p_quiet_hours ->> 'timezone') then
        errors := errors || 'quiet_hours.timezone: must be an IANA time zone, like Europe/Madrid'::text;
      end if;
      for k in select jsonb_object_keys(p_quiet_hours) loop
        if k not in ('start', 'end', 'timezone') then
          errors := errors || format('quiet_hours.%s: unknown field (allowed: end, start, timezone)', k);
        end if;
      end loop;
    end if;
  end if;
  return errors;
end
$$;

create function vigil.validate_contact() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  problems text[];
begin
  -- Only what the rules cover: marking a row failing, or disabling it, must work for a row stored
  -- before these rules that does not meet them (record_alert_attempt would fail and resend forever).
  if tg_op = 'UPDATE' and (new.channel, new.address, new.secret_name, new.quiet_hours, new.name)
                          is not distinct from (old.channel, old.address, old.secret_name, old.quiet_hours, old.name) then
    problems := '{}';
  else
    problems := vigil.contact_errors(new.channel, new.address, new.secret_name, new.quiet_hours, new.name);
  end if;
  if cardinality(problems) > 0 then
    raise exception 'invalid contact "%": %', coalesce(new.name, ''), array_to_string(problems, '; ')
      using errcode = 'check_violation',
            hint = 'The rules are in shared/contacts.ts; credentials are named secrets, never values.';
  end if;
  -- A contact that was fixed gets another chance.
  if tg_op = 'UPDATE' and (new.address, new.secret_name, new.channel, new.enabled)
                          is distinct from (old.address, old.secret_name, old.channel, old.enabled) then
    new.failing_since := null;
    new.failing_reason := null;
  end if;
  return new;
end
$$;

create trigger contacts_validate before insert or update on vigil.contacts
  for each row execute function vigil.validate_contact();

/** The end of the quiet period `at` falls in, or null when it is not in one. */
create function vigil.quiet_until(p_quiet jsonb, p_at timestamptz)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  tz text := p_quiet ->> 'timezone';
  local timestamp;
  s time;
  e time;
  t time;
begin
  if p_quiet is null then
    return null;
  end if;
  local := p_at at time zone tz;
  s := (p_quiet ->> 'start')::time;
  e := (p_quiet ->> 'end')::time;
  t := local::time;
  if s < e then
    if t >= s and t < e then
      return (local::date + e) at time zone tz;
    end if;
  elsif t >= s then
    return (local::date + 1 + e) at time zone tz;
  elsif t < e then
    return (local::date + e) at time zone tz;
  end if;
  return null;
end
$$;

-- ─── Services: what depends on what, and flapping ───────────────────────────────────────────
alter table vigil.services
  add column depends_on text[],
  add column flapping_since timestamptz;
comment on column vigil.services.depends_on is
  'Names of the services this one needs. Null: Supabase''s topology (auth, storage, realtime and functions need the project database). Empty: none.';
comment on column vigil.services.flapping_since is 'Set while the service changes status too often; its alerts are held back meanwhile.';

/** The services this one directly depends on: its own list, or Supabase's topology by default. */
-- ROWS: a handful, not the default 1,000. With that estimate the recursive query below looked so
-- costly that every call was JIT-compiled (about 200 ms), once per alert queued or claimed.
create function vigil.direct_dependencies(p_service vigil.services)
returns setof uuid
language sql
stable
rows 5
set search_path = ''
as $$
  select d.id from vigil.services d
   where p_service.depends_on is not null and d.name = any (p_service.depends_on) and d.id <> p_service.id
  union
  select d.id from vigil.services d
   where p_service.depends_on is null
     and p_service.kind in ('supabase_auth', 'supabase_storage', 'supabase_realtime', 'supabase_functions')
     and d.kind = 'postgres' and d.environment = p_service.environment and d.enabled
     and not d.config ? 'connection_secret'
$$;

/** Every service this one depends on, directly or not, with the distance. */
create function vigil.dependencies(p_service_id uuid)
returns table (service_id uuid, depth integer)
language sql
stable
rows 10
set search_path = ''
as $$
  with recursive deps(id, depth, path) as (
    select d, 1, array[p_service_id, d]
      from vigil.services s, vigil.direct_dependencies(s) d
     where s.id = p_service_id
    union all
    select d, deps.depth + 1, deps.path || d
      from deps
      join vigil.services s on s.id = deps.id
      cross join lateral vigil.direct_dependencies(s) d
     where not d = any (deps.path) and deps.depth < 20
  )
  select id, min(depth) from deps group by id
$$;

create function vigil.validate_depends_on() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  missing text[];
begin
  if new.depends_on is null then
    return new;
  end if;
  if new.name = any (new.depends_on) then
    raise exception 'invalid depends_on for service "%": a service cannot depend on itself', new.name
      using errcode = 'check_violation';
  end if;
  select array_agg(n order by n) into missing
    from unnest(new.depends_on) n
   where not exists (select from vigil.services s where s.name = n);
  if missing is not null then
    raise exception 'invalid depends_on for service "%": no service named %', new.name, array_to_string(missing, ', ')
      using errcode = 'check_violation', hint = 'Register the services it depends on first.';
  end if;
  if exists (select from vigil.services s
              where s.name = any (new.depends_on)
                and exists (select from vigil.dependencies(s.id) d where d.service_id = new.id)) then
    raise exception 'invalid depends_on for service "%": it would make a dependency cycle', new.name
      using errcode = 'check_violation';
  end if;
  return new;
end
$$;

create trigger services_validate_depends_on before insert or update of depends_on on vigil.services
  for each row execute function vigil.validate_depends_on();

/** A renamed service is still what the others depend on. */
create function vigil.rename_dependency() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  update vigil.services set depends_on = array_replace(depends_on, old.name, new.name)
   where old.name = any (depends_on);
  return null;
end
$$;

create trigger services_rename_dependency after update of name on vigil.services
  for each row when (old.name is distinct from new.name) execute function vigil.rename_dependency();

-- ─── Incidents: escalation time, folding, acknowledgement ───────────────────────────────────
alter table vigil.incidents
  add column escalated_at timestamptz,
  add column folded_into bigint references vigil.incidents (id) on delete set null,
  add column affected jsonb not null default '[]',
  add column acknowledged_by_name text,
  add column paged_priority text,
  add constraint incident_affected_is_array check (jsonb_typeof(affected) = 'array'),
  add constraint incident_not_folded_into_itself check (folded_into is distinct from id);
comment on column vigil.incidents.escalated_at is 'When a human was first paged (ladder level 3): the acknowledgement timer starts here.';
comment on column vigil.incidents.folded_into is
  'The incident of a service this one depends on, open when this one paged: its alerts went into that one.';
comment on column vigil.incidents.affected is 'Names of the dependent services folded into this incident.';
comment on column vigil.incidents.paged_priority is
  'The most urgent priority humans were paged at for this incident: it pages again only when it gets more urgent than that.';
comment on column vigil.incidents.acknowledged_by_name is 'Who acknowledged: the operator''s email, or the contact who followed the link.';

-- Who acknowledged, in words: an operator's email from their JWT (never what they typed), the name
-- the ack link passed, or the database user for plain SQL.
create function vigil.name_acknowledger() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.acknowledged_at is null then
    new.acknowledged_by_name := null;
  elsif new.acknowledged_at is distinct from old.acknowledged_at then
    if current_user = 'authenticated' then
      new.acknowledged_by_name := coalesce(nullif(auth.jwt() ->> 'email', ''), auth.uid()::text, 'an operator');
    elsif new.acknowledged_by_name is null or new.acknowledged_by_name is not distinct from old.acknowledged_by_name then
      new.acknowledged_by_name := coalesce(nullif(auth.jwt() ->> 'email', ''), session_user::text);
    end if;
  else
    new.acknowledged_by_name := old.acknowledged_by_name;
  end if;
  return new;
end
$$;

create trigger incidents_name_acknowledger before update of acknowledged_at on vigil.incidents
  for each row execute function vigil.name_acknowledger();

-- ─── Silences and maintenance windows ───────────────────────────────────────────────────────
create table vigil.silences (
  id bigint generated always as identity primary key,
  kind text not null default 'silence',
  service_id uuid references vigil.services (id) on delete cascade,
  environment vigil.environment,
  starts_at timestamptz not null default now(),
  ends_at timestamptz not null,
  reason text not null,
  created_by uuid,
  created_at timestamptz not null default now(),
  constraint silence_kind check (kind in ('silence', 'maintenance')),
  constraint silence_window check (ends_at > starts_at),
  constraint silence_reason check (length(btrim(reason)) between 1 and 500)
);
create index silences_active on vigil.silences (ends_at);
comment on table vigil.silences is
  'Silences and maintenance windows, by service, environment, or everything (both null): matching alerts are recorded as suppressed, not sent.';

/** The silence that holds back alerts of this service now, if any. */
create function vigil.active_silence(p_service_id uuid, p_environment vigil.environment, p_at timestamptz default now())
returns vigil.silences
language sql
stable
set search_path = ''
as $$
  select * from vigil.silences s
   where s.starts_at <= p_at and s.ends_at > p_at
     and (s.service_id is null or s.service_id = p_service_id)
     and (s.environment is null or s.environment = p_environment)
   order by s.ends_at desc
   limit 1
$$;

create function vigil.stamp_silence() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user = 'authenticated' then
    new.created_by := auth.uid();
  end if;
  return new;
end
$$;

create trigger silences_stamp before insert on vigil.silences
  for each row execute function vigil.stamp_silence();

-- ─── The outbox ─────────────────────────────────────────────────────────────────────────────
alter table vigil.alerts
  add column contact_id uuid references vigil.contacts (id) on delete set null,
  add column service_id uuid references vigil.services (id) on delete cascade,
  add column event text not null default 'page',
  add column priority text not null default 'P1',
  add column level integer,
  add column claimed_by text,
  add column claimed_until timestamptz,
  add column suppressed_reason text,
  add column fallback_of bigint references vigil.alerts (id) on delete set null,
  add column provider_id text,
  add column reason text,
  add column urgent_fallback_at timestamptz,
  add constraint alert_event check (event in ('page', 'reminder', 'acknowledged', 'resolved', 'flapping', 'stable', 'notice', 'test')),
  add constraint alert_priority check (priority in ('P0', 'P1', 'P2', 'P3', 'info')),
  add constraint alert_suppressed_has_reason check ((status = 'suppressed') = (suppressed_reason is not null)),
  add constraint alert_sending_is_claimed check (status <> 'sending' or claimed_until is not null);
alter table vigil.alerts alter column max_attempts set default 1000;
create index alerts_contact_time on vigil.alerts (contact_id, created_at desc);
create index alerts_sending on vigil.alerts (claimed_until) where status = 'sending';
comment on column vigil.alerts.reason is 'Why this alert now, in the ladder''s words: "not acknowledged within 15 min".';
comment on column vigil.alerts.status is
  'pending or failed (waiting for next_attempt_at), sending (claimed by a notify worker), sent, dead (given up), suppressed (recorded, never sent).';

-- One row per provider request per alert: alerts sent together as one message share request_id.
create table vigil.alert_attempts (
  id bigint generated always as identity primary key,
  alert_id bigint not null references vigil.alerts (id) on delete cascade,
  request_id uuid not null,
  channel vigil.alert_channel not null,
  contact_id uuid,
  attempt integer not null,
  started_at timestamptz not null,
  duration_ms integer not null,
  outcome text not null,
  status_code integer,
  error text,
  worker text not null,
  created_at timestamptz not null default now(),
  constraint alert_attempt_outcome check (outcome in ('delivered', 'retryable', 'permanent')),
  constraint alert_attempt_error check ((outcome = 'delivered') = (error is null)),
  constraint alert_attempt_duration check (duration_ms >= 0)
);
create index alert_attempts_alert on vigil.alert_attempts (alert_id);
comment on table vigil.alert_attempts is 'Every try to deliver an alert: channel, status code or error, duration.';

/**
 * When an alert for this contact may go out: at once, or, if one went out within the grouping
 * window, at the end of that window, together with whatever else is waiting for it by then.
 */
create function vigil.alert_hold_until(p_contact_id uuid, p_window_seconds integer)
returns timestamptz
language sql
stable
set search_path = ''
as $$
  select case
           when p_window_seconds = 0 then now()
           else greatest(now(), coalesce((
             -- Only a group waiting out a window: an alert held for quiet hours or a retry's backoff
             -- must not hold back a page behind it.
             select min(a.next_attempt_at) from vigil.alerts a
              where a.contact_id = p_contact_id and a.status in ('pending', 'failed') and a.next_attempt_at > now()
                and a.next_attempt_at <= now() + make_interval(secs => p_window_seconds)
                and a.created_at < now()), (
             select max(coalesce(a.sent_at, a.created_at)) + make_interval(secs => p_window_seconds)
               from vigil.alerts a
              where a.contact_id = p_contact_id and a.created_at < now()
                and a.status in ('sent', 'sending', 'pending', 'failed')
                and coalesce(a.sent_at, a.created_at) > now() - make_interval(secs => p_window_seconds)), now()))
         end
$$;

/**
 * Whether an incident is still folded into its root: the root open, its service still degraded or
 * down, and at least as urgent as this incident. The reason when it is; otherwise the fold is undone
 * (and logged) and null is returned.
 */
create function vigil.check_fold(p_incident vigil.incidents)
returns text
language plpgsql
set search_path = ''
as $$
declare
  root record;
  prio text;
begin
  if p_incident.id is null or p_incident.folded_into is null then
    return null;
  end if;
  select vigil.alert_priority(p_incident.severity, s.environment) into prio
    from vigil.services s where s.id = p_incident.service_id;
  select i.id, s.name, s.status into root
    from vigil.incidents i join vigil.services s on s.id = i.service_id
   where i.id = p_incident.folded_into and i.status = 'open' and s.status in ('degraded', 'down')
     and vigil.alert_priority(i.severity, s.environment) <= prio;
  if found then
    return format('folded into incident %s (%s is %s)', root.id, root.name, root.status);
  end if;
  update vigil.incidents set folded_into = null
   where id in (select i.id from vigil.incidents i where i.id = p_incident.id and i.folded_into is not null
                for update skip locked);
  if found then
    insert into vigil.incident_log (incident_id, level, message)
    values (p_incident.id, 'warning', format('no longer folded into incident %s: it is over, its service recovered, or it is less urgent than this one',
                                             p_incident.folded_into));
  end if;
  return null;
end
$$;

/**
 * Why an alert must not go out now, or null. Folding into a root incident is decided (and recorded)
 * here, the first time it applies. A P0 or P1 page is never held back for flapping: flapping
 * collapses noise, it does not hide an outage.
 */
create function vigil.alert_suppression(p_incident vigil.incidents, p_service vigil.services, p_event text,
                                        p_priority text)
returns text
language plpgsql
set search_path = ''
as $$
declare
  root record;
  folded text;
  silence vigil.silences;
begin
  -- The end of something people were told about always reaches them (PagerDuty resolves its event).
  if p_event in ('resolved', 'stable', 'test') then
    return null;
  end if;
  if p_incident.id is not null and p_event in ('page', 'reminder') then
    -- A page being sent when the incident resolved comes back here as a retry or a fallback.
    if p_incident.status = 'resolved' then
      return 'the incident was resolved before it was sent';
    end if;
    -- Someone has it: a late page (a retry, the next rung) or reminder would only be noise.
    if p_incident.acknowledged_at is not null then
      return 'the incident was acknowledged before it was sent';
    end if;
    folded := vigil.check_fold(p_incident);
    if folded is not null then
      return folded;
    end if;
    -- A root at least as urgent as this page, so its page says as much as this one would.
    select i.id, s.name, s.status into root
      from vigil.dependencies(p_service.id) d
      join vigil.services s on s.id = d.service_id
      join vigil.incidents i on i.service_id = s.id and i.status = 'open'
     where s.status in ('degraded', 'down')
       and vigil.alert_priority(i.severity, s.environment) <= p_priority
     order by d.depth desc, i.severity desc, i.opened_at
     limit 1;
    if found then
      -- Recorded once: claim_alerts asks for each due alert of the incident, with the row as it
      -- was before the first of them folded it.
      -- Locks already held elsewhere are skipped, never waited for: this runs inside claims, heals
      -- and the cycle's batch, which lock incidents in other orders. A skipped fold is decided again.
      update vigil.incidents set folded_into = root.id
       where id in (select i.id from vigil.incidents i where i.id = p_incident.id and i.folded_into is null
                    for update skip locked);
      if found then
        update vigil.incidents
           set affected = affected || to_jsonb(p_service.name)
         where id in (select i.id from vigil.incidents i where i.id = root.id and not i.affected ? p_service.name
                      for update skip locked);
        insert into vigil.incident_log (incident_id, level, message) values
          (p_incident.id, 'info', format('folded into incident %s: %s, which %s depends on, is %s', root.id, root.name, p_service.name, root.status)),
          (root.id, 'info', format('%s is affected too (incident %s)', p_service.name, p_incident.id));
      end if;
      return format('folded into incident %s (%s is %s)', root.id, root.name, root.status);
    end if;
  end if;
  if p_service.flapping_since is not null and p_event not in ('flapping', 'stable')
     and not (p_event in ('page', 'reminder') and p_priority in ('P0', 'P1')) then
    return format('%s is flapping since %s', p_service.name, to_char(p_service.flapping_since at time zone 'UTC', 'HH24:MI "UTC"'));
  end if;
  silence := vigil.active_silence(p_service.id, p_service.environment);
  if silence.id is not null then
    return format('%s %s until %s: %s', case silence.kind when 'maintenance' then 'maintenance window' else 'silence' end,
                  silence.id, to_char(silence.ends_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'), silence.reason);
  end if;
  return null;
end
$$;

/**
 * Queues one alert about an incident (or a service) for everyone in p_roles who should hear it,
 * routed by priority: each person gets it on every route channel they have, or else on the first
 * fallback channel they have; failing and disabled rows are skipped. Suppressed alerts are still
 * written, as a record. Returns how many alerts will be sent.
 */
create function vigil.queue_alert(
  p_incident_id bigint, p_service_id uuid, p_event text, p_priority text, p_roles vigil.contact_role[],
  p_subject text, p_body text, p_level integer default null, p_reason text default null
) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  inc vigil.incidents;
  svc vigil.services;
  st vigil.settings;
  route vigil.alert_routes;
  why text;
  queued integer;
begin
  if p_incident_id is not null then
    select * into inc from vigil.incidents where id = p_incident_id;
    p_service_id := coalesce(p_service_id, inc.service_id);
  end if;
  select * into svc from vigil.services where id = p_service_id;
  if not found then
    raise exception 'queue_alert: no service % for incident %', p_service_id, p_incident_id using errcode = 'foreign_key_violation';
  end if;
  select * into st from vigil.settings where environment = svc.environment;
  select * into route from vigil.alert_routes where environment = svc.environment and priority = p_priority;
  if not found then
    if p_incident_id is not null then
      insert into vigil.incident_log (incident_id, level, message)
      values (p_incident_id, 'error', format('no alert route for %s %s in vigil.alert_routes: nobody was told', svc.environment, p_priority));
    end if;
    raise warning 'vigil.queue_alert: no alert route for % %', svc.environment, p_priority;
    return 0;
  end if;
  why := vigil.alert_suppression(inc, svc, p_event, p_priority);

  with endpoints as (
    select c.*,
           array_position(route.channels, c.channel) as primary_rank,
           array_position(route.fallback, c.channel) as fallback_rank
      from vigil.contacts c
     where c.enabled and c.failing_since is null and c.role = any (p_roles)
       and (c.environment is null or c.environment = svc.environment)
  ), chosen as (
    select e.* from endpoints e where e.primary_rank is not null
    union all
    (select distinct on (e.name) e.* from endpoints e
      where e.primary_rank is null and e.fallback_rank is not null
        and not exists (select from endpoints p where p.name = e.name and p.primary_rank is not null)
      order by e.name, e.fallback_rank)
  ), ins as (
    insert into vigil.alerts (incident_id, service_id, contact_id, channel, recipient, severity, priority, event, level,
                              subject, body, reason, dedup_key, status, suppressed_reason, next_attempt_at)
    select p_incident_id, svc.id, c.id, c.channel, case when c.secret_name is null then c.address else c.secret_name end,
           coalesce(inc.severity, case when p_priority in ('P0', 'P1') then 'critical'::vigil.severity
                                       when p_priority = 'P2' then 'warning'::vigil.severity
                                       else 'info'::vigil.severity end),
           p_priority, p_event, p_level, p_subject, p_body, left(p_reason, 500),
           case when p_incident_id is not null then format('vigil-incident-%s', p_incident_id)
                -- A flapping alert and its stable notice are one event to PagerDuty: trigger, resolve.
                when p_event in ('flapping', 'stable') then format('vigil-service-%s-flapping', svc.id) end,
           case when why is null then 'pending'::vigil.alert_status else 'suppressed'::vigil.alert_status end,
           why,
           greatest(vigil.alert_hold_until(c.id, st.alert_group_seconds),
                    case when route.respect_quiet_hours then vigil.quiet_until(c.quiet_hours, now()) end)
      from chosen c
     order by c.name, c.channel
    returning status
  )
  select count(*) filter (where status = 'pending') into queued from ins;
  return queued;
end
$$;

/**
 * Pages the incident's people again, at its priority now, for `p_reason`: on-call and the team (the
 * senior too once the ladder reached them). The acknowledgement timer starts over.
 */
create function vigil.repage(p_incident_id bigint, p_reason text)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  inc vigil.incidents;
  svc vigil.services;
  prio text;
begin
  select * into inc from vigil.incidents where id = p_incident_id;
  select * into svc from vigil.services where id = inc.service_id;
  prio := vigil.alert_priority(inc.severity, svc.environment);
  update vigil.incidents
     set escalated_at = now(), paged_priority = least(coalesce(paged_priority, 'info'), prio)
   where id = inc.id;
  return vigil.queue_alert(inc.id, svc.id, 'page', prio,
    case when inc.escalation_level >= 4 then array['on_call', 'senior', 'team']::vigil.contact_role[]
         else array['on_call', 'team']::vigil.contact_role[] end,
    format('[%s][%s] %s', prio, upper(svc.environment::text), inc.title),
    format('%s. %s.', inc.title, p_reason), inc.escalation_level, p_reason);
end
$$;

/**
 * The ladder, as before (never down, never twice), now routed: level 3 pages on-call and the team,
 * level 4 the senior and the team, at the incident's priority.
 */
create or replace function vigil.escalate(p_incident_id bigint, p_level integer, p_summary text)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  inc vigil.incidents;
  svc vigil.services;
  queued integer := 0;
  wanted vigil.contact_role;
  prio text;
begin
  select * into inc from vigil.incidents where id = p_incident_id for update;
  -- Resolved meanwhile (the row re-read once its lock was ours): nothing left to climb.
  if not found or p_level <= inc.escalation_level or inc.status <> 'open' then
    return 0;
  end if;
  select * into svc from vigil.services where id = inc.service_id;
  update vigil.incidents
     set escalation_level = p_level,
         escalated_at = case when p_level >= 3 then coalesce(escalated_at, now()) else escalated_at end
   where id = inc.id;
  insert into vigil.incident_log (incident_id, level, message)
  values (inc.id, case when p_level = 1 then 'info' when p_level = 2 then 'warning' else 'error' end,
          format('escalation level %s: %s', p_level, p_summary));
  if p_level >= 3 then
    wanted := case when p_level = 3 then 'on_call'::vigil.contact_role else 'senior'::vigil.contact_role end;
    prio := vigil.alert_priority(inc.severity, svc.environment);
    queued := vigil.queue_alert(inc.id, svc.id, 'page', prio, array[wanted, 'team'::vigil.contact_role],
                                format('[%s][%s] %s', prio, upper(svc.environment::text), inc.title),
                                format('%s. %s', inc.title, p_summary), p_level, p_summary);
    update vigil.incidents set paged_priority = least(coalesce(paged_priority, 'info'), prio) where id = inc.id;
    if not exists (select from vigil.alerts a join vigil.contacts c on c.id = a.contact_id
                    where a.incident_id = inc.id and a.level = p_level and c.role = wanted) then
      insert into vigil.incident_log (incident_id, level, message)
      values (inc.id, 'error', format('no enabled %s contact for %s: nobody was paged', wanted, svc.environment));
    end if;
  end if;
  return queued;
end
$$;

/**
 * Tells on-call and the team something they should know but need not act on (a rollback that
 * worked, a renewed certificate): a P2 notice, logged, starting no acknowledgement timer.
 */
create function vigil.tell(p_incident_id bigint, p_summary text)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  inc vigil.incidents;
  svc vigil.services;
begin
  select * into inc from vigil.incidents where id = p_incident_id;
  if not found then
    return 0;
  end if;
  select * into svc from vigil.services where id = inc.service_id;
  insert into vigil.incident_log (incident_id, level, message) values (inc.id, 'info', p_summary);
  return vigil.queue_alert(inc.id, svc.id, 'notice', 'P2', array['on_call', 'team']::vigil.contact_role[],
                           format('[P2][%s] %s', upper(svc.environment::text), inc.title),
                           format('%s. %s', inc.title, p_summary), null, p_summary);
end
$$;

-- ─── Lifecycle notices: acknowledged, resolved ──────────────────────────────────────────────
/**
 * A notice to every contact that was sent something about the incident (PagerDuty included, which
 * gets acknowledge or resolve for its event); `only_channels` narrows it. Silences and routes do
 * not apply: whoever was told of a problem is told it is over.
 */
create function vigil.queue_followup(p_incident vigil.incidents, p_event text, p_subject text, p_body text,
                                     p_only_channels vigil.alert_channel[] default null)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  svc vigil.services;
  st vigil.settings;
  queued integer;
begin
  select * into svc from vigil.services where id = p_incident.service_id;
  select * into st from vigil.settings where environment = svc.environment;
  insert into vigil.alerts (incident_id, service_id, contact_id, channel, recipient, severity, priority, event,
                            subject, body, dedup_key, next_attempt_at)
  select p_incident.id, svc.id, c.id, c.channel, case when c.secret_name is null then c.address else c.secret_name end,
         p_incident.severity, 'info', p_event, p_subject, p_body, format('vigil-incident-%s', p_incident.id),
         vigil.alert_hold_until(c.id, st.alert_group_seconds)
    from vigil.contacts c
   where c.enabled and c.failing_since is null
     and (p_only_channels is null or c.channel = any (p_only_channels))
     and exists (select from vigil.alerts a
                  where a.incident_id = p_incident.id and a.contact_id = c.id and a.status in ('sent', 'sending')
                    and a.event in ('page', 'reminder', 'flapping', 'notice'));
  get diagnostics queued = row_count;
  return queued;
end
$$;

create function vigil.alert_on_incident_change() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  svc vigil.services;
  dep vigil.incidents;
  minutes integer;
begin
  select * into svc from vigil.services where id = new.service_id;
  if new.status = 'resolved' and old.status = 'open' then
    -- A page that never went out is no longer news.
    -- Rows a notify worker holds are skipped, never waited for (the cycle must not deadlock with a
    -- claim): the claim's own check drops them when it next sees them.
    update vigil.alerts
       set status = 'suppressed', suppressed_reason = 'the incident was resolved before it was sent',
           claimed_by = null, claimed_until = null
     where id in (select a.id from vigil.alerts a
                   where a.incident_id = new.id and a.status in ('pending', 'failed') and a.event in ('page', 'reminder')
                   for update skip locked);
    minutes := greatest(1, round(extract(epoch from (new.resolved_at - new.opened_at)) / 60));
    perform vigil.queue_followup(new, 'resolved',
      format('[RESOLVED][%s] %s', upper(svc.environment::text), new.title),
      format('Resolved after %s min: %s', minutes, new.title));
    -- Dependents still in trouble now page on their own.
    for dep in select i.* from vigil.incidents i where i.folded_into = new.id and i.status = 'open' loop
      if vigil.check_fold(dep) is null and dep.escalation_level >= 3 then
        perform vigil.repage(dep.id, format('still open after %s, which it depends on, recovered', svc.name));
      end if;
    end loop;
  elsif new.status = 'open' and new.severity > old.severity and new.escalation_level >= 3
        and vigil.alert_priority(new.severity, svc.environment) < coalesce(new.paged_priority, 'info') then
    -- More urgent than anything humans were paged at for it. Folded into a root at least as urgent,
    -- the root's page covers it; acknowledged at a lower priority, a P0 or P1 takes it back.
    if vigil.check_fold(new) is null then
      if new.acknowledged_at is not null and vigil.alert_priority(new.severity, svc.environment) in ('P0', 'P1') then
        update vigil.incidents set acknowledged_at = null where id = new.id;
        insert into vigil.incident_log (incident_id, level, message)
        values (new.id, 'warning', format('acknowledged at %s by %s, now %s: paging again', new.paged_priority,
                                          new.acknowledged_by_name, vigil.alert_priority(new.severity, svc.environment)));
        perform vigil.repage(new.id, format('it got worse after it was acknowledged: now %s, was %s', new.severity, old.severity));
      elsif new.acknowledged_at is null then
        perform vigil.repage(new.id, format('it got worse since the last page: now %s, was %s', new.severity, old.severity));
      end if;
    end if;
  elsif new.acknowledged_at is not null and old.acknowledged_at is null and new.status = 'open' then
    insert into vigil.incident_log (incident_id, level, message)
    values (new.id, 'info', format('acknowledged by %s', new.acknowledged_by_name));
    perform vigil.queue_followup(new, 'acknowledged',
      format('[ACK][%s] %s', upper(svc.environment::text), new.title),
      format('%s: acknowledged by %s', new.title, new.acknowledged_by_name),
      array['pagerduty', 'slack', 'discord', 'webhook']::vigil.alert_channel[]);
  end if;
  return null;
end
$$;

create trigger incidents_alert_lifecycle after update of status, acknowledged_at, severity on vigil.incidents
  for each row execute function vigil.alert_on_incident_change();

/** Acknowledges an open incident in someone's name (the ack link); false when it was not open or already taken. */
create function vigil.acknowledge_incident(p_incident_id bigint, p_by text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  inc vigil.incidents;
begin
  if p_by is null or length(btrim(p_by)) = 0 then
    raise exception 'acknowledge_incident: who acknowledges must be named' using errcode = 'invalid_parameter_value';
  end if;
  update vigil.incidents
     set acknowledged_at = now(), acknowledged_by_name = left(p_by, 200)
   where id = p_incident_id and status = 'open' and acknowledged_at is null
  returning * into inc;
  if found then
    return jsonb_build_object('acknowledged', true, 'by', inc.acknowledged_by_name, 'at', inc.acknowledged_at);
  end if;
  select * into inc from vigil.incidents where id = p_incident_id;
  return jsonb_build_object('acknowledged', false, 'status', inc.status, 'by', inc.acknowledged_by_name,
                            'at', inc.acknowledged_at, 'resolved_at', inc.resolved_at, 'exists', inc.id is not null);
end
$$;

-- ─── Flapping ───────────────────────────────────────────────────────────────────────────────
create function vigil.detect_flapping() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  svc vigil.services;
  st vigil.settings;
  changes integer;
  prio text;
begin
  select * into svc from vigil.services where id = new.service_id for update;
  if svc.flapping_since is not null then
    return null;
  end if;
  select * into st from vigil.settings where environment = svc.environment;
  select count(*) into changes from vigil.status_transitions
   where service_id = svc.id and created_at > now() - make_interval(mins => st.flap_window_minutes);
  if changes > st.flap_threshold then
    update vigil.services set flapping_since = now() where id = svc.id;
    -- As urgent as the worst it was within the window (the transition that crossed the threshold
    -- may come before its incident opens, or after one closed): a flapping prod database is a P0.
    select least(
             (select min(case t.to_status when 'down' then vigil.alert_priority('critical', svc.environment)
                                          when 'degraded' then 'P2' else 'P3' end)
                from vigil.status_transitions t
               where t.service_id = svc.id and t.created_at > now() - make_interval(mins => st.flap_window_minutes)),
             (select min(vigil.alert_priority(i.severity, svc.environment))
                from vigil.incidents i where i.service_id = svc.id and i.status = 'open'),
             'P2')
      into prio;
    perform vigil.queue_alert(null, svc.id, 'flapping', prio, array['on_call', 'team']::vigil.contact_role[],
      format('[%s][%s] %s is flapping', prio, upper(svc.environment::text), svc.name),
      format('%s changed status %s times in %s min (now %s). Its alerts, but P0 and P1 pages, are held back until it is stable for %s min.',
             svc.name, changes, st.flap_window_minutes, new.to_status, st.flap_window_minutes), null,
      format('%s status changes in %s min', changes, st.flap_window_minutes));
  end if;
  return null;
end
$$;

create trigger status_transitions_flapping after insert on vigil.status_transitions
  for each row execute function vigil.detect_flapping();

-- ─── Claiming and recording (the notify function's side) ────────────────────────────────────
/**
 * Claims up to p_limit due alerts for one worker, for a lease. Alerts that a silence now covers
 * are recorded as suppressed first. Returns one jsonb per alert with what a message needs: the
 * contact, the incident, the service and what the agent already tried.
 */
create function vigil.claim_alerts(p_worker text, p_limit integer default 100, p_lease interval default interval '2 minutes')
returns setof jsonb
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_worker is null or length(p_worker) = 0 or p_limit not between 1 and 10000 then
    raise exception 'claim_alerts: a worker name and a limit of 1 to 10000 are required' using errcode = 'invalid_parameter_value';
  end if;
  -- Leases that ran out: the worker died mid-send. At least once: they go again.
  -- One that used its last attempt is dead: claiming it again would break attempts <= max_attempts.
  -- The lost try is an attempt too: its row says what is known (it may or may not have arrived).
  with lapsed as (
    select id, claimed_by from vigil.alerts where status = 'sending' and claimed_until < now() for update skip locked
  ), expired as (
    update vigil.alerts a
       set status = case when a.attempts < a.max_attempts then 'failed'::vigil.alert_status else 'dead'::vigil.alert_status end,
           claimed_by = null, claimed_until = null,
           last_error = 'a notify worker stopped before recording the outcome (its lease ran out)'
      from lapsed l where a.id = l.id
    returning a.id, a.channel, a.contact_id, a.attempts, l.claimed_by as worker
  )
  insert into vigil.alert_attempts (alert_id, request_id, channel, contact_id, attempt, started_at, duration_ms,
                                    outcome, error, worker)
  select e.id, gen_random_uuid(), e.channel, e.contact_id, e.attempts, now(), 0, 'retryable',
         'a notify worker stopped before recording the outcome (its lease ran out); it may have arrived',
         coalesce(e.worker, p_worker)
    from expired e;

  update vigil.alerts a
     set status = 'suppressed', suppressed_reason = s.why
    from (select a2.id, vigil.alert_suppression(i, v, a2.event, a2.priority) as why
            from vigil.alerts a2
            join vigil.services v on v.id = a2.service_id
            left join vigil.incidents i on i.id = a2.incident_id
           where a2.status in ('pending', 'failed') and a2.next_attempt_at <= now()
             and a2.event not in ('resolved', 'stable', 'test', 'acknowledged')
           for update of a2 skip locked) s
   where a.id = s.id and s.why is not null;

  return query
  with due as (
    select a.id from vigil.alerts a
     where a.status in ('pending', 'failed') and a.next_attempt_at <= now()
     -- A fresh P0 page goes before a backlog of P3 mail.
     order by case a.priority when 'P0' then 0 when 'P1' then 1 when 'P2' then 2 when 'P3' then 3 else 4 end,
              a.next_attempt_at, a.id
     limit p_limit
     for update skip locked
  ), claimed as (
    update vigil.alerts a
       set status = 'sending', claimed_by = p_worker, claimed_until = now() + p_lease, attempts = a.attempts + 1
      from due where a.id = due.id
    returning a.*
  )
  select jsonb_build_object(
           'id', c.id, 'incident_id', c.incident_id, 'event', c.event, 'priority', c.priority,
           'severity', c.severity, 'subject', c.subject, 'body', c.body, 'dedup_key', c.dedup_key,
           'attempt', c.attempts, 'created_at', c.created_at, 'channel', c.channel,
           'reason', c.reason,
           'contact', jsonb_build_object('id', k.id, 'name', k.name, 'role', k.role, 'channel', k.channel,
                                         'address', k.address, 'secret_name', k.secret_name),
           'service', v.name, 'environment', v.environment,
           'incident', case when i.id is null then null else jsonb_build_object(
              'title', i.title, 'opened_at', i.opened_at, 'resolved_at', i.resolved_at, 'status', i.status,
              'error', i.detail ->> 'error', 'affected', i.affected, 'acknowledged_by', i.acknowledged_by_name) end,
           'tried', coalesce((
              select jsonb_agg(jsonb_build_object('strategy', h.strategy, 'attempt', h.attempt, 'outcome', h.outcome,
                                                  'detail', left(h.detail, 300)) order by h.seq)
                from (select * from vigil.heal_actions h
                       where h.incident_id = c.incident_id and h.phase = 'result'
                       order by h.seq desc limit 5) h), '[]'::jsonb),
           'pending_approval', (select jsonb_build_object('action_id', ap.action_id, 'strategy', ap.strategy,
                                                          'action', ap.plan ->> 'action', 'expires_at', ap.expires_at)
                                  from vigil.heal_approvals ap
                                 where ap.incident_id = c.incident_id and ap.decision is null and ap.expires_at > now()
                                 order by ap.requested_at desc limit 1),
           'ack_link_hours', st.ack_link_hours)
    from claimed c
    left join vigil.contacts k on k.id = c.contact_id
    left join vigil.services v on v.id = c.service_id
    left join vigil.incidents i on i.id = c.incident_id
    left join vigil.settings st on st.environment = v.environment
   order by case c.priority when 'P0' then 0 when 'P1' then 1 when 'P2' then 2 when 'P3' then 3 else 4 end,
            c.contact_id, c.id;
end
$$;

/**
 * Sends an alert to the person's next channel after `p_failed` could not be reached: the route's
 * channels and then its fallback, skipping channels already tried for this alert. Logs when
 * nobody is left.
 */
create function vigil.alert_fallback(p_failed vigil.alerts, p_reason text)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  person text;
  svc vigil.services;
  route vigil.alert_routes;
  next_contact vigil.contacts;
  tried vigil.alert_channel[];
  new_id bigint;
  root bigint := p_failed.id;
  root_created timestamptz;
begin
  select name into person from vigil.contacts where id = p_failed.contact_id;
  select * into svc from vigil.services where id = p_failed.service_id;
  select * into route from vigil.alert_routes where environment = svc.environment and priority = p_failed.priority;
  -- The chain of alerts this one falls back from, and the channels they used.
  with recursive chain(id, fallback_of, channel, created_at) as (
    select p_failed.id, p_failed.fallback_of, p_failed.channel, p_failed.created_at
    union all
    select a.id, a.fallback_of, a.channel, a.created_at from vigil.alerts a join chain on a.id = chain.fallback_of
  )
  select array_agg(channel), (array_agg(id order by id))[1], min(created_at) into tried, root, root_created from chain;
  -- ...and the channels the person got the same alert on beside this chain (a P0 page goes by sms
  -- and PagerDuty at once): falling back to one of those would send it there twice.
  select tried || coalesce(array_agg(a.channel), '{}') into tried
    from vigil.alerts a join vigil.contacts k on k.id = a.contact_id
   where k.name = person and a.event = p_failed.event and a.service_id = p_failed.service_id
     and a.incident_id is not distinct from p_failed.incident_id and a.subject = p_failed.subject
     and a.created_at >= root_created;

  select c.* into next_contact
    from vigil.contacts c
   where person is not null and c.name = person and c.enabled and c.failing_since is null
     and not c.channel = any (tried)
     and (c.environment is null or c.environment = svc.environment)
     and coalesce(array_position(route.channels || route.fallback, c.channel),
                  case when p_failed.event in ('resolved', 'acknowledged', 'test') then 99 end) is not null
   order by coalesce(array_position(route.channels || route.fallback, c.channel), 99), c.created_at
   limit 1;
  if not found then
    if p_failed.incident_id is not null then
      insert into vigil.incident_log (incident_id, level, message)
      values (p_failed.incident_id, 'error', format('alert %s could not reach %s on %s (%s) and no other channel is left',
                                                    root, coalesce(person, 'a deleted contact'), p_failed.channel, p_reason));
    end if;
    return null;
  end if;
  insert into vigil.alerts (incident_id, service_id, contact_id, channel, recipient, severity, priority, event, level,
                            subject, body, reason, dedup_key, fallback_of)
  values (p_failed.incident_id, p_failed.service_id, next_contact.id, next_contact.channel,
          case when next_contact.secret_name is null then next_contact.address else next_contact.secret_name end,
          p_failed.severity, p_failed.priority, p_failed.event, p_failed.level, p_failed.subject, p_failed.body,
          p_failed.reason, p_failed.dedup_key, p_failed.id)
  returning id into new_id;
  if p_failed.incident_id is not null then
    insert into vigil.incident_log (incident_id, level, message)
    values (p_failed.incident_id, 'warning', format('alert %s to %s could not go by %s (%s); trying %s',
                                                    p_failed.id, person, p_failed.channel, p_reason, next_contact.channel));
  end if;
  return new_id;
end
$$;

/**
 * Records one provider request that carried the alerts `p_alert_ids` (a jsonb array), for the worker
 * that claimed them: an attempt row each, then sent; or retried later with exponential backoff and
 * equal jitter (never sooner than the provider's Retry-After); or, for a permanent error or after
 * alert_give_up_hours, given up: the contact's channel is marked failing (permanent only) and the
 * person's next channel is tried.
 */
create function vigil.record_alert_attempt(p_worker text, p_alert_ids jsonb, p_result jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  outcome text := p_result ->> 'outcome';
  scope text := coalesce(p_result ->> 'scope', 'alert');
  err text := left(p_result ->> 'error', 1000);
  a vigil.alerts;
  st vigil.settings;
  delay_s double precision;
  updated integer := 0;
  fallbacks integer := 0;
  request uuid := coalesce((p_result ->> 'request_id')::uuid, gen_random_uuid());
begin
  if outcome is null or outcome not in ('delivered', 'retryable', 'permanent') then
    raise exception 'record_alert_attempt: outcome must be delivered, retryable or permanent' using errcode = 'invalid_parameter_value';
  end if;
  if outcome <> 'delivered' and coalesce(err, '') = '' then
    err := 'failed without a reason';
  end if;
  if scope not in ('contact', 'provider', 'alert') then
    raise exception 'record_alert_attempt: scope must be contact, provider or alert' using errcode = 'invalid_parameter_value';
  end if;
  for a in select al.* from vigil.alerts al
            where al.id in (select (x #>> '{}')::bigint from jsonb_array_elements(p_alert_ids) x)
              and al.status = 'sending' and al.claimed_by = p_worker
            for update loop
    updated := updated + 1;
    insert into vigil.alert_attempts (alert_id, request_id, channel, contact_id, attempt, started_at, duration_ms,
                                      outcome, status_code, error, worker)
    values (a.id, request, a.channel, a.contact_id, a.attempts,
            coalesce((p_result ->> 'started_at')::timestamptz, now()),
            greatest(0, coalesce((p_result ->> 'duration_ms')::integer, 0)),
            outcome, (p_result ->> 'status_code')::integer, case when outcome = 'delivered' then null else err end,
            p_worker);
    if outcome = 'delivered' then
      update vigil.alerts
         set status = 'sent', sent_at = now(), claimed_by = null, claimed_until = null, last_error = null,
             provider_id = left(p_result ->> 'provider_id', 200)
       where id = a.id;
      continue;
    end if;
    select s.* into st from vigil.settings s join vigil.services v on v.environment = s.environment where v.id = a.service_id;
    if outcome = 'retryable' and a.created_at > now() - make_interval(hours => coalesce(st.alert_give_up_hours, 24))
       and a.attempts < a.max_attempts then
      delay_s := least(coalesce(st.alert_retry_max_seconds, 600),
                       coalesce(st.alert_retry_base_seconds, 5) * power(2, least(a.attempts - 1, 20)));
      delay_s := delay_s / 2 + random() * delay_s / 2;
      delay_s := greatest(delay_s, least(coalesce((p_result ->> 'retry_after_ms')::double precision / 1000, 0), 3600));
      update vigil.alerts
         set status = 'failed', claimed_by = null, claimed_until = null, last_error = err,
             next_attempt_at = now() + make_interval(secs => delay_s)
       where id = a.id;
      continue;
    end if;
    update vigil.alerts
       set status = 'dead', claimed_by = null, claimed_until = null,
           last_error = case when outcome = 'permanent' then err
                             else format('gave up after %s attempts: %s', a.attempts, err) end
     where id = a.id;
    -- Only the contact's own fault takes it out of routing; the project's setup or this message's
    -- content says nothing about the contact.
    if outcome = 'permanent' and scope = 'contact' then
      update vigil.contacts set failing_since = now(), failing_reason = err
       where id = a.contact_id and failing_since is null;
    elsif outcome = 'permanent' and scope = 'provider' and a.incident_id is not null then
      insert into vigil.incident_log (incident_id, level, message)
      values (a.incident_id, 'error', format('%s is refused for the whole project, not for one contact: %s (check the VIGIL_ secrets of the channel)',
                                             a.channel, err));
    end if;
    if vigil.alert_fallback(a, err) is not null then
      fallbacks := fallbacks + 1;
    end if;
  end loop;
  return jsonb_build_object('recorded', updated, 'fallbacks', fallbacks);
end
$$;

/**
 * Hands back alerts a worker claimed and did not send (its time ran out): due again at once, the
 * claim's attempt not counted.
 */
create function vigil.release_alerts(p_worker text, p_alert_ids jsonb)
returns integer
language sql
security definer
set search_path = ''
as $$
  with released as (
    update vigil.alerts
       set status = case when attempts > 1 then 'failed'::vigil.alert_status else 'pending'::vigil.alert_status end,
           attempts = greatest(attempts - 1, 0), claimed_by = null, claimed_until = null
     where id in (select (x #>> '{}')::bigint from jsonb_array_elements(p_alert_ids) x)
       and status = 'sending' and claimed_by = p_worker
    returning 1
  )
  select count(*)::integer from released
$$;

-- ─── Waking notify ──────────────────────────────────────────────────────────────────────────
-- Once per statement, when it queued something due now: a burst of alerts is one call.
create function vigil.wake_notify() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if exists (select from new_alerts where status = 'pending' and next_attempt_at <= now()) then
    perform vigil.invoke('notify', jsonb_build_object('trigger', 'alert'));
  end if;
  return null;
end
$$;

create trigger alerts_wake_notify after insert on vigil.alerts
  referencing new table as new_alerts
  for each statement execute function vigil.wake_notify();

/**
 * Every minute: reminders for unacknowledged P0/P1 incidents, the senior paged when nobody
 * acknowledged in time, flapping services that settled, and notify woken for anything due (retries,
 * grouped alerts, the end of quiet hours).
 */
create function vigil.sweep_alerts()
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  r record;
  reminders integer := 0;
  escalated integer := 0;
  settled integer := 0;
  urgent integer := 0;
  due integer;
begin
  -- One sweep at a time (the job and a manual call): two would both see a reminder as due.
  perform pg_advisory_xact_lock(hashtext('vigil.sweep_alerts'));
  -- A fold that no longer holds (the root resolved, recovered or eased) pages on its own.
  for r in select i.* from vigil.incidents i where i.status = 'open' and i.folded_into is not null loop
    if vigil.check_fold((select x from vigil.incidents x where x.id = r.id)) is null and r.escalation_level >= 3 then
      perform vigil.repage(r.id, 'no longer covered by the incident it was folded into');
    end if;
  end loop;
  for r in
    select i.id, i.title, i.escalation_level, i.severity, s.id as service_id, s.environment, st.alert_reminder_minutes,
           st.alert_ack_escalate_minutes, i.escalated_at
      from vigil.incidents i
      join vigil.services s on s.id = i.service_id
      join vigil.settings st on st.environment = s.environment
     where i.status = 'open' and i.acknowledged_at is null and i.escalation_level >= 3 and i.severity = 'critical'
       and i.folded_into is null
  loop
    if r.escalation_level = 3 and r.escalated_at < now() - make_interval(mins => r.alert_ack_escalate_minutes) then
      escalated := escalated + 1;
      perform vigil.escalate(r.id, 4, format('not acknowledged within %s min', r.alert_ack_escalate_minutes));
    elsif not exists (select from vigil.alerts a
                       where a.incident_id = r.id and a.event in ('page', 'reminder')
                         and a.created_at > now() - make_interval(mins => r.alert_reminder_minutes)) then
      reminders := reminders + 1;
      perform vigil.queue_alert(r.id, r.service_id, 'reminder', vigil.alert_priority(r.severity, r.environment),
        case when r.escalation_level >= 4 then array['on_call', 'senior']::vigil.contact_role[]
             else array['on_call']::vigil.contact_role[] end,
        format('[%s][%s] still open: %s', vigil.alert_priority(r.severity, r.environment), upper(r.environment::text), r.title),
        format('%s. Still open and not acknowledged.', r.title), r.escalation_level);
    end if;
  end loop;

  for r in
    select s.*, st.flap_window_minutes
      from vigil.services s join vigil.settings st on st.environment = s.environment
     where s.flapping_since is not null
       and not exists (select from vigil.status_transitions t
                        where t.service_id = s.id and t.created_at > now() - make_interval(mins => st.flap_window_minutes))
  loop
    settled := settled + 1;
    update vigil.services set flapping_since = null where id = r.id;
    -- A flapping alert not out yet (its provider failing) would open what nothing closes.
    update vigil.alerts set status = 'suppressed', suppressed_reason = 'the service settled before it was sent'
     where service_id = r.id and event = 'flapping' and status in ('pending', 'failed');
    perform vigil.queue_alert(null, r.id, 'stable', 'info', array['on_call', 'team']::vigil.contact_role[],
      format('[%s] %s is stable again', upper(r.environment::text), r.name),
      format('%s has not changed status for %s min; it is %s.', r.name, r.flap_window_minutes, r.status));
    -- Whoever was told it flaps is told it stopped, whatever the route for notices (PagerDuty resolves).
    insert into vigil.alerts (service_id, contact_id, channel, recipient, severity, priority, event, subject, body, dedup_key)
    select r.id, c.id, c.channel, coalesce(c.secret_name, c.address), 'info', 'info', 'stable',
           format('[%s] %s is stable again', upper(r.environment::text), r.name),
           format('%s has not changed status for %s min; it is %s.', r.name, r.flap_window_minutes, r.status),
           format('vigil-service-%s-flapping', r.id)
      from vigil.contacts c
     where c.enabled and c.failing_since is null
       and exists (select from vigil.alerts f where f.service_id = r.id and f.contact_id = c.id and f.event = 'flapping'
                     and f.status in ('sent', 'sending') and f.created_at >= r.flapping_since)
       and not exists (select from vigil.alerts b where b.service_id = r.id and b.contact_id = c.id and b.event = 'stable'
                         and b.created_at = now());
  end loop;

  -- A P0/P1 page that keeps failing does not wait a day for the next channel: after a few minutes
  -- the person's next channel is tried as well, once, and this one keeps being retried.
  for r in
    select a.* from vigil.alerts a
      join vigil.services s on s.id = a.service_id
      join vigil.settings st on st.environment = s.environment
     where a.status = 'failed' and a.event in ('page', 'reminder') and a.priority in ('P0', 'P1')
       and a.urgent_fallback_at is null
       and a.created_at < now() - make_interval(mins => st.alert_urgent_fallback_minutes)
     for update of a skip locked
  loop
    update vigil.alerts set urgent_fallback_at = now() where id = r.id;
    perform vigil.alert_fallback((select x from vigil.alerts x where x.id = r.id),
      format('still failing after %s min, still retried: %s', round(extract(epoch from now() - r.created_at) / 60), r.last_error));
    urgent := urgent + 1;
  end loop;

  select count(*) into due from vigil.alerts where status in ('pending', 'failed') and next_attempt_at <= now();
  if due > 0 or exists (select from vigil.alerts where status = 'sending' and claimed_until < now()) then
    perform vigil.invoke('notify', jsonb_build_object('trigger', 'cron'));
  end if;
  return jsonb_build_object('reminders', reminders, 'escalated', escalated, 'settled', settled,
                            'urgent_fallbacks', urgent, 'due', due);
end
$$;

/** '30 seconds' where pg_cron can (1.5+, as on Supabase), else every minute (Debian's 1.4). */
create function vigil.every_30_seconds()
returns text
language sql
stable
set search_path = ''
as $$
  select case when array[(regexp_match(extversion, '^(\d+)\.(\d+)'))[1]::integer,
                         (regexp_match(extversion, '^(\d+)\.(\d+)'))[2]::integer] >= array[1, 5]
              then '30 seconds' else '* * * * *' end
    from pg_catalog.pg_extension where extname = 'pg_cron'
$$;

select cron.schedule('vigil-notify-sweep', vigil.every_30_seconds(), 'select vigil.sweep_alerts()');

/**
 * Forgets finished alerts (sent, dead, suppressed) and their attempts after `keep` (90 days): the
 * incident timeline keeps what happened. Ended silences go after the same time.
 */
create function vigil.purge_alerts(p_keep interval default interval '90 days')
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  alerts integer;
  silences integer;
begin
  if p_keep < interval '1 day' then
    raise exception 'purge_alerts: keep at least a day, got %', p_keep using errcode = 'invalid_parameter_value';
  end if;
  -- Fallbacks point at the alert they replace; the reference is cleared, not the newer alert.
  delete from vigil.alerts
   where status in ('sent', 'dead', 'suppressed') and created_at < now() - p_keep;
  get diagnostics alerts = row_count;
  delete from vigil.silences where ends_at < now() - p_keep;
  get diagnostics silences = row_count;
  return jsonb_build_object('alerts', alerts, 'silences', silences);
end
$$;

select cron.schedule('vigil-alert-retention', '27 3 * * *', 'select vigil.purge_alerts()');

-- ─── Access ─────────────────────────────────────────────────────────────────────────────────
grant select, insert, update, delete on vigil.alert_routes, vigil.silences, vigil.alert_attempts to service_role;
grant select on vigil.alert_routes, vigil.silences, vigil.alert_attempts to authenticated;
grant insert (kind, service_id, environment, starts_at, ends_at, reason), update (ends_at), delete
  on vigil.silences to authenticated;
grant usage on all sequences in schema vigil to service_role;
grant usage on sequence vigil.silences_id_seq to authenticated;

alter table vigil.alert_routes enable row level security;
alter table vigil.silences enable row level security;
alter table vigil.alert_attempts enable row level security;

create policy "Operators can read alert routes" on vigil.alert_routes
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can read silences" on vigil.silences
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can add silences" on vigil.silences
  for insert to authenticated with check ((select vigil.is_operator()));
create policy "Operators can end silences" on vigil.silences
  for update to authenticated using ((select vigil.is_operator())) with check ((select vigil.is_operator()));
create policy "Operators can remove silences" on vigil.silences
  for delete to authenticated using ((select vigil.is_operator()));
create policy "Operators can read alert attempts" on vigil.alert_attempts
  for select to authenticated using ((select vigil.is_operator()));

revoke execute on all functions in schema vigil from public;
grant execute on function vigil.claim_alerts(text, integer, interval) to service_role;
grant execute on function vigil.record_alert_attempt(text, jsonb, jsonb) to service_role;
grant execute on function vigil.release_alerts(text, jsonb) to service_role;
grant execute on function vigil.tell(bigint, text) to service_role;
grant execute on function vigil.repage(bigint, text) to service_role;
grant execute on function vigil.queue_alert(bigint, uuid, text, text, vigil.contact_role[], text, text, integer, text) to service_role;
grant execute on function vigil.acknowledge_incident(bigint, text) to service_role;
grant execute on function vigil.sweep_alerts() to service_role;
grant execute on function vigil.purge_alerts(interval) to service_role;
-- Helpers are the service role's: operators read tables, they do not run the machinery.
grant execute on function vigil.alert_priority(vigil.severity, vigil.environment) to service_role;
grant execute on function vigil.dependencies(uuid) to service_role;
grant execute on function vigil.contact_errors(vigil.alert_channel, text, text, jsonb, text) to service_role;
-- Called by dependencies() and the contact and depends_on triggers, which run with the caller's rights.
grant execute on function vigil.direct_dependencies(vigil.services) to service_role;
-- quiet_until, active_silence and alert_hold_until serve the definer functions above only.

select vigil.publish_for_realtime(array['silences', 'alert_attempts']);
