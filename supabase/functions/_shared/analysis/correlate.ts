// Correlation: open incidents and anomalies that started together, on services the topology
// connects (one depends on the other, directly or not), are one story. Its likely root is named
// first: the incident on the service the others depend on, else the earliest; and a few stories
// SREs know by sight get their name ("OOM risk": memory climbing while responses slow down;
// "database down": the services on top of it fail with it).

export interface OpenIncident {
  id: number
  service: string
  kind: string
  severity: string
  title: string
  opened_at: Date
  /** The metrics an anomaly or forecast names (detail.series / detail.forecasts), or a finding. */
  signals: string[]
  status: string
}

export interface Correlation {
  root: number
  related: number[]
  hypothesis: string
  text: string
}

/** Incidents opened this close together may be one story. */
export const WINDOW_MINUTES = 10

const MEMORY = new Set(['memory_usage_percent', 'memory_high'])
const SLOW = new Set(['http_request_duration', 'query_duration_p95', 'slow', 'slow_queries'])

/** Every service a service depends on, directly or through others. */
function upstreamOf(dependsOn: Map<string, string[]>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>()
  const walk = (name: string, seen: Set<string>) => {
    for (const d of dependsOn.get(name) ?? []) {
      if (seen.has(d)) continue
      seen.add(d)
      walk(d, seen)
    }
    return seen
  }
  for (const name of dependsOn.keys()) out.set(name, walk(name, new Set()))
  return out
}

export function correlate(
  incidents: OpenIncident[],
  dependsOn: Map<string, string[]>,
): Correlation[] {
  const upstream = upstreamOf(dependsOn)
  const connected = (a: string, b: string) =>
    a === b || upstream.get(a)?.has(b) === true || upstream.get(b)?.has(a) === true
  const sorted = [...incidents].sort((a, b) => a.opened_at.getTime() - b.opened_at.getTime())
  // Union-find over pairs close in time and in the topology.
  const parent = new Map(sorted.map((i) => [i.id, i.id]))
  const find = (x: number): number => {
    while (parent.get(x) !== x) x = parent.get(x)!
    return x
  }
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length; j++) {
      const gap = sorted[j].opened_at.getTime() - sorted[i].opened_at.getTime()
      if (gap > WINDOW_MINUTES * 60_000) break
      if (connected(sorted[i].service, sorted[j].service)) {
        parent.set(find(sorted[j].id), find(sorted[i].id))
      }
    }
  }
  const groups = new Map<number, OpenIncident[]>()
  for (const i of sorted) groups.set(find(i.id), [...(groups.get(find(i.id)) ?? []), i])

  const out: Correlation[] = []
  for (const group of groups.values()) {
    if (group.length < 2) continue
    // The root: on the service most others depend on; then a real failure before an anomaly;
    // then the earliest.
    const below = (i: OpenIncident) =>
      group.filter((o) => o.service !== i.service && upstream.get(o.service)?.has(i.service)).length
    const weight = (i: OpenIncident) => (i.kind === 'anomaly' || i.kind === 'forecast' ? 0 : 1)
    const root = [...group].sort((a, b) =>
      below(b) - below(a) || weight(b) - weight(a) ||
      a.opened_at.getTime() - b.opened_at.getTime()
    )[0]
    const signals = new Set(group.flatMap((i) => i.signals))
    const has = (set: Set<string>) => [...signals].some((s) => set.has(s))
    const hypothesis = has(MEMORY) && has(SLOW)
      ? 'OOM risk'
      : root.kind === 'service_unhealthy' && root.status === 'down' && below(root) > 0 &&
          root.signals.includes('postgres')
      ? 'database down'
      : 'started together'
    const others = group.filter((i) => i !== root)
    const why = hypothesis === 'OOM risk'
      ? 'memory is climbing while responses slow down'
      : hypothesis === 'database down'
      ? `the services on top of ${root.service} fail with it`
      : `${root.service} first`
    out.push({
      root: root.id,
      related: others.map((i) => i.id),
      hypothesis,
      text: `${hypothesis}: ${why}. Likely root: #${root.id} ${root.title}; with ${
        others.map((i) => `#${i.id} ${i.title}`).join('; ')
      }`,
    })
  }
  return out
}
