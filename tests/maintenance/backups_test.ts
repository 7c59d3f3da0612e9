// The backup tasks against the real local database: a backup runner (real pg_dump and pg_restore)
// started here on the test stack's cluster with a scratch database of its own, and a local stand-in
// for Supabase's Management API that records what it is asked. Runs are recorded by the real runner
// (vigil.maintenance_runs); a bad verdict opens the backup_failed incident, a good run resolves it.
import assert from 'node:assert/strict'
import postgres from 'postgres'
import {
  type BackupList,
  backupSettings,
  compareTables,
  judgeBackupList,
  type LeftOut,
  Manifest,
} from '../../supabase/functions/_shared/maintenance/backups.ts'
import { runTasks } from '../../supabase/functions/_shared/maintenance/runner.ts'
import { diagnose } from '../../supabase/functions/_shared/heal/diagnose.ts'
import { backupCheck } from '../../supabase/functions/_shared/maintenance/tasks/backup-check.ts'
import { backupVerification } from '../../supabase/functions/_shared/maintenance/tasks/backup-verification.ts'
import { drDrill } from '../../supabase/functions/_shared/maintenance/tasks/dr-drill.ts'
import type { MaintenanceTask } from '../../supabase/functions/_shared/maintenance/types.ts'
import { TaskError } from '../../supabase/functions/_shared/maintenance/types.ts'
import {
  type BackupRunner,
  newRunnerToken,
  RunnerConfigError,
  startBackupRunner,
  useList,
} from '../../devstack/backup-runner.ts'
import { agentSql, testSql, testStack } from '../_env.ts'

const stamp = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`
const HOUR = 3_600_000

// ---- pure parts ----

const PG_CRON: LeftOut = {
  extension: 'pg_cron',
  schemas: ['cron'],
  tables: ['cron.job', 'cron.job_run_details'],
  sequences: ['cron.jobid_seq'],
  why: 'only in cron.database_name',
}

Deno.test('compareTables: equal, missing, fewer rows, same rows but other contents; left-out tables are not compared', () => {
  const t = (schema: string, name: string, rows: number, checksum: string) => ({
    schema,
    name,
    rows,
    checksum,
  })
  const dumped = [
    t('public', 'a', 3, '42'),
    t('public', 'b', 2, '7'),
    t('public', 'c', 5, '-9'),
    t('vigil', 'd', 1, '1'),
    t('cron', 'job', 4, '11'),
  ]
  const restored = [t('public', 'a', 3, '42'), t('public', 'b', 1, '3'), t('public', 'c', 5, '-8')]
  const result = compareTables(dumped, restored, [PG_CRON])
  assert.equal(result.compared, 4, 'cron.job is left out')
  assert.equal(result.equal, 1)
  assert.deepEqual(result.differences.map((d) => [d.table, d.why]), [
    ['public.b', '1 row(s) restored, 2 dumped'],
    ['public.c', 'same 5 row(s), different contents (checksum)'],
    ['vigil.d', 'missing from the restore'],
  ])
  assert.deepEqual(compareTables(dumped, dumped, []).differences, [])
})

Deno.test('useList leaves out pg_cron, its schema’s contents and data, and nothing else', () => {
  const list = [
    ';',
    '; Archive created at 2026-12-02 14:17:49 UTC',
    '5; 3079 17555 EXTENSION - pg_cron ',
    '5294; 0 0 COMMENT - EXTENSION pg_cron ',
    '4; 3079 17542 EXTENSION - hypopg ',
    '13; 2615 17541 SCHEMA - vigil postgres',
    '300; 1259 17600 TABLE vigil services vigil_owner',
    '301; 1259 17601 INDEX cron job_run_details_by_time postgres',
    '4607; 0 17558 TABLE DATA cron job postgres',
    '4609; 0 17577 TABLE DATA cron job_run_details postgres',
    '5530; 0 0 SEQUENCE SET cron jobid_seq postgres',
    '4610; 0 17600 TABLE DATA vigil services vigil_owner',
    '4611; 0 17700 TABLE DATA public cronjobs postgres',
  ].join('\n')
  const { keep, removed } = useList(list, [PG_CRON])
  assert.equal(removed.length, 6)
  for (const line of removed) assert.match(line, /pg_cron| cron /)
  assert.match(keep, /EXTENSION - hypopg/)
  assert.match(keep, /TABLE DATA vigil services/)
  assert.match(keep, /TABLE DATA public cronjobs/, 'a table merely named like cron stays')
  assert.match(keep, /^; Archive created/m)
})

Deno.test('judgeBackupList: an old newest backup and failures since are problems; PITR is reported, not judged', () => {
  const now = Date.parse('2026-12-02T12:00:00Z')
  const at = (hoursAgo: number) => new Date(now - hoursAgo * HOUR).toISOString()
  const list = (backups: BackupList['backups'], extra: Partial<BackupList> = {}): BackupList => ({
    region: 'eu-west-1',
    walg_enabled: true,
    pitr_enabled: false,
    backups,
    ...extra,
  })
  const fresh = judgeBackupList(
    list([
      { is_physical_backup: true, status: 'COMPLETED', inserted_at: at(5) },
      { is_physical_backup: true, status: 'FAILED', inserted_at: at(29) },
      { is_physical_backup: true, status: 'COMPLETED', inserted_at: at(53) },
    ]),
    now,
    26,
  )
  assert.deepEqual(fresh.problems, [])
  assert.equal(fresh.recovery_point_age_hours, 5)
  assert.deepEqual(fresh.by_status, { COMPLETED: 2, FAILED: 1 })
  assert.ok(fresh.notes.some((n) => /1 older failed backup/.test(n)))
  assert.ok(fresh.notes.some((n) => /PITR not enabled/.test(n)))

  const stale = judgeBackupList(
    list([
      { is_physical_backup: true, status: 'FAILED', inserted_at: at(4) },
      // Supabase writes some timestamps without a zone: they are UTC.
      { is_physical_backup: true, status: 'COMPLETED', inserted_at: at(40).replace('Z', '') },
    ]),
    now,
    26,
  )
  assert.equal(stale.problems.length, 2)
  assert.match(stale.problems[0], /^the newest backup is 40 h old \(.*\), over the 26 h allowed$/)
  assert.match(stale.problems[1], /^1 backup\(s\) since the last completed one ended FAILED/)

  const pitr = judgeBackupList(
    list([], {
      pitr_enabled: true,
      physical_backup_data: {
        earliest_physical_backup_date_unix: (now - 7 * 24 * HOUR) / 1000,
        latest_physical_backup_date_unix: (now - 0.5 * HOUR) / 1000,
      },
    }),
    now,
    26,
  )
  assert.deepEqual(pitr.problems, [], 'with PITR the recovery point is its latest moment')
  assert.equal(pitr.recovery_point_age_hours, 0.5)
  assert.ok(
    pitr.notes.some((n) => /^PITR enabled: restorable to any moment from 2026-11-25/.test(n)),
  )

  const none = judgeBackupList(list([]), now, 26)
  assert.match(none.problems[0], /no completed backup is listed/)
})

Deno.test('backup settings: bad values are named together; the runner token is never repeated', () => {
  const env = (values: Record<string, string>) => (name: string) => values[name]
  const defaults = backupSettings(env({}))
  assert.deepEqual(defaults, { maxAgeHours: 26, service: undefined, runner: undefined })
  const token = 'tok-secret-value-0123456789abcdef'
  assert.throws(
    () =>
      backupSettings(env({
        VIGIL_BACKUP_MAX_AGE_HOURS: 'yesterday',
        VIGIL_BACKUP_RUNNER_URL: 'ftp://runner',
        VIGIL_BACKUP_RUNNER_TOKEN: token,
      })),
    (e: Error) =>
      e instanceof TaskError && /VIGIL_BACKUP_MAX_AGE_HOURS/.test(e.message) &&
      /VIGIL_BACKUP_RUNNER_URL must be an http\(s\) URL/.test(e.message) &&
      !e.message.includes(token),
  )
  assert.throws(
    () => backupSettings(env({ VIGIL_BACKUP_RUNNER_URL: 'http://127.0.0.1:9' })),
    /VIGIL_BACKUP_RUNNER_TOKEN is not set/,
  )
})

Deno.test('auto-heal never acts on backup_failed, whatever the service’s own check says', () => {
  const diagnosis = diagnose({
    incidentKind: 'backup_failed',
    serviceKind: 'postgres',
    check: { status: 'down', error: 'connection refused', measurements: {} },
    upstreamDown: [],
  })
  assert.deepEqual(diagnosis, { humanOnly: false, problems: [], advisory: true })
})

// ---- the runner on the real database ----

interface Harness {
  runner: BackupRunner
  token: string
  dir: string
  scratch: string
  env: (name: string) => string | undefined
  call(method: string, path: string, body?: unknown, token?: string): Promise<[number, any]>
  run(
    task: MaintenanceTask,
  ): Promise<{ status: string; error: string | null; summary: string; findings: any[] }[]>
}

/** A runner of its own (temporary folder, scratch database), a postgres service for its incidents. */
async function withRunner(
  fn: (h: Harness, sql: postgres.Sql, service: string) => Promise<void>,
  opts: { scratchUrl?: string } = {},
): Promise<void> {
  const { dbUrl } = testStack()
  const sql = testSql()
  const agent = agentSql()
  const s = stamp()
  const service = `backup-db-${s}`
  const dir = await Deno.makeTempDir({ prefix: 'vigil-backups-test-' })
  const scratch = `vigil_drill_test_${s}`
  const scratchUrl = new URL(dbUrl)
  scratchUrl.pathname = `/${scratch}`
  const token = newRunnerToken()
  const runner = await startBackupRunner({
    sourceUrl: dbUrl,
    scratchUrl: opts.scratchUrl ?? scratchUrl.toString(),
    dir,
    token,
    keep: 3,
  })
  const values: Record<string, string> = {
    VIGIL_BACKUP_RUNNER_URL: runner.url,
    VIGIL_BACKUP_RUNNER_TOKEN: token,
    VIGIL_BACKUP_SERVICE: service,
    VIGIL_ALLOW_PRIVATE_TARGETS: 'true',
  }
  const env = (name: string) => values[name]
  const h: Harness = {
    runner,
    token,
    dir,
    scratch,
    env,
    async call(method, path, body, auth = token) {
      const res = await fetch(runner.url + path, {
        method,
        headers: auth ? { authorization: `Bearer ${auth}` } : {},
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      return [res.status, await res.json()]
    },
    async run(task) {
      const [report] = await runTasks([task], { sql: agent, env }, {
        cadence: 'manual',
        worker: `backups-test-${s}`,
        taskTimeoutMs: 30_000,
        deadline: Date.now() + 60_000,
      })
      return await sql`
        select status, error, summary, findings from vigil.maintenance_runs
         where id in ${sql(report.run_ids)} order by id`
    },
  }
  try {
    await sql`insert into vigil.services (name, kind, environment, config, heal_enabled)
              values (${service}, 'postgres', 'dev', '{}', false)`
    await fn(h, sql, service)
  } finally {
    await runner.stop()
    await sql`update vigil.incidents set status = 'resolved', resolved_at = now()
               where status = 'open' and service_id in (select id from vigil.services where name = ${service})`
    await sql`update vigil.services set enabled = false where name = ${service}`
    await sql.unsafe(`drop database if exists ${scratch} with (force)`)
    await Deno.remove(dir, { recursive: true }).catch(() => {})
    await agent.end()
    await sql.end()
  }
}

async function backupIncident(sql: postgres.Sql, service: string) {
  const [row] = await sql<
    {
      id: number
      status: string
      severity: string
      title: string
      escalation_level: number
      detail: any
    }[]
  >`
    select i.id::int, i.status::text, i.severity::text, i.title, i.escalation_level, i.detail
      from vigil.incidents i join vigil.services s on s.id = i.service_id
     where s.name = ${service} and i.kind = 'backup_failed' order by i.id desc limit 1`
  return row
}

Deno.test('the runner refuses a missing or wrong token, a body naming a path, and a scratch that is the source', async () => {
  await withRunner(async (h) => {
    assert.equal((await h.call('GET', '/backups', undefined, ''))[0], 401)
    const [wrong, said] = await h.call('GET', '/backups', undefined, 'x'.repeat(64))
    assert.equal(wrong, 401)
    assert.doesNotMatch(JSON.stringify(said), new RegExp(h.token))
    const [s1, b1] = await h.call('POST', '/backups', { path: '/etc/passwd' })
    assert.equal(s1, 400)
    assert.match(b1.error, /"path"/)
    const [s2, b2] = await h.call('POST', '/drill', { backup: '../../etc/passwd' })
    assert.equal(s2, 400)
    assert.match(b2.error, /^backup: /)
    const [s3, b3] = await h.call('POST', '/backups/verify', { id: '/tmp/x.dump' })
    assert.equal(s3, 400)
    assert.match(b3.error, /id/)
    const [s4, b4] = await h.call('POST', '/drill', { database: 'postgres' })
    assert.equal(s4, 400)
    assert.match(b4.error, /"database"/)
  })
  const { dbUrl } = testStack()
  await assert.rejects(
    () => startBackupRunner({ sourceUrl: dbUrl, scratchUrl: dbUrl, dir: '/tmp/x', token: 'short' }),
    (e: Error) =>
      e instanceof RunnerConfigError && /must not be the source database/.test(e.message) &&
      /at least 32 characters/.test(e.message) && !e.message.includes('postgres:postgres'),
  )
})

Deno.test('a drill restores the real database with every table equal, rows written during the dump included; verification covers every kept dump', async () => {
  await withRunner(async (h, sql) => {
    const table = `backup_probe_${stamp()}`
    await sql.unsafe(
      `create table public.${table} (id bigserial primary key, note text, at timestamptz default now())`,
    )
    const writer = postgres(testStack().dbUrl, { max: 1, onnotice: () => {} })
    let writing = true
    const written: number[] = []
    const loop = (async () => {
      while (writing) {
        await writer.unsafe(`insert into public.${table} (note) values ('during the dump')`)
        written.push(performance.now())
      }
    })()
    try {
      await new Promise((r) => setTimeout(r, 50))
      const started = performance.now()
      const [status, taken] = await h.call('POST', '/backups', {})
      const ended = performance.now()
      await new Promise((r) => setTimeout(r, 50))
      writing = false
      await loop
      assert.equal(status, 200)
      assert.equal(taken.ok, true, taken.error)
      assert.ok(
        written.some((t) => t > started && t < ended),
        'rows were written while the dump ran',
      )
      const manifest = Manifest.parse(
        JSON.parse(await Deno.readTextFile(`${h.dir}/${taken.backup.id}.json`)),
      )
      const dumped = manifest.tables.find((t) => t.name === table)!
      const [{ n }] = await sql.unsafe(`select count(*)::int as n from public.${table}`)
      assert.ok(
        dumped.rows > 0 && dumped.rows < n,
        `dumped ${dumped.rows} of the ${n} rows written`,
      )
      assert.deepEqual(manifest.left_out.map((l) => l.extension), ['pg_cron'])

      const [run] = await h.run(drDrill)
      assert.equal(run.status, 'succeeded', run.error ?? '')
      assert.match(
        run.summary,
        new RegExp(
          `^restore drill: backup ${taken.backup.id} \\(.*\\) restored in [\\d.]+ s; (\\d+) of \\1 tables equal in row count and checksum; left out: pg_cron`,
        ),
      )
      const [drill] = run.findings
      assert.equal(drill.ok, true)
      assert.ok(drill.restore_seconds > 0)
      assert.ok(drill.tables_compared >= 20, `${drill.tables_compared} tables compared`)
      assert.equal(drill.tables_equal, drill.tables_compared)
      assert.deepEqual(drill.differences, [])
      assert.equal(drill.cleanup, null)
      const [{ exists }] =
        await sql`select exists (select from pg_database where datname = ${h.scratch})`
      assert.equal(exists, false, 'the scratch database is dropped after the drill')

      const [verification] = await h.run(backupVerification)
      assert.equal(verification.status, 'succeeded', verification.error ?? '')
      assert.match(
        verification.summary,
        /^1 kept dump\(s\) verified\. oldest kept: restore drill: /,
      )
    } finally {
      writing = false
      await loop
      await writer.end()
      await sql.unsafe(`drop table if exists public.${table}`)
    }
  })
})

Deno.test('a corrupted dump fails loudly: the run names the dump and the mismatch, backup_failed opens and pages; a good drill resolves it', async () => {
  await withRunner(async (h, sql, service) => {
    const [, taken] = await h.call('POST', '/backups', {})
    const id: string = taken.backup.id
    const path = `${h.dir}/${id}.dump`
    const bytes = await Deno.readFile(path)
    for (let i = 0; i < 16; i++) bytes[Math.floor(bytes.length / 2) + i] ^= 0xff
    await Deno.writeFile(path, bytes)

    const runs = await h.run(drDrill)
    assert.deepEqual(runs.map((r) => r.status), ['failed', 'failed'], 'retried once, then failed')
    assert.match(
      runs[1].error!,
      new RegExp(
        `^restore drill: backup ${id} is damaged: backup ${id}: sha256 of the file is [0-9a-f]{12}…, the manifest says ${
          taken.backup.sha256.slice(0, 12)
        }…`,
      ),
    )
    const opened = await backupIncident(sql, service)
    assert.deepEqual([opened.status, opened.severity], ['open', 'critical'])
    assert.equal(opened.escalation_level, 3, 'on-call is paged')
    assert.match(
      opened.title,
      new RegExp(`^${service}: dr_drill failed: restore drill: backup ${id} is damaged`),
    )
    assert.deepEqual(Object.keys(opened.detail.failing), ['dr_drill'])

    // backup_check's good dump is not the drill's: the incident stays open for the drill's reason.
    const [check] = await h.run(backupCheck)
    assert.equal(check.status, 'succeeded', check.error ?? '')
    assert.match(check.summary, /^backup \S+ taken \(.*\) and verified$/)
    assert.equal((await backupIncident(sql, service)).status, 'open')

    // The newest dump is now the good one: its drill passes and resolves the incident.
    const [good] = await h.run(drDrill)
    assert.equal(good.status, 'succeeded', good.error ?? '')
    const resolved = await backupIncident(sql, service)
    assert.equal(resolved.id, opened.id)
    assert.equal(resolved.status, 'resolved')
  })
})

Deno.test('a restore that fails is recorded with pg_restore’s reason; an unreachable scratch database is named, no verdict', async () => {
  await withRunner(async (h, sql, service) => {
    const s = stamp()
    const role = `backup_gone_${s}`
    const table = `backup_owned_${s}`
    try {
      // A dump needs the roles it names: the owner is dropped after the dump, as on a new server.
      await sql.unsafe(`create role ${role} nologin; create table public.${table} (id int)`)
      await sql.unsafe(`alter table public.${table} owner to ${role}`)
      const [, taken] = await h.call('POST', '/backups', {})
      assert.equal(taken.ok, true, taken.error)
      await sql.unsafe(`alter table public.${table} owner to postgres; drop role ${role}`)
      const runs = await h.run(drDrill)
      assert.equal(runs.at(-1)!.status, 'failed')
      const error = runs.at(-1)!.error!
      assert.match(
        error,
        new RegExp(
          `^restore drill: backup ${taken.backup.id} could not be restored: pg_restore failed: .*role "${role}" does not exist`,
        ),
      )
      assert.doesNotMatch(error, /postgres:postgres|PGPASSWORD/)
      assert.equal((await backupIncident(sql, service)).status, 'open')
    } finally {
      await sql.unsafe(`drop table if exists public.${table}; drop role if exists ${role}`)
    }
  })

  await withRunner(async (h, sql, service) => {
    const runs = await h.run(drDrill)
    assert.equal(runs.at(-1)!.status, 'failed')
    assert.match(
      runs.at(-1)!.error!,
      /^the backup runner \(POST \/drill\) answered HTTP 503 \(retryable\): the scratch database vigil_restore_nowhere could not be recreated: .*ECONNREFUSED/,
    )
    assert.doesNotMatch(runs.at(-1)!.error!, /postgres:postgres/)
    assert.equal(await backupIncident(sql, service), undefined, 'not a verdict on the backup')
  }, { scratchUrl: 'postgresql://postgres:postgres@127.0.0.1:1/vigil_restore_nowhere' })
})

// ---- Supabase's Management API, through a local stand-in ----

const REF = 'abcdefghijklmnopqrst'
const ACCESS_TOKEN = 'sbp_0123456789abcdef0123456789abcdef01234567'

interface Seen {
  path: string
  authorization: string | null
}

Deno.test('Management API: an old backup opens backup_failed; a fresh one with PITR resolves it; 401 and 503 are named without the token', async () => {
  const sql = testSql()
  const agent = agentSql()
  const seen: Seen[] = []
  let answer: () => Response = () => new Response('{}', { status: 500 })
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen: () => {} }, (req) => {
    const url = new URL(req.url)
    if (url.pathname.endsWith('/health')) {
      // The health cycle probes the service row too: it is healthy.
      const services = (url.searchParams.get('services') ?? '').split(',')
      return Response.json(
        services.map((name) => ({ name, healthy: true, status: 'ACTIVE_HEALTHY' })),
      )
    }
    seen.push({ path: url.pathname, authorization: req.headers.get('authorization') })
    return answer()
  })
  const service = `supabase-backups-${stamp()}`
  const values: Record<string, string> = {
    VIGIL_SUPABASE_ACCESS_TOKEN: ACCESS_TOKEN,
    VIGIL_ALLOW_PRIVATE_TARGETS: 'true',
  }
  const run = async (task: MaintenanceTask) => {
    const [report] = await runTasks([task], { sql: agent, env: (n) => values[n] }, {
      cadence: 'manual',
      worker: `backups-mgmt-test`,
      taskTimeoutMs: 10_000,
      deadline: Date.now() + 30_000,
    })
    return await sql<{ status: string; error: string | null; summary: string; findings: any[] }[]>`
      select status, error, summary, findings from vigil.maintenance_runs
       where id in ${sql(report.run_ids)} order by id`
  }
  const backups = (hoursAgo: number, pitr: boolean) => () =>
    Response.json({
      region: 'eu-west-1',
      walg_enabled: true,
      pitr_enabled: pitr,
      backups: [{
        is_physical_backup: true,
        status: 'COMPLETED',
        inserted_at: new Date(Date.now() - hoursAgo * HOUR).toISOString(),
      }],
      physical_backup_data: pitr
        ? {
          earliest_physical_backup_date_unix: Math.floor((Date.now() - 7 * 24 * HOUR) / 1000),
          latest_physical_backup_date_unix: Math.floor((Date.now() - 0.1 * HOUR) / 1000),
        }
        : {},
    })
  try {
    await sql`insert into vigil.services (name, kind, environment, config, heal_enabled)
              values (${service}, 'supabase_management', 'dev',
                      ${
      sql.json({ api_url: `http://127.0.0.1:${server.addr.port}`, project_ref: REF })
    }, false)`

    answer = backups(40, false)
    const old = await run(backupCheck)
    assert.equal(old.at(-1)!.status, 'failed')
    assert.match(
      old.at(-1)!.error!,
      new RegExp(`^${service}: the newest backup is 40 h old \\(.*\\), over the 26 h allowed$`),
    )
    assert.deepEqual(seen[0], {
      path: `/v1/projects/${REF}/database/backups`,
      authorization: `Bearer ${ACCESS_TOKEN}`,
    })
    const [incident] = await sql`
      select i.status::text, i.severity::text, i.escalation_level from vigil.incidents i
        join vigil.services s on s.id = i.service_id
       where s.name = ${service} and i.kind = 'backup_failed' order by i.id desc limit 1`
    assert.deepEqual([incident.status, incident.severity, incident.escalation_level], [
      'open',
      'critical',
      3,
    ])

    answer = backups(30, true)
    const [fresh] = await run(backupCheck)
    assert.equal(fresh.status, 'succeeded', fresh.error ?? '')
    assert.match(fresh.summary, /newest recovery point 0\.1 h old/)
    assert.match(fresh.summary, /PITR enabled: restorable to any moment from \S+ to \S+/)
    assert.equal(fresh.findings[0].pitr_enabled, true)
    const [after] = await sql`
      select i.status::text from vigil.incidents i join vigil.services s on s.id = i.service_id
       where s.name = ${service} and i.kind = 'backup_failed' order by i.id desc limit 1`
    assert.equal(after.status, 'resolved')

    const [monthly] = await run(backupVerification)
    assert.equal(monthly.status, 'succeeded', monthly.error ?? '')
    assert.match(monthly.summary, /1 listed \(1 completed\)/)

    answer = () =>
      Response.json({ message: `Unauthorized: token ${ACCESS_TOKEN} is invalid` }, { status: 401 })
    const refused = await run(backupCheck)
    assert.match(
      refused.at(-1)!.error!,
      new RegExp(
        `^${service}: the Management API's backup list of project ${REF}: the access token in VIGIL_SUPABASE_ACCESS_TOKEN was refused \\(HTTP 401\\)$`,
      ),
    )
    answer = () => new Response('upstream down', { status: 503, headers: { 'retry-after': '30' } })
    const down = await run(backupCheck)
    assert.match(down.at(-1)!.error!, /: HTTP 503 \(retryable, retry after 30 s\)$/)
    const rows =
      await sql`select error, summary from vigil.maintenance_runs where task = 'backup_check' and started_at > now() - interval '5 minutes'`
    assert.ok(!JSON.stringify(rows).includes(ACCESS_TOKEN), 'the token is in no run record')
  } finally {
    await server.shutdown()
    await sql`update vigil.incidents set status = 'resolved', resolved_at = now()
               where status = 'open' and service_id in (select id from vigil.services where name = ${service})`
    await sql`update vigil.services set enabled = false where name = ${service}`
    await agent.end()
    await sql.end()
  }
})

Deno.test('nothing configured: each backup task is not applicable, and says why', async () => {
  const agent = agentSql()
  try {
    for (const task of [backupCheck, drDrill, backupVerification]) {
      const result = await task.run({
        sql: agent,
        env: () => undefined,
        signal: AbortSignal.timeout(10_000),
      })
      assert.equal(result.status, 'not_applicable', task.name)
      assert.match(result.summary, /no backup runner is configured \(VIGIL_BACKUP_RUNNER_URL\)/)
    }
  } finally {
    await agent.end()
  }
})

Deno.test('the maintenance function drills through the stack’s own backup runner', async () => {
  const { apiUrl, serviceRoleKey } = testStack()
  const res = await fetch(`${apiUrl}/functions/v1/maintenance`, {
    method: 'POST',
    headers: { authorization: `Bearer ${serviceRoleKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ task: 'dr_drill' }),
  })
  assert.equal(res.status, 200)
  const { runs } = await res.json()
  assert.equal(runs[0].status, 'succeeded', runs[0].summary)
  assert.match(
    runs[0].summary,
    /^restore drill: backup \S+ .*restored in [\d.]+ s; (\d+) of \1 tables equal/,
  )
})
