/**
 * Small assertions shared by the protocol tests: error replies, stored bytes,
 * "nothing was stored". Stored bytes are read where the server keeps them: the
 * file in uploadDir, or, on object storage (TUS_TEST_STORE=s3 or azure), the
 * bucket or container (helpers/store.ts says what is read there for
 * unfinished uploads).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { OCTET, TUS, send, type Response } from './http.js'
import { ON_OBJECTS, OBJECT_STORE, OBJECT_UPLOAD_DIRS, assertObjectsEmpty, assertObjectStored, objectStored, objectStoredSize, type Storage } from './store.js'

export { ON_OBJECTS, OBJECT_STORE, STORE, type Storage } from './store.js'

/** What a tap subtest offers that these helpers use. */
export type Assert = Pick<Test, 'equal' | 'ok' | 'match' | 'same'>

/** The upload id is the last URL segment. */
export const idOf = (url: string): string => url.split('/').pop() as string

/** A directory given as a string is read on disk; refused for a server whose bytes are in a bucket. */
function diskDir (dir: string): string {
  if (OBJECT_UPLOAD_DIRS.has(dir)) throw new Error(`${dir} belongs to a server on object storage: pass the server's storage, not its uploadDir`)
  return dir
}

/**
 * The bytes stored for an upload, or null when nothing is stored for it.
 * Given a directory (a string): the file there, read at once (disk only).
 * Given a server's storage: the file in its uploadDir, or on object storage
 * the finished object; for an unfinished upload below one part, its tail
 * (every byte so far); null when the bucket holds nothing of the upload (also
 * an unfinished upload with no byte yet, where disk has an empty file).
 */
export function stored (dir: string, id: string): Buffer | null
export function stored (storage: Storage, id: string): Promise<Buffer | null>
export function stored (where: Storage | string, id: string): Buffer | null | Promise<Buffer | null> {
  if (typeof where === 'string') {
    const path = join(diskDir(where), id)
    return existsSync(path) ? readFileSync(path) : null
  }
  if (where.objects !== undefined) return objectStored(where.objects, id)
  return Promise.resolve(stored(where.uploadDir, id))
}

/**
 * How many bytes of the upload reached storage, a body still being written
 * included, or -1 when nothing is stored. Given a directory: the file's size
 * there, at once. Given a server's storage: the same, or on object storage
 * the full parts plus the bytes of the tail (or part) written or being sent.
 */
export function storedSize (dir: string, id: string): number
export function storedSize (storage: Storage, id: string): Promise<number>
export function storedSize (where: Storage | string, id: string): number | Promise<number> {
  if (typeof where === 'string') {
    const path = join(diskDir(where), id)
    return existsSync(path) ? statSync(path).size : -1
  }
  if (where.objects !== undefined) return objectStoredSize(where.objects, id)
  return Promise.resolve(storedSize(where.uploadDir, id))
}

export const head = async (url: string): Promise<Response> => send('HEAD', url, { headers: TUS })

/**
 * A resuming client's PATCH of `body` at `offset`, for tests that time how soon
 * an upload is writable again ("served within a second"): on disk the PATCH
 * itself is timed. On object storage an empty PATCH at the offset is timed (it
 * is answered 204 as soon as the upload is free, and stores nothing), then the
 * body is sent untimed: its own writes to the bucket (a tail, the object's
 * completion) take seconds on a loaded machine, which says nothing about the
 * lock. Answers the reply that decides (the probe's when it was refused, else
 * the body's) and when the timed part ended.
 */
export async function timedResume (url: string, offset: number, body: Buffer, headers: Record<string, string> = {}): Promise<{ res: Response; at: number }> {
  if (!ON_OBJECTS) {
    const res = await send('PATCH', url, { headers: { ...TUS, ...OCTET, 'Upload-Offset': String(offset), ...headers }, body })
    return { res, at: Date.now() }
  }
  const probe = await send('PATCH', url, { headers: { ...TUS, ...OCTET, 'Upload-Offset': String(offset) }, body: Buffer.alloc(0) })
  const at = Date.now()
  if (probe.status !== 204) return { res: probe, at }
  return { res: await send('PATCH', url, { headers: { ...TUS, ...OCTET, 'Upload-Offset': String(offset), ...headers }, body }), at }
}

/**
 * On object storage (S3, Azure) a body without Content-Length
 * (Transfer-Encoding: chunked) is answered 411 before a byte of it is read, as
 * intended: parts and tails are sent with their length. Tests of chunked
 * bodies assert that there instead.
 */
export const CHUNKED_REFUSED = `the ${OBJECT_STORE || 'object'} store answers a chunked body (no Content-Length) with 411, as intended; asserted instead`

/**
 * On object storage a body cut off mid-part keeps nothing past the last part
 * boundary or tail the write completed (neither S3 nor Azure keeps a partial
 * part or block), as intended: where disk keeps every byte received, the
 * offset stays there.
 */
export const CUT_BODY_NOT_KEPT = `the ${OBJECT_STORE || 'object'} store keeps no byte of a cut body past the last part or tail it completed, as intended; asserted instead`

/** A tus error reply: the status, Tus-Resumable, text/plain and a one-line, non-empty reason. */
export function assertError (t: Assert, res: Response, status: number, label = ''): void {
  const prefix = label === '' ? '' : `${label}: `
  t.equal(res.status, status, `${prefix}status ${status} (${res.text})`)
  t.equal(res.headers['tus-resumable'], '1.0.0', `${prefix}error reply carries Tus-Resumable`)
  t.match(String(res.headers['content-type']), /^text\/plain\b/, `${prefix}error reply is text/plain`)
  t.ok(res.text.length > 0, `${prefix}error reply has a reason`)
  t.ok(!/[\r\n]/.test(res.text), `${prefix}error reason is one line`)
}

/**
 * Nothing exists: no row and no file in uploadDir (a directory, or a server's
 * storage; on object storage also nothing in the bucket or container: no
 * object, no unfinished parts).
 */
export async function assertNothingStored (t: Assert, app: FastifyInstance, where: Storage | string, label = ''): Promise<void> {
  const prefix = label === '' ? '' : `${label}: `
  const storage = typeof where === 'string' ? { uploadDir: diskDir(where) } : where
  t.same(await app.tus.list(), [], `${prefix}no upload row`)
  t.same(readdirSync(storage.uploadDir), [], `${prefix}no file in uploadDir`)
  if (storage.objects !== undefined) await assertObjectsEmpty(t, storage.objects, prefix)
}

/**
 * HEAD offset and the stored bytes are exactly `expected` (given a directory,
 * the file there; given a server's storage, where it keeps them). On object
 * storage: a finished upload is the object, byte-exact, with no tail or
 * unfinished parts left; an unfinished one has no object, its full parts and a
 * tail of exactly its last bytes (helpers/store.ts).
 */
export async function assertStored (t: Assert, url: string, where: Storage | string, expected: Buffer, label = ''): Promise<void> {
  const prefix = label === '' ? '' : `${label}: `
  const storage = typeof where === 'string' ? { uploadDir: diskDir(where) } : where
  const res = await head(url)
  t.equal(res.status, 200, `${prefix}HEAD 200`)
  t.equal(res.headers['upload-offset'], String(expected.length), `${prefix}HEAD offset ${expected.length}`)
  if (storage.objects !== undefined) {
    const finished = res.headers['upload-length'] === String(expected.length)
    await assertObjectStored(t, storage.objects, idOf(url), expected, finished, prefix)
    return
  }
  const bytes = stored(storage.uploadDir, idOf(url))
  t.equal(bytes?.length, expected.length, `${prefix}stored file has ${expected.length} bytes`)
  t.ok(bytes !== null && bytes.equals(expected), `${prefix}stored bytes equal the source`)
}

export const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `check` every 10 ms until it is true; throws after `timeout` ms. */
export async function waitFor (check: () => boolean | Promise<boolean>, timeout = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeout
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}
