import assert from 'node:assert/strict'
import { z } from 'zod'
import {
  BANDS,
  classify,
  DEFAULT_THRESHOLDS,
  describeIssues,
  resolveThresholds,
  ThresholdOverrides,
  Thresholds,
} from '../../shared/thresholds.ts'
import { testSql } from '../_env.ts'

Deno.test('the column defaults of vigil.settings are the spec defaults in shared/thresholds.ts', async () => {
  const sql = testSql()
  try {
    const rows = await sql<Record<string, string>[]>`
      select environment::text, ${
      sql(Object.keys(DEFAULT_THRESHOLDS))
    } from vigil.settings s order by s.environment`
    assert.deepEqual(rows.map((r) => r.environment), ['dev', 'qa', 'prod'])
    for (const row of rows) {
      const asNumbers = Object.fromEntries(
        Object.keys(DEFAULT_THRESHOLDS).map((k) => [k, Number(row[k])]),
      )
      assert.deepEqual(asNumbers, DEFAULT_THRESHOLDS, `settings row ${row.environment}`)
    }
    const columns = await sql<{ column_name: string; column_default: string }[]>`
      select column_name, column_default from information_schema.columns
       where table_schema = 'vigil' and table_name = 'settings' and column_name in ${
      sql(Object.keys(DEFAULT_THRESHOLDS))
    }`
    const defaults = Object.fromEntries(
      columns.map((c) => [c.column_name, Number(c.column_default)]),
    )
    assert.deepEqual(
      defaults,
      DEFAULT_THRESHOLDS,
      'a new environment row starts from the spec defaults',
    )
  } finally {
    await sql.end()
  }
})

Deno.test('zod and SQL agree on which thresholds are valid', async (t) => {
  const sql = testSql()
  const attempt = async (overrides: Record<string, number>) => {
    const zodOk = ThresholdOverrides.safeParse(overrides).success &&
      Thresholds.safeParse({ ...DEFAULT_THRESHOLDS, ...overrides }).success
    let sqlOk = true
    try {
      await sql.begin(async (tx) => {
        await tx`update vigil.settings set ${tx(overrides)} where environment = 'qa'`
        throw new Error('rollback')
      }).catch((err) => {
        if ((err as Error).message !== 'rollback') throw err
      })
    } catch (err) {
      assert.equal(
        (err as { code?: string }).code,
        '23514',
        `check violation for ${JSON.stringify(overrides)}`,
      )
      sqlOk = false
    }
    return { zodOk, sqlOk }
  }
  try {
    const cases: [string, Record<string, number>, boolean][] = [
      ['a stricter prod api band', { api_p95_warning_ms: 150, api_p95_critical_ms: 300 }, true],
      ['warning equal to critical', { api_p95_warning_ms: 500 }, false],
      ['warning above critical', { db_query_warning_ms: 600 }, false],
      ['zero threshold', { slow_query_ms: 0 }, false],
      ['negative threshold', { deploy_warning_minutes: -1 }, false],
      ['percentage over 100', { memory_critical_pct: 101 }, false],
      ['error rate band', { error_rate_warning_pct: 0.5, error_rate_critical_pct: 2 }, true],
      ['cpu inverted', { cpu_warning_pct: 95 }, false],
    ]
    for (const [name, overrides, valid] of cases) {
      await t.step(name, async () => {
        assert.deepEqual(await attempt(overrides), { zodOk: valid, sqlOk: valid })
      })
    }
  } finally {
    await sql.end()
  }
})

Deno.test('resolveThresholds applies overrides and reports every bad field by name', () => {
  assert.deepEqual(resolveThresholds({ api_p95_warning_ms: 300 }), {
    ...DEFAULT_THRESHOLDS,
    api_p95_warning_ms: 300,
  })
  assert.deepEqual(resolveThresholds(), DEFAULT_THRESHOLDS)
  try {
    resolveThresholds({ api_p95_warning_ms: 'fast', memory_critical_pct: 150, bogus: 1 })
    assert.fail('expected a validation error')
  } catch (err) {
    assert.ok(err instanceof z.ZodError)
    const text = describeIssues(err)
    for (const field of ['api_p95_warning_ms', 'memory_critical_pct', 'bogus']) {
      assert.match(text, new RegExp(field), `the error names ${field}: ${text}`)
    }
  }
  try {
    resolveThresholds({ cpu_warning_pct: 95 })
    assert.fail('expected a band error')
  } catch (err) {
    assert.match(
      describeIssues(err as z.ZodError),
      /cpu_critical_pct: cpu: critical \(90\) must be above warning \(95\)/,
    )
  }
})

Deno.test('classify puts a value in its band: good below warning, warning up to critical, critical above', () => {
  const [w, c] = BANDS.api_p95
  const band = { warning: DEFAULT_THRESHOLDS[w], critical: DEFAULT_THRESHOLDS[c] }
  assert.equal(classify(199, band), 'good')
  assert.equal(classify(200, band), 'warning')
  assert.equal(classify(500, band), 'warning')
  assert.equal(classify(501, band), 'critical')
})
