/**
 * Parallel uploads through the concatenation extension: the source is cut into
 * N ranges, each sent as a partial upload (`Upload-Concat: partial`) at the
 * same time, then one final upload (`Upload-Concat: final;<urls>`) joins them.
 * Memory is N chunk buffers.
 */
import type { ClientCore } from './core.js'
import { TusAbortError, TusClientError, TusHttpError } from './errors.js'
import type { TusProgress } from './options.js'
import { encodeMetadata, uploadUrlFrom } from './protocol.js'
import { ProgressTracker } from './progress.js'
import { fingerprint, type ChunkSource } from './source.js'
import type { URLStorage } from './storage/url-storage.js'
import { Uploader } from './uploader.js'

export interface ParallelOptions {
  metadata: Record<string, string>
  signal?: AbortSignal
  onProgress?: (progress: TusProgress) => void
  urlStorage?: URLStorage
  keepUrl?: boolean
}

interface Range { start: number; end: number }

/** `count` ranges as equal as can be; the first ones take the remainder. */
export function splitRanges (size: number, count: number): Range[] {
  const ranges: Range[] = []
  const base = Math.floor(size / count)
  let extra = size % count
  let start = 0
  for (let i = 0; i < count; i++) {
    const end = start + base + (extra > 0 ? 1 : 0)
    if (extra > 0) extra--
    ranges.push({ start, end })
    start = end
  }
  return ranges
}

const GONE = new Set([403, 404, 410])

export async function uploadParallel (core: ClientCore, source: ChunkSource, parts: number, options: ParallelOptions): Promise<string> {
  const { signal, urlStorage: storage } = options
  const size = source.size
  if (size === null) throw new TusClientError('a parallel upload needs a source of known length (a file or a Buffer, not a stream)', { code: 'ERR_TUS_SOURCE' })
  const info = await core.serverInfo(signal)
  core.requireExtension(info, 'concatenation', 'a parallel upload')
  core.requireChecksum(info)

  const count = Math.max(1, Math.min(parts, size))
  const ranges = splitRanges(size, count)
  const tracker = new ProgressTracker(size)
  const emit = (): void => options.onProgress?.(tracker.snapshot())
  const identity = source.identity
  const fp = storage === undefined || identity === null ? null : fingerprint(`parallel\0${count}\0${identity}`, core.options.endpoint)

  // A finished upload kept with keepUrl, or the parts of an unfinished one.
  let partUrls: string[] | null = null
  if (storage !== undefined && fp !== null) {
    for (const entry of (await storage.find(fp)).reverse()) {
      if (entry.uploadUrl !== null) {
        const done = await isComplete(core, entry.uploadUrl, signal)
        if (done) {
          tracker.report(0, size)
          emit()
          return entry.uploadUrl
        }
        await storage.remove(fp, entry.uploadUrl)
      } else if (entry.partialUrls?.length === count && await allExist(core, entry.partialUrls, signal)) {
        partUrls = entry.partialUrls
        break
      } else if (entry.partialUrls !== null) {
        await storage.remove(fp, entry.partialUrls[0])
      }
    }
  }
  const resumed = partUrls !== null
  if (partUrls === null) {
    partUrls = await Promise.all(ranges.map(async (range) => createPartial(core, range.end - range.start, signal)))
    if (storage !== undefined && fp !== null) {
      await storage.save(fp, { uploadUrl: null, partialUrls: partUrls, size, metadata: options.metadata, createdAt: new Date().toISOString() })
    }
  }

  await uploadParts(core, source, ranges, partUrls, resumed, { tracker, emit, signal })
  const url = await createFinal(core, partUrls, options.metadata, signal)
  if (storage !== undefined && fp !== null) {
    await storage.remove(fp, partUrls[0])
    if (options.keepUrl === true) await storage.save(fp, { uploadUrl: url, partialUrls: null, size, metadata: options.metadata, createdAt: new Date().toISOString() })
  }
  return url
}

/** Runs one uploader per range at once; the first failure stops the others and is the one reported. */
async function uploadParts (core: ClientCore, source: ChunkSource, ranges: Range[], urls: string[], resumed: boolean,
  context: { tracker: ProgressTracker; emit: () => void; signal: AbortSignal | undefined }): Promise<void> {
  const stop = new AbortController()
  const onAbort = (): void => stop.abort(context.signal?.reason)
  context.signal?.addEventListener('abort', onAbort, { once: true })
  if (context.signal?.aborted === true) onAbort()
  let firstError: unknown
  try {
    await Promise.allSettled(ranges.map(async (range, part) => {
      const url = urls[part]!
      const uploader = new Uploader(core, source.slice(range.start, range.end), { signal: stop.signal }, {
        start: resumed ? { kind: 'resume', url } : { kind: 'fresh', url },
        partial: true,
        progress: { tracker: context.tracker, part, emit: context.emit }
      })
      try {
        // Each call either moves the offset forward or throws, so this ends.
        while (!(await uploader.uploadChunk()).done) { /* next chunk */ }
      } catch (err) {
        // The first failure is the cause; the others are the aborts it caused.
        if (firstError === undefined) firstError = err
        stop.abort(err)
      } finally {
        await uploader.close()
      }
    }))
  } finally {
    context.signal?.removeEventListener('abort', onAbort)
  }
  if (context.signal?.aborted === true) throw new TusAbortError(context.signal.reason)
  if (firstError !== undefined) throw firstError
}

/** POST a partial upload with no body; answers its URL. */
export async function createPartial (core: ClientCore, length: number, signal: AbortSignal | undefined, metadata: Record<string, string> = {}): Promise<string> {
  const headers: Record<string, string> = { 'Upload-Concat': 'partial', 'Upload-Length': String(length) }
  const encoded = encodeMetadata(metadata)
  if (encoded !== '') headers['Upload-Metadata'] = encoded
  const request = { method: 'POST', url: core.options.endpoint, headers, signal }
  const response = await core.retrying(signal, async () => core.request(request, 201))
  return uploadUrlFrom(response, core.options.endpoint)
}

/** POST the final upload joining `urls` in order; answers its URL. */
export async function createFinal (core: ClientCore, urls: string[], metadata: Record<string, string>, signal: AbortSignal | undefined): Promise<string> {
  if (urls.length === 0) throw new TypeError('fastify-tus client: a final upload needs at least one partial upload URL')
  const info = await core.serverInfo(signal)
  core.requireExtension(info, 'concatenation', 'a final upload')
  const headers: Record<string, string> = { 'Upload-Concat': `final;${urls.join(' ')}` }
  const encoded = encodeMetadata(metadata)
  if (encoded !== '') headers['Upload-Metadata'] = encoded
  const request = { method: 'POST', url: core.options.endpoint, headers, signal }
  const response = await core.retrying(signal, async () => core.request(request, 201))
  return uploadUrlFrom(response, core.options.endpoint)
}

async function isComplete (core: ClientCore, url: string, signal: AbortSignal | undefined): Promise<boolean> {
  try {
    return (await core.head(url, signal)).complete
  } catch (err) {
    if (err instanceof TusHttpError && GONE.has(err.statusCode)) return false
    throw err
  }
}

async function allExist (core: ClientCore, urls: string[], signal: AbortSignal | undefined): Promise<boolean> {
  for (const url of urls) {
    try {
      await core.head(url, signal)
    } catch (err) {
      if (err instanceof TusHttpError && GONE.has(err.statusCode)) return false
      throw err
    }
  }
  return true
}
