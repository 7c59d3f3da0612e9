-- Deployments and their impact. A deploy probe (vercel, netlify, github_actions) names what serves
-- production in each check (measurements.serving); when that changes, a deploy finished, and a row
-- of vigil.deployments records it. Once the window after it has passed, vigil.summarize_deployments
-- (the analysis runs it every minute) compares the window before with the window after on the
-- services the deploy affects: response-time p95, the share of failing checks (the error rate the
-- synthetic checks see) and memory. The spec's deployment summary — timeline, performance impact,
-- verdict — is kept with the row; a worse verdict opens a rollback recommendation, which a person
-- (or policy, later) acts on.

create table vigil.deployments (
  id bigint generated always as identity primary key,
  service_id uuid not null references vigil.services (id) on delete cascade,
  deployment_id text not null,
  previous_deployment_id text,
  version text,
  -- When the provider created it, and when Vigil first saw it serving.
  created_at timestamptz,
  finished_at timestamptz not null,
  build_seconds numeric,
  window_minutes integer not null default 15,
  summary jsonb,
  summary_text text,
  verdict text,
  summarized_at timestamptz,
  constraint deployment_id_format check (length(deployment_id) between 1 and 200),
  constraint deployment_verdict check (verdict in ('better', 'same', 'worse', 'not_enough_data')),
  constraint deployment_window check (window_minutes between 1 and 1440),
  constraint deployment_summary_is_object check (summary is null or jsonb_typeof(summary) = 'object'),
  constraint deployment_summarized check ((summarized_at is null) = (verdict is null))
);
create unique index deployments_one on vigil.deployments (service_id, deployment_id);
create index deployments_recent on vigil.deployments (finished_at desc);
comment on table vigil.deployments is
  'Each deploy Vigil saw finish (the serving deployment changed), and once its window has passed, the comparison of the metrics before and after: the deployment summary and its verdict.';

/** A check of a deploy kind whose serving deployment is not the previous check's: a deploy finished. */
create function vigil.track_deployments() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  kind vigil.service_kind;
  serving jsonb := new.measurements -> 'serving';
  before jsonb;
begin
  select s.kind into kind from vigil.services s where s.id = new.service_id;
  if kind not in ('vercel', 'netlify', 'github_actions') or jsonb_typeof(serving) is distinct from 'object'
     or coalesce(serving ->> 'id', '') = '' then
    return null;
  end if;
  select c.measurements -> 'serving' into before
    from vigil.checks c
   where c.service_id = new.service_id and c.id < new.id and c.measurements ? 'serving'
   order by c.id desc limit 1;
  -- The first check of a service only learns what serves; a deploy is a change from it.
  if before is null or jsonb_typeof(before) <> 'object' or before ->> 'id' = serving ->> 'id' then
    return null;
  end if;
  insert into vigil.deployments (service_id, deployment_id, previous_deployment_id, version, created_at,
                                 finished_at, build_seconds)
  values (new.service_id, left(serving ->> 'id', 200), left(before ->> 'id', 200), left(serving ->> 'version', 100),
          case when serving ->> 'created' ~ '^\d{4}-' then (serving ->> 'created')::timestamptz end,
          new.checked_at,
          case when jsonb_typeof(serving -> 'build_seconds') = 'number' then (serving ->> 'build_seconds')::numeric end)
  on conflict (service_id, deployment_id) do nothing;
  return null;
end
$$;
revoke execute on function vigil.track_deployments() from public;
create trigger checks_track_deployments after insert on vigil.checks
  for each row execute function vigil.track_deployments();

/**
 * The numbers of one window for the services a deploy affects: those that depend on the deploy's
 * service (directly or not), else every enabled http service of its environment.
 */
create function vigil.deployment_window(p_service_id uuid, p_from timestamptz, p_to timestamptz)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  with deploy as (select * from vigil.services where id = p_service_id),
  dependents as (
    select s.id from vigil.services s, deploy d
     where s.enabled and s.id <> d.id and p_service_id in (select x.service_id from vigil.dependencies(s.id) x)
  ),
  affected as (
    select id from dependents
    union all
    select s.id from vigil.services s, deploy d
     where not exists (select from dependents) and s.enabled and s.kind = 'http'
       and s.environment = d.environment
  ),
  checks as (
    select c.status, c.response_ms from vigil.checks c
     where c.service_id in (select id from affected) and c.checked_at >= p_from and c.checked_at < p_to
  ),
  memory as (
    select avg(m.value) as mem from vigil.metrics m
     where m.service_id in (select id from affected) and m.name = 'memory_usage_percent'
       and m.recorded_at >= p_from and m.recorded_at < p_to
  )
  select jsonb_build_object(
    'services', (select count(*) from affected),
    'checks', (select count(*) from checks),
    'p95_ms', (select round(percentile_cont(0.95) within group (order by response_ms)::numeric, 1)
                 from checks where response_ms is not null),
    'error_rate_pct', (select round(100.0 * count(*) filter (where status <> 'healthy') / nullif(count(*), 0), 1)
                         from checks),
    'memory_pct', (select round(mem::numeric, 1) from memory))
$$;
revoke execute on function vigil.deployment_window(uuid, timestamptz, timestamptz) from public;

/**
 * Summarises every deployment whose window after has passed: the windows before and after, the
 * changes, a verdict (worse: p95 up 50 % and 100 ms or more, or the error rate up 10 points or
 * more, or memory up 15 points; better: the same the other way; same otherwise; not_enough_data
 * without checks on both sides) and the summary in words. A worse one opens a rollback
 * recommendation on the deploy's service. Returns how many were summarised.
 */
create function vigil.summarize_deployments()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  d vigil.deployments;
  svc vigil.services;
  before jsonb;
  after jsonb;
  v_verdict text;
  worse text[];
  better text[];
  changes text[];
  words text;
  n integer := 0;
  b_p95 numeric; a_p95 numeric; b_err numeric; a_err numeric; b_mem numeric; a_mem numeric;
begin
  for d in
    select * from vigil.deployments
     where summarized_at is null and finished_at + make_interval(mins => window_minutes) <= now()
     order by finished_at
     for update skip locked
  loop
    select * into svc from vigil.services where id = d.service_id;
    before := vigil.deployment_window(d.service_id, d.finished_at - make_interval(mins => d.window_minutes), d.finished_at);
    after := vigil.deployment_window(d.service_id, d.finished_at, d.finished_at + make_interval(mins => d.window_minutes));
    b_p95 := (before ->> 'p95_ms')::numeric; a_p95 := (after ->> 'p95_ms')::numeric;
    b_err := (before ->> 'error_rate_pct')::numeric; a_err := (after ->> 'error_rate_pct')::numeric;
    b_mem := (before ->> 'memory_pct')::numeric; a_mem := (after ->> 'memory_pct')::numeric;
    worse := '{}'; better := '{}'; changes := '{}';
    if b_p95 is not null and a_p95 is not null then
      changes := changes || format('API p95 %s → %s ms', b_p95, a_p95);
      if a_p95 >= b_p95 * 1.5 and a_p95 - b_p95 >= 100 then worse := worse || 'slower'::text;
      elsif b_p95 >= a_p95 * 1.5 and b_p95 - a_p95 >= 100 then better := better || 'faster'::text;
      end if;
    end if;
    if b_err is not null and a_err is not null then
      changes := changes || format('error rate %s → %s %%', b_err, a_err);
      if a_err - b_err >= 10 then worse := worse || 'more errors'::text;
      elsif b_err - a_err >= 10 then better := better || 'fewer errors'::text;
      end if;
    end if;
    if b_mem is not null and a_mem is not null then
      changes := changes || format('memory %s → %s %%', b_mem, a_mem);
      if a_mem - b_mem >= 15 then worse := worse || 'more memory'::text;
      elsif b_mem - a_mem >= 15 then better := better || 'less memory'::text;
      end if;
    end if;
    v_verdict := case
      when coalesce((before ->> 'checks')::int, 0) = 0 or coalesce((after ->> 'checks')::int, 0) = 0 then 'not_enough_data'
      when cardinality(worse) > 0 then 'worse'
      when cardinality(better) > 0 then 'better'
      else 'same' end;
    words := format('Deployment %s%s of %s: %sfinished %s UTC%s. Impact over %s minutes each side: %s. Verdict: %s.',
      d.deployment_id,
      case when d.version is not null then format(' (%s)', d.version) else '' end,
      svc.name,
      case when d.created_at is not null then format('created %s UTC, ', to_char(d.created_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI')) else '' end,
      to_char(d.finished_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI'),
      case when d.build_seconds is not null then format(', built in %s s', round(d.build_seconds)) else '' end,
      d.window_minutes,
      case when cardinality(changes) > 0 then array_to_string(changes, ', ') else 'no numbers on either side' end,
      case v_verdict
        when 'worse' then format('worse (%s): consider rolling back to %s', array_to_string(worse, ', '),
                                 coalesce(d.previous_deployment_id, 'the previous deployment'))
        when 'better' then format('better (%s)', array_to_string(better, ', '))
        when 'same' then 'no significant change'
        else 'not enough data (no checks on one side)' end);
    update vigil.deployments
       set summary = jsonb_build_object('before', before, 'after', after, 'worse', to_jsonb(worse),
                                        'better', to_jsonb(better)),
           summary_text = words, verdict = v_verdict, summarized_at = now()
     where id = d.id;
    if v_verdict = 'worse' then
      perform vigil.recommend(d.service_id, null, jsonb_build_array(jsonb_build_object(
        'kind', 'rollback', 'key', d.deployment_id,
        'title', left(format('Roll back %s: deployment %s made things worse (%s)', svc.name, d.deployment_id,
                             array_to_string(worse, ', ')), 1000),
        'detail', jsonb_build_object('deployment_id', d.deployment_id, 'previous_deployment_id', d.previous_deployment_id,
                                     'summary', words))));
    end if;
    n := n + 1;
  end loop;
  return n;
end
$$;
revoke execute on function vigil.summarize_deployments() from public;
grant execute on function vigil.summarize_deployments() to service_role;

grant select, insert, update, delete on vigil.deployments to service_role;
grant select on vigil.deployments to authenticated;
alter table vigil.deployments enable row level security;
create policy "Operators can read deployments" on vigil.deployments
  for select to authenticated using ((select vigil.is_operator()));

select vigil.publish_for_realtime(array['deployments']);
select vigil.settle_privileges();
