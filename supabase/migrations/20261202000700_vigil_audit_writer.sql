-- The heal audit's writer chooses neither when nor who: the database sets created_at and actor.
-- And the chain's lock is a row lock on vigil.audit_chain, which only roles that may write the audit
-- can take (SELECT … FOR UPDATE needs UPDATE on the row): an advisory lock, which any login could
-- take, let a stranger stall every heal for 5 s at a time.

create table vigil.audit_chain (
  id boolean primary key default true,
  constraint audit_chain_one_row check (id)
);
insert into vigil.audit_chain default values;
comment on table vigil.audit_chain is
  'One row: locked by every audit write until it commits, so the chain grows one row at a time.';
grant select, update on vigil.audit_chain to service_role;
alter table vigil.audit_chain enable row level security;

create or replace function vigil.chain_heal_action() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  last record;
  waited text := current_setting('lock_timeout');
  superuser boolean := coalesce((select r.rolsuper from pg_catalog.pg_roles r where r.rolname = current_user), false);
begin
  -- Held to commit: the next writer waits (5 s at most) and then sees this row as the chain's end.
  perform pg_catalog.set_config('lock_timeout', '5s', true);
  begin
    perform from vigil.audit_chain for update;
  exception when lock_not_available then
    raise exception 'the heal audit chain has been locked by another session for over 5 s'
      using errcode = 'lock_not_available',
            hint = 'Find the session holding a lock on vigil.audit_chain in pg_locks.';
  end;
  perform pg_catalog.set_config('lock_timeout', waited, true);

  select a.seq, a.row_hash into last from vigil.heal_actions a order by a.seq desc limit 1;
  new.seq := coalesce(last.seq, 0) + 1;
  new.prev_hash := last.row_hash;
  -- The writer does not choose when nor who (a superuser, as in the tests, may backdate and name).
  if not superuser then
    new.created_at := now();
    -- 'vigil', or the name of whoever approved the heal this row records: the approval must exist,
    -- be this incident's and have been used.
    new.actor := case
      when new.actor like 'vigil (approved%' then coalesce(
        (select 'vigil (approved by ' || coalesce(a.decided_by_name, 'a human') || ')'
           from vigil.heal_approvals a
          where a.incident_id = new.incident_id and a.decision = 'approved' and a.consumed_at is not null
          order by a.consumed_at desc limit 1),
        'vigil')
      else 'vigil' end;
  end if;
  new.row_hash := vigil.heal_action_hash(new);
  return new;
end
$$;
revoke execute on function vigil.chain_heal_action() from public;

select vigil.settle_privileges();
