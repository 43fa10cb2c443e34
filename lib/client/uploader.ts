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
 *
 * With protocol 'ietf-draft' the same loop speaks the IETF draft: the
 * creation always carries the first chunk (`Upload-Complete: ?1` when that is
 * all of it), the upload URL is taken (and stored) from the 104 interim
 * response as soon as it arrives, appends are PATCHes in
 * application/partial-upload, and completion is what `Upload-Complete: ?1`
 * in an answer says.
 */
import type { ClientCore, Operation } from './core.js'
import {
  PARTIAL_UPLOAD, SUCCESS, answersAsTarget, conflictOffset, fieldOf, isOurs, parseSfBoolean, parseSfInteger, parseUploadLimit,
  representationHeaders, resolveLocation, type DraftLimits
} from './draft.js'
import { TusClientError, TusHttpError, TusProtocolError, TusUnsupportedError } from './errors.js'
import { headerValue, type HttpResponse, type InterimResponse } from './http.js'
import type { TusProgress } from './options.js'
import { OCTET_STREAM, checksumHeader, encodeMetadata, parseCount, uploadUrlFrom, type TusServerInfo, type TusUploadInfo } from './protocol.js'
import { ProgressTracker } from './progress.js'
import { throwIfAborted } from './retry.js'
import type { ChunkSource } from './source.js'
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

/**
 * Draft: how many times in a row one step may shrink its request after a 413
 * (each time below the size refused, so this is only a backstop).
 */
const MAX_SHRINKS = 16

/** Draft: what one creation attempt came to. 'sync': the URL is known, go on with appends from the server's offset. */
type CreationOutcome = 'sent' | 'sync' | 'smaller'

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
  /** Draft: the server's Upload-Limit, as last announced (a 104, an answer, a HEAD). */
  #limits: DraftLimits = {}
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
    // The draft needs no discovery: limits come with the 104, the answers and HEAD.
    const info = this.#core.draft ? undefined : await this.#core.serverInfo(signal)
    if (info !== undefined) this.#core.requireChecksum(info)

    const start = this.#start
    if (start.kind === 'fresh') {
      this.#url = start.url
      this.#lengthDeclared = this.#source.size !== null
      this.#report(0)
      return false
    }
    if (start.kind === 'resume') {
      const upload = await this.#core.head(start.url, signal, () => this.#retried(), this.#learn)
      this.#adopt(upload, true)
      await this.#remember()
      return false
    }
    if (await this.#resumeFromStorage()) return false
    return info === undefined ? this.#createDraft() : this.#create(info)
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
        upload = await this.#core.head(url, this.#signal, () => this.#retried(), this.#learn)
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
          : upload.complete && size !== null && upload.offset !== size
            ? `it is complete at ${upload.offset} bytes, the source has ${size}`
            : undefined
    if (problem !== undefined) {
      if (strict) throw new TusClientError(`cannot resume ${upload.url}: ${problem}`, { code: 'ERR_TUS_RESUME' })
      return false
    }
    this.#url = upload.url
    this.#offset = upload.offset!
    this.#lengthDeclared = upload.length !== null
    // tus: offset = length; the draft: Upload-Complete: ?1.
    this.#done = upload.complete
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
    if (this.#core.draft) return this.#sendDraftChunk()
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
      this.#fingerprint = identity === null ? null : this.#core.fingerprint((this.#partial ? 'partial\0' : '') + identity)
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
    if (this.#url === null || this.#options.keepUrl === true) return
    await this.#forgetUrl(this.#url)
  }

  async #forgetUrl (url: string): Promise<void> {
    const storage = this.#options.urlStorage
    const fp = this.#fingerprintOf()
    if (storage === undefined || fp === null) return
    await storage.remove(fp, url)
  }

  /* ---------------------------- IETF draft ---------------------------- */

  /** Takes the server's Upload-Limit (each one lists all of the upload's limits). */
  readonly #learn = (limits: DraftLimits): void => {
    this.#limits = limits
  }

  /** The most one creation or append carries: chunkSize, or the server's max-append-size when smaller. */
  #appendSize (): number {
    const max = this.#limits.maxAppendSize
    const chunkSize = this.#core.options.chunkSize
    return max !== undefined && max > 0 && max < chunkSize ? max : chunkSize
  }

  /** Refuses (ERR_TUS_LIMIT) an upload that would pass the server's max-size. */
  #checkSize (total: number | null): void {
    const max = this.#limits.maxSize
    if (max === undefined || total === null || total <= max) return
    throw new TusClientError(`the upload would be ${total} bytes, above the server's max-size of ${max} bytes (Upload-Limit)`, { code: 'ERR_TUS_LIMIT' })
  }

  /**
   * After a refusal for a limit (ERR_TUS_LIMIT), the draft says to cancel the
   * upload: DELETE it (once, its failure ignored) and forget its URL.
   */
  async #cancelIfRefused (error: unknown): Promise<void> {
    if (!(error instanceof TusClientError) || error.code !== 'ERR_TUS_LIMIT' || this.#url === null) return
    const url = this.#url
    this.#url = null
    await this.#core.request({ method: 'DELETE', url, headers: this.#core.draftHeaders(), signal: this.#signal }, ...SUCCESS).catch(() => {})
    await this.#forgetUrl(url)
  }

  /**
   * After a 413: whether a smaller request may get through, that is whether
   * the server's max-append-size (from the refusal's Upload-Limit, else from a
   * HEAD) is below what was sent.
   */
  async #shrinks (error: TusHttpError, sent: number): Promise<boolean> {
    const limits = parseUploadLimit(fieldOf(error.headers, 'upload-limit'))
    if (limits !== undefined) this.#learn(limits)
    if (this.#appendSize() < sent) return true
    if (limits !== undefined || this.#url === null) return false
    try {
      await this.#core.headOnce(this.#url, this.#signal, this.#learn)
    } catch {
      return false
    }
    return this.#appendSize() < sent
  }

  /** The draft's creation, retried; answers whether the first chunk went out with it. */
  async #createDraft (): Promise<boolean> {
    const core = this.#core
    const signal = this.#signal
    const representation = representationHeaders(this.#options.metadata ?? {})
    this.#report(0)
    try {
      for (let shrunk = 0; shrunk <= MAX_SHRINKS; shrunk++) {
        // Once a 104 gave the URL, a failed creation is resumed from the server's offset, not sent again.
        const outcome = await core.retrying(signal, async (): Promise<CreationOutcome> => this.#url === null ? this.#postDraft(representation) : 'sync', () => this.#retried())
        if (outcome === 'sent') return true
        if (outcome === 'sync') {
          this.#needsSync = true
          return false
        }
      }
      throw new TusProtocolError(`POST ${core.options.endpoint} was refused with 413 ${MAX_SHRINKS} times in a row, each time with a smaller max-append-size`)
    } catch (err) {
      await this.#cancelIfRefused(err)
      // A 104 gave the URL: a later uploadChunk() goes on from the server's offset.
      if (this.#url !== null) this.#needsSync = true
      throw err
    }
  }

  /**
   * One creation request: POST with Upload-Complete, Upload-Length when known,
   * the representation's headers and the first chunk. A 104 of our interop
   * version gives the URL at once (stored at once, so that a creation cut off
   * can be resumed), the limits and progress.
   */
  async #postDraft (representation: Record<string, string>): Promise<CreationOutcome> {
    const core = this.#core
    const signal = this.#signal
    const endpoint = core.options.endpoint
    const version = core.options.draftVersion!
    const chunk = await this.#source.read(0, this.#appendSize())
    const size = this.#source.size
    this.#setTotal(size)
    this.#checkSize(size)
    const last = size !== null && chunk.length === size
    const headers: Record<string, string> = { ...core.draftHeaders(), ...representation, 'Upload-Complete': last ? '?1' : '?0' }
    if (size !== null) headers['Upload-Length'] = String(size)

    let early: string | undefined
    let remembering: Promise<void> | undefined
    const onInformation = (interim: InterimResponse): void => {
      // A 104 of another interop version (or none) is not for us.
      if (interim.statusCode !== 104 || !isOurs(interim.headers, version)) return
      const limits = parseUploadLimit(fieldOf(interim.headers, 'upload-limit'))
      if (limits !== undefined) this.#learn(limits)
      const location = fieldOf(interim.headers, 'location')
      if (location !== undefined && early === undefined) {
        early = resolveLocation(location, endpoint, `the 104 to POST ${endpoint}`)
        this.#url = early
        remembering = this.#remember()
        remembering.catch(() => {}) // awaited below
      }
      this.#checkSize(size)
      const reported = parseSfInteger(fieldOf(interim.headers, 'upload-offset'))
      if (reported !== undefined && reported <= chunk.length) this.#report(reported)
    }

    let response: HttpResponse
    try {
      response = await core.request({ method: 'POST', url: endpoint, headers, body: chunk, signal, onInformation }, ...SUCCESS)
    } catch (err) {
      await remembering
      if (err instanceof TusHttpError && err.statusCode === 413 && !answersAsTarget(err) && await this.#shrinks(err, chunk.length)) {
        return this.#url === null ? 'smaller' : 'sync'
      }
      throw err
    }
    await remembering

    const complete = parseSfBoolean(headerValue(response.headers, 'upload-complete'))
    const location = headerValue(response.headers, 'location')
    if (complete === true || (complete === undefined && last)) {
      // Complete at once: a Location here is the target resource's. The upload's URL is the 104's, else that one.
      this.#url ??= location === undefined ? endpoint : resolveLocation(location, endpoint, `POST ${endpoint}`)
    } else {
      // The upload resource's answer: its Location is the upload's URL, and must be the 104's.
      if (location === undefined && early === undefined) throw new TusProtocolError(`POST ${endpoint} answered ${response.statusCode} without a Location`)
      if (location !== undefined) {
        const url = resolveLocation(location, endpoint, `POST ${endpoint}`)
        if (early !== undefined && url !== early) await this.#locationMismatch(early, url)
        if (early === undefined) {
          this.#url = url
          await this.#remember()
        }
      }
    }
    await this.#acceptDraft(response.headers, 0, chunk.length, last)
    return 'sent'
  }

  /**
   * The 104 and the final answer named different upload URLs: the draft says
   * to abort and cancel. The 104's upload is deleted (once, its failure
   * ignored) and forgotten; always throws.
   */
  async #locationMismatch (early: string, final: string): Promise<never> {
    this.#url = null
    await this.#core.request({ method: 'DELETE', url: early, headers: this.#core.draftHeaders(), signal: this.#signal }, ...SUCCESS).catch(() => {})
    await this.#forgetUrl(early)
    throw new TusProtocolError(`POST ${this.#core.options.endpoint}: the 104 gave the upload URL ${early}, the final answer ${final}; the upload was cancelled`)
  }

  /** One append (PATCH in application/partial-upload), retried; after any failure the offset is read again first. */
  async #sendDraftChunk (): Promise<void> {
    try {
      for (let shrunk = 0; shrunk <= MAX_SHRINKS; shrunk++) {
        if (!await this.#core.retrying(this.#signal, async () => this.#appendDraft(), () => this.#retried())) return
      }
      throw new TusProtocolError(`PATCH ${this.#url} was refused with 413 ${MAX_SHRINKS} times in a row, each time with a smaller max-append-size`)
    } catch (err) {
      await this.#cancelIfRefused(err)
      throw err
    }
  }

  /** One attempt of an append; answers true when a 413 asks for a smaller one. */
  async #appendDraft (): Promise<boolean> {
    const core = this.#core
    const signal = this.#signal
    const url = this.#url!
    const version = core.options.draftVersion!
    if (this.#needsSync) {
      const upload = await core.headOnce(url, signal, this.#learn)
      if (!this.#adopt(upload, false)) {
        throw new TusProtocolError(`${url} no longer matches the source (HEAD: offset ${upload.offset}, length ${upload.length}${upload.complete ? ', complete' : ''})`)
      }
      this.#needsSync = false
      if (this.#done) return false
    }
    const offset = this.#offset
    const chunk = await this.#source.read(offset, this.#appendSize())
    const length = this.#source.size
    if (length !== null) this.#setTotal(length)
    this.#checkSize(length ?? offset + chunk.length)
    // The last append says Upload-Complete: ?1, even an empty one (a stream whose end came after its last bytes went).
    const last = length !== null && offset + chunk.length === length
    if (chunk.length === 0 && !last) throw new TusProtocolError(`nothing left to send to ${url} at offset ${offset}, yet the upload is not complete`)
    const minimum = this.#limits.minAppendSize
    if (!last && minimum !== undefined && chunk.length < minimum) {
      throw new TusUnsupportedError(`${url}: the server's min-append-size is ${minimum} bytes, above this client's chunk of ${chunk.length}; raise chunkSize`)
    }
    const headers = { ...core.draftHeaders(), 'Content-Type': PARTIAL_UPLOAD, 'Upload-Offset': String(offset), 'Upload-Complete': last ? '?1' : '?0' }
    // 104 progress reports (interop 8+): the bytes the server has processed so far.
    const onInformation = (interim: InterimResponse): void => {
      if (interim.statusCode !== 104 || !isOurs(interim.headers, version)) return
      const reported = parseSfInteger(fieldOf(interim.headers, 'upload-offset'))
      if (reported !== undefined && reported >= offset && reported <= offset + chunk.length) this.#report(reported)
    }
    let response: HttpResponse
    try {
      response = await core.request({ method: 'PATCH', url, headers, body: chunk, signal, onInformation }, ...SUCCESS)
    } catch (err) {
      this.#needsSync = true
      if (err instanceof TusHttpError && !answersAsTarget(err)) {
        if (err.statusCode === 409) this.#conflict(err)
        else if (err.statusCode === 413 && await this.#shrinks(err, chunk.length)) return true
      }
      throw err
    }
    await this.#acceptDraft(response.headers, offset, chunk.length, last)
    return false
  }

  /** A 409 names the offset to go on from (Upload-Offset or the problem's expected-offset): no HEAD needed then. */
  #conflict (error: TusHttpError): void {
    const offset = conflictOffset(error)
    const size = this.#source.size
    if (offset === undefined || (size !== null && offset > size)) return
    this.#offset = offset
    this.#needsSync = false
    this.#report(offset)
  }

  /**
   * Reads a 2xx answer to a creation or append that sent `sent` bytes at
   * `from`. Complete when it says `Upload-Complete: ?1` (or, to a request that
   * said ?1, when it says nothing: draft issue #3484). Otherwise the offset is
   * its Upload-Offset if any (not required since interop 7), else all that was
   * sent; a request that said ?1 and is answered ?0 was processed in part, and
   * a HEAD tells how far.
   */
  async #acceptDraft (headers: HttpResponse['headers'], from: number, sent: number, sentComplete: boolean): Promise<void> {
    const url = this.#url
    const complete = parseSfBoolean(fieldOf(headers, 'upload-complete'))
    if (complete === true || (complete === undefined && sentComplete)) {
      if (!sentComplete) throw new TusProtocolError(`${url} says the upload is complete after ${from + sent} bytes, before the end of the source`)
      this.#offset = from + sent
      this.#done = true
      this.#progress.tracker.report(this.#progress.part, this.#offset, { chunk: true })
      this.#progress.emit()
      return
    }
    let offset = parseSfInteger(fieldOf(headers, 'upload-offset'))
    if (offset === undefined && sentComplete) {
      const upload = await this.#core.headOnce(url!, this.#signal, this.#learn)
      if (!this.#adopt(upload, false)) throw new TusProtocolError(`${url} no longer matches the source (HEAD: offset ${upload.offset}, length ${upload.length})`)
      if (this.#done) return
      offset = upload.offset!
    }
    offset ??= from + sent
    if (offset <= from || offset > from + sent) {
      throw new TusProtocolError(`${url} reported offset ${offset} after ${sent} bytes were sent at ${from}${sentComplete ? ' with Upload-Complete: ?1, and the upload is not complete' : ''}`)
    }
    this.#offset = offset
    this.#done = false
    this.#progress.tracker.report(this.#progress.part, offset, { chunk: true })
    this.#progress.emit()
  }
}
