/**
 * `serve --lame-duck`: on SIGTERM the health check fails at once, while the
 * listener stays open and every other request, on new connections too, is
 * served as usual; the shutdown (listener closed, requests drained) begins
 * only once the period is over. For balancers that only poll health: they stop
 * sending before the instance stops answering.
 */
import { join } from 'node:path'
import t from 'tap'
import { tempDir } from './helpers/server.js'
import { spawnServer } from './helpers/spawn.js'
import { OCTET, TUS, bytes, send } from './helpers/http.js'
import { idOf, stored, waitFor } from './helpers/tus.js'

const BIN = 'dist/lib/cli/main.js'
const PERIOD = 3

t.test('SIGTERM with --lame-duck: health 503 at once, uploads still served on new connections, shutdown after the period, exit 0', async (t) => {
  const dir = tempDir(t)
  const uploadDir = join(dir, 'uploads')
  const server = await spawnServer(t, [BIN, 'serve', '--port', '0', '--upload-dir', uploadDir, '--db-path', join(dir, 'uploads.db'), '--lame-duck', String(PERIOD)])
  t.equal((await send('GET', `${server.origin}/health`)).status, 200, 'healthy before the signal')
  const exited = new Promise<number | null>((resolve) => server.child.once('exit', (code) => resolve(code)))

  const signalled = Date.now()
  server.child.kill('SIGTERM')
  await waitFor(async () => (await send('GET', `${server.origin}/health`)).status === 503, 2000, 'the health check to fail')
  const health = await send('GET', `${server.origin}/health`)
  t.equal(health.headers.connection, 'close', 'the failing health check closes its connection')

  // Each request on a connection of its own: the listener is still accepting.
  const data = bytes(200_000, 7)
  const created = await send('POST', `${server.origin}/files/`, { headers: { ...TUS, 'Upload-Length': String(data.length) } })
  t.equal(created.status, 201, 'an upload is created during the period')
  const url = new URL(String(created.headers.location), server.origin).href
  const patched = await send('PATCH', url, { headers: { ...TUS, ...OCTET, 'Upload-Offset': '0' }, body: data })
  t.equal(patched.status, 204, 'and its body stored')
  t.equal(server.child.exitCode, null, 'still running')

  t.equal(await exited, 0, 'exit 0')
  const took = Date.now() - signalled
  t.ok(took >= PERIOD * 1000, `the shutdown began after the period (exit ${took} ms after SIGTERM)`)
  t.match(server.output(), new RegExp(`health check failing, still serving for ${PERIOD} s`), 'the period is logged')
  t.ok(stored(uploadDir, idOf(url))?.equals(data), 'the upload made during the period is byte-exact on disk')
})

t.test('--lame-duck takes whole seconds', async (t) => {
  const dir = tempDir(t)
  await t.rejects(spawnServer(t, [BIN, 'serve', '--port', '0', '--upload-dir', join(dir, 'u'), '--db-path', join(dir, 'db'), '--lame-duck', '1.5']),
    /--lame-duck must be a non-negative integer, got "1\.5"/)
})
