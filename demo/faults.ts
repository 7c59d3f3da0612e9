// The demo app's fault-control API (POST /_chaos, Authorization: Bearer <control token>): what a
// body may hold and what GET /_chaos answers. Chaos scenarios depend on this shape; change it only
// with them. Dev tooling only: never deployed.
import { z } from 'zod'

export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
export const Version = z.string().regex(
  VERSION_PATTERN,
  'must be a version name (letters, digits, . _ -, at most 64)',
)

/**
 * One request changes the named faults and leaves the others as they are; `clear` first turns
 * every fault off (and drops the leaked memory), then the other fields apply.
 */
export const ChaosRequest = z.strictObject({
  /** Share of requests to /health and /api/* answered 500 (0 turns it off). */
  errors: z.number({ error: 'must be a number from 0 to 1' }).min(0, 'must be from 0 to 1').max(
    1,
    'must be from 0 to 1',
  ).optional(),
  /** Added to every request to /health, /api/* and /version (0 turns it off). */
  latency_ms: z.number({ error: 'must be a whole number of milliseconds from 0 to 120000' }).int(
    'must be a whole number of milliseconds from 0 to 120000',
  ).min(0, 'must be from 0 to 120000').max(120_000, 'must be from 0 to 120000').optional(),
  /** Allocates and holds this much memory every second, in the process's RSS (0 stops it). */
  leak_mb_per_s: z.number({ error: 'must be a number of MiB per second from 0 to 1024' }).min(
    0,
    'must be from 0 to 1024',
  ).max(1024, 'must be from 0 to 1024').optional(),
  /** What the origin's /version says instead of the deployed version (null: the deployed one). */
  version: Version.nullable().optional(),
  clear: z.literal(true, { error: 'must be true' }).optional(),
}).refine((b) => Object.keys(b).length > 0, {
  message: 'name at least one of errors, latency_ms, leak_mb_per_s, version, clear',
})
export type ChaosRequest = z.infer<typeof ChaosRequest>

/** The active faults (GET /_chaos, and the answer to every POST). */
export interface ChaosState {
  errors: number
  latency_ms: number
  leak_mb_per_s: number
  /** The version fault, or null when /version says the deployed version. */
  version: string | null
  /** The version the app was deployed with (kept across restarts). */
  deployed_version: string
  /** Memory the leak holds now. */
  leaked_bytes: number
  pid: number
}
