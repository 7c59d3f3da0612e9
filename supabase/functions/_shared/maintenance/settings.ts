// A task's settings from the environment: each a rule with the words that say it and a default;
// blank counts as unset; every bad value is named, all in one TaskError, so one run fixes them all.
import { z } from 'zod'
import { type TaskContext, TaskError } from './types.ts'

/** A rule and how people read it ("a whole number from 1 to 50"). */
export type Rule<T> = readonly [z.ZodType<T, any>, string]

export const wholeNumber = (min: number, max?: number): Rule<number> => [
  max === undefined ? z.coerce.number().int().min(min) : z.coerce.number().int().min(min).max(max),
  max === undefined ? `a whole number of at least ${min}` : `a whole number from ${min} to ${max}`,
]
export const share: Rule<number> = [z.coerce.number().min(0).max(1), 'a share from 0 to 1']

/** Settings by env name: each its rule and default (undefined: unset means none). */
export type Spec = Record<string, readonly [Rule<any>, unknown]>
export type Values<S extends Spec> = {
  [K in keyof S]: S[K][1] extends undefined ? z.output<S[K][0][0]> | undefined
    : z.output<S[K][0][0]>
}

/** The values, and the problems of the bad ones (for a task that adds checks of its own). */
export function readSettings<S extends Spec>(
  env: TaskContext['env'],
  spec: S,
): { values: Values<S>; problems: string[] } {
  const values: Record<string, unknown> = {}
  const problems: string[] = []
  for (const [name, [[rule, words], fallback]] of Object.entries(spec)) {
    const raw = env(name)
    if (raw === undefined || raw.trim() === '') {
      values[name] = fallback
      continue
    }
    const parsed = rule.safeParse(raw.trim())
    if (parsed.success) values[name] = parsed.data
    else problems.push(`${name} must be ${words}, got "${raw}"`)
  }
  return { values: values as Values<S>, problems }
}

export function refuseBadSettings(problems: string[]): void {
  if (problems.length > 0) throw new TaskError(`bad settings: ${problems.join('; ')}`)
}

/** The values, or a TaskError naming every bad one. */
export function settingsFrom<S extends Spec>(env: TaskContext['env'], spec: S): Values<S> {
  const { values, problems } = readSettings(env, spec)
  refuseBadSettings(problems)
  return values
}
