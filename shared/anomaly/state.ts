// The detector's whole memory as one small JSON-safe object (about 2 KB as JSON), and the check
// a stored copy must pass before a detector resumes from it.
import { z } from 'zod'
import type { ResolvedOptions } from './options.ts'
import type { Tail } from './tail.ts'

export const STATE_FORMAT = 'vigil-anomaly'
export const STATE_VERSION = 1
/** Time-of-day profile: one offset per hour, interpolated between hour centres. */
export const DAY_BUCKETS = 24

export interface LastBaseline {
  value: number
  expected: number
  low: number
  high: number
  ratio: number | null
  hourAgo: number | null
}

export interface DetectorState {
  format: typeof STATE_FORMAT
  version: typeof STATE_VERSION
  options: ResolvedOptions
  /** Points accepted (learned), points refused (bad input). */
  n: number
  skipped: number
  /** First and last accepted timestamps (ms), typical interval (ms), consecutive gaps, points left to re-sync. */
  t0: number
  t: number
  dt: number
  gapRun: number
  resume: number
  /** Last value; fast level and its noise scale; short mean; slow baseline, its spread; shift scale. */
  x: number
  fast: number
  fs: number
  fastRun: number
  short: number
  slow: number
  ss: number
  hs: number
  run: number
  /** Consecutive points judged anomalous. */
  arun: number
  /** Consecutive points the tails held back, and the statistics (|point|, |shift|) of a held-back first one. */
  tarun: number
  pend: [number, number] | null
  /** Range of values seen, and the smallest non-zero step between consecutive values. */
  lo: number
  hi: number
  res: number
  /** Daily profile: weight in use (0..1), daily level, plain daily mean, errors with/without it. */
  day: { w: number; lvl: number; raw: number; eS: number; e0: number; s: number[] }
  /** Peaks-over-threshold tails of the point and shift statistics. */
  tp: Tail
  th: Tail
  /** Cooldown: points left, and the score that opened the episode. */
  cool: number
  coolScore: number
  /** 5-minute buckets of the last ~70 minutes, flattened as [bucket, mean, count, ...]. */
  hour: number[]
  last: LastBaseline | null
  reason: string | null
  score: number
}

const num = z.number().refine(Number.isFinite, 'must be a finite number')
const count = z.number().int().nonnegative()
const tail = z.tuple([num, num, num, num])

const optionsSchema = z.object({
  probation: count,
  probationMs: num,
  fastSpan: num,
  shortSpan: num,
  slowSpan: num,
  scaleSpan: num,
  tailMemory: num,
  seasonality: z.enum(['auto', 'off']),
  minScale: num,
  relativeScaleFloor: num,
  maxGap: num,
  resumePoints: count,
  cooldown: count,
  spatialTolerance: z.union([num, z.literal(false)]),
}).strict()

const stateSchema = z.object({
  format: z.literal(STATE_FORMAT),
  version: z.literal(STATE_VERSION),
  options: optionsSchema,
  n: count,
  skipped: count,
  t0: num,
  t: num,
  dt: num,
  gapRun: count,
  resume: count,
  x: num,
  fast: num,
  fs: num,
  fastRun: z.number().int(),
  short: num,
  slow: num,
  ss: num,
  hs: num,
  run: z.number().int(),
  arun: count,
  // Added within version 1: a state stored before them resumes with nothing held back.
  tarun: count.default(0),
  pend: z.tuple([num, num]).nullable().default(null),
  lo: num,
  hi: num,
  res: num,
  day: z.object({
    w: num,
    lvl: num,
    raw: num,
    eS: num,
    e0: num,
    s: z.array(num).length(DAY_BUCKETS),
  }).strict(),
  tp: tail,
  th: tail,
  cool: count,
  coolScore: num,
  hour: z.array(num).max(3 * 32).refine(
    (a) => a.length % 3 === 0,
    'must hold [bucket, mean, count] triples',
  ),
  last: z.object({
    value: num,
    expected: num,
    low: num,
    high: num,
    ratio: num.nullable(),
    hourAgo: num.nullable(),
  }).strict().nullable(),
  reason: z.string().max(200).nullable(),
  score: num,
}).strict()

/** Thrown when a stored state cannot be resumed; the message says what is wrong. */
export class AnomalyStateError extends Error {
  override name = 'AnomalyStateError'
}

/** Checks a stored state (already JSON-parsed, or a JSON string) and returns a private copy of it. */
export function parseState(input: unknown): DetectorState {
  let value = input
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value)
    } catch {
      throw new AnomalyStateError('anomaly detector state is not valid JSON')
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new AnomalyStateError('anomaly detector state must be an object')
  }
  const v = value as Record<string, unknown>
  if (v.format !== STATE_FORMAT) {
    throw new AnomalyStateError(
      `anomaly detector state has format ${JSON.stringify(v.format)}, expected '${STATE_FORMAT}'`,
    )
  }
  if (v.version !== STATE_VERSION) {
    throw new AnomalyStateError(
      `anomaly detector state is version ${
        JSON.stringify(v.version)
      }; this code reads version ${STATE_VERSION} only`,
    )
  }
  const parsed = stateSchema.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const where = issue.path.length ? issue.path.join('.') : '(root)'
    throw new AnomalyStateError(`anomaly detector state is invalid at ${where}: ${issue.message}`)
  }
  const s = parsed.data as DetectorState
  if (s.n > 0 && s.t < s.t0) {
    throw new AnomalyStateError('anomaly detector state is invalid: t < t0')
  }
  if (s.lo > s.hi) throw new AnomalyStateError('anomaly detector state is invalid: lo > hi')
  return cloneState(s)
}

export function cloneState(s: DetectorState): DetectorState {
  return {
    ...s,
    options: { ...s.options },
    day: { ...s.day, s: s.day.s.slice() },
    tp: [s.tp[0], s.tp[1], s.tp[2], s.tp[3]],
    th: [s.th[0], s.th[1], s.th[2], s.th[3]],
    hour: s.hour.slice(),
    last: s.last ? { ...s.last } : null,
    pend: s.pend ? [s.pend[0], s.pend[1]] : null,
  }
}
