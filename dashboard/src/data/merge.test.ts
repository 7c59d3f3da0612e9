import { describe, expect, it } from 'vitest'
import { applyChange } from './merge'
import { flagged, incident, seriesRow, service, snapshot } from '../test/fixtures'

describe('merging realtime rows into the snapshot', () => {
  it('updates a service status in place and keeps derived fields', () => {
    const s = snapshot()
    const next = applyChange(s, {
      table: 'services',
      eventType: 'UPDATE',
      new: { id: 's-db', name: 'db-main', status: 'down', heal_enabled: false, config: { secret: 'x' } },
    })
    const db = next.services.find((x) => x.id === 's-db')!
    expect(db.status).toBe('down')
    expect(db.heal_enabled).toBe(false)
    expect(db.uptime_24h).toBe(99.95)
    expect(db).not.toHaveProperty('config')
    expect(s.services[0]!.status).toBe('healthy') // the old state is untouched
  })

  it('inserts a new service in name order and deletes one by id', () => {
    const s = snapshot()
    const inserted = applyChange(s, {
      table: 'services',
      eventType: 'INSERT',
      new: { id: 's-api', name: 'api', kind: 'http', environment: 'prod', status: 'unknown', enabled: true, heal_enabled: true },
    })
    expect(inserted.services.map((x) => x.name)).toEqual(['api', 'db-main', 'web'])
    expect(inserted.services[0]!.latency_ms).toBeNull()
    const deleted = applyChange(inserted, { table: 'services', eventType: 'DELETE', old: { id: 's-db' } })
    expect(deleted.services.map((x) => x.name)).toEqual(['api', 'web'])
  })

  it('takes latency and check time from a new check row', () => {
    const next = applyChange(snapshot(), {
      table: 'checks',
      eventType: 'INSERT',
      new: { service_id: 's-web', status: 'healthy', response_ms: 88, checked_at: '2026-12-02T12:00:30Z' },
    })
    const web = next.services.find((x) => x.id === 's-web')!
    expect(web.latency_ms).toBe(88)
    expect(web.last_checked_at).toBe('2026-12-02T12:00:30Z')
  })

  it('inserts an incident with its service name, open first', () => {
    const s = snapshot({ incidents: [incident({ id: 1, status: 'resolved', resolved_at: '2026-12-02T11:40:00Z' })] })
    const next = applyChange(s, {
      table: 'incidents',
      eventType: 'INSERT',
      new: { id: 7, service_id: 's-web', kind: 'service_unhealthy', severity: 'warning', status: 'open', title: 'web is degraded', opened_at: '2026-12-02T11:58:00Z' },
    })
    expect(next.incidents.map((i) => i.id)).toEqual([7, 1])
    expect(next.incidents[0]).toMatchObject({ service: 'web', acknowledged_at: null, heal_attempts: 0 })
  })

  it('updates an incident and keeps the acknowledger name the row does not carry', () => {
    const s = snapshot({ incidents: [incident({ id: 1, acknowledged_at: '2026-12-02T11:35:00Z', acknowledged_by_name: 'Ada' })] })
    const next = applyChange(s, {
      table: 'incidents',
      eventType: 'UPDATE',
      new: { ...s.incidents[0], acknowledged_by_name: undefined, status: 'resolved', resolved_at: '2026-12-02T11:59:00Z' } as never,
    })
    expect(next.incidents[0]).toMatchObject({ status: 'resolved', resolved_at: '2026-12-02T11:59:00Z' })
    const partial = applyChange(s, { table: 'incidents', eventType: 'UPDATE', new: { id: 1, status: 'resolved' } })
    expect(partial.incidents[0]!.acknowledged_by_name).toBe('Ada')
  })

  it('deletes an incident by id', () => {
    const next = applyChange(snapshot(), { table: 'incidents', eventType: 'DELETE', old: { id: 1 } })
    expect(next.incidents).toEqual([])
  })

  it('merges a settings row by environment', () => {
    const next = applyChange(snapshot(), { table: 'settings', eventType: 'UPDATE', new: { environment: 'prod', kill_switch: true } })
    expect(next.settings.map((x) => [x.environment, x.kill_switch])).toEqual([
      ['prod', true],
      ['qa', false],
      ['dev', false],
    ])
  })

  it('drops an approval once it is decided', () => {
    const s = snapshot({
      approvals: [
        { action_id: 'a1', incident_id: 1, service: 'db-main', strategy: 'restart', plan: {}, requested_at: '2026-12-02T11:50:00Z', expires_at: '2026-12-02T12:50:00Z' },
      ],
    })
    const next = applyChange(s, { table: 'heal_approvals', eventType: 'UPDATE', new: { action_id: 'a1', decision: 'approved' } })
    expect(next.approvals).toEqual([])
  })

  it('adds a metric series once it is flagged, keeping only what the panel shows', () => {
    const next = applyChange(snapshot(), { table: 'metric_series', eventType: 'INSERT', new: seriesRow() })
    expect(next.analysis).toEqual([
      {
        service_id: 's-web',
        service: 'web',
        metric: 'memory_usage_percent',
        labels: {},
        value: 71,
        score: 0.1,
        baseline: { value: 71, expected: 70, low: 60, high: 80, ratio: 1.01, hourAgo: 67 },
        anomalous_since: null,
        forecast: { text: 'memory 71 % rising 4.2 %/h: 100 % in ~7 h (between ~5 h and ~11 h)', eta_seconds: 25200 },
        forecast_at: '2026-12-02T11:55:00Z',
      },
    ])
    expect(JSON.stringify(next.analysis)).not.toMatch(/detector|xxxx|fit|consumed_until/)
  })

  it('updates a flagged series in place, whatever the order of its labels, and drops it once calm', () => {
    const s = snapshot({ analysis: [flagged({ labels: { mount: '/', device: 'sda' } })] })
    const key = { service_id: 's-db', metric: 'cpu_usage_percent', labels: { device: 'sda', mount: '/' } }
    const hotter = applyChange(s, {
      table: 'metric_series',
      eventType: 'UPDATE',
      new: seriesRow({ ...key, value: 97, score: 0.95, anomalous_since: '2026-12-02T11:40:00Z', forecast: { status: 'flat', text: 'CPU: flat' } }),
    })
    expect(hotter.analysis).toHaveLength(1)
    expect(hotter.analysis![0]).toMatchObject({ service: 'db-main', value: 97, score: 0.95, forecast: null })
    const calm = applyChange(hotter, { table: 'metric_series', eventType: 'UPDATE', new: seriesRow({ ...key, anomalous_since: null, forecast: null }) })
    expect(calm.analysis).toEqual([])
    // A calm series that was never flagged changes nothing.
    expect(applyChange(calm, { table: 'metric_series', eventType: 'UPDATE', new: seriesRow({ forecast: null }) })).toBe(calm)
  })

  it('keeps what a change leaves out (an unchanged TOASTed column) and deletes by the primary key', () => {
    const s = snapshot({ analysis: [flagged()] })
    const partial = applyChange(s, { table: 'metric_series', eventType: 'UPDATE', new: { service_id: 's-db', metric: 'cpu_usage_percent', labels: {}, value: 95 } })
    expect(partial.analysis![0]).toMatchObject({ value: 95, score: 0.82, anomalous_since: '2026-12-02T11:40:00Z', baseline: { expected: 40 } })
    const deleted = applyChange(partial, { table: 'metric_series', eventType: 'DELETE', old: { service_id: 's-db', metric: 'cpu_usage_percent', labels: {} } })
    expect(deleted.analysis).toEqual([])
  })

  it('leaves out the series of a service that is disabled or not on the page', () => {
    const s = snapshot({ services: [service({ enabled: false })] })
    expect(applyChange(s, { table: 'metric_series', eventType: 'INSERT', new: seriesRow({ service_id: 's-db' }) })).toBe(s)
    expect(applyChange(s, { table: 'metric_series', eventType: 'INSERT', new: seriesRow({ service_id: 's-gone' }) })).toBe(s)
    const older = snapshot({ analysis: undefined })
    expect(applyChange(older, { table: 'metric_series', eventType: 'INSERT', new: seriesRow() }).analysis).toHaveLength(1)
  })

  it('leaves the snapshot as it is for tables it does not merge', () => {
    const s = snapshot()
    expect(applyChange(s, { table: 'alerts', eventType: 'INSERT', new: { id: 1 } })).toBe(s)
    expect(applyChange(s, { table: 'services', eventType: 'UPDATE', new: {} })).toBe(s)
    expect(applyChange(s, { table: 'checks', eventType: 'INSERT', new: { service_id: 'nope', response_ms: 1 } })).toBe(s)
    expect(service()).toBeTruthy()
  })
})
