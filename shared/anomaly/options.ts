// Detector options: what each one means, its default, and how a restored state is checked against
// them. Spans count "typical intervals" (the detector learns the series' usual spacing between
// points), so the same defaults suit a 30-second cycle and 5-minute data alike; seasonality and the
// "an hour ago" comparison use wall-clock time.

export interface DetectorOptions {
  /** Points learned before any score is given (all scores are 0 until then, lastReason 'probation'). Default 60. */
  probation?: number
  /** Also wait until this many milliseconds separate the first point from the current one. Default 0. */
  probationMs?: number
  /** Span (in typical intervals) of the fast level that predicts the next point. Default 5. */
  fastSpan?: number
  /** Span of the short-term mean that is compared with the baseline to find level shifts. Default 6. */
  shortSpan?: number
  /** Span of the slow robust baseline (the "expected" value). Default 300. */
  slowSpan?: number
  /** Span of the point-to-point noise scale. Default 50. */
  scaleSpan?: number
  /** Memory (in points) of the tail estimates that turn deviations into probabilities. Default 3000. */
  tailMemory?: number
  /** 'auto' learns a time-of-day profile and uses it once it explains the series; 'off' never. */
  seasonality?: 'auto' | 'off'
  /** Smallest deviation scale in the metric's own unit (e.g. 1 ms); 0 lets the data decide. Default 0. */
  minScale?: number
  /** Smallest deviation scale as a fraction of the baseline (0.005 = 0.5 %). Default 0.005. */
  relativeScaleFloor?: number
  /** A pause longer than this many typical intervals is a gap: the detector re-syncs. Default 20. */
  maxGap?: number
  /** Points after a gap that are learned but not scored (lastReason says so). Default 3. */
  resumePoints?: number
  /**
   * Once a score crosses ANOMALY_THRESHOLD, later alarms of the same episode (until `cooldown`
   * points in a row stay below it) are held at half the threshold unless they are far more
   * surprising (+0.2) than the one that raised it: one alarm per episode, not one per point.
   * 0 turns this off. Default 30.
   */
  cooldown?: number
  /**
   * Values beyond the range seen so far by more than this fraction of it are anomalies when they
   * are also unusual for the recent noise (people label new extremes). false turns it off. Default 0.05.
   */
  spatialTolerance?: number | false
}

export interface ResolvedOptions {
  probation: number
  probationMs: number
  fastSpan: number
  shortSpan: number
  slowSpan: number
  scaleSpan: number
  tailMemory: number
  seasonality: 'auto' | 'off'
  minScale: number
  relativeScaleFloor: number
  maxGap: number
  resumePoints: number
  cooldown: number
  spatialTolerance: number | false
}

export const DEFAULT_OPTIONS: Readonly<ResolvedOptions> = Object.freeze({
  probation: 60,
  probationMs: 0,
  fastSpan: 5,
  shortSpan: 6,
  slowSpan: 300,
  scaleSpan: 50,
  tailMemory: 3000,
  seasonality: 'auto',
  minScale: 0,
  relativeScaleFloor: 0.005,
  maxGap: 20,
  resumePoints: 3,
  cooldown: 30,
  spatialTolerance: 0.05,
})

const KEYS = Object.keys(DEFAULT_OPTIONS) as (keyof ResolvedOptions)[]

function check(ok: boolean, name: string, what: string): void {
  if (!ok) throw new RangeError(`anomaly detector option ${name} must be ${what}`)
}

export function resolveOptions(options: DetectorOptions = {}): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('anomaly detector options must be an object')
  }
  const o = { ...DEFAULT_OPTIONS } as ResolvedOptions
  for (const key of Object.keys(options) as (keyof DetectorOptions)[]) {
    const value = options[key]
    if (value === undefined) continue
    if (!KEYS.includes(key)) throw new RangeError(`unknown anomaly detector option ${key}`)
    ;(o as unknown as Record<string, unknown>)[key] = value
  }
  const int = (v: number) => Number.isInteger(v) && v >= 0
  check(int(o.probation), 'probation', 'a whole number of points >= 0')
  check(Number.isFinite(o.probationMs) && o.probationMs >= 0, 'probationMs', 'a duration >= 0 ms')
  for (const k of ['fastSpan', 'shortSpan', 'slowSpan', 'scaleSpan'] as const) {
    check(Number.isFinite(o[k]) && o[k] >= 1, k, 'a number >= 1')
  }
  check(Number.isFinite(o.tailMemory) && o.tailMemory >= 10, 'tailMemory', 'a number >= 10')
  check(o.seasonality === 'auto' || o.seasonality === 'off', 'seasonality', "'auto' or 'off'")
  check(Number.isFinite(o.minScale) && o.minScale >= 0, 'minScale', 'a number >= 0')
  check(
    Number.isFinite(o.relativeScaleFloor) && o.relativeScaleFloor >= 0,
    'relativeScaleFloor',
    'a number >= 0',
  )
  check(Number.isFinite(o.maxGap) && o.maxGap > 1, 'maxGap', 'a number > 1')
  check(int(o.resumePoints), 'resumePoints', 'a whole number >= 0')
  check(int(o.cooldown), 'cooldown', 'a whole number >= 0')
  check(
    o.spatialTolerance === false ||
      (Number.isFinite(o.spatialTolerance) && o.spatialTolerance >= 0),
    'spatialTolerance',
    'a number >= 0 or false',
  )
  return o
}

/** The names of the options on which two resolved sets differ. */
export function differingOptions(
  a: ResolvedOptions,
  b: ResolvedOptions,
): (keyof ResolvedOptions)[] {
  return KEYS.filter((k) => a[k] !== b[k])
}
