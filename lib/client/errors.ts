/**
 * Errors of the tus client. Every failure is one of these classes, so a caller
 * can tell "the server said no" (TusHttpError) from "the network failed"
 * (TusNetworkError, TusTimeoutError) from "you cancelled" (TusAbortError)
 * with instanceof, without parsing messages.
 */

export class TusClientError extends Error {
  /** A stable, machine-readable name for the failure, e.g. 'ERR_TUS_HTTP'. */
  readonly code: string

  constructor (message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'TusClientError'
    this.code = options.code ?? 'ERR_TUS_CLIENT'
  }
}

/** The server answered with a status the client does not accept. */
export class TusHttpError extends TusClientError {
  readonly statusCode: number
  /** The reply body, as text, cut to a few KiB. */
  readonly body: string
  readonly method: string
  readonly url: string
  /** Reply headers, lower-cased names. */
  readonly headers: Record<string, string | string[] | undefined>

  constructor (init: { statusCode: number; body: string; method: string; url: string; headers?: Record<string, string | string[] | undefined> }) {
    const reason = init.body.trim().split(/\r?\n/)[0]?.slice(0, 200) ?? ''
    super(`${init.method} ${init.url} answered ${init.statusCode}${reason === '' ? '' : `: ${reason}`}`, { code: 'ERR_TUS_HTTP' })
    this.name = 'TusHttpError'
    this.statusCode = init.statusCode
    this.body = init.body
    this.method = init.method
    this.url = init.url
    this.headers = init.headers ?? {}
  }
}

/** The connection failed (refused, reset, cut mid-request, TLS failure). `cause` holds Node's error. */
export class TusNetworkError extends TusClientError {
  readonly method: string
  readonly url: string

  constructor (method: string, url: string, cause: unknown, code = 'ERR_TUS_NETWORK') {
    super(`${method} ${url} failed: ${(cause as Error)?.message ?? String(cause)}`, { code, cause })
    this.name = 'TusNetworkError'
    this.method = method
    this.url = url
  }
}

/** No byte moved in either direction for `timeout` ms. */
export class TusTimeoutError extends TusNetworkError {
  readonly timeout: number

  constructor (method: string, url: string, timeout: number) {
    super(method, url, new Error(`no data moved for ${timeout} ms`), 'ERR_TUS_TIMEOUT')
    this.name = 'TusTimeoutError'
    this.timeout = timeout
  }
}

/**
 * The caller's AbortSignal fired. Named 'AbortError' with code 'ABORT_ERR',
 * like the errors of fetch and of Node's own APIs, so generic abort checks work.
 */
export class TusAbortError extends TusClientError {
  constructor (reason?: unknown) {
    super('the upload was aborted', { code: 'ABORT_ERR', cause: reason })
    this.name = 'AbortError'
  }
}

/** The server lacks something the client was asked to use (an extension, a checksum algorithm). */
export class TusUnsupportedError extends TusClientError {
  constructor (message: string) {
    super(message, { code: 'ERR_TUS_UNSUPPORTED' })
    this.name = 'TusUnsupportedError'
  }
}

/** The server answered, but not the way the tus protocol says it must (a missing header, an offset out of range). */
export class TusProtocolError extends TusClientError {
  constructor (message: string) {
    super(message, { code: 'ERR_TUS_PROTOCOL' })
    this.name = 'TusProtocolError'
  }
}
