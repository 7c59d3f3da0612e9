// Schemas that are not the application's: the catalogs aside (pg_*), Vigil's own and those
// Supabase manages. The index advisor never indexes them and the index review never judges them;
// vigil.unindexable_schema holds the same list for SQL.

export const MANAGED_SCHEMAS: ReadonlySet<string> = new Set([
  'information_schema',
  'vigil',
  'extensions',
  'auth',
  'storage',
  'realtime',
  '_realtime',
  'supabase_functions',
  'supabase_migrations',
  'graphql',
  'graphql_public',
  'pgsodium',
  'pgsodium_masks',
  'vault',
  'net',
  'cron',
  'pgbouncer',
  '_analytics',
  'pgtle',
])
