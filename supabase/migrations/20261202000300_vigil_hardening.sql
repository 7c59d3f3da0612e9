-- Security hardening, first part: the schema-validation helper is the service role's and the
-- owner's alone. An operator reads tables through RLS; running Vigil's machinery is not theirs.
revoke execute on function vigil.json_schema_errors(jsonb, jsonb, text) from authenticated;

-- ─── Approvals bound to the plan ────────────────────────────────────────────────────────────
-- An approval covers one plan: the digest of what it would act on, taken when it was asked. It is
-- used once, before it expires, and only if a fresh plan still acts on exactly that.
alter table vigil.heal_approvals
  add column plan_digest text,
  add column consumed_at timestamptz,
  add column decided_by_name text,
  add constraint heal_approval_digest check (plan_digest is null or plan_digest ~ '^[0-9a-f]{64}$'),
  add constraint heal_approval_consumed_when_approved check (consumed_at is null or decision = 'approved');
comment on column vigil.heal_approvals.plan_digest is
  'SHA-256 of the planned strategy, action and target: the approval holds only for a plan that matches.';
comment on column vigil.heal_approvals.consumed_at is 'When the approved heal ran: an approval is used once.';
comment on column vigil.heal_approvals.decided_by_name is
  'Who decided, in words: the operator''s email, or the contact whose alert link was followed.';

/**
 * Uses an approval for this plan, once: null when it held (and is now consumed), otherwise why not.
 * The check and the consumption are one statement, so two workers cannot both use it.
 */
create function vigil.consume_approval(p_action_id uuid, p_incident_id bigint, p_strategy text, p_digest text)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  a vigil.heal_approvals;
begin
  update vigil.heal_approvals set consumed_at = now()
   where action_id = p_action_id and incident_id = p_incident_id and strategy = p_strategy
     and decision = 'approved' and consumed_at is null and expires_at > now() and plan_digest = p_digest;
  if found then
    return null;
  end if;
  select * into a from vigil.heal_approvals
   where action_id = p_action_id and incident_id = p_incident_id and strategy = p_strategy;
  return case
    when not found then 'no such approval for this incident and strategy'
    when a.decision is distinct from 'approved' then 'it was not approved'
    when a.consumed_at is not null then format('it was already used at %s', a.consumed_at)
    when a.expires_at <= now() then format('it expired at %s', a.expires_at)
    else 'the situation changed since it was approved: the plan is not the one approved'
  end;
end
$$;
revoke execute on function vigil.consume_approval(uuid, bigint, text, text) from public;
grant execute on function vigil.consume_approval(uuid, bigint, text, text) to service_role;

-- Who decided, in words, from the operator's JWT; a link decision names its recipient itself.
create or replace function vigil.decide_heal_approval() returns trigger
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
  new.decided_by_name := case when new.decision is null then null
                              else coalesce(nullif(auth.jwt() ->> 'email', ''), new.decided_by_name, session_user::text) end;
  if new.decision = 'approved' then
    perform vigil.invoke('auto-heal', jsonb_build_object('incident_id', new.incident_id, 'approval', new.action_id));
  end if;
  return new;
end
$$;
revoke execute on function vigil.decide_heal_approval() from public;

-- ─── The audit chain's lock is waited for a bounded time; the database sets the time ─────────
-- One session holding the chain's advisory lock (a stuck transaction, or someone on purpose) must
-- not freeze every heal: after 5 s the write fails with lock_not_available, and auto-heal records
-- the failure and pages, instead of hanging.
create or replace function vigil.chain_heal_action() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  last record;
  deadline timestamptz := clock_timestamp() + interval '5 seconds';
begin
  -- Held to commit: the next writer waits and then sees this row as the end of the chain.
  while not pg_try_advisory_xact_lock(hashtext('vigil.heal_actions chain')) loop
    if clock_timestamp() > deadline then
      raise exception 'the heal audit chain has been locked by another session for over 5 s'
        using errcode = 'lock_not_available',
              hint = 'Find the session holding advisory lock hashtext(''vigil.heal_actions chain'') in pg_locks.';
    end if;
    perform pg_sleep(0.01);
  end loop;
  select a.seq, a.row_hash into last from vigil.heal_actions a order by a.seq desc limit 1;
  new.seq := coalesce(last.seq, 0) + 1;
  new.prev_hash := last.row_hash;
  -- The writer does not choose when: the database does (a superuser, as in the tests, may backdate).
  if not coalesce((select r.rolsuper from pg_catalog.pg_roles r where r.rolname = current_user), false) then
    new.created_at := now();
  end if;
  new.row_hash := vigil.heal_action_hash(new);
  return new;
end
$$;
revoke execute on function vigil.chain_heal_action() from public;

-- ─── The audit chain's head, anchored ───────────────────────────────────────────────────────
-- After each audit row, auto-heal stores an anchor: HMAC-SHA256 of the row's seq and hash with
-- VIGIL_AUDIT_SECRET, a key the database never sees. Rewriting the chain after an edit (every hash
-- recomputed) breaks the anchors, which nobody without the key can remake; each health-check cycle
-- checks the newest ones and pages on a mismatch. The newest anchor also goes out with the dead
-- man's switch ping, so removing the newest rows shows against that outside record.
create table vigil.audit_anchors (
  seq bigint not null,
  row_hash text not null,
  mac text not null,
  created_at timestamptz not null default now(),
  -- (seq, mac): a bogus anchor written first cannot keep the genuine one out.
  primary key (seq, mac),
  constraint audit_anchor_hash check (row_hash ~ '^[0-9a-f]{64}$'),
  constraint audit_anchor_mac check (mac ~ '^[0-9a-f]{64}$')
);
comment on table vigil.audit_anchors is
  'HMAC (VIGIL_AUDIT_SECRET, outside the database) of each audit row''s seq and hash: a rewritten chain no longer matches.';

create trigger audit_anchors_append_only before update or delete on vigil.audit_anchors
  for each row execute function vigil.reject_audit_change();
create trigger audit_anchors_no_truncate before truncate on vigil.audit_anchors
  for each statement execute function vigil.reject_audit_change();
alter table vigil.audit_anchors enable always trigger audit_anchors_append_only;
alter table vigil.audit_anchors enable always trigger audit_anchors_no_truncate;

grant select, insert on vigil.audit_anchors to service_role;
grant select on vigil.audit_anchors to authenticated;
alter table vigil.audit_anchors enable row level security;
create policy "Operators can read audit anchors" on vigil.audit_anchors
  for select to authenticated using ((select vigil.is_operator()));
