// Sharded cycles end to end: the real health-check function through the gateway fans a cycle out
// into shard invocations of itself, each recording its own cycle; a shard that fails is recorded
// and sent again without losing the others' results; a late or repeated shard records once; bad
// shard requests are refused by name; the watchdog closes a run whose coordinator died.
import assert from 'node:assert/strict'
import { testSql, testStack, withCronPaused } from '../_env.ts'
import {
  runShardedCycle,
  type ShardRequest,
} from '../../supabase/functions/_shared/health/shards.ts'

type Sql = ReturnType<typeof testSql>

async function postHealthCheck(body: unknown, signal?: AbortSignal): Promise<Response> {
  const { apiUrl, serviceRoleKey } = testStack()
  return await fetch(`${apiUrl}/functions/v1/health-check`, {
    method: 'POST',
    headers: { authorization: `Bearer ${serviceRoleKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  })
}

/** Services named <prefix>-1 … <prefix>-<count> probing the local target; removed afterwards. */
async function withServices<T>(
  prefix: string,
  count: number,
  fn: (sql: Sql, names: string[], ids: Map<string, string>) => Promise<T>,
): Promise<T> {
  const target = Deno.serve(
    { hostname: '127.0.0.1', port: 0, onListen() {} },
    () => new Response('{"ok":true}', { headers: { 'content-type': 'application/json' } }),
  )
  const sql = testSql(4)
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}`)
  try {
    return await withCronPaused(sql, ['vigil-health-check', 'vigil-watchdog'], async () => {
      const rows = await sql<{ id: string; name: string }[]>`
        insert into vigil.services ${
        sql(names.map((name) => ({
          name,
          kind: 'http',
          timeout_ms: 2000,
          config: sql.json({ url: `http://127.0.0.1:${target.addr.port}/health` }),
        })))
      } returning id, name`
      return await fn(sql, names, new Map(rows.map((r) => [r.name, r.id])))
    })
  } finally {
    await sql`delete from vigil.services where name like ${prefix + '-%'}`
    await sql.end()
    await target.shutdown()
  }
}

/** The checks each service got, by name. */
async function checksPerService(sql: Sql, names: string[]): Promise<Record<string, number>> {
  const rows = await sql<{ name: string; n: number }[]>`
    select s.name, count(c.id)::int as n from vigil.services s
      left join vigil.checks c on c.service_id = s.id
     where s.name in ${sql(names)} group by s.name`
  return Object.fromEntries(rows.map((r) => [r.name, r.n]))
}

/** A trigger that fails the recording of one service's check: the first `times`, or always. */
async function withPlantedFailure<T>(
  sql: Sql,
  serviceId: string,
  times: number,
  fn: () => Promise<T>,
): Promise<T> {
  await sql`create sequence if not exists public.vigil_test_planted_failures`
  await sql`select setval('public.vigil_test_planted_failures', 1, false)`
  await sql.unsafe(`
    create or replace function public.vigil_test_planted_failure() returns trigger
    language plpgsql security definer set search_path = '' as $$
    begin
      if new.service_id = '${serviceId}' and nextval('public.vigil_test_planted_failures') <= ${times} then
        raise exception 'planted failure' using errcode = 'P0001';
      end if;
      return new;
    end $$`)
  await sql`create trigger vigil_test_planted_failure before insert on vigil.checks
              for each row execute function public.vigil_test_planted_failure()`
  try {
    return await fn()
  } finally {
    await sql`drop trigger if exists vigil_test_planted_failure on vigil.checks`
    await sql`drop function if exists public.vigil_test_planted_failure()`
    await sql`drop sequence if exists public.vigil_test_planted_failures`
  }
}

Deno.test('a cycle over more services than shard_size fans out into shards, each recording its own cycle', async () => {
  await withServices('shards-fan', 7, async (sql, names) => {
    const res = await postHealthCheck({ services: names, shard_size: 3 })
    const report = await res.json()
    assert.equal(res.status, 200, JSON.stringify(report))
    assert.equal(report.status, 'ok')
    assert.deepEqual(
      report.shards.map((
        s: Record<string, unknown>,
      ) => [s.shard, s.services, s.status, s.attempts]),
      [[0, 3, 'ok', 1], [1, 3, 'ok', 1], [2, 1, 'ok', 1]],
    )
    assert.deepEqual([report.services, report.healthy, report.down], [7, 7, 0])
    if (report.deadman !== null) assert.match(report.deadman, /^ok /)

    const [run] = await sql`select status, shards, services, shard_size, closed_by, summary
                              from vigil.cycle_runs where id = ${report.run_id}`
    assert.deepEqual(
      [run.status, run.shards, run.services, run.shard_size, run.closed_by],
      ['ok', 3, 7, 3, 'health-check'],
    )
    assert.equal(run.summary.healthy, 7)
    const shards = await sql`
      select sh.shard, sh.status, sh.attempts, c.services, c.shard as cycle_shard
        from vigil.cycle_shards sh join vigil.cycles c on c.id = sh.cycle_id
       where sh.run_id = ${report.run_id} order by sh.shard`
    assert.deepEqual(
      shards.map((s) => [s.shard, s.status, s.attempts, s.services, s.cycle_shard]),
      [[0, 'ok', 1, 3, 0], [1, 'ok', 1, 3, 1], [2, 'ok', 1, 1, 2]],
    )
    // The shards are cut in the cycle's order (by name), and every service is checked once.
    const [first] = await sql`
      select array(select s.name from vigil.services s
                    where s.id in (select jsonb_array_elements_text(sh.service_ids)::uuid)
                    order by s.name) as names
        from vigil.cycle_shards sh where sh.run_id = ${report.run_id} and sh.shard = 0`
    assert.deepEqual(first.names, names.slice(0, 3))
    assert.deepEqual(Object.values(await checksPerService(sql, names)), [1, 1, 1, 1, 1, 1, 1])
  })
})

Deno.test('a cycle within the shard size runs in one invocation, as before', async () => {
  await withServices('shards-small', 3, async (sql, names) => {
    const res = await postHealthCheck({ services: names, shard_size: 3 })
    const report = await res.json()
    assert.equal(res.status, 200, JSON.stringify(report))
    assert.equal(report.run_id, undefined)
    assert.equal(report.services, 3)
    const [cycle] =
      await sql`select run_id, services from vigil.cycles where id = ${report.cycle_id}`
    assert.deepEqual([cycle.run_id, cycle.services], [null, 3])
  })
})

Deno.test('a shard whose recording fails once is sent again and recorded; the others are kept', async () => {
  await withServices('shards-retry', 7, async (sql, names, ids) => {
    await withPlantedFailure(sql, ids.get(names[4])!, 1, async () => {
      const res = await postHealthCheck({ services: names, shard_size: 3 })
      const report = await res.json()
      assert.equal(res.status, 200, JSON.stringify(report))
      assert.equal(report.status, 'ok')
      assert.deepEqual(
        report.shards.map((s: Record<string, unknown>) => [s.shard, s.status, s.attempts]),
        [[0, 'ok', 1], [1, 'ok', 2], [2, 'ok', 1]],
      )
    })
    assert.deepEqual(Object.values(await checksPerService(sql, names)), [1, 1, 1, 1, 1, 1, 1])
  })
})

Deno.test('a shard that keeps failing is recorded as failed after its retry; the other shards land', async () => {
  await withServices('shards-lost', 7, async (sql, names, ids) => {
    // Its degraded check on vigil-health-check is proven in pgTAP (104_cycle_shards), in a
    // transaction: here it would open a real incident on the test stack.
    await sql`update vigil.services set enabled = false where name = 'vigil-health-check'`
    try {
      await withPlantedFailure(sql, ids.get(names[4])!, 1000, async () => {
        const res = await postHealthCheck({ services: names, shard_size: 3 })
        const report = await res.json()
        assert.equal(res.status, 200, JSON.stringify(report))
        assert.equal(report.status, 'partial')
        const lost = report.shards[1]
        assert.deepEqual([lost.status, lost.attempts], ['failed', 2])
        assert.match(lost.error, /^attempt 2: HTTP 500: the cycle could not be recorded \(P0001\)/)
        assert.ok(!lost.error.includes(testStack().serviceRoleKey))
        // The dead man's switch hears of the lost shard once, for the whole run.
        if (report.deadman !== null) assert.match(report.deadman, /^fail /)
        const [run] =
          await sql`select status, summary from vigil.cycle_runs where id = ${report.run_id}`
        assert.equal(run.status, 'partial')
        assert.deepEqual(run.summary.lost_shards.map((l: Record<string, unknown>) => l.shard), [1])
        const [row] = await sql`select status, attempts, error from vigil.cycle_shards
                                 where run_id = ${report.run_id} and shard = 1`
        assert.deepEqual([row.status, row.attempts], ['failed', 2])
      })
    } finally {
      await sql`update vigil.services set enabled = true where name = 'vigil-health-check'`
    }
    // Shards 0 and 2 recorded; shard 1 (services 4-6) recorded nothing, not even in part.
    assert.deepEqual(await checksPerService(sql, names), {
      [names[0]]: 1,
      [names[1]]: 1,
      [names[2]]: 1,
      [names[3]]: 0,
      [names[4]]: 0,
      [names[5]]: 0,
      [names[6]]: 1,
    })
  })
})

Deno.test('a timed-out shard is sent again; a late answer or a repeat records nothing twice', async () => {
  await withServices('shards-late', 4, async (sql, names) => {
    const services = await sql<{ id: string; timeout_ms: number }[]>`
      select id, timeout_ms from vigil.services where name in ${sql(names)} order by name`
    const sent: ShardRequest[] = []
    const report = await runShardedCycle({
      sql,
      trigger: 'manual',
      services,
      shardSize: 2,
      shardDeadlineMs: 1000,
      dispatch: async (body, signal) => {
        sent.push(body)
        const attempt = sent.filter((b) => b.shard === body.shard).length
        if (attempt === 1) {
          // No answer within the deadline. Shard 0's invocation then answers late, before the
          // coordinator writes the time-out down; shard 1's never runs (the retry does).
          await new Promise((r) => signal.addEventListener('abort', r, { once: true }))
          if (body.shard === 0) await (await postHealthCheck(body)).body?.cancel()
          throw signal.reason
        }
        return await postHealthCheck(body, signal)
      },
    })
    assert.equal(report.status, 'ok')
    assert.deepEqual(
      report.shards.map((s) => [s.shard, s.status, s.attempts]),
      [[0, 'ok', 1], [1, 'ok', 2]],
    )
    // Shard 1's first request, arriving after its retry recorded: told so, nothing stored.
    const late = await postHealthCheck(sent.find((b) => b.shard === 1)!)
    const answer = await late.json()
    assert.equal(late.status, 200, JSON.stringify(answer))
    assert.equal(answer.duplicate, true)
    assert.deepEqual(Object.values(await checksPerService(sql, names)), [1, 1, 1, 1])
    const rows = await sql`select shard, status, attempts from vigil.cycle_shards
                            where run_id = ${report.run_id} order by shard`
    assert.deepEqual(rows.map((r) => [r.shard, r.status, r.attempts]), [[0, 'ok', 1], [1, 'ok', 2]])
  })
})

Deno.test('bad shard requests are refused by name, never a crash', async () => {
  const cases: [unknown, number, RegExp][] = [
    [{ shard_size: 0 }, 400, /^shard_size: /],
    [{ shard_size: 1001 }, 400, /^shard_size: /],
    [{ shard_size: 2.5 }, 400, /^shard_size: /],
    [
      {
        run_id: crypto.randomUUID(),
        shard: 0,
        service_ids: Array.from({ length: 1001 }, () => crypto.randomUUID()),
      },
      400,
      /^service_ids: /,
    ],
    [{ run_id: crypto.randomUUID(), shard: 0 }, 400, /^service_ids: /],
    [
      { run_id: crypto.randomUUID(), shard: 0, service_ids: ['not-a-uuid'] },
      400,
      /^service_ids\.0: /,
    ],
    [
      {
        run_id: crypto.randomUUID(),
        shard: 0,
        service_ids: [crypto.randomUUID()],
        shard_size: 5,
      },
      400,
      /^shard_size: /,
    ],
    [
      { run_id: crypto.randomUUID(), shard: 0, service_ids: [crypto.randomUUID()] },
      404,
      /no shard 0/,
    ],
  ]
  for (const [body, status, error] of cases) {
    const res = await postHealthCheck(body)
    const answer = await res.json()
    assert.equal(
      res.status,
      status,
      `${JSON.stringify(body).slice(0, 80)}: ${JSON.stringify(answer)}`,
    )
    assert.match(answer.error, error)
  }
})

/** A run planned as a coordinator would, of two shards of one service each; its id. */
async function planTwoShards(
  sql: ReturnType<typeof testSql>,
  trigger: 'cron' | 'manual',
  a: string,
  b: string,
): Promise<string> {
  const runId = crypto.randomUUID()
  await sql`select vigil.start_cycle_run(${
    sql.json({
      id: runId,
      trigger,
      shard_size: 1,
      deadline_ms: 60_000,
      shards: [{ service_ids: [a], deadline_ms: 10_000 }, {
        service_ids: [b],
        deadline_ms: 10_000,
      }],
    })
  })`
  return runId
}

Deno.test('a shard asked for other services than its run planned is refused', async () => {
  await withServices('shards-plan', 2, async (sql, _names, ids) => {
    const [a, b] = [...ids.values()]
    const runId = await planTwoShards(sql, 'manual', a, b)
    const res = await postHealthCheck({ run_id: runId, shard: 0, service_ids: [b] })
    assert.equal(res.status, 409)
    assert.match((await res.json()).error, /^service_ids: /)
    await sql`delete from vigil.cycle_runs where id = ${runId}`
  })
})

Deno.test('the watchdog closes a run whose coordinator died: the shard that never reported is missing', async () => {
  await withServices('shards-orphan', 2, async (sql, _names, ids) => {
    const [a, b] = [...ids.values()]
    const runId = await planTwoShards(sql, 'cron', a, b)
    // The coordinator sent shard 0 and died before shard 1.
    const res = await postHealthCheck({
      trigger: 'cron',
      run_id: runId,
      shard: 0,
      service_ids: [a],
    })
    assert.equal(res.status, 200, await res.clone().text())
    await res.body?.cancel()
    await sql`update vigil.cycle_runs set started_at = now() - interval '2 minutes',
                                          deadline_at = now() - interval '1 second' where id = ${runId}`
    // In a transaction rolled back: its degraded check on vigil-health-check stays out of the stack.
    const seen = await sql.begin(async (tx) => {
      const [{ written }] = await tx`select vigil.watch_cycles() as written`
      const shards = await tx`select shard, status, error from vigil.cycle_shards
                               where run_id = ${runId} order by shard`
      const [run] = await tx`select status, closed_by from vigil.cycle_runs where id = ${runId}`
      const [check] = await tx`
        select c.status::text, c.error, c.measurements from vigil.checks c
          join vigil.services s on s.id = c.service_id
         where s.name = 'vigil-health-check' and c.measurements ->> 'run_id' = ${runId}`
      throw Object.assign(new Error('roll back'), { seen: { written, shards, run, check } })
    }).catch((e) => e.seen)
    assert.ok(seen, 'the transaction saw the watchdog act')
    assert.ok(seen.written >= 1)
    assert.deepEqual(seen.shards.map((s: Record<string, unknown>) => [s.shard, s.status]), [
      [0, 'ok'],
      [1, 'missing'],
    ])
    assert.match(seen.shards[1].error, /never reported \(run closed by vigil-watchdog\)/)
    assert.deepEqual([seen.run.status, seen.run.closed_by], ['partial', 'vigil-watchdog'])
    assert.equal(seen.check.status, 'degraded')
    assert.match(
      seen.check.error,
      new RegExp(`cycle run ${runId} lost 1 of 2 shards \\(shard 1 missing\\)`),
    )
    await sql`delete from vigil.cycle_runs where id = ${runId}`
  })
})
