// Interoperability with an independent tus server: @tus/server with @tus/file-store
// on node:http. Plain, streamed (deferred length) and resumed uploads arrive
// byte-exact; what it does not offer (checksum, concatenation) is refused clearly.
import t from 'tap'
import { createServer } from 'node:http'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { Server } from '@tus/server'
import { FileStore } from '@tus/file-store'
import { InMemoryURLStorage, TusAbortError, TusClient, TusUnsupportedError } from '../lib/client/index.js'
import { tempDir } from './helpers/server.js'
import { bytes } from './helpers/http.js'
import { failureOf, sourceFile, streamOf } from './helpers/client-env.js'

const CHUNK = 64 * 1024

async function startTusServer (t: Parameters<typeof tempDir>[0]): Promise<{ endpoint: string; dir: string; patches: () => number; patchBytes: () => number }> {
  const dir = tempDir(t, 'tus-server-')
  const tus = new Server({ path: '/files', datastore: new FileStore({ directory: dir }) })
  let patches = 0
  let patchBytes = 0
  const http = createServer((req, res) => {
    if (req.method === 'PATCH') {
      patches++
      patchBytes += Number(req.headers['content-length'] ?? 0)
    }
    void tus.handle(req, res)
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { http.closeAllConnections(); http.close(() => resolve()) }))
  return { endpoint: `http://127.0.0.1:${(http.address() as AddressInfo).port}/files`, dir, patches: () => patches, patchBytes: () => patchBytes }
}

/** @tus/file-store names a file after the last segment of the upload URL. */
const storedBy = (dir: string, url: string): Buffer => readFileSync(join(dir, url.split('/').pop()!))

t.test('@tus/server: path, Buffer and stream uploads are byte-exact, metadata arrives', async (t) => {
  const server = await startTusServer(t)
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  t.teardown(() => client.close())
  const info = await client.getServerInfo()
  t.ok(info.extensions.includes('creation-with-upload'), `extensions: ${info.extensions.join(',')}`)

  const { path, content } = sourceFile(t, 5 * CHUNK + 17, 71)
  for (const [kind, source] of [['path', path], ['Buffer', content], ['stream', streamOf(content, 3000)]] as const) {
    const url = await client.upload(source, { metadata: { filename: `${kind}.bin`, filetype: 'application/octet-stream' } })
    t.ok(storedBy(server.dir, url).equals(content), `${kind}: stored bytes equal the source`)
    const upload = await client.getUploadInfo(url)
    t.equal(upload.offset, content.length, `${kind}: offset`)
    t.equal(upload.length, content.length, `${kind}: length (declared at the end for the stream)`)
    t.equal(upload.metadata.filename, `${kind}.bin`, `${kind}: metadata`)
  }
  const empty = await client.upload(Buffer.alloc(0))
  t.equal(storedBy(server.dir, empty).length, 0, 'an empty upload')
})

t.test('@tus/server: an aborted upload resumes with only the rest sent; delete', async (t) => {
  const server = await startTusServer(t)
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  t.teardown(() => client.close())
  const content = bytes(10 * CHUNK + 3, 72)
  const urlStorage = new InMemoryURLStorage()
  const controller = new AbortController()
  const aborted = await failureOf(client.upload(content, {
    urlStorage,
    signal: controller.signal,
    onProgress: (p) => { if (p.bytesUploaded >= 4 * CHUNK) controller.abort() }
  }))
  t.ok(aborted instanceof TusAbortError)
  const [entry] = await client.findPreviousUploads(content, { urlStorage })
  const before = (await client.getUploadInfo(entry!.uploadUrl!)).offset!
  const bytesBefore = server.patchBytes()
  const url = await client.upload(content, { urlStorage })
  t.equal(url, entry!.uploadUrl)
  t.equal(server.patchBytes() - bytesBefore, content.length - before, 'only the remainder was sent')
  t.ok(storedBy(server.dir, url).equals(content), 'stored bytes equal the source')

  await client.delete(url)
  t.notOk(readdirSync(server.dir).includes(url.split('/').pop()!), 'deleted')
})

t.test('@tus/server: checksum and parallel uploads are refused up front with a clear error', async (t) => {
  const server = await startTusServer(t)
  const checksummed = new TusClient({ endpoint: server.endpoint, checksum: 'sha1' })
  t.teardown(() => checksummed.close())
  const noChecksum = await failureOf(checksummed.upload(bytes(100, 1)))
  t.ok(noChecksum instanceof TusUnsupportedError, 'checksum: TusUnsupportedError')
  t.match(noChecksum.message, /does not verify it/)

  const client = new TusClient({ endpoint: server.endpoint })
  t.teardown(() => client.close())
  const noConcat = await failureOf(client.upload(bytes(100, 1), { parallel: 2 }))
  t.ok(noConcat instanceof TusUnsupportedError, 'parallel: TusUnsupportedError')
  t.match(noConcat.message, /concatenation/)
  t.equal(server.patches(), 0, 'nothing was sent')
})
