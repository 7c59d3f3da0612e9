// Every probe kind, one module each. A kind in SERVICE_KINDS without a probe, or a probe whose
// config is not its kind's schema, fails to compile.
import type { ServiceKind } from '../../../../shared/kinds.ts'
import type { ProbeConfig } from '../../../../shared/probe-configs.ts'
import { heartbeatProbe } from './heartbeat.ts'
import { logsProbe } from './logs.ts'
import { netlifyProbe } from './netlify.ts'
import { githubActionsProbe } from './github-actions.ts'
import { sentryProbe } from './sentry.ts'
import { trafficProbe } from './traffic.ts'
import { httpProbe } from './http.ts'
import { postgresProbe } from './postgres.ts'
import { prometheusProbe } from './prometheus.ts'
import { supabaseAuthProbe } from './supabase-auth.ts'
import { supabaseFunctionsProbe } from './supabase-functions.ts'
import { supabaseManagementProbe } from './supabase-management.ts'
import { supabaseRealtimeProbe } from './supabase-realtime.ts'
import { supabaseStorageProbe } from './supabase-storage.ts'
import type { Probe } from './types.ts'
import { vercelProbe } from './vercel.ts'

export type ProbeRegistry = { [K in ServiceKind]: Probe<ProbeConfig<K>> }

export const PROBES: ProbeRegistry = {
  postgres: postgresProbe,
  http: httpProbe,
  supabase_auth: supabaseAuthProbe,
  supabase_storage: supabaseStorageProbe,
  supabase_realtime: supabaseRealtimeProbe,
  supabase_functions: supabaseFunctionsProbe,
  supabase_management: supabaseManagementProbe,
  prometheus: prometheusProbe,
  heartbeat: heartbeatProbe,
  vercel: vercelProbe,
  logs: logsProbe,
  netlify: netlifyProbe,
  github_actions: githubActionsProbe,
  sentry: sentryProbe,
  traffic: trafficProbe,
}
