/** concatenation and concatenation-unfinished: partial uploads joined into a final one. */
import t from 'tap'
import { FileStore, type UploadRecord } from '../lib/index.js'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startServer, tempDir } from './helpers/server.js'
import { TUS, bytes, create, patch, send } from './helpers/http.js'
import { assertError, head, idOf, stored, waitFor } from './helpers/tus.js'

const post = async (endpoint: string, headers: Record<string, string>) => send('POST', endpoint + '/', { headers: { ...TUS, ...headers } })

/** Creates a partial upload of `data.length` bytes; with `upload`, also sends the bytes. */
async function partial (endpoint: string, data: Buffer, upload = true): Promise<string> {
  const url = await create(endpoint, { 'Upload-Length': String(data.length), 'Upload-Concat': 'partial' })
  if (upload) {
    const res = await patch(url, 0, data)
    if (res.status !== 204) throw new Error(`patch failed: ${res.status} ${res.text}`)
  }
  return url
}

t.test('partial upload: 201, HEAD says Upload-Concat: partial', async (t) => {
  const { app, endpoint } = await startServer(t)
  const res = await post(endpoint, { 'Upload-Length': '10', 'Upload-Concat': 'partial' })
  t.equal(res.status, 201)
  t.equal(res.headers['upload-offset'], '0')
  const url = res.headers.location as string
  const h = await head(url)
  t.equal(h.status, 200)
  t.equal(h.headers['upload-concat'], 'partial')
  t.equal(h.headers['upload-length'], '10')
  t.equal(h.headers['upload-offset'], '0')
  t.equal((await app.tus.get(idOf(url)))?.concat, 'partial')
})

t.test('final of finished parts (absolute URLs) is assembled at once', async (t) => {
  const completed: UploadRecord[] = []
  const { app, endpoint, storage } = await startServer(t, { onComplete: ({ upload }) => { completed.push(upload) } })
  const a = bytes(1000, 1)
  const b = bytes(2345, 2)
  const c = bytes(7, 3)
  const urls = [await partial(endpoint, a), await partial(endpoint, b), await partial(endpoint, c)]
  t.equal(completed.length, 0, 'onComplete does not fire for partial uploads')

  const res = await post(endpoint, { 'Upload-Concat': `final;${urls.join(' ')}` })
  t.equal(res.status, 201, res.text)
  const url = res.headers.location as string
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/files\/[A-Za-z0-9_-]+$/)
  const total = a.length + b.length + c.length
  const expected = Buffer.concat([a, b, c])
  t.equal(res.headers['upload-offset'], String(total), 'a final assembled at once reports its offset')

  const h = await head(url)
  t.equal(h.status, 200)
  t.equal(h.headers['upload-offset'], String(total))
  t.equal(h.headers['upload-length'], String(total))
  t.match(String(h.headers['upload-concat']), /^final;/)
  const listed = String(h.headers['upload-concat']).slice('final;'.length).split(' ')
  t.same(listed.map(idOf), urls.map(idOf), 'HEAD lists the parts in order')

  const get = await send('GET', url)
  t.equal(get.status, 200)
  t.equal(get.headers['content-length'], String(total))
  t.ok(get.body.equals(expected), 'download is the concatenation of the parts')
  t.ok((await stored(storage, idOf(url)))?.equals(expected), 'bytes on disk are the concatenation')

  t.equal(completed.length, 1, 'onComplete fired once, for the final')
  t.equal(completed[0]?.id, idOf(url))
  t.equal(completed[0]?.concat, 'final')
  const record = await app.tus.get(idOf(url))
  t.ok(record?.completedAt instanceof Date)
  t.same(record?.parts, urls.map(idOf))
})

t.test('final naming its parts by path under the prefix', async (t) => {
  const { endpoint } = await startServer(t)
  const a = bytes(50, 4)
  const b = bytes(60, 5)
  const urls = [await partial(endpoint, a), await partial(endpoint, b)]
  const paths = urls.map((u) => new URL(u).pathname)
  t.match(paths[0], /^\/files\//)
  const res = await post(endpoint, { 'Upload-Concat': `final;${paths.join(' ')}` })
  t.equal(res.status, 201, res.text)
  t.equal(res.headers['upload-offset'], '110')
  const get = await send('GET', res.headers.location as string)
  t.equal(get.status, 200)
  t.ok(get.body.equals(Buffer.concat([a, b])))
})

t.test('the same part may appear twice', async (t) => {
  const { endpoint } = await startServer(t)
  const a = bytes(33, 6)
  const url = await partial(endpoint, a)
  const res = await post(endpoint, { 'Upload-Concat': `final;${url} ${url}` })
  t.equal(res.status, 201, res.text)
  const get = await send('GET', res.headers.location as string)
  t.ok(get.body.equals(Buffer.concat([a, a])))
})

t.test('PATCH on a final upload: 403', async (t) => {
  const { endpoint } = await startServer(t)
  const url = await partial(endpoint, bytes(10))
  const final = await create(endpoint, { 'Upload-Concat': `final;${url}` })
  const res = await patch(final, 10, Buffer.from('x'))
  assertError(t, res, 403)
  // also while it is still waiting for its parts
  const waiting = await partial(endpoint, bytes(10), false)
  const unfinishedFinal = await create(endpoint, { 'Upload-Concat': `final;${waiting}` })
  assertError(t, await patch(unfinishedFinal, 0, Buffer.from('x')), 403, 'unfinished final')
})

t.test('final with Upload-Length: 400 and nothing created', async (t) => {
  const { app, endpoint } = await startServer(t)
  const url = await partial(endpoint, bytes(10))
  const before = (await app.tus.list()).length
  const res = await post(endpoint, { 'Upload-Concat': `final;${url}`, 'Upload-Length': '10' })
  assertError(t, res, 400)
  t.equal(res.headers.location, undefined)
  t.equal((await app.tus.list()).length, before, 'no upload row added')
})

t.test('final naming unknown, non-partial or outside uploads: 400', async (t) => {
  const { app, origin, endpoint } = await startServer(t)
  const part = await partial(endpoint, bytes(10))
  const plain = await create(endpoint, { 'Upload-Length': '3' })
  await patch(plain, 0, Buffer.from('abc'))
  const otherFinal = await create(endpoint, { 'Upload-Concat': `final;${part}` })
  const before = (await app.tus.list()).length

  const cases: Array<[string, string]> = [
    ['unknown id', `final;${part} ${endpoint}/0123456789abcdef0123456789abcdef`],
    ['unknown path', 'final;/files/doesnotexist'],
    ['non-partial upload', `final;${part} ${plain}`],
    ['a final upload as a part', `final;${otherFinal}`],
    ['URL outside the endpoint', `final;${origin}/elsewhere/${idOf(part)}`],
    ['path outside the endpoint', `final;/other/${idOf(part)}`],
    ['the prefix itself', `final;${endpoint}/`],
    ['no parts', 'final;'],
    ['bad kind', 'whole']
  ]
  for (const [label, value] of cases) {
    const res = await post(endpoint, { 'Upload-Concat': value })
    assertError(t, res, 400, label)
    t.equal(res.headers.location, undefined, `${label}: no Location`)
  }
  t.equal((await app.tus.list()).length, before, 'no upload row added')
})

t.test('concatenation-unfinished: final created before its parts finish', async (t) => {
  const completed: UploadRecord[] = []
  const { app, endpoint, storage } = await startServer(t, { onComplete: ({ upload }) => { completed.push(upload) } })
  const a = bytes(4000, 7)
  const b = bytes(1500, 8)
  const urlA = await partial(endpoint, a, false)
  const urlB = await partial(endpoint, b, false)

  const res = await post(endpoint, { 'Upload-Concat': `final;${urlA} ${urlB}` })
  t.equal(res.status, 201, res.text)
  t.equal(res.headers['upload-offset'], undefined, 'no Upload-Offset while the parts are unfinished')
  const final = res.headers.location as string

  let h = await head(final)
  t.equal(h.status, 200)
  t.equal(h.headers['upload-offset'], undefined, 'HEAD has no Upload-Offset yet')
  t.match(String(h.headers['upload-concat']), /^final;/)
  t.equal(h.headers['upload-defer-length'], undefined, 'a final never says Upload-Defer-Length')

  // the download is not available yet
  t.equal((await send('GET', final)).status, 409)

  // finish A in two chunks, then B; the final follows the last one
  t.equal((await patch(urlA, 0, a.subarray(0, 1000))).status, 204)
  t.equal((await patch(urlA, 1000, a.subarray(1000))).status, 204)
  h = await head(final)
  t.equal(h.headers['upload-offset'], undefined, 'still waiting for B')
  t.equal(completed.length, 0, 'no onComplete for a finished partial')

  const last = await patch(urlB, 0, b)
  t.equal(last.status, 204)
  t.equal(last.headers['upload-offset'], String(b.length))

  const total = a.length + b.length
  const expected = Buffer.concat([a, b])
  h = await head(final)
  t.equal(h.status, 200)
  t.equal(h.headers['upload-offset'], String(total))
  t.equal(h.headers['upload-length'], String(total))
  const get = await send('GET', final)
  t.equal(get.status, 200)
  t.ok(get.body.equals(expected), 'final is byte-exact')
  t.ok((await stored(storage, idOf(final)))?.equals(expected))

  await waitFor(() => completed.length >= 1, 2000, 'onComplete of the final')
  t.equal(completed.length, 1, 'onComplete fired once')
  t.equal(completed[0]?.id, idOf(final))
  t.ok((await app.tus.get(idOf(final)))?.completedAt instanceof Date)
})

t.test('concatenation-unfinished: parts finishing at the same time assemble the final once', async (t) => {
  const completed: UploadRecord[] = []
  const { endpoint } = await startServer(t, { onComplete: ({ upload }) => { completed.push(upload) } })
  const data = [bytes(30_000, 21), bytes(20_000, 22), bytes(10_000, 23)]
  const urls = await Promise.all(data.map(async (d) => partial(endpoint, d, false)))
  const final = await create(endpoint, { 'Upload-Concat': `final;${urls.join(' ')}` })
  const results = await Promise.all(urls.map(async (url, i) => patch(url, 0, data[i]!)))
  t.same(results.map((r) => r.status), [204, 204, 204])
  await waitFor(() => completed.length >= 1, 2000, 'onComplete of the final')
  const h = await head(final)
  t.equal(h.headers['upload-offset'], '60000')
  t.ok((await send('GET', final)).body.equals(Buffer.concat(data)), 'byte-exact')
  t.equal(completed.length, 1, 'onComplete once')
})

t.test('concatenation-unfinished with deferred-length parts', async (t) => {
  const { endpoint } = await startServer(t)
  const a = bytes(20, 9)
  const b = bytes(30, 10)
  const urlA = await create(endpoint, { 'Upload-Defer-Length': '1', 'Upload-Concat': 'partial' })
  const urlB = await partial(endpoint, b)
  const res = await post(endpoint, { 'Upload-Concat': `final;${urlA} ${urlB}` })
  t.equal(res.status, 201, res.text)
  t.equal(res.headers['upload-offset'], undefined)
  const h = await head(res.headers.location as string)
  t.equal(h.headers['upload-length'], undefined, 'length unknown while a part defers it')
  t.equal((await patch(urlA, 0, a, { 'Upload-Length': '20' })).status, 204)
  const done = await head(res.headers.location as string)
  t.equal(done.headers['upload-offset'], '50')
  t.equal(done.headers['upload-length'], '50')
  t.ok((await send('GET', res.headers.location as string)).body.equals(Buffer.concat([a, b])))
})

t.test('deleting a partial removes the finals still waiting for it', async (t) => {
  const terminated: Array<{ id: string, reason: string }> = []
  const { app, endpoint, storage } = await startServer(t, { onTerminate: ({ upload, reason }) => { terminated.push({ id: upload.id, reason }) } })
  const done = await partial(endpoint, bytes(10, 11))
  const waiting = await partial(endpoint, bytes(10, 12), false)
  const final = await create(endpoint, { 'Upload-Concat': `final;${done} ${waiting}` })
  // a finished final made of the finished part only is not affected
  const finishedFinal = await create(endpoint, { 'Upload-Concat': `final;${done}` })

  const del = await send('DELETE', waiting, { headers: TUS })
  t.equal(del.status, 204)
  t.equal((await head(waiting)).status, 404)
  t.equal((await head(final)).status, 404, 'the waiting final is gone')
  t.equal(await app.tus.get(idOf(final)), undefined)
  t.equal(await stored(storage, idOf(final)), null, 'its file is gone')
  t.same(terminated.map((x) => x.id).sort(), [idOf(waiting), idOf(final)].sort())
  t.ok(terminated.every((x) => x.reason === 'client'))

  t.equal((await head(done)).status, 200, 'the other part stays')
  t.equal((await head(finishedFinal)).status, 200, 'a finished final stays')
})

t.test('a partial deleted before the final is created: final naming it is 400', async (t) => {
  const { endpoint } = await startServer(t)
  const part = await partial(endpoint, bytes(10))
  t.equal((await send('DELETE', part, { headers: TUS })).status, 204)
  assertError(t, await post(endpoint, { 'Upload-Concat': `final;${part}` }), 400)
})

t.test('the file store assembles in place: over a longer target it cuts to the parts\' total, and again gives the same bytes', async (t) => {
  const store = new FileStore(join(tempDir(t), 'uploads'))
  await store.init()
  const [a, b] = [bytes(70_000, 1), bytes(30_000, 2)]
  writeFileSync(store.path('a'), a)
  writeFileSync(store.path('b'), b)
  writeFileSync(store.path('final'), bytes(150_000, 3))
  await store.concatenate('final', ['a', 'b'])
  t.ok(stored(store.directory, 'final')?.equals(Buffer.concat([a, b])), 'a longer target holds exactly the parts afterwards')
  await store.concatenate('final', ['a', 'b'], { flush: true })
  t.ok(stored(store.directory, 'final')?.equals(Buffer.concat([a, b])), 'assembling again: the same bytes, the same length')
  await store.concatenate('missing', ['b', 'a'])
  t.ok(stored(store.directory, 'missing')?.equals(Buffer.concat([b, a])), 'a target without bytes yet is created')
})
