/** Helpers for driving the real tus-js-client against the test server. */
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import * as tus from 'tus-js-client'
import { TUS, send, sha256 } from './http.js'
import { stored } from './tus.js'
import { ON_OBJECTS, holdings, type Storage } from './store.js'

/**
 * How long an upload may take before it counts as hung. On object storage
 * (S3, Azure) every PATCH below a part reads the tail back and writes it
 * longer, so uploads in small chunks move several times their size through
 * the bucket (an 8 MiB upload in 256 KiB chunks about 75 MiB): seconds on a
 * loaded machine.
 */
export const UPLOAD_TIMEOUT = ON_OBJECTS ? 30_000 : 8000

/** What tus-js-client accepts as a source; a Node Readable is accepted at runtime but not typed. */
export type TusSource = ConstructorParameters<typeof tus.Upload>[0]
export type TusOptions = NonNullable<ConstructorParameters<typeof tus.Upload>[1]>

export interface Finished {
  upload: tus.Upload
  /** The absolute URL of the finished upload (the final one for parallel uploads). */
  url: string
  /** The id: the last path segment of the URL. */
  id: string
}

/**
 * Runs one tus-js-client upload to its end: resolves in onSuccess, rejects in
 * onError, and rejects (aborting the upload) after `timeout` ms.
 * `configure` receives the Upload before start(), e.g. to keep a handle for abort().
 */
export function runUpload (source: TusSource, options: TusOptions, timeout = UPLOAD_TIMEOUT, configure?: (upload: tus.Upload) => void): Promise<Finished> {
  return new Promise((resolve, reject) => {
    let settled = false
    const upload = new tus.Upload(source, {
      retryDelays: null,
      ...options,
      onSuccess: (payload) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        options.onSuccess?.(payload)
        const url = upload.url
        if (url === null) { reject(new Error('tus-js-client succeeded without an upload URL')); return }
        resolve({ upload, url, id: idFromUrl(url) })
      },
      onError: (err) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        options.onError?.(err)
        reject(err)
      }
    })
    const timer = setTimeout(() => {
      if (settled) return
      settled = true
      upload.abort().catch(() => {})
      reject(new Error(`tus-js-client upload did not finish within ${timeout} ms`))
    }, timeout)
    configure?.(upload)
    upload.start()
  })
}

/** The error a tus-js-client upload failed with (throws if it succeeded). */
export async function uploadFailure (source: TusSource, options: TusOptions, timeout = UPLOAD_TIMEOUT): Promise<tus.DetailedError> {
  const outcome = await runUpload(source, options, timeout).then(() => undefined, (err: unknown) => err)
  if (outcome === undefined) throw new Error('expected the upload to fail, but it succeeded')
  return outcome as tus.DetailedError
}

/** The upload id is the last path segment of its URL. */
export const idFromUrl = (url: string): string => new URL(url).pathname.split('/').pop() as string

/** The bytes stored for an id, or null when nothing is stored (the file on disk, or the object in the bucket or container: see stored() in tus.ts). */
export async function storedBytes (storage: Storage, id: string): Promise<Buffer | null> {
  return stored(storage, id)
}

export interface SeenRequest {
  method: string
  url: string
  override: string | undefined
  offset: string | undefined
  length: string | undefined
  deferLength: string | undefined
  concat: string | undefined
  contentLength: number
}

/** Records every request the server receives (call it in startServer's setup, before the plugin). */
export function recordRequests (app: FastifyInstance): SeenRequest[] {
  const seen: SeenRequest[] = []
  app.addHook('onRequest', async (request) => {
    const h = request.headers
    const one = (name: string): string | undefined => {
      const v = h[name]
      return Array.isArray(v) ? v.join(', ') : v
    }
    seen.push({
      method: request.method,
      url: request.url,
      override: one('x-http-method-override'),
      offset: one('upload-offset'),
      length: one('upload-length'),
      deferLength: one('upload-defer-length'),
      concat: one('upload-concat'),
      contentLength: Number(h['content-length'] ?? 0)
    })
  })
  return seen
}

type Assert = Pick<Test, 'equal' | 'ok' | 'not'>

/**
 * A finished upload as the server sees it: the stored file (or, on object
 * storage, the object in the bucket or container) is byte-exact (length and sha256), HEAD
 * reports offset = length = data.length, and the row is complete.
 */
export async function assertComplete (t: Assert, app: FastifyInstance, storage: Storage, url: string, data: Buffer, label = ''): Promise<void> {
  const p = label === '' ? '' : `${label}: `
  const id = idFromUrl(url)
  const onDisk = await storedBytes(storage, id)
  t.ok(onDisk !== null, `${p}a file exists for ${id}`)
  t.equal(onDisk?.length, data.length, `${p}stored file has ${data.length} bytes`)
  t.equal(onDisk === null ? null : sha256(onDisk), sha256(data), `${p}stored sha256 equals the source's`)
  t.ok(onDisk?.equals(data) === true, `${p}stored bytes equal the source`)
  if (storage.objects !== undefined) {
    const held = await holdings(storage.objects, id)
    t.equal(held.tails.length, 0, `${p}no tail object left in the bucket`)
    t.equal(held.uploads.length, 0, `${p}no unfinished parts (multipart upload, uncommitted blocks) left in the bucket`)
  }

  const res = await send('HEAD', url, { headers: TUS })
  t.equal(res.status, 200, `${p}HEAD 200`)
  t.equal(res.headers['upload-offset'], String(data.length), `${p}HEAD Upload-Offset ${data.length}`)
  t.equal(res.headers['upload-length'], String(data.length), `${p}HEAD Upload-Length ${data.length}`)
  t.equal(res.headers['upload-defer-length'], undefined, `${p}HEAD has no Upload-Defer-Length`)

  const record = await app.tus.get(id)
  t.ok(record !== undefined, `${p}app.tus.get finds the upload`)
  t.equal(record?.offset, data.length, `${p}record offset ${data.length}`)
  t.equal(record?.length, data.length, `${p}record length ${data.length}`)
  t.ok(record?.completedAt instanceof Date, `${p}record completedAt is set`)
}
