// The demo's services in vigil.services, so the dashboard shows a real system from the first
// minute: upserted by name (a restart never duplicates them), configs and actions checked by
// Vigil's own schemas first, secrets named, never inlined. Dev tooling only: never deployed.
import postgres from 'postgres'
import type { ServiceKind } from '../shared/kinds.ts'
import { PROBE_CONFIGS } from '../shared/probe-configs.ts'
import { parseServiceActions } from '../shared/service-actions.ts'

/** The edge-function secrets the seeded rows name; their values go into the functions' env. */
export const DEMO_SECRET_NAMES = {
  cloudflareToken: 'VIGIL_DEMO_CLOUDFLARE_TOKEN',
  vercelToken: 'VIGIL_DEMO_VERCEL_TOKEN',
  deployHookUrl: 'VIGIL_DEMO_DEPLOY_HOOK_URL',
  certificateToken: 'VIGIL_DEMO_CERTIFICATE_TOKEN',
} as const

export const DEMO_SERVICE_NAMES = [
  'demo-db',
  'demo-app-host',
  'demo-api',
  'demo-web',
  'demo-https',
  'demo-checkout',
  'demo-deploys',
] as const

/**
 * Latency bands for the demo's HTTP checks: loose enough for a busy laptop running the whole
 * stack, tight enough that the latency fault (1500 ms, say) is down.
 */
const LATENCY = { latency_warning_ms: 500, latency_critical_ms: 1000 }

/** Two failed checks in a row open an incident (Vigil's default is 3): a fault shows sooner. */
const DEMO_FAILURE_THRESHOLD = 2

export interface DemoService {
  name: (typeof DEMO_SERVICE_NAMES)[number]
  kind: ServiceKind
  description: string
  config: Record<string, unknown>
  actions: Record<string, unknown>
  depends_on: string[]
}

export interface DemoEndpoints {
  appUrl: string
  edgeUrl: string
  /** The edge over HTTPS. */
  httpsUrl: string
  /** The demo's edge function, served by the stack's gateway (/functions/v1/<function>). */
  function: string
  supervisorUrl: string
  supervisedService: string
  vercelUrl: string
  zoneId: string
  projectId: string
  /** What production serves now: the web check's expected version. */
  version: string
}

/** The services, dependencies before the services that need them. */
export function demoServices(e: DemoEndpoints): DemoService[] {
  const supervisor = {
    type: 'supervisor',
    url: `${e.supervisorUrl}/`,
    service: e.supervisedService,
  }
  return [
    {
      name: 'demo-db',
      kind: 'postgres',
      description:
        "The demo app's database: the local stack's Postgres (schema demo, role demo_app).",
      // A demo shows its faults within a minute or two: a query is runaway after 30 s, an idle
      // transaction or unvacuumed dead tuples after a minute (production defaults: 5 and 10 min).
      config: {
        long_running_seconds: 30,
        idle_in_transaction_seconds: 60,
        dead_tuple_grace_seconds: 60,
        blocked_warning_seconds: 10,
      },
      actions: {},
      depends_on: [],
    },
    {
      name: 'demo-app-host',
      kind: 'prometheus',
      description:
        "The demo app's container: memory against its limit and CPU, from the app's /metrics.",
      config: { url: `${e.appUrl}/metrics` },
      actions: { restart: supervisor, disable: supervisor },
      depends_on: [],
    },
    {
      name: 'demo-api',
      kind: 'http',
      description: "The demo app's API: /health runs select 1 through the app's pool.",
      config: {
        url: `${e.appUrl}/health`,
        json_path: '$.status',
        json_equals: 'ok',
        ...LATENCY,
      },
      // The API is the app process: restarting it is the supervisor's restart.
      actions: { restart: supervisor },
      depends_on: ['demo-db', 'demo-app-host'],
    },
    {
      name: 'demo-web',
      kind: 'http',
      description: "The demo's frontend through its CDN: the version the edge serves.",
      config: {
        url: `${e.edgeUrl}/version`,
        expected_version: { value: e.version, header: 'x-demo-version' },
        ...LATENCY,
      },
      actions: {
        cdn: {
          type: 'cloudflare',
          api_url: e.edgeUrl,
          zone_id: e.zoneId,
          token_secret: DEMO_SECRET_NAMES.cloudflareToken,
        },
        rollback: {
          type: 'vercel',
          api_url: e.vercelUrl,
          project_id: e.projectId,
          token_secret: DEMO_SECRET_NAMES.vercelToken,
        },
      },
      depends_on: ['demo-app-host'],
    },
    {
      name: 'demo-https',
      kind: 'http',
      description:
        "The demo's CDN edge over HTTPS: its certificate's days to expiry, renewed by its endpoint.",
      // Vigil's default window: a warning from 14 days before expiry, critical from 3.
      config: { url: `${e.httpsUrl}/version`, ...LATENCY },
      actions: {
        certificate_renewal: {
          url: `${e.edgeUrl}/_tls/renew`,
          token_secret: DEMO_SECRET_NAMES.certificateToken,
        },
      },
      depends_on: ['demo-app-host'],
    },
    {
      name: 'demo-checkout',
      kind: 'supabase_functions',
      description:
        "The demo shop's edge function demo-checkout: a cart priced through the project's gateway.",
      // A synthetic checkout, as a customer's would be; the project URL is the stack's gateway.
      config: {
        function: e.function,
        method: 'POST',
        body: JSON.stringify({ items: [{ sku: 'tea', qty: 2 }], region: 'EU' }),
        ...LATENCY,
      },
      // Nothing restarts broken function code: a person is paged.
      actions: {},
      depends_on: [],
    },
    {
      name: 'demo-deploys',
      kind: 'vercel',
      description:
        "The demo's Vercel project: its production deploys, a failed build retried through its hook.",
      config: {
        api_url: e.vercelUrl,
        project_id: e.projectId,
        token_secret: DEMO_SECRET_NAMES.vercelToken,
      },
      actions: {
        deploy_retry: { hook_url_secret: DEMO_SECRET_NAMES.deployHookUrl },
        rollback: {
          type: 'vercel',
          api_url: e.vercelUrl,
          project_id: e.projectId,
          token_secret: DEMO_SECRET_NAMES.vercelToken,
        },
      },
      depends_on: [],
    },
  ]
}

/**
 * Inserts the services, or brings existing rows of those names up to date (kind, config, actions,
 * depends_on, description; an operator's enabled, heal_enabled and thresholds are kept).
 */
export async function seedDemoServices(
  superuserUrl: string,
  services: DemoService[],
): Promise<void> {
  const problems = services.flatMap((s) => {
    const config = PROBE_CONFIGS[s.kind].safeParse(s.config)
    const actions = parseServiceActions(s.actions)
    return [
      ...(config.success
        ? []
        : config.error.issues.map((i) => `${s.name}: config.${i.path.join('.')}: ${i.message}`)),
      ...(actions.ok ? [] : actions.errors.map((e) => `${s.name}: ${e}`)),
    ]
  })
  if (problems.length) throw new Error(`the demo's services are invalid: ${problems.join('; ')}`)
  const sql = postgres(superuserUrl, { max: 1, onnotice: () => {} })
  try {
    await sql.begin(async (tx) => {
      for (const s of services) {
        await tx`
          insert into vigil.services (name, kind, description, config, actions, depends_on,
                                      failure_threshold)
          values (${s.name}, ${s.kind}, ${s.description}, ${
          tx.json(s.config as postgres.JSONValue)
        },
                  ${tx.json(s.actions as postgres.JSONValue)}, ${s.depends_on}::text[],
                  ${DEMO_FAILURE_THRESHOLD})
          on conflict (name) do update
             set kind = excluded.kind,
                 description = excluded.description,
                 config = excluded.config,
                 actions = excluded.actions,
                 depends_on = excluded.depends_on`
      }
    })
  } finally {
    await sql.end({ timeout: 5 })
  }
}
