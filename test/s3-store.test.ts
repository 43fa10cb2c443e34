/**
 * The S3 store against a real S3-compatible server (Swift's s3api, with AWS's
 * 5 MiB minimum part size): every tus extension, checked by reading the bucket
 * itself (the finished object at `<prefix><id>`, nothing else left behind).
 * Part size 5 MiB, so an upload of 12 MiB is two full parts and a tail.
 */
import t from 'tap'
import { connect } from 'node:net'
import { startServer } from './helpers/server.js'
import { OCTET, TUS, bytes, create, digest, encodeMetadata, patch, send, sha256 } from './helpers/http.js'
import { head, idOf, sleep } from './helpers/tus.js'
import { bucketContents, objectType, readObject, s3OrSkip, s3Options, testBucket } from './helpers/s3.js'

const endpoint = s3OrSkip(t)
const MiB = 1 << 20

if (endpoint !== undefined) {
  t.test('an upload in PATCHes across part boundaries becomes one object at <prefix><id>; nothing else stays', async (t) => {
    const bucket = await testBucket(t)
    const server = await startServer(t, { s3: s3Options(bucket, { prefix: 'tus/' }) })
    const data = bytes(12 * MiB + 12_345, 3)
    const url = await create(server.endpoint, { 'Upload-Length': String(data.length), 'Upload-Metadata': encodeMetadata({ filetype: 'image/png', filename: 'a.png' }) })
    const id = idOf(url)
    // Uneven PATCHes: 3 MiB + 1, then 4 MiB, then the rest: tails grow into parts.
    for (const [from, to] of [[0, 3 * MiB + 1], [3 * MiB + 1, 7 * MiB + 1], [7 * MiB + 1, data.length]] as const) {
      const res = await patch(url, from, data.subarray(from, to))
      t.equal(res.status, 204, `PATCH ${from}-${to}: 204`)
      t.equal(res.headers['upload-offset'], String(to))
    }
    const object = await readObject(bucket, `tus/${id}`)
    t.equal(object?.length, data.length, 'the object has every byte')
    t.equal(sha256(object!), sha256(data), 'byte-exact, read from the bucket')
    t.equal(await objectType(bucket, `tus/${id}`), 'image/png', 'Content-Type from filetype (a safe one)')
    const contents = await bucketContents(bucket)
    t.same(contents.objects, [`tus/${id}`], 'no tail object left')
    t.same(contents.uploads, [], 'no multipart upload left')
    const res = await send('GET', url, { headers: { Range: 'bytes=5242870-5242889' } })
    t.equal(res.status, 206, 'a range across the first part boundary')
    t.ok(res.body.equals(data.subarray(5_242_870, 5_242_890)), 'range bytes streamed from the bucket')
    t.equal((await head(url)).headers['upload-offset'], String(data.length))
  })

  t.test('small, empty, creation-with-upload and deferred-length uploads; unsafe types stored as octet-stream', async (t) => {
    const bucket = await testBucket(t)
    const server = await startServer(t, { s3: s3Options(bucket) })
    const empty = await create(server.endpoint, { 'Upload-Length': '0' })
    t.same(await readObject(bucket, idOf(empty)), Buffer.alloc(0), 'an empty upload is an empty object')

    const small = bytes(1000, 4)
    const withBody = await send('POST', `${server.endpoint}/`, {
      headers: { ...TUS, ...OCTET, 'Upload-Length': '1000', 'Upload-Metadata': encodeMetadata({ filetype: 'text/html' }) }, body: small
    })
    t.equal(withBody.status, 201)
    const smallId = idOf(String(withBody.headers.location))
    t.ok((await readObject(bucket, smallId))?.equals(small), 'creation-with-upload stored byte-exact')
    t.equal(await objectType(bucket, smallId), 'application/octet-stream', 'text/html is not served as such')

    // Deferred length, declared on a last, empty PATCH: the tail becomes the object.
    const data = bytes(6 * MiB + 7, 5)
    const deferred = await create(server.endpoint, { 'Upload-Defer-Length': '1' })
    t.equal((await patch(deferred, 0, data)).status, 204)
    const last = await patch(deferred, data.length, Buffer.alloc(0), { 'Upload-Length': String(data.length) })
    t.equal(last.status, 204, 'the empty PATCH declaring the length completes it')
    t.ok((await readObject(bucket, idOf(deferred)))?.equals(data), 'every byte, the incomplete part included')
    t.same((await bucketContents(bucket)).uploads, [], 'no multipart upload left')
  })

  t.test('a checksum mismatch across a part boundary keeps nothing of that body; the upload goes on', async (t) => {
    const bucket = await testBucket(t)
    const server = await startServer(t, { s3: s3Options(bucket) })
    const data = bytes(11 * MiB, 6)
    const url = await create(server.endpoint, { 'Upload-Length': String(data.length) })
    t.equal((await patch(url, 0, data.subarray(0, 3 * MiB))).status, 204)
    const wrong = await patch(url, 3 * MiB, data.subarray(3 * MiB, 9 * MiB), { 'Upload-Checksum': `sha1 ${digest('sha1', Buffer.from('not it'))}` })
    t.equal(wrong.status, 460, 'checksum mismatch')
    t.equal((await head(url)).headers['upload-offset'], String(3 * MiB), 'the offset did not move')
    const right = await patch(url, 3 * MiB, data.subarray(3 * MiB), { 'Upload-Checksum': `sha256 ${digest('sha256', data.subarray(3 * MiB))}` })
    t.equal(right.status, 204)
    t.ok((await readObject(bucket, idOf(url)))?.equals(data), 'byte-exact after the rejected body')
    t.same((await bucketContents(bucket)).objects, [idOf(url)], 'the rejected body left nothing behind')
  })

  t.test('termination and expiry leave no object and no multipart upload behind', async (t) => {
    const bucket = await testBucket(t)
    const server = await startServer(t, { s3: s3Options(bucket), expiration: 1500, cleanupInterval: 0 })
    const data = bytes(7 * MiB, 7)
    const a = await create(server.endpoint, { 'Upload-Length': String(data.length + 10) })
    const b = await create(server.endpoint, { 'Upload-Length': String(data.length + 10) })
    for (const url of [a, b]) t.equal((await patch(url, 0, data)).status, 204)
    const during = await bucketContents(bucket)
    t.equal(during.uploads.length, 2, 'two multipart uploads under way')
    t.equal(during.objects.length, 2, 'and two tails')
    t.equal((await send('DELETE', a, { headers: TUS })).status, 204, 'a terminated')
    await sleep(1600)
    t.equal(await server.app.tus.cleanupExpired(), 1, 'b expired and removed')
    t.same(await bucketContents(bucket), { objects: [], uploads: [] }, 'the bucket is empty: no object, no tail, no multipart upload')
  })

  t.test('concatenation: server-side copy of parts of 5 MiB and more, a streamed fallback for small ones', async (t) => {
    const bucket = await testBucket(t)
    const server = await startServer(t, { s3: s3Options(bucket) })
    for (const [label, sizes] of [['copied', [5 * MiB, 6 * MiB + 3, 1000]], ['streamed', [1000, 6 * MiB, 17]]] as const) {
      const parts = sizes.map((size, i) => bytes(size, 20 + i))
      const urls: string[] = []
      for (const part of parts) {
        const res = await send('POST', `${server.endpoint}/`, { headers: { ...TUS, ...OCTET, 'Upload-Length': String(part.length), 'Upload-Concat': 'partial' }, body: part })
        t.equal(res.status, 201)
        urls.push(String(res.headers.location))
      }
      const final = await send('POST', `${server.endpoint}/`, { headers: { ...TUS, 'Upload-Concat': `final;${urls.map((u) => new URL(u).pathname).join(' ')}` } })
      t.equal(final.status, 201, `${label}: final created`)
      const object = await readObject(bucket, idOf(String(final.headers.location)))
      t.ok(object?.equals(Buffer.concat(parts)), `${label}: the final object is the parts in order`)
    }
    t.same((await bucketContents(bucket)).uploads, [], 'no multipart upload left')
  })

  t.test('a finish whose row update was lost (the process died in between): the resent bytes complete it, and a restart copes', async (t) => {
    const bucket = await testBucket(t)
    const options = { s3: s3Options(bucket) }
    const server = await startServer(t, options)
    const data = bytes(6 * MiB + 5, 9)
    const url = await create(server.endpoint, { 'Upload-Length': String(data.length) })
    const id = idOf(url)
    // What the dead process had done: every byte written and the object finished, the row still at 0.
    const { openDatabase } = await import('../lib/store/meta/dialects.js')
    const { ObjectStates } = await import('../lib/store/meta/object-states.js')
    const { openS3Store } = await import('../lib/store/data/s3-bucket.js')
    const { db } = await openDatabase(server.dbPath)
    t.teardown(() => db.destroy())
    const store = await openS3Store({ ...options.s3, prefix: '', partSize: 5 * MiB }, new ObjectStates(db))
    const written = await store.write(id, 0, (async function * () { yield data })(), { length: data.length })
    t.equal(written.error, undefined)
    await store.finish(id, data.length)
    t.equal((await head(url)).headers['upload-offset'], '0', 'the row never heard of it')
    await store.truncate(id, 0) // what start-up recovery does with bytes past the offset: nothing to undo here
    const res = await patch(url, 0, data)
    t.equal(res.status, 204, 'the client\'s resend is accepted')
    t.equal(res.headers['upload-offset'], String(data.length))
    t.ok((await readObject(bucket, id))?.equals(data), 'the object is byte-exact')
    t.same((await bucketContents(bucket)).uploads, [], 'no multipart upload left')
  })

  t.test('a client that goes away mid-part: the request to S3 is aborted, the server keeps serving, the upload resumes', async (t) => {
    const bucket = await testBucket(t)
    const server = await startServer(t, { s3: s3Options(bucket) })
    const data = bytes(7 * MiB, 10)
    const url = await create(server.endpoint, { 'Upload-Length': String(data.length) })
    await send('PATCH', url, {
      headers: { ...TUS, ...OCTET, 'Upload-Offset': '0', 'Content-Length': String(data.length) },
      stream: (req) => {
        req.on('error', () => {})
        req.write(data.subarray(0, 1 << 20))
        setTimeout(() => req.destroy(), 300)
      }
    }).catch(() => undefined)
    const started = Date.now()
    let offset: string | undefined
    while (Date.now() - started < 5000) {
      const res = await head(url)
      if (res.status === 200) { offset = String(res.headers['upload-offset']); break }
      await sleep(50)
    }
    t.equal(offset, '0', `the server answers at once (${Date.now() - started} ms): nothing of the cut part is kept`)
    const res = await patch(url, 0, data)
    t.equal(res.status, 204, 'the upload is not held by the cut request')
    t.ok((await readObject(bucket, idOf(url)))?.equals(data), 'and resumes byte-exact')
  })

  t.test('a chunked body (no Content-Length) is refused with 411 before anything is stored', async (t) => {
    const bucket = await testBucket(t)
    const server = await startServer(t, { s3: s3Options(bucket) })
    const url = await create(server.endpoint, { 'Upload-Length': '100' })
    const { port } = new URL(server.endpoint)
    const raw = await new Promise<string>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.end(`PATCH ${new URL(url).pathname} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`)
      })
      let text = ''
      socket.on('data', (d: Buffer) => { text += d.toString() })
      socket.on('close', () => resolve(text))
    })
    t.match(raw, /^HTTP\/1\.1 411 /, 'answered 411')
    t.match(raw, /Content-Length/, 'the reason says what to send')
    t.equal((await head(url)).headers['upload-offset'], '0')
  })

  t.test('options: mistakes fail at register with the field named', async (t) => {
    const { default: Fastify } = await import('fastify')
    const { default: tus } = await import('../lib/index.js')
    for (const [s3, pattern] of [
      [{}, /s3\.bucket/], [{ bucket: 'B_ad' }, /s3\.bucket/], [{ bucket: 'ok-bucket', prefix: 'noslash' }, /s3\.prefix/],
      [{ bucket: 'ok-bucket', partSize: 1024 }, /s3\.partSize/], [{ bucket: 'ok-bucket', endpoint: 'ftp://x' }, /s3\.endpoint/],
      [{ bucket: 'ok-bucket', nope: 1 }, /s3\.nope/]
    ] as const) {
      await t.rejects(async () => Fastify().register(tus, { s3: s3 as never }).ready(), pattern, JSON.stringify(s3))
    }
    await t.rejects(async () => Fastify().register(tus, { s3: { bucket: 'ok-bucket', partSize: 5 * MiB }, maxSize: 60 * 1024 ** 3, db: ':memory:' }).ready(), /raise s3\.partSize/, 'maxSize beyond 10,000 parts')
  })
}
