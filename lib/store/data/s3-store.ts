/**
 * Bytes in S3-compatible object storage (AWS S3, Ceph RGW, Swift, MinIO, R2,
 * B2, GCS's XML API). A finished upload is one object at `<prefix><id>`; while
 * it is unfinished its bytes are the parts of a multipart upload on that key,
 * every one exactly `partSize` long, and a tail: the bytes after the last full
 * part, in an object of its own under `<prefix>.tus/<id>/`.
 *
 * What is stored where lives in our database (ObjectStates), one version per
 * offset reached, never in the bucket: no `.info` object, no ListParts to learn
 * an offset, no HEAD of a tail per request. Every part but the last has the same
 * size (R2 requires it), and a part is uploaded only when it is full, so the
 * part count is ceil(size / partSize) whatever the interruptions (never past
 * 10,000: maxSize is checked against it).
 *
 * A write streams the request body straight into UploadPart and PutObject
 * requests whose length is known (the tail from the previous write first, read
 * back from the bucket, then the body), one request in flight per upload: memory
 * per upload is a few stream buffers (about 64 KiB), nothing goes to local disk.
 * That needs the body's length up front (Content-Length); a chunked body is
 * refused before anything is read (ELENGTHREQUIRED, answered 411).
 *
 * A version is recorded only after storage acknowledged its bytes, so the
 * offset the protocol commits (one of these versions) never runs ahead of
 * them. A body cut off mid-part loses that part's bytes (S3 keeps no partial
 * part), back to the last part boundary or tail the write reached.
 */
import { randomBytes } from 'node:crypto'
import { PassThrough, Readable } from 'node:stream'
import type * as S3 from '@aws-sdk/client-s3'
import type { CreateOptions, DataStore, WriteOptions, WriteResult } from '../../../types/index.js'
import type { ObjectState, ObjectStates } from '../meta/object-states.js'

/** S3's smallest part but the last (AWS, Swift, MinIO, RGW). */
export const MIN_PART_SIZE = 5 << 20
/** S3's largest part, and the largest range one UploadPartCopy may copy. */
export const MAX_PART_SIZE = 5 * 1024 ** 3
/** S3's most parts in one multipart upload. */
export const MAX_PARTS = 10_000

export interface S3StoreSettings {
  bucket: string
  /** Prepended to every key ('' or ending with '/', e.g. 'tus/'). */
  prefix: string
  /** Size of every part but the last. */
  partSize: number
}

type Sdk = typeof S3

/** The error of a write refused because the body's length is not known in advance. */
function lengthRequired (): NodeJS.ErrnoException {
  return Object.assign(new Error('a request body for object storage must announce its length (Content-Length)'), { code: 'ELENGTHREQUIRED' })
}

function lockLost (): NodeJS.ErrnoException {
  return Object.assign(new Error('the upload\'s lock was lost: nothing more is written'), { code: 'ELOCKLOST' })
}

const isMissing = (err: unknown): boolean => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } }
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.name === 'NoSuchUpload' || e?.$metadata?.httpStatusCode === 404
}

/**
 * Takes exactly `length` bytes off an async iterator of chunks (splitting the
 * chunk that crosses the end, whose rest is kept for the next take) as a
 * Readable for a request body. If the source ends or fails first, the Readable
 * is destroyed, failing the request, and the source's error is kept.
 */
class ChunkTaker {
  private rest: Buffer | undefined
  /** The source's own error (the client went away, the shutdown cut it), which says more than the failed upload's. */
  failure: unknown
  private readonly iterator: AsyncIterator<Buffer>
  /** Aborts the requests to S3 that carry the source's bytes, once the source failed. */
  private readonly abort = new AbortController()
  /** Pass to every request whose body comes from take(). */
  readonly abortSignal = this.abort.signal

  constructor (source: AsyncIterable<Buffer>) {
    this.iterator = source[Symbol.asyncIterator]()
  }

  /**
   * A Readable of the next `length` bytes, after `prefix` (the previous tail) when
   * given, and a promise settled once they are all taken off the source (the
   * next take may start then).
   */
  take (length: number, prefix?: Readable): { body: Readable; consumed: Promise<void> } {
    const out = new PassThrough({ highWaterMark: 64 << 10 })
    // The SDK pipes the body without listening for its errors: the failure is reported through `consumed` and the aborted request.
    out.on('error', () => {})
    const pump = async (): Promise<void> => {
      if (prefix !== undefined) {
        for await (const chunk of prefix) if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve))
      }
      let left = length
      while (left > 0) {
        let chunk = this.rest
        this.rest = undefined
        if (chunk === undefined) {
          const next = await this.iterator.next()
          if (next.done === true) throw new Error('the request body ended before its announced length')
          chunk = next.value
        }
        if (chunk.length > left) {
          this.rest = chunk.subarray(left)
          chunk = chunk.subarray(0, left)
        }
        left -= chunk.length
        if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve))
      }
      out.end()
    }
    const consumed = pump().catch((err: unknown) => {
      this.failure ??= err
      out.destroy(err as Error)
      // The request to S3 would otherwise wait for bytes that never come, holding the upload.
      this.abort.abort(err)
      throw err
    })
    consumed.catch(() => {}) // the caller awaits it, or learns of the failure from its request
    return { body: out, consumed }
  }

  /** Read the rest of the source and count it (a body whose bytes are already stored). */
  async drain (): Promise<number> {
    let n = this.rest?.length ?? 0
    this.rest = undefined
    for (let next = await this.iterator.next(); next.done !== true; next = await this.iterator.next()) n += next.value.length
    return n
  }

  /** Stop reading the source. */
  async close (): Promise<void> {
    await this.iterator.return?.()
  }
}

export class S3Store implements DataStore {
  /** Bytes are behind a network: start-up recovery does not HEAD every finished upload. */
  readonly remote = true
  private readonly tailPrefix: string

  constructor (
    private readonly sdk: Sdk,
    private readonly client: S3.S3Client,
    private readonly states: ObjectStates,
    readonly settings: S3StoreSettings
  ) {
    this.tailPrefix = `${settings.prefix}.tus/`
  }

  /** The key of an upload's finished object (and of its multipart upload). */
  key (id: string): string {
    return this.settings.prefix + id
  }

  async init (): Promise<void> {
    // Fail at start-up, with the SDK's reason, when the bucket cannot be reached.
    await this.client.send(new this.sdk.HeadBucketCommand({ Bucket: this.settings.bucket }))
  }

  async create (id: string, options: CreateOptions = {}): Promise<void> {
    const exists = (): never => { throw Object.assign(new Error(`upload ${id} exists already`), { code: 'EEXIST' }) }
    // An id chosen by a hook may name an object already in the bucket (a generated one cannot).
    if (options.chosenId === true && await this.objectExists(this.key(id))) exists()
    if (!await this.states.create(id, options.contentType ?? null)) exists()
  }

  private async objectExists (Key: string): Promise<boolean> {
    try {
      await this.client.send(new this.sdk.HeadObjectCommand({ Bucket: this.settings.bucket, Key }))
      return true
    } catch (err) {
      if (isMissing(err)) return false
      throw err
    }
  }

  async write (id: string, offset: number, source: AsyncIterable<Buffer>, options: WriteOptions = {}): Promise<WriteResult> {
    if (options.create === true) {
      if (offset !== 0) throw new Error('a write that creates the upload starts at offset 0')
      await this.create(id, { contentType: options.contentType, chosenId: options.chosenId })
    }
    const taker = new ChunkTaker(source)
    let written = 0
    try {
      const versions = await this.states.all(id)
      const finished = versions.find((v) => v.finished)
      if (finished !== undefined) {
        // A finish went through but the row did not record it (the process died in
        // between): the finished object already holds the bytes this body re-sends.
        const n = await taker.drain()
        if (offset + n !== finished.offset) throw new Error(`upload ${id} is finished at ${finished.offset} bytes; a body of ${n} at ${offset} does not end there`)
        return { bytesWritten: n }
      }
      const state = versions.find((v) => v.offset === offset)
      if (state === undefined) throw new Error(`upload ${id} has no stored state at its offset ${offset}`)
      // Versions past the offset belong to bodies that were not committed; their tails go.
      await this.discard(await this.states.keepOnly(id, offset), state)
      if (options.length === undefined) throw lengthRequired()

      const { partSize } = this.settings
      let remaining = options.length
      let checkpointed = 0
      const every = options.checkpoint?.every ?? Infinity
      // Where the next part starts: after the parts so far, with the old tail first.
      let current: ObjectState = state
      let { partCount, tailKey, tailSize, multipartId } = current
      // Parts are recorded in order, each once S3 acknowledged it. A part's bytes
      // stream while the part before it is still being acknowledged (two requests in
      // flight per upload): S3 finishing a part does not stall the body.
      let recorded: Promise<void> = Promise.resolve()
      try {
        while (tailSize + remaining >= partSize) {
          if (options.owned?.() === false) throw lockLost()
          if (multipartId === null) {
            const created: S3.CreateMultipartUploadCommandOutput = await this.client.send(new this.sdk.CreateMultipartUploadCommand({
              Bucket: this.settings.bucket, Key: this.key(id), ...(current.contentType === null ? {} : { ContentType: current.contentType })
            }))
            multipartId = created.UploadId!
            current = { ...current, multipartId }
            // Recorded at once on the committed version, so a termination finds it even if no part follows.
            await this.states.put(id, current)
          }
          const fresh = partSize - tailSize
          const { body, consumed } = taker.take(fresh, tailKey === null ? undefined : await this.read(tailKey))
          const partNumber = ++partCount
          const uploaded = this.client.send(new this.sdk.UploadPartCommand({
            Bucket: this.settings.bucket, Key: this.key(id), UploadId: multipartId, PartNumber: partNumber, Body: body, ContentLength: partSize
          }), { abortSignal: taker.abortSignal })
          uploaded.catch(() => {}) // awaited in order below
          remaining -= fresh
          tailKey = null
          tailSize = 0
          const more = remaining > 0
          const before = recorded
          recorded = before.then(async () => {
            const { ETag } = await uploaded
            await this.states.putPart(id, partNumber, ETag!)
            written += fresh
            current = { ...current, offset: offset + written, partCount: partNumber, tailKey: null, tailSize: 0 }
            await this.states.put(id, current)
            if (options.checkpoint !== undefined && written - checkpointed >= every && more) {
              await options.checkpoint.at(written)
              checkpointed = written
            }
          })
          recorded.catch(() => {})
          // The next part starts once this one's bytes are off the body and the one before it is recorded.
          await consumed
          await before
        }
        if (remaining > 0) {
          if (options.owned?.() === false) throw lockLost()
          const size = tailSize + remaining
          const newTail = `${this.tailPrefix}${id}/${offset + options.length}-${randomBytes(6).toString('hex')}`
          const { body } = taker.take(remaining, tailKey === null ? undefined : await this.read(tailKey))
          await this.client.send(new this.sdk.PutObjectCommand({ Bucket: this.settings.bucket, Key: newTail, Body: body, ContentLength: size }), { abortSignal: taker.abortSignal })
          await recorded
          written += remaining
          current = { ...current, offset: offset + written, tailKey: newTail, tailSize: size }
          await this.states.put(id, current)
        }
        await recorded
      } catch (err) {
        // What was acknowledged and recorded before the failure still counts.
        await recorded.catch(() => {})
        throw err
      }
      return { bytesWritten: written }
    } catch (err) {
      return { bytesWritten: written, error: taker.failure ?? err }
    } finally {
      await taker.close()
    }
  }

  /**
   * The upload is whole at `length`: its parts and tail become the object at its
   * key. The tail joins as the last part by a server-side copy (no re-upload);
   * with no full part, the tail is copied to the key. Idempotent.
   */
  async finish (id: string, length: number): Promise<void> {
    const state = await this.states.at(id, length)
    if (state === undefined) throw new Error(`upload ${id} has no stored state at its length ${length}`)
    if (state.finished) return
    const { bucket } = this.settings
    const key = this.key(id)
    const contentType = state.contentType === null ? {} : { ContentType: state.contentType }
    if (state.partCount === 0) {
      if (state.tailKey === null) {
        await this.client.send(new this.sdk.PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.alloc(0), ContentLength: 0, ...contentType }))
      } else {
        await this.client.send(new this.sdk.CopyObjectCommand({
          Bucket: bucket, Key: key, CopySource: this.copySource(state.tailKey), MetadataDirective: 'REPLACE', ...contentType
        }))
      }
    } else {
      const parts = await this.states.parts(id, state.partCount)
      if (state.tailKey !== null) {
        const copied = await this.client.send(new this.sdk.UploadPartCopyCommand({
          Bucket: bucket, Key: key, UploadId: state.multipartId!, PartNumber: state.partCount + 1, CopySource: this.copySource(state.tailKey)
        }))
        parts.push({ PartNumber: state.partCount + 1, ETag: copied.CopyPartResult!.ETag! })
      }
      await this.client.send(new this.sdk.CompleteMultipartUploadCommand({
        Bucket: bucket, Key: key, UploadId: state.multipartId!, MultipartUpload: { Parts: parts }
      }))
      // A multipart upload a dying write started but never recorded would stay behind: abort it.
      await this.abortMultipartUploads(id, new Set())
    }
    // The finished object is the truth from here on: one version says so, the rest goes.
    await this.states.put(id, { ...state, multipartId: null, partCount: 0, tailKey: null, tailSize: 0, finished: true })
    await this.states.keepOnly(id, length)
    await this.states.dropParts(id)
    // Every tail goes, also one a write stored just before its process died, which no version names.
    await this.deleteTails(id)
  }

  /**
   * Nothing to cut: a version past `length` is simply not the one the next write
   * starts from. Once finished (a finish whose row update was lost with its
   * process) there is nothing to go back to: the next write of the same bytes
   * finds them there.
   */
  async truncate (id: string, length: number): Promise<void> {
    const versions = await this.states.all(id)
    if (versions.some((v) => v.finished)) return
    const state = versions.find((v) => v.offset === length)
    if (state === undefined) throw new Error(`upload ${id} has no stored state at ${length}`)
    await this.discard(await this.states.keepOnly(id, length), state)
  }

  createReadStream (id: string, range?: { start: number; end: number }): Readable {
    const out = new PassThrough()
    this.client.send(new this.sdk.GetObjectCommand({
      Bucket: this.settings.bucket, Key: this.key(id), ...(range === undefined ? {} : { Range: `bytes=${range.start}-${range.end}` })
    })).then((res) => {
      const body = res.Body as Readable
      body.on('error', (err) => out.destroy(err))
      body.pipe(out)
      out.on('close', () => { if (!body.destroyed) body.destroy() })
    }, (err: unknown) => out.destroy(err as Error))
    return out
  }

  async size (id: string): Promise<number | null> {
    const versions = await this.states.all(id)
    const latest = versions.at(-1)
    if (latest !== undefined && !latest.finished) return latest.offset
    try {
      const head = await this.client.send(new this.sdk.HeadObjectCommand({ Bucket: this.settings.bucket, Key: this.key(id) }))
      return head.ContentLength ?? 0
    } catch (err) {
      if (isMissing(err)) return latest === undefined ? null : 0
      throw err
    }
  }

  /**
   * Uploads under way in the bucket (in-progress multipart uploads under the
   * prefix): what start-up recovery compares with the table. Finished objects are
   * not listed: that would read the whole bucket on every start.
   */
  async list (): Promise<Array<{ id: string; modifiedAt: Date }>> {
    const found: Array<{ id: string; modifiedAt: Date }> = []
    let KeyMarker: string | undefined
    let UploadIdMarker: string | undefined
    for (;;) {
      const page = await this.client.send(new this.sdk.ListMultipartUploadsCommand({ Bucket: this.settings.bucket, Prefix: this.settings.prefix, KeyMarker, UploadIdMarker }))
      for (const upload of page.Uploads ?? []) {
        const id = (upload.Key ?? '').slice(this.settings.prefix.length)
        if (id === '' || id.includes('/')) continue
        found.push({ id, modifiedAt: upload.Initiated ?? new Date(0) })
      }
      if (page.IsTruncated !== true) return found
      KeyMarker = page.NextKeyMarker
      UploadIdMarker = page.NextUploadIdMarker
    }
  }

  /** Everything of the upload goes: its versions, multipart uploads (also ones no version recorded), tails, object. */
  async remove (id: string): Promise<void> {
    const versions = await this.states.removeAll(id)
    await this.abortMultipartUploads(id, new Set(versions.map((v) => v.multipartId).filter((m): m is string => m !== null)))
    await this.deleteTails(id)
    await this.deleteObject(this.key(id))
  }

  /** Abort `known` multipart uploads of the upload's key and every other one in progress there (also those no state names). */
  private async abortMultipartUploads (id: string, known: Set<string>): Promise<void> {
    const key = this.key(id)
    const listed = await this.client.send(new this.sdk.ListMultipartUploadsCommand({ Bucket: this.settings.bucket, Prefix: key }))
    for (const upload of listed.Uploads ?? []) if (upload.Key === key && upload.UploadId !== undefined) known.add(upload.UploadId)
    for (const UploadId of known) {
      try {
        await this.client.send(new this.sdk.AbortMultipartUploadCommand({ Bucket: this.settings.bucket, Key: key, UploadId }))
      } catch (err) {
        if (!isMissing(err)) throw err
      }
    }
  }

  /** Delete every tail object of an upload (a few at most: the current one, and those of writes that died). */
  private async deleteTails (id: string): Promise<void> {
    const tails = await this.client.send(new this.sdk.ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: `${this.tailPrefix}${id}/` }))
    for (const tail of tails.Contents ?? []) await this.deleteObject(tail.Key!)
  }

  /**
   * Joins finished partial uploads into the object of `targetId`. Server-side
   * (UploadPartCopy, no byte through this process) when every part but the last
   * is at least S3's minimum part size; otherwise the parts are read back and
   * written as a new upload of this store's part size.
   */
  async concatenate (targetId: string, partIds: string[], options: { contentType?: string } = {}): Promise<void> {
    const { bucket } = this.settings
    const sizes: number[] = []
    for (const partId of partIds) {
      const head = await this.client.send(new this.sdk.HeadObjectCommand({ Bucket: bucket, Key: this.key(partId) }))
      sizes.push(head.ContentLength ?? 0)
    }
    const total = sizes.reduce((a, b) => a + b, 0)
    // A repeated assembly starts over: whatever an earlier one left goes first.
    await this.remove(targetId)
    await this.create(targetId, options)
    const nonEmpty = partIds.map((id, i) => ({ id, size: sizes[i]! })).filter((p) => p.size > 0)
    const copyable = nonEmpty.length > 0 && nonEmpty.slice(0, -1).every((p) => p.size >= MIN_PART_SIZE)
    if (!copyable) {
      const read = this.read.bind(this)
      const source = (async function * () { for (const p of nonEmpty) yield * (await read(`${p.id}`, true)) as AsyncIterable<Buffer> })()
      const result = await this.write(targetId, 0, source, { length: total })
      if (result.error !== undefined) throw result.error
      await this.finish(targetId, total)
      return
    }
    const key = this.key(targetId)
    const { UploadId } = await this.client.send(new this.sdk.CreateMultipartUploadCommand({
      Bucket: bucket, Key: key, ...(options.contentType === undefined ? {} : { ContentType: options.contentType })
    }))
    await this.states.put(targetId, { offset: 0, multipartId: UploadId!, partCount: 0, tailKey: null, tailSize: 0, contentType: options.contentType ?? null, finished: false })
    const parts: Array<{ PartNumber: number; ETag: string }> = []
    for (const part of nonEmpty) {
      // A part over 5 GiB is copied in ranges of at most that.
      for (let start = 0; start < part.size; start += MAX_PART_SIZE) {
        const end = Math.min(start + MAX_PART_SIZE, part.size) - 1
        const copied = await this.client.send(new this.sdk.UploadPartCopyCommand({
          Bucket: bucket, Key: key, UploadId, PartNumber: parts.length + 1, CopySource: this.copySource(this.key(part.id)),
          ...(start === 0 && end === part.size - 1 ? {} : { CopySourceRange: `bytes=${start}-${end}` })
        }))
        parts.push({ PartNumber: parts.length + 1, ETag: copied.CopyPartResult!.ETag! })
      }
    }
    await this.client.send(new this.sdk.CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }))
    await this.states.put(targetId, { offset: total, multipartId: null, partCount: 0, tailKey: null, tailSize: 0, contentType: options.contentType ?? null, finished: true })
    await this.states.keepOnly(targetId, total)
  }

  /** A stored object's bytes (`key`, or an upload's finished object with `isId`). */
  private async read (key: string, isId = false): Promise<Readable> {
    const res = await this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.settings.bucket, Key: isId ? this.key(key) : key }))
    return res.Body as Readable
  }

  private copySource (key: string): string {
    return `${this.settings.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`
  }

  /** Versions that will not be used again: their tails go (unless `kept` still uses one). */
  private async discard (dropped: ObjectState[], kept: Pick<ObjectState, 'tailKey'>): Promise<void> {
    for (const version of dropped) {
      if (version.tailKey !== null && version.tailKey !== kept.tailKey) await this.deleteObject(version.tailKey)
    }
  }

  private async deleteObject (Key: string): Promise<void> {
    try {
      await this.client.send(new this.sdk.DeleteObjectCommand({ Bucket: this.settings.bucket, Key }))
    } catch (err) {
      if (!isMissing(err)) throw err
    }
  }
}

/** What `s3` in the plugin options resolves to. */
export interface S3Options {
  bucket: string
  prefix: string
  endpoint?: string
  region?: string
  partSize: number
  /** Passed to the S3Client as they are (credentials, maxAttempts, requestHandler...). */
  clientOptions?: Record<string, unknown>
}

/** Loads the AWS SDK (only now: users on disk never need it) and builds the store. */
export async function openS3Store (options: S3Options, states: ObjectStates): Promise<S3Store> {
  let sdk: Sdk
  try {
    sdk = await import('@aws-sdk/client-s3')
  } catch (err) {
    throw new Error(`fastify-tus: option s3 needs the package @aws-sdk/client-s3 (npm install @aws-sdk/client-s3): ${(err as Error).message}`)
  }
  const client = new sdk.S3Client({
    region: options.region ?? process.env.AWS_REGION ?? 'us-east-1',
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint, forcePathStyle: true }),
    // The SDK's default CRC32 checksums send stream bodies aws-chunked, which Swift,
    // some MinIO versions, B2 and others refuse; S3 checks Content-MD5-less bodies by length.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...options.clientOptions
  })
  const store = new S3Store(sdk, client, states, { bucket: options.bucket, prefix: options.prefix, partSize: options.partSize })
  await store.init()
  return store
}
