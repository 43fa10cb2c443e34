/** X-HTTP-Method-Override: a POST to an upload URL standing in for PATCH, DELETE or HEAD. */
import t from 'tap'
import { startServer } from './helpers/server.js'
import { OCTET, TUS, bytes, create, send } from './helpers/http.js'
import { assertError, head, idOf, stored } from './helpers/tus.js'

const override = async (url: string, method: string, headers: Record<string, string> = {}, body?: Buffer) =>
  send('POST', url, { headers: { ...TUS, 'X-HTTP-Method-Override': method, ...headers }, body })

t.test('override PATCH writes like a PATCH', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const data = bytes(2000, 1)
  const url = await create(endpoint, { 'Upload-Length': String(data.length) })
  let res = await override(url, 'PATCH', { ...OCTET, 'Upload-Offset': '0' }, data.subarray(0, 1200))
  t.equal(res.status, 204, res.text)
  t.equal(res.headers['upload-offset'], '1200')
  t.equal(res.headers['tus-resumable'], '1.0.0')
  t.equal((await head(url)).headers['upload-offset'], '1200')

  // lower case works too
  res = await override(url, 'patch', { ...OCTET, 'Upload-Offset': '1200' }, data.subarray(1200))
  t.equal(res.status, 204, res.text)
  t.equal(res.headers['upload-offset'], '2000')
  t.ok((await stored(storage, idOf(url)))?.equals(data), 'bytes on disk are exact')
  t.ok((await app.tus.get(idOf(url)))?.completedAt instanceof Date, 'finished')

  // the same rules as PATCH: wrong offset is 409
  const other = await create(endpoint, { 'Upload-Length': '10' })
  res = await override(other, 'PATCH', { ...OCTET, 'Upload-Offset': '3' }, Buffer.from('abc'))
  assertError(t, res, 409, 'offset mismatch')
  res = await override(other, 'PATCH', { 'Content-Type': 'application/octet-stream', 'Upload-Offset': '0' }, Buffer.from('abc'))
  assertError(t, res, 415, 'wrong content type')
})

t.test('override DELETE terminates', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': '10' })
  const res = await override(url, 'DELETE')
  t.equal(res.status, 204, res.text)
  t.equal((await head(url)).status, 404)
  t.equal(await app.tus.get(idOf(url)), undefined)
  t.equal(await stored(storage, idOf(url)), null)
  assertError(t, await override(url, 'DELETE'), 404, 'second time')
})

t.test('override HEAD answers the HEAD headers', async (t) => {
  const { endpoint } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': '10', 'Upload-Metadata': `name ${Buffer.from('x.txt').toString('base64')}` })
  await send('PATCH', url, { headers: { ...TUS, ...OCTET, 'Upload-Offset': '0' }, body: 'abcd' })
  const res = await override(url, 'HEAD')
  t.equal(res.status, 200, res.text)
  t.equal(res.headers['upload-offset'], '4')
  t.equal(res.headers['upload-length'], '10')
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers['upload-metadata'], `name ${Buffer.from('x.txt').toString('base64')}`)
  t.equal(res.headers['tus-resumable'], '1.0.0')
  const real = await head(url)
  t.equal(res.headers['upload-offset'], real.headers['upload-offset'])
  t.equal(res.headers['upload-length'], real.headers['upload-length'])
})

t.test('POST to an upload URL without an override: 405', async (t) => {
  const { endpoint } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': '10' })
  const res = await send('POST', url, { headers: { ...TUS, ...OCTET, 'Upload-Offset': '0' }, body: 'abc' })
  assertError(t, res, 405)
  t.match(String(res.headers.allow), /PATCH/)
  t.equal((await head(url)).headers['upload-offset'], '0', 'nothing written')
})

t.test('override with GET, POST, PUT or garbage: 405', async (t) => {
  const { endpoint } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': '10' })
  for (const method of ['GET', 'POST', 'PUT', 'OPTIONS', 'garbage', '']) {
    const res = await override(url, method, { ...OCTET, 'Upload-Offset': '0' }, Buffer.from('abc'))
    assertError(t, res, 405, `override "${method}"`)
  }
  t.equal((await head(url)).headers['upload-offset'], '0', 'nothing written')
  t.equal((await head(url)).status, 200, 'not deleted')
})

t.test('override on the creation URL is refused', async (t) => {
  const { app, endpoint } = await startServer(t)
  const res = await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': '10', 'X-HTTP-Method-Override': 'PATCH' } })
  assertError(t, res, 405)
  t.same(await app.tus.list(), [])
})

t.test('override still needs Tus-Resumable', async (t) => {
  const { endpoint } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': '10' })
  const res = await send('POST', url, { headers: { 'X-HTTP-Method-Override': 'DELETE' } })
  assertError(t, res, 412)
  t.equal((await head(url)).status, 200)
})
