/**
 * The one error type of the protocol layer: an HTTP status and a one-line reason.
 * Hooks throw it to reject a request; the route error handler turns it into a
 * plain-text reply.
 */
import type { FastifyReply } from 'fastify'

export class TusError extends Error {
  readonly statusCode: number
  readonly headers: Record<string, string>
  /** A body to send instead of the one-line reason (the IETF draft's problem documents). */
  readonly body: { contentType: string; text: string } | undefined

  constructor (statusCode: number, message: string, headers: Record<string, string> = {}, body?: { contentType: string; text: string }) {
    super(message)
    this.name = 'TusError'
    this.statusCode = statusCode
    this.headers = headers
    this.body = body
  }
}

/** A reason as sent: one line, at most 500 characters. */
const oneLine = (message: string): string => message.replace(/[\r\n]+/g, ' ').slice(0, 500)

/** The one format of every refusal: the status and a one-line plain-text reason. */
export function sendReason (reply: FastifyReply, status: number, reason: string): void {
  reply.code(status).type('text/plain; charset=utf-8').send(oneLine(reason))
}

export const notFound = (): TusError => new TusError(404, 'upload not found')
export const gone = (): TusError => new TusError(410, 'upload expired')
