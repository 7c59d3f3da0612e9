// The Management API's logs endpoint, as the logs and traffic probes ask it:
//   GET {api_url}/v1/projects/{ref}/analytics/endpoints/logs?sql=…&iso_timestamp_start=…&iso_timestamp_end=…
//   Authorization: Bearer <personal access token>   → {result: [...]} or {error: …} (often with 200)
// The SQL is ClickHouse's over the unified `logs` table (one row a log line, `source` naming the
// service, its fields in log_attributes['…']). A 429 or 5xx is asked again with backoff within the
// probe's own timeout; every refusal is said in words, never with the token.
import { z } from 'zod'
import type { CheckStatus } from '../../../../shared/kinds.ts'
import { clip, endpoint, excerpt, parseJson, send } from './support.ts'
import { type ProbeContext, redact } from './types.ts'

const BODY_BYTES = 4_194_304
/** A 429 or 5xx is asked again this many times, backing off. */
const RETRIES = 2
const BACKOFF_MS = 500

export interface LogsApiTarget {
  api_url: string
  project_ref: string
  access_token_secret: string
}

export type LogsApiAnswer =
  | { rows: unknown[]; attempts: number }
  | { failure: string; status: CheckStatus; attempts: number }

/** One query of the logs endpoint over [start, end): its rows, or why there are none. */
export async function queryLogsApi(
  ctx: ProbeContext,
  target: LogsApiTarget,
  sql: string,
  start: string,
  end: string,
): Promise<LogsApiAnswer> {
  const token = ctx.secret(target.access_token_secret)
  if (!token) {
    return {
      failure: `secret ${target.access_token_secret} is not set`,
      status: 'down',
      attempts: 0,
    }
  }
  const secrets = [token]
  const query = new URLSearchParams({ sql, iso_timestamp_start: start, iso_timestamp_end: end })
  const url = endpoint(
    target.api_url,
    `/v1/projects/${target.project_ref}/analytics/endpoints/logs?${query}`,
  )
  const headers = { authorization: `Bearer ${token}`, accept: 'application/json' }
  let answer = await send(ctx, url, { headers }, BODY_BYTES)
  let attempts = 1
  // Rate limited or failing: asked again, backing off, within the probe's own timeout.
  while (
    !('failure' in answer) && (answer.status === 429 || answer.status >= 500) &&
    attempts <= RETRIES && !ctx.signal.aborted
  ) {
    await sleep(BACKOFF_MS * 2 ** (attempts - 1), ctx.signal)
    answer = await send(ctx, url, { headers }, BODY_BYTES)
    attempts++
  }
  const fail = (failure: string, status: CheckStatus = 'down') => ({ failure, status, attempts })
  if ('failure' in answer) return fail(`logs endpoint ${redact(answer.failure, secrets)}`)
  if (answer.status === 401 || answer.status === 403) {
    return fail(
      `access token in ${target.access_token_secret} rejected by the logs endpoint (HTTP ${answer.status})`,
    )
  }
  if (answer.status === 429) {
    return fail(
      `rate limited by the logs endpoint (HTTP 429, ${attempts} attempts): read at the next check`,
      'degraded',
    )
  }
  if (answer.status !== 200) {
    return fail(
      `logs endpoint answered HTTP ${answer.status} (${attempts} attempts): ${
        excerpt(answer.text, secrets)
      }`,
      answer.status >= 500 ? 'degraded' : 'down',
    )
  }
  const body = z.object({ result: z.array(z.unknown()).nullish(), error: z.unknown().optional() })
    .safeParse(parseJson(answer.text))
  if (!body.success) {
    return fail(
      `logs endpoint answered something else than {result: [...]}: ${
        excerpt(answer.text, secrets)
      }`,
    )
  }
  if (body.data.error) {
    return fail(
      `logs endpoint refused the query: ${
        clip(redact(JSON.stringify(body.data.error), secrets), 300)
      }`,
    )
  }
  return { rows: body.data.result ?? [], attempts }
}

/** A logs row's timestamp (ISO text, or microseconds since the epoch) as ISO text; null if neither. */
export function isoOf(value: string | number): string | null {
  if (typeof value === 'number') {
    const ms = value > 1e14 ? value / 1000 : value
    return Number.isFinite(ms) ? new Date(ms).toISOString() : null
  }
  const t = Date.parse(
    value.includes('T') || value.endsWith('Z') ? value : `${value.replace(' ', 'T')}Z`,
  )
  return Number.isNaN(t) ? null : new Date(t).toISOString()
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      resolve()
    }, { once: true })
  })
}
