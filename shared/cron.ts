// When a pg_cron schedule next runs: the five fields of cron (minute, hour, day of month, month,
// day of week) with lists, ranges, steps and names, read as pg_cron 1.4 reads them, in UTC. Runtime
// neutral, no I/O: the reports name the next maintenance runs with it.

const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day of week', min: 0, max: 7 },
] as const

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']

const NICKNAMES: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
}

export interface CronSchedule {
  minutes: Set<number>
  hours: Set<number>
  days: Set<number>
  months: Set<number>
  weekdays: Set<number>
  /** cron's rule: when both day fields are restricted, a day matching either runs. */
  daysRestricted: boolean
  weekdaysRestricted: boolean
}

/** The schedule, or an Error naming the field that does not parse. */
export function parseCron(text: string): CronSchedule | Error {
  const spec = NICKNAMES[text.trim().toLowerCase()] ?? text.trim()
  const parts = spec.split(/\s+/)
  if (parts.length !== 5) {
    return new Error(`a cron schedule has 5 fields, "${text}" has ${parts.length}`)
  }
  const sets: Set<number>[] = []
  for (const [i, part] of parts.entries()) {
    const field = FIELDS[i]
    const names = i === 3 ? MONTHS : i === 4 ? DAYS : null
    const set = parseField(part.toLowerCase(), field.min, field.max, names, i === 3 ? 1 : 0)
    if (set instanceof Error) return new Error(`${field.name} "${part}": ${set.message}`)
    sets.push(set)
  }
  // 7 is Sunday too.
  if (sets[4].delete(7)) sets[4].add(0)
  return {
    minutes: sets[0],
    hours: sets[1],
    days: sets[2],
    months: sets[3],
    weekdays: sets[4],
    daysRestricted: parts[2] !== '*',
    weekdaysRestricted: parts[4] !== '*',
  }
}

function parseField(
  part: string,
  min: number,
  max: number,
  names: string[] | null,
  nameBase: number,
): Set<number> | Error {
  const out = new Set<number>()
  const value = (token: string): number | Error => {
    const named = names?.indexOf(token) ?? -1
    if (named >= 0) return named + nameBase
    if (!/^\d+$/.test(token)) return new Error(`"${token}" is not a number`)
    const n = Number(token)
    return n < min || n > max ? new Error(`${n} is outside ${min}-${max}`) : n
  }
  for (const item of part.split(',')) {
    const [range, stepText] = item.split('/')
    const step = stepText === undefined ? 1 : Number(stepText)
    if (!Number.isInteger(step) || step < 1) {
      return new Error(`step "${stepText}" is not a whole number`)
    }
    let from: number, to: number
    if (range === '*') {
      from = min
      to = max
    } else if (range.includes('-')) {
      const [a, b] = range.split('-').map(value)
      if (a instanceof Error) return a
      if (b instanceof Error) return b
      if (a > b) return new Error(`range ${range} runs backwards`)
      from = a
      to = b
    } else {
      const v = value(range)
      if (v instanceof Error) return v
      from = v
      to = stepText === undefined ? v : max
    }
    for (let n = from; n <= to; n += step) out.add(n)
  }
  return out
}

/** The first minute after `after` (UTC) the schedule runs, within a little over four years; else null. */
export function nextRun(schedule: CronSchedule | string, after: Date): Date | null {
  const s = typeof schedule === 'string' ? parseCron(schedule) : schedule
  if (s instanceof Error) return null
  const t = new Date(after.getTime())
  t.setUTCSeconds(0, 0)
  t.setUTCMinutes(t.getUTCMinutes() + 1)
  const limit = after.getTime() + 4.1 * 365.25 * 86_400_000
  while (t.getTime() <= limit) {
    if (!s.months.has(t.getUTCMonth() + 1)) {
      t.setUTCMonth(t.getUTCMonth() + 1, 1)
      t.setUTCHours(0, 0)
      continue
    }
    const dayOk = s.days.has(t.getUTCDate())
    const weekdayOk = s.weekdays.has(t.getUTCDay())
    const runsToday = s.daysRestricted && s.weekdaysRestricted
      ? dayOk || weekdayOk
      : dayOk && weekdayOk
    if (!runsToday) {
      t.setUTCDate(t.getUTCDate() + 1)
      t.setUTCHours(0, 0)
      continue
    }
    if (!s.hours.has(t.getUTCHours())) {
      t.setUTCHours(t.getUTCHours() + 1, 0)
      continue
    }
    if (!s.minutes.has(t.getUTCMinutes())) {
      t.setUTCMinutes(t.getUTCMinutes() + 1)
      continue
    }
    return t
  }
  return null
}
