/**
 * TusClient: resumable uploads to any tus 1.0.0 server.
 *
 *   const client = new TusClient({ endpoint: 'https://example.com/files', checksum: 'sha256' })
 *   const url = await client.upload('./video.mp4', { metadata: { filename: 'video.mp4' }, onProgress })
 */
import { ClientCore } from './core.js'
import { TusClientError } from './errors.js'
import { resolveClientOptions, validateMetadata, type ResolvedClientOptions, type TusClientOptions, type TusProgress, type UploadOptions } from './options.js'
import { createFinal, uploadParallel } from './parallel.js'
import type { TusServerInfo, TusUploadInfo } from './protocol.js'
import { fingerprint, openSource, type UploadSource } from './source.js'
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
    if (parallel === 1) return this.#uploadWith(source, options, { kind: 'auto' }, false)
    const metadata = validateMetadata(options.metadata)
    const urlStorage = options.urlStorage ?? this.#core.options.urlStorage
    const opened = await openSource(source, this.#core.options.chunkSize)
    try {
      return await uploadParallel(this.#core, opened, parallel, { ...options, metadata, urlStorage })
    } finally {
      await opened.close()
    }
  }

  /** Continues the upload at `url` with `source` (which must be the same content); answers the URL. */
  async resume (source: UploadSource, url: string, options: Omit<UploadOptions, 'parallel'> = {}): Promise<string> {
    return this.#uploadWith(source, options, { kind: 'resume', url: new URL(url, this.#core.options.endpoint).href }, false)
  }

  /** The low-level uploader: one chunk per `uploadChunk()` call. Close it when done. */
  async createUploader (source: UploadSource, options: Omit<UploadOptions, 'parallel'> & { url?: string } = {}): Promise<Uploader> {
    const metadata = validateMetadata(options.metadata)
    const urlStorage = options.urlStorage ?? this.#core.options.urlStorage
    const opened = await openSource(source, this.#core.options.chunkSize)
    const start: UploaderStart = options.url === undefined ? { kind: 'auto' } : { kind: 'resume', url: new URL(options.url, this.#core.options.endpoint).href }
    return new Uploader(this.#core, opened, { ...options, metadata, urlStorage }, { start })
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
      const fp = fingerprint(opened.identity, this.#core.options.endpoint)
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
    const info = await this.#core.serverInfo(options.signal)
    this.#core.requireExtension(info, 'concatenation', 'a partial upload')
    return this.#uploadWith(source, options, { kind: 'auto' }, true)
  }

  /** Creates the final upload joining `urls` (finished partial uploads, in order); answers its URL. */
  async createFinalUpload (urls: string[], metadata: Record<string, string | null> = {}, options: RequestOptions = {}): Promise<string> {
    return createFinal(this.#core, urls.map((url) => new URL(url, this.#core.options.endpoint).href), validateMetadata(metadata), options.signal)
  }

  /** OPTIONS: the server's version, extensions, size limit and checksum algorithms. */
  async getServerInfo (options: RequestOptions = {}): Promise<TusServerInfo> {
    return this.#core.serverInfo(options.signal, true)
  }

  /** HEAD: where an upload stands. */
  async getUploadInfo (url: string, options: RequestOptions = {}): Promise<TusUploadInfo> {
    return this.#core.head(new URL(url, this.#core.options.endpoint).href, options.signal)
  }

  /** DELETE (termination extension). */
  async delete (url: string, options: RequestOptions = {}): Promise<void> {
    const request = { method: 'DELETE', url: new URL(url, this.#core.options.endpoint).href, signal: options.signal }
    await this.#core.retrying(options.signal, async () => this.#core.request(request, 204, 200))
  }

  /** Closes idle connections. Uploads still running finish. */
  close (): void {
    this.#core.http.close()
  }

  async #uploadWith (source: UploadSource, options: Omit<UploadOptions, 'parallel'>, start: UploaderStart, partial: boolean): Promise<string> {
    const metadata = validateMetadata(options.metadata)
    const urlStorage = options.urlStorage ?? this.#core.options.urlStorage
    const opened = await openSource(source, this.#core.options.chunkSize)
    try {
      return await this.#runToEnd(new Uploader(this.#core, opened, { ...options, metadata, urlStorage }, { start, partial, ownsSource: false }))
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
