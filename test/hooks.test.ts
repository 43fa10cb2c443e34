/** Lifecycle hooks: onCreate may reject, rename or rewrite; onComplete sees the finished file; order is kept. */
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { TusError, type CompleteHookPayload, type UploadRecord } from '../lib/index.js'
import { startServer } from './helpers/server.js'
import { TUS, bytes, create, encodeMetadata, patch, send } from './helpers/http.js'
import { objectKey, putObject, readKey } from './helpers/store.js'
import { assertError, assertNothingStored, head, idOf, stored } from './helpers/tus.js'

const post = async (endpoint: string, headers: Record<string, string>) => send('POST', endpoint + '/', { headers: { ...TUS, ...headers } })

t.test('onCreate rejects with a TusError: its status and reason, nothing stored', async (t) => {
  const { app, endpoint, storage } = await startServer(t, {
    onCreate: ({ upload }) => {
      if (upload.metadata.filetype === 'application/pdf') throw new TusError(403, 'no pdfs')
    }
  })
  const res = await post(endpoint, { 'Upload-Length': '10', 'Upload-Metadata': encodeMetadata({ filetype: 'application/pdf' }) })
  assertError(t, res, 403)
  t.equal(res.text, 'no pdfs')
  t.equal(res.headers.location, undefined)
  await assertNothingStored(t, app, storage)

  // with a creation body too: nothing is written
  const withBody = await send('POST', endpoint + '/', {
    headers: { ...TUS, 'Upload-Length': '3', 'Upload-Metadata': encodeMetadata({ filetype: 'application/pdf' }), 'Content-Type': 'application/offset+octet-stream' },
    body: 'abc'
  })
  assertError(t, withBody, 403)
  t.equal(withBody.text, 'no pdfs')
  await assertNothingStored(t, app, storage, 'with body')

  const ok = await post(endpoint, { 'Upload-Length': '10', 'Upload-Metadata': encodeMetadata({ filetype: 'image/png' }) })
  t.equal(ok.status, 201, 'other uploads pass')
})

t.test('onCreate sees the request and the upload as asked', async (t) => {
  const seen: Array<{ length: number | null, metadata: Record<string, string | null>, concat: string | null, header: unknown }> = []
  const { endpoint } = await startServer(t, {
    onCreate: ({ request, upload }) => {
      seen.push({ length: upload.length, metadata: { ...upload.metadata }, concat: upload.concat, header: request.headers['x-client'] })
    }
  })
  await post(endpoint, { 'Upload-Length': '42', 'Upload-Metadata': encodeMetadata({ a: '1' }), 'X-Client': 'test' })
  await post(endpoint, { 'Upload-Defer-Length': '1', 'Upload-Concat': 'partial' })
  t.same(seen, [
    { length: 42, metadata: { a: '1' }, concat: null, header: 'test' },
    { length: null, metadata: {}, concat: 'partial', header: undefined }
  ])
})

t.test('onCreate may replace the metadata; HEAD shows it', async (t) => {
  const { app, endpoint } = await startServer(t, {
    onCreate: ({ upload }) => ({ metadata: { ...upload.metadata, owner: 'alice', scanned: null } })
  })
  const url = await create(endpoint, { 'Upload-Length': '10', 'Upload-Metadata': encodeMetadata({ filename: 'a.txt' }) })
  const record = await app.tus.get(idOf(url))
  t.same({ ...record?.metadata }, { filename: 'a.txt', owner: 'alice', scanned: null })
  const h = await head(url)
  t.same(String(h.headers['upload-metadata']).split(',').sort(),
    [...encodeMetadata({ filename: 'a.txt', owner: 'alice' }).split(','), 'scanned'].sort())
})

t.test('onCreate may choose the id', async (t) => {
  const { app, endpoint, storage } = await startServer(t, { onCreate: () => ({ id: 'my-custom-id' }) })
  const res = await post(endpoint, { 'Upload-Length': '4' })
  t.equal(res.status, 201)
  const url = res.headers.location as string
  t.ok(url.endsWith('/files/my-custom-id'), url)
  t.ok(await app.tus.get('my-custom-id'))
  t.equal((await patch(url, 0, Buffer.from('data'))).status, 204)
  t.same(await stored(storage, 'my-custom-id'), Buffer.from('data'))
  // the same id again is a conflict and leaves the first alone
  const again = await post(endpoint, { 'Upload-Length': '4' })
  assertError(t, again, 409, 'id taken')
  t.same(await stored(storage, 'my-custom-id'), Buffer.from('data'))
  t.equal((await app.tus.list()).length, 1)
})

t.test('onCreate choosing an id whose bytes exist without a row (a stray file): 409, the file untouched', async (t) => {
  const { app, endpoint, storage } = await startServer(t, { onCreate: () => ({ id: 'stray-id' }) })
  // On object storage the stray bytes are an object at the upload's key, <prefix>stray-id.
  const objects = storage.objects
  if (objects === undefined) writeFileSync(join(storage.uploadDir, 'stray-id'), 'not yours')
  else await putObject(objects, objectKey(objects, 'stray-id'), 'not yours')
  assertError(t, await post(endpoint, { 'Upload-Length': '4' }), 409, 'creation')
  const withBody = await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': '4', 'Content-Type': 'application/offset+octet-stream' }, body: Buffer.from('data') })
  assertError(t, withBody, 409, 'creation-with-upload')
  const left = objects === undefined ? readFileSync(join(storage.uploadDir, 'stray-id')) : await readKey(objects, objectKey(objects, 'stray-id'))
  t.equal(left?.toString('utf8'), 'not yours', 'the stray bytes are untouched')
  t.equal((await app.tus.list()).length, 0)
})

t.test('onCreate choosing an invalid id: 500, nothing stored', async (t) => {
  const { app, endpoint, storage } = await startServer(t, { onCreate: () => ({ id: '../escape' }) })
  const res = await post(endpoint, { 'Upload-Length': '4' })
  assertError(t, res, 500)
  await assertNothingStored(t, app, storage)
})

t.test('several handlers run in registration order, later ones see earlier changes', async (t) => {
  const order: string[] = []
  const { app, endpoint } = await startServer(t, {
    onCreate: [
      ({ upload }) => { order.push('option 1'); return { metadata: { ...upload.metadata, step: '1' } } },
      ({ upload }) => { order.push(`option 2 saw ${upload.metadata.step}`); return { metadata: { ...upload.metadata, step: '2' } } }
    ],
    onComplete: [() => { order.push('complete option') }]
  })
  app.tus.addHook('onCreate', async ({ upload }) => {
    await new Promise((resolve) => setTimeout(resolve, 10))
    order.push(`added 3 saw ${upload.metadata.step}`)
    return { id: 'chosen-by-third' }
  })
  app.tus.addHook('onCreate', ({ upload }) => { order.push(`added 4 saw ${upload.metadata.step}`) })
  app.tus.addHook('onComplete', async () => {
    await new Promise((resolve) => setTimeout(resolve, 10))
    order.push('complete added 1')
  })
  app.tus.addHook('onComplete', () => { order.push('complete added 2') })

  const url = await create(endpoint, { 'Upload-Length': '2' })
  t.ok(url.endsWith('/chosen-by-third'))
  t.equal((await app.tus.get('chosen-by-third'))?.metadata.step, '2')
  t.equal((await patch(url, 0, Buffer.from('hi'))).status, 204)
  t.same(order, [
    'option 1', 'option 2 saw 1', 'added 3 saw 2', 'added 4 saw 2',
    'complete option', 'complete added 1', 'complete added 2'
  ])
})

t.test('onComplete gets the finished upload, the request, and the file is complete on disk (the object in the bucket)', async (t) => {
  const calls: Array<{ payload: CompleteHookPayload, onDisk: Buffer, record: UploadRecord | undefined }> = []
  const data = bytes(50_000, 3)
  const { app, endpoint, storage } = await startServer(t)
  app.tus.addHook('onComplete', async (payload) => {
    calls.push({ payload, onDisk: await stored(storage, payload.upload.id) ?? Buffer.from('(nothing stored)'), record: await app.tus.get(payload.upload.id) })
  })
  const url = await create(endpoint, { 'Upload-Length': String(data.length), 'Upload-Metadata': encodeMetadata({ filename: 'f.bin' }) })
  t.equal((await patch(url, 0, data.subarray(0, 20_000))).status, 204)
  t.equal(calls.length, 0, 'not yet')
  const last = await patch(url, 20_000, data.subarray(20_000))
  t.equal(last.status, 204)
  t.equal(calls.length, 1, 'called once, before the reply')
  const { payload, onDisk, record } = calls[0]!
  t.equal(payload.upload.id, idOf(url))
  t.ok(payload.upload.completedAt instanceof Date, 'completedAt set')
  t.equal(payload.upload.offset, data.length)
  t.equal(payload.upload.length, data.length)
  t.equal(payload.upload.metadata.filename, 'f.bin')
  t.equal(payload.request?.method, 'PATCH', 'the request that finished it')
  t.ok(onDisk.equals(data), 'the whole file is on disk when onComplete runs')
  t.ok(record?.completedAt instanceof Date, 'the row already says complete')

  // creation-with-upload and empty uploads complete too
  await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': '3', 'Content-Type': 'application/offset+octet-stream' }, body: 'abc' })
  await create(endpoint, { 'Upload-Length': '0' })
  t.equal(calls.length, 3)
  t.equal(calls[1]?.payload.request?.method, 'POST')
  t.ok(calls[1]?.onDisk.equals(Buffer.from('abc')))
  t.equal(calls[2]?.payload.upload.length, 0)
})

t.test('onComplete throwing a TusError: the last PATCH answers with it', async (t) => {
  const { app, endpoint, storage } = await startServer(t, {
    onComplete: () => { throw new TusError(422, 'virus found') }
  })
  const data = bytes(100, 4)
  const url = await create(endpoint, { 'Upload-Length': '100' })
  t.equal((await patch(url, 0, data.subarray(0, 40))).status, 204, 'a middle chunk is fine')
  const res = await patch(url, 40, data.subarray(40))
  assertError(t, res, 422)
  t.equal(res.text, 'virus found')
  // the bytes did arrive; what to do with them is the hook's business
  const h = await head(url)
  t.equal(h.headers['upload-offset'], '100')
  t.ok((await stored(storage, idOf(url)))?.equals(data))
  t.ok((await app.tus.get(idOf(url)))?.completedAt instanceof Date)
})

t.test('onComplete rejection on creation-with-upload', async (t) => {
  const { endpoint } = await startServer(t, { onComplete: () => { throw new TusError(422, 'virus found') } })
  const res = await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': '3', 'Content-Type': 'application/offset+octet-stream' }, body: 'abc' })
  assertError(t, res, 422)
  t.equal(res.text, 'virus found')
})

t.test('addHook with an unknown name or a non-function throws', async (t) => {
  const { app } = await startServer(t)
  t.throws(() => app.tus.addHook('onFinish' as never, (() => {}) as never), TypeError)
  t.throws(() => app.tus.addHook('onFinish' as never, (() => {}) as never), { message: /unknown hook "onFinish"/ })
  t.throws(() => app.tus.addHook('onCreate', 'nope' as never), { message: /must be a function/ })
})

t.test('onTerminate handlers run in order with the removed upload', async (t) => {
  const order: string[] = []
  const { app, endpoint } = await startServer(t, { onTerminate: ({ upload }) => { order.push(`a ${upload.id}`) } })
  app.tus.addHook('onTerminate', ({ reason }) => { order.push(`b ${reason}`) })
  const url = await create(endpoint, { 'Upload-Length': '3' })
  t.equal((await send('DELETE', url, { headers: TUS })).status, 204)
  t.same(order, [`a ${idOf(url)}`, 'b client'])
})
