-- Vigil's schema: what is watched, what was seen, what went wrong, what was done about it,
-- who was told, and the knobs (thresholds, kill switch, dry run) per environment.
-- Invariants live here as types, constraints and triggers; the edge functions only parse
-- input, call SQL and map results.

create schema if not exists vigil;
comment on schema vigil is 'Vigil: self-healing SRE agent. Health tables, heal audit, alert outbox, settings.';

-- Nothing in vigil is callable or readable unless granted in the security migration. New functions
-- get EXECUTE for PUBLIC by default, so every migration revokes it on what it creates.
revoke all on schema vigil from public;

create extension if not exists pg_stat_statements with schema extensions;
create extension if not exists hypopg with schema extensions;
create extension if not exists pg_cron;

-- One list of kinds each, mirrored in shared/kinds.ts; tests/schema_kinds_test.ts proves they agree.
create type vigil.environment as enum ('dev', 'qa', 'prod');
create type vigil.service_kind as enum (
  'postgres', 'http', 'supabase_auth', 'supabase_storage', 'supabase_realtime',
  'supabase_functions', 'supabase_management', 'prometheus', 'heartbeat'
);
create type vigil.check_status as enum ('healthy', 'degraded', 'down');
create type vigil.service_status as enum ('unknown', 'healthy', 'degraded', 'down');
create type vigil.severity as enum ('info', 'warning', 'critical');
create type vigil.incident_status as enum ('open', 'resolved');
create type vigil.heal_phase as enum ('intent', 'result');
create type vigil.heal_outcome as enum (
  'pending', 'succeeded', 'failed', 'undone', 'skipped', 'dry_run', 'awaiting_approval'
);
create type vigil.alert_channel as enum ('sms', 'email', 'slack', 'discord', 'pagerduty');
create type vigil.alert_status as enum ('pending', 'sending', 'sent', 'failed', 'dead', 'suppressed');

create function vigil.touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;

-- Settings: one row per environment. Column defaults are the spec's thresholds; an environment
-- overrides one by updating its row. Every warning threshold sits below its critical one.
create table vigil.settings (
  environment vigil.environment primary key,
  kill_switch boolean not null default false,
  dry_run boolean not null default false,
  api_p95_warning_ms integer not null default 200,
  api_p95_critical_ms integer not null default 500,
  db_query_warning_ms integer not null default 100,
  db_query_critical_ms integer not null default 500,
  error_rate_warning_pct numeric(6, 3) not null default 0.1,
  error_rate_critical_pct numeric(6, 3) not null default 1,
  memory_warning_pct numeric(5, 2) not null default 60,
  memory_critical_pct numeric(5, 2) not null default 85,
  cpu_warning_pct numeric(5, 2) not null default 70,
  cpu_critical_pct numeric(5, 2) not null default 90,
  deploy_warning_minutes integer not null default 5,
  deploy_critical_minutes integer not null default 15,
  slow_query_ms integer not null default 1000,
  updated_at timestamptz not null default now(),
  updated_by uuid,
  constraint api_p95_thresholds check (0 < api_p95_warning_ms and api_p95_warning_ms < api_p95_critical_ms),
  constraint db_query_thresholds check (0 < db_query_warning_ms and db_query_warning_ms < db_query_critical_ms),
  constraint error_rate_thresholds check (
    0 < error_rate_warning_pct and error_rate_warning_pct < error_rate_critical_pct and error_rate_critical_pct <= 100
  ),
  constraint memory_thresholds check (
    0 < memory_warning_pct and memory_warning_pct < memory_critical_pct and memory_critical_pct <= 100
  ),
  constraint cpu_thresholds check (0 < cpu_warning_pct and cpu_warning_pct < cpu_critical_pct and cpu_critical_pct <= 100),
  constraint deploy_thresholds check (
    0 < deploy_warning_minutes and deploy_warning_minutes < deploy_critical_minutes
  ),
  constraint slow_query_threshold check (slow_query_ms > 0)
);
comment on table vigil.settings is
  'Per-environment thresholds (defaults from the spec), kill switch and dry run. Operators may change only kill_switch and dry_run.';

insert into vigil.settings (environment) values ('dev'), ('qa'), ('prod');

create trigger settings_touch before update on vigil.settings
  for each row execute function vigil.touch_updated_at();

-- Services: what is watched. config is validated per kind by the functions' zod schemas and,
-- as a shape, here.
create table vigil.services (
  id uuid primary key default gen_random_uuid(),
  name text not null unique,
  kind vigil.service_kind not null,
  environment vigil.environment not null default 'prod',
  config jsonb not null default '{}',
  enabled boolean not null default true,
  description text,
  status vigil.service_status not null default 'unknown',
  status_changed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint service_name_format check (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
  constraint service_config_is_object check (jsonb_typeof(config) = 'object')
);
comment on table vigil.services is 'What Vigil watches: one row per probed service (Postgres, Auth, an HTTP API, …).';

create trigger services_touch before update on vigil.services
  for each row execute function vigil.touch_updated_at();

-- Checks: one row per probe result. A cycle's results share cycle_id.
create table vigil.checks (
  id bigint generated always as identity primary key,
  service_id uuid not null references vigil.services (id) on delete cascade,
  cycle_id uuid,
  checked_at timestamptz not null default now(),
  status vigil.check_status not null,
  response_ms numeric(12, 3),
  measurements jsonb not null default '{}',
  error text,
  constraint check_response_ms_nonnegative check (response_ms is null or response_ms >= 0),
  constraint check_measurements_is_object check (jsonb_typeof(measurements) = 'object'),
  constraint check_down_has_reason check (status <> 'down' or error is not null)
);
create index checks_service_time on vigil.checks (service_id, checked_at desc);
create index checks_time on vigil.checks (checked_at);
comment on table vigil.checks is 'One row per probe result: status, response time, measured values, error detail.';

-- Incidents: opened on a transition to degraded or down, resolved on recovery.
create table vigil.incidents (
  id bigint generated always as identity primary key,
  service_id uuid not null references vigil.services (id) on delete cascade,
  kind text not null,
  severity vigil.severity not null,
  status vigil.incident_status not null default 'open',
  title text not null,
  detail jsonb not null default '{}',
  heal_attempts integer not null default 0,
  opened_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  resolved_at timestamptz,
  acknowledged_at timestamptz,
  acknowledged_by uuid,
  constraint incident_kind_format check (kind ~ '^[a-z][a-z0-9_]{0,62}$'),
  constraint incident_resolution check ((status = 'resolved') = (resolved_at is not null)),
  constraint incident_heal_attempts_nonnegative check (heal_attempts >= 0),
  constraint incident_detail_is_object check (jsonb_typeof(detail) = 'object')
);
-- At most one open incident per service and problem kind: a worsening updates it.
create unique index incidents_one_open_per_kind on vigil.incidents (service_id, kind) where status = 'open';
create index incidents_opened on vigil.incidents (opened_at desc);

create trigger incidents_touch before update on vigil.incidents
  for each row execute function vigil.touch_updated_at();

-- Heal actions: the append-only audit. Each action writes an 'intent' row before it runs and a
-- 'result' row when it ends, sharing action_id.
create table vigil.heal_actions (
  id bigint generated always as identity primary key,
  action_id uuid not null,
  phase vigil.heal_phase not null,
  incident_id bigint references vigil.incidents (id) on delete restrict,
  service_id uuid references vigil.services (id) on delete restrict,
  strategy text not null,
  attempt integer not null,
  target jsonb not null default '{}',
  reason text not null,
  measurements_before jsonb,
  measurements_after jsonb,
  outcome vigil.heal_outcome not null,
  detail text,
  actor text not null default 'vigil',
  dry_run boolean not null default false,
  created_at timestamptz not null default now(),
  constraint heal_attempt_positive check (attempt >= 1),
  constraint heal_strategy_format check (strategy ~ '^[a-z][a-z0-9_]{0,62}$'),
  constraint heal_intent_is_pending check ((phase = 'intent') = (outcome in ('pending', 'awaiting_approval'))),
  constraint heal_one_row_per_phase unique (action_id, phase)
);
create index heal_actions_incident on vigil.heal_actions (incident_id);
create index heal_actions_service_time on vigil.heal_actions (service_id, created_at desc);
comment on table vigil.heal_actions is
  'Append-only audit of every heal action: an intent row before it runs, a result row after. No role may update or delete.';

create function vigil.reject_audit_change() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'vigil.heal_actions is append-only: % is not allowed', tg_op
    using errcode = 'insufficient_privilege',
          hint = 'Write a new row instead; the audit keeps every action as it happened.';
end
$$;

create trigger heal_actions_append_only before update or delete on vigil.heal_actions
  for each row execute function vigil.reject_audit_change();
create trigger heal_actions_no_truncate before truncate on vigil.heal_actions
  for each statement execute function vigil.reject_audit_change();
-- ALWAYS: the guard holds even under session_replication_role = replica.
alter table vigil.heal_actions enable always trigger heal_actions_append_only;
alter table vigil.heal_actions enable always trigger heal_actions_no_truncate;

-- Alerts: the delivery outbox. notify claims rows with FOR UPDATE SKIP LOCKED; a row that keeps
-- failing goes 'dead' after max_attempts instead of being retried forever.
create table vigil.alerts (
  id bigint generated always as identity primary key,
  incident_id bigint references vigil.incidents (id) on delete cascade,
  channel vigil.alert_channel not null,
  recipient text not null,
  severity vigil.severity not null,
  subject text not null,
  body text not null,
  dedup_key text,
  status vigil.alert_status not null default 'pending',
  attempts integer not null default 0,
  max_attempts integer not null default 5,
  next_attempt_at timestamptz not null default now(),
  last_error text,
  created_at timestamptz not null default now(),
  sent_at timestamptz,
  acknowledged_at timestamptz,
  acknowledged_by uuid,
  constraint alert_attempts_in_range check (attempts >= 0 and max_attempts >= 1 and attempts <= max_attempts),
  constraint alert_sent_has_time check ((status = 'sent') = (sent_at is not null))
);
create index alerts_due on vigil.alerts (next_attempt_at) where status in ('pending', 'failed');
create index alerts_incident on vigil.alerts (incident_id);
comment on table vigil.alerts is 'Alert delivery outbox (SMS, email, Slack, Discord, PagerDuty) for the escalation ladder.';
