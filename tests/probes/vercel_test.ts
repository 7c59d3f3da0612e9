// The vercel probe against the demo's Vercel stand-in (demo/vercel.ts, which checks the token and
// the query as Vercel's API does) and, for builds that hang, a small peer of its own: a failed
// build is a decisive deploy_failed finding; a build past 5 minutes warns, past 15 pages.
import assert from 'node:assert/strict'
import { startVercel, type Vercel } from '../../demo/vercel.ts'
import { VercelConfig } from '../../shared/probe-configs.ts'
import { vercelProbe } from '../../supabase/functions/_shared/probes/vercel.ts'
import { assertNoSecrets, json, runProbe, withPeer } from './_harness.ts'

const TOKEN = 'vercel-token-0f1e2d3c4b5a69788796a5b4'
const HOOK = 'hook-secret-9a8b7c6d5e4f'
const CONTROL = 'control-token-1234567890abcdef'
const secrets = { VIGIL_VERCEL_TOKEN: TOKEN }

async function withVercel(fn: (v: Vercel) => Promise<void>) {
  const v = await startVercel({
    port: 0,
    hostname: '127.0.0.1',
    projectId: 'prj_demo0001',
    projectName: 'demo-shop',
    token: TOKEN,
    hookId: HOOK,
    controlToken: CONTROL,
    version: 'v1',
    onProduction: () => Promise.resolve(),
  })
  try {
    await fn(v)
  } finally {
    await v.stop()
  }
}

async function chaos(v: Vercel, body: unknown) {
  const res = await fetch(`${v.url}/_chaos`, {
    method: 'POST',
    headers: { authorization: `Bearer ${CONTROL}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  assert.equal(res.status, 200, await res.text())
}

async function deploy(v: Vercel) {
  const res = await fetch(v.deployHookUrl, { method: 'POST' })
  assert.equal(res.status, 201)
  await res.body?.cancel()
}

Deno.test('vercel: ready, then a failed build (decisive deploy_failed), then ready again', async () => {
  await withVercel(async (v) => {
    const config = { api_url: v.url, project_id: 'prj_demo0001' }
    const first = await runProbe(vercelProbe, config, { secrets })
    assert.equal(first.status, 'healthy', first.error)
    const served = (first.measurements.serving as { id: string }).id
    assert.equal((first.measurements.latest as { state: string }).state, 'READY')

    await chaos(v, { fail_deploys: 1 })
    await deploy(v)
    const failed = await runProbe(vercelProbe, config, { secrets })
    assert.equal(failed.status, 'degraded')
    assert.equal(failed.measurements.decisive_status, 'degraded')
    const latest = failed.measurements.latest as { id: string; state: string }
    assert.equal(latest.state, 'ERROR')
    assert.deepEqual(failed.findings, [{
      kind: 'deploy_failed',
      status: 'degraded',
      evidence: {
        deployment_id: latest.id,
        error: 'BUILD_FAILED: Command "npm run build" exited with 1',
      },
    }])
    assert.match(failed.error!, new RegExp(`deployment ${latest.id} failed: BUILD_FAILED`))
    assert.match(failed.error!, new RegExp(`${served} still serves`))
    assert.equal((failed.measurements.serving as { id: string }).id, served)

    await deploy(v)
    const again = await runProbe(vercelProbe, config, { secrets })
    assert.equal(again.status, 'healthy', again.error)
    assert.equal(again.findings, undefined)
    assert.notEqual((again.measurements.serving as { id: string }).id, served)

    // What the stand-in saw: the deployments list, with the token, for the project's production.
    const asked = v.requests().filter((r) => r.path === '/v6/deployments')
    assert.equal(asked.length, 3)
    for (const r of asked) {
      assert.ok(r.authorized)
      assert.equal(r.query.projectId, 'prj_demo0001')
      assert.equal(r.query.target, 'production')
    }
  })
})

Deno.test('vercel: a wrong token, an unknown project or no token set is down, never leaking the token', async () => {
  await withVercel(async (v) => {
    const wrong = await runProbe(
      vercelProbe,
      { api_url: v.url, project_id: 'prj_demo0001' },
      { secrets: { VIGIL_VERCEL_TOKEN: 'not-the-token-0000000000' } },
    )
    assert.equal(wrong.status, 'down')
    assert.match(wrong.error!, /Vercel token in VIGIL_VERCEL_TOKEN rejected \(HTTP 403\)/)
    assertNoSecrets(wrong, ['not-the-token-0000000000'])

    const unknown = await runProbe(vercelProbe, { api_url: v.url, project_id: 'prj_other' }, {
      secrets,
    })
    assert.equal(unknown.status, 'down')
    assert.match(unknown.error!, /project prj_other not found \(HTTP 404\): not_found/)
    assertNoSecrets(unknown, [TOKEN])

    const unset = await runProbe(vercelProbe, { api_url: v.url, project_id: 'prj_demo0001' })
    assert.equal(unset.status, 'down')
    assert.equal(unset.error, 'secret VIGIL_VERCEL_TOKEN is not set')
  })
})

Deno.test('vercel: a build running past 5 minutes warns, past 15 pages; a team id is sent', async () => {
  const minutesAgo = (m: number) => Date.now() - m * 60_000
  let building = minutesAgo(2)
  await withPeer(
    () => (req) => {
      if (req.headers.get('authorization') !== `Bearer ${TOKEN}`) return json({}, 403)
      return json({
        deployments: [
          { uid: 'dpl_new', created: building - 1000, buildingAt: building, state: 'BUILDING' },
          { uid: 'dpl_old', created: minutesAgo(60), state: 'READY', target: 'production' },
        ],
      })
    },
    async (url, seen) => {
      const config = { api_url: url, project_id: 'prj_x', team_id: 'team_y' }
      const fresh = await runProbe(vercelProbe, config, { secrets })
      assert.equal(fresh.status, 'healthy', fresh.error)
      assert.equal(fresh.measurements.build_minutes, 2)

      building = minutesAgo(6)
      const slow = await runProbe(vercelProbe, config, { secrets })
      assert.equal(slow.status, 'degraded')
      assert.match(slow.error!, /dpl_new has been building for 6 min \(warning from 5/)

      building = minutesAgo(16)
      const hung = await runProbe(vercelProbe, config, { secrets })
      assert.equal(hung.status, 'down')
      assert.equal(hung.measurements.decisive_status, 'down')
      assert.equal(hung.findings, undefined, 'a slow build is no failed deploy: no retry')

      const query = new URL(seen[0].path, url).searchParams
      assert.equal(query.get('teamId'), 'team_y')
      assert.equal(query.get('projectId'), 'prj_x')
    },
  )
})

Deno.test('vercel: rate limits, 5xx, foreign answers and no deployments at all', async () => {
  let answer = (): Response => json({}, 429)
  await withPeer(() => () => answer(), async (url) => {
    const config = { api_url: url, project_id: 'prj_x' }
    assert.equal((await runProbe(vercelProbe, config, { secrets })).status, 'degraded')

    answer = () => json({ error: { code: 'internal', message: `boom ${TOKEN}` } }, 502)
    const five = await runProbe(vercelProbe, config, { secrets })
    assert.equal(five.status, 'down')
    assert.match(five.error!, /HTTP 502: internal: boom \[redacted\]/)
    assertNoSecrets(five, [TOKEN])

    answer = () => new Response('<html>not json</html>', { status: 200 })
    const foreign = await runProbe(vercelProbe, config, { secrets })
    assert.equal(foreign.status, 'down')
    assert.match(foreign.error!, /unexpected answer from the Vercel API/)

    answer = () => json({ deployments: [] })
    const none = await runProbe(vercelProbe, config, { secrets })
    assert.equal(none.status, 'healthy')
    assert.equal(none.measurements.deployments, 0)
  })
})

Deno.test('vercel config: ids that go into a URL path, and warning never above critical', () => {
  const bad = VercelConfig.safeParse({
    project_id: 'prj/../../x',
    build_warning_minutes: 20,
    build_critical_minutes: 10,
  })
  assert.ok(!bad.success)
  const paths = bad.error.issues.map((i) => i.path.join('.'))
  assert.ok(paths.includes('project_id'), JSON.stringify(paths))
  const order = VercelConfig.safeParse({
    project_id: 'prj_ok',
    build_warning_minutes: 20,
    build_critical_minutes: 10,
  })
  assert.ok(!order.success)
  assert.deepEqual(order.error.issues.map((i) => i.path.join('.')), ['build_warning_minutes'])
})
