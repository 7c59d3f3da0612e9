// A fault Vigil should find and, where it can, heal: how it is made, undone and recognised, and
// what Vigil is expected to do about it (the chaos suite measures against this).

export interface ChaosTarget {
  /** The database as its owner (postgres): set-up, inspection, clearing. */
  dbUrl: string
  /** The same database as the demo app's own ordinary role: faults act as the app does. */
  appDbUrl: string
  /** Where a fault's running clients are recorded (`<stateDir>/chaos/<fault>.json`) and log. */
  stateDir: string
  /** Postgres' client programs (psql, pgbench, pg_ctl). */
  pgBin: string
  /** The share of client slots connection_exhaustion fills (default 0.93; tests use less). */
  connectionShare?: number
  /** How long database_down keeps the cluster stopped, in seconds (default 150; tests use less). */
  outageSeconds?: number
  /** The demo app's fault-control API. */
  app: { url: string; token: string }
  /** The CDN edge in front of the app, its Cloudflare zone and purge token. */
  edge: { url: string; zoneId: string; token: string }
  /** The Vercel stand-in: its fault control and the project's deploy hook. */
  vercel: { url: string; controlToken: string; deployHookUrl: string }
  /**
   * The edge over HTTPS and the CA its certificates come from (its control is the edge's /_tls,
   * with the app's token); absent in the demo.json of a stack started before it existed.
   */
  tls?: { url: string; caFile: string }
  /** The feature flags the demo's edge function demo-checkout reads (absent: as for tls). */
  functions?: { flagsFile: string }
}

/**
 * The heal policy (vigil.heal_policies, environment prod) under which the fault's strategy heals it
 * within the suite's minutes: production defaults wait longer or only suggest. The suite sets it
 * for its run and puts back what was there; `npm run chaos -- <fault>` says so.
 */
export interface FaultPolicy {
  strategy: string
  mode: 'auto'
  config: Record<string, unknown>
  /** What it changes against the default, in a few words. */
  why: string
}

export interface Fault {
  name: string
  /** One line for `chaos list`. */
  summary: string
  /**
   * What Vigil should do: open an incident of this kind on the service watching the fault's part
   * (service_unhealthy for a probe's finding, slow_queries for the slow-statement tracker), name
   * this finding, and heal it with this strategy (null: a person must act, and is paged).
   */
  expects: {
    incident: string
    finding: string
    heal: string | null
    policy?: FaultPolicy
    /** The service the incident is on when it is not one of the demo's (Vigil's own, say). */
    service?: string
  }
  /** Makes the fault; says what was done. Injecting one already active is harmless. */
  inject(t: ChaosTarget): Promise<string>
  /** Undoes it and what it left; false when nothing of it was there. */
  clear(t: ChaosTarget): Promise<boolean>
  /** Whether any trace of it is live now. */
  active(t: ChaosTarget): Promise<boolean>
  /**
   * A gradual fault (memory that leaks, dead tuples Vigil gives autovacuum time for): whether it
   * has crossed the line Vigil is asked to see, injectedAt being when it was made. The suite
   * measures its detection from that moment, and says so. Absent: a fault is there when made.
   */
  onset?(t: ChaosTarget, injectedAt: Date): Promise<boolean>
}
