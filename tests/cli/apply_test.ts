// `vigil apply` as a person runs it, against the test stack: the sample vigil.yml gives the same
// rows as the README's SQL examples, a second apply changes nothing, what SQL changed since is
// reported and not overwritten (unless --force), a database newer than the CLI is refused, and a
// bad file is refused with every error.
import assert from 'node:assert/strict'
import { keyOf, parseConfig } from '../../cli/config-file.ts'
import { testSql, withCronPaused } from '../_env.ts'
import { vigil } from './_cli.ts'

const SAMPLE = new URL('../../examples/vigil.yml', import.meta.url).pathname
const README = new URL('../../README.md', import.meta.url).pathname

/**
 * The README's configuration examples, as its reader would run them: the SQL blocks' inserts into
 * the configured tables, and the threshold override written inline.
 */
async function readmeStatements(): Promise<string[]> {
  const readme = await Deno.readTextFile(README)
  const statements: string[] = []
  for (const [, block] of readme.matchAll(/```sql\n([\s\S]*?)```/g)) {
    const code = block.split('\n').map((l) => l.replace(/--.*$/, '')).join('\n')
    for (const s of code.split(/;\s*\n/)) {
      const t = s.trim()
      if (/^insert into vigil\.(services|contacts|heal_policies|log_patterns)\b/.test(t)) {
        statements.push(t)
      }
    }
  }
  const inline = readme.match(
    /`(update vigil\.settings set api_p95_warning_ms = \d+ where environment = 'prod')`/,
  )
  assert.ok(inline, 'the README shows a threshold override')
  statements.push(inline[1])
  return statements
}

type Sql = ReturnType<typeof testSql>

/** The sample's rows (and every settings row) as the tables hold them, managed columns only. */
async function snapshot(sql: Sql, keys: Record<string, Set<string>>) {
  const [{ current }] = await sql<{ current: Record<string, Record<string, unknown>[]> }[]>`
    select vigil.config_state() -> 'current' as current`
  return Object.fromEntries(
    Object.entries(keys).map(([table, wanted]) => [
      table,
      current[table]
        .filter((row) => table === 'settings' || wanted.has(keyOf(table as 'services', row)))
        .sort((a, b) => keyOf(table as 'services', a).localeCompare(keyOf(table as 'services', b))),
    ]),
  )
}

Deno.test('apply: the sample gives the README rows, twice changes nothing, drift is refused then forced', async () => {
  const sql = testSql()
  const { managed } = parseConfig(await Deno.readTextFile(SAMPLE))
  const keys = Object.fromEntries(
    Object.entries(managed).map(([t, rows]) => [t, new Set(Object.keys(rows))]),
  )
  const services = [...keys.services]
  const [{ clean }] = await sql<{ clean: boolean }[]>`
    select not exists (select from vigil.services where name in (select jsonb_array_elements_text(${
    JSON.stringify(services)
  }::text::jsonb)))
       and not exists (select from vigil.contacts where name in ('Ana', 'Sam', '#ops', 'hook'))
       and not exists (select from vigil.log_patterns where name = 'checkout_failed')
       and not exists (select from vigil.heal_policies where environment = 'prod' and strategy = 'rollback_deploy') as clean`
  assert.ok(clean, 'the test database holds none of the sample rows yet')
  const settingsBefore = await sql`select * from vigil.settings`
  const [{ lastApply }] = await sql<{ lastApply: number }[]>`
    select coalesce(max(id), 0)::int as "lastApply" from vigil.config_applies`

  await withCronPaused(
    sql,
    ['vigil-health-check', 'vigil-heal-retry', 'vigil-notify-sweep'],
    async () => {
      try {
        // The README's SQL, in a transaction rolled back: the rows a reader would have.
        let fromReadme: Record<string, unknown> | undefined
        const statements = await readmeStatements()
        assert.ok(statements.length >= 6, `README statements found: ${statements.length}`)
        await sql.begin(async (tx) => {
          for (const s of statements) await tx.unsafe(s)
          fromReadme = await snapshot(tx as unknown as Sql, keys)
          throw new Error('rollback')
        }).catch((e) => {
          if ((e as Error).message !== 'rollback') throw e
        })
        assert.equal((fromReadme!.services as unknown[]).length, 14)

        const dry = await vigil('apply', SAMPLE, '--dry-run')
        assert.equal(dry.code, 0, dry.stderr)
        assert.match(dry.stdout, /^21 to add, 1 to change, 0 to remove\.$/m)
        assert.match(dry.stdout, /^Nothing was changed \(--dry-run\)\.$/m)
        const [{ n }] = await sql`select count(*)::int as n from vigil.services where name = 'api'`
        assert.equal(n, 0, 'a dry run changes nothing')
        const pending = await vigil('apply', SAMPLE, '--dry-run', '--exit-code')
        assert.equal(pending.code, 4, 'for CI: changes pending')
        assert.match(pending.stdout, /^21 to add, 1 to change, 0 to remove\.$/m)

        const first = await vigil('apply', SAMPLE)
        assert.equal(first.code, 0, first.stderr)
        assert.match(first.stdout, /^~ settings prod\n {4}api_p95_warning_ms: 200 → 300$/m)
        assert.match(first.stdout, /^\+ services api-traffic\n {4}kind: "traffic"\n/m)
        assert.match(first.stdout, /^Applied: apply \d+ in vigil\.config_applies\.$/m)
        assert.deepEqual(await snapshot(sql, keys), fromReadme, 'the same rows as the README SQL')

        const stamps = await sql`select name, updated_at from vigil.services order by name`
        const second = await vigil('apply', SAMPLE)
        assert.equal(second.code, 0, second.stderr)
        assert.match(second.stdout, /^No changes: the database holds what the file says\.$/m)
        assert.doesNotMatch(second.stdout, /Applied/)
        assert.equal((await vigil('apply', SAMPLE, '--dry-run', '--exit-code')).code, 0, 'in step')
        assert.deepEqual(
          await sql`select name, updated_at from vigil.services order by name`,
          stamps,
        )
        const [{ applies }] = await sql<{ applies: number }[]>`
        select count(*)::int as applies from vigil.config_applies where id > ${lastApply}`
        assert.equal(applies, 1, 'a second apply records nothing')

        // A change made in SQL since: reported, marked, not overwritten.
        await sql`update vigil.services set timeout_ms = 5000 where name = 'api'`
        const refused = await vigil('apply', SAMPLE)
        assert.equal(refused.code, 3, refused.stdout + refused.stderr)
        assert.match(
          refused.stderr,
          /^vigil: refused: 1 row changed in SQL since the previous apply would be overwritten/,
        )
        assert.match(
          refused.stderr,
          /^! services api: timeout_ms was 10000, is 5000; the file says 10000$/m,
        )
        const [{ timeout }] =
          await sql`select timeout_ms as timeout from vigil.services where name = 'api'`
        assert.equal(timeout, 5000, 'not overwritten')
        assert.equal(
          (await vigil('apply', SAMPLE, '--dry-run', '--exit-code')).code,
          3,
          'would refuse',
        )
        const preview = await vigil('apply', SAMPLE, '--dry-run', '--json')
        assert.equal(preview.code, 0, preview.stderr)
        const plan = JSON.parse(preview.stdout)
        assert.deepEqual(plan.ops, [{
          table: 'services',
          op: 'update',
          key: { name: 'api' },
          before: { timeout_ms: 5000 },
          set: { timeout_ms: 10000 },
        }])
        assert.equal(plan.drift[0].conflict, true)
        assert.equal(plan.applied, null)

        const forced = await vigil('apply', SAMPLE, '--force')
        assert.equal(forced.code, 0, forced.stderr)
        const [after] = await sql`
        select (select timeout_ms from vigil.services where name = 'api') as timeout,
               (select forced from vigil.config_applies order by id desc limit 1) as forced,
               (select jsonb_array_length(drift) from vigil.config_applies order by id desc limit 1) as drift`
        assert.deepEqual(after, { timeout: 10000, forced: true, drift: 1 })

        // A database whose schema is newer than the CLI knows is refused, naming both.
        await sql`insert into supabase_migrations.schema_migrations (version, name)
                values ('29991231000000', 'vigil_from_the_future')`
        try {
          const newer = await vigil('apply', SAMPLE)
          assert.equal(newer.code, 3)
          assert.match(
            newer.stderr,
            /^vigil: the database's Vigil schema \(migration 29991231000000\) is newer than this CLI knows \(\d{14}\): update the CLI before applying$/m,
          )
        } finally {
          await sql`delete from supabase_migrations.schema_migrations where version = '29991231000000'`
        }

        // A bad file: every error, with its path and line, exit 2, nothing written.
        const bad = await Deno.makeTempFile({ suffix: '.yml' })
        await Deno.writeTextFile(
          bad,
          'version: 1\nservices:\n  - { name: api, kind: http, config: { url: nope } }\n  - { name: api, kind: http, config: { url: "https://x.example.org" }, depends_on: [api] }\nwhatever: 1\n',
        )
        const invalid = await vigil('apply', bad)
        await Deno.remove(bad)
        assert.equal(invalid.code, 2)
        assert.match(invalid.stderr, /is not valid \(4 errors\):\n/)
        for (
          const line of [
            /^ {2}\S+:5:1 whatever: unknown key$/m,
            /^ {2}\S+:3:\d+ services\[0\]\.config\.url: must be an http\(s\) URL$/m,
            /^ {2}\S+:4:\d+ services\[1\]\.name: duplicate service name "api" \(also services\[0\]\)$/m,
            /^ {2}\S+:4:\d+ services\[1\]\.depends_on\[0\]: a service cannot depend on itself$/m,
          ]
        ) assert.match(invalid.stderr, line)
      } finally {
        await sql`delete from vigil.services where name in (select jsonb_array_elements_text(${
          JSON.stringify(services)
        }::text::jsonb)) and name <> 'database'`
        await sql`delete from vigil.services where name = 'database'`
        await sql`delete from vigil.contacts where name in ('Ana', 'Sam', '#ops', 'hook')`
        await sql`delete from vigil.log_patterns where name = 'checkout_failed'`
        await sql`delete from vigil.heal_policies where environment = 'prod' and strategy = 'rollback_deploy'`
        for (const row of settingsBefore) {
          await sql`update vigil.settings set api_p95_warning_ms = ${row.api_p95_warning_ms},
                    api_p95_critical_ms = ${row.api_p95_critical_ms},
                    error_rate_warning_pct = ${row.error_rate_warning_pct},
                    error_rate_critical_pct = ${row.error_rate_critical_pct},
                    slow_query_ms = ${row.slow_query_ms}
                  where environment = ${row.environment}`
        }
        await sql`delete from vigil.config_applies where id > ${lastApply}`
      }
    },
  )
})
