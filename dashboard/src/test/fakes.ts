import { vi } from 'vitest'
import type { VigilApi } from '../data/api'
import type { ChangePayload, ChannelLike, LiveSource } from '../data/live'

/** A channel that records its bindings and lets the test drive status and changes. */
export class FakeChannel implements ChannelLike {
  bindings: { filter: { event: string; schema: string; table: string }; handler: (p: ChangePayload) => void }[] = []
  statusCallback: ((status: string, err?: Error) => void) | null = null
  constructor(readonly name: string) {}
  on(_type: 'postgres_changes', filter: { event: '*' | 'INSERT'; schema: string; table: string }, handler: (p: ChangePayload) => void) {
    this.bindings.push({ filter, handler })
    return this
  }
  subscribe(cb: (status: string, err?: Error) => void) {
    this.statusCallback = cb
    return this
  }
  status(s: string, err?: Error) {
    this.statusCallback?.(s, err)
  }
  emit(table: string, p: Omit<ChangePayload, 'table'>) {
    for (const b of this.bindings) if (b.filter.table === table) b.handler({ table, ...p })
  }
}

export function fakeSource(fetchSnapshot: LiveSource['fetchSnapshot']) {
  const channels: FakeChannel[] = []
  const removed: FakeChannel[] = []
  const source: LiveSource = {
    fetchSnapshot,
    channel: (name) => {
      const c = new FakeChannel(name)
      channels.push(c)
      return c
    },
    removeChannel: (c) => {
      removed.push(c as FakeChannel)
      return Promise.resolve('ok')
    },
  }
  return { source, channels, removed }
}

/** A VigilApi whose every call succeeds unless the test says otherwise. */
export function fakeApi(over: Partial<VigilApi> = {}): VigilApi {
  const ok = () => Promise.resolve({ ok: true as const })
  return {
    snapshot: vi.fn(() => Promise.reject(new Error('not used'))),
    trends: vi.fn((w) => Promise.resolve({ window: w, bucket_seconds: 60, points: [] })),
    timeline: vi.fn(() => Promise.resolve([])),
    acknowledge: vi.fn(ok),
    setKillSwitch: vi.fn(ok),
    setDryRun: vi.fn(ok),
    setServiceHealing: vi.fn(ok),
    decideApproval: vi.fn(ok),
    ...over,
  }
}
