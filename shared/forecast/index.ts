// When will a metric cross its limit? A robust trend through the metric's recent points,
// extrapolated to the limit, with a band of plausible crossing times: memory toward OOM, disk and
// database size toward full, connections toward max_connections, XID age toward wraparound.
// Pure and deterministic (no I/O, no clock, no Math.random) so alerts, reports and the dashboard
// show the same forecast for the same points.
//
// The method, in order:
// 1. Clean: points with an invalid time or a non-finite value are dropped; points out of time
//    order are dropped (the fewest that leave the rest in order: the longest subsequence in
//    order is kept); points sharing a time are merged into their mean; points after `now` are
//    dropped. Every drop is counted in `dropped`.
// 2. Regime: the fit uses only the points after the last reset or level shift (see findRegime).
// 3. Trend: Theil–Sen (the median of pairwise slopes), in real time, never in point indices, so
//    gaps and irregular sampling do not bend it. The slope band is Sen's interval, widened for
//    autocorrelated residuals.
// 4. Crossing: from the fitted level at `now`, with a band that combines the slope band and the
//    residual spread (a noisy series gets a wide band even when its slope is certain).
// 5. No false crossing: a crossing is claimed only when the slope band excludes zero AND the fit
//    explains at least `minR2` of the variance, and the central estimate falls within the horizon.
import {
  median,
  normalQuantile,
  pairwiseSlopes,
  quantileSorted,
  robustScale,
  senFractions,
} from './stats.ts'

export interface Point {
  timestamp: Date
  value: number
}

export interface ForecastOptions {
  /** The line: 100 % memory, the disk size, max_connections, 2^31 XIDs … or a warning line. */
  limit: number
  /** 'up' (default): crossing from below. 'down': falling to the limit from above. */
  direction?: 'up' | 'down'
  /** Only crossings within this many seconds of `now` count as 'crosses'. */
  horizonSeconds: number
  /** Of the band, two-sided; default 0.9. */
  confidence?: number
  /** Below this many usable points (in the series, and after the last reset) there is no trend. */
  minPoints?: number
  /** Below this span of time (in the series, and after the last reset) there is no trend. */
  minSpanSeconds?: number
  /** A fit explaining less of the variance than this claims no crossing; default 0.2. */
  minR2?: number
  /** Default: the last usable point's time. Points after it are dropped. */
  now?: Date
  /** What the metric is, first in `text`: "memory", "disk", "XID age". */
  label?: string
  /** Appended to numbers in `text`: '%', 'B' (then 412 GB), 'conn'. */
  unit?: string
  /** Overrides how a value (or a rate, without its '/h') is written in `text`. */
  format?: (value: number) => string
}

/** Documented defaults. 10 points over 30 min: 10-30 min of Vigil's 30-60 s samples. */
export const FORECAST_DEFAULTS = {
  direction: 'up',
  confidence: 0.9,
  minPoints: 10,
  minSpanSeconds: 1800,
  minR2: 0.2,
} as const

/** How many points were left out, and why. */
export interface Dropped {
  /** Invalid timestamp, or a value that is NaN, ±Infinity or not a number. */
  invalid: number
  /** Earlier than points around them: the fewest drops that leave the rest in time order. */
  outOfOrder: number
  /** Sharing a timestamp with the point before: merged into one point, their mean. */
  duplicates: number
  /** After `now`. */
  future: number
}

export interface Fit {
  /** 'theil-sen', or 'theil-sen (sampled pairs)' beyond 150,000 pairs. */
  method: string
  /** Points in the fit: those after the last reset. */
  points: number
  spanSeconds: number
  /** Of the fitted line; null when the fitted points do not vary at all. */
  r2: number | null
  from: Date
  to: Date
  /** Resets and level shifts found; the fit starts after the last one. */
  resets: number
  lastResetAt: Date | null
  /** The slope band (confidence), in the metric's units per hour, low ≤ high. */
  slopeLowPerHour: number
  slopeHighPerHour: number
  /** The fitted value at `now`: the eta is measured from it, not from the noisy last point. */
  level: number
  /** Robust standard deviation of the points around the line. */
  residualSd: number
  /** Points' worth of independent information after allowing for autocorrelation. */
  effectivePoints: number
  dropped: Dropped
}

interface Judged {
  current: number
  limit: number
  text: string
}

export type Forecast =
  | (Judged & {
    status: 'crosses'
    /** Central estimate, from now. */
    etaSeconds: number
    /** Earliest plausible: the steep edge of the slope band plus the residual spread. */
    etaLowSeconds: number
    /** Latest plausible; null: the slow edge never crosses. */
    etaHighSeconds: number | null
    at: Date
    slopePerHour: number
    fit: Fit
  })
  | (Judged & {
    status: 'not_within_horizon'
    slopePerHour: number
    /** Where the trend would cross, beyond the horizon. */
    etaSeconds: number
    etaLowSeconds: number
    fit: Fit
  })
  | (Judged & {
    /** No trend toward the limit to speak of (see the rule at the top). */
    status: 'flat'
    slopePerHour: number
    fit: Fit
  })
  | (Judged & {
    /** Clearly moving away from the limit. */
    status: 'receding'
    slopePerHour: number
    fit: Fit
  })
  | (Judged & {
    status: 'already_crossed'
    /** Null (and fit null) when too few points follow the last reset to fit a trend. */
    slopePerHour: number | null
    fit: Fit | null
  })
  | {
    status: 'not_enough_data'
    reason: string
    text: string
    /** Usable points after cleaning. */
    points: number
    dropped: Dropped
  }

// A reset is a step between consecutive points this many robust standard deviations away from
// the step the trend predicts...
const RESET_SIGMAS = 6
// ...that is still there, by the median, over the next points (so a lone spike is no reset)...
const RESET_CONFIRM_POINTS = 5
// ...and at least this share of the distance between the series' median and the limit, so that
// small real moves (a VACUUM freeing a little, a few connections) stay part of the trend.
const RESET_MIN_SHARE = 0.02

/** "~4 h", "~6 days", "~25 min": how people say an ETA. */
export function humanEta(seconds: number): string {
  if (Number.isNaN(seconds)) return 'unknown'
  if (seconds === Infinity) return 'never'
  if (seconds <= 0) return 'now'
  if (seconds < 60) return '<1 min'
  const minutes = seconds / 60
  if (minutes < 90) return `~${Math.round(minutes)} min`
  const hours = minutes / 60
  if (hours < 36) return `~${Math.round(hours)} h`
  const days = hours / 24
  if (days < 14) return `~${Math.round(days)} days`
  if (days < 70) return `~${Math.round(days / 7)} weeks`
  const months = days / 30.44
  if (months < 24) return `~${Math.round(months)} months`
  return `~${Math.round(days / 365.25)} years`
}

/** Forecast when `points` will cross `options.limit`. Never throws; bad input says why. */
export function forecastCrossing(points: Point[], options: ForecastOptions): Forecast {
  const label = typeof options?.label === 'string' ? options.label.trim() : ''
  const unit = typeof options?.unit === 'string' ? options.unit : ''
  const fmt = typeof options?.format === 'function'
    ? options.format
    : (v: number) => formatValue(v, unit)
  const noDrops: Dropped = { invalid: 0, outOfOrder: 0, duplicates: 0, future: 0 }
  const notEnough = (reason: string, n: number, dropped: Dropped): Forecast => ({
    status: 'not_enough_data',
    reason,
    text: `${label || 'forecast'}: not enough data (${reason})`,
    points: n,
    dropped,
  })

  // Bad options are a caller's mistake, but a monitoring loop must not die of a limit that came
  // out NaN (an unknown max_connections): the forecast says so instead of throwing.
  const invalid = invalidOption(options)
  if (invalid) return notEnough(`invalid options: ${invalid}`, 0, noDrops)
  const limit = options.limit
  const up = (options.direction ?? FORECAST_DEFAULTS.direction) === 'up'
  const confidence = options.confidence ?? FORECAST_DEFAULTS.confidence
  const minPoints = Math.max(3, Math.ceil(options.minPoints ?? FORECAST_DEFAULTS.minPoints))
  const minSpan = options.minSpanSeconds ?? FORECAST_DEFAULTS.minSpanSeconds
  const minR2 = options.minR2 ?? FORECAST_DEFAULTS.minR2

  const { ts, ys, dropped } = clean(points, options.now?.getTime())
  const n = ts.length
  if (n === 0) return notEnough(`no usable points${droppedNote(dropped)}`, 0, dropped)
  const nowMs = options.now?.getTime() ?? ts[n - 1]
  const needs = `a trend needs at least ${minPoints} over ${plain(minSpan)}`
  const span = (ts[n - 1] - ts[0]) / 1000
  if (n < minPoints || span < minSpan) {
    return notEnough(
      `${count(n, 'usable point')}${n > 1 ? ` over ${plain(span)}` : ''}${
        droppedNote(dropped)
      }; ${needs}`,
      n,
      dropped,
    )
  }

  // Oriented: toward the limit is always up, so one code path serves both directions.
  const s = up ? 1 : -1
  const current = ys[n - 1]
  const crossed = s * current >= s * limit
  const base = { current, limit }
  const past = up ? 'at or above' : 'at or below'
  const crossedText = `${lead(label, fmt(current))} already ${past} ${fmt(limit)}`

  const regime = findRegime(ts, ys, limit)
  const start = regime.start
  const rn = n - start
  const rspan = (ts[n - 1] - ts[start]) / 1000
  if (rn < minPoints || rspan < minSpan) {
    if (crossed) {
      return {
        status: 'already_crossed',
        ...base,
        slopePerHour: null,
        fit: null,
        text: crossedText,
      }
    }
    const shift = ys[start] < ys[start - 1] ? 'drop' : 'jump'
    return notEnough(
      `since the ${shift} from ${fmt(ys[start - 1])} to ${fmt(ys[start])} at ${
        new Date(ts[start]).toISOString()
      }: ${count(rn, 'point')}${rn > 1 ? ` over ${plain(rspan)}` : ''}; ${needs}`,
      n,
      dropped,
    )
  }

  const xs = new Float64Array(rn)
  const yo = new Float64Array(rn)
  for (let i = 0; i < rn; i++) {
    xs[i] = (ts[start + i] - nowMs) / 1000
    yo[i] = s * ys[start + i]
  }
  const z = normalQuantile(0.5 + confidence / 2)
  const t = fitTrend(xs, yo, z)
  const perHour = (v: number) => s * v * 3600
  const band = [perHour(t.slopeLow), perHour(t.slopeHigh)].sort((a, b) => a - b)
  const fit: Fit = {
    method: t.sampled ? 'theil-sen (sampled pairs)' : 'theil-sen',
    points: rn,
    spanSeconds: rspan,
    r2: t.r2,
    from: new Date(ts[start]),
    to: new Date(ts[n - 1]),
    resets: regime.resets,
    lastResetAt: start > 0 ? new Date(ts[start]) : null,
    slopeLowPerHour: band[0],
    slopeHighPerHour: band[1],
    level: s * t.level,
    residualSd: t.residualSd,
    effectivePoints: t.nEff,
    dropped,
  }
  const slopePerHour = perHour(t.slope)
  if (crossed) return { status: 'already_crossed', ...base, slopePerHour, fit, text: crossedText }

  const clear = t.r2 !== null && t.r2 >= minR2
  const horizon = options.horizonSeconds
  // The rate reads best per day when the time scale is days.
  const rate = (scale: number) =>
    scale >= 2 * 86400
      ? `${fmt(Math.abs(slopePerHour) * 24)}/day`
      : `${fmt(Math.abs(slopePerHour))}/h`
  const moving = slopePerHour >= 0 ? 'rising' : 'falling'
  const head = lead(label, fmt(current))

  if (t.slope > 0 && t.slopeLow > 0 && clear) {
    const limitO = s * limit
    const distance = limitO - t.level
    // The residual spread, plus the level's own uncertainty (the SE of a median), at the band's z.
    const spread = z * t.residualSd * Math.sqrt(1 + 1.5708 / t.nEff)
    const eta = Math.max(0, distance / t.slope)
    const etaLow = Math.max(0, (distance - spread) / t.slopeHigh)
    const high = (distance + spread) / t.slopeLow
    const etaHigh = Number.isFinite(high) ? Math.max(eta, high) : null
    if (eta <= horizon) {
      const low = humanEta(etaLow)
      const hi = etaHigh === null ? 'never' : humanEta(etaHigh)
      const between = low === humanEta(eta) && hi === low ? '' : ` (between ${low} and ${hi})`
      return {
        status: 'crosses',
        ...base,
        etaSeconds: eta,
        etaLowSeconds: etaLow,
        etaHighSeconds: etaHigh,
        at: new Date(nowMs + eta * 1000),
        slopePerHour,
        fit,
        text: `${head} ${moving} ${rate(eta)}: ${fmt(limit)} ${
          eta > 0 ? `in ${humanEta(eta)}` : 'now'
        }${between}`,
      }
    }
    return {
      status: 'not_within_horizon',
      ...base,
      slopePerHour,
      etaSeconds: eta,
      etaLowSeconds: etaLow,
      fit,
      text: `${head} ${moving} ${rate(horizon)}: ${fmt(limit)} not within ${plain(horizon)} (${
        humanEta(eta)
      } at this rate)`,
    }
  }
  if (t.slope < 0 && t.slopeHigh < 0 && clear) {
    return {
      status: 'receding',
      ...base,
      slopePerHour,
      fit,
      text: `${head} ${moving} ${rate(horizon)}, away from ${fmt(limit)}`,
    }
  }
  const why = t.r2 === null
    ? 'steady'
    : `no clear trend toward ${fmt(limit)} (${moving} ${rate(horizon)}, r² ${t.r2.toFixed(2)})`
  return { status: 'flat', ...base, slopePerHour, fit, text: `${head} ${why}` }
}

function invalidOption(o: ForecastOptions): string | null {
  if (!o || typeof o !== 'object') return 'no options'
  if (typeof o.limit !== 'number' || !Number.isFinite(o.limit)) {
    return `limit must be a finite number, got ${String(o.limit)}`
  }
  if (!(typeof o.horizonSeconds === 'number' && o.horizonSeconds > 0)) {
    return `horizonSeconds must be above 0, got ${String(o.horizonSeconds)}`
  }
  if (o.direction !== undefined && o.direction !== 'up' && o.direction !== 'down') {
    return `direction must be 'up' or 'down', got ${String(o.direction)}`
  }
  if (o.confidence !== undefined && !(o.confidence > 0 && o.confidence < 1)) {
    return `confidence must be between 0 and 1, got ${String(o.confidence)}`
  }
  if (o.minPoints !== undefined && !(o.minPoints >= 0 && Number.isFinite(o.minPoints))) {
    return `minPoints must be a finite number of at least 0, got ${String(o.minPoints)}`
  }
  if (
    o.minSpanSeconds !== undefined && !(o.minSpanSeconds >= 0 && Number.isFinite(o.minSpanSeconds))
  ) {
    return `minSpanSeconds must be a finite number of at least 0, got ${String(o.minSpanSeconds)}`
  }
  if (o.minR2 !== undefined && !(o.minR2 >= 0 && o.minR2 <= 1)) {
    return `minR2 must be between 0 and 1, got ${String(o.minR2)}`
  }
  if (o.now !== undefined && !(o.now instanceof Date && Number.isFinite(o.now.getTime()))) {
    return 'now must be a valid Date'
  }
  return null
}

/** Usable points in time order (ms), strictly increasing, with what was dropped. */
function clean(
  points: Point[],
  nowMs: number | undefined,
): { ts: number[]; ys: number[]; dropped: Dropped } {
  const dropped: Dropped = { invalid: 0, outOfOrder: 0, duplicates: 0, future: 0 }
  const vt: number[] = []
  const vy: number[] = []
  for (const p of Array.isArray(points) ? points : []) {
    const t = p?.timestamp instanceof Date ? p.timestamp.getTime() : NaN
    const y = p?.value
    if (!Number.isFinite(t) || typeof y !== 'number' || !Number.isFinite(y)) {
      dropped.invalid++
    } else if (nowMs !== undefined && t > nowMs) {
      dropped.future++
    } else {
      vt.push(t)
      vy.push(y)
    }
  }
  // Sorting would let a point stamped by a wrong clock land inside the series as if true; the
  // longest subsequence in order keeps the most points and drops the fewest, and says how many.
  const keep = longestNonDecreasing(vt)
  dropped.outOfOrder = vt.length - keep.length
  const ts: number[] = []
  const ys: number[] = []
  let sum = 0
  let k = 0
  for (const i of keep) {
    if (ts.length && ts[ts.length - 1] === vt[i]) {
      sum += vy[i]
      k++
      ys[ys.length - 1] = sum / k
      dropped.duplicates++
    } else {
      ts.push(vt[i])
      ys.push(vy[i])
      sum = vy[i]
      k = 1
    }
  }
  return { ts, ys, dropped }
}

/** Indices of a longest non-decreasing subsequence (patience sorting, O(n log n)). */
function longestNonDecreasing(values: number[]): number[] {
  const tails: number[] = []
  const previous = new Int32Array(values.length).fill(-1)
  for (let i = 0; i < values.length; i++) {
    let lo = 0
    let hi = tails.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (values[tails[mid]] <= values[i]) lo = mid + 1
      else hi = mid
    }
    if (lo > 0) previous[i] = tails[lo - 1]
    tails[lo] = i
  }
  const out: number[] = []
  for (let i = tails.length ? tails[tails.length - 1] : -1; i >= 0; i = previous[i]) out.push(i)
  return out.reverse()
}

/**
 * Where the current regime starts: after the last reset (a restart freeing memory, a freezing
 * vacuum lowering XID age) or level shift (a bulk load). A step from point i−1 to i is one when
 *  - it differs from the step the trend predicts (a robust rate, the median slope over pairs a
 *    few points apart, times the time between them) by more than RESET_SIGMAS robust standard
 *    deviations of such differences, where the deviation grows with the gap, because over hours
 *    without points the rate's own uncertainty adds up;
 *  - it is at least RESET_MIN_SHARE of the distance to the limit;
 *  - it persists: by the median over the next RESET_CONFIRM_POINTS points, the series stays at
 *    least half the step off the old trend, on the same side. A lone spike is no reset.
 * Steps both ways count: after a jump the old points describe another regime too.
 */
function findRegime(ts: number[], ys: number[], limit: number): { start: number; resets: number } {
  const n = ts.length
  if (n < 4) return { start: 0, resets: 0 }
  const sec = (i: number) => ts[i] / 1000
  // A lag of a few points steadies the rate against noise; at most 10 so that pairs spanning a
  // reset stay a minority even in a sawtooth with many restarts.
  const lag = Math.min(10, Math.max(1, Math.floor(n / 20)))
  const rates = new Float64Array(n - lag)
  for (let i = 0; i + lag < n; i++) rates[i] = (ys[i + lag] - ys[i]) / (sec(i + lag) - sec(i))
  const rate = median(rates)
  const rateSe = (1.2533 * robustScale(rates)) / Math.sqrt(Math.max(1, rates.length / lag))
  const steps = new Float64Array(n - 1)
  for (let i = 1; i < n; i++) steps[i - 1] = ys[i] - ys[i - 1] - rate * (sec(i) - sec(i - 1))
  const sigma = robustScale(steps)
  let magnitude = 0
  for (const y of ys) magnitude = Math.max(magnitude, Math.abs(y))
  // The floor also keeps float rounding in a constant series from counting as steps.
  const floor = Math.max(RESET_MIN_SHARE * Math.abs(limit - median(ys)), 1e-9 * magnitude)
  let start = 0
  let resets = 0
  for (let i = 1; i < n; i++) {
    // The old regime's level at point i−1: the median of the last few points since the last
    // reset, carried along the rate. A spike's way back down is then no step, and the points
    // just after a reset do not count it again.
    const before: number[] = []
    for (let j = Math.max(start, i - RESET_CONFIRM_POINTS); j < i; j++) {
      before.push(ys[j] + rate * (sec(i - 1) - sec(j)))
    }
    const level = median(before)
    const step = ys[i] - level - rate * (sec(i) - sec(i - 1))
    const threshold = Math.max(
      floor,
      RESET_SIGMAS * Math.hypot(sigma, rateSe * (sec(i) - sec(i - 1))),
    )
    if (!(Math.abs(step) > threshold)) continue
    const after: number[] = []
    for (let j = i; j < Math.min(n, i + RESET_CONFIRM_POINTS); j++) {
      after.push(ys[j] - level - rate * (sec(j) - sec(i - 1)))
    }
    const offset = median(after)
    if (Math.sign(offset) === Math.sign(step) && Math.abs(offset) > Math.abs(step) / 2) {
      start = i
      resets++
    }
  }
  return { start, resets }
}

interface TrendFit {
  /** Per second, oriented toward the limit. */
  slope: number
  slopeLow: number
  slopeHigh: number
  /** Fitted (oriented) value at x = 0, i.e. at now. */
  level: number
  residualSd: number
  r2: number | null
  nEff: number
  sampled: boolean
}

/** Theil–Sen through (xs seconds from now, ys), with Sen's band at z. */
function fitTrend(xs: Float64Array, ys: Float64Array, z: number): TrendFit {
  const n = xs.length
  const { slopes, sampled } = pairwiseSlopes(xs, ys)
  const slope = quantileSorted(slopes, 0.5)
  const level = median(ys.map((y, i) => y - slope * xs[i]))
  const residuals = ys.map((y, i) => y - (level + slope * xs[i]))
  const residualSd = robustScale(residuals)

  let mean = 0
  for (const y of ys) mean += y / n
  let total = 0
  let unexplained = 0
  for (let i = 0; i < n; i++) {
    total += (ys[i] - mean) ** 2
    unexplained += residuals[i] ** 2
  }
  // Relative to the values' size, so a constant XID age of 1.5e9 with rounding is still constant.
  const r2 = total > 1e-20 * n * (mean * mean + 1)
    ? Math.min(1, Math.max(0, 1 - unexplained / total))
    : null

  // Lag-1 autocorrelation of the (clipped) residuals: a memory series wanders slowly and its n
  // points say less than n independent ones would.
  let rho = 0
  if (residualSd > 0) {
    const cap = 3 * residualSd
    const r = residuals.map((v) => Math.max(-cap, Math.min(cap, v)))
    let num = 0
    let den = 0
    for (let i = 0; i < n; i++) {
      den += r[i] * r[i]
      if (i + 1 < n) num += r[i] * r[i + 1]
    }
    rho = den > 0 ? Math.min(0.98, Math.max(0, num / den)) : 0
  }
  const nEff = Math.max(2, Math.min(n, (n * (1 - rho)) / (1 + rho)))
  const { low, high } = senFractions(nEff, z)
  return {
    slope,
    slopeLow: quantileSorted(slopes, low),
    slopeHigh: quantileSorted(slopes, high),
    level,
    residualSd,
    r2,
    nEff,
    sampled,
  }
}

/**
 * 3 significant digits, SI prefixes from 10,000 on: "71 %", "4.2 %/h", "412 GB" (unit 'B'),
 * "2.15 G" (XIDs, no unit). SI, not binary: a caller wanting GiB passes `format`.
 */
export function formatValue(value: number, unit = ''): string {
  if (!Number.isFinite(value)) return `${value}${unit ? ` ${unit}` : ''}`
  const abs = Math.abs(value)
  let prefix = ''
  let v = value
  if (abs >= 1e4) {
    const prefixes = ['k', 'M', 'G', 'T', 'P', 'E']
    let p = -1
    while (Math.abs(v) >= 1e3 && p < prefixes.length - 1) {
      v /= 1e3
      p++
    }
    prefix = prefixes[p]
  }
  const digits = Math.abs(v) >= 1000 ? String(Math.round(v)) : String(Number(v.toPrecision(3)))
  const suffix = prefix + unit
  return suffix ? `${digits} ${suffix}` : digits
}

function lead(label: string, value: string): string {
  return label ? `${label} ${value}` : value
}

/** A duration without the "~" an estimate gets: "30 min", "1 day". */
function plain(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)} s`
  if (seconds === 86400) return '1 day'
  return humanEta(seconds).replace(/^~/, '')
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

function droppedNote(d: Dropped): string {
  const parts = [
    d.invalid && `${d.invalid} not finite or without a valid time`,
    d.outOfOrder && `${d.outOfOrder} out of order`,
    d.duplicates && `${d.duplicates} duplicate time${d.duplicates === 1 ? '' : 's'} merged`,
    d.future && `${d.future} after now`,
  ].filter(Boolean)
  return parts.length ? ` (dropped: ${parts.join(', ')})` : ''
}
