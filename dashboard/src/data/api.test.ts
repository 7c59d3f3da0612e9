import { describe, expect, it, vi } from 'vitest'
import { ApiError, classifyError, createVigilApi, NOT_OPERATOR, normaliseTimeline } from './api'
import type { VigilClient } from './client'

/** Records a PostgREST query chain and answers with the given result. */
function fakeClient(result: { data: unknown; error: unknown; status: number }) {
  const calls: [string, ...unknown[]][] = []
  const chain: Record<string, unknown> = {}
  for (const m of ['update', 'eq', 'is', 'select']) {
    chain[m] = (...args: unknown[]) => {
      calls.push([m, ...args])
      return chain
    }
  }
  chain.then = (resolve: (v: unknown) => unknown, reject: (e: unknown) => unknown) => Promise.resolve(result).then(resolve, reject)
  const client = {
    from: (table: string) => {
      calls.push(['from', table])
      return chain
    },
    rpc: vi.fn((..._args: unknown[]) => Promise.resolve(result)),
  }
  return { client: client as unknown as VigilClient, calls, rpc: client.rpc }
}

describe('actions', () => {
  it('acknowledges with one conditional update and confirms the row changed', async () => {
    const { client, calls } = fakeClient({ data: [{ id: 7 }], error: null, status: 200 })
    expect(await createVigilApi(client).acknowledge(7)).toEqual({ ok: true })
    expect(calls[0]).toEqual(['from', 'incidents'])
    expect(calls[1]![0]).toBe('update')
    expect(Object.keys(calls[1]![1] as object)).toEqual(['acknowledged_at'])
    expect(calls.slice(2)).toEqual([['eq', 'id', 7], ['is', 'acknowledged_at', null], ['select', 'id']])
  })

  it('says "Already acknowledged" / "Already decided" when no row changed', async () => {
    const { client } = fakeClient({ data: [], error: null, status: 200 })
    const api = createVigilApi(client)
    expect(await api.acknowledge(7)).toEqual({ ok: false, error: 'Already acknowledged' })
    expect(await api.decideApproval('a1', 'approved')).toEqual({ ok: false, error: 'Already decided' })
    expect(await api.setKillSwitch('prod', true)).toEqual({ ok: false, error: NOT_OPERATOR })
  })

  it('writes the switches to the right rows', async () => {
    const { client, calls } = fakeClient({ data: [{}], error: null, status: 200 })
    const api = createVigilApi(client)
    await api.setKillSwitch('prod', true)
    await api.setDryRun('qa', false)
    await api.setServiceHealing('s1', false)
    await api.decideApproval('a1', 'rejected')
    const updates = calls.filter((c) => c[0] === 'from' || c[0] === 'update' || c[0] === 'eq')
    expect(updates).toEqual([
      ['from', 'settings'], ['update', { kill_switch: true }], ['eq', 'environment', 'prod'],
      ['from', 'settings'], ['update', { dry_run: false }], ['eq', 'environment', 'qa'],
      ['from', 'services'], ['update', { heal_enabled: false }], ['eq', 'id', 's1'],
      ['from', 'heal_approvals'], ['update', { decision: 'rejected' }], ['eq', 'action_id', 'a1'],
    ])
  })

  it('turns permission errors into a sentence', async () => {
    const { client } = fakeClient({ data: null, error: { code: '42501', message: 'permission denied for table settings' }, status: 403 })
    expect(await createVigilApi(client).setDryRun('prod', true)).toEqual({ ok: false, error: NOT_OPERATOR })
  })
})

describe('reads', () => {
  it('calls the three rpcs with their arguments', async () => {
    const { client, rpc } = fakeClient({ data: [], error: null, status: 200 })
    const api = createVigilApi(client)
    await api.trends('24h')
    await api.timeline(12)
    expect(rpc.mock.calls).toEqual([
      ['performance_trends', { p_window: '24h' }],
      ['incident_timeline', { p_incident_id: 12 }],
    ])
  })

  it('throws typed errors: server, session, network', async () => {
    await expect(createVigilApi(fakeClient({ data: null, error: { message: 'boom' }, status: 500 }).client).snapshot()).rejects.toMatchObject({
      kind: 'server',
      message: 'Could not load the dashboard: boom',
    })
    await expect(createVigilApi(fakeClient({ data: null, error: { message: 'JWT expired', code: 'PGRST303' }, status: 401 }).client).snapshot()).rejects.toBeInstanceOf(ApiError)
    expect(classifyError({ message: 'JWT expired' }, 401)).toBe('auth')
    expect(classifyError({ message: 'TypeError: Failed to fetch' }, 0)).toBe('network')
    expect(classifyError({ message: 'x' }, 500)).toBe('server')
  })

  it('normalises timeline rows from either column naming', () => {
    expect(normaliseTimeline([{ at: 't', source: 'heal', what: 'did it', detail: { a: 1 } }, { at: 'u', kind: 'alert', summary: 'sent' }])).toEqual([
      { at: 't', kind: 'heal', summary: 'did it', detail: { a: 1 } },
      { at: 'u', kind: 'alert', summary: 'sent', detail: null },
    ])
    expect(normaliseTimeline(null)).toEqual([])
  })
})
