/**
 * What the object-store core (object-store.ts) needs from a kind of object
 * storage: whole objects by key, and one way to build an object from numbered
 * parts that are not readable until they are put together (S3's multipart
 * uploads, Azure's uncommitted blocks). One implementation per service
 * (s3-bucket.ts, azure-bucket.ts); the core knows nothing of either.
 *
 * "Parts" here are always numbered 1…n; `partsId` names one set of them on a
 * key (S3's UploadId; on Azure a prefix of the block ids), and a part's tag is
 * what completing needs of it (S3's ETag, Azure's block id).
 */
import type { Readable } from 'node:stream'

export interface ByteRange {
  /** First byte, inclusive. */
  start: number
  /** Last byte, inclusive. */
  end: number
}

export interface PartTag {
  partNumber: number
  tag: string
}

export interface ObjectBucket {
  /** The name metrics and logs give this kind of storage ('s3', 'azure'). */
  readonly kind: string
  /** Fails, with the service's reason, when the bucket or container cannot be reached. */
  check(): Promise<void>

  /** An object's size, or null when there is none. */
  size(key: string): Promise<number | null>
  /** An object's bytes (a range of them), streamed. */
  read(key: string, range?: ByteRange): Promise<Readable>
  /** Store an object of `length` bytes from a stream (or a buffer). */
  put(key: string, body: Readable | Buffer, length: number, options?: { contentType?: string; signal?: AbortSignal }): Promise<void>
  /** Copy the object `from` (of `size` bytes) to `to`. */
  copy(from: string, to: string, size: number, options?: { contentType?: string }): Promise<void>
  /** Delete an object; one that is not there is not an error. */
  delete(key: string): Promise<void>
  /** Keys of the objects whose key starts with `prefix`. */
  list(prefix: string): Promise<string[]>

  /** Start a set of parts on `key`; answers its id. */
  startParts(key: string, options?: { contentType?: string }): Promise<string>
  /** Store part `partNumber` of `length` bytes from a stream. */
  putPart(key: string, partsId: string, partNumber: number, body: Readable, length: number, signal: AbortSignal): Promise<PartTag>
  /** Store part `partNumber` as a range of an existing object. */
  copyPart(key: string, partsId: string, partNumber: number, from: string, range: ByteRange): Promise<PartTag>
  /** Put the parts together as the object at `key` (they are gone as parts then). */
  completeParts(key: string, partsId: string, parts: PartTag[], options?: { contentType?: string }): Promise<void>
  /**
   * Drop the parts of `known` sets on `key`, and of any other set in progress
   * there (a write that died before recording its set). A finished object at
   * `key` stays.
   */
  abortParts(key: string, known: Set<string>): Promise<void>
  /** Keys under `prefix` with parts in progress, for start-up recovery; [] where the service cannot tell without listing everything. */
  inProgress(prefix: string): Promise<Array<{ key: string; startedAt: Date }>>

  /**
   * Whether objects of these sizes (in order) can be joined by copyPart, one
   * part per range of at most `maxCopyRange`, without any byte through this
   * process; when false, concatenation reads them back and writes them again.
   */
  copiesParts(sizes: number[]): boolean
  /** The largest range one copyPart may copy. */
  readonly maxCopyRange: number
}

/** The error of a storage request that found nothing at its key. */
export function isMissing (err: unknown): boolean {
  const e = err as { name?: string; code?: string; statusCode?: number; $metadata?: { httpStatusCode?: number } }
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.name === 'NoSuchUpload' || e?.code === 'BlobNotFound' ||
    e?.statusCode === 404 || e?.$metadata?.httpStatusCode === 404
}
