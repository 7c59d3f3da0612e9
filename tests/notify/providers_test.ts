// The provider stand-ins themselves, as `npm start` and the stack's tests use them: credentials in
// the real formats, and the controls over HTTP (recorded requests, behaviours, the page a developer
// opens) that a test in another process drives.
import assert from 'node:assert/strict'
import {
  LOCAL_PROVIDER_CREDENTIALS,
  type Recorded,
  startProviders,
} from '../../devstack/providers.ts'
import { notifierFor } from '../../supabase/functions/_shared/notify/registry.ts'
import { endpoint, notifyEnv, page } from './_alerts.ts'

Deno.test('local credentials are in the providers’ formats', () => {
  const c = LOCAL_PROVIDER_CREDENTIALS
  assert.match(c.twilioAccountSid, /^AC[0-9a-f]{32}$/)
  assert.match(c.twilioAuthToken, /^[0-9a-f]{32}$/)
  assert.match(c.twilioFrom, /^\+[1-9]\d{6,14}$/)
  assert.match(c.sendgridApiKey, /^SG\.[\w-]+\.[\w-]+$/)
  assert.equal(c.pagerdutyRoutingKey.length, 32)
  assert.match(c.slackPath, /^\/slack\/services\/T\w+\/B\w+\/\w+$/)
  assert.match(c.discordPath, /^\/discord\/api\/webhooks\/\d+\/[\w-]+$/)
})

Deno.test('controls over HTTP: behaviours, recorded requests, and the page of alerts', async () => {
  const p = await startProviders({ port: 0 })
  const env = notifyEnv(p.env())
  const slack = endpoint('slack', '#ops', 'VIGIL_LOCAL_SLACK_WEBHOOK_URL')
  const sms = endpoint('sms', '+15551234567')
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${p.url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return { status: res.status, text: await res.text() }
  }
  try {
    assert.equal(p.env().VIGIL_LOCAL_WEBHOOK_URL, `${p.url}/webhook/local`)
    const before = new Date()
    assert.equal(
      (await call('POST', '/_behaviour', {
        provider: 'slack',
        mode: 'status',
        status: 500,
        times: 2,
      }))
        .status,
      204,
    )
    assert.equal((await notifierFor('slack').send([page()], slack, env)).kind, 'retryable')
    assert.equal(
      (await notifierFor('sms').send([page()], sms, env)).kind,
      'delivered',
      'other providers unaffected',
    )
    assert.equal((await notifierFor('slack').send([page()], slack, env)).kind, 'retryable')
    assert.equal(
      (await notifierFor('slack').send([page()], slack, env)).kind,
      'delivered',
      'two times, then ok',
    )

    const recorded: Recorded[] = JSON.parse(
      (await call('GET', `/_recorded?provider=slack&since=${before.toISOString()}`)).text,
    )
    assert.deepEqual(recorded.map((r) => r.answered), [500, 500, 200])
    assert.ok(recorded.every((r) => r.provider === 'slack' && r.method === 'POST'))
    assert.equal(
      JSON.parse(
        (await call('GET', `/_recorded?since=${new Date(Date.now() + 60_000).toISOString()}`)).text,
      )
        .length,
      0,
    )

    const html = await call('GET', '/')
    assert.equal(html.status, 200)
    assert.ok(
      html.text.indexOf('SMS to +15551234567') > html.text.indexOf('Slack: '),
      'newest first',
    )
    assert.ok(html.text.includes('P1 PROD api is down'))

    assert.equal((await call('POST', '/_behaviour', { mode: 'hang' })).status, 204)
    assert.equal((await call('DELETE', '/_behaviour')).status, 204)
    assert.equal((await notifierFor('slack').send([page()], slack, env)).kind, 'delivered')
    assert.equal((await call('POST', '/_behaviour', { mode: 'explode' })).status, 400)

    assert.equal((await call('DELETE', '/_recorded')).status, 204)
    assert.equal(p.requests().length, 0)
    assert.equal((await call('GET', '/nothing-here')).status, 404)
  } finally {
    await p.stop()
  }
})

Deno.test('stop() ends requests left hanging', async () => {
  const p = await startProviders({ port: 0 })
  p.behave({ mode: 'hang' })
  const pending = fetch(`${p.url}/v2/enqueue`, { method: 'POST', body: '{}' })
  while (p.requests().length === 0) await new Promise((r) => setTimeout(r, 10))
  await p.stop()
  const res = await pending
  assert.equal(res.status, 503)
  await res.body?.cancel()
})
