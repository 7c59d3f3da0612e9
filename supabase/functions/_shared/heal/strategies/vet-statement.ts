// Before the index advisor plans someone else's statement (from pg_stat_statements), it decides,
// on the real parse tree and the catalog, whether planning could run code that is not Postgres's
// own, and as whom to plan it. Planning can run code: the planner folds immutable functions and
// operators with constant arguments, inlines views (and their functions) and adds row-security
// quals. So a statement that names a function, operator or type outside pg_catalog, or reads a view
// or a table whose row-security policies call one, is never planned. The rest is planned under
// SET LOCAL ROLE: the statement's own role when this session may take it (and it is not a
// superuser), otherwise the read-only vigil_explainer for a plain SELECT; never as the agent.
import type postgres from 'postgres'
import {
  type QualifiedName,
  type StatementShape,
  statementShape,
  StatementShapeError,
} from '../../probes/statement-shape.ts'

type Sql = postgres.Sql<any>

/** The read-only NOLOGIN role other people's SELECTs are planned as (a migration creates it). */
export const EXPLAINER_ROLE = 'vigil_explainer'

export type Vetted =
  | {
    ok: true
    kind: 'select' | 'update' | 'delete'
    /** A SELECT that writes and locks nothing: the only kind ever executed (EXPLAIN ANALYZE). */
    plainSelect: boolean
    /** The role to SET LOCAL ROLE to around its EXPLAIN. */
    role: string
  }
  | { ok: false; reason: string }

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
  // As whom: its own role when this session may take it, else the explainer for a plain SELECT.
  const [who] = await sql<{ own_role: string | null; explainer: boolean }[]>`
    /* vigil:add-missing-index */
    select (select r.rolname::text from pg_roles r
            where r.rolname = ${owner} and not r.rolsuper and r.rolname <> session_user
              and pg_has_role(session_user, r.oid, 'MEMBER')) as own_role,
           coalesce((select pg_has_role(session_user, r.oid, 'MEMBER') from pg_roles r
                     where r.rolname = ${EXPLAINER_ROLE}), false) as explainer`
  const role = who.own_role ?? (shape.plainSelect && who.explainer ? EXPLAINER_ROLE : null)
  if (role === null) {
    const what = shape.kind === 'select' ? 'a SELECT that writes or locks rows' : `an ${shape.kind}`
    return {
      ok: false,
      reason: shape.plainSelect
        ? `no role to plan it as: neither its own (${owner ?? 'unknown'}) nor ${EXPLAINER_ROLE}`
        : `${what} is planned only as its own role (${
          owner ?? 'unknown'
        }), which this session may not take`,
    }
  }
  const foreign = await foreignCode(sql, shape, role)
  if (foreign.length > 0) {
    return {
      ok: false,
      reason: `planning it could run code outside pg_catalog: ${foreign.slice(0, 3).join(', ')}`,
    }
  }
  return { ok: true, kind: shape.kind, plainSelect: shape.plainSelect, role }
}

/**
 * What in the statement is not Postgres's own: named functions, operators and types outside
 * pg_catalog (an unqualified name counts when any other schema has one of that name), and views or
 * row-security policies (those that apply to `role`) calling a function outside pg_catalog.
 */
async function foreignCode(sql: Sql, shape: StatementShape, role: string): Promise<string[]> {
  const names = (list: QualifiedName[]) => JSON.stringify(list)
  const [row] = await sql<{ foreign: string[] }[]>`/* vigil:add-missing-index */
    with fn as (
      select f.schema, f.name from jsonb_to_recordset(${
    names(shape.functions)
  }::text::jsonb) f(schema text, name text)
    ), op as (
      select o.schema, o.name from jsonb_to_recordset(${
    names(shape.operators)
  }::text::jsonb) o(schema text, name text)
    ), ty as (
      select t.schema, t.name from jsonb_to_recordset(${
    names(shape.types)
  }::text::jsonb) t(schema text, name text)
    ), rel as (
      select case when r.schema is null then to_regclass(quote_ident(r.name))
                  else to_regclass(quote_ident(r.schema) || '.' || quote_ident(r.name)) end as oid
      from jsonb_to_recordset(${names(shape.relations)}::text::jsonb) r(schema text, name text)
    ), foreign_names as (
      select 'function ' || coalesce(fn.schema || '.', '') || fn.name || '()' as what from fn
      where (fn.schema is not null and fn.schema <> 'pg_catalog')
         or (fn.schema is null and exists (select from pg_proc p where p.proname = fn.name
                                            and p.pronamespace <> 'pg_catalog'::regnamespace))
      union all
      select 'operator ' || coalesce(op.schema || '.', '') || op.name from op
      where (op.schema is not null and op.schema <> 'pg_catalog')
         or (op.schema is null and exists (select from pg_operator o where o.oprname = op.name
                                            and o.oprnamespace <> 'pg_catalog'::regnamespace))
      union all
      select 'type ' || coalesce(ty.schema || '.', '') || ty.name from ty
      where (ty.schema is not null and ty.schema <> 'pg_catalog')
         or (ty.schema is null and exists (select from pg_type t where t.typname = ty.name
                                            and t.typnamespace <> 'pg_catalog'::regnamespace))
      union all
      select case when d.classid = 'pg_rewrite'::regclass then 'view ' else 'a row-security policy of ' end
             || rel.oid::regclass::text || ' (calls ' || p.oid::regprocedure::text || ')'
      from rel
      join pg_class c on c.oid = rel.oid
      join pg_depend d on d.refclassid = 'pg_proc'::regclass
                      and ((d.classid = 'pg_rewrite'::regclass
                            and d.objid in (select w.oid from pg_rewrite w where w.ev_class = rel.oid))
                        or (d.classid = 'pg_policy'::regclass and c.relrowsecurity
                            and d.objid in (
                              select pol.oid from pg_policy pol
                              where pol.polrelid = rel.oid
                                and (0::oid = any (pol.polroles)
                                     or exists (select from unnest(pol.polroles) pr
                                                where pg_has_role(${role}, pr, 'MEMBER'))))))
      join pg_proc p on p.oid = d.refobjid and p.pronamespace <> 'pg_catalog'::regnamespace
    )
    select coalesce((select jsonb_agg(distinct what) from foreign_names), '[]') as foreign`
  return row.foreign
}
