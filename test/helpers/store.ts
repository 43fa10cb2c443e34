/**
 * Where the protocol tests' servers keep their bytes: in `uploadDir` (the
 * default), or, with TUS_TEST_STORE=s3, under a key prefix of their own in a
 * bucket on the S3 server at TUS_TEST_S3_ENDPOINT (test/s3-pass.mjs runs the
 * protocol files that way). The bucket is TUS_TEST_S3_BUCKET when set (s3-pass
 * makes one for the whole pass), else one per test file, made at its first
 * server and removed at its end: on Swift a new bucket's first requests are
 * slow (hundreds of ms to seconds under load), a new prefix costs nothing. Each
 * server's prefix is emptied (objects and multipart uploads) after it closed.
 * The helpers in tus.ts and tus-js.ts read stored bytes through this, so one
 * suite checks either backend byte for byte:
 *
 * - a finished upload is the object `<prefix><id>`, and nothing else of it is
 *   left in the bucket (no tail, no multipart upload);
 * - an unfinished one has no object: its bytes are the full parts of a
 *   multipart upload on that key (not readable before it completes) and a tail,
 *   the bytes after the last full part, in an object under `<prefix>.tus/<id>/`
 *   (lib/store/data/s3-store.ts). Below one part, the tail is every byte so far,
 *   so the bytes of an unfinished upload are read from it; past one part, what
 *   can be checked is checked: the part count and sizes (ListParts) and the tail.
 *
 * The S3 client of every server started here counts the body bytes of its
 * requests as they are sent (a wrapped request handler), so a test can wait for
 * the bytes of a body still streaming to reach storage, as it waits for them to
 * reach the file on disk.
 */
import { Readable, Transform } from 'node:stream'
import type { NodeHttpHandler as SdkHandler } from '@smithy/node-http-handler'
import type { Test } from 'tap'
import type { TusPluginOptions } from '../../lib/index.js'

interface Teardown { teardown(fn: () => unknown): void }

/** The store the protocol tests run on. */
export const STORE: 'disk' | 's3' = process.env.TUS_TEST_STORE === 's3' ? 's3' : 'disk'
if (STORE === 's3' && (process.env.TUS_TEST_S3_ENDPOINT ?? '') === '') {
  throw new Error('TUS_TEST_STORE=s3 needs TUS_TEST_S3_ENDPOINT (e.g. http://127.0.0.1:9000, from ../shared/s3/start-s3.sh)')
}
/** True when the servers startServer() starts keep their bytes in S3. */
export const ON_S3 = STORE === 's3'

/** One S3 request a server's store sent: its target and how many body bytes have gone out. */
export interface S3Request {
  method: string
  key: string
  /** Query parameters (partNumber, uploadId for UploadPart). */
  query: Record<string, string>
  /** Body bytes sent so far. */
  sent: number
  /** The response arrived (or the request failed). */
  done: boolean
}

export interface S3Location {
  bucket: string
  /** Key prefix ('' or ending with '/'). */
  prefix: string
  partSize: number
  /** Requests the server's S3 client sent (for servers startServer() put on the S3 store). */
  requests?: S3Request[]
}

/** Where a test server keeps the bytes: `uploadDir`, or the bucket when `s3` is set. */
export interface Storage {
  uploadDir: string
  s3?: S3Location
}

/** The uploadDir of every server startServer() put on the S3 store: reading bytes there by directory is a mistake. */
export const S3_UPLOAD_DIRS = new Set<string>()

/** The key of an upload's finished object (and of its multipart upload). */
export const objectKey = (s3: S3Location, id: string): string => s3.prefix + id
/** The key prefix of an upload's tail objects. */
export const tailPrefix = (s3: S3Location, id: string): string => `${s3.prefix}.tus/${id}/`

const MIN_PART_SIZE = 5 << 20

let fileBucket: Promise<string> | undefined
let servers = 0

/** The bucket of this test file's servers: TUS_TEST_S3_BUCKET, or one made now and removed when the file's tests end. */
async function sharedBucket (): Promise<string> {
  const given = process.env.TUS_TEST_S3_BUCKET
  if (given !== undefined && given !== '') return given
  fileBucket ??= (async () => {
    const { default: root } = await import('tap')
    const { testBucket, s3: client } = await import('./s3.js')
    const { CreateMultipartUploadCommand, AbortMultipartUploadCommand } = await import('@aws-sdk/client-s3')
    const bucket = await testBucket(root)
    // Swift makes a bucket's segments container at its first multipart upload, and two first
    // ones at once can fail (NoSuchBucket): one goes first, alone.
    const { UploadId } = await client().send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: '.prime' }))
    await client().send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: '.prime', UploadId }))
    return bucket
  })()
  return fileBucket
}

/** Everything under a prefix goes: multipart uploads aborted, objects deleted. */
async function emptyPrefix (bucket: string, prefix: string): Promise<void> {
  const { s3: client } = await import('./s3.js')
  const { AbortMultipartUploadCommand, DeleteObjectCommand } = await import('@aws-sdk/client-s3')
  const { objects, uploads } = await listPrefix(bucket, prefix)
  const jobs = [
    ...uploads.map((u) => async () => client().send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }))),
    ...objects.map((key) => async () => client().send(new DeleteObjectCommand({ Bucket: bucket, Key: key })))
  ]
  // Eight at a time: a test that made fifty uploads leaves fifty objects.
  const worker = async (): Promise<void> => { for (let job = jobs.shift(); job !== undefined; job = jobs.shift()) await job().catch(() => {}) }
  await Promise.all(Array.from({ length: 8 }, worker))
}

/** Object keys and multipart uploads under a prefix. */
async function listPrefix (bucket: string, prefix: string): Promise<{ objects: string[]; uploads: Array<{ key: string; uploadId: string }> }> {
  const { s3: client } = await import('./s3.js')
  const { ListObjectsV2Command, ListMultipartUploadsCommand } = await import('@aws-sdk/client-s3')
  const objects: string[] = []
  let ContinuationToken: string | undefined
  do {
    const page = await client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken }))
    for (const o of page.Contents ?? []) objects.push(o.Key!)
    ContinuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined
  } while (ContinuationToken !== undefined)
  const uploads: Array<{ key: string; uploadId: string }> = []
  let KeyMarker: string | undefined
  let UploadIdMarker: string | undefined
  for (;;) {
    const page = await client().send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker, UploadIdMarker }))
    for (const u of page.Uploads ?? []) uploads.push({ key: u.Key!, uploadId: u.UploadId! })
    if (page.IsTruncated !== true) break
    KeyMarker = page.NextKeyMarker
    UploadIdMarker = page.NextUploadIdMarker
  }
  return { objects: objects.sort(), uploads }
}

/**
 * The `s3` option for a server startServer() starts on the S3 store: the file's
 * bucket, a key prefix of the server's own, emptied at teardown (registered
 * here, so before the server's close: teardowns run last-registered first), and
 * an S3 client whose requests are counted.
 */
export async function testS3Storage (t: Teardown): Promise<{ option: NonNullable<TusPluginOptions['s3']>; location: S3Location }> {
  const { s3Options } = await import('./s3.js')
  const { NodeHttpHandler } = await import('@smithy/node-http-handler')
  const bucket = await sharedBucket()
  const prefix = `t${process.pid}-${++servers}-${Math.random().toString(36).slice(2, 8)}/`
  t.teardown(async () => emptyPrefix(bucket, prefix))
  const requests: S3Request[] = []

  /** The SDK's own handler; every request body is counted on its way out, nothing else changes. */
  class CountingHandler extends NodeHttpHandler {
    override async handle (request: Parameters<SdkHandler['handle']>[0], options?: Parameters<SdkHandler['handle']>[1]): ReturnType<SdkHandler['handle']> {
      const path = request.path.startsWith(`/${bucket}/`) ? request.path.slice(bucket.length + 2) : ''
      const query: Record<string, string> = {}
      for (const [name, value] of Object.entries(request.query ?? {})) if (typeof value === 'string') query[name] = value
      const seen: S3Request = { method: request.method, key: path.split('/').map(decodeURIComponent).join('/'), query, sent: 0, done: false }
      requests.push(seen)
      const body: unknown = request.body
      if (body instanceof Readable) {
        const counter = new Transform({ transform (chunk: Buffer, _encoding, callback) { seen.sent += chunk.length; callback(null, chunk) } })
        // A plain pipe, as the SDK's handler does with the body: no error listener is added, so a
        // body that fails behaves as it would without the counting (nothing here handles its error).
        body.pipe(counter)
        request.body = counter
      } else if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
        seen.sent = body.byteLength
      } else if (typeof body === 'string') {
        seen.sent = Buffer.byteLength(body)
      }
      try {
        return await super.handle(request, options)
      } finally {
        seen.done = true
      }
    }
  }

  const partSize = MIN_PART_SIZE
  const location: S3Location = { bucket, prefix, partSize, requests }
  const option = s3Options(bucket, { prefix: location.prefix, partSize, clientOptions: { requestHandler: new CountingHandler() } })
  return { option, location }
}

/** What the bucket holds of one upload. */
export interface S3Holdings {
  /** The finished object's key, when there is one. */
  object: string | null
  /** Tail objects: key and the offset their write ended at (from the key, `<end>-<random>`). */
  tails: Array<{ key: string; end: number }>
  /** In-progress multipart uploads on the upload's key. */
  uploads: string[]
}

export async function holdings (s3: S3Location, id: string): Promise<S3Holdings> {
  const contents = await listPrefix(s3.bucket, s3.prefix)
  const key = objectKey(s3, id)
  const tails = contents.objects.filter((k) => k.startsWith(tailPrefix(s3, id))).map((k) => {
    const end = /^(\d+)-/.exec(k.slice(tailPrefix(s3, id).length))?.[1]
    return { key: k, end: end === undefined ? -1 : Number(end) }
  })
  return {
    object: contents.objects.includes(key) ? key : null,
    tails,
    uploads: contents.uploads.filter((u) => u.key === key).map((u) => u.uploadId)
  }
}

/** Everything the server has in the bucket (under its prefix): object keys and multipart uploads. */
export async function everything (s3: S3Location): Promise<{ objects: string[]; uploads: Array<{ key: string; uploadId: string }> }> {
  return listPrefix(s3.bucket, s3.prefix)
}

async function read (s3: S3Location, key: string): Promise<Buffer> {
  const { readObject } = await import('./s3.js')
  const bytes = await readObject(s3.bucket, key)
  if (bytes === null) throw new Error(`s3://${s3.bucket}/${key} vanished while it was read`)
  return bytes
}

/** Sizes of the parts of a multipart upload, in part-number order. */
export async function partSizes (s3: S3Location, id: string, uploadId: string): Promise<number[]> {
  const { s3: client } = await import('./s3.js')
  const { ListPartsCommand } = await import('@aws-sdk/client-s3')
  const sizes: Array<[number, number]> = []
  let PartNumberMarker: string | undefined
  for (;;) {
    const page = await client().send(new ListPartsCommand({ Bucket: s3.bucket, Key: objectKey(s3, id), UploadId: uploadId, PartNumberMarker }))
    for (const p of page.Parts ?? []) sizes.push([p.PartNumber ?? 0, p.Size ?? 0])
    if (page.IsTruncated !== true) break
    PartNumberMarker = page.NextPartNumberMarker
  }
  return sizes.sort((a, b) => a[0] - b[0]).map(([, size]) => size)
}

/** The write request for `id` still sending its body, if there is one: a tail PutObject or an UploadPart. */
function writeInFlight (s3: S3Location, id: string): S3Request | undefined {
  return s3.requests?.filter((r) => !r.done && r.method === 'PUT' &&
    (r.key.startsWith(tailPrefix(s3, id)) || (r.key === objectKey(s3, id) && r.query.partNumber !== undefined && r.query['x-id'] !== 'UploadPartCopy'))).at(-1)
}

/**
 * The bytes the bucket holds for an upload: the finished object; else, below
 * one part, the newest tail (every byte so far); null when the bucket holds
 * nothing of it. Throws when the bytes are partly in a multipart upload, whose
 * parts cannot be read back before it completes.
 */
export async function s3Stored (s3: S3Location, id: string): Promise<Buffer | null> {
  const held = await holdings(s3, id)
  if (held.object !== null) return read(s3, held.object)
  if (held.uploads.length > 0) throw new Error(`upload ${id} is unfinished with full parts in a multipart upload: its bytes cannot be read from the bucket`)
  const newest = held.tails.sort((a, b) => b.end - a.end)[0]
  return newest === undefined ? null : read(s3, newest.key)
}

/**
 * How many bytes of an upload reached the bucket, counting a body still being
 * sent (the analogue of the file's size while it is written): the bytes of the
 * full parts and of the tail or part in progress; the finished object's size;
 * -1 when the bucket holds nothing of it.
 */
export async function s3StoredSize (s3: S3Location, id: string): Promise<number> {
  const held = await holdings(s3, id)
  const parts = held.uploads.length === 0 ? [] : await partSizes(s3, id, held.uploads.at(-1)!)
  const partBytes = parts.reduce((a, b) => a + b, 0)
  const writing = writeInFlight(s3, id)
  if (writing !== undefined) {
    const partNumber = writing.query.partNumber
    return partNumber === undefined ? partBytes + writing.sent : (Number(partNumber) - 1) * s3.partSize + writing.sent
  }
  if (held.object !== null) {
    const { s3: client } = await import('./s3.js')
    const { HeadObjectCommand } = await import('@aws-sdk/client-s3')
    return (await client().send(new HeadObjectCommand({ Bucket: s3.bucket, Key: held.object }))).ContentLength ?? 0
  }
  const newest = held.tails.sort((a, b) => b.end - a.end)[0]
  if (newest === undefined) return held.uploads.length === 0 ? -1 : partBytes
  return partBytes + (await read(s3, newest.key)).length
}

/** What a tap test offers that the assertions use. */
type Assert = Pick<Test, 'equal' | 'ok' | 'same'>

/**
 * The bucket holds exactly `expected` for an upload at offset `expected.length`:
 * finished, the object is byte-exact and nothing else of the upload is left;
 * unfinished, there is no object, the multipart upload has the full parts (each
 * of the part size) and a tail holds exactly the bytes after them.
 */
export async function assertS3Stored (t: Assert, s3: S3Location, id: string, expected: Buffer, finished: boolean, prefix: string): Promise<void> {
  const held = await holdings(s3, id)
  if (finished) {
    t.ok(held.object !== null, `${prefix}the object ${objectKey(s3, id)} exists`)
    const bytes = held.object === null ? null : await read(s3, held.object)
    t.equal(bytes?.length, expected.length, `${prefix}stored object has ${expected.length} bytes`)
    t.ok(bytes !== null && bytes.equals(expected), `${prefix}stored object bytes equal the source`)
    t.same(held.tails.map((x) => x.key), [], `${prefix}no tail object left`)
    t.same(held.uploads, [], `${prefix}no multipart upload left`)
    return
  }
  t.equal(held.object, null, `${prefix}no object before the upload is finished`)
  const fullParts = Math.floor(expected.length / s3.partSize)
  const tail = expected.subarray(fullParts * s3.partSize)
  if (fullParts > 0) {
    t.equal(held.uploads.length, 1, `${prefix}one multipart upload holds the full parts`)
    const sizes = held.uploads.length === 0 ? [] : await partSizes(s3, id, held.uploads[0]!)
    t.same(sizes.slice(0, fullParts), Array.from({ length: fullParts }, () => s3.partSize), `${prefix}${fullParts} full part(s) of ${s3.partSize} bytes`)
  }
  t.same(held.tails.filter((x) => x.end > expected.length || x.end < 0).map((x) => x.key), [], `${prefix}no tail of bytes past offset ${expected.length}`)
  if (tail.length === 0) {
    t.same(held.tails.filter((x) => x.end === expected.length).map((x) => x.key), [], `${prefix}no tail at offset ${expected.length}`)
    return
  }
  let found = false
  for (const candidate of held.tails.filter((x) => x.end === expected.length)) {
    if ((await read(s3, candidate.key)).equals(tail)) found = true
  }
  t.ok(found, `${prefix}a tail at offset ${expected.length} holds exactly its last ${tail.length} bytes (tails: ${held.tails.map((x) => x.key).join(', ') || 'none'})`)
}

/** Nothing of any upload is in the bucket (under the server's prefix): no object, no multipart upload. */
export async function assertS3Empty (t: Assert, s3: S3Location, prefix: string): Promise<void> {
  const contents = await everything(s3)
  t.same(contents.objects, [], `${prefix}no object in the bucket (under ${s3.prefix})`)
  t.same(contents.uploads, [], `${prefix}no multipart upload in the bucket`)
}

/** Writes an object straight into the bucket (not through the server). */
export async function putObject (s3: S3Location, key: string, body: Buffer | string): Promise<void> {
  const { s3: client } = await import('./s3.js')
  const { PutObjectCommand } = await import('@aws-sdk/client-s3')
  await client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
}

/** An object's bytes straight from the bucket, or null when there is none. */
export async function readKey (s3: S3Location, key: string): Promise<Buffer | null> {
  const { readObject } = await import('./s3.js')
  return readObject(s3.bucket, key)
}
