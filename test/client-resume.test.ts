// Resuming: upload() with a URL storage picks up an aborted upload where the
// server left it; resume(source, url); findPreviousUploads; keepUrl; dead URLs.
import t from 'tap'
import { join } from 'node:path'
import { FileURLStorage, InMemoryURLStorage, TusAbortError, TusClient, TusClientError, TusHttpError, type TusProgress } from '../lib/client/index.js'
import { startServer, tempDir } from './helpers/server.js'
import { bytes } from './helpers/http.js'
import { idOf, sleep } from './helpers/tus.js'
import { failureOf, logRequests, sourceFile, storedAt } from './helpers/client-env.js'

const CHUNK = 32 * 1024

/** A server that takes its time over each PATCH, so an upload can be stopped midway. */
async function slowServer (t: Parameters<typeof startServer>[0]): Promise<{ server: Awaited<ReturnType<typeof startServer>>; log: ReturnType<typeof logRequests> }> {
  let log!: ReturnType<typeof logRequests>
  const server = await startServer(t, {}, (app) => {
    log = logRequests(app)
    app.addHook('onRequest', async (request) => { if (request.method === 'PATCH') await sleep(15) })
  })
  return { server, log }
}

/** Uploads until `bytes` are acknowledged, then aborts; answers the bytes acknowledged. */
async function uploadPartly (client: TusClient, source: string | Buffer, options: { urlStorage: InMemoryURLStorage | FileURLStorage }, bytesWanted: number): Promise<number> {
  const controller = new AbortController()
  let acknowledged = 0
  const error = await client.upload(source, {
    ...options,
    signal: controller.signal,
    onProgress: (p: TusProgress) => {
      acknowledged = p.bytesUploaded
      if (p.bytesUploaded >= bytesWanted) controller.abort()
    }
  }).catch((err: unknown) => err)
  if (!(error instanceof TusAbortError)) throw new Error(`expected an abort, got ${String(error)}`)
  return acknowledged
}

for (const kind of ['path', 'Buffer'] as const) {
  t.test(`${kind}: an aborted upload resumes from the server's offset, sending only the rest`, async (t) => {
    const { server, log } = await slowServer(t)
    const { path, content } = sourceFile(t, 20 * CHUNK + 99, 21)
    const source = kind === 'path' ? path : content
    const urlStorage = new FileURLStorage(join(tempDir(t), 'state', 'uploads.json'))
    const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK, checksum: 'sha1' })
    t.teardown(() => client.close())

    await uploadPartly(client, source, { urlStorage }, 5 * CHUNK)
    const previous = await client.findPreviousUploads(source, { urlStorage })
    t.equal(previous.length, 1, 'the unfinished upload is remembered')
    const url = previous[0]!.uploadUrl!
    t.equal(previous[0]!.size, content.length)
    const offsetBefore = (await client.getUploadInfo(url)).offset!
    t.ok(offsetBefore >= 5 * CHUNK && offsetBefore < content.length, `the server holds part of it (${offsetBefore})`)

    const postsBefore = log.count('POST')
    log.patchBytes = 0
    let first: TusProgress | undefined
    const resumed = await client.upload(source, { urlStorage, onProgress: (p) => { first ??= p } })
    t.equal(resumed, url, 'the same upload URL')
    t.equal(log.count('POST'), postsBefore, 'no new upload was created')
    t.equal(log.patchBytes, content.length - offsetBefore, 'only the remainder was sent')
    t.equal(first?.bytesUploaded, offsetBefore, 'progress starts at the resumed offset')
    t.ok(storedAt(server.uploadDir, url)?.equals(content), 'stored bytes equal the source')
    t.same(await client.findPreviousUploads(source, { urlStorage }), [], 'the entry is removed on success')
  })
}

t.test('keepUrl: the entry stays, and a second upload of the same source sends nothing', async (t) => {
  const { server, log } = await slowServer(t)
  const content = bytes(3 * CHUNK, 22)
  const urlStorage = new InMemoryURLStorage()
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK, urlStorage })
  t.teardown(() => client.close())
  const url = await client.upload(content, { keepUrl: true })
  t.equal((await client.findPreviousUploads(content)).length, 1, 'kept (client-wide urlStorage)')
  const requests = log.requests.length
  t.equal(await client.upload(content, { keepUrl: true }), url, 'the same URL again')
  t.same(log.requests.slice(requests).map((r) => r.split(' ')[0]), ['HEAD'], 'only a HEAD was needed')
  const other = await client.upload(bytes(3 * CHUNK, 23))
  t.not(other, url, 'other content is another upload')
})

t.test('a remembered URL the server no longer has: a new upload, and the dead entry goes', async (t) => {
  const server = await startServer(t)
  const content = bytes(4 * CHUNK, 24)
  const urlStorage = new InMemoryURLStorage()
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  t.teardown(() => client.close())
  await uploadPartly(client, content, { urlStorage }, CHUNK)
  const [entry] = await client.findPreviousUploads(content, { urlStorage })
  await client.delete(entry!.uploadUrl!)
  t.equal((await failureOf(client.getUploadInfo(entry!.uploadUrl!))).statusCode, 404, 'deleted on the server')

  const url = await client.upload(content, { urlStorage })
  t.not(url, entry!.uploadUrl, 'a new upload')
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'stored bytes equal the source')
  t.same(await client.findPreviousUploads(content, { urlStorage }), [], 'no entry left')
})

t.test('a changed file is not resumed onto the old upload', async (t) => {
  const server = await startServer(t)
  const { path } = sourceFile(t, 4 * CHUNK, 25)
  const urlStorage = new InMemoryURLStorage()
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  t.teardown(() => client.close())
  await uploadPartly(client, path, { urlStorage }, CHUNK)
  t.equal((await client.findPreviousUploads(path, { urlStorage })).length, 1)
  const { writeFileSync } = await import('node:fs')
  const changed = bytes(4 * CHUNK + 1, 26)
  writeFileSync(path, changed)
  t.same(await client.findPreviousUploads(path, { urlStorage }), [], 'another size and mtime: another fingerprint')
  const url = await client.upload(path, { urlStorage })
  t.ok(storedAt(server.uploadDir, url)?.equals(changed), 'the new content is uploaded whole')
})

t.test('resume(source, url) continues a known URL; a wrong source or a dead URL is an error', async (t) => {
  const { server, log } = await slowServer(t)
  const content = bytes(6 * CHUNK + 3, 27)
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  t.teardown(() => client.close())
  const urlStorage = new InMemoryURLStorage()
  await uploadPartly(client, content, { urlStorage }, 2 * CHUNK)
  const url = (await client.findPreviousUploads(content, { urlStorage }))[0]!.uploadUrl!
  const info = await client.getUploadInfo(url)
  log.patchBytes = 0
  t.equal(await client.resume(content, url), url)
  t.equal(log.patchBytes, content.length - info.offset!, 'only the remainder was sent')
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'stored bytes equal the source')

  await t.rejects(client.resume(bytes(5, 1), url), TusClientError, 'a source of another length is refused')
  await client.delete(url)
  const gone = await client.resume(content, url).catch((err: unknown) => err) as TusHttpError
  t.ok(gone instanceof TusHttpError && gone.statusCode === 404, 'a deleted upload: TusHttpError 404')
})

t.test('getUploadInfo, getServerInfo, delete', async (t) => {
  const server = await startServer(t, { maxSize: 10_000_000, expiration: 3_600_000, checksumAlgorithms: ['sha256', 'md5'] })
  const client = new TusClient({ endpoint: server.endpoint })
  t.teardown(() => client.close())
  const info = await client.getServerInfo()
  t.equal(info.version, '1.0.0')
  t.same(info.versions, ['1.0.0'])
  t.equal(info.maxSize, 10_000_000)
  t.same(info.checksumAlgorithms, ['sha256', 'md5'])
  for (const extension of ['creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'expiration', 'checksum', 'concatenation']) {
    t.ok(info.extensions.includes(extension), `extension ${extension}`)
  }

  const uploader = await client.createUploader(bytes(100_000, 2), { metadata: { filename: 'x.bin', empty: '' } })
  await uploader.uploadChunk()
  await uploader.close()
  const upload = await client.getUploadInfo(uploader.url!)
  t.equal(upload.offset, 100_000)
  t.equal(upload.length, 100_000)
  t.equal(upload.complete, true)
  t.same(upload.metadata, { filename: 'x.bin', empty: '' }, 'metadata decoded')
  t.equal(upload.expires, null, 'a finished upload does not expire')

  const unfinished = await client.createUploader(bytes(3 * 1024 * 1024, 3))
  await unfinished.uploadChunk()
  await unfinished.close()
  const partial = await client.getUploadInfo(unfinished.url!)
  t.equal(partial.offset, 1024 * 1024, 'one chunk (1 MiB default) stored')
  t.ok(partial.expires instanceof Date && partial.expires.getTime() > Date.now(), 'Upload-Expires as a Date')
  t.equal(partial.complete, false)

  await client.delete(unfinished.url!)
  t.equal(await server.app.tus.get(idOf(unfinished.url!)), undefined, 'deleted on the server')
  t.equal((await failureOf(client.delete(unfinished.url!))).statusCode, 404, 'a second delete: 404')
})
