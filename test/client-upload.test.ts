// TusClient.upload: a file path, a Buffer and a stream (unknown length) arrive
// byte-exact, with each checksum algorithm and without, across chunk boundaries.
import t from 'tap'
import { TusClient, TusUnsupportedError } from '../lib/client/index.js'
import { startServer } from './helpers/server.js'
import { bytes } from './helpers/http.js'
import { idOf } from './helpers/tus.js'
import { logRequests, sourceFile, storedAt, streamOf } from './helpers/client-env.js'

const CHUNK = 64 * 1024
const SIZE = 5 * CHUNK + 1234 // not a multiple of the chunk size

for (const checksum of [undefined, 'sha1', 'sha256', 'sha512', 'md5'] as const) {
  t.test(`path, Buffer and stream with checksum ${checksum ?? 'none'}`, async (t) => {
    let checksums = 0
    const server = await startServer(t, {}, (app) => {
      app.addHook('onRequest', async (request) => {
        const header = request.headers['upload-checksum']
        if (typeof header === 'string' && header.startsWith(`${checksum} `)) checksums++
      })
    })
    const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK, checksum })
    t.teardown(() => client.close())
    const { path, content } = sourceFile(t, SIZE, 3)

    const fromPath = await client.upload(path, { metadata: { filename: 'a.bin', note: 'ünïcödé' } })
    t.ok(storedAt(server.uploadDir, fromPath)?.equals(content), 'file path: stored bytes equal the source')
    const record = await server.app.tus.get(idOf(fromPath))
    t.same(record?.metadata, { filename: 'a.bin', note: 'ünïcödé' }, 'metadata arrives decoded as sent')
    t.equal(record?.completedAt instanceof Date, true, 'upload is complete')

    const fromBuffer = await client.upload(content)
    t.ok(storedAt(server.uploadDir, fromBuffer)?.equals(content), 'Buffer: stored bytes equal the source')

    const fromStream = await client.upload(streamOf(content, 7000))
    t.ok(storedAt(server.uploadDir, fromStream)?.equals(content), 'stream: stored bytes equal the source')
    t.equal((await server.app.tus.get(idOf(fromStream)))?.length, SIZE, 'stream: the length was declared at the end')

    const chunksPerUpload = Math.ceil(SIZE / CHUNK)
    t.equal(checksums, checksum === undefined ? 0 : 3 * chunksPerUpload, 'every chunk carried Upload-Checksum')
  })
}

t.test('a server record\'s metadata, valueless keys (null) included, can be sent as it is', async (t) => {
  const server = await startServer(t)
  const client = new TusClient({ endpoint: server.endpoint })
  t.teardown(() => client.close())
  const url = await client.upload(bytes(10), { metadata: { filename: 'a.bin', flag: null, empty: '' } })
  t.same((await server.app.tus.get(idOf(url)))?.metadata, { filename: 'a.bin', flag: null, empty: null }, 'valueless keys arrive as keys without a value')
  await t.rejects(client.upload(bytes(1), { metadata: { n: 1 as unknown as string } }), /metadata value of n must be a string or null/)
})

t.test('edge sizes: empty, one byte, exactly one chunk, an exact multiple of the chunk size', async (t) => {
  const server = await startServer(t)
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK, checksum: 'sha256' })
  t.teardown(() => client.close())
  for (const size of [0, 1, CHUNK, 3 * CHUNK]) {
    const content = bytes(size, size + 1)
    for (const [kind, source] of [['Buffer', content], ['stream', streamOf(content, 5000)], ['path', sourceFile(t, size, size + 1).path]] as const) {
      const url = await client.upload(source)
      const record = await server.app.tus.get(idOf(url))
      t.equal(record?.length, size, `${kind} of ${size} bytes: length`)
      t.ok(record?.completedAt !== null, `${kind} of ${size} bytes: complete`)
      t.ok(storedAt(server.uploadDir, url)?.equals(content), `${kind} of ${size} bytes: stored bytes equal the source`)
    }
  }
})

t.test('creation-with-upload is used when offered, and not when the server does not list it', async (t) => {
  let offerWithUpload = true
  let log!: ReturnType<typeof logRequests>
  const server = await startServer(t, {}, (app) => {
    log = logRequests(app)
    // A real server that advertises less: the client must then POST without a body.
    app.addHook('onSend', async (request, reply) => {
      if (request.method === 'OPTIONS' && !offerWithUpload) {
        const list = String(reply.getHeader('tus-extension') ?? '').split(',').filter((e) => e !== 'creation-with-upload')
        reply.header('Tus-Extension', list.join(','))
      }
    })
  })
  const content = bytes(3 * CHUNK + 5, 9)

  const withUpload = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  t.teardown(() => withUpload.close())
  const first = await withUpload.upload(content)
  t.equal(log.postBytes, CHUNK, 'the first chunk went in the POST')
  t.equal(log.patchBytes, content.length - CHUNK, 'the rest went in PATCHes')
  t.ok(storedAt(server.uploadDir, first)?.equals(content), 'stored bytes equal the source')

  offerWithUpload = false
  log.postBytes = 0
  log.patchBytes = 0
  const without = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  t.teardown(() => without.close())
  const second = await without.upload(content)
  t.equal(log.postBytes, 0, 'the POST carried no body')
  t.equal(log.patchBytes, content.length, 'every byte went in PATCHes')
  t.ok(storedAt(server.uploadDir, second)?.equals(content), 'stored bytes equal the source')

  const streamed = await without.upload(streamOf(content))
  t.ok(storedAt(server.uploadDir, streamed)?.equals(content), 'a stream without creation-with-upload: stored bytes equal the source')
})

t.test('a checksum the server does not verify is refused before anything is sent', async (t) => {
  let log!: ReturnType<typeof logRequests>
  const server = await startServer(t, { checksumAlgorithms: ['sha1'] }, (app) => { log = logRequests(app) })
  const client = new TusClient({ endpoint: server.endpoint, checksum: 'sha512' })
  t.teardown(() => client.close())
  const error = await client.upload(Buffer.from('hello')).catch((err: unknown) => err)
  t.ok(error instanceof TusUnsupportedError, 'TusUnsupportedError')
  t.match((error as Error).message, /sha512.*Tus-Checksum-Algorithm: sha1/, 'the message names what was asked and what is offered')
  t.same(log.requests.map((r) => r.split(' ')[0]), ['OPTIONS'], 'only OPTIONS was sent')

  const none = await startServer(t, { checksumAlgorithms: [] })
  const client2 = new TusClient({ endpoint: none.endpoint, checksum: 'sha256' })
  t.teardown(() => client2.close())
  await t.rejects(client2.upload(Buffer.from('hello')), TusUnsupportedError, 'a server without the checksum extension')
})

t.test('bad options fail at construction with the option named', async (t) => {
  t.throws(() => new TusClient({ endpoint: 'ftp://x' }), /endpoint/)
  t.throws(() => new TusClient({ endpoint: 'http://x/files', chunkSize: 0 }), /chunkSize/)
  t.throws(() => new TusClient({ endpoint: 'http://x/files', checksum: 'crc32' as never }), /checksum/)
  t.throws(() => new TusClient({ endpoint: 'http://x/files', chunksize: 5 } as never), /unknown option "chunksize"/)
  const client = new TusClient({ endpoint: 'http://127.0.0.1:1/files' })
  await t.rejects(client.upload(Buffer.from('x'), { metadata: { 'bad key': 'v' } }), /metadata key/)
  await t.rejects(client.upload(42 as never), /must be a file path, a Buffer or a readable stream/)
})
