/**
 * Where the protocol tests' servers keep their bytes: in `uploadDir` (the
 * default), or under a key prefix of their own in object storage:
 *
 * - TUS_TEST_STORE=s3: a bucket on the S3 server at TUS_TEST_S3_ENDPOINT
 *   (test/s3-pass.mjs runs the protocol files that way). The bucket is
 *   TUS_TEST_S3_BUCKET when set (s3-pass makes one for the whole pass), else
 *   one per test file, made at its first server and removed at its end: on
 *   Swift a new bucket's first requests are slow (hundreds of ms to seconds
 *   under load), a new prefix costs nothing.
 * - TUS_TEST_STORE=azure: a container on Azure Blob Storage
 *   (TUS_TEST_AZURE_CONNECTION_STRING, else an Azurite started for the test
 *   process: helpers/azure.ts; test/azure-pass.mjs runs the protocol files
 *   that way, on one Azurite). The container is TUS_TEST_AZURE_CONTAINER when
 *   set, else one per test file.
 *
 * Each server's prefix is emptied (objects and unfinished parts) after it
 * closed. Both stores are the same core (lib/store/data/object-store.ts) and
 * lay an upload out the same way, which the helpers in tus.ts and tus-js.ts
 * check byte for byte through this module:
 *
 * - a finished upload is the object `<prefix><id>` (S3 object, Azure committed
 *   block blob), and nothing else of it is left (no tail, no unfinished parts);
 * - an unfinished one has no object: its bytes are full parts on that key (S3:
 *   the parts of a multipart upload; Azure: uncommitted blocks of the blob,
 *   block ids `<16 hex digits of the set><6-digit part number>` in base64),
 *   not readable before the upload is finished, and a tail, the bytes after
 *   the last full part, in an object under `<prefix>.tus/<id>/` named
 *   `<end>-<random>`. Below one part, the tail is every byte so far, so the
 *   bytes of an unfinished upload are read from it; past one part, what can be
 *   checked is checked: the part count and sizes and the tail.
 *
 * The differences between the services stay in a small view per backend
 * (list objects and unfinished parts under a prefix, read, size and put an
 * object, sizes of the parts, a counted client for the server). The client
 * of every server started here counts the body bytes of its requests as they
 * are sent (S3: a wrapped request handler; Azure: a wrapped HTTP client), so
 * a test can wait for the bytes of a body still streaming to reach storage,
 * as it waits for them to reach the file on disk.
 */
import { Readable, Transform } from 'node:stream'
import type { NodeHttpHandler as SdkHandler } from '@smithy/node-http-handler'
import type { HttpOperationResponse, IHttpClient, WebResource } from '@azure/storage-blob'
import type { Test } from 'tap'
import type { TusPluginOptions } from '../../lib/index.js'

interface Teardown { teardown(fn: () => unknown): void }

/** An object store the tests run on. */
export type ObjectBackend = 's3' | 'azure'

const chosen = process.env.TUS_TEST_STORE ?? ''
if (!['', 'disk', 's3', 'azure'].includes(chosen)) throw new Error(`TUS_TEST_STORE must be disk, s3 or azure, not ${JSON.stringify(chosen)}`)

/** The store the protocol tests run on. */
export const STORE: 'disk' | ObjectBackend = chosen === 's3' || chosen === 'azure' ? chosen : 'disk'
if (STORE === 's3' && (process.env.TUS_TEST_S3_ENDPOINT ?? '') === '') {
  throw new Error('TUS_TEST_STORE=s3 needs TUS_TEST_S3_ENDPOINT (e.g. http://127.0.0.1:9000, from ../shared/s3/start-s3.sh)')
}
/**
 * True when the servers startServer() starts keep their bytes in object
 * storage (S3 or Azure), whose intended differences from disk the tests
 * assert instead: a chunked body is answered 411, a cut part is not kept, an
 * unfinished upload's full parts cannot be read.
 */
export const ON_OBJECTS = STORE !== 'disk'
/** The object store's name for messages ('S3', 'Azure'; '' on disk). */
export const OBJECT_STORE = STORE === 's3' ? 'S3' : STORE === 'azure' ? 'Azure' : ''

/** One request a server's store sent to object storage: its target and how many body bytes have gone out. */
export interface StoreRequest {
  method: string
  /** The object key (blob name) it addressed; '' for requests on the bucket itself. */
  key: string
  /** Query parameters (S3: partNumber, uploadId; Azure: comp, blockid). */
  query: Record<string, string>
  /** The part number when it stores a part sent from this process (S3 UploadPart, Azure Put Block). */
  part?: number
  /** Body bytes sent so far. */
  sent: number
  /** The response arrived (or the request failed). */
  done: boolean
}

export interface ObjectLocation {
  backend: ObjectBackend
  /** The S3 bucket or the Azure container. */
  bucket: string
  /** Key prefix ('' or ending with '/'). */
  prefix: string
  /** Size of every part but the last (S3 partSize, Azure blockSize). */
  partSize: number
  /** Most parts of one upload (S3: 10,000 parts; Azure: 50,000 blocks): the largest upload is this many parts of partSize. */
  maxParts: number
  /** Requests the server's client sent (for servers startServer() put on object storage). */
  requests?: StoreRequest[]
}

/** Where a test server keeps the bytes: `uploadDir`, or object storage when `objects` is set. */
export interface Storage {
  uploadDir: string
  objects?: ObjectLocation
}

/** The uploadDir of every server startServer() put on object storage: reading bytes there by directory is a mistake. */
export const OBJECT_UPLOAD_DIRS = new Set<string>()

/** The key of an upload's finished object (and of its unfinished parts). */
export const objectKey = (loc: ObjectLocation, id: string): string => loc.prefix + id
/** The key prefix of an upload's tail objects. */
export const tailPrefix = (loc: ObjectLocation, id: string): string => `${loc.prefix}.tus/${id}/`

const MIN_PART_SIZE = 5 << 20
const DEFAULT_PART_SIZE = 8 << 20

/** Unfinished parts on a key: S3's multipart upload (its UploadId); on Azure a blob's uncommitted blocks (uploadId: the set's 16 hex digits, when known). */
export interface InProgress {
  key: string
  uploadId?: string
}

/** Everything under a prefix: object keys, and the keys with unfinished parts. */
export interface Contents {
  objects: string[]
  uploads: InProgress[]
}

/** What differs between S3 and Azure, for the helpers below. */
interface BucketView {
  /** Words for messages. */
  holder: string
  object: string
  part: string
  /** What unfinished parts on a key are called. */
  pending: string
  maxParts: number
  list(bucket: string, prefix: string): Promise<Contents>
  /** Unfinished parts on one key, one entry per set (S3: multipart upload; Azure: block-id set), also when the key has a finished object. */
  uploadsOn(bucket: string, key: string, listed: Contents): Promise<InProgress[]>
  /** Part sizes of one set of unfinished parts, in part-number order. */
  partSizes(bucket: string, upload: InProgress): Promise<number[]>
  read(bucket: string, key: string): Promise<Buffer | null>
  /** An object's size, or null when there is none. */
  size(bucket: string, key: string): Promise<number | null>
  put(bucket: string, key: string, body: Buffer | string): Promise<void>
  /** Removes all of it. */
  remove(bucket: string, contents: Contents): Array<() => Promise<unknown>>
  /** The bucket of this test file's servers. */
  shared(): Promise<string>
  /** The plugin option for a server at `prefix`, with a client that records its requests in `requests`. */
  option(bucket: string, prefix: string, partSize: number, requests: StoreRequest[]): Promise<Pick<TusPluginOptions, 's3' | 'azure'>>
}

/* ---------------------------------- S3 ---------------------------------- */

let s3Bucket: Promise<string> | undefined

const s3View: BucketView = {
  holder: 'bucket',
  object: 'object',
  part: 'part',
  pending: 'multipart upload',
  maxParts: 10_000,

  async list (bucket, prefix) {
    const { s3: client } = await import('./s3.js')
    const { ListObjectsV2Command, ListMultipartUploadsCommand } = await import('@aws-sdk/client-s3')
    const objects: string[] = []
    let ContinuationToken: string | undefined
    do {
      const page = await client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken }))
      for (const o of page.Contents ?? []) objects.push(o.Key!)
      ContinuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (ContinuationToken !== undefined)
    const uploads: InProgress[] = []
    let KeyMarker: string | undefined
    let UploadIdMarker: string | undefined
    for (;;) {
      const page = await client().send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker, UploadIdMarker }))
      for (const u of page.Uploads ?? []) uploads.push({ key: u.Key!, uploadId: u.UploadId! })
      if (page.IsTruncated !== true) break
      KeyMarker = page.NextKeyMarker
      UploadIdMarker = page.NextUploadIdMarker
    }
    return { objects: objects.sort(), uploads }
  },

  async uploadsOn (_bucket, key, listed) {
    return listed.uploads.filter((u) => u.key === key)
  },

  async partSizes (bucket, upload) {
    const { s3: client } = await import('./s3.js')
    const { ListPartsCommand } = await import('@aws-sdk/client-s3')
    const sizes: Array<[number, number]> = []
    let PartNumberMarker: string | undefined
    for (;;) {
      const page = await client().send(new ListPartsCommand({ Bucket: bucket, Key: upload.key, UploadId: upload.uploadId, PartNumberMarker }))
      for (const p of page.Parts ?? []) sizes.push([p.PartNumber ?? 0, p.Size ?? 0])
      if (page.IsTruncated !== true) break
      PartNumberMarker = page.NextPartNumberMarker
    }
    return sizes.sort((a, b) => a[0] - b[0]).map(([, size]) => size)
  },

  async read (bucket, key) {
    const { readObject } = await import('./s3.js')
    return readObject(bucket, key)
  },

  async size (bucket, key) {
    const { s3: client } = await import('./s3.js')
    const { HeadObjectCommand } = await import('@aws-sdk/client-s3')
    try {
      return (await client().send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentLength ?? 0
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } }
      if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return null
      throw err
    }
  },

  async put (bucket, key, body) {
    const { s3: client } = await import('./s3.js')
    const { PutObjectCommand } = await import('@aws-sdk/client-s3')
    await client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }))
  },

  remove (bucket, { objects, uploads }) {
    return [
      ...uploads.map((u) => async () => {
        const { s3: client } = await import('./s3.js')
        const { AbortMultipartUploadCommand } = await import('@aws-sdk/client-s3')
        return client().send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }))
      }),
      ...objects.map((key) => async () => {
        const { s3: client } = await import('./s3.js')
        const { DeleteObjectCommand } = await import('@aws-sdk/client-s3')
        return client().send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))
      })
    ]
  },

  async shared () {
    const given = process.env.TUS_TEST_S3_BUCKET
    if (given !== undefined && given !== '') return given
    s3Bucket ??= (async () => {
      const { default: root } = await import('tap')
      const { testBucket, s3: client } = await import('./s3.js')
      const { CreateMultipartUploadCommand, AbortMultipartUploadCommand } = await import('@aws-sdk/client-s3')
      const bucket = await testBucket(root)
      // Swift makes a bucket's segments container at its first multipart upload, and two first
      // ones at once can fail (NoSuchBucket): one goes first, alone.
      const { UploadId } = await client().send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: '.prime' }))
      await client().send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: '.prime', UploadId }))
      return bucket
    })()
    return s3Bucket
  },

  async option (bucket, prefix, partSize, requests) {
    const { s3Options } = await import('./s3.js')
    const { NodeHttpHandler } = await import('@smithy/node-http-handler')

    /** The SDK's own handler; every request body is counted on its way out, nothing else changes. */
    class CountingHandler extends NodeHttpHandler {
      override async handle (request: Parameters<SdkHandler['handle']>[0], options?: Parameters<SdkHandler['handle']>[1]): ReturnType<SdkHandler['handle']> {
        const path = request.path.startsWith(`/${bucket}/`) ? request.path.slice(bucket.length + 2) : ''
        const query: Record<string, string> = {}
        for (const [name, value] of Object.entries(request.query ?? {})) if (typeof value === 'string') query[name] = value
        // UploadPartCopy copies a range inside the bucket: no part body is sent from here.
        const part = query.partNumber !== undefined && query['x-id'] !== 'UploadPartCopy' ? Number(query.partNumber) : undefined
        const seen: StoreRequest = { method: request.method, key: path.split('/').map(decodeURIComponent).join('/'), query, part, sent: 0, done: false }
        requests.push(seen)
        const body: unknown = request.body
        if (body instanceof Readable) {
          const counter = new Transform({ transform (chunk: Buffer, _encoding, callback) { seen.sent += chunk.length; callback(null, chunk) } })
          // A plain pipe, as the SDK's handler does with the body: no error listener is added, so a
          // body that fails behaves as it would without the counting (nothing here handles its error).
          body.pipe(counter)
          request.body = counter
        } else if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
          seen.sent = body.byteLength
        } else if (typeof body === 'string') {
          seen.sent = Buffer.byteLength(body)
        }
        try {
          return await super.handle(request, options)
        } finally {
          seen.done = true
        }
      }
    }

    return { s3: s3Options(bucket, { prefix, partSize, clientOptions: { requestHandler: new CountingHandler() } }) }
  }
}

/* --------------------------------- Azure --------------------------------- */

let azureContainer: Promise<string> | undefined

/** A block id of the plugin's, decoded: the set's 16 hex digits and the part number; undefined for any other id. */
function decodeBlockId (id: string): { set: string; part: number } | undefined {
  const plain = /^([0-9a-f]{16})(\d{6})$/.exec(Buffer.from(id, 'base64').toString('latin1'))
  return plain === null ? undefined : { set: plain[1]!, part: Number(plain[2]) }
}

async function uncommitted (container: string, key: string): Promise<Array<{ set: string; part: number; size: number }>> {
  const { uncommittedBlocks } = await import('./azure.js')
  return (await uncommittedBlocks(container, key)).map((b) => ({ ...(decodeBlockId(b.name) ?? { set: `(foreign id ${b.name})`, part: 0 }), size: b.size }))
}

/**
 * An HTTP client for the Azure SDK (its `httpClient` pipeline option) that
 * sends every request with the SDK's default client and records it in
 * `requests`, counting its body bytes as they go out (the default client's
 * upload progress, which it reports for any kind of body). The SDK hands a
 * custom client its request in the older WebResource shape: it is turned back
 * into a pipeline request, and the response answers the SDK's own request
 * object, which the SDK needs to parse the response.
 */
async function countingHttpClient (container: string, requests: StoreRequest[]): Promise<IHttpClient> {
  const { createDefaultHttpClient, createHttpHeaders, createPipelineRequest } = await import('@azure/core-rest-pipeline')
  const { toHttpHeadersLike } = await import('@azure/core-http-compat')
  const inner = createDefaultHttpClient()
  return {
    async sendRequest (web: WebResource): Promise<HttpOperationResponse> {
      const url = new URL(web.url)
      const segments = url.pathname.split('/')
      const at = segments.indexOf(container)
      const query = Object.fromEntries(url.searchParams)
      const block = web.method === 'PUT' && query.comp === 'block' && query.blockid !== undefined ? decodeBlockId(query.blockid) : undefined
      const seen: StoreRequest = {
        method: web.method,
        key: at < 0 ? '' : segments.slice(at + 1).map(decodeURIComponent).join('/'),
        query,
        part: block?.part,
        sent: 0,
        done: false
      }
      requests.push(seen)
      const progress = web.onUploadProgress
      const request = createPipelineRequest({
        url: web.url,
        method: web.method,
        headers: createHttpHeaders(web.headers.toJson({ preserveCase: true })),
        withCredentials: web.withCredentials,
        timeout: web.timeout,
        requestId: web.requestId,
        abortSignal: web.abortSignal,
        body: web.body as Parameters<typeof createPipelineRequest>[0]['body'],
        formData: web.formData,
        // (WebResource's keepAlive carries the pipeline request's disableKeepAlive.)
        disableKeepAlive: web.keepAlive === true,
        onDownloadProgress: web.onDownloadProgress,
        onUploadProgress: (event) => { seen.sent = event.loadedBytes; progress?.(event) },
        proxySettings: web.proxySettings,
        streamResponseStatusCodes: web.streamResponseStatusCodes,
        agent: web.agent,
        // The SDK allowed it already (the endpoint is the connection string's); not carried by WebResource.
        allowInsecureConnection: url.protocol === 'http:'
      })
      try {
        const response = await inner.sendRequest(request)
        return { ...response, request: web, headers: toHttpHeadersLike(response.headers) } as unknown as HttpOperationResponse
      } finally {
        seen.done = true
      }
    }
  }
}

const azureView: BucketView = {
  holder: 'container',
  object: 'blob',
  part: 'block',
  pending: 'blob of uncommitted blocks',
  maxParts: 50_000,

  async list (container, prefix) {
    const { containerContents } = await import('./azure.js')
    const { blobs, uncommitted } = await containerContents(container, prefix)
    return { objects: blobs, uploads: uncommitted.map((key) => ({ key })) }
  },

  async uploadsOn (container, key, listed) {
    if (!listed.objects.includes(key) && !listed.uploads.some((u) => u.key === key)) return []
    const sets = [...new Set((await uncommitted(container, key)).map((b) => b.set))]
    return sets.map((set) => ({ key, uploadId: set }))
  },

  async partSizes (container, upload) {
    const blocks = (await uncommitted(container, upload.key)).filter((b) => upload.uploadId === undefined || b.set === upload.uploadId)
    return blocks.sort((a, b) => a.part - b.part).map((b) => b.size)
  },

  async read (container, key) {
    const { readBlob } = await import('./azure.js')
    return readBlob(container, key)
  },

  async size (container, key) {
    const { blobService } = await import('./azure.js')
    try {
      return (await blobService().getContainerClient(container).getBlockBlobClient(key).getProperties()).contentLength ?? 0
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null
      throw err
    }
  },

  async put (container, key, body) {
    const { putBlob } = await import('./azure.js')
    await putBlob(container, key, body)
  },

  remove (container, { objects, uploads }) {
    return [
      // A blob with only uncommitted blocks goes as the plugin removes one: committed empty, then deleted.
      ...uploads.filter((u) => !objects.includes(u.key)).map((u) => async () => {
        const { blobService } = await import('./azure.js')
        const blob = blobService().getContainerClient(container).getBlockBlobClient(u.key)
        await blob.commitBlockList([])
        return blob.deleteIfExists()
      }),
      ...objects.map((key) => async () => {
        const { blobService } = await import('./azure.js')
        return blobService().getContainerClient(container).getBlockBlobClient(key).deleteIfExists()
      })
    ]
  },

  async shared () {
    const { azuriteOrSkip, testContainer } = await import('./azure.js')
    await azuriteOrSkip({ plan: () => { throw new Error('TUS_TEST_STORE=azure needs the azurite package (npm install) or TUS_TEST_AZURE_CONNECTION_STRING') } })
    const given = process.env.TUS_TEST_AZURE_CONTAINER
    if (given !== undefined && given !== '') return given
    const { default: root } = await import('tap')
    azureContainer ??= testContainer(root)
    return azureContainer
  },

  async option (container, prefix, partSize, requests) {
    const { azureOptions } = await import('./azure.js')
    const httpClient = await countingHttpClient(container, requests)
    return { azure: azureOptions(container, { prefix, blockSize: partSize, clientOptions: { httpClient } }) }
  }
}

const VIEWS: Record<ObjectBackend, BucketView> = { s3: s3View, azure: azureView }

/* ------------------------------- the helpers ------------------------------- */

/** Where a server started with its own `s3` or `azure` option keeps its bytes (undefined: neither). */
export function objectLocation (options: TusPluginOptions): ObjectLocation | undefined {
  if (options.s3 !== undefined) {
    return { backend: 's3', bucket: options.s3.bucket, prefix: options.s3.prefix ?? '', partSize: options.s3.partSize ?? DEFAULT_PART_SIZE, maxParts: s3View.maxParts }
  }
  if (options.azure !== undefined) {
    return { backend: 'azure', bucket: options.azure.container, prefix: options.azure.prefix ?? '', partSize: options.azure.blockSize ?? DEFAULT_PART_SIZE, maxParts: azureView.maxParts }
  }
  return undefined
}

let servers = 0

/** Everything under a prefix goes: unfinished parts dropped, objects deleted. */
async function emptyPrefix (loc: ObjectLocation): Promise<void> {
  const view = VIEWS[loc.backend]
  const jobs = view.remove(loc.bucket, await view.list(loc.bucket, loc.prefix))
  // Eight at a time: a test that made fifty uploads leaves fifty objects.
  const worker = async (): Promise<void> => { for (let job = jobs.shift(); job !== undefined; job = jobs.shift()) await job().catch(() => {}) }
  await Promise.all(Array.from({ length: 8 }, worker))
}

/**
 * The `s3` or `azure` option (TUS_TEST_STORE) for a server startServer()
 * starts on object storage: the file's bucket or container, a key prefix of
 * the server's own, emptied at teardown (registered here, so before the
 * server's close: teardowns run last-registered first), and a client whose
 * requests are counted.
 */
export async function testObjectStorage (t: Teardown): Promise<{ option: Pick<TusPluginOptions, 's3' | 'azure'>; location: ObjectLocation }> {
  if (STORE === 'disk') throw new Error('testObjectStorage: TUS_TEST_STORE is not s3 or azure')
  const view = VIEWS[STORE]
  const bucket = await view.shared()
  const prefix = `t${process.pid}-${++servers}-${Math.random().toString(36).slice(2, 8)}/`
  const requests: StoreRequest[] = []
  const location: ObjectLocation = { backend: STORE, bucket, prefix, partSize: MIN_PART_SIZE, maxParts: view.maxParts, requests }
  t.teardown(async () => emptyPrefix(location))
  return { option: await view.option(bucket, prefix, MIN_PART_SIZE, requests), location }
}

/** What the bucket holds of one upload. */
export interface Holdings {
  /** The finished object's key, when there is one. */
  object: string | null
  /** Tail objects: key and the offset their write ended at (from the key, `<end>-<random>`). */
  tails: Array<{ key: string; end: number }>
  /** Unfinished parts on the upload's key, one entry per set (S3 multipart upload, Azure block-id set). */
  uploads: InProgress[]
}

export async function holdings (loc: ObjectLocation, id: string): Promise<Holdings> {
  const view = VIEWS[loc.backend]
  const contents = await view.list(loc.bucket, loc.prefix)
  const key = objectKey(loc, id)
  const tails = contents.objects.filter((k) => k.startsWith(tailPrefix(loc, id))).map((k) => {
    const end = /^(\d+)-/.exec(k.slice(tailPrefix(loc, id).length))?.[1]
    return { key: k, end: end === undefined ? -1 : Number(end) }
  })
  return {
    object: contents.objects.includes(key) ? key : null,
    tails,
    uploads: await view.uploadsOn(loc.bucket, key, contents)
  }
}

/** Everything the server has in its bucket or container (under its prefix): object keys, and keys with unfinished parts. */
export async function everything (loc: ObjectLocation): Promise<Contents> {
  return VIEWS[loc.backend].list(loc.bucket, loc.prefix)
}

async function read (loc: ObjectLocation, key: string): Promise<Buffer> {
  const bytes = await VIEWS[loc.backend].read(loc.bucket, key)
  if (bytes === null) throw new Error(`${loc.backend}://${loc.bucket}/${key} vanished while it was read`)
  return bytes
}

/** Sizes of one set of unfinished parts (an entry of Holdings.uploads), in part-number order. */
export async function partSizes (loc: ObjectLocation, upload: InProgress): Promise<number[]> {
  return VIEWS[loc.backend].partSizes(loc.bucket, upload)
}

/** An object's size, or -1 when there is none. */
export async function objectSize (loc: ObjectLocation, key: string): Promise<number> {
  return await VIEWS[loc.backend].size(loc.bucket, key) ?? -1
}

/** The write request for `id` still sending its body, if there is one: a tail upload, or a part sent from this process. */
function writeInFlight (loc: ObjectLocation, id: string): StoreRequest | undefined {
  return loc.requests?.filter((r) => !r.done && r.method === 'PUT' &&
    (r.key.startsWith(tailPrefix(loc, id)) || (r.key === objectKey(loc, id) && (r.part !== undefined || wholeUpload(r))))).at(-1)
}

/**
 * A body that completes a fresh upload below one part goes straight to the
 * upload's object (one request): that PUT carries every byte so far. A copy to
 * the key (S3 CopyObject, which sends no body) is not such a write.
 */
function wholeUpload (r: StoreRequest): boolean {
  return r.part === undefined && r.query['x-id'] !== 'CopyObject' && r.query.comp === undefined
}

/**
 * The bytes stored for an upload: the finished object; else, below one part,
 * the newest tail (every byte so far); null when nothing of it is stored.
 * Throws when the bytes are partly in unfinished parts, which cannot be read
 * back before the upload is finished.
 */
export async function objectStored (loc: ObjectLocation, id: string): Promise<Buffer | null> {
  const held = await holdings(loc, id)
  if (held.object !== null) return read(loc, held.object)
  if (held.uploads.length > 0) throw new Error(`upload ${id} is unfinished with full parts (${VIEWS[loc.backend].pending}): its bytes cannot be read from the ${VIEWS[loc.backend].holder}`)
  const newest = held.tails.sort((a, b) => b.end - a.end)[0]
  return newest === undefined ? null : read(loc, newest.key)
}

/**
 * How many bytes of an upload reached storage, counting a body still being
 * sent (the analogue of the file's size while it is written): the bytes of the
 * full parts and of the tail or part in progress; the finished object's size;
 * -1 when nothing of it is stored. (On Azure the tail's copy into the last
 * block at the finish is a part sent from here: while it goes, the count is
 * the parts plus what of the copy went out.)
 */
export async function objectStoredSize (loc: ObjectLocation, id: string): Promise<number> {
  let held: Holdings
  let partBytes: number
  let writing: StoreRequest | undefined
  // Listing takes a while: when the write in flight changed meanwhile (a part was stored, the next
  // request began), the listing may be from before it, so it is taken again.
  for (let attempt = 1; ; attempt++) {
    const before = writeInFlight(loc, id)
    held = await holdings(loc, id)
    const parts = held.uploads.length === 0 ? [] : await partSizes(loc, held.uploads.at(-1)!)
    partBytes = parts.reduce((a, b) => a + b, 0)
    writing = writeInFlight(loc, id)
    if (writing === before || attempt === 3) break
  }
  if (writing !== undefined) {
    // Parts are numbered from 1, every one before the part in flight exactly partSize long.
    return writing.part === undefined ? partBytes + writing.sent : (writing.part - 1) * loc.partSize + writing.sent
  }
  if (held.object !== null) return objectSize(loc, held.object)
  const newest = held.tails.sort((a, b) => b.end - a.end)[0]
  if (newest === undefined) return held.uploads.length === 0 ? -1 : partBytes
  return partBytes + (await read(loc, newest.key)).length
}

/** What a tap test offers that the assertions use. */
type Assert = Pick<Test, 'equal' | 'ok' | 'same'>

/**
 * Object storage holds exactly `expected` for an upload at offset
 * `expected.length`: finished, the object is byte-exact and nothing else of the
 * upload is left; unfinished, there is no object, one set of unfinished parts
 * has the full parts (each of the part size) and a tail holds exactly the bytes
 * after them.
 */
export async function assertObjectStored (t: Assert, loc: ObjectLocation, id: string, expected: Buffer, finished: boolean, prefix: string): Promise<void> {
  const view = VIEWS[loc.backend]
  const held = await holdings(loc, id)
  if (finished) {
    t.ok(held.object !== null, `${prefix}the ${view.object} ${objectKey(loc, id)} exists`)
    const bytes = held.object === null ? null : await read(loc, held.object)
    t.equal(bytes?.length, expected.length, `${prefix}stored ${view.object} has ${expected.length} bytes`)
    t.ok(bytes !== null && bytes.equals(expected), `${prefix}stored ${view.object} bytes equal the source`)
    t.same(held.tails.map((x) => x.key), [], `${prefix}no tail ${view.object} left`)
    t.same(held.uploads, [], `${prefix}no ${view.pending} left`)
    return
  }
  t.equal(held.object, null, `${prefix}no ${view.object} before the upload is finished`)
  const fullParts = Math.floor(expected.length / loc.partSize)
  const tail = expected.subarray(fullParts * loc.partSize)
  if (fullParts > 0) {
    t.equal(held.uploads.length, 1, `${prefix}one ${view.pending} holds the full ${view.part}s`)
    const sizes = held.uploads.length === 0 ? [] : await partSizes(loc, held.uploads[0]!)
    t.same(sizes.slice(0, fullParts), Array.from({ length: fullParts }, () => loc.partSize), `${prefix}${fullParts} full ${view.part}(s) of ${loc.partSize} bytes`)
  }
  t.same(held.tails.filter((x) => x.end > expected.length || x.end < 0).map((x) => x.key), [], `${prefix}no tail of bytes past offset ${expected.length}`)
  if (tail.length === 0) {
    t.same(held.tails.filter((x) => x.end === expected.length).map((x) => x.key), [], `${prefix}no tail at offset ${expected.length}`)
    return
  }
  let found = false
  for (const candidate of held.tails.filter((x) => x.end === expected.length)) {
    if ((await read(loc, candidate.key)).equals(tail)) found = true
  }
  t.ok(found, `${prefix}a tail at offset ${expected.length} holds exactly its last ${tail.length} bytes (tails: ${held.tails.map((x) => x.key).join(', ') || 'none'})`)
}

/** Nothing of any upload is in object storage (under the server's prefix): no object, no unfinished parts. */
export async function assertObjectsEmpty (t: Assert, loc: ObjectLocation, prefix: string): Promise<void> {
  const view = VIEWS[loc.backend]
  const contents = await everything(loc)
  t.same(contents.objects, [], `${prefix}no ${view.object} in the ${view.holder} (under ${loc.prefix})`)
  t.same(contents.uploads, [], `${prefix}no ${view.pending} in the ${view.holder}`)
}

/** Writes an object straight into the bucket or container (not through the server). */
export async function putObject (loc: ObjectLocation, key: string, body: Buffer | string): Promise<void> {
  await VIEWS[loc.backend].put(loc.bucket, key, body)
}

/** An object's bytes straight from the bucket or container, or null when there is none. */
export async function readKey (loc: ObjectLocation, key: string): Promise<Buffer | null> {
  return VIEWS[loc.backend].read(loc.bucket, key)
}
