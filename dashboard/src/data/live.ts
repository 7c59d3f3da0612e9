// The live snapshot: one rpc on first load, then one realtime channel. Simple row changes are merged
// at once; every change also schedules a debounced snapshot re-fetch for the derived numbers. When
// the channel drops, the state says "paused"; when it is SUBSCRIBED again, the snapshot is
// re-fetched so nothing missed stays missing. No polling.
import { useEffect, useMemo, useSyncExternalStore } from 'react'
import type { Snapshot } from '../types'
import { ApiError } from './api'
import type { VigilApi } from './api'
import type { VigilClient } from './client'
import { applyChange, LIVE_EVENTS, LIVE_TABLES } from './merge'
import type { ChangeEvent, RowChange } from './merge'

export const CHANNEL_NAME = 'vigil-dashboard'

export interface ChangePayload {
  table: string
  eventType: ChangeEvent
  new?: Record<string, unknown> | null
  old?: Record<string, unknown> | null
}

/** The part of a RealtimeChannel the store uses, so tests can pass a fake. */
export interface ChannelLike {
  on(
    type: 'postgres_changes',
    filter: { event: '*' | 'INSERT'; schema: string; table: string },
    handler: (payload: ChangePayload) => void,
  ): ChannelLike
  subscribe(callback: (status: string, err?: Error) => void): ChannelLike
}

export interface LiveSource {
  fetchSnapshot(): Promise<Snapshot>
  channel(name: string): ChannelLike
  removeChannel(channel: ChannelLike): unknown
}

export type LiveStatus = 'connecting' | 'live' | 'paused'

export interface LiveState {
  snapshot: Snapshot | null
  loading: boolean
  /** The first load failed: nothing to show but the error and Retry. */
  error: ApiError | null
  /** A later re-fetch failed: the last snapshot stays on screen with this notice. */
  refreshError: string | null
  live: LiveStatus
  /** Why the server refused or ended the channel, when it said (e.g. a table the user may not read). */
  liveReason: string | null
}

export interface LiveStoreOptions {
  debounceMs?: number
  /** Delay before opening a fresh channel after the server closed ours. */
  reopenMs?: number
}

const PAUSED = new Set(['CHANNEL_ERROR', 'TIMED_OUT', 'CLOSED'])

export class LiveSnapshotStore {
  private state: LiveState = { snapshot: null, loading: true, error: null, refreshError: null, live: 'connecting', liveReason: null }
  private listeners = new Set<() => void>()
  private channel: ChannelLike | null = null
  private debounce: ReturnType<typeof setTimeout> | null = null
  private reopen: ReturnType<typeof setTimeout> | null = null
  private stopped = true
  private wasPaused = false
  private fetchSeq = 0
  private openGen = 0
  private closing: Promise<unknown> = Promise.resolve()
  private readonly debounceMs: number
  private readonly reopenMs: number

  constructor(
    private readonly source: LiveSource,
    options: LiveStoreOptions = {},
  ) {
    this.debounceMs = options.debounceMs ?? 300
    this.reopenMs = options.reopenMs ?? 3000
  }

  getState = (): LiveState => this.state

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private set(patch: Partial<LiveState>) {
    this.state = { ...this.state, ...patch }
    for (const l of this.listeners) l()
  }

  start(): void {
    if (!this.stopped) return
    this.stopped = false
    void this.load()
    this.openChannel()
  }

  stop(): void {
    this.stopped = true
    if (this.debounce) clearTimeout(this.debounce)
    if (this.reopen) clearTimeout(this.reopen)
    this.debounce = this.reopen = null
    this.closeChannel()
  }

  /** Re-fetch now (Retry, or after an action). */
  refresh(): Promise<void> {
    return this.load()
  }

  /** Re-fetch once the burst of changes settles. */
  scheduleRefresh(): void {
    if (this.debounce) clearTimeout(this.debounce)
    this.debounce = setTimeout(() => {
      this.debounce = null
      if (!this.stopped) void this.load()
    }, this.debounceMs)
  }

  /** Merge a row change into the current snapshot (realtime payloads and confirmed actions). */
  apply(change: RowChange): void {
    const s = this.state.snapshot
    if (!s) return
    const next = applyChange(s, change)
    if (next !== s) this.set({ snapshot: next })
  }

  private async load(): Promise<void> {
    const seq = ++this.fetchSeq
    if (!this.state.snapshot) this.set({ loading: true, error: null })
    try {
      const snapshot = await this.source.fetchSnapshot()
      if (seq !== this.fetchSeq || this.stopped) return
      this.set({ snapshot, loading: false, error: null, refreshError: null })
    } catch (e) {
      if (seq !== this.fetchSeq || this.stopped) return
      const err = e instanceof ApiError ? e : new ApiError('network', String((e as Error)?.message ?? e))
      if (this.state.snapshot && err.kind !== 'auth') this.set({ loading: false, refreshError: err.message })
      else this.set({ loading: false, error: err })
    }
  }

  private onStatus = (channel: ChannelLike, status: string, err?: Error) => {
    if (this.stopped || channel !== this.channel) return
    if (status === 'SUBSCRIBED') {
      const catchUp = this.wasPaused
      this.wasPaused = false
      this.set({ live: 'live', liveReason: null })
      if (catchUp) void this.load()
      return
    }
    if (PAUSED.has(status)) {
      this.wasPaused = true
      this.set({ live: 'paused', liveReason: err?.message ?? null })
      // CHANNEL_ERROR and TIMED_OUT rejoin by themselves; a closed channel needs a new one.
      if (status === 'CLOSED' && !this.reopen) {
        this.reopen = setTimeout(() => {
          this.reopen = null
          if (this.stopped) return
          this.closeChannel()
          this.openChannel()
        }, this.reopenMs)
      }
    }
  }

  private onChange = (payload: ChangePayload) => {
    if (this.stopped) return
    this.apply(payload)
    this.scheduleRefresh()
  }

  private openChannel() {
    const gen = ++this.openGen
    // A channel still leaving keeps its topic in the client, and channel(name) would hand it back:
    // open the next one only once the previous one is gone.
    void this.closing.then(() => {
      if (this.stopped || gen !== this.openGen) return
      let ch = this.source.channel(CHANNEL_NAME)
      for (const table of LIVE_TABLES) {
        ch = ch.on('postgres_changes', { event: LIVE_EVENTS[table], schema: 'vigil', table }, this.onChange)
      }
      this.channel = ch
      ch.subscribe((status, err) => this.onStatus(ch, status, err))
    })
  }

  private closeChannel() {
    const ch = this.channel
    this.channel = null
    if (ch) {
      this.closing = Promise.resolve()
        .then(() => this.source.removeChannel(ch))
        .catch(() => undefined)
    }
  }
}

/**
 * The live source over the real client. With `prefetch` (a session is stored), the first read
 * starts now, while the session is confirmed and the page renders, and the store's first load
 * takes it; if it failed, that load asks again.
 */
export function supabaseLiveSource(
  client: VigilClient,
  api: Pick<VigilApi, 'snapshot'>,
  options: { prefetch?: boolean } = {},
): LiveSource {
  let early: Promise<Snapshot> | null = options.prefetch ? api.snapshot() : null
  early?.catch(() => undefined)
  return {
    fetchSnapshot: () => {
      const first = early
      early = null
      return first ? first.catch(() => api.snapshot()) : api.snapshot()
    },
    channel: (name) => client.channel(name) as unknown as ChannelLike,
    removeChannel: (ch) => client.removeChannel(ch as never),
  }
}

/** True when supabase-js has a session stored in this browser (its key ends in -auth-token). */
export function hasStoredSession(
  storage: Pick<Storage, 'length' | 'key'> | null = globalThis.localStorage ?? null,
): boolean {
  if (!storage) return false
  for (let i = 0; i < storage.length; i++) {
    const key = storage.key(i)
    if (key?.startsWith('sb-') && key.endsWith('-auth-token')) return true
  }
  return false
}

/** The store's state in a component; the store starts on mount and stops on unmount. */
export function useLiveSnapshot(source: LiveSource, options?: LiveStoreOptions) {
  // One store per source; options are read once, at creation.
  const store = useMemo(() => new LiveSnapshotStore(source, options), [source])
  useEffect(() => {
    store.start()
    return () => store.stop()
  }, [store])
  const state = useSyncExternalStore(store.subscribe, store.getState, store.getState)
  return { state, store }
}
