/**
 * The one error type of the protocol layer: an HTTP status and a one-line reason.
 * Hooks throw it to reject a request; the route error handler turns it into a
 * plain-text reply.
 */
export class TusError extends Error {
  readonly statusCode: number
  readonly headers: Record<string, string>

  constructor (statusCode: number, message: string, headers: Record<string, string> = {}) {
    super(message)
    this.name = 'TusError'
    this.statusCode = statusCode
    this.headers = headers
  }
}

/** A reason as sent: one line, at most 500 characters. */
export const oneLine = (message: string): string => message.replace(/[\r\n]+/g, ' ').slice(0, 500)

export const notFound = (): TusError => new TusError(404, 'upload not found')
export const gone = (): TusError => new TusError(410, 'upload expired')
