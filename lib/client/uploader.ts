/**
 * One upload, one chunk per call. `TusClient.upload` is a loop over
 * `uploadChunk()`; callers who want to pace, schedule or interleave uploads
 * themselves drive the same loop:
 *
 *   const uploader = await client.createUploader('./big.iso')
 *   while (!(await uploader.uploadChunk()).done) { ... }
 *   await uploader.close()
 *
 * The first call creates the upload (sending the first chunk in the POST when
 * the server offers creation-with-upload) or resumes one: a URL given
 * explicitly, or one found in the URL storage. Every call retries on its own,
 * re-reading the offset with HEAD after a failure, so a chunk the server
 * partly stored is not sent twice and a chunk it rejected is sent again.
 */
import type { ClientCore, Operation } from './core.js'
import { TusClientError, TusHttpError, TusProtocolError } from './errors.js'
import { headerValue } from './http.js'
import type { TusProgress } from './options.js'
import { OCTET_STREAM, checksumHeader, encodeMetadata, parseCount, uploadUrlFrom, type TusServerInfo, type TusUploadInfo } from './protocol.js'
import { ProgressTracker } from './progress.js'
import { throwIfAborted } from './retry.js'
import { fingerprint as fingerprintOf, type ChunkSource } from './source.js'
import type { URLStorage } from './storage/url-storage.js'

export interface UploaderOptions {
  /** Upload-Metadata of a new upload (already validated). */
  metadata?: Record<string, string>
  signal?: AbortSignal
  onProgress?: (progress: TusProgress) => void
  /** Look for a previous upload of the same source here, and remember a new one. */
  urlStorage?: URLStorage
  /** Keep the URL storage entry after success. */
  keepUrl?: boolean
}

export interface ChunkResult {
  /** Bytes the server has stored. */
  offset: number
  /** True once the server has every byte (and, for a stream, knows the length). */
  done: boolean
  url: string
}

/** How the first call begins: resume a URL, or take up a partial upload just created with nothing stored. */
export type UploaderStart =
  | { kind: 'auto' }
  | { kind: 'resume'; url: string }
  | { kind: 'fresh'; url: string }

/** Ties an uploader to a progress tracker that may be shared by the parts of a parallel upload. */
export interface ProgressSink {
  tracker: ProgressTracker
  part: number
  emit: () => void
}

/** Why a stored URL is dead rather than the server being unreachable: the upload is gone or was never ours. */
const GONE = new Set([403, 404, 410])

export class Uploader {
  readonly #core: ClientCore
  readonly #source: ChunkSource
  readonly #options: UploaderOptions
  readonly #start: UploaderStart
  readonly #partial: boolean
  readonly #progress: ProgressSink
  readonly #ownsSource: boolean
  /** This uploader sets the tracker's total (false for the parts of a parallel upload, whose total is the whole). */
  readonly #ownsTracker: boolean
  #fingerprint: string | null | undefined
  #url: string | null = null
  #offset = 0
  /** The server knows Upload-Length (it was sent at creation, by a PATCH, or HEAD shows it). */
  #lengthDeclared = false
  /** The last request failed: the server's offset must be read again before the next chunk. */
  #needsSync = false
  #done = false
  #closed = false
  /** Counted by TusClient.close() (an uploader of createUploader, not the inner ones of upload()). */
  readonly #tracked: boolean
  /** While started and not over: what TusClient.close() waits for; its signal is the one every request uses. */
  #operation: Operation | undefined
  /** uploadChunk() calls running. */
  #running = 0

  /** @internal Use TusClient.createUploader. */
  constructor (core: ClientCore, source: ChunkSource, options: UploaderOptions, internal: {
    start?: UploaderStart
    partial?: boolean
    progress?: ProgressSink
    ownsSource?: boolean
    track?: boolean
  } = {}) {
    this.#core = core
    this.#source = source
    this.#options = options
    this.#start = internal.start ?? { kind: 'auto' }
    this.#partial = internal.partial ?? false
    this.#ownsSource = internal.ownsSource ?? true
    this.#tracked = internal.track ?? false
    this.#ownsTracker = internal.progress === undefined
    if (internal.progress !== undefined) {
      this.#progress = internal.progress
    } else {
      const tracker = new ProgressTracker(source.size)
      const onProgress = options.onProgress
      this.#progress = { tracker, part: 0, emit: () => onProgress?.(tracker.snapshot()) }
    }
  }

  /** The upload URL, once created or found. */
  get url (): string | null { return this.#url }
  /** Bytes the server has confirmed. */
  get offset (): number { return this.#offset }
  /** Total length, or null while unknown (a stream before its end). */
  get length (): number | null { return this.#source.size }
  get done (): boolean { return this.#done }
  get progress (): TusProgress { return this.#progress.tracker.snapshot() }

  /**
   * Sends one chunk (creating or resuming the upload on the first call). The
   * first call is refused (ERR_TUS_CLIENT_CLOSED) once the client is closing;
   * after it the uploader is in flight, and the client's close() waits for it
   * until it is done, closed or aborted.
   */
  async uploadChunk (): Promise<ChunkResult> {
    if (this.#closed) throw new TusClientError('this uploader is closed', { code: 'ERR_TUS_CLOSED' })
    if (this.#tracked && this.#operation === undefined && !this.#done) {
      this.#operation = this.#core.begin(this.#options.signal)
      this.#operation.signal.addEventListener('abort', () => this.#release(), { once: true })
    }
    this.#running++
    try {
      throwIfAborted(this.#signal)
      if (!this.#done) {
        const sentData = this.#url === null ? await this.#begin() : false
        if (!sentData && !this.#done) await this.#sendChunk()
        if (this.#done) await this.#forget()
      }
      return { offset: this.#offset, done: this.#done, url: this.#url! }
    } finally {
      this.#running--
      this.#release()
    }
  }

  /** Releases the source (the file handle). The upload itself stays on the server, resumable. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    try {
      if (this.#ownsSource) await this.#source.close()
    } finally {
      this.#release()
    }
  }

  /** The signal of every request: the client's close() can abort a started uploader too. */
  get #signal (): AbortSignal | undefined {
    return this.#operation?.signal ?? this.#options.signal
  }

  /** Ends the uploader's operation once no call runs and it can do nothing more: done, closed or aborted. */
  #release (): void {
    if (this.#operation === undefined || this.#running > 0) return
    if (this.#done || this.#closed || this.#operation.signal.aborted) this.#operation.end()
  }

  /** Answers whether the first chunk went out with the creation. */
  async #begin (): Promise<boolean> {
    const signal = this.#signal
    const info = await this.#core.serverInfo(signal)
    this.#core.requireChecksum(info)

    const start = this.#start
    if (start.kind === 'fresh') {
      this.#url = start.url
      this.#lengthDeclared = this.#source.size !== null
      this.#report(0)
      return false
    }
    if (start.kind === 'resume') {
      const upload = await this.#core.head(start.url, signal, () => this.#retried())
      this.#adopt(upload, true)
      await this.#remember()
      return false
    }
    if (await this.#resumeFromStorage()) return false
    return this.#create(info)
  }

  /** Takes up the newest stored upload of this source that the server still has. */
  async #resumeFromStorage (): Promise<boolean> {
    const storage = this.#options.urlStorage
    const fp = this.#fingerprintOf()
    if (storage === undefined || fp === null) return false
    const entries = (await storage.find(fp)).filter((e) => e.uploadUrl !== null).reverse()
    for (const entry of entries) {
      const url = entry.uploadUrl!
      let upload: TusUploadInfo
      try {
        upload = await this.#core.head(url, this.#signal, () => this.#retried())
      } catch (err) {
        if (err instanceof TusHttpError && GONE.has(err.statusCode)) {
          await storage.remove(fp, url)
          continue
        }
        throw err
      }
      if (!this.#adopt(upload, false)) {
        await storage.remove(fp, url)
        continue
      }
      return true
    }
    return false
  }

  /**
   * Takes the server's view of an upload. An upload that cannot be the same
   * content (other length, offset past the end) is refused: with `strict` it
   * is an error, otherwise the answer is false and nothing changes.
   */
  #adopt (upload: TusUploadInfo, strict: boolean): boolean {
    const size = this.#source.size
    const problem = upload.offset === null
      ? 'it is a final upload, which cannot be resumed'
      : size !== null && upload.length !== null && upload.length !== size
        ? `its length ${upload.length} differs from the source's ${size}`
        : size !== null && upload.offset > size
          ? `its offset ${upload.offset} is past the source's end`
          : undefined
    if (problem !== undefined) {
      if (strict) throw new TusClientError(`cannot resume ${upload.url}: ${problem}`, { code: 'ERR_TUS_RESUME' })
      return false
    }
    this.#url = upload.url
    this.#offset = upload.offset!
    this.#lengthDeclared = upload.length !== null
    this.#done = upload.length !== null && upload.offset === upload.length
    this.#report(this.#offset)
    return true
  }

  /** POST, with the first chunk as its body when the server takes one. */
  async #create (info: TusServerInfo): Promise<boolean> {
    const core = this.#core
    const signal = this.#signal
    core.requireExtension(info, 'creation', 'creating an upload')
    const withUpload = info.extensions.includes('creation-with-upload')
    this.#report(0)

    // A stream's first chunk is read before creating: if the stream ends in
    // it, the length is known and need not be deferred.
    const needsFirstChunk = withUpload || this.#source.size === null
    const firstChunk = needsFirstChunk ? await this.#source.read(0, core.options.chunkSize) : undefined
    const length = this.#source.size
    this.#setTotal(length)
    if (length === null) core.requireExtension(info, 'creation-defer-length', 'uploading a stream of unknown length')

    const body = withUpload && firstChunk !== undefined && firstChunk.length > 0 ? firstChunk : undefined
    const headers: Record<string, string> = length === null ? { 'Upload-Defer-Length': '1' } : { 'Upload-Length': String(length) }
    const metadata = encodeMetadata(this.#options.metadata ?? {})
    if (metadata !== '') headers['Upload-Metadata'] = metadata
    if (this.#partial) headers['Upload-Concat'] = 'partial'
    if (body !== undefined) {
      headers['Content-Type'] = OCTET_STREAM
      if (core.options.checksum !== undefined) headers['Upload-Checksum'] = checksumHeader(core.options.checksum, body)
    }

    const request = { method: 'POST', url: core.options.endpoint, headers, body, signal }
    const response = await core.retrying(signal, async () => core.request(request, 201), () => this.#retried())
    this.#url = uploadUrlFrom(response, core.options.endpoint)
    this.#lengthDeclared = length !== null
    await this.#remember()

    const rawOffset = headerValue(response.headers, 'upload-offset')
    if (body === undefined) {
      this.#offset = 0
      this.#done = length === 0
      return false
    }
    if (rawOffset === undefined) {
      // The server took the body but did not say how much of it: ask.
      this.#needsSync = true
      return false
    }
    this.#accept(parseCount(rawOffset, 'Upload-Offset'), 0, body.length)
    return true
  }

  /** One PATCH, retried; after any failure the offset is read again first. */
  async #sendChunk (): Promise<void> {
    const core = this.#core
    const signal = this.#signal
    const url = this.#url!
    await core.retrying(signal, async () => {
      if (this.#needsSync) {
        const upload = await core.headOnce(url, signal)
        if (!this.#adopt(upload, false)) throw new TusProtocolError(`${url} no longer matches the source (HEAD: offset ${upload.offset}, length ${upload.length})`)
        this.#needsSync = false
        if (this.#done) return
      }
      const offset = this.#offset
      const chunk = await this.#source.read(offset, core.options.chunkSize)
      const length = this.#source.size
      if (length !== null) this.#setTotal(length)
      const headers: Record<string, string> = { 'Content-Type': OCTET_STREAM, 'Upload-Offset': String(offset) }
      // creation-defer-length: the length goes with the chunk that ends the stream.
      const declaresLength = !this.#lengthDeclared && length !== null && offset + chunk.length === length
      if (declaresLength) headers['Upload-Length'] = String(length)
      if (core.options.checksum !== undefined) headers['Upload-Checksum'] = checksumHeader(core.options.checksum, chunk)
      if (chunk.length === 0 && !declaresLength) throw new TusProtocolError(`nothing left to send to ${url} at offset ${offset}, yet the upload is not complete`)

      let response
      try {
        response = await core.request({ method: 'PATCH', url, headers, body: chunk, signal }, 204)
      } catch (err) {
        this.#needsSync = true
        throw err
      }
      const rawOffset = headerValue(response.headers, 'upload-offset')
      if (rawOffset === undefined) throw new TusProtocolError(`PATCH ${url} answered 204 without Upload-Offset`)
      if (declaresLength) this.#lengthDeclared = true
      this.#accept(parseCount(rawOffset, 'Upload-Offset'), offset, chunk.length)
    }, () => this.#retried())
  }

  /** Takes the offset a server reported after receiving `sent` bytes at `from`. */
  #accept (offset: number, from: number, sent: number): void {
    if (offset < from || offset > from + sent || (sent > 0 && offset === from)) {
      throw new TusProtocolError(`${this.#url} reported offset ${offset} after ${sent} bytes were sent at ${from}`)
    }
    this.#offset = offset
    const length = this.#source.size
    this.#done = this.#lengthDeclared && length !== null && offset === length
    this.#progress.tracker.report(this.#progress.part, offset, { chunk: true })
    this.#progress.emit()
  }

  #report (offset: number): void {
    this.#progress.tracker.report(this.#progress.part, offset)
    this.#progress.emit()
  }

  #retried (): void {
    this.#progress.tracker.retried()
  }

  #setTotal (length: number | null): void {
    if (this.#ownsTracker) this.#progress.tracker.setTotal(length)
  }

  #fingerprintOf (): string | null {
    if (this.#fingerprint === undefined) {
      const identity = this.#source.identity
      this.#fingerprint = identity === null ? null : fingerprintOf((this.#partial ? 'partial\0' : '') + identity, this.#core.options.endpoint)
    }
    return this.#fingerprint
  }

  /** Saves the URL, so that another run can resume it. */
  async #remember (): Promise<void> {
    const storage = this.#options.urlStorage
    const fp = this.#fingerprintOf()
    if (storage === undefined || fp === null || this.#url === null) return
    await storage.save(fp, {
      uploadUrl: this.#url,
      partialUrls: null,
      size: this.#source.size,
      metadata: this.#options.metadata ?? {},
      createdAt: new Date().toISOString()
    })
  }

  /** Removes the URL once the upload is complete, unless the caller wants it kept. */
  async #forget (): Promise<void> {
    const storage = this.#options.urlStorage
    const fp = this.#fingerprintOf()
    if (storage === undefined || fp === null || this.#url === null || this.#options.keepUrl === true) return
    await storage.remove(fp, this.#url)
  }
}
