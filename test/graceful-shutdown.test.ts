/**
 * Graceful shutdown: SIGTERM to `fastify-tus serve` (SQLite default) while ten
 * PATCHes stream, and `app.close()` for plugin users. Requests arriving during
 * the drain get 503 with Connection: close and Retry-After; bodies that end
 * within the shutdown timeout are answered as usual; the others are cut, their
 * bytes kept and their offsets committed. The process exits 0 within the
 * timeout, and every upload resumes byte-exact after the restart.
 */
import t from 'tap'
import { connect } from 'node:net'
import { join } from 'node:path'
import type { ClientRequest } from 'node:http'
import { startServer, tempDir } from './helpers/server.js'
import { spawnServer } from './helpers/spawn.js'
import { OCTET, TUS, bytes, create, patch, send, type Response } from './helpers/http.js'
import { head, idOf, sleep, stored } from './helpers/tus.js'

const BIN = 'dist/lib/cli/main.js'
const PIECE = 32 * 1024
const PIECE_EVERY = 100

/**
 * A PATCH whose body goes out one PIECE every PIECE_EVERY ms, until `pieces` are
 * sent or the server has answered. Answers the reply (or the network error) and
 * how many bytes were written.
 */
function slowPatch (url: string, data: Buffer, pieces: number): { done: Promise<{ res: Response | Error; sent: number }> } {
  let sent = 0
  let answered = false
  let req!: ClientRequest
  const reply = send('PATCH', url, {
    headers: { ...TUS, ...OCTET, 'Upload-Offset': '0', 'Content-Length': String(pieces * PIECE) },
    stream: (r) => { req = r; r.on('error', () => {}) }
  }).then((res) => { answered = true; return res }, (err: Error) => { answered = true; return err })
  const pump = (async () => {
    for (let i = 0; i < pieces && !answered; i++) {
      if (!req.write(data.subarray(i * PIECE, (i + 1) * PIECE))) await new Promise((resolve) => { req.once('drain', resolve); setTimeout(resolve, 500) })
      sent += PIECE
      await sleep(PIECE_EVERY)
    }
    if (!answered) req.end()
  })()
  return { done: Promise.all([reply, pump]).then(([res]) => ({ res, sent })) }
}

t.test('SIGTERM to serve during 10 streaming PATCHes: drained or cut, offsets committed, exit 0 in time, all resume byte-exact', async (t) => {
  const dir = tempDir(t)
  const uploadDir = join(dir, 'uploads')
  const dbPath = join(dir, 'uploads.db')
  const TIMEOUT = 3
  const args = [BIN, 'serve', '--port', '0', '--upload-dir', uploadDir, '--db-path', dbPath, '--shutdown-timeout', String(TIMEOUT)]
  const server = await spawnServer(t, args)
  const endpoint = `${server.origin}/files`

  // Five bodies end after about 1.5 s (within the timeout), five would take 10 s.
  const SHORT = 15
  const LONG = 100
  const uploads = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
    const pieces = i % 2 === 0 ? SHORT : LONG
    const data = bytes(LONG * PIECE, 100 + i)
    const url = await create(endpoint, { 'Upload-Length': String(data.length) })
    return { url, data, pieces }
  }))
  const running = uploads.map((u) => slowPatch(u.url, u.data, u.pieces))
  await sleep(300)
  const signalled = Date.now()
  server.child.kill('SIGTERM')

  // A request arriving once the shutdown began: refused, or its connection refused (the listener is closed).
  await sleep(100)
  const late = await send('HEAD', uploads[0]!.url, { headers: TUS }).catch((err: NodeJS.ErrnoException) => err)
  t.ok(late instanceof Error ? late.code === 'ECONNREFUSED' : late.status === 503, `a new request during the drain: ${late instanceof Error ? late.code : late.status}`)

  const exit = await new Promise<{ code: number | null; at: number }>((resolve) => server.child.once('exit', (code) => resolve({ code, at: Date.now() })))
  const took = exit.at - signalled
  t.equal(exit.code, 0, 'the process exits 0')
  t.ok(took <= TIMEOUT * 1000 + 1000, `within the shutdown timeout (${took} ms for ${TIMEOUT} s)`)
  const results = await Promise.all(running.map(async (r) => r.done))
  const statuses = results.map(({ res }) => res instanceof Error ? `error ${(res as NodeJS.ErrnoException).code}` : res.status)
  t.same(statuses, uploads.map((u) => u.pieces === SHORT ? 204 : 503), `short bodies finished (204), long ones were cut (503): ${statuses.join(', ')}`)
  for (const { res } of results) {
    if (res instanceof Error) continue
    t.equal(res.headers.connection, 'close', `${res.status} says Connection: close`)
    if (res.status === 503) t.equal(res.headers['retry-after'], '1', '503 says Retry-After')
  }
  t.match(server.output(), /drained 5 uploading request\(s\) and cut 5/, 'the log says how many bodies were drained and how many cut')

  // Restarted on the same directory and database: offsets are backed by the bytes on disk.
  const again = await spawnServer(t, args)
  for (const [i, u] of uploads.entries()) {
    const id = idOf(u.url)
    const url = `${again.origin}/files/${id}`
    const offset = Number((await head(url)).headers['upload-offset'])
    const onDisk = stored(uploadDir, id)!
    t.ok(onDisk.length >= offset && onDisk.subarray(0, offset).equals(u.data.subarray(0, offset)), `upload ${i}: offset ${offset} is backed by the bytes on disk`)
    if (u.pieces === SHORT) t.equal(offset, SHORT * PIECE, `upload ${i}: the drained body is all there`)
    else t.ok(offset > 0 && offset < u.data.length, `upload ${i}: the cut body kept what it had received (${offset} bytes)`)
    const res = await patch(url, offset, u.data.subarray(offset))
    t.equal(res.status, 204, `upload ${i}: resumed to the end`)
    t.ok(stored(uploadDir, id)!.equals(u.data), `upload ${i}: byte-exact`)
  }
})

t.test('app.close(): a request during the drain gets 503 in plain text; a body still streaming at the timeout is cut with its offset committed', async (t) => {
  const { app, endpoint, uploadDir } = await startServer(t, { shutdownTimeout: 1500 }, undefined, { return503OnClosing: false })
  const data = bytes(LONGEST, 7)
  const url = await create(endpoint, { 'Upload-Length': String(data.length) })
  const streaming = slowPatch(url, data, LONGEST / PIECE)

  // A connection that has begun a request before the close, and finishes it during the drain.
  const socket = connect(Number(new URL(endpoint).port), '127.0.0.1')
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write(`HEAD /files/${idOf(url)} HTTP/1.1\r\nHost: 127.0.0.1\r\n`)
  let raw = ''
  socket.on('data', (d: Buffer) => { raw += d.toString('latin1') })
  const socketClosed = new Promise((resolve) => socket.once('close', resolve))
  socket.on('error', () => {})
  await sleep(300)

  const closing = Date.now()
  const closed = app.close()
  await sleep(100)
  t.equal(app.tus.draining, true, 'app.tus.draining says so (for a health check)')
  socket.write('Tus-Resumable: 1.0.0\r\n\r\n')
  await socketClosed
  t.match(raw, /^HTTP\/1\.1 503 /, `the late request is answered 503 (${raw.split('\r\n')[0]})`)
  t.match(raw, /\r\nconnection: close\r\n/i, 'with Connection: close')
  t.match(raw, /\r\nretry-after: 1\r\n/i, 'with Retry-After')
  t.match(raw, /\r\ntus-resumable: 1\.0\.0\r\n/i, 'with Tus-Resumable')
  t.match(raw, /\r\ncontent-type: text\/plain/i, 'in plain text')

  const { res, sent } = await streaming.done
  t.equal(res instanceof Error ? res.message : res.status, 503, 'the streaming PATCH is cut with 503')
  await closed
  t.ok(Date.now() - closing <= 1500 + 700, `app.close() resolved within the shutdown timeout (${Date.now() - closing} ms)`)
  const onDisk = stored(uploadDir, idOf(url))!
  t.ok(onDisk.length > 0 && onDisk.length <= sent, `bytes received before the cut are kept (${onDisk.length} of ${sent} sent)`)
  t.ok(onDisk.equals(data.subarray(0, onDisk.length)), 'and they are the right ones')

  // The same directory and database, served again: the committed offset is those bytes.
  const reopened = await startServer(t, { uploadDir, db: join(uploadDir, '..', 'uploads.db') })
  const offset = Number((await head(`${reopened.endpoint}/${idOf(url)}`)).headers['upload-offset'])
  t.equal(offset, onDisk.length, 'the committed offset is exactly the bytes kept')
})

const LONGEST = 100 * PIECE
