// The sentry probe against a recording peer that answers as Sentry's API does (/api/0/, Bearer
// token, {detail} on refusal): the latest release's new issues judge the check, the top issues carry
// their share of the window's events; a wrong token, a missing project and a wrong shape are said in
// words, never with the token.
import assert from 'node:assert/strict'
import { sentryProbe } from '../../supabase/functions/_shared/probes/sentry.ts'
import { assertNoSecrets, json, runProbe, type Seen, withPeer } from './_harness.ts'

const TOKEN = 'sntrys_local_test_token_0123456789abcdef'

function issue(id: string, title: string, count: number) {
  return {
    id,
    shortId: `SHOP-${id}`,
    title,
    culprit: 'api/orders in handler',
    count: String(count),
    userCount: Math.ceil(count / 10),
    level: 'error',
    lastSeen: '2026-12-03T10:00:00Z',
    permalink: `https://sentry.io/organizations/acme/issues/${id}/`,
  }
}

Deno.test('sentry: a release that brought new issues warns, then pages; the top error is named with its share', async () => {
  let newGroups = 0
  let shape = true
  const seen: Seen[] = []
  await withPeer(() => (req) => {
    seen.push(req)
    if (req.headers.get('authorization') !== `Bearer ${TOKEN}`) {
      return json({ detail: 'Invalid token' }, 401)
    }
    if (req.path.startsWith('/api/0/projects/acme/shop/releases/')) {
      return json([{ version: 'shop@1.4.3', dateCreated: '2026-12-03T09:00:00Z', newGroups }])
    }
    if (req.path.startsWith('/api/0/projects/acme/shop/issues/')) {
      if (!shape) return json({ issues: [] })
      return json([
        issue('1', 'Error: Database connection refused', 680),
        issue('2', 'TypeError: cannot read properties of undefined', 220),
        issue('3', 'Error: timeout after 10000 ms', 100),
      ])
    }
    return json({ detail: 'The requested resource does not exist' }, 404)
  }, async (base) => {
    const config = {
      api_url: base,
      organization: 'acme',
      project: 'shop',
      environment: 'production',
    }
    const secrets = { VIGIL_SENTRY_TOKEN: TOKEN }
    const calm = await runProbe(sentryProbe, config, { secrets })
    assert.equal(calm.status, 'healthy', calm.error)
    const issuesPath = seen.find((s) => s.path.includes('/issues/'))!.path
    const query = new URL(`http://x${issuesPath}`).searchParams
    assert.equal(query.get('query'), 'is:unresolved environment:production')
    assert.equal(query.get('statsPeriod'), '24h')
    assert.equal(query.get('sort'), 'freq')
    const top = calm.measurements.top_issues as { title: string; share_pct: number }[]
    assert.deepEqual(top.map((t) => t.share_pct), [68, 22, 10])
    assert.deepEqual(calm.measurements.release, {
      version: 'shop@1.4.3',
      created: '2026-12-03T09:00:00Z',
      new_issues: 0,
    })

    newGroups = 4
    const warned = await runProbe(sentryProbe, config, { secrets })
    assert.equal(warned.status, 'degraded')
    assert.equal(
      warned.error,
      'release shop@1.4.3 brought 4 new issues (warning from 3, critical from 10); top error: Error: Database connection refused — 68 % of 1000 events',
    )
    newGroups = 12
    assert.equal((await runProbe(sentryProbe, config, { secrets })).status, 'down')

    const wrong = await runProbe(sentryProbe, config, { secrets: { VIGIL_SENTRY_TOKEN: 'nope' } })
    assert.equal(wrong.error, 'Sentry token in VIGIL_SENTRY_TOKEN rejected (HTTP 401)')
    const missing = await runProbe(sentryProbe, { ...config, project: 'gone' }, { secrets })
    assert.equal(
      missing.error,
      'Sentry project acme/gone not found (HTTP 404): The requested resource does not exist',
    )
    shape = false
    const odd = await runProbe(sentryProbe, config, { secrets })
    assert.match(odd.error!, /^unexpected answer from the Sentry API: /)
    for (const r of [calm, warned, wrong, missing, odd]) assertNoSecrets(r, [TOKEN])
  })
})

Deno.test('sentry: an unset token is down naming the secret; bad config is refused naming the field', async () => {
  const unset = await runProbe(sentryProbe, { organization: 'acme', project: 'shop' })
  assert.equal(unset.status, 'down')
  assert.equal(unset.error, 'secret VIGIL_SENTRY_TOKEN is not set')
  assert.throws(
    () => sentryProbe.config.parse({ organization: 'acme', project: 'a/b' }),
    /Sentry project slug/,
  )
  assert.throws(
    () =>
      sentryProbe.config.parse({
        organization: 'acme',
        project: 'shop',
        new_issues_warning: 20,
        new_issues_critical: 10,
      }),
    /new_issues_warning must not be above new_issues_critical/,
  )
})
