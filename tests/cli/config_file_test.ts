// vigil.yml: what a file stands for (rows per table, per-environment overrides, deployments and
// ignore folded in), every error of a bad file at once with its path and line, and the plan apply
// makes from the file, the tables and the previous apply (drift, conflicts, removals, order).
import assert from 'node:assert/strict'
import {
  ConfigInvalid,
  dependencyCycles,
  keyOf,
  type Managed,
  parseConfig,
} from '../../cli/config-file.ts'
import { type ConfigState, describePlan, makePlan, same } from '../../cli/apply.ts'

const sample = await Deno.readTextFile(new URL('../../examples/vigil.yml', import.meta.url))

function errorsOf(text: string): string[] {
  try {
    parseConfig(text)
  } catch (error) {
    assert.ok(error instanceof ConfigInvalid, String(error))
    return error.message.split('\n').slice(1).map((l) => l.trim())
  }
  assert.fail('the file was accepted')
}

Deno.test('the sample stands for the README rows: thresholds per environment, policy, services, contacts', () => {
  const { managed } = parseConfig(sample)
  assert.deepEqual(managed.settings.prod.fields, {
    api_p95_warning_ms: 300,
    api_p95_critical_ms: 500,
    error_rate_warning_pct: 0.1,
    error_rate_critical_pct: 1,
    slow_query_ms: 1000,
  })
  assert.equal(managed.settings.dev.fields.api_p95_warning_ms, 200, 'the override is prod only')
  assert.deepEqual(Object.keys(managed.heal_policies), ['prod/rollback_deploy'])
  assert.deepEqual(managed.heal_policies['prod/rollback_deploy'].fields, {
    mode: 'auto',
    config: { auto_rollback_on_spike: true },
  })
  assert.equal(Object.keys(managed.services).length, 14)
  assert.deepEqual(managed.services['api-traffic'].fields.depends_on, ['database'])
  assert.deepEqual(managed.services.database.fields, {
    kind: 'postgres',
    environment: 'prod',
    config: {},
    enabled: true,
    description: null,
    timeout_ms: 10000,
    failure_threshold: 3,
    success_threshold: 2,
    actions: {},
    depends_on: null,
  }, "heal_enabled is people's switch: managed only where the file sets it")
  assert.deepEqual(Object.keys(managed.contacts).sort(), [
    '#ops/slack/*',
    'Ana/email/*',
    'Ana/sms/*',
    'Sam/pagerduty/*',
    'hook/webhook/*',
  ])
  assert.deepEqual(managed.log_patterns.checkout_failed.fields.sources, ['functions'])
})

Deno.test('deployments, ignore and environment overrides fold into the rows they concern', () => {
  const { managed } = parseConfig(`
version: 1
deployments: { rollback_threshold: 3 }
environments:
  qa:
    deployments: { rollback_window_minutes: 10, auto_rollback_on_spike: false }
    healing: { policies: { rollback_deploy: { mode: approval, config: { candidates: 5 } } } }
    alerts: { group_seconds: 0, routes: { P2: { channels: [slack], respect_quiet_hours: true } } }
healing:
  max_per_hour: 4
  breaker: { failure_ratio: 0.25 }
  policies: { add_missing_index: { config: {} } }
ignore:
  slow_queries: ["select count(*) from jobs"]
  log_patterns: [authentication_failures]
services:
  - { name: db, kind: postgres, environment: qa }
  - { name: t, kind: traffic, environment: qa, config: { project_ref: abcdefghijklmnopqrst, rollback_threshold: 5 } }
  - { name: t2, kind: traffic, config: { project_ref: abcdefghijklmnopqrst } }
`)
  assert.deepEqual(managed.services.t.fields.config, {
    project_ref: 'abcdefghijklmnopqrst',
    rollback_threshold: 5,
    rollback_window_minutes: 10,
  }, "a service's own value wins; its environment's window applies")
  assert.deepEqual(managed.services.t2.fields.config, {
    project_ref: 'abcdefghijklmnopqrst',
    rollback_threshold: 3,
  })
  assert.deepEqual(
    (managed.services.db.fields.config as { slow_ignore: string[] }).slow_ignore,
    ['select $1', 'select now()', 'select pg_sleep($1)', 'select count(*) from jobs'],
    'the ignored statements join the defaults',
  )
  assert.deepEqual(managed.log_patterns.authentication_failures, {
    key: { name: 'authentication_failures' },
    fields: { enabled: false },
  })
  assert.deepEqual(managed.heal_policies['qa/rollback_deploy'].fields, {
    mode: 'approval',
    config: { candidates: 5, auto_rollback_on_spike: false },
  })
  assert.equal(managed.heal_policies['prod/rollback_deploy'], undefined)
  assert.equal(
    managed.heal_policies['dev/add_missing_index'].fields.mode,
    'suggest',
    "a policy without a mode keeps the strategy's default",
  )
  assert.deepEqual(managed.settings.qa.fields, {
    alert_group_seconds: 0,
    heal_max_per_hour: 4,
    breaker_failure_ratio: 0.25,
  })
  assert.deepEqual(managed.alert_routes['qa/P2'].fields, {
    channels: ['slack'],
    respect_quiet_hours: true,
  }, 'a route field the file leaves out (fallback) stays as the row has it')
  assert.equal(managed.alert_routes['prod/P2'], undefined)
})

const BAD = `version: 1
monitoring:
  thresholds:
    api_p95_ms: { warning: 500, critical: 200 }
    latency: 3
services:
  - name: api
    kind: http
    config: { url: "not a url", retries: 2 }
    timeout_ms: "10s"
    depends_on: [db]
  - name: api
    kind: http
    config: { url: https://example.org }
  - name: db
    kind: postgres
    depends_on: [cache]
  - name: cache
    kind: http
    config: { url: https://cache.example.org }
    depends_on: [api, nowhere]
alerts:
  contacts:
    - { name: Ana, role: on_call, channel: sms, address: "555" }
healing:
  policies:
    terminate_blocker: { mode: auto, config: { min_wait_seconds: -1 } }
    reboot_everything: { mode: auto }
colour: blue
`

Deno.test('a bad file is refused with every error, each with its path and line', () => {
  const errors = errorsOf(BAD)
  // The shape's errors, and then what is wrong in meaning among what is well formed: all at once.
  assert.deepEqual(errors, [
    'vigil.yml:5:5 monitoring.thresholds.latency: unknown key',
    'vigil.yml:10:5 services[0].timeout_ms: Invalid input: expected number, received string',
    'vigil.yml:29:1 colour: unknown key',
    'vigil.yml:9:15 services[0].config.url: must be an http(s) URL',
    'vigil.yml:9:33 services[0].config.retries: unknown key',
    'vigil.yml:12:5 services[1].name: duplicate service name "api" (also services[0])',
    'vigil.yml:21:23 services[3].depends_on[1]: no service named "nowhere" in this file',
    'vigil.yml:11:5 services[0].depends_on: dependency cycle: api → db → cache → api',
    'vigil.yml:24:49 alerts.contacts[0].address: must be a phone number in E.164 form, like +15551234567',
    'vigil.yml:27:48 healing.policies.terminate_blocker.config.min_wait_seconds: Too small: expected number to be >=0',
    'vigil.yml:28:5 healing.policies.reboot_everything: no heal strategy "reboot_everything" (there are add_missing_index, analyze_tables, cancel_runaway_query, disable_service, kill_idle_connections, purge_cdn, purge_own_data, refresh_auth, renew_certificate, restart_service, retry_deploy, rollback_deploy, terminate_blocker, vacuum_analyze)',
    'vigil.yml:4:33 monitoring.thresholds.api_p95_ms.critical: critical (200) must be above warning (500)',
  ])

  // Well formed, the same file's meaning is all checked: heal policies and bands too.
  const meaning = errorsOf(
    BAD.replace('    latency: 3\n', '').replace('    timeout_ms: "10s"\n', '').replace(
      'colour: blue\n',
      '',
    ),
  )
  const want = [
    /^vigil\.yml:10:\d+ services\[1\]\.name: duplicate service name "api" \(also services\[0\]\)$/,
    /^vigil\.yml:8:\d+ services\[0\]\.config\.url: /,
    /^vigil\.yml:8:\d+ services\[0\]\.config\.retries: unknown key$/,
    /^vigil\.yml:19:\d+ services\[3\]\.depends_on\[1\]: no service named "nowhere" in this file$/,
    /services\[\d\]\.depends_on: dependency cycle: (api → db → cache → api|db → cache → api → db|cache → api → db → cache)$/,
    /^vigil\.yml:22:\d+ alerts\.contacts\[0\]\.address: must be a phone number in E\.164 form/,
    /healing\.policies\.terminate_blocker\.config\.min_wait_seconds: /,
    /^vigil\.yml:26:\d+ healing\.policies\.reboot_everything: no heal strategy "reboot_everything" \(there are .*terminate_blocker/,
    /^vigil\.yml:4:\d+ monitoring\.thresholds\.api_p95_ms\.critical: critical \(200\) must be above warning \(500\)$/,
  ]
  for (const e of want) assert.ok(meaning.some((l) => e.test(l)), `${e}\n${meaning.join('\n')}`)
  assert.equal(meaning.length, want.length, meaning.join('\n'))
  assert.equal(
    meaning.filter((l) => l.includes('dependency cycle')).length,
    1,
    'a cycle is said once',
  )
})

Deno.test('what the columns cannot hold is refused in the file: decimals, pairs, wake-up routes, long lists', () => {
  const errors = errorsOf(`version: 1
monitoring:
  thresholds:
    error_rate_pct: { warning: 0.1234 }
    memory_pct: { critical: 90.555 }
healing:
  breaker: { window: 4, min_heals: 5, failure_ratio: 0.333, cooldown_minutes: 2000 }
environments:
  qa:
    alerts: { retry_base_seconds: 60, retry_max_seconds: 30, routes: { P1: { respect_quiet_hours: true } } }
ignore:
  slow_queries: [${Array.from({ length: 100 }, (_, i) => `"select ${i}"`).join(', ')}]
services:
  - { name: db, kind: postgres, config: { slow_ignore: ["select 1000"] } }
`)
  const want = [
    /^vigil\.yml:4:\d+ monitoring\.thresholds\.error_rate_pct\.warning: must have at most 3 decimals/,
    /^vigil\.yml:5:\d+ monitoring\.thresholds\.memory_pct\.critical: must have at most 2 decimals/,
    /^vigil\.yml:7:\d+ healing\.breaker\.failure_ratio: must have at most 2 decimals/,
    /^vigil\.yml:7:\d+ healing\.breaker\.cooldown_minutes: Too big/,
    // Read from what is well formed, the pairs of columns too: all at once.
    /^vigil\.yml:7:\d+ healing\.breaker\.min_heals: must be at most the breaker's window \(4\)$/,
    /^vigil\.yml:10:\d+ environments\.qa\.alerts\.retry_max_seconds: must be at least retry_base_seconds \(60\)$/,
    /^vigil\.yml:10:\d+ environments\.qa\.alerts\.routes\.P1\.respect_quiet_hours: P0 and P1 wake people up/,
  ]
  for (const e of want) assert.ok(errors.some((l) => e.test(l)), `${e}\n${errors.join('\n')}`)
  assert.equal(errors.length, want.length, errors.join('\n'))

  const pairs = errorsOf(`version: 1
healing:
  breaker: { window: 4, min_heals: 5 }
environments:
  qa:
    alerts: { retry_base_seconds: 60, retry_max_seconds: 30, routes: { P1: { respect_quiet_hours: true } } }
`)
  assert.deepEqual(pairs, [
    "vigil.yml:3:25 healing.breaker.min_heals: must be at most the breaker's window (4)",
    'vigil.yml:6:39 environments.qa.alerts.retry_max_seconds: must be at least retry_base_seconds (60)',
    'vigil.yml:6:78 environments.qa.alerts.routes.P1.respect_quiet_hours: P0 and P1 wake people up: they cannot wait for quiet hours to end',
  ])
  // What ignore adds must still fit the kind's config.
  assert.deepEqual(
    errorsOf(`version: 1
ignore:
  slow_queries: [${Array.from({ length: 100 }, (_, i) => `"select ${i}"`).join(', ')}]
services:
  - { name: db, kind: postgres, config: { slow_ignore: ["select 1000"] } }
`),
    [
      'vigil.yml:5:43 services[0].config.slow_ignore: Too big: expected array to have <=100 items (with what ignore and deployments add to it)',
    ],
  )
})

Deno.test('an environment overrides a policy and a route field by field; Supabase topology counts in cycles', () => {
  const { managed } = parseConfig(`version: 1
healing:
  policies: { restart_service: { mode: approval, config: { verify_timeout_ms: 2000 } } }
alerts:
  routes: { P2: { channels: [email], fallback: [slack] } }
environments:
  prod:
    healing: { policies: { restart_service: { config: { verify_interval_ms: 500 } } } }
    alerts: { routes: { P2: { channels: [sms] } } }
`)
  assert.deepEqual(managed.heal_policies['prod/restart_service'].fields, {
    mode: 'approval',
    config: { verify_timeout_ms: 2000, verify_interval_ms: 500 },
  }, "prod's setting does not put prod back to the default mode")
  assert.deepEqual(managed.alert_routes['prod/P2'].fields, {
    channels: ['sms'],
    fallback: ['slack'],
  })

  const cycle = errorsOf(`version: 1
services:
  - { name: db, kind: postgres, depends_on: [auth] }
  - { name: auth, kind: supabase_auth }
`)
  assert.deepEqual(cycle, [
    'vigil.yml:3:33 services[0].depends_on: dependency cycle: db → auth → db',
  ], "auth's depends_on left null means it needs the database, as vigil.direct_dependencies() says")
})

Deno.test('YAML: merge keys work; an alias bomb is refused, not a crash', () => {
  const { managed } = parseConfig(`version: 1
services:
  - &web { name: web, kind: http, timeout_ms: 2000, config: { url: https://a.example.org } }
  - { <<: *web, name: web2 }
`)
  assert.equal(managed.services.web2.fields.timeout_ms, 2000)
  const bomb = ['version: 1', 'a: &a [x, x, x, x, x, x, x, x, x, x]']
  for (let i = 0; i < 8; i++) {
    bomb.push(
      `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${
        Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')
      }]`,
    )
  }
  assert.match(errorsOf(bomb.join('\n') + '\n')[0], /^\(file\): .*alias/i)
})

Deno.test('syntax errors, duplicate keys, a wrong version and a file that is not a mapping', () => {
  assert.match(errorsOf('version: 1\nservices: [\n')[0], /^vigil\.yml:\d+:\d+ \(file\): /)
  assert.match(errorsOf('version: 1\nversion: 2\n')[0], /^vigil\.yml:2:1 \(file\): .*unique/i)
  assert.match(errorsOf('version: 2\n')[0], /^vigil\.yml:1:1 version: /)
  assert.match(errorsOf('- a\n- b\n')[0], /^\(file\): must be a mapping/)
  assert.match(errorsOf('services: []\n')[0], /^vigil\.yml:1:1 version: must be 1 /)
})

Deno.test('dependency cycles are found once each, self-loops and long rings included', () => {
  const s = (name: string, ...depends_on: string[]) => ({ name, depends_on })
  assert.deepEqual(dependencyCycles([s('a', 'b'), s('b', 'c'), s('c', 'a'), s('d', 'a')]), [[
    'a',
    'b',
    'c',
  ]])
  assert.deepEqual(dependencyCycles([s('a'), s('b', 'a'), s('c', 'b', 'a')]), [])
  assert.equal(dependencyCycles([s('x', 'y'), s('y', 'x'), s('p', 'q'), s('q', 'p')]).length, 2)
})

const empty = (): ConfigState['current'] => ({
  settings: [{ environment: 'prod', api_p95_warning_ms: 200, slow_query_ms: 1000 }],
  alert_routes: [],
  services: [],
  contacts: [],
  heal_policies: [],
  log_patterns: [],
})
const file = (services: string) =>
  parseConfig(`version: 1
environments: { prod: { monitoring: { thresholds: { api_p95_ms: { warning: 300 } } } } }
services:
${services}`).managed

Deno.test('a plan: what to add and change; applied, the same file plans nothing', () => {
  const desired = file(
    `  - { name: web, kind: http, config: { url: https://example.org }, depends_on: [api] }
  - { name: api, kind: http, config: { url: https://api.example.org } }`,
  )
  const first = makePlan(desired, { db_schema: null, last_apply: null, current: empty() }, {
    prune: false,
  })
  assert.deepEqual(first.ops.map((o) => `${o.op} ${o.table} ${JSON.stringify(o.key)}`), [
    'update settings {"environment":"prod"}',
    'insert services {"name":"api"}',
    'insert services {"name":"web"}',
  ], 'what a service depends on goes in first')
  assert.deepEqual(first.ops[0].before, { api_p95_warning_ms: 200 })
  assert.match(
    describePlan(first, { db_schema: null, last_apply: null, current: empty() }),
    /^~ settings prod\n {4}api_p95_warning_ms: 200 → 300\n\+ services api\n {4}kind: "http"\n {4}config: \{"url":"https:\/\/api\.example\.org"\}\n/,
  )

  const after = applied(desired, 1)
  const second = makePlan(desired, after, { prune: false })
  assert.deepEqual(second.ops, [])
  assert.deepEqual(second.drift, [])
  assert.equal(second.managedChanged, false)
  assert.match(
    describePlan(second, after),
    /^No changes: the database holds what the file says\.$/m,
  )
})

Deno.test('drift: what SQL changed since is reported, a conflict marked, agreement not', () => {
  const desired = file('  - { name: api, kind: http, config: { url: https://api.example.org } }')
  const state = applied(desired, 7)
  const api = state.current.services[0]
  api.timeout_ms = 5000
  api.description = 'changed by hand'
  state.current.settings[0].api_p95_warning_ms = 250
  const plan = makePlan(desired, state, { prune: false })
  assert.deepEqual(plan.drift.map((d) => [d.table, d.key, d.conflict]), [
    ['settings', 'prod', true],
    ['services', 'api', true],
  ])
  assert.deepEqual(plan.drift[1].fields?.map((f) => f.field), ['description', 'timeout_ms'])
  const text = describePlan(plan, state)
  assert.match(text, /^! services api: timeout_ms was 10000, is 5000; the file says 10000$/m)

  // The file taking up the change agrees with it: drift, but nothing to overwrite.
  const agreeing = file(
    '  - { name: api, kind: http, timeout_ms: 5000, description: changed by hand, config: { url: https://api.example.org } }',
  )
  const ok = makePlan(agreeing, state, { prune: false })
  assert.equal(ok.drift.find((d) => d.table === 'services')?.conflict, false)
  assert.match(
    describePlan(ok, state),
    /^ {2}services api: timeout_ms was 10000, is 5000; the file agrees$/m,
  )

  // A managed row deleted in SQL, which the file still wants: a conflict to recreate it.
  const gone = applied(desired, 8)
  gone.current.services = []
  const recreate = makePlan(desired, gone, { prune: false })
  assert.deepEqual(recreate.drift.map((d) => [d.key, d.fields, d.conflict]), [['api', null, true]])
  assert.equal(recreate.ops.find((o) => o.table === 'services')?.op, 'insert')
})

Deno.test('a row the file dropped: a service is disabled (deleted with --prune), a policy deleted, settings released', () => {
  const before = parseConfig(`version: 1
healing: { max_per_hour: 4, policies: { terminate_blocker: { mode: approval } } }
alerts:
  contacts: [{ name: Ana, role: on_call, channel: email, address: ana@example.org }]
services:
  - { name: api, kind: http, config: { url: https://api.example.org } }`).managed
  const state = applied(before, 3)
  const now = parseConfig('version: 1\n').managed
  const plan = makePlan(now, state, { prune: false })
  const said = plan.ops.map((o) => `${o.op} ${o.table} ${JSON.stringify(o.set ?? null)}`).sort()
  assert.deepEqual(said, [
    'delete heal_policies null',
    'delete heal_policies null',
    'delete heal_policies null',
    'update contacts {"enabled":false}',
    'update services {"enabled":false}',
  ])
  assert.deepEqual(plan.released.map((r) => `${r.table} ${r.key}`), [
    'settings dev',
    'settings prod',
    'settings qa',
  ])
  const pruned = makePlan(now, state, { prune: true })
  assert.deepEqual(
    pruned.ops.filter((o) => o.table !== 'heal_policies').map((o) => `${o.op} ${o.table}`).sort(),
    ['delete contacts', 'delete services'],
  )
  assert.match(
    describePlan(plan, state),
    /^- services api: no longer in the file: disabled, kept with its history \(--prune deletes it\)$/m,
  )
})

Deno.test('rows apply cannot make are problems, named: duplicates in the table, an unknown pattern to ignore', () => {
  const desired = parseConfig(`version: 1
ignore: { log_patterns: [no_such_pattern] }
alerts:
  contacts: [{ name: Ana, role: on_call, channel: email, address: ana@example.org }]`).managed
  const current = empty()
  const ana = {
    name: 'Ana',
    channel: 'email',
    environment: null,
    role: 'on_call',
    address: 'a@example.org',
    secret_name: null,
    quiet_hours: null,
    enabled: true,
  }
  current.contacts = [ana, { ...ana, address: 'b@example.org' }]
  const plan = makePlan(desired, { db_schema: null, last_apply: null, current }, { prune: false })
  assert.deepEqual(plan.problems.map((p) => `${p.table} ${p.key}`), [
    'contacts Ana/email/*',
    'log_patterns no_such_pattern',
  ])
})

Deno.test('same(): JSON values, numbers by value and objects in any key order, types kept apart', () => {
  assert.ok(same({ a: 1, b: [1, { c: 0.1 }] }, { b: [1, { c: 0.100 }], a: 1 }))
  assert.ok(same(null, undefined))
  assert.ok(!same([1, 2], [2, 1]))
  assert.ok(!same({ a: 1 }, { a: 1, b: 2 }))
  for (const [a, b] of [['1', 1], [true, 1], [0, ''], [0, []], ['200', 200], [false, 0]]) {
    assert.ok(!same(a, b), `${JSON.stringify(a)} is not ${JSON.stringify(b)}`)
  }
})

Deno.test("services are written in the file's dependency order, updates too, so no step makes a cycle", () => {
  const desired = file(
    `  - { name: a, kind: http, config: { url: https://a.example.org }, depends_on: [b] }
  - { name: b, kind: http, config: { url: https://b.example.org } }
  - { name: c, kind: http, config: { url: https://c.example.org }, depends_on: [a] }`,
  )
  const current = empty()
  const row = (name: string, depends_on: string[] | null) => ({
    ...desired.services[name].key,
    ...desired.services[name].fields,
    depends_on,
  })
  // The tables hold b → a: updating a first would make a → b → a.
  current.services = [row('a', null), row('b', ['a'])]
  const plan = makePlan(desired, { db_schema: null, last_apply: null, current }, { prune: false })
  assert.deepEqual(
    plan.ops.filter((o) => o.table === 'services').map((o) => `${o.op} ${o.key.name}`),
    ['update b', 'update a', 'insert c'],
  )
})

Deno.test('--prune: a healed service is kept disabled, said so; a retired one is pruned later; built-in patterns never deleted', () => {
  const before = parseConfig(`version: 1
ignore: { log_patterns: [authentication_failures] }
log_patterns:
  - { name: server_panic, pattern: PANIC, severity: critical }
services:
  - { name: old, kind: http, config: { url: https://old.example.org } }
  - { name: healed, kind: http, config: { url: https://healed.example.org } }`).managed
  const state = applied(before, 5)
  state.current.services.find((s) => s.name === 'healed')!.healed = true
  for (const p of state.current.log_patterns) p.builtin = true
  const now = parseConfig('version: 1\n').managed

  // Dropped without --prune: disabled, and remembered as retired.
  const first = makePlan(now, state, { prune: false })
  assert.deepEqual(
    first.ops.map((o) => `${o.op} ${o.table} ${keyOf(o.table, o.key)} ${JSON.stringify(o.set)}`),
    [
      'update log_patterns authentication_failures {"enabled":true}',
      'update services healed {"enabled":false}',
      'update services old {"enabled":false}',
    ],
    'the ignored built-in is on again; the redefined built-in is left as it is',
  )
  assert.deepEqual(first.released.map((r) => `${r.table} ${r.key}`), ['log_patterns server_panic'])
  assert.deepEqual(Object.keys(first.record.retired?.services ?? {}), ['healed', 'old'])
  assert.match(
    describePlan(first, state),
    /^~ log_patterns authentication_failures: no longer ignored: on again$/m,
  )

  // Next apply, --prune: the retired service goes, the healed one stays disabled, and is said so.
  const later = applied(first.record, 6)
  later.current.services = state.current.services.map((s) => ({ ...s, enabled: false }))
  const pruned = makePlan(now, later, { prune: true })
  assert.deepEqual(pruned.ops.map((o) => `${o.op} ${o.table} ${o.key.name}`), [
    'delete services old',
  ])
  assert.deepEqual(pruned.notes, [
    'services healed is kept (disabled), not deleted: the heal audit names it, and the audit is append-only',
  ])
  assert.deepEqual(Object.keys(pruned.record.retired?.services ?? {}), ['healed'])
})

Deno.test('a settings value is checked against the rest of the row as it stands', () => {
  const desired = parseConfig(`version: 1
environments: { prod: { monitoring: { thresholds: { api_p95_ms: { warning: 900 } } } } }`).managed
  const current = empty()
  current.settings = [{ environment: 'prod', api_p95_warning_ms: 200, api_p95_critical_ms: 500 }]
  const plan = makePlan(desired, { db_schema: null, last_apply: null, current }, { prune: false })
  assert.deepEqual(plan.problems.map((p) => `${p.table} ${p.key}: ${p.message}`), [
    'settings prod: api_p95_critical_ms: critical (500) must be above warning (900) (with what the row holds now for the rest)',
  ])
})

Deno.test("the plan never prints a probe's literal header values", () => {
  const desired = file(
    '  - { name: api, kind: http, config: { url: https://api.example.org, headers: { authorization: Bearer s3cr3t-token } } }',
  )
  const state: ConfigState = { db_schema: null, last_apply: null, current: empty() }
  const text = describePlan(makePlan(desired, state, { prune: false }), state)
  assert.match(text, /"headers":\{"authorization":"…"\}/)
  assert.doesNotMatch(text, /s3cr3t/)
})

/** The state right after `desired` was applied as apply `id`: tables and record agree. */
function applied(desired: Managed, id: number): ConfigState {
  const current = empty()
  const rows = (table: keyof Managed) =>
    Object.values(desired[table]).map((e) => ({ ...e.key, ...e.fields }))
  current.settings = current.settings.map((row) => ({
    ...row,
    ...(desired.settings[String(row.environment)]?.fields ?? {}),
  }))
  for (const env of ['dev', 'qa']) {
    if (desired.settings[env]) {
      current.settings.push({ environment: env, ...desired.settings[env].fields })
    }
  }
  current.services = rows('services')
  current.contacts = rows('contacts')
  current.heal_policies = rows('heal_policies')
  current.log_patterns = rows('log_patterns')
  return {
    db_schema: null,
    last_apply: {
      id,
      applied_at: '2026-12-03T10:00:00Z',
      applied_by: 'test',
      source: 'vigil.yml',
      managed: structuredClone(desired),
    },
    current,
  }
}

Deno.test("the README's vigil.yml example is a valid file, meaning what the README says", async () => {
  const readme = await Deno.readTextFile(new URL('../../README.md', import.meta.url))
  const section = readme.slice(readme.indexOf('### Configuration as code'))
  const example = section.match(/```yaml\n([\s\S]*?)```/)?.[1]
  assert.ok(example, 'the README shows a vigil.yml')
  const { managed } = parseConfig(example)
  assert.deepEqual(managed.heal_policies['prod/add_missing_index'].fields, {
    mode: 'auto',
    config: { mode: 'create', min_mean_ms: 200 },
  })
  assert.deepEqual(managed.heal_policies['prod/rollback_deploy'].fields.config, {
    auto_rollback_on_spike: true,
  })
  assert.deepEqual(managed.heal_policies['qa/rollback_deploy'].fields.config, {
    auto_rollback_on_spike: false,
  })
  assert.deepEqual(managed.settings.prod.fields, {
    api_p95_warning_ms: 300,
    api_p95_critical_ms: 500,
    error_rate_warning_pct: 0.1,
    error_rate_critical_pct: 1,
    slow_query_ms: 1000,
    alert_group_seconds: 30,
    heal_max_per_hour: 10,
    protected_applications: ['nightly-etl'],
    breaker_window: 6,
    breaker_failure_ratio: 0.5,
  })
})
