// Findings: each kind's evidence schema, the rule mapping it to a problem, and what is dropped.
import assert from 'node:assert/strict'
import { FINDING_KINDS, readFindings } from '../../shared/findings.ts'
import {
  FINDING_RULES,
  problemOf,
} from '../../supabase/functions/_shared/heal/findings/registry.ts'

Deno.test('every finding kind has a rule', () => {
  assert.deepEqual(Object.keys(FINDING_RULES).sort(), [...FINDING_KINDS].sort())
})

Deno.test('findings with impossible values or unknown kinds are dropped, with the reason', () => {
  const { findings, dropped } = readFindings([
    {
      kind: 'lock_contention',
      status: 'down',
      evidence: { waiters: 2, max_wait_s: 12.5, root_pids: [812] },
    },
    {
      kind: 'lock_contention',
      status: 'down',
      evidence: { waiters: 2, max_wait_s: -3, root_pids: [] },
    },
    {
      kind: 'connections_exhausted',
      status: 'degraded',
      evidence: { used: 10, available: 10, usage_pct: 140 },
    },
    { kind: 'memory', status: 'degraded', evidence: {} },
    { kind: 'memory_high', status: 'fine', evidence: { usage_pct: 50 } },
    'not a finding',
  ])
  assert.deepEqual(findings.map((f) => f.kind), ['lock_contention'])
  assert.equal(dropped.length, 5)
  assert.match(dropped[0], /^findings\[1\] \(lock_contention\): max_wait_s: /)
  assert.match(dropped[1], /^findings\[2\] \(connections_exhausted\): usage_pct: /)
  assert.match(dropped[2], /^findings\[3\]: unknown kind "memory"/)
  assert.match(dropped[3], /^findings\[4\]: /)
  assert.deepEqual(readFindings('nope').dropped, ['findings: not a list'])
  assert.deepEqual(readFindings(undefined), { findings: [], dropped: [] })
})

Deno.test('a finding maps to its problem by its rule, with the evidence strategies read', () => {
  const [lock] = readFindings([
    {
      kind: 'lock_contention',
      status: 'down',
      evidence: { waiters: 3, max_wait_s: 42, root_pids: [812] },
    },
  ]).findings
  assert.deepEqual(problemOf(lock), {
    kind: 'lock_contention',
    reason: '3 sessions blocked, the longest for 42 s',
    evidence: { blocking: { blocked_sessions: 3, longest_wait_seconds: 42, root_pids: [812] } },
  })
  const [version] = readFindings([
    { kind: 'stale_version', status: 'degraded', evidence: { served: 'v1', expected: 'v2' } },
  ]).findings
  assert.deepEqual(problemOf(version)?.evidence, { served_version: 'v1', expected_version: 'v2' })
  const [idle] = readFindings([
    {
      kind: 'idle_in_transaction',
      status: 'degraded',
      evidence: { count: 1, longest_s: 400, threshold_s: 300 },
    },
  ]).findings
  assert.equal(problemOf(idle), null, 'reported, healed only through what it causes')
})

Deno.test('a failed deployment reaches the failed_deploy strategies (retry, then roll back)', async () => {
  const { STRATEGIES_BY_PROBLEM } = await import(
    '../../supabase/functions/_shared/heal/registry.ts'
  )
  const [failed] = readFindings([
    { kind: 'deploy_failed', status: 'down', evidence: { deployment_id: 'dpl_1', error: 'build' } },
  ]).findings
  const p = problemOf(failed)!
  assert.deepEqual([p.kind, p.evidence.deployment_id], ['failed_deploy', 'dpl_1'])
  assert.deepEqual(STRATEGIES_BY_PROBLEM[p.kind].map((s) => s.name), [
    'retry_deploy',
    'rollback_deploy',
  ])
})
