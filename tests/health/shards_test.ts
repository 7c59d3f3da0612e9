// The shard plan and the shard size setting, without a database: how a cycle is cut, how long each
// shard may take, and that a bad VIGIL_SHARD_SIZE falls back to the default rather than stopping.
import assert from 'node:assert/strict'
import {
  COORDINATOR_BUDGET_MS,
  DEFAULT_SHARD_SIZE,
  effectiveShardSize,
  MAX_SHARDS,
  planShards,
  shardSizeFrom,
} from '../../supabase/functions/_shared/health/shards.ts'
import { CONFIRM_AFTER_MS } from '../../supabase/functions/_shared/health/cycle.ts'

const services = (n: number, timeout = 2000) =>
  Array.from({ length: n }, (_, i) => ({ id: `s${i}`, timeout_ms: timeout }))

Deno.test('a cycle is cut in order into shards of at most the shard size', () => {
  const plan = planShards(services(7), 3)
  assert.deepEqual(plan.map((s) => s.service_ids), [['s0', 's1', 's2'], ['s3', 's4', 's5'], ['s6']])
  assert.equal(planShards(services(5000), 200).length, 25)
  assert.equal(planShards(services(200), 200).length, 1)
  assert.deepEqual(planShards([], 200), [])
})

Deno.test("a shard's deadline covers its longest probe twice, the confirmation wait and a margin", () => {
  const plan = planShards([...services(2, 2000), { id: 'slow', timeout_ms: 30_000 }], 2, 10_000)
  assert.equal(plan[0].deadline_ms, 2 * 2000 + CONFIRM_AFTER_MS + 10_000)
  assert.equal(plan[1].deadline_ms, 2 * 30_000 + CONFIRM_AFTER_MS + 10_000)
  // Within what the coordinator has: Supabase ends a request unanswered after 150 s.
  assert.ok(planShards(services(1, 120_000), 1)[0].deadline_ms < COORDINATOR_BUDGET_MS)
  assert.ok(COORDINATOR_BUDGET_MS < 150_000)
})

Deno.test('a run has at most MAX_SHARDS shards: a tiny shard size over many services is raised', () => {
  assert.equal(effectiveShardSize(5000, 200), 200)
  assert.equal(effectiveShardSize(5000, 1), Math.ceil(5000 / MAX_SHARDS))
  assert.ok(planShards(services(5000), effectiveShardSize(5000, 1)).length <= MAX_SHARDS)
  assert.equal(effectiveShardSize(10_000_000, 1), 1000, 'never past the largest shard')
})

Deno.test('a shard size out of bounds is refused by the planner', () => {
  for (const size of [0, -1, 1001, 2.5, NaN]) {
    assert.throws(() => planShards(services(3), size), RangeError)
  }
})

Deno.test('VIGIL_SHARD_SIZE: a whole number from 1 to 1000; anything else is the default and a problem', () => {
  assert.deepEqual(shardSizeFrom(undefined), { size: DEFAULT_SHARD_SIZE, problem: null })
  assert.deepEqual(shardSizeFrom(''), { size: DEFAULT_SHARD_SIZE, problem: null })
  assert.deepEqual(shardSizeFrom(' 50 '), { size: 50, problem: null })
  assert.deepEqual(shardSizeFrom('1000'), { size: 1000, problem: null })
  for (const bad of ['0', '-3', '1001', '2.5', 'many', '1e9']) {
    const { size, problem } = shardSizeFrom(bad)
    assert.equal(size, DEFAULT_SHARD_SIZE, bad)
    // The setting by name, not its value: the same sentence whatever was set.
    assert.equal(problem, 'VIGIL_SHARD_SIZE must be a whole number from 1 to 1000; using 200')
  }
})
