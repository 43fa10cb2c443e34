/**
 * Errors Fastify answers before any route or plugin runs: an id longer than the
 * router's maxParamLength (414), a URL with broken percent-encoding (400). They
 * are the host app's (a router option, out of a plugin's reach) and come as JSON
 * by default; this handler, passed as Fastify's `frameworkErrors`, answers them
 * the way the plugin answers everything else: plain text, one line, Tus-Resumable.
 * The command line's server uses it.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { TUS_VERSION } from './headers.js'
import { sendReason } from './errors.js'

/** The refusals Fastify's router makes, as the plugin words them. */
function refusal (error: FastifyError): { status: number; reason: string } {
  switch (error.code) {
    case 'FST_ERR_MAX_PARAM_LENGTH': return { status: 414, reason: 'a path segment is too long (upload ids have at most 100 characters)' }
    case 'FST_ERR_BAD_URL': return { status: 400, reason: 'the URL is not valid (malformed percent-encoding)' }
    default: {
      const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400
      return { status, reason: error.message }
    }
  }
}

export function tusFrameworkErrors (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const { status, reason } = refusal(error)
  // Outside the plugin's scope, whose hook adds it to every other reply.
  reply.header('Tus-Resumable', TUS_VERSION)
  sendReason(reply, status, reason)
}
