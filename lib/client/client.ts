/**
 * TusClient: resumable uploads to any tus 1.0.0 server, or, with
 * `protocol: 'ietf-draft'`, to a server of the IETF draft "Resumable Uploads
 * for HTTP" (interop versions 6 to 9).
 *
 *   const client = new TusClient({ endpoint: 'https://example.com/files', checksum: 'sha256' })
 *   const url = await client.upload('./video.mp4', { metadata: { filename: 'video.mp4' }, onProgress })
 */
import { ClientCore } from './core.js'
import { TusClientError, TusUnsupportedError } from './errors.js'
import { resolveClientOptions, validateMetadata, type ResolvedClientOptions, type TusClientOptions, type TusCloseOptions, type TusProgress, type UploadOptions } from './options.js'
import { createFinal, uploadParallel } from './parallel.js'
import type { TusServerInfo, TusUploadInfo } from './protocol.js'
import { openSource, type UploadSource } from './source.js'
import type { URLStorage, URLStorageEntry } from './storage/url-storage.js'
import { Uploader, type UploaderStart } from './uploader.js'

/** A previous upload of a source, as found in a URL storage. */
export interface PreviousUpload extends URLStorageEntry {
  fingerprint: string
}

export interface RequestOptions {
  signal?: AbortSignal
}

export class TusClient {
  readonly #core: ClientCore

  constructor (options: TusClientOptions) {
    this.#core = new ClientCore(resolveClientOptions(options))
  }

  /** The options in force, defaults filled in. */
  get options (): Readonly<ResolvedClientOptions> {
    return this.#core.options
  }

  /**
   * Uploads a file path, a Buffer or a stream, and answers the upload URL.
   * With a URL storage, a previous unfinished upload of the same source that
   * the server still has is resumed instead of starting again.
   */
  async upload (source: UploadSource, options: UploadOptions = {}): Promise<string> {
    const parallel = options.parallel ?? 1
    if (!Number.isSafeInteger(parallel) || parallel < 1 || parallel > 100) throw new TypeError('fastify-tus client: option parallel must be an integer from 1 to 100')
    if (parallel > 1 && this.#core.draft) {
      throw new TypeError("fastify-tus client: option parallel needs tus concatenation, which the IETF draft does not have (protocol: 'ietf-draft'); leave parallel out or use protocol: 'tus'")
    }
    if (parallel === 1) return this.#uploadWith(source, options, { kind: 'auto' }, false)
    return this.#run(options.signal, async (signal) => {
      const metadata = validateMetadata(options.metadata)
      const urlStorage = options.urlStorage ?? this.#core.options.urlStorage
      const opened = await openSource(source, this.#core.options.chunkSize)
      try {
        return await uploadParallel(this.#core, opened, parallel, { ...options, signal, metadata, urlStorage })
      } finally {
        await opened.close()
      }
    })
  }

  /** Continues the upload at `url` with `source` (which must be the same content); answers the URL. */
  async resume (source: UploadSource, url: string, options: Omit<UploadOptions, 'parallel'> = {}): Promise<string> {
    return this.#uploadWith(source, options, { kind: 'resume', url: new URL(url, this.#core.options.endpoint).href }, false)
  }

  /**
   * The low-level uploader: one chunk per `uploadChunk()` call. Close it when
   * done. From its first uploadChunk() until it is done, closed or aborted,
   * the client's close() waits for it.
   */
  async createUploader (source: UploadSource, options: Omit<UploadOptions, 'parallel'> & { url?: string } = {}): Promise<Uploader> {
    this.#core.assertOpen()
    const metadata = validateMetadata(options.metadata)
    const urlStorage = options.urlStorage ?? this.#core.options.urlStorage
    const opened = await openSource(source, this.#core.options.chunkSize)
    const start: UploaderStart = options.url === undefined ? { kind: 'auto' } : { kind: 'resume', url: new URL(options.url, this.#core.options.endpoint).href }
    return new Uploader(this.#core, opened, { ...options, metadata, urlStorage }, { start, track: true })
  }

  /** Uploads of this source remembered in the URL storage, oldest first. */
  async findPreviousUploads (source: UploadSource, options: { urlStorage?: URLStorage } = {}): Promise<PreviousUpload[]> {
    const storage = options.urlStorage ?? this.#core.options.urlStorage
    if (storage === undefined) throw new TusClientError('findPreviousUploads needs a urlStorage (in the client options or here)', { code: 'ERR_TUS_STORAGE' })
    // A stream has no fingerprint; opening it here would only consume it.
    if (typeof source !== 'string' && !(source instanceof Uint8Array)) return []
    const opened = await openSource(source, 1)
    try {
      if (opened.identity === null) return []
      const fp = this.#core.fingerprint(opened.identity)
      return (await storage.find(fp)).map((entry) => ({ ...entry, fingerprint: fp }))
    } finally {
      await opened.close()
    }
  }

  /**
   * Uploads `source` as a partial upload (concatenation extension) and answers
   * its URL; join partial uploads with createFinalUpload.
   */
  async createPartialUpload (source: UploadSource, options: Omit<UploadOptions, 'parallel'> = {}): Promise<string> {
    this.#requireTus('createPartialUpload')
    return this.#run(options.signal, async (signal) => {
      const info = await this.#core.serverInfo(signal)
      this.#core.requireExtension(info, 'concatenation', 'a partial upload')
      return this.#uploadWithin(signal, source, options, { kind: 'auto' }, true)
    })
  }

  /** Creates the final upload joining `urls` (finished partial uploads, in order); answers its URL. */
  async createFinalUpload (urls: string[], metadata: Record<string, string | null> = {}, options: RequestOptions = {}): Promise<string> {
    this.#requireTus('createFinalUpload')
    return this.#run(options.signal, async (signal) =>
      createFinal(this.#core, urls.map((url) => new URL(url, this.#core.options.endpoint).href), validateMetadata(metadata), signal))
  }

  /**
   * OPTIONS: the server's version, extensions, size limit and checksum
   * algorithms (tus headers; asked the same way with protocol 'ietf-draft').
   */
  async getServerInfo (options: RequestOptions = {}): Promise<TusServerInfo> {
    return this.#run(options.signal, async (signal) => this.#core.serverInfo(signal, true))
  }

  /** HEAD: where an upload stands (with protocol 'ietf-draft': the draft's offset retrieval). */
  async getUploadInfo (url: string, options: RequestOptions = {}): Promise<TusUploadInfo> {
    return this.#run(options.signal, async (signal) => this.#core.head(new URL(url, this.#core.options.endpoint).href, signal))
  }

  /** DELETE (termination extension; with protocol 'ietf-draft': the draft's cancellation). */
  async delete (url: string, options: RequestOptions = {}): Promise<void> {
    await this.#run(options.signal, async (signal) => this.#core.delete(new URL(url, this.#core.options.endpoint).href, signal))
  }

  /**
   * Closes the client, gracefully. At once, every call that would start
   * something new rejects with a TusClientError, code ERR_TUS_CLIENT_CLOSED.
   * What is already in flight goes on to its end: upload(), resume(),
   * createPartialUpload(), createFinalUpload(), getServerInfo(),
   * getUploadInfo(), delete(), and every Uploader from its first
   * uploadChunk() until it is done, closed or aborted. Then the sockets are
   * destroyed and the promise resolves.
   *
   * With `timeout` (ms), whatever is still in flight when it runs out is
   * aborted as by its own AbortSignal: it rejects with TusAbortError (its
   * `cause` a TusClientError, ERR_TUS_CLIENT_CLOSED) and stays resumable, its
   * URL kept in the URL storage. close() resolves once it has unwound.
   * Calling close() again answers the same completion; a timeout given then
   * bounds the wait too. Never rejects, except a TypeError for a bad timeout.
   */
  async close (options: TusCloseOptions = {}): Promise<void> {
    await this.#core.close(options.timeout)
  }

  /** Concatenation is tus only: the IETF draft has no partial or final uploads. */
  #requireTus (method: string): void {
    if (this.#core.draft) {
      throw new TusUnsupportedError(`${method} uses tus concatenation, which the IETF draft does not have (this client has protocol: 'ietf-draft')`)
    }
  }

  /** Runs one call as an operation close() waits for; `work` gets the signal that aborts it. */
  async #run<T> (signal: AbortSignal | undefined, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const operation = this.#core.begin(signal)
    try {
      return await work(operation.signal)
    } finally {
      operation.end()
    }
  }

  async #uploadWith (source: UploadSource, options: Omit<UploadOptions, 'parallel'>, start: UploaderStart, partial: boolean): Promise<string> {
    return this.#run(options.signal, async (signal) => this.#uploadWithin(signal, source, options, start, partial))
  }

  async #uploadWithin (signal: AbortSignal, source: UploadSource, options: Omit<UploadOptions, 'parallel'>, start: UploaderStart, partial: boolean): Promise<string> {
    const metadata = validateMetadata(options.metadata)
    const urlStorage = options.urlStorage ?? this.#core.options.urlStorage
    const opened = await openSource(source, this.#core.options.chunkSize)
    try {
      return await this.#runToEnd(new Uploader(this.#core, opened, { ...options, signal, metadata, urlStorage }, { start, partial, ownsSource: false }))
    } finally {
      await opened.close()
    }
  }

  async #runToEnd (uploader: Uploader): Promise<string> {
    try {
      // Each call moves the offset forward or throws, so this ends.
      let result = await uploader.uploadChunk()
      while (!result.done) result = await uploader.uploadChunk()
      return result.url
    } finally {
      await uploader.close()
    }
  }
}

export type { TusProgress }
