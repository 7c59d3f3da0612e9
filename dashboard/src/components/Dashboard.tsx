// The operator's one page: every section from the snapshot, the actions wired to the data layer.
import { useCallback, useDeferredValue, useEffect, useMemo, useState } from 'react'
import type { VigilApi } from '../data/api'
import type { RowChange } from '../data/merge'
import type { Snapshot } from '../types'
import { Analysis } from './Analysis'
import { Controls, type ControlActions } from './Controls'
import { HealLog } from './HealLog'
import { HealthScore } from './HealthScore'
import { Incidents, type IncidentActions } from './Incidents'
import { MaintenanceRuns, Recommendations, ReportsView } from './Reports'
import { ServiceGrid } from './ServiceGrid'
import { Trends } from './Trends'

/** The current time, ticking once a minute so ages stay right without re-fetching. */
function useNow(intervalMs = 60_000) {
  const [now, setNow] = useState(() => Date.now())
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), intervalMs)
    return () => clearInterval(t)
  }, [intervalMs])
  return now
}

export function Dashboard({
  snapshot,
  api,
  onChanged,
}: {
  snapshot: Snapshot
  api: VigilApi
  /** A confirmed action: merge its row change at once, then re-fetch the derived numbers. */
  onChanged: (change?: RowChange) => void
}) {
  const now = useNow()
  const operator = snapshot.operator
  // The first screen (score and services) renders at once; the sections below follow in a deferred
  // pass, so the browser paints what is seen first without waiting for the rest of the page.
  const later = useDeferredValue<Snapshot | null>(snapshot, null)

  const confirmed = useCallback(
    async <T extends { ok: boolean }>(result: Promise<T>, change: RowChange): Promise<T> => {
      const r = await result
      if (r.ok) onChanged(change)
      return r
    },
    [onChanged],
  )

  const incidentActions: IncidentActions = useMemo(
    () => ({
      acknowledge: (i) => {
        const at = new Date().toISOString()
        return confirmed(api.acknowledge(i.id), { table: 'incidents', eventType: 'UPDATE', new: { id: i.id, acknowledged_at: at } })
      },
      decide: (a, decision) =>
        confirmed(api.decideApproval(a.action_id, decision), {
          table: 'heal_approvals',
          eventType: 'UPDATE',
          new: { action_id: a.action_id, decision },
        }),
      loadTimeline: (id) => api.timeline(id),
    }),
    [api, confirmed],
  )

  const controlActions: ControlActions = useMemo(
    () => ({
      setKillSwitch: (env, on) =>
        confirmed(api.setKillSwitch(env, on), { table: 'settings', eventType: 'UPDATE', new: { environment: env, kill_switch: on } }),
      setDryRun: (env, on) =>
        confirmed(api.setDryRun(env, on), { table: 'settings', eventType: 'UPDATE', new: { environment: env, dry_run: on } }),
    }),
    [api, confirmed],
  )

  const setHealing = useCallback(
    (s: { id: string }, enabled: boolean) =>
      confirmed(api.setServiceHealing(s.id, enabled), { table: 'services', eventType: 'UPDATE', new: { id: s.id, heal_enabled: enabled } }),
    [api, confirmed],
  )

  const loadTrends = useCallback((w: Parameters<VigilApi['trends']>[0]) => api.trends(w), [api])

  // The sections in the spec's order, which is also the reading and tab order.
  return (
    <div className="layout">
      <HealthScore score={snapshot.score} cycle={snapshot.cycle} />
      <ServiceGrid services={snapshot.services} operator={operator} onSetHealing={setHealing} />
      {later && (
        <>
          <Incidents incidents={later.incidents} approvals={later.approvals} operator={operator} actions={incidentActions} now={now} />
          <HealLog entries={later.heal_log} />
          <Trends load={loadTrends} refreshKey={later.cycle?.finished_at ?? null} />
          <Analysis series={later.analysis ?? []} recommendations={later.recommendations} now={now} />
          <Recommendations items={later.recommendations} />
          <MaintenanceRuns runs={later.maintenance_runs} />
          <ReportsView daily={later.daily_report} weekly={later.weekly_report} />
          <Controls settings={later.settings} changes={later.control_changes} operator={operator} actions={controlActions} />
        </>
      )}
    </div>
  )
}
