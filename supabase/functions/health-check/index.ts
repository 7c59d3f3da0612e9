// health-check: one watch cycle over every enabled service in vigil.services. pg_cron calls it
// through vigil.invoke every 30 seconds (every minute on pg_cron 1.4); POST it to run one now.
// More services than the shard size (VIGIL_SHARD_SIZE, default 200): this invocation coordinates
// and each shard is a health-check invocation of its own (body run_id, shard, service_ids).
import { z } from 'zod'
import { WITHHELD_FROM_PROBES } from '../../../shared/probe-configs.ts'
import { runCycle } from '../_shared/health/cycle.ts'
import {
  MAX_SHARD_SIZE,
  runShardedCycle,
  servicesToWatch,
  shardSizeFrom,
} from '../_shared/health/shards.ts'
import { sql } from '../_shared/db.ts'
import { ownServiceKey, refuseUnlessServiceRole } from '../_shared/caller.ts'
import { json, readJsonBody } from '../_shared/http.ts'
import { guardedFetch, policyFromEnv } from '../_shared/outbound.ts'

const Env = z.object({
  SUPABASE_URL: z.url(),
  VIGIL_DB_URL: z.string().min(1),
  VIGIL_DEADMAN_URL: z.url().optional().or(z.literal('').transform(() => undefined)),
})
const Body = z.strictObject({
  trigger: z.enum(['cron', 'manual']).default('manual'),
  /** Run only these services (by name). */
  services: z.array(z.string().min(1).max(63)).min(1).max(1000).optional(),
  /** Services per shard for this run (a manual run's knob; else VIGIL_SHARD_SIZE). */
  shard_size: z.number().int().min(1).max(MAX_SHARD_SIZE).optional(),
  /** A shard of a run, sent by the coordinator: all three or none. */
  run_id: z.uuid().optional(),
  shard: z.number().int().min(0).max(100_000).optional(),
  service_ids: z.array(z.uuid()).min(1).max(MAX_SHARD_SIZE).optional(),
}).superRefine((body, ctx) => {
  const parts = [body.run_id, body.shard, body.service_ids].filter((p) => p !== undefined).length
  if (parts !== 0 && parts !== 3) {
    const missing = body.run_id === undefined
      ? 'run_id'
      : body.shard === undefined
      ? 'shard'
      : 'service_ids'
    ctx.addIssue({
      code: 'custom',
      path: [missing],
      message: 'a shard names run_id, shard and service_ids together',
    })
  }
  if (parts === 3 && (body.services || body.shard_size)) {
    ctx.addIssue({
      code: 'custom',
      path: [body.services ? 'services' : 'shard_size'],
      message: 'a shard runs the services its run planned, nothing else',
    })
  }
})

// Parsed once; a bad environment is reported on every call by variable name, never by value.
const env = Env.safeParse(Deno.env.toObject())

// The deployment's outbound policy, read once: every request this function makes goes through it.
const policy = policyFromEnv((name) => Deno.env.get(name))
const outbound = guardedFetch(policy)
// Shards go to this project's own gateway, whatever its address (self-hosted: a private one).
const toSelf = env.success
  ? guardedFetch({ ...policy, allowOrigins: [new URL(env.data.SUPABASE_URL).origin] })
  : outbound

// A bad VIGIL_SHARD_SIZE must not stop the watching: the default, and a line in the log.
const shardSetting = shardSizeFrom(Deno.env.get('VIGIL_SHARD_SIZE'))
if (shardSetting.problem) console.warn(`health-check: ${shardSetting.problem}`)

/** What probes may read: any secret but the database's URL and Vigil's own, which must never leave. */
const probeSecret = (name: string) =>
  WITHHELD_FROM_PROBES.has(name) ? undefined : Deno.env.get(name)

Deno.serve(async (req) => {
  if (req.method !== 'POST') return json({ error: 'method not allowed' }, 405, { allow: 'POST' })
  const refused = refuseUnlessServiceRole(req)
  if (refused) return refused
  if (!env.success) {
    const names = env.error.issues.map((i) => i.path.join('.')).join(', ')
    console.error(`health-check: environment invalid: ${names}`)
    return json({ error: `function environment invalid: ${names}` }, 500)
  }
  const body = await readJsonBody(req, Body)
  if (!body.ok) return body.response
  const projectUrl = env.data.SUPABASE_URL
  const common = {
    sql: sql(),
    secret: probeSecret,
    projectUrl,
    databaseUrls: [Deno.env.get('SUPABASE_DB_URL'), Deno.env.get('VIGIL_DB_URL')],
    fetch: outbound,
  }
  try {
    const { run_id: runId, shard, service_ids: serviceIds } = body.data
    if (runId !== undefined && shard !== undefined && serviceIds !== undefined) {
      // A shard: exactly what its run planned, recorded as that shard (once, whoever comes second).
      const [planned] = await common.sql<{ service_ids: string[] }[]>`
        select service_ids from vigil.cycle_shards where run_id = ${runId} and shard = ${shard}`
      if (!planned) return json({ error: `run_id, shard: no shard ${shard} in run ${runId}` }, 404)
      const plannedIds = [...planned.service_ids].sort()
      if (JSON.stringify(plannedIds) !== JSON.stringify([...new Set(serviceIds)].sort())) {
        return json({ error: `service_ids: not those shard ${shard} of run ${runId} planned` }, 409)
      }
      return json(
        await runCycle({ ...common, serviceIds: plannedIds, shard: { runId, index: shard } }),
      )
    }
    const shardSize = body.data.shard_size ?? shardSetting.size
    const key = ownServiceKey()
    const services = await servicesToWatch(common.sql, body.data.services)
    if (services.length > shardSize && key) {
      return json(
        await runShardedCycle({
          sql: common.sql,
          trigger: body.data.trigger,
          services,
          shardSize,
          secrets: [key],
          deadmanUrl: env.data.VIGIL_DEADMAN_URL,
          auditSecret: Deno.env.get('VIGIL_AUDIT_SECRET'),
          fetch: outbound,
          dispatch: (shardBody, signal) =>
            toSelf(`${projectUrl.replace(/\/$/, '')}/functions/v1/health-check`, {
              method: 'POST',
              headers: {
                authorization: `Bearer ${key}`,
                apikey: key,
                'content-type': 'application/json',
              },
              body: JSON.stringify(shardBody),
              signal,
            }),
        }),
      )
    }
    if (services.length > shardSize) {
      console.warn(
        'health-check: no service-role JWT to send shards with (sb_secret_ keys only); one cycle runs them all',
      )
    }
    const report = await runCycle({
      ...common,
      deadmanUrl: env.data.VIGIL_DEADMAN_URL,
      auditSecret: Deno.env.get('VIGIL_AUDIT_SECRET'),
      only: body.data.services,
    })
    return json(report)
  } catch (error) {
    // Driver errors can carry connection details: log the code only.
    const code = (error as { code?: string })?.code ?? (error as Error)?.name ?? 'unknown'
    console.error(`health-check: the cycle could not be recorded (${code})`)
    return json({ error: `the cycle could not be recorded (${code})` }, 500)
  }
})
