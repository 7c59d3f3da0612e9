// The demo app's own database objects, created idempotently as the stack's superuser: an ordinary
// login role demo_app (what the app connects as, as a real app does), its schema demo, and a shop's
// tables with enough rows to be realistic. demo.orders has deliberately no index on customer_id:
// /api/orders scans it, a slow query for Vigil to find. Dev tooling only: never deployed.
import postgres from 'postgres'

export const DEMO_DB_ROLE = 'demo_app'
/** demo_app's password on the local stack only. */
export const LOCAL_DEMO_DB_PASSWORD = 'local-demo-app-password-for-development-only'

export interface DemoData {
  customers: number
  orders: number
}

export const DEFAULT_DATA: DemoData = { customers: 2_000, orders: 200_000 }

/** The same server and database as `url`, logged in as demo_app. */
export function demoDbUrl(url: string, password = LOCAL_DEMO_DB_PASSWORD): string {
  const parsed = new URL(url)
  parsed.username = DEMO_DB_ROLE
  parsed.password = encodeURIComponent(password)
  return parsed.toString()
}

/**
 * Creates what is missing (the rows only into empty tables, each in one insert … select from
 * generate_series) and returns how many rows the tables hold. Two stacks starting at once on one
 * database wait for each other (an advisory lock).
 */
export async function ensureDemoDatabase(
  superuserUrl: string,
  data: DemoData = DEFAULT_DATA,
  password = LOCAL_DEMO_DB_PASSWORD,
): Promise<DemoData> {
  const sql = postgres(superuserUrl, { max: 1, onnotice: () => {} })
  try {
    return await sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(hashtext('vigil-demo-database'))`
      await tx.unsafe(`
        do $$ begin
          if not exists (select from pg_roles where rolname = '${DEMO_DB_ROLE}') then
            create role ${DEMO_DB_ROLE} login;
          end if;
        end $$`)
      // An ordinary application role, whatever an earlier run or a hand left it with.
      await tx.unsafe(
        `alter role ${DEMO_DB_ROLE} with login nosuperuser nocreatedb nocreaterole noreplication ` +
          `nobypassrls password '${password.replaceAll("'", "''")}'`,
      )
      await tx.unsafe(`create schema if not exists demo authorization ${DEMO_DB_ROLE}`)
      await tx.unsafe(`alter schema demo owner to ${DEMO_DB_ROLE}`)
      // The tables are the app's own: created as demo_app, so it owns them.
      await tx.unsafe(`set local role ${DEMO_DB_ROLE}`)
      await tx.unsafe(`
        create table if not exists demo.customers (
          id bigint primary key,
          name text not null,
          email text not null unique,
          created_at timestamptz not null default now()
        )`)
      // No index on customer_id, on purpose (see above).
      await tx.unsafe(`
        create table if not exists demo.orders (
          id bigint generated always as identity primary key,
          customer_id bigint not null references demo.customers (id),
          amount_cents integer not null check (amount_cents >= 0),
          status text not null,
          created_at timestamptz not null default now()
        )`)
      const [{ empty }] = await tx`select not exists (select from demo.customers) as empty`
      if (empty) {
        await tx`
          insert into demo.customers (id, name, email, created_at)
          select g, 'Customer ' || g, 'customer' || g || '@example.com',
                 now() - make_interval(days => g % 365)
            from generate_series(1, ${data.customers}::int) g`
      }
      const [{ noOrders }] = await tx`select not exists (select from demo.orders) as "noOrders"`
      if (noOrders) {
        await tx`
          insert into demo.orders (customer_id, amount_cents, status, created_at)
          select 1 + (g::bigint * 7919) % ${data.customers}::int,
                 500 + (g::bigint * 104729) % 50000,
                 (array['paid', 'shipped', 'delivered', 'refunded'])[1 + g % 4],
                 now() - make_interval(secs => g * 13)
            from generate_series(1, ${data.orders}::int) g`
      }
      await tx.unsafe('reset role')
      if (empty || noOrders) await tx.unsafe('analyze demo.customers, demo.orders')
      // demo.orders is not counted: a scan of its 200,000 rows on a cold start reads it all from
      // disk, which demo-db's next check rightly calls a poor cache hit ratio. The planner's count
      // (exact after the analyze above) says enough for a banner.
      const [counts] = await tx`
        select (select count(*)::int from demo.customers) as customers,
               (select greatest(reltuples, 0)::int from pg_class where oid = 'demo.orders'::regclass) as orders`
      return { customers: counts.customers, orders: noOrders ? data.orders : counts.orders }
    })
  } finally {
    await sql.end({ timeout: 5 })
  }
}
