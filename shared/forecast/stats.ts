// Small robust statistics for the forecast: medians, robust scales, the normal quantile, and
// Theil–Sen with Sen's confidence interval. Pure and deterministic: the only randomness is a
// fixed-seed generator that picks pairs, so the same series always gives the same answer.

/** Beyond this many pairs the slopes come from a fixed sample: about 20 ms for any length. */
export const MAX_PAIRS = 150_000

/** The median; NaN for no values. Sorts a copy. */
export function median(values: ArrayLike<number>): number {
  const n = values.length
  if (n === 0) return NaN
  const sorted = Float64Array.from(values).sort()
  const mid = n >> 1
  return n % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/**
 * A standard deviation that a few outliers cannot inflate: 1.4826 × the median absolute
 * deviation. When more than half the values are equal (integer counts, a mostly steady series)
 * the MAD is 0 although the values do vary, so the mean absolute deviation stands in.
 */
export function robustScale(values: ArrayLike<number>): number {
  const n = values.length
  if (n === 0) return 0
  const m = median(values)
  const deviations = Float64Array.from(values, (v) => Math.abs(v - m))
  const mad = 1.4826 * median(deviations)
  if (mad > 0) return mad
  let sum = 0
  for (const d of deviations) sum += d
  return 1.2533 * (sum / n)
}

/** Φ⁻¹(p), Acklam's rational approximation (relative error below 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) return p === 0 ? -Infinity : p === 1 ? Infinity : NaN
  const a = [
    -3.969683028665376e1,
    2.209460984245205e2,
    -2.759285104469687e2,
    1.38357751867269e2,
    -3.066479806614716e1,
    2.506628277459239,
  ]
  const b = [
    -5.447609879822406e1,
    1.615858368580409e2,
    -1.556989798598866e2,
    6.680131188771972e1,
    -1.328068155288572e1,
  ]
  const c = [
    -7.784894002430293e-3,
    -3.223964580411365e-1,
    -2.400758277161838,
    -2.549732539343734,
    4.374664141464968,
    2.938163982698783,
  ]
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416]
  const tail = (q: number) =>
    (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)))
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)))
  const q = p - 0.5
  const r = q * q
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
}

/** mulberry32: tiny, fast, and good enough to spread sampled pairs evenly. */
function generator(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * The slopes between pairs of points, sorted. All pairs up to MAX_PAIRS, otherwise MAX_PAIRS
 * pairs drawn with a fixed seed: the median and quantiles of a sample that large differ from the
 * full set's by far less than the noise, and 3,000 points (4.5 million pairs) stay cheap.
 * `xs` must be strictly increasing (the caller merges duplicate times).
 */
export function pairwiseSlopes(
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
): { slopes: Float64Array; sampled: boolean } {
  const n = xs.length
  const all = (n * (n - 1)) / 2
  if (all <= MAX_PAIRS) {
    const slopes = new Float64Array(all)
    let k = 0
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) slopes[k++] = (ys[j] - ys[i]) / (xs[j] - xs[i])
    }
    return { slopes: slopes.sort(), sampled: false }
  }
  const random = generator(0x5eed_f00d)
  const slopes = new Float64Array(MAX_PAIRS)
  for (let k = 0; k < MAX_PAIRS; k++) {
    const i = Math.floor(random() * n)
    let j = Math.floor(random() * (n - 1))
    if (j >= i) j++
    slopes[k] = (ys[j] - ys[i]) / (xs[j] - xs[i])
  }
  return { slopes: slopes.sort(), sampled: true }
}

/** The value at fraction p (0..1) of sorted values, nearest rank. */
export function quantileSorted(sorted: Float64Array, p: number): number {
  const i = Math.round(Math.min(1, Math.max(0, p)) * (sorted.length - 1))
  return sorted[i]
}

/**
 * Sen's interval for the slope as a pair of fractions into the sorted pairwise slopes. The
 * ranks come from Kendall's S: C = z·√(n(n−1)(2n+5)/18) of N = n(n−1)/2 pairs lie outside.
 * `n` is the effective number of points: autocorrelated noise (memory wanders, it does not
 * jitter) carries less information than its count, and the interval widens to say so.
 */
export function senFractions(n: number, z: number): { low: number; high: number } {
  if (!(n > 1)) return { low: 0, high: 1 }
  const c = z * Math.sqrt((n * (n - 1) * (2 * n + 5)) / 18)
  const share = Math.min(1, c / ((n * (n - 1)) / 2))
  return { low: (1 - share) / 2, high: (1 + share) / 2 }
}
