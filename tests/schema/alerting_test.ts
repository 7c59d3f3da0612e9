// shared/alerting.ts mirrors the alerting knobs and routes of SQL: the same defaults, the same
// valid and invalid values, the same priority for a severity and environment.
import assert from 'node:assert/strict'
import {
  AlertRoute,
  AlertSettingOverrides,
  AlertSettings,
  DEFAULT_ALERT_SETTINGS,
  DEFAULT_ROUTES,
  PRIORITIES,
  priorityOf,
} from '../../shared/alerting.ts'
import { ENVIRONMENTS, SEVERITIES } from '../../shared/kinds.ts'
import { testSql } from '../_env.ts'

/** Runs `fn` in a transaction that is always rolled back; resolves with the SQL error code, or null. */
async function sqlRefuses(sql: ReturnType<typeof testSql>, fn: (tx: any) => Promise<unknown>) {
  try {
    await sql.begin(async (tx) => {
      await fn(tx)
      throw new Error('rollback')
    })
  } catch (err) {
    if ((err as Error).message === 'rollback') return null
    return (err as { code?: string }).code ?? 'error'
  }
  return null
}

Deno.test('the alerting defaults of vigil.settings and vigil.alert_routes are those of shared/alerting.ts', async () => {
  const sql = testSql()
  try {
    const columns = await sql<{ column_name: string; column_default: string }[]>`
      select column_name, column_default from information_schema.columns
       where table_schema = 'vigil' and table_name = 'settings' and column_name in ${
      sql(Object.keys(DEFAULT_ALERT_SETTINGS))
    }`
    assert.deepEqual(
      Object.fromEntries(columns.map((c) => [c.column_name, Number(c.column_default)])),
      DEFAULT_ALERT_SETTINGS,
    )
    assert.ok(AlertSettings.safeParse(DEFAULT_ALERT_SETTINGS).success)
    const routes = await sql<
      {
        environment: string
        priority: string
        route: { channels: string[]; fallback: string[]; respect_quiet_hours: boolean }
      }[]
    >`
      select environment::text, priority,
             jsonb_build_object('channels', to_jsonb(channels), 'fallback', to_jsonb(fallback),
                                'respect_quiet_hours', respect_quiet_hours) as route
        from vigil.alert_routes order by environment, priority`
    assert.equal(routes.length, ENVIRONMENTS.length * PRIORITIES.length)
    for (const r of routes) {
      assert.deepEqual(
        r.route,
        DEFAULT_ROUTES[r.priority as keyof typeof DEFAULT_ROUTES],
        `${r.environment} ${r.priority}`,
      )
      assert.ok(
        AlertRoute.safeParse({ environment: r.environment, priority: r.priority, ...r.route })
          .success,
      )
    }
  } finally {
    await sql.end()
  }
})

Deno.test('zod and SQL agree on which alerting knobs and routes are valid', async (t) => {
  const sql = testSql()
  try {
    const settings: [string, Record<string, number>, boolean][] = [
      ['no grouping', { alert_group_seconds: 0 }, true],
      ['an hour of grouping and more', { alert_group_seconds: 3601 }, false],
      ['reminders every minute', { alert_reminder_minutes: 1 }, true],
      ['no reminder interval', { alert_reminder_minutes: 0 }, false],
      ['flapping at two changes', { flap_threshold: 2 }, true],
      ['flapping at one change', { flap_threshold: 1 }, false],
      ['backoff ceiling below its base', {
        alert_retry_base_seconds: 60,
        alert_retry_max_seconds: 30,
      }, false],
      ['a week of retries', { alert_give_up_hours: 168 }, true],
      ['more than a week', { alert_give_up_hours: 169 }, false],
      ['links for a month', { ack_link_hours: 720 }, true],
    ]
    for (const [name, overrides, valid] of settings) {
      await t.step(`settings: ${name}`, async () => {
        const zodOk = AlertSettingOverrides.safeParse(overrides).success &&
          AlertSettings.safeParse({ ...DEFAULT_ALERT_SETTINGS, ...overrides }).success
        const code = await sqlRefuses(
          sql,
          (tx) => tx`update vigil.settings set ${tx(overrides)} where environment = 'qa'`,
        )
        assert.deepEqual(
          { zodOk, sqlOk: code === null },
          { zodOk: valid, sqlOk: valid },
          `SQL said ${code}`,
        )
        if (!valid) assert.equal(code, '23514', 'refused by a CHECK constraint, not by accident')
      })
    }
    const routes: [string, Record<string, unknown>, boolean][] = [
      ['P2 to chat too', {
        priority: 'P2',
        channels: ['email', 'slack'],
        fallback: [],
        respect_quiet_hours: true,
      }, true],
      ['a page that waits for the morning', {
        priority: 'P1',
        channels: ['sms'],
        fallback: [],
        respect_quiet_hours: true,
      }, false],
      ['no channel at all', {
        priority: 'P3',
        channels: [],
        fallback: ['email'],
        respect_quiet_hours: true,
      }, false],
      ['a priority that does not exist', {
        priority: 'P9',
        channels: ['email'],
        fallback: [],
        respect_quiet_hours: true,
      }, false],
    ]
    for (const [name, route, valid] of routes) {
      await t.step(`routes: ${name}`, async () => {
        const zodOk = AlertRoute.safeParse({ environment: 'qa', ...route }).success
        const code = await sqlRefuses(
          sql,
          (tx) =>
            tx`insert into vigil.alert_routes (environment, priority, channels, fallback, respect_quiet_hours)
             values ('qa', ${route.priority as string}, ${route
              .channels as string[]}::vigil.alert_channel[],
                     ${route.fallback as string[]}::vigil.alert_channel[], ${route
              .respect_quiet_hours as boolean})
             on conflict (environment, priority) do update
               set channels = excluded.channels, fallback = excluded.fallback, respect_quiet_hours = excluded.respect_quiet_hours`,
        )
        assert.deepEqual(
          { zodOk, sqlOk: code === null },
          { zodOk: valid, sqlOk: valid },
          `SQL said ${code}`,
        )
        if (!valid) assert.equal(code, '23514', 'refused by a CHECK constraint, not by accident')
      })
    }
  } finally {
    await sql.end()
  }
})

Deno.test('priorityOf agrees with vigil.alert_priority for every severity and environment', async () => {
  const sql = testSql()
  try {
    for (const severity of SEVERITIES) {
      for (const environment of ENVIRONMENTS) {
        const [{ p }] =
          await sql`select vigil.alert_priority(${severity}::vigil.severity, ${environment}::vigil.environment) as p`
        assert.equal(priorityOf(severity, environment), p, `${severity} in ${environment}`)
      }
    }
  } finally {
    await sql.end()
  }
})

Deno.test('SQL refuses a bad knob or route naming every wrong field, as zod does', async () => {
  const sql = testSql()
  try {
    await assert.rejects(
      sql.begin((tx) =>
        tx`update vigil.settings set flap_threshold = 1, alert_retry_base_seconds = 60,
                                                  alert_retry_max_seconds = 30 where environment = 'qa'`
      ),
      (e: Error) =>
        e.message ===
          'invalid alerting settings for qa: flap_threshold: must be from 2 to 100, got 1; ' +
            'alert_retry_max_seconds: must be at least alert_retry_base_seconds (60)',
    )
    const zod = AlertSettings.safeParse({
      ...DEFAULT_ALERT_SETTINGS,
      flap_threshold: 1,
      alert_retry_base_seconds: 60,
      alert_retry_max_seconds: 30,
    })
    assert.deepEqual(
      zod.success ? [] : zod.error.issues.map((i) => i.path.join('.')).sort(),
      ['alert_retry_max_seconds', 'flap_threshold'],
      'zod names the same fields',
    )
    await assert.rejects(
      sql`update vigil.alert_routes set channels = '{}', respect_quiet_hours = true where environment = 'qa' and priority = 'P1'`,
      (e: Error) =>
        e.message === 'invalid alert route qa P1: channels: must name 1 to 6 channels; ' +
            'respect_quiet_hours: P0 and P1 wake people up: they cannot wait for quiet hours to end',
    )
  } finally {
    await sql.end()
  }
})
