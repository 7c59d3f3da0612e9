import { describe, expect, it } from 'vitest'
import { bandFor, bandWord, formatAge, formatPercent, healLogLine, orderIncidents, statusLabel } from './format'
import { heal, incident, NOW } from './test/fixtures'

describe('health score band', () => {
  it('is green above 95, yellow from 90 to 95, red below 90', () => {
    expect(bandFor(100)).toBe('green')
    expect(bandFor(95.01)).toBe('green')
    expect(bandFor(95)).toBe('yellow')
    expect(bandFor(90)).toBe('yellow')
    expect(bandFor(89.99)).toBe('red')
    expect(bandFor(0)).toBe('red')
    expect(bandFor(null)).toBeNull()
  })
  it('says the band in words', () => {
    expect(bandWord('green')).toBe('Good')
    expect(bandWord('yellow')).toBe('Warning')
    expect(bandWord('red')).toBe('Critical')
    expect(bandWord(null)).toBe('No data yet')
  })
})

describe('service status label', () => {
  it('pairs an icon with a word for every status', () => {
    expect(statusLabel('healthy')).toEqual({ icon: '✅', word: 'Healthy' })
    expect(statusLabel('degraded')).toEqual({ icon: '⚠️', word: 'Degraded' })
    expect(statusLabel('down')).toEqual({ icon: '❌', word: 'Down' })
    expect(statusLabel('unknown')).toEqual({ icon: '❔', word: 'Unknown' })
    expect(statusLabel('something-new')).toEqual({ icon: '❔', word: 'Unknown' })
  })
})

describe('heal log line', () => {
  it('reads like the spec for a success', () => {
    expect(healLogLine(heal(), 'UTC')).toBe('14:32:05 ✅ Terminated blocking session on db-main (attempt 1/3)')
  })
  it('marks dry runs, refusals and the like with ⚠️ and their word', () => {
    expect(healLogLine(heal({ outcome: 'dry_run', detail: null, attempt: 2 }), 'UTC')).toBe(
      '14:32:05 ⚠️ Dry run: Kill blocking session on db-main (attempt 2/3)',
    )
    expect(healLogLine(heal({ outcome: 'refused', reason: 'session is protected' }), 'UTC')).toBe(
      '14:32:05 ⚠️ Refused: Terminated blocking session on db-main — session is protected (attempt 1/3)',
    )
    for (const o of ['skipped', 'awaiting_approval', 'pending', 'undone'] as const) {
      expect(healLogLine(heal({ outcome: o }), 'UTC')).toContain(' ⚠️ ')
    }
  })
  it('marks failures with ❌', () => {
    expect(healLogLine(heal({ outcome: 'failed', attempt: 3 }), 'UTC')).toBe(
      '14:32:05 ❌ Failed: Terminated blocking session on db-main (attempt 3/3)',
    )
  })
})

describe('incident order', () => {
  it('puts open incidents first, newest first, then resolved ones by resolution time', () => {
    const ordered = orderIncidents([
      incident({ id: 1, status: 'resolved', opened_at: '2026-12-02T11:00:00Z', resolved_at: '2026-12-02T11:10:00Z' }),
      incident({ id: 2, status: 'open', opened_at: '2026-12-02T10:00:00Z' }),
      incident({ id: 3, status: 'resolved', opened_at: '2026-12-02T09:00:00Z', resolved_at: '2026-12-02T11:50:00Z' }),
      incident({ id: 4, status: 'open', opened_at: '2026-12-02T11:55:00Z' }),
    ])
    expect(ordered.map((i) => i.id)).toEqual([4, 2, 3, 1])
  })
})

describe('small formats', () => {
  it('gives ages in minutes, hours and days', () => {
    expect(formatAge('2026-12-02T11:59:40Z', NOW)).toBe('just now')
    expect(formatAge('2026-12-02T11:30:00Z', NOW)).toBe('30 min')
    expect(formatAge('2026-12-02T09:55:00Z', NOW)).toBe('2 h 5 min')
    expect(formatAge('2026-11-29T08:00:00Z', NOW)).toBe('3 d 4 h')
  })
  it('gives percentages with a dash for no data', () => {
    expect(formatPercent(99.951)).toBe('99.95 %')
    expect(formatPercent(100)).toBe('100 %')
    expect(formatPercent(null)).toBe('—')
  })
})
