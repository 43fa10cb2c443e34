/** Size limits: maxChunkSize, maxSize, and Fastify's bodyLimit not applying to tus bodies. */
import t from 'tap'
import { startServer } from './helpers/server.js'
import { OCTET, TUS, bytes, create, digest, patch, send } from './helpers/http.js'
import { CHUNKED_REFUSED, OBJECT_STORE, ON_OBJECTS, assertError, assertNothingStored, assertStored } from './helpers/tus.js'

const MiB = 1024 * 1024

t.test('a 5 MiB single PATCH is stored (Fastify bodyLimit does not apply)', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = bytes(5 * MiB, 51)
  const url = await create(endpoint, { 'Upload-Length': String(data.length) })
  const res = await patch(url, 0, data)
  t.equal(res.status, 204, res.text)
  t.equal(res.headers['upload-offset'], String(5 * MiB))
  await assertStored(t, url, storage, data)
})

t.test('a 5 MiB chunked PATCH with a checksum is stored', async (t) => {
  const { endpoint, storage } = await startServer(t)
  const data = bytes(5 * MiB, 52)
  const url = await create(endpoint, { 'Upload-Length': String(data.length) })
  const res = await send('PATCH', url, {
    headers: { ...TUS, ...OCTET, 'Upload-Offset': '0', 'Upload-Checksum': `sha256 ${digest('sha256', data)}` },
    stream: (req) => {
      for (let i = 0; i < data.length; i += MiB) req.write(data.subarray(i, i + MiB))
      req.end()
    }
  })
  if (ON_OBJECTS) {
    t.comment(CHUNKED_REFUSED)
    assertError(t, res, 411, `chunked body on ${OBJECT_STORE}`)
    await assertStored(t, url, storage, Buffer.alloc(0), 'nothing of it stored')
    return
  }
  t.equal(res.status, 204, res.text)
  await assertStored(t, url, storage, data)
})

t.test('bodies over an explicit small Fastify bodyLimit still work', async (t) => {
  const { endpoint, storage } = await startServer(t, {}, undefined, { bodyLimit: 1024 })
  const data = bytes(2 * MiB, 53)
  // creation-with-upload
  const res = await send('POST', endpoint + '/', { headers: { ...TUS, ...OCTET, 'Upload-Length': String(data.length) }, body: data.subarray(0, MiB) })
  t.equal(res.status, 201, res.text)
  t.equal(res.headers['upload-offset'], String(MiB))
  const url = res.headers.location as string
  const p = await patch(url, MiB, data.subarray(MiB))
  t.equal(p.status, 204, p.text)
  await assertStored(t, url, storage, data)
})

t.test('maxChunkSize: a bigger PATCH body answers 413 and nothing of it is kept', async (t) => {
  const { endpoint, storage } = await startServer(t, { maxChunkSize: 1000 })
  const data = bytes(3000, 54)
  const url = await create(endpoint, { 'Upload-Length': '3000' })

  t.equal((await patch(url, 0, data.subarray(0, 1000))).status, 204, 'exactly maxChunkSize fits')

  assertError(t, await patch(url, 1000, data.subarray(1000, 2001)), 413, 'with Content-Length')
  await assertStored(t, url, storage, data.subarray(0, 1000), 'after Content-Length case')

  const chunked = await send('PATCH', url, {
    headers: { ...TUS, ...OCTET, 'Upload-Offset': '1000' },
    stream: (req) => {
      req.write(data.subarray(1000, 1600))
      setTimeout(() => req.end(data.subarray(1600, 2500)), 30)
    }
  })
  if (ON_OBJECTS) t.comment(CHUNKED_REFUSED)
  assertError(t, chunked, ON_OBJECTS ? 411 : 413, 'chunked')
  await assertStored(t, url, storage, data.subarray(0, 1000), 'after the chunked case')

  t.equal((await patch(url, 1000, data.subarray(1000, 2000))).status, 204)
  t.equal((await patch(url, 2000, data.subarray(2000))).status, 204)
  await assertStored(t, url, storage, data)
})

t.test('maxSize: creation above it is 413; a deferred upload cannot grow past it', async (t) => {
  const { app, endpoint, storage } = await startServer(t, { maxSize: 5000 })
  assertError(t, await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': '5001' } }), 413, 'Upload-Length')
  assertError(t, await send('POST', endpoint + '/', { headers: { ...TUS, ...OCTET, 'Upload-Defer-Length': '1' }, body: bytes(5001) }), 413, 'deferred creation body')
  await assertNothingStored(t, app, storage)

  const data = bytes(5001, 55)
  const url = await create(endpoint, { 'Upload-Defer-Length': '1' })
  t.equal((await patch(url, 0, data.subarray(0, 3000))).status, 204)
  assertError(t, await patch(url, 3000, data.subarray(3000)), 413, 'PATCH past maxSize')
  await assertStored(t, url, storage, data.subarray(0, 3000), 'nothing of the rejected PATCH')
  assertError(t, await patch(url, 3000, Buffer.alloc(0), { 'Upload-Length': '5001' }), 413, 'declared length past maxSize')
  t.equal((await app.tus.get(url.split('/').pop()!))?.length, null, 'still deferred')
  t.equal((await patch(url, 3000, data.subarray(3000, 5000), { 'Upload-Length': '5000' })).status, 204, 'up to maxSize')
  await assertStored(t, url, storage, data.subarray(0, 5000))
})

t.test('maxSize and maxChunkSize are advertised / enforced together', async (t) => {
  const { endpoint, storage } = await startServer(t, { maxSize: 2500, maxChunkSize: 1000 })
  const opts = await send('OPTIONS', endpoint + '/')
  t.equal(opts.headers['tus-max-size'], '2500')
  const data = bytes(2500, 56)
  const url = await create(endpoint, { 'Upload-Length': '2500' })
  t.equal((await patch(url, 0, data.subarray(0, 1000))).status, 204)
  t.equal((await patch(url, 1000, data.subarray(1000, 2000))).status, 204)
  assertError(t, await patch(url, 2000, bytes(1000, 57)), 413, 'past Upload-Length')
  t.equal((await patch(url, 2000, data.subarray(2000))).status, 204)
  await assertStored(t, url, storage, data)
})
