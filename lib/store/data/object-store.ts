/**
 * Bytes in object storage (S3-compatible services, Azure Blob Storage), one
 * core for every kind: what differs between services is behind ObjectBucket
 * (object-bucket.ts). A finished upload is one object at `<prefix><id>`; while
 * it is unfinished its bytes are parts on that key that are not readable yet
 * (S3's multipart upload, Azure's uncommitted blocks), every one exactly
 * `partSize` long, and a tail: the bytes after the last full part, in an
 * object of its own under `<prefix>.tus/<id>/`.
 *
 * What is stored where lives in our database (ObjectStates), one version per
 * offset reached, never in the bucket: no `.info` object, no listing of parts
 * to learn an offset, no HEAD of a tail per request. Every part but the last
 * has the same size (R2 requires it), and a part is uploaded only when it is
 * full, so the part count is ceil(size / partSize) whatever the interruptions
 * (maxSize is checked against the service's part limit).
 *
 * A write streams the request body straight into part and object requests
 * whose length is known (the tail from the previous write first, then the
 * body): memory per upload is a few stream buffers (about 64 KiB per request
 * in flight, two in flight), nothing goes to local disk. The tail comes from
 * the tail cache when this process stored it (tail-cache.ts: at most
 * TAIL_CACHE_BYTES per store, whatever the number of uploads), else it is read
 * back from the bucket. That needs
 * the body's length up front (Content-Length); a chunked body is refused
 * before anything is read (ELENGTHREQUIRED, answered 411).
 *
 * A version is recorded only after storage acknowledged its bytes, so the
 * offset the protocol commits (one of these versions) never runs ahead of
 * them. A body cut off mid-part loses that part's bytes (no service keeps a
 * partial part), back to the last part boundary or tail the write reached.
 */
import { randomBytes } from 'node:crypto'
import { PassThrough, type Readable } from 'node:stream'
import type { CreateOptions, DataStore, WriteOptions, WriteResult } from '../../../types/index.js'
import type { ObjectState, ObjectStates } from '../meta/object-states.js'
import { ChunkTaker } from './chunk-taker.js'
import type { ObjectBucket } from './object-bucket.js'
import { TailCache } from './tail-cache.js'

/**
 * Memory for the tails this process stored, per store. 32 MiB holds the tails
 * of four to eight uploads written in PATCHes that are not a multiple of 8 MiB
 * parts (a tail is under one part, 4 MiB on average): the case it serves is a
 * client's fixed chunk size (tus-js-client's chunkSize, Uppy's) against our part
 * size, where every PATCH but the first otherwise waits for a GET of the tail
 * before its first part can start (256 MiB in 5 MiB PATCHes on the local Swift,
 * 3 rounds: see the README's s3-large-5m row). A tail larger than this, or one
 * that does not fit beside the claims in progress, is simply read back.
 */
export const TAIL_CACHE_BYTES = 32 << 20

export interface ObjectStoreSettings {
  /** Prepended to every key ('' or ending with '/', e.g. 'tus/'). */
  prefix: string
  /** Size of every part but the last. */
  partSize: number
}

/** The error of a write refused because the body's length is not known in advance. */
function lengthRequired (): NodeJS.ErrnoException {
  return Object.assign(new Error('a request body for object storage must announce its length (Content-Length)'), { code: 'ELENGTHREQUIRED' })
}

function lockLost (): NodeJS.ErrnoException {
  return Object.assign(new Error('the upload\'s lock was lost: nothing more is written'), { code: 'ELOCKLOST' })
}

export class ObjectStore implements DataStore {
  /** Bytes are behind a network: start-up recovery does not ask for the size of every finished upload. */
  readonly remote = true
  private readonly tailPrefix: string
  /** Uploads a write stored whole, as their finished object, whose finish is still to come: nothing to clean up for them. */
  private readonly finishedWhole = new Set<string>()
  private readonly tails = new TailCache(TAIL_CACHE_BYTES)

  constructor (
    readonly bucket: ObjectBucket,
    private readonly states: ObjectStates,
    readonly settings: ObjectStoreSettings
  ) {
    this.tailPrefix = `${settings.prefix}.tus/`
  }

  /** The key of an upload's finished object (and of its parts). */
  key (id: string): string {
    return this.settings.prefix + id
  }

  async init (): Promise<void> {
    await this.bucket.check()
  }

  async create (id: string, options: CreateOptions = {}): Promise<void> {
    const exists = (): never => { throw Object.assign(new Error(`upload ${id} exists already`), { code: 'EEXIST' }) }
    // An id chosen by a hook may name an object already in the bucket (a generated one cannot).
    if (options.chosenId === true && await this.bucket.size(this.key(id)) !== null) exists()
    if (!await this.states.create(id, options.contentType ?? null)) exists()
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
      const key = this.key(id)
      if (options.completes === true && state.tailKey === null && state.partCount === 0 && options.length < partSize) {
        // The whole upload in one body below a part: straight to its object, one
        // request (a cut body keeps nothing, as a tail would not).
        if (options.owned?.() === false) throw lockLost()
        const { body } = taker.take(options.length)
        await this.bucket.put(key, body, options.length, { signal: taker.abortSignal, ...(state.contentType === null ? {} : { contentType: state.contentType }) })
        await this.states.put(id, { ...state, offset: offset + options.length, finished: true })
        written = options.length
        this.finishedWhole.add(id)
        return { bytesWritten: written }
      }
      let remaining = options.length
      let checkpointed = 0
      const every = options.checkpoint?.every ?? Infinity
      // Where the next part starts: after the parts so far, with the old tail first.
      let current: ObjectState = state
      let { partCount, tailKey, tailSize, multipartId } = current
      // Parts are recorded in order, each once storage acknowledged it. A part's bytes
      // stream while the part before it is still being acknowledged (two requests in
      // flight per upload): storage finishing a part does not stall the body.
      let recorded: Promise<void> = Promise.resolve()
      try {
        while (tailSize + remaining >= partSize) {
          if (options.owned?.() === false) throw lockLost()
          if (multipartId === null) {
            multipartId = await this.bucket.startParts(key, current.contentType === null ? {} : { contentType: current.contentType })
            current = { ...current, multipartId }
            // Recorded at once on the committed version, so a termination finds it even if no part follows.
            await this.states.put(id, current)
          }
          const fresh = partSize - tailSize
          const { body, consumed } = taker.take(fresh, tailKey === null ? undefined : await this.tail(tailKey))
          const partNumber = ++partCount
          const superseded = tailKey
          const uploaded = this.bucket.putPart(key, multipartId, partNumber, body, partSize, taker.abortSignal)
          uploaded.catch(() => {}) // awaited in order below
          remaining -= fresh
          tailKey = null
          tailSize = 0
          const more = remaining > 0
          const before = recorded
          recorded = before.then(async () => {
            await this.states.putPart(id, await uploaded)
            written += fresh
            current = { ...current, offset: offset + written, partCount: partNumber, tailKey: null, tailSize: 0 }
            await this.states.put(id, current)
            // Its bytes are in a part now: the next write does not start from it (a retry from the old offset reads it back).
            if (superseded !== null) this.tails.drop(superseded)
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
          const claim = this.tails.claim(size)
          try {
            const { body } = taker.take(remaining, tailKey === null ? undefined : await this.tail(tailKey), claim?.bytes)
            await this.bucket.put(newTail, body, size, { signal: taker.abortSignal })
          } catch (err) {
            claim?.release()
            throw err
          }
          // The bucket acknowledged every byte of it, so these are its bytes.
          claim?.keep(newTail)
          await recorded
          written += remaining
          current = { ...current, offset: offset + written, tailKey: newTail, tailSize: size }
          await this.states.put(id, current)
          if (tailKey !== null) this.tails.drop(tailKey)
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
   * key. The tail joins as the last part (copied where the service can, without
   * passing through here); with no full part, the tail is copied to the key.
   * Idempotent: a finish replayed after its process died mid-way completes the
   * clean-up (tails, stray parts) the first one did not get to.
   */
  async finish (id: string, length: number): Promise<void> {
    const state = await this.states.at(id, length)
    if (state === undefined) throw new Error(`upload ${id} has no stored state at its length ${length}`)
    const key = this.key(id)
    if (state.finished && this.finishedWhole.delete(id)) {
      // Written whole by this process just now: no part, no tail, only the version it started from.
      await this.states.keepOnly(id, length)
      return
    }
    if (state.finished) {
      // A finish recorded before its process died, replayed: what it had not
      // cleaned up yet (stray parts, other versions, tails) goes now.
      await this.bucket.abortParts(key, new Set())
    } else {
      const contentType = state.contentType === null ? {} : { contentType: state.contentType }
      if (state.partCount === 0) {
        if (state.tailKey === null) await this.bucket.put(key, Buffer.alloc(0), 0, contentType)
        else await this.bucket.copy(state.tailKey, key, state.tailSize, contentType)
      } else {
        const parts = await this.states.parts(id, state.partCount)
        if (state.tailKey !== null) {
          parts.push(await this.bucket.copyPart(key, state.multipartId!, state.partCount + 1, state.tailKey, { start: 0, end: state.tailSize - 1 }))
        }
        await this.bucket.completeParts(key, state.multipartId!, parts, contentType)
        // Parts a dying write started but never recorded would stay behind: they go.
        await this.bucket.abortParts(key, new Set())
      }
      // The finished object is the truth from here on: one version says so, the rest goes.
      await this.states.put(id, { ...state, multipartId: null, partCount: 0, tailKey: null, tailSize: 0, finished: true })
    }
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
    return lazyStream(async () => this.bucket.read(this.key(id), range))
  }

  async size (id: string): Promise<number | null> {
    const versions = await this.states.all(id)
    const latest = versions.at(-1)
    if (latest !== undefined && !latest.finished) return latest.offset
    const size = await this.bucket.size(this.key(id))
    if (size === null) return latest === undefined ? null : 0
    return size
  }

  /**
   * Uploads under way in the bucket (parts in progress under the prefix): what
   * start-up recovery compares with the table. Finished objects are not listed:
   * that would read the whole bucket on every start.
   */
  async list (): Promise<Array<{ id: string; modifiedAt: Date }>> {
    const found: Array<{ id: string; modifiedAt: Date }> = []
    for (const { key, startedAt } of await this.bucket.inProgress(this.settings.prefix)) {
      const id = key.slice(this.settings.prefix.length)
      if (id === '' || id.includes('/')) continue
      found.push({ id, modifiedAt: startedAt })
    }
    return found
  }

  /** Everything of the upload goes: its versions, parts (also ones no version recorded), tails, object. */
  async remove (id: string): Promise<void> {
    this.finishedWhole.delete(id)
    const versions = await this.states.removeAll(id)
    await this.bucket.abortParts(this.key(id), new Set(versions.map((v) => v.multipartId).filter((m): m is string => m !== null)))
    await this.deleteTails(id)
    await this.bucket.delete(this.key(id))
  }

  /** Delete every tail object of an upload (a few at most: the current one, and those of writes that died). */
  private async deleteTails (id: string): Promise<void> {
    for (const key of await this.bucket.list(`${this.tailPrefix}${id}/`)) {
      this.tails.drop(key)
      await this.bucket.delete(key)
    }
  }

  /** A tail's bytes: kept in memory if this process stored it, else read back. */
  private async tail (key: string): Promise<Buffer | Readable> {
    return this.tails.get(key) ?? await this.bucket.read(key)
  }

  /**
   * Joins finished partial uploads into the object of `targetId`. Server-side
   * (no byte through this process) where the service can copy parts and the
   * parts' sizes allow it; otherwise the parts are read back and written as a
   * new upload of this store's part size.
   */
  async concatenate (targetId: string, partIds: string[], options: { contentType?: string } = {}): Promise<void> {
    const sizes: number[] = []
    for (const partId of partIds) sizes.push(await this.bucket.size(this.key(partId)) ?? 0)
    const total = sizes.reduce((a, b) => a + b, 0)
    // A repeated assembly starts over: whatever an earlier one left goes first.
    await this.remove(targetId)
    await this.create(targetId, options)
    const nonEmpty = partIds.map((id, i) => ({ id, size: sizes[i]! })).filter((p) => p.size > 0)
    if (nonEmpty.length === 0 || !this.bucket.copiesParts(nonEmpty.map((p) => p.size))) {
      const bucket = this.bucket
      const keys = nonEmpty.map((p) => this.key(p.id))
      const source = (async function * () { for (const key of keys) yield * (await bucket.read(key)) as AsyncIterable<Buffer> })()
      const result = await this.write(targetId, 0, source, { length: total })
      if (result.error !== undefined) throw result.error
      await this.finish(targetId, total)
      return
    }
    const key = this.key(targetId)
    const contentType = options.contentType === undefined ? {} : { contentType: options.contentType }
    const partsId = await this.bucket.startParts(key, contentType)
    await this.states.put(targetId, { offset: 0, multipartId: partsId, partCount: 0, tailKey: null, tailSize: 0, contentType: options.contentType ?? null, finished: false })
    const parts = []
    for (const part of nonEmpty) {
      // A part larger than one copy may take is copied in ranges.
      for (let start = 0; start < part.size; start += this.bucket.maxCopyRange) {
        const end = Math.min(start + this.bucket.maxCopyRange, part.size) - 1
        parts.push(await this.bucket.copyPart(key, partsId, parts.length + 1, this.key(part.id), { start, end }))
      }
    }
    await this.bucket.completeParts(key, partsId, parts, contentType)
    await this.states.put(targetId, { offset: total, multipartId: null, partCount: 0, tailKey: null, tailSize: 0, contentType: options.contentType ?? null, finished: true })
    await this.states.keepOnly(targetId, total)
  }

  /** Versions that will not be used again: their tails go (unless `kept` still uses one). */
  private async discard (dropped: ObjectState[], kept: Pick<ObjectState, 'tailKey'>): Promise<void> {
    for (const version of dropped) {
      if (version.tailKey !== null && version.tailKey !== kept.tailKey) {
        this.tails.drop(version.tailKey)
        await this.bucket.delete(version.tailKey)
      }
    }
  }
}

/** A Readable now, for bytes that arrive once `open` answers (a failure to open destroys it with the reason). */
function lazyStream (open: () => Promise<Readable>): Readable {
  const out = new PassThrough()
  open().then((body) => {
    body.on('error', (err) => out.destroy(err))
    body.pipe(out)
    out.on('close', () => { if (!body.destroyed) body.destroy() })
  }, (err: unknown) => out.destroy(err as Error))
  return out
}
