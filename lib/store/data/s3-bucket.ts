/**
 * S3-compatible object storage (AWS S3, Ceph RGW, Swift, MinIO, R2, B2, GCS's
 * XML API) for the object-store core: parts are a multipart upload on the
 * object's key; a tail joins the finished object and concatenation joins
 * uploads by UploadPartCopy, without any byte through this process.
 */
import type { Readable } from 'node:stream'
import type * as S3 from '@aws-sdk/client-s3'
import type { ObjectStates } from '../meta/object-states.js'
import { isMissing, type ByteRange, type ObjectBucket, type PartTag } from './object-bucket.js'
import { ObjectStore } from './object-store.js'

/** S3's smallest part but the last (AWS, Swift, MinIO, RGW). */
export const MIN_PART_SIZE = 5 << 20
/** S3's largest part, and the largest range one UploadPartCopy may copy. */
export const MAX_PART_SIZE = 5 * 1024 ** 3
/** S3's most parts in one multipart upload. */
export const MAX_PARTS = 10_000

type Sdk = typeof S3

export class S3Bucket implements ObjectBucket {
  readonly kind = 's3'
  readonly maxCopyRange = MAX_PART_SIZE
  /** The service refused UploadPartCopy as not implemented: ranges are streamed instead. */
  private partCopyUnsupported = false

  constructor (private readonly sdk: Sdk, private readonly client: S3.S3Client, readonly name: string) {}

  async check (): Promise<void> {
    await this.client.send(new this.sdk.HeadBucketCommand({ Bucket: this.name }))
  }

  async size (Key: string): Promise<number | null> {
    try {
      const head = await this.client.send(new this.sdk.HeadObjectCommand({ Bucket: this.name, Key }))
      return head.ContentLength ?? 0
    } catch (err) {
      if (isMissing(err)) return null
      throw err
    }
  }

  async read (Key: string, range?: ByteRange): Promise<Readable> {
    const res = await this.client.send(new this.sdk.GetObjectCommand({
      Bucket: this.name, Key, ...(range === undefined ? {} : { Range: `bytes=${range.start}-${range.end}` })
    }))
    return res.Body as Readable
  }

  async put (Key: string, Body: Readable | Buffer, length: number, options: { contentType?: string; signal?: AbortSignal } = {}): Promise<void> {
    await this.client.send(new this.sdk.PutObjectCommand({
      Bucket: this.name, Key, Body, ContentLength: length, ...(options.contentType === undefined ? {} : { ContentType: options.contentType })
    }), options.signal === undefined ? {} : { abortSignal: options.signal })
  }

  async copy (from: string, Key: string, _size: number, options: { contentType?: string } = {}): Promise<void> {
    await this.client.send(new this.sdk.CopyObjectCommand({
      Bucket: this.name, Key, CopySource: this.copySource(from), MetadataDirective: 'REPLACE',
      ...(options.contentType === undefined ? {} : { ContentType: options.contentType })
    }))
  }

  async delete (Key: string): Promise<void> {
    try {
      await this.client.send(new this.sdk.DeleteObjectCommand({ Bucket: this.name, Key }))
    } catch (err) {
      if (!isMissing(err)) throw err
    }
  }

  async list (Prefix: string): Promise<string[]> {
    const keys: string[] = []
    let ContinuationToken: string | undefined
    do {
      const page = await this.client.send(new this.sdk.ListObjectsV2Command({ Bucket: this.name, Prefix, ContinuationToken }))
      for (const o of page.Contents ?? []) keys.push(o.Key!)
      ContinuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (ContinuationToken !== undefined)
    return keys
  }

  async startParts (Key: string, options: { contentType?: string } = {}): Promise<string> {
    const created = await this.client.send(new this.sdk.CreateMultipartUploadCommand({
      Bucket: this.name, Key, ...(options.contentType === undefined ? {} : { ContentType: options.contentType })
    }))
    return created.UploadId!
  }

  async putPart (Key: string, UploadId: string, PartNumber: number, Body: Readable, length: number, abortSignal: AbortSignal): Promise<PartTag> {
    const { ETag } = await this.client.send(new this.sdk.UploadPartCommand({
      Bucket: this.name, Key, UploadId, PartNumber, Body, ContentLength: length
    }), { abortSignal })
    return { partNumber: PartNumber, tag: ETag! }
  }

  /**
   * UploadPartCopy; on a service that answers it NotImplemented (some
   * S3-compatible APIs lack it), the range is streamed through this process
   * instead, from then on.
   */
  async copyPart (Key: string, UploadId: string, PartNumber: number, from: string, range: ByteRange): Promise<PartTag> {
    if (!this.partCopyUnsupported) {
      try {
        const copied = await this.client.send(new this.sdk.UploadPartCopyCommand({
          Bucket: this.name, Key, UploadId, PartNumber, CopySource: this.copySource(from), CopySourceRange: `bytes=${range.start}-${range.end}`
        }))
        return { partNumber: PartNumber, tag: copied.CopyPartResult!.ETag! }
      } catch (err) {
        const e = err as { name?: string; $metadata?: { httpStatusCode?: number } }
        if (e?.name !== 'NotImplemented' && e?.$metadata?.httpStatusCode !== 501) throw err
        this.partCopyUnsupported = true
      }
    }
    return this.putPart(Key, UploadId, PartNumber, await this.read(from, range), range.end - range.start + 1, new AbortController().signal)
  }

  async completeParts (Key: string, UploadId: string, parts: PartTag[]): Promise<void> {
    await this.client.send(new this.sdk.CompleteMultipartUploadCommand({
      Bucket: this.name, Key, UploadId, MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.tag })) }
    }))
  }

  async abortParts (Key: string, known: Set<string>): Promise<void> {
    const ids = new Set(known)
    const listed = await this.client.send(new this.sdk.ListMultipartUploadsCommand({ Bucket: this.name, Prefix: Key }))
    for (const upload of listed.Uploads ?? []) if (upload.Key === Key && upload.UploadId !== undefined) ids.add(upload.UploadId)
    for (const UploadId of ids) {
      try {
        await this.client.send(new this.sdk.AbortMultipartUploadCommand({ Bucket: this.name, Key, UploadId }))
      } catch (err) {
        if (!isMissing(err)) throw err
      }
    }
  }

  async inProgress (Prefix: string): Promise<Array<{ key: string; startedAt: Date }>> {
    const found: Array<{ key: string; startedAt: Date }> = []
    let KeyMarker: string | undefined
    let UploadIdMarker: string | undefined
    for (;;) {
      const page = await this.client.send(new this.sdk.ListMultipartUploadsCommand({ Bucket: this.name, Prefix, KeyMarker, UploadIdMarker }))
      for (const upload of page.Uploads ?? []) found.push({ key: upload.Key ?? '', startedAt: upload.Initiated ?? new Date(0) })
      if (page.IsTruncated !== true) return found
      KeyMarker = page.NextKeyMarker
      UploadIdMarker = page.NextUploadIdMarker
    }
  }

  /** Every part but the last must be at least S3's minimum part size. */
  copiesParts (sizes: number[]): boolean {
    return !this.partCopyUnsupported && sizes.slice(0, -1).every((size) => size >= MIN_PART_SIZE)
  }

  private copySource (key: string): string {
    return `${this.name}/${key.split('/').map(encodeURIComponent).join('/')}`
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
export async function openS3Store (options: S3Options, states: ObjectStates): Promise<ObjectStore> {
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
  const store = new ObjectStore(new S3Bucket(sdk, client, options.bucket), states, { prefix: options.prefix, partSize: options.partSize })
  await store.init()
  return store
}
