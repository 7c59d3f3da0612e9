// Streaming peaks-over-threshold (POT) estimate of how rare a non-negative statistic is.
//
// Extreme-value theory says that, for almost any distribution, the excesses of a statistic over a
// high threshold follow a generalised Pareto distribution (GPD). SPOT/DSPOT (Siffer et al., KDD
// 2017) use that to calibrate streaming anomaly thresholds without assuming a normal law. This is a
// small, fixed-size version of the idea: the threshold sits at U0 (the statistics fed in are
// already divided by a robust scale), the exceedance rate and the first two moments of the excesses
// are exponentially decayed sums, and the GPD shape comes from the method of moments. A weak
// Laplace prior (exponential tail, P(U > u) = e^-u) keeps early estimates conservative: until the
// stream has shown what its tail looks like, a 5-sigma-looking point is not yet called rare.

/** Decayed sums: [weight of all points, weight of exceedances, Σ excess, Σ excess²]. */
export type Tail = [number, number, number, number]

/** The threshold, in units of the statistic's robust scale (mean absolute deviation). */
export const TAIL_U0 = 3
/** Prior strength, in pseudo-observations; the prior is Laplace: P(U > u) = e^-u. */
const PRIOR_N = 60
const PRIOR_NE = PRIOR_N * Math.exp(-TAIL_U0)
/** Excesses above this (in scale units) are clipped when learned, so one freak cannot widen the tail. */
const MAX_EXCESS = 12
/** The shape is kept in [0, MAX_XI]: never a bounded tail (that would call everything past it impossible). */
const MAX_XI = 0.45

export function newTail(): Tail {
  return [0, 0, 0, 0]
}

/** P(U >= u) under the current estimate; 1 below the threshold. */
export function tailProbability(tail: Tail, u: number): number {
  if (!(u > TAIL_U0)) return 1
  const n = tail[0] + PRIOR_N
  const ne = tail[1] + PRIOR_NE
  const m1 = (tail[2] + PRIOR_NE) / ne
  const m2 = (tail[3] + 2 * PRIOR_NE) / ne
  const variance = Math.max(m2 - m1 * m1, 1e-12)
  const xi = Math.min(MAX_XI, Math.max(0, 0.5 * (1 - (m1 * m1) / variance)))
  const sigma = Math.max(m1 * (1 - xi), 1e-9)
  const y = u - TAIL_U0
  const beyond = xi < 1e-6 ? Math.exp(-y / sigma) : Math.pow(1 + (xi * y) / sigma, -1 / xi)
  return Math.max((ne / n) * beyond, 1e-300)
}

/** Learns one value of the statistic with weight w, after decaying the sums by keep^w. */
export function tailLearn(tail: Tail, u: number, w: number, keep: number): void {
  const k = Math.pow(keep, w)
  tail[0] = tail[0] * k + w
  tail[1] *= k
  tail[2] *= k
  tail[3] *= k
  if (u > TAIL_U0) {
    const y = Math.min(u - TAIL_U0, MAX_EXCESS)
    tail[1] += w
    tail[2] += w * y
    tail[3] += w * y * y
  }
}
