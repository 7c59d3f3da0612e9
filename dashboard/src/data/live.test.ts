import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ApiError } from './api'
import { CHANNEL_NAME, hasStoredSession, LiveSnapshotStore, supabaseLiveSource } from './live'
import { fakeSource } from '../test/fakes'
import { seriesRow, snapshot } from '../test/fixtures'

const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

describe('live snapshot store', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('loads once, subscribes one channel to every table, and goes live', async () => {
    const fetch = vi.fn().mockResolvedValue(snapshot())
    const { source, channels } = fakeSource(fetch)
    const store = new LiveSnapshotStore(source)
    store.start()
    await flush()
    expect(fetch).toHaveBeenCalledTimes(1)
    expect(channels).toHaveLength(1)
    expect(channels[0]!.name).toBe(CHANNEL_NAME)
    expect(channels[0]!.bindings.map((b) => b.filter)).toContainEqual({ event: 'INSERT', schema: 'vigil', table: 'checks' })
    expect(channels[0]!.bindings.map((b) => b.filter)).toContainEqual({ event: '*', schema: 'vigil', table: 'metric_series' })
    expect(channels[0]!.bindings.map((b) => b.filter.table).sort()).toEqual(
      ['alerts', 'checks', 'control_changes', 'cycles', 'heal_actions', 'heal_approvals', 'incident_log', 'incidents', 'maintenance_runs', 'metric_series', 'recommendations', 'reports', 'services', 'settings'],
    )
    expect(store.getState().live).toBe('connecting')
    channels[0]!.status('SUBSCRIBED')
    expect(store.getState().live).toBe('live')
    expect(fetch).toHaveBeenCalledTimes(1)
    store.stop()
  })

  it('pauses on CHANNEL_ERROR and re-fetches the snapshot when SUBSCRIBED again', async () => {
    const fetch = vi.fn().mockResolvedValue(snapshot())
    const { source, channels } = fakeSource(fetch)
    const store = new LiveSnapshotStore(source)
    store.start()
    await flush()
    const ch = channels[0]!
    ch.status('SUBSCRIBED')
    ch.status('CHANNEL_ERROR')
    expect(store.getState().live).toBe('paused')
    expect(fetch).toHaveBeenCalledTimes(1)
    fetch.mockResolvedValueOnce(snapshot({ score: { score: 80, band: 'red', services: 2 } }))
    ch.status('SUBSCRIBED')
    expect(store.getState().live).toBe('live')
    await flush()
    expect(fetch).toHaveBeenCalledTimes(2)
    expect(store.getState().snapshot?.score.score).toBe(80)
    store.stop()
  })

  it('keeps the reason the server gave for refusing the channel, until it is back', async () => {
    const { source, channels } = fakeSource(vi.fn().mockResolvedValue(snapshot()))
    const store = new LiveSnapshotStore(source)
    store.start()
    await flush()
    const ch = channels[0]!
    ch.status('CHANNEL_ERROR', new Error('role authenticated may not read vigil.alerts'))
    expect(store.getState()).toMatchObject({ live: 'paused', liveReason: 'role authenticated may not read vigil.alerts' })
    ch.status('SUBSCRIBED')
    expect(store.getState()).toMatchObject({ live: 'live', liveReason: null })
    store.stop()
  })

  it('treats TIMED_OUT like an error and opens a fresh channel after CLOSED', async () => {
    const { source, channels, removed } = fakeSource(vi.fn().mockResolvedValue(snapshot()))
    const store = new LiveSnapshotStore(source, { reopenMs: 1000 })
    store.start()
    await flush()
    channels[0]!.status('TIMED_OUT')
    expect(store.getState().live).toBe('paused')
    channels[0]!.status('CLOSED')
    await vi.advanceTimersByTimeAsync(1000)
    expect(removed).toEqual([channels[0]])
    expect(channels).toHaveLength(2)
    channels[1]!.status('SUBSCRIBED')
    expect(store.getState().live).toBe('live')
    store.stop()
  })

  it('merges a change at once and re-fetches once, debounced, after a burst', async () => {
    const fetch = vi.fn().mockResolvedValue(snapshot())
    const { source, channels } = fakeSource(fetch)
    const store = new LiveSnapshotStore(source, { debounceMs: 300 })
    store.start()
    await flush()
    const ch = channels[0]!
    ch.status('SUBSCRIBED')
    ch.emit('services', { eventType: 'UPDATE', new: { id: 's-db', status: 'down' } })
    expect(store.getState().snapshot?.services.find((s) => s.id === 's-db')?.status).toBe('down')
    ch.emit('checks', { eventType: 'INSERT', new: { service_id: 's-db', response_ms: 5 } })
    ch.emit('heal_actions', { eventType: 'INSERT', new: { id: 9 } })
    expect(fetch).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(299)
    expect(fetch).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(fetch).toHaveBeenCalledTimes(2)
    store.stop()
  })

  it('merges metric_series inserts, updates and deletes as they come', async () => {
    const { source, channels } = fakeSource(vi.fn().mockResolvedValue(snapshot()))
    const store = new LiveSnapshotStore(source)
    store.start()
    await flush()
    const ch = channels[0]!
    ch.status('SUBSCRIBED')
    ch.emit('metric_series', { eventType: 'INSERT', new: seriesRow() })
    expect(store.getState().snapshot?.analysis?.map((a) => a.forecast?.eta_seconds)).toEqual([25200])
    ch.emit('metric_series', { eventType: 'UPDATE', new: seriesRow({ anomalous_since: '2026-12-02T11:59:00Z', score: 0.7 }) })
    expect(store.getState().snapshot?.analysis).toMatchObject([{ anomalous_since: '2026-12-02T11:59:00Z', score: 0.7 }])
    ch.emit('metric_series', { eventType: 'DELETE', old: { service_id: 's-web', metric: 'memory_usage_percent', labels: {} } })
    expect(store.getState().snapshot?.analysis).toEqual([])
    store.stop()
  })

  it('keeps the last snapshot when a later re-fetch fails, and reports a failed first load', async () => {
    const fetch = vi.fn().mockRejectedValueOnce(new ApiError('server', 'boom'))
    const { source } = fakeSource(fetch)
    const store = new LiveSnapshotStore(source)
    store.start()
    await flush()
    expect(store.getState()).toMatchObject({ snapshot: null, loading: false })
    expect(store.getState().error?.message).toBe('boom')
    fetch.mockResolvedValueOnce(snapshot())
    await store.refresh()
    expect(store.getState().error).toBeNull()
    fetch.mockRejectedValueOnce(new ApiError('network', 'offline'))
    await store.refresh()
    expect(store.getState().snapshot).not.toBeNull()
    expect(store.getState().refreshError).toBe('offline')
    store.stop()
  })

  it('removes its channel on stop and ignores late statuses', async () => {
    const { source, channels, removed } = fakeSource(vi.fn().mockResolvedValue(snapshot()))
    const store = new LiveSnapshotStore(source)
    store.start()
    await flush()
    store.stop()
    await flush()
    expect(removed).toEqual([channels[0]])
    channels[0]!.status('CLOSED')
    expect(store.getState().live).toBe('connecting')
  })
})

describe('the first read', () => {
  const client = {} as Parameters<typeof supabaseLiveSource>[0]

  it('starts with the source when a session is stored, and the first load takes it', async () => {
    const first = snapshot({ score: { score: 99, band: 'green', services: 1 } })
    const api = { snapshot: vi.fn().mockResolvedValueOnce(first).mockResolvedValue(snapshot()) }
    const source = supabaseLiveSource(client, api, { prefetch: true })
    expect(api.snapshot).toHaveBeenCalledTimes(1)
    expect(await source.fetchSnapshot()).toBe(first)
    expect(api.snapshot).toHaveBeenCalledTimes(1)
    await source.fetchSnapshot()
    expect(api.snapshot).toHaveBeenCalledTimes(2)
  })

  it('asks again when the early read failed, and does not start one without a session', async () => {
    const later = snapshot()
    const api = { snapshot: vi.fn().mockRejectedValueOnce(new ApiError('auth', 'expired')).mockResolvedValue(later) }
    const source = supabaseLiveSource(client, api, { prefetch: true })
    expect(await source.fetchSnapshot()).toBe(later)
    const idle = { snapshot: vi.fn().mockResolvedValue(later) }
    supabaseLiveSource(client, idle)
    expect(idle.snapshot).not.toHaveBeenCalled()
  })

  it('knows a stored session by supabase-js’s key', () => {
    const storage = (keys: string[]) => ({ length: keys.length, key: (i: number) => keys[i] ?? null })
    expect(hasStoredSession(storage(['theme', 'sb-127-auth-token']))).toBe(true)
    expect(hasStoredSession(storage(['theme']))).toBe(false)
    expect(hasStoredSession(null)).toBe(false)
  })
})
