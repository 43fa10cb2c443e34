/** expiration: Upload-Expires on unfinished uploads, 410 after it passes, cleanup removes them. */
import t from 'tap'
import type { TerminateHookPayload } from '../lib/index.js'
import { startServer } from './helpers/server.js'
import { TUS, bytes, create, patch, send, type Response } from './helpers/http.js'
import { ON_OBJECTS, assertError, head, idOf, sleep, stored, waitFor, type Assert } from './helpers/tus.js'

const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/

/** Upload-Expires is an HTTP-date in the future (HTTP-dates have second precision). */
function assertExpires (t: Assert, res: Response, label: string): number {
  const value = res.headers['upload-expires']
  t.equal(typeof value, 'string', `${label}: Upload-Expires present`)
  t.match(String(value), HTTP_DATE, `${label}: Upload-Expires is an HTTP-date`)
  const when = new Date(String(value)).getTime()
  t.ok(Number.isFinite(when), `${label}: parseable by Date`)
  // truncated to the second, so allow the current second
  t.ok(when >= Math.floor(Date.now() / 1000) * 1000 - 1000, `${label}: not in the past`)
  return when
}

t.test('Upload-Expires on POST, PATCH and HEAD of unfinished uploads only', async (t) => {
  const { endpoint } = await startServer(t, { expiration: 60_000, cleanupInterval: 0 })
  const post = await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': '10' } })
  t.equal(post.status, 201)
  const atPost = assertExpires(t, post, 'POST')
  t.ok(atPost > Date.now() + 50_000, 'about a minute ahead')
  const url = post.headers.location as string

  const p = await patch(url, 0, Buffer.from('hello'))
  t.equal(p.status, 204)
  assertExpires(t, p, 'PATCH')
  const h = await head(url)
  t.equal(h.status, 200)
  assertExpires(t, h, 'HEAD')

  const last = await patch(url, 5, Buffer.from('world'))
  t.equal(last.status, 204)
  t.equal(last.headers['upload-expires'], undefined, 'completing PATCH has no Upload-Expires')
  const after = await head(url)
  t.equal(after.status, 200)
  t.equal(after.headers['upload-expires'], undefined, 'finished upload: no Upload-Expires on HEAD')

  // creation-with-upload completing at once, and an empty upload
  const full = await send('POST', endpoint + '/', {
    headers: { ...TUS, 'Upload-Length': '3', 'Content-Type': 'application/offset+octet-stream' }, body: 'abc'
  })
  t.equal(full.status, 201)
  t.equal(full.headers['upload-expires'], undefined, 'finished on creation: no Upload-Expires')
  const empty = await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': '0' } })
  t.equal(empty.status, 201)
  t.equal(empty.headers['upload-expires'], undefined, 'empty upload: no Upload-Expires')
})

t.test('without the option: no Upload-Expires, no expiration extension', async (t) => {
  const { endpoint } = await startServer(t)
  const opts = await send('OPTIONS', endpoint + '/')
  t.notOk(String(opts.headers['tus-extension']).split(',').includes('expiration'))
  const post = await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': '10' } })
  t.equal(post.headers['upload-expires'], undefined)
  const h = await head(post.headers.location as string)
  t.equal(h.headers['upload-expires'], undefined)
})

t.test('OPTIONS lists expiration when the option is set', async (t) => {
  const { endpoint } = await startServer(t, { expiration: 300, cleanupInterval: 0 })
  const opts = await send('OPTIONS', endpoint + '/')
  t.ok(String(opts.headers['tus-extension']).split(',').includes('expiration'))
  // a short period still yields an HTTP-date on every unfinished response
  const before = Date.now()
  const post = await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': '10' } })
  t.equal(post.status, 201)
  const when = assertExpires(t, post, 'POST (300 ms)')
  t.ok(when <= Date.now() + 300, 'about 300 ms ahead, at second precision')
  t.ok(when >= Math.floor((before + 300) / 1000) * 1000, 'not earlier than creation + 300 ms, truncated to the second')
  const url = post.headers.location as string
  assertExpires(t, await patch(url, 0, Buffer.from('a')), 'PATCH (300 ms)')
  assertExpires(t, await head(url), 'HEAD (300 ms)')
})

t.test('after expiry: HEAD and PATCH 410; cleanupExpired removes row and file', async (t) => {
  const terminated: TerminateHookPayload[] = []
  // On the S3 store the set-up below (three creations, two writes to the bucket) can itself take
  // longer than 300 ms on a loaded machine: its uploads get longer to live, and the wait is as much longer.
  const expiration = ON_OBJECTS ? 2000 : 300
  const { app, endpoint, storage } = await startServer(t, {
    expiration, cleanupInterval: 0, onTerminate: (payload) => { terminated.push(payload) }
  })
  const url = await create(endpoint, { 'Upload-Length': '10' })
  const url2 = await create(endpoint, { 'Upload-Length': '10' })
  t.equal((await patch(url, 0, Buffer.from('12345'))).status, 204)
  const finished = await create(endpoint, { 'Upload-Length': '2' })
  t.equal((await patch(finished, 0, Buffer.from('ok'))).status, 204)
  const id = idOf(url)

  t.equal(await app.tus.cleanupExpired(), 0, 'nothing expired yet')
  await sleep(expiration + 900) // Upload-Expires has second precision; give it well past the expiration

  const gone = await head(url)
  t.equal(gone.status, 410, 'HEAD 410')
  t.equal(gone.headers['tus-resumable'], '1.0.0')
  t.equal(gone.headers['upload-offset'], undefined, 'no offset for an expired upload')
  assertError(t, await patch(url, 5, Buffer.from('67890')), 410, 'PATCH')
  t.equal((await send('GET', url)).status, 410, 'GET')
  t.ok((await stored(storage, id))?.equals(Buffer.from('12345')), 'bytes still there until the cleanup')

  const finishedHead = await head(finished)
  t.equal(finishedHead.status, 200, 'a finished upload never expires')
  t.equal(finishedHead.headers['upload-expires'], undefined)

  t.equal(await app.tus.cleanupExpired(), 2, 'both unfinished uploads removed')
  t.equal((await head(url)).status, 404, 'HEAD 404 after cleanup')
  t.equal((await head(url2)).status, 404)
  t.equal(await app.tus.get(id), undefined, 'row gone')
  t.equal(await stored(storage, id), null, 'file gone')
  t.equal(terminated.length, 2)
  t.ok(terminated.every((p) => p.reason === 'expired'), 'reason is expired')
  t.ok(terminated.every((p) => p.request === null), 'no request for a cleanup')
  t.same(terminated.map((p) => p.upload.id).sort(), [id, idOf(url2)].sort())

  t.equal(await app.tus.cleanupExpired(), 0, 'a second run finds nothing')
  t.equal((await head(finished)).status, 200, 'the finished upload stays')
})

t.test('a PATCH moves the expiry forward', async (t) => {
  const { endpoint } = await startServer(t, { expiration: 1500, cleanupInterval: 0 })
  const url = await create(endpoint, { 'Upload-Length': '10' })
  await sleep(1000)
  t.equal((await patch(url, 0, Buffer.from('abc'))).status, 204)
  await sleep(1000)
  // 2000 ms after creation, but only 1000 ms after the last write
  const h = await head(url)
  t.equal(h.status, 200, 'still alive')
  t.equal(h.headers['upload-offset'], '3')
})

t.test('automatic cleanup with cleanupInterval', async (t) => {
  const terminated: TerminateHookPayload[] = []
  const { app, endpoint, storage } = await startServer(t, {
    expiration: 300, cleanupInterval: 100, onTerminate: (payload) => { terminated.push(payload) }
  })
  const url = await create(endpoint, { 'Upload-Length': '10' })
  await patch(url, 0, bytes(4))
  const id = idOf(url)
  await waitFor(async () => await app.tus.get(id) === undefined, 5000, 'the automatic cleanup')
  // the row goes first, then the file, then onTerminate is told
  await waitFor(() => terminated.length > 0, 2000, 'onTerminate')
  t.equal((await head(url)).status, 404)
  t.equal(await stored(storage, id), null)
  t.equal(terminated.length, 1)
  t.equal(terminated[0]?.reason, 'expired')
})

t.test('a final upload waiting for an expired partial goes with it', async (t) => {
  const { app, endpoint } = await startServer(t, { expiration: 300, cleanupInterval: 0 })
  const part = await create(endpoint, { 'Upload-Length': '10', 'Upload-Concat': 'partial' })
  const final = await create(endpoint, { 'Upload-Concat': `final;${part}` })
  const h = await head(final)
  t.equal(h.status, 200)
  await sleep(700)
  t.equal(await app.tus.cleanupExpired(), 1)
  t.equal((await head(part)).status, 404)
  t.equal((await head(final)).status, 404, 'the waiting final is removed too')
})

t.test('DELETE of an expired upload still terminates it (reason client)', async (t) => {
  const terminated: TerminateHookPayload[] = []
  const { app, endpoint, storage } = await startServer(t, {
    expiration: 200, cleanupInterval: 0, onTerminate: (payload) => { terminated.push(payload) }
  })
  const url = await create(endpoint, { 'Upload-Length': '10' })
  await sleep(400)
  t.equal((await head(url)).status, 410)
  const res = await send('DELETE', url, { headers: TUS })
  t.equal(res.status, 204)
  t.equal(await app.tus.get(idOf(url)), undefined)
  t.equal(await stored(storage, idOf(url)), null)
  t.equal(terminated[0]?.reason, 'client')
  t.equal(await app.tus.cleanupExpired(), 0)
})
