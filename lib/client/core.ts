/**
 * What every part of the client shares: the resolved options, the HTTP
 * transport, the retry loop, and the server's capabilities (asked once).
 */
import { TusAbortError, TusUnsupportedError } from './errors.js'
import { HttpTransport, type HttpRequest, type HttpResponse } from './http.js'
import type { ResolvedClientOptions } from './options.js'
import { expectStatus, parseServerInfo, parseUploadInfo, type TusServerInfo, type TusUploadInfo } from './protocol.js'
import { isRetryableError, retryDelay, sleep, throwIfAborted } from './retry.js'

export class ClientCore {
  readonly options: ResolvedClientOptions
  readonly http: HttpTransport
  #serverInfo: Promise<TusServerInfo> | undefined

  constructor (options: ResolvedClientOptions) {
    this.options = options
    this.http = new HttpTransport(options)
  }

  /** One request; a status outside `expected` throws TusHttpError. */
  async request (request: HttpRequest, ...expected: number[]): Promise<HttpResponse> {
    const response = await this.http.send(request)
    expectStatus(response, request, ...expected)
    return response
  }

  /**
   * Runs `step` until it succeeds, it fails in a way not worth retrying, or
   * maxRetries retries are spent; waits with backoff between attempts.
   * `attempt` counts from 1.
   */
  async retrying<T> (signal: AbortSignal | undefined, step: (attempt: number) => Promise<T>, onRetry?: (error: Error, attempt: number) => void): Promise<T> {
    const { maxRetries, onShouldRetry } = this.options
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(signal)
      try {
        return await step(attempt)
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err))
        if (error instanceof TusAbortError) throw error
        // Whatever broke while the signal fired (a destroyed socket, say), the cause is the abort.
        if (signal?.aborted === true) throw new TusAbortError(signal.reason)
        if (attempt > maxRetries) throw error
        const retry = onShouldRetry === undefined ? isRetryableError(error) : onShouldRetry(error, attempt)
        if (!retry) throw error
        onRetry?.(error, attempt)
        await sleep(retryDelay(attempt, this.options.retryDelay, this.options.retryBackoff), signal)
      }
    }
  }

  /** OPTIONS, cached for the client's life; `fresh` asks again. A failure is not cached. */
  async serverInfo (signal?: AbortSignal, fresh = false): Promise<TusServerInfo> {
    if (fresh || this.#serverInfo === undefined) {
      const asked = this.retrying(signal, async () => {
        const request = { method: 'OPTIONS', url: this.options.endpoint, signal }
        const response = await this.request(request, 200, 204)
        return parseServerInfo(response.headers)
      })
      this.#serverInfo = asked
      asked.catch(() => { if (this.#serverInfo === asked) this.#serverInfo = undefined })
    }
    return this.#serverInfo
  }

  /** HEAD, with retries. */
  async head (url: string, signal?: AbortSignal, onRetry?: (error: Error) => void): Promise<TusUploadInfo> {
    return this.retrying(signal, async () => this.headOnce(url, signal), onRetry)
  }

  async headOnce (url: string, signal?: AbortSignal): Promise<TusUploadInfo> {
    const response = await this.request({ method: 'HEAD', url, signal, headers: { 'Cache-Control': 'no-store' } }, 200, 204)
    return parseUploadInfo(url, response.headers)
  }

  /** Throws TusUnsupportedError unless the server lists `extension`. */
  requireExtension (info: TusServerInfo, extension: string, why: string): void {
    if (!info.extensions.includes(extension)) {
      throw new TusUnsupportedError(`${why} needs the tus "${extension}" extension, which ${this.options.endpoint} does not offer (it offers: ${info.extensions.join(', ') || 'none'})`)
    }
  }

  /** A checksum is only sent when the server says it verifies that algorithm; otherwise it is refused up front. */
  requireChecksum (info: TusServerInfo): void {
    const algorithm = this.options.checksum
    if (algorithm === undefined) return
    if (!info.extensions.includes('checksum') || !info.checksumAlgorithms.includes(algorithm)) {
      throw new TusUnsupportedError(`checksum ${algorithm} was asked for, but ${this.options.endpoint} does not verify it ` +
        `(Tus-Checksum-Algorithm: ${info.checksumAlgorithms.join(',') || 'none'})`)
    }
  }
}
