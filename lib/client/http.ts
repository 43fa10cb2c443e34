/**
 * One HTTP request, nothing more: no retries and no status rules (the callers
 * own those). It adds the client's headers, runs the request hooks, enforces
 * the idle timeout and the abort signal, and turns every failure into one of
 * the client's error classes.
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { TusAbortError, TusClientError, TusNetworkError, TusTimeoutError } from './errors.js'
import type { ResolvedClientOptions, TusRequestInfo } from './options.js'

export interface HttpRequest {
  method: string
  url: string
  headers?: Record<string, string>
  /** Sent as is; the caller must not change it until the request settles. */
  body?: Buffer
  signal?: AbortSignal
  /**
   * Called for each 1xx interim response (not 101) before the final one. A
   * throw ends the request: it rejects with that error (a TusClientError as
   * it is, anything else as a TusNetworkError).
   */
  onInformation?: (info: InterimResponse) => void
}

export interface InterimResponse {
  statusCode: number
  headers: IncomingHttpHeaders
}

export interface HttpResponse {
  statusCode: number
  headers: IncomingHttpHeaders
  /** The reply body as text, at most RESPONSE_BODY_LIMIT bytes of it. */
  body: string
}

/** tus replies carry their information in headers; a body is only an error reason. */
const RESPONSE_BODY_LIMIT = 64 * 1024

export class HttpTransport {
  readonly #options: ResolvedClientOptions
  // Connections are reused across the requests of an upload; idle ones do not keep the process alive.
  readonly #httpAgent = new HttpAgent({ keepAlive: true })
  readonly #httpsAgent: HttpsAgent

  constructor (options: ResolvedClientOptions) {
    this.#options = options
    const tls = options.tls ?? {}
    this.#httpsAgent = new HttpsAgent({
      keepAlive: true,
      rejectUnauthorized: tls.rejectUnauthorized ?? true,
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.cert === undefined ? {} : { cert: tls.cert }),
      ...(tls.key === undefined ? {} : { key: tls.key })
    })
  }

  async send (request: HttpRequest): Promise<HttpResponse> {
    const info: TusRequestInfo = {
      method: request.method,
      url: request.url,
      // The IETF draft has no Tus-Resumable; its requests name the draft's interop version instead.
      headers: { ...(this.#options.protocol === 'tus' ? { 'Tus-Resumable': '1.0.0' } : {}), ...this.#options.headers, ...request.headers }
    }
    if (request.body !== undefined || request.method === 'POST' || request.method === 'PATCH') {
      info.headers['Content-Length'] = String(request.body?.length ?? 0)
    }
    await this.#options.beforeRequest?.(info)
    const response = await this.#exchange(info, request.body, request.signal, request.onInformation)
    await this.#options.afterResponse?.(info, { statusCode: response.statusCode, headers: response.headers })
    return response
  }

  /**
   * Destroys every socket of the agents, idle or not. TusClient.close() calls
   * it only once no request is left in flight.
   */
  close (): void {
    this.#httpAgent.destroy()
    this.#httpsAgent.destroy()
  }

  #exchange (info: TusRequestInfo, body: Buffer | undefined, signal: AbortSignal | undefined, onInformation: HttpRequest['onInformation']): Promise<HttpResponse> {
    const { method, url } = info
    if (signal?.aborted === true) return Promise.reject(new TusAbortError(signal.reason))
    const https = url.startsWith('https:')
    return new Promise((resolve, reject) => {
      let response: HttpResponse | undefined
      let settled = false
      const settle = (error: Error | undefined): void => {
        if (settled) return
        settled = true
        signal?.removeEventListener('abort', onAbort)
        if (response !== undefined) resolve(response)
        else reject(error ?? new TusNetworkError(method, url, new Error('connection closed before a reply')))
      }
      const onAbort = (): void => { req.destroy(new TusAbortError(signal?.reason)) }

      let req: ClientRequest
      try {
        const options = { method, headers: info.headers, agent: https ? this.#httpsAgent : this.#httpAgent }
        req = https ? httpsRequest(url, options) : httpRequest(url, options)
      } catch (err) {
        reject(new TusNetworkError(method, url, err))
        return
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      if (this.#options.timeout > 0) {
        req.setTimeout(this.#options.timeout, () => req.destroy(new TusTimeoutError(method, url, this.#options.timeout)))
      }
      req.on('error', (err) => {
        if (response !== undefined) return settle(undefined) // the reply is complete; a late socket error changes nothing
        // The client's own errors (an abort, the idle timeout, a refusal from onInformation) as they are.
        settle(err instanceof TusClientError ? err : new TusNetworkError(method, url, err))
      })
      if (onInformation !== undefined) {
        req.on('information', (interim) => {
          if (settled || response !== undefined) return
          try {
            onInformation({ statusCode: interim.statusCode, headers: interim.headers })
          } catch (err) {
            req.destroy(err instanceof Error ? err : new Error(String(err)))
          }
        })
      }
      req.on('response', (res: IncomingMessage) => {
        readBody(res, (err, text) => {
          if (err !== undefined) {
            req.destroy()
            settle(new TusNetworkError(method, url, err))
            return
          }
          response = { statusCode: res.statusCode ?? 0, headers: res.headers, body: text }
          // A server may answer before reading the whole body (an error). Stop
          // sending: the caller reuses the body's buffer once this settles.
          if (!req.writableFinished) req.destroy()
          if (req.closed) settle(undefined)
        })
      })
      // 'close' comes last, after the body was written or dropped: only then is the buffer free.
      req.on('close', () => settle(undefined))
      req.end(body)
    })
  }
}

/**
 * Reads a reply body as text, keeping at most RESPONSE_BODY_LIMIT bytes and
 * discarding the rest. A callback, not a promise: the request's 'close' may
 * follow 'end' on the next tick, before a promise continuation would run.
 */
function readBody (res: IncomingMessage, done: (err: Error | undefined, text: string) => void): void {
  const chunks: Buffer[] = []
  let kept = 0
  let finished = false
  const finish = (err: Error | undefined): void => {
    if (finished) return
    finished = true
    done(err, err === undefined ? Buffer.concat(chunks).toString('utf8') : '')
  }
  res.on('data', (chunk: Buffer) => {
    if (kept >= RESPONSE_BODY_LIMIT) return
    const piece = chunk.subarray(0, RESPONSE_BODY_LIMIT - kept)
    chunks.push(piece)
    kept += piece.length
  })
  res.on('end', () => finish(undefined))
  res.on('error', (err) => finish(err))
  res.on('aborted', () => finish(new Error('reply cut before its end')))
}

/** One header value as a string (the first, if the server repeated it). */
export function headerValue (headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()]
  return Array.isArray(value) ? value[0] : value
}
