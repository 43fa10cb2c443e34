// The real tus-js-client (4.x, Node build) as a client of the plugin on a real
// listening server: plain, resumed, parallel (concatenation), deferred-length
// stream, method override, creation-with-upload, size limits and onComplete.
// Every upload is checked byte for byte on disk and against what the server
// reports (HEAD and app.tus.get).
import t from 'tap'
import { Readable } from 'node:stream'
import * as tus from 'tus-js-client'
import type { CompleteHookPayload } from '../types/index.js'
import { startServer } from './helpers/server.js'
import { TUS, bytes, send } from './helpers/http.js'
import { CUT_BODY_NOT_KEPT, OBJECT_STORE, ON_OBJECTS, sleep, storedSize, waitFor } from './helpers/tus.js'
import {
  assertComplete, idFromUrl, recordRequests, runUpload, storedBytes, uploadFailure,
  type SeenRequest, type TusSource
} from './helpers/tus-js.js'

const KiB = 1024
const MiB = 1024 * KiB
// On the S3 store uploads in small chunks take longer (see UPLOAD_TIMEOUT in helpers/tus-js.ts).
const LIMIT = { timeout: ON_OBJECTS ? 60_000 : 10_000 }
const WAIT = ON_OBJECTS ? 30_000 : 5000

/** A Node Readable handing out `data` in pieces of the given sizes (cycled), byte mode. */
function streamFrom (data: Buffer, sizes: number[]): Readable {
  const pieces: Buffer[] = []
  let at = 0
  for (let i = 0; at < data.length; i++) {
    const size = sizes[i % sizes.length]!
    pieces.push(data.subarray(at, at + size))
    at += size
  }
  // objectMode off: tus-js-client's StreamSource calls read(size) and relies on byte semantics.
  return Readable.from(pieces, { objectMode: false })
}

/**
 * tus-js-client's own Node HTTP stack, except that the PATCH at `offset` sends
 * only the first `keep` bytes of its body (with the full Content-Length) and
 * then hangs until the request is aborted.
 */
function stallingStack (offset: number, keep: number, onStall: () => void): tus.HttpStack {
  const inner = new tus.DefaultHttpStack({})
  return {
    getName: () => 'StallingHttpStack',
    createRequest (method, url) {
      const req = inner.createRequest(method, url)
      const sendInner = req.send.bind(req)
      req.send = async (body: unknown) => {
        if (method !== 'PATCH' || req.getHeader('Upload-Offset') !== String(offset) || !Buffer.isBuffer(body)) return sendInner(body)
        const stalled = new Readable({ read () {} })
        stalled.push(body.subarray(0, keep)) // and never the rest, never the end
        Object.assign(stalled, { size: body.length }) // the stack sets Content-Length from .size
        onStall()
        return sendInner(stalled)
      }
      return req
    }
  }
}

const asSource = (stream: Readable): TusSource => stream as unknown as TusSource

const status = (err: tus.DetailedError): number | undefined => err.originalResponse?.getStatus()

const writes = (seen: SeenRequest[]): SeenRequest[] =>
  seen.filter((r) => r.method === 'PATCH' || (r.method === 'POST' && r.override === 'PATCH'))

t.test('1. plain upload of a Buffer in 1 MiB chunks, with metadata', LIMIT, async (t) => {
  let seen!: SeenRequest[]
  const server = await startServer(t, {}, (app) => { seen = recordRequests(app) })
  const data = bytes(3 * MiB + 12_345, 101)
  const metadata = { filename: 'plain.bin', filetype: 'application/octet-stream' }
  const { url, id } = await runUpload(data, { endpoint: server.endpoint + '/', chunkSize: MiB, metadata })
  t.ok(url.startsWith(server.endpoint + '/'), 'upload URL is under the endpoint')
  t.match(id, /^[0-9a-f]{32}$/, 'the id is the last path segment')
  await assertComplete(t, server.app, server.storage, url, data)

  const record = await server.app.tus.get(id)
  t.same({ ...record?.metadata }, metadata, 'metadata stored as sent')
  t.equal(record?.concat, null, 'not a concatenation upload')
  const head = await send('HEAD', url, { headers: TUS })
  const echoed = Object.fromEntries(String(head.headers['upload-metadata']).split(',').map((pair) => {
    const [key, value] = pair.split(' ')
    return [key, Buffer.from(value ?? '', 'base64').toString('utf8')]
  }))
  t.same(echoed, metadata, 'HEAD Upload-Metadata echoes the metadata')

  const posts = seen.filter((r) => r.method === 'POST')
  t.equal(posts.length, 1, 'one creation POST')
  t.equal(posts[0]?.length, String(data.length), 'creation declared Upload-Length')
  const patches = seen.filter((r) => r.method === 'PATCH')
  t.same(patches.map((r) => r.offset), ['0', String(MiB), String(2 * MiB), String(3 * MiB)], 'four PATCHes at 1 MiB steps')
  t.same(patches.map((r) => r.contentLength), [MiB, MiB, MiB, 12_345], 'chunk bodies of chunkSize, the rest last')
})

t.test('2. resume after abort with a new Upload on the previous URL', LIMIT, async (t) => {
  const CHUNK = 256 * KiB

  t.test('aborted between chunks (onChunkComplete)', LIMIT, async (t) => {
    let seen!: SeenRequest[]
    const server = await startServer(t, {}, (app) => { seen = recordRequests(app) })
    const data = bytes(8 * MiB + 777, 102)

    // First attempt: stop once 1 MiB was accepted.
    const first = await new Promise<{ url: string; accepted: number }>((resolve, reject) => {
      const upload: tus.Upload = new tus.Upload(data, {
        endpoint: server.endpoint + '/',
        chunkSize: CHUNK,
        retryDelays: null,
        onChunkComplete: (_size, accepted) => {
          if (accepted < MiB) return
          upload.abort().then(() => resolve({ url: upload.url!, accepted }), reject)
        },
        onSuccess: () => reject(new Error('the first attempt finished although it was aborted')),
        onError: reject
      })
      upload.start()
    })
    t.equal(first.accepted, MiB, 'aborted after exactly 4 chunks')
    await sleep(100) // nothing more may arrive after abort
    const before = await send('HEAD', first.url, { headers: TUS })
    t.equal(before.headers['upload-offset'], String(MiB), 'server holds 1 MiB after the abort')
    t.equal(before.headers['upload-length'], String(data.length))
    t.equal((await server.app.tus.get(idFromUrl(first.url)))?.completedAt, null, 'not complete yet')
    t.equal(seen.filter((r) => r.method === 'PATCH').length, 4, 'no PATCH after the abort')

    // Second attempt: a new Upload given the URL.
    const mark = seen.length
    const offsets: string[] = []
    const { url } = await runUpload(data, {
      uploadUrl: first.url,
      chunkSize: CHUNK,
      onBeforeRequest: (req) => { if (req.getMethod() === 'PATCH') offsets.push(req.getHeader('Upload-Offset') ?? '') }
    })
    t.equal(url, first.url, 'the same upload URL was used')
    const resumed = seen.slice(mark)
    t.equal(resumed[0]?.method, 'HEAD', 'resume starts with HEAD')
    t.equal(resumed.filter((r) => r.method === 'POST').length, 0, 'no new upload was created')
    t.equal(offsets[0], String(MiB), 'first PATCH of the resume is at the stored offset')
    t.ok(Number(offsets[0]) > 0, 'first PATCH offset > 0')
    t.equal(offsets.length, Math.ceil((data.length - MiB) / CHUNK), 'only the missing chunks were sent')
    await assertComplete(t, server.app, server.storage, url, data)
  })

  t.test('aborted in the middle of a chunk', LIMIT, async (t) => {
    let seen!: SeenRequest[]
    const server = await startServer(t, {}, (app) => { seen = recordRequests(app) })
    const data = bytes(8 * MiB + 4321, 103)
    // The PATCH at 1 MiB sends only its first 100 000 bytes and then hangs, so
    // abort() surely lands in the middle of its body.
    const at = MiB
    const keep = 100_000
    let stalled = false

    const first = await new Promise<string>((resolve, reject) => {
      const upload: tus.Upload = new tus.Upload(data, {
        endpoint: server.endpoint + '/',
        chunkSize: CHUNK,
        retryDelays: null,
        httpStack: stallingStack(at, keep, () => { stalled = true }),
        onSuccess: () => reject(new Error('the first attempt finished although it was aborted')),
        onError: reject
      })
      upload.start()
      waitFor(async () => stalled && upload.url !== null && await storedSize(server.storage, idFromUrl(upload.url)) === at + keep, WAIT, 'the partial chunk stored')
        .then(async () => upload.abort())
        .then(() => resolve(upload.url!), reject)
    })

    // The aborted PATCH ends on the server on its own time: wait for its offset.
    // On object storage nothing of the cut chunk is kept (no part, no tail completed): the offset stays at the chunk's start.
    const kept = ON_OBJECTS ? at : at + keep
    if (ON_OBJECTS) t.comment(CUT_BODY_NOT_KEPT)
    await waitFor(async () => {
      const res = await send('HEAD', first, { headers: TUS })
      // (on object storage the stored size counts the bytes of a request to the bucket still under way: it is back at `kept` once that request ended)
      return res.headers['upload-offset'] === String(kept) && await storedSize(server.storage, idFromUrl(first)) === kept
    }, WAIT, 'the offset of the cut chunk')
    if (ON_OBJECTS) t.pass(`${OBJECT_STORE}: server kept none of the ${keep} bytes of the cut chunk: offset ${kept}, chunk-aligned`)
    else t.pass(`server kept the ${keep} bytes of the cut chunk: offset ${at + keep}, not chunk-aligned`)
    t.equal((await server.app.tus.get(idFromUrl(first)))?.completedAt, null, 'not complete')
    const prefix = await storedBytes(server.storage, idFromUrl(first))
    t.ok(prefix?.equals(data.subarray(0, kept)) === true, 'the stored prefix equals the source prefix')

    const mark = seen.length
    const offsets: string[] = []
    const { url } = await runUpload(data, {
      uploadUrl: first,
      chunkSize: CHUNK,
      retryDelays: [100, 200, 400], // the cut PATCH may still hold the upload's lock for a moment (423)
      onBeforeRequest: (req) => { if (req.getMethod() === 'PATCH') offsets.push(req.getHeader('Upload-Offset') ?? '') }
    })
    t.equal(url, first, 'the same upload URL was used')
    t.equal(seen.slice(mark).filter((r) => r.method === 'POST').length, 0, 'no new upload was created')
    t.equal(offsets[0], String(kept), ON_OBJECTS ? 'first PATCH of the resume is at the stored offset' : 'first PATCH of the resume is at the stored, unaligned offset')
    t.ok(Number(offsets[0]) > 0, 'first PATCH offset > 0')
    t.equal(offsets.length, Math.ceil((data.length - kept) / CHUNK), 'only the missing bytes were sent')
    await assertComplete(t, server.app, server.storage, url, data)
  })
})

t.test('3. parallelUploads: 3 (concatenation)', LIMIT, async (t) => {
  let seen!: SeenRequest[]
  const server = await startServer(t, {}, (app) => { seen = recordRequests(app) })
  const data = bytes(3 * MiB + 5, 104)
  const { url, id } = await runUpload(data, {
    endpoint: server.endpoint + '/',
    chunkSize: 256 * KiB,
    parallelUploads: 3,
    metadata: { filename: 'parallel.bin' }
  })
  await assertComplete(t, server.app, server.storage, url, data)

  const final = await server.app.tus.get(id)
  t.equal(final?.concat, 'final', 'the upload is a final upload')
  t.equal(final?.parts?.length, 3, 'of 3 parts')
  t.equal(final?.metadata.filename, 'parallel.bin', 'metadata on the final upload')
  const parts = await Promise.all((final?.parts ?? []).map(async (part) => server.app.tus.get(part)))
  t.ok(parts.every((p) => p?.concat === 'partial'), 'every part is a partial upload')
  t.ok(parts.every((p) => p?.completedAt instanceof Date && p.offset === p.length), 'every part is complete')
  t.equal(parts.reduce((sum, p) => sum + (p?.length ?? 0), 0), data.length, 'part lengths add up to the file')
  const joined = Buffer.concat(await Promise.all((final?.parts ?? []).map(async (part) => await storedBytes(server.storage, part) ?? Buffer.alloc(0))))
  t.ok(joined.equals(data), 'the parts, in order, are the file')

  const head = await send('HEAD', url, { headers: TUS })
  t.match(String(head.headers['upload-concat']), /^final;/, 'HEAD says Upload-Concat: final')
  const posts = seen.filter((r) => r.method === 'POST')
  t.equal(posts.filter((r) => r.concat === 'partial').length, 3, '3 partial creations')
  t.equal(posts.filter((r) => r.concat?.startsWith('final;') === true).length, 1, '1 final creation')
})

t.test('4. uploadLengthDeferred with a Node Readable', LIMIT, async (t) => {
  const CHUNK = 256 * KiB

  t.test('length not a multiple of chunkSize', LIMIT, async (t) => {
    let seen!: SeenRequest[]
    const server = await startServer(t, {}, (app) => { seen = recordRequests(app) })
    const data = bytes(MiB + 333, 105)
    const { url, id } = await runUpload(asSource(streamFrom(data, [10_000, 70_001, 123_456, 1])), {
      endpoint: server.endpoint + '/',
      chunkSize: CHUNK,
      uploadLengthDeferred: true
    })
    await assertComplete(t, server.app, server.storage, url, data)
    t.equal((await server.app.tus.get(id))?.length, data.length, 'the final length is set on the record')
    const post = seen.find((r) => r.method === 'POST')
    t.equal(post?.deferLength, '1', 'created with Upload-Defer-Length: 1')
    t.equal(post?.length, undefined, 'created without Upload-Length')
    const patches = seen.filter((r) => r.method === 'PATCH')
    t.equal(patches.length, 5, 'five PATCHes')
    const declaring = patches.filter((r) => r.length !== undefined)
    t.equal(declaring.length, 1, 'one PATCH declared the length')
    t.equal(declaring[0], patches[patches.length - 1], 'the last one')
    t.equal(declaring[0]?.length, String(data.length), 'with the right length')
  })

  // tus-js-client 4.3.1 stalls here: after the last full chunk its StreamSource
  // waits for a 'readable' event that never comes once the stream has ended
  // (tus/tus-js-client#779), so it never sends the closing PATCH. The server's
  // side is checked where the client stops, then the PATCH a fixed client sends
  // (empty body, Upload-Length) is sent by hand.
  t.test('length an exact multiple of chunkSize', LIMIT, async (t) => {
    const server = await startServer(t)
    const data = bytes(MiB, 106)
    let accepted = 0
    let upload!: tus.Upload
    const outcome = runUpload(asSource(streamFrom(data, [100_000, 3])), {
      endpoint: server.endpoint + '/',
      chunkSize: CHUNK,
      uploadLengthDeferred: true,
      onChunkComplete: (_size, total) => { accepted = total }
    }, ON_OBJECTS ? 5000 : 2000, (u) => { upload = u }).then(() => true, () => false)
    await waitFor(() => accepted === data.length, WAIT, 'every chunk accepted')
    const finished = await outcome
    t.ok(finished, 'tus-js-client finishes an upload whose length is a multiple of chunkSize', { todo: 'tus-js-client#779: stalls after the last chunk' })
    const url = upload.url!
    const id = idFromUrl(url)
    if (!finished) {
      const record = await server.app.tus.get(id)
      t.equal(record?.offset, data.length, 'every byte is stored')
      t.equal(record?.length, null, 'the length is still deferred')
      t.equal(record?.completedAt, null, 'not complete without a length')
      const head = await send('HEAD', url, { headers: TUS })
      t.equal(head.headers['upload-defer-length'], '1', 'HEAD still says Upload-Defer-Length: 1')
      const res = await send('PATCH', url, {
        headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(data.length), 'Upload-Length': String(data.length) }
      })
      t.equal(res.status, 204, `empty closing PATCH with Upload-Length accepted (${res.text})`)
      t.equal(res.headers['upload-offset'], String(data.length))
    }
    await assertComplete(t, server.app, server.storage, url, data)
    t.equal((await server.app.tus.get(id))?.length, data.length, 'the final length is set on the record')
  })
})

t.test('5. overridePatchMethod: POST with X-HTTP-Method-Override: PATCH', LIMIT, async (t) => {
  let seen!: SeenRequest[]
  const server = await startServer(t, {}, (app) => { seen = recordRequests(app) })
  const data = bytes(MiB + MiB / 2 + 7, 106)
  const { url } = await runUpload(data, { endpoint: server.endpoint + '/', chunkSize: 512 * KiB, overridePatchMethod: true })
  await assertComplete(t, server.app, server.storage, url, data)
  t.equal(seen.filter((r) => r.method === 'PATCH').length, 0, 'no real PATCH was sent')
  const overridden = seen.filter((r) => r.method === 'POST' && r.override === 'PATCH')
  t.equal(overridden.length, 4, 'four overridden POSTs carried the chunks')
  t.same(overridden.map((r) => r.offset), ['0', String(512 * KiB), String(MiB), String(MiB + 512 * KiB)], 'at the right offsets')
})

t.test('6. uploadDataDuringCreation (creation-with-upload)', LIMIT, async (t) => {
  const CHUNK = 256 * KiB

  t.test('file larger than chunkSize: POST carries the first chunk, PATCHes follow', LIMIT, async (t) => {
    let seen!: SeenRequest[]
    const server = await startServer(t, {}, (app) => { seen = recordRequests(app) })
    const data = bytes(MiB + 100, 107)
    const { url } = await runUpload(data, { endpoint: server.endpoint + '/', chunkSize: CHUNK, uploadDataDuringCreation: true })
    await assertComplete(t, server.app, server.storage, url, data)
    const posts = seen.filter((r) => r.method === 'POST')
    t.equal(posts.length, 1, 'one creation POST')
    t.equal(posts[0]?.contentLength, CHUNK, 'the POST carried the first chunk')
    t.same(seen.filter((r) => r.method === 'PATCH').map((r) => r.offset),
      [CHUNK, 2 * CHUNK, 3 * CHUNK, 4 * CHUNK].map(String), 'PATCHes continue after the first chunk')
  })

  t.test('file smaller than chunkSize: done in the POST alone', LIMIT, async (t) => {
    let seen!: SeenRequest[]
    const server = await startServer(t, {}, (app) => { seen = recordRequests(app) })
    const data = bytes(CHUNK - 1, 108)
    const { url } = await runUpload(data, { endpoint: server.endpoint + '/', chunkSize: CHUNK, uploadDataDuringCreation: true })
    await assertComplete(t, server.app, server.storage, url, data)
    t.equal(seen.filter((r) => r.method === 'PATCH').length, 0, 'no PATCH needed')
  })
})

t.test('7. server limits: maxChunkSize and maxSize', LIMIT, async (t) => {
  t.test('maxChunkSize with chunkSize equal to it succeeds', LIMIT, async (t) => {
    let seen!: SeenRequest[]
    const server = await startServer(t, { maxChunkSize: 256 * KiB }, (app) => { seen = recordRequests(app) })
    const data = bytes(MiB + 1, 109)
    const { url } = await runUpload(data, { endpoint: server.endpoint + '/', chunkSize: 256 * KiB })
    await assertComplete(t, server.app, server.storage, url, data)
    t.ok(writes(seen).every((r) => r.contentLength <= 256 * KiB), 'no body above maxChunkSize')
    t.equal(writes(seen).length, 5, 'five PATCHes')
  })

  t.test('maxChunkSize with chunkSize smaller than it succeeds', LIMIT, async (t) => {
    const server = await startServer(t, { maxChunkSize: 256 * KiB })
    const data = bytes(MiB / 2 + 3, 110)
    const { url } = await runUpload(data, { endpoint: server.endpoint + '/', chunkSize: 100_000, uploadDataDuringCreation: true })
    await assertComplete(t, server.app, server.storage, url, data)
  })

  t.test('chunkSize above maxChunkSize: 413 reaches onError, nothing is kept', LIMIT, async (t) => {
    const server = await startServer(t, { maxChunkSize: 256 * KiB })
    const data = bytes(MiB, 111)
    const err = await uploadFailure(data, { endpoint: server.endpoint + '/', chunkSize: 512 * KiB })
    t.ok(err instanceof tus.DetailedError, 'a DetailedError')
    t.equal(status(err), 413, `PATCH answered 413 (${err.message})`)
    t.equal(err.originalRequest?.getMethod(), 'PATCH', 'the PATCH was refused')
    const url = err.originalRequest.getURL()
    const head = await send('HEAD', url, { headers: TUS })
    t.equal(head.headers['upload-offset'], '0', 'offset stayed 0')
    // On object storage an upload with no byte yet has nothing in the bucket (disk: an empty file).
    const kept = await storedBytes(server.storage, idFromUrl(url))
    if (ON_OBJECTS) t.equal(kept, null, 'no byte of the refused chunk is stored')
    else t.equal(kept?.length, 0, 'no byte of the refused chunk is stored')
  })

  t.test('upload larger than maxSize: creation answers 413 to onError', LIMIT, async (t) => {
    let seen!: SeenRequest[]
    const server = await startServer(t, { maxSize: MiB }, (app) => { seen = recordRequests(app) })
    const data = bytes(MiB + 1, 112)
    const errors: Error[] = []
    const err = await uploadFailure(data, { endpoint: server.endpoint + '/', chunkSize: 256 * KiB, retryDelays: [], onError: (e) => errors.push(e) })
    t.equal(errors.length, 1, 'onError fired once')
    t.ok(err instanceof tus.DetailedError, 'a DetailedError')
    t.equal(status(err), 413, `creation answered 413 (${err.message})`)
    t.equal(err.originalRequest?.getMethod(), 'POST')
    t.equal(seen.filter((r) => r.method === 'PATCH').length, 0, 'no PATCH was attempted')
    t.same(await server.app.tus.list(), [], 'no upload was created')
  })

  t.test('deferred-length stream growing past maxSize: 413 to onError', LIMIT, async (t) => {
    const server = await startServer(t, { maxSize: MiB })
    const data = bytes(MiB + 1, 113)
    const err = await uploadFailure(asSource(streamFrom(data, [64 * KiB])), {
      endpoint: server.endpoint + '/',
      chunkSize: 256 * KiB,
      uploadLengthDeferred: true
    })
    t.equal(status(err), 413, `answered 413 (${err.message})`)
    const [record] = await server.app.tus.list()
    t.ok(record !== undefined, 'the upload exists')
    t.ok((record?.offset ?? Infinity) <= MiB, 'never more than maxSize stored')
    t.equal(record?.completedAt, null, 'not complete')
  })
})

t.test('8. onComplete runs exactly once per finished upload', LIMIT, async (t) => {
  const calls: CompleteHookPayload[] = []
  const viaOption: string[] = []
  const server = await startServer(t, { onComplete: ({ upload }) => { viaOption.push(upload.id) } })
  server.app.tus.addHook('onComplete', async (payload) => { calls.push(payload) })

  // plain
  const plainData = bytes(MiB + 17, 114)
  const plain = await runUpload(plainData, { endpoint: server.endpoint + '/', chunkSize: 256 * KiB })
  await assertComplete(t, server.app, server.storage, plain.url, plainData, 'plain')
  t.same(calls.map((c) => c.upload.id), [plain.id], 'plain: addHook handler ran once, for this upload')
  t.same(viaOption, [plain.id], 'plain: option handler ran once')
  t.ok(calls[0]?.upload.completedAt instanceof Date, 'plain: payload says complete')
  t.equal(calls[0]?.upload.offset, plainData.length, 'plain: payload offset is the full length')
  t.equal(calls[0]?.attempt, 1, 'plain: first attempt')
  t.ok(calls[0]?.request !== null, 'plain: run by the finishing request')

  // parallel
  const parallelData = bytes(2 * MiB + 3, 115)
  const parallel = await runUpload(parallelData, { endpoint: server.endpoint + '/', chunkSize: 256 * KiB, parallelUploads: 3 })
  await assertComplete(t, server.app, server.storage, parallel.url, parallelData, 'parallel')
  const final = await server.app.tus.get(parallel.id)
  t.equal(final?.parts?.length, 3, 'parallel: 3 parts')

  // Give stray or retried deliveries a chance, then make the due ones run now.
  await sleep(200)
  const ran = await server.app.tus.runDueCompleteHooks()
  t.equal(ran, 0, 'no delivery was still due')
  t.same(calls.map((c) => c.upload.id), [plain.id, parallel.id], 'one call for the plain upload, one for the final upload')
  t.same(viaOption, [plain.id, parallel.id], 'option handler: the same')
  for (const part of final?.parts ?? []) t.notOk(calls.some((c) => c.upload.id === part), `no call for partial upload ${part}`)
  const finalCall = calls[1]
  t.equal(finalCall?.upload.concat, 'final', 'the call is for the final upload')
  t.equal(finalCall?.upload.length, parallelData.length)
  t.ok(finalCall?.upload.completedAt instanceof Date)
  for (const id of [plain.id, parallel.id]) t.equal((await server.app.tus.get(id))?.completeHook?.state, 'delivered', `${id}: delivery recorded`)
  for (const part of final?.parts ?? []) t.equal((await server.app.tus.get(part))?.completeHook, null, `partial ${part} has no delivery`)
})
