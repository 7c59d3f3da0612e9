// Anomaly detection quality and cost for shared/anomaly: NAB-style scores (Numenta Anomaly
// Benchmark: scaled-sigmoid windows, standard / reward_low_FP / reward_low_FN profiles, normalised
// so that the null detector scores 0 and the perfect one 100) for Vigil's detector against two
// baselines implemented here (NAB's windowedGaussian and a running z-score), on a seeded synthetic
// corpus of SRE-like metric streams and on a few real labelled streams from NAB
// (bench/data/anomaly, AGPL-3.0, benchmark data only); then the cost of 1,000 series updated per
// cycle and the size of their states. No database; runs on its own:
//   nice -n 19 node_modules/.bin/deno run -A --config deno.json bench/anomaly.ts
// and writes bench/results/anomaly.json.
import { ANOMALY_THRESHOLD, createDetector } from '../shared/anomaly/index.ts'

// ---------------------------------------------------------------------------------------------
// Corpus

export interface LabelledSeries {
  name: string
  timestamps: number[]
  values: number[]
  /** NAB anomaly windows as inclusive [start, end] indices. */
  windows: [number, number][]
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

class Rng {
  #next: () => number
  constructor(seed: number) {
    this.#next = mulberry32(seed)
  }
  uniform(): number {
    return this.#next()
  }
  normal(): number {
    const u = Math.max(this.#next(), 1e-12)
    const v = this.#next()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }
  /** Student t with `dof` degrees of freedom (heavy tails). */
  t(dof: number): number {
    let chi = 0
    for (let i = 0; i < dof; i++) chi += this.normal() ** 2
    return this.normal() / Math.sqrt(chi / dof)
  }
  poisson(lambda: number): number {
    if (lambda > 30) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * this.normal()))
    const l = Math.exp(-lambda)
    let k = 0
    let p = 1
    do {
      k++
      p *= this.#next()
    } while (p > l)
    return k - 1
  }
}

/** NAB's labelling: windows of 10 % of the series' length shared among its anomalies, centred on each. */
export function nabWindows(n: number, onsets: number[]): [number, number][] {
  if (onsets.length === 0) return []
  const size = Math.floor((0.1 * n) / onsets.length)
  const windows: [number, number][] = []
  for (const a of [...onsets].sort((x, y) => x - y)) {
    const w: [number, number] = [
      Math.max(0, a - Math.floor(size / 2)),
      Math.min(n - 1, a + Math.floor(size / 2)),
    ]
    const prev = windows[windows.length - 1]
    if (prev && w[0] <= prev[1]) prev[1] = Math.max(prev[1], w[1])
    else windows.push(w)
  }
  return windows
}

const HOUR = 3_600_000
const DAY = 24 * HOUR
const START = Date.UTC(2025, 2, 3) // a Monday

interface Gen {
  name: string
  interval: number // seconds
  days: number
  /** Long pauses: [fraction of the series where it starts, hours]. */
  gaps?: [number, number][]
  jitter?: boolean
  /** Value at time t (ms since START) and index i; `a` holds the anomaly onsets as times. */
  value: (r: Rng, t: number, i: number, a: number[]) => number
  /** Number of anomalies (onsets drawn in 35-85 % of the time span). */
  anomalies: number
}

const hourOfDay = (t: number) => ((t % DAY) + DAY) % DAY / HOUR
const daily = (t: number, peakHour = 14) =>
  Math.sin((2 * Math.PI * (hourOfDay(t) - peakHour + 6)) / 24)
const weekend = (t: number) => {
  const d = new Date(START + t).getUTCDay()
  return d === 0 || d === 6
}
/** Active between onset a and a + ms. */
const within = (t: number, a: number[], ms: number) => a.some((x) => t >= x && t < x + ms)
const after = (t: number, a: number[]) => a.some((x) => t >= x)

function generators(): Gen[] {
  const gens: Gen[] = []
  for (const [v, interval, days] of [[0, 60, 4], [1, 300, 14]] as const) {
    const tag = interval === 60 ? '1m' : '5m'
    gens.push(
      {
        name: `latency_level_up_${tag}`,
        interval,
        days,
        anomalies: 1,
        value: (r, t, _i, a) =>
          120 * (1 + 0.3 * daily(t)) * Math.exp(0.08 * r.normal()) *
          (within(t, a, 90 * 60_000) ? 2.5 : 1),
      },
      {
        name: `latency_heavy_tail_burst_${tag}`,
        interval,
        days,
        anomalies: 1,
        value: (r, t, _i, a) => {
          let v = 80 * Math.exp(0.12 * r.t(3))
          if (r.uniform() < 0.003) v *= 2
          if (within(t, a, 5 * interval * 1000)) v *= 8
          return v
        },
      },
      {
        name: `error_count_burst_${tag}`,
        interval,
        days,
        anomalies: 1,
        value: (r, t, _i, a) => r.poisson(within(t, a, 40 * interval * 1000) ? 6 : 0.3),
      },
      {
        name: `connections_pool_step_${tag}`,
        interval,
        days,
        anomalies: 1,
        value: (r, t, i, a) =>
          Math.round(40 + 6 * Math.sin(i / 97) + 3 * r.normal() + (after(t, a) ? 55 : 0)),
      },
      {
        name: `memory_leak_${tag}`,
        interval,
        days,
        anomalies: 1,
        value: (r, t, _i, a) => {
          const leak = a.length && t >= a[0]
            ? Math.min(50, ((t - a[0]) / HOUR) * (interval === 60 ? 3 : 1))
            : 0
          return 45 + 1.5 * daily(t) + 0.3 * r.normal() + leak
        },
      },
      {
        name: `cpu_variance_up_${tag}`,
        interval,
        days,
        anomalies: 1,
        value: (r, t, _i, a) =>
          Math.min(
            100,
            Math.max(
              0,
              30 + 5 * daily(t) + (within(t, a, 200 * interval * 1000) ? 12 : 3) * r.normal(),
            ),
          ),
      },
      {
        name: `throughput_outage_weekly_${tag}`,
        interval,
        days,
        anomalies: 1,
        value: (r, t, _i, a) =>
          Math.max(0, 200 * (1 + 0.5 * daily(t)) * (weekend(t) ? 0.6 : 1) + 10 * r.normal()) *
          (within(t, a, HOUR) ? 0.3 : 1),
      },
      {
        name: `query_time_drift_${tag}`,
        interval,
        days,
        anomalies: 1,
        value: (r, t, _i, a) => {
          const ramp = a.length && t >= a[0] ? Math.min(1, (t - a[0]) / (6 * HOUR)) : 0
          return 15 * (1 + 0.5 * ramp) * Math.exp(0.1 * r.normal())
        },
      },
      {
        name: `cpu_flatline_${tag}`,
        interval,
        days,
        anomalies: 1,
        value: (
          r,
          t,
          _i,
          a,
        ) => (within(t, a, 100 * interval * 1000) ? 37.5 : 35 + 4 * daily(t) + 2 * r.normal()),
      },
      {
        name: `throughput_drop_to_zero_${tag}`,
        interval,
        days,
        anomalies: 2,
        value: (
          r,
          t,
          _i,
          a,
        ) => (within(t, a, 15 * interval * 1000) ? 0 : r.poisson(50 * (1 + 0.3 * daily(t)))),
      },
      {
        name: `latency_level_down_${tag}`,
        interval,
        days,
        anomalies: 1,
        value: (r, t, _i, a) =>
          250 * Math.exp(0.1 * r.normal()) * (within(t, a, 2 * HOUR) ? 0.4 : 1),
      },
      {
        name: `latency_single_spikes_${tag}`,
        interval,
        days,
        anomalies: 2,
        value: (r, t, _i, a) =>
          90 * (1 + 0.25 * daily(t)) * Math.exp(0.07 * r.normal()) *
          (within(t, a, interval * 1000) ? 6 : 1),
      },
      {
        name: `traffic_night_surge_contextual_${tag}`,
        interval,
        days,
        anomalies: 1,
        value: (r, t, _i, a) => {
          // Night traffic at daytime level: inside the global range, abnormal for the hour.
          const base = within(t, a, HOUR) ? 280 : 160 * (1 + 0.75 * daily(t))
          return Math.max(0, base + 8 * r.normal())
        },
      },
      {
        name: `error_rate_pct_jump_${tag}`,
        interval,
        days,
        anomalies: 1,
        value: (r, t, _i, a) => {
          const req = r.poisson(400)
          const err = r.poisson(req * (within(t, a, 20 * interval * 1000) ? 0.05 : 0.002))
          return req ? (100 * err) / req : 0
        },
      },
    )
    // Constant, then a step.
    gens.push({
      name: `constant_then_step_${tag}`,
      interval,
      days,
      anomalies: 1,
      value: (_r, t, _i, a) => (after(t, a) ? 768 : 512),
    })
    // Gaps: a level shift that happens right after a long pause must still be found.
    gens.push({
      name: `latency_with_gaps_then_shift_${tag}`,
      interval,
      days,
      anomalies: 1,
      gaps: [[0.3, 3], [0.55, 6]],
      value: (r, t, _i, a) => 60 * Math.exp(0.1 * r.normal()) * (within(t, a, 2 * HOUR) ? 3 : 1),
    })
    // Normal-only streams: every alarm here is a false positive.
    gens.push(
      {
        name: `normal_daily_latency_${tag}`,
        interval,
        days,
        anomalies: 0,
        value: (r, t) => 140 * (1 + 0.35 * daily(t)) * Math.exp(0.09 * r.normal()),
      },
      {
        name: `normal_heavy_tail_${tag}`,
        interval,
        days,
        anomalies: 0,
        value: (r) => Math.max(0, 50 + 4 * r.t(2)),
      },
      {
        name: `normal_sparse_counts_${tag}`,
        interval,
        days,
        anomalies: 0,
        value: (r) => r.poisson(0.05),
      },
      {
        name: `normal_random_walk_cpu_${tag}`,
        interval,
        days,
        anomalies: 0,
        value: (() => {
          let x = 40
          return (r: Rng) => {
            x = Math.min(95, Math.max(5, x + 0.6 * r.normal() + 0.002 * (40 - x)))
            return x
          }
        })(),
      },
      {
        name: `normal_quantised_memory_${tag}`,
        interval,
        days,
        anomalies: 0,
        value: (r, t) => Math.round(60 + 2 * daily(t, 3) + 0.6 * r.normal()),
      },
      {
        name: `normal_nightly_batch_job_${tag}`,
        interval,
        days,
        anomalies: 0,
        value: (r, t) => {
          const h = hourOfDay(t)
          return 20 + 2 * r.normal() + (h >= 2 && h < 2.25 ? 60 : 0)
        },
      },
      {
        name: `normal_with_long_gaps_${tag}`,
        interval,
        days,
        anomalies: 0,
        gaps: [[0.25, 2], [0.5, 6], [0.8, 3]],
        value: (r, t) => 100 * (1 + 0.2 * daily(t)) * Math.exp(0.08 * r.normal()),
      },
      {
        name: `normal_weekly_throughput_${tag}`,
        interval,
        days,
        anomalies: 0,
        value: (r, t) =>
          Math.max(0, 300 * (1 + 0.6 * daily(t)) * (weekend(t) ? 0.5 : 1) + 12 * r.normal()),
      },
      {
        name: `normal_constant_${tag}`,
        interval,
        days,
        anomalies: 0,
        value: () => 100,
      },
      {
        name: `normal_irregular_sampling_${tag}`,
        interval,
        days,
        jitter: true,
        anomalies: 0,
        value: (r, t) => 30 + 3 * daily(t) + r.normal(),
      },
      {
        name: `normal_growing_connections_${tag}`,
        interval,
        days,
        anomalies: 0,
        value: (r, t) => Math.round(20 + (t / DAY) * 8 + 2 * r.normal()),
      },
    )
    void v
  }
  return gens
}

export function syntheticCorpus(seed = 20250303): LabelledSeries[] {
  const out: LabelledSeries[] = []
  generators().forEach((g, k) => {
    const r = new Rng(seed + 7919 * k)
    const span = g.days * DAY
    const onsetTimes: number[] = []
    for (let j = 0; j < g.anomalies; j++) {
      const lo = 0.35 + (0.5 * j) / g.anomalies
      const hi = 0.35 + (0.5 * (j + 1)) / g.anomalies
      onsetTimes.push(Math.round(span * (lo + (hi - lo) * r.uniform())))
    }
    const timestamps: number[] = []
    const values: number[] = []
    const gaps = (g.gaps ?? []).map(([f, h]) => [f * span, h * HOUR])
    let t = 0
    while (t < span) {
      const gap = gaps.find(([at, len]) => t >= at && t < at + len)
      if (gap) {
        t = gap[0] + gap[1]
        continue
      }
      const i = values.length
      if (r.uniform() >= 0.01) {
        // 1 % of cycles are missed
        timestamps.push(START + Math.round(t))
        values.push(g.value(r, t, i, onsetTimes))
      }
      const step = g.interval * 1000
      t += g.jitter ? step * (0.5 + r.uniform()) : step * (1 + 0.05 * (r.uniform() - 0.5))
    }
    const onsets = onsetTimes.map((a) => {
      const idx = timestamps.findIndex((ts) => ts >= START + a)
      return idx < 0 ? timestamps.length - 1 : idx
    })
    out.push({ name: g.name, timestamps, values, windows: nabWindows(values.length, onsets) })
  })
  return out
}

const parseTime = (s: string) => Date.parse(s.trim().replace(' ', 'T').replace(/\.0+$/, '') + 'Z')

/** Real streams: bench/data/anomaly/*.csv with windows.json (NAB's combined_windows for them). */
export async function realCorpus(
  dir = new URL('./data/anomaly/', import.meta.url),
): Promise<LabelledSeries[]> {
  let windows: Record<string, [string, string][]>
  try {
    windows = JSON.parse(await Deno.readTextFile(new URL('windows.json', dir)))
  } catch {
    return []
  }
  const out: LabelledSeries[] = []
  for (const [name, spans] of Object.entries(windows)) {
    const text = await Deno.readTextFile(new URL(`${name}.csv`, dir))
    const timestamps: number[] = []
    const values: number[] = []
    // "step=300" gives the spacing; "timestamp,value" sets the time; a bare value comes one step
    // after the row before it.
    let step = 0
    let next = NaN
    for (const line of text.split('\n')) {
      const row = line.trim()
      if (!row || row.startsWith('#') || row.startsWith('timestamp')) continue
      if (row.startsWith('step=')) {
        step = Number(row.slice(5)) * 1000
        continue
      }
      const comma = row.indexOf(',')
      const t = comma < 0 ? next : parseTime(row.slice(0, comma))
      if (!Number.isFinite(t)) throw new Error(`${name}: a bare value before any timestamp`)
      timestamps.push(t)
      values.push(Number(comma < 0 ? row : row.slice(comma + 1)))
      next = t + step
    }
    const index = (s: string) => {
      const ms = parseTime(s)
      const i = timestamps.findIndex((t) => t >= ms)
      return i < 0 ? timestamps.length - 1 : i
    }
    out.push({ name, timestamps, values, windows: spans.map(([a, b]) => [index(a), index(b)]) })
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Detectors: Vigil's and two baselines

export type DetectorFactory = () => (t: number, v: number) => number

export const detectors: Record<string, DetectorFactory> = {
  vigil: () => {
    const d = createDetector()
    return (t, v) => d.update({ timestamp: new Date(t), value: v })
  },
  // NAB's windowedGaussian: 1 - Q(|x - mean| / std) over a sliding window of 6400 points that
  // moves in steps of 100 (its NAB-tuned settings).
  windowedGaussian: () => {
    const windowSize = 6400
    const stepSize = 100
    let window: number[] = []
    let buffer: number[] = []
    let mean = 0
    let std = 1
    const refresh = () => {
      mean = window.reduce((a, b) => a + b, 0) / window.length
      std = Math.sqrt(window.reduce((a, b) => a + (b - mean) ** 2, 0) / window.length) || 0.000001
    }
    return (_t, v) => {
      const score = window.length > 0 ? 1 - normalTail(Math.abs(v - mean) / std) : 0
      if (window.length < windowSize) {
        window.push(v)
        refresh()
      } else {
        buffer.push(v)
        if (buffer.length === stepSize) {
          window = window.slice(stepSize).concat(buffer)
          buffer = []
          refresh()
        }
      }
      return score
    }
  },
  // Running z-score: mean and standard deviation of all history so far (Welford), score
  // |z| / (1 + |z|) so that ordering survives for large z.
  zScore: () => {
    let n = 0
    let mean = 0
    let m2 = 0
    return (_t, v) => {
      let score = 0
      if (n >= 2) {
        const sd = Math.sqrt(m2 / (n - 1)) || 1e-6
        const z = Math.abs(v - mean) / sd
        score = z / (1 + z)
      }
      n++
      const delta = v - mean
      mean += delta / n
      m2 += delta * (v - mean)
      return score
    }
  },
}

/** Q(z) = P(N(0,1) > z), via erfc (Abramowitz-Stegun 7.1.26 is too coarse in the tail; use a continued fraction). */
function normalTail(z: number): number {
  if (z < 0) return 1 - normalTail(-z)
  if (z > 38) return 0
  // erfc(x) by Lentz's continued fraction for x > 2, series for small x.
  const x = z / Math.SQRT2
  if (x < 2) {
    let sum = x
    let term = x
    for (let k = 1; k < 60; k++) {
      term *= (-x * x) / k
      sum += term / (2 * k + 1)
    }
    return 0.5 * (1 - (2 / Math.sqrt(Math.PI)) * sum)
  }
  let f = x
  let c = x
  let d = 0
  for (let k = 1; k < 200; k++) {
    const a = k / 2
    d = 1 / (x + a * d)
    c = x + a / c
    const delta = c * d
    f *= delta
    if (Math.abs(delta - 1) < 1e-15) break
  }
  return (0.5 * Math.exp(-x * x)) / (f * Math.sqrt(Math.PI))
}

// ---------------------------------------------------------------------------------------------
// NAB scoring

export interface Profile {
  tp: number
  fp: number
  fn: number
}

export const PROFILES: Record<string, Profile> = {
  standard: { tp: 1, fp: 0.11, fn: 1 },
  reward_low_FP_rate: { tp: 1, fp: 0.22, fn: 1 },
  reward_low_FN_rate: { tp: 1, fp: 0.11, fn: 2 },
}

const scaledSigmoid = (y: number) => (y >= 3 ? -1 : 2 / (1 + Math.exp(5 * y)) - 1)
const MAX_TP = scaledSigmoid(-1)

/** Per point: its window (or -1), and the unweighted sigmoid NAB gives a detection there. */
interface Prepared {
  name: string
  scores: number[]
  window: Int32Array
  sigmoid: Float64Array
  probation: number
  scoredWindows: number[]
}

function prepare(series: LabelledSeries, scores: number[]): Prepared {
  const n = scores.length
  const window = new Int32Array(n).fill(-1)
  const sigmoid = new Float64Array(n)
  const probation = Math.min(Math.floor(0.15 * n), 0.15 * 5000)
  let prevRight = -1
  let prevWidth = 0
  let w = 0
  for (let i = 0; i < n; i++) {
    const win = series.windows[w]
    if (win && i >= win[0] && i <= win[1]) {
      const width = win[1] - win[0] + 1
      window[i] = w
      sigmoid[i] = scaledSigmoid(-(win[1] - i + 1) / width) / MAX_TP
      if (i === win[1]) {
        prevRight = i
        prevWidth = width
        w++
      }
    } else {
      sigmoid[i] = prevRight < 0 ? -1 : scaledSigmoid(Math.abs(prevRight - i) / (prevWidth - 1))
    }
  }
  // Windows that lie wholly inside the probationary period are not scored (as in NAB).
  const ids = new Set<number>()
  for (let i = Math.ceil(probation); i < n; i++) if (window[i] >= 0) ids.add(window[i])
  return { name: series.name, scores, window, sigmoid, probation, scoredWindows: [...ids] }
}

interface Outcome {
  score: number
  tp: number
  fp: number
  fn: number
}

function scoreAt(p: Prepared, threshold: number, profile: Profile): Outcome {
  const best = new Map<number, number>()
  let fpScore = 0
  let fp = 0
  for (let i = Math.ceil(p.probation); i < p.scores.length; i++) {
    if (!(p.scores[i] >= threshold)) continue
    const w = p.window[i]
    if (w >= 0) best.set(w, Math.max(best.get(w) ?? -Infinity, p.sigmoid[i] * profile.tp))
    else {
      fpScore += p.sigmoid[i] * profile.fp
      fp++
    }
  }
  let score = fpScore
  let tp = 0
  const total = p.scoredWindows
  for (const w of total) {
    if (best.has(w)) {
      score += best.get(w)!
      tp++
    } else score -= profile.fn
  }
  return { score, tp, fp, fn: total.length - tp }
}

export interface CorpusScore {
  normalised: number
  threshold: number
  tp: number
  fp: number
  fn: number
}

function corpusScore(prepared: Prepared[], threshold: number, profile: Profile): CorpusScore {
  let raw = 0
  let tp = 0
  let fp = 0
  let fn = 0
  let windows = 0
  for (const p of prepared) {
    const o = scoreAt(p, threshold, profile)
    raw += o.score
    tp += o.tp
    fp += o.fp
    fn += o.fn
    windows += p.scoredWindows.length
  }
  const perfect = windows * profile.tp
  const nul = -windows * profile.fn
  return { normalised: (100 * (raw - nul)) / (perfect - nul), threshold, tp, fp, fn }
}

/** NAB optimises one threshold per detector and profile over the whole corpus; so do we (exhaustively over candidate scores). */
function optimise(prepared: Prepared[], profile: Profile): CorpusScore {
  const all: number[] = []
  for (const p of prepared) {
    for (let i = Math.ceil(p.probation); i < p.scores.length; i++) all.push(p.scores[i])
  }
  all.sort((a, b) => b - a)
  const candidates = new Set<number>([1.1])
  for (let k = 0; k < all.length; k = Math.max(k + 1, Math.floor(k * 1.04))) candidates.add(all[k])
  for (let g = 0; g <= 100; g++) candidates.add(g / 100)
  let best: CorpusScore | null = null
  for (const th of candidates) {
    const s = corpusScore(prepared, th, profile)
    if (!best || s.normalised > best.normalised) best = s
  }
  return best!
}

export function runDetector(factory: DetectorFactory, series: LabelledSeries): number[] {
  const f = factory()
  return series.values.map((v, i) => f(series.timestamps[i], v))
}

export function evaluate(corpus: LabelledSeries[]) {
  const result: Record<string, Record<string, unknown>> = {}
  const perSeries: Record<string, Record<string, number>> = {}
  for (const [name, factory] of Object.entries(detectors)) {
    const prepared = corpus.map((s) => prepare(s, runDetector(factory, s)))
    const row: Record<string, unknown> = {}
    for (const [pname, profile] of Object.entries(PROFILES)) {
      row[pname] = round(optimise(prepared, profile))
      if (name === 'vigil') {
        row[`${pname}_fixed_threshold`] = round(corpusScore(prepared, ANOMALY_THRESHOLD, profile))
      }
    }
    result[name] = row
    if (name === 'vigil') {
      for (const p of prepared) {
        const o = scoreAt(p, ANOMALY_THRESHOLD, PROFILES.standard)
        perSeries[p.name] = {
          windows: p.scoredWindows.length,
          tp: o.tp,
          fp: o.fp,
          score: Math.round(o.score * 100) / 100,
        }
      }
    }
  }
  return { result, perSeries }
}

function round(s: CorpusScore): CorpusScore {
  return {
    ...s,
    normalised: Math.round(s.normalised * 10) / 10,
    threshold: Number(s.threshold.toPrecision(6)),
  }
}

// ---------------------------------------------------------------------------------------------
// Cost

function cost(series = 1000, cycles = 200) {
  const r = new Rng(7)
  const base = Date.UTC(2025, 0, 1)
  const levels = Array.from({ length: series }, () => 10 + 100 * r.uniform())
  const value = (k: number, c: number) => levels[k] * (1 + 0.2 * Math.sin(c / 50 + k)) + r.normal()
  // (a) detectors kept in memory
  const dets = Array.from({ length: series }, () => createDetector())
  const warm = 100
  for (let c = 0; c < warm; c++) {
    for (let k = 0; k < series; k++) {
      dets[k].update({ timestamp: new Date(base + c * 30_000), value: value(k, c) })
    }
  }
  let t0 = performance.now()
  for (let c = warm; c < warm + cycles; c++) {
    for (let k = 0; k < series; k++) {
      dets[k].update({ timestamp: new Date(base + c * 30_000), value: value(k, c) })
    }
  }
  const inMemoryUs = ((performance.now() - t0) * 1000) / (series * cycles)
  // (b) as Vigil runs it: restore from JSON, update, store as JSON, every cycle
  let states = dets.map((d) => JSON.stringify(d.state()))
  const restoreCycles = Math.max(10, Math.floor(cycles / 4))
  t0 = performance.now()
  for (let c = warm + cycles; c < warm + cycles + restoreCycles; c++) {
    states = states.map((text, k) => {
      const d = createDetector({}, JSON.parse(text))
      d.update({ timestamp: new Date(base + c * 30_000), value: value(k, c) })
      return JSON.stringify(d.state())
    })
  }
  const roundTripUs = ((performance.now() - t0) * 1000) / (series * restoreCycles)
  const sizes = states.map((s) => s.length).sort((a, b) => a - b)
  // State size after a long history (two days at 30 s, daily profile learned).
  const long = createDetector()
  for (let c = 0; c < 5760; c++) {
    long.update({ timestamp: new Date(base + c * 30_000), value: value(0, c) })
  }
  return {
    series,
    cycles,
    update_us: Math.round(inMemoryUs * 100) / 100,
    cycle_ms_1000_series: Math.round(inMemoryUs * series) / 1000,
    restore_update_store_us: Math.round(roundTripUs * 100) / 100,
    cycle_ms_1000_series_with_json_state: Math.round(roundTripUs * series) / 1000,
    state_bytes_median: sizes[Math.floor(sizes.length / 2)],
    state_bytes_max: sizes[sizes.length - 1],
    state_bytes_after_2_days: JSON.stringify(long.state()).length,
  }
}

/** False alarms at ANOMALY_THRESHOLD on pure Gaussian noise: 100 series, one day at 30 s each. */
function noiseFalseAlarms(series = 100, points = 2880) {
  let alarms = 0
  let withAlarm = 0
  for (let k = 0; k < series; k++) {
    const r = new Rng(90_000 + k)
    const d = createDetector()
    let any = false
    for (let i = 0; i < points; i++) {
      const s = d.update({ timestamp: new Date(START + i * 30_000), value: 100 + 5 * r.normal() })
      if (s >= ANOMALY_THRESHOLD) {
        alarms++
        any = true
      }
    }
    if (any) withAlarm++
  }
  return {
    series,
    points_each: points,
    alarms,
    series_with_an_alarm: withAlarm,
    per_point: alarms / (series * points),
  }
}

// ---------------------------------------------------------------------------------------------

export async function run() {
  const synthetic = syntheticCorpus()
  const real = await realCorpus()
  const synth = evaluate(synthetic)
  const realEval = real.length ? evaluate(real) : null
  const c = cost()
  const noise = noiseFalseAlarms()
  const std = synth.result.vigil.standard as CorpusScore
  const wg = synth.result.windowedGaussian.standard as CorpusScore
  const zs = synth.result.zScore.standard as CorpusScore
  // Real streams weigh as much as the synthetic ones: the goal is met only when both are clearly ahead.
  const ahead = (r: typeof synth.result) =>
    (r.vigil.standard as CorpusScore).normalised >
      Math.max(
          (r.windowedGaussian.standard as CorpusScore).normalised,
          (r.zScore.standard as CorpusScore).normalised,
        ) + 10
  const realText = realEval
    ? `; ${real.length} real NAB streams ${
      (realEval.result.vigil.standard as CorpusScore).normalised
    } vs ${(realEval.result.windowedGaussian.standard as CorpusScore).normalised} vs ${
      (realEval.result.zScore.standard as CorpusScore).normalised
    }`
    : ''
  return {
    name: 'anomaly',
    measures:
      `NAB standard score (optimised threshold), vigil vs windowedGaussian vs z-score, on ${synthetic.length} synthetic SRE streams and ${real.length} real NAB streams; cost of 1,000 series a cycle`,
    result:
      `synthetic ${std.normalised} vs ${wg.normalised} vs ${zs.normalised}${realText}; ${c.cycle_ms_1000_series_with_json_state} ms a cycle of 1,000 series with JSON state`,
    goal: 'clearly ahead (+10) of both baselines on each corpus; < 100 ms a cycle of 1,000 series',
    passed: ahead(synth.result) && (realEval === null || ahead(realEval.result)) &&
      c.cycle_ms_1000_series_with_json_state < 100,
    threshold_note:
      'per profile, each detector gets the one corpus-wide threshold that maximises its score (as NAB optimises); vigil is also scored at its fixed ANOMALY_THRESHOLD',
    anomaly_threshold: ANOMALY_THRESHOLD,
    synthetic: {
      series: synthetic.length,
      windows: synthetic.reduce((a, s) => a + s.windows.length, 0),
      ...synth.result,
    },
    real: realEval
      ? { series: real.length, names: real.map((s) => s.name), ...realEval.result }
      : null,
    cost: c,
    false_alarms_on_gaussian_noise: noise,
    vigil_per_series_standard_fixed: { ...synth.perSeries, ...(realEval?.perSeries ?? {}) },
  }
}

if (import.meta.main) {
  const result = {
    ...(await run()),
    date: new Date().toISOString(),
    machine: {
      cores: navigator.hardwareConcurrency,
      memory_gib: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
      deno: Deno.version.deno,
    },
  }
  const out = new URL('./results/anomaly.json', import.meta.url)
  await Deno.writeTextFile(out, JSON.stringify(result, null, 2) + '\n')
  console.log(
    JSON.stringify({ synthetic: result.synthetic, real: result.real, cost: result.cost }, null, 1),
  )
}
