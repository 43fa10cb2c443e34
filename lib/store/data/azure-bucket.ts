/**
 * Azure Blob Storage for the object-store core: an upload's parts are blocks
 * staged (uncommitted) on its block blob, committed as its block list when it
 * is finished; the list itself lives in our table (tus_object_parts), so normal
 * operation never asks the service for it.
 *
 * Differences from S3 that shape this module:
 * - Blocks of one blob share one namespace, not one per "multipart upload":
 *   a set of parts is a random prefix of the block ids, and the ids of one
 *   blob must all have the same length (16 hex digits + 6-digit number).
 * - Uncommitted blocks cannot be dropped one set at a time: committing a block
 *   list drops every other uncommitted block of the blob, and a blob with only
 *   uncommitted blocks is removed by committing an empty list and deleting it.
 *   Blocks nobody commits are dropped by the service after 7 days.
 * - Nothing lists blobs that have only uncommitted blocks without listing every
 *   blob, so start-up recovery gets no list here (inProgress answers []).
 * - Copying a block from another blob (Put Block From URL) needs a SAS for the
 *   source and is not implemented by Azurite, so tails and concatenation are
 *   copied through this process, streamed (at most one part at a time).
 */
import { randomBytes } from 'node:crypto'
import type { Readable } from 'node:stream'
import type * as AzureBlob from '@azure/storage-blob'
import type { ObjectStates } from '../meta/object-states.js'
import { isMissing, type ByteRange, type ObjectBucket, type PartTag } from './object-bucket.js'
import { ObjectStore } from './object-store.js'

/** Azure's most committed blocks in one block blob. */
export const MAX_BLOCKS = 50_000
/** Azure's largest block (service version 2019-12-12 and later). */
export const MAX_BLOCK_SIZE = 4000 * 1024 * 1024

type Sdk = typeof AzureBlob

/** A block id: the set's 16 hex digits and the part number, base64 as the service wants it. */
const blockId = (partsId: string, partNumber: number): string => Buffer.from(`${partsId}${String(partNumber).padStart(6, '0')}`).toString('base64')

export class AzureBucket implements ObjectBucket {
  readonly kind = 'azure'
  readonly maxCopyRange = MAX_BLOCK_SIZE

  /**
   * `container` for requests the SDK may retry; `streaming` (no retries) for
   * those whose body is a stream, which cannot be sent twice.
   */
  constructor (private readonly container: AzureBlob.ContainerClient, private readonly streaming: AzureBlob.ContainerClient) {}

  async check (): Promise<void> {
    await this.container.getProperties()
  }

  async size (key: string): Promise<number | null> {
    try {
      return (await this.container.getBlockBlobClient(key).getProperties()).contentLength ?? 0
    } catch (err) {
      if (isMissing(err)) return null
      throw err
    }
  }

  async read (key: string, range?: ByteRange): Promise<Readable> {
    const res = await this.container.getBlockBlobClient(key).download(range?.start ?? 0, range === undefined ? undefined : range.end - range.start + 1)
    return res.readableStreamBody as Readable
  }

  async put (key: string, body: Readable | Buffer, length: number, options: { contentType?: string; signal?: AbortSignal } = {}): Promise<void> {
    await this.streaming.getBlockBlobClient(key).upload(body, length, {
      ...(options.contentType === undefined ? {} : { blobHTTPHeaders: { blobContentType: options.contentType } }),
      ...(options.signal === undefined ? {} : { abortSignal: options.signal })
    })
  }

  async copy (from: string, to: string, size: number, options: { contentType?: string } = {}): Promise<void> {
    await this.put(to, await this.read(from), size, options)
  }

  async delete (key: string): Promise<void> {
    await this.container.getBlockBlobClient(key).deleteIfExists()
  }

  async list (prefix: string): Promise<string[]> {
    const names: string[] = []
    for await (const blob of this.container.listBlobsFlat({ prefix })) names.push(blob.name)
    return names
  }

  async startParts (): Promise<string> {
    return randomBytes(8).toString('hex')
  }

  async putPart (key: string, partsId: string, partNumber: number, body: Readable, length: number, abortSignal: AbortSignal): Promise<PartTag> {
    const tag = blockId(partsId, partNumber)
    await this.streaming.getBlockBlobClient(key).stageBlock(tag, body, length, { abortSignal })
    return { partNumber, tag }
  }

  async copyPart (key: string, partsId: string, partNumber: number, from: string, range: ByteRange): Promise<PartTag> {
    return this.putPart(key, partsId, partNumber, await this.read(from, range), range.end - range.start + 1, new AbortController().signal)
  }

  async completeParts (key: string, _partsId: string, parts: PartTag[], options: { contentType?: string } = {}): Promise<void> {
    await this.container.getBlockBlobClient(key).commitBlockList(parts.map((p) => p.tag), {
      ...(options.contentType === undefined ? {} : { blobHTTPHeaders: { blobContentType: options.contentType } })
    })
  }

  /**
   * A committed blob keeps no uncommitted blocks worth dropping (its commit
   * dropped them). A blob that has only uncommitted blocks is committed empty
   * and deleted, which drops them all, whichever set they belong to.
   */
  async abortParts (key: string): Promise<void> {
    const blob = this.container.getBlockBlobClient(key)
    let uncommitted: number
    try {
      const list = await blob.getBlockList('all')
      if ((list.committedBlocks ?? []).length > 0) return
      uncommitted = (list.uncommittedBlocks ?? []).length
    } catch (err) {
      if (isMissing(err)) return
      throw err
    }
    if (uncommitted > 0 && await this.size(key) === null) {
      await blob.commitBlockList([])
      await blob.deleteIfExists()
    }
  }

  async inProgress (): Promise<Array<{ key: string; startedAt: Date }>> {
    return []
  }

  copiesParts (): boolean {
    return false
  }
}

/** What `azure` in the plugin options resolves to. */
export interface AzureOptions {
  container: string
  prefix: string
  blockSize: number
  /** A storage connection string (or AZURE_STORAGE_CONNECTION_STRING). */
  connectionString?: string
  /** Or an account URL with a credential (e.g. a DefaultAzureCredential or StorageSharedKeyCredential). */
  url?: string
  credential?: unknown
  /** Passed to the BlobServiceClient as they are (retryOptions, httpClient, ...). */
  clientOptions?: Record<string, unknown>
}

/** Loads the Azure SDK (only now: users on disk or S3 never need it) and builds the store. */
export async function openAzureStore (options: AzureOptions, states: ObjectStates): Promise<ObjectStore> {
  let sdk: Sdk
  try {
    sdk = await import('@azure/storage-blob')
  } catch (err) {
    throw new Error(`fastify-tus: option azure needs the package @azure/storage-blob (npm install @azure/storage-blob): ${(err as Error).message}`)
  }
  const service = (pipeline: Record<string, unknown>): AzureBlob.BlobServiceClient => {
    if (options.url !== undefined) return new sdk.BlobServiceClient(options.url, options.credential as AzureBlob.StorageSharedKeyCredential, pipeline)
    const connectionString = options.connectionString ?? process.env.AZURE_STORAGE_CONNECTION_STRING
    if (connectionString === undefined || connectionString === '') {
      throw new Error('fastify-tus: option azure needs a connection string (azure.connectionString or AZURE_STORAGE_CONNECTION_STRING) or azure.url with azure.credential')
    }
    return sdk.BlobServiceClient.fromConnectionString(connectionString, pipeline)
  }
  const given = options.clientOptions ?? {}
  const container = service(given).getContainerClient(options.container)
  const retryOptions = { ...(given.retryOptions as Record<string, unknown> | undefined), maxTries: 1 }
  const streaming = service({ ...given, retryOptions }).getContainerClient(options.container)
  const store = new ObjectStore(new AzureBucket(container, streaming), states, { prefix: options.prefix, partSize: options.blockSize })
  await store.init()
  return store
}
