// The maintenance runner on the real database, as vigil_agent: every run recorded, a failed task
// retried once then reported, a task running elsewhere skipped, one failure never stopping the
// tasks after it, and the reasons people read free of driver noise.
import assert from 'node:assert/strict'
import { reason, runTasks } from '../../supabase/functions/_shared/maintenance/runner.ts'
import {
  type MaintenanceTask,
  TaskError,
} from '../../supabase/functions/_shared/maintenance/types.ts'
import { agentSql, testSql } from '../_env.ts'

const stamp = Date.now().toString(36)
const name = (n: string) => `t_runner_${n}_${stamp}`

function task(n: string, run: MaintenanceTask['run']): MaintenanceTask {
  return { name: name(n), cadence: 'daily', description: n, run }
}

Deno.test('each task recorded; a failure retried once, then reported; the others run on', async () => {
  const agent = agentSql()
  const sql = testSql()
  try {
    let flakyCalls = 0
    let brokenCalls = 0
    const tasks = [
      task('broken', () => {
        brokenCalls++
        throw new TaskError('the table vanished')
      }),
      task('flaky', () => {
        flakyCalls++
        if (flakyCalls === 1) throw new TaskError('a lock was not free')
        return Promise.resolve({ status: 'succeeded', summary: 'done on the second try' })
      }),
      task('fine', () =>
        Promise.resolve({
          status: 'succeeded',
          summary: 'vacuumed 1 table',
          findings: [{ table: 'public.a' }],
          actions: [{ vacuum: 'public.a' }],
        })),
      task('idle', () => Promise.resolve({ status: 'not_applicable', summary: 'no standby' })),
    ]
    const reports = await runTasks(tasks, { sql: agent, env: () => undefined }, {
      cadence: 'daily',
      worker: `runner-test-${stamp}`,
      taskTimeoutMs: 5000,
      deadline: Date.now() + 60_000,
    })
    assert.deepEqual(
      reports.map((r) => [r.task, r.status, r.attempts]),
      [
        [name('broken'), 'failed', 2],
        [name('flaky'), 'succeeded', 2],
        [name('fine'), 'succeeded', 1],
        [name('idle'), 'not_applicable', 1],
      ],
    )
    assert.equal(brokenCalls, 2, 'retried once, not more')
    assert.match(reports[0].summary, /failed twice: the table vanished/)
    const rows = await sql`
      select task, attempt, status, summary, error, findings, actions from vigil.maintenance_runs
       where task like ${`t_runner_%_${stamp}`} order by id`
    assert.deepEqual(rows.map((r) => [r.task, r.attempt, r.status]), [
      [name('broken'), 1, 'failed'],
      [name('broken'), 2, 'failed'],
      [name('flaky'), 1, 'failed'],
      [name('flaky'), 2, 'succeeded'],
      [name('fine'), 1, 'succeeded'],
      [name('idle'), 1, 'not_applicable'],
    ])
    assert.equal(rows[0].error, 'the table vanished')
    assert.deepEqual(rows[4].findings, [{ table: 'public.a' }])
    assert.deepEqual(rows[4].actions, [{ vacuum: 'public.a' }])
  } finally {
    await agent.end()
    await sql.end()
  }
})

Deno.test('a task running elsewhere is skipped; a task out of time is not started', async () => {
  const agent = agentSql()
  const sql = testSql()
  try {
    await sql`select vigil.begin_maintenance(${name('busy')}, 'daily', 'another-worker')`
    let ran = false
    const busy = task('busy', () => {
      ran = true
      return Promise.resolve({ status: 'succeeded', summary: 'x' })
    })
    const [report] = await runTasks([busy], { sql: agent, env: () => undefined }, {
      cadence: 'daily',
      worker: 'runner-test',
      taskTimeoutMs: 5000,
      deadline: Date.now() + 60_000,
    })
    assert.deepEqual([report.status, ran], ['skipped', false])
    assert.match(report.summary, /already running/)

    const [late] = await runTasks([task('late', busy.run)], { sql: agent, env: () => undefined }, {
      cadence: 'daily',
      worker: 'runner-test',
      taskTimeoutMs: 5000,
      deadline: Date.now() - 1,
    })
    assert.deepEqual([late.status, ran], ['skipped', false])
  } finally {
    await sql`update vigil.maintenance_runs set status = 'failed', finished_at = now(), error = 'test'
               where task = ${name('busy')} and status = 'running'`
    await agent.end()
    await sql.end()
  }
})

Deno.test('a task past its time is cut off and recorded as out of time', async () => {
  const agent = agentSql()
  try {
    const slow = task(
      'slow',
      ({ signal }) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    )
    const [report] = await runTasks([slow], { sql: agent, env: () => undefined }, {
      cadence: 'daily',
      worker: 'runner-test',
      taskTimeoutMs: 100,
      deadline: Date.now() + 60_000,
    })
    assert.equal(report.status, 'failed')
    assert.match(report.summary, /ran out of time/)
  } finally {
    await agent.end()
  }
})

Deno.test('reasons shown to people: a TaskError’s words, a database code, never a raw error', () => {
  assert.equal(reason(new TaskError('no standby')), 'no standby')
  assert.equal(
    reason(Object.assign(new Error('relation "x" does not exist'), { code: '42P01' })),
    'database error 42P01: relation "x" does not exist',
  )
  assert.equal(reason(new TypeError('postgres://user:secret@host failed')), 'unexpected TypeError')
})
