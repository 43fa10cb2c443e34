/**
 * What an upload reads from: a file path, a Buffer or a stream, behind one
 * interface that hands out one chunk at a time. Memory is bounded by the chunk
 * size: a file is read with positional reads into one reused buffer, a stream
 * is buffered up to one chunk (plus the one piece the stream last produced).
 */
import { createHash } from 'node:crypto'
import { open, type FileHandle } from 'node:fs/promises'
import { resolve } from 'node:path'
import { TusClientError } from './errors.js'

/** A file path, bytes in memory, or a stream of unknown length (a Node Readable or any async iterable of bytes). */
export type UploadSource = string | Buffer | Uint8Array | AsyncIterable<Buffer | Uint8Array | string>

export interface ChunkSource {
  /** Total length in bytes, or null while unknown (a stream that has not ended). */
  readonly size: number | null
  /**
   * Up to `length` bytes starting at `offset`; fewer only at the end. The
   * answer is a view into a reused buffer, valid until the next read.
   */
  read (offset: number, length: number): Promise<Buffer>
  /** Identifies the content across processes (no stream has one), without the endpoint. */
  readonly identity: string | null
  /** A source over the bytes [start, end) of this one, sharing its file; for parallel uploads. */
  slice (start: number, end: number): ChunkSource
  close (): Promise<void>
}

export async function openSource (source: UploadSource, chunkSize: number): Promise<ChunkSource> {
  if (typeof source === 'string') return FileSource.open(source, chunkSize)
  if (Buffer.isBuffer(source)) return new BufferSource(source)
  if (source instanceof Uint8Array) return new BufferSource(Buffer.from(source.buffer, source.byteOffset, source.byteLength))
  if (source !== null && typeof source === 'object' && typeof (source as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    return new StreamSource(source, chunkSize)
  }
  throw new TypeError('fastify-tus client: an upload source must be a file path, a Buffer or a readable stream')
}

/** The fingerprint a URL storage files an upload under: the content's identity plus the endpoint. */
export function fingerprint (identity: string, endpoint: string): string {
  return createHash('sha256').update(identity).update('\0').update(endpoint).digest('hex')
}

class FileSource implements ChunkSource {
  readonly size: number
  readonly identity: string
  #buffer: Buffer | undefined

  private constructor (
    readonly path: string,
    readonly handle: FileHandle,
    readonly start: number,
    size: number,
    identity: string,
    readonly chunkSize: number,
    readonly ownsHandle: boolean
  ) {
    this.size = size
    this.identity = identity
  }

  static async open (path: string, chunkSize: number): Promise<FileSource> {
    const absolute = resolve(path)
    const handle = await open(absolute, 'r')
    try {
      const stat = await handle.stat()
      if (!stat.isFile()) throw new TusClientError(`${absolute} is not a regular file`, { code: 'ERR_TUS_SOURCE' })
      // Same path, size and modification time: taken to be the same content, without reading it.
      const identity = `file\0${absolute}\0${stat.size}\0${stat.mtimeMs}`
      return new FileSource(absolute, handle, 0, stat.size, identity, chunkSize, true)
    } catch (err) {
      await handle.close()
      throw err
    }
  }

  async read (offset: number, length: number): Promise<Buffer> {
    const wanted = Math.max(0, Math.min(length, this.size - offset))
    if (wanted === 0) return Buffer.alloc(0)
    if (this.#buffer === undefined || this.#buffer.length < wanted) {
      this.#buffer = Buffer.allocUnsafe(Math.min(this.chunkSize, Math.max(wanted, this.size)))
    }
    const buffer = this.#buffer
    let filled = 0
    // Each pass reads at least one byte or stops, so this ends.
    while (filled < wanted) {
      const { bytesRead } = await this.handle.read(buffer, filled, wanted - filled, this.start + offset + filled)
      if (bytesRead === 0) throw new TusClientError(`${this.path} became shorter while it was being uploaded`, { code: 'ERR_TUS_SOURCE' })
      filled += bytesRead
    }
    return buffer.subarray(0, filled)
  }

  slice (start: number, end: number): ChunkSource {
    return new FileSource(this.path, this.handle, this.start + start, end - start, `${this.identity}\0${start}-${end}`, this.chunkSize, false)
  }

  async close (): Promise<void> {
    this.#buffer = undefined
    if (this.ownsHandle) await this.handle.close()
  }
}

class BufferSource implements ChunkSource {
  readonly size: number
  #identity: string | undefined

  constructor (readonly bytes: Buffer) {
    this.size = bytes.length
  }

  /** The content's hash, computed once and only when a URL storage asks for it. */
  get identity (): string {
    this.#identity ??= 'buffer\0' + createHash('sha256').update(this.bytes).digest('hex')
    return this.#identity
  }

  async read (offset: number, length: number): Promise<Buffer> {
    return this.bytes.subarray(offset, offset + length)
  }

  slice (start: number, end: number): ChunkSource {
    return new BufferSource(this.bytes.subarray(start, end))
  }

  async close (): Promise<void> {}
}

/**
 * A stream can only move forward, so it keeps one chunk-sized window: the
 * bytes from the last offset the server confirmed (or was asked for). Reading
 * at an offset inside the window (a retry, a resume after a cut connection)
 * works; reading before it cannot.
 */
class StreamSource implements ChunkSource {
  readonly identity = null
  #size: number | null = null
  readonly #iterator: AsyncIterator<Buffer | Uint8Array | string>
  readonly #buffer: Buffer
  /** Stream position of #buffer[0]. */
  #start = 0
  #filled = 0
  /** Part of a piece the stream produced that did not fit in the window yet. */
  #pending: Buffer | null = null
  #ended = false

  constructor (stream: AsyncIterable<Buffer | Uint8Array | string>, readonly chunkSize: number) {
    this.#iterator = stream[Symbol.asyncIterator]()
    this.#buffer = Buffer.allocUnsafe(chunkSize)
  }

  get size (): number | null {
    return this.#size
  }

  async read (offset: number, length: number): Promise<Buffer> {
    const wanted = Math.min(length, this.chunkSize)
    if (offset < this.#start || offset > this.#start + this.#filled) {
      throw new TusClientError(`cannot read a stream at offset ${offset}: only bytes ${this.#start} to ${this.#start + this.#filled} are buffered (a stream cannot be rewound)`, { code: 'ERR_TUS_SOURCE' })
    }
    const skip = offset - this.#start
    if (skip > 0) {
      this.#buffer.copy(this.#buffer, 0, skip, this.#filled)
      this.#filled -= skip
      this.#start = offset
    }
    while (this.#filled < wanted) {
      const piece = await this.#nextPiece()
      if (piece === null) break
      const taken = piece.copy(this.#buffer, this.#filled, 0, wanted - this.#filled)
      this.#filled += taken
      this.#pending = taken < piece.length ? piece.subarray(taken) : null
    }
    // Look one piece ahead, so the chunk that ends the stream is known to be the last one.
    if (this.#filled === wanted && this.#pending === null && !this.#ended) this.#pending = await this.#nextPiece()
    if (this.#ended && this.#pending === null) this.#size = this.#start + this.#filled
    return this.#buffer.subarray(0, Math.min(this.#filled, wanted))
  }

  async #nextPiece (): Promise<Buffer | null> {
    if (this.#pending !== null) {
      const piece = this.#pending
      this.#pending = null
      return piece
    }
    // Empty pieces are skipped; a stream of only empty pieces still ends.
    while (!this.#ended) {
      const next = await this.#iterator.next()
      if (next.done === true) {
        this.#ended = true
        break
      }
      const value = next.value
      const piece = typeof value === 'string' ? Buffer.from(value) : Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
      if (piece.length > 0) return piece
    }
    return null
  }

  slice (): ChunkSource {
    throw new TusClientError('a stream of unknown length cannot be split into parallel uploads', { code: 'ERR_TUS_SOURCE' })
  }

  async close (): Promise<void> {
    // Ending the iteration early destroys a Node stream, which releases what it holds.
    if (!this.#ended) await this.#iterator.return?.()
  }
}
