/** creation-with-upload: a POST body is written at offset 0; a failed body leaves no upload behind. */
import t from 'tap'
import { startServer } from './helpers/server.js'
import { OCTET, TUS, bytes, digest, send } from './helpers/http.js'
import { CHUNKED_REFUSED, OBJECT_STORE, ON_OBJECTS, assertError, assertNothingStored, assertStored, head, idOf, stored } from './helpers/tus.js'

type Headers = Record<string, string | string[]>
const post = async (endpoint: string, headers: Headers, body?: Buffer | string) =>
  send('POST', endpoint + '/', { headers: { ...TUS, ...headers }, body })

t.test('a body with application/offset+octet-stream is written at offset 0', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const data = bytes(10_000, 11)
  const res = await post(endpoint, { ...OCTET, 'Upload-Length': '25000' }, data)
  t.equal(res.status, 201)
  t.equal(res.headers['upload-offset'], '10000')
  t.equal(res.headers['tus-resumable'], '1.0.0')
  const url = res.headers.location as string
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/files\/[A-Za-z0-9_-]+$/)
  await assertStored(t, url, storage, data)
  const h = await head(url)
  t.equal(h.headers['upload-length'], '25000')
  const record = await app.tus.get(idOf(url))
  t.equal(record?.offset, 10_000)
  t.equal(record?.completedAt, null)
})

t.test('a body that is the whole upload completes it', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const data = bytes(4096, 12)
  const res = await post(endpoint, { ...OCTET, 'Upload-Length': '4096' }, data)
  t.equal(res.status, 201)
  t.equal(res.headers['upload-offset'], '4096')
  const url = res.headers.location as string
  await assertStored(t, url, storage, data)
  t.ok((await app.tus.get(idOf(url)))?.completedAt instanceof Date)
  const get = await send('GET', url)
  t.equal(get.status, 200)
  t.ok(get.body.equals(data))
})

t.test('a creation body may be sent chunked (no Content-Length)', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const data = bytes(70_000, 13)
  const res = await send('POST', endpoint + '/', {
    headers: { ...TUS, ...OCTET, 'Upload-Length': '70000' },
    stream: (req) => {
      req.write(data.subarray(0, 30_000))
      setTimeout(() => req.end(data.subarray(30_000)), 20)
    }
  })
  if (ON_OBJECTS) {
    t.comment(CHUNKED_REFUSED)
    assertError(t, res, 411, `chunked creation body on ${OBJECT_STORE}`)
    await assertNothingStored(t, app, storage)
    return
  }
  t.equal(res.status, 201)
  t.equal(res.headers['upload-offset'], '70000')
  await assertStored(t, res.headers.location as string, storage, data)
})

t.test('a creation body with a deferred length', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = bytes(1234, 14)
  const res = await post(endpoint, { ...OCTET, 'Upload-Defer-Length': '1' }, data)
  t.equal(res.status, 201)
  t.equal(res.headers['upload-offset'], '1234')
  const url = res.headers.location as string
  const h = await head(url)
  t.equal(h.headers['upload-defer-length'], '1')
  t.equal(h.headers['upload-length'], undefined)
  await assertStored(t, url, storage, data)
})

t.test('a creation body with a matching Upload-Checksum is accepted', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = bytes(2000, 15)
  const res = await post(endpoint, { ...OCTET, 'Upload-Length': '5000', 'Upload-Checksum': `sha256 ${digest('sha256', data)}` }, data)
  t.equal(res.status, 201)
  t.equal(res.headers['upload-offset'], '2000')
  await assertStored(t, res.headers.location as string, storage, data)
})

t.test('a creation body with another Content-Type answers 415 and stores nothing', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const data = Buffer.from('hello')
  for (const type of ['application/octet-stream', 'text/plain', 'application/json', 'multipart/form-data; boundary=x']) {
    const res = await post(endpoint, { 'Content-Type': type, 'Upload-Length': '5' }, data)
    assertError(t, res, 415, type)
    t.equal(res.headers.location, undefined, `${type}: no Location`)
  }
  const none = await post(endpoint, { 'Upload-Length': '5' }, data)
  assertError(t, none, 415, 'no Content-Type')
  await assertNothingStored(t, app, storage)
})

t.test('Content-Type parameters and case do not matter', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = Buffer.from('hello')
  const res = await post(endpoint, { 'Content-Type': 'Application/Offset+Octet-Stream; charset=binary', 'Upload-Length': '5' }, data)
  t.equal(res.status, 201)
  await assertStored(t, res.headers.location as string, storage, data)
})

t.test('a creation body with a bad Upload-Checksum answers 460 and no upload remains', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const data = bytes(3000, 16)
  const wrong = digest('sha256', Buffer.concat([data, Buffer.from('x')]))
  const res = await post(endpoint, { ...OCTET, 'Upload-Length': '3000', 'Upload-Checksum': `sha256 ${wrong}` }, data)
  assertError(t, res, 460)
  t.equal(res.headers.location, undefined)
  await assertNothingStored(t, app, storage)

  // Also when the body is only the first part of the upload, and for another algorithm.
  const res2 = await post(endpoint, { ...OCTET, 'Upload-Length': '9000', 'Upload-Checksum': `md5 ${digest('md5', Buffer.from('nope'))}` }, data)
  assertError(t, res2, 460, 'partial body, md5')
  await assertNothingStored(t, app, storage)
})

t.test('a malformed or unsupported Upload-Checksum on creation answers 400 and stores nothing', async (t) => {
  const { app, endpoint, storage } = await startServer(t, { checksumAlgorithms: ['sha256'] })
  const data = Buffer.from('hello')
  for (const checksum of [`crc32 ${digest('sha256', data)}`, `md5 ${digest('md5', data)}`, 'sha256 !!!!', 'sha256']) {
    const res = await post(endpoint, { ...OCTET, 'Upload-Length': '5', 'Upload-Checksum': checksum }, data)
    assertError(t, res, 400, checksum)
  }
  await assertNothingStored(t, app, storage)
})

t.test('a creation body past Upload-Length answers 413 and no upload remains', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const data = bytes(101, 17)
  const res = await post(endpoint, { ...OCTET, 'Upload-Length': '100' }, data)
  assertError(t, res, 413, 'with Content-Length')
  await assertNothingStored(t, app, storage)

  // Chunked: the server only learns the size while streaming.
  const chunked = await send('POST', endpoint + '/', {
    headers: { ...TUS, ...OCTET, 'Upload-Length': '100' },
    stream: (req) => { req.write(data.subarray(0, 60)); req.end(data.subarray(60)) }
  })
  if (ON_OBJECTS) t.comment(CHUNKED_REFUSED)
  assertError(t, chunked, ON_OBJECTS ? 411 : 413, 'chunked')
  await assertNothingStored(t, app, storage)
})

t.test('a creation body larger than maxChunkSize answers 413 and no upload remains', async (t) => {
  const { app, endpoint, storage } = await startServer(t, { maxChunkSize: 1000 })
  const res = await post(endpoint, { ...OCTET, 'Upload-Length': '5000' }, bytes(1001, 18))
  assertError(t, res, 413)
  await assertNothingStored(t, app, storage)
  const ok = await post(endpoint, { ...OCTET, 'Upload-Length': '5000' }, bytes(1000, 18))
  t.equal(ok.status, 201)
  t.equal(ok.headers['upload-offset'], '1000')
  t.ok((await stored(storage, idOf(ok.headers.location as string)))?.equals(bytes(1000, 18)), 'the 1000 bytes are stored')
})

t.test('an empty creation body with the octet-stream type is a plain creation', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const res = await post(endpoint, { ...OCTET, 'Upload-Length': '10' }, Buffer.alloc(0))
  t.equal(res.status, 201)
  t.equal(res.headers['upload-offset'], '0')
  await assertStored(t, res.headers.location as string, storage, Buffer.alloc(0))
})
