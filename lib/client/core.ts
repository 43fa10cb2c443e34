/**
 * What every part of the client shares: the resolved options, the HTTP
 * transport, the retry loop, the server's capabilities (asked once), and the
 * client's lifecycle: the operations in flight, which close() waits for.
 */
import { INTEROP_HEADER, SUCCESS, parseDraftUploadInfo, retryAfter, type DraftLimits } from './draft.js'
import { TusAbortError, TusClientError, TusHttpError, TusUnsupportedError } from './errors.js'
import { HttpTransport, type HttpRequest, type HttpResponse } from './http.js'
import type { ResolvedClientOptions } from './options.js'
import { expectStatus, parseServerInfo, parseUploadInfo, type TusServerInfo, type TusUploadInfo } from './protocol.js'
import { MAX_RETRY_DELAY, isRetryableError, retryDelay, sleep, throwIfAborted } from './retry.js'
import { fingerprint } from './source.js'

/**
 * One piece of work close() waits for: a TusClient call, or a started Uploader.
 * Its `signal` fires when the caller's signal does, or when close() runs out of time.
 */
export interface Operation {
  readonly signal: AbortSignal
  /** The work is over; idempotent. */
  end: () => void
}

/** The largest timeout setTimeout keeps (about 24.8 days). */
const MAX_TIMER = 2_147_483_647

export class ClientCore {
  readonly options: ResolvedClientOptions
  readonly http: HttpTransport
  #serverInfo: SharedRequest<TusServerInfo> | undefined
  /** The abort of each operation in flight. */
  readonly #operations = new Map<Operation, AbortController>()
  /** Set by the first close(): no operation starts after it; settles once the last one has ended and the sockets are released. */
  #closing: Promise<void> | undefined
  #drained: (() => void) | undefined

  constructor (options: ResolvedClientOptions) {
    this.options = options
    this.http = new HttpTransport(options)
  }

  /** Throws ERR_TUS_CLIENT_CLOSED once close() was called. */
  assertOpen (): void {
    if (this.#closing !== undefined) {
      throw new TusClientError('this TusClient is closed (close() was called): no new upload or request can start', { code: 'ERR_TUS_CLIENT_CLOSED' })
    }
  }

  /**
   * Registers a piece of work, or throws ERR_TUS_CLIENT_CLOSED once close()
   * was called. The caller must call `end()` when the work is over.
   */
  begin (signal: AbortSignal | undefined): Operation {
    this.assertOpen()
    const controller = new AbortController()
    const onAbort = (): void => controller.abort(signal?.reason)
    if (signal?.aborted === true) onAbort()
    else signal?.addEventListener('abort', onAbort, { once: true })
    const operation: Operation = {
      signal: controller.signal,
      end: () => {
        if (!this.#operations.delete(operation)) return
        signal?.removeEventListener('abort', onAbort)
        if (this.#operations.size === 0) this.#drained?.()
      }
    }
    this.#operations.set(operation, controller)
    return operation
  }

  /**
   * Stops new operations, waits for those in flight to end (after `timeout`
   * ms, aborts them and waits for them to unwind), then destroys the agents'
   * sockets. Every call answers the same completion; each call's timeout counts.
   */
  async close (timeout: number | undefined): Promise<void> {
    if (timeout !== undefined && (typeof timeout !== 'number' || !Number.isSafeInteger(timeout) || timeout < 0 || timeout > MAX_TIMER)) {
      throw new TypeError(`fastify-tus client: close option timeout must be an integer from 0 to ${MAX_TIMER} (ms), got ${JSON.stringify(timeout)}`)
    }
    if (this.#closing === undefined) {
      if (this.#operations.size === 0) {
        // Nothing in flight: the sockets go at once, before close() returns.
        this.http.close()
        this.#closing = Promise.resolve()
      } else {
        this.#closing = new Promise<void>((resolve) => { this.#drained = resolve }).then(() => this.http.close())
      }
    }
    const closing = this.#closing
    if (timeout === undefined || this.#operations.size === 0) return closing
    const reason = new TusClientError(`close() stopped the work still in flight after waiting ${timeout} ms`, { code: 'ERR_TUS_CLIENT_CLOSED' })
    const timer = setTimeout(() => {
      for (const controller of this.#operations.values()) controller.abort(reason)
    }, timeout)
    try {
      await closing
    } finally {
      clearTimeout(timer)
    }
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
        const retry = onShouldRetry === undefined ? isRetryableError(error, this.options.protocol) : onShouldRetry(error, attempt)
        if (!retry) throw error
        onRetry?.(error, attempt)
        await sleep(this.#delayBefore(error, attempt), signal)
      }
    }
  }

  /** The backoff; in draft mode at least the Retry-After of a 429 or 503 (capped like the backoff). */
  #delayBefore (error: Error, attempt: number): number {
    const delay = retryDelay(attempt, this.options.retryDelay, this.options.retryBackoff)
    if (this.options.protocol !== 'ietf-draft' || !(error instanceof TusHttpError) || (error.statusCode !== 429 && error.statusCode !== 503)) return delay
    return Math.max(delay, Math.min(MAX_RETRY_DELAY, retryAfter(error) ?? 0))
  }

  /** True with protocol 'ietf-draft'. */
  get draft (): boolean {
    return this.options.protocol === 'ietf-draft'
  }

  /** `Upload-Draft-Interop-Version` of every draft request. */
  draftHeaders (): Record<string, string> {
    return { [INTEROP_HEADER]: String(this.options.draftVersion) }
  }

  /**
   * The key a URL storage files an upload of this content under. Draft
   * uploads are kept apart from tus ones: an upload URL of one protocol is not
   * resumed with the other.
   */
  fingerprint (identity: string): string {
    return fingerprint((this.draft ? 'ietf-draft\0' : '') + identity, this.options.endpoint)
  }

  /**
   * OPTIONS, cached for the client's life; `fresh` asks again. A failure is not
   * cached. Callers share one request, which belongs to none of them: one
   * caller's abort ends only its own wait, and the request is aborted once
   * every caller waiting for it has aborted.
   */
  async serverInfo (signal?: AbortSignal, fresh = false): Promise<TusServerInfo> {
    let shared = this.#serverInfo
    if (fresh || shared === undefined) {
      const controller = new AbortController()
      const promise = this.retrying(controller.signal, async () => {
        const response = await this.request({ method: 'OPTIONS', url: this.options.endpoint, signal: controller.signal }, 200, 204)
        return parseServerInfo(response.headers)
      })
      const asked: SharedRequest<TusServerInfo> = { promise, controller, waiting: 0, settled: false }
      this.#serverInfo = shared = asked
      promise.then(() => { asked.settled = true }, () => {
        asked.settled = true
        if (this.#serverInfo === asked) this.#serverInfo = undefined
      })
    }
    return awaitShared(shared, signal)
  }

  /** HEAD, with retries. `onLimits` sees the draft's Upload-Limit of the answer. */
  async head (url: string, signal?: AbortSignal, onRetry?: (error: Error) => void, onLimits?: (limits: DraftLimits) => void): Promise<TusUploadInfo> {
    return this.retrying(signal, async () => this.headOnce(url, signal, onLimits), onRetry)
  }

  /** HEAD (tus), or the draft's offset retrieval (HEAD with the interop version, any 2xx). */
  async headOnce (url: string, signal?: AbortSignal, onLimits?: (limits: DraftLimits) => void): Promise<TusUploadInfo> {
    if (!this.draft) {
      const response = await this.request({ method: 'HEAD', url, signal, headers: { 'Cache-Control': 'no-store' } }, 200, 204)
      return parseUploadInfo(url, response.headers)
    }
    const response = await this.request({ method: 'HEAD', url, signal, headers: { ...this.draftHeaders(), 'Cache-Control': 'no-store' } }, ...SUCCESS)
    const { info, limits } = parseDraftUploadInfo(url, response.headers)
    if (limits !== undefined) onLimits?.(limits)
    return info
  }

  /** DELETE (tus termination: 204 or 200; draft cancellation: any 2xx), retried. */
  async delete (url: string, signal?: AbortSignal): Promise<void> {
    const request = this.draft
      ? { method: 'DELETE', url, signal, headers: this.draftHeaders() }
      : { method: 'DELETE', url, signal }
    const expected = this.draft ? SUCCESS : [204, 200]
    await this.retrying(signal, async () => this.request(request, ...expected))
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

/** A request several callers wait for, each with its own abort signal. */
interface SharedRequest<T> {
  promise: Promise<T>
  /** Aborts the request itself: once no caller is waiting any more. */
  controller: AbortController
  /** Callers waiting now. */
  waiting: number
  settled: boolean
}

/** The shared request's outcome, or TusAbortError as soon as `signal` fires (the request goes on for the others). */
async function awaitShared<T> (shared: SharedRequest<T>, signal: AbortSignal | undefined): Promise<T> {
  if (shared.settled) return shared.promise
  throwIfAborted(signal)
  shared.waiting++
  if (signal === undefined) {
    try {
      return await shared.promise
    } finally {
      shared.waiting--
    }
  }
  let onAbort!: () => void
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => {
      reject(new TusAbortError(signal.reason))
      if (--shared.waiting === 0 && !shared.settled) shared.controller.abort(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([shared.promise, aborted])
  } finally {
    if (!signal.aborted) {
      signal.removeEventListener('abort', onAbort)
      shared.waiting--
    }
  }
}
