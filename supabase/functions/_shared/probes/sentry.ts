// A Sentry (or compatible) project's errors, read with a token (Authorization: Bearer; the same
// /api/0/ paths on sentry.io and self-hosted):
//   GET /api/0/projects/{org}/{project}/releases/?per_page=1  → [{version, dateCreated, newGroups}]
//   GET /api/0/projects/{org}/{project}/issues/?query=is:unresolved [environment:…]&statsPeriod=…
//       &sort=freq&limit=…                                    → [{id, shortId, title, culprit,
//                                                                  count, userCount, level, …}]
// The latest release and the new issues it brought judge the check (new_issues_warning,
// new_issues_critical: a release that broke things); the top issues, each with its share of the
// window's events ("TypeError: … — 68 %"), are what a person and the error analysis read.
import { z } from 'zod'
import { SentryConfig } from '../../../../shared/probe-configs.ts'
import type { CheckStatus } from '../../../../shared/kinds.ts'
import {
  type Answer,
  apiRefusal,
  endpoint,
  excerpt,
  missingSecret,
  parseJson,
  result,
  send,
} from './support.ts'
import { type Probe, type ProbeContext, redact } from './types.ts'

const MAX_BODY_BYTES = 1_048_576
const TITLE_CHARS = 200

const Release = z.looseObject({
  version: z.string().min(1),
  dateCreated: z.string().nullish(),
  newGroups: z.number().int().min(0).nullish(),
})
const Issue = z.looseObject({
  id: z.string(),
  shortId: z.string().nullish(),
  title: z.string(),
  culprit: z.string().nullish(),
  count: z.union([z.string(), z.number()]).transform(Number),
  userCount: z.number().nullish(),
  level: z.string().nullish(),
  lastSeen: z.string().nullish(),
  permalink: z.string().nullish(),
})

export const sentryProbe: Probe<SentryConfig> = {
  kind: 'sentry',
  config: SentryConfig,
  async run(config, ctx) {
    const token = ctx.secret(config.token_secret)
    if (!token) return missingSecret(config.token_secret)
    const secrets = [token]
    const base = `/api/0/projects/${config.organization}/${config.project}`
    const ask = (path: string) => sentryGet(ctx, config.api_url, path, token)
    const query = new URLSearchParams({
      query: `is:unresolved${config.environment ? ` environment:${config.environment}` : ''}`,
      statsPeriod: config.stats_period,
      sort: 'freq',
      limit: String(config.top),
    })
    const [releases, issues] = await Promise.all([
      ask(`${base}/releases/?per_page=1`),
      ask(`${base}/issues/?${query}`),
    ])
    const measurements: Record<string, unknown> = {
      organization: config.organization,
      project: config.project,
      stats_period: config.stats_period,
    }
    for (const answer of [releases, issues]) {
      if ('failure' in answer) {
        return result('down', `Sentry API ${redact(answer.failure, secrets)}`, measurements)
      }
      const refused = apiRefusal(answer, {
        api: 'Sentry',
        token_secret: config.token_secret,
        target: `Sentry project ${config.organization}/${config.project}`,
      }, () => said(answer, secrets))
      if (refused) return result(refused.status, refused.error, measurements, answer.ms)
    }
    const r = releases as Answer
    const i = issues as Answer
    const releaseList = z.array(Release).safeParse(parseJson(r.text))
    const issueList = z.array(Issue).safeParse(parseJson(i.text))
    if (!releaseList.success || !issueList.success) {
      const bad = releaseList.success ? i : r
      return result(
        'down',
        `unexpected answer from the Sentry API: ${excerpt(bad.text, secrets)}`,
        measurements,
        bad.ms,
      )
    }
    const events = issueList.data.reduce((n, x) => n + (Number.isFinite(x.count) ? x.count : 0), 0)
    const top = issueList.data.map((x) => ({
      id: x.id,
      short_id: x.shortId ?? null,
      title: redact(x.title, secrets).slice(0, TITLE_CHARS),
      culprit: x.culprit ? redact(x.culprit, secrets).slice(0, TITLE_CHARS) : null,
      events: x.count,
      users: x.userCount ?? null,
      share_pct: events > 0 ? Math.round((x.count / events) * 1000) / 10 : 0,
      level: x.level ?? null,
      last_seen: x.lastSeen ?? null,
    }))
    const latest = releaseList.data[0] ?? null
    Object.assign(measurements, {
      release: latest
        ? {
          version: latest.version,
          created: latest.dateCreated ?? null,
          new_issues: latest.newGroups ?? 0,
        }
        : null,
      events_in_top: events,
      top_issues: top,
    })
    const fresh = latest?.newGroups ?? 0
    const status: CheckStatus = fresh >= config.new_issues_critical
      ? 'down'
      : fresh >= config.new_issues_warning
      ? 'degraded'
      : 'healthy'
    const ms = Math.max(r.ms, i.ms)
    if (status === 'healthy') return result('healthy', undefined, measurements, ms)
    const lead = top[0]
    return result(
      status,
      `release ${latest!.version} brought ${fresh} new issue${
        fresh === 1 ? '' : 's'
      } (warning from ${config.new_issues_warning}, critical from ${config.new_issues_critical})${
        lead ? `; top error: ${lead.title} — ${lead.share_pct} % of ${events} events` : ''
      }`,
      measurements,
      ms,
    )
  },
}

function sentryGet(ctx: ProbeContext, apiUrl: string, path: string, token: string) {
  return send(ctx, endpoint(apiUrl, path), {
    headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
  }, MAX_BODY_BYTES)
}

/** Sentry's own words for a refusal ({detail: "…"}), or an excerpt. */
function said(answer: Answer, secrets: string[]): string {
  const doc = z.looseObject({ detail: z.string() }).safeParse(parseJson(answer.text))
  return doc.success ? redact(doc.data.detail, secrets) : excerpt(answer.text, secrets)
}
