/** PATCH: Content-Type, Upload-Offset, the length limit and upload ids. */
import t from 'tap'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { startServer } from './helpers/server.js'
import { OCTET, TUS, bytes, create, patch, send } from './helpers/http.js'
import { everything } from './helpers/store.js'
import { CHUNKED_REFUSED, OBJECT_STORE, ON_OBJECTS, assertError, assertNothingStored, assertStored, head, idOf, storedSize } from './helpers/tus.js'

t.test('chunks of different sizes append in order; every reply carries the new offset', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const data = bytes(200_000, 21)
  const url = await create(endpoint, { 'Upload-Length': '200000' })
  const cuts = [0, 1, 2, 1000, 65_536, 65_537, 150_000, 200_000]
  for (let i = 1; i < cuts.length; i++) {
    const from = cuts[i - 1]!
    const to = cuts[i]!
    const res = await patch(url, from, data.subarray(from, to))
    t.equal(res.status, 204, `chunk ${from}-${to}`)
    t.equal(res.headers['upload-offset'], String(to))
    t.equal(res.headers['tus-resumable'], '1.0.0')
    t.equal(res.body.length, 0, '204 has no body')
  }
  await assertStored(t, url, storage, data)
  t.ok((await app.tus.get(idOf(url)))?.completedAt instanceof Date)
})

t.test('an empty PATCH leaves the offset where it is', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': '10' })
  t.equal((await patch(url, 0, Buffer.from('abc'))).status, 204)
  const res = await patch(url, 3, Buffer.alloc(0))
  t.equal(res.status, 204)
  t.equal(res.headers['upload-offset'], '3')
  await assertStored(t, url, storage, Buffer.from('abc'))
})

t.test('a chunked PATCH body (no Content-Length) is stored', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = bytes(100_000, 22)
  const url = await create(endpoint, { 'Upload-Length': '100000' })
  const res = await send('PATCH', url, {
    headers: { ...TUS, ...OCTET, 'Upload-Offset': '0' },
    stream: (req) => {
      req.write(data.subarray(0, 10_000))
      setTimeout(() => { req.write(data.subarray(10_000, 70_000)); req.end(data.subarray(70_000)) }, 20)
    }
  })
  if (ON_OBJECTS) {
    t.comment(CHUNKED_REFUSED)
    assertError(t, res, 411, `chunked body on ${OBJECT_STORE}`)
    await assertStored(t, url, storage, Buffer.alloc(0), 'nothing of it stored')
    return
  }
  t.equal(res.status, 204)
  t.equal(res.headers['upload-offset'], '100000')
  await assertStored(t, url, storage, data)
})

t.test('Content-Type other than application/offset+octet-stream answers 415 and writes nothing', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': '5' })
  const cases: Array<[string, Record<string, string>]> = [
    ['none', {}],
    ['application/octet-stream', { 'Content-Type': 'application/octet-stream' }],
    ['text/plain', { 'Content-Type': 'text/plain' }],
    ['application/json', { 'Content-Type': 'application/json' }],
    ['application/offset+octet-streamx', { 'Content-Type': 'application/offset+octet-streamx' }]
  ]
  for (const [label, type] of cases) {
    const res = await send('PATCH', url, { headers: { ...TUS, ...type, 'Upload-Offset': '0' }, body: Buffer.from('hello') })
    assertError(t, res, 415, label)
  }
  // An empty body is no excuse either.
  const empty = await send('PATCH', url, { headers: { ...TUS, 'Content-Type': 'text/plain', 'Upload-Offset': '0' }, body: '' })
  assertError(t, empty, 415, 'empty body')
  await assertStored(t, url, storage, Buffer.alloc(0))
})

t.test('a missing or malformed Upload-Offset answers 400 and writes nothing', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': '5' })
  const missing = await send('PATCH', url, { headers: { ...TUS, ...OCTET }, body: Buffer.from('hello') })
  assertError(t, missing, 400, 'missing')
  const cases: Array<string | string[]> = ['', 'abc', '-1', '1.5', '1e3', ' 0a', '0x0', '9007199254740993', ['0', '0']]
  for (const value of cases) {
    const res = await send('PATCH', url, { headers: { ...TUS, ...OCTET, 'Upload-Offset': value }, body: Buffer.from('hello') })
    assertError(t, res, 400, `Upload-Offset ${JSON.stringify(value)}`)
  }
  await assertStored(t, url, storage, Buffer.alloc(0))
})

t.test('an Upload-Offset that does not match answers 409 and writes nothing', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = bytes(100, 23)
  const url = await create(endpoint, { 'Upload-Length': '100' })
  t.equal((await patch(url, 0, data.subarray(0, 40))).status, 204)

  for (const offset of [0, 39, 41, 60, 100]) {
    const res = await patch(url, offset, data.subarray(offset, offset + 10))
    assertError(t, res, 409, `offset ${offset}`)
    t.equal(await storedSize(storage, idOf(url)), 40, `offset ${offset}: file size unchanged`)
  }
  // A big mismatching body too (the server does not read it).
  const big = await patch(url, 0, bytes(100_000, 24))
  assertError(t, big, 409, 'big body')
  await assertStored(t, url, storage, data.subarray(0, 40))
  const h = await head(url)
  t.equal(h.headers['upload-offset'], '40')

  t.equal((await patch(url, 40, data.subarray(40))).status, 204, 'the right offset still works')
  await assertStored(t, url, storage, data)
})

t.test('a body past Upload-Length answers 413 and nothing of it is kept', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = bytes(1000, 25)
  const url = await create(endpoint, { 'Upload-Length': '1000' })
  t.equal((await patch(url, 0, data.subarray(0, 600))).status, 204)

  // With a Content-Length, known up front.
  let res = await patch(url, 600, Buffer.concat([data.subarray(600), Buffer.from('!')]))
  assertError(t, res, 413, 'with Content-Length')
  await assertStored(t, url, storage, data.subarray(0, 600), 'after the Content-Length case')

  // Chunked: the overflow is only seen while streaming, after some bytes were written.
  res = await send('PATCH', url, {
    headers: { ...TUS, ...OCTET, 'Upload-Offset': '600' },
    stream: (req) => {
      req.write(data.subarray(600, 900))
      setTimeout(() => req.end(Buffer.concat([data.subarray(900), Buffer.from('overflow')])), 30)
    }
  })
  if (ON_OBJECTS) t.comment(CHUNKED_REFUSED)
  assertError(t, res, ON_OBJECTS ? 411 : 413, 'chunked')
  await assertStored(t, url, storage, data.subarray(0, 600), 'after the chunked case')

  t.equal((await patch(url, 600, data.subarray(600))).status, 204, 'the exact rest still fits')
  await assertStored(t, url, storage, data)
})

t.test('a finished upload takes an empty PATCH but no more bytes', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = Buffer.from('0123456789')
  const url = await create(endpoint, { 'Upload-Length': '10' })
  t.equal((await patch(url, 0, data)).status, 204)
  const empty = await patch(url, 10, Buffer.alloc(0))
  t.equal(empty.status, 204)
  t.equal(empty.headers['upload-offset'], '10')
  assertError(t, await patch(url, 10, Buffer.from('x')), 413, 'past the end')
  await assertStored(t, url, storage, data)
})

t.test('a finished upload refuses more bytes sent chunked (no Content-Length)', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = Buffer.from('0123456789')
  const url = await create(endpoint, { 'Upload-Length': '10' })
  t.equal((await patch(url, 0, data)).status, 204)
  const res = await send('PATCH', url, {
    headers: { ...TUS, ...OCTET, 'Upload-Offset': '10' },
    stream: (req) => { req.write('extra'); req.end() }
  })
  assertError(t, res, 413, 'chunked bytes past the end of a finished upload')
  await assertStored(t, url, storage, data)
})

t.test('PATCH on an unknown id answers 404 and creates nothing', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  for (const id of ['doesnotexist', '0123456789abcdef0123456789abcdef', 'a', 'A_b-c']) {
    const res = await patch(`${endpoint}/${id}`, 0, Buffer.from('hello'))
    assertError(t, res, 404, id)
    const h = await head(`${endpoint}/${id}`)
    t.equal(h.status, 404, `${id}: HEAD 404`)
  }
  await assertNothingStored(t, app, storage)
})

t.test('PATCH on an id outside [A-Za-z0-9_-] answers 404 and touches no file', async (t) => {
  const { app, endpoint, dir, uploadDir, storage } = await startServer(t)
  // A real upload next to the attempts, so a traversal could have a target.
  const url = await create(endpoint, { 'Upload-Length': '10' })
  const id = idOf(url)
  const ids = [
    // ('..' and '%2E%2E' alone are not here: the client's URL parser resolves them away before sending.)
    '..%2F..%2Fetc', '..%2Fescape', '..%2F' + id, '.%2E%2Fescape', 'a.b', id + '.x', '.' + id, '.',
    '%C3%A9t%C3%A9', '%E2%98%83', 'a%20b', 'a%00b', 'a%5Cb', '..%5Cescape', id + '%2F', 'a~b', 'a+b', 'a%2Bb'
  ]
  for (const bad of ids) {
    const res = await patch(`${endpoint}/${bad}`, 0, Buffer.from('0123456789'))
    t.equal(res.status, 404, `${bad}: 404 (${res.text})`)
    t.equal(res.headers['tus-resumable'], '1.0.0', `${bad}: Tus-Resumable`)
    t.match(String(res.headers['content-type']), /^text\/plain\b/, `${bad}: text/plain`)
    t.equal((await head(`${endpoint}/${bad}`)).status, 404, `${bad}: HEAD 404`)
  }
  t.notOk(existsSync(join(dir, 'escape')), 'no file next to uploadDir')
  t.notOk(existsSync(join(dir, '..', 'escape')))
  if (storage.objects === undefined) {
    t.same(readdirSync(uploadDir), [id], 'uploadDir holds only the real upload')
  } else {
    t.same(readdirSync(uploadDir), [], 'nothing on disk')
    t.same(await everything(storage.objects), { objects: [], uploads: [] }, 'nothing in the bucket (the real upload has no byte yet)')
  }
  t.same(readdirSync(dir).filter((name) => !name.startsWith('uploads.db')).sort(), ['uploads'], 'nothing else next to it')
  await assertStored(t, url, storage, Buffer.alloc(0), 'the real upload is untouched')
  t.equal((await app.tus.list()).length, 1)
})

t.test('ids the router rejects itself (too long, bad percent-encoding) get a 4xx and touch no file', async (t) => {
  // Fastify answers these before any plugin route runs (maxParamLength 100 -> 414, a malformed
  // escape -> 400), so only the status class and the absence of side effects are the plugin's concern.
  const { app, endpoint, dir, storage } = await startServer(t)
  for (const bad of ['a'.repeat(101), 'x'.repeat(300), 'a%ZZ', '%E0%A4%A']) {
    const res = await patch(`${endpoint}/${bad}`, 0, Buffer.from('0123456789'))
    t.ok(res.status >= 400 && res.status < 500, `${bad.slice(0, 20)}: 4xx (${res.status})`)
  }
  await assertNothingStored(t, app, storage)
  t.same(readdirSync(dir).filter((name) => !name.startsWith('uploads.db')), ['uploads'])
})
