// The three stand-ins together behind the running stack's gateway, as the dashboard uses them: the
// operator signs in (/auth/v1), subscribes (/realtime/v1), changes a control (/rest/v1) and sees
// the change arrive live; a development drop of the Realtime sockets is survived without a reload.
import assert from 'node:assert/strict'
import { createClient, type RealtimeChannel } from '@supabase/supabase-js'
import { DEV_OPERATOR } from '../../devstack/config.ts'
import { eventually, testSql, testStack } from '../_env.ts'

Deno.test({
  name: 'sign in, subscribe and change a control through the gateway; a dropped socket comes back',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { apiUrl, anonKey, serviceRoleKey } = testStack()
    const sql = testSql()
    const name = `stand-ins-${crypto.randomUUID().slice(0, 8)}`
    const client = createClient(apiUrl, anonKey, {
      db: { schema: 'vigil' },
      auth: { persistSession: false, autoRefreshToken: false },
    })
    let channel: RealtimeChannel | null = null
    try {
      const [{ id }] = await sql<{ id: string }[]>`
        insert into vigil.services (name, kind, environment, config, enabled)
        values (${name}, 'http', 'dev', '{"url": "http://127.0.0.1:9/"}', false) returning id`
      const { data: signedIn, error } = await client.auth.signInWithPassword({
        email: DEV_OPERATOR.email,
        password: DEV_OPERATOR.password,
      })
      assert.equal(error, null)
      await client.realtime.setAuth(signedIn.session!.access_token)

      const statuses: string[] = []
      const seen: { heal_enabled: boolean }[] = []
      channel = client.channel('stand-ins-test')
        .on(
          'postgres_changes',
          { event: 'UPDATE', schema: 'vigil', table: 'services', filter: `name=eq.${name}` },
          (payload) => seen.push(payload.new as { heal_enabled: boolean }),
        )
        .subscribe((status) => statuses.push(status))
      await eventually(() => statuses.includes('SUBSCRIBED') || undefined, 10_000, 'SUBSCRIBED')

      const updated = await client.from('services').update({ heal_enabled: false }).eq('id', id)
        .select('heal_enabled')
      assert.equal(updated.error, null)
      assert.deepEqual(updated.data, [{ heal_enabled: false }])
      await eventually(() => seen.length >= 1 || undefined, 10_000, 'the change, live')
      assert.equal(seen[0].heal_enabled, false)
      const [change] = await sql`
        select actor_name from vigil.control_changes
         where target = ${`service:${name}`} and field = 'heal_enabled' order by id desc limit 1`
      assert.equal(change.actor_name, DEV_OPERATOR.email, 'recorded with the operator’s identity')

      // The development drop: only with the service role key; then sockets close and come back.
      const drop = (key: string) =>
        fetch(`${apiUrl}/realtime/v1/api/drop`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ refuse_ms: 1500 }),
        })
      const refused = await drop(anonKey)
      assert.equal(refused.status, 401)
      await refused.body?.cancel()
      const dropped = await drop(serviceRoleKey)
      assert.equal(dropped.status, 200)
      assert.ok((await dropped.json()).dropped >= 1)
      await eventually(
        () => statuses.lastIndexOf('SUBSCRIBED') < statuses.length - 1 || undefined,
        10_000,
        'the channel to notice',
      )
      await eventually(
        () => statuses.at(-1) === 'SUBSCRIBED' || undefined,
        20_000,
        'the channel to rejoin',
      )
      await client.from('services').update({ heal_enabled: true }).eq('id', id)
      await eventually(() => seen.length >= 2 || undefined, 10_000, 'a change after the rejoin')
      assert.equal(seen[1].heal_enabled, true)
    } finally {
      if (channel) await client.removeChannel(channel)
      await client.auth.signOut().catch(() => {})
      client.realtime.disconnect()
      await sql`delete from vigil.services where name = ${name}`
      await sql.end()
    }
  },
})
