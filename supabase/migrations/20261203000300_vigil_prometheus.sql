-- Prometheus export (the metrics function): each service's probe latency as a cumulative
-- histogram, counted as checks arrive by the statement trigger that already rolls checks up by the
-- hour, so a scrape reads one row a service and the counters only ever grow (as Prometheus'
-- counters must: a rate over them is the probes' latency distribution over any window).
create table vigil.probe_latency (
  service_id uuid primary key references vigil.services (id) on delete cascade,
  -- Checks whose response took at most this many milliseconds (cumulative, as histograms are).
  le_25 bigint not null default 0,
  le_50 bigint not null default 0,
  le_100 bigint not null default 0,
  le_250 bigint not null default 0,
  le_500 bigint not null default 0,
  le_1000 bigint not null default 0,
  le_2500 bigint not null default 0,
  le_5000 bigint not null default 0,
  le_10000 bigint not null default 0,
  count bigint not null default 0,
  sum_ms double precision not null default 0,
  updated_at timestamptz not null default now(),
  constraint probe_latency_cumulative check (
    0 <= le_25 and le_25 <= le_50 and le_50 <= le_100 and le_100 <= le_250 and le_250 <= le_500
    and le_500 <= le_1000 and le_1000 <= le_2500 and le_2500 <= le_5000 and le_5000 <= le_10000
    and le_10000 <= count and sum_ms >= 0)
);
comment on table vigil.probe_latency is
  'Each service''s probe latency since Vigil first checked it, as cumulative histogram buckets (ms): what /functions/v1/metrics serves as vigil_probe_duration_seconds.';

create or replace function vigil.rollup_checks() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  insert into vigil.check_rollups as r
    (service_id, bucket, checks, healthy, degraded, down, response_ms_sum, response_ms_count, response_ms_max)
  select service_id, date_trunc('hour', checked_at), count(*),
         count(*) filter (where status = 'healthy'),
         count(*) filter (where status = 'degraded'),
         count(*) filter (where status = 'down'),
         coalesce(sum(response_ms), 0), count(response_ms), max(response_ms)
    from new_checks
   group by 1, 2
   -- Rows locked in one order by every writer: two cycles recording the same services at once
   -- wait for each other instead of deadlocking.
   order by 1, 2
  on conflict (service_id, bucket) do update
    set checks = r.checks + excluded.checks,
        healthy = r.healthy + excluded.healthy,
        degraded = r.degraded + excluded.degraded,
        down = r.down + excluded.down,
        response_ms_sum = r.response_ms_sum + excluded.response_ms_sum,
        response_ms_count = r.response_ms_count + excluded.response_ms_count,
        response_ms_max = greatest(r.response_ms_max, excluded.response_ms_max);
  insert into vigil.probe_latency as p
    (service_id, le_25, le_50, le_100, le_250, le_500, le_1000, le_2500, le_5000, le_10000, count, sum_ms)
  select service_id,
         count(*) filter (where response_ms <= 25), count(*) filter (where response_ms <= 50),
         count(*) filter (where response_ms <= 100), count(*) filter (where response_ms <= 250),
         count(*) filter (where response_ms <= 500), count(*) filter (where response_ms <= 1000),
         count(*) filter (where response_ms <= 2500), count(*) filter (where response_ms <= 5000),
         count(*) filter (where response_ms <= 10000), count(*), sum(response_ms)
    from new_checks
   where response_ms is not null
   group by 1
   order by 1
  on conflict (service_id) do update
    set le_25 = p.le_25 + excluded.le_25, le_50 = p.le_50 + excluded.le_50,
        le_100 = p.le_100 + excluded.le_100, le_250 = p.le_250 + excluded.le_250,
        le_500 = p.le_500 + excluded.le_500, le_1000 = p.le_1000 + excluded.le_1000,
        le_2500 = p.le_2500 + excluded.le_2500, le_5000 = p.le_5000 + excluded.le_5000,
        le_10000 = p.le_10000 + excluded.le_10000, count = p.count + excluded.count,
        sum_ms = p.sum_ms + excluded.sum_ms, updated_at = now();
  return null;
end
$$;

grant select, insert, update, delete on vigil.probe_latency to service_role;
grant select on vigil.probe_latency to authenticated;
alter table vigil.probe_latency enable row level security;
create policy "Operators can read probe latency" on vigil.probe_latency
  for select to authenticated using ((select vigil.is_operator()));

-- What has been checked before this migration starts from its checks still kept (30 days).
insert into vigil.probe_latency
  (service_id, le_25, le_50, le_100, le_250, le_500, le_1000, le_2500, le_5000, le_10000, count, sum_ms)
select service_id,
       count(*) filter (where response_ms <= 25), count(*) filter (where response_ms <= 50),
       count(*) filter (where response_ms <= 100), count(*) filter (where response_ms <= 250),
       count(*) filter (where response_ms <= 500), count(*) filter (where response_ms <= 1000),
       count(*) filter (where response_ms <= 2500), count(*) filter (where response_ms <= 5000),
       count(*) filter (where response_ms <= 10000), count(*), sum(response_ms)
  from vigil.checks
 where response_ms is not null
 group by service_id;

/**
 * Everything /functions/v1/metrics exposes, in one read: each service (status, 24-hour uptime, the
 * latest check's latency, the latency histogram), open incidents by severity, heal results by
 * strategy and outcome, alerts by channel and status, and the latest cycle.
 */
create function vigil.prometheus_snapshot() returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'services', coalesce((
      select jsonb_agg(jsonb_build_object(
               'name', s.name, 'kind', s.kind, 'environment', s.environment, 'status', s.status,
               'enabled', s.enabled,
               'uptime_24h', (select round(100.0 * sum(r.checks - r.down) / nullif(sum(r.checks), 0), 3)
                                from vigil.check_rollups r
                               where r.service_id = s.id and r.bucket >= date_trunc('hour', now() - interval '24 hours')),
               'last_response_ms', (select c.response_ms from vigil.checks c
                                     where c.service_id = s.id order by c.checked_at desc limit 1),
               'latency', case when p.service_id is null then null
                               else jsonb_build_object(
                                 'buckets', jsonb_build_array(p.le_25, p.le_50, p.le_100, p.le_250, p.le_500,
                                                              p.le_1000, p.le_2500, p.le_5000, p.le_10000),
                                 'count', p.count, 'sum_ms', p.sum_ms) end)
             order by s.name)
        from vigil.services s left join vigil.probe_latency p on p.service_id = s.id), '[]'),
    'incidents_open', coalesce((
      select jsonb_object_agg(severity, n)
        from (select severity::text, count(*) as n from vigil.incidents where status = 'open' group by 1) i), '{}'),
    'heals', coalesce((
      select jsonb_agg(jsonb_build_object('strategy', strategy, 'outcome', outcome, 'n', n) order by strategy, outcome)
        from (select strategy, outcome::text as outcome, count(*) as n from vigil.heal_actions
               where phase = 'result' group by 1, 2) h), '[]'),
    'alerts', coalesce((
      select jsonb_agg(jsonb_build_object('channel', channel, 'status', status, 'n', n) order by channel, status)
        from (select channel::text as channel, status::text as status, count(*) as n from vigil.alerts group by 1, 2) a), '[]'),
    'cycle', (select jsonb_build_object('finished_at', extract(epoch from c.finished_at), 'duration_ms', c.duration_ms,
                                        'services', c.services)
                from vigil.cycles c order by c.finished_at desc limit 1));
$$;
revoke execute on function vigil.prometheus_snapshot() from public;
grant execute on function vigil.prometheus_snapshot() to service_role;

select vigil.settle_privileges();
