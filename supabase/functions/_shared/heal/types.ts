// The one interface every heal strategy implements. The engine (engine.ts) owns everything around
// a strategy: the claim, the failsafes, the audit rows before and after, escalation. A strategy only
// says what it would do, does it, checks whether it helped, and undoes it when it can.
import type postgres from 'postgres'
import type { z } from 'zod'
import type { ProblemKind, ServiceKind } from '../../../../shared/kinds.ts'
import type { ProbeResult } from '../probes/types.ts'

export interface HealService {
  id: string
  name: string
  kind: ServiceKind
  environment: 'dev' | 'qa' | 'prod'
  config: Record<string, unknown>
}

/** A problem diagnosed on a service, with what the strategy should act on. */
export interface Problem {
  kind: ProblemKind
  /** Why Vigil thinks so, for the audit ("3 sessions waited 42 s behind pid 812"). */
  reason: string
  /** What was measured when it was diagnosed (the check's relevant measurements). */
  evidence: Record<string, unknown>
}

export interface HealContext {
  service: HealService
  /** How Vigil may act on the service (vigil.services.actions), unparsed: strategies parse their part. */
  actions: Record<string, unknown>
  incidentId: number
  /** Vigil's own database connection. */
  db: postgres.Sql
  /**
   * The database a postgres service watches (its own or the one behind connection_secret),
   * connected for this heal; undefined for other kinds.
   */
  target?: postgres.Sql
  /** Decide and record only; act on nothing. Strategies must not change anything when true. */
  dryRun: boolean
  /** Aborted at the heal's deadline. */
  signal: AbortSignal
  secret(name: string): string | undefined
  fetch: typeof fetch
  /** Runs the service's probe now, for verification. */
  reprobe(): Promise<ProbeResult>
  /** Sessions no strategy may touch: Vigil's own, replication, superusers, system roles, the protect list. */
  protectedRoles: string[]
  protectedApplications: string[]
}

/** What a strategy intends to do, decided from the current state (not the stale check). */
export interface Plan {
  /** Verb-first, e.g. 'terminate_backend', 'vacuum_analyze', 'purge_cdn'. */
  action: string
  /** What it acts on (pids with backend_start, tables, a URL…): recorded in the audit. */
  target: Record<string, unknown>
  /** Why this action, in a sentence. */
  reason: string
  /** Measurements before acting, compared after. */
  before: Record<string, unknown>
  /**
   * What it would leave to people when it does not act itself (suggest mode, dry run): kept in
   * vigil.recommendations, open until the problem is gone.
   */
  recommendations?: Recommendation[]
}

export interface Recommendation {
  /** What sort ('index'); with key, one open recommendation per service. */
  kind: string
  key: string
  /** The thing to do, in one line (a CREATE INDEX CONCURRENTLY statement). */
  title: string
  detail: Record<string, unknown>
}

export interface ActResult {
  /** What happened, in a sentence. */
  detail: string
  /** Whatever undo() needs (the index created, the setting's old value…). */
  undo?: Record<string, unknown>
  /** Nothing was changed on purpose (a suggestion recorded): not a heal that failed. */
  recordedOnly?: boolean
}

export interface Verification {
  /** The problem is gone or smaller. */
  improved: boolean
  /** The service got worse than before: the engine undoes and escalates. */
  worse: boolean
  after: Record<string, unknown>
  detail: string
}

/**
 * A heal strategy. Each either undoes what it did when verification shows things got worse
 * (`undo`), or declares why it cannot (`irreversible`): then the engine pages on-call at once.
 */
export type Strategy<Config = unknown> =
  & StrategyBase<Config>
  & (
    | {
      /** Reverses act() (drops the index it created, restores the deployment it replaced…). */
      undo(plan: Plan, result: ActResult, ctx: HealContext, config: Config): Promise<string>
      irreversible?: never
    }
    | {
      undo?: never
      /** Why what it does cannot be undone ("a terminated session stays gone"), for the page. */
      irreversible: string
    }
  )

interface StrategyBase<Config> {
  /** snake_case, recorded in vigil.heal_actions.strategy. */
  name: string
  problem: ProblemKind
  /** Its settings (thresholds, policy), from vigil.heal_policies.config, with defaults. */
  config: z.ZodType<Config>
  /** Its mode where vigil.heal_policies has no row: act ('auto', the default), ask first, or only suggest. */
  defaultMode?: 'auto' | 'approval' | 'suggest'
  /**
   * Why, for this problem, the strategy only suggests even where its policy says auto (a rollback
   * for an error spike, unless the policy sets auto_rollback_on_spike); undefined to act as the
   * policy says. Never makes a stricter mode (approval, off) looser.
   */
  suggestOnly?(problem: Problem, config: Config): string | undefined
  /** The plan, or null when the live state shows nothing to do. Never changes anything. */
  plan(problem: Problem, ctx: HealContext, config: Config): Promise<Plan | null>
  act(plan: Plan, ctx: HealContext, config: Config): Promise<ActResult>
  verify(plan: Plan, result: ActResult, ctx: HealContext, config: Config): Promise<Verification>
}

/** Thrown by a strategy for a failure worth recording as such (a webhook answering 500, say). */
export class HealError extends Error {
  override name = 'HealError'
}

/**
 * A refusal only a human can resolve: Vigil will not act (every blocker is protected, no session
 * may be ended, the service's actions are invalid). Thrown by plan(): the engine records it as
 * refused, never as a failed heal (the circuit breaker counts only heals that acted), and pages
 * on-call at once instead of walking the ladder.
 */
export class HumanNeeded extends HealError {
  override name = 'HumanNeeded'
}

/**
 * Thrown by plan() when the problem is real but the strategy's own rules do not let it act yet (no
 * session idle long enough, no statement past max_seconds): nothing is recorded as tried, nobody is
 * paged, and the engine asks again after retryInSeconds — a person woken for what Vigil would have
 * fixed a minute later is a false page.
 */
export class NotYet extends Error {
  override name = 'NotYet'
  constructor(message: string, readonly retryInSeconds: number) {
    super(message)
  }
}
