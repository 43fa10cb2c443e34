/**
 * The body on its way to the store: counted against a byte limit and hashed
 * while it streams, so a checksum never needs the chunk re-read or buffered.
 */
import { createHash, timingSafeEqual, type Hash } from 'node:crypto'
import type { Readable } from 'node:stream'
import type { ChecksumHeader } from './headers.js'
import { TusError } from './errors.js'

/** The request body itself failed: the client went away or sent less than it announced. */
export class BodyReadError extends Error {
  constructor (override readonly cause: unknown) {
    super('request body ended early')
    this.name = 'BodyReadError'
  }
}

export interface MeteredBody {
  source: AsyncIterable<Buffer>
  /** True when the whole body matched the Upload-Checksum (or none was sent). */
  checksumMatches(): boolean
  /** Stop reading: the source ends with `err` after the chunks already received, as if the client had gone away. */
  cut(err: unknown): void
}

/** When the body last delivered bytes (telling a slow writer from a dead one), and how many so far (progress). */
export interface BodyActivity { last: number; received: number }

const closedEarly = (): BodyReadError => new BodyReadError(new Error('request closed before its body ended'))

/**
 * The request's chunks as an async iterator that reads the request in paused
 * mode: a chunk is taken (read()) only when the consumer asks for one, so
 * while the store is busy the next chunk waits in the request's own buffer
 * (which stops the socket once it holds its high-water mark). Measured against
 * the stream's own iterator wrapped in an async generator: one promise per chunk
 * instead of three. Against the earlier version driven by 'data' events, which
 * kept a read-ahead queue of its own beside the request's buffer: each chunk
 * passes through one holder fewer (request buffer, store queue, write in flight)
 * and so lives for one write less; with 64 uploads at once fewer chunks outlive
 * a young-generation GC, and peak RSS fell (figures in the README's Performance
 * notes). Chunks that arrived before the body failed are still delivered before
 * the failure (Node keeps a request's buffered bytes readable after its client
 * went away), and stopping early (return) leaves the request paused, not
 * destroyed: the reply still has to go out on its socket.
 */
class BodyChunks implements AsyncIterableIterator<Buffer> {
  private ended = false
  private failure: { err: unknown } | undefined
  /** The request failed (its client went away): what it had buffered is still delivered first. */
  private draining = false
  /** Listeners are attached once, at the first next(); after an end or a failure they stay off. */
  private started = false
  private listening = false
  private stopped = false
  private waiter: { resolve: (r: IteratorResult<Buffer>) => void; reject: (err: unknown) => void } | undefined
  private seen = 0

  constructor (
    private readonly stream: NodeJS.ReadableStream & Partial<Pick<Readable, 'readableEnded' | 'destroyed'>>,
    private readonly limit: number,
    private readonly limitReason: string,
    private readonly hash: Hash | undefined,
    private readonly activity: BodyActivity | undefined
  ) {}

  [Symbol.asyncIterator] (): this { return this }

  next (): Promise<IteratorResult<Buffer>> {
    if (!this.started && !this.stopped) this.listen()
    const chunk = this.take()
    if (chunk !== undefined) return Promise.resolve({ value: chunk, done: false })
    if (this.failure !== undefined) {
      this.stop()
      return Promise.reject(this.failure.err)
    }
    if (this.ended || this.stopped) return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve, reject) => { this.waiter = { resolve, reject } })
  }

  return (): Promise<IteratorResult<Buffer>> {
    this.stop()
    return Promise.resolve({ value: undefined, done: true })
  }

  /** The next buffered chunk, counted, limited and hashed; undefined when none is buffered (or the limit was just broken). */
  private take (): Buffer | undefined {
    if (this.stopped || (this.failure !== undefined ? !this.draining : !this.listening)) return undefined
    const chunk = this.stream.read() as Buffer | null
    if (chunk === null) return undefined
    if (this.activity !== undefined) {
      this.activity.last = Date.now()
      this.activity.received += chunk.length
    }
    this.seen += chunk.length
    if (this.seen > this.limit) {
      // The rule wins over a client that went away meanwhile: nothing of this body is kept.
      this.draining = false
      this.failure = undefined
      this.fail(new TusError(413, this.limitReason))
      return undefined
    }
    this.hash?.update(chunk)
    return chunk
  }

  private readonly onReadable = (): void => {
    if (this.waiter === undefined) return
    const chunk = this.take()
    if (chunk !== undefined) this.wake({ value: chunk, done: false })
  }

  private readonly onEnd = (): void => {
    this.ended = true
    this.unlisten()
    this.wake({ value: undefined, done: true })
  }

  private readonly onError = (err: unknown): void => { this.failReading(new BodyReadError(err)) }
  private readonly onClose = (): void => {
    if (!this.ended) this.failReading(closedEarly())
  }

  /** The request itself failed: chunks it still holds are delivered before the failure. */
  private failReading (err: BodyReadError): void {
    if (this.failure !== undefined || this.ended) return
    this.draining = true
    this.fail(err)
  }

  /** Stop reading and end with `err` (after the chunk being written). */
  cut (err: unknown): void {
    this.fail(err)
  }

  private fail (err: unknown): void {
    if (this.failure !== undefined || this.ended) return
    this.failure = { err }
    this.unlisten()
    if (this.waiter === undefined) return
    // A chunk the request still holds goes first (draining); the failure comes at the next call.
    const chunk = this.take()
    if (chunk !== undefined) this.wake({ value: chunk, done: false })
    else this.wake(undefined, this.failure.err)
  }

  /** Settles the consumer's pending next(), if any: with `result`, or rejected with `err`. */
  private wake (result: IteratorResult<Buffer> | undefined, err?: unknown): void {
    const waiter = this.waiter
    if (waiter === undefined) return
    this.waiter = undefined
    if (result === undefined) waiter.reject(err)
    else waiter.resolve(result)
  }

  private listen (): void {
    this.started = true
    this.listening = true
    const { stream } = this
    if (stream.readableEnded === true) { this.ended = true; return }
    if (stream.destroyed === true) { this.fail(closedEarly()); return }
    // A 'readable' listener puts the request in paused mode: nothing is read until take().
    stream.on('readable', this.onReadable)
    stream.on('end', this.onEnd)
    stream.on('error', this.onError)
    stream.on('close', this.onClose)
  }

  private unlisten (): void {
    if (!this.listening) return
    this.listening = false
    const { stream } = this
    stream.removeListener('readable', this.onReadable)
    stream.removeListener('end', this.onEnd)
    stream.removeListener('error', this.onError)
    stream.removeListener('close', this.onClose)
  }

  /** The consumer is done: no more reading, nothing held. */
  private stop (): void {
    if (this.stopped) return
    this.stopped = true
    this.unlisten()
  }
}

export function meterBody (
  body: NodeJS.ReadableStream,
  limit: number,
  limitReason: string,
  checksum: ChecksumHeader | undefined,
  activity?: BodyActivity
): MeteredBody {
  const hash: Hash | undefined = checksum === undefined ? undefined : createHash(checksum.algorithm)
  const source = new BodyChunks(body, limit, limitReason, hash, activity)
  return {
    source,
    cut: (err) => source.cut(err),
    checksumMatches: () => {
      if (checksum === undefined || hash === undefined) return true
      const digest = hash.digest()
      return digest.length === checksum.digest.length && timingSafeEqual(digest, checksum.digest)
    }
  }
}
