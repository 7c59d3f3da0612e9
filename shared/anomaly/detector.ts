// The streaming detector. One update per point, O(1) time, a fixed-size state; see index.ts for
// the design in prose.
import {
  type DetectorOptions,
  differingOptions,
  type ResolvedOptions,
  resolveOptions,
} from './options.ts'
import {
  AnomalyStateError,
  cloneState,
  DAY_BUCKETS,
  type DetectorState,
  type LastBaseline,
  parseState,
  STATE_FORMAT,
  STATE_VERSION,
} from './state.ts'
import { newTail, tailLearn, tailProbability } from './tail.ts'

export interface Point {
  timestamp: Date
  value: number
}

/** What the last scored point was compared with. */
export interface Baseline {
  /** The value the detector expected at that time (robust baseline, with the daily profile once learned). */
  expected: number
  /** The typical range around it (about ±3 standard deviations of normal variation). */
  low: number
  high: number
  /** value / expected, the "comparison_to_baseline" (null when expected is 0). */
  ratio: number | null
  /** The mean value in the 5 minutes around one hour before the point, when there was data then. */
  hourAgo: number | null
  /** The value that was scored. */
  value: number
}

/** How a scored point was judged, for explanations and debugging. */
export interface Components {
  /** Deviation from the one-step prediction, in noise-scale units (signed). */
  point: number
  /** Deviation of the short-term mean from the baseline, in its own scale units (signed). */
  shift: number
  /** Tail probabilities of those two (1 when unremarkable). */
  pointP: number
  shiftP: number
  /** The value left the range seen so far. */
  newExtreme: boolean
  /** Weight (0..1) of the time-of-day profile in the baseline. */
  seasonal: number
  /** The score was held below the threshold because an episode was already reported. */
  sameEpisode: boolean
}

export interface Detector {
  /** The anomaly score of this point in [0,1], from it and the points before it only. 0 during probation and for points not scored (see lastReason). */
  update(point: Point): number
  /** Why the last point got no real score ('probation', 'not a finite number', 'out of order', ...); null when it was scored. */
  readonly lastReason: string | null
  /** What the last scored point was compared with; null before any point was scored. */
  baseline(): Baseline | null
  /** Compact JSON-serialisable state; createDetector(options, state) resumes exactly. */
  state(): DetectorState
  /** Points accepted so far (learned from, including probation); refused points are not counted. */
  readonly count: number
  /** Points refused so far (not finite, out of order, duplicate timestamp, invalid timestamp). */
  readonly skipped: number
  /** How the last scored point was judged; null when it was not scored. */
  readonly lastComponents: Components | null
}

/**
 * The score above which Vigil opens an `anomaly` incident. Scores are -log10(p) / 10, where p is
 * the estimated probability of a deviation at least this large in normal operation, so 0.5 means
 * p = 1e-5, and a score of 0.5 or more is what NAB's Numenta detector also reports as an anomaly.
 */
export const ANOMALY_THRESHOLD = 0.5

const HOUR = 3_600_000
const DAY = 24 * HOUR
const FIVE_MIN = 300_000
/** Points with p below this are not learned by the noise scales and tails (they are the anomaly). */
const P_LEARN = 1e-3
/** A new extreme that is also unusual noise-wise has its probability multiplied by this. */
const NEW_EXTREME_FACTOR = 0.01
/** Deviations beyond this many scale units are clipped when learning levels (Huber). */
const HUBER = 3
/** Points before which levels and scales learn without clipping. */
const WARM = 10
/** A new extreme counts only when the point is already this unusual on its own. */
const P_SPATIAL_GATE = 1e-4
/** Points with p below this do not update the noise scales, and the tails learn them only if they stand alone. */
const P_SCALE = 0.01
/** Deviations are clipped at this many scale units when the scales learn. */
const SCALE_CLIP = 4
/** Within an episode, repeated alarms are held at this fraction of the threshold. */
const HOLD = 0.5

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v
}

/** EWMA weight for a span in typical intervals, for a point worth w intervals, with warm-up. */
function alpha(span: number, w: number, seen: number): number {
  const a = 1 - Math.pow(1 - 2 / (span + 1), w)
  return seen > 0 ? Math.max(a, 1 / (seen + 1)) : 1
}

function seasonAt(s: number[], t: number): number {
  const pos = (((t % DAY) + DAY) % DAY) / HOUR - 0.5
  const f = Math.floor(pos)
  const frac = pos - f
  const i0 = (f + DAY_BUCKETS) % DAY_BUCKETS
  const i1 = (i0 + 1) % DAY_BUCKETS
  return s[i0] * (1 - frac) + s[i1] * frac
}

function learnSeason(s: number[], t: number, e: number, g: number): void {
  const pos = (((t % DAY) + DAY) % DAY) / HOUR - 0.5
  const f = Math.floor(pos)
  const frac = pos - f
  const i0 = (f + DAY_BUCKETS) % DAY_BUCKETS
  const i1 = (i0 + 1) % DAY_BUCKETS
  s[i0] += g * (1 - frac) * e
  s[i1] += g * frac * e
  let mean = 0
  for (let i = 0; i < DAY_BUCKETS; i++) mean += s[i]
  mean /= DAY_BUCKETS
  for (let i = 0; i < DAY_BUCKETS; i++) s[i] -= mean
}

function formatGap(ms: number): string {
  if (ms >= 2 * DAY) return `${Math.round(ms / DAY)} d`
  if (ms >= 2 * HOUR) return `${Math.round(ms / HOUR)} h`
  if (ms >= 120_000) return `${Math.round(ms / 60_000)} min`
  return `${Math.round(ms / 1000)} s`
}

function freshState(options: ResolvedOptions): DetectorState {
  return {
    format: STATE_FORMAT,
    version: STATE_VERSION,
    options: { ...options },
    n: 0,
    skipped: 0,
    t0: 0,
    t: 0,
    dt: 0,
    gapRun: 0,
    resume: 0,
    x: 0,
    fast: 0,
    fs: 0,
    fastRun: 0,
    short: 0,
    slow: 0,
    ss: 0,
    hs: 0,
    run: 0,
    arun: 0,
    tarun: 0,
    pend: null,
    lo: 0,
    hi: 0,
    res: 0,
    day: { w: 0, lvl: 0, raw: 0, eS: 0, e0: 0, s: new Array(DAY_BUCKETS).fill(0) },
    tp: newTail(),
    th: newTail(),
    cool: 0,
    coolScore: 0,
    hour: [],
    last: null,
    reason: null,
    score: 0,
  }
}

class StreamingDetector implements Detector {
  #s: DetectorState
  #o: ResolvedOptions
  #components: Components | null = null

  constructor(options: ResolvedOptions, state: DetectorState) {
    this.#o = options
    this.#s = state
  }

  get lastReason(): string | null {
    return this.#s.reason
  }

  get count(): number {
    return this.#s.n
  }

  get skipped(): number {
    return this.#s.skipped
  }

  get lastComponents(): Components | null {
    return this.#s.reason === null ? this.#components : null
  }

  baseline(): Baseline | null {
    const l = this.#s.last
    return l ? { ...l } : null
  }

  state(): DetectorState {
    return cloneState(this.#s)
  }

  #skip(reason: string): number {
    this.#s.skipped++
    this.#s.reason = reason
    this.#s.score = 0
    return 0
  }

  #hourAgo(t: number): number | null {
    const h = this.#s.hour
    const target = Math.floor((t - HOUR) / FIVE_MIN)
    let best: number | null = null
    let bestDist = 2
    for (let i = 0; i < h.length; i += 3) {
      const d = Math.abs(h[i] - target)
      if (d < bestDist) {
        bestDist = d
        best = h[i + 1]
      }
    }
    return best
  }

  #remember(t: number, x: number): void {
    const h = this.#s.hour
    const b = Math.floor(t / FIVE_MIN)
    const n = h.length
    if (n > 0 && h[n - 3] === b) {
      h[n - 1] += 1
      h[n - 2] += (x - h[n - 2]) / h[n - 1]
    } else {
      h.push(b, x, 1)
    }
    while (h.length > 0 && h[0] < b - 14) h.splice(0, 3)
  }

  update(point: Point): number {
    const s = this.#s
    const o = this.#o
    const ts = point?.timestamp
    const t = ts instanceof Date ? ts.getTime() : NaN
    if (!Number.isFinite(t)) return this.#skip('invalid timestamp')
    const x = point.value
    if (typeof x !== 'number' || !Number.isFinite(x)) return this.#skip('not a finite number')
    if (s.n > 0) {
      if (t < s.t) return this.#skip('out of order')
      if (t === s.t) return this.#skip('duplicate timestamp')
    } else {
      s.n = 1
      s.t0 = s.t = t
      s.x =
        s.fast =
        s.short =
        s.slow =
        s.lo =
        s.hi =
          x
      s.day.lvl = s.day.raw = x
      this.#remember(t, x)
      s.reason = 'probation'
      s.score = 0
      return 0
    }

    // Spacing: learn the typical interval; a much longer pause is a gap.
    const dt = t - s.t
    let gap = false
    let w = 1
    if (s.dt === 0) {
      s.dt = dt
    } else {
      const ratio = dt / s.dt
      if (ratio > o.maxGap) {
        gap = true
        s.gapRun++
        if (s.gapRun >= 3) {
          // Three gaps in a row: the cadence itself changed; adopt it.
          s.dt = dt
          s.gapRun = 0
        }
      } else {
        s.gapRun = 0
        s.dt *= Math.pow(clamp(ratio, 0.25, 4), 0.05)
      }
      w = clamp(ratio, 0.25, 4)
    }

    // Predictions, from the state before this point.
    const day = s.day
    const sNow = day.w > 0 ? day.w * seasonAt(day.s, t) : 0
    const sPrev = day.w > 0 ? day.w * seasonAt(day.s, s.t) : 0
    const expected = s.slow + sNow
    const floor = Math.max(
      o.minScale,
      o.relativeScaleFloor * Math.abs(expected),
      s.res / 2,
      1e-9 * Math.max(1, Math.abs(x)),
    )
    const predFast = s.fast + sNow - sPrev
    const fsEff = Math.max(s.fs, floor)
    const rp = x - predFast
    const zp = rp / fsEff
    const xd = x - sNow
    // The short-term mean learns each point Huber-clipped at 4 noise scales, so one spike does not
    // look like a level shift; a real shift is taken in at once when the fast level snaps (below).
    const dShort = xd - s.short
    const short = s.short +
      alpha(o.shortSpan, w, s.n) *
        (s.n < WARM ? dShort : clamp(dShort, -4 * fsEff, 4 * fsEff))
    const d = short - s.slow
    const hsEff = Math.max(s.hs, floor / 2)
    const zh = d / hsEff

    // Is this point scored?
    let reason: string | null = null
    if (gap) {
      s.resume = o.resumePoints
      reason = `resuming after a gap of ${formatGap(dt)}`
    } else if (s.resume > 0) {
      s.resume--
      reason = 'resuming after a gap'
    }
    if (s.n < o.probation || t - s.t0 < o.probationMs) reason = 'probation'
    else if (reason === null && s.lo === s.hi && x === s.lo) {
      reason = 'constant series: no variation to compare with yet'
    }

    let score = 0
    let p = 1
    let ph = 1
    let pMin = 1
    if (reason === null) {
      const pp = tailProbability(s.tp, Math.abs(zp))
      ph = tailProbability(s.th, Math.abs(zh))
      pMin = Math.min(pp, ph)
      p = Math.min(1, 2 * Math.min(pp, ph))
      let newExtreme = false
      if (o.spatialTolerance !== false && s.hi > s.lo && pMin < P_SPATIAL_GATE) {
        const tol = o.spatialTolerance * (s.hi - s.lo)
        if (x > s.hi + tol || x < s.lo - tol) {
          newExtreme = true
          p *= NEW_EXTREME_FACTOR
        }
      }
      score = clamp(-Math.log10(Math.max(p, 1e-300)) / 10, 0, 1)
      let sameEpisode = false
      if (o.cooldown > 0) {
        if (s.cool > 0) {
          s.cool--
          if (score >= ANOMALY_THRESHOLD) {
            if (score >= s.coolScore + 0.2) {
              s.cool = o.cooldown
              s.coolScore = score
            } else {
              sameEpisode = true
              score = Math.min(score, ANOMALY_THRESHOLD * HOLD)
              s.cool = o.cooldown
            }
          }
        } else if (score >= ANOMALY_THRESHOLD) {
          s.cool = o.cooldown
          s.coolScore = score
        }
      }
      const sd = 1.2533 * Math.max(s.ss, floor)
      const last: LastBaseline = {
        value: x,
        expected,
        low: expected - 3 * sd,
        high: expected + 3 * sd,
        ratio: Math.abs(expected) > 1e-12 ? x / expected : null,
        hourAgo: this.#hourAgo(t),
      }
      s.last = last
      this.#components = {
        point: zp,
        shift: zh,
        pointP: pp,
        shiftP: ph,
        newExtreme,
        seasonal: day.w,
        sameEpisode,
      }
    }

    // Learning. Scales and tails skip what was just called anomalous; levels learn robustly.
    const anomalous = reason === null && p < P_LEARN
    const warm = s.n < WARM
    const aScale = alpha(o.scaleSpan, w, s.n - 1)
    const aSlow = alpha(o.slowSpan, w, s.n)

    if (Math.abs(zp) > HUBER && !warm) {
      const sign = zp > 0 ? 1 : -1
      s.fastRun = s.fastRun * sign > 0 ? s.fastRun + sign : sign
    } else {
      s.fastRun = 0
    }
    let snapped = false
    if (gap || Math.abs(s.fastRun) >= 3) {
      s.fast = x
      s.fastRun = 0
      snapped = true
    } else {
      const a = alpha(o.fastSpan, w, s.n)
      s.fast = predFast + a * (warm ? rp : clamp(rp, -HUBER * fsEff, HUBER * fsEff))
    }
    // Scales learn only unremarkable points, clipped, so a slowly growing anomaly cannot teach
    // them that it is normal.
    const learnScale = reason !== null || pMin >= P_SCALE
    const clipS = SCALE_CLIP
    if (learnScale) {
      s.fs += aScale * ((warm ? Math.abs(rp) : Math.min(Math.abs(rp), clipS * fsEff)) - s.fs)
    }

    // Level shift confirmation: a run of significant same-side shift deviations moves the baseline.
    if (reason === null && ph < P_LEARN) {
      const sign = d > 0 ? 1 : -1
      s.run = s.run * sign > 0 ? s.run + sign : sign
    } else {
      s.run = 0
    }
    const ssEff = Math.max(s.ss, floor)
    const slowRes = xd - s.slow
    s.short = snapped ? xd : short
    if (Math.abs(s.run) >= 2 * o.shortSpan) {
      s.slow = s.short
      s.run = 0
    } else {
      s.slow += aSlow * (warm ? slowRes : clamp(slowRes, -HUBER * ssEff, HUBER * ssEff))
    }
    if (learnScale) {
      s.ss += aSlow *
        ((warm ? Math.abs(slowRes) : Math.min(Math.abs(slowRes), clipS * ssEff)) - s.ss)
      s.hs += aSlow * ((warm ? Math.abs(d) : Math.min(Math.abs(d), clipS * hsEff)) - s.hs)
    }
    // Tails learn every normal point and every isolated anomalous one: an isolated extreme is part
    // of a heavy-tailed series' normal, a run is the anomaly itself. So the first point of a run is
    // held back and learned only once the next point shows it stood alone.
    const tailSuspect = reason === null && p < P_SCALE
    if (gap) {
      s.pend = null
    } else if (!warm) {
      const keep = 1 - 1 / o.tailMemory
      if (tailSuspect) {
        s.pend = s.tarun === 0 ? [Math.abs(zp), Math.abs(zh)] : null
      } else {
        if (s.pend) {
          tailLearn(s.tp, s.pend[0], 1, keep)
          tailLearn(s.th, s.pend[1], 1, keep)
          s.pend = null
        }
        tailLearn(s.tp, Math.abs(zp), 1, keep)
        tailLearn(s.th, Math.abs(zh), 1, keep)
      }
    }
    s.tarun = tailSuspect ? Math.min(s.tarun + 1, 1e6) : 0
    s.arun = anomalous ? Math.min(s.arun + 1, 1e6) : 0

    // Daily profile (wall-clock): Holt-Winters-like, a day-scale level plus hourly offsets.
    if (o.seasonality === 'auto') {
      const span = Math.min(dt, HOUR)
      const aDay = Math.max(1 - Math.exp(-span / DAY), 1 / (s.n + 1))
      const sAll = seasonAt(day.s, t)
      day.eS += aDay * (Math.abs(x - day.lvl - sAll) - day.eS)
      day.e0 += aDay * (Math.abs(x - day.raw) - day.e0)
      day.lvl += aDay * (x - sAll - day.lvl)
      day.raw += aDay * (x - day.raw)
      if (!anomalous) learnSeason(day.s, t, x - day.lvl - sAll, 1 - Math.pow(0.75, span / HOUR))
      const covered = t - s.t0 >= 2 * DAY
      const target = covered && day.eS < 0.75 * day.e0 ? 1 : 0
      day.w += aSlow * (target - day.w)
      if (day.w < 1e-3 && target === 0) day.w = 0
    }

    // Range, resolution, last value.
    if (x !== s.x) {
      const step = Math.abs(x - s.x)
      s.res = s.res === 0 ? step : Math.min(s.res, step)
    }
    if (x < s.lo) s.lo = x
    if (x > s.hi) s.hi = x
    s.x = x
    s.t = t
    s.n++
    this.#remember(t, x)
    s.reason = reason
    s.score = reason === null ? score : 0
    return s.score
  }
}

/**
 * A new detector, or one resumed from `state` (a DetectorState or its JSON text). A state that is
 * malformed, of another format or version, or made with different options is refused with an
 * AnomalyStateError that says what is wrong: the caller decides whether to start fresh.
 */
export function createDetector(options?: DetectorOptions, state?: unknown): Detector {
  const resolved = resolveOptions(options)
  if (state === undefined || state === null) {
    return new StreamingDetector(resolved, freshState(resolved))
  }
  const s = parseState(state)
  const differ = differingOptions(resolved, s.options)
  if (differ.length > 0) {
    throw new AnomalyStateError(
      `anomaly detector state was made with other options (${
        differ.map((k) =>
          `${k}: ${JSON.stringify(s.options[k])} there, ${JSON.stringify(resolved[k])} now`
        )
          .join('; ')
      })`,
    )
  }
  return new StreamingDetector(resolved, s)
}
