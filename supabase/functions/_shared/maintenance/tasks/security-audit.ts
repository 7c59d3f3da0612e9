// security_audit (monthly): Supabase's database linter, in SQL (vigil.security_lints): RLS off in
// exposed schemas, policies letting anon write, definer functions with a mutable search_path,
// extensions in public, unindexed foreign keys, tables without a primary key, views exposing
// auth.users, per-row auth.uid() in policies. Each lint is one incident per watched database,
// updated as its objects change and resolved when none is left (vigil.apply_security_lints).
import type { MaintenanceTask, TaskResult } from '../types.ts'

/** Schemas the API exposes (Supabase's default is public); VIGIL_EXPOSED_SCHEMAS overrides. */
export function exposedSchemas(env: (name: string) => string | undefined): string[] {
  const raw = env('VIGIL_EXPOSED_SCHEMAS')?.trim()
  if (!raw) return ['public']
  return raw.split(',').map((s) => s.trim()).filter((s) => /^[a-z_][a-z0-9_$]{0,62}$/.test(s))
}

interface Lint {
  lint: string
  severity: 'info' | 'warning' | 'critical'
  object: string
  title: string
  detail: Record<string, unknown>
  remediation: string
}

export const securityAudit: MaintenanceTask = {
  name: 'security_audit',
  cadence: 'monthly',
  description:
    'Lints the project database as splinter does and tracks each kind of finding as an incident with its fixes, resolved when fixed.',
  async run({ sql, env }): Promise<TaskResult> {
    // The project's own database: the postgres services that watch it (no connection_secret).
    const services = await sql<{ id: string; name: string }[]>`
      select id, name from vigil.services
       where kind = 'postgres' and enabled and not (config ? 'connection_secret')
       order by name`
    if (services.length === 0) {
      return {
        status: 'not_applicable',
        summary: 'no enabled postgres service watches the project database; add one to audit it',
      }
    }
    const schemas = exposedSchemas(env)
    // The list as one text parameter: a fresh connection may not know the text[] type yet.
    const lints = await sql<Lint[]>`
      select lint, severity::text as severity, object, title, detail, remediation
        from vigil.security_lints(
          array(select jsonb_array_elements_text(${JSON.stringify(schemas)}::text::jsonb)))`
    const tracked = []
    for (const service of services) {
      const [{ result }] = await sql<{ result: Record<string, number> }[]>`
        select vigil.apply_security_lints(${service.id}, ${sql.json(lints as never)}) as result`
      tracked.push({ service: service.name, ...result })
    }
    const byLint = new Map<string, number>()
    for (const l of lints) byLint.set(l.lint, (byLint.get(l.lint) ?? 0) + 1)
    return {
      status: 'succeeded',
      summary: lints.length === 0
        ? `no findings in ${schemas.join(', ')}`
        : `${lints.length} finding(s) in ${schemas.join(', ')}: ${
          [...byLint].map(([lint, n]) => `${lint} × ${n}`).join(', ')
        }`,
      findings: lints,
      actions: tracked,
    }
  },
}
