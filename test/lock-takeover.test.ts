// A PATCH whose client went silent without closing its connection (a dropped
// network: no FIN, no RST) must not keep the upload from its resuming client.
// A writer that is still receiving is never disturbed.
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { startServer } from './helpers/server.js'
import { OCTET, TUS, bytes, create, patch, send } from './helpers/http.js'
import { CUT_BODY_NOT_KEPT, OBJECT_STORE, ON_OBJECTS, assertStored, head, sleep, timedResume } from './helpers/tus.js'

/** Sends the headers and the first `sent` bytes of a PATCH, then nothing more, leaving the socket open. */
async function silentPatch (url: string, body: Buffer, sent: number): Promise<Socket> {
  const target = new URL(url)
  const socket = connect(Number(target.port), target.hostname)
  socket.on('error', () => {})
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write(`PATCH ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nTus-Resumable: 1.0.0\r\n` +
    `Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: ${body.length}\r\n\r\n`)
  socket.write(body.subarray(0, sent))
  return socket
}

t.test('a silent writer gives way to a resuming client; an active one does not', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = bytes(300_000, 91)
  const url = await create(endpoint, { 'Upload-Length': String(data.length) })
  const socket = await silentPatch(url, data, 100_000)
  await sleep(100)

  const early = await patch(url, 0, data)
  t.equal(early.status, 423, 'while the writer was heard from recently, a newcomer gets 423 at once')

  await sleep(2100) // the writer has now been silent for longer than 2 s
  // (Timed until the upload is writable again: on the S3 store not the writes of the resumed body, see timedResume.)
  const started = Date.now()
  let offset = 0
  let resumed = await timedResume(url, offset, data.subarray(offset))
  if (resumed.res.status === 409) {
    t.equal(resumed.res.headers['upload-offset'], '100000', '409 names the offset the silent writer reached')
    offset = Number((await head(url)).headers['upload-offset'])
    resumed = await timedResume(url, offset, data.subarray(offset))
  }
  const { res, at } = resumed
  const elapsed = at - started
  t.equal(res.status, 204, `resumed from ${offset}`)
  t.ok(elapsed < 1000, `served within a second (${elapsed} ms)`)
  if (ON_OBJECTS) {
    // 100000 bytes of a 300000-byte body: no part (5 MiB) and no tail was completed.
    t.comment(CUT_BODY_NOT_KEPT)
    t.equal(offset, 0, `${OBJECT_STORE}: nothing of the silent writer's cut body was kept`)
  } else {
    t.equal(offset, 100_000, 'the silent writer\'s bytes were kept')
  }
  t.ok(socket.destroyed || await new Promise((resolve) => { socket.once('close', () => resolve(true)); setTimeout(() => resolve(false), 500) }), 'the silent connection was closed')
  await assertStored(t, url, storage, data)
})

t.test('DELETE takes over from a silent writer too', async (t) => {
  const { endpoint, app } = await startServer(t)
  const data = bytes(50_000, 92)
  const url = await create(endpoint, { 'Upload-Length': String(data.length) })
  const socket = await silentPatch(url, data, 10_000)
  t.teardown(() => socket.destroy())
  await sleep(2100)
  const res = await send('DELETE', url, { headers: TUS })
  t.equal(res.status, 204)
  t.equal(await app.tus.get(url.split('/').pop()!), undefined)
})

t.test('an upload whose writer never sent a byte is also released after the silence', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = bytes(1000, 93)
  const url = await create(endpoint, { 'Upload-Length': String(data.length) })
  const socket = await silentPatch(url, data, 0)
  t.teardown(() => socket.destroy())
  await sleep(2100)
  const res = await send('PATCH', url, { headers: { ...TUS, ...OCTET, 'Upload-Offset': '0' }, body: data })
  t.equal(res.status, 204)
  await assertStored(t, url, storage, data)
})
