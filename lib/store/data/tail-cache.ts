/**
 * The tails this process wrote, kept in memory so that the next write of the
 * same upload does not read its tail back from the bucket: a client sending
 * PATCHes that are not a multiple of the part size (5 MiB PATCHes, 8 MiB
 * parts) otherwise has every PATCH wait for a GET of up to a part's worth of
 * bytes before its first part can start.
 *
 * Correct without any invalidation: a tail's key is new for every write that
 * stores one (it ends in random bytes) and a tail object is never rewritten,
 * so the bytes under a key are the bytes in the bucket under it. Another
 * instance writing the upload stores a tail under a key of its own, which is
 * simply not here; an entry no state names any more waits to be evicted.
 *
 * Bounded per cache (one per store), not per upload: bytes are claimed before
 * a write starts collecting them (a claim that does not fit evicts the least
 * recently used entries, and is refused if the claims in progress alone would
 * not fit), so at most `limit` bytes are held, whatever the number of uploads.
 */
export class TailCache {
  private readonly entries = new Map<string, Buffer>()
  /** Bytes of the entries. */
  private cached = 0
  /** Bytes of the claims in progress (collecting a tail that is being stored). */
  private claimed = 0

  constructor (readonly limit: number) {}

  /** A tail's bytes, if this process stored it (and kept it); a hit makes it the most recently used. */
  get (key: string): Buffer | undefined {
    const bytes = this.entries.get(key)
    if (bytes !== undefined) {
      this.entries.delete(key)
      this.entries.set(key, bytes)
    }
    return bytes
  }

  /**
   * Room for a tail of `size` bytes about to be stored, or undefined when it
   * cannot be had (the write then simply does not keep its tail). Entries go,
   * least recently used first, only for a claim that then fits.
   */
  claim (size: number): TailClaim | undefined {
    if (size <= 0 || this.claimed + size > this.limit) return undefined
    for (const key of this.entries.keys()) {
      if (this.claimed + this.cached + size <= this.limit) break
      this.drop(key)
    }
    this.claimed += size
    let open = true
    const claim: TailClaim = {
      bytes: Buffer.allocUnsafe(size),
      keep: (key) => {
        if (!open) return
        open = false
        this.claimed -= size
        this.cached += size
        this.entries.set(key, claim.bytes)
      },
      release: () => {
        if (!open) return
        open = false
        this.claimed -= size
      }
    }
    return claim
  }

  /** Forget a tail (consumed into a part, or deleted). */
  drop (key: string): void {
    const bytes = this.entries.get(key)
    if (bytes === undefined) return
    this.entries.delete(key)
    this.cached -= bytes.length
  }
}

export interface TailClaim {
  /** Where the tail's bytes are collected while they stream to the bucket. */
  readonly bytes: Buffer
  /** The bucket acknowledged the tail under `key`: keep `bytes` for it. */
  keep: (key: string) => void
  /** The tail was not stored (or not wholly collected): give the room back. */
  release: () => void
}
