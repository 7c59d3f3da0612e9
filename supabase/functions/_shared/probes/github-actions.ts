// A GitHub repository's workflow runs (the build or deploy workflow): GET {api_url}/repos/{owner}/
// {repo}/actions/[workflows/{workflow}/]runs?per_page=…&branch=… (Bearer token, the 2022-11-28 API
// version; docs.github.com/rest/actions/workflow-runs) → {workflow_runs: [{id, name, status,
// conclusion, created_at, run_started_at, updated_at, head_sha, html_url}]}. A completed run that
// succeeded is ready; failure and timed_out failed; queued, waiting, pending and in_progress are a
// build in progress; judged as every provider's deploys are (deploys.ts).
import { z } from 'zod'
import { GithubActionsConfig } from '../../../../shared/probe-configs.ts'
import { missingSecret } from './support.ts'
import { type DeployRecord, probeDeploys } from './deploys.ts'
import type { Probe } from './types.ts'

const MAX_BODY_BYTES = 1_048_576
const PAGE = 10

const Run = z.looseObject({
  id: z.number().int(),
  name: z.string().nullish(),
  status: z.string().nullish(),
  conclusion: z.string().nullish(),
  created_at: z.string(),
  run_started_at: z.string().nullish(),
  updated_at: z.string().nullish(),
  head_sha: z.string().nullish(),
  html_url: z.string().nullish(),
})
type Run = z.infer<typeof Run>
const RunList = z.looseObject({ workflow_runs: z.array(Run) })

const FAILED = new Set(['failure', 'timed_out', 'startup_failure'])
const CANCELED = new Set(['cancelled', 'skipped', 'neutral', 'stale'])

export const githubActionsProbe: Probe<GithubActionsConfig> = {
  kind: 'github_actions',
  config: GithubActionsConfig,
  run(config, ctx) {
    const token = ctx.secret(config.token_secret)
    if (!token) return Promise.resolve(missingSecret(config.token_secret))
    const query = new URLSearchParams({ per_page: String(PAGE) })
    if (config.branch) query.set('branch', config.branch)
    const runs = config.workflow
      ? `/repos/${config.repository}/actions/workflows/${config.workflow}/runs`
      : `/repos/${config.repository}/actions/runs`
    return probeDeploys(ctx, {
      api: 'GitHub',
      api_url: config.api_url,
      path: `${runs}?${query}`,
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/vnd.github+json',
        'x-github-api-version': '2022-11-28',
        'user-agent': 'Vigil github_actions probe',
      },
      token,
      token_secret: config.token_secret,
      target: `GitHub repository ${config.repository}${
        config.workflow ? ` or workflow ${config.workflow}` : ''
      }`,
      measurements: {
        repository: config.repository,
        ...(config.workflow ? { workflow: config.workflow } : {}),
        ...(config.branch ? { branch: config.branch } : {}),
      },
      maxBytes: MAX_BODY_BYTES,
      records: (body) => {
        const parsed = RunList.safeParse(body)
        return parsed.success ? parsed.data.workflow_runs.flatMap((r) => record(r) ?? []) : null
      },
      words: {
        noun: 'run',
        scope: config.branch ?? 'workflow',
        build_warning_minutes: config.build_warning_minutes,
        build_critical_minutes: config.build_critical_minutes,
      },
    })
  },
}

/** A workflow run as the deploy judgement reads it; null when its time does not parse. */
function record(r: Run): DeployRecord | null {
  const created = Date.parse(r.created_at)
  if (Number.isNaN(created)) return null
  const status = (r.status ?? 'unknown').toLowerCase()
  const conclusion = (r.conclusion ?? '').toLowerCase()
  const started = r.run_started_at ? Date.parse(r.run_started_at) : NaN
  const updated = r.updated_at ? Date.parse(r.updated_at) : NaN
  const done = status === 'completed'
  return {
    id: String(r.id),
    created,
    raw_state: (done ? conclusion || 'completed' : status).toUpperCase(),
    state: !done
      ? 'building'
      : conclusion === 'success'
      ? 'ready'
      : FAILED.has(conclusion)
      ? 'error'
      : CANCELED.has(conclusion)
      ? 'canceled'
      : 'other',
    started: Number.isNaN(started) ? null : started,
    finished: done && !Number.isNaN(updated) ? updated : null,
    error: FAILED.has(conclusion) ? `${r.name ?? 'workflow'} ended ${conclusion}` : null,
    url: r.html_url ?? null,
    version: r.head_sha ?? null,
  }
}
