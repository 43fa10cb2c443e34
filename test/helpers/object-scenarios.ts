/**
 * The object-storage scenarios the S3 and Azure Blob Storage tests share: one
 * core stores the bytes on both (a finished upload is one object at
 * `<prefix><id>`; while unfinished, full parts that are not readable yet, S3's
 * multipart upload or Azure's uncommitted blocks, and a tail object under
 * `<prefix>.tus/<id>/`), so the same uploads must leave the same things behind.
 * Each scenario takes a small adapter (ObjectStorage) that says how to make a
 * bucket or container, what to give the plugin and the CLI, and how to read
 * what is stored, straight from the service, not through the server.
 *
 * Everything here assumes parts (blocks) of 5 MiB: the sizes are chosen around
 * that boundary.
 */
import { connect } from 'node:net'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import type { DataStore, TusPluginOptions } from '../../types/index.js'
import type { ObjectStates } from '../../lib/store/meta/object-states.js'
import { startServer, tempDir, testDatabase } from './server.js'
import { OCTET, TUS, bytes, create, digest, encodeMetadata, patch, send, sha256 } from './http.js'
import { head, idOf, sleep } from './tus.js'
import { offsetReached, patchThenKill, rng } from './crash.js'
import { spawnServer } from './spawn.js'
import { cluster, statusSummary, upload } from './cluster.js'

const MiB = 1 << 20

/** One kind of object storage, as the scenarios see it. */
export interface ObjectStorage {
  /** For titles: 'S3', 'Azure'. */
  name: string
  /** What holds the objects: 'bucket', 'container'. */
  holder: string
  /** What an upload is stored as: 'object', 'blob'. */
  object: string
  /** What an unfinished upload's full parts are: 'part', 'block'. */
  part: string
  /** Where unfinished parts are, one per unfinished upload: 'multipart upload', 'uncommitted-only blob' (a blob with only uncommitted blocks). */
  pending: string
  /** Size of every part but the last, as the scenarios configure it: 5 MiB. */
  partSize: number
  /** A new bucket or container, emptied and removed at teardown (call it before starting the servers that use it). */
  fresh: (t: Test) => Promise<string>
  /** The plugin options that put the bytes there (the store's option only). */
  options: (holder: string, more?: { prefix?: string }) => TusPluginOptions
  /** The same as flags of `fastify-tus serve` (anything else the server needs is in the environment). */
  serveFlags: (holder: string, prefix: string) => string[]
  /** An object's bytes, or null when there is none (an unfinished upload's key has none). */
  read: (holder: string, key: string) => Promise<Buffer | null>
  contentType: (holder: string, key: string) => Promise<string | undefined>
  /** Every object key, sorted, and the keys with unfinished parts (`pending`), sorted. */
  contents: (holder: string) => Promise<{ objects: string[]; pending: string[] }>
  /** Store an object straight into the bucket or container (not through the server). */
  put: (holder: string, key: string, body: Buffer) => Promise<void>
  /** The store itself, on a server's database (prefix ''), for playing the part of a process that died. */
  open: (holder: string, states: ObjectStates) => Promise<Pick<DataStore, 'write' | 'finish' | 'truncate'>>
}

/* ------------------------------ the store ------------------------------ */

export function partsBecomeOneObject (t: Test, store: ObjectStorage): void {
  const { object, part, holder } = store
  t.test(`an upload in PATCHes across ${part} boundaries becomes one ${object} at <prefix><id>; nothing else stays`, async (t) => {
    const bucket = await store.fresh(t)
    const server = await startServer(t, store.options(bucket, { prefix: 'tus/' }))
    const data = bytes(12 * MiB + 12_345, 3)
    const url = await create(server.endpoint, { 'Upload-Length': String(data.length), 'Upload-Metadata': encodeMetadata({ filetype: 'image/png', filename: 'a.png' }) })
    const id = idOf(url)
    // Uneven PATCHes: 3 MiB + 1, then 4 MiB, then the rest: tails grow into parts.
    for (const [from, to] of [[0, 3 * MiB + 1], [3 * MiB + 1, 7 * MiB + 1], [7 * MiB + 1, data.length]] as const) {
      const res = await patch(url, from, data.subarray(from, to))
      t.equal(res.status, 204, `PATCH ${from}-${to}: 204`)
      t.equal(res.headers['upload-offset'], String(to))
    }
    const stored = await store.read(bucket, `tus/${id}`)
    t.equal(stored?.length, data.length, `the ${object} has every byte`)
    t.equal(sha256(stored!), sha256(data), `byte-exact, read from the ${holder}`)
    t.equal(await store.contentType(bucket, `tus/${id}`), 'image/png', 'Content-Type from filetype (a safe one)')
    const contents = await store.contents(bucket)
    t.same(contents.objects, [`tus/${id}`], `no tail ${object} left`)
    t.same(contents.pending, [], `no ${store.pending} left`)
    const res = await send('GET', url, { headers: { Range: 'bytes=5242870-5242889' } })
    t.equal(res.status, 206, `a range across the first ${part} boundary`)
    t.ok(res.body.equals(data.subarray(5_242_870, 5_242_890)), `range bytes streamed from the ${holder}`)
    t.equal((await head(url)).headers['upload-offset'], String(data.length))
  })
}

export function smallEmptyDeferred (t: Test, store: ObjectStorage): void {
  const { object, part } = store
  t.test('small, empty, creation-with-upload and deferred-length uploads; unsafe types stored as octet-stream', async (t) => {
    const bucket = await store.fresh(t)
    const server = await startServer(t, store.options(bucket))
    const empty = await create(server.endpoint, { 'Upload-Length': '0' })
    t.same(await store.read(bucket, idOf(empty)), Buffer.alloc(0), `an empty upload is an empty ${object}`)

    const small = bytes(1000, 4)
    const withBody = await send('POST', `${server.endpoint}/`, {
      headers: { ...TUS, ...OCTET, 'Upload-Length': '1000', 'Upload-Metadata': encodeMetadata({ filetype: 'text/html' }) }, body: small
    })
    t.equal(withBody.status, 201)
    const smallId = idOf(String(withBody.headers.location))
    t.ok((await store.read(bucket, smallId))?.equals(small), 'creation-with-upload stored byte-exact')
    t.equal(await store.contentType(bucket, smallId), 'application/octet-stream', 'text/html is not served as such')

    // Deferred length, declared on a last, empty PATCH: the tail joins the full part.
    const data = bytes(6 * MiB + 7, 5)
    const deferred = await create(server.endpoint, { 'Upload-Defer-Length': '1' })
    t.equal((await patch(deferred, 0, data)).status, 204)
    const last = await patch(deferred, data.length, Buffer.alloc(0), { 'Upload-Length': String(data.length) })
    t.equal(last.status, 204, 'the empty PATCH declaring the length completes it')
    t.ok((await store.read(bucket, idOf(deferred)))?.equals(data), `every byte, the incomplete ${part} included`)
    t.same((await store.contents(bucket)).pending, [], `no ${store.pending} left`)
  })
}

export function tailFromMemory (t: Test, store: ObjectStorage): void {
  const { holder, part } = store
  t.test(`PATCHes that are not a multiple of the ${part} size: the next one takes the tail its process stored from memory; another instance reads it back from the ${holder}`, async (t) => {
    const bucket = await store.fresh(t)
    const database = testDatabase(t, tempDir(t))
    const first = await startServer(t, { ...store.options(bucket), ...database })
    const data = bytes(13 * MiB + 5, 8)
    const url = await create(first.endpoint, { 'Upload-Length': String(data.length) })
    const id = idOf(url)
    const tails = async (): Promise<string[]> => (await store.contents(bucket)).objects.filter((key) => key.startsWith(`.tus/${id}/`))

    t.equal((await patch(url, 0, data.subarray(0, 3 * MiB))).status, 204, '3 MiB: less than a part, stored as a tail')
    const [tail] = await tails()
    t.ok((await store.read(bucket, tail!))?.equals(data.subarray(0, 3 * MiB)), `the tail is in the ${holder}, byte-exact`)
    // A tail is never rewritten (every write stores a new one under a key of its own), so the server
    // may trust its copy. Replaced here behind its back, same length: a server that read it back would store these bytes.
    await store.put(bucket, tail!, Buffer.alloc(3 * MiB, 0xee))
    t.equal((await patch(url, 3 * MiB, data.subarray(3 * MiB, 7 * MiB))).status, 204, `4 MiB more: a full ${part} (the tail first), and a new tail`)

    // Another instance on the same table and ${holder} has no copy of the new tail: it reads it back.
    const second = await startServer(t, { ...store.options(bucket), ...database })
    const rest = await patch(`${second.endpoint}/${id}`, 7 * MiB, data.subarray(7 * MiB))
    t.equal(rest.status, 204, 'the rest, through the other instance')
    t.ok((await store.read(bucket, id))?.equals(data), `the ${store.object} is byte-exact: the first tail came from memory, the second from the ${holder}`)
    t.same(await tails(), [], 'no tail left')
  })
}

export function checksumAcrossBoundary (t: Test, store: ObjectStorage): void {
  t.test(`a checksum mismatch across a ${store.part} boundary keeps nothing of that body; the upload goes on`, async (t) => {
    const bucket = await store.fresh(t)
    const server = await startServer(t, store.options(bucket))
    const data = bytes(11 * MiB, 6)
    const url = await create(server.endpoint, { 'Upload-Length': String(data.length) })
    t.equal((await patch(url, 0, data.subarray(0, 3 * MiB))).status, 204)
    const wrong = await patch(url, 3 * MiB, data.subarray(3 * MiB, 9 * MiB), { 'Upload-Checksum': `sha1 ${digest('sha1', Buffer.from('not it'))}` })
    t.equal(wrong.status, 460, 'checksum mismatch')
    t.equal((await head(url)).headers['upload-offset'], String(3 * MiB), 'the offset did not move')
    const right = await patch(url, 3 * MiB, data.subarray(3 * MiB), { 'Upload-Checksum': `sha256 ${digest('sha256', data.subarray(3 * MiB))}` })
    t.equal(right.status, 204)
    t.ok((await store.read(bucket, idOf(url)))?.equals(data), 'byte-exact after the rejected body')
    const contents = await store.contents(bucket)
    t.same(contents.objects, [idOf(url)], 'the rejected body left nothing behind')
    t.same(contents.pending, [], `no ${store.pending} left`)
  })
}

export function terminationAndExpiry (t: Test, store: ObjectStorage): void {
  t.test(`termination and expiry leave no ${store.object} and no ${store.pending} behind`, async (t) => {
    const bucket = await store.fresh(t)
    const server = await startServer(t, { ...store.options(bucket), expiration: 1500, cleanupInterval: 0 })
    const data = bytes(7 * MiB, 7)
    const a = await create(server.endpoint, { 'Upload-Length': String(data.length + 10) })
    const b = await create(server.endpoint, { 'Upload-Length': String(data.length + 10) })
    for (const url of [a, b]) t.equal((await patch(url, 0, data)).status, 204)
    const during = await store.contents(bucket)
    t.same(during.pending, [idOf(a), idOf(b)].sort(), `each upload under way has a ${store.pending}`)
    t.equal(during.objects.length, 2, 'and a tail, nothing else')
    t.equal((await send('DELETE', a, { headers: TUS })).status, 204, 'a terminated')
    await sleep(1600)
    t.equal(await server.app.tus.cleanupExpired(), 1, 'b expired and removed')
    t.same(await store.contents(bucket), { objects: [], pending: [] }, `the ${store.holder} is empty: no ${store.object}, no tail, no ${store.pending}`)
  })
}

/**
 * An upload of 6 MiB + 5 bytes (a full part and a tail) whose every byte a
 * process that then died wrote through a store of its own on the server's
 * database, while the upload's row stayed at offset 0.
 */
async function writtenByDeadProcess (t: Test, store: ObjectStorage, seed: number) {
  const bucket = await store.fresh(t)
  const server = await startServer(t, store.options(bucket))
  const data = bytes(6 * MiB + 5, seed)
  const url = await create(server.endpoint, { 'Upload-Length': String(data.length) })
  const id = idOf(url)
  const { openDatabase } = await import('../../lib/store/meta/dialects.js')
  const { ObjectStates } = await import('../../lib/store/meta/object-states.js')
  const { db } = await openDatabase(server.dbPath)
  t.teardown(() => db.destroy())
  const dead = await store.open(bucket, new ObjectStates(db))
  const written = await dead.write(id, 0, (async function * () { yield data })(), { length: data.length })
  t.equal(written.error, undefined, 'the dead process wrote every byte')
  return { bucket, url, id, data, dead }
}

export function lostFinishRecorded (t: Test, store: ObjectStorage): void {
  t.test('a finish whose row update was lost (the process died in between): the resent bytes complete it, and a restart copes', async (t) => {
    const { bucket, url, id, data, dead } = await writtenByDeadProcess(t, store, 9)
    // What the dead process had done: every byte written and the upload finished, the row still at 0.
    await dead.finish(id, data.length)
    t.equal((await head(url)).headers['upload-offset'], '0', 'the row never heard of it')
    await dead.truncate(id, 0) // what start-up recovery does with bytes past the offset: nothing to undo here
    const res = await patch(url, 0, data)
    t.equal(res.status, 204, 'the client\'s resend is accepted')
    t.equal(res.headers['upload-offset'], String(data.length))
    t.ok((await store.read(bucket, id))?.equals(data), `the ${store.object} is byte-exact`)
    t.same((await store.contents(bucket)).pending, [], `no ${store.pending} left`)
  })
}

/**
 * The same, cut shorter: the dead process recorded its finish but died before
 * deleting the tails (the last step of a finish). Nothing names them any more,
 * so only the finish can find them: when it is replayed (the resent bytes),
 * they must go too.
 */
export function lostFinishTailsLeft (t: Test, store: ObjectStorage): void {
  t.test('a finish cut short after it was recorded, before its tails went: the resent bytes complete the upload and no tail stays', async (t) => {
    const { bucket, url, id, data, dead } = await writtenByDeadProcess(t, store, 14)
    // Its tails as they were when the finish began (a full part and a tail of 1 MiB + 5 bytes).
    const tails = (await store.contents(bucket)).objects.filter((key) => key.startsWith(`.tus/${id}/`))
    t.equal(tails.length, 1, 'the dead write left a tail')
    const kept = await Promise.all(tails.map(async (key) => ({ key, bytes: (await store.read(bucket, key))! })))
    await dead.finish(id, data.length)
    // ...and the process died before the finish deleted them: they are back.
    for (const tail of kept) await store.put(bucket, tail.key, tail.bytes)
    t.equal((await head(url)).headers['upload-offset'], '0', 'the row never heard of it')
    await dead.truncate(id, 0) // start-up recovery
    const res = await patch(url, 0, data)
    t.equal(res.status, 204, 'the client\'s resend is accepted')
    t.equal(res.headers['upload-offset'], String(data.length))
    t.ok((await store.read(bucket, id))?.equals(data), `the ${store.object} is byte-exact`)
    t.same(await store.contents(bucket), { objects: [id], pending: [] }, `the tails the dead finish left went with the replayed finish: only the ${store.object} stays`)
  })
}

export function clientGoesAway (t: Test, store: ObjectStorage): void {
  t.test(`a client that goes away mid-${store.part}: the request to ${store.name} is aborted, the server keeps serving, the upload resumes`, async (t) => {
    const bucket = await store.fresh(t)
    const server = await startServer(t, store.options(bucket))
    const data = bytes(7 * MiB, 10)
    const url = await create(server.endpoint, { 'Upload-Length': String(data.length) })
    await send('PATCH', url, {
      headers: { ...TUS, ...OCTET, 'Upload-Offset': '0', 'Content-Length': String(data.length) },
      stream: (req) => {
        req.on('error', () => {})
        req.write(data.subarray(0, 1 << 20))
        setTimeout(() => req.destroy(), 300)
      }
    }).catch(() => undefined)
    const started = Date.now()
    let offset: string | undefined
    while (Date.now() - started < 5000) {
      const res = await head(url)
      if (res.status === 200) { offset = String(res.headers['upload-offset']); break }
      await sleep(50)
    }
    t.equal(offset, '0', `the server answers at once (${Date.now() - started} ms): nothing of the cut ${store.part} is kept`)
    const res = await patch(url, 0, data)
    t.equal(res.status, 204, 'the upload is not held by the cut request')
    t.ok((await store.read(bucket, idOf(url)))?.equals(data), 'and resumes byte-exact')
  })
}

export function chunkedRefused (t: Test, store: ObjectStorage): void {
  t.test('a chunked body (no Content-Length) is refused with 411 before anything is stored', async (t) => {
    const bucket = await store.fresh(t)
    const server = await startServer(t, store.options(bucket))
    const url = await create(server.endpoint, { 'Upload-Length': '100' })
    const { port } = new URL(server.endpoint)
    const raw = await new Promise<string>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.end(`PATCH ${new URL(url).pathname} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`)
      })
      let text = ''
      socket.on('data', (d: Buffer) => { text += d.toString() })
      socket.on('close', () => resolve(text))
    })
    t.match(raw, /^HTTP\/1\.1 411 /, 'answered 411')
    t.match(raw, /Content-Length/, 'the reason says what to send')
    t.equal((await head(url)).headers['upload-offset'], '0')
    t.same(await store.contents(bucket), { objects: [], pending: [] }, `nothing was stored in the ${store.holder}`)
  })
}

/* ---------------------------- SIGKILL trials ---------------------------- */

/**
 * SIGKILL during PATCH streams (test/fixtures/server.js, SQLite), at a seeded
 * moment in each trial (before the first part, or after the first or second part
 * was committed): after a restart the offset never runs ahead of the
 * bytes sent, and the upload resumes from it to an object that is byte-exact
 * (so every byte before the offset was stored). Offsets committed at every part.
 */
export function sigkillTrials (t: Test, store: ObjectStorage, trials: number, seed = 20261129): void {
  const size = (12 << 20) + 777
  const piece = 256 << 10
  t.test(`${trials} SIGKILL trials during PATCH on ${store.name}`, async (t) => {
    const bucket = await store.fresh(t)
    const dir = tempDir(t)
    const env = { TUS_OPTIONS: JSON.stringify({ ...store.options(bucket), db: join(dir, 'db.sqlite'), checkpointBytes: store.partSize }) }
    const random = rng(seed)
    const source = bytes(size, 77)
    const offsets = new Set<number>()
    const ids: string[] = []
    let server = await spawnServer(t, ['test/fixtures/server.js'], env)
    for (let trial = 1; trial <= trials; trial++) {
      const created = await send('POST', `${server.origin}/files/`, { headers: { ...TUS, 'Upload-Length': String(size) } })
      const path = new URL(created.headers.location as string).pathname
      const id = path.split('/').pop()!
      ids.push(id)
      // Every third trial kills before the first part is committed, the others at a random moment
      // after the first or the second part was (seen by HEAD): a kill timed from the PATCH's start
      // alone landed wherever the storage service's speed that day put it (one CI run: only two offsets).
      const part = (trial - 1) % 3
      const killAt = part === 0 ? 50 + Math.floor(random() * 200) : Math.floor(random() * 200)
      const after = part === 0 ? undefined : async () => { await offsetReached(server.origin + path, part * store.partSize) }
      const sent = await patchThenKill(server.origin + path, source, piece, 10, killAt, server.child, after)

      server = await spawnServer(t, ['test/fixtures/server.js'], env)
      const head = await send('HEAD', server.origin + path, { headers: TUS })
      t.equal(head.status, 200, `trial ${trial}: the upload survives`)
      const offset = Number(head.headers['upload-offset'])
      offsets.add(offset)
      t.ok(offset <= Math.min(sent, size), `trial ${trial} (kill ${part === 0 ? `at ${killAt} ms` : `${killAt} ms after part ${part} was committed`}): offset ${offset} <= ${Math.min(sent, size)} bytes sent`)
      if (offset < size) {
        const resumed = await send('PATCH', server.origin + path, { headers: { ...TUS, ...OCTET, 'Upload-Offset': String(offset) }, body: source.subarray(offset) })
        t.equal(resumed.status, 204, `trial ${trial}: resumed from ${offset}`)
      }
      const stored = await store.read(bucket, id)
      t.equal(stored === null ? null : sha256(stored), sha256(source), `trial ${trial}: the ${store.object} in the ${store.holder} is byte-exact`)
      const tails = (await store.contents(bucket)).objects.filter((key) => key.startsWith(`.tus/${id}/`))
      if (tails.length > 0) t.comment(`trial ${trial}: finished with offset ${offset} after the restart, and ${tails.length} tail(s) still there: ${tails.join(', ')}`)
    }
    t.ok(offsets.size >= 3, `kills landed at ${offsets.size} different offsets: ${[...offsets].sort((a, b) => a - b).join(', ')}`)
    // A request a killed process had sent may still complete at the service after the finish
    // cleaned up (and Swift updates its listings asynchronously): such strays are what the
    // lifecycle rule in the README is for. Every finished upload is one object.
    const left = await store.contents(bucket)
    t.equal(left.objects.filter((key) => !key.startsWith('.tus/')).length, trials, `one ${store.object} per finished upload, nothing else outside the tails' prefix`)
    const strays = left.objects.filter((key) => key.startsWith('.tus/'))
    const strayTrials = [...new Set(strays.map((key) => ids.indexOf(key.split('/')[1]!) + 1))]
    t.comment(`left by killed writes: ${strays.length} tail(s)${strays.length === 0 ? '' : ` (trial ${strayTrials.join(', ')}: ${strays.join(', ')})`}; ${store.pending}s: ${left.pending.length}`)
  })
}

/* ------------------------------- failover ------------------------------- */

/**
 * Instances that share only the database and the bucket: three `fastify-tus
 * serve` instances on one PostgreSQL schema, each with an empty upload
 * directory of its own, behind a round-robin balancer; `uploads` tus-js-client
 * uploads with the default retries; one instance SIGKILLed mid-run. Every
 * upload finishes byte-exact, read back by key, and nothing else stays.
 */
export function failover (t: Test, store: ObjectStorage, postgresUrl: string, uploads = 24): void {
  t.test(`three instances on PostgreSQL and one ${store.holder}, no shared directory, one SIGKILLed mid-run`, async (t) => {
    const bucket = await store.fresh(t)
    const { proxy, instances, uploadDir } = await cluster(t, postgresUrl, 4 << 20, store.serveFlags(bucket, 'up/'), true)
    const sources = Array.from({ length: uploads }, (_, i) => bytes((6 << 20) + i * 70_001, 3100 + i))
    const runs = sources.map(async (data) => upload(`${proxy.origin}/files/`, data, 2 << 20))
    await sleep(1500)
    const doomed = instances[2]!
    doomed.child.kill('SIGKILL')
    const killedAt = Date.now()
    const results = await Promise.all(runs)
    t.comment(`all done ${Date.now() - killedAt} ms after the kill; answers: ${statusSummary(proxy)}; longest 423 streak: ${proxy.longest423()} ms`)
    t.same(results.filter((r) => r.error !== undefined).map((r) => String(r.error)), [], 'no upload failed')
    let exact = 0
    for (const [i, r] of results.entries()) if (r.id !== undefined && (await store.read(bucket, `up/${r.id}`))?.equals(sources[i]!) === true) exact++
    t.equal(exact, uploads, `all ${uploads} uploads byte-exact in the ${store.holder} at up/<id>`)
    // A request the killed instance had in flight may still complete at the service after the
    // finish cleaned up: strays under the tails' prefix are the lifecycle rule's (README).
    const contents = await store.contents(bucket)
    t.equal(contents.objects.filter((key) => !key.startsWith('up/.tus/')).length, uploads, `one ${store.object} per finished upload, nothing else outside the tails' prefix`)
    t.comment(`left by the killed instance: ${contents.objects.length - uploads} tail(s); ${store.pending}s: ${contents.pending.length}`)
    const dirs = readdirSync(join(uploadDir, '..')).filter((name) => name.startsWith('instance-'))
    t.same(dirs.flatMap((d) => readdirSync(join(uploadDir, '..', d))), [], 'nothing was written to any instance\'s upload directory')
  })
}
