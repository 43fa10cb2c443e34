/**
 * Races with a defined outcome: a DELETE, a final upload's creation, the expiry
 * cleanup and a reconnecting client, each while a PATCH is streaming.
 */
import t from 'tap'
import type { ClientRequest } from 'node:http'
import { startServer } from './helpers/server.js'
import { OCTET, TUS, bytes, create, patch, send, type Response } from './helpers/http.js'
import { CUT_BODY_NOT_KEPT, OBJECT_STORE, ON_OBJECTS, assertError, assertStored, head, idOf, sleep, stored, storedSize, timedResume, waitFor } from './helpers/tus.js'

interface Streaming {
  request: ClientRequest
  response: Promise<Response>
}

/** Starts a PATCH announcing `total` body bytes and writes `first` of them; the request stays open. */
function startPatch (url: string, offset: number, first: Buffer, total: number): Streaming {
  let request: ClientRequest | undefined
  const response = send('PATCH', url, {
    headers: { ...TUS, ...OCTET, 'Upload-Offset': String(offset), 'Content-Length': String(total) },
    stream: (req) => { request = req; req.write(first) }
  })
  if (request === undefined) throw new Error('send did not hand out the request')
  return { request, response }
}

t.test('DELETE while a PATCH is streaming answers 423 and the upload stays; after the PATCH, DELETE answers 204', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const data = bytes(200_000, 301)
  const url = await create(endpoint, { 'Upload-Length': String(data.length) })
  const id = idOf(url)

  const streaming = startPatch(url, 0, data.subarray(0, 80_000), data.length)
  await waitFor(async () => await storedSize(storage, id) === 80_000, 3000, 'the first 80000 bytes on disk')

  assertError(t, await send('DELETE', url, { headers: TUS }), 423, 'DELETE while streaming')
  const override = await send('POST', url, { headers: { ...TUS, 'X-HTTP-Method-Override': 'DELETE' } })
  assertError(t, override, 423, 'DELETE by method override while streaming')
  t.equal(await app.tus.delete(id), false, 'app.tus.delete refuses an upload being written')
  t.ok(await app.tus.get(id) !== undefined, 'the row is still there')
  t.equal(await storedSize(storage, id), 80_000, 'the bytes are still there')
  t.equal((await head(url)).status, 200, 'HEAD still finds it')

  streaming.request.end(data.subarray(80_000))
  const res = await streaming.response
  t.equal(res.status, 204, 'the streaming PATCH finishes')
  t.equal(res.headers['upload-offset'], String(data.length))
  await assertStored(t, url, storage, data, 'the upload survived the DELETE attempts')

  t.equal((await send('DELETE', url, { headers: TUS })).status, 204, 'DELETE after the PATCH answers 204')
  t.equal((await head(url)).status, 404, 'the upload is gone')
  t.equal(await app.tus.get(id), undefined, 'no row')
  t.equal(await stored(storage, id), null, 'no file')
})

t.test('a final upload naming a partial upload that is still being written: 201, unfinished, assembled when the partial finishes', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const first = bytes(30_000, 302)
  const second = bytes(150_000, 303)
  const done = await create(endpoint, { 'Upload-Length': String(first.length), 'Upload-Concat': 'partial' }, first)
  const writing = await create(endpoint, { 'Upload-Length': String(second.length), 'Upload-Concat': 'partial' })

  const streaming = startPatch(writing, 0, second.subarray(0, 60_000), second.length)
  await waitFor(async () => await storedSize(storage, idOf(writing)) === 60_000, 3000, 'the partial upload half written')

  const created = await send('POST', endpoint + '/', {
    headers: { ...TUS, 'Upload-Concat': `final;${new URL(done).pathname} ${new URL(writing).pathname}` }
  })
  t.equal(created.status, 201, `the final upload is created while a part is being written (${created.text})`)
  t.equal(created.headers['upload-offset'], undefined, 'the 201 carries no Upload-Offset: the final is not complete')
  const final = created.headers.location as string
  t.ok(typeof final === 'string' && final.length > 0, 'it has a Location')

  const before = await head(final)
  t.equal(before.status, 200, 'HEAD of the final upload')
  t.equal(before.headers['upload-offset'], undefined, 'HEAD of the unfinished final upload has no Upload-Offset')
  t.equal(before.headers['upload-length'], String(first.length + second.length), 'its length is the sum of the parts')
  t.match(String(before.headers['upload-concat']), /^final;/, 'it says it is a final upload')
  t.equal((await app.tus.get(idOf(final)))?.completedAt, null, 'the row says unfinished')
  t.equal((await send('GET', final)).status, 409, 'it cannot be downloaded yet')

  streaming.request.end(second.subarray(60_000))
  const res = await streaming.response
  t.equal(res.status, 204, 'the partial upload finishes')
  await assertStored(t, writing, storage, second, 'the partial upload')

  const whole = Buffer.concat([first, second])
  await waitFor(async () => (await head(final)).headers['upload-offset'] !== undefined, 3000, 'the final upload to be assembled')
  await assertStored(t, final, storage, whole, 'the final upload')
  t.ok((await app.tus.get(idOf(final)))?.completedAt instanceof Date, 'the row says complete')
  const download = await send('GET', final)
  t.equal(download.status, 200, 'the final upload downloads')
  t.ok(download.body.equals(whole), 'the download is the parts joined, byte for byte')
})

t.test('expiry cleanup while an upload is written: the locked upload is kept, and gets a new expiry from its write', async (t) => {
  const expiration = 200
  const { app, endpoint, storage } = await startServer(t, { expiration, cleanupInterval: 0 })
  const data = bytes(200_000, 304)
  const url = await create(endpoint, { 'Upload-Length': String(data.length) })
  const id = idOf(url)
  const createdExpiry = (await app.tus.get(id))?.expiresAt
  t.ok(createdExpiry instanceof Date, 'a new upload has an expiry')

  // An idle upload next to it, to show that the cleanup does run.
  const idle = await create(endpoint, { 'Upload-Length': '10' })
  const idleExpiry = (await app.tus.get(idOf(idle)))?.expiresAt
  t.ok(idleExpiry instanceof Date, 'the idle upload has an expiry')

  // This PATCH carries 120000 of the 200000 bytes, so the upload is still unfinished after it.
  const streaming = startPatch(url, 0, data.subarray(0, 40_000), 120_000)
  await waitFor(async () => await storedSize(storage, id) === 40_000, 3000, 'the first 40000 bytes on disk')
  const passed = Math.max(createdExpiry!.getTime(), idleExpiry!.getTime()) + 20
  await waitFor(() => Date.now() > passed, 3000, 'both expiries to pass during the write')
  t.ok((await app.tus.get(id))!.expiresAt!.getTime() < Date.now(), 'the expiry of the upload being written has passed')

  const removed = await app.tus.cleanupExpired()
  t.equal(removed, 1, 'the cleanup removed the idle expired upload only')
  t.equal(await app.tus.get(idOf(idle)), undefined, 'the idle upload is gone')
  t.ok(await app.tus.get(id) !== undefined, 'the upload being written is not removed (it is locked)')
  t.equal(await storedSize(storage, id), 40_000, 'its bytes are untouched')

  const endedAt = Date.now()
  streaming.request.end(data.subarray(40_000, 120_000))
  const res = await streaming.response
  const answeredAt = Date.now()
  t.equal(res.status, 204, `the PATCH that outlived the expiry is accepted (${res.text})`)
  t.equal(res.headers['upload-offset'], '120000')
  t.ok(typeof res.headers['upload-expires'] === 'string', 'its reply carries a new Upload-Expires')

  const after = await app.tus.get(id)
  t.ok(after !== undefined, 'the upload exists after the write')
  const expiresAt = after?.expiresAt?.getTime() ?? 0
  t.ok(expiresAt >= endedAt + expiration, `its new expiry is counted from the write (${expiresAt - endedAt} ms after the body ended)`)
  t.ok(expiresAt > answeredAt, `the new expiry is in the future (${expiresAt - answeredAt} ms ahead)`)
  t.equal(await storedSize(storage, id), 120_000, 'the bytes of the whole PATCH are stored')
  t.ok((await stored(storage, id))?.equals(data.subarray(0, 120_000)), 'byte for byte')

  // The lock is gone: once the new expiry passes, the cleanup takes it.
  await waitFor(() => Date.now() > expiresAt + 20, 3000, 'the new expiry to pass')
  t.equal(await app.tus.cleanupExpired(), 1, 'the cleanup removes it once its new expiry has passed')
  t.equal(await app.tus.get(id), undefined, 'no row')
  t.equal(await stored(storage, id), null, 'no file')
})

t.test('a client that drops its socket mid-PATCH and resumes at once (HEAD, then PATCH from that offset) is served within a second', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = bytes(400_000, 305)
  const url = await create(endpoint, { 'Upload-Length': String(data.length) })

  const streaming = startPatch(url, 0, data.subarray(0, 150_000), data.length)
  await waitFor(async () => await storedSize(storage, idOf(url)) === 150_000, 3000, 'the first 150000 bytes on disk')
  streaming.response.catch(() => {})
  const droppedAt = Date.now()
  streaming.request.destroy()

  // Resume the way a client does: HEAD for the offset, PATCH the rest. Until the server
  // has seen the disconnect, the PATCH may meet the lock (423) or the old offset (409).
  // (Timed until the upload is writable again: on the S3 store not the writes of the resumed body, see timedResume.)
  const answers: string[] = []
  let offset = -1
  let servedAt = Date.now()
  for (;;) {
    const h = await head(url)
    t.equal(h.status, 200, 'HEAD answers while resuming')
    offset = Number(h.headers['upload-offset'])
    const { res, at } = await timedResume(url, offset, data.subarray(offset))
    servedAt = at
    answers.push(`${res.status}@${offset}`)
    if (res.status === 204) {
      t.equal(res.headers['upload-offset'], String(data.length), 'the resumed PATCH completes the upload')
      break
    }
    if ((res.status !== 423 && res.status !== 409) || Date.now() - droppedAt > 1000) {
      t.fail(`not resumed: ${res.status} ${res.text}`)
      break
    }
    await sleep(10)
  }
  const elapsed = servedAt - droppedAt
  t.ok(elapsed < 1000, `served within a second of the disconnect (${elapsed} ms; answers ${answers.join(', ')})`)
  if (ON_OBJECTS) {
    // 150000 bytes of a 400000-byte body: no part (5 MiB) and no tail was completed.
    t.comment(CUT_BODY_NOT_KEPT)
    t.equal(offset, 0, `${OBJECT_STORE}: the resume started at 0, nothing of the cut body was kept`)
  } else {
    t.equal(offset, 150_000, 'the resume started where the received bytes ended')
  }
  await assertStored(t, url, storage, data, 'after the resume')
})
