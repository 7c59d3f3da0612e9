// The local host of the built dashboard: the app's page for every route, /status, /config.js with
// where the API is, hashed assets cached for good, nothing outside the build served.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { hasBuild, startDashboardServer } from '../../devstack/dashboard-server.ts'

async function withServer(
  test: (url: string, dist: string) => Promise<void>,
): Promise<void> {
  const dist = await Deno.makeTempDir({ prefix: 'vigil-dist-' })
  await Deno.mkdir(join(dist, 'assets'))
  await Deno.writeTextFile(join(dist, 'index.html'), '<!doctype html><title>app</title>')
  await Deno.writeTextFile(join(dist, 'status.html'), '<!doctype html><title>status</title>')
  await Deno.writeTextFile(join(dist, 'assets', 'app-abc123.js'), 'console.log(1)')
  await Deno.writeTextFile(join(dist, '..', 'outside-the-build.txt'), 'secret').catch(() => {})
  const server = startDashboardServer({
    port: 0,
    distDir: dist,
    config: {
      supabaseUrl: 'http://127.0.0.1:54321',
      anonKey: 'anon-key',
      devOperator: { email: 'op@example.test', password: 'pw' },
    },
  })
  try {
    await test(server.url, dist)
  } finally {
    await server.stop()
    await Deno.remove(dist, { recursive: true })
    await Deno.remove(join(dist, '..', 'outside-the-build.txt')).catch(() => {})
  }
}

Deno.test('the app for every route, /status for the status page, /config.js names the API', async () => {
  await withServer(async (url) => {
    for (const path of ['/', '/incidents/42']) {
      const res = await fetch(url + path)
      assert.equal(res.status, 200)
      assert.match(await res.text(), /<title>app<\/title>/, path)
      assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8')
      assert.match(
        res.headers.get('content-security-policy') ?? '',
        /connect-src 'self' http:\/\/127\.0\.0\.1:54321 ws:\/\/127\.0\.0\.1:54321/,
      )
    }
    const status = await fetch(url + '/status')
    assert.match(await status.text(), /<title>status<\/title>/)

    const config = await fetch(url + '/config.js')
    assert.equal(config.headers.get('cache-control'), 'no-store')
    const text = await config.text()
    const json = JSON.parse(text.replace(/^window\.__VIGIL__ = /, '').replace(/;\n$/, ''))
    assert.deepEqual(json, {
      supabaseUrl: 'http://127.0.0.1:54321',
      anonKey: 'anon-key',
      devOperator: { email: 'op@example.test', password: 'pw' },
    })
  })
})

Deno.test('hashed assets are cached for good; missing files, other methods and escapes are refused', async () => {
  await withServer(async (url, dist) => {
    const asset = await fetch(url + '/assets/app-abc123.js')
    assert.equal(asset.status, 200)
    assert.equal(asset.headers.get('cache-control'), 'public, max-age=31536000, immutable')
    assert.equal(asset.headers.get('content-type'), 'text/javascript; charset=utf-8')
    await asset.body?.cancel()

    for (const path of ['/assets/missing.js', '/missing.png', '/..%2Foutside-the-build.txt']) {
      const res = await fetch(url + path)
      assert.equal(res.status, 404, path)
      assert.doesNotMatch(await res.text(), /secret/)
    }
    // Compressed once, kept until the file changes on disk.
    await Deno.writeTextFile(join(dist, 'assets', 'big-1.js'), 'const x = 1;\n'.repeat(5000))
    const gz = await fetch(url + '/assets/big-1.js', { headers: { 'accept-encoding': 'gzip' } })
    assert.equal(gz.headers.get('content-encoding'), 'gzip')
    assert.equal((await gz.text()).length, 'const x = 1;\n'.length * 5000)
    assert.match(await (await fetch(url + '/')).text(), /<title>app/, 'kept in memory now')
    await new Promise((r) => setTimeout(r, 20)) // a later modification time
    await Deno.writeTextFile(join(dist, 'index.html'), '<!doctype html><title>rebuilt</title>')
    assert.match(await (await fetch(url + '/')).text(), /rebuilt/, 'a rebuild is served at once')

    const post = await fetch(url + '/', { method: 'POST' })
    assert.equal(post.status, 405)
    await post.body?.cancel()
    assert.equal(await hasBuild(dist), true)
    assert.equal(await hasBuild(join(dist, 'assets')), false, 'no index.html there: not a build')
  })
})
