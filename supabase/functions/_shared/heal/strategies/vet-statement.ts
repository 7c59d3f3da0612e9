// Before the index advisor plans someone else's statement (from pg_stat_statements), it decides,
// on the real parse tree and the catalog, whether planning could run code that is not Postgres's
// own, and as whom to plan it. Planning runs code: the planner folds immutable functions and
// operators with constant arguments, inlines views (and SQL functions), adds row-security quals
// and reads index expressions, CHECK constraints and extended statistics of every table it plans.
// So a statement is never planned when anything it names, or anything reachable from the
// relations it reads (views, over views; their policies, indexes, constraints, statistics, column
// types and those types' casts), is a function, operator, type or cast outside pg_catalog and not
// part of an installed extension. The rest is planned under SET LOCAL ROLE: the statement's own
// role when this session may take it and it is an ordinary one, otherwise pg_read_all_data (read
// only, reached through vigil_explainer) for a plain SELECT; never as the agent. The check is
// repeated inside the planning transaction, under that role, with the relations locked, so
// nothing can change between the check and the plan.
import type postgres from 'postgres'
import {
  type StatementShape,
  statementShape,
  StatementShapeError,
} from '../../probes/statement-shape.ts'

type Sql = postgres.Sql<any>

/**
 * The read-only role other people's SELECTs are planned as. The agent reaches it through the
 * NOLOGIN vigil_explainer without inheriting it: it reads application data only under SET ROLE.
 */
export const EXPLAINER_ROLE = 'pg_read_all_data'

export type Vetted =
  | {
    ok: true
    kind: 'select' | 'update' | 'delete'
    shape: StatementShape
    /** The role to SET LOCAL ROLE to around its EXPLAIN. */
    role: string
    /**
     * Whether it may be executed (verify's timed EXPLAIN ANALYZE): a plain SELECT (nothing written,
     * nothing locked) calling no volatile function (no pg_notify, advisory lock, set_config…).
     */
    timeable: boolean
  }
  | { ok: false; reason: string }

/** What vetting found in the catalog for one statement, planned as one role. */
export interface CatalogFindings {
  /** Code outside pg_catalog planning could run, in words; empty when there is none. */
  foreign: string[]
  /** Volatile functions the statement calls: it is never executed. */
  volatile: string[]
  /** The relations it names, as regclass text, for LOCK TABLE. */
  relations: string[]
}

/** Whether (and as whom) the statement `query`, run by `owner` (a role name), may be planned. */
export async function vetStatement(sql: Sql, query: string, owner: string | null): Promise<Vetted> {
  let shape
  try {
    shape = await statementShape(query)
  } catch (err) {
    if (err instanceof StatementShapeError) return { ok: false, reason: err.message }
    throw err
  }
  if (shape.kind !== 'select' && shape.kind !== 'update' && shape.kind !== 'delete') {
    return { ok: false, reason: `a${shape.kind === 'insert' ? 'n' : ''} ${shape.kind} statement` }
  }
  // Its own role only when it is an ordinary one (no superuser, BYPASSRLS, CREATEROLE, CREATEDB or
  // replication, none of Supabase's or Postgres's own) that this session may SET ROLE to.
  const [who] = await sql<{ own_role: string | null; explainer: boolean }[]>`
    /* vigil:add-missing-index */
    with may_set as (
      select r.oid, r.rolname,
             case when current_setting('server_version_num')::int >= 160000
                  then pg_has_role(session_user, r.oid, 'SET')
                  else pg_has_role(session_user, r.oid, 'MEMBER') end as ok
      from pg_roles r
    )
    select (select r.rolname::text from pg_roles r join may_set m on m.oid = r.oid
            where r.rolname = ${owner} and m.ok and r.rolname <> session_user
              and not (r.rolsuper or r.rolbypassrls or r.rolcreaterole or r.rolcreatedb or r.rolreplication)
              and r.rolname !~ '^(pg_|supabase_)'
              and r.rolname not in ('postgres', 'authenticator', 'vigil_owner', 'vigil_agent', 'vigil_explainer')
           ) as own_role,
           coalesce((select m.ok from may_set m where m.rolname = ${EXPLAINER_ROLE}), false) as explainer`
  const role = who.own_role ?? (shape.plainSelect && who.explainer ? EXPLAINER_ROLE : null)
  if (role === null) {
    const what = shape.kind === 'select' ? 'a SELECT that writes or locks rows' : `an ${shape.kind}`
    return {
      ok: false,
      reason: shape.plainSelect
        ? `no role to plan it as: neither its own (${owner ?? 'unknown'}) nor ${EXPLAINER_ROLE}`
        : `${what} is planned only as its own role (${
          owner ?? 'unknown'
        }), when that is an ordinary role this session may take`,
    }
  }
  const found = await catalogFindings(sql, shape, role)
  const refusal = foreignRefusal(found)
  if (refusal) return { ok: false, reason: refusal }
  return {
    ok: true,
    kind: shape.kind,
    shape,
    role,
    timeable: shape.plainSelect && found.volatile.length === 0,
  }
}

/** The words for a statement whose planning could run foreign code, or null. */
export function foreignRefusal(found: CatalogFindings): string | null {
  if (found.foreign.length === 0) return null
  return `planning it could run code outside pg_catalog: ${found.foreign.slice(0, 3).join(', ')}`
}

/**
 * Everything planning the statement as `role` could run that is not Postgres's own (pg_catalog) or
 * an installed extension's, the volatile functions it calls, and the relations it names.
 */
export async function catalogFindings(
  sql: Sql,
  shape: StatementShape,
  role: string,
): Promise<CatalogFindings> {
  const names = (list: unknown) => JSON.stringify(list)
  // Postgres's own, or a member of an installed extension (deptype 'e').
  const own = (alias: string, catalog: string, namespace: string) =>
    sql.unsafe(`(${alias}.${namespace} = 'pg_catalog'::regnamespace or exists (
      select from pg_depend e where e.classid = '${catalog}'::regclass and e.objid = ${alias}.oid
        and e.deptype = 'e'))`)
  const [row] = await sql<CatalogFindings[]>`/* vigil:add-missing-index */
    with recursive
    fn as (select f.schema, f.name from jsonb_to_recordset(${
    names(shape.functions)
  }::text::jsonb) f(schema text, name text)),
    op as (select o.schema, o.name from jsonb_to_recordset(${
    names(shape.operators)
  }::text::jsonb) o(schema text, name text)),
    ty as (select t.schema, t.name from jsonb_to_recordset(${
    names(shape.types)
  }::text::jsonb) t(schema text, name text)),
    col as (select c.name from jsonb_array_elements_text(${
    names(shape.columns)
  }::text::jsonb) c(name)),
    named as (
      -- A qualified name is looked up in the catalog: to_regclass would need USAGE on its schema,
      -- which the agent need not have (the app's own schema); the plan runs as a role that has it.
      select case when r.schema is null then to_regclass(quote_ident(r.name))
                  else (select c.oid::regclass from pg_catalog.pg_class c
                          join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                         where n.nspname = r.schema and c.relname = r.name) end as oid
      from jsonb_to_recordset(${names(shape.relations)}::text::jsonb) r(schema text, name text)
    ),
    -- The relations read, and those the views among them read, over views.
    rels(oid) as (
      select oid from named where oid is not null
      union
      select d.refobjid from rels r
      join pg_rewrite w on w.ev_class = r.oid
      join pg_depend d on d.classid = 'pg_rewrite'::regclass and d.objid = w.oid
                      and d.refclassid = 'pg_class'::regclass
    ),
    -- Types: named in the statement, and of every column read.
    types(oid) as (
      select y.oid from ty join pg_type y on y.typname = ty.name
      join pg_namespace n on n.oid = y.typnamespace where ty.schema is null or n.nspname = ty.schema
      union
      select a.atttypid from rels r join pg_attribute a on a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped
    ),
    -- What planning evaluates around those relations and types, and where it hangs.
    attached(classid, objid, place) as (
      select 'pg_rewrite'::regclass::oid, w.oid,
             case when c.relkind = 'v' then 'view ' else 'a rule of ' end || c.oid::regclass::text
      from rels r join pg_class c on c.oid = r.oid join pg_rewrite w on w.ev_class = r.oid
      union all
      select 'pg_policy'::regclass::oid, pol.oid, 'a row-security policy of ' || c.oid::regclass::text
      from rels r join pg_class c on c.oid = r.oid and c.relrowsecurity
      join pg_policy pol on pol.polrelid = r.oid
      where 0::oid = any (pol.polroles)
         or exists (select from unnest(pol.polroles) pr where pg_has_role(${role}, pr, 'MEMBER'))
      union all
      select 'pg_class'::regclass::oid, i.indexrelid, 'an index of ' || r.oid::regclass::text
      from rels r join pg_index i on i.indrelid = r.oid
      union all
      select 'pg_constraint'::regclass::oid, k.oid, 'a constraint of ' || r.oid::regclass::text
      from rels r join pg_constraint k on k.conrelid = r.oid
      union all
      select 'pg_statistic_ext'::regclass::oid, x.oid, 'statistics of ' || r.oid::regclass::text
      from rels r join pg_statistic_ext x on x.stxrelid = r.oid
      union all
      select 'pg_constraint'::regclass::oid, k.oid, 'a constraint of type ' || t.oid::regtype::text
      from types t join pg_constraint k on k.contypid = t.oid
    ),
    refs as (
      select d.refclassid, d.refobjid, t.place from attached t
      join pg_depend d on d.classid = t.classid and d.objid = t.objid
    ),
    foreign_code(what) as (
      select 'function ' || p.oid::regprocedure::text
      from fn join pg_proc p on p.proname = fn.name
      join pg_namespace n on n.oid = p.pronamespace
      where (fn.schema is null or n.nspname = fn.schema) and not ${
    own('p', 'pg_proc', 'pronamespace')
  }
      union all
      select 'function ' || p.oid::regprocedure::text || ' (written as a column)'
      from col join pg_proc p on p.proname = col.name and p.pronargs = 1
      where not ${own('p', 'pg_proc', 'pronamespace')}
      union all
      select 'operator ' || o.oid::regoperator::text
      from op join pg_operator o on o.oprname = op.name
      join pg_namespace n on n.oid = o.oprnamespace
      where (op.schema is null or n.nspname = op.schema) and not ${
    own('o', 'pg_operator', 'oprnamespace')
  }
      union all
      select 'type ' || y.oid::regtype::text || ' (its input or output function)'
      from types t join pg_type y on y.oid = t.oid
      join pg_proc p on p.oid in (y.typinput, y.typoutput)
      where not ${own('p', 'pg_proc', 'pronamespace')}
      union all
      select 'a cast from ' || format_type(k.castsource, null) || ' to ' || format_type(k.casttarget, null)
      from pg_cast k join pg_proc p on p.oid = k.castfunc
      where (k.castsource in (select oid from types) or k.casttarget in (select oid from types))
        and not ${own('p', 'pg_proc', 'pronamespace')}
      union all
      select refs.place || ' (calls ' || p.oid::regprocedure::text || ')'
      from refs join pg_proc p on refs.refclassid = 'pg_proc'::regclass and p.oid = refs.refobjid
      where not ${own('p', 'pg_proc', 'pronamespace')}
      union all
      select refs.place || ' (uses operator ' || o.oid::regoperator::text || ')'
      from refs join pg_operator o on refs.refclassid = 'pg_operator'::regclass and o.oid = refs.refobjid
      where not ${own('o', 'pg_operator', 'oprnamespace')}
    )
    select coalesce((select jsonb_agg(distinct what) from foreign_code), '[]') as foreign,
           coalesce((select jsonb_agg(distinct p.proname)
                     from fn join pg_proc p on p.proname = fn.name
                     join pg_namespace n on n.oid = p.pronamespace
                     where (fn.schema is null or n.nspname = fn.schema)
                       and (p.provolatile = 'v' or p.proname ~ '_to_xml')), '[]') as volatile,
           coalesce((select jsonb_agg(distinct oid::regclass::text) from named where oid is not null), '[]')
             as relations`
  return row
}
