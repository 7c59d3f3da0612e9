import assert from 'node:assert/strict'
import { SERVICE_KINDS } from '../../shared/kinds.ts'
import {
  PROBE_CONFIGS,
  probeConfigJsonSchema,
  projectKeyRefusal,
} from '../../shared/probe-configs.ts'
import { PROBES } from '../../supabase/functions/_shared/probes/registry.ts'
import { testSql } from '../_env.ts'

Deno.test('SQL enforces exactly the config schema each probe kind declares in shared/probe-configs.ts', async () => {
  const sql = testSql()
  try {
    const rows = await sql<{ kind: string; schema: Record<string, unknown> }[]>`
      select kind::text, schema from vigil.probe_config_schemas`
    const inSql = Object.fromEntries(rows.map((r) => [r.kind, r.schema]))
    assert.deepEqual(Object.keys(inSql).sort(), [...SERVICE_KINDS].sort())
    for (const kind of SERVICE_KINDS) {
      assert.deepEqual(
        inSql[kind],
        probeConfigJsonSchema(kind),
        `vigil.probe_config_schemas is stale for ${kind}: write a migration with devstack/probe-schemas-sql.ts`,
      )
    }
  } finally {
    await sql.end()
  }
})

Deno.test("every kind has a probe whose config schema is its kind's", () => {
  for (const kind of SERVICE_KINDS) {
    assert.equal(PROBES[kind].kind, kind)
    assert.equal(PROBES[kind].config, PROBE_CONFIGS[kind], kind)
  }
})

Deno.test('a config SQL accepts, zod accepts too (and the other way round) for representative configs', async (t) => {
  const sql = testSql()
  const cases: [string, string, unknown][] = [
    ['http minimal', 'http', { url: 'https://example.org/' }],
    ['http full', 'http', {
      url: 'http://x.test/h',
      method: 'POST',
      body: '{}',
      expected_status: [200, 201],
      json_path: '$.a[0].b',
      json_equals: 'ok',
      expected_version: { value: '1.2.3', header: 'x-version' },
      header_secrets: { Authorization: 'API_TOKEN' },
    }],
    ['http without url', 'http', { method: 'GET' }],
    ['http bad status', 'http', { url: 'https://example.org/', expected_status: [700] }],
    ['http unknown field', 'http', { url: 'https://example.org/', retries: 3 }],
    ['http bad json path', 'http', { url: 'https://example.org/', json_path: 'data.status' }],
    ['postgres default', 'postgres', {}],
    ['postgres lowercase secret', 'postgres', { connection_secret: 'db_url' }],
    ['postgres ratio above 1', 'postgres', { cache_hit_warning_ratio: 1.5 }],
    ['heartbeat ping', 'heartbeat', { source: 'ping', period_seconds: 60 }],
    ['heartbeat cron without job', 'heartbeat', { source: 'cron', period_seconds: 60 }],
    ['heartbeat unknown source', 'heartbeat', { source: 'email', period_seconds: 60 }],
    ['management ref', 'supabase_management', { project_ref: 'abcdefghijklmnopqrst' }],
    ['management short ref', 'supabase_management', { project_ref: 'abc' }],
    ['auth login bad email', 'supabase_auth', {
      synthetic_login: { email: 'nope', password_secret: 'PW' },
    }],
    ['prometheus', 'prometheus', {
      url: 'https://x.test/metrics',
      basic_auth: { username: 'service_role', password_secret: 'KEY' },
    }],
  ]
  try {
    for (const [name, kind, config] of cases) {
      await t.step(name, async () => {
        const zodOk = PROBE_CONFIGS[kind as keyof typeof PROBE_CONFIGS].safeParse(config).success
        const [{ errors }] = await sql`
          select vigil.json_schema_errors(schema, ${sql.json(config as never)}, 'config') as errors
            from vigil.probe_config_schemas where kind = ${kind}`
        assert.equal(
          errors.length === 0,
          zodOk,
          `zod ${zodOk ? 'accepts' : 'refuses'}, SQL says ${JSON.stringify(errors)}`,
        )
      })
    }
  } finally {
    await sql.end()
  }
})

Deno.test("the project's keys go only to the project's own origin: same scheme and host", () => {
  const project = 'https://abc.supabase.co'
  const key = { apikey_secret: 'SUPABASE_SERVICE_ROLE_KEY' }
  assert.equal(projectKeyRefusal(key, project), null, 'no URL: the project itself')
  assert.equal(projectKeyRefusal({ ...key, url: 'https://abc.supabase.co/storage' }, project), null)
  assert.equal(projectKeyRefusal({ ...key, url: 'wss://abc.supabase.co/realtime' }, project), null)
  for (
    const url of ['http://abc.supabase.co', 'https://evil.example', 'https://abc.supabase.co:8443']
  ) {
    assert.match(
      projectKeyRefusal({ ...key, url }, project) ?? '',
      /^secret SUPABASE_SERVICE_ROLE_KEY is sent only to the project's own URL/,
      url,
    )
  }
  assert.equal(
    projectKeyRefusal({ url: 'https://evil.example', apikey_secret: 'VIGIL_X' }, project),
    null,
  )
})
