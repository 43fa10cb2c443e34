// Parallel uploads through concatenation: N partial uploads sent at once, joined
// by a final upload; manual partial/final; resume; side by side with
// tus-js-client's parallelUploads on the same server.
import t from 'tap'
import * as tus from 'tus-js-client'
import { InMemoryURLStorage, TusAbortError, TusClient, TusClientError, TusUnsupportedError, type TusProgress } from '../lib/client/index.js'
import { startServer } from './helpers/server.js'
import { bytes } from './helpers/http.js'
import { idOf, sleep, waitFor } from './helpers/tus.js'
import { failureOf, logRequests, sourceFile, storedAt, streamOf } from './helpers/client-env.js'

const CHUNK = 32 * 1024

t.test('parallel: 4 partial uploads at once, joined in order, byte-exact', async (t) => {
  let inFlight = 0
  let maxInFlight = 0
  let log!: ReturnType<typeof logRequests>
  const server = await startServer(t, {}, (app) => {
    log = logRequests(app)
    app.addHook('onRequest', async (request) => {
      if (request.method !== 'PATCH') return
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      await sleep(10)
    })
    app.addHook('onResponse', async (request) => { if (request.method === 'PATCH') inFlight-- })
  })
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK, checksum: 'sha256' })
  t.teardown(() => client.close())

  for (const kind of ['path', 'Buffer'] as const) {
    const { path, content } = sourceFile(t, 10 * CHUNK + 777, 31)
    const events: TusProgress[] = []
    const url = await client.upload(kind === 'path' ? path : content, { parallel: 4, metadata: { filename: 'p.bin' }, onProgress: (p) => events.push(p) })
    t.ok(storedAt(server.uploadDir, url)?.equals(content), `${kind}: the final upload's bytes equal the source`)
    const final = await server.app.tus.get(idOf(url))
    t.equal(final?.concat, 'final', `${kind}: a final upload`)
    t.equal(final?.parts?.length, 4, `${kind}: of 4 parts`)
    t.same(final?.metadata, { filename: 'p.bin' }, `${kind}: metadata on the final upload`)
    const parts = await Promise.all(final!.parts!.map(async (id) => server.app.tus.get(id)))
    t.ok(parts.every((p) => p?.concat === 'partial'), `${kind}: parts are partial uploads`)
    const quarter = Math.floor(content.length / 4)
    t.same(parts.map((p) => p?.length), [0, 1, 2, 3].map((i) => quarter + (i < content.length % 4 ? 1 : 0)), `${kind}: equal ranges`)
    const last = events[events.length - 1]!
    t.equal(last.bytesUploaded, content.length, `${kind}: progress sums the parts`)
    t.equal(last.bytesTotal, content.length)
    t.equal(last.percent, 100)
  }
  t.ok(maxInFlight >= 2, `PATCHes overlapped (${maxInFlight} at once)`)
  t.equal(log.count('POST'), 2 * 5, '4 partial + 1 final creation per upload')
})

t.test('manual createPartialUpload and createFinalUpload', async (t) => {
  const server = await startServer(t)
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  t.teardown(() => client.close())
  const a = bytes(3 * CHUNK + 1, 32)
  const b = bytes(CHUNK - 1, 33)
  const { path: c, content: cBytes } = sourceFile(t, 2 * CHUNK, 34)
  const urls = await Promise.all([client.createPartialUpload(a), client.createPartialUpload(streamOf(b)), client.createPartialUpload(c)])
  for (const url of urls) t.equal((await client.getUploadInfo(url)).concat, 'partial', 'a partial upload')
  const final = await client.createFinalUpload(urls, { filename: 'abc' })
  t.ok(storedAt(server.uploadDir, final)?.equals(Buffer.concat([a, b, cBytes])), 'the final upload is the parts in order')
  const info = await client.getUploadInfo(final)
  t.equal(info.concat, 'final')
  t.same(info.metadata, { filename: 'abc' })
  t.equal(info.complete, true)
})

t.test('parallel upload resumes its parts after an abort', async (t) => {
  let log!: ReturnType<typeof logRequests>
  let inFlight = 0
  const server = await startServer(t, {}, (app) => {
    log = logRequests(app)
    app.addHook('onRequest', async (request) => {
      if (request.method !== 'PATCH') return
      inFlight++
      await sleep(10)
    })
    app.addHook('onResponse', async (request) => { if (request.method === 'PATCH') inFlight-- })
    app.addHook('onRequestAbort', async (request) => { if (request.method === 'PATCH') inFlight-- })
  })
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  t.teardown(() => client.close())
  const { path, content } = sourceFile(t, 24 * CHUNK, 35)
  const urlStorage = new InMemoryURLStorage()
  const controller = new AbortController()
  const aborted = await failureOf(client.upload(path, {
    parallel: 3,
    urlStorage,
    signal: controller.signal,
    onProgress: (p) => { if (p.bytesUploaded >= 6 * CHUNK) controller.abort() }
  }))
  t.ok(aborted instanceof TusAbortError, 'aborted')
  const posts = log.count('POST')
  t.equal(posts, 3, 'three partial uploads were created')
  // The server sees the PATCHes cut by the abort a moment later; let it finish them before counting.
  await sleep(100)
  await waitFor(() => inFlight === 0, 5000, 'the cut PATCHes to end')
  const stored = (await server.app.tus.list()).reduce((sum, u) => sum + u.offset, 0)
  log.patchBytes = 0
  let first: TusProgress | undefined
  const url = await client.upload(path, { parallel: 3, urlStorage, onProgress: (p) => { first ??= p } })
  t.equal(log.count('POST'), posts + 1, 'only the final upload was created')
  t.equal(log.patchBytes, content.length - stored, 'only the remainder of each part was sent')
  t.ok(first !== undefined && first.bytesUploaded > 0, 'progress starts from what the parts hold')
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'the final upload is byte-exact')
  t.same(await urlStorage.find('anything'), [])
})

t.test('what parallel cannot do: streams, servers without concatenation', async (t) => {
  let hideConcat = false
  const server = await startServer(t, {}, (app) => {
    app.addHook('onSend', async (request, reply) => {
      if (request.method === 'OPTIONS' && hideConcat) {
        reply.header('Tus-Extension', String(reply.getHeader('tus-extension')).split(',').filter((e) => !e.startsWith('concatenation')).join(','))
      }
    })
  })
  const client = new TusClient({ endpoint: server.endpoint })
  t.teardown(() => client.close())
  const error = await failureOf(client.upload(streamOf(bytes(1000, 1)), { parallel: 2 }))
  t.ok(error instanceof TusClientError && /known length/.test(error.message), 'a stream: TusClientError')
  await t.rejects(client.upload(Buffer.alloc(10), { parallel: 0 }), /parallel must be an integer/)

  const tiny = await client.upload(Buffer.from('abc'), { parallel: 8 })
  t.equal((await server.app.tus.get(idOf(tiny)))?.parts?.length, 3, 'no more parts than bytes')
  t.equal(storedAt(server.uploadDir, tiny)?.toString(), 'abc')

  hideConcat = true
  const plain = new TusClient({ endpoint: server.endpoint })
  t.teardown(() => plain.close())
  t.ok(await failureOf(plain.upload(Buffer.alloc(10), { parallel: 2 })) instanceof TusUnsupportedError, 'no concatenation: TusUnsupportedError')
})

t.test('side by side with tus-js-client parallelUploads on the same server', async (t) => {
  const server = await startServer(t, {}, (app) => {
    app.addHook('onRequest', async (request) => { if (request.method === 'PATCH') await sleep(5) })
  })
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  t.teardown(() => client.close())
  const ours = bytes(12 * CHUNK + 5, 36)
  const theirs = bytes(12 * CHUNK + 9, 37)

  const theirUpload = new Promise<string>((resolve, reject) => {
    const upload = new tus.Upload(theirs, {
      endpoint: server.endpoint + '/',
      chunkSize: CHUNK,
      parallelUploads: 3,
      retryDelays: [],
      metadata: { filename: 'theirs.bin' },
      onError: reject,
      onSuccess: () => resolve(upload.url!)
    })
    upload.start()
  })
  const [ourUrl, theirUrl] = await Promise.all([client.upload(ours, { parallel: 3, metadata: { filename: 'ours.bin' } }), theirUpload])
  t.ok(storedAt(server.uploadDir, ourUrl)?.equals(ours), 'our parallel upload is byte-exact')
  t.ok(storedAt(server.uploadDir, theirUrl)?.equals(theirs), 'tus-js-client\'s parallel upload is byte-exact')
  const [ourFinal, theirFinal] = [await server.app.tus.get(idOf(ourUrl)), await server.app.tus.get(idOf(theirUrl))]
  t.equal(ourFinal?.concat, 'final')
  t.equal(theirFinal?.concat, 'final')
  t.equal(ourFinal?.metadata.filename, 'ours.bin')
  t.equal(theirFinal?.metadata.filename, 'theirs.bin')
  const shared = ourFinal!.parts!.filter((id) => theirFinal!.parts!.includes(id))
  t.same(shared, [], 'no part is shared')

  // And the other way round: our client reads tus-js-client's upload.
  const info = await client.getUploadInfo(theirUrl)
  t.equal(info.length, theirs.length)
  t.equal(info.complete, true)
})
