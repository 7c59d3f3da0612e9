// What the advisor's plan and undo record (read back from the audit, so parsed).
import { z } from 'zod'

/** One index worth having, as plan.target lists it (read back from the audit, so parsed). */
export const Suggestion = z.object({
  schema: z.string(),
  table: z.string(),
  columns: z.array(z.string()).min(1),
  index_name: z.string(),
  index_sql: z.string(),
  queryid: z.string(),
  /** Further analysed statements this index serves. */
  also_queryids: z.array(z.string()),
  statement: z.string(),
  mean_ms: z.number(),
  calls: z.number(),
  table_rows: z.number(),
  cost_before: z.number(),
  cost_after: z.number(),
  factor: z.number(),
})
export type Suggestion = z.infer<typeof Suggestion>
export const Target = z.object({
  mode: z.enum(['suggest', 'create']),
  indexes: z.array(Suggestion).min(1),
})

export const CreatedIndex = z.object({
  schema: z.string(),
  table: z.string(),
  columns: z.array(z.string()),
  name: z.string(),
})
export type CreatedIndex = z.infer<typeof CreatedIndex>
