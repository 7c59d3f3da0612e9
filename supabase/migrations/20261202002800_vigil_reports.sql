-- The daily and weekly reports (issue 11): when they are due (09:00 in the team's time zone by
-- default), the facts they tell (vigil.report_facts, on top of vigil.report_kpis), where they are
-- kept (vigil.reports, one per kind and period, made exactly once however many workers ask), and
-- how they reach people: one alert per contact on the report channels (email and Slack by
-- default), sent by notify like any alert, never grouped with a page. The `report` function renders
-- the text, HTML and chat forms from the facts; everything it decides on is here.

-- ─── Settings: one row ──────────────────────────────────────────────────────────────────────
create table vigil.report_settings (
  id boolean primary key default true,
  -- An IANA name ("America/Chicago"); the reports' day runs from local midnight to midnight.
  time_zone text not null default 'UTC',
  send_hour integer not null default 9,
  -- ISO day of the week the weekly report goes out on (1 = Monday … 7 = Sunday), covering the 7
  -- days before that morning.
  weekly_day integer not null default 1,
  daily boolean not null default true,
  weekly boolean not null default true,
  sla_pct numeric(6, 3) not null default 99.9,
  minutes_per_manual_fix integer not null default 30,
  engineer_cost_per_hour numeric(10, 2) not null default 100,
  currency text not null default 'USD',
  channels vigil.alert_channel[] not null default '{email,slack}',
  roles vigil.contact_role[] not null default '{on_call,senior,team}',
  -- Reports cover the days from this moment's local day on: a new installation does not send a
  -- report of the day before it watched anything.
  reporting_since timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint report_settings_one_row check (id),
  constraint report_send_hour check (send_hour between 0 and 23),
  constraint report_weekly_day check (weekly_day between 1 and 7),
  constraint report_sla check (sla_pct > 0 and sla_pct <= 100),
  constraint report_minutes_per_fix check (minutes_per_manual_fix between 1 and 1440),
  constraint report_engineer_cost check (engineer_cost_per_hour >= 0),
  constraint report_currency check (currency ~ '^[A-Z]{3}$'),
  constraint report_channels check (cardinality(channels) between 1 and 4
                                    and channels <@ '{email,slack,discord,webhook}'::vigil.alert_channel[]),
  constraint report_roles check (cardinality(roles) between 1 and 3)
);
comment on table vigil.report_settings is
  'When the daily and weekly reports go out (send_hour in time_zone; the weekly one on weekly_day, 1 = Monday), to whom (contacts with one of roles, on one of channels), and the assumptions of their KPIs.';
insert into vigil.report_settings default values;

create trigger report_settings_touch before update on vigil.report_settings
  for each row execute function vigil.touch_updated_at();

/** Refuses a bad setting naming its field, every problem at once. */
create function vigil.validate_report_settings() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  errors text[] := '{}';
begin
  if new.time_zone is null or not exists (select from pg_catalog.pg_timezone_names where name = new.time_zone) then
    errors := errors || format('time_zone: no time zone is named %L (an IANA name such as Europe/Berlin; see pg_timezone_names)',
                               new.time_zone);
  end if;
  if new.send_hour not between 0 and 23 then
    errors := errors || format('send_hour: must be an hour from 0 to 23, got %s', new.send_hour);
  end if;
  if new.weekly_day not between 1 and 7 then
    errors := errors || format('weekly_day: must be 1 (Monday) to 7 (Sunday), got %s', new.weekly_day);
  end if;
  if not (new.sla_pct > 0 and new.sla_pct <= 100) then
    errors := errors || format('sla_pct: must be above 0 and at most 100, got %s', new.sla_pct);
  end if;
  if new.minutes_per_manual_fix not between 1 and 1440 then
    errors := errors || format('minutes_per_manual_fix: must be from 1 to 1440, got %s', new.minutes_per_manual_fix);
  end if;
  if new.engineer_cost_per_hour < 0 then
    errors := errors || format('engineer_cost_per_hour: must not be negative, got %s', new.engineer_cost_per_hour);
  end if;
  if new.currency !~ '^[A-Z]{3}$' then
    errors := errors || format('currency: must be a three-letter code such as USD, got %L', new.currency);
  end if;
  if cardinality(new.channels) = 0 or not new.channels <@ '{email,slack,discord,webhook}'::vigil.alert_channel[] then
    errors := errors || format('channels: must be some of email, slack, discord, webhook (a report is not a page: never sms or pagerduty), got %s',
                               new.channels);
  end if;
  if cardinality(new.roles) = 0 then
    errors := errors || 'roles: at least one contact role must receive the reports'::text;
  end if;
  if cardinality(errors) > 0 then
    raise exception 'invalid report settings: %', array_to_string(errors, '; ') using errcode = 'check_violation';
  end if;
  return new;
end
$$;

create trigger report_settings_validate before insert or update on vigil.report_settings
  for each row execute function vigil.validate_report_settings();

-- ─── The reports ────────────────────────────────────────────────────────────────────────────
create table vigil.reports (
  id bigint generated always as identity primary key,
  kind text not null,
  -- The local dates covered: [period_start, period_end), in time_zone.
  period_start date not null,
  period_end date not null,
  time_zone text not null,
  from_at timestamptz not null,
  to_at timestamptz not null,
  -- rendering (a worker holds it until claimed_until), ready (stored and queued), failed.
  status text not null default 'rendering',
  claimed_by text,
  claimed_until timestamptz,
  attempts integer not null default 1,
  error text,
  facts jsonb,
  summary text,
  body_text text,
  body_html text,
  recipients integer,
  created_at timestamptz not null default now(),
  generated_at timestamptz,
  constraint report_kind check (kind in ('daily', 'weekly')),
  constraint report_period check (period_end > period_start and to_at > from_at),
  constraint report_status check (status in ('rendering', 'ready', 'failed')),
  constraint report_ready_has_body check (status <> 'ready' or (facts is not null and summary is not null
                                                                and body_text is not null and body_html is not null
                                                                and generated_at is not null)),
  constraint report_failed_has_error check (status <> 'failed' or error is not null),
  unique (kind, period_start)
);
comment on table vigil.reports is
  'Every daily and weekly report, once per period: the facts (vigil.report_facts), the text and HTML sent, and how many contacts it was queued for.';

-- ─── The outbox learns about reports ────────────────────────────────────────────────────────
alter table vigil.alerts
  add column report_id bigint references vigil.reports (id) on delete cascade,
  drop constraint alert_event,
  add constraint alert_event check (event in ('page', 'reminder', 'acknowledged', 'resolved', 'flapping', 'stable',
                                              'notice', 'test', 'report')),
  add constraint alert_report_has_report check ((event = 'report') = (report_id is not null));
create index alerts_report on vigil.alerts (report_id) where report_id is not null;

-- ─── When a report is due ───────────────────────────────────────────────────────────────────
/**
 * The reports due at p_at: the latest daily period whose send time (send_hour local, the morning
 * after it) has passed within the last 12 hours, and the latest weekly one within 24 hours, unless
 * already made (a failed one is due again, up to 3 attempts). A missed hour is caught up; a report
 * older than the window is not sent late, nor one of a period that ended before reporting_since
 * (the day Vigil was installed). Each row: {kind, period_start, period_end, from, to,
 * time_zone}. Raises 22023 naming time_zone when the stored zone no longer exists.
 */
create function vigil.due_reports(p_at timestamptz default now())
returns setof jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  st vigil.report_settings;
  local_now timestamp;
  send_day date;
  week_day date;
begin
  select * into st from vigil.report_settings;
  if not found then
    return;
  end if;
  if not exists (select from pg_catalog.pg_timezone_names where name = st.time_zone) then
    raise exception 'report settings: time_zone % does not exist (set an IANA name in vigil.report_settings)', st.time_zone
      using errcode = '22023';
  end if;
  local_now := p_at at time zone st.time_zone;
  -- The latest local day whose send time has passed.
  send_day := case when local_now >= local_now::date + make_interval(hours => st.send_hour)
                   then local_now::date else local_now::date - 1 end;
  -- ...and the latest such day that is the weekly day.
  week_day := send_day - ((extract(isodow from send_day)::int - st.weekly_day + 7) % 7);

  return query
  select jsonb_build_object(
           'kind', d.kind, 'period_start', d.period_start, 'period_end', d.period_end,
           'from', (d.period_start::timestamp at time zone st.time_zone),
           'to', (d.period_end::timestamp at time zone st.time_zone),
           'time_zone', st.time_zone)
    from (values ('daily', send_day - 1, send_day, st.daily, interval '12 hours'),
                 ('weekly', week_day - 7, week_day, st.weekly, interval '24 hours'))
         d(kind, period_start, period_end, enabled, catch_up)
   where d.enabled
     and d.period_end > (st.reporting_since at time zone st.time_zone)::date
     and local_now < d.period_end + make_interval(hours => st.send_hour) + d.catch_up
     and not exists (select from vigil.reports r
                      where r.kind = d.kind and r.period_start = d.period_start
                        and (r.status = 'ready' or r.attempts >= 3
                             or (r.status = 'rendering' and r.claimed_until > p_at)));
end
$$;
comment on function vigil.due_reports(timestamptz) is
  'The daily and weekly reports due at a moment (send_hour in the configured time zone, caught up within 12 h / 24 h), not yet made.';

/**
 * Claims one report period for p_worker: a new row, or one a worker gave up on (failed, or its
 * claim ran out) with attempts left. Null when another worker has it or it is made. A manual
 * request (p_again) may also claim a ready report, to make it afresh.
 */
create function vigil.claim_report(p_kind text, p_period_start date, p_period_end date, p_time_zone text,
                                   p_worker text, p_again boolean default false)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  claimed bigint;
begin
  if p_kind is null or p_kind not in ('daily', 'weekly') then
    raise exception 'claim_report: kind must be daily or weekly, got %', p_kind using errcode = '22023';
  end if;
  if p_worker is null or length(p_worker) = 0 then
    raise exception 'claim_report: a worker name is required' using errcode = '22023';
  end if;
  insert into vigil.reports as r (kind, period_start, period_end, time_zone, from_at, to_at, claimed_by, claimed_until)
  values (p_kind, p_period_start, p_period_end, p_time_zone,
          p_period_start::timestamp at time zone p_time_zone, p_period_end::timestamp at time zone p_time_zone,
          p_worker, now() + interval '5 minutes')
  on conflict (kind, period_start) do update
     set status = 'rendering', claimed_by = excluded.claimed_by, claimed_until = excluded.claimed_until,
         attempts = r.attempts + 1, error = null, period_end = excluded.period_end,
         time_zone = excluded.time_zone, from_at = excluded.from_at, to_at = excluded.to_at
   where (r.status = 'failed' and (r.attempts < 3 or p_again))
      or (r.status = 'rendering' and r.claimed_until < now())
      or (r.status = 'ready' and p_again)
  returning r.id into claimed;
  return claimed;
end
$$;

-- ─── What a report tells ────────────────────────────────────────────────────────────────────
/**
 * Every number and list a report shows for [p_from, p_to): report_kpis with the configured SLA and
 * assumptions, the incidents (worst first), heals per strategy, open recommendations, capacity
 * forecasts, the latest weekly analyses, the maintenance schedule, and the contacts it goes to.
 * Read with the caller's rights.
 */
create function vigil.report_facts(p_kind text, p_from timestamptz, p_to timestamptz)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  st vigil.report_settings;
begin
  if p_kind is null or p_kind not in ('daily', 'weekly') then
    raise exception 'report_facts: kind must be daily or weekly, got %', p_kind using errcode = '22023';
  end if;
  select * into st from vigil.report_settings;
  return jsonb_build_object(
    'kind', p_kind,
    'period', jsonb_build_object('from', p_from, 'to', p_to, 'time_zone', coalesce(st.time_zone, 'UTC'),
                                 'start_date', (p_from at time zone coalesce(st.time_zone, 'UTC'))::date,
                                 'end_date', (p_to at time zone coalesce(st.time_zone, 'UTC'))::date),
    'settings', jsonb_build_object('sla_pct', coalesce(st.sla_pct, 99.9),
                                   'minutes_per_manual_fix', coalesce(st.minutes_per_manual_fix, 30),
                                   'engineer_cost_per_hour', coalesce(st.engineer_cost_per_hour, 100),
                                   'currency', coalesce(st.currency, 'USD')),
    -- trim_scale: "the 99.9 % SLA", not 99.900.
    'kpis', vigil.report_kpis(p_from, p_to, trim_scale(coalesce(st.sla_pct, 99.9)), coalesce(st.minutes_per_manual_fix, 30),
                              trim_scale(coalesce(st.engineer_cost_per_hour, 100))),
    'incidents', coalesce((
      select jsonb_agg(to_jsonb(x) order by x.rank, x.opened_at desc)
        from (select i.id, s.name as service, i.kind, i.severity, i.status, i.title, i.opened_at, i.resolved_at,
                     round(extract(epoch from coalesce(i.resolved_at, p_to) - i.opened_at)::numeric) as seconds,
                     exists (select from vigil.heal_actions h where h.incident_id = i.id and h.phase = 'result'
                                                              and h.outcome = 'succeeded') as healed,
                     i.escalation_level >= 3 or i.acknowledged_at is not null as needed_a_person,
                     case i.severity when 'critical' then 0 when 'warning' then 1 else 2 end as rank
                from vigil.incidents i join vigil.services s on s.id = i.service_id
               where i.opened_at >= p_from and i.opened_at < p_to and i.folded_into is null
               order by case i.severity when 'critical' then 0 when 'warning' then 1 else 2 end, i.opened_at desc
               limit 20) x), '[]'::jsonb),
    'heals', coalesce((
      select jsonb_agg(jsonb_build_object('strategy', strategy, 'succeeded', succeeded, 'failed', failed,
                                          'undone', undone, 'other', other) order by succeeded + failed + undone + other desc, strategy)
        from (select h.strategy,
                     count(*) filter (where h.outcome = 'succeeded') as succeeded,
                     count(*) filter (where h.outcome = 'failed') as failed,
                     count(*) filter (where h.outcome = 'undone') as undone,
                     count(*) filter (where h.outcome not in ('succeeded', 'failed', 'undone')) as other
                from vigil.heal_actions h
               where h.phase = 'result' and h.created_at >= p_from and h.created_at < p_to
               group by h.strategy) t), '[]'::jsonb),
    'recommendations', coalesce((
      select jsonb_agg(jsonb_build_object('kind', r.kind, 'title', r.title, 'service', s.name, 'since', r.created_at)
                       order by r.created_at desc)
        from (select * from vigil.recommendations where status = 'open' order by created_at desc limit 10) r
        left join vigil.services s on s.id = r.service_id), '[]'::jsonb),
    'forecasts', coalesce((
      select jsonb_agg(jsonb_build_object('service', s.name, 'title', i.title, 'since', i.opened_at) order by i.opened_at)
        from vigil.incidents i join vigil.services s on s.id = i.service_id
       where i.kind = 'capacity_forecast' and i.status = 'open'), '[]'::jsonb),
    'analyses', coalesce((
      select jsonb_agg(jsonb_build_object('task', m.task, 'status', m.status, 'summary', m.summary,
                                          'finished_at', m.finished_at) order by m.task)
        from (select distinct on (task) task, status, summary, finished_at from vigil.maintenance_runs
               where cadence in ('weekly', 'monthly') and finished_at is not null
                 and finished_at >= p_from - interval '31 days' and finished_at < p_to
               order by task, finished_at desc) m), '[]'::jsonb),
    -- What maintenance changed in the period (a vacuum run, an index dropped, a lint fixed): the
    -- work done before it became an incident.
    'maintenance_actions', coalesce((
      select jsonb_agg(jsonb_build_object('task', task, 'runs', runs, 'actions', actions) order by actions desc, task)
        from (select m.task, count(*) as runs, sum(jsonb_array_length(m.actions)) as actions
                from vigil.maintenance_runs m
               where m.status = 'succeeded' and m.started_at >= p_from and m.started_at < p_to
               group by m.task) t), '[]'::jsonb),
    'schedules', coalesce((select jsonb_agg(s order by s ->> 'job') from vigil.schedules() s
                            where s ->> 'job' like 'vigil-maintenance-%'), '[]'::jsonb),
    'generated_at', now());
end
$$;
comment on function vigil.report_facts(text, timestamptz, timestamptz) is
  'What a report tells for a period: report_kpis with the configured SLA and assumptions, incidents, heals per strategy, recommendations, forecasts, weekly analyses, maintenance schedule. Read with the caller''s rights.';

/** Vigil's own pg_cron jobs and when they run (pg_cron's schedules are in UTC): names and times only. */
create function vigil.schedules()
returns setof jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if to_regclass('cron.job') is null then
    return;
  end if;
  return query execute
    'select jsonb_build_object(''job'', jobname, ''schedule'', schedule, ''active'', active)
       from cron.job where jobname like ''vigil-%'' order by jobname';
end
$$;

-- ─── Storing and sending ────────────────────────────────────────────────────────────────────
/**
 * Stores the rendered report claimed by p_worker and queues it, in one transaction: one alert per
 * enabled, working contact with a report role on a report channel (quiet hours respected: a report
 * is never urgent). Returns how many were queued; raises 55000 when the claim was lost.
 */
create function vigil.finish_report(p_id bigint, p_worker text, p_facts jsonb, p_summary text, p_text text, p_html text)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  rep vigil.reports;
  st vigil.report_settings;
  queued integer;
begin
  if coalesce(length(p_summary), 0) = 0 or coalesce(length(p_text), 0) = 0 or coalesce(length(p_html), 0) = 0
     or jsonb_typeof(p_facts) is distinct from 'object' then
    raise exception 'finish_report: facts, summary, text and html are required' using errcode = '22023';
  end if;
  update vigil.reports
     set status = 'ready', claimed_by = null, claimed_until = null, error = null, facts = p_facts,
         summary = left(p_summary, 500), body_text = p_text, body_html = p_html, generated_at = now()
   where id = p_id and status = 'rendering' and claimed_by = p_worker
  returning * into rep;
  if not found then
    raise exception 'finish_report: report % is not claimed by %', p_id, p_worker using errcode = '55000';
  end if;
  select * into st from vigil.report_settings;
  with sent as (
    insert into vigil.alerts (report_id, contact_id, channel, recipient, severity, priority, event, subject, body,
                              dedup_key, next_attempt_at)
    select rep.id, c.id, c.channel, case when c.secret_name is null then c.address else c.secret_name end,
           'info', 'info', 'report',
           format('Vigil %s report, %s', rep.kind,
                  case when rep.kind = 'daily' then to_char(rep.period_start, 'FMDay FMDD Mon YYYY')
                       else to_char(rep.period_start, 'FMDD Mon') || ' – ' || to_char(rep.period_end - 1, 'FMDD Mon YYYY') end),
           left(p_summary, 500), format('vigil-report-%s-%s', rep.kind, rep.period_start),
           greatest(now(), vigil.quiet_until(c.quiet_hours, now()))
      from vigil.contacts c
     where c.enabled and c.failing_since is null and c.role = any (st.roles) and c.channel = any (st.channels)
       -- Made again on request: only those it has not reached yet.
       and not exists (select from vigil.alerts a where a.report_id = rep.id and a.contact_id = c.id
                                                    and a.status in ('pending', 'sending', 'sent', 'failed'))
    returning 1
  )
  select count(*) into queued from sent;
  update vigil.reports set recipients = coalesce(recipients, 0) + queued where id = rep.id;
  return queued;
end
$$;

/** Records why a claimed report could not be made; it is due again at the next run (3 attempts). */
create function vigil.fail_report(p_id bigint, p_worker text, p_error text)
returns void
language sql
security definer
set search_path = ''
as $$
  update vigil.reports
     set status = 'failed', claimed_by = null, claimed_until = null,
         error = left(coalesce(nullif(p_error, ''), 'failed without a reason'), 1000)
   where id = p_id and status = 'rendering' and claimed_by = p_worker
$$;

-- ─── claim_alerts hands notify the report with its alert ────────────────────────────────────
-- As in 20261202000200, plus `report` (the stored text and HTML, and the facts the chat forms are
-- rendered from) for an alert that carries one.
create or replace function vigil.claim_alerts(p_worker text, p_limit integer default 100, p_lease interval default interval '2 minutes')
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
             and a2.event not in ('resolved', 'stable', 'test', 'acknowledged', 'report')
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
         -- Only a report alert carries the key: a page's row is as it was.
         || case when c.report_id is null then '{}'::jsonb else jsonb_build_object('report', (
              select jsonb_build_object('id', r.id, 'kind', r.kind, 'period_start', r.period_start,
                                        'period_end', r.period_end, 'text', r.body_text, 'html', r.body_html,
                                        'facts', r.facts)
                from vigil.reports r where r.id = c.report_id and r.status = 'ready')) end
    from claimed c
    left join vigil.contacts k on k.id = c.contact_id
    left join vigil.services v on v.id = c.service_id
    left join vigil.incidents i on i.id = c.incident_id
    left join vigil.settings st on st.environment = v.environment
   order by case c.priority when 'P0' then 0 when 'P1' then 1 when 'P2' then 2 when 'P3' then 3 else 4 end,
            c.contact_id, c.id;
end
$$;

-- ─── The schedule (UTC) ─────────────────────────────────────────────────────────────────────
-- Twice an hour: the function decides what is due in the configured time zone, so 09:00 local is
-- kept whatever the zone's offset (half-hour zones on time; Nepal's +5:45 within 15 minutes).
select cron.schedule('vigil-report', '0,30 * * * *', $job$select vigil.invoke('report', '{"trigger": "cron"}')$job$);

-- ─── The dashboard shows the latest reports ─────────────────────────────────────────────────
/** A report as the dashboard shows it: the facts and text, and how its delivery went. */
create function vigil.report_card(p_report vigil.reports)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
    'id', p_report.id, 'kind', p_report.kind, 'date', p_report.period_start, 'period_end', p_report.period_end,
    'time_zone', p_report.time_zone, 'generated_at', p_report.generated_at, 'summary', p_report.summary,
    'text', p_report.body_text, 'facts', p_report.facts,
    'delivery', (select jsonb_build_object('queued', count(*), 'sent', count(*) filter (where a.status = 'sent'),
                                           'failed', count(*) filter (where a.status in ('dead', 'failed')))
                   from vigil.alerts a where a.report_id = p_report.id))
$$;

-- As in 20261202002300, with the latest daily and weekly reports in place of the empty slot.
create or replace function vigil.dashboard_snapshot()
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
    'generated_at', now(),
    'operator', vigil.is_operator(),
    'settings', coalesce((
      select jsonb_agg(jsonb_build_object(
               'environment', st.environment, 'kill_switch', st.kill_switch, 'dry_run', st.dry_run,
               'slow_query_ms', st.slow_query_ms, 'updated_at', st.updated_at)
             order by array_position(array['prod', 'qa', 'dev'], st.environment::text))
        from vigil.settings st), '[]'::jsonb),
    'score', vigil.health_score(),
    'services', coalesce((
      select jsonb_agg(jsonb_build_object(
               'id', s.id, 'name', s.name, 'kind', s.kind, 'environment', s.environment,
               'description', s.description, 'status', s.status,
               'status_changed_at', s.status_changed_at, 'enabled', s.enabled,
               'heal_enabled', s.heal_enabled, 'depends_on', coalesce(to_jsonb(s.depends_on), '[]'::jsonb),
               'folded_under', fold.name, 'latency_ms', last.response_ms,
               'last_checked_at', s.last_checked_at, 'uptime_24h', u.uptime_24h,
               'uptime_7d', u.uptime_7d, 'uptime_30d', u.uptime_30d)
             order by s.name)
        from vigil.services s
        left join vigil.service_uptime u on u.service_id = s.id
        left join lateral (
          select c.response_ms from vigil.checks c
           where c.service_id = s.id order by c.checked_at desc limit 1) last on true
        left join lateral (
          select fs.name from vigil.incidents i
            join vigil.incidents f on f.id = i.folded_into
            join vigil.services fs on fs.id = f.service_id
           where i.service_id = s.id and i.status = 'open'
           order by i.opened_at desc limit 1) fold on true), '[]'::jsonb),
    'incidents', coalesce((
      select jsonb_agg(to_jsonb(x) order by x.status = 'open' desc, x.opened_at desc)
        from (
          (select i.id, i.service_id, s.name as service, i.kind, i.severity, i.status, i.title,
                  i.opened_at, i.resolved_at, i.acknowledged_at, i.acknowledged_by_name,
                  i.heal_attempts, i.escalation_level, i.folded_into
             from vigil.incidents i join vigil.services s on s.id = i.service_id
            where i.status = 'open')
          union all
          (select i.id, i.service_id, s.name, i.kind, i.severity, i.status, i.title,
                  i.opened_at, i.resolved_at, i.acknowledged_at, i.acknowledged_by_name,
                  i.heal_attempts, i.escalation_level, i.folded_into
             from vigil.incidents i join vigil.services s on s.id = i.service_id
            where i.status = 'resolved'
            order by i.resolved_at desc limit 50)) x), '[]'::jsonb),
    'approvals', coalesce((
      select jsonb_agg(jsonb_build_object(
               'action_id', a.action_id, 'incident_id', a.incident_id, 'service', s.name,
               'strategy', a.strategy, 'plan', a.plan, 'requested_at', a.requested_at,
               'expires_at', a.expires_at)
             order by a.requested_at)
        from vigil.heal_approvals a join vigil.services s on s.id = a.service_id
       where a.decision is null and a.expires_at > now()), '[]'::jsonb),
    'heal_log', coalesce((
      select jsonb_agg(to_jsonb(h) order by h.id desc)
        from (select h.id, h.created_at as at, h.incident_id, s.name as service, h.strategy,
                     h.outcome, h.attempt,
                     (vigil.heal_ladder() ->> 'max_attempts')::int as max_attempts,
                     h.detail, h.reason, h.dry_run
                from vigil.heal_actions h join vigil.services s on s.id = h.service_id
               where h.phase = 'result'
               order by h.id desc limit 100) h), '[]'::jsonb),
    'recommendations', coalesce((
      select jsonb_agg(jsonb_build_object(
               'id', r.id, 'service', s.name, 'kind', r.kind, 'title', r.title,
               'detail', r.detail, 'status', r.status, 'created_at', r.created_at)
             order by r.created_at desc)
        from (select * from vigil.recommendations where status = 'open'
               order by created_at desc limit 50) r
        left join vigil.services s on s.id = r.service_id), '[]'::jsonb),
    'control_changes', coalesce((
      select jsonb_agg(to_jsonb(c) order by c.id desc)
        from (select id, changed_at, target, field, old_value, new_value, actor_name
                from vigil.control_changes order by id desc limit 50) c), '[]'::jsonb),
    'cycle', (
      select jsonb_build_object('finished_at', c.finished_at, 'duration_ms', c.duration_ms,
                                'services', c.services, 'healthy', c.healthy,
                                'degraded', c.degraded, 'down', c.down)
        from vigil.cycles c order by c.finished_at desc limit 1),
    'maintenance_runs', coalesce((
      select jsonb_agg(to_jsonb(m) order by m.started_at desc)
        from (select id, task, cadence, attempt, status, started_at, finished_at, summary, error
                from vigil.maintenance_runs order by started_at desc limit 20) m), '[]'::jsonb),
    'daily_report', (select vigil.report_card(r) from vigil.reports r
                      where r.kind = 'daily' and r.status = 'ready' order by r.period_start desc limit 1),
    'weekly_report', (select vigil.report_card(r) from vigil.reports r
                       where r.kind = 'weekly' and r.status = 'ready' order by r.period_start desc limit 1))
$$;
comment on function vigil.dashboard_snapshot() is
  'The dashboard''s first screen in one call: settings, health score, services with latency and uptime, incidents (open first), pending approvals, heal log, recommendations, control changes, last cycle, maintenance runs, the latest daily and weekly reports. Read with the caller''s rights.';

-- ─── Access ─────────────────────────────────────────────────────────────────────────────────
alter table vigil.report_settings enable row level security;
alter table vigil.reports enable row level security;
grant select on vigil.report_settings, vigil.reports to service_role, authenticated;
grant update (time_zone, send_hour, weekly_day, daily, weekly, sla_pct, minutes_per_manual_fix,
              engineer_cost_per_hour, currency, channels, roles)
  on vigil.report_settings to service_role, authenticated;
grant insert, update, delete on vigil.reports to service_role;
create policy "Operators can read report settings" on vigil.report_settings
  for select to authenticated using ((select vigil.is_operator()));
create policy "Operators can change report settings" on vigil.report_settings
  for update to authenticated using ((select vigil.is_operator())) with check ((select vigil.is_operator()));
create policy "Operators can read reports" on vigil.reports
  for select to authenticated using ((select vigil.is_operator()));

revoke execute on function vigil.validate_report_settings() from public;
revoke execute on function vigil.due_reports(timestamptz) from public;
revoke execute on function vigil.claim_report(text, date, date, text, text, boolean) from public;
revoke execute on function vigil.report_facts(text, timestamptz, timestamptz) from public;
revoke execute on function vigil.schedules() from public;
revoke execute on function vigil.finish_report(bigint, text, jsonb, text, text, text) from public;
revoke execute on function vigil.fail_report(bigint, text, text) from public;
revoke execute on function vigil.report_card(vigil.reports) from public;
grant execute on function vigil.due_reports(timestamptz) to service_role;
grant execute on function vigil.claim_report(text, date, date, text, text, boolean) to service_role;
grant execute on function vigil.report_facts(text, timestamptz, timestamptz) to service_role, authenticated;
grant execute on function vigil.schedules() to service_role, authenticated;
grant execute on function vigil.finish_report(bigint, text, jsonb, text, text, text) to service_role;
grant execute on function vigil.fail_report(bigint, text, text) to service_role;
grant execute on function vigil.report_card(vigil.reports) to service_role, authenticated;

select vigil.publish_for_realtime(array['reports']);
select vigil.settle_privileges();
