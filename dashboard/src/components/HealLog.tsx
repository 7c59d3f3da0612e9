import { healLogParts } from '../format'
import type { HealLogEntry } from '../types'
import { Empty, Section } from './ui'

export function HealLogLine({ entry, timeZone }: { entry: HealLogEntry; timeZone?: string }) {
  const p = healLogParts(entry, timeZone)
  return (
    <li className={`heal outcome-${entry.outcome}`}>
      <time dateTime={entry.at}>{p.time}</time> <span aria-label={p.word} role="img">{p.icon}</span> <span>{p.text}</span>{' '}
      <span className="muted">{p.attempt}</span>
      {entry.detail?.trim() && <span className="tag">{entry.strategy}</span>}
      {entry.dry_run && entry.outcome !== 'dry_run' && <span className="tag">dry run</span>}
    </li>
  )
}

export function HealLog({ entries, timeZone }: { entries: HealLogEntry[]; timeZone?: string }) {
  return (
    <Section id="heal-log" title="Auto-heal activity">
      {entries.length === 0 ? (
        <Empty>No heal actions yet.</Empty>
      ) : (
        // It scrolls past 28 rem: focusable, so a keyboard can scroll it too (WCAG 2.1.1).
        <ol className="heal-log" aria-label="Heal actions, newest first" tabIndex={0}>
          {entries.map((e) => (
            <HealLogLine key={e.id} entry={e} timeZone={timeZone} />
          ))}
        </ol>
      )}
    </Section>
  )
}
