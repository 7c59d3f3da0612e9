// The chaos suite, short: on a private stack of its own with the demo (so nothing another test left
// in the shared database can be taken for the fault), cycles driven every 5 s, three faults — one
// healed in the database, one by the app's supervisor, one at the CDN — each detected, healed by
// the strategy meant for it and recovered, then a short healthy soak without a false alert, and the
// heal audit chain intact. The latency spike rather than the 5xx one: every request is slow, so the
// check a heal reads is never a lucky healthy one (CI once saw the 70 % error spike heal-less and
// escalated; see the issue note). The full suite (npm run chaos:suite) runs every fault, soak 10 min.
import assert from 'node:assert/strict'
import { faultNamed } from '../../demo/chaos/registry.ts'
import { runSuite, startChaosStack, suiteStackOf } from '../../demo/chaos/suite.ts'
import { targetOf } from '../../demo/chaos/target.ts'
import { privateStateDir } from '../../devstack/stack.ts'

const INTERVAL_S = 5

Deno.test({
  name:
    'chaos suite, short: lock contention, an error spike and a stale CDN are found, healed and over',
  // The stack's own timers and sockets end with stack.stop(); the demo's processes with it.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const stateDir = await privateStateDir('vigil-chaos-test-')
    const stack = await startChaosStack(stateDir)
    try {
      const lines: string[] = []
      const result = await runSuite(
        suiteStackOf(stack),
        targetOf(stack.dbUrl, stack.demo!, stateDir),
        {
          intervalS: INTERVAL_S,
          soakMin: 0.5,
          faultTimeoutMin: 2,
          faults: ['lock_contention', 'latency_spike', 'stale_version'].map((n) => faultNamed(n)!),
          log: (line) => lines.push(line),
        },
      )
      const why = `\n${lines.join('\n')}`
      for (const f of result.faults) {
        assert.ok(f.detected, `${f.fault} not detected${why}`)
        // Two intervals is the goal; one more for a loaded test machine's scheduling.
        assert.ok(
          f.ttd_intervals! <= 3,
          `${f.fault} detected after ${f.ttd_intervals} intervals${why}`,
        )
        assert.deepEqual(
          [f.heal?.strategy, f.heal?.outcome],
          [f.expected.heal, 'succeeded'],
          `${f.fault}: ${f.verdict}${why}`,
        )
        assert.ok(f.ttr_s !== null, `${f.fault} never recovered${why}`)
        assert.ok(f.heal!.after_detection_s <= INTERVAL_S, `${f.fault} healed late${why}`)
      }
      assert.equal(result.goals.false_alerts_in_soak, 0, `false alerts in the soak${why}`)
      assert.equal(result.goals.audit_chain_verifies, true)
    } finally {
      await stack.stop()
      await Deno.remove(stateDir, { recursive: true }).catch(() => {})
    }
  },
})
