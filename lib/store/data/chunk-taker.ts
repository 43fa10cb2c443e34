/**
 * Cuts a request body into the bodies of the requests that carry it to object
 * storage (parts and tails), each of a length known in advance.
 */
import { PassThrough, type Readable } from 'node:stream'

/**
 * Takes exactly `length` bytes off an async iterator of chunks (splitting the
 * chunk that crosses the end, whose rest is kept for the next take) as a
 * Readable for a request body. If the source ends or fails first, the Readable
 * is destroyed, failing the request, and the source's error is kept.
 */
export class ChunkTaker {
  private rest: Buffer | undefined
  /** The source's own error (the client went away, the shutdown cut it), which says more than the failed upload's. */
  failure: unknown
  private readonly iterator: AsyncIterator<Buffer>
  /** Aborts the storage requests that carry the source's bytes, once the source failed. */
  private readonly abort = new AbortController()
  /** Pass to every request whose body comes from take(). */
  readonly abortSignal: AbortSignal = this.abort.signal

  constructor (source: AsyncIterable<Buffer>) {
    this.iterator = source[Symbol.asyncIterator]()
  }

  /**
   * A Readable of the next `length` bytes, after `prefix` (the previous tail) when
   * given, and a promise settled once they are all taken off the source (the
   * next take may start then). With `copy`, every byte of the Readable is also
   * copied there, in order (the tail cache's room for a tail).
   */
  take (length: number, prefix?: Readable | Buffer, copy?: Buffer): { body: Readable; consumed: Promise<void> } {
    const out = new PassThrough({ highWaterMark: 64 << 10 })
    // An SDK pipes the body without listening for its errors: the failure is reported through `consumed` and the aborted request.
    out.on('error', () => {})
    let copied = 0
    const send = async (chunk: Uint8Array): Promise<void> => {
      if (copy !== undefined) {
        copy.set(chunk, copied)
        copied += chunk.length
      }
      if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve))
    }
    const pump = async (): Promise<void> => {
      if (Buffer.isBuffer(prefix)) await send(prefix)
      else if (prefix !== undefined) for await (const chunk of prefix) await send(chunk as Uint8Array)
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
        await send(chunk)
      }
      out.end()
    }
    const consumed = pump().catch((err: unknown) => {
      this.failure ??= err
      out.destroy(err as Error)
      // The storage request would otherwise wait for bytes that never come, holding the upload.
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

