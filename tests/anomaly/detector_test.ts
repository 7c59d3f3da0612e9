import assert from 'node:assert/strict'
import {
  ANOMALY_THRESHOLD,
  AnomalyStateError,
  createDetector,
  DEFAULT_OPTIONS,
  type Detector,
} from '../../shared/anomaly/index.ts'

const T0 = Date.UTC(2025, 2, 3) // a Monday, 00:00 UTC
const MIN = 60_000
const HOUR = 60 * MIN

/** Deterministic noise (mulberry32 + Box-Muller). */
function rng(seed: number) {
  let a = seed >>> 0
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const normal = () =>
    Math.sqrt(-2 * Math.log(Math.max(uniform(), 1e-12))) * Math.cos(2 * Math.PI * uniform())
  const poisson = (lambda: number) => {
    const l = Math.exp(-lambda)
    let k = 0
    let p = 1
    do {
      k++
      p *= uniform()
    } while (p > l)
    return k - 1
  }
  return { uniform, normal, poisson }
}

function feed(d: Detector, values: number[], start = T0, step = MIN): number[] {
  return values.map((value, i) => d.update({ timestamp: new Date(start + i * step), value }))
}

const noise = (n: number, seed: number, level = 100, sd = 5) => {
  const r = rng(seed)
  return Array.from({ length: n }, () => level + sd * r.normal())
}

Deno.test('scores are numbers in [0, 1]; probation points score 0 and say so', () => {
  const d = createDetector()
  const scores = feed(d, noise(400, 1))
  assert.ok(scores.every((s) => s >= 0 && s <= 1 && Number.isFinite(s)))
  const p = DEFAULT_OPTIONS.probation
  assert.ok(scores.slice(0, p).every((s) => s === 0))
  const probe = createDetector()
  feed(probe, noise(p, 1))
  assert.equal(probe.lastReason, 'probation')
  assert.equal(probe.count, p)
  assert.equal(probe.baseline(), null)
  probe.update({ timestamp: new Date(T0 + p * MIN), value: 100 })
  assert.equal(probe.lastReason, null)
  assert.notEqual(probe.baseline(), null)
})

Deno.test('probation is enforced in points and in time', () => {
  const d = createDetector({ probation: 5, probationMs: 2 * HOUR })
  feed(d, noise(120, 2)) // minutes 0..119: more than 5 points, less than 2 hours
  assert.equal(d.lastReason, 'probation')
  d.update({ timestamp: new Date(T0 + 2 * HOUR), value: 100 })
  assert.equal(d.lastReason, null)
})

Deno.test('a single point: probation, no baseline, no crash', () => {
  const d = createDetector()
  assert.equal(d.update({ timestamp: new Date(T0), value: 42 }), 0)
  assert.equal(d.lastReason, 'probation')
  assert.equal(d.count, 1)
  assert.equal(d.baseline(), null)
})

Deno.test('bad input is refused with a reason and leaves the state untouched', () => {
  const d = createDetector()
  feed(d, noise(200, 3))
  const before = JSON.stringify(d.state())
  const last = T0 + 199 * MIN
  const cases: [unknown, string][] = [
    [{ timestamp: new Date(last + MIN), value: NaN }, 'not a finite number'],
    [{ timestamp: new Date(last + MIN), value: Infinity }, 'not a finite number'],
    [{ timestamp: new Date(last + MIN), value: -Infinity }, 'not a finite number'],
    [{ timestamp: new Date(last + MIN), value: '5' }, 'not a finite number'],
    [{ timestamp: new Date('nonsense'), value: 5 }, 'invalid timestamp'],
    [{ timestamp: last + MIN, value: 5 }, 'invalid timestamp'],
    [{ timestamp: new Date(last - MIN), value: 1e9 }, 'out of order'],
    [{ timestamp: new Date(last), value: 1e9 }, 'duplicate timestamp'],
  ]
  for (const [point, reason] of cases) {
    assert.equal(d.update(point as never), 0, reason)
    assert.equal(d.lastReason, reason)
  }
  assert.equal(d.count, 200)
  assert.equal(d.skipped, cases.length)
  const after = d.state()
  assert.equal(after.skipped, cases.length)
  assert.equal(
    JSON.stringify({ ...after, skipped: 0, reason: null }),
    JSON.stringify({ ...JSON.parse(before), skipped: 0, reason: null }),
  )
  // And the next good point is scored normally.
  d.update({ timestamp: new Date(last + MIN), value: 100 })
  assert.equal(d.lastReason, null)
})

Deno.test('a constant series is never anomalous and says why; a step away from it is', () => {
  const d = createDetector()
  const scores = feed(d, new Array(500).fill(512))
  assert.ok(scores.every((s) => s === 0))
  assert.match(d.lastReason ?? '', /^constant series/)
  const step = d.update({ timestamp: new Date(T0 + 500 * MIN), value: 768 })
  assert.ok(step >= ANOMALY_THRESHOLD, `step scored ${step}`)
  assert.equal(d.baseline()?.expected, 512)
  assert.equal(d.baseline()?.ratio, 1.5)
})

Deno.test('no false alarm on long normal noise, sparse counts, or a slow trend', () => {
  const series: [string, number[]][] = [
    ['gaussian', noise(4000, 4)],
    [
      'sparse counts',
      (() => {
        const r = rng(5)
        return Array.from({ length: 4000 }, () => r.poisson(0.05))
      })(),
    ],
    [
      'slow trend',
      (() => {
        const r = rng(6)
        return Array.from({ length: 4000 }, (_, i) => Math.round(20 + i / 200 + 2 * r.normal()))
      })(),
    ],
  ]
  for (const [name, values] of series) {
    const max = Math.max(...feed(createDetector(), values))
    assert.ok(max < ANOMALY_THRESHOLD, `${name}: max score ${max}`)
  }
})

Deno.test('a latency spike is an anomaly, with the baseline comparison an alert needs', () => {
  const d = createDetector()
  const values = noise(600, 7, 120, 6)
  feed(d, values)
  const score = d.update({ timestamp: new Date(T0 + 600 * MIN), value: 1250 })
  assert.ok(score >= ANOMALY_THRESHOLD, `spike scored ${score}`)
  const b = d.baseline()!
  assert.equal(b.value, 1250)
  assert.ok(Math.abs(b.expected - 120) < 5, `expected ${b.expected}`)
  assert.ok(b.low < b.expected && b.expected < b.high && b.high < 200)
  assert.ok(Math.abs(b.ratio! - 1250 / b.expected) < 1e-9)
  // Mean of the 5-minute bucket an hour earlier (minutes 540..544 sit in one bucket).
  const bucket = Math.floor((T0 + 540 * MIN) / 300_000)
  const hour = values.filter((_, i) => Math.floor((T0 + i * MIN) / 300_000) === bucket)
  assert.ok(Math.abs(b.hourAgo! - hour.reduce((a, v) => a + v, 0) / hour.length) < 1e-9)
  const c = d.lastComponents!
  assert.ok(c.point > 10 && c.pointP < 1e-5)
})

Deno.test('a drop to zero and a burst of errors are anomalies', () => {
  const r = rng(8)
  const traffic = Array.from({ length: 800 }, (_, i) => (i >= 700 && i < 715 ? 0 : r.poisson(50)))
  const s1 = feed(createDetector(), traffic)
  assert.ok(Math.max(...s1.slice(700, 715)) >= ANOMALY_THRESHOLD)
  assert.ok(Math.max(...s1.slice(0, 700)) < ANOMALY_THRESHOLD)
  const errors = Array.from({ length: 800 }, (_, i) => r.poisson(i >= 700 && i < 740 ? 6 : 0.3))
  const s2 = feed(createDetector(), errors)
  assert.ok(Math.max(...s2.slice(700, 740)) >= ANOMALY_THRESHOLD)
  assert.ok(Math.max(...s2.slice(0, 700)) < ANOMALY_THRESHOLD)
})

Deno.test('a level shift raises one episode and becomes the new normal', () => {
  const values = noise(1500, 9, 40, 3).map((v, i) => (i >= 1000 ? v + 55 : v))
  const withCooldown = feed(createDetector(), values)
  const alarms = withCooldown.map((s, i) => [s, i]).filter(([s]) => s >= ANOMALY_THRESHOLD)
  assert.ok(alarms.length >= 1 && alarms.length <= 2, `alarms at ${alarms.map(([, i]) => i)}`)
  assert.ok(alarms[0][1] >= 1000 && alarms[0][1] <= 1003, `first alarm at ${alarms[0][1]}`)
  assert.ok(Math.max(...withCooldown.slice(1100)) < ANOMALY_THRESHOLD)
  // Without the cooldown the same episode alarms on more points.
  const raw = feed(createDetector({ cooldown: 0 }), values)
  assert.ok(raw.filter((s) => s >= ANOMALY_THRESHOLD).length > alarms.length)
})

Deno.test('a long gap re-syncs without a false alarm, and says so', () => {
  const d = createDetector()
  feed(d, noise(300, 10))
  const resumeAt = T0 + 299 * MIN + 6 * HOUR
  assert.equal(d.update({ timestamp: new Date(resumeAt), value: 130 }), 0)
  assert.equal(d.lastReason, 'resuming after a gap of 6 h')
  const after = feed(d, noise(300, 11), resumeAt + MIN)
  assert.ok(after.slice(0, DEFAULT_OPTIONS.resumePoints).every((s) => s === 0))
  assert.ok(Math.max(...after) < ANOMALY_THRESHOLD)
})

Deno.test('irregular sampling and missed cycles raise no alarm', () => {
  const d = createDetector()
  const r = rng(12)
  let t = T0
  let max = 0
  for (let i = 0; i < 3000; i++) {
    t += 30_000 * (0.5 + r.uniform()) * (r.uniform() < 0.05 ? 4 : 1)
    max = Math.max(max, d.update({ timestamp: new Date(t), value: 30 + r.normal() }))
  }
  assert.ok(max < ANOMALY_THRESHOLD, `max ${max}`)
})

Deno.test('a daily pattern is learned from timestamps and stops looking anomalous', () => {
  const d = createDetector()
  const r = rng(13)
  const day = (t: number) => Math.sin((2 * Math.PI * (t % (24 * HOUR))) / (24 * HOUR))
  let max = 0
  for (let i = 0; i < 6 * 288; i++) {
    const t = T0 + i * 5 * MIN
    const score = d.update({ timestamp: new Date(t), value: 200 + 120 * day(t) + 8 * r.normal() })
    if (i > 3 * 288) max = Math.max(max, score)
  }
  assert.ok(d.lastComponents!.seasonal > 0.5, `seasonal weight ${d.lastComponents!.seasonal}`)
  assert.ok(max < ANOMALY_THRESHOLD, `max ${max}`)
})

Deno.test('no look-ahead: a score depends only on the points up to it', () => {
  const a = noise(800, 14)
  const b = [...a.slice(0, 500), ...noise(300, 15, 500, 50)]
  const sa = feed(createDetector(), a)
  const sb = feed(createDetector(), b)
  assert.deepEqual(sa.slice(0, 500), sb.slice(0, 500))
  assert.notDeepEqual(sa.slice(500), sb.slice(500))
})

Deno.test('state is small JSON and resumes with exactly the same scores', () => {
  const values = noise(3000, 16).map((v, i) => (i === 2500 ? 400 : i > 2700 ? v + 30 : v))
  const whole = createDetector()
  const expected = feed(whole, values)
  const first = createDetector()
  feed(first, values.slice(0, 1234))
  const text = JSON.stringify(first.state())
  assert.ok(text.length < 4096, `state is ${text.length} bytes`)
  const resumed = createDetector({}, JSON.parse(text))
  assert.equal(resumed.count, 1234)
  const rest = feed(resumed, values.slice(1234), T0 + 1234 * MIN)
  assert.deepEqual(rest, expected.slice(1234))
  assert.deepEqual(resumed.state(), whole.state())
  assert.deepEqual(resumed.baseline(), whole.baseline())
  // A JSON string works too.
  assert.equal(createDetector({}, text).count, 1234)
})

Deno.test('a bad or foreign state is refused with an error that names the problem', () => {
  const d = createDetector()
  feed(d, noise(100, 17))
  const good = d.state()
  const refuse = (state: unknown, pattern: RegExp, options = {}) =>
    assert.throws(() => createDetector(options, state), (e: unknown) => {
      assert.ok(e instanceof AnomalyStateError, String(e))
      assert.match((e as Error).message, pattern)
      return true
    })
  refuse({ ...good, version: 2 }, /version 2/)
  refuse({ ...good, format: 'other' }, /format "other"/)
  refuse('{not json', /not valid JSON/)
  refuse(42, /must be an object/)
  refuse({ ...good, tp: [1, 2, 'x', 4] }, /tp\.2/)
  refuse({ ...good, fast: null }, /fast/)
  refuse({ ...good, extra: 1 }, /invalid/)
  refuse(good, /probation: 60 there, 30 now/, { probation: 30 })
  // The refused input did not hurt the detector it came from.
  assert.equal(d.count, 100)
})

Deno.test('options are checked', () => {
  assert.throws(() => createDetector({ probation: -1 }), RangeError)
  assert.throws(() => createDetector({ slowSpan: 0 }), RangeError)
  assert.throws(() => createDetector({ seasonality: 'weekly' as never }), RangeError)
  assert.throws(
    () => createDetector({ nonsense: 1 } as never),
    /unknown anomaly detector option nonsense/,
  )
  assert.equal(createDetector({ probation: 0 }).count, 0)
})

Deno.test('a repeated incident still raises an alarm the second time', () => {
  // Two identical 20-minute drops, ten hours apart: the second is as much an incident as the first.
  const values = noise(2000, 31).map((v, i) =>
    (i >= 800 && i < 820) || (i >= 1400 && i < 1420) ? 20 + (v - 100) / 5 : v
  )
  const scores = feed(createDetector(), values)
  const peak = (from: number, to: number) => Math.max(...scores.slice(from, to))
  assert.ok(peak(800, 840) >= ANOMALY_THRESHOLD, `first drop ${peak(800, 840)}`)
  assert.ok(peak(1400, 1440) >= ANOMALY_THRESHOLD, `second drop ${peak(1400, 1440)}`)
})

Deno.test('an isolated extreme is learned by the tails once the next point shows it stood alone', () => {
  const d = createDetector()
  const values = noise(500, 32)
  feed(d, values)
  const before = d.state().tp[1]
  d.update({ timestamp: new Date(T0 + 500 * MIN), value: 160 })
  assert.ok(d.state().pend !== null, 'the spike is held back')
  assert.equal(d.state().tp[1], before, 'not learned yet')
  d.update({ timestamp: new Date(T0 + 501 * MIN), value: 100 })
  assert.equal(d.state().pend, null)
  assert.ok(d.state().tp[1] > before, 'learned once the next point was normal')
})

Deno.test('a state stored before the tails held points back still resumes', () => {
  const d = createDetector()
  feed(d, noise(200, 33))
  const { tarun: _t, pend: _p, ...old } = d.state()
  const resumed = createDetector({}, old)
  assert.equal(resumed.state().pend, null)
  assert.equal(resumed.state().tarun, 0)
})
