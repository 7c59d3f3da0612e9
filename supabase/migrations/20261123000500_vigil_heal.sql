-- The healing half: failsafes, the claim on an incident, the tamper-evident audit chain,
-- approvals, the escalation ladder, and the trigger that asks auto-heal to act.

create type vigil.heal_mode as enum ('auto', 'approval', 'suggest', 'off');
create type vigil.contact_role as enum ('on_call', 'senior');

-- ─── Failsafes ──────────────────────────────────────────────────────────────────────────────
alter table vigil.settings
  add column heal_max_per_hour integer not null default 10,
  add column breaker_window integer not null default 6,
  add column breaker_min_heals integer not null default 3,
  add column breaker_failure_ratio numeric(3, 2) not null default 0.5,
  add column breaker_cooldown_minutes integer not null default 30,
  add column protected_roles text[] not null default array[
    'supabase_admin', 'supabase_auth_admin', 'supabase_storage_admin', 'supabase_realtime_admin',
    'supabase_replication_admin', 'supabase_read_only_user', 'authenticator', 'pgbouncer'],
  add column protected_applications text[] not null default '{}',
  add constraint heal_rate_limit check (heal_max_per_hour between 1 and 1000),
  add constraint breaker_window_size check (breaker_window between 2 and 100),
  add constraint breaker_min_size check (breaker_min_heals between 1 and breaker_window),
  add constraint breaker_ratio check (breaker_failure_ratio > 0 and breaker_failure_ratio < 1),
  add constraint breaker_cooldown check (breaker_cooldown_minutes between 1 and 1440);

comment on column vigil.settings.heal_max_per_hour is 'At most this many heal attempts per service per hour (default 10).';
comment on column vigil.settings.breaker_min_heals is
  'The breaker judges a strategy only after this many heals (default 3, so the ladder''s three attempts happen).';
comment on column vigil.settings.breaker_failure_ratio is
  'The circuit opens for a service and strategy when more than this share of its recent heals failed.';

alter table vigil.services
  add column heal_enabled boolean not null default true,
  add column actions jsonb not null default '{}',
  add constraint service_actions_is_object check (jsonb_typeof(actions) = 'object');
comment on column vigil.services.heal_enabled is 'The per-service kill switch: false stops every heal of this service.';
comment on column vigil.services.actions is
  'How Vigil may act on the service (restart, CDN, rollback…), validated by shared/service-actions.ts.';

-- Per environment and strategy: act on its own, ask a human first, only suggest, or never.
create table vigil.heal_policies (
  environment vigil.environment not null,
  strategy text not null,
  mode vigil.heal_mode not null,
  config jsonb not null default '{}',
  updated_at timestamptz not null default now(),
  primary key (environment, strategy),
  constraint heal_policy_strategy_format check (strategy ~ '^[a-z][a-z0-9_]{0,62}$'),
  constraint heal_policy_config_is_object check (jsonb_typeof(config) = 'object')
);
comment on table vigil.heal_policies is
  'Per environment and strategy: mode (auto, approval, suggest, off) and the strategy''s settings. No row: the strategy''s default.';

create trigger heal_policies_touch before update on vigil.heal_policies
  for each row execute function vigil.touch_updated_at();

/**
 * Whether a heal of this service by this strategy may go ahead now, and why not: kill switches,
 * the strategy's mode, the hourly rate limit, and the circuit breaker (open when most of the recent
 * heals failed and the latest failure is within the cool-down; half-open after it).
 */
create function vigil.heal_guard(p_service_id uuid, p_strategy text)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  svc vigil.services;
  s vigil.settings;
  policy_mode vigil.heal_mode;
  attempts integer;
  recent integer;
  failures integer;
  latest record;
  breaker text := 'closed';
begin
  select * into svc from vigil.services where id = p_service_id;
  if not found then
    return jsonb_build_object('allowed', false, 'reason', 'unknown service');
  end if;
  select * into s from vigil.settings where environment = svc.environment;
  if not found then
    return jsonb_build_object('allowed', false, 'reason', format('no settings for %s: nothing may act', svc.environment));
  end if;
  select p.mode into policy_mode from vigil.heal_policies p where p.environment = svc.environment and p.strategy = p_strategy;

  if s.kill_switch then
    return jsonb_build_object('allowed', false, 'reason', format('the kill switch is on for %s', svc.environment));
  end if;
  if not svc.heal_enabled then
    return jsonb_build_object('allowed', false, 'reason', format('healing is switched off for %s', svc.name));
  end if;
  if policy_mode = 'off' then
    return jsonb_build_object('allowed', false, 'reason', format('strategy %s is off in %s', p_strategy, svc.environment));
  end if;

  select count(*) into attempts
    from vigil.heal_actions
   where service_id = p_service_id and phase = 'result' and outcome in ('succeeded', 'failed', 'undone')
     and created_at > now() - interval '1 hour';
  if attempts >= s.heal_max_per_hour then
    return jsonb_build_object('allowed', false, 'attempts_last_hour', attempts,
      'reason', format('rate limit: %s heals of %s in the last hour (at most %s)', attempts, svc.name, s.heal_max_per_hour));
  end if;

  select count(*), count(*) filter (where outcome in ('failed', 'undone')) into recent, failures
    from (select outcome from vigil.heal_actions
           where service_id = p_service_id and strategy = p_strategy and phase = 'result'
             and outcome in ('succeeded', 'failed', 'undone')
           order by seq desc limit s.breaker_window) r;
  select outcome, created_at into latest
    from vigil.heal_actions
   where service_id = p_service_id and strategy = p_strategy and phase = 'result'
     and outcome in ('succeeded', 'failed', 'undone')
   order by seq desc limit 1;
  if recent >= s.breaker_min_heals and failures::numeric / recent > s.breaker_failure_ratio and latest.outcome in ('failed', 'undone') then
    if latest.created_at > now() - make_interval(mins => s.breaker_cooldown_minutes) then
      return jsonb_build_object('allowed', false, 'breaker', 'open',
        'reason', format('circuit open: %s of the last %s heals of %s by %s failed; half-open at %s',
                         failures, recent, svc.name, p_strategy,
                         to_char(latest.created_at + make_interval(mins => s.breaker_cooldown_minutes), 'YYYY-MM-DD HH24:MI:SS TZ')));
    end if;
    breaker := 'half_open';
  end if;

  return jsonb_build_object('allowed', true, 'breaker', breaker, 'attempts_last_hour', attempts,
                            'mode', coalesce(policy_mode::text, 'default'), 'dry_run', s.dry_run,
                            'protected_roles', to_jsonb(s.protected_roles),
                            'protected_applications', to_jsonb(s.protected_applications));
end
$$;

-- ─── The claim on an incident ───────────────────────────────────────────────────────────────
alter table vigil.incidents
  add column heal_claimed_until timestamptz,
  add column heal_claimed_by text,
  add column last_heal_at timestamptz,
  add column escalation_level integer not null default 0,
  add constraint incident_escalation_level check (escalation_level between 0 and 4);
comment on column vigil.incidents.escalation_level is
  '0 none, 1 first attempt (silent), 2 warned, 3 on-call paged, 4 senior engineer paged.';

/**
 * Claims an open incident for one heal worker for a lease; null when another holds it or the
 * incident is not open. A conditional update, so two invocations never both act.
 */
create function vigil.claim_incident(p_incident_id bigint, p_worker text, p_lease interval default interval '3 minutes')
returns setof vigil.incidents
language sql
security definer
set search_path = ''
as $$
  update vigil.incidents
     set heal_claimed_until = now() + p_lease, heal_claimed_by = p_worker
   where id = p_incident_id and status = 'open'
     and (heal_claimed_until is null or heal_claimed_until < now() or heal_claimed_by = p_worker)
  returning *
$$;

create function vigil.release_incident(p_incident_id bigint, p_worker text)
returns void
language sql
security definer
set search_path = ''
as $$
  update vigil.incidents
     set heal_claimed_until = null, heal_claimed_by = null, last_heal_at = now()
   where id = p_incident_id and heal_claimed_by = p_worker
$$;

-- ─── The audit chain ────────────────────────────────────────────────────────────────────────
-- Each row carries a hash over its content and the previous row's hash, in an order (seq) fixed
-- under a lock, so an edited, removed or reordered row breaks the chain from that row on.
alter table vigil.heal_actions
  add column seq bigint,
  add column prev_hash text,
  add column row_hash text,
  add constraint heal_actions_seq_unique unique (seq);

-- The time zone is fixed because created_at is hashed as text: a session elsewhere must agree.
create function vigil.heal_action_hash(r vigil.heal_actions)
returns text
language sql
immutable
set search_path = ''
set timezone = 'UTC'
as $$
  select encode(sha256(convert_to(coalesce(r.prev_hash, 'genesis') || '|' || jsonb_build_object(
    'seq', r.seq, 'id', r.id, 'action_id', r.action_id, 'phase', r.phase, 'incident_id', r.incident_id,
    'service_id', r.service_id, 'strategy', r.strategy, 'attempt', r.attempt, 'target', r.target,
    'reason', r.reason, 'measurements_before', r.measurements_before,
    'measurements_after', r.measurements_after, 'outcome', r.outcome, 'detail', r.detail,
    'actor', r.actor, 'dry_run', r.dry_run, 'created_at', r.created_at)::text, 'UTF8')), 'hex')
$$;

create function vigil.chain_heal_action() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  last record;
begin
  -- Held to commit: the next writer waits and then sees this row as the end of the chain.
  perform pg_advisory_xact_lock(hashtext('vigil.heal_actions chain'));
  select a.seq, a.row_hash into last from vigil.heal_actions a order by a.seq desc limit 1;
  new.seq := coalesce(last.seq, 0) + 1;
  new.prev_hash := last.row_hash;
  new.row_hash := vigil.heal_action_hash(new);
  return new;
end
$$;

create trigger heal_actions_chain before insert on vigil.heal_actions
  for each row execute function vigil.chain_heal_action();
alter table vigil.heal_actions enable always trigger heal_actions_chain;

/**
 * Walks the audit in order and names the first row whose content or link does not hold. Runs with
 * the caller's rights: what RLS hides from a caller, it does not describe either.
 */
create function vigil.verify_heal_audit()
returns table (intact boolean, rows_checked bigint, first_broken_id bigint, problem text)
language plpgsql
stable
set search_path = ''
as $$
declare
  r vigil.heal_actions;
  expected_seq bigint := 1;
  previous_hash text;
  checked bigint := 0;
begin
  for r in select * from vigil.heal_actions order by seq loop
    checked := checked + 1;
    if r.seq is distinct from expected_seq then
      return query select false, checked, r.id, format('row seq %s follows %s: a row before it is missing', r.seq, expected_seq - 1);
      return;
    end if;
    if r.prev_hash is distinct from previous_hash then
      return query select false, checked, r.id, 'its link to the previous row does not match: a row was removed, added or changed before it';
      return;
    end if;
    if r.row_hash is distinct from vigil.heal_action_hash(r) then
      return query select false, checked, r.id, 'its content changed after it was written';
      return;
    end if;
    previous_hash := r.row_hash;
    expected_seq := expected_seq + 1;
  end loop;
  return query select true, checked, null::bigint, null::text;
end
$$;

-- ─── Approvals ──────────────────────────────────────────────────────────────────────────────
create table vigil.heal_approvals (
  action_id uuid primary key,
  incident_id bigint not null references vigil.incidents (id) on delete cascade,
  service_id uuid not null references vigil.services (id) on delete cascade,
  strategy text not null,
  plan jsonb not null,
  requested_at timestamptz not null default now(),
  expires_at timestamptz not null default now() + interval '1 hour',
  decision text,
  decided_at timestamptz,
  decided_by uuid,
  constraint heal_approval_decision check (decision in ('approved', 'rejected')),
  constraint heal_approval_decided_has_time check ((decision is null) = (decided_at is null))
);
comment on table vigil.heal_approvals is
  'Heals waiting for a human: an operator sets decision to approved or rejected (dashboard or alert link).';

-- Security definer so an operator's approval can ask auto-heal to act (vigil.invoke is not theirs
-- to call); who decided comes from the JWT, so nobody approves in another's name.
create function vigil.decide_heal_approval() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if old.decision is not null then
    raise exception 'heal approval % was already %', old.action_id, old.decision using errcode = 'check_violation';
  end if;
  if new.decision is not null and old.expires_at < now() then
    raise exception 'heal approval % expired at %', old.action_id, old.expires_at using errcode = 'check_violation';
  end if;
  new.decided_at := case when new.decision is null then null else now() end;
  new.decided_by := case when new.decision is null then null else coalesce(auth.uid(), new.decided_by) end;
  if new.decision = 'approved' then
    perform vigil.invoke('auto-heal', jsonb_build_object('incident_id', new.incident_id, 'approval', new.action_id));
  end if;
  return new;
end
$$;

create trigger heal_approvals_decide before update of decision on vigil.heal_approvals
  for each row execute function vigil.decide_heal_approval();

-- ─── Escalation ─────────────────────────────────────────────────────────────────────────────
create table vigil.contacts (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  role vigil.contact_role not null,
  channel vigil.alert_channel not null,
  -- A phone number or email address; for Slack, Discord and PagerDuty the name of the secret
  -- holding the webhook URL or routing key.
  address text not null,
  environment vigil.environment,
  enabled boolean not null default true,
  created_at timestamptz not null default now(),
  constraint contact_address_present check (length(address) between 3 and 320)
);
comment on table vigil.contacts is 'Who is paged: on_call at the third failed heal, senior after it. environment null means every environment.';

create table vigil.incident_log (
  id bigint generated always as identity primary key,
  incident_id bigint not null references vigil.incidents (id) on delete cascade,
  level text not null,
  message text not null,
  created_at timestamptz not null default now(),
  constraint incident_log_level check (level in ('info', 'warning', 'error'))
);
create index incident_log_incident on vigil.incident_log (incident_id, created_at);
comment on table vigil.incident_log is 'What happened to an incident, for the timeline: heals, warnings, escalations.';

/**
 * Moves an incident up the ladder (never down): 1 silent (logged), 2 a warning, 3 pages on-call,
 * 4 pages the senior contact. Returns how many alerts were queued.
 */
create function vigil.escalate(p_incident_id bigint, p_level integer, p_summary text)
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
begin
  select * into inc from vigil.incidents where id = p_incident_id for update;
  if not found or p_level <= inc.escalation_level then
    return 0;
  end if;
  select * into svc from vigil.services where id = inc.service_id;
  update vigil.incidents set escalation_level = p_level where id = inc.id;
  insert into vigil.incident_log (incident_id, level, message)
  values (inc.id, case when p_level = 1 then 'info' when p_level = 2 then 'warning' else 'error' end,
          format('escalation level %s: %s', p_level, p_summary));
  if p_level >= 3 then
    wanted := case when p_level = 3 then 'on_call'::vigil.contact_role else 'senior'::vigil.contact_role end;
    insert into vigil.alerts (incident_id, channel, recipient, severity, subject, body, dedup_key)
    select inc.id, c.channel, c.address, 'critical',
           format('[%s] %s', upper(svc.environment::text), inc.title),
           format('%s. %s', inc.title, p_summary),
           format('vigil-incident-%s', inc.id)
      from vigil.contacts c
     where c.enabled and c.role = wanted and (c.environment is null or c.environment = svc.environment);
    get diagnostics queued = row_count;
    if queued = 0 then
      insert into vigil.incident_log (incident_id, level, message)
      values (inc.id, 'error', format('no enabled %s contact for %s: nobody was paged', wanted, svc.environment));
    end if;
  end if;
  return queued;
end
$$;

-- ─── Asking auto-heal to act ────────────────────────────────────────────────────────────────
-- On an incident that opens or worsens. vigil.invoke sends on commit, so the heal never runs
-- inside the check's transaction.
create function vigil.request_heal() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.status = 'open' and (tg_op = 'INSERT' or new.severity > old.severity) then
    perform vigil.invoke('auto-heal', jsonb_build_object(
      'incident_id', new.id, 'reason', case when tg_op = 'INSERT' then 'opened' else 'worsened' end));
  end if;
  return null;
end
$$;

create trigger incidents_request_heal after insert or update of severity on vigil.incidents
  for each row execute function vigil.request_heal();

/** Asks again for open incidents whose last attempt failed and whose ladder is not finished. */
create function vigil.retry_heals(p_after interval default interval '2 minutes')
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  inc record;
  asked integer := 0;
begin
  for inc in
    select i.id from vigil.incidents i
     where i.status = 'open' and i.heal_attempts between 1 and 2 and i.escalation_level < 4
       and (i.heal_claimed_until is null or i.heal_claimed_until < now())
       and i.last_heal_at < now() - p_after
       -- A heal waiting for a human is not retried behind their back.
       and not exists (select from vigil.heal_approvals a
                        where a.incident_id = i.id and a.decision is null and a.expires_at > now())
  loop
    perform vigil.invoke('auto-heal', jsonb_build_object('incident_id', inc.id, 'reason', 'retry'));
    asked := asked + 1;
  end loop;
  return asked;
end
$$;

select cron.schedule('vigil-heal-retry', '* * * * *', 'select vigil.retry_heals()');

-- ─── Access ─────────────────────────────────────────────────────────────────────────────────
grant select, insert, update, delete on vigil.heal_policies, vigil.heal_approvals, vigil.contacts,
  vigil.incident_log to service_role;
grant select on vigil.heal_policies, vigil.heal_approvals, vigil.contacts, vigil.incident_log to authenticated;
grant update (decision) on vigil.heal_approvals to authenticated;
grant update (heal_enabled) on vigil.services to authenticated;

alter table vigil.heal_policies enable row level security;
alter table vigil.heal_approvals enable row level security;
alter table vigil.contacts enable row level security;
alter table vigil.incident_log enable row level security;

create policy "Operators can read heal policies" on vigil.heal_policies
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can read heal approvals" on vigil.heal_approvals
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can decide heal approvals" on vigil.heal_approvals
  for update to authenticated using ((select vigil.is_operator())) with check ((select vigil.is_operator()));
create policy "Operators can read contacts" on vigil.contacts
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can read the incident log" on vigil.incident_log
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can switch healing per service" on vigil.services
  for update to authenticated using ((select vigil.is_operator())) with check ((select vigil.is_operator()));

revoke execute on all functions in schema vigil from public;
grant execute on function vigil.heal_guard(uuid, text) to service_role;
grant execute on function vigil.claim_incident(bigint, text, interval) to service_role;
grant execute on function vigil.release_incident(bigint, text) to service_role;
grant execute on function vigil.verify_heal_audit() to service_role, authenticated;
grant execute on function vigil.escalate(bigint, integer, text) to service_role;
grant execute on function vigil.retry_heals(interval) to service_role;
-- Called by triggers that run with the rights of whoever writes the row.
grant execute on function vigil.heal_action_hash(vigil.heal_actions) to service_role, authenticated;

select vigil.publish_for_realtime(array['heal_approvals', 'incident_log']);
