// The client with protocol 'ietf-draft' (interop versions 6 to 9) against the
// plugin's IETF draft side: uploads byte-exact, the URL from the 104 stored
// before the creation's answer, a creation cut off and resumed from the URL
// storage, 409s recovered (Upload-Offset, problem document, HEAD), deferred
// length, the empty last append, 413 with max-append-size, 429 with
// Retry-After, 104 progress, a Location mismatch, cancellation, the options
// refused in this mode, and the CLI's --protocol ietf-draft.
import t from 'tap'
import { createServer as createHttpServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net'
import {
  InMemoryURLStorage, TusAbortError, TusClient, TusHttpError, TusNetworkError, TusProtocolError, TusUnsupportedError, isRetryableError,
  type DraftInteropVersion, type TusProgress, type URLStorageEntry
} from '../lib/client/index.js'
import { startServer, type TestServer } from './helpers/server.js'
import { bytes } from './helpers/http.js'
import { idOf, sleep, waitFor } from './helpers/tus.js'
import { failureOf, sourceFile, storedAt, streamOf } from './helpers/client-env.js'
import { run } from './helpers/client-spawn.js'

const CHUNK = 64 * 1024
const VERSIONS: DraftInteropVersion[] = [6, 7, 8, 9]
const BIN = 'dist/lib/cli/main.js'

interface Seen { method: string; url: string; headers: IncomingHttpHeaders }
interface Answered { method: string; status: number; headers: Record<string, unknown> }

/** A server that records every request and answer of its upload routes. */
async function recordingServer (t: Parameters<typeof startServer>[0], options: Parameters<typeof startServer>[1] = {}, setup?: Parameters<typeof startServer>[2]): Promise<{ server: TestServer; seen: Seen[]; answered: Answered[] }> {
  const seen: Seen[] = []
  const answered: Answered[] = []
  const server = await startServer(t, options, async (app) => {
    app.addHook('onRequest', async (request) => { seen.push({ method: request.method, url: request.url, headers: { ...request.headers } }) })
    app.addHook('onResponse', async (request, reply) => { answered.push({ method: request.method, status: reply.statusCode, headers: reply.getHeaders() }) })
    await setup?.(app)
  })
  return { server, seen, answered }
}

/** A URL storage that records when each URL was saved. */
class WatchedStorage extends InMemoryURLStorage {
  readonly saves: Array<{ url: string | null; at: number }> = []
  override async save (fingerprint: string, entry: URLStorageEntry): Promise<void> {
    this.saves.push({ url: entry.uploadUrl, at: Date.now() })
    await super.save(fingerprint, entry)
  }
}

/** One request of the draft by hand, outside the client. */
function raw (url: string, method: string, headers: Record<string, string>, body: Buffer = Buffer.alloc(0)): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, agent: false, headers: { ...headers, 'Content-Length': String(body.length) } }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

/**
 * A TCP proxy whose first connection carries `limit` bytes of the request,
 * then holds the rest; once the server's 104 has gone through to the client,
 * both sides are cut. Later connections pass untouched.
 */
async function cutAfter104 (t: { teardown: (fn: () => unknown) => void }, target: string, limit: number): Promise<{ origin: string; cuts: () => number }> {
  const { hostname, port } = new URL(target)
  let connections = 0
  let cuts = 0
  const sockets = new Set<Socket>()
  const server = createTcpServer((client) => {
    const first = connections++ === 0
    const upstream = connect(Number(port), hostname)
    sockets.add(client).add(upstream)
    let forwarded = 0
    let holding = false
    let interim = false
    let cutting = false
    const maybeCut = (): void => {
      if (!holding || !interim || cutting) return
      cutting = true
      setTimeout(() => { cuts++; client.destroy(); upstream.destroy() }, 100)
    }
    client.on('data', (data: Buffer) => {
      if (first && forwarded + data.length > limit) {
        upstream.write(data.subarray(0, limit - forwarded))
        forwarded = limit
        holding = true
        client.pause()
        maybeCut()
        return
      }
      forwarded += data.length
      upstream.write(data)
    })
    upstream.on('data', (data: Buffer) => {
      client.write(data)
      if (first && data.toString('latin1').includes('HTTP/1.1 104 ')) {
        interim = true
        maybeCut()
      }
    })
    const close = (): void => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream) }
    client.on('close', close)
    upstream.on('close', close)
    client.on('error', () => {})
    upstream.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, cuts: () => cuts }
}

/** A hand-written draft server, for answers the plugin never gives. */
async function fakeServer (t: { teardown: (fn: () => unknown) => void }, handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void): Promise<{ origin: string; requests: Seen[] }> {
  const requests: Seen[] = []
  const server = createHttpServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
    const chunks: Buffer[] = []
    if (req.method === 'POST' || req.method === 'PATCH') handler(req, res, Buffer.alloc(0)) // the 104s go first
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => handler(req, res, Buffer.concat(chunks)))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests }
}

/** Writes a 1xx on the socket before the final answer, as the plugin does. */
function interim (res: ServerResponse, headers: Record<string, string>): void {
  let head = 'HTTP/1.1 104 Upload Resumption Supported\r\n'
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`
  res.socket!.write(head + '\r\n')
}

for (const version of VERSIONS) {
  t.test(`interop ${version}: a file uploaded byte-exact; the URL from the 104 is stored before the creation's answer`, async (t) => {
    let completions = 0
    let postAnswered = 0
    const { server, seen, answered } = await recordingServer(t, { onComplete: async () => { completions++ } }, (app) => {
      // The creation's final answer waits: the 104 must have given the URL by then.
      app.addHook('onSend', async (request) => { if (request.method === 'POST') await sleep(150) })
      app.addHook('onResponse', async (request) => { if (request.method === 'POST') postAnswered = Date.now() })
    })
    const { path, content } = sourceFile(t, 5 * CHUNK + 1234, version)
    const storage = new WatchedStorage()
    const client = new TusClient({ endpoint: server.endpoint, protocol: 'ietf-draft', draftVersion: version, chunkSize: CHUNK })
    t.teardown(() => client.close())
    t.equal(client.options.draftVersion, version)
    const progress: TusProgress[] = []
    const url = await client.upload(path, {
      urlStorage: storage,
      metadata: { filename: 'päckchen "1".bin', filetype: 'application/x-test', owner: 'ann' },
      onProgress: (p) => progress.push(p)
    })

    t.ok(storedAt(server.uploadDir, url)?.equals(content), 'stored byte-exact')
    t.equal(completions, 1, 'onComplete ran once')
    t.equal(storage.saves.length, 1, 'the URL was stored once')
    t.equal(storage.saves[0]!.url, url, 'the URL of the 104 is the upload URL')
    t.ok(postAnswered > 0 && storage.saves[0]!.at < postAnswered, 'stored before the creation was answered')
    t.same(await client.findPreviousUploads(path, { urlStorage: storage }), [], 'and removed on success')
    const record = await server.app.tus.get(idOf(url))
    t.same({ ...record?.metadata }, { filename: 'päckchen "1".bin', filetype: 'application/x-test', owner: 'ann' }, 'Content-Type, Content-Disposition (filename*) and the other keys reached the server')

    t.same(seen.map((r) => r.method), ['POST', 'PATCH', 'PATCH', 'PATCH', 'PATCH', 'PATCH'], 'one creation, then appends; no OPTIONS, no HEAD')
    t.ok(seen.every((r) => r.headers['upload-draft-interop-version'] === String(version) && r.headers['tus-resumable'] === undefined), 'every request names the interop version, none says Tus-Resumable')
    const post = seen[0]!.headers
    t.match(post, { 'upload-complete': '?0', 'upload-length': String(content.length), 'content-type': 'application/x-test', 'content-length': String(CHUNK) }, 'the creation carries the first chunk')
    t.equal(post['content-disposition'], 'inline; filename="p_ckchen \\"1\\".bin"; filename*=UTF-8\'\'p%C3%A4ckchen%20%221%22.bin', 'RFC 6266 Content-Disposition')
    const patches = seen.slice(1).map((r) => r.headers)
    t.ok(patches.every((h) => h['content-type'] === 'application/partial-upload'), 'appends in application/partial-upload')
    t.same(patches.map((h) => Number(h['upload-offset'])), [1, 2, 3, 4, 5].map((i) => i * CHUNK), 'at the offsets computed from the bytes sent')
    t.same(patches.map((h) => h['upload-complete']), ['?0', '?0', '?0', '?0', '?1'], 'Upload-Complete: ?1 on the last one')
    t.equal(answered.filter((a) => a.status >= 300).length, 0, 'no error on the way')
    const lastProgress = progress[progress.length - 1]!
    t.match(lastProgress, { bytesUploaded: content.length, bytesTotal: content.length, percent: 100, chunks: 6 }, 'progress ends at 100 %')

    // Offset retrieval and cancellation.
    const info = await client.getUploadInfo(url)
    t.match(info, { url, offset: content.length, length: content.length, complete: true, concat: null })
    await client.delete(url)
    t.equal(seen[seen.length - 1]!.headers['upload-draft-interop-version'], String(version), 'DELETE names the interop version')
    const gone = await failureOf(client.getUploadInfo(url))
    t.ok(gone instanceof TusHttpError && gone.statusCode === 404, 'gone after DELETE')
  })

  t.test(`interop ${version}: a creation cut off after the 104 is resumed from the URL storage`, async (t) => {
    const { server, seen } = await recordingServer(t)
    const proxy = await cutAfter104(t, server.origin, 100_000)
    const { path, content } = sourceFile(t, 4 * CHUNK + 99, 20 + version)
    const storage = new WatchedStorage()
    const endpoint = `${proxy.origin}/files`
    const first = new TusClient({ endpoint, protocol: 'ietf-draft', draftVersion: version, chunkSize: 4 * CHUNK, maxRetries: 0 })
    const error = await failureOf(first.upload(path, { urlStorage: storage }))
    await first.close()
    t.ok(error instanceof TusNetworkError, `the creation failed on the wire (${error.message})`)
    t.equal(proxy.cuts(), 1)
    const [entry] = await first.findPreviousUploads(path, { urlStorage: storage })
    const url = entry?.uploadUrl
    t.ok(url?.startsWith(`${endpoint}/`), 'the 104 gave the URL, stored before the cut')
    let kept = 0
    await waitFor(async () => { kept = (await server.app.tus.get(idOf(url!)))?.offset ?? 0; return kept > 0 }, 3000, 'the bytes before the cut')
    t.ok(kept > 0 && kept < 100_000, `the server kept what arrived (${kept} bytes)`)

    const second = new TusClient({ endpoint, protocol: 'ietf-draft', draftVersion: version, chunkSize: CHUNK, retryDelay: 10 })
    t.teardown(() => second.close())
    let resumedFrom: number | undefined
    const resumed = await second.upload(path, { urlStorage: storage, onProgress: (p) => { resumedFrom ??= p.bytesUploaded } })
    t.equal(resumed, url, 'the same upload')
    t.ok(storedAt(server.uploadDir, url!)?.equals(content), 'byte-exact')
    t.equal(seen.filter((r) => r.method === 'POST').length, 1, 'no second creation')
    t.ok(seen.some((r) => r.method === 'HEAD'), 'the offset was asked with HEAD')
    t.ok(resumedFrom !== undefined && resumedFrom > 0, `went on from the server's offset (${resumedFrom})`)
  })

  t.test(`interop ${version}: a 409 is recovered from its Upload-Offset`, async (t) => {
    const { server, seen, answered } = await recordingServer(t)
    const content = bytes(4 * CHUNK + 7, 30 + version)
    const client = new TusClient({ endpoint: server.endpoint, protocol: 'ietf-draft', draftVersion: version, chunkSize: CHUNK, retryDelay: 1 })
    t.teardown(() => client.close())
    const uploader = await client.createUploader(content)
    t.teardown(() => uploader.close())
    const created = await uploader.uploadChunk()
    t.match(created, { offset: CHUNK, done: false })
    // Someone else appends the next chunk: the client's offset is stale now.
    const other = await raw(created.url, 'PATCH', {
      'Upload-Draft-Interop-Version': String(version), 'Content-Type': 'application/partial-upload', 'Upload-Offset': String(CHUNK), 'Upload-Complete': '?0'
    }, content.subarray(CHUNK, 2 * CHUNK))
    t.equal(other.status, 204)
    let step = await uploader.uploadChunk()
    while (!step.done) step = await uploader.uploadChunk()
    t.ok(storedAt(server.uploadDir, step.url)?.equals(content), 'byte-exact')
    t.equal(answered.filter((a) => a.status === 409).length, 1, 'one 409')
    t.equal(seen.filter((r) => r.method === 'HEAD').length, 0, 'its Upload-Offset was enough: no HEAD')
    t.equal(uploader.progress.retries, 1, 'counted as a retry')
  })
}

t.test('a creation cut off after the 104, retried in the same call: resumed with HEAD, not created again', async (t) => {
  const { server, seen } = await recordingServer(t)
  const proxy = await cutAfter104(t, server.origin, 100_000)
  const content = bytes(4 * CHUNK, 40)
  const client = new TusClient({ endpoint: `${proxy.origin}/files`, protocol: 'ietf-draft', chunkSize: 4 * CHUNK, retryDelay: 10 })
  t.teardown(() => client.close())
  let retries = 0
  const url = await client.upload(content, { onProgress: (p) => { retries = p.retries } })
  t.equal(proxy.cuts(), 1)
  t.ok(retries >= 1, 'a retry')
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'byte-exact')
  t.equal(seen.filter((r) => r.method === 'POST').length, 1, 'one creation')
  t.ok(seen.some((r) => r.method === 'HEAD'), 'then HEAD and appends')
})

t.test('a server that sends no 104 (draftInterimResponses: false): the URL comes from the creation\'s answer', async (t) => {
  let postAnswered = 0
  const { server, seen } = await recordingServer(t, { draftInterimResponses: false }, (app) => {
    app.addHook('onResponse', async (request) => { if (request.method === 'POST') postAnswered = Date.now() })
  })
  const content = bytes(3 * CHUNK + 1, 39)
  const storage = new WatchedStorage()
  const client = new TusClient({ endpoint: server.endpoint, protocol: 'ietf-draft', chunkSize: CHUNK })
  t.teardown(() => client.close())
  const url = await client.upload(content, { urlStorage: storage })
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'byte-exact')
  t.same(storage.saves.map((s) => s.url), [url], 'stored once')
  t.ok(storage.saves[0]!.at >= postAnswered, 'after the creation was answered')
  t.same(seen.map((r) => r.method), ['POST', 'PATCH', 'PATCH', 'PATCH'])
})

t.test('409 with only a problem document, then with neither: expected-offset, then HEAD', async (t) => {
  let refusals = 0
  const { server, seen } = await recordingServer(t, {}, (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.method !== 'PATCH') return
      refusals++
      // The first append: a 409 whose problem says to go back 1000 bytes (the plugin then answers the real offset).
      if (refusals === 1) {
        return reply.code(409).type('application/problem+json').send(JSON.stringify({
          type: 'https://iana.org/assignments/http-problem-types#mismatching-upload-offset', 'expected-offset': Number(request.headers['upload-offset']) - 1000
        }))
      }
      // The fourth: a bare 409, nothing said.
      if (refusals === 4) return reply.code(409).send('conflict')
    })
  })
  const content = bytes(4 * CHUNK + 3, 41)
  const client = new TusClient({ endpoint: server.endpoint, protocol: 'ietf-draft', chunkSize: CHUNK, retryDelay: 1 })
  t.teardown(() => client.close())
  const url = await client.upload(content)
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'byte-exact')
  const offsets = seen.filter((r) => r.method === 'PATCH').map((r) => Number(r.headers['upload-offset']))
  t.same(offsets.slice(0, 3), [CHUNK, CHUNK - 1000, CHUNK], 'expected-offset taken, then the plugin\'s Upload-Offset')
  t.equal(seen.filter((r) => r.method === 'HEAD').length, 1, 'the bare 409 needed a HEAD')
})

t.test('deferred length: a stream of unknown size', async (t) => {
  const { server, seen } = await recordingServer(t)
  const content = bytes(3 * CHUNK + 500, 42)
  const client = new TusClient({ endpoint: server.endpoint, protocol: 'ietf-draft', chunkSize: CHUNK })
  t.teardown(() => client.close())
  const progress: TusProgress[] = []
  const url = await client.upload(streamOf(content, 7000), { onProgress: (p) => progress.push(p) })
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'byte-exact')
  t.equal((await server.app.tus.get(idOf(url)))?.length, content.length, 'the server learnt the length')
  const post = seen.find((r) => r.method === 'POST')!.headers
  t.equal(post['upload-length'], undefined, 'no Upload-Length at creation')
  t.equal(post['upload-complete'], '?0')
  t.same(seen.filter((r) => r.method === 'PATCH').map((r) => r.headers['upload-complete']), ['?0', '?0', '?1'], 'the append that ends the stream says ?1')
  t.equal(progress[0]!.bytesTotal, null, 'the total was unknown at first')
  t.equal(progress[progress.length - 1]!.bytesTotal, content.length, 'and known at the end')

  // A stream that fits in the first chunk: one creation with ?1 and its length.
  const small = bytes(1000, 43)
  const before = seen.length
  const smallUrl = await client.upload(streamOf(small, 100))
  t.ok(storedAt(server.uploadDir, smallUrl)?.equals(small))
  t.same(seen.slice(before).map((r) => [r.method, r.headers['upload-complete'], r.headers['upload-length']]), [['POST', '?1', '1000']], 'a single creation with Upload-Complete: ?1')
})

t.test('sources sent whole in the creation: a Buffer, and an empty one', async (t) => {
  const { server, seen } = await recordingServer(t)
  const client = new TusClient({ endpoint: server.endpoint, protocol: 'ietf-draft' })
  t.teardown(() => client.close())
  const data = bytes(5000, 44)
  const url = await client.upload(data, { metadata: { filename: 'a.txt' } })
  t.ok(storedAt(server.uploadDir, url)?.equals(data))
  const empty = await client.upload(Buffer.alloc(0))
  t.equal(storedAt(server.uploadDir, empty)?.length, 0, 'an empty upload')
  t.same(seen.map((r) => [r.method, r.headers['upload-complete'], r.headers['upload-length'], r.headers['content-type']]),
    [['POST', '?1', '5000', 'application/octet-stream'], ['POST', '?1', '0', 'application/octet-stream']], 'one POST each, ?1, application/octet-stream without filetype')
  t.equal(seen[0]!.headers['content-disposition'], 'inline; filename="a.txt"')
})

t.test('all bytes on the server but not complete: the empty last append with Upload-Complete: ?1', async (t) => {
  let completions = 0
  const { server, seen } = await recordingServer(t, { onComplete: async () => { completions++ } })
  const content = bytes(10_000, 45)
  // Sent by hand: everything, without a length and with ?0.
  const created = await raw(`${server.endpoint}/`, 'POST', { 'Upload-Draft-Interop-Version': '9', 'Upload-Complete': '?0' }, content)
  t.equal(created.status, 201)
  const url = String(created.headers.location)
  const client = new TusClient({ endpoint: server.endpoint, protocol: 'ietf-draft' })
  t.teardown(() => client.close())
  t.equal(await client.resume(content, url), url)
  t.equal(completions, 1, 'completed')
  t.same(seen.slice(1).map((r) => [r.method, r.headers['content-length'], r.headers['upload-offset'], r.headers['upload-complete']]),
    [['HEAD', undefined, undefined, undefined], ['PATCH', '0', '10000', '?1']], 'HEAD, then an empty PATCH with ?1')
  t.ok(storedAt(server.uploadDir, url)?.equals(content))
})

t.test('413: the max-append-size of the 104 is respected from then on', async (t) => {
  const { server, seen, answered } = await recordingServer(t, { maxChunkSize: 50_000 })
  const content = bytes(180_000, 46)
  const client = new TusClient({ endpoint: server.endpoint, protocol: 'ietf-draft', chunkSize: 128 * 1024 })
  t.teardown(() => client.close())
  let retries = -1
  const url = await client.upload(content, { onProgress: (p) => { retries = p.retries } })
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'byte-exact')
  t.equal(answered[0]!.status, 413, 'the creation was refused for its size')
  const patches = seen.filter((r) => r.method === 'PATCH').map((r) => Number(r.headers['content-length']))
  t.same(patches, [50_000, 50_000, 50_000, 30_000], 'then appends of max-append-size')
  t.equal(seen.filter((r) => r.method === 'POST').length, 1, 'the upload the 104 named was used, not created again')
  t.equal(retries, 0, 'not a retry: the request was fitted to the limit')
})

t.test('413 for max-size: refused at creation, not retried', async (t) => {
  const { server, seen } = await recordingServer(t, { maxSize: 1000 })
  const client = new TusClient({ endpoint: server.endpoint, protocol: 'ietf-draft', retryDelay: 1 })
  t.teardown(() => client.close())
  const error = await failureOf(client.upload(bytes(5000, 47)))
  t.ok(error instanceof TusHttpError && error.statusCode === 413, '413')
  t.equal(seen.length, 1, 'once')
})

t.test('429 is retried after its Retry-After; an answer with Upload-Complete: ?1 is final', async (t) => {
  let patches = 0
  const times: number[] = []
  const { server } = await recordingServer(t, {}, (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.method !== 'PATCH') return
      times.push(Date.now())
      if (++patches === 1) return reply.code(429).header('Retry-After', '1').send('slow down')
    })
  })
  const content = bytes(2 * CHUNK, 48)
  const client = new TusClient({ endpoint: server.endpoint, protocol: 'ietf-draft', chunkSize: CHUNK, retryDelay: 1 })
  t.teardown(() => client.close())
  const url = await client.upload(content)
  t.ok(storedAt(server.uploadDir, url)?.equals(content))
  t.ok(times[1]! - times[0]! >= 950, `waited for Retry-After (${times[1]! - times[0]!} ms)`)

  const tooMany = new TusHttpError({ statusCode: 429, body: '', method: 'PATCH', url: 'http://x/files/a' })
  t.equal(isRetryableError(tooMany), false, 'tus: 429 is not retried (unchanged)')
  t.equal(isRetryableError(tooMany, 'ietf-draft'), true, 'draft: 429 is retried')
  const targetSaid = new TusHttpError({ statusCode: 500, body: '', method: 'PATCH', url: 'http://x/files/a', headers: { 'upload-complete': '?1' } })
  t.equal(isRetryableError(targetSaid, 'ietf-draft'), false, 'draft: a 5xx with Upload-Complete: ?1 is the target resource\'s answer, not retried')
  t.equal(isRetryableError(targetSaid), true, 'tus: a 5xx is')
})

t.test('104s on a hand-written server: other versions ignored, progress reports, a Location mismatch cancels', async (t) => {
  let mode: 'ok' | 'mismatch' = 'ok'
  const fake = await fakeServer(t, (req, res, body) => {
    const ended = body.length > 0 || req.readableEnded
    if (req.method === 'POST' && !ended) {
      // Another version's 104 must be ignored, URL and all.
      interim(res, { 'Upload-Draft-Interop-Version': '7', Location: '/files/not-ours' })
      interim(res, { 'Upload-Draft-Interop-Version': '9', Location: '/files/up', 'Upload-Limit': 'max-size=100000' })
      return
    }
    if (req.method === 'POST') {
      res.writeHead(201, { Location: mode === 'ok' ? '/files/up' : '/files/elsewhere', 'Upload-Complete': '?0' }).end()
    } else if (req.method === 'PATCH' && !ended) {
      interim(res, { 'Upload-Draft-Interop-Version': '9', 'Upload-Offset': String(Number(req.headers['upload-offset']) + 123) })
    } else if (req.method === 'PATCH') {
      res.writeHead(204, { 'Upload-Complete': req.headers['upload-complete'] as string }).end()
    } else {
      res.writeHead(204).end()
    }
  })
  const client = new TusClient({ endpoint: `${fake.origin}/files`, protocol: 'ietf-draft', chunkSize: 1000, maxRetries: 0 })
  t.teardown(() => client.close())
  const storage = new WatchedStorage()
  const reported: number[] = []
  const url = await client.upload(bytes(2500, 49), { urlStorage: storage, onProgress: (p) => reported.push(p.bytesUploaded) })
  t.equal(url, `${fake.origin}/files/up`, 'the URL of our version\'s 104')
  t.same(storage.saves.map((s) => s.url), [url], 'stored from the 104')
  t.same(fake.requests.map((r) => `${r.method} ${r.url}`), ['POST /files', 'PATCH /files/up', 'PATCH /files/up'], 'appends to it')
  t.ok(reported.includes(1123) && reported.includes(2123), `104 progress reports surfaced as progress (${reported.join(', ')})`)
  t.equal(reported[reported.length - 1], 2500)
  t.same(fake.requests.map((r) => r.headers['upload-offset']), [undefined, '1000', '2000'], 'offsets computed without Upload-Offset in the answers')

  fake.requests.length = 0
  mode = 'mismatch'
  const mismatch = await failureOf(client.upload(bytes(2500, 50), { urlStorage: storage }))
  t.ok(mismatch instanceof TusProtocolError, 'a TusProtocolError')
  t.match(mismatch.message, /the 104 gave the upload URL .*\/files\/up, the final answer .*\/files\/elsewhere; the upload was cancelled/)
  t.same(fake.requests.map((r) => `${r.method} ${r.url}`), ['POST /files', 'DELETE /files/up'], 'the 104\'s upload is cancelled')
  t.same(await client.findPreviousUploads(bytes(2500, 50), { urlStorage: storage }), [], 'and forgotten')

  // Upload-Limit max-size in the 104 below the source: stopped and cancelled.
  fake.requests.length = 0
  mode = 'ok'
  const tooBig = await failureOf(client.upload(bytes(150_000, 51)))
  t.equal(tooBig.code, 'ERR_TUS_LIMIT', 'ERR_TUS_LIMIT')
  t.match(tooBig.message, /150000 bytes, above the server's max-size of 100000/)
  t.same(fake.requests.map((r) => `${r.method} ${r.url}`), ['POST /files', 'DELETE /files/up'], 'cancelled')
})

t.test('an abort after the 104 leaves the upload resumable; the storage keeps draft and tus uploads apart', async (t) => {
  const { server, seen } = await recordingServer(t, {}, (app) => {
    app.addHook('onRequest', async (request) => { if (request.method === 'PATCH') await sleep(20) })
  })
  const { path, content } = sourceFile(t, 6 * CHUNK, 52)
  const storage = new InMemoryURLStorage()
  const draft = new TusClient({ endpoint: server.endpoint, protocol: 'ietf-draft', chunkSize: CHUNK })
  const tus = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  t.teardown(() => draft.close())
  t.teardown(() => tus.close())
  const controller = new AbortController()
  const aborted = await failureOf(draft.upload(path, { urlStorage: storage, signal: controller.signal, onProgress: (p) => { if (p.bytesUploaded >= 2 * CHUNK) controller.abort() } }))
  t.ok(aborted instanceof TusAbortError)
  t.equal((await tus.findPreviousUploads(path, { urlStorage: storage })).length, 0, 'a tus client does not see the draft upload')
  t.equal((await draft.findPreviousUploads(path, { urlStorage: storage })).length, 1, 'the draft client does')
  const url = await draft.upload(path, { urlStorage: storage, keepUrl: true })
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'resumed byte-exact')
  t.equal(seen.filter((r) => r.method === 'POST').length, 1)
  const before = seen.length
  t.equal(await draft.upload(path, { urlStorage: storage }), url, 'kept with keepUrl: found complete')
  t.same(seen.slice(before).map((r) => r.method), ['HEAD'], 'one HEAD, nothing sent')
})

t.test('options of tus alone are refused with protocol: \'ietf-draft\'', async (t) => {
  const endpoint = 'http://127.0.0.1:1/files'
  const client = new TusClient({ endpoint, protocol: 'ietf-draft' })
  t.equal(client.options.draftVersion, 9, 'draftVersion defaults to 9')
  t.equal(new TusClient({ endpoint }).options.protocol, 'tus', 'protocol defaults to tus')
  const parallel = await failureOf(client.upload(Buffer.from('abc'), { parallel: 2 }))
  t.ok(parallel instanceof TypeError && /parallel needs tus concatenation/.test(parallel.message), `parallel: ${parallel.message}`)
  const partial = await failureOf(client.createPartialUpload(Buffer.from('abc')))
  t.ok(partial instanceof TusUnsupportedError && /createPartialUpload uses tus concatenation/.test(partial.message), `createPartialUpload: ${partial.message}`)
  const final = await failureOf(client.createFinalUpload([`${endpoint}/a`]))
  t.ok(final instanceof TusUnsupportedError, `createFinalUpload: ${final.message}`)
  t.throws(() => new TusClient({ endpoint, protocol: 'ietf-draft', checksum: 'sha1' }), /checksum .* does not exist in the IETF draft/)
  t.throws(() => new TusClient({ endpoint, draftVersion: 8 }), /draftVersion needs protocol: 'ietf-draft'/)
  t.throws(() => new TusClient({ endpoint, protocol: 'ietf-draft', draftVersion: 5 as DraftInteropVersion }), /draftVersion must be one of 6, 7, 8, 9/)
  t.throws(() => new TusClient({ endpoint, protocol: 'http' as 'tus' }), /protocol must be 'tus' or 'ietf-draft'/)
  const badType = await failureOf(client.upload(Buffer.from('abc'), { metadata: { filetype: 'not a type' } }))
  t.ok(badType instanceof TypeError && /filetype must be a media type/.test(badType.message), 'a filetype that cannot be a Content-Type')
  await client.close()
})

t.test('CLI: --protocol ietf-draft --draft-version 8 uploads a file; bad combinations are usage errors', async (t) => {
  const { server, seen } = await recordingServer(t)
  const { path, content } = sourceFile(t, 300_000, 53, 'draft.bin')
  const result = await run([BIN, 'upload', '--protocol', 'ietf-draft', '--draft-version', '8', '--chunk-size', '128k', '--metadata', 'filetype=video/mp4', path, server.endpoint], { timeout: 30_000 })
  t.equal(result.code, 0, result.stderr)
  const url = result.stdout.trimEnd().split('\n').pop()!
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'byte-exact')
  t.same({ ...(await server.app.tus.get(idOf(url)))?.metadata }, { filename: 'draft.bin', filetype: 'video/mp4' })
  t.same(seen.map((r) => [r.method, r.headers['upload-draft-interop-version']]), [['POST', '8'], ['PATCH', '8'], ['PATCH', '8']])

  for (const [args, message] of [
    [['--draft-version', '8'], /--draft-version needs --protocol ietf-draft/],
    [['--protocol', 'ietf-draft', '--parallel', '2'], /--parallel is tus only/],
    [['--protocol', 'ietf-draft', '--checksum', 'sha1'], /--checksum is tus only/],
    [['--protocol', 'ietf-draft', '--draft-version', '5'], /--draft-version must be an integer from 6 to 9/],
    [['--protocol', 'rufh'], /--protocol must be tus or ietf-draft/]
  ] as const) {
    const refused = await run([BIN, 'upload', ...args, path, server.endpoint], { timeout: 30_000 })
    t.equal(refused.code, 2, args.join(' '))
    t.match(refused.stderr, message)
  }
  const help = await run([BIN, 'upload', '--help'])
  t.match(help.stdout, '--protocol')
  t.match(help.stdout, '--draft-version')
})
