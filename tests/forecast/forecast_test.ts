// The capacity forecast on synthetic series with known truth: memory toward OOM, disk toward
// full, XID age toward wraparound, a cache hit ratio falling; noise that must not raise a false
// crossing; restarts, gaps and every kind of bad input. Noise comes from a seeded generator, so
// every run sees the same points.
import assert from 'node:assert/strict'
import {
  type Forecast,
  forecastCrossing,
  type ForecastOptions,
  formatValue,
  humanEta,
  type Point,
} from '../../shared/forecast/index.ts'

const HOUR = 3600
const DAY = 86400
const T0 = Date.UTC(2026, 2, 11, 0, 0, 0)

/** mulberry32 with Box–Muller: N(0, 1) draws, the same for the same seed. */
function gaussian(seed: number): () => number {
  let s = seed >>> 0
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297
  }
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform())
}

/** Points every `step` seconds over [from, to] (seconds after T0), value f(t) + σ·noise. */
function series(
  from: number,
  to: number,
  step: number,
  f: (t: number) => number,
  sigma = 0,
  seed = 1,
): Point[] {
  const noise = gaussian(seed)
  const out: Point[] = []
  for (let t = from; t <= to + 1e-9; t += step) {
    out.push({ timestamp: new Date(T0 + t * 1000), value: f(t) + sigma * noise() })
  }
  return out
}

function expect<S extends Forecast['status']>(
  f: Forecast,
  status: S,
): Extract<Forecast, { status: S }> {
  assert.equal(f.status, status, `expected ${status}, got ${JSON.stringify(f, null, 1)}`)
  return f as Extract<Forecast, { status: S }>
}

function near(actual: number, expected: number, tolerance: number, what: string) {
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    `${what}: ${actual} not within ${tolerance} of ${expected}`,
  )
}

function includes(text: string, part: string) {
  assert.ok(text.includes(part), `expected ${JSON.stringify(part)} in ${JSON.stringify(text)}`)
}

const memory: Omit<ForecastOptions, 'limit'> & { limit: number } = {
  limit: 100,
  horizonSeconds: DAY,
  label: 'memory',
  unit: '%',
}

// 3 h of 30-s samples rising 8 %/h to 68 % now: 100 % in exactly 4 h on the true line.
const leak = (t: number) => 44 + (8 * t) / HOUR
const LEAK_END = 3 * HOUR
const LEAK_ETA = 4 * HOUR

Deno.test('memory rising with noise: OOM in ~4 h, the band holds the truth', () => {
  for (let seed = 1; seed <= 8; seed++) {
    const f = expect(forecastCrossing(series(0, LEAK_END, 30, leak, 1.5, seed), memory), 'crosses')
    near(f.etaSeconds, LEAK_ETA, 0.15 * LEAK_ETA, `eta (seed ${seed})`)
    assert.ok(f.etaLowSeconds <= LEAK_ETA, `etaLow ${f.etaLowSeconds} after the truth`)
    assert.ok(f.etaHighSeconds !== null && f.etaHighSeconds >= LEAK_ETA, 'etaHigh before truth')
    assert.ok(f.etaLowSeconds < f.etaSeconds && f.etaSeconds < f.etaHighSeconds!)
    near(f.slopePerHour, 8, 0.8, 'slope')
    assert.equal(f.fit.points, 361)
    assert.equal(f.fit.resets, 0)
    assert.equal(f.fit.method, 'theil-sen')
    assert.ok(f.fit.r2 !== null && f.fit.r2 > 0.9)
    near(f.at.getTime(), T0 + (LEAK_END + f.etaSeconds) * 1000, 1, 'at')
    assert.equal(f.limit, 100)
  }
  // The slope band alone is a 90 % interval: it may miss now and then, but rarely.
  let covered = 0
  for (let seed = 1; seed <= 40; seed++) {
    const f = expect(forecastCrossing(series(0, LEAK_END, 30, leak, 1.5, seed), memory), 'crosses')
    if (f.fit.slopeLowPerHour <= 8 && 8 <= f.fit.slopeHighPerHour) covered++
  }
  assert.ok(covered >= 34, `slope band held the true slope for ${covered} of 40 seeds`)
  const f = expect(forecastCrossing(series(0, LEAK_END, 30, leak, 1.5, 1), memory), 'crosses')
  assert.match(f.text, /^memory \d+(\.\d)? % rising [\d.]+ %\/h: 100 % in ~4 h \(between ~\d+ h/)
})

Deno.test('a noisier series gets a wider band around the same eta', () => {
  const quiet = expect(forecastCrossing(series(0, LEAK_END, 30, leak, 0.5, 3), memory), 'crosses')
  const noisy = expect(forecastCrossing(series(0, LEAK_END, 30, leak, 3, 3), memory), 'crosses')
  const width = (f: typeof quiet) => f.etaHighSeconds! - f.etaLowSeconds
  assert.ok(width(noisy) > 2 * width(quiet), `${width(noisy)} vs ${width(quiet)}`)
  assert.ok(noisy.etaLowSeconds <= LEAK_ETA && LEAK_ETA <= noisy.etaHighSeconds!)
})

Deno.test('disk growing 20 GB/day from 880 GB of 1 TB: full in ~6 days, 2,881 points', () => {
  const disk = (t: number) => 840e9 + (20e9 * t) / DAY
  const points = series(0, 2 * DAY, 60, disk, 0.3e9, 7)
  const f = expect(
    forecastCrossing(points, { limit: 1e12, horizonSeconds: 14 * DAY, label: 'disk', unit: 'B' }),
    'crosses',
  )
  near(f.etaSeconds, 6 * DAY, 0.05 * 6 * DAY, 'eta')
  assert.ok(f.etaLowSeconds <= 6 * DAY && 6 * DAY <= f.etaHighSeconds!)
  assert.equal(f.fit.method, 'theil-sen (sampled pairs)')
  assert.equal(f.fit.points, 2881)
  near(f.slopePerHour * 24, 20e9, 0.5e9, 'GB/day')
  assert.match(f.text, /^disk 8\d\d GB rising 2\d(\.\d)? GB\/day: 1 TB in ~6 days$/)
})

Deno.test('XID age toward 2^31 after a freezing vacuum: fits the new regime only', () => {
  const WRAP = 2 ** 31
  // Hourly means: 1.0e9 rising 1.2e8/day for 4 days, a freeze to 2e8, then 1.5e8/day for 6 days.
  const xid = (t: number) =>
    t < 4 * DAY ? 1e9 + (1.2e8 * t) / DAY : 2e8 + (1.5e8 * (t - 4 * DAY)) / DAY
  const points = series(0, 10 * DAY, HOUR, xid, 2e6, 11)
  const f = expect(
    forecastCrossing(points, { limit: WRAP, horizonSeconds: 30 * DAY, label: 'XID age' }),
    'crosses',
  )
  assert.equal(f.fit.resets, 1)
  assert.equal(f.fit.from.getTime(), T0 + 4 * DAY * 1000)
  assert.equal(f.fit.lastResetAt?.getTime(), T0 + 4 * DAY * 1000)
  const truth = (WRAP - xid(10 * DAY)) / (1.5e8 / DAY)
  near(f.etaSeconds, truth, 0.03 * truth, 'eta')
  assert.ok(f.etaLowSeconds <= truth && truth <= f.etaHighSeconds!)
  near(f.slopePerHour, 1.5e8 / 24, 0.02 * (1.5e8 / 24), 'slope')
  assert.match(f.text, /^XID age 1.1 G rising 15\d M\/day: 2.15 G in ~7 days/)
})

Deno.test('noise around a flat mean never crosses, even close to the limit', () => {
  for (let seed = 1; seed <= 25; seed++) {
    for (const [mean, sigma] of [[60, 3], [92, 3], [97, 1]]) {
      const f = forecastCrossing(series(0, 3 * HOUR, 30, () => mean, sigma, seed), {
        ...memory,
        horizonSeconds: 30 * DAY,
      })
      assert.ok(
        f.status === 'flat' || f.status === 'receding' || f.status === 'not_within_horizon',
        `seed ${seed}, mean ${mean}: ${f.status} ${f.text}`,
      )
    }
  }
})

Deno.test('a slow trend buried in noise (low r²) claims no crossing', () => {
  // 1 %/h under σ = 4 %: the slope is statistically there, the fit explains ~5 % of the variance.
  const points = series(0, 3 * HOUR, 30, (t) => 60 + t / HOUR, 4, 5)
  const f = expect(
    forecastCrossing(points, { ...memory, limit: 80, horizonSeconds: 2 * DAY }),
    'flat',
  )
  assert.ok(f.fit.r2! < 0.2 && f.fit.slopeLowPerHour > 0)
  includes(f.text, 'no clear trend toward 80 % (rising ')
  // The r² rule is what stops it: allow any r² and the same points do cross.
  expect(
    forecastCrossing(points, { ...memory, limit: 80, horizonSeconds: 2 * DAY, minR2: 0 }),
    'crosses',
  )
})

Deno.test('a constant series is flat, with no r² and no crossing', () => {
  const f = expect(forecastCrossing(series(0, 2 * HOUR, 60, () => 55), memory), 'flat')
  assert.equal(f.fit.r2, null)
  assert.equal(f.slopePerHour, 0)
  assert.equal(f.fit.resets, 0)
  assert.equal(f.text, 'memory 55 % steady')
  // Huge constant values too (float rounding must not look like a trend or a reset).
  const big = expect(
    forecastCrossing(series(0, 2 * HOUR, 60, () => 1.5e9 + 0.1 + 0.2), {
      limit: 2 ** 31,
      horizonSeconds: DAY,
    }),
    'flat',
  )
  assert.equal(big.fit.resets, 0)
})

Deno.test('sawtooth of restarts: fits after the last restart only', () => {
  // Memory climbs 5 %/h from 40 % and restarts at 90 % (every 10 h) twice; since the last
  // restart it climbs 10 %/h from 35 %, for 2 h: 55 % now, 100 % in 4.5 h.
  const restartAt = 20 * HOUR
  const saw = (t: number) =>
    t < restartAt ? 40 + (5 * (t % (10 * HOUR))) / HOUR : 35 + (10 * (t - restartAt)) / HOUR
  const points = series(0, restartAt + 2 * HOUR, 30, saw, 1, 2)
  const f = expect(forecastCrossing(points, memory), 'crosses')
  assert.equal(f.fit.resets, 2)
  assert.equal(f.fit.from.getTime(), T0 + restartAt * 1000)
  near(f.slopePerHour, 10, 1, 'slope')
  near(f.etaSeconds, 4.5 * HOUR, 0.15 * 4.5 * HOUR, 'eta')
})

Deno.test('a restart minutes ago: not enough data since, not the old trend crossing', () => {
  // Before the restart this series would cross 100 % within the hour.
  const f = (t: number) => t < 5 * HOUR ? 50 + (9 * t) / HOUR : 30
  const r = expect(
    forecastCrossing(series(0, 5 * HOUR + 120, 30, f, 0.5, 4), memory),
    'not_enough_data',
  )
  assert.match(
    r.reason,
    /^since the drop from 9\d(\.\d)? % to \d\d(\.\d)? % at 2026-03-11T05:00:00\.000Z: /,
  )
  assert.ok(r.reason.endsWith(': 5 points over 2 min; a trend needs at least 10 over 30 min'))
  includes(r.text, 'memory: not enough data (since the drop')
})

Deno.test('lone spikes are no reset', () => {
  const points = series(0, LEAK_END, 30, leak, 1, 6)
  points[200] = { ...points[200], value: 99 }
  points[250] = { ...points[250], value: 5 }
  const f = expect(forecastCrossing(points, memory), 'crosses')
  assert.equal(f.fit.resets, 0)
  assert.equal(f.fit.points, 361)
  near(f.etaSeconds, LEAK_ETA, 0.15 * LEAK_ETA, 'eta')
})

Deno.test('gaps of hours and irregular sampling: times, not indices', () => {
  // 12 h rising 3 %/h to 70 %, sampled every 30-90 s, with no points for 3 h twice.
  const noise = gaussian(9)
  const points: Point[] = []
  for (let t = 0; t <= 12 * HOUR; t += 60 + 30 * Math.sin(t)) {
    if ((t > 2 * HOUR && t < 5 * HOUR) || (t > 7 * HOUR && t < 10 * HOUR)) continue
    points.push({ timestamp: new Date(T0 + t * 1000), value: 34 + (3 * t) / HOUR + noise() })
  }
  const last = (points.at(-1)!.timestamp.getTime() - T0) / 1000
  const truth = (100 - (34 + (3 * last) / HOUR)) / 3 * HOUR
  const f = expect(forecastCrossing(points, memory), 'crosses')
  assert.equal(f.fit.resets, 0)
  near(f.slopePerHour, 3, 0.3, 'slope')
  near(f.etaSeconds, truth, 0.1 * truth, 'eta')
  assert.ok(f.etaLowSeconds <= truth && truth <= f.etaHighSeconds!)

  // A restart during a gap still counts as one.
  const cut = points.map((p) => {
    const t = (p.timestamp.getTime() - T0) / 1000
    return t > 10 * HOUR ? { ...p, value: p.value - 40 } : p
  })
  const g = expect(forecastCrossing(cut, memory), 'crosses')
  assert.equal(g.fit.resets, 1)
  assert.ok(g.fit.from.getTime() >= T0 + 10 * HOUR * 1000)
})

Deno.test('NaN, Infinity, invalid dates: dropped and counted, the forecast stands', () => {
  const points = series(0, LEAK_END, 30, leak, 1.5, 1)
  const clean = expect(forecastCrossing(points, memory), 'crosses')
  const dirty = [...points]
  dirty.splice(10, 0, { timestamp: new Date(T0 + 301_000), value: NaN })
  dirty.splice(50, 0, { timestamp: new Date(T0 + 1_501_000), value: Infinity })
  dirty.splice(90, 0, { timestamp: new Date(T0 + 2_701_000), value: -Infinity })
  dirty.splice(120, 0, { timestamp: new Date('not a date'), value: 50 })
  dirty.splice(130, 0, null as unknown as Point, { value: 3 } as unknown as Point)
  dirty.splice(140, 0, { timestamp: new Date(T0 + 3_901_000), value: '70' as unknown as number })
  const f = expect(forecastCrossing(dirty, memory), 'crosses')
  assert.deepEqual(f.fit.dropped, { invalid: 7, outOfOrder: 0, duplicates: 0, future: 0 })
  assert.equal(f.etaSeconds, clean.etaSeconds)

  const none = expect(
    forecastCrossing(
      [NaN, Infinity, -Infinity].map((value, i) => ({
        timestamp: new Date(T0 + i * 1000),
        value,
      })),
      memory,
    ),
    'not_enough_data',
  )
  assert.equal(none.reason, 'no usable points (dropped: 3 not finite or without a valid time)')
  assert.equal(none.points, 0)
})

Deno.test('out-of-order points: the fewest dropped and counted, never sorted in', () => {
  const points = series(0, LEAK_END, 30, leak, 1.5, 1)
  const clean = expect(forecastCrossing(points, memory), 'crosses')
  const shuffled = [...points]
  // A point from a clock 2 h ahead: keeping it would drop the 240 points after it.
  shuffled.splice(100, 0, { timestamp: new Date(T0 + 5 * HOUR * 1000), value: 10 })
  // Two late arrivals, stamped before points already kept.
  shuffled.splice(200, 0, { timestamp: new Date(T0 + 60_500), value: 99 })
  shuffled.splice(300, 0, { timestamp: new Date(T0 + 120_500), value: 1 })
  const f = expect(forecastCrossing(shuffled, memory), 'crosses')
  assert.deepEqual(f.fit.dropped, { invalid: 0, outOfOrder: 3, duplicates: 0, future: 0 })
  assert.equal(f.fit.points, 361)
  assert.equal(f.etaSeconds, clean.etaSeconds)
})

Deno.test('duplicate timestamps merge into their mean', () => {
  const points = series(0, LEAK_END, 30, leak)
  const doubled = points.flatMap((p) => [
    { timestamp: new Date(p.timestamp), value: p.value - 1 },
    { timestamp: new Date(p.timestamp), value: p.value + 1 },
  ])
  const f = expect(forecastCrossing(doubled, memory), 'crosses')
  assert.equal(f.fit.dropped.duplicates, 361)
  assert.equal(f.fit.points, 361)
  near(f.etaSeconds, LEAK_ETA, 1, 'eta of the exact line')
  assert.ok(f.fit.residualSd < 1e-9)
  // No noise, no band: the text says one time.
  assert.equal(f.text, 'memory 68 % rising 8 %/h: 100 % in ~4 h')
})

Deno.test('empty, one point, too few, too short: not enough data, naming what is missing', () => {
  const empty = expect(forecastCrossing([], memory), 'not_enough_data')
  assert.equal(empty.reason, 'no usable points')
  assert.equal(empty.text, 'memory: not enough data (no usable points)')

  const one = expect(
    forecastCrossing([{ timestamp: new Date(T0), value: 120 }], memory),
    'not_enough_data',
  )
  assert.equal(one.reason, '1 usable point; a trend needs at least 10 over 30 min')

  const few = expect(forecastCrossing(series(0, 4 * HOUR, HOUR, leak), memory), 'not_enough_data')
  assert.equal(few.reason, '5 usable points over 4 h; a trend needs at least 10 over 30 min')

  const short = expect(forecastCrossing(series(0, 300, 15, leak), memory), 'not_enough_data')
  assert.equal(short.reason, '21 usable points over 5 min; a trend needs at least 10 over 30 min')

  // The thresholds are options.
  expect(forecastCrossing(series(0, 300, 15, leak), { ...memory, minSpanSeconds: 300 }), 'crosses')
  expect(forecastCrossing(series(0, 4 * HOUR, HOUR, leak), { ...memory, minPoints: 5 }), 'crosses')

  assert.equal(forecastCrossing(null as unknown as Point[], memory).status, 'not_enough_data')
})

Deno.test('points after now are dropped; now extends the eta from the fitted line', () => {
  const points = series(0, LEAK_END + HOUR, 30, leak)
  const f = expect(
    forecastCrossing(points, { ...memory, now: new Date(T0 + LEAK_END * 1000) }),
    'crosses',
  )
  assert.equal(f.fit.dropped.future, 120)
  near(f.etaSeconds, LEAK_ETA, 1, 'eta')
  // Asked an hour after the last point, the crossing is an hour nearer.
  const later = expect(
    forecastCrossing(series(0, LEAK_END, 30, leak), {
      ...memory,
      now: new Date(T0 + (LEAK_END + HOUR) * 1000),
    }),
    'crosses',
  )
  near(later.etaSeconds, LEAK_ETA - HOUR, 1, 'eta from a later now')
})

Deno.test("direction 'down': a cache hit ratio falling toward 90 %", () => {
  const ratio = (t: number) => 99.5 - (0.5 * t) / HOUR
  const points = series(0, 6 * HOUR, 60, ratio, 0.1, 3)
  const options = {
    limit: 90,
    direction: 'down',
    horizonSeconds: 2 * DAY,
    label: 'cache hit ratio',
    unit: '%',
  } as const
  const f = expect(forecastCrossing(points, options), 'crosses')
  near(f.slopePerHour, -0.5, 0.05, 'slope')
  near(f.etaSeconds, 13 * HOUR, 0.1 * 13 * HOUR, 'eta')
  assert.ok(f.etaLowSeconds <= 13 * HOUR && 13 * HOUR <= f.etaHighSeconds!)
  assert.ok(f.fit.slopeLowPerHour < f.fit.slopeHighPerHour && f.fit.slopeHighPerHour < 0)
  assert.match(
    f.text,
    /^cache hit ratio 96.\d % falling 0.\d+ %\/h: 90 % in ~13 h \(between ~1\d h and ~1\d h\)$/,
  )

  // Free space falling to zero, and a ratio that recovers.
  const free = series(0, DAY, 300, (t) => 50e9 - (4e9 * t) / DAY, 0.05e9, 8)
  const g = expect(
    forecastCrossing(free, { limit: 0, direction: 'down', horizonSeconds: 30 * DAY, unit: 'B' }),
    'crosses',
  )
  near(g.etaSeconds, 11.5 * DAY, 0.05 * 11.5 * DAY, 'free space eta')
  const rising = series(0, 6 * HOUR, 60, (t) => 92 + t / HOUR, 0.1, 3)
  expect(forecastCrossing(rising, options), 'receding')
  expect(forecastCrossing(series(0, 6 * HOUR, 60, () => 89), options), 'already_crossed')
})

Deno.test('receding and already crossed', () => {
  const falling = series(0, 3 * HOUR, 30, (t) => 80 - (5 * t) / HOUR, 1, 2)
  const r = expect(forecastCrossing(falling, memory), 'receding')
  near(r.slopePerHour, -5, 0.5, 'slope')
  assert.match(r.text, /^memory 6\d(\.\d)? % falling [45]\.\d+ %\/h, away from 100 %$/)

  const over = series(0, 3 * HOUR, 30, (t) => 90 + (4 * t) / HOUR, 0.2, 2)
  const c = expect(forecastCrossing(over, memory), 'already_crossed')
  assert.ok(c.current >= 100 && c.fit !== null && c.slopePerHour! > 3)
  assert.match(c.text, /^memory 10\d(\.\d)? % already at or above 100 %$/)
})

Deno.test('the horizon cuts off: beyond it, not_within_horizon with the eta kept', () => {
  const points = series(0, LEAK_END, 30, leak, 1.5, 1)
  const f = expect(
    forecastCrossing(points, { ...memory, horizonSeconds: 2 * HOUR }),
    'not_within_horizon',
  )
  near(f.etaSeconds, LEAK_ETA, 0.15 * LEAK_ETA, 'eta')
  assert.ok(f.etaLowSeconds < f.etaSeconds)
  assert.match(
    f.text,
    /^memory \d+(\.\d)? % rising [\d.]+ %\/h: 100 % not within 2 h \(~4 h at this rate\)$/,
  )
  expect(forecastCrossing(points, { ...memory, horizonSeconds: 5 * HOUR }), 'crosses')
})

Deno.test('invalid options are a recorded reason, not a crash', () => {
  const points = series(0, LEAK_END, 30, leak)
  for (
    const [options, reason] of [
      [{ ...memory, limit: NaN }, 'invalid options: limit must be a finite number, got NaN'],
      [{ ...memory, horizonSeconds: 0 }, 'invalid options: horizonSeconds must be above 0, got 0'],
      [{ ...memory, confidence: 1 }, 'invalid options: confidence must be between 0 and 1, got 1'],
      [{ ...memory, now: new Date(NaN) }, 'invalid options: now must be a valid Date'],
    ] as const
  ) {
    const f = expect(forecastCrossing(points, options), 'not_enough_data')
    assert.equal(f.reason, reason)
  }
})

Deno.test('deterministic: the same points give the same forecast', () => {
  const points = series(0, 2 * DAY, 60, (t) => 840e9 + (20e9 * t) / DAY, 0.3e9, 7)
  const options = { limit: 1e12, horizonSeconds: 14 * DAY }
  assert.deepEqual(forecastCrossing(points, options), forecastCrossing(points, options))
})

Deno.test('humanEta says an ETA the way people do', () => {
  const cases: [number, string][] = [
    [-5, 'now'],
    [0, 'now'],
    [30, '<1 min'],
    [25 * 60, '~25 min'],
    [89 * 60, '~89 min'],
    [4 * HOUR, '~4 h'],
    [4.4 * HOUR, '~4 h'],
    [35 * HOUR, '~35 h'],
    [6 * DAY, '~6 days'],
    [21 * DAY, '~3 weeks'],
    [100 * DAY, '~3 months'],
    [3 * 365 * DAY, '~3 years'],
    [Infinity, 'never'],
    [NaN, 'unknown'],
  ]
  for (const [seconds, words] of cases) assert.equal(humanEta(seconds), words, `${seconds} s`)
})

Deno.test('formatValue: 3 significant digits, SI prefixes for large values', () => {
  assert.equal(formatValue(71, '%'), '71 %')
  assert.equal(formatValue(4.2345, '%'), '4.23 %')
  assert.equal(formatValue(412e9, 'B'), '412 GB')
  assert.equal(formatValue(2 ** 31), '2.15 G')
  assert.equal(formatValue(1234), '1234')
  assert.equal(formatValue(-0.5, '%'), '-0.5 %')
})
