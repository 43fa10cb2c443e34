// `fastify-tus serve` cuts a connection that goes quiet mid-body, keeps the bytes
// that arrived, and keeps serving other clients meanwhile.
import t from 'tap'
import { connect } from 'node:net'
import { join } from 'node:path'
import { tempDir } from './helpers/server.js'
import { spawnServer } from './helpers/spawn.js'
import { TUS, send } from './helpers/http.js'

t.test('a client that stops sending mid-body is cut after --idle-timeout', async (t) => {
  const dir = tempDir(t)
  const { origin } = await spawnServer(t, ['dist/lib/cli/main.js', 'serve', '--port', '0', '--log-level', 'warn',
    '--idle-timeout', '1', '--upload-dir', join(dir, 'uploads'), '--db-path', join(dir, 'db.sqlite')])
  const created = await send('POST', `${origin}/files/`, { headers: { ...TUS, 'Upload-Length': '100' } })
  const url = new URL(created.headers.location as string)

  const started = Date.now()
  const closedAfter = await new Promise<number>((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(`PATCH ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nTus-Resumable: 1.0.0\r\n` +
        'Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: 100\r\n\r\n' + 'x'.repeat(40))
      // ...and then nothing more.
    })
    socket.on('error', () => {})
    socket.on('close', () => resolve(Date.now() - started))
    setTimeout(() => reject(new Error('connection was never closed')), 10_000).unref()
  })
  t.ok(closedAfter >= 900 && closedAfter < 5000, `closed after ${closedAfter} ms`)

  // The server commits the bytes it got right after it cut the connection: allow it a moment.
  let offset: unknown
  const deadline = Date.now() + 2000
  do {
    offset = (await send('HEAD', url.href, { headers: TUS })).headers['upload-offset']
    if (offset !== '40') await new Promise((resolve) => setTimeout(resolve, 20))
  } while (offset !== '40' && Date.now() < deadline)
  t.equal(offset, '40', 'the 40 bytes that arrived are kept')
  const resumed = await send('PATCH', url.href, {
    headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '40' }, body: 'y'.repeat(60)
  })
  t.equal(resumed.status, 204, 'the upload is resumable at once')
  t.equal(resumed.headers['upload-offset'], '100')
})
