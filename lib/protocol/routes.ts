/**
 * The encapsulated scope that speaks tus. Everything here (the body parser,
 * the error format, CORS) stays inside it, so the host app's own parsers,
 * routes and error handling are untouched.
 */
import cors from '@fastify/cors'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TusContext } from './context.js'
import { TusError, sendReason } from './errors.js'
import { TUS_VERSION, hasBody, repeatedHeader, single } from './headers.js'
import { handleCreate } from './create.js'
import { handleHead } from './head.js'
import { handlePatch } from './patch.js'
import { handleTerminate } from './terminate.js'
import { handleDownload } from './download.js'
import { handleOptions } from './discover.js'
import { draftOf, uploadLimit } from './draft/select.js'
import { handleDraftCreate } from './draft/create.js'
import { handleDraftHead } from './draft/offset.js'
import { shuttingDown } from './write.js'

const TUS_REQUEST_HEADERS = [
  'Authorization', 'Content-Type', 'Origin', 'X-Requested-With', 'X-Request-ID', 'X-HTTP-Method-Override',
  'Tus-Resumable', 'Upload-Length', 'Upload-Defer-Length', 'Upload-Offset', 'Upload-Metadata',
  'Upload-Concat', 'Upload-Checksum',
  // The IETF draft's.
  'Upload-Complete', 'Upload-Draft-Interop-Version', 'Content-Disposition'
]
const TUS_RESPONSE_HEADERS = [
  'Location', 'Tus-Resumable', 'Tus-Version', 'Tus-Extension', 'Tus-Max-Size', 'Tus-Checksum-Algorithm',
  'Upload-Offset', 'Upload-Length', 'Upload-Defer-Length', 'Upload-Metadata', 'Upload-Expires', 'Upload-Concat',
  'Content-Disposition', 'Content-Range', 'Accept-Ranges',
  // The IETF draft's.
  'Upload-Complete', 'Upload-Limit', 'Upload-Draft-Interop-Version'
]

/** After a reply sent before its request's body ended, how long the rest is read and dropped before the connection is cut. */
const LINGER_MS = 3000

type IdParams = { Params: { id: string } }

export async function tusRoutes (scope: FastifyInstance, ctx: TusContext): Promise<void> {
  if (ctx.options.cors !== false) {
    const { origin = '*', credentials = false, allowedHeaders = [], maxAge = 86400 } = ctx.options.cors
    await scope.register(cors, {
      // One origin is matched like a list, so other origins get no Allow-Origin at all.
      origin: typeof origin === 'string' && origin !== '*' ? [origin] : origin,
      credentials,
      methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS'],
      allowedHeaders: [...TUS_REQUEST_HEADERS, ...allowedHeaders],
      exposedHeaders: TUS_RESPONSE_HEADERS,
      maxAge,
      // Preflight headers are added, then our OPTIONS route answers with the
      // tus discovery headers too; a plain OPTIONS (no Origin) is discovery.
      preflight: true,
      strictPreflight: false,
      preflightContinue: true
    })
  }

  // Bodies are streamed by the handlers from request.raw; no parser ever reads one.
  scope.removeAllContentTypeParsers()
  scope.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined))

  scope.decorateRequest('tusDraft', undefined)
  scope.addHook('onRequest', async (request, reply) => {
    reply.header('Tus-Resumable', TUS_VERSION)
    // Shutting down: the client's retry belongs to another instance (or to this one restarted).
    if (ctx.drain.draining) throw shuttingDown()
    // Downloads are plain HTTP (a browser link); OPTIONS is discovery and CORS preflight.
    if (request.method === 'OPTIONS' || request.method === 'GET') return
    // A request of the IETF draft has no Tus-Resumable (see draft/select.ts).
    request.tusDraft = draftOf(ctx, request)
    if (request.tusDraft !== undefined) return
    const version = request.headers['tus-resumable']
    if (version !== TUS_VERSION) {
      throw new TusError(412, version === undefined ? 'Tus-Resumable header is required' : `Tus-Resumable ${String(version).slice(0, 32)} is not supported`, { 'Tus-Version': TUS_VERSION })
    }
    const repeated = repeatedHeader(request.raw.rawHeaders)
    if (repeated !== undefined) throw new TusError(400, `${repeated} must be sent once`)
  })

  // Requests still running when the shutdown began: their connection ends with them.
  // With metrics on, each answer is counted here by method (after X-HTTP-Method-Override)
  // and status: its status is final once it is being sent, and a hook of its own
  // (onResponse) cost each request a second hook run.
  const metrics = ctx.metrics
  scope.addHook('onSend', (request, reply, payload, done) => {
    if (ctx.drain.draining) reply.header('Connection', 'close')
    if (metrics !== undefined) {
      const override = request.method === 'POST' ? request.headers['x-http-method-override'] : undefined
      metrics.request(typeof override === 'string' ? override.trim().toUpperCase() : request.method, reply.statusCode)
    }
    done(null, payload)
  })

  scope.setErrorHandler((error: FastifyError | TusError, request, reply) => {
    let status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
    let message = error.message
    if (!(error instanceof TusError) && status >= 500) message = 'internal server error'
    if (status >= 500) request.log.error({ err: error }, 'fastify-tus: request failed')
    if (error instanceof TusError) reply.headers(error.headers)
    if ((error as FastifyError).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') { status = 415; message = 'unsupported Content-Type' }
    // A draft request's error is the resumable-upload protocol's, not the target resource's.
    if (request.tusDraft !== undefined) {
      if (!reply.hasHeader('Upload-Complete')) reply.header('Upload-Complete', '?0')
      // A refusal for a limit says what the limits are.
      if (status === 413 && !reply.hasHeader('Upload-Limit')) reply.header('Upload-Limit', uploadLimit(ctx, request.tusDraft.version))
    }
    lingerIfBodyPending(request, reply)
    if (error instanceof TusError && error.body !== undefined) reply.code(status).type(error.body.contentType).send(error.body.text)
    else sendReason(reply, status, message)
  })

  scope.setNotFoundHandler((request, reply) => {
    lingerIfBodyPending(request, reply)
    sendReason(reply, 404, 'not found')
  })

  scope.options('/', async (request, reply) => handleOptions(ctx, request, reply))
  scope.options('/:id', async (request, reply) => handleOptions(ctx, request, reply))
  scope.post('/', async (request, reply) => {
    if (request.tusDraft !== undefined) return handleDraftCreate(ctx, request, reply, request.tusDraft)
    if (request.headers['x-http-method-override'] !== undefined) throw new TusError(405, 'X-HTTP-Method-Override applies to upload URLs only')
    return handleCreate(ctx, request, reply)
  })
  scope.head<IdParams>('/:id', async (request, reply) => request.tusDraft === undefined
    ? handleHead(ctx, request, reply, request.params.id)
    : handleDraftHead(ctx, reply, request.params.id, request.tusDraft))
  scope.patch<IdParams>('/:id', async (request, reply) => handlePatch(ctx, request, reply, request.params.id))
  scope.delete<IdParams>('/:id', async (request, reply) => handleTerminate(ctx, request, reply, request.params.id))
  scope.get<IdParams>('/:id', { exposeHeadRoute: false }, async (request, reply) => handleDownload(ctx, request, reply, request.params.id))

  // X-HTTP-Method-Override: a POST to an upload URL carrying PATCH, DELETE or HEAD.
  scope.post<IdParams>('/:id', async (request, reply) => {
    const override = single(request.headers, 'x-http-method-override')?.trim().toUpperCase()
    const { id } = request.params
    if (override === 'PATCH') return handlePatch(ctx, request, reply, id)
    if (override === 'DELETE') return handleTerminate(ctx, request, reply, id)
    if (override === 'HEAD') return handleHead(ctx, request, reply, id)
    throw new TusError(405, override === undefined ? 'POST to an upload URL needs X-HTTP-Method-Override' : 'X-HTTP-Method-Override must be PATCH, DELETE or HEAD', { Allow: 'HEAD, PATCH, DELETE, GET, OPTIONS' })
  })
}

/**
 * A reply sent before the body ended (an error: a storage failure, a body refused
 * before it was read): the rest of the body is read and dropped after the reply,
 * a lingering close. Closing at once would reset the connection while the client
 * is still sending (a socket closed with unread bytes answers RST), and the
 * client's TCP would then drop the reply it had not read yet: it would see a
 * network error instead of the status and its reason. When the connection is to
 * close after the reply (the client asked for it), Node's own close is put off
 * until the body has ended; a body still arriving LINGER_MS after the reply is
 * not worth more, and the connection is cut then. On a kept-alive connection a
 * body that ends in time leaves it ready for the next request.
 */
function lingerIfBodyPending (request: FastifyRequest, reply: FastifyReply): void {
  if (!hasBody(request.headers) || request.raw.complete) return
  const raw = request.raw
  reply.raw.once('finish', () => {
    const socket = raw.socket
    if (raw.complete || raw.destroyed || socket === null || socket.destroyed) return
    // Node's server has just ended the socket and will destroy it once its reply is
    // flushed (net.Socket.destroySoon); that destroy waits for the body instead.
    const closing = socket.writableEnded
    if (closing) socket.removeListener('finish', socket.destroy)
    const cut = setTimeout(() => { socket.destroy() }, LINGER_MS)
    const done = (): void => {
      clearTimeout(cut)
      if (closing) socket.destroy()
    }
    raw.once('end', done)
    raw.once('close', done)
    raw.on('error', done)
    raw.on('data', discard)
    raw.resume()
  })
}

const discard = (): void => {}
