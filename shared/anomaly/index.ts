/**
 * Streaming anomaly detection for the metric series Vigil records (latency, error rate,
 * connections, memory, CPU, throughput, query times). Runtime-neutral: no I/O, no clocks, no
 * globals; one detector per series, resumable from a small JSON state.
 *
 * ```ts
 * const detector = createDetector({}, storedStateOrUndefined)
 * const score = detector.update({ timestamp: new Date(), value: 1250 })
 * if (score >= ANOMALY_THRESHOLD) openIncident(detector.baseline()) // expected, ratio, hourAgo
 * save(detector.state())
 * ```
 *
 * How a point is judged (each step uses only this point and earlier ones: no look-ahead):
 *
 * 1. Two robust baselines, updated with Huber-clipped exponential averages whose spans count the
 *    series' own typical interval (learned from the timestamps, so missed cycles weigh more and a
 *    long pause is a gap, not a jump): a fast level that predicts the next point, and a slow
 *    baseline (the "expected" value). Once two days are seen and a time-of-day profile (24 hourly
 *    offsets, learned Holt-Winters style against a day-long level, by wall-clock time) cuts the
 *    error by a quarter, it is blended into both.
 * 2. Two deviations, each in units of its own robust scale (mean absolute deviation, floored for
 *    quantised and near-constant data): the point's distance from the fast prediction (spikes,
 *    drops) and the short-term mean's distance from the slow baseline (level shifts, drifts,
 *    deviations from the daily profile). Scales learn only unremarkable points (p >= 0.01).
 * 3. Each deviation becomes a tail probability from a streaming peaks-over-threshold fit of a
 *    generalised Pareto tail (SPOT-style, with a Laplace prior) to the series' own past
 *    deviations, so bursty or heavy-tailed series are judged against their own normal, not a
 *    Gaussian. The tails learn unremarkable points (p >= 0.01) and a remarkable one only once
 *    the next point shows it stood alone (an isolated extreme is part of a heavy tail; a run of
 *    them is the anomaly, and learning its first point would teach the tail to expect the next). A value beyond
 *    the range seen so far (by 5 % of it) that is already unusual (p < 1e-4) is made 100 times
 *    rarer, as people who label incidents treat new extremes.
 * 4. score = -log10(p) / 10 for the smaller probability, Bonferroni-corrected for the two tests,
 *    clipped to [0, 1]: 0.5 means "one in 100,000 in normal operation" (ANOMALY_THRESHOLD).
 * 5. Episodes: a confirmed level shift (2 x shortSpan significant points on one side) becomes
 *    the new normal, and after an alarm the same episode's later alarms are held at half the
 *    threshold until `cooldown` (30) points pass without one, unless they are much worse (+0.2).
 *    One change raises one alarm, not one per point.
 *
 * Probation: the first `probation` points (default 60) and, if set, `probationMs` milliseconds
 * are learned but score 0 with lastReason 'probation'. Refused input (not a finite number,
 * invalid timestamp, out of order, duplicate timestamp) scores 0, is not learned, and says why in
 * lastReason. A constant series scores 0 ('constant series: ...') until its value changes; a
 * pause longer than `maxGap` typical intervals re-syncs for `resumePoints` points ('resuming after
 * a gap of ...').
 *
 * State: `state()` is a plain JSON object of about 2 KB (fixed size); `createDetector(options,
 * state)` resumes with exactly the scores an uninterrupted detector would give. A state that is
 * malformed, from another format version, or made with other options is refused with an
 * AnomalyStateError naming the problem; the caller starts fresh (createDetector(options)) if it
 * wants to.
 */
export {
  ANOMALY_THRESHOLD,
  type Baseline,
  type Components,
  createDetector,
  type Detector,
  type Point,
} from './detector.ts'
export { DEFAULT_OPTIONS, type DetectorOptions } from './options.ts'
export { AnomalyStateError, type DetectorState } from './state.ts'
