/**
 * The Azure Blob Storage store against Azurite: every tus extension, checked by
 * reading the container itself. A finished upload is one committed block blob
 * at `<prefix><id>` (every block but the last exactly the block size); while it
 * is unfinished, its full blocks are uncommitted blocks staged on that blob (not
 * readable) and the bytes after them a committed tail blob under
 * `<prefix>.tus/<id>/`; nothing else is left behind. Block size 5 MiB, so an
 * upload of 12 MiB is two full blocks and a tail. The scenarios the S3 store
 * shares are in helpers/object-scenarios.ts; those only Azure has are here.
 */
import t from 'tap'
import { startServer } from './helpers/server.js'
import { OCTET, TUS, bytes, create, encodeMetadata, patch, send, sha256 } from './helpers/http.js'
import { head, idOf, sleep } from './helpers/tus.js'
import { azuriteOrSkip, azureOptions, blobService, containerContents, readBlob, testContainer, uncommittedBlocks } from './helpers/azure.js'
import {
  checksumAcrossBoundary, chunkedRefused, tailFromMemory, clientGoesAway, lostFinishRecorded, lostFinishTailsLeft, partsBecomeOneObject, smallEmptyDeferred, terminationAndExpiry
} from './helpers/object-scenarios.js'
import { AZURE_STORAGE } from './helpers/object-storages.js'

const connectionString = await azuriteOrSkip(t)
const MiB = 1 << 20
const BLOCK = 5 * MiB

/** Sizes of a committed blob's blocks, in order. */
async function committedBlocks (container: string, name: string): Promise<number[]> {
  const list = await blobService().getContainerClient(container).getBlockBlobClient(name).getBlockList('committed')
  return (list.committedBlocks ?? []).map((b) => b.size)
}

/** Every block but the last exactly BLOCK, and they add up to `size`. */
const blockSizes = (size: number): number[] =>
  size === 0 ? [] : [...Array.from({ length: Math.ceil(size / BLOCK) - 1 }, () => BLOCK), size - (Math.ceil(size / BLOCK) - 1) * BLOCK]

if (connectionString !== undefined) {
  partsBecomeOneObject(t, AZURE_STORAGE)

  t.test('while unfinished: full blocks uncommitted on <prefix><id>, each of the block size, the rest in one tail blob at its offset; nothing readable', async (t) => {
    const container = await testContainer(t)
    // No connectionString: the plugin takes AZURE_STORAGE_CONNECTION_STRING (set for this process).
    const server = await startServer(t, { azure: { container, prefix: 'tus/', blockSize: BLOCK } })
    const data = bytes(12 * MiB + 12_345, 11)
    const url = await create(server.endpoint, { 'Upload-Length': String(data.length), 'Upload-Metadata': encodeMetadata({ filetype: 'image/jpeg' }) })
    const id = idOf(url)
    const name = `tus/${id}`
    const tails = `tus/.tus/${id}/`
    // 3 MiB + 1 (a tail only), 7 MiB + 1 (a block and a tail), 10 MiB (two blocks, no tail), then the rest.
    for (const to of [3 * MiB + 1, 7 * MiB + 1, 10 * MiB]) {
      const from = Number((await head(url)).headers['upload-offset'])
      t.equal((await patch(url, from, data.subarray(from, to))).status, 204, `PATCH ${from}-${to}`)
      const full = Math.floor(to / BLOCK)
      t.equal(await readBlob(container, name), null, `at ${to}: nothing readable at ${name}`)
      const contents = await containerContents(container)
      t.notOk(contents.blobs.includes(name), `at ${to}: ${name} is not a committed blob`)
      t.same(contents.uncommitted, full === 0 ? [] : [name], `at ${to}: ${full === 0 ? 'no blob of uncommitted blocks yet' : `${name} has only uncommitted blocks`}`)
      t.same((await uncommittedBlocks(container, name)).map((b) => b.size), Array.from({ length: full }, () => BLOCK), `at ${to}: ${full} uncommitted block(s) of ${BLOCK} bytes`)
      const tailNames = contents.blobs.filter((b) => b.startsWith(tails))
      const ends = tailNames.map((b) => Number(/^(\d+)-[0-9a-f]+$/.exec(b.slice(tails.length))?.[1] ?? -1))
      t.notOk(ends.some((end) => end < 0 || end > to), `at ${to}: every tail is named <end>-<random>, none past the offset (${tailNames.join(', ')})`)
      t.same(contents.blobs.filter((b) => !b.startsWith(tails)), [], `at ${to}: no other committed blob`)
      const current = tailNames.filter((_, i) => ends[i] === to)
      if (to % BLOCK === 0) {
        t.same(current, [], `at ${to}, a block boundary: no tail there`)
      } else {
        t.equal(current.length, 1, `at ${to}: one tail at the offset`)
        t.ok((await readBlob(container, current[0]!))?.equals(data.subarray(full * BLOCK, to)), `at ${to}: the tail holds exactly the ${to - full * BLOCK} bytes after the last full block`)
      }
    }
    t.equal((await patch(url, 10 * MiB, data.subarray(10 * MiB))).status, 204, 'the last PATCH')
    t.ok((await readBlob(container, name))?.equals(data), 'finished: the blob is byte-exact')
    t.same(await committedBlocks(container, name), blockSizes(data.length), 'its committed blocks: every one but the last of the block size')
    t.same(await containerContents(container), { blobs: [name], uncommitted: [] }, 'nothing else: no tail, no uncommitted block')
    const props = await blobService().getContainerClient(container).getBlobClient(name).getProperties()
    t.equal(props.contentType, 'image/jpeg', 'Content-Type from filetype')
    t.equal(props.contentLength, data.length)
  })

  t.test('a body cut mid-block keeps the blocks staged before the cut and nothing of the cut one; the upload resumes there', async (t) => {
    const container = await testContainer(t)
    // Offsets committed at every block, so the test sees (HEAD) when the first one is stored and recorded.
    const server = await startServer(t, { azure: azureOptions(container), checkpointBytes: BLOCK })
    const data = bytes(12 * MiB, 12)
    const url = await create(server.endpoint, { 'Upload-Length': String(data.length) })
    const id = idOf(url)
    let seen: string | undefined
    await send('PATCH', url, {
      headers: { ...TUS, ...OCTET, 'Upload-Offset': '0', 'Content-Length': String(data.length) },
      stream: (req) => {
        req.on('error', () => {})
        req.write(data.subarray(0, 6 * MiB + 100))
        // Cut once the first block is stored and its offset committed, with 1 MiB of the second sent.
        void (async () => {
          const started = Date.now()
          while (Date.now() - started < 20_000) {
            seen = (await head(url)).headers['upload-offset'] as string | undefined
            if (seen === String(BLOCK)) break
            await sleep(50)
          }
          req.destroy()
        })()
      }
    }).catch(() => undefined)
    t.equal(seen, String(BLOCK), 'the first block was stored (offset committed) before the cut')
    // An empty PATCH at the end of the stored block: refused (423) while the cut request still holds the upload.
    let probe = await patch(url, BLOCK, Buffer.alloc(0))
    for (const started = Date.now(); probe.status === 423 && Date.now() - started < 10_000;) {
      await sleep(50)
      probe = await patch(url, BLOCK, Buffer.alloc(0))
    }
    t.equal(probe.status, 204, `once the cut request is done, the upload is at the end of the stored block: nothing of the cut block counts (${probe.status} ${probe.text})`)
    t.equal(probe.headers['upload-offset'], String(BLOCK))
    t.same((await uncommittedBlocks(container, id)).map((b) => b.size), [BLOCK], 'one block of the block size, no partial one')
    t.same((await containerContents(container)).blobs.filter((b) => b.startsWith(`.tus/${id}/`)), [], 'no tail: the cut bytes were not stored')
    const res = await patch(url, BLOCK, data.subarray(BLOCK))
    t.equal(res.status, 204, 'resumed from there')
    t.ok((await readBlob(container, id))?.equals(data), 'byte-exact')
    t.same(await committedBlocks(container, id), blockSizes(data.length), 'every block but the last of the block size')
    t.same(await containerContents(container), { blobs: [id], uncommitted: [] }, 'nothing else left')
  })

  t.test('any block size (Azure has no minimum): 100,003-byte blocks, PATCHes spanning several blocks and ending anywhere', async (t) => {
    const container = await testContainer(t)
    const block = 100_003
    const server = await startServer(t, { azure: azureOptions(container, { blockSize: block }) })
    const data = bytes(2 * MiB + 17, 13)
    const url = await create(server.endpoint, { 'Upload-Length': String(data.length) })
    const id = idOf(url)
    // Ends: inside the first block, exactly on a boundary, one byte past one, several blocks on, the end.
    for (const to of [50_000, 2 * block, 2 * block + 1, 7 * block + 99_999, 15 * block, data.length]) {
      const from = Number((await head(url)).headers['upload-offset'])
      const res = await patch(url, from, data.subarray(from, to))
      t.equal(res.status, 204, `PATCH ${from}-${to}`)
      if (to === data.length) break
      t.same((await uncommittedBlocks(container, id)).map((b) => b.size), Array.from({ length: Math.floor(to / block) }, () => block), `at ${to}: ${Math.floor(to / block)} block(s) of ${block} bytes staged`)
    }
    t.ok((await readBlob(container, id))?.equals(data), 'byte-exact')
    const sizes = await committedBlocks(container, id)
    t.equal(sizes.length, Math.ceil(data.length / block), `${sizes.length} committed blocks`)
    t.ok(sizes.slice(0, -1).every((size) => size === block), 'every one but the last of the block size')
    t.equal(sizes.reduce((a, b) => a + b, 0), data.length)
    t.same(await containerContents(container), { blobs: [id], uncommitted: [] }, 'nothing else left')
  })

  t.test('credentials as the account URL and a credential object (instead of a connection string)', async (t) => {
    const { StorageSharedKeyCredential } = await import('@azure/storage-blob')
    const container = await testContainer(t)
    const fields = new Map(connectionString.split(';').filter(Boolean).map((part) => {
      const at = part.indexOf('=')
      return [part.slice(0, at), part.slice(at + 1)] as [string, string]
    }))
    const url = fields.get('BlobEndpoint') ?? `https://${fields.get('AccountName')!}.blob.${fields.get('EndpointSuffix') ?? 'core.windows.net'}`
    const credential = new StorageSharedKeyCredential(fields.get('AccountName')!, fields.get('AccountKey')!)
    const server = await startServer(t, { azure: { container, url, credential, blockSize: BLOCK } })
    const data = bytes(BLOCK + 4321, 21)
    const upload = await create(server.endpoint, { 'Upload-Length': String(data.length) })
    t.equal((await patch(upload, 0, data)).status, 204, 'a PATCH across a block boundary is stored')
    t.ok((await readBlob(container, idOf(upload)))?.equals(data), 'byte-exact in the container')
  })

  smallEmptyDeferred(t, AZURE_STORAGE)
  checksumAcrossBoundary(t, AZURE_STORAGE)
  tailFromMemory(t, AZURE_STORAGE)
  terminationAndExpiry(t, AZURE_STORAGE)

  t.test('concatenation is byte-exact, with small and large parts (always a streamed copy on Azure)', async (t) => {
    const container = await testContainer(t)
    const server = await startServer(t, { azure: azureOptions(container) })
    const finals: string[] = []
    const partials: string[] = []
    for (const [label, sizes] of [
      ['large parts', [5 * MiB, 6 * MiB + 3, 1000]],
      ['small parts', [1000, 6 * MiB, 17]],
      ['an empty part, parts off the block boundaries', [0, 3 * MiB + 1, 4 * MiB - 1, 2 * MiB + 5]]
    ] as const) {
      const parts = sizes.map((size, i) => bytes(size, 20 + i))
      const urls: string[] = []
      for (const part of parts) {
        const res = await send('POST', `${server.endpoint}/`, { headers: { ...TUS, ...OCTET, 'Upload-Length': String(part.length), 'Upload-Concat': 'partial' }, body: part })
        t.equal(res.status, 201)
        urls.push(String(res.headers.location))
        partials.push(idOf(String(res.headers.location)))
      }
      const final = await send('POST', `${server.endpoint}/`, { headers: { ...TUS, 'Upload-Concat': `final;${urls.map((u) => new URL(u).pathname).join(' ')}` } })
      t.equal(final.status, 201, `${label}: final created`)
      const finalId = idOf(String(final.headers.location))
      finals.push(finalId)
      const expected = Buffer.concat(parts)
      const blob = await readBlob(container, finalId)
      t.equal(blob === null ? null : sha256(blob), sha256(expected), `${label}: the final blob is the parts in order`)
      t.same(await committedBlocks(container, finalId), blockSizes(expected.length), `${label}: its blocks are of the block size but the last`)
      const got = await send('GET', String(final.headers.location))
      t.ok(got.status === 200 && got.body.equals(expected), `${label}: GET of the final upload streams it back`)
      t.equal((await head(String(final.headers.location))).headers['upload-length'], String(expected.length))
    }
    for (const [i, id] of partials.entries()) t.ok(await readBlob(container, id) !== null, `partial ${i + 1} is still there as a blob`)
    t.same(await containerContents(container), { blobs: [...finals, ...partials].sort(), uncommitted: [] }, 'one blob per upload, no tail, no uncommitted block')
  })

  lostFinishRecorded(t, AZURE_STORAGE)
  lostFinishTailsLeft(t, AZURE_STORAGE)
  clientGoesAway(t, AZURE_STORAGE)
  chunkedRefused(t, AZURE_STORAGE)

  t.test('options: mistakes fail at register with the field named; a container that does not exist fails at register', async (t) => {
    const { default: Fastify } = await import('fastify')
    const { default: tus } = await import('../lib/index.js')
    for (const [azure, pattern] of [
      [{}, /azure\.container/], [{ container: 'B_ad' }, /azure\.container/], [{ container: 'ab' }, /azure\.container/],
      [{ container: 'a'.repeat(64) }, /azure\.container/], [{ container: '-ok-container' }, /azure\.container/],
      [{ container: 'ok-container', prefix: 'noslash' }, /azure\.prefix/], [{ container: 'ok-container', prefix: '/abs/' }, /azure\.prefix/],
      [{ container: 'ok-container', blockSize: 0 }, /azure\.blockSize/], [{ container: 'ok-container', blockSize: 1.5 }, /azure\.blockSize/],
      [{ container: 'ok-container', blockSize: 4001 * MiB }, /azure\.blockSize/], [{ container: 'ok-container', blockSize: '5' }, /azure\.blockSize/],
      [{ container: 'ok-container', connectionString: '' }, /azure\.connectionString/],
      [{ container: 'ok-container', nope: 1 }, /azure\.nope/]
    ] as const) {
      await t.rejects(async () => Fastify().register(tus, { azure: azure as never, db: ':memory:' }).ready(), pattern, JSON.stringify(azure))
    }
    await t.rejects(async () => Fastify().register(tus, { azure: { container: 'ok-container' }, s3: { bucket: 'ok-bucket' }, db: ':memory:' }).ready(),
      /s3 and azure/, 's3 and azure together')
    await t.rejects(async () => Fastify().register(tus, { azure: { container: 'ok-container', blockSize: 5 * MiB }, maxSize: 300 * 1024 ** 3, db: ':memory:' }).ready(),
      /raise azure\.blockSize/, 'maxSize beyond 50,000 blocks')
    const { resolveOptions } = await import('../lib/options.js')
    t.doesNotThrow(() => resolveOptions({ azure: { container: 'ok-container', blockSize: 4000 * MiB }, maxSize: 300 * 1024 ** 3 }), 'blocks of 4000 MiB are allowed, and hold more')
    t.doesNotThrow(() => resolveOptions({ azure: { container: 'a'.repeat(63), prefix: 'p/q/', blockSize: 1 } }), 'a 63-character container, a nested prefix, 1-byte blocks')
    const missing = Fastify()
    await t.rejects(async () => missing.register(tus, { azure: azureOptions('no-such-container-here'), db: ':memory:' }).ready(), /ContainerNotFound|does not exist|404/, 'a missing container fails at register, with the service\'s reason')
    await missing.close().catch(() => {})
  })
}
