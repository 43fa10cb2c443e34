// Connections cut mid-chunk by a TCP proxy between client and server: the client
// re-reads the offset and finishes, and the stored bytes are exact.
import t from 'tap'
import { TusClient, TusNetworkError, type TusProgress } from '../lib/client/index.js'
import { startServer } from './helpers/server.js'
import { bytes } from './helpers/http.js'
import { faultyProxy } from './helpers/client-proxy.js'
import { failureOf, sourceFile, storedAt, streamOf } from './helpers/client-env.js'

const CHUNK = 64 * 1024
const SIZE = 12 * CHUNK + 4321

/** Deterministic cut points: the first 6 connections are cut somewhere in their first ~3 chunks. */
function cutPlan (seed: number): (connection: number) => number | null {
  let x = seed
  return (connection) => {
    if (connection >= 6) return null
    x = (x * 1103515245 + 12345) % 2 ** 31
    return 2000 + (x % (3 * CHUNK))
  }
}

for (const checksum of [undefined, 'sha256'] as const) {
  for (const kind of ['path', 'stream'] as const) {
    t.test(`${kind}, checksum ${checksum ?? 'none'}: connections cut mid-chunk, upload still byte-exact`, async (t) => {
      const headOffsets: number[] = []
      const server = await startServer(t, {}, (app) => {
        app.addHook('onSend', async (request, reply) => {
          if (request.method === 'HEAD') headOffsets.push(Number(reply.getHeader('upload-offset')))
        })
      })
      const proxy = await faultyProxy(t, server.origin, cutPlan(kind === 'path' ? 7 : 13))
      const client = new TusClient({ endpoint: `${proxy.origin}/files`, chunkSize: CHUNK, checksum, retryDelay: 5, maxRetries: 10 })
      t.teardown(() => client.close())
      const { path, content } = sourceFile(t, SIZE, 61)
      let last: TusProgress | undefined
      const url = await client.upload(kind === 'path' ? path : streamOf(content, 5000), { onProgress: (p) => { last = p } })
      t.ok(url.startsWith(proxy.origin), 'the upload URL goes through the proxy')
      t.ok(proxy.cuts() >= 3, `connections were cut (${proxy.cuts()})`)
      t.ok((last?.retries ?? 0) >= 3, `the client retried (${last?.retries})`)
      t.ok(storedAt(server.uploadDir, url)?.equals(content), 'stored bytes equal the source')
      const midChunk = headOffsets.filter((offset) => offset % CHUNK !== 0)
      if (checksum === undefined) t.ok(midChunk.length > 0, `the server kept part of a cut chunk and the client went on from there (offsets ${headOffsets.join(', ')})`)
      else t.same(midChunk, [], `with a checksum, a cut chunk is dropped whole (offsets ${headOffsets.join(', ')})`)
      const record = await server.app.tus.get(url.split('/').pop()!)
      t.equal(record?.offset, SIZE)
      t.equal(record?.length, SIZE)
    })
  }
}

t.test('a network that keeps failing: TusNetworkError once the retries are spent', async (t) => {
  const server = await startServer(t)
  const proxy = await faultyProxy(t, server.origin, () => 10) // every connection dies in its first request
  const client = new TusClient({ endpoint: `${proxy.origin}/files`, retryDelay: 1, maxRetries: 2 })
  t.teardown(() => client.close())
  const error = await failureOf(client.upload(bytes(1000, 1)))
  t.ok(error instanceof TusNetworkError, 'TusNetworkError')
  t.equal(proxy.connections(), 3, '1 attempt + 2 retries')

  const refused = new TusClient({ endpoint: 'http://127.0.0.1:1/files', retryDelay: 1, maxRetries: 1 })
  const err = await failureOf(refused.upload(bytes(10, 1)))
  t.ok(err instanceof TusNetworkError && /ECONNREFUSED/.test(err.message), 'connection refused: TusNetworkError naming the cause')
})
