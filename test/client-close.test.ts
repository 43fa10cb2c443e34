// TusClient.close(): new work is refused at once (ERR_TUS_CLIENT_CLOSED), work in
// flight finishes byte-exact before close resolves, and close({ timeout }) aborts
// what is left when the time runs out, leaving it resumable from the URL storage.
// Also the low-level Uploader and the Fastify decorator's close on app close.
import t from 'tap'
import Fastify from 'fastify'
import { InMemoryURLStorage, TusAbortError, TusClient, TusClientError, tusClient, type TusProgress } from '../lib/client/index.js'
import { startServer, type TestServer } from './helpers/server.js'
import { assertStored, head, sleep } from './helpers/tus.js'
import { failureOf, logRequests, sourceFile, type RequestLog } from './helpers/client-env.js'

const CHUNK = 32 * 1024
const CLOSED = /TusClient is closed \(close\(\) was called\)/

/** A server whose PATCH requests each wait `delay.ms` before they are handled, so uploads can be caught midway. */
async function slowServer (t: Parameters<typeof startServer>[0], ms: number): Promise<{ server: TestServer; log: RequestLog; delay: { ms: number } }> {
  const delay = { ms }
  let log!: RequestLog
  const server = await startServer(t, {}, (app) => {
    log = logRequests(app)
    app.addHook('onRequest', async (request) => { if (request.method === 'PATCH' && delay.ms > 0) await sleep(delay.ms) })
  })
  return { server, log, delay }
}

/** Resolves once an upload's progress shows at least `bytes` acknowledged. */
function progressPast (bytes: number): { onProgress: (p: TusProgress) => void; reached: Promise<void>; latest: () => number } {
  let latest = 0
  let reach!: () => void
  const reached = new Promise<void>((resolve) => { reach = resolve })
  return {
    onProgress: (p) => { latest = p.bytesUploaded; if (p.bytesUploaded >= bytes) reach() },
    reached,
    latest: () => latest
  }
}

t.test('an upload in flight when close() is called finishes byte-exact; new work is refused meanwhile and after', async (t) => {
  const { server, log } = await slowServer(t, 40)
  const { path, content } = sourceFile(t, 12 * CHUNK + 777, 31)
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK, checksum: 'sha256' })
  t.teardown(() => client.close({ timeout: 0 }))

  const progress = progressPast(2 * CHUNK)
  const events: string[] = []
  const uploading = client.upload(path, { metadata: { filename: 'a.bin' }, onProgress: progress.onProgress })
    .then((url) => { events.push('upload'); return url })
  await progress.reached
  const closing = client.close().then(() => { events.push('close') })
  t.ok(progress.latest() < content.length, `close() was called mid-upload (${progress.latest()} of ${content.length} bytes)`)

  // While it drains, nothing new starts, and nothing reaches the server for it.
  const postsBefore = log.count('POST')
  const refused = await failureOf(client.upload(Buffer.from('new')))
  t.ok(refused instanceof TusClientError, 'a new upload while closing rejects with a TusClientError')
  t.equal(refused.code, 'ERR_TUS_CLIENT_CLOSED')
  t.match(refused.message, CLOSED, 'the message names close()')

  const url = await uploading
  await closing
  t.same(events, ['upload', 'close'], 'close() resolved only after the upload in flight had finished')
  await assertStored(t, url, server.uploadDir, content, 'the upload in flight')

  // After close resolved: every call that would start something is refused, and no request goes out.
  for (const [name, call] of [
    ['upload', () => client.upload(path)],
    ['resume', () => client.resume(path, url)],
    ['upload parallel', () => client.upload(path, { parallel: 2 })],
    ['createUploader', () => client.createUploader(path)],
    ['createPartialUpload', () => client.createPartialUpload(Buffer.from('x'))],
    ['createFinalUpload', () => client.createFinalUpload([url])],
    ['getServerInfo', () => client.getServerInfo()],
    ['getUploadInfo', () => client.getUploadInfo(url)],
    ['delete', () => client.delete(url)]
  ] as const) {
    const error = await failureOf((call as () => Promise<unknown>)())
    t.equal(error.code, 'ERR_TUS_CLIENT_CLOSED', `${name} after close() rejects with ERR_TUS_CLIENT_CLOSED`)
    t.match(error.message, CLOSED, `${name}: the message names close()`)
  }
  t.equal(log.count('POST'), postsBefore, 'no upload was created after close()')
  t.equal((await head(url)).status, 200, 'the finished upload was not deleted')
  await client.close()
  t.pass('close() again resolves')
})

t.test('close({ timeout }) aborts a slow upload when the time runs out; it stays resumable from the URL storage', async (t) => {
  const { server, delay } = await slowServer(t, 300)
  const { path, content } = sourceFile(t, 20 * CHUNK + 4321, 32)
  const urlStorage = new InMemoryURLStorage()
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK, urlStorage, retryDelay: 50 })
  t.teardown(() => client.close({ timeout: 0 }))

  const progress = progressPast(2 * CHUNK)
  const uploading = failureOf(client.upload(path, { onProgress: progress.onProgress }))
  await progress.reached
  const started = Date.now()
  await client.close({ timeout: 400 })
  const took = Date.now() - started
  t.ok(took >= 390 && took < 1500, `close resolved near its timeout (${took} ms)`)

  const error = await uploading
  t.ok(error instanceof TusAbortError, `the upload was aborted (${error.message})`)
  t.equal(error.code, 'ABORT_ERR', 'as by its own AbortSignal')
  const cause = (error as TusAbortError).cause as TusClientError
  t.ok(cause instanceof TusClientError, 'the abort\'s cause is a TusClientError')
  t.equal(cause.code, 'ERR_TUS_CLIENT_CLOSED')
  t.match(cause.message, /close\(\).*400 ms/, 'which names close() and its timeout')

  // The URL is still in the storage, and the server kept what it acknowledged.
  delay.ms = 0
  const next = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK, urlStorage, retryDelay: 50 })
  t.teardown(() => next.close({ timeout: 0 }))
  const previous = await next.findPreviousUploads(path)
  t.equal(previous.length, 1, 'the interrupted upload is still in the URL storage')
  const url = previous[0]!.uploadUrl!
  const res = await head(url)
  const offset = Number(res.headers['upload-offset'])
  t.ok(offset >= 2 * CHUNK && offset < content.length, `HEAD shows a partial offset (${offset} of ${content.length})`)

  const resumed = await next.upload(path)
  t.equal(resumed, url, 'a new client resumes the same upload')
  await assertStored(t, url, server.uploadDir, content, 'after resuming')
  t.same(await urlStorage.find(previous[0]!.fingerprint), [], 'the entry is gone once the upload is complete')
})

t.test('a started Uploader is waited for until it is done; one not started yet is refused', async (t) => {
  const { server } = await slowServer(t, 20)
  const { path, content } = sourceFile(t, 6 * CHUNK + 5, 33)
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  t.teardown(() => client.close({ timeout: 0 }))

  const started = await client.createUploader(path)
  const idle = await client.createUploader(Buffer.from('never sent'))
  let step = await started.uploadChunk()
  let closed = false
  const closing = client.close().then(() => { closed = true })

  const refused = await failureOf(idle.uploadChunk())
  t.equal(refused.code, 'ERR_TUS_CLIENT_CLOSED', 'the first uploadChunk() of an uploader not started yet is refused')
  await idle.close()

  // The started one keeps going: each of its chunks still goes out.
  while (!step.done) {
    await sleep(30) // a caller pacing its own loop
    t.notOk(closed, `close() waits while the uploader is at ${step.offset}`)
    step = await started.uploadChunk()
  }
  await closing
  t.ok(closed, 'close() resolved once the uploader was done')
  await started.close()
  await assertStored(t, step.url, server.uploadDir, content, 'the uploader\'s upload')
})

t.test('an Uploader closed or aborted unfinished releases close(); with nothing in flight close() resolves at once', async (t) => {
  const { server } = await slowServer(t, 0)
  const { path } = sourceFile(t, 4 * CHUNK, 34)
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  const uploader = await client.createUploader(path)
  await uploader.uploadChunk()
  let closed = false
  const closing = client.close().then(() => { closed = true })
  await sleep(50)
  t.notOk(closed, 'close() waits for the unfinished uploader')
  await uploader.close()
  await closing
  t.ok(closed, 'and resolves once it is closed')
  t.equal((await head(uploader.url!)).headers['upload-offset'], String(CHUNK), 'its upload stays on the server, resumable')

  // A started uploader paused between its calls is aborted by the timeout, which ends close()'s wait for it.
  const paused = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  const pausedUploader = await paused.createUploader(path)
  await pausedUploader.uploadChunk()
  const before = Date.now()
  await paused.close({ timeout: 100 })
  const waited = Date.now() - before
  t.ok(waited >= 90 && waited < 1000, `close({ timeout: 100 }) resolved after ${waited} ms`)
  const aborted = await failureOf(pausedUploader.uploadChunk())
  t.ok(aborted instanceof TusAbortError, 'the paused uploader was aborted')
  t.equal(((aborted as TusAbortError).cause as TusClientError).code, 'ERR_TUS_CLIENT_CLOSED', 'by close()')
  await pausedUploader.close()
  t.equal((await head(pausedUploader.url!)).headers['upload-offset'], String(CHUNK), 'its upload stays on the server, resumable')

  const idle = new TusClient({ endpoint: server.endpoint })
  const started = Date.now()
  await idle.close({ timeout: 5000 })
  t.ok(Date.now() - started < 100, 'nothing in flight: close() does not wait for its timeout')
  await t.rejects(idle.close({ timeout: -1 }), TypeError, 'a bad timeout is a TypeError')
})

t.test('the Fastify decorator closes its client on app close, bounded by closeTimeout', async (t) => {
  const { server } = await slowServer(t, 300)
  const { path, content } = sourceFile(t, 20 * CHUNK, 35)
  const urlStorage = new InMemoryURLStorage()
  const app = Fastify()
  await app.register(tusClient, { endpoint: server.endpoint, chunkSize: CHUNK, urlStorage, closeTimeout: 300 })

  const progress = progressPast(CHUNK)
  const uploading = failureOf(app.tusClient.upload(path, { onProgress: progress.onProgress }))
  await progress.reached
  const started = Date.now()
  await app.close()
  const took = Date.now() - started
  t.ok(took >= 290 && took < 1500, `app.close() waited for the client about closeTimeout (${took} ms)`)
  const error = await uploading
  t.ok(error instanceof TusAbortError, 'the upload still in flight was aborted')
  const refused = await failureOf(app.tusClient.getServerInfo())
  t.equal(refused.code, 'ERR_TUS_CLIENT_CLOSED', 'the client is closed with the app')
  const [entry] = await new TusClient({ endpoint: server.endpoint, urlStorage }).findPreviousUploads(path)
  const offset = Number((await head(entry!.uploadUrl!)).headers['upload-offset'])
  t.ok(offset >= CHUNK && offset < content.length, `its URL stayed in the URL storage, resumable at ${offset}`)

  await t.rejects(async () => { await Fastify().register(tusClient, { endpoint: server.endpoint, closeTimeout: -5 }) }, /closeTimeout/)
})

t.test('the decorator lets a short upload in flight finish on app close', async (t) => {
  const { server } = await slowServer(t, 20)
  const { path, content } = sourceFile(t, 5 * CHUNK, 36)
  const app = Fastify()
  await app.register(tusClient, { endpoint: server.endpoint, chunkSize: CHUNK })
  const progress = progressPast(1)
  let finished = false
  const uploading = app.tusClient.upload(path, { onProgress: progress.onProgress }).then((url) => { finished = true; return url })
  await progress.reached
  await app.close()
  t.ok(finished, 'app.close() resolved after the upload in flight had finished')
  await assertStored(t, await uploading, server.uploadDir, content, 'the upload in flight on app close')
})
