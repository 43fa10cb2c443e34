/** creation-defer-length: the length is learnt from a later PATCH, set once, never below the offset. */
import t from 'tap'
import { startServer } from './helpers/server.js'
import { TUS, bytes, create, patch, send } from './helpers/http.js'
import { assertError, assertStored, head, idOf, stored } from './helpers/tus.js'

const DEFER = { 'Upload-Defer-Length': '1' }

t.test('POST with Upload-Defer-Length: 1; HEAD says deferred; a later PATCH declares the length and completes', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const res = await send('POST', endpoint + '/', { headers: { ...TUS, ...DEFER } })
  t.equal(res.status, 201)
  t.equal(res.headers['upload-offset'], '0')
  const url = res.headers.location as string
  const id = idOf(url)

  let h = await head(url)
  t.equal(h.status, 200)
  t.equal(h.headers['upload-defer-length'], '1')
  t.equal(h.headers['upload-length'], undefined, 'no Upload-Length while deferred')
  t.equal(h.headers['upload-offset'], '0')
  t.equal((await app.tus.get(id))?.length, null)

  const data = bytes(3000, 7)
  // First chunk without a length: the length stays deferred.
  let p = await patch(url, 0, data.subarray(0, 1000))
  t.equal(p.status, 204)
  t.equal(p.headers['upload-offset'], '1000')
  h = await head(url)
  t.equal(h.headers['upload-defer-length'], '1')
  t.equal(h.headers['upload-length'], undefined)
  t.equal(h.headers['upload-offset'], '1000')

  // Second chunk declares the length.
  p = await patch(url, 1000, data.subarray(1000, 2000), { 'Upload-Length': '3000' })
  t.equal(p.status, 204)
  t.equal(p.headers['upload-offset'], '2000')
  h = await head(url)
  t.equal(h.headers['upload-length'], '3000')
  t.equal(h.headers['upload-defer-length'], undefined, 'Upload-Defer-Length is gone once the length is known')
  t.equal((await app.tus.get(id))?.length, 3000)
  t.equal((await app.tus.get(id))?.completedAt, null)

  // Repeating the same length is fine.
  p = await patch(url, 2000, data.subarray(2000), { 'Upload-Length': '3000' })
  t.equal(p.status, 204)
  t.equal(p.headers['upload-offset'], '3000')
  t.ok((await app.tus.get(id))?.completedAt instanceof Date, 'complete')
  t.ok((await stored(storage, id))?.equals(data), 'stored bytes equal the source')
})

t.test('declaring the length equal to the offset with an empty PATCH completes the upload', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const url = await create(endpoint, DEFER)
  const data = bytes(500, 3)
  t.equal((await patch(url, 0, data)).status, 204)
  const p = await patch(url, 500, Buffer.alloc(0), { 'Upload-Length': '500' })
  t.equal(p.status, 204)
  t.equal(p.headers['upload-offset'], '500')
  const h = await head(url)
  t.equal(h.headers['upload-length'], '500')
  t.equal(h.headers['upload-offset'], '500')
  const record = await app.tus.get(idOf(url))
  t.equal(record?.length, 500)
  t.ok(record?.completedAt instanceof Date, 'complete')
  await assertStored(t, url, storage, data)
})

t.test('a deferred upload can declare length 0 on its first PATCH', async (t) => {
  const { app, endpoint } = await startServer(t)
  const url = await create(endpoint, DEFER)
  const p = await patch(url, 0, Buffer.alloc(0), { 'Upload-Length': '0' })
  t.equal(p.status, 204)
  t.equal(p.headers['upload-offset'], '0')
  t.ok((await app.tus.get(idOf(url)))?.completedAt instanceof Date)
})

t.test('Upload-Length smaller than the offset answers 400 and changes nothing', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const url = await create(endpoint, DEFER)
  const data = bytes(1000, 5)
  t.equal((await patch(url, 0, data)).status, 204)

  const res = await patch(url, 1000, Buffer.from('more'), { 'Upload-Length': '999' })
  assertError(t, res, 400)
  const h = await head(url)
  t.equal(h.headers['upload-defer-length'], '1', 'still deferred')
  t.equal(h.headers['upload-length'], undefined)
  t.equal((await app.tus.get(idOf(url)))?.length, null)
  await assertStored(t, url, storage, data)
})

t.test('changing an already set length answers 400 and changes nothing', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const url = await create(endpoint, DEFER)
  const data = bytes(100, 9)
  t.equal((await patch(url, 0, data.subarray(0, 40), { 'Upload-Length': '100' })).status, 204)

  for (const length of ['99', '101', '40', '1000']) {
    const res = await patch(url, 40, data.subarray(40), { 'Upload-Length': length })
    assertError(t, res, 400, `Upload-Length ${length}`)
  }
  t.equal((await app.tus.get(idOf(url)))?.length, 100)
  await assertStored(t, url, storage, data.subarray(0, 40), 'after the rejected PATCHes')

  // Same for an upload created with its length.
  const fixed = await create(endpoint, { 'Upload-Length': '10' })
  const res = await patch(fixed, 0, Buffer.from('0123456789'), { 'Upload-Length': '11' })
  assertError(t, res, 400, 'fixed length')
  await assertStored(t, fixed, storage, Buffer.alloc(0))
  const same = await patch(fixed, 0, Buffer.from('0123456789'), { 'Upload-Length': '10' })
  t.equal(same.status, 204, 'repeating the length it was created with is fine')
})

t.test('a malformed Upload-Length on PATCH answers 400', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const url = await create(endpoint, DEFER)
  for (const value of ['abc', '-1', '1e3', '9007199254740993']) {
    const res = await patch(url, 0, Buffer.from('x'), { 'Upload-Length': value })
    assertError(t, res, 400, `Upload-Length ${value}`)
  }
  const h = await head(url)
  t.equal(h.headers['upload-defer-length'], '1')
  await assertStored(t, url, storage, Buffer.alloc(0))
})

t.test('a deferred length above maxSize answers 413; bytes past maxSize answer 413', async (t) => {
  const { app, endpoint, storage } = await startServer(t, { maxSize: 100 })
  const url = await create(endpoint, DEFER)
  const res = await patch(url, 0, Buffer.alloc(0), { 'Upload-Length': '101' })
  assertError(t, res, 413, 'declared length')
  t.equal((await app.tus.get(idOf(url)))?.length, null, 'still deferred')

  const data = bytes(101, 4)
  const big = await patch(url, 0, data)
  assertError(t, big, 413, 'body past maxSize')
  await assertStored(t, url, storage, Buffer.alloc(0), 'nothing kept')

  t.equal((await patch(url, 0, data.subarray(0, 100))).status, 204, 'exactly maxSize fits')
  t.equal((await patch(url, 100, Buffer.alloc(0), { 'Upload-Length': '100' })).status, 204)
  t.ok((await app.tus.get(idOf(url)))?.completedAt instanceof Date)
})

t.test('a PATCH that declares a length and then breaks it keeps nothing, not even the length', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const url = await create(endpoint, DEFER)
  const data = bytes(10, 8)

  // The client declares 5 but sends 10 bytes: 413, and the request must leave no trace.
  const res = await patch(url, 0, data, { 'Upload-Length': '5' })
  assertError(t, res, 413, 'body past the declared length')
  const h = await head(url)
  t.equal(h.headers['upload-defer-length'], '1', 'still deferred after the rejected PATCH')
  t.equal(h.headers['upload-length'], undefined, 'no Upload-Length after the rejected PATCH')
  t.equal((await app.tus.get(idOf(url)))?.length, null, 'the row has no length')
  await assertStored(t, url, storage, Buffer.alloc(0))

  // So the corrected retry goes through.
  const retry = await patch(url, 0, data, { 'Upload-Length': '10' })
  t.equal(retry.status, 204, `the corrected retry is accepted (${retry.text})`)
  await assertStored(t, url, storage, retry.status === 204 ? data : Buffer.alloc(0))
})

t.test('a PATCH that declares a length with a bad checksum keeps nothing, not even the length', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const url = await create(endpoint, DEFER)
  const data = bytes(10, 9)
  const res = await patch(url, 0, data, { 'Upload-Length': '10', 'Upload-Checksum': 'sha1 ' + Buffer.alloc(20).toString('base64') })
  assertError(t, res, 460)
  t.equal((await head(url)).headers['upload-defer-length'], '1', 'still deferred after the 460')
  t.equal((await app.tus.get(idOf(url)))?.length, null, 'the row has no length after the 460')
  await assertStored(t, url, storage, Buffer.alloc(0))
})
