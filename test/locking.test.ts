/** One writer per upload: a concurrent PATCH is refused with 423; a disconnect frees the upload at once. */
import t, { type Test } from 'tap'
import type { ClientRequest } from 'node:http'
import { startServer } from './helpers/server.js'
import { OCTET, TUS, bytes, create, digest, patch, send, type Response } from './helpers/http.js'
import { CHUNKED_REFUSED, CUT_BODY_NOT_KEPT, OBJECT_STORE, ON_OBJECTS, assertError, assertStored, head, idOf, sleep, stored, storedSize, timedResume, waitFor, type Storage } from './helpers/tus.js'

interface Streaming {
  request: ClientRequest
  response: Promise<Response>
}

/** Starts a PATCH at `offset` and writes `first` of its body; the rest is up to the test. */
function startPatch (url: string, offset: number, first: Buffer, headers: Record<string, string> = {}): Streaming {
  let request: ClientRequest | undefined
  const response = send('PATCH', url, {
    headers: { ...TUS, ...OCTET, 'Upload-Offset': String(offset), ...headers },
    stream: (req) => { request = req; req.write(first) }
  })
  if (request === undefined) throw new Error('send did not hand out the request')
  return { request, response }
}

/** Destroys the client side of a streaming PATCH; the request's own error is expected and ignored. */
function disconnect (streaming: Streaming): void {
  streaming.response.catch(() => {})
  streaming.request.destroy()
}

/**
 * Resumes the way a client does: HEAD for the offset, PATCH the rest from there,
 * retrying while the server has not yet noticed the disconnect. Answers the offset
 * the successful PATCH started from and how long it took (on the S3 store, until
 * the upload was writable: timedResume).
 */
async function resume (t: Test, url: string, storage: Storage, data: Buffer, deadlineMs: number, checksum = false): Promise<{ offset: number; elapsed: number; before: Buffer | null }> {
  const started = Date.now()
  while (true) {
    const h = await head(url)
    t.equal(h.status, 200, 'HEAD works while resuming')
    const offset = Number(h.headers['upload-offset'])
    const before = await stored(storage, idOf(url))
    const rest = data.subarray(offset)
    const { res, at } = await timedResume(url, offset, rest, !checksum ? {} : { 'Upload-Checksum': `sha256 ${digest('sha256', rest)}` })
    if (res.status === 204) return { offset, elapsed: at - started, before }
    if (res.status !== 423 && res.status !== 409) {
      t.fail(`unexpected ${res.status} while resuming: ${res.text}`)
      return { offset, elapsed: Date.now() - started, before }
    }
    if (Date.now() - started > deadlineMs) {
      t.fail(`could not resume within ${deadlineMs} ms (last answer ${res.status} ${res.text})`)
      return { offset, elapsed: Date.now() - started, before }
    }
    await sleep(20)
  }
}

t.test('a second PATCH while one is streaming answers 423 at once; the first one finishes', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = bytes(300_000, 61)
  const url = await create(endpoint, { 'Upload-Length': '300000' })
  const other = await create(endpoint, { 'Upload-Length': '5' })

  const first = startPatch(url, 0, data.subarray(0, 100_000), { 'Content-Length': '300000' })
  await waitFor(async () => await storedSize(storage, idOf(url)) === 100_000, 3000, 'the first 100000 bytes on disk')

  for (const offset of [0, 100_000]) {
    const started = Date.now()
    const res = await patch(url, offset, data.subarray(offset, offset + 1000))
    assertError(t, res, 423, `second PATCH at ${offset}`)
    t.ok(Date.now() - started < 1000, `423 came at once (${Date.now() - started} ms)`)
  }
  // A big second body is refused just the same, without waiting for it.
  const big = await patch(url, 0, bytes(2 * 1024 * 1024, 62))
  assertError(t, big, 423, 'big second PATCH')

  const del = await send('DELETE', url, { headers: TUS })
  assertError(t, del, 423, 'DELETE while streaming')

  const h = await head(url)
  t.equal(h.status, 200, 'HEAD is not blocked')
  t.equal(h.headers['upload-offset'], '0', 'offset moves only when the PATCH ends')

  // Another upload is not blocked by this one.
  t.equal((await patch(other, 0, Buffer.from('hello'))).status, 204, 'another upload is writable')

  t.equal(await storedSize(storage, idOf(url)), 100_000, 'the refused PATCHes wrote nothing')
  first.request.end(data.subarray(100_000))
  const res = await first.response
  t.equal(res.status, 204, 'the first PATCH completes')
  t.equal(res.headers['upload-offset'], '300000')
  await assertStored(t, url, storage, data)
})

t.test('after a client disconnects mid-body, a resume at the HEAD offset succeeds within a second and keeps the received bytes', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = bytes(300_000, 63)
  const url = await create(endpoint, { 'Upload-Length': '300000' })

  const first = startPatch(url, 0, data.subarray(0, 100_000), { 'Content-Length': '300000' })
  await waitFor(async () => await storedSize(storage, idOf(url)) === 100_000, 3000, 'the first 100000 bytes on disk')
  assertError(t, await patch(url, 0, data.subarray(0, 10)), 423, 'locked while streaming')
  disconnect(first)

  const { offset, elapsed, before } = await resume(t, url, storage, data, 1000)
  t.ok(elapsed < 1000, `resumed within a second (${elapsed} ms)`)
  if (ON_OBJECTS) {
    // 100000 bytes of a 300000-byte body: no part (5 MiB) and no tail was completed.
    t.comment(CUT_BODY_NOT_KEPT)
    t.equal(offset, 0, `${OBJECT_STORE}: nothing of the cut body was kept`)
    t.equal(before, null, `${OBJECT_STORE}: the bucket held nothing of the upload`)
  } else {
    t.equal(offset, 100_000, 'the bytes received before the disconnect were kept')
    t.ok(before !== null && before.length >= offset, 'the file holds at least the kept bytes')
    t.ok(before?.subarray(0, offset).equals(data.subarray(0, offset)), 'the bytes before the offset equal the source')
  }
  await assertStored(t, url, storage, data, 'after the resume')
})

t.test('the same with a chunked body (no Content-Length)', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = bytes(300_000, 64)
  const url = await create(endpoint, { 'Upload-Length': '300000' })
  t.equal((await patch(url, 0, data.subarray(0, 1000))).status, 204)

  const first = startPatch(url, 1000, data.subarray(1000, 51_000))
  if (ON_OBJECTS) {
    t.comment(CHUNKED_REFUSED)
    const res = await first.response
    assertError(t, res, 411, `chunked body on ${OBJECT_STORE}, answered before it is read`)
    first.request.destroy()
    await assertStored(t, url, storage, data.subarray(0, 1000), 'nothing of the chunked body kept')
    const { offset } = await resume(t, url, storage, data, 1000)
    t.equal(offset, 1000, 'resumed at the offset before it')
    await assertStored(t, url, storage, data, 'after the resume')
    return
  }
  await waitFor(async () => await storedSize(storage, idOf(url)) === 51_000, 3000, 'the streamed bytes on disk')
  disconnect(first)

  const { offset, elapsed, before } = await resume(t, url, storage, data, 1000)
  t.ok(elapsed < 1000, `resumed within a second (${elapsed} ms)`)
  t.equal(offset, 51_000, 'the bytes received before the disconnect were kept')
  t.ok(before?.subarray(0, offset).equals(data.subarray(0, offset)), 'the bytes before the offset equal the source')
  await assertStored(t, url, storage, data, 'after the resume')
})

t.test('with Upload-Checksum, a disconnected chunk is dropped entirely', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const data = bytes(300_000, 65)
  const url = await create(endpoint, { 'Upload-Length': '300000' })
  t.equal((await patch(url, 0, data.subarray(0, 20_000))).status, 204)

  const rest = data.subarray(20_000)
  const first = startPatch(url, 20_000, rest.subarray(0, 100_000), {
    'Content-Length': String(rest.length),
    'Upload-Checksum': `sha256 ${digest('sha256', rest)}`
  })
  await waitFor(async () => await storedSize(storage, idOf(url)) === 120_000, 3000, 'the streamed bytes on disk')
  disconnect(first)

  // Wait until the server has let go of the upload, then look.
  const started = Date.now()
  let probe = await patch(url, 20_000, Buffer.alloc(0))
  while (probe.status === 423 && Date.now() - started < 1000) {
    await sleep(20)
    probe = await patch(url, 20_000, Buffer.alloc(0))
  }
  t.equal(probe.status, 204, `the upload is free again within a second (${Date.now() - started} ms)`)
  t.equal(probe.headers['upload-offset'], '20000', 'the offset did not move')
  await assertStored(t, url, storage, data.subarray(0, 20_000), 'the unverified bytes are gone')
  t.equal((await app.tus.get(idOf(url)))?.offset, 20_000)

  const { offset } = await resume(t, url, storage, data, 1000, true)
  t.equal(offset, 20_000)
  await assertStored(t, url, storage, data, 'after the resume')
})

t.test('the lock is released after every kind of failed PATCH', async (t) => {
  const { endpoint, storage } = await startServer(t, { maxChunkSize: 10_000 })
  const data = bytes(5000, 66)
  const url = await create(endpoint, { 'Upload-Length': '5000' })
  for (const [status, make] of [
    [409, () => patch(url, 7, data)],
    [460, () => patch(url, 0, data, { 'Upload-Checksum': `sha256 ${digest('sha256', Buffer.from('x'))}` })],
    [413, () => patch(url, 0, bytes(5001))],
    [400, () => patch(url, 0, data, { 'Upload-Length': '4000' })]
  ] as Array<[number, () => Promise<Response>]>) {
    assertError(t, await make(), status, `${status}`)
  }
  const ok = await patch(url, 0, data)
  t.equal(ok.status, 204, 'a good PATCH after all of them is not locked out')
  await assertStored(t, url, storage, data)
})
