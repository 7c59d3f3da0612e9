// extension_versions (weekly): the spec's "security patches only" — installed extensions with a
// newer version available on this server (ALTER EXTENSION … UPDATE applies it), and the Postgres
// version, so the report can say what is behind. Vigil updates nothing itself.
import type { MaintenanceTask, TaskResult } from '../types.ts'

interface Outdated {
  extension: string
  installed: string
  available: string
  schema: string
}

export const extensionVersions: MaintenanceTask = {
  name: 'extension_versions',
  cadence: 'weekly',
  description:
    'Lists installed extensions with a newer version available on the server, and the Postgres version.',
  async run({ sql }): Promise<TaskResult> {
    const [{ version, version_num }] = await sql<{ version: string; version_num: number }[]>`
      select current_setting('server_version') as version,
             current_setting('server_version_num')::int as version_num`
    const outdated = await sql<Outdated[]>`
      select e.extname as extension, e.extversion as installed, a.default_version as available,
             n.nspname as schema
        from pg_extension e
        join pg_available_extensions a on a.name = e.extname
        join pg_namespace n on n.oid = e.extnamespace
       where a.default_version is not null and a.default_version <> e.extversion
       order by e.extname`
    const findings = [
      { postgres: version, version_num },
      ...outdated.map((o) => ({
        ...o,
        fix: `alter extension ${
          quoteIdent(o.extension)
        } update;  -- ${o.installed} → ${o.available}`,
      })),
    ]
    return {
      status: 'succeeded',
      summary: outdated.length === 0
        ? `Postgres ${version}; every extension is at the newest version this server has`
        : `Postgres ${version}; ${outdated.length} extension(s) behind: ${
          outdated.map((o) => `${o.extension} ${o.installed} → ${o.available}`).join(', ')
        }`,
      findings,
    }
  },
}

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`
}
