/** When to try again, and how long to wait first. */
import { answersAsTarget } from './draft.js'
import { TusAbortError, TusHttpError, TusNetworkError } from './errors.js'
import type { TusClientProtocol } from './options.js'

/** The longest wait between two attempts, whatever the backoff says. */
export const MAX_RETRY_DELAY = 60_000

/**
 * Node's codes for a certificate the client refused: retrying cannot help,
 * the same certificate will be refused again.
 */
const PERMANENT_TLS_CODES = /^(CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_TLS_CERT_|ERR_SSL_|HOSTNAME_MISMATCH)/

/**
 * The default rule: transient failures are retried, answers that will not
 * change are not.
 * - 409 on a PATCH (offset mismatch): yes, after re-reading the offset with
 *   HEAD; elsewhere (a creation conflict) it would only repeat itself;
 * - 423 (locked by another request, typically our own cut one): yes;
 * - 460 (checksum mismatch, the chunk was damaged on the way): yes, resent;
 * - 5xx except 501 (not implemented will stay so): yes;
 * - other 4xx: no;
 * - network errors and timeouts: yes, except a refused certificate.
 *
 * With protocol 'ietf-draft', the draft's retry heuristics on top: 429 (too
 * many requests) is retried too, after its Retry-After; an answer carrying
 * `Upload-Complete: ?1` is the target resource's final word and is never
 * retried. (A 413 whose Upload-Limit allows a smaller append is handled by
 * the uploader itself, sending less.)
 */
export function isRetryableError (error: unknown, protocol: TusClientProtocol = 'tus'): boolean {
  if (error instanceof TusAbortError) return false
  if (error instanceof TusHttpError) {
    const status = error.statusCode
    if (protocol === 'ietf-draft' && answersAsTarget(error)) return false
    return (status === 409 && error.method === 'PATCH') || status === 423 || status === 460 || (status >= 500 && status !== 501) ||
      (protocol === 'ietf-draft' && status === 429)
  }
  if (error instanceof TusNetworkError) {
    const code = String((error.cause as { code?: unknown } | undefined)?.code ?? '')
    return !PERMANENT_TLS_CODES.test(code)
  }
  return false
}

/**
 * Exponential backoff with "equal jitter": half of the delay is fixed, half is
 * random, so clients that failed together do not all come back together.
 * `attempt` counts from 1.
 */
export function retryDelay (attempt: number, base: number, backoff: number, random = Math.random): number {
  const exponential = Math.min(MAX_RETRY_DELAY, base * backoff ** Math.max(0, attempt - 1))
  return Math.round(exponential / 2 + random() * exponential / 2)
}

/** Waits `ms`, or rejects with TusAbortError as soon as `signal` fires. */
export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal)
  if (ms <= 0) return
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(new TusAbortError(signal?.reason))
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

export function throwIfAborted (signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new TusAbortError(signal.reason)
}
