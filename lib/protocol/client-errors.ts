/**
 * Requests Node's HTTP parser refuses before Fastify sees a request: headers
 * over the size limit (431), a request that does not arrive in time (408), chunk
 * extensions over their limit (413), bytes that are not HTTP (400). Node emits
 * them as the server's `clientError`, and Fastify's default handler answers in
 * JSON without `Connection: close` and destroys the socket: a keep-alive client
 * (Node's agent, a browser) keeps the dead connection in its pool and its next
 * request fails with "socket hang up". This handler, passed as Fastify's
 * `clientErrorHandler`, answers them the way the plugin answers everything else
 * (plain text, one line, Tus-Resumable) with `Connection: close`, then ends the
 * socket so the client can read the reply before the connection goes. The
 * command line's server uses it.
 */
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import { TUS_VERSION } from './headers.js'

/** How long an answered connection may stay half-open (the client still sending) before it is cut. */
const LINGER_MS = 3000

/** Sockets already answered: the parser reports every later chunk again, and those are dropped. */
const answered = new WeakSet<Socket>()

/** The refusals Node's parser makes, as the plugin words them. */
function refusal (error: { code?: string }): { status: number; reason: string } {
  const code = error.code ?? ''
  switch (code) {
    case 'HPE_HEADER_OVERFLOW': return { status: 431, reason: 'request headers are too large' }
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW': return { status: 413, reason: 'chunk extensions of the request body are too large' }
    case 'ERR_HTTP_REQUEST_TIMEOUT': return { status: 408, reason: 'the request did not arrive in time' }
    default: return { status: 400, reason: code.startsWith('HPE_') ? 'malformed HTTP request' : 'the request could not be read' }
  }
}

/**
 * Was the refused request a HEAD, whose reply must have no body (a strict
 * client, Node's, takes the body for garbage and fails the request)? The parser
 * has not told the method yet, so this looks at the bytes it failed in: they
 * start with the request line when the request came in one piece, the common
 * case. A HEAD split over several reads is not recognised and gets the body.
 */
function isHead (error: { rawPacket?: unknown }): boolean {
  const raw = error.rawPacket
  return Buffer.isBuffer(raw) && raw.subarray(0, 5).toString('latin1') === 'HEAD '
}

/** An in-flight response of this connection, as Node tracks it (internal, read defensively). */
const inFlightResponse = (socket: Socket): { headersSent?: boolean } | null | undefined =>
  (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage

/**
 * Fastify's `clientErrorHandler`: `Fastify({ clientErrorHandler: tusClientErrorHandler })`.
 * Typed loosely enough (any error with an optional code) to fit Fastify's option.
 */
export function tusClientErrorHandler (error: Error & { code?: string; rawPacket?: unknown }, socket: Socket): void {
  // A reset connection is gone already; there is nothing to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  // Already answered and ending: the linger below closes it.
  if (answered.has(socket)) return
  // Nothing can be written, or a response of this connection has started: a
  // status line now would corrupt it. Only closing is left.
  if (!socket.writable || inFlightResponse(socket)?.headersSent === true) {
    socket.destroy()
    return
  }
  answered.add(socket)
  const { status, reason } = refusal(error)
  const body = Buffer.from(reason, 'utf8')
  const head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${body.length}\r\n` +
    `Tus-Resumable: ${TUS_VERSION}\r\n` +
    'Connection: close\r\n\r\n'
  try {
    // end, not destroy: a socket closed at once (with bytes of the request
    // still unread) answers with a reset, and the client's TCP drops the reply.
    socket.end(isHead(error) ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), body]))
  } catch {
    socket.destroy()
    return
  }
  // The connection is done once the client closes its side (it got
  // Connection: close); one that keeps sending, or stays silent, is cut after LINGER_MS.
  const cut = setTimeout(() => socket.destroy(), LINGER_MS)
  cut.unref()
  socket.once('close', () => clearTimeout(cut))
  socket.once('end', () => socket.destroy())
}
