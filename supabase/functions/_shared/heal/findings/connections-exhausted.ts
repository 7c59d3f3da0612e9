// connections_exhausted: Connections past the warning: idle ones may be ended (kill_idle_connections).
import type { FindingRule } from './types.ts'

export const connectionsExhausted: FindingRule<'connections_exhausted'> = {
  kind: 'connections_exhausted',
  problem: (e) => ({
    kind: 'connection_exhaustion',
    reason: `${e.used} of ${e.available} connections in use (${e.usage_pct} %)`,
    evidence: { connections: { used: e.used, max: e.available, usage_pct: e.usage_pct } },
  }),
}
