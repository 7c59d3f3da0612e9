// The local Realtime stand-in, driven by the real supabase-js: typed postgres_changes by event and
// filter, Supabase's rights (JWT, publication, SELECT, RLS), token refresh and expiry, reconnects,
// a restarted change feed, and malformed frames.
import assert from 'node:assert/strict'
import { createClient, type RealtimeChannel, type SupabaseClient } from '@supabase/supabase-js'
import { LOCAL_JWT_SECRET } from '../../devstack/config.ts'
import { localKeys, signJwt } from '../../devstack/jwt.ts'
import { type Realtime, startRealtime } from '../../devstack/realtime.ts'
import { eventually, testSql, testStack } from '../_env.ts'

type Change = {
  eventType: string
  new: Record<string, unknown>
  old: Record<string, unknown>
  schema: string
  table: string
  commit_timestamp: string
}

interface Sub {
  channel: RealtimeChannel
  changes: Change[]
  statuses: string[]
  errors: string[]
  system: Record<string, unknown>[]
}

const RUN = crypto.randomUUID().slice(0, 8)
const name = (suffix: string) => `rt-${RUN}-${suffix}`
const now = () => Math.floor(Date.now() / 1000)

function operatorClaims(exp = now() + 600) {
  return {
    role: 'authenticated',
    sub: crypto.randomUUID(),
    email: 'operator@example.com',
    app_metadata: { role: 'devops' },
    exp,
  }
}

Deno.test({
  name: 'the Realtime stand-in serves postgres_changes to supabase-js with Supabase rights',
  // supabase-js keeps reconnect and heartbeat timers of its own after disconnect.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const sql = testSql(3)
    const logs: string[] = []
    const applicationName = `vigil_rt_test_${RUN}`
    const rt: Realtime = await startRealtime({
      dbUrl: testStack().dbUrl,
      jwtSecret: LOCAL_JWT_SECRET,
      pollIntervalMs: 50,
      applicationName,
      log: (line) => logs.push(line),
    })
    const server = Deno.serve(
      { port: 0, hostname: '127.0.0.1', onListen() {} },
      (req) =>
        new URL(req.url).pathname.startsWith('/realtime/v1/')
          ? rt.handle(req)
          : new Response('not found', { status: 404 }),
    )
    const base = `http://127.0.0.1:${server.addr.port}`
    const { anon, service_role } = await localKeys(LOCAL_JWT_SECRET)
    const clients: SupabaseClient[] = []

    // Waits for the first token: a channel joined before it would join with the apikey (anon).
    async function connect(token: () => string, vsn = '2.0.0'): Promise<SupabaseClient> {
      const client = createClient(base, anon, {
        accessToken: () => Promise.resolve(token()),
        realtime: { vsn },
      })
      clients.push(client)
      await client.realtime.setAuth()
      return client
    }

    function subscribe(
      client: SupabaseClient,
      topic: string,
      bindings: { event: '*' | 'INSERT' | 'UPDATE' | 'DELETE'; table: string; filter?: string }[],
    ): Sub[] {
      const channel = client.channel(topic)
      const statuses: string[] = []
      const errors: string[] = []
      const system: Record<string, unknown>[] = []
      const subs = bindings.map(() => ({
        channel,
        changes: [] as Change[],
        statuses,
        errors,
        system,
      }))
      bindings.forEach((b, i) => {
        channel.on(
          'postgres_changes' as never,
          { event: b.event, schema: 'vigil', table: b.table, filter: b.filter } as never,
          ((payload: Change) => subs[i].changes.push(payload)) as never,
        )
      })
      channel.on('system', {}, (payload) => system.push(payload))
      channel.subscribe((status, error) => {
        statuses.push(status)
        if (error) errors.push(error.message)
      })
      return subs
    }

    const subscribed = (s: Sub, times = 1) =>
      eventually(
        () => s.statuses.filter((x) => x === 'SUBSCRIBED').length >= times || undefined,
        10_000,
        'SUBSCRIBED',
      )
    const refused = (s: Sub) => eventually(() => s.errors[0], 10_000, 'a refused subscription')

    async function insertService(suffix: string, dependsOn: string[] | null = null) {
      const [row] = await sql<{ id: string }[]>`
        insert into vigil.services (name, kind, environment, config, enabled, timeout_ms, depends_on)
        values (${name(suffix)}, 'http', 'prod', ${sql.json({ url: 'http://127.0.0.1:9/health' })},
                false, 5000, ${dependsOn})
        returning id`
      return row.id
    }

    try {
      await t.step(
        'an operator gets INSERT, UPDATE and DELETE, typed, by event and filter',
        async () => {
          const operatorToken = await signJwt(operatorClaims(), LOCAL_JWT_SECRET)
          const operator = await connect(() => operatorToken)
          const nonOperatorToken = await signJwt(
            { ...operatorClaims(), app_metadata: { role: 'viewer' } },
            LOCAL_JWT_SECRET,
          )
          const [all, onlyA, updates, slow, listed] = subscribe(operator, 'ops', [
            { event: '*', table: 'services' },
            { event: '*', table: 'services', filter: `name=eq.${name('a')}` },
            { event: 'UPDATE', table: 'services' },
            { event: '*', table: 'services', filter: 'timeout_ms=gt.6000' },
            { event: 'INSERT', table: 'services', filter: `name=in.(nobody,${name('b')})` },
          ])
          const [v1] = subscribe(await connect(() => operatorToken, '1.0.0'), 'ops-v1', [
            { event: '*', table: 'services' },
          ])
          const [others] = subscribe(await connect(() => nonOperatorToken), 'viewer', [
            { event: '*', table: 'services' },
          ])
          const [service] = subscribe(await connect(() => service_role), 'service', [
            { event: 'INSERT', table: 'services' },
          ])
          await Promise.all([
            subscribed(all),
            subscribed(others),
            subscribed(service),
            subscribed(v1),
          ])
          assert.ok(
            all.system.some((m) =>
              m.extension === 'postgres_changes' && m.status === 'ok' &&
              m.message === 'Subscribed to PostgreSQL'
            ),
            'the system message Supabase sends after subscribing',
          )

          // The stack's own jobs may touch other services meanwhile: only this test's rows count.
          const ours = new Set<string>()
          const mine = (changes: typeof all.changes) =>
            changes.filter((c) => ours.has(String(c.new.id ?? c.old.id)))
          // RLS is checked against the live row, as Supabase does: a row deleted before the feed
          // reads its insert is never shown. So each step waits for the one before.
          const seen = (n: number) =>
            eventually(() => mine(all.changes).length >= n || undefined, 10_000, `${n} changes`)
          const a = await insertService('a')
          ours.add(a)
          const b = await insertService('b', [name('a')])
          ours.add(b)
          await seen(2)
          await sql`update vigil.services set description = 'updated', timeout_ms = 7000 where id = ${a}`
          await seen(3)
          await sql`delete from vigil.services where id = ${b}`
          await sql`delete from vigil.services where id = ${a}`
          await seen(5)
          await new Promise((r) => setTimeout(r, 300)) // and nothing more arrives
          for (const sub of [all, updates, slow, listed, v1, others, service]) {
            sub.changes = mine(sub.changes)
          }
          assert.deepEqual(
            all.changes.map((c) => [c.eventType, c.new.id ?? c.old.id]),
            [['INSERT', a], ['INSERT', b], ['UPDATE', a], ['DELETE', b], ['DELETE', a]],
          )
          const inserted = all.changes[1]
          assert.equal(inserted.schema, 'vigil')
          assert.equal(inserted.table, 'services')
          assert.ok(!Number.isNaN(Date.parse(inserted.commit_timestamp)))
          assert.equal(inserted.new.name, name('b'))
          assert.equal(inserted.new.enabled, false, 'booleans')
          assert.equal(inserted.new.timeout_ms, 5000, 'numbers')
          assert.equal(inserted.new.failure_threshold, 3)
          assert.deepEqual(inserted.new.config, { url: 'http://127.0.0.1:9/health' }, 'jsonb')
          assert.deepEqual(inserted.new.depends_on, [name('a')], 'arrays')
          assert.equal(inserted.new.description, null)
          assert.equal(inserted.new.kind, 'http')
          assert.match(String(inserted.new.created_at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/)
          assert.ok(!Number.isNaN(Date.parse(String(inserted.new.created_at))), 'ISO timestamps')
          const updated = all.changes[2]
          assert.equal(updated.new.description, 'updated')
          assert.equal(updated.new.timeout_ms, 7000)
          assert.deepEqual(updated.old, { id: a }, 'the old row by its primary key')
          assert.deepEqual([all.changes[4].new, all.changes[4].old], [{}, { id: a }])

          assert.deepEqual(
            onlyA.changes.map((c) => [c.eventType, c.new.name]),
            [['INSERT', name('a')], ['UPDATE', name('a')]],
            'the eq filter (a DELETE carries only the key, so a filter on name cannot match it)',
          )
          assert.deepEqual(updates.changes.map((c) => c.eventType), ['UPDATE'], 'the event')
          assert.deepEqual(slow.changes.map((c) => [c.eventType, c.new.id]), [['UPDATE', a]], 'gt')
          assert.deepEqual(listed.changes.map((c) => c.new.id), [b], 'in')
          assert.deepEqual(v1.changes, all.changes, 'the same over vsn 1.0.0')
          assert.deepEqual(
            service.changes.map((c) => c.new.id),
            [a, b],
            'service_role sees every row',
          )
          assert.deepEqual(
            others.changes.map((c) => c.eventType),
            ['DELETE', 'DELETE'],
            'RLS hides inserts and updates from a non-operator; deletes are not RLS-checked',
          )
          for (const c of clients.splice(0)) await c.removeAllChannels()
        },
      )

      await t.step('subscriptions without the rights are refused with a reason', async () => {
        const operatorToken = await signJwt(operatorClaims(), LOCAL_JWT_SECRET)
        const expired = await signJwt(operatorClaims(now() - 30), LOCAL_JWT_SECRET)
        const postgresRole = await signJwt({ role: 'postgres', exp: now() + 600 }, LOCAL_JWT_SECRET)
        const forged = await signJwt(operatorClaims(), 'another-secret-with-at-least-32-characters')
        const cases: [string, () => string, string, string | undefined, RegExp][] = [
          ['anon', () => anon, 'services', undefined, /anon may not read table vigil\.services/],
          [
            'unpublished',
            () => operatorToken,
            'metrics',
            undefined,
            /vigil\.metrics is not in the supabase_realtime publication/,
          ],
          [
            'missing',
            () => operatorToken,
            'no_such_table',
            undefined,
            /vigil\.no_such_table does not exist/,
          ],
          ['expired', () => expired, 'services', undefined, /Token has expired \d+ seconds ago/],
          ['postgres', () => postgresRole, 'services', undefined, /role postgres is not one of/],
          ['forged', () => forged, 'services', undefined, /Failed to validate JWT signature/],
          [
            'column',
            () => operatorToken,
            'services',
            'nope=eq.1',
            /filter "nope=eq\.1".*no column nope/,
          ],
          [
            'value',
            () => operatorToken,
            'services',
            'timeout_ms=gt.soon',
            /timeout_ms=gt\.soon.*not a valid integer/,
          ],
          [
            'operator',
            () => operatorToken,
            'services',
            'name=like.a%',
            /operator like is not one of/,
          ],
          ['combined', () => operatorToken, 'services', 'name=eq.a,timeout_ms=gt.1', /combining/],
        ]
        const subs: Sub[] = []
        for (const [topic, token, table, filter] of cases) {
          subs.push(
            subscribe(await connect(token), `refused-${topic}`, [{ event: '*', table, filter }])[0],
          )
        }
        for (const [i, sub] of subs.entries()) {
          const reason = await refused(sub)
          assert.equal(sub.statuses[0], 'CHANNEL_ERROR', cases[i][0])
          assert.match(reason, cases[i][4], cases[i][0])
        }
        assert.ok(subs.every((s) => !s.statuses.includes('SUBSCRIBED')))
        for (const c of clients.splice(0)) await c.removeAllChannels()
      })

      await t.step(
        'a refreshed token keeps a channel; an expired one closes it with a reason',
        async () => {
          let refreshed = await signJwt(operatorClaims(now() + 3), LOCAL_JWT_SECRET)
          const shortLived = await signJwt(operatorClaims(now() + 2), LOCAL_JWT_SECRET)
          const refresher = await connect(() => refreshed)
          const [kept] = subscribe(refresher, 'kept', [{ event: 'INSERT', table: 'services' }])
          const [lapsed] = subscribe(await connect(() => shortLived), 'lapsed', [
            { event: 'INSERT', table: 'services' },
          ])
          let swapped = await signJwt(operatorClaims(), LOCAL_JWT_SECRET)
          const swapper = await connect(() => swapped)
          const [forged] = subscribe(swapper, 'forged', [{ event: 'INSERT', table: 'services' }])
          await Promise.all([subscribed(kept), subscribed(lapsed), subscribed(forged)])
          refreshed = await signJwt(operatorClaims(now() + 600), LOCAL_JWT_SECRET)
          await refresher.realtime.setAuth()
          swapped = await signJwt(operatorClaims(), 'another-secret-with-at-least-32-characters')
          await swapper.realtime.setAuth()
          const rejected = await eventually(
            () => forged.system.find((m) => m.status === 'error'),
            10_000,
            'the rejected refresh',
          )
          assert.equal(rejected.message, 'Failed to validate JWT signature')
          await eventually(() => forged.statuses.includes('CLOSED') || undefined, 5_000, 'CLOSED')
          const closed = await eventually(
            () => lapsed.system.find((m) => m.status === 'error'),
            10_000,
            'the expiry notice',
          )
          assert.equal(closed.extension, 'system')
          assert.match(String(closed.message), /^Token has expired \d+ seconds ago$/)
          await eventually(() => lapsed.statuses.includes('CLOSED') || undefined, 5_000, 'CLOSED')
          await new Promise((r) => setTimeout(r, 1_500)) // past the first token's expiry too
          const id = await insertService('refresh')
          await eventually(() => kept.changes.find((c) => c.new.id === id), 10_000, 'the insert')
          assert.deepEqual(kept.statuses, ['SUBSCRIBED'], 'the refreshed channel stayed joined')
          assert.equal(lapsed.changes.length, 0)
          assert.equal(forged.changes.length, 0)
          for (const c of clients.splice(0)) await c.removeAllChannels()
        },
      )

      await t.step('after the server drops every socket the client rejoins by itself', async () => {
        const token = await signJwt(operatorClaims(), LOCAL_JWT_SECRET)
        const [sub] = subscribe(await connect(() => token), 'reconnect', [
          { event: 'INSERT', table: 'services' },
        ])
        await subscribed(sub)
        assert.ok(rt.dropAll() >= 1)
        await subscribed(sub, 2)
        const between = sub.statuses.slice(1, sub.statuses.lastIndexOf('SUBSCRIBED'))
        assert.ok(
          between.length && between.every((s) => s === 'CHANNEL_ERROR' || s === 'CLOSED'),
          `statuses ${sub.statuses.join(' → ')}`,
        )
        const id = await insertService('reconnect')
        await eventually(() => sub.changes.find((c) => c.new.id === id), 10_000, 'the insert')
        for (const c of clients.splice(0)) await c.removeAllChannels()
      })

      await t.step(
        'when Postgres ends its sessions the feed restarts and subscribers stay',
        async () => {
          const token = await signJwt(operatorClaims(), LOCAL_JWT_SECRET)
          const [sub] = subscribe(await connect(() => token), 'restart', [
            { event: 'INSERT', table: 'services' },
          ])
          await subscribed(sub)
          const [{ n }] = await sql<{ n: number }[]>`
          select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
          where application_name in (${`${applicationName} feed`}, ${`${applicationName} checks`})`
          assert.equal(n, 2)
          await eventually(
            () => logs.some((l) => l.includes('change feed restarted')) || undefined,
            10_000,
            'the restart',
          )
          const id = await insertService('restart')
          await eventually(() => sub.changes.find((c) => c.new.id === id), 10_000, 'the insert')
          assert.deepEqual(sub.statuses, ['SUBSCRIBED'])
          for (const c of clients.splice(0)) await c.removeAllChannels()
        },
      )

      await t.step('malformed frames and plain requests do not hurt the server', async () => {
        const plain = await fetch(`${base}/realtime/v1/websocket?apikey=${anon}&vsn=2.0.0`)
        assert.equal(plain.status, 426)
        assert.match((await plain.json()).message, /WebSocket/)

        for (const vsn of ['2.0.0', '1.0.0']) {
          const ws = new WebSocket(
            `ws://127.0.0.1:${server.addr.port}/realtime/v1/websocket?apikey=${anon}&vsn=${vsn}`,
          )
          const frames: unknown[] = []
          ws.onmessage = (e) => frames.push(JSON.parse(e.data))
          await new Promise((resolve, reject) => {
            ws.onopen = resolve
            ws.onerror = reject
          })
          for (const junk of ['not json', '[1,2]', '{"a":1}', 'null', '[null,null,5,6,7]']) {
            ws.send(junk)
          }
          ws.send(new Uint8Array([1, 2, 3]))
          ws.send('[null,"7","realtime:junk","phx_join","not an object"]')
          const heartbeat = vsn === '2.0.0'
            ? '[null,"8","phoenix","heartbeat",{}]'
            : '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"8"}'
          ws.send(heartbeat)
          const reply = await eventually(
            () =>
              frames.find((f) =>
                vsn === '2.0.0'
                  ? Array.isArray(f) && f[1] === '8'
                  : (f as { ref?: string }).ref === '8'
              ),
            5_000,
            'the heartbeat reply',
          )
          assert.deepEqual(
            reply,
            vsn === '2.0.0'
              ? [null, '8', 'phoenix', 'phx_reply', { status: 'ok', response: {} }]
              : {
                topic: 'phoenix',
                event: 'phx_reply',
                payload: { status: 'ok', response: {} },
                ref: '8',
                join_ref: null,
              },
          )
          const closed = new Promise((r) => ws.onclose = r)
          ws.close()
          await closed
        }
        const refused = new WebSocket(
          `ws://127.0.0.1:${server.addr.port}/realtime/v1/websocket?apikey=garbage&vsn=2.0.0`,
        )
        const code = await new Promise((r) => refused.onclose = (e) => r(e.code))
        assert.equal(code, 4001, 'a socket whose apikey is not a valid JWT is closed')
        await eventually(() => rt.clients() === 0 || undefined, 5_000, 'sockets gone')
      })
    } finally {
      for (const c of clients) await c.removeAllChannels().catch(() => {})
      await sql`delete from vigil.services where name like ${`rt-${RUN}-%`}`
      await rt.stop()
      await server.shutdown()
      const [left] = await sql<{ sessions: number; rows: number }[]>`
        select (select count(*)::int from pg_stat_activity
                 where application_name like ${`${applicationName} %`})
                 as sessions,
               (select count(*)::int from vigil.services where name like ${`rt-${RUN}-%`}) as rows`
      await sql.end()
      assert.deepEqual(left, { sessions: 0, rows: 0 }, 'no feed session (and slot) nor rows left')
    }
  },
})
