// One cycle reads at most so many bytes of response bodies across all its probes. Each probe caps
// its own body (64 KiB for an API, 10 MiB for a metrics page), but a thousand services each near
// their cap would still hold more than an edge function's 256 MB. The body readers draw on one
// budget per cycle as they read (a declared length is charged before an uncompressed body is read
// in one go); a read that would overrun it fails that probe alone, and is not charged.

/** The default budget of one cycle: well under the edge runtime's 256 MB. */
export const CYCLE_READ_BUDGET_BYTES = 48 * 1024 * 1024

export class ReadBudgetSpent extends Error {
  constructor(limit: number) {
    super(
      `the cycle's read budget of ${+(limit / 1048576).toFixed(1)} MiB is spent across its probes`,
    )
    this.name = 'ReadBudgetSpent'
  }
}

export class ReadBudget {
  #left: number
  constructor(readonly limit: number) {
    this.#left = limit
  }

  /** Takes n bytes, or throws ReadBudgetSpent and takes nothing. */
  take(n: number): void {
    if (n > this.#left) throw new ReadBudgetSpent(this.limit)
    this.#left -= n
  }

  get left(): number {
    return this.#left
  }
}
