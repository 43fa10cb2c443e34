/**
 * The body on its way to the store: counted against a byte limit and hashed
 * while it streams, so a checksum never needs the chunk re-read or buffered.
 */
import { createHash, timingSafeEqual, type Hash } from 'node:crypto'
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
}

/** When the body last delivered bytes, for telling a slow writer from a dead one. */
export interface BodyActivity { last: number }

export function meterBody (
  body: NodeJS.ReadableStream & { iterator?: (options: { destroyOnReturn: boolean }) => AsyncIterable<Buffer> },
  limit: number,
  limitReason: string,
  checksum: ChecksumHeader | undefined,
  activity?: BodyActivity
): MeteredBody {
  const hash: Hash | undefined = checksum === undefined ? undefined : createHash(checksum.algorithm)
  // Stopping early must not destroy the request: the reply still has to go out on its socket.
  const chunks = typeof body.iterator === 'function' ? body.iterator({ destroyOnReturn: false }) : body as AsyncIterable<Buffer>
  async function * source (): AsyncIterable<Buffer> {
    let seen = 0
    const iterator = chunks[Symbol.asyncIterator]()
    while (true) {
      let next: IteratorResult<Buffer>
      try {
        next = await iterator.next()
      } catch (err) {
        throw new BodyReadError(err)
      }
      if (next.done === true) return
      const chunk = next.value
      if (activity !== undefined) activity.last = Date.now()
      seen += chunk.length
      if (seen > limit) throw new TusError(413, limitReason)
      hash?.update(chunk)
      yield chunk
    }
  }
  return {
    source: source(),
    checksumMatches: () => {
      if (checksum === undefined || hash === undefined) return true
      const digest = hash.digest()
      return digest.length === checksum.digest.length && timingSafeEqual(digest, checksum.digest)
    }
  }
}
