/** termination: DELETE removes the row and the bytes and tells onTerminate. */
import t from 'tap'
import type { TerminateHookPayload } from '../lib/index.js'
import { startServer } from './helpers/server.js'
import { TUS, bytes, create, patch, send } from './helpers/http.js'
import { assertError, head, idOf, stored } from './helpers/tus.js'

t.test('DELETE: 204, then HEAD 404, file and row gone, onTerminate told', async (t) => {
  const calls: TerminateHookPayload[] = []
  const { app, endpoint, storage } = await startServer(t, { onTerminate: (payload) => { calls.push(payload) } })
  const data = bytes(500)
  const url = await create(endpoint, { 'Upload-Length': '1000', 'Upload-Metadata': `filename ${Buffer.from('a.bin').toString('base64')}` })
  t.equal((await patch(url, 0, data)).status, 204)
  const id = idOf(url)
  t.ok((await stored(storage, id))?.equals(data), 'bytes are there before')

  const res = await send('DELETE', url, { headers: TUS })
  t.equal(res.status, 204)
  t.equal(res.headers['tus-resumable'], '1.0.0')
  t.equal(res.body.length, 0)

  const h = await head(url)
  t.equal(h.status, 404)
  t.equal(await stored(storage, id), null, 'file is gone')
  t.equal(await app.tus.get(id), undefined, 'row is gone')
  t.equal((await patch(url, 500, Buffer.from('x'))).status, 404, 'PATCH after DELETE is 404')
  t.equal((await send('GET', url)).status, 404, 'GET after DELETE is 404')

  t.equal(calls.length, 1, 'onTerminate called once')
  const call = calls[0]!
  t.equal(call.reason, 'client')
  t.equal(call.upload.id, id)
  t.equal(call.upload.offset, 500)
  t.equal(call.upload.length, 1000)
  t.equal(call.upload.metadata.filename, 'a.bin')
  t.ok(call.request !== null, 'the request is passed')
  t.equal(call.request?.method, 'DELETE')
})

t.test('DELETE of a finished upload', async (t) => {
  const { app, endpoint, storage } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': '3' })
  await patch(url, 0, Buffer.from('abc'))
  t.equal((await send('DELETE', url, { headers: TUS })).status, 204)
  t.equal((await head(url)).status, 404)
  t.equal(await stored(storage, idOf(url)), null)
  t.equal(await app.tus.get(idOf(url)), undefined)
})

t.test('DELETE unknown: 404; twice: 404 the second time', async (t) => {
  const calls: TerminateHookPayload[] = []
  const { endpoint } = await startServer(t, { onTerminate: (payload) => { calls.push(payload) } })
  assertError(t, await send('DELETE', `${endpoint}/0123456789abcdef0123456789abcdef`, { headers: TUS }), 404, 'unknown id')
  assertError(t, await send('DELETE', `${endpoint}/not.valid`, { headers: TUS }), 404, 'invalid id')
  const url = await create(endpoint, { 'Upload-Length': '5' })
  t.equal((await send('DELETE', url, { headers: TUS })).status, 204)
  assertError(t, await send('DELETE', url, { headers: TUS }), 404, 'second DELETE')
  t.equal(calls.length, 1, 'onTerminate only for the real removal')
})

t.test('DELETE needs Tus-Resumable', async (t) => {
  const { app, endpoint } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': '5' })
  const res = await send('DELETE', url)
  assertError(t, res, 412)
  t.ok(await app.tus.get(idOf(url)), 'still there')
})

t.test('OPTIONS advertises termination', async (t) => {
  const { endpoint } = await startServer(t)
  const res = await send('OPTIONS', endpoint + '/')
  t.ok(String(res.headers['tus-extension']).split(',').includes('termination'))
})
