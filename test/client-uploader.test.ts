// The low-level Uploader: one chunk per call, the caller drives the loop.
import t from 'tap'
import { InMemoryURLStorage, TusClient, TusClientError, Uploader } from '../lib/client/index.js'
import { startServer } from './helpers/server.js'
import { bytes } from './helpers/http.js'
import { logRequests, sourceFile, storedAt, streamOf } from './helpers/client-env.js'

const CHUNK = 16 * 1024

t.test('one chunk per call, offsets as the server reports them', async (t) => {
  let log!: ReturnType<typeof logRequests>
  const server = await startServer(t, {}, (app) => { log = logRequests(app) })
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK, checksum: 'md5' })
  t.teardown(() => client.close())
  const { path, content } = sourceFile(t, 3 * CHUNK + 100, 41)
  const uploader = await client.createUploader(path, { metadata: { filename: 'u.bin' } })
  t.ok(uploader instanceof Uploader)
  t.equal(uploader.url, null, 'no URL before the first call')
  t.equal(uploader.length, content.length)

  const offsets: number[] = []
  const requests: number[] = []
  let result = await uploader.uploadChunk()
  offsets.push(result.offset)
  requests.push(log.requests.length)
  for (let calls = 0; !result.done && calls < 10; calls++) {
    t.equal(await server.app.tus.get(result.url.split('/').pop()!).then((u) => u?.offset), result.offset, 'the server agrees after each call')
    result = await uploader.uploadChunk()
    offsets.push(result.offset)
    requests.push(log.requests.length)
  }
  t.same(offsets, [CHUNK, 2 * CHUNK, 3 * CHUNK, 3 * CHUNK + 100], 'one chunk per call')
  t.same(requests, [2, 3, 4, 5], 'first call: OPTIONS + POST with the first chunk; then one PATCH per call')
  t.equal(uploader.done, true)
  t.equal(uploader.offset, content.length)
  t.equal(uploader.progress.chunks, 4)
  t.same(await uploader.uploadChunk(), { offset: content.length, done: true, url: result.url }, 'a call after the end does nothing')
  t.equal(log.requests.length, 5, 'and sends nothing')
  t.ok(storedAt(server.uploadDir, result.url)?.equals(content), 'stored bytes equal the source')
  await uploader.close()
  await t.rejects(uploader.uploadChunk(), TusClientError, 'a closed uploader refuses to go on')
})

t.test('a stream, paced by the caller; resuming a URL with createUploader({ url })', async (t) => {
  const server = await startServer(t)
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  t.teardown(() => client.close())
  const content = bytes(2 * CHUNK + 5, 42)
  const streamed = await client.createUploader(streamOf(content, 999))
  t.equal(streamed.length, null, 'a stream has no length yet')
  let calls = 0
  while (!(await streamed.uploadChunk()).done && calls < 10) calls++
  t.equal(streamed.length, content.length, 'known at the end')
  t.ok(storedAt(server.uploadDir, streamed.url!)?.equals(content), 'stored bytes equal the stream')
  await streamed.close()

  const urlStorage = new InMemoryURLStorage()
  const first = await client.createUploader(content, { urlStorage })
  await first.uploadChunk()
  await first.close()
  t.equal((await client.findPreviousUploads(content, { urlStorage })).length, 1, 'remembered after one chunk')
  const again = await client.createUploader(content, { url: first.url! })
  const step = await again.uploadChunk()
  t.equal(step.url, first.url, 'same upload')
  t.equal(step.offset, 2 * CHUNK, 'continued from the server\'s offset')
  t.equal((await again.uploadChunk()).done, true)
  await again.close()
  t.ok(storedAt(server.uploadDir, first.url!)?.equals(content), 'stored bytes equal the source')
})
