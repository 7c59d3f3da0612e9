// What the deploy probes (vercel, netlify, github_actions) share: once a provider's answer is read
// into DeployRecords, one judgement. The newest one says how the project's deploys go:
//   ready (or canceled, a person's choice)   healthy
//   error                                     degraded, decisive: the build failed, and the finding
//                                             deploy_failed leads to retry_deploy, then
//                                             rollback_deploy. Production still serves the last
//                                             good one, so it is not down.
//   building                                  healthy, then degraded past build_warning_minutes
//                                             and down past build_critical_minutes (a hung build)
// What production serves is the newest ready one; both are in the measurements.
import type { CheckStatus } from '../../../../shared/kinds.ts'
import type { Finding } from '../../../../shared/findings.ts'
import { z } from 'zod'
import { apiRefusal, endpoint, excerpt, parseJson, result, round, send } from './support.ts'
import { type ProbeContext, type ProbeResult, redact } from './types.ts'

const MAX_ERROR_CHARS = 300

export interface DeployRecord {
  id: string
  /** ms since the epoch. */
  created: number
  state: 'ready' | 'error' | 'building' | 'canceled' | 'other'
  /** The provider's own word for the state, upper case (BUILDING, enqueued → ENQUEUED). */
  raw_state: string
  /** When the build started and ended (ms), when known. */
  started?: number | null
  finished?: number | null
  error?: string | null
  url?: string | null
  version?: string | null
}

export interface DeployWords {
  /** "deployment", "run". */
  noun: string
  /** "production", "main": which deploys count. */
  scope: string
  build_warning_minutes: number
  build_critical_minutes: number
}

/** The judgement of a provider's deploys, newest first or not. */
export function judgeDeploys(
  records: DeployRecord[],
  words: DeployWords,
  measurements: Record<string, unknown>,
  secrets: string[],
  ms: number,
): ProbeResult {
  const list = [...records].sort((a, b) => b.created - a.created)
  if (list.length === 0) {
    measurements.deployments = 0
    return result('healthy', undefined, measurements, ms)
  }
  const now = Date.now()
  const latest = list[0]
  const serving = list.find((d) => d.state === 'ready')
  Object.assign(measurements, {
    deployments: list.length,
    latest: describe(latest, now, secrets),
    serving: serving ? describe(serving, now, secrets) : null,
  })
  const fail = (status: CheckStatus, error: string) => result(status, error, measurements, ms)

  if (latest.state === 'error') {
    const error = latest.error ? redact(latest.error, secrets).slice(0, MAX_ERROR_CHARS) : null
    const finding: Finding<'deploy_failed'> = {
      kind: 'deploy_failed',
      status: 'degraded',
      evidence: { deployment_id: latest.id, error },
    }
    // A failed build is a fact, not a reading that may flicker: one check is enough.
    measurements.decisive_status = 'degraded'
    return {
      ...fail(
        'degraded',
        `the latest ${words.scope} ${words.noun} ${latest.id} failed${error ? `: ${error}` : ''}${
          serving ? `; ${serving.id} still serves` : ''
        }`,
      ),
      findings: [finding],
    }
  }
  if (latest.state === 'building') {
    const since = latest.started ?? latest.created
    const minutes = Math.max(0, (now - since) / 60_000)
    measurements.build_minutes = round(minutes, 1)
    const status: CheckStatus = minutes > words.build_critical_minutes
      ? 'down'
      : minutes > words.build_warning_minutes
      ? 'degraded'
      : 'healthy'
    if (status !== 'healthy') {
      measurements.decisive_status = status
      return fail(
        status,
        `${words.noun} ${latest.id} has been ${latest.raw_state.toLowerCase()} for ${
          Math.floor(minutes)
        } min (warning from ${words.build_warning_minutes}, critical from ${words.build_critical_minutes})`,
      )
    }
  }
  return result('healthy', undefined, measurements, ms)
}

function describe(d: DeployRecord, now: number, secrets: string[]) {
  return {
    id: d.id,
    state: d.raw_state,
    created: new Date(d.created).toISOString(),
    age_minutes: round(Math.max(0, now - d.created) / 60_000, 1),
    ...(d.url ? { url: redact(d.url, secrets) } : {}),
    ...(d.version ? { version: d.version.slice(0, 100) } : {}),
    ...(d.finished && d.started
      ? { build_seconds: round((d.finished - d.started) / 1000, 1) }
      : {}),
  }
}

/** How one provider's deploys are read: where, with which headers, and how its answer maps. */
export interface DeploySource {
  /** "Vercel", "Netlify", "GitHub": for the words. */
  api: string
  api_url: string
  path: string
  headers: Record<string, string>
  token: string
  token_secret: string
  /** What a 404 did not find: "Netlify site x". */
  target: string
  /** Measurements of the provider's own (project, site, repository). */
  measurements: Record<string, unknown>
  maxBytes: number
  /** The answer's records, or null when it is not the provider's shape. */
  records: (body: unknown) => DeployRecord[] | null
  words: DeployWords
}

const ProviderError = z.looseObject({
  error: z.looseObject({ code: z.string().optional(), message: z.string() }).optional(),
  message: z.string().optional(),
})

/** One request to the provider, its refusals in words, and the judgement of what it lists. */
export async function probeDeploys(ctx: ProbeContext, src: DeploySource): Promise<ProbeResult> {
  const secrets = [src.token]
  const answer = await send(
    ctx,
    endpoint(src.api_url, src.path),
    { headers: src.headers },
    src.maxBytes,
  )
  if ('failure' in answer) {
    return result('down', `${src.api} API ${redact(answer.failure, secrets)}`, {}, answer.ms)
  }
  const measurements: Record<string, unknown> = {
    status_code: answer.status,
    latency_ms: answer.ms,
    ...src.measurements,
  }
  const said = () => {
    const doc = ProviderError.safeParse(parseJson(answer.text))
    const text = doc.success
      ? doc.data.error
        ? [doc.data.error.code, doc.data.error.message].filter(Boolean).join(': ')
        : doc.data.message
      : undefined
    return text ? redact(text, secrets) : excerpt(answer.text, secrets)
  }
  const refused = apiRefusal(answer, src, said)
  if (refused) return result(refused.status, refused.error, measurements, answer.ms)
  const records = src.records(parseJson(answer.text))
  if (!records) {
    return result(
      'down',
      `unexpected answer from the ${src.api} API: ${excerpt(answer.text, secrets)}`,
      measurements,
      answer.ms,
    )
  }
  return judgeDeploys(records, src.words, measurements, secrets, answer.ms)
}
