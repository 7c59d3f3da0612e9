// The netlify and github_actions probes against recording peers that check the token and the path
// as the real APIs do: a failed build or run is a decisive deploy_failed finding naming what still
// serves; a build past 5 minutes warns and past 15 pages; a wrong token, a missing site, a rate
// limit and an answer of the wrong shape are said in words, never with the token.
import assert from 'node:assert/strict'
import { githubActionsProbe } from '../../supabase/functions/_shared/probes/github-actions.ts'
import { netlifyProbe } from '../../supabase/functions/_shared/probes/netlify.ts'
import { assertNoSecrets, json, runProbe, type Seen, withPeer } from './_harness.ts'

const NETLIFY_TOKEN = 'nfp_local_test_token_0123456789abcdef'
const GITHUB_TOKEN = 'ghp_local_test_token_0123456789abcdef'
const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString()

function netlifyDeploy(id: string, state: string, createdMinutesAgo: number, extra = {}) {
  return {
    id,
    state,
    created_at: minutesAgo(createdMinutesAgo),
    updated_at: minutesAgo(Math.max(0, createdMinutesAgo - 1)),
    context: 'production',
    commit_ref: `sha-${id}`,
    deploy_ssl_url: `https://${id}--site.netlify.app`,
    ...extra,
  }
}

Deno.test('netlify: ready, a failed build (decisive, naming what still serves), a hung build warns then pages', async () => {
  let deploys: unknown[] = []
  const seen: Seen[] = []
  await withPeer(() => (req) => {
    seen.push(req)
    if (req.headers.get('authorization') !== `Bearer ${NETLIFY_TOKEN}`) {
      return json({ code: 401, message: 'Access Denied: bad token' }, 401)
    }
    if (!req.path.startsWith('/api/v1/sites/site-123/deploys')) {
      return json({ code: 404, message: 'Not Found' }, 404)
    }
    return json(deploys)
  }, async (base) => {
    const config = { api_url: base, site_id: 'site-123' }
    const secrets = { VIGIL_NETLIFY_TOKEN: NETLIFY_TOKEN }
    deploys = [netlifyDeploy('d1', 'ready', 60, { deploy_time: 42 })]
    const ready = await runProbe(netlifyProbe, config, { secrets })
    assert.equal(ready.status, 'healthy', ready.error)
    assert.equal(seen[0].path, '/api/v1/sites/site-123/deploys?per_page=10')
    assert.equal((ready.measurements.serving as { build_seconds: number }).build_seconds, 42)

    deploys = [
      netlifyDeploy('d2', 'error', 2, {
        error_message: 'Build script returned non-zero exit code: 2',
      }),
      netlifyDeploy('d1', 'ready', 60),
      netlifyDeploy('p1', 'error', 1, { context: 'deploy-preview' }),
    ]
    const failed = await runProbe(netlifyProbe, config, { secrets })
    assert.equal(failed.status, 'degraded')
    assert.equal(failed.measurements.decisive_status, 'degraded')
    assert.equal(
      failed.error,
      'the latest production deploy d2 failed: Build script returned non-zero exit code: 2; d1 still serves',
    )
    assert.deepEqual(failed.findings, [{
      kind: 'deploy_failed',
      status: 'degraded',
      evidence: { deployment_id: 'd2', error: 'Build script returned non-zero exit code: 2' },
    }])

    deploys = [netlifyDeploy('d3', 'building', 7), netlifyDeploy('d1', 'ready', 60)]
    const slow = await runProbe(netlifyProbe, config, { secrets })
    assert.equal(slow.status, 'degraded')
    assert.match(
      slow.error!,
      /^deploy d3 has been building for 7 min \(warning from 5, critical from 15\)$/,
    )
    deploys = [netlifyDeploy('d3', 'enqueued', 16), netlifyDeploy('d1', 'ready', 60)]
    const hung = await runProbe(netlifyProbe, config, { secrets })
    assert.equal(hung.status, 'down')
    assert.equal(hung.measurements.decisive_status, 'down')

    const wrong = await runProbe(netlifyProbe, config, { secrets: { VIGIL_NETLIFY_TOKEN: 'nope' } })
    assert.equal(wrong.error, 'Netlify token in VIGIL_NETLIFY_TOKEN rejected (HTTP 401)')
    const missing = await runProbe(netlifyProbe, { ...config, site_id: 'other' }, { secrets })
    assert.equal(missing.error, 'Netlify site other not found (HTTP 404): Not Found')
    deploys = { not: 'a list' } as unknown as unknown[]
    const odd = await runProbe(netlifyProbe, config, { secrets })
    assert.match(odd.error!, /^unexpected answer from the Netlify API: /)
    for (const r of [ready, failed, slow, hung, wrong, missing, odd]) {
      assertNoSecrets(r, [NETLIFY_TOKEN])
    }
  })
})

function run(id: number, status: string, conclusion: string | null, startedMinutesAgo: number) {
  return {
    id,
    name: 'Deploy',
    status,
    conclusion,
    created_at: minutesAgo(startedMinutesAgo),
    run_started_at: minutesAgo(startedMinutesAgo),
    updated_at: minutesAgo(Math.max(0, startedMinutesAgo - 3)),
    head_sha: `abc${id}`,
    html_url: `https://github.com/acme/shop/actions/runs/${id}`,
  }
}

Deno.test('github_actions: a failed deploy run is decisive, a run in progress past 15 minutes pages, 429 is degraded', async () => {
  let runs: unknown[] = []
  let limited = false
  const seen: Seen[] = []
  await withPeer(() => (req) => {
    seen.push(req)
    if (req.headers.get('authorization') !== `Bearer ${GITHUB_TOKEN}`) {
      return json({ message: 'Bad credentials' }, 401)
    }
    assert.equal(req.headers.get('accept'), 'application/vnd.github+json')
    assert.equal(req.headers.get('x-github-api-version'), '2022-11-28')
    if (limited) return json({ message: 'API rate limit exceeded' }, 429)
    return json({ total_count: runs.length, workflow_runs: runs })
  }, async (base) => {
    const config = {
      api_url: base,
      repository: 'acme/shop',
      workflow: 'deploy.yml',
      branch: 'main',
    }
    const secrets = { VIGIL_GITHUB_TOKEN: GITHUB_TOKEN }
    runs = [run(2, 'completed', 'failure', 10), run(1, 'completed', 'success', 120)]
    const failed = await runProbe(githubActionsProbe, config, { secrets })
    assert.equal(
      seen[0].path,
      '/repos/acme/shop/actions/workflows/deploy.yml/runs?per_page=10&branch=main',
    )
    assert.equal(failed.status, 'degraded')
    assert.equal(failed.error, 'the latest main run 2 failed: Deploy ended failure; 1 still serves')
    assert.equal(failed.findings?.[0].kind, 'deploy_failed')
    assert.equal((failed.measurements.serving as { build_seconds: number }).build_seconds, 180)

    runs = [run(3, 'in_progress', null, 16), run(1, 'completed', 'success', 120)]
    const hung = await runProbe(githubActionsProbe, config, { secrets })
    assert.equal(hung.status, 'down')
    assert.match(hung.error!, /^run 3 has been in_progress for 16 min/)

    runs = [run(4, 'completed', 'cancelled', 5), run(1, 'completed', 'success', 120)]
    const cancelled = await runProbe(githubActionsProbe, config, { secrets })
    assert.equal(cancelled.status, 'healthy', "a cancelled run is a person's choice")

    limited = true
    const slowDown = await runProbe(githubActionsProbe, config, { secrets })
    assert.equal(slowDown.status, 'degraded')
    assert.equal(slowDown.error, 'rate limited by the GitHub API (HTTP 429)')
    limited = false
    const wrong = await runProbe(githubActionsProbe, config, {
      secrets: { VIGIL_GITHUB_TOKEN: 'ghp_wrong' },
    })
    assert.equal(wrong.error, 'GitHub token in VIGIL_GITHUB_TOKEN rejected (HTTP 401)')
    for (const r of [failed, hung, cancelled, slowDown, wrong]) assertNoSecrets(r, [GITHUB_TOKEN])
  })
})

Deno.test('deploy probe configs: a bad repository or site id is refused naming the field', () => {
  assert.throws(
    () => githubActionsProbe.config.parse({ repository: 'not a repo' }),
    /must be owner\/repository/,
  )
  assert.throws(
    () => netlifyProbe.config.parse({ site_id: '../etc' }),
    /Netlify site id or domain/,
  )
  assert.throws(
    () =>
      netlifyProbe.config.parse({
        site_id: 's',
        build_warning_minutes: 20,
        build_critical_minutes: 15,
      }),
    /build_warning_minutes must not be above build_critical_minutes/,
  )
})
