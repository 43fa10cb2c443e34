/**
 * One writer per upload across instances on one PostgreSQL database: PATCHes
 * for one upload arriving at two instances at once (one applied, the others
 * 409 or 423, never interleaved); a lock held by an instance killed with
 * SIGKILL is given up within its lease; and 500 uploads written at once across
 * two instances whose pools have 10 connections each, since a held lock holds
 * no connection.
 */
import t, { type Test } from 'tap'
import type { ClientRequest } from 'node:http'
import { join } from 'node:path'
import { startServer, tempDir, type TestServer } from './helpers/server.js'
import { spawnServer } from './helpers/spawn.js'
import { OCTET, TUS, bytes, create, digest, patch, send, type Response } from './helpers/http.js'
import { assertStored, head, idOf, sleep, stored, waitFor } from './helpers/tus.js'
import { postgresOrSkip, query, testSchema } from './helpers/postgres.js'
import type { TusPluginOptions } from '../lib/index.js'

const url = postgresOrSkip(t)

/** Two instances on one schema and one upload directory. */
async function pair (t: Test, options: TusPluginOptions = {}): Promise<{ a: TestServer; b: TestServer; schema: string; uploadDir: string }> {
  const schema = testSchema(t)
  const uploadDir = join(tempDir(t), 'uploads')
  const shared: TusPluginOptions = { db: url, schema, uploadDir, poolSize: 10, ...options }
  const a = await startServer(t, shared)
  const b = await startServer(t, shared)
  return { a, b, schema, uploadDir }
}

/** The same upload as reached through another instance. */
const via = (server: TestServer, uploadUrl: string): string => `${server.endpoint}/${idOf(uploadUrl)}`

const lockCount = async (schema: string): Promise<number> =>
  Number((await query<{ n: string }>('SELECT count(*) AS n FROM tus_locks', [], schema))[0]!.n)

/** A PATCH whose body the test writes itself; `done` settles with the reply (or the socket error). */
function openPatch (target: string, offset: number, length: number, headers: Record<string, string> = {}): { req: ClientRequest; done: Promise<Response | Error> } {
  let req!: ClientRequest
  const done = send('PATCH', target, {
    headers: { ...TUS, ...OCTET, 'Upload-Offset': String(offset), 'Content-Length': String(length), ...headers },
    stream: (r) => { req = r }
  }).catch((err: Error) => err)
  return { req, done }
}

/** Repeats a request answered 423 (a lock still held) until it is not, or until `deadline`. */
async function whileLocked (reply: Response, again: () => Promise<Response>, deadline: number): Promise<Response> {
  while (reply.status === 423 && Date.now() < deadline) {
    await sleep(50)
    reply = await again()
  }
  return reply
}

const summary = (replies: Response[]): string => {
  const counts = new Map<number, number>()
  for (const r of replies) counts.set(r.status, (counts.get(r.status) ?? 0) + 1)
  return [...counts.entries()].map(([s, n]) => `${s}×${n}`).join(', ')
}

if (url !== undefined) {
  t.test('PATCHes for one upload at two instances at once: one applied, the others 409 or 423, never interleaved', async (t) => {
    const { a, b, schema, uploadDir } = await pair(t)
    const WRITERS = 20
    const CHUNK = 64 * 1024
    const upload = await create(a.endpoint, { 'Upload-Length': String(2 * CHUNK) })
    const expected: Buffer[] = []
    for (const [round, offset] of [[0, 0], [1, CHUNK]] as const) {
      const bodies = Array.from({ length: WRITERS }, (_, i) => Buffer.alloc(CHUNK, 1 + round * WRITERS + i))
      // Even writers go to instance a, odd ones to b, all at once.
      const replies = await Promise.all(bodies.map(async (body, i) => patch(via(i % 2 === 0 ? a : b, upload), offset, body)))
      const winners = replies.map((r, i) => ({ r, i })).filter(({ r }) => r.status === 204)
      t.equal(winners.length, 1, `round ${round}: exactly one PATCH applied (${summary(replies)})`)
      t.same(replies.filter((r) => r.status !== 204 && r.status !== 409 && r.status !== 423).map((r) => `${r.status} ${r.text}`), [], `round ${round}: the others answered 409 or 423`)
      const winner = winners[0]
      if (winner === undefined) continue
      expected.push(bodies[winner.i]!)
      const chunk = stored(uploadDir, idOf(upload))?.subarray(offset, offset + CHUNK)
      t.same([...new Set(chunk ?? [])], [1 + round * WRITERS + winner.i], `round ${round}: the stored chunk is the winner's body only`)
    }
    await assertStored(t, via(b, upload), uploadDir, Buffer.concat(expected), 'after both rounds')
    t.equal(await lockCount(schema), 0, 'no lock left behind')
  })

  t.test('a PATCH streaming on one instance: the other answers 423 at once, then 409 with the new offset', async (t) => {
    const { a, b, schema, uploadDir } = await pair(t)
    const body = bytes(100_000, 7)
    const upload = await create(a.endpoint, { 'Upload-Length': String(body.length) })
    const writer = openPatch(via(a, upload), 0, body.length)
    writer.req.write(body.subarray(0, 50_000))
    await waitFor(async () => await lockCount(schema) === 1, 5000, 'the lock row of instance a')

    const started = Date.now()
    const busy = await patch(via(b, upload), 0, body)
    t.equal(busy.status, 423, `a PATCH at instance b while a writes: 423 (${busy.text})`)
    t.ok(Date.now() - started < 1500, 'answered at once, not after a wait')
    t.equal((await send('DELETE', via(b, upload), { headers: TUS })).status, 423, 'a DELETE at instance b: 423')

    writer.req.end(body.subarray(50_000))
    const done = await writer.done
    t.equal((done as Response).status, 204, 'the writer at instance a finishes')
    const late = await patch(via(b, upload), 0, body)
    t.equal(late.status, 409, 'the same PATCH at b afterwards: 409')
    t.equal(late.headers['upload-offset'], String(body.length), '409 carries the new offset')
    await assertStored(t, via(b, upload), uploadDir, body)
    t.equal(await lockCount(schema), 0, 'the lock was released')
  })

  t.test('a writer gone silent on one instance gives way to a resume at another, at its next renewal', async (t) => {
    const LEASE = 2000
    const { a, b, uploadDir } = await pair(t, { lockLease: LEASE })
    const body = bytes(100_000, 9)
    const upload = await create(a.endpoint, { 'Upload-Length': String(body.length) })
    const writer = openPatch(via(a, upload), 0, body.length)
    writer.req.write(body.subarray(0, 50_000))
    // The client goes silent without closing its connection (a dropped network).
    await waitFor(async () => Number((await head(via(b, upload))).headers['upload-offset']) === 0 && stored(uploadDir, idOf(upload))?.length === 50_000, 5000, 'the first half on disk')
    await sleep(2200)
    const asked = Date.now()
    const refused = await patch(via(b, upload), 0, body)
    t.equal(refused.status, 423, 'the resume at instance b is told 423 at first')
    await waitFor(async () => (await head(via(b, upload))).headers['upload-offset'] === '50000', LEASE, 'the silent writer to give way')
    t.ok(Date.now() - asked <= LEASE / 4 + 1000, `the silent writer gave way after ${Date.now() - asked} ms, keeping its ${50_000} bytes`)
    t.ok((await writer.done) instanceof Error, 'the silent writer\'s connection was ended')
    const resumed = await patch(via(b, upload), 50_000, body.subarray(50_000))
    t.equal(resumed.status, 204, 'the resume finishes at instance b')
    await assertStored(t, via(a, upload), uploadDir, body)
  })

  t.test('a lock held by an instance killed with SIGKILL is given up within its lease', async (t) => {
    const LEASE = 1500
    const schema = testSchema(t)
    const dir = tempDir(t)
    const uploadDir = join(dir, 'uploads')
    const shared: TusPluginOptions = { db: url, schema, uploadDir, lockLease: LEASE }
    const doomed = await spawnServer(t, ['test/fixtures/server.js'], { TUS_OPTIONS: JSON.stringify(shared) })
    const survivor = await startServer(t, shared)

    const body = bytes(64 * 1024, 3)
    const upload = await create(survivor.endpoint, { 'Upload-Length': String(body.length) })
    const writer = openPatch(`${doomed.origin}/files/${idOf(upload)}`, 0, body.length)
    writer.req.write(body.subarray(0, 1000))
    await waitFor(async () => await lockCount(schema) === 1, 5000, 'the doomed instance to hold the lock')

    doomed.child.kill('SIGKILL')
    const killedAt = Date.now()
    await new Promise<void>((resolve) => doomed.child.exitCode !== null || doomed.child.signalCode !== null ? resolve() : doomed.child.once('exit', () => resolve()))
    t.ok((await writer.done) instanceof Error, 'the writer\'s connection died with its instance')

    const first = await patch(via(survivor, upload), 0, body)
    t.equal(first.status, 423, 'right after the kill the lock is still held: 423')
    const reply = await whileLocked(first, async () => patch(via(survivor, upload), 0, body), killedAt + LEASE * 4)
    const waited = Date.now() - killedAt
    t.equal(reply.status, 204, `the survivor takes the upload over (${reply.status} ${reply.text})`)
    t.ok(waited <= LEASE + 1000, `within the lease of ${LEASE} ms (after ${waited} ms)`)
    await assertStored(t, via(survivor, upload), uploadDir, body, 'written by the survivor')
    t.equal(await lockCount(schema), 0, 'the dead instance\'s lock row is gone')
  })

  // A frozen instance (SIGSTOP here; a long pause or a swapped-out process in real
  // life) wakes with its client's next bytes already waiting. With a checksum, the
  // failed body's bytes are cut back to where it started: the step that destroyed
  // the survivor's finished upload before writers checked their lock. Without
  // one, the waiting bytes must not be written over the survivor's.
  for (const checksummed of [true, false]) {
    t.test(`an instance frozen past its lease wakes to find its upload taken over: it neither writes, truncates nor moves the offset (${checksummed ? 'with' : 'without'} Upload-Checksum)`, async (t) => {
      const LEASE = 1500
      const schema = testSchema(t)
      const uploadDir = join(tempDir(t), 'uploads')
      const shared: TusPluginOptions = { db: url, schema, uploadDir, lockLease: LEASE }
      const frozen = await spawnServer(t, ['test/fixtures/server.js'], { TUS_OPTIONS: JSON.stringify(shared) })
      const survivor = await startServer(t, shared)
      t.teardown(() => { frozen.child.kill('SIGCONT') })

      const SIZE = 256 * 1024
      const stale = bytes(SIZE, 11)
      const fresh = bytes(SIZE, 12)
      const upload = await create(survivor.endpoint, { 'Upload-Length': String(SIZE) })
      const writer = openPatch(`${frozen.origin}/files/${idOf(upload)}`, 0, SIZE, checksummed ? { 'Upload-Checksum': `sha256 ${digest('sha256', stale)}` } : {})
      writer.req.write(stale.subarray(0, 100_000))
      await waitFor(async () => await lockCount(schema) === 1 && stored(uploadDir, idOf(upload))?.length === 100_000, 5000, 'the frozen instance\'s first bytes on disk')

      frozen.child.kill('SIGSTOP')
      const frozenAt = Date.now()
      const takeOver = async (): Promise<Response> => patch(via(survivor, upload), 0, fresh)
      const reply = await whileLocked(await takeOver(), takeOver, frozenAt + LEASE * 4)
      t.equal(reply.status, 204, `the survivor takes the upload over once the lease lapsed and finishes it (${reply.status} ${reply.text})`)
      await assertStored(t, via(survivor, upload), uploadDir, fresh, 'written by the survivor')

      // The frozen instance's client carries on as if nothing happened: its next
      // bytes wait in the frozen process's socket.
      writer.req.write(stale.subarray(100_000, 200_000), () => {})
      await sleep(200)
      frozen.child.kill('SIGCONT')
      const ended = await writer.done
      t.ok(ended instanceof Error || ended.status >= 400, `the woken instance does not accept the rest (${ended instanceof Error ? ended.message : ended.status})`)
      await sleep(LEASE)
      t.equal(frozen.child.exitCode, null, 'the woken instance is still running')
      await assertStored(t, via(survivor, upload), uploadDir, fresh, 'after the frozen instance woke: the survivor\'s bytes, untouched')
      t.equal((await head(`${frozen.origin}/files/${idOf(upload)}`)).headers['upload-offset'], String(SIZE), 'the woken instance answers the survivor\'s offset')
      await waitFor(async () => await lockCount(schema) === 0, LEASE * 2, 'no lock left behind')
    })
  }

  t.test('500 uploads written at once across 2 instances with 10 connections each', async (t) => {
    const UPLOADS = 500
    const SIZE = 4096
    const { a, b, schema, uploadDir } = await pair(t, { poolSize: 10 })
    const servers = [a, b]
    const urls: string[] = []
    for (let i = 0; i < UPLOADS; i += 50) {
      urls.push(...await Promise.all(Array.from({ length: Math.min(50, UPLOADS - i) }, async (_, j) => create(servers[(i + j) % 2]!.endpoint, { 'Upload-Length': String(SIZE) }))))
    }
    const bodies = urls.map((_, i) => bytes(SIZE, 100 + i))
    // Every PATCH sends half its body and waits: all 500 locks are held at once.
    const writers = urls.map((u, i) => {
      const w = openPatch(via(servers[i % 2]!, u), 0, SIZE)
      w.req.write(bodies[i]!.subarray(0, SIZE / 2))
      return w
    })
    await waitFor(async () => await lockCount(schema) === UPLOADS, 30_000, `${UPLOADS} locks held at once`)
    t.pass(`${UPLOADS} locks held at the same time by 2 instances with 20 connections in all`)
    for (const [i, w] of writers.entries()) w.req.end(bodies[i]!.subarray(SIZE / 2))
    const replies = await Promise.all(writers.map(async (w) => w.done))
    const statuses = replies.map((r) => r instanceof Error ? r.message : r.status)
    t.same(statuses.filter((s) => s !== 204), [], `every PATCH answered 204 (${summary(replies.filter((r): r is Response => !(r instanceof Error)))})`)
    let exact = 0
    for (const [i, u] of urls.entries()) if (stored(uploadDir, idOf(u))?.equals(bodies[i]!) === true) exact++
    t.equal(exact, UPLOADS, 'every upload stored byte-exact')
    const h = await head(via(b, urls[0]!))
    t.equal(h.headers['upload-offset'], String(SIZE))
    t.equal(await lockCount(schema), 0, 'every lock released')
  })
}
